//! What the firmware gets from the host through semihosting
//! (`-semihosting-config enable=on,target=native`): its arguments and a way out (and the defmt
//! log, through `defmt-semihosting`). Entropy does not come this way: QEMU's loader places a boot
//! seed in RAM ([`crate::entropy`]). Semihosting traps into QEMU and is slow: used at boot, for
//! sparse logs, a look at the home every few seconds while idle, and to exit.

/// Idle timeout when the command line does not give one: a token kept warm by the launcher
/// exits after this many seconds without a received byte.
pub const DEFAULT_IDLE_SECS: u32 = 300;

/// Exit codes QEMU returns when the firmware ends (see the launcher).
pub mod exit_code {
    /// Idle timeout: a normal end.
    pub const IDLE: i32 = 0;
    /// The watched file (the token's home) is gone: a normal end too.
    pub const HOME_GONE: i32 = 0;
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

/// Longest file name [`watched_file`] takes (with its NUL).
const WATCH_NAME_MAX: usize = 64;

/// A host file whose disappearance ends the token: the launcher gives
/// `arg=watch=token.flash`, the flash file in QEMU's working directory (the token's home).
/// Looked up relative to that directory, so removing the home, or replacing it with a new
/// directory of the same path, makes it vanish (QEMU's working directory stays the old,
/// removed one).
pub struct WatchedFile {
    name: [u8; WATCH_NAME_MAX],
}

impl WatchedFile {
    /// Whether the file can still be opened (read-only; closed at once).
    pub fn exists(&self) -> bool {
        let Ok(name) = core::ffi::CStr::from_bytes_until_nul(&self.name) else {
            return true;
        };
        semihosting::fs::File::open(name).is_ok()
    }
}

/// The file named by the semihosting argument `watch=NAME`, if given (a plain relative name of
/// at most 63 bytes; anything else is ignored: no watch).
pub fn watched_file() -> Option<WatchedFile> {
    let args = semihosting::experimental::env::args::<256>().ok()?;
    for arg in &args {
        let Some(value) = arg.ok().and_then(|a| a.strip_prefix("watch=")) else {
            continue;
        };
        let bytes = value.as_bytes();
        if bytes.is_empty() || bytes.len() >= WATCH_NAME_MAX || bytes.iter().any(|&b| b == 0 || b == b'/') {
            return None;
        }
        let mut name = [0u8; WATCH_NAME_MAX];
        name[..bytes.len()].copy_from_slice(bytes);
        return Some(WatchedFile { name });
    }
    None
}

/// Ends the emulation: QEMU exits with `code`.
pub fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}
