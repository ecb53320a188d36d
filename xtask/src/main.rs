//! Project tasks. `cargo run --release -p xtask -- bench` (what `scripts/bench.sh` runs):
//!
//! 1. builds the bench firmware (bench/firmware) and runs it twice under
//!    `qemu-system-arm -M mps2-an386 -icount shift=0`: instruction counts per operation, checked
//!    to repeat exactly, and the on-target P-256 backend cross-check (a failed check fails the run);
//! 2. through the protocol, over the QEMU token's packet link and its UART in the same run:
//!    ops/s and p50/p99 latency of GetInfo, Encrypt (32 B and 4 KiB), Sign (digest) and
//!    GenerateDataKey (`pkms_lib`), the protocol overhead; whole `pkms` processes: the cold start
//!    of `pkms encrypt` (median of several), warm `pkms encrypt`, and warm `pkms
//!    generate-data-key` against `openssl rand -hex 32`;
//! 3. host side: the `pkms` library's AES-256-GCM segment throughput and SHA-256 beside
//!    `openssl speed` taken in the same run, and the files benchmark (`scripts/bench-files.sh`)
//!    when present;
//! 4. firmware image size (flash, RAM) of every board;
//!
//! then prints one table and writes BENCHMARKS.md. Nothing fails for being slow: goals are shown
//! beside the figures. Options: `--quick` (fewer protocol iterations), `--out PATH`, and
//! `--only protocol`: step 2 alone (with the one bench firmware run under `-icount` that gives
//! the in-token cost the overhead subtracts), its rows printed and written to `--out` (default
//! `target/bench-protocol.md`, never BENCHMARKS.md); `--only kms-endpoint`: the KMS endpoint
//! benchmark alone (`scripts/bench-kms-endpoint.sh`), its section of BENCHMARKS.md (or `--out`)
//! replaced in place; `--only sign-files`: `pkms sign-file --format ssh` of 100 files (10 with
//! `--quick`) in one command, printed only.

mod backup;
mod elf;
mod firmware;
mod host;
mod machine;
mod protocol;
mod render;
mod sigformats;
mod sizes;

use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo run --release -p xtask -- bench [--quick] [--only protocol|kms-endpoint|backup|sign-files] [--out BENCHMARKS.md]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("bench") {
        return usage();
    }
    let mut quick = false;
    let mut out = None;
    let mut only_protocol = false;
    let mut only_kms_endpoint = false;
    let mut only_backup = false;
    let mut only_sign_files = false;
    let mut rest = args[1..].iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--only" => match rest.next().map(String::as_str) {
                Some("protocol") => only_protocol = true,
                Some("kms-endpoint") => only_kms_endpoint = true,
                Some("backup") => only_backup = true,
                Some("sign-files") => only_sign_files = true,
                _ => return usage(),
            },
            "--out" => match rest.next() {
                Some(p) => out = Some(PathBuf::from(p)),
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    let root = machine::repo_root();
    if only_backup {
        // Printed only: the full run writes these rows into BENCHMARKS.md.
        eprintln!("[bench] backup export and restore between two QEMU tokens");
        let figures = backup::measure();
        println!("{}", render::backup_table(&figures));
        return if figures.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    if only_sign_files {
        // Printed only: the full run writes these rows into BENCHMARKS.md.
        eprintln!("[bench] signing files in the formats other verifiers read");
        let (ssh, openpgp) = match protocol::pkms_binary(&root) {
            Ok(pkms) if quick => (
                sigformats::sign_files(&pkms, "ssh", "ECC_NIST_P256", "sig", 10),
                sigformats::sign_files(&pkms, "openpgp", "ECC_NIST_P256", "asc", 10),
            ),
            Ok(pkms) => (protocol::ssh_sign_files(&pkms), protocol::openpgp_sign_files(&pkms)),
            Err(e) => (Err(e.clone()), Err(e)),
        };
        println!("{}", render::sign_files_table(&ssh, &openpgp));
        let figures = ssh.and(openpgp);
        return if figures.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    if only_protocol {
        return protocol_only(&root, quick, out.unwrap_or_else(|| root.join("target/bench-protocol.md")));
    }
    let out = out.unwrap_or_else(|| root.join("BENCHMARKS.md"));
    if only_kms_endpoint {
        return kms_endpoint_only(&root, quick, out);
    }

    eprintln!("[bench] machine facts");
    let facts = machine::facts(&root);
    eprintln!("[bench] on-token instruction counts (bench firmware under QEMU -icount, run twice)");
    let token = firmware::run(&root);
    eprintln!("[bench] through the protocol (QEMU token over its socket)");
    let proto = protocol::run(&root, quick, token.as_ref().ok());
    eprintln!("[bench] host side (pkms library vs openssl speed)");
    let host = host::run(&root, quick);
    eprintln!("[bench] firmware image sizes");
    let sizes = sizes::run(&root);

    let report = render::Report { facts, token: &token, proto: &proto, host: &host, sizes: &sizes };
    let table = render::table(&report);
    println!("{table}");
    let markdown = render::markdown(&report, &table);
    if let Err(e) = std::fs::write(&out, markdown) {
        eprintln!("[bench] could not write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    eprintln!("[bench] wrote {}", out.display());
    match &token {
        Ok(t) if t.checks_failed.is_empty() && t.exit_ok => ExitCode::SUCCESS,
        Ok(t) => {
            eprintln!("[bench] FAILED correctness checks on the token: {:?}", t.checks_failed);
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("[bench] FAILED: the bench firmware did not run: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `bench --only kms-endpoint`: the KMS endpoint benchmark alone, its section of `out` replaced.
fn kms_endpoint_only(root: &std::path::Path, quick: bool, out: PathBuf) -> ExitCode {
    eprintln!("[bench] the KMS endpoint (scripts/bench-kms-endpoint.sh)");
    let report = host::kms_endpoint_bench(root, quick);
    let section = render::kms_endpoint_section(&report);
    println!("{section}");
    let document = std::fs::read_to_string(&out).unwrap_or_default();
    if let Err(e) = std::fs::write(&out, render::replace_kms_endpoint_section(&document, &section)) {
        eprintln!("[bench] could not write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    eprintln!("[bench] wrote {}", out.display());
    if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `bench --only protocol`: the through-the-protocol figures alone, with the in-token Encrypt
/// cost from one bench firmware run under `-icount`.
fn protocol_only(root: &std::path::Path, quick: bool, out: PathBuf) -> ExitCode {
    eprintln!("[bench] in-token cost (bench firmware once, under -icount)");
    let token = protocol::in_token_figures(root);
    if let Err(e) = &token {
        eprintln!("[bench]   not available: {e}");
    }
    eprintln!("[bench] through the protocol (QEMU token over its socket)");
    let proto = protocol::run(root, quick, token.as_ref().ok());
    let table = render::protocol_table(&proto);
    println!("{table}");
    if let Err(e) = std::fs::write(&out, format!("# Through the protocol (bench --only protocol)\n\n{table}"))
    {
        eprintln!("[bench] could not write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    eprintln!("[bench] wrote {}", out.display());
    ExitCode::SUCCESS
}
