//! How long one `pkms encrypt` takes, end to end (process start, connect, Hello, Encrypt,
//! output), against the QEMU token of a private `PKMS_HOME`:
//!
//! * cold: no QEMU running for the home (the call boots it);
//! * warm: the QEMU kept running by the previous call;
//!
//! and against the in-process token (flash file loaded and saved by the process).
//! Prints numbers; asserts nothing about speed. Run: `cargo bench -p pkms --bench cli_latency`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn pkms(home: &Path, device: Option<&str>, args: &[&str]) -> (Duration, Vec<u8>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pkms"));
    cmd.args(args).env("PKMS_HOME", home).env_remove("PKMS_DEVICE");
    if let Some(d) = device {
        cmd.env("PKMS_DEVICE", d);
    }
    let start = Instant::now();
    let out = cmd.output().expect("run pkms");
    let took = start.elapsed();
    assert!(out.status.success(), "pkms {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    (took, out.stdout)
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<28} n={:<3} min {:7.1} ms  median {:7.1} ms  max {:7.1} ms",
        samples.len(),
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1])
    );
}

fn main() {
    let dir = tempfile::Builder::new().prefix("pkms-bench").tempdir().expect("temporary directory");
    let home = dir.path().join("home");
    let msg = dir.path().join("msg");
    std::fs::write(&msg, b"attack at dawn").expect("write message");
    let plaintext = format!("fileb://{}", msg.display());

    let (first, out) = pkms(&home, None, &["create-key", "--query", "KeyMetadata.KeyId", "--output", "text"]);
    println!(
        "first call on a new home (creates the flash file, boots QEMU): {:.1} ms",
        first.as_secs_f64() * 1000.0
    );
    let key = String::from_utf8_lossy(&out).trim().to_owned();
    let encrypt =
        ["encrypt", "--key-id", &key, "--plaintext", &plaintext, "--encryption-context", "app=bench"];

    let mut cold = Vec::new();
    for _ in 0..5 {
        pkms_lib::launcher::kill_token(&home);
        cold.push(pkms(&home, None, &encrypt).0);
    }
    let warm: Vec<Duration> = (0..20).map(|_| pkms(&home, None, &encrypt).0).collect();
    pkms_lib::launcher::kill_token(&home);

    let device = format!("inprocess:{}", dir.path().join("flash.bin").display());
    let (_, out) =
        pkms(&home, Some(&device), &["create-key", "--query", "KeyMetadata.KeyId", "--output", "text"]);
    let key = String::from_utf8_lossy(&out).trim().to_owned();
    let encrypt = ["encrypt", "--key-id", &key, "--plaintext", &plaintext];
    let in_process: Vec<Duration> = (0..20).map(|_| pkms(&home, Some(&device), &encrypt).0).collect();

    summary("pkms encrypt, QEMU cold", cold);
    summary("pkms encrypt, QEMU warm", warm);
    summary("pkms encrypt, in-process", in_process);
}
