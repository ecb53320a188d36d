//! Finding and stopping the QEMU of a `$PKMS_HOME`: the pid file, and a scan of /proc for any
//! process whose command line names the home's flash file (so a QEMU is found even when the pid
//! file is gone or stale, and a recycled pid is never mistaken for it).

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::process::{kill_process, Pid, Signal};

/// What the pid file records about the running token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidFile {
    /// QEMU's process id.
    pub pid: u32,
    /// [`super::firmware::Image::id`] of the image it was started from.
    pub firmware_id: String,
    /// When it was started (milliseconds since the Unix epoch in the file).
    pub started: Option<SystemTime>,
}

/// Reads `PID FIRMWARE_ID [STARTED_MS]` from `path`; `None` if missing or unreadable.
pub fn read_pid_file(path: &Path) -> Option<PidFile> {
    let text = fs::read_to_string(path).ok()?;
    let mut words = text.split_whitespace();
    let pid = words.next()?.parse().ok()?;
    let firmware_id = words.next().unwrap_or_default().to_owned();
    let started = words
        .next()
        .and_then(|w| w.parse::<u64>().ok())
        .and_then(|ms| UNIX_EPOCH.checked_add(Duration::from_millis(ms)));
    Some(PidFile { pid, firmware_id, started })
}

/// Writes the pid file (temporary file + rename).
pub fn write_pid_file(path: &Path, record: &PidFile) -> io::Result<()> {
    let tmp = path.with_extension(format!("pid.tmp-{}", std::process::id()));
    let mut text = format!("{} {}", record.pid, record.firmware_id);
    if let Some(ms) = record.started.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
        text.push_str(&format!(" {}", ms.as_millis()));
    }
    text.push('\n');
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

/// The arguments of process `pid` (empty if it is gone).
pub fn command_line(pid: u32) -> Vec<Vec<u8>> {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    cmdline.split(|&b| b == 0).filter(|a| !a.is_empty()).map(<[u8]>::to_vec).collect()
}

/// The `mem-path=` argument naming `flash`, as it appears on QEMU's command line.
pub fn mem_path_arg(flash: &Path) -> Vec<u8> {
    let mut arg = b"memory-backend-file,id=nor,size=16M,mem-path=".to_vec();
    arg.extend_from_slice(&escape_option_value(flash.as_os_str()));
    arg.extend_from_slice(b",share=on");
    arg
}

/// QEMU option values double their commas.
pub fn escape_option_value(value: &OsStr) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for &b in value.as_bytes() {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    out
}

/// Whether process `pid` is alive and is a QEMU over `flash` (zombies have no command line and
/// do not count).
pub fn is_token_process(pid: u32, flash: &Path) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let wanted = mem_path_arg(flash);
    cmdline.split(|&b| b == 0).any(|arg| arg == wanted.as_slice())
}

/// Every live process running QEMU over `flash`.
pub fn find_token_processes(flash: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != std::process::id() && is_token_process(pid, flash))
        .collect()
}

/// Sends SIGKILL to `pid` if it is a QEMU over `flash`, and waits (up to 5 s) until it is gone.
/// Returns whether it was running.
pub fn kill_token_process(pid: u32, flash: &Path) -> bool {
    if !is_token_process(pid, flash) {
        return false;
    }
    if let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(p, Signal::KILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_token_process(pid, flash) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    true
}
