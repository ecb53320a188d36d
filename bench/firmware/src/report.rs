//! The output protocol read by the runner (xtask), one record per line over semihosting stdout:
//!
//! * `BENCH <name> <instructions> <bytes>`: one figure (`bytes` is the payload size for per-byte
//!   figures, 0 otherwise);
//! * `STACK <name> <bytes>`: the peak stack of the operation of the `BENCH` record of that name;
//! * `NA <name> <reason…>`: a figure that could not be taken (e.g. an operation the token core
//!   does not implement yet);
//! * `CHECK <name> pass|fail <detail…>`: a correctness check (the runner fails on `fail`);
//! * `INFO <key> <value…>`; and finally `DONE`.

use semihosting::println;

/// One figure.
pub fn bench(name: &str, instructions: u64, bytes: usize) {
    println!("BENCH {name} {instructions} {bytes}");
}

/// The peak stack of the figure `name`.
pub fn stack(name: &str, bytes: usize) {
    println!("STACK {name} {bytes}");
}

/// A figure that could not be taken, and why.
pub fn not_available(name: &str, reason: &str) {
    println!("NA {name} {reason}");
}

/// A correctness check; returns `ok`.
pub fn check(name: &str, ok: bool, detail: &str) -> bool {
    println!("CHECK {name} {} {detail}", if ok { "pass" } else { "fail" });
    ok
}

/// Free-form facts (calibration, backend names).
pub fn info(key: &str, value: core::fmt::Arguments<'_>) {
    println!("INFO {key} {value}");
}
