//! The CLI flows against the in-process token (`--device inprocess:PATH`).

mod cli_support;

use cli_support::{flows, Env};

#[test]
fn symmetric() {
    flows::symmetric(&Env::in_process());
}

#[test]
fn rotation() {
    flows::rotation(&Env::in_process());
}

#[test]
fn signing() {
    flows::signing(&Env::in_process());
}

#[test]
fn lifecycle() {
    flows::lifecycle(&Env::in_process());
}
