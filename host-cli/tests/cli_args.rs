//! The `pkms` binary's argument handling, help and completions: nothing here needs a token
//! (the device points nowhere, so a command that tried to connect would fail differently).

mod cli_support;

use cli_support::{fake_usb_tokens, Env};

fn nowhere(env: &Env, args: &[&str]) -> std::process::Output {
    env.command(args).env("PKMS_DEVICE", "unix:/nonexistent/pkms.sock").output().expect("run pkms")
}

#[test]
fn plaintext_over_4096_bytes_names_the_limit_and_encrypt_file() {
    let env = Env::in_process();
    let big = env.fileb("big", &[0u8; 4097]);
    let out = nowhere(&env, &["encrypt", "--key-id", "alias/x", "--plaintext", &big]);
    assert_eq!(out.status.code(), Some(252), "a local validation error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(cli_support::error_type(&stderr), "ValidationException");
    assert!(stderr.contains("4096") && stderr.contains("pkms encrypt-file"), "{stderr}");
    assert!(stderr.contains("4097"), "{stderr}");
    // Text mode: aws-cli's sentence, naming the operation.
    let out = nowhere(&env, &["encrypt", "--key-id", "k", "--plaintext", &big, "--output", "text"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("An error occurred (ValidationException) when calling the Encrypt operation"),
        "{stderr}"
    );
}

#[test]
fn bad_blob_arguments_are_refused_with_what_to_do() {
    let env = Env::in_process();
    let out = nowhere(&env, &["encrypt", "--key-id", "k", "--plaintext", "not base64!"]);
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--plaintext") && stderr.contains("fileb://"), "{stderr}");
    let out = nowhere(&env, &["decrypt", "--ciphertext-blob", "fileb:///no/such/file"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file"));
    let out = nowhere(&env, &["decrypt", "--ciphertext-blob", "AAAA", "--encryption-context", "novalue"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEY=VALUE"));
    let out = nowhere(&env, &["create-key", "--key-spec", "RSA_2048"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ECC_NIST_P256"), "possible values are listed");
    let out = nowhere(&env, &["encrypt", "--key-id", "k", "--plaintext", "AA==", "--device", "bogus"]);
    assert_eq!(out.status.code(), Some(252));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tcp:HOST:PORT"));
}

#[test]
fn empty_pkms_device_means_the_default_token() {
    // The default (QEMU of PKMS_HOME) is used: point it at a QEMU that does not exist, so the
    // launcher's error (not a --device parse error) comes back.
    let env = Env::in_process();
    let out =
        env.command(&["info"]).env("PKMS_DEVICE", "").env("PKMS_QEMU", "/nonexistent/qemu").output().unwrap();
    assert_eq!(out.status.code(), Some(255));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("not a device"), "{stderr}");
}

#[test]
fn a_data_key_needs_a_key_spec_or_a_byte_count() {
    let env = Env::in_process();
    for op in ["generate-data-key", "generate-data-key-without-plaintext"] {
        let out = nowhere(&env, &[op, "--key-id", "alias/x"]);
        assert_eq!(out.status.code(), Some(252), "a local validation error");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(cli_support::error_type(&stderr), "ValidationException");
        assert!(stderr.contains("--key-spec") && stderr.contains("--number-of-bytes"), "{stderr}");
    }
}

#[test]
fn duplicate_context_keys_are_refused_before_connecting() {
    let env = Env::in_process();
    let out = nowhere(
        &env,
        &[
            "decrypt",
            "--ciphertext-blob",
            "AAAA",
            "--encryption-context",
            "a=1",
            "--encryption-context",
            "a=2",
        ],
    );
    assert_eq!(out.status.code(), Some(252));
    assert!(String::from_utf8_lossy(&out.stderr).contains("given twice"));
}

#[test]
fn unreachable_device_is_a_link_error_with_a_hint() {
    let env = Env::in_process();
    let out = nowhere(&env, &["info"]);
    assert_eq!(out.status.code(), Some(255));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(cli_support::error_type(&stderr), "ConnectionError");
    assert!(stderr.contains("/nonexistent/pkms.sock") && stderr.contains("PKMS_DEVICE"), "{stderr}");
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    let env = Env::in_process();
    let out = env.run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let subcommands = [
        "info",
        "create-key",
        "describe-key",
        "list-keys",
        "encrypt",
        "decrypt",
        "re-encrypt",
        "generate-data-key",
        "generate-data-key-without-plaintext",
        "generate-random",
        "enable-key-rotation",
        "disable-key-rotation",
        "get-key-rotation-status",
        "rotate-key-on-demand",
        "list-key-rotations",
        "retire-key-versions",
        "sign",
        "verify",
        "get-public-key",
        "generate-mac",
        "verify-mac",
        "enable-key",
        "disable-key",
        "schedule-key-deletion",
        "cancel-key-deletion",
        "create-alias",
        "update-alias",
        "delete-alias",
        "list-aliases",
        "update-key-description",
        "tag-resource",
        "untag-resource",
        "list-resource-tags",
        "completions",
    ];
    for sub in subcommands {
        assert!(help.contains(sub), "pkms --help lists {sub}");
        let out = env.run(&[sub, "--help"]);
        assert!(out.status.success(), "{sub} --help");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Example") && text.contains(&format!("pkms {sub}")),
            "{sub} --help shows an example"
        );
    }
}

#[test]
fn completions_for_each_shell() {
    let env = Env::in_process();
    for shell in ["bash", "zsh", "fish"] {
        let out = env.run(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("pkms") && script.contains("encrypt"),
            "{shell} completion mentions commands"
        );
    }
    assert_eq!(env.run(&["completions", "tcsh"]).status.code(), Some(2));
}

/// `pkms ARGS` with neither --device, PKMS_DEVICE nor PKMS_HOME (the home is the default one
/// under a private XDG_DATA_HOME), and the fake sysfs `sysfs`.
fn no_device_no_home(env: &Env, sysfs: &std::path::Path, args: &[&str]) -> std::process::Output {
    env.command(args)
        .env_remove("PKMS_DEVICE")
        .env_remove("PKMS_HOME")
        .env("XDG_DATA_HOME", env.file("data"))
        .env("PKMS_USB_SYSFS", sysfs)
        .output()
        .unwrap()
}

#[test]
fn one_plugged_in_usb_token_is_the_default_device() {
    let env = Env::in_process();
    let sysfs = env.file("sysfs");
    fake_usb_tokens(&sysfs, &["ttyACM3"]);
    let out = no_device_no_home(&env, &sysfs, &["info"]);
    assert_eq!(out.status.code(), Some(255));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&sysfs.join("dev/ttyACM3").display().to_string()),
        "pkms opened the USB token: {stderr}"
    );
    assert!(!env.file("data/pkms/token.flash").exists(), "no QEMU token was started");
}

#[test]
fn several_plugged_in_usb_tokens_ask_for_a_choice() {
    let env = Env::in_process();
    let sysfs = env.file("sysfs");
    fake_usb_tokens(&sysfs, &["ttyACM0", "ttyACM1"]);
    let out = no_device_no_home(&env, &sysfs, &["info"]);
    assert_eq!(out.status.code(), Some(255));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 Pocket KMS tokens") && stderr.contains("--device"), "{stderr}");
    assert!(stderr.contains("ttyACM0") && stderr.contains("ttyACM1"), "{stderr}");
    // Naming one with --device picks it.
    let port = sysfs.join("dev/ttyACM1").display().to_string();
    let out = env.command(&["info", "--device", &port]).env("PKMS_USB_SYSFS", &sysfs).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains(&port));
}
