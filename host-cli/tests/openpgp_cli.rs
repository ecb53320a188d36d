//! OpenPGP end to end: `pkms openpgp export` and `pkms sign-file --format openpgp` against the
//! in-process token, with gpg (a private GNUPGHOME, --batch) as the independent verifier and
//! rPGP (pkms_lib's parser) as a second one.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cli_support::{error_type, field, Env};
use pkms_lib::sigformat::openpgp::{Certificate, DetachedSig};

/// gpg with its own home; skipped (with a note) only where gpg is not installed, which
/// scripts/setup.sh prevents.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        let home = tempfile::Builder::new().prefix("pkms-gpg").tempdir().expect("gpg home");
        let mut perms = std::fs::metadata(home.path()).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
        std::fs::set_permissions(home.path(), perms).unwrap();
        Gpg { home }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("gpg")
            .arg("--batch")
            .arg("--no-tty")
            .args(args)
            .env("GNUPGHOME", self.home.path())
            .output()
            .expect("gpg is installed (scripts/setup.sh installs gnupg)")
    }

    #[track_caller]
    fn import(&self, cert: &Path) {
        let out = self.run(&["--import", s(cert)]);
        assert!(out.status.success(), "gpg --import failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Whether gpg says "Good signature", and its stderr.
    fn verify(&self, sig: &Path, file: &Path) -> (bool, String) {
        let out = self.run(&["--verify", s(sig), s(file)]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success() && err.contains("Good signature"), err)
    }

    /// Fingerprints of the imported primary keys.
    fn fingerprints(&self) -> Vec<String> {
        let out = self.run(&["--with-colons", "--list-keys"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut fprs = Vec::new();
        let mut want = false;
        for line in text.lines() {
            if line.starts_with("pub:") {
                want = true;
            } else if want && line.starts_with("fpr:") {
                fprs.push(line.split(':').nth(9).unwrap_or_default().to_owned());
                want = false;
            }
        }
        fprs
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn create_key(env: &Env, spec: &str, usage: &str) -> String {
    let v = env.json(&["create-key", "--key-spec", spec, "--key-usage", usage, "--output", "json"]);
    field(&v, "KeyMetadata.KeyId")
}

#[track_caller]
fn export(env: &Env, key: &str, user_id: &str, version: Option<&str>, name: &str) -> (PathBuf, Certificate) {
    let mut args = vec!["openpgp", "export", "--key-id", key, "--user-id", user_id];
    if let Some(v) = version {
        args.extend(["--key-version", v]);
    }
    let out = env.run(&args);
    assert!(out.status.success(), "export failed: {}", String::from_utf8_lossy(&out.stderr));
    let path = env.file(name);
    std::fs::write(&path, &out.stdout).unwrap();
    let cert = Certificate::parse(&out.stdout).expect("rPGP parses the certificate and its self-signature");
    (path, cert)
}

#[track_caller]
fn sign(env: &Env, key: &str, files: &[&Path]) {
    let mut args = vec!["sign-file", "--key-id", key, "--format", "openpgp"];
    args.extend(files.iter().map(|f| s(f)));
    let out = env.run(&args);
    assert!(out.status.success(), "sign-file failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn asc(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}.asc", p.display()))
}

/// Export, import into gpg, sign two files in one command, verify with gpg, rPGP and
/// verify-file; a changed file fails everywhere.
fn round_trip(spec: &str) {
    let env = Env::in_process();
    let gpg = Gpg::new();
    let key = create_key(&env, spec, "SIGN_VERIFY");
    let (cert_path, cert) = export(&env, &key, "Release Team <release@example.com>", None, "cert.asc");
    assert_eq!(cert.user_ids(), vec!["Release Team <release@example.com>".to_owned()]);
    // Stable across calls: the creation time is the key version's.
    let (again_path, again) = export(&env, &key, "Release Team <release@example.com>", None, "cert2.asc");
    assert_eq!(cert.fingerprint_hex(), again.fingerprint_hex());
    assert_eq!(std::fs::read(&again_path).unwrap(), std::fs::read(&cert_path).unwrap());
    // Another user ID: a new self-signature, the same key.
    let (_, other) = export(&env, &key, "Other <other@example.com>", None, "cert3.asc");
    assert_eq!(other.fingerprint_hex(), cert.fingerprint_hex());
    assert_eq!(other.user_ids(), vec!["Other <other@example.com>".to_owned()]);
    gpg.import(&cert_path);
    assert_eq!(gpg.fingerprints(), vec![cert.fingerprint_hex()]);

    let a = env.file("a.jar");
    let b = env.file("b.pom");
    std::fs::write(&a, b"artifact bytes\n").unwrap();
    std::fs::write(&b, vec![0x5a; 300_000]).unwrap();
    sign(&env, &key, &[&a, &b]);
    for f in [&a, &b] {
        let text = std::fs::read_to_string(asc(f)).unwrap();
        assert!(text.starts_with("-----BEGIN PGP SIGNATURE-----"), "{text}");
        let sig = DetachedSig::parse(text.as_bytes()).unwrap();
        assert_eq!(sig.issuer_fingerprints(), vec![cert.fingerprint_hex()]);
        sig.verify_with_certificate(&cert, std::fs::File::open(f).unwrap()).unwrap();
        let (good, err) = gpg.verify(&asc(f), f);
        assert!(good, "gpg --verify: {err}");
    }
    // Offline with the certificate, and with the token's key.
    let v = env.json(&["verify-file", "--public-key", s(&cert_path), s(&a), "--output", "json"]);
    assert_eq!(v["SignatureValid"], true);
    assert_eq!(field(&v, "Fingerprint"), cert.fingerprint_hex());
    let v =
        env.json(&["verify-file", "--key-id", &key, "--signature", s(&asc(&b)), s(&b), "--output", "json"]);
    assert_eq!(v["KeyVersion"], 1);
    // An alias names the key as well.
    assert!(env
        .run(&["create-alias", "--alias-name", "alias/release", "--target-key-id", &key])
        .status
        .success());
    let v = env.json(&["verify-file", "--key-id", "alias/release", s(&b), "--output", "json"]);
    assert_eq!(field(&v, "KeyId"), key);

    std::fs::write(&a, b"artifact bytes, changed\n").unwrap();
    let (good, err) = gpg.verify(&asc(&a), &a);
    assert!(!good, "gpg accepted a changed file: {err}");
    assert!(err.contains("BAD signature"), "{err}");
    // An invalid signature is 254 and KMSInvalidSignatureException in every format, offline too.
    for args in [["--public-key", s(&cert_path)], ["--key-id", key.as_str()]] {
        let out = env.run(&["verify-file", args[0], args[1], s(&a)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{err}");
        assert!(
            err.contains("KMSInvalidSignatureException") && err.contains("Verification failure"),
            "{err}"
        );
    }
}

#[test]
fn ecdsa_p256_certificate_and_signatures_verify_with_gpg() {
    round_trip("ECC_NIST_P256");
}

#[test]
fn ed25519_certificate_and_signatures_verify_with_gpg() {
    round_trip("ECC_NIST_EDWARDS25519");
}

#[test]
fn a_directory_is_signed_file_by_file_in_one_command() {
    let env = Env::in_process();
    let gpg = Gpg::new();
    let key = create_key(&env, "ECC_NIST_P256", "SIGN_VERIFY");
    let (cert_path, _) = export(&env, &key, "Maven <m@example.com>", None, "cert.asc");
    gpg.import(&cert_path);
    let dir = env.file("staging");
    std::fs::create_dir_all(dir.join("com/example/1.0")).unwrap();
    let files: Vec<PathBuf> =
        ["app-1.0.jar", "app-1.0.pom", "com/example/1.0/lib-1.0.jar"].iter().map(|n| dir.join(n)).collect();
    for (i, f) in files.iter().enumerate() {
        std::fs::write(f, format!("file {i}\n")).unwrap();
    }
    let checksum = dir.join("app-1.0.jar.sha1");
    std::fs::write(&checksum, b"0123\n").unwrap();
    sign(&env, &key, &[&dir]);
    for f in &files {
        let (good, err) = gpg.verify(&asc(f), f);
        assert!(good, "{}: {err}", f.display());
    }
    assert!(!asc(&checksum).exists(), "checksums are not signed");
    // Signing again re-signs the files, not the signatures.
    sign(&env, &key, &[&dir]);
    assert!(!asc(&asc(&files[0])).exists());
}

#[test]
fn stdin_is_signed_to_stdout() {
    let env = Env::in_process();
    let gpg = Gpg::new();
    let key = create_key(&env, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY");
    let (cert_path, _) = export(&env, &key, "S <s@example.com>", None, "cert.asc");
    gpg.import(&cert_path);
    // The test's stdin is empty: the signature is of no bytes.
    let out = env.run(&["sign-file", "--key-id", &key, "--format", "openpgp", "-"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sig = env.file("stdin.asc");
    std::fs::write(&sig, &out.stdout).unwrap();
    let empty = env.file("empty");
    std::fs::write(&empty, b"").unwrap();
    let (good, err) = gpg.verify(&sig, &empty);
    assert!(good, "{err}");
}

#[test]
fn rotation_signs_with_the_newest_version_and_old_signatures_keep_verifying() {
    let env = Env::in_process();
    let gpg = Gpg::new();
    let key = create_key(&env, "ECC_NIST_P256", "SIGN_VERIFY");
    let (v1_path, v1) = export(&env, &key, "R <r@example.com>", None, "v1.asc");
    let old = env.file("old.bin");
    std::fs::write(&old, b"old release\n").unwrap();
    sign(&env, &key, &[&old]);

    env.json(&["rotate-key-on-demand", "--key-id", &key, "--allow-signing-key-rotation", "--output", "json"]);
    let (v2_path, v2) = export(&env, &key, "R <r@example.com>", None, "v2.asc");
    assert_ne!(v1.fingerprint_hex(), v2.fingerprint_hex(), "each version is its own OpenPGP key");
    // The token signs only with version 2 now: version 1's certificate is rebuilt from the
    // self-signature kept in a tag when it was exported, byte for byte.
    let (v1_again_path, v1_again) = export(&env, &key, "R <r@example.com>", Some("1"), "v1-again.asc");
    assert_eq!(v1_again.fingerprint_hex(), v1.fingerprint_hex());
    assert_eq!(std::fs::read(&v1_again_path).unwrap(), std::fs::read(&v1_path).unwrap());
    let err = env.fails(
        &["openpgp", "export", "--key-id", &key, "--user-id", "Other <o@x>", "--key-version", "1"],
        252,
    );
    assert!(err.contains("certifies another user ID"), "{err}");

    let new = env.file("new.bin");
    std::fs::write(&new, b"new release\n").unwrap();
    sign(&env, &key, &[&new]);
    let new_sig = DetachedSig::parse(&std::fs::read(asc(&new)).unwrap()).unwrap();
    assert_eq!(new_sig.issuer_fingerprints(), vec![v2.fingerprint_hex()]);

    gpg.import(&v1_path);
    gpg.import(&v2_path);
    for f in [&old, &new] {
        let (good, err) = gpg.verify(&asc(f), f);
        assert!(good, "{}: {err}", f.display());
    }
    // The old signature does not verify with the new certificate; verify-file --key-id finds
    // the version it names.
    let out = env.run(&["verify-file", "--public-key", s(&v2_path), s(&old)]);
    assert!(!out.status.success());
    let v = env.json(&["verify-file", "--key-id", &key, s(&old), "--output", "json"]);
    assert_eq!(v["KeyVersion"], 1);
    let v = env.json(&["verify-file", "--key-id", &key, s(&new), "--output", "json"]);
    assert_eq!(v["KeyVersion"], 2);
}

#[test]
fn an_old_version_never_exported_cannot_be_certified_after_rotation() {
    let env = Env::in_process();
    let key = create_key(&env, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY");
    env.json(&["rotate-key-on-demand", "--key-id", &key, "--allow-signing-key-rotation", "--output", "json"]);
    let err = env.fails(
        &[
            "openpgp",
            "export",
            "--key-id",
            &key,
            "--user-id",
            "A <a@x>",
            "--key-version",
            "1",
            "--output",
            "json",
        ],
        252,
    );
    assert_eq!(error_type(&err), "UnsupportedOperationException", "{err}");
    assert!(
        err.contains("signs only with the newest version (2)") && err.contains("pkms:openpgp:v1"),
        "{err}"
    );
    // The newest version exports as ever.
    export(&env, &key, "A <a@x>", None, "v2.asc");
}

#[test]
fn keys_openpgp_cannot_use_are_refused() {
    let env = Env::in_process();
    let file = env.file("f.bin");
    std::fs::write(&file, b"x").unwrap();
    for (spec, usage) in [
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
        ("ML_DSA_44", "SIGN_VERIFY"),
        ("ECC_NIST_P256", "KEY_AGREEMENT"),
    ] {
        let key = create_key(&env, spec, usage);
        let err = env
            .fails(&["openpgp", "export", "--key-id", &key, "--user-id", "A <a@x>", "--output", "json"], 252);
        assert_eq!(error_type(&err), "InvalidKeyUsageException", "{spec}: {err}");
        assert!(err.contains(spec) && err.contains("ECC_NIST_P256 or ECC_NIST_EDWARDS25519"), "{err}");
        let err = env.fails(
            &["sign-file", "--key-id", &key, "--format", "openpgp", s(&file), "--output", "json"],
            252,
        );
        assert_eq!(error_type(&err), "InvalidKeyUsageException", "{spec}: {err}");
        assert!(!asc(&file).exists());
    }
}

#[test]
fn bad_arguments_are_refused_with_clear_errors() {
    let env = Env::in_process();
    let key = create_key(&env, "ECC_NIST_P256", "SIGN_VERIFY");
    for bad in ["", "  ", "Name <a@x>\nForged <b@y>", "bell\u{7}"] {
        let err =
            env.fails(&["openpgp", "export", "--key-id", &key, "--user-id", bad, "--output", "json"], 252);
        assert!(err.contains("bad user ID"), "{bad:?}: {err}");
    }
    let missing = env.file("missing.bin");
    let err = env.fails(&["sign-file", "--key-id", &key, "--format", "openpgp", s(&missing)], 252);
    assert!(err.contains("missing.bin"), "{err}");
    let err = env
        .fails(&["openpgp", "export", "--key-id", &key, "--user-id", "A <a@x>", "--key-version", "7"], 252);
    assert!(err.contains("has no version 7 (versions held: 1..=1)"), "{err}");
    let a = env.file("a");
    let b = env.file("b");
    std::fs::write(&a, b"a").unwrap();
    std::fs::write(&b, b"b").unwrap();
    let err = env.fails(&["sign-file", "--key-id", &key, s(&a), s(&b)], 252);
    assert!(err.contains("sign one FILE"), "{err}");
    let err = env
        .fails(&["sign-file", "--key-id", &key, "--format", "openpgp", "--out", "x.asc", s(&a), s(&b)], 252);
    assert!(err.contains("--out"), "{err}");
    let err = env.fails(&["sign-manifest", "--key-id", &key, "--format", "openpgp", s(&a)], 252);
    assert!(err.contains("der, json, ssh or minisign"), "{err}");
    // verify-file of an OpenPGP signature needs a certificate or a key.
    sign(&env, &key, &[&a]);
    let err = env.fails(&["verify-file", s(&a)], 252);
    assert!(err.contains("--public-key"), "{err}");
    let out = env.run(&["sign-file", "--key-id", &key, "--format", "bogus", s(&a)]);
    assert_eq!(out.status.code(), Some(2));
}
