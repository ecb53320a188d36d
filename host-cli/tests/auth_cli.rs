//! Who may use a key, through the `pkms` binary: init, PINs from PKMS_PIN / --pin-file, lockout
//! and unblock, principals, JSON key policies, grants, audit export / verify, factory reset.

mod cli_support;

use std::process::Stdio;

use cli_support::{error_type, field, Env};
use serde_json::Value;

const PIN: &str = "246810";
const PUK: &str = "recover-1234";

/// Runs with the given extra environment (PKMS_PIN unset unless given), stdin closed.
fn run(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = env.command(args);
    for v in ["PKMS_PIN", "PKMS_PUK", "PKMS_NEW_PIN", "PKMS_PRINCIPAL"] {
        cmd.env_remove(v);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null()).output().expect("run pkms")
}

#[track_caller]
fn ok(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> Value {
    let out = run(env, vars, args);
    assert!(out.status.success(), "pkms {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    if out.stdout.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Expects failure with exit status 254 (the token refused); returns the error type.
#[track_caller]
fn refused(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> String {
    error_type(&refusal(env, vars, args))
}

/// Expects failure with exit status 254 (the token refused); returns stderr.
#[track_caller]
fn refusal(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> String {
    let out = run(env, vars, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(254), "pkms {args:?}: {stderr}");
    stderr
}

/// A refused login: KMS's AccessDeniedException (as `pkms serve` answers it), whose message
/// says what happened on the token (`wants`).
#[track_caller]
fn login_refused(env: &Env, vars: &[(&str, &str)], args: &[&str], wants: &str) {
    let stderr = refusal(env, vars, args);
    assert_eq!(error_type(&stderr), "AccessDeniedException", "{stderr}");
    assert!(stderr.contains(wants), "{wants:?} in {stderr}");
}

fn admin() -> Vec<(&'static str, &'static str)> {
    vec![("PKMS_PIN", PIN)]
}

fn init(env: &Env) {
    let out = ok(env, &[("PKMS_PIN", PIN), ("PKMS_PUK", PUK)], &["init"]);
    assert_eq!(field(&out, "Principal"), "admin");
    assert!(out.get("Puk").is_none(), "a given PUK is not printed");
}

#[test]
fn open_token_warns_then_init_requires_the_pin_and_locks_after_eight_wrong_ones() {
    let env = Env::in_process();
    let out = run(&env, &[], &["list-keys"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not initialised"));
    init(&env);
    assert_eq!(refused(&env, &admin(), &["init"]), "KMSInvalidStateException");
    let key = field(&ok(&env, &admin(), &["create-key"]), "KeyMetadata.KeyId");
    let m = env.fileb("m", b"hi");
    ok(&env, &admin(), &["encrypt", "--key-id", &key, "--plaintext", &m]);
    // No PIN and no terminal: a missing argument, said before the login is tried (252, as
    // init's); a wrong PIN: the token refuses the login.
    let out = run(&env, &[], &["encrypt", "--key-id", &key, "--plaintext", &m]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(252), "{stderr}");
    assert_eq!(error_type(&stderr), "ValidationException", "{stderr}");
    assert!(stderr.contains("PKMS_PIN") && stderr.contains("--pin-file"), "{stderr}");
    login_refused(
        &env,
        &[("PKMS_PIN", "999999")],
        &["encrypt", "--key-id", &key, "--plaintext", &m],
        "refused the login",
    );
    // --pin-file.
    let pin_file = env.file("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    ok(&env, &[], &["describe-key", "--key-id", &key, "--pin-file", pin_file.to_str().unwrap()]);
    // A user, locked after eight wrong PINs, unblocked with the PUK.
    ok(
        &env,
        &[("PKMS_PIN", PIN), ("PKMS_NEW_PIN", "135790")],
        &["create-principal", "--name", "bob", "--role", "user"],
    );
    let bob = [("PKMS_PRINCIPAL", "bob"), ("PKMS_PIN", "135790")];
    assert_eq!(
        refused(&env, &bob, &["encrypt", "--key-id", &key, "--plaintext", &m]),
        "AccessDeniedException"
    );
    let wrong = [("PKMS_PRINCIPAL", "bob"), ("PKMS_PIN", "000000")];
    for _ in 0..7 {
        login_refused(&env, &wrong, &["list-keys"], "refused the login");
    }
    login_refused(&env, &wrong, &["list-keys"], "PIN is locked");
    login_refused(&env, &bob, &["list-keys"], "PIN is locked");
    // The hint names the locked principal, so running it as written unlocks that one.
    login_refused(&env, &bob, &["list-keys"], "`pkms unblock-pin --for bob`");
    let list = ok(&env, &admin(), &["list-principals"]);
    let entry = list["Principals"].as_array().unwrap().iter().find(|p| p["Name"] == "bob").unwrap().clone();
    assert_eq!(entry["PinRetriesLeft"], 0);
    ok(&env, &[("PKMS_PUK", PUK), ("PKMS_NEW_PIN", "555555")], &["unblock-pin", "--for", "bob"]);
    ok(&env, &[("PKMS_PRINCIPAL", "bob"), ("PKMS_PIN", "555555")], &["list-keys"]);
    ok(&env, &admin(), &["delete-principal", "--name", "bob"]);
    login_refused(
        &env,
        &[("PKMS_PRINCIPAL", "bob"), ("PKMS_PIN", "555555")],
        &["list-keys"],
        "refused the login",
    );
}

#[test]
fn json_key_policies_and_grants() {
    let env = Env::in_process();
    init(&env);
    ok(&env, &[("PKMS_PIN", PIN), ("PKMS_NEW_PIN", "135790")], &["create-principal", "--name", "bob"]);
    ok(&env, &[("PKMS_PIN", PIN), ("PKMS_NEW_PIN", "246802")], &["create-principal", "--name", "carol"]);
    let bob = [("PKMS_PRINCIPAL", "bob"), ("PKMS_PIN", "135790")];
    let carol = [("PKMS_PRINCIPAL", "carol"), ("PKMS_PIN", "246802")];
    let key = field(&ok(&env, &admin(), &["create-key"]), "KeyMetadata.KeyId");
    let m = env.fileb("m", b"hi");
    // The default policy, as KMS JSON.
    let p = ok(&env, &admin(), &["get-key-policy", "--key-id", &key]);
    let doc: Value = serde_json::from_str(&field(&p, "Policy")).unwrap();
    assert_eq!(doc["Statement"][0]["Principal"]["Pkms"][0], "role/admin");
    assert_eq!(doc["Statement"][0]["Action"][0], "kms:*");
    // bob may encrypt with app=billing; carol is denied everything.
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"Pkms":["role/admin"]},"Action":"kms:*","Resource":"*"},
        {"Effect":"Allow","Principal":{"Pkms":["bob","carol"]},"Action":["kms:Encrypt"],"Resource":"*",
         "Condition":{"StringEquals":{"kms:EncryptionContext:app":"billing"}}},
        {"Effect":"Deny","Principal":{"Pkms":["carol"]},"Action":"kms:*","Resource":"*"}]}"#;
    let file = env.file("policy.json");
    std::fs::write(&file, policy).unwrap();
    ok(
        &env,
        &admin(),
        &["put-key-policy", "--key-id", &key, "--policy", &format!("file://{}", file.display())],
    );
    let back: Value =
        serde_json::from_str(&field(&ok(&env, &admin(), &["get-key-policy", "--key-id", &key]), "Policy"))
            .unwrap();
    assert_eq!(back["Statement"][1]["Condition"]["StringEquals"]["kms:EncryptionContext:app"], "billing");
    assert_eq!(back["Statement"][2]["Effect"], "Deny");
    let enc = ["encrypt", "--key-id", &key, "--plaintext", &m, "--encryption-context", "app=billing"];
    ok(&env, &bob, &enc);
    assert_eq!(refused(&env, &carol, &enc), "AccessDeniedException");
    assert_eq!(
        refused(
            &env,
            &bob,
            &["encrypt", "--key-id", &key, "--plaintext", &m, "--encryption-context", "app=x"]
        ),
        "AccessDeniedException"
    );
    // Malformed policies: bad JSON shape (found by pkms), and a lockout (found by the token).
    let out = run(
        &env,
        &admin(),
        &["put-key-policy", "--key-id", &key, "--policy", r#"{"Statement":[{"Effect":"Maybe"}]}"#],
    );
    assert_eq!(error_type(&String::from_utf8_lossy(&out.stderr)), "MalformedPolicyDocumentException");
    let lockout = r#"{"Statement":[{"Effect":"Allow","Principal":{"Pkms":["bob"]},"Action":"kms:Encrypt"}]}"#;
    assert_eq!(
        refused(&env, &admin(), &["put-key-policy", "--key-id", &key, "--policy", lockout]),
        "MalformedPolicyDocumentException"
    );
    // Grants: carol's Deny still wins; a grant lets bob decrypt.
    let blob =
        field(&ok(&env, &admin(), &["encrypt", "--key-id", &key, "--plaintext", &m]), "CiphertextBlob");
    let blob_file = env.fileb("blob", &cli_support::unb64(&blob));
    let dec = ["decrypt", "--ciphertext-blob", &blob_file];
    assert_eq!(refused(&env, &bob, &dec), "AccessDeniedException");
    let g = ok(
        &env,
        &admin(),
        &[
            "create-grant",
            "--key-id",
            &key,
            "--grantee-principal",
            "bob",
            "--operations",
            "Decrypt",
            "--name",
            "d",
        ],
    );
    let gid = field(&g, "GrantId");
    let cg = ok(
        &env,
        &admin(),
        &["create-grant", "--key-id", &key, "--grantee-principal", "carol", "--operations", "Decrypt"],
    );
    ok(&env, &bob, &dec);
    assert_eq!(refused(&env, &carol, &dec), "AccessDeniedException");
    let grants = ok(&env, &admin(), &["list-grants", "--key-id", &key]);
    assert_eq!(grants["Grants"].as_array().unwrap().len(), 2);
    assert_eq!(grants["Grants"][0]["Operations"][0], "Decrypt");
    ok(&env, &bob, &["retire-grant", "--key-id", &key, "--grant-id", &gid]);
    assert_eq!(refused(&env, &bob, &dec), "AccessDeniedException");
    ok(&env, &admin(), &["revoke-grant", "--key-id", &key, "--grant-id", &field(&cg, "GrantId")]);
    // A grant retired by the token create-grant printed alone.
    let tg = ok(
        &env,
        &admin(),
        &["create-grant", "--key-id", &key, "--grantee-principal", "carol", "--operations", "Decrypt"],
    );
    assert_ne!(field(&tg, "GrantToken"), field(&tg, "GrantId"), "a grant token is not the grant id");
    ok(&env, &admin(), &["retire-grant", "--grant-token", &field(&tg, "GrantToken")]);
    assert_eq!(ok(&env, &admin(), &["list-grants", "--key-id", &key])["Grants"].as_array().unwrap().len(), 0);
    assert_eq!(
        refused(&env, &admin(), &["retire-grant", "--key-id", &key, "--grant-id", &gid]),
        "InvalidGrantIdException"
    );
}

fn export_and_verify(env: &Env) {
    let out = ok(env, &[("PKMS_PIN", PIN)], &["init", "--audit-full", "refuse"]);
    assert_eq!(field(&out, "Puk").len(), 16, "a generated PUK is printed once");
    let key = field(&ok(env, &admin(), &["create-key"]), "KeyMetadata.KeyId");
    let m = env.fileb("m", b"hi");
    ok(env, &admin(), &["encrypt", "--key-id", &key, "--plaintext", &m]);
    refused(env, &[("PKMS_PIN", "999999")], &["encrypt", "--key-id", &key, "--plaintext", &m]);
    let log = env.file("log.pkaudit");
    let pem = env.file("device.pem");
    let e = ok(
        env,
        &admin(),
        &["audit", "export", "--out", log.to_str().unwrap(), "--public-key-out", pem.to_str().unwrap()],
    );
    let n: usize = field(&e, "Entries").parse().unwrap();
    assert!(n >= 6, "{e}");
    let verify =
        ["audit", "verify", log.to_str().unwrap(), "--public-key", pem.to_str().unwrap(), "--entries"];
    let v = ok(env, &[], &verify);
    assert_eq!(v["Valid"], true);
    let ops: Vec<&str> =
        v["Log"].as_array().unwrap().iter().map(|e| e["Operation"].as_str().unwrap()).collect();
    assert_eq!(ops[0], "Initialize");
    assert!(ops.contains(&"Encrypt") && ops.contains(&"CreateKey"));
    // The failed login (outside a session) is counted, in the entry before the next session's.
    assert!(v["Log"].as_array().unwrap().iter().any(|e| e["Operation"] == "UnauthenticatedRequests"
        && e["Counts"]["FailedAuthentications"].as_u64().unwrap() >= 1));
    // One changed byte in entry 3 (the fourth): verification fails and names it.
    let mut bytes = std::fs::read(&log).unwrap();
    let entries_at = bytes.len() - n * pkms_protocol::access::AUDIT_ENTRY_LEN;
    bytes[entries_at + 3 * pkms_protocol::access::AUDIT_ENTRY_LEN + 17] ^= 0x40;
    std::fs::write(&log, &bytes).unwrap();
    let out = run(env, &[], &verify);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("entry 3 "), "{stderr}");
    // Trim after export, then a factory reset makes the token open again.
    ok(env, &admin(), &["audit", "export", "--out", log.to_str().unwrap(), "--trim"]);
    let cp = ok(env, &admin(), &["audit", "checkpoint"]);
    assert!(field(&cp, "FirstSequence").parse::<u64>().unwrap() > 1);
    assert!(field(&cp, "PublicKey").starts_with("-----BEGIN PUBLIC KEY-----"));
    assert_eq!(run(env, &[], &["factory-reset", "--yes"]).status.code(), Some(254));
    ok(env, &admin(), &["factory-reset", "--yes"]);
    let out = run(env, &[], &["describe-key", "--key-id", &key]);
    assert_eq!(error_type(&String::from_utf8_lossy(&out.stderr)), "NotFoundException");
}

#[test]
fn audit_export_verify_and_factory_reset_in_process() {
    export_and_verify(&Env::in_process());
}

#[test]
fn audit_export_verify_and_factory_reset_on_qemu() {
    export_and_verify(&Env::qemu());
}

#[test]
fn key_policies_limit_grant_operations_and_a_grantee_cannot_widen_its_grant() {
    let env = Env::in_process();
    init(&env);
    for (name, pin) in [("bob", "135790"), ("carol", "246802")] {
        ok(&env, &[("PKMS_PIN", PIN), ("PKMS_NEW_PIN", pin)], &["create-principal", "--name", name]);
    }
    let bob = [("PKMS_PRINCIPAL", "bob"), ("PKMS_PIN", "135790")];
    let key = field(&ok(&env, &admin(), &["create-key"]), "KeyMetadata.KeyId");
    // bob may make grants, of Encrypt and Decrypt only.
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"Pkms":["role/admin"]},"Action":"kms:*","Resource":"*"},
        {"Effect":"Allow","Principal":{"Pkms":["bob"]},"Action":"kms:CreateGrant","Resource":"*",
         "Condition":{"ForAllValues:StringEquals":{"kms:GrantOperations":["Encrypt","Decrypt"]},
                      "StringEquals":{"kms:EncryptionContext:app":"billing"}}}]}"#;
    ok(&env, &admin(), &["put-key-policy", "--key-id", &key, "--policy", policy]);
    let back: Value =
        serde_json::from_str(&field(&ok(&env, &admin(), &["get-key-policy", "--key-id", &key]), "Policy"))
            .unwrap();
    let condition = &back["Statement"][1]["Condition"];
    assert_eq!(
        condition["ForAllValues:StringEquals"]["kms:GrantOperations"],
        serde_json::json!(["Encrypt", "Decrypt"])
    );
    assert_eq!(condition["StringEquals"]["kms:EncryptionContext:app"], "billing");
    let constraints = r#"{"EncryptionContextSubset":{"app":"billing"}}"#;
    let grant = |ops: &[&str], constraints: Option<&str>| {
        let mut args = vec!["create-grant", "--key-id", &key, "--grantee-principal", "carol", "--operations"];
        args.extend_from_slice(ops);
        if let Some(c) = constraints {
            args.extend_from_slice(&["--constraints", c]);
        }
        run(&env, &bob, &args)
    };
    assert!(grant(&["Encrypt", "Decrypt"], Some(constraints)).status.success());
    for (ops, c) in [(&["Encrypt", "GenerateDataKey"][..], Some(constraints)), (&["Encrypt"][..], None)] {
        let out = grant(ops, c);
        assert_eq!(out.status.code(), Some(254));
        assert_eq!(error_type(&String::from_utf8_lossy(&out.stderr)), "AccessDeniedException");
    }
    // A GrantOperations limit on a statement that cannot make grants is refused by pkms.
    let misplaced = r#"{"Statement":[{"Effect":"Allow","Principal":{"Pkms":["role/admin"]},"Action":"kms:Encrypt",
        "Condition":{"ForAllValues:StringEquals":{"kms:GrantOperations":["Encrypt"]}}}]}"#;
    let out = run(&env, &admin(), &["put-key-policy", "--key-id", &key, "--policy", misplaced]);
    assert_eq!(error_type(&String::from_utf8_lossy(&out.stderr)), "MalformedPolicyDocumentException");
    // A grantee given Encrypt and CreateGrant cannot grant itself Decrypt.
    let other = field(&ok(&env, &admin(), &["create-key"]), "KeyMetadata.KeyId");
    ok(
        &env,
        &admin(),
        &[
            "create-grant",
            "--key-id",
            &other,
            "--grantee-principal",
            "bob",
            "--operations",
            "Encrypt",
            "CreateGrant",
        ],
    );
    assert_eq!(
        refused(
            &env,
            &bob,
            &["create-grant", "--key-id", &other, "--grantee-principal", "bob", "--operations", "Decrypt"]
        ),
        "AccessDeniedException"
    );
    ok(
        &env,
        &bob,
        &["create-grant", "--key-id", &other, "--grantee-principal", "carol", "--operations", "Encrypt"],
    );
}
