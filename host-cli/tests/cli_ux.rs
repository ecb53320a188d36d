//! The CLI never surprises: a refused `--query` changes nothing, aws cli habits (`--output
//! table`, `--debug`, `--no-cli-pager`), explicit token selection, signing keys that rotate only
//! on request, one exit status per outcome, confirmation before erasing, a PUK that cannot be
//! lost. The `pkms` binary against the in-process token (QEMU only where the launcher matters,
//! and then with no QEMU started).

mod cli_support;

use std::os::unix::fs::PermissionsExt;

use cli_support::{error_type, fake_usb_tokens, field, Env};
use serde_json::Value;

fn key_count(env: &Env) -> usize {
    env.json(&["list-keys"])["Keys"].as_array().map_or(0, Vec::len)
}

fn signing_key(env: &Env) -> String {
    field(
        &env.json(&["create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"]),
        "KeyMetadata.KeyId",
    )
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("file exists").permissions().mode() & 0o777
}

#[test]
fn a_refused_query_is_refused_before_anything_is_sent() {
    let env = Env::in_process();
    let before = key_count(&env);
    for bad in ["KeyMetadata.[KeyId", "nosuchfunction(KeyMetadata)", "KeyMetadata.{a KeyId}", "Keys[x]"] {
        let e = env.fails(&["create-key", "--query", bad, "--output", "text"], 252);
        assert_eq!(error_type(&env.fails(&["create-key", "--query", bad], 252)), "ValidationException");
        assert!(e.contains("--query"), "{bad}: {e}");
    }
    assert_eq!(key_count(&env), before, "no key was created by a command whose --query was refused");
    // What JMESPath has, pkms evaluates (the aws cli's language, not a subset).
    let out = env.json(&["create-key", "--query", "KeyMetadata.{Id: KeyId, Spec: KeySpec}"]);
    let keys: Vec<&String> = out.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["Id", "Spec"], "a multi-select hash keeps its order");
    assert_eq!(out["Spec"], "SYMMETRIC_DEFAULT");
    let n = env.run(&["list-keys", "--query", "length(Keys)", "--output", "text"]);
    assert_eq!(String::from_utf8_lossy(&n.stdout).trim(), (before + 1).to_string());
    let ids = env.run(&["create-key", "--query", "KeyMetadata.[KeyId]", "--output", "text"]);
    assert!(ids.status.success());
    assert_eq!(String::from_utf8_lossy(&ids.stdout).trim().len(), 36, "the new key's id is printed");
}

#[test]
fn aws_cli_habits_table_debug_and_no_pager() {
    let env = Env::in_process();
    let key = field(&env.json(&["create-key", "--description", "tabled"]), "KeyMetadata.KeyId");
    let out = env.run(&["list-keys", "--output", "table", "--no-cli-pager"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("---") && lines[1].contains("ListKeys"), "{table}");
    assert!(table.contains(&key) && table.contains("KeyArn"), "{table}");
    let width = lines[0].chars().count();
    assert!(lines.iter().all(|l| l.chars().count() == width), "every line is as wide: {table}");
    let out = env.run(&["describe-key", "--key-id", &key, "--output", "table"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("DescribeKey") && table.contains("tabled"), "{table}");

    let out = env.run(&["--debug", "describe-key", "--key-id", &key]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("debug: token: the in-process token of"), "{stderr}");
    assert!(stderr.contains("debug: request") && stderr.contains("DescribeKey"), "{stderr}");
    assert!(stderr.contains("DescribeKey ok"), "the answer is shown: {stderr}");
    let plain = env.run(&["describe-key", "--key-id", &key]);
    assert!(!String::from_utf8_lossy(&plain.stderr).contains("debug:"), "only with --debug");
}

#[test]
fn info_says_which_token_answered() {
    let env = Env::in_process();
    let info = env.json(&["info"]);
    assert!(field(&info, "Token").starts_with("the in-process token of "), "{info}");
    let text = env.run(&["factory-reset"]);
    assert_eq!(text.status.code(), Some(252));
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert!(stderr.contains("the in-process token of") && stderr.contains("--yes"), "{stderr}");
}

#[test]
fn pkms_home_and_device_qemu_choose_the_qemu_token_over_a_usb_token() {
    // A USB token is plugged in; PKMS_QEMU points nowhere, so choosing the QEMU token shows as
    // the launcher's error (no QEMU is started), choosing the USB token as its port's.
    let env = Env::qemu();
    let sysfs = env.file("sysfs");
    fake_usb_tokens(&sysfs, &["ttyACM7"]);
    let port = sysfs.join("dev/ttyACM7").display().to_string();
    let run = |args: &[&str], home: bool| {
        let mut cmd = env.command(args);
        cmd.env("PKMS_USB_SYSFS", &sysfs).env("PKMS_QEMU", "/nonexistent/qemu-system-arm");
        if !home {
            cmd.env_remove("PKMS_HOME").env("XDG_DATA_HOME", env.file("data"));
        }
        let out = cmd.output().expect("run pkms");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // PKMS_HOME set: its QEMU token, not the USB token.
    let (code, stderr) = run(&["info"], true);
    assert_eq!(code, Some(255), "{stderr}");
    assert!(stderr.contains("/nonexistent/qemu-system-arm") && !stderr.contains(&port), "{stderr}");
    // No PKMS_HOME: the USB token, unless --device qemu says otherwise.
    let (_, stderr) = run(&["info"], false);
    assert!(stderr.contains(&port), "{stderr}");
    let (code, stderr) = run(&["--device", "qemu", "info"], false);
    assert_eq!(code, Some(255), "{stderr}");
    assert!(stderr.contains("/nonexistent/qemu-system-arm") && !stderr.contains(&port), "{stderr}");
    let other = env.file("other-home");
    let (_, stderr) = run(&["--device", &format!("qemu:{}", other.display()), "info"], false);
    assert!(stderr.contains("/nonexistent/qemu-system-arm"), "{stderr}");
    assert!(other.is_dir(), "qemu:HOME uses that home");
    // --device names the USB token even with PKMS_HOME set.
    let (_, stderr) = run(&["--device", &port, "info"], true);
    assert!(stderr.contains(&port), "{stderr}");
    assert!(env.fails(&["--device", "qemu:", "info"], 252).contains("path is missing"));
}

#[test]
fn signing_keys_rotate_only_with_an_explicit_opt_in() {
    let env = Env::in_process();
    let sk = signing_key(&env);
    for cmd in ["enable-key-rotation", "rotate-key-on-demand"] {
        let e = env.fails(&[cmd, "--key-id", &sk], 254);
        assert_eq!(error_type(&e), "UnsupportedOperationException", "{cmd}: {e}");
        assert!(e.contains("--allow-signing-key-rotation"), "the hint names the opt-in: {e}");
    }
    let status = env.json(&["get-key-rotation-status", "--key-id", &sk]);
    assert_eq!(status["KeyRotationEnabled"], Value::Bool(false));
    assert_eq!(
        env.json(&["list-key-rotations", "--key-id", &sk])["Rotations"].as_array().map(Vec::len),
        Some(0)
    );
    // Symmetric keys rotate as before.
    let k = field(&env.json(&["create-key"]), "KeyMetadata.KeyId");
    assert!(env.run(&["enable-key-rotation", "--key-id", &k]).status.success());
    // The opt-in names the consequence and is recorded on the key as a tag.
    let out = env.run(&["rotate-key-on-demand", "--key-id", &sk, "--allow-signing-key-rotation"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("new public key"));
    let tags = env.json(&["list-resource-tags", "--key-id", &sk]);
    assert!(tags.to_string().contains("pkms:AllowSigningKeyRotation"), "{tags}");
    assert!(env.run(&["enable-key-rotation", "--key-id", &sk]).status.success(), "the key keeps its consent");
}

#[test]
fn invalid_signatures_exit_254_everywhere_and_signatures_are_public() {
    let env = Env::in_process();
    let sk = signing_key(&env);
    let file = env.file("a.bin");
    std::fs::write(&file, b"release").unwrap();
    let pem = env.run(&["get-public-key", "--key-id", &sk, "--output", "pem"]).stdout;
    let pem_path = env.file("k.pem");
    std::fs::write(&pem_path, pem).unwrap();
    let f = file.display().to_string();
    let p = pem_path.display().to_string();
    assert!(env.run(&["sign-file", "--key-id", &sk, &f]).status.success());
    let sig = env.file("a.bin.sig");
    assert_eq!(mode(&sig), 0o644, "a signature is published");
    let s = sig.display().to_string();
    assert!(env.run(&["verify-file", "--public-key", &p, "--signature", &s, &f]).status.success());
    std::fs::write(&file, b"tampered").unwrap();
    let e = env.fails(&["verify-file", "--public-key", &p, "--signature", &s, &f], 254);
    assert_eq!(error_type(&e), "KMSInvalidSignatureException", "offline, as on the token: {e}");
    let e = env.fails(&["verify-file", "--key-id", &sk, "--signature", &s, &f], 254);
    assert_eq!(error_type(&e), "KMSInvalidSignatureException");
    // A local file that is not there is a local problem, not an unreachable token.
    let e = env.fails(&["sign-file", "--key-id", &sk, &env.file("missing").display().to_string()], 253);
    assert!(e.contains("missing"), "{e}");

    // A manifest with a changed file: the signature is valid, the files are not, exit 254.
    let dist = env.file("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("one"), b"one").unwrap();
    std::fs::write(dist.join("two"), b"two").unwrap();
    let sums = env.file("SUMS");
    let sums_s = sums.display().to_string();
    let out = env.run(&["sign-manifest", "--key-id", &sk, "--out", &sums_s, &dist.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&sums), 0o644);
    assert_eq!(mode(&env.file("SUMS.sig")), 0o644);
    let ok = env.json(&["verify-file", "--public-key", &p, &sums_s]);
    assert_eq!(ok["FilesValid"], Value::Bool(true), "{ok}");
    std::fs::write(dist.join("two"), b"changed").unwrap();
    let out = env.run(&["verify-file", "--public-key", &p, &sums_s]);
    assert_eq!(out.status.code(), Some(254), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report is printed");
    assert_eq!(report["SignatureValid"], Value::Bool(true));
    assert_eq!(report["FilesValid"], Value::Bool(false));
    assert_eq!(report["ChangedFiles"], serde_json::json!(["dist/two"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(error_type(&stderr), "KMSInvalidSignatureException");
    assert!(stderr.contains("dist/two"), "{stderr}");
}

#[test]
fn verify_file_with_a_key_id_tries_every_version() {
    let env = Env::in_process();
    let sk = signing_key(&env);
    let file = env.file("old.bin");
    std::fs::write(&file, b"signed by version 1").unwrap();
    let f = file.display().to_string();
    assert!(env.run(&["sign-file", "--key-id", &sk, &f]).status.success());
    let out = env.run(&["rotate-key-on-demand", "--key-id", &sk, "--allow-signing-key-rotation"]);
    assert!(out.status.success());
    let ok = env.json(&["verify-file", "--key-id", &sk, &f]);
    assert_eq!(ok["SignatureValid"], Value::Bool(true));
    assert_eq!(ok["KeyVersion"], serde_json::json!(1), "it says which version verified: {ok}");
    // Naming the wrong version still fails, with the signature exception.
    let e = env.fails(&["verify-file", "--key-id", &sk, "--key-version", "2", &f], 254);
    assert_eq!(error_type(&e), "KMSInvalidSignatureException");
}

#[test]
fn retire_key_versions_asks_first_and_says_what_it_erases() {
    let env = Env::in_process();
    let k = field(&env.json(&["create-key"]), "KeyMetadata.KeyId");
    assert!(env.run(&["rotate-key-on-demand", "--key-id", &k]).status.success());
    let e = env.fails(&["retire-key-versions", "--key-id", &k, "--below-version", "2"], 252);
    assert!(e.contains("--yes") && e.contains("below 2") && e.contains("erases"), "{e}");
    let all = ["list-key-rotations", "--key-id", &k, "--include-key-material", "ALL_KEY_MATERIAL"];
    assert_eq!(env.json(&all)["Rotations"].as_array().map(Vec::len), Some(2), "nothing was erased");
    let r = env.json(&["retire-key-versions", "--key-id", &k, "--below-version", "2", "--yes"]);
    assert_eq!(r["RetiredCount"], serde_json::json!(1), "{r}");
    assert_eq!(env.json(&all)["Rotations"].as_array().map(Vec::len), Some(1));
}

#[test]
fn init_never_loses_the_puk() {
    let env = Env::in_process();
    let pin = [("PKMS_PIN", "24681357")];
    let run = |args: &[&str]| env.command(args).envs(pin).env_remove("PKMS_PUK").output().expect("run pkms");
    // -q or --query would hide the generated PUK: refused, the token stays open.
    for args in [&["-q", "init"][..], &["init", "--query", "Principal"][..]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(252), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--puk-out"));
    }
    assert_eq!(env.json(&["info"])["Initialized"], Value::Bool(false));
    // -q with --puk-out: nothing printed, the PUK in a private file.
    let quiet = Env::in_process();
    let quiet_puk = quiet.file("puk.txt");
    let out = quiet
        .command(&["-q", "init", "--puk-out", &quiet_puk.display().to_string()])
        .envs(pin)
        .env_remove("PKMS_PUK")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "-q prints nothing");
    assert_eq!(mode(&quiet_puk), 0o600);
    // Without -q: the output names the file (not the PUK) and the audit log's public key.
    let puk = env.file("puk.txt");
    let out = run(&["init", "--puk-out", &puk.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let init_out: Value = serde_json::from_slice(&out.stdout).expect("init JSON");
    assert!(init_out.get("Puk").is_none(), "the PUK went to the file: {init_out}");
    assert_eq!(init_out["PukFile"], puk.display().to_string());
    assert_eq!(mode(&puk), 0o600);
    let text = std::fs::read_to_string(&puk).unwrap();
    assert_eq!(text.trim().len(), 16, "the generated PUK: {text:?}");
    // The PUK in the file is the token's: it unblocks a PIN.
    let out = env
        .command(&["unblock-pin", "--for", "admin"])
        .env("PKMS_PUK", text.trim())
        .env("PKMS_NEW_PIN", "13572468")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // info reports the audit log's fill level to a logged-in principal.
    let out = env.command(&["info"]).env("PKMS_PIN", "13572468").output().unwrap();
    let info: Value = serde_json::from_slice(&out.stdout).expect("info JSON");
    let entries = info["AuditLogEntries"].as_u64().expect("AuditLogEntries");
    let capacity = info["AuditLogCapacity"].as_u64().expect("AuditLogCapacity");
    assert!(entries >= 1 && entries <= capacity, "{info}");
    assert_eq!(info["AuditLogWhenFull"], "OVERWRITE");
    // The key that verifies audit exports: printed by init, and again by `audit public-key`.
    let out = env.command(&["audit", "public-key"]).env("PKMS_PIN", "13572468").output().unwrap();
    let pem = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    assert_eq!(init_out["AuditPublicKey"].as_str(), Some(pem.as_str()), "init printed the same key");
}

#[test]
fn the_open_token_warning_is_shown_once_a_day_and_never_with_quiet() {
    let quiet = Env::in_process();
    let out = quiet.run(&["-q", "list-keys"]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not initialised"), "-q hides it");
    let env = Env::in_process();
    let first = env.run(&["list-keys"]);
    assert!(String::from_utf8_lossy(&first.stderr).contains("not initialised"), "shown the first time");
    let second = env.run(&["list-keys"]);
    assert!(!String::from_utf8_lossy(&second.stderr).contains("not initialised"), "not again that day");
}

#[test]
fn list_commands_take_max_items_page_size_and_starting_token() {
    let env = Env::in_process();
    let mut made: Vec<String> =
        (0..5).map(|_| field(&env.json(&["create-key"]), "KeyMetadata.KeyId")).collect();
    made.sort();
    let ids = |v: &Value| -> Vec<String> {
        v["Keys"].as_array().unwrap().iter().map(|k| k["KeyId"].as_str().unwrap().to_owned()).collect()
    };
    // --page-size: small pages, every key still listed.
    let all = env.json(&["list-keys", "--page-size", "2"]);
    let mut listed = ids(&all);
    listed.sort();
    assert_eq!(listed, made);
    assert!(all.get("NextToken").is_none());
    // --max-items: the first N, and a NextToken that continues without skipping or repeating.
    let first = env.json(&["list-keys", "--max-items", "3", "--page-size", "2"]);
    assert_eq!(ids(&first).len(), 3);
    let token = first["NextToken"].as_str().expect("NextToken").to_owned();
    assert_eq!(first["Truncated"], Value::Bool(true));
    let rest = env.json(&["list-keys", "--starting-token", &token]);
    let mut both = [ids(&first), ids(&rest)].concat();
    both.sort();
    assert_eq!(both, made, "the two listings together hold every key once");
    assert!(env.run(&["list-keys", "--max-items", "0"]).status.code() == Some(2));
    assert_eq!(env.run(&["list-keys", "--limit", "2", "--max-items", "2"]).status.code(), Some(2));
    let k = &made[0];
    assert!(env.run(&["rotate-key-on-demand", "--key-id", k]).status.success());
    assert!(env.run(&["rotate-key-on-demand", "--key-id", k]).status.success());
    let r = env.json(&["list-key-rotations", "--key-id", k, "--max-items", "1"]);
    assert_eq!(r["Rotations"].as_array().map(Vec::len), Some(1));
    assert_eq!(r["Rotations"][0]["KeyVersion"], serde_json::json!(2), "the original material is not counted");
    assert!(r.get("NextToken").is_some(), "{r}");
    let a = env.json(&["list-aliases", "--max-items", "1"]);
    assert!(a["Aliases"].as_array().is_some());
}

#[test]
fn grants_name_real_principals_and_go_with_them() {
    let env = Env::in_process();
    let admin = [("PKMS_PIN", "24681357")];
    let run = |args: &[&str]| env.command(args).envs(admin).output().unwrap();
    let init = env.command(&["init"]).envs(admin).env("PKMS_PUK", "puk-12345678").output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let key: Value = serde_json::from_slice(&run(&["create-key"]).stdout).unwrap();
    let key = field(&key, "KeyMetadata.KeyId");
    let grant = ["create-grant", "--key-id", &key, "--operations", "Encrypt", "--grantee-principal"];
    let out = run(&[&grant[..], &["nobody-here"]].concat());
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nobody-here"), "the message names who");
    let made = env
        .command(&["create-principal", "--name", "bob"])
        .envs(admin)
        .env("PKMS_NEW_PIN", "13579135")
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert!(run(&[&grant[..], &["bob"]].concat()).status.success());
    let listed = |env: &Env| -> usize {
        let out = env.command(&["list-grants", "--key-id", &key]).envs(admin).output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["Grants"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(listed(&env), 1);
    assert!(run(&["delete-principal", "--name", "bob"]).status.success());
    assert_eq!(listed(&env), 0, "a deleted principal's grants are retired");
}

#[test]
fn change_pin_changes_ones_own_pin() {
    let env = Env::in_process();
    let init =
        env.command(&["init"]).env("PKMS_PIN", "24681357").env("PKMS_PUK", "puk-12345678").output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let change = |pin: &str, new: &str| {
        env.command(&["change-pin"]).env("PKMS_PIN", pin).env("PKMS_NEW_PIN", new).output().unwrap()
    };
    let wrong = change("00000000", "13579135");
    assert_eq!(wrong.status.code(), Some(254));
    assert_eq!(error_type(&String::from_utf8_lossy(&wrong.stderr)), "AccessDeniedException");
    let ok = change("24681357", "13579135");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let old = env.command(&["list-keys"]).env("PKMS_PIN", "24681357").output().unwrap();
    assert_eq!(old.status.code(), Some(254), "the old PIN no longer works");
    let new = env.command(&["list-keys"]).env("PKMS_PIN", "13579135").output().unwrap();
    assert!(new.status.success(), "{}", String::from_utf8_lossy(&new.stderr));
}

#[test]
fn messages_name_the_right_command_and_flag() {
    let env = Env::in_process();
    // info --output text: labelled lines.
    let out = env.run(&["info", "--output", "text"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.starts_with("FirmwareVersion\t")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("Token\tthe in-process token")), "{text}");
    assert!(text.lines().all(|l| l.split('\t').count() == 2), "one Name<TAB>value per line: {text}");
    // init with no PIN and no terminal: what to set, before anything is sent.
    let out = env.command(&["init"]).env_remove("PKMS_PIN").env("PKMS_PUK", "puk-12345678").output().unwrap();
    assert_eq!(out.status.code(), Some(252));
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(error_type(&e), "ValidationException");
    assert!(e.contains("PKMS_PIN") && e.contains("--pin-file"), "{e}");
    let admin = [("PKMS_PIN", "24681357")];
    assert!(env
        .command(&["init"])
        .envs(admin)
        .env("PKMS_PUK", "puk-12345678")
        .output()
        .unwrap()
        .status
        .success());
    let made = env
        .command(&["create-principal", "--name", "bob"])
        .envs(admin)
        .env("PKMS_NEW_PIN", "13579135")
        .output()
        .unwrap();
    assert!(made.status.success());
    // A user refused an administrator's command is told to use an administrator, not a key policy.
    let out = env
        .command(&["create-principal", "--name", "carol", "--principal", "bob"])
        .env("PKMS_PIN", "13579135")
        .env("PKMS_NEW_PIN", "11223344")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("--principal NAME") && !e.contains("get-key-policy"), "{e}");
    // A wrong PUK: the PUK and --for, not the PIN.
    let out = env
        .command(&["unblock-pin", "--for", "bob"])
        .env("PKMS_PUK", "wrong-puk-000")
        .env("PKMS_NEW_PIN", "55667788")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("PKMS_PUK") && e.contains("--for NAME") && !e.contains("Give the PIN"), "{e}");
}

fn stdout_lines(out: &std::process::Output) -> Vec<String> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn text_output_has_the_aws_cli_columns() {
    let env = Env::in_process();
    let key = field(&env.json(&["create-key", "--description", "columns"]), "KeyMetadata.KeyId");
    let arn = cli_support::key_arn(&key);
    // Scalars sorted by field name: CiphertextBlob, EncryptionAlgorithm, KeyId, … (KMS's JSON
    // has KeyId before EncryptionAlgorithm).
    let enc =
        stdout_lines(&env.run(&["encrypt", "--key-id", &key, "--plaintext", "aGVsbG8=", "--output", "text"]));
    let cols: Vec<&str> = enc[0].split('\t').collect();
    assert_eq!(cols[1..3], ["SYMMETRIC_DEFAULT", arn.as_str()], "{enc:?}");
    assert!(cli_support::unb64(cols[0]).len() > 16);
    // A nested object: a line titled with its field name in capitals, its fields sorted
    // (AWSAccountId, Arn, CreationDate, …); its lists after it, one NAME<TAB>value line each.
    let desc = stdout_lines(&env.run(&["describe-key", "--key-id", &key, "--output", "text"]));
    let meta: Vec<&str> = desc[0].split('\t').collect();
    assert_eq!(meta[..3], ["KEYMETADATA", "111122223333", arn.as_str()], "{desc:?}");
    assert!(desc[0].contains("\tcolumns\t"), "{desc:?}");
    assert!(desc.contains(&"ENCRYPTIONALGORITHMS\tSYMMETRIC_DEFAULT".to_owned()), "{desc:?}");
    // A listing: one KEYS line per key (KeyArn, KeyId), no pagination fields...
    let second = field(&env.json(&["create-key"]), "KeyMetadata.KeyId");
    let keys = stdout_lines(&env.run(&["list-keys", "--output", "text"]));
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in [&key, &second] {
        assert!(keys.contains(&format!("KEYS\t{}\t{k}", cli_support::key_arn(k))), "{keys:?}");
    }
    // ...until --max-items stops it: NEXTTOKEN, which --starting-token takes.
    let first = stdout_lines(&env.run(&["list-keys", "--max-items", "1", "--output", "text"]));
    assert_eq!(first.len(), 2, "{first:?}");
    let token = first[1].strip_prefix("NEXTTOKEN\t").expect("the last line is the NextToken");
    let rest = stdout_lines(&env.run(&["list-keys", "--starting-token", token, "--output", "text"]));
    assert_eq!(rest.len(), 1);
    assert_ne!(first[0], rest[0]);
    // Aliases: AliasArn, AliasName, CreationDate, LastUpdatedDate, TargetKeyId.
    assert!(env
        .run(&["create-alias", "--alias-name", "alias/cols", "--target-key-id", &key])
        .status
        .success());
    let aliases = stdout_lines(&env.run(&["list-aliases", "--output", "text"]));
    let a: Vec<&str> = aliases[0].split('\t').collect();
    assert_eq!((a[0], a[2], a[5]), ("ALIASES", "alias/cols", key.as_str()), "{aliases:?}");
    assert!(a[1].ends_with(":alias/cols"), "{aliases:?}");
    // --query still gives bare values.
    let ids = stdout_lines(&env.run(&["list-keys", "--query", "Keys[].KeyId", "--output", "text"]));
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].split('\t').count(), 2);
}

/// The completion candidates bash offers for the last word of `words` (after `pkms`), with the
/// script `pkms completions bash` prints and this environment's PKMS_HOME / PKMS_DEVICE.
fn bash_candidates(env: &Env, script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let base = env.command(&[]);
    let mut bash = std::process::Command::new("bash");
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => bash.env(k, v),
            None => bash.env_remove(k),
        };
    }
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=('{}' {}); COMP_CWORD={}; _pkms_with_keys; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        env!("CARGO_BIN_EXE_pkms"),
        quoted.join(" "),
        words.len()
    );
    let out = bash.arg("-c").arg(program).output().expect("run bash");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

#[test]
fn completion_offers_key_ids_and_aliases_from_the_cache() {
    let env = Env::in_process();
    let script = env.file("pkms.bash");
    std::fs::write(&script, env.run(&["completions", "bash"]).stdout).unwrap();
    let key = field(&env.json(&["create-key"]), "KeyMetadata.KeyId");
    assert!(env
        .run(&["create-alias", "--alias-name", "alias/completed", "--target-key-id", &key])
        .status
        .success());
    // Encrypt takes key ids and aliases; bash filters by the typed prefix.
    let all = bash_candidates(&env, &script, &["encrypt", "--key-id", ""]);
    assert!(all.contains(&key) && all.contains(&"alias/completed".to_owned()), "{all:?}");
    assert_eq!(bash_candidates(&env, &script, &["encrypt", "--key-id", "alias/c"]), ["alias/completed"]);
    assert_eq!(
        bash_candidates(&env, &script, &["sign", "--key-id", "=", &key[..6]]),
        [key.as_str()],
        "--key-id=…"
    );
    // Key-management commands take key ids only, as in KMS: no aliases offered.
    assert_eq!(bash_candidates(&env, &script, &["enable-key", "--key-id", ""]), [key.as_str()]);
    assert_eq!(bash_candidates(&env, &script, &["delete-alias", "--alias-name", ""]), ["alias/completed"]);
    // Other flags are clap's own completion.
    assert!(!bash_candidates(&env, &script, &["encrypt", "--encryption-algorithm", ""]).contains(&key));
    // A deleted alias is no longer offered; a key listed by list-keys is.
    assert!(env.run(&["delete-alias", "--alias-name", "alias/completed"]).status.success());
    assert_eq!(bash_candidates(&env, &script, &["encrypt", "--key-id", ""]), [key.as_str()]);
    std::fs::remove_file(env.home().join("completion-keys.json")).unwrap();
    assert!(bash_candidates(&env, &script, &["encrypt", "--key-id", ""]).is_empty());
    assert!(env.run(&["list-keys"]).status.success());
    assert_eq!(bash_candidates(&env, &script, &["encrypt", "--key-id", ""]), [key.as_str()]);
    // fish gives the words before the one being completed (`--before`).
    let out =
        env.command(&["__complete-keys", "--before", "--", "pkms", "encrypt", "--key-id"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().collect::<Vec<_>>(), [key.as_str()]);
    // Completion never reaches for a token: a QEMU token that cannot start answers at once,
    // with nothing (its cache is empty), and no error.
    let out = env
        .command(&["__complete-keys", "--", "--device", "qemu", "encrypt", "--key-id", ""])
        .env("PKMS_QEMU", "/nonexistent/qemu-system-arm")
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
}

#[test]
fn sign_file_names_the_key_and_version_that_signed() {
    let env = Env::in_process();
    let sk = signing_key(&env);
    let file = env.file("release.tar");
    std::fs::write(&file, b"release").unwrap();
    let f = file.display().to_string();
    // Without --output: stdout stays empty (scripts take the signature from FILE.sig or
    // stdout) and one line on stderr names key, version and signature file.
    let quiet_out = env.run(&["sign-file", "--key-id", &sk, &f]);
    assert!(quiet_out.status.success() && quiet_out.stdout.is_empty(), "{quiet_out:?}");
    let note = String::from_utf8_lossy(&quiet_out.stderr);
    assert!(
        note.contains(&format!("Signed by {} version 1 (ECDSA_SHA_256): {f}.sig", cli_support::key_arn(&sk))),
        "{note}"
    );
    let signed = env.json(&["sign-file", "--key-id", &sk, "--output", "json", &f]);
    assert_eq!(signed["KeyId"], cli_support::key_arn(&sk));
    assert_eq!(signed["KeyVersion"], serde_json::json!(1));
    assert_eq!(signed["SigningAlgorithm"], "ECDSA_SHA_256");
    assert_eq!(signed["SignatureFile"], format!("{f}.sig"));
    // After a rotation the new signature says version 2, and verify-file says which verified.
    let out = env.run(&["rotate-key-on-demand", "--key-id", &sk, "--allow-signing-key-rotation"]);
    assert!(out.status.success());
    let new_sig = env.file("new.sig").display().to_string();
    let signed = env.json(&["sign-file", "--key-id", &sk, "--out", &new_sig, "--output", "json", &f]);
    assert_eq!(
        (signed["KeyVersion"].clone(), signed["SignatureFile"].clone()),
        (2.into(), new_sig.clone().into())
    );
    let alias = ["create-alias", "--alias-name", "alias/release", "--target-key-id", &sk];
    assert!(env.run(&alias).status.success());
    for (sig, version) in [(format!("{f}.sig"), 1), (new_sig, 2)] {
        let ok = env.json(&["verify-file", "--key-id", "alias/release", "--signature", &sig, &f]);
        assert_eq!(ok["KeyVersion"], serde_json::json!(version), "{ok}");
        assert_eq!(ok["KeyId"], cli_support::key_arn(&sk), "the key's ARN, whatever --key-id named: {ok}");
    }
    // `--out -`: the signature is the output.
    let der = env.run(&["sign-file", "--key-id", &sk, "--out", "-", &f]).stdout;
    assert_eq!(der[0], 0x30, "DER");
}
