//! Facts about the run: date, commit, machine, tool versions.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where and on what the benchmarks ran.
pub struct Facts {
    pub date_utc: String,
    pub commit: String,
    pub cpu_model: String,
    pub cores: usize,
    pub qemu: String,
    pub rustc: String,
    /// /proc/loadavg's 1-minute figure when the run started (the machine may be shared).
    pub load: String,
}

/// The repository root (xtask's parent directory).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// First line of a command's stdout, or `None`.
pub fn first_line(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).lines().next().map(|l| l.trim().to_string())
}

pub fn facts(root: &Path) -> Facts {
    let date_utc = first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M:%S UTC"]))
        .unwrap_or_else(|| "unknown".into());
    let mut commit =
        first_line(Command::new("git").arg("-C").arg(root).args(["rev-parse", "--short=12", "HEAD"]))
            .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    if dirty {
        commit.push_str(" (with uncommitted changes)");
    }
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let qemu =
        first_line(Command::new("qemu-system-arm").arg("--version")).unwrap_or_else(|| "not found".into());
    let rustc = first_line(Command::new("rustc").arg("--version")).unwrap_or_else(|| "unknown".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    Facts { date_utc, commit, cpu_model, cores, qemu, rustc, load }
}
