//! Builds bench/firmware and runs it under QEMU with `-icount shift=0`, twice; parses its
//! records (see bench/firmware/src/report.rs) and checks every figure repeated exactly.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Thumb target of every board and of the bench firmware.
pub const TARGET: &str = "thumbv7em-none-eabihf";
/// QEMU gets this long per bench run before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

/// What the bench firmware reported.
pub struct TokenFigures {
    /// Instructions per figure name (e.g. `p256.sign.cortex-m4-asm`), with the payload size.
    pub figures: BTreeMap<String, (u64, usize)>,
    /// Figures that could not be taken, with the reason.
    pub not_available: BTreeMap<String, String>,
    /// Names of failed correctness checks.
    pub checks_failed: Vec<String>,
    /// How many checks passed.
    pub checks_passed: usize,
    /// INFO records.
    pub info: BTreeMap<String, String>,
    /// Whether the second run gave exactly the same figures, and which differed.
    pub repeat_differences: Vec<String>,
    /// Whether QEMU exited 0 (every check passed, no fault).
    pub exit_ok: bool,
    /// Wall time of one run.
    pub wall: Duration,
}

/// Strips the variables an outer cargo leaks into a nested build of another workspace.
pub fn clean_cargo(cmd: &mut Command) -> &mut Command {
    for var in
        ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_MAKEFLAGS"]
    {
        cmd.env_remove(var);
    }
    cmd
}

/// `rustup target add` is idempotent; machines with RUSTUP_AUTO_INSTALL=0 need it once.
pub fn ensure_target(root: &Path) {
    let _ = Command::new("rustup")
        .current_dir(root)
        .args(["target", "add", TARGET])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs `cargo build --release` in `dir`; on failure returns the first error lines.
pub fn cargo_build_release(dir: &Path) -> Result<(), String> {
    cargo_build_release_args(dir, &["build", "--release"])
}

/// Runs `cargo ARGS` in `dir`; on failure returns the first error lines.
pub fn cargo_build_release_args(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = clean_cargo(Command::new("cargo").current_dir(dir).args(args))
        .output()
        .map_err(|e| format!("cargo: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).take(3).collect();
    Err(if first.is_empty() { "cargo build failed".into() } else { first.join(" / ") })
}

fn run_once(elf: &Path) -> Result<(String, bool, Duration), String> {
    let start = Instant::now();
    let mut child = Command::new("qemu-system-arm")
        .args(["-M", "mps2-an386", "-icount", "shift=0", "-nographic", "-monitor", "none"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("qemu-system-arm: {e}"))?;
    // Read output on threads so a chatty run cannot block on a full pipe.
    let stdout = child.stdout.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut buf = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut buf);
            buf
        })
    });
    let stderr = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut buf = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut buf);
            buf
        })
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > RUN_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("QEMU did not finish within {} s (killed)", RUN_TIMEOUT.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for QEMU: {e}")),
        }
    };
    let out = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
    let err = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    if !out.lines().any(|l| l.trim() == "DONE") {
        return Err(format!("bench firmware stopped early ({status}): {}", err.trim()));
    }
    Ok((out, status.success(), start.elapsed()))
}

/// Parses the firmware's records.
pub fn parse(output: &str) -> TokenFigures {
    let mut t = TokenFigures {
        figures: BTreeMap::new(),
        not_available: BTreeMap::new(),
        checks_failed: Vec::new(),
        checks_passed: 0,
        info: BTreeMap::new(),
        repeat_differences: Vec::new(),
        exit_ok: false,
        wall: Duration::ZERO,
    };
    for line in output.lines() {
        let mut parts = line.trim().splitn(4, ' ');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("BENCH"), Some(name), Some(n), bytes) => {
                if let Ok(n) = n.parse() {
                    let bytes = bytes.and_then(|b| b.trim().parse().ok()).unwrap_or(0);
                    t.figures.insert(name.to_string(), (n, bytes));
                }
            }
            (Some("NA"), Some(name), Some(a), b) => {
                let reason = match b {
                    Some(b) => format!("{a} {b}"),
                    None => a.to_string(),
                };
                t.not_available.insert(name.to_string(), reason);
            }
            (Some("CHECK"), Some(_), Some("pass"), _) => t.checks_passed += 1,
            (Some("CHECK"), Some(name), Some(_), _) => t.checks_failed.push(name.to_string()),
            (Some("INFO"), Some(key), Some(a), b) => {
                let value = match b {
                    Some(b) => format!("{a} {b}"),
                    None => a.to_string(),
                };
                t.info.insert(key.to_string(), value);
            }
            _ => {}
        }
    }
    t
}

/// Builds and runs the bench firmware twice.
pub fn run(root: &Path) -> Result<TokenFigures, String> {
    ensure_target(root);
    let dir = root.join("bench/firmware");
    cargo_build_release(&dir)?;
    let elf = dir.join("target").join(TARGET).join("release/pkms-bench-firmware");
    let (first, first_ok, wall) = run_once(&elf)?;
    eprintln!("[bench]   first run took {:.1} s; running again to check repeatability", wall.as_secs_f64());
    let (second, second_ok, _) = run_once(&elf)?;
    let mut figures = parse(&first);
    let again = parse(&second);
    for (name, value) in &figures.figures {
        match again.figures.get(name) {
            Some(v) if v == value => {}
            Some(v) => figures.repeat_differences.push(format!("{name}: {} then {}", value.0, v.0)),
            None => figures.repeat_differences.push(format!("{name}: missing in the second run")),
        }
    }
    figures.checks_failed.extend(again.checks_failed.iter().map(|c| format!("{c} (second run)")));
    figures.exit_ok = first_ok && second_ok;
    figures.wall = wall;
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_record_kind() {
        let out = "INFO instructions_per_tick_x1000 40000\nBENCH p256.sign.cortex-m4-asm 359480 0\n\
                   BENCH aes256gcm.encrypt.1024 231960 1024\nNA token.create_key n/a (not yet implemented: x)\n\
                   CHECK a pass ok\nCHECK b fail broken\ngarbage line\nDONE\n";
        let t = parse(out);
        assert_eq!(t.figures["p256.sign.cortex-m4-asm"], (359_480, 0));
        assert_eq!(t.figures["aes256gcm.encrypt.1024"], (231_960, 1024));
        assert_eq!(t.not_available["token.create_key"], "n/a (not yet implemented: x)");
        assert_eq!(t.checks_passed, 1);
        assert_eq!(t.checks_failed, vec!["b".to_string()]);
        assert_eq!(t.info["instructions_per_tick_x1000"], "40000");
    }

    #[test]
    fn malformed_numbers_are_skipped_not_fatal() {
        let t = parse("BENCH x notanumber 0\nBENCH y 12\n");
        assert!(!t.figures.contains_key("x"));
        assert_eq!(t.figures["y"], (12, 0));
    }
}
