//! The file commands end to end: the `pkms` binary against the in-process token (its flash in a
//! temporary file), and openssl (at /usr/bin/openssl) as the independent verifier.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

#[path = "../lib/tests/support/pseudo_random.rs"]
mod pseudo_random;

struct Env {
    dir: tempfile::TempDir,
    device: String,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let device = format!("inprocess:{}", dir.path().join("token.flash").display());
        Env { dir, device }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn pkms(&self, args: &[&str]) -> Output {
        self.pkms_stdin(args, None)
    }

    fn pkms_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pkms"));
        cmd.args(args)
            .env("PKMS_DEVICE", &self.device)
            .env("PKMS_HOME", self.dir.path().join("home"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        let input = stdin.map(<[u8]>::to_vec).unwrap_or_default();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }

    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.pkms(args);
        assert!(out.status.success(), "pkms {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.pkms(args);
        assert!(!out.status.success(), "pkms {args:?} should have failed");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn create_key(&self, extra: &[&str]) -> String {
        let mut args = vec!["create-key", "--output", "json"];
        args.extend_from_slice(extra);
        let v: Value = serde_json::from_slice(&self.ok(&args)).unwrap();
        v["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned()
    }

    fn files_in_dir(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        v.sort();
        v
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn openssl(args: &[&str]) -> Output {
    Command::new("/usr/bin/openssl").args(args).output().expect("openssl is installed at /usr/bin/openssl")
}

#[test]
fn encrypt_decrypt_files_and_pipes_and_tampering() {
    let env = Env::new();
    let key = env.create_key(&[]);
    let (input, enc, dec) = (env.path("in.bin"), env.path("in.pkms"), env.path("out.bin"));
    let data = pseudo_random::bytes(300_000, 1);
    std::fs::write(&input, &data).unwrap();
    let out = env.ok(&["encrypt-file", "--key-id", &key, "--encryption-context", "f=1", s(&input), s(&enc)]);
    assert!(out.is_empty(), "nothing on stdout when writing a file");
    env.ok(&["decrypt-file", s(&enc), s(&dec)]);
    assert_eq!(std::fs::read(&dec).unwrap(), data);
    // A required context pair the file lacks.
    let err = env.fails(&["decrypt-file", "--encryption-context", "f=2", s(&enc), s(&env.path("x"))]);
    assert!(err.contains("has no pair f=2"), "{err}");

    // Empty file.
    let (empty, e_enc, e_dec) = (env.path("empty"), env.path("e.pkms"), env.path("e.out"));
    std::fs::write(&empty, b"").unwrap();
    env.ok(&["encrypt-file", "--key-id", &key, s(&empty), s(&e_enc)]);
    env.ok(&["decrypt-file", s(&e_enc), s(&e_dec)]);
    assert_eq!(std::fs::read(&e_dec).unwrap(), b"");

    // stdin → stdout both ways.
    let piped = env.pkms_stdin(&["encrypt-file", "--key-id", &key, "-", "-"], Some(&data[..100_000]));
    assert!(piped.status.success());
    let back = env.pkms_stdin(&["decrypt-file", "-", "-"], Some(&piped.stdout));
    assert!(back.status.success(), "{}", String::from_utf8_lossy(&back.stderr));
    assert_eq!(back.stdout, &data[..100_000]);

    // A flipped byte in the body: non-zero exit, the segment named, no output file left.
    let before = env.files_in_dir();
    let mut bad = std::fs::read(&enc).unwrap();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    let flip = env.path("flip.pkms");
    std::fs::write(&flip, &bad).unwrap();
    let err = env.fails(&["decrypt-file", s(&flip), s(&env.path("flip.out"))]);
    assert!(err.contains("segment 2: authentication failed"), "{err}");
    assert!(!env.path("flip.out").exists());
    let mut after = env.files_in_dir();
    after.retain(|f| f != "flip.pkms");
    assert_eq!(after, before, "no temporary file left behind");
    // Flipped bytes on stdout: nothing of the failing segment is written.
    let out = env.pkms_stdin(&["decrypt-file", "-", "-"], Some(&bad));
    assert!(!out.status.success());
    assert_eq!(out.stdout, &data[..2 * 65536], "only the verified segments 0 and 1");

    // Truncation.
    let trunc = env.path("trunc.pkms");
    std::fs::write(&trunc, &std::fs::read(&enc).unwrap()[..200_000]).unwrap();
    let err = env.fails(&["decrypt-file", s(&trunc), s(&env.path("trunc.out"))]);
    assert!(err.contains("truncated"), "{err}");
    assert!(!env.path("trunc.out").exists());
    // A header flip.
    let mut bad = std::fs::read(&enc).unwrap();
    bad[30] ^= 1;
    std::fs::write(&flip, &bad).unwrap();
    let err = env.fails(&["decrypt-file", s(&flip), s(&env.path("flip.out"))]);
    assert!(err.contains("header: authentication failed"), "{err}");
    // Not a pkms file at all.
    let err = env.fails(&["decrypt-file", s(&input), s(&env.path("flip.out"))]);
    assert!(err.contains("bad magic"), "{err}");
}

#[test]
fn directories_with_a_data_key_cache() {
    let env = Env::new();
    let key = env.create_key(&[]);
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    for i in 0..5 {
        std::fs::write(src.join(format!("f{i}.txt")), pseudo_random::bytes(1000 + i, i as u64)).unwrap();
    }
    std::fs::write(src.join("sub/g.txt"), b"nested").unwrap();
    let enc = env.path("enc");
    env.ok(&[
        "encrypt-file",
        "--key-id",
        &key,
        "--out-dir",
        s(&enc),
        "--cache-max-age",
        "60",
        "--cache-max-messages",
        "3",
        s(&src),
    ]);
    assert!(enc.join("sub/g.txt.pkms").exists());
    // 6 files, at most 3 per data key: exactly 2 distinct wrapped keys.
    let mut wrapped = std::collections::BTreeSet::new();
    for name in ["f0.txt", "f1.txt", "f2.txt", "f3.txt", "f4.txt", "sub/g.txt"] {
        let bytes = std::fs::read(enc.join(format!("{name}.pkms"))).unwrap();
        let n = u16::from_be_bytes([bytes[58], bytes[59]]) as usize;
        wrapped.insert(bytes[60..60 + n].to_vec());
    }
    assert_eq!(wrapped.len(), 2);
    let plain = env.path("plain");
    let files: Vec<String> = ["f0.txt", "f3.txt", "sub/g.txt"]
        .iter()
        .map(|n| enc.join(format!("{n}.pkms")).to_str().unwrap().to_owned())
        .collect();
    let mut args = vec!["decrypt-file", "--out-dir", s(&plain), "--cache-max-age", "60"];
    args.extend(files.iter().map(String::as_str));
    env.ok(&args);
    assert_eq!(std::fs::read(plain.join("f3.txt")).unwrap(), pseudo_random::bytes(1003, 3));
    assert_eq!(std::fs::read(plain.join("g.txt")).unwrap(), b"nested");
    // A directory needs --out-dir.
    let err = env.fails(&["encrypt-file", "--key-id", &key, s(&src), s(&env.path("x"))]);
    assert!(err.contains("is a directory: give --out-dir"), "{err}");
    // Without --out-dir, two paths exactly.
    let err = env.fails(&["encrypt-file", "--key-id", &key, s(&src.join("f0.txt"))]);
    assert!(err.contains("give IN and OUT"), "{err}");
}

#[test]
fn sign_file_is_verified_by_openssl_and_verify_file() {
    let env = Env::new();
    let key = env.create_key(&["--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"]);
    let pem = env.ok(&["get-public-key", "--key-id", &key, "--output", "pem"]);
    let pub_pem = env.path("pub.pem");
    std::fs::write(&pub_pem, &pem).unwrap();
    let artifact = env.path("app.tar");
    std::fs::write(&artifact, pseudo_random::bytes(1_000_000, 9)).unwrap();

    // Plain sign-file prints nothing on stdout: the signature is in FILE.sig.
    let out = env.ok(&["sign-file", "--key-id", &key, s(&artifact)]);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    let sig = env.path("app.tar.sig");
    let out = env.ok(&["sign-file", "--key-id", &key, "--output", "json", s(&artifact)]);
    let named: Value =
        serde_json::from_slice(&out).expect("--output json names the signature, not its bytes");
    assert_eq!(named["SignatureFile"], s(&sig));
    assert_eq!(named["KeyVersion"], 1);
    let o = openssl(&["dgst", "-sha256", "-verify", s(&pub_pem), "-signature", s(&sig), s(&artifact)]);
    assert!(o.status.success(), "openssl: {}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "Verified OK");

    // Offline verification: with an unreachable device, so no token can be involved.
    let offline = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pkms"))
            .args(args)
            .env("PKMS_DEVICE", "unix:/nonexistent/token.sock")
            .output()
            .unwrap()
    };
    let v = offline(&["verify-file", "--public-key", s(&pub_pem), "--signature", s(&sig), s(&artifact)]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let j: Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(j["SignatureValid"], true);
    // DER public key works too; the default signature path is FILE.sig.
    let der = openssl(&["pkey", "-pubin", "-in", s(&pub_pem), "-outform", "DER"]).stdout;
    let pub_der = env.path("pub.der");
    std::fs::write(&pub_der, der).unwrap();
    assert!(offline(&["verify-file", "--public-key", s(&pub_der), s(&artifact)]).status.success());
    // Through the token.
    env.ok(&["verify-file", "--key-id", &key, s(&artifact)]);

    // A changed file is rejected, offline and on the token.
    let mut changed = std::fs::read(&artifact).unwrap();
    changed.push(b'x');
    let changed_path = env.path("changed.tar");
    std::fs::write(&changed_path, &changed).unwrap();
    let v = offline(&["verify-file", "--public-key", s(&pub_pem), "--signature", s(&sig), s(&changed_path)]);
    assert!(!v.status.success());
    assert!(String::from_utf8_lossy(&v.stderr).contains("Verification failure"));
    env.fails(&["verify-file", "--key-id", &key, "--signature", s(&sig), s(&changed_path)]);
    // Another key's public key is rejected.
    let other = env.create_key(&["--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"]);
    let other_pem = env.path("other.pem");
    std::fs::write(&other_pem, env.ok(&["get-public-key", "--key-id", &other, "--output", "pem"])).unwrap();
    assert!(!offline(&["verify-file", "--public-key", s(&other_pem), s(&artifact)]).status.success());

    // JSON envelope: names the key and digest; verify-file checks the digest and the signature.
    let env_path = env.path("app.sig.json");
    env.ok(&["sign-file", "--key-id", &key, "--format", "json", "--out", s(&env_path), s(&artifact)]);
    let j: Value = serde_json::from_slice(&std::fs::read(&env_path).unwrap()).unwrap();
    assert_eq!(j["KeyId"], key.as_str());
    assert_eq!(j["KeyVersion"], 1);
    assert_eq!(j["SigningAlgorithm"], "ECDSA_SHA_256");
    let sha = Command::new("sha256sum").arg(&artifact).output().unwrap().stdout;
    assert_eq!(j["Digest"].as_str().unwrap(), String::from_utf8_lossy(&sha[..64]));
    assert!(offline(&[
        "verify-file",
        "--public-key",
        s(&pub_pem),
        "--signature",
        s(&env_path),
        s(&artifact)
    ])
    .status
    .success());
    let v =
        offline(&["verify-file", "--public-key", s(&pub_pem), "--signature", s(&env_path), s(&changed_path)]);
    assert!(String::from_utf8_lossy(&v.stderr).contains("but the signature envelope signed"));
    // With no key given, the envelope's key id is used on the token.
    env.ok(&["verify-file", "--signature", s(&env_path), s(&artifact)]);

    // `--out -` writes the DER signature to stdout.
    let der_sig = env.ok(&["sign-file", "--key-id", &key, "--out", "-", s(&artifact)]);
    assert_eq!(der_sig[0], 0x30);
}

#[test]
fn verify_file_accepts_openssl_signatures_without_a_token() {
    let env = Env::new();
    let (key, pub_pem) = (env.path("k.pem"), env.path("p.pem"));
    assert!(openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", s(&key)])
        .status
        .success());
    assert!(openssl(&["ec", "-in", s(&key), "-pubout", "-out", s(&pub_pem)]).status.success());
    let file = env.path("data");
    std::fs::write(&file, b"release 1.0\n").unwrap();
    let sig = env.path("data.sig");
    assert!(openssl(&["dgst", "-sha256", "-sign", s(&key), "-out", s(&sig), s(&file)]).status.success());
    let run = |f: &Path| {
        Command::new(env!("CARGO_BIN_EXE_pkms"))
            .args(["verify-file", "--public-key", s(&pub_pem), "--signature", s(&sig), s(f)])
            .env("PKMS_DEVICE", "unix:/nonexistent/token.sock")
            .output()
            .unwrap()
    };
    assert!(run(&file).status.success());
    std::fs::write(&file, b"release 1.1\n").unwrap();
    assert!(!run(&file).status.success());
}

#[test]
fn sign_manifest_covers_every_listed_file() {
    let env = Env::new();
    let key = env.create_key(&["--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"]);
    let dist = env.path("dist");
    std::fs::create_dir_all(dist.join("docs")).unwrap();
    std::fs::write(dist.join("a.bin"), pseudo_random::bytes(5000, 1)).unwrap();
    std::fs::write(dist.join("b.bin"), pseudo_random::bytes(7000, 2)).unwrap();
    std::fs::write(dist.join("docs/readme.txt"), b"hello").unwrap();
    let manifest = dist.join("SHA256SUMS");
    env.ok(&["sign-manifest", "--key-id", &key, "--out", s(&manifest), s(&dist)]);
    let text = std::fs::read_to_string(&manifest).unwrap();
    let names: Vec<&str> = text.lines().map(|l| &l[66..]).collect();
    assert_eq!(names, ["a.bin", "b.bin", "docs/readme.txt"], "{text}");
    // sha256sum -c reads it.
    let c = Command::new("sha256sum").args(["-c", "SHA256SUMS"]).current_dir(&dist).output().unwrap();
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stdout));
    // openssl verifies the manifest's signature.
    let pub_pem = env.path("pub.pem");
    std::fs::write(&pub_pem, env.ok(&["get-public-key", "--key-id", &key, "--output", "pem"])).unwrap();
    let sig = dist.join("SHA256SUMS.sig");
    let o = openssl(&["dgst", "-sha256", "-verify", s(&pub_pem), "-signature", s(&sig), s(&manifest)]);
    assert!(o.status.success());
    // verify-file checks the signature and every listed file.
    let v: Value =
        serde_json::from_slice(&env.ok(&["verify-file", "--public-key", s(&pub_pem), s(&manifest)])).unwrap();
    assert_eq!(v["Files"].as_array().unwrap().len(), 3);
    assert!(v["Files"].as_array().unwrap().iter().all(|f| f["Status"] == "OK"));
    std::fs::write(dist.join("b.bin"), b"tampered").unwrap();
    let out = env.pkms(&["verify-file", "--public-key", s(&pub_pem), s(&manifest)]);
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Files"][1]["Status"], "FAILED");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 listed file(s) are missing or changed"));
    // --signature-only checks just the manifest.
    env.ok(&["verify-file", "--public-key", s(&pub_pem), "--signature-only", s(&manifest)]);
}

#[test]
fn every_file_command_has_help_with_an_example() {
    let env = Env::new();
    for cmd in ["encrypt-file", "decrypt-file", "sign-file", "verify-file", "sign-manifest"] {
        let out = env.ok(&[cmd, "--help"]);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("Example"), "{cmd}: {text}");
        assert!(text.contains(&format!("pkms {cmd}")), "{cmd}: {text}");
    }
}

/// The JSON error on stderr, after any warning lines (an open token gets one).
fn stderr_json(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let start = if stderr.starts_with('{') { 0 } else { stderr.find("\n{").map_or(0, |i| i + 1) };
    serde_json::from_str(&stderr[start..])
        .unwrap_or_else(|e| panic!("stderr is not a JSON error ({e}): {stderr}"))
}

/// A refusal by the token keeps its KMS error type and exit status through the file commands
/// (the data key and signing go through the library's key service); a data key the token will
/// not unwrap is reported with the file's name and what failed.
#[test]
fn token_refusals_in_file_commands_keep_their_error_type() {
    let env = Env::new();
    let plain = env.path("plain.bin");
    std::fs::write(&plain, b"some bytes").unwrap();
    let enc = env.path("plain.pkms");
    let missing = "01234567-89ab-cdef-0123-456789abcdef";
    let out = env.pkms(&["encrypt-file", "--key-id", missing, s(&plain), s(&enc)]);
    assert_eq!(out.status.code(), Some(254), "{}", String::from_utf8_lossy(&out.stderr));
    let err = stderr_json(&out);
    assert_eq!(err["__type"], "NotFoundException");
    assert!(!enc.exists(), "no output without a data key");

    let key = env.create_key(&[]);
    env.ok(&["encrypt-file", "--key-id", &key, s(&plain), s(&enc)]);
    let out = env.pkms(&["sign-file", "--key-id", &key, s(&plain)]);
    assert_eq!(out.status.code(), Some(254), "{}", String::from_utf8_lossy(&out.stderr));
    let err = stderr_json(&out);
    assert_eq!(err["__type"], "InvalidKeyUsageException");

    env.ok(&["disable-key", "--key-id", &key]);
    let out = env.pkms(&["decrypt-file", s(&enc), s(&env.path("back.bin"))]);
    assert_eq!(out.status.code(), Some(254), "{}", String::from_utf8_lossy(&out.stderr));
    let err = stderr_json(&out);
    assert_eq!(err["__type"], "DisabledException");
    let message = err["message"].as_str().unwrap();
    let want = format!(
        "{}: header: the token could not decrypt the file's data key: DisabledException",
        enc.display()
    );
    assert!(message.starts_with(&want), "{message}");
}
