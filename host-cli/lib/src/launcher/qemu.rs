//! The QEMU command line of the token and starting it.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::process::{escape_option_value, mem_path_arg};
use super::{LaunchError, LaunchOptions, Link, TokenPaths};

/// Where `qemu-system-arm` is to be found: `program` itself if it names a path, else the first
/// match on `PATH`.
pub fn resolve_program(program: &Path) -> Result<PathBuf, LaunchError> {
    let missing = || LaunchError::QemuMissing { program: program.to_path_buf() };
    if program.components().count() > 1 {
        return if program.is_file() { Ok(program.to_path_buf()) } else { Err(missing()) };
    }
    let path = std::env::var_os("PATH").ok_or_else(missing)?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file()).ok_or_else(missing)
}

/// The arguments after the program name. The flash file path (and so `$PKMS_HOME`) is on the
/// command line, which is how a home's QEMU is found again (`pgrep -f "$PKMS_HOME"` too). Both
/// links are given: UART0 on `token.sock` and the LAN9118 on `token-net.sock` (QEMU 7.2 takes
/// `-netdev stream` with `-net nic`; `-nic stream,…` fails there). The boot seed file is placed
/// in guest RAM by the generic loader ([`super::seed`]); `-no-reboot` makes a guest reset end
/// QEMU rather than run the firmware again over the same seed. Semihosting stays for the idle
/// timeout argument, the watched file (`watch=token.flash`: the firmware ends QEMU once the
/// home that holds it is removed or replaced), the exit codes and the defmt log. `-accel` sizes
/// TCG's translation buffer ([`ACCEL`]).
pub fn arguments(paths: &TokenPaths, opts: &LaunchOptions) -> Vec<OsString> {
    let mut socket = b"socket,id=uart0,server=on,wait=off,path=".to_vec();
    socket.extend_from_slice(&escape_option_value(paths.socket.as_os_str()));
    let mut netdev = NETDEV_PREFIX.as_bytes().to_vec();
    netdev.extend_from_slice(&escape_option_value(paths.net_socket.as_os_str()));
    let idle_secs = opts.idle_timeout.as_secs();
    // watch=: the firmware ends QEMU when the flash file, looked up in QEMU's working
    // directory (the home), is gone: a removed or replaced home leaves no QEMU behind.
    let watched = paths.flash.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let semihosting =
        format!("enable=on,target=native,arg=pkms-token,{IDLE_ARG}{idle_secs},arg=watch={watched}");
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |a: &str| args.push(a.into());
    push("-M");
    push("mps2-an386,memory-backend=nor");
    push("-object");
    args.push(OsString::from_vec(mem_path_arg(&paths.flash)));
    args.push("-kernel".into());
    args.push(paths.firmware.clone().into_os_string());
    for a in ["-nographic", "-monitor", "none", "-serial", "chardev:uart0", "-chardev"] {
        args.push(a.into());
    }
    args.push(OsString::from_vec(socket));
    args.push("-netdev".into());
    args.push(OsString::from_vec(netdev));
    args.push("-net".into());
    args.push("nic,netdev=n0,model=lan9118".into());
    args.push("-device".into());
    args.push(OsString::from_vec(super::seed::loader_device(&paths.seed)));
    args.push("-no-reboot".into());
    args.push("-accel".into());
    args.push(ACCEL.into());
    args.push("-semihosting-config".into());
    args.push(semihosting.into());
    args
}

/// TCG with a 64 MiB translation buffer instead of QEMU's 1 GiB default. QEMU asks for
/// transparent huge pages on that buffer and the kernel zeroes each 2 MiB page it touches
/// (QEMU 7.2: about 17 ms of a cold start's CPU went to `clear_page`, measured with `perf`);
/// 64 MiB holds the translation of the whole firmware many times over (its code is under 1 MiB),
/// so nothing is ever flushed.
pub const ACCEL: &str = "tcg,tb-size=64";

/// The start of the `-netdev` value; the socket path follows.
const NETDEV_PREFIX: &str = "stream,id=n0,server=on,addr.type=unix,addr.path=";
/// The semihosting argument that gives the firmware its idle timeout.
const IDLE_ARG: &str = "arg=idle_secs=";

/// The idle timeout in seconds a QEMU argument gives, if it is the semihosting configuration.
pub fn idle_secs_in(arg: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(arg).ok()?;
    let at = text.find(IDLE_ARG)? + IDLE_ARG.len();
    let digits: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Whether a QEMU argument is the one that gives the token `link`.
pub fn serves(arg: &[u8], link: Link) -> bool {
    match link {
        Link::Ethernet => arg.starts_with(NETDEV_PREFIX.as_bytes()),
        Link::Uart => arg == b"chardev:uart0",
    }
}

/// How the QEMU process relates to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In a session of its own (`setsid`), so it outlives the caller and no terminal signal
    /// reaches it; kept warm until its idle timeout.
    Detached,
    /// A plain child of the caller (tests), killed by its owner.
    Foreground,
}

/// Starts QEMU: stdin from /dev/null, stdout and stderr (QEMU's messages and the firmware's
/// defmt log over semihosting) appended to the log file. The socket appears shortly after.
pub fn spawn(paths: &TokenPaths, opts: &LaunchOptions, mode: Mode) -> Result<Child, LaunchError> {
    let program = resolve_program(&opts.qemu)?;
    let log =
        open_log(&paths.log).map_err(|e| LaunchError::io(format!("open {}", paths.log.display()), e))?;
    let log2 = log.try_clone().map_err(|e| LaunchError::io("duplicate the log file handle", e))?;
    let setsid = ["/usr/bin/setsid", "/bin/setsid"].into_iter().map(Path::new).find(|p| p.is_file());
    let mut cmd = match (mode, setsid) {
        (Mode::Detached, Some(setsid)) => {
            // setsid(1) execs in place (the caller's child is no group leader), so the child's
            // pid is QEMU's.
            let mut cmd = Command::new(setsid);
            cmd.arg(&program);
            cmd
        }
        (Mode::Detached, None) => {
            let mut cmd = Command::new(&program);
            cmd.process_group(0);
            cmd
        }
        (Mode::Foreground, _) => Command::new(&program),
    };
    cmd.args(arguments(paths, opts)).current_dir(&paths.home).stdin(Stdio::null()).stdout(log).stderr(log2);
    let _ = fs::remove_file(&paths.socket);
    let _ = fs::remove_file(&paths.net_socket);
    cmd.spawn().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => LaunchError::QemuMissing { program: program.clone() },
        _ => LaunchError::io(format!("start {}", program.display()), e),
    })
}

/// Keeps the log from growing without bound: emptied at a start once it passes this size.
const LOG_LIMIT: u64 = 1 << 20;

fn open_log(path: &Path) -> io::Result<File> {
    let too_big = fs::metadata(path).map(|m| m.len() > LOG_LIMIT).unwrap_or(false);
    let mut options = OpenOptions::new();
    if too_big {
        options.write(true).create(true).truncate(true);
    } else {
        options.append(true).create(true);
    }
    options.open(path)
}

/// The last lines of the log as text (QEMU's own messages; the binary defmt frames are dropped),
/// for error messages.
pub fn log_tail(path: &Path) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    let start = bytes.len().saturating_sub(2048);
    let text: String = String::from_utf8_lossy(&bytes[start..])
        .chars()
        .filter(|c| *c == '\n' || (!c.is_control() && *c != '\u{fffd}'))
        .collect();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_gets_a_small_translation_buffer() {
        let paths = TokenPaths::new(Path::new("/tmp/pkms-home"));
        let args = arguments(&paths, &LaunchOptions::default());
        let at = args.iter().position(|a| a == "-accel").expect("-accel is given");
        assert_eq!(args.get(at + 1).and_then(|a| a.to_str()), Some("tcg,tb-size=64"));
    }
}
