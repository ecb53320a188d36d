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
fn key_specs() {
    flows::key_specs(&Env::in_process());
}

#[test]
fn lifecycle() {
    flows::lifecycle(&Env::in_process());
}

#[test]
fn output_options_are_checked() {
    let env = Env::in_process();
    let e = env.fails(&["generate-random", "--number-of-bytes", "4", "--output", "pem"], 252);
    assert!(e.contains("get-public-key"), "{e}");
    let e = env.fails(&["list-keys", "--query", "Keys[x]"], 252);
    assert!(e.contains("Keys[x]"), "{e}");
    // A missing field is null, as JMESPath has it.
    let out = env.run(&["generate-random", "--number-of-bytes", "4", "--query", "Nope", "--output", "text"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "None\n");
}

#[test]
fn kms_shapes() {
    flows::kms_shapes(&Env::in_process());
}
