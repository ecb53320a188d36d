//! What the `pkms` binary does with the host it runs on: inputs read only as far as the
//! operation needs, a private PKMS_HOME, and a PUK that never appears on the command line.

mod cli_support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use cli_support::{error_type, field, Env};

fn nowhere(env: &Env, args: &[&str]) -> Command {
    let mut cmd = env.command(args);
    cmd.env("PKMS_DEVICE", "unix:/nonexistent/pkms.sock");
    cmd
}

/// Runs `cmd` with its address space limited to 1 GiB: an input read without a bound fails
/// (or is killed) instead of taking the machine's memory.
fn limited(cmd: &Command) -> Output {
    let mut sh = Command::new("sh");
    sh.arg("-c").arg("ulimit -v 1048576; exec \"$0\" \"$@\"").arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh.stdin(Stdio::null()).output().expect("run pkms")
}

#[test]
fn fileb_inputs_are_read_only_up_to_the_operations_limit() {
    let env = Env::in_process();
    for (args, field, limit) in [
        (&["encrypt", "--key-id", "k", "--plaintext", "fileb:///dev/zero"][..], "Plaintext", "4096"),
        (&["decrypt", "--ciphertext-blob", "fileb:///dev/zero"][..], "CiphertextBlob", "6144"),
        (
            &["re-encrypt", "--ciphertext-blob", "fileb:///dev/zero", "--destination-key-id", "k"][..],
            "CiphertextBlob",
            "6144",
        ),
        (
            &[
                "sign",
                "--key-id",
                "k",
                "--message",
                "fileb:///dev/zero",
                "--message-type",
                "RAW",
                "--signing-algorithm",
                "ECDSA_SHA_256",
            ][..],
            "Message",
            "4096",
        ),
        (
            &[
                "verify",
                "--key-id",
                "k",
                "--message",
                "AA==",
                "--signature",
                "fileb:///dev/zero",
                "--signing-algorithm",
                "ECDSA_SHA_256",
            ][..],
            "Signature",
            "6144",
        ),
        (
            &[
                "generate-mac",
                "--key-id",
                "k",
                "--message",
                "fileb:///dev/zero",
                "--mac-algorithm",
                "HMAC_SHA_256",
            ][..],
            "Message",
            "4096",
        ),
        (
            &[
                "verify-mac",
                "--key-id",
                "k",
                "--message",
                "AA==",
                "--mac",
                "fileb:///dev/zero",
                "--mac-algorithm",
                "HMAC_SHA_256",
            ][..],
            "Mac",
            "256",
        ),
    ] {
        let out = limited(&nowhere(&env, args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(252), "{args:?}: {stderr}");
        assert_eq!(error_type(&stderr), "ValidationException");
        assert!(
            stderr.contains(field) && stderr.contains(&format!("more than {limit} bytes")),
            "{args:?}: {stderr}"
        );
    }
    // An input at the limit is read whole and sent (here: to a token that is not there).
    let m = env.fileb("m", &[7u8; 4096]);
    let out = limited(&nowhere(&env, &["encrypt", "--key-id", "k", "--plaintext", &m]));
    assert_eq!(out.status.code(), Some(255), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn pkms_home_is_created_private_and_a_writable_one_is_refused() {
    let env = Env::in_process();
    let home = env.home();
    assert!(!home.exists());
    let out = env.run(&["list-keys"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::metadata(&home).unwrap().permissions().mode() & 0o777, 0o700);
    for mode in [0o777, 0o775, 0o757] {
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(mode)).unwrap();
        let stderr = env.fails(&["list-keys"], 252);
        assert!(stderr.contains(&home.display().to_string()), "{stderr}");
        assert!(stderr.contains(&format!("chmod 700 {}", home.display())), "{stderr}");
    }
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o750)).unwrap();
    assert!(env.run(&["list-keys"]).status.success());
}

#[test]
fn the_puk_never_comes_from_the_command_line() {
    let env = Env::in_process();
    let run = |vars: &[(&str, &str)], args: &[&str]| {
        let mut cmd = env.command(args);
        for v in ["PKMS_PIN", "PKMS_PUK", "PKMS_NEW_PIN"] {
            cmd.env_remove(v);
        }
        cmd.envs(vars.iter().copied()).stdin(Stdio::null()).output().expect("run pkms")
    };
    for args in [
        &["init", "--puk", "recover-1234"][..],
        &["init", "--puk=recover-1234"],
        &["init", "--puk"],
        &["unblock-pin", "--for", "admin", "--puk", "recover-1234"],
    ] {
        let out = run(&[("PKMS_PIN", "246810"), ("PKMS_NEW_PIN", "135790")], args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(252), "{args:?}: {stderr}");
        for alternative in ["PKMS_PUK", "--puk-file", "prompt", "ps"] {
            assert!(stderr.contains(alternative), "{args:?}: {stderr}");
        }
    }
    // Nothing happened: the token is still open.
    let info = env.json(&["info"]);
    assert_eq!(field(&info, "Initialized"), "false", "{info}");
    // From a file (first line), and from PKMS_PUK.
    let puk_file = env.file("puk");
    std::fs::write(&puk_file, "recover-1234\n").unwrap();
    let out = run(&[("PKMS_PIN", "246810")], &["init", "--puk-file", puk_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(printed.get("Puk").is_none(), "a given PUK is not printed");
    let out = run(
        &[("PKMS_NEW_PIN", "135790")],
        &["unblock-pin", "--for", "admin", "--puk-file", puk_file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        run(&[("PKMS_PUK", "recover-1234"), ("PKMS_NEW_PIN", "246810")], &["unblock-pin", "--for", "admin"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(run(&[("PKMS_PIN", "246810")], &["list-keys"]).status.success());
}
