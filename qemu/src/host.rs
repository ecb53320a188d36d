//! What the firmware gets from the host through semihosting
//! (`-semihosting-config enable=on,target=native`): its arguments and a way out (and the defmt
//! log, through `defmt-semihosting`). Entropy does not come this way: QEMU's loader places a boot
//! seed in RAM ([`crate::entropy`]). Semihosting traps into QEMU and is slow: used at boot, for
//! sparse logs and to exit only.

/// Idle timeout when the command line does not give one: a token kept warm by the launcher
/// exits after this many seconds without a received byte.
pub const DEFAULT_IDLE_SECS: u32 = 300;

/// Exit codes QEMU returns when the firmware ends (see the launcher).
pub mod exit_code {
    /// Idle timeout: a normal end.
    pub const IDLE: i32 = 0;
    /// Randomness was drawn although the boot seed was missing (the token core never does).
    pub const NO_ENTROPY: i32 = 3;
    /// Start-up failed (flash handle, statics).
    pub const BOOT: i32 = 4;
    /// A panic.
    pub const PANIC: i32 = 101;
    /// A HardFault.
    pub const HARD_FAULT: i32 = 102;
    /// An interrupt without a handler.
    pub const UNEXPECTED_IRQ: i32 = 103;
}

/// Reads the idle timeout from the semihosting command line (SYS_GET_CMDLINE), given by the
/// launcher as `-semihosting-config ...,arg=pkms-token,arg=idle_secs=N`. `idle_secs=0` means never
/// time out. Falls back to [`DEFAULT_IDLE_SECS`] when absent or unreadable.
pub fn idle_secs() -> u32 {
    let Ok(args) = semihosting::experimental::env::args::<256>() else {
        return DEFAULT_IDLE_SECS;
    };
    for arg in &args {
        if let Some(value) = arg.ok().and_then(|a| a.strip_prefix("idle_secs=")) {
            if let Ok(secs) = value.parse::<u32>() {
                return secs;
            }
        }
    }
    DEFAULT_IDLE_SECS
}

/// Ends the emulation: QEMU exits with `code`.
pub fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}
