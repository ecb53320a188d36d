//! Backups through the `pkms` binary between QEMU tokens, each its own PKMS_HOME: a token with
//! keys of every kind, rotated versions, an alias, a tag, a key policy, a grant and a second
//! principal is backed up under SLIP-39 shares and restored on a fresh token; a backup wrapped to
//! a peer token restores there and nowhere else; too few shares, a mistyped share, another
//! backup's shares and a token that is not fresh are refused and leave the token as it was.

mod cli_support;

use cli_support::{error_type, field, Env};
use serde_json::Value;

const PIN: &str = "246810";
const PUK: &str = "11223344";

fn run(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = env.command(args);
    for v in ["PKMS_PIN", "PKMS_PUK", "PKMS_NEW_PIN", "PKMS_PRINCIPAL"] {
        cmd.env_remove(v);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::null()).output().expect("run pkms")
}

#[track_caller]
fn ok(env: &Env, args: &[&str]) -> Value {
    let out = run(env, &[("PKMS_PIN", PIN)], args);
    assert!(out.status.success(), "pkms {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    if out.stdout.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[track_caller]
fn refused(env: &Env, args: &[&str]) -> (i32, String) {
    let out = run(env, &[("PKMS_PIN", PIN)], args);
    assert!(!out.status.success(), "pkms {args:?} should have failed");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn keys(env: &Env) -> Vec<String> {
    let v = ok(env, &["list-keys"]);
    let mut k: Vec<String> = v["Keys"].as_array().unwrap().iter().map(|k| field(k, "KeyId")).collect();
    k.sort();
    k
}

fn info(env: &Env) -> Value {
    ok(env, &["info"])
}

/// The source token and what it made.
struct Source {
    env: Env,
    sym: String,
    signer: String,
    hmac: String,
    blob_v1: String,
    blob_v3: String,
    signature: String,
    public_key: String,
    mac: String,
}

fn source() -> Source {
    let env = Env::qemu();
    let out = run(&env, &[("PKMS_PIN", PIN), ("PKMS_PUK", PUK)], &["init"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = env.fileb("m", b"quarterly numbers");
    let sym = field(&ok(&env, &["create-key"]), "KeyMetadata.KeyId");
    let blob_v1 = field(&ok(&env, &["encrypt", "--key-id", &sym, "--plaintext", &m]), "CiphertextBlob");
    ok(&env, &["rotate-key-on-demand", "--key-id", &sym]);
    ok(&env, &["rotate-key-on-demand", "--key-id", &sym]);
    let blob_v3 = field(&ok(&env, &["encrypt", "--key-id", &sym, "--plaintext", &m]), "CiphertextBlob");
    ok(&env, &["create-alias", "--alias-name", "alias/app", "--target-key-id", &sym]);
    ok(&env, &["tag-resource", "--key-id", &sym, "--tags", "TagKey=team,TagValue=billing"]);
    let signer = field(
        &ok(&env, &["create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"]),
        "KeyMetadata.KeyId",
    );
    let signature = field(
        &ok(
            &env,
            &[
                "sign",
                "--key-id",
                &signer,
                "--message",
                &m,
                "--message-type",
                "RAW",
                "--signing-algorithm",
                "ECDSA_SHA_256",
            ],
        ),
        "Signature",
    );
    let public_key = field(&ok(&env, &["get-public-key", "--key-id", &signer]), "PublicKey");
    let hmac = field(
        &ok(&env, &["create-key", "--key-spec", "HMAC_256", "--key-usage", "GENERATE_VERIFY_MAC"]),
        "KeyMetadata.KeyId",
    );
    let mac = field(
        &ok(&env, &["generate-mac", "--key-id", &hmac, "--message", &m, "--mac-algorithm", "HMAC_SHA_256"]),
        "Mac",
    );
    let out =
        run(&env, &[("PKMS_PIN", PIN), ("PKMS_NEW_PIN", "135790")], &["create-principal", "--name", "bob"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    ok(&env, &["create-grant", "--key-id", &sym, "--grantee-principal", "bob", "--operations", "Decrypt"]);
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Pkms":["admin","bob"]},"Action":"kms:*","Resource":"*"}]}"#;
    ok(&env, &["put-key-policy", "--key-id", &hmac, "--policy", policy]);
    Source { env, sym, signer, hmac, blob_v1, blob_v3, signature, public_key, mac }
}

fn check_restored(b: &Env, src: &Source) {
    assert_eq!(keys(b), keys(&src.env));
    for blob in [&src.blob_v1, &src.blob_v3] {
        let plain = field(&ok(b, &["decrypt", "--ciphertext-blob", blob]), "Plaintext");
        assert_eq!(cli_support::unb64(&plain), b"quarterly numbers");
    }
    let m = b.fileb("m", b"quarterly numbers");
    assert_eq!(field(&ok(b, &["get-public-key", "--key-id", &src.signer]), "PublicKey"), src.public_key);
    ok(
        b,
        &[
            "verify",
            "--key-id",
            &src.signer,
            "--message",
            &m,
            "--message-type",
            "RAW",
            "--signing-algorithm",
            "ECDSA_SHA_256",
            "--signature",
            &src.signature,
        ],
    );
    ok(
        b,
        &[
            "verify-mac",
            "--key-id",
            &src.hmac,
            "--message",
            &m,
            "--mac-algorithm",
            "HMAC_SHA_256",
            "--mac",
            &src.mac,
        ],
    );
    assert_eq!(field(&ok(b, &["describe-key", "--key-id", "alias/app"]), "KeyMetadata.KeyId"), src.sym);
    assert!(ok(b, &["list-resource-tags", "--key-id", &src.sym]).to_string().contains("billing"));
    assert_eq!(
        ok(b, &["get-key-policy", "--key-id", &src.hmac]).to_string(),
        ok(&src.env, &["get-key-policy", "--key-id", &src.hmac]).to_string()
    );
    assert_eq!(
        ok(b, &["list-grants", "--key-id", &src.sym]).to_string(),
        ok(&src.env, &["list-grants", "--key-id", &src.sym]).to_string()
    );
    // bob's PIN and his grant came along.
    let out = run(
        b,
        &[("PKMS_PRINCIPAL", "bob"), ("PKMS_PIN", "135790")],
        &["decrypt", "--ciphertext-blob", &src.blob_v3],
    );
    assert!(
        out.status.success(),
        "bob decrypts on the restored token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let i = info(b);
    assert_eq!(i["Initialized"], true);
    assert_eq!(i["KeyVersionsNotBackedUp"], 0);
    assert_eq!(i["BackupKey"], true);
}

#[test]
fn a_backup_under_slip39_shares_restores_on_a_fresh_qemu_token_and_refusals_change_nothing() {
    let src = source();
    let shares_dir = src.env.file("shares");
    let dir = shares_dir.display().to_string();
    assert_eq!(info(&src.env)["KeyVersionsNotBackedUp"], 5);
    let init = ok(&src.env, &["backup", "init", "--shares", "5", "--threshold", "3", "--shares-out", &dir]);
    let files: Vec<String> =
        init["ShareFiles"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_owned()).collect();
    assert_eq!(files.len(), 5);
    #[cfg(unix)]
    for f in &files {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600, "{f}");
    }
    // A second init needs --replace.
    let (_, e) = refused(&src.env, &["backup", "init", "--shares", "3", "--threshold", "2"]);
    assert_eq!(error_type(&e), "KMSInvalidStateException", "{e}");
    // A reminder after a key change once a backup key exists.
    let out = run(&src.env, &[("PKMS_PIN", PIN)], &["rotate-key-on-demand", "--key-id", &src.sym]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("in no backup"));
    let file = src.env.file("a.pkbak").display().to_string();
    let exported = ok(&src.env, &["backup", "export", "--out", &file]);
    assert_eq!(field(&exported, "Mode"), "BACKUP_KEY");
    assert_eq!(info(&src.env)["KeyVersionsNotBackedUp"], 0);

    // Too few shares, a mistyped share (named), another backup's shares: refused by pkms, and the
    // fresh token stays fresh.
    let b = Env::qemu();
    let (code, e) = refused(
        &b,
        &["backup", "restore", "--in", &file, "--share-file", &files[0], "--share-file", &files[1]],
    );
    assert_eq!(code, 252, "{e}");
    assert!(e.contains("3 shares are needed"), "{e}");
    let typo = b.file("typo.txt");
    let text = std::fs::read_to_string(&files[2]).unwrap();
    let mut words: Vec<&str> = text.split_whitespace().collect();
    words[7] = if words[7] == "academic" { "acid" } else { "academic" };
    std::fs::write(&typo, words.join(" ")).unwrap();
    let typo = typo.display().to_string();
    let (_, e) = refused(
        &b,
        &[
            "backup",
            "restore",
            "--in",
            &file,
            "--share-file",
            &files[0],
            "--share-file",
            &files[1],
            "--share-file",
            &typo,
        ],
    );
    assert!(e.contains("typo.txt") && e.contains("checksum"), "{e}");
    let other = Env::qemu();
    let out = run(&other, &[("PKMS_PIN", PIN), ("PKMS_PUK", PUK)], &["init"]);
    assert!(out.status.success());
    let other_dir = other.file("shares").display().to_string();
    let other_init =
        ok(&other, &["backup", "init", "--shares", "3", "--threshold", "2", "--shares-out", &other_dir]);
    let of: Vec<String> =
        other_init["ShareFiles"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_owned()).collect();
    let (_, e) =
        refused(&b, &["backup", "restore", "--in", &file, "--share-file", &of[0], "--share-file", &of[1]]);
    assert_eq!(error_type(&e), "InvalidCiphertextException", "{e}");
    let i = info(&b);
    assert_eq!((i["Initialized"].clone(), i["KeyCount"].clone()), (false.into(), 0.into()));

    // Shares 1, 3 and 5 restore everything.
    let restored = ok(
        &b,
        &[
            "backup",
            "restore",
            "--in",
            &file,
            "--share-file",
            &files[0],
            "--share-file",
            &files[2],
            "--share-file",
            &files[4],
        ],
    );
    assert_eq!(restored["Restored"], true);
    check_restored(&b, &src);
    // A token that is not fresh refuses, and keeps what it has.
    let (_, e) = refused(
        &b,
        &[
            "backup",
            "restore",
            "--in",
            &file,
            "--share-file",
            &files[0],
            "--share-file",
            &files[2],
            "--share-file",
            &files[4],
        ],
    );
    assert_eq!(error_type(&e), "KMSInvalidStateException", "{e}");
    assert_eq!(keys(&b), keys(&src.env));
}

#[test]
fn a_backup_wrapped_to_a_peer_token_restores_there_and_nowhere_else() {
    let src = source();
    let g = Env::qemu();
    let pem = g.file("g.pem");
    let out = run(&g, &[], &["backup", "device-key", "--output", "pem"]);
    assert!(out.status.success());
    std::fs::write(&pem, &out.stdout).unwrap();
    let fingerprint = field(&ok(&g, &["backup", "device-key"]), "Fingerprint");
    let pem = pem.display().to_string();
    let file = src.env.file("g.pkbak").display().to_string();
    // A wrong fingerprint: nothing is exported.
    let (code, _) = refused(
        &src.env,
        &["backup", "export", "--to-peer", &pem, "--peer-fingerprint", "SHA256:nope", "--out", &file],
    );
    assert_eq!(code, 252);
    assert!(!std::path::Path::new(&file).exists());
    let exported = ok(
        &src.env,
        &["backup", "export", "--to-peer", &pem, "--peer-fingerprint", &fingerprint, "--out", &file],
    );
    assert_eq!(field(&exported, "Mode"), "PEER");
    let i = Env::qemu();
    let (_, e) = refused(&i, &["backup", "restore", "--in", &file]);
    assert_eq!(error_type(&e), "AccessDeniedException", "{e}");
    assert_eq!(info(&i)["KeyCount"], 0);
    ok(&g, &["backup", "restore", "--in", &file]);
    check_restored_without_backup_key(&g, &src);
}

/// A peer backup of a token with no backup key restores everything but that key.
fn check_restored_without_backup_key(b: &Env, src: &Source) {
    assert_eq!(keys(b), keys(&src.env));
    let plain = field(&ok(b, &["decrypt", "--ciphertext-blob", &src.blob_v1]), "Plaintext");
    assert_eq!(cli_support::unb64(&plain), b"quarterly numbers");
    assert_eq!(info(b)["BackupKey"], false);
}
