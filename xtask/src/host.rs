//! Host-side throughput: the `pkms` library's file-encryption hot loop (AES-256-GCM segment
//! sealing, `pkms_lib::envelope::segments`) and SHA-256 (the sign-file hash), each beside
//! `openssl speed` taken in the same run, single core; plus the files benchmark
//! (`scripts/bench-files.sh`, else the `file_bench` example of host-cli) verbatim when the
//! repository has it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pkms_lib::envelope::format::FileKeys;
use pkms_lib::envelope::segments::SegmentCipher;
use sha2::Digest;

/// Bytes per second, or why not.
pub type Throughput = Result<f64, String>;

/// Every host-side figure.
pub struct HostFigures {
    pub pkms_aes_gcm: Throughput,
    pub openssl_aes_gcm: Throughput,
    pub pkms_sha256: Throughput,
    pub openssl_sha256: Throughput,
    pub openssl_version: String,
    /// Output of scripts/bench-files.sh, or why it is absent.
    pub files_bench: Result<String, String>,
    /// Output of the flash-store report: bytes per key and version, capacity, wear.
    pub store_report: Result<String, String>,
    /// Output of scripts/bench-kms-endpoint.sh (Markdown), or why it is absent.
    pub kms_endpoint_bench: Result<String, String>,
}

const CHUNK: usize = 64 * 1024;

fn measure_for(limit: Duration, mut step: impl FnMut() -> usize) -> f64 {
    let start = Instant::now();
    let mut bytes = 0usize;
    while start.elapsed() < limit {
        bytes += step();
    }
    bytes as f64 / start.elapsed().as_secs_f64()
}

fn pkms_aes_gcm(limit: Duration) -> Throughput {
    let keys = FileKeys::derive(&[7u8; 32], &[9u8; 32]);
    let cipher = SegmentCipher::new(&keys);
    let mut buf = vec![0x5au8; CHUNK + 16];
    let mut index = 0u32;
    let mut failed = false;
    let rate = measure_for(limit, || {
        index = index.wrapping_add(1);
        failed |= cipher.seal(index, false, &mut buf, CHUNK).is_err();
        CHUNK
    });
    if failed {
        return Err("n/a (segment sealing failed)".into());
    }
    Ok(rate)
}

fn pkms_sha256(limit: Duration) -> Throughput {
    let buf = vec![0xa5u8; CHUNK];
    let mut hasher = sha2::Sha256::new();
    let rate = measure_for(limit, || {
        hasher.update(&buf);
        CHUNK
    });
    std::hint::black_box(hasher.finalize());
    Ok(rate)
}

/// `openssl speed -evp ALG -bytes 65536 -seconds N`: the last figure, in bytes per second.
fn openssl_speed(alg: &str, seconds: u32) -> Throughput {
    let out = Command::new("openssl")
        .args(["speed", "-evp", alg, "-bytes", &CHUNK.to_string(), "-seconds", &seconds.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("n/a (openssl: {e})"))?;
    parse_openssl_speed(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| "n/a (openssl speed printed no figure)".into())
}

/// The figure of `openssl speed`'s result line (the last one; "…k" = 1000s of bytes/s).
pub fn parse_openssl_speed(text: &str) -> Option<f64> {
    let line = text.lines().rev().find(|l| l.trim_end().ends_with('k'))?;
    let figure = line.split_whitespace().last()?.strip_suffix('k')?;
    figure.parse::<f64>().ok().map(|k| k * 1000.0)
}

pub fn run(root: &Path, quick: bool) -> HostFigures {
    let limit = Duration::from_secs(if quick { 1 } else { 3 });
    let seconds = if quick { 1 } else { 3 };
    let files_bench = files_bench(root, quick);
    let store_report = store_report(root);
    let kms_endpoint_bench = kms_endpoint_bench(root, quick);
    HostFigures {
        pkms_aes_gcm: pkms_aes_gcm(limit),
        openssl_aes_gcm: openssl_speed("aes-256-gcm", seconds),
        pkms_sha256: pkms_sha256(limit),
        openssl_sha256: openssl_speed("sha256", seconds),
        openssl_version: crate::machine::first_line(Command::new("openssl").arg("version"))
            .unwrap_or_else(|| "openssl not found".into()),
        files_bench,
        store_report,
        kms_endpoint_bench,
    }
}

/// Runs the KMS endpoint benchmark (`scripts/bench-kms-endpoint.sh`: boto3 against `pkms serve`
/// on both tokens and moto_server, and the endpoint's overhead). Its Markdown, or why not.
pub fn kms_endpoint_bench(root: &Path, quick: bool) -> Result<String, String> {
    let script = root.join("scripts/bench-kms-endpoint.sh");
    if !script.exists() {
        return Err("n/a (scripts/bench-kms-endpoint.sh is not present)".into());
    }
    let mut cmd = Command::new("bash");
    cmd.arg(&script);
    if quick {
        cmd.env("PKMS_BENCH_KMS_REQUESTS", "100");
    }
    run_report(root, "scripts/bench-kms-endpoint.sh", cmd)
}

/// Runs the files benchmark: `scripts/bench-files.sh` if present, else `cargo run --release -p
/// pkms --example file_bench` (1 GiB; 64 MiB with `--quick`). Its stdout, or why not.
fn files_bench(root: &Path, quick: bool) -> Result<String, String> {
    let script = root.join("scripts/bench-files.sh");
    let (what, cmd) = if script.exists() {
        let mut cmd = Command::new("bash");
        cmd.arg(&script);
        ("scripts/bench-files.sh", cmd)
    } else if root.join("host-cli/examples/file_bench.rs").exists() {
        let mut cmd = Command::new("cargo");
        crate::firmware::clean_cargo(&mut cmd).args([
            "run",
            "--release",
            "-q",
            "-p",
            "pkms",
            "--example",
            "file_bench",
        ]);
        if quick {
            cmd.env("PKMS_BENCH_BYTES", "64M");
        }
        ("the file_bench example", cmd)
    } else {
        return Err("n/a (the files benchmark is not present)".into());
    };
    run_report(root, what, cmd)
}

/// Runs the flash-store report of the token core (`cargo run --release -p pkms-firmware --example
/// store_report --features std`): flash bytes per key and per version, how many fit in the QEMU
/// and nRF52840 regions, and page wear after 10,000 rotations. Its stdout, or why not.
fn store_report(root: &Path) -> Result<String, String> {
    let mut cmd = Command::new("cargo");
    crate::firmware::clean_cargo(&mut cmd).args([
        "run",
        "--release",
        "-q",
        "-p",
        "pkms-firmware",
        "--features",
        "std",
        "--example",
        "store_report",
    ]);
    run_report(root, "the store_report example", cmd)
}

/// Runs `cmd` in `root` and returns "WHAT:\n\nSTDOUT", or why it could not.
fn run_report(root: &Path, what: &str, mut cmd: Command) -> Result<String, String> {
    eprintln!("[bench]   running {what}");
    match cmd.current_dir(root).stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => Ok(format!("{what}:\n\n{}", String::from_utf8_lossy(&out.stdout))),
        Ok(out) => Err(format!(
            "n/a ({what} failed: {})",
            String::from_utf8_lossy(&out.stderr).lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
        )),
        Err(e) => Err(format!("n/a ({what}: {e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openssl3_speed_output() {
        let text = "Doing AES-256-GCM ops for 1s on 65536 size blocks: 60000 AES-256-GCM ops in 1.00s\n\
                    version: 3.0.11\nThe 'numbers' are in 1000s of bytes per second processed.\n\
                    type          65536 bytes\nAES-256-GCM    3932160.00k\n";
        assert_eq!(parse_openssl_speed(text), Some(3_932_160_000.0));
        assert_eq!(parse_openssl_speed("no figures here\n"), None);
    }
}
