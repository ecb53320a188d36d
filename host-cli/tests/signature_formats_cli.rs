//! Signatures in the formats other verifiers read, each checked by that verifier: OpenSSH
//! public keys and SSHSIG (`ssh-keygen -Y verify`), `pkms ssh-agent` under ssh-add, ssh-keygen,
//! git (`gpg.format=ssh`) and ssh logging in to a loopback sshd, and minisign (`minisign -V`).
//! The `pkms` binary runs against the in-process token.
//!
//! The verifiers come from scripts/setup.sh (openssh-client, openssh-server, git, minisign). A
//! test skips, loudly, only when one is missing and this is not root (which could install it);
//! as root (CI) a missing verifier fails the test.

mod cli_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cli_support::{error_type, field, key_arn, Env};

/// The path of `tool`, or `None` (after a loud message) when the test must skip.
fn tool(name: &str) -> Option<PathBuf> {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    assert!(
        !root,
        "{name} is missing: scripts/setup.sh installs it (running as root, so this test must run)"
    );
    eprintln!("\n*** SKIPPED: {name} is not installed (run scripts/setup.sh as root to install it) ***\n");
    None
}

fn tools(names: &[&str]) -> Option<Vec<PathBuf>> {
    names.iter().map(|n| tool(n)).collect()
}

#[track_caller]
fn ok(env: &Env, args: &[&str]) -> Vec<u8> {
    let out = env.run(args);
    assert!(out.status.success(), "pkms {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn create_key(env: &Env, spec: &str, usage: &str) -> String {
    let v = env.json(&["create-key", "--key-spec", spec, "--key-usage", usage]);
    field(&v, "KeyMetadata.KeyId")
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run the verifier")
}

#[track_caller]
fn succeeds(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[track_caller]
fn refuses(cmd: &mut Command) {
    let out = run(cmd);
    assert!(!out.status.success(), "{cmd:?} should have failed: {}", String::from_utf8_lossy(&out.stdout));
}

/// `ssh-keygen -Y verify` of `file` against `sig`, trusting `public_line` for signer@example.
fn ssh_keygen_verify(
    keygen: &Path,
    dir: &Path,
    public_line: &str,
    namespace: &str,
    file: &Path,
    sig: &Path,
) -> Command {
    let allowed = dir.join("allowed_signers");
    let key: Vec<&str> = public_line.split_whitespace().take(2).collect();
    std::fs::write(&allowed, format!("signer@example {}\n", key.join(" "))).unwrap();
    let mut cmd = Command::new(keygen);
    cmd.args(["-Y", "verify", "-f"])
        .arg(&allowed)
        .args(["-I", "signer@example", "-n", namespace, "-s"])
        .arg(sig)
        .stdin(std::fs::File::open(file).unwrap());
    cmd
}

#[test]
fn ssh_public_keys_and_sshsig_files_verify_with_ssh_keygen() {
    let Some(t) = tools(&["ssh-keygen"]) else { return };
    let keygen = &t[0];
    let env = Env::in_process();
    for (spec, prefix) in [
        ("ECC_NIST_P256", "ecdsa-sha2-nistp256 AAAA"),
        ("ECC_NIST_P384", "ecdsa-sha2-nistp384 AAAA"),
        ("ECC_NIST_EDWARDS25519", "ssh-ed25519 AAAA"),
    ] {
        let k = create_key(&env, spec, "SIGN_VERIFY");
        let line =
            String::from_utf8(ok(&env, &["get-public-key", "--key-id", &k, "--output", "ssh"])).unwrap();
        assert!(line.starts_with(prefix), "{line}");
        assert!(line.trim_end().ends_with(&format!(" {}", key_arn(&k))), "the comment names the key: {line}");
        let pub_path = env.file(&format!("{spec}.pub"));
        std::fs::write(&pub_path, &line).unwrap();
        // ssh-keygen reads the line as a public key.
        succeeds(Command::new(keygen).arg("-l").arg("-f").arg(&pub_path));

        // Two files in one command, default namespace "file".
        let a = env.file(&format!("{spec}-a.bin"));
        let b = env.file(&format!("{spec}-b.bin"));
        std::fs::write(&a, b"artifact a\n").unwrap();
        std::fs::write(&b, vec![7u8; 300_000]).unwrap();
        ok(&env, &["sign-file", "--key-id", &k, "--format", "ssh", a.to_str().unwrap(), b.to_str().unwrap()]);
        let sig_a = PathBuf::from(format!("{}.sig", a.display()));
        let sig_b = PathBuf::from(format!("{}.sig", b.display()));
        assert!(std::fs::read_to_string(&sig_a).unwrap().starts_with("-----BEGIN SSH SIGNATURE-----\n"));
        succeeds(&mut ssh_keygen_verify(keygen, env.file("").as_path(), &line, "file", &a, &sig_a));
        succeeds(&mut ssh_keygen_verify(keygen, env.file("").as_path(), &line, "file", &b, &sig_b));
        refuses(&mut ssh_keygen_verify(keygen, env.file("").as_path(), &line, "git", &a, &sig_a));
        refuses(&mut ssh_keygen_verify(keygen, env.file("").as_path(), &line, "file", &b, &sig_a));

        // pkms verify-file: offline with the ssh line, and on the token.
        let v = env.json(&["verify-file", "--public-key", pub_path.to_str().unwrap(), a.to_str().unwrap()]);
        assert_eq!(v["SignatureValid"], true);
        assert_eq!(v["Format"], "SSHSIG");
        assert_eq!(v["Namespace"], "file");
        let v = env.json(&["verify-file", "--key-id", &k, b.to_str().unwrap()]);
        assert_eq!((v["KeyId"].as_str().unwrap(), v["KeyVersion"].as_u64()), (key_arn(&k).as_str(), Some(1)));
        let e = env.fails(
            &[
                "verify-file",
                "--public-key",
                pub_path.to_str().unwrap(),
                "--signature",
                sig_a.to_str().unwrap(),
                b.to_str().unwrap(),
            ],
            254,
        );
        assert_eq!(error_type(&e), "KMSInvalidSignatureException", "{e}");
        let e = env.fails(
            &["verify-file", "--key-id", &k, "--signature", sig_a.to_str().unwrap(), b.to_str().unwrap()],
            254,
        );
        assert_eq!(error_type(&e), "KMSInvalidSignatureException", "{e}");
        let e = env.fails(
            &[
                "verify-file",
                "--namespace",
                "git",
                "--public-key",
                pub_path.to_str().unwrap(),
                a.to_str().unwrap(),
            ],
            254,
        );
        assert!(e.contains("namespace \\\"file\\\""), "{e}");

        // A chosen namespace, into a chosen file.
        let out = env.file(&format!("{spec}.gitsig"));
        ok(
            &env,
            &[
                "sign-file",
                "--key-id",
                &k,
                "--format",
                "ssh",
                "--namespace",
                "git",
                "--out",
                out.to_str().unwrap(),
                a.to_str().unwrap(),
            ],
        );
        succeeds(&mut ssh_keygen_verify(keygen, env.file("").as_path(), &line, "git", &a, &out));
        env.json(&[
            "verify-file",
            "--namespace",
            "git",
            "--signature",
            out.to_str().unwrap(),
            "--public-key",
            pub_path.to_str().unwrap(),
            a.to_str().unwrap(),
        ]);
    }
}

#[test]
fn minisign_signatures_verify_with_minisign() {
    let Some(t) = tools(&["minisign"]) else { return };
    let minisign = &t[0];
    let env = Env::in_process();
    let k = create_key(&env, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY");
    let public =
        String::from_utf8(ok(&env, &["get-public-key", "--key-id", &k, "--output", "minisign"])).unwrap();
    assert!(public.starts_with("untrusted comment: minisign public key "), "{public}");
    assert_eq!(
        public,
        String::from_utf8(ok(&env, &["get-public-key", "--key-id", &k, "--output", "minisign"])).unwrap(),
        "same key id every time"
    );
    let pub_path = env.file("e.pub");
    std::fs::write(&pub_path, &public).unwrap();
    let art = env.file("art.bin");
    std::fs::write(&art, b"artifact bytes\n").unwrap();
    ok(&env, &["sign-file", "--key-id", &k, "--format", "minisign", art.to_str().unwrap()]);
    let minisig = env.file("art.bin.minisig");
    let text = std::fs::read_to_string(&minisig).unwrap();
    assert!(
        text.contains("\ntrusted comment: timestamp:") && text.contains("\tfile:art.bin\thashed\n"),
        "{text}"
    );
    let out = succeeds(Command::new(minisign).arg("-Vm").arg(&art).arg("-p").arg(&pub_path));
    assert!(out.contains("Signature and comment signature verified"), "{out}");
    // pkms verify-file finds FILE.minisig by itself.
    let v = env.json(&["verify-file", "--public-key", pub_path.to_str().unwrap(), art.to_str().unwrap()]);
    assert_eq!((v["Format"].as_str(), v["SignatureValid"].as_bool()), (Some("minisign"), Some(true)));
    let v = env.json(&["verify-file", "--key-id", &k, art.to_str().unwrap()]);
    assert_eq!(v["KeyVersion"], 1);

    // A changed file or comment fails both verifiers.
    std::fs::write(&art, b"artifact bytes!\n").unwrap();
    refuses(Command::new(minisign).arg("-Vm").arg(&art).arg("-p").arg(&pub_path));
    let e =
        env.fails(&["verify-file", "--public-key", pub_path.to_str().unwrap(), art.to_str().unwrap()], 254);
    assert_eq!(error_type(&e), "KMSInvalidSignatureException", "{e}");
    env.fails(&["verify-file", "--key-id", &k, art.to_str().unwrap()], 254);
    std::fs::write(&art, b"artifact bytes\n").unwrap();
    std::fs::write(&minisig, text.replace("\tfile:art.bin", "\tfile:evil.bin")).unwrap();
    refuses(Command::new(minisign).arg("-Vm").arg(&art).arg("-p").arg(&pub_path));
    let e =
        env.fails(&["verify-file", "--public-key", pub_path.to_str().unwrap(), art.to_str().unwrap()], 254);
    assert!(e.contains("trusted comment"), "{e}");
}

#[test]
fn rotated_keys_sign_with_the_newest_version_and_old_signatures_keep_verifying() {
    let Some(t) = tools(&["ssh-keygen", "minisign"]) else { return };
    let (keygen, minisign) = (&t[0], &t[1]);
    let env = Env::in_process();
    let art = env.file("art.bin");
    std::fs::write(&art, b"release 1\n").unwrap();
    let art_s = art.to_str().unwrap();
    for (spec, format, ext, output) in [
        ("ECC_NIST_P256", "ssh", "sig", "ssh"),
        ("ECC_NIST_EDWARDS25519", "ssh", "sig", "ssh"),
        ("ECC_NIST_EDWARDS25519", "minisign", "minisig", "minisign"),
    ] {
        let k = create_key(&env, spec, "SIGN_VERIFY");
        let v1 =
            String::from_utf8(ok(&env, &["get-public-key", "--key-id", &k, "--output", output])).unwrap();
        let old_sig = env.file(&format!("{spec}-{format}-v1.{ext}"));
        ok(
            &env,
            &["sign-file", "--key-id", &k, "--format", format, "--out", old_sig.to_str().unwrap(), art_s],
        );
        ok(&env, &["rotate-key-on-demand", "--key-id", &k, "--allow-signing-key-rotation"]);
        let v2 =
            String::from_utf8(ok(&env, &["get-public-key", "--key-id", &k, "--output", output])).unwrap();
        assert_ne!(v1, v2, "the new version has a new public key");
        let exported_v1 = String::from_utf8(ok(
            &env,
            &["get-public-key", "--key-id", &k, "--key-version", "1", "--output", output],
        ))
        .unwrap();
        assert_eq!(exported_v1, v1);
        let new_sig = env.file(&format!("{spec}-{format}-v2.{ext}"));
        ok(
            &env,
            &["sign-file", "--key-id", &k, "--format", format, "--out", new_sig.to_str().unwrap(), art_s],
        );
        let (v1_path, v2_path) =
            (env.file(&format!("{spec}-{format}-v1.pub")), env.file(&format!("{spec}-{format}-v2.pub")));
        std::fs::write(&v1_path, &v1).unwrap();
        std::fs::write(&v2_path, &v2).unwrap();
        if format == "ssh" {
            let dir = env.file("");
            succeeds(&mut ssh_keygen_verify(keygen, &dir, &v1, "file", &art, &old_sig));
            succeeds(&mut ssh_keygen_verify(keygen, &dir, &v2, "file", &art, &new_sig));
            refuses(&mut ssh_keygen_verify(keygen, &dir, &v1, "file", &art, &new_sig));
        } else {
            succeeds(
                Command::new(minisign).arg("-Vm").arg(&art).arg("-x").arg(&old_sig).arg("-p").arg(&v1_path),
            );
            succeeds(
                Command::new(minisign).arg("-Vm").arg(&art).arg("-x").arg(&new_sig).arg("-p").arg(&v2_path),
            );
            refuses(
                Command::new(minisign).arg("-Vm").arg(&art).arg("-x").arg(&new_sig).arg("-p").arg(&v1_path),
            );
        }
        // On the token: the version that signed is found.
        for (sig, version) in [(&old_sig, 1), (&new_sig, 2)] {
            let v = env.json(&["verify-file", "--key-id", &k, "--signature", sig.to_str().unwrap(), art_s]);
            assert_eq!(v["KeyVersion"], version, "{spec} {format}");
        }
        env.json(&[
            "verify-file",
            "--public-key",
            v1_path.to_str().unwrap(),
            "--signature",
            old_sig.to_str().unwrap(),
            art_s,
        ]);
        env.fails(
            &[
                "verify-file",
                "--public-key",
                v2_path.to_str().unwrap(),
                "--signature",
                old_sig.to_str().unwrap(),
                art_s,
            ],
            254,
        );
    }
}

#[test]
fn wrong_keys_files_formats_and_namespaces_are_refused_clearly() {
    let env = Env::in_process();
    let p256 = create_key(&env, "ECC_NIST_P256", "SIGN_VERIFY");
    let ed = create_key(&env, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY");
    let sym = env.json(&["create-key"]);
    let sym = field(&sym, "KeyMetadata.KeyId");
    let k1 = create_key(&env, "ECC_SECG_P256K1", "SIGN_VERIFY");
    let agree = create_key(&env, "ECC_NIST_P256", "KEY_AGREEMENT");
    let art = env.file("art.bin");
    std::fs::write(&art, b"x").unwrap();
    let art_s = art.to_str().unwrap();

    // A symmetric key has no public key: the token itself refuses.
    let e = env.fails(&["sign-file", "--key-id", &sym, "--format", "ssh", art_s], 254);
    assert_eq!(error_type(&e), "InvalidKeyUsageException");
    assert!(e.contains("SYMMETRIC_DEFAULT"), "{e}");
    let e = env.fails(&["sign-file", "--key-id", &agree, "--format", "ssh", art_s], 254);
    assert_eq!(error_type(&e), "InvalidKeyUsageException");
    assert!(e.contains("need a SIGN_VERIFY key") && e.contains("KEY_AGREEMENT"), "{e}");
    // secp256k1 is no SSH key type.
    let e = env.fails(&["sign-file", "--key-id", &k1, "--format", "ssh", art_s], 254);
    assert!(e.contains("ECC_SECG_P256K1") && e.contains("ECC_NIST_P384"), "{e}");
    let e = env.fails(&["sign-file", "--key-id", &p256, "--format", "minisign", art_s], 254);
    assert!(e.contains("minisign signatures take ECC_NIST_EDWARDS25519"), "{e}");
    // --output minisign is not JSON: the error is aws-cli's sentence.
    let e = env.fails(&["get-public-key", "--key-id", &p256, "--output", "minisign"], 254);
    assert!(
        e.contains("(InvalidKeyUsageException)")
            && e.contains("minisign signatures take ECC_NIST_EDWARDS25519"),
        "{e}"
    );
    env.fails(&["get-public-key", "--key-id", &sym, "--output", "ssh"], 254);
    let e = env.fails(&["ssh-agent", "--key-id", &k1], 254);
    assert!(e.contains("ECC_SECG_P256K1"), "{e}");
    env.fails(&["ssh-agent", "--key-id", &sym], 254);

    let e = env.fails(
        &["sign-file", "--key-id", &p256, "--format", "ssh", env.file("missing.bin").to_str().unwrap()],
        252,
    );
    assert!(e.contains("cannot open") && e.contains("missing.bin"), "{e}");
    let e = env.fails(&["sign-file", "--key-id", &p256, "--format", "openssl-ish", art_s], 2);
    assert!(e.contains("openssl-ish"), "{e}");
    for bad in ["a b", "a,b", "", "x*"] {
        let e =
            env.fails(&["sign-file", "--key-id", &p256, "--format", "ssh", "--namespace", bad, art_s], 252);
        assert!(e.contains("invalid namespace"), "{bad:?}: {e}");
    }
    env.fails(&["sign-file", "--key-id", &ed, "--format", "minisign", "--namespace", "file", art_s], 252);
    env.fails(&["sign-file", "--key-id", &p256, "--namespace", "file", art_s], 252);
    let e =
        env.fails(&["sign-file", "--key-id", &p256, "--format", "ssh", "--out", "x.sig", art_s, art_s], 252);
    assert!(e.contains("--out"), "{e}");
    env.fails(&["list-keys", "--output", "ssh"], 252);
    assert!(!env.file("art.bin.sig").exists(), "nothing was written");
}

/// A running `pkms ssh-agent`, stopped on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(env: &Env, socket: Option<&Path>, keys: &[&str]) -> Agent {
        let mut args = vec!["ssh-agent".to_owned()];
        for k in keys {
            args.extend(["--key-id".to_owned(), (*k).to_owned()]);
        }
        if let Some(s) = socket {
            args.extend(["--socket".to_owned(), s.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = env.command(&args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let path = line
            .strip_prefix("SSH_AUTH_SOCK=")
            .and_then(|l| l.strip_suffix("; export SSH_AUTH_SOCK;\n"))
            .unwrap_or_else(|| panic!("not an export line: {line:?}"));
        let socket = PathBuf::from(path);
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "the agent does not listen on {}", socket.display());
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut pid = String::new();
        stdout.read_line(&mut pid).unwrap();
        assert_eq!(pid, format!("SSH_AGENT_PID={}; export SSH_AGENT_PID;\n", child.id()));
        Agent { child, socket }
    }
}

impl Drop for Agent {
    /// Stops the agent as Ctrl-C does (it removes its socket and fresh directory), killing it
    /// only if it does not stop within 10 s.
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One raw agent request; returns the answer's body.
fn agent_request(socket: &Path, body: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(socket).unwrap();
    s.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut answer = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut answer).unwrap();
    answer
}

#[test]
fn ssh_agent_serves_ssh_add_ssh_keygen_git_and_ssh_logins() {
    let Some(t) = tools(&["ssh-keygen", "ssh-add", "git", "ssh", "sshd"]) else { return };
    let (keygen, ssh_add, git, ssh, sshd) = (&t[0], &t[1], &t[2], &t[3], &t[4]);
    let env = Env::in_process();
    let p256 = create_key(&env, "ECC_NIST_P256", "SIGN_VERIFY");
    let ed = create_key(&env, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY");
    let p384 = create_key(&env, "ECC_NIST_P384", "SIGN_VERIFY");
    let h_line =
        String::from_utf8(ok(&env, &["get-public-key", "--key-id", &p384, "--output", "ssh"])).unwrap();
    let h_pub = env.file("h.pub");
    std::fs::write(&h_pub, &h_line).unwrap();
    let p_line =
        String::from_utf8(ok(&env, &["get-public-key", "--key-id", &p256, "--output", "ssh"])).unwrap();
    let e_line =
        String::from_utf8(ok(&env, &["get-public-key", "--key-id", &ed, "--output", "ssh"])).unwrap();
    let (p_pub, e_pub) = (env.file("p.pub"), env.file("e.pub"));
    std::fs::write(&p_pub, &p_line).unwrap();
    std::fs::write(&e_pub, &e_line).unwrap();
    let art = env.file("art.bin");
    std::fs::write(&art, b"artifact bytes\n").unwrap();

    let agent = Agent::start(&env, Some(&env.file("agent.sock")), &[&p256, &ed, &p384]);
    assert_eq!(agent.socket, env.file("agent.sock"));
    let sock = agent.socket.clone();

    // ssh-add -L lists both keys, with their ARNs.
    let listed = succeeds(Command::new(ssh_add).arg("-L").env("SSH_AUTH_SOCK", &sock));
    assert!(
        listed.contains(p_line.trim_end())
            && listed.contains(e_line.trim_end())
            && listed.contains(h_line.trim_end()),
        "{listed}"
    );

    // ssh-keygen -Y sign through the agent, then -Y verify.
    for (line, pub_path) in [(&p_line, &p_pub), (&e_line, &e_pub), (&h_line, &h_pub)] {
        let sig = PathBuf::from(format!("{}.sig", art.display()));
        let _ = std::fs::remove_file(&sig);
        succeeds(
            Command::new(keygen)
                .args(["-Y", "sign", "-n", "file", "-f"])
                .arg(pub_path)
                .arg(&art)
                .env("SSH_AUTH_SOCK", &sock),
        );
        succeeds(&mut ssh_keygen_verify(keygen, &env.file(""), line, "file", &art, &sig));
    }

    // Every other request fails: add identity (17), remove identity (18), remove all (19),
    // lock (22), unlock (23), extension (27).
    for kind in [17u8, 18, 19, 22, 23, 27] {
        assert_eq!(agent_request(&sock, &[kind, 0, 0, 0, 0]), vec![5], "request type {kind}");
    }
    refuses(Command::new(ssh_add).arg("-D").env("SSH_AUTH_SOCK", &sock));
    let other = env.file("other");
    succeeds(Command::new(keygen).args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other));
    refuses(Command::new(ssh_add).arg(&other).env("SSH_AUTH_SOCK", &sock));
    // A key the agent does not serve is not signed with.
    let mut req = vec![13u8];
    let blob = b"\0\0\0\x0bssh-ed25519\0\0\0\x20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    req.extend_from_slice(&(blob.len() as u32).to_be_bytes());
    req.extend_from_slice(blob);
    req.extend_from_slice(&[0, 0, 0, 1, b'x', 0, 0, 0, 0]);
    assert_eq!(agent_request(&sock, &req), vec![5]);
    let still = succeeds(Command::new(ssh_add).arg("-L").env("SSH_AUTH_SOCK", &sock));
    assert_eq!(still, listed, "the agent serves the same keys");

    // git commit -S with gpg.format=ssh, git verify-commit.
    let repo = env.file("repo");
    let allowed = env.file("git_allowed");
    std::fs::write(
        &allowed,
        format!("t@example {}\n", p_line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")),
    )
    .unwrap();
    let g = |args: &[&str]| {
        let mut c = Command::new(git);
        c.arg("-C").arg(&repo).args(args).env("SSH_AUTH_SOCK", &sock).env("HOME", env.file(""));
        c
    };
    succeeds(Command::new(git).arg("init").arg("-q").arg(&repo));
    for (k, v) in [
        ("user.name", "T"),
        ("user.email", "t@example"),
        ("gpg.format", "ssh"),
        ("user.signingkey", p_pub.to_str().unwrap()),
        ("gpg.ssh.allowedSignersFile", allowed.to_str().unwrap()),
    ] {
        succeeds(&mut g(&["config", k, v]));
    }
    std::fs::write(repo.join("f"), b"x\n").unwrap();
    succeeds(&mut g(&["add", "f"]));
    succeeds(&mut g(&["commit", "-q", "-S", "-m", "signed"]));
    let out = succeeds(&mut g(&["verify-commit", "-v", "HEAD"]));
    assert!(out.contains("Good \"git\" signature"), "{out}");

    // ssh logs in to a loopback sshd whose authorized_keys holds the Ed25519 token key.
    ssh_login(&env, ssh, sshd, keygen, &sock, &e_pub, &e_line);

    drop(agent);
    // The agent's socket is gone once it stopped?  A kill leaves it; a new agent replaces it.
    let again = Agent::start(&env, Some(&env.file("agent.sock")), &[&ed]);
    let listed = succeeds(Command::new(ssh_add).arg("-L").env("SSH_AUTH_SOCK", &again.socket));
    assert!(listed.contains(e_line.trim_end()) && !listed.contains(p_line.trim_end()), "{listed}");
    drop(again);

    // With no --socket: a fresh path in a temporary directory.
    let fresh = Agent::start(&env, None, &[&p256]);
    assert!(fresh.socket.file_name().is_some() && fresh.socket != env.file("agent.sock"));
    succeeds(Command::new(ssh_add).arg("-L").env("SSH_AUTH_SOCK", &fresh.socket));
    let fresh_dir = fresh.socket.parent().unwrap().to_path_buf();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&fresh_dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the agent's fresh directory is private");
    }
    drop(fresh);
    assert!(!fresh_dir.exists(), "a stopped agent removes its fresh directory");

    // Started by a shell that is then killed (a script's background job): the agent stops too,
    // cleanly (its socket removed), and the token is free for the next command.
    let sock = env.file("job.sock");
    let template = env.command(&[]);
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(format!(
        "'{}' ssh-agent --key-id {ed} --socket '{}' >/dev/null 2>&1; true",
        env!("CARGO_BIN_EXE_pkms"),
        sock.display()
    ));
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => shell.env(k, v),
            None => shell.env_remove(k),
        };
    }
    let mut job = shell.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(&sock).is_err() {
        assert!(Instant::now() < deadline, "the agent does not listen on {}", sock.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    job.kill().unwrap();
    job.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sock.exists() {
        assert!(Instant::now() < deadline, "the agent outlived the shell that started it");
        std::thread::sleep(Duration::from_millis(50));
    }
    let art_s = art.to_str().unwrap();
    ok(&env, &["sign-file", "--key-id", &ed, "--format", "ssh", art_s]);
}

fn ssh_login(env: &Env, ssh: &Path, sshd: &Path, keygen: &Path, sock: &Path, public: &Path, line: &str) {
    let dir = env.file("sshd");
    std::fs::create_dir_all(&dir).unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    succeeds(Command::new(keygen).args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(dir.join("host")));
    std::fs::write(dir.join("authorized_keys"), line).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\nAuthorizedKeysFile {d}/authorized_keys\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
         StrictModes no\nPidFile {d}/pid\n",
        d = dir.display()
    );
    std::fs::write(dir.join("config"), config).unwrap();
    // -D: in the foreground, killed on the way out; -E: its log.
    let mut server = Command::new(sshd)
        .arg("-D")
        .arg("-E")
        .arg(dir.join("log"))
        .arg("-f")
        .arg(dir.join("config"))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sshd does not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let out = run(Command::new(ssh)
        .args([
            "-p",
            &port.to_string(),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .arg("-o")
        .arg(format!("IdentityFile={}", public.display()))
        .arg("-o")
        .arg(format!("IdentityAgent={}", sock.display()))
        .arg(format!("{}@127.0.0.1", user.trim()))
        .arg("echo logged-in-with-the-token"));
    let _ = server.kill();
    let _ = server.wait();
    let server_log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("logged-in-with-the-token"),
        "ssh login failed: {}\nsshd: {server_log}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_manifest_signed_as_sshsig_verifies_with_ssh_keygen_and_checks_its_files() {
    let Some(t) = tools(&["ssh-keygen"]) else { return };
    let keygen = &t[0];
    let env = Env::in_process();
    let k = create_key(&env, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY");
    let line = String::from_utf8(ok(&env, &["get-public-key", "--key-id", &k, "--output", "ssh"])).unwrap();
    let pub_path = env.file("k.pub");
    std::fs::write(&pub_path, &line).unwrap();
    let dist = env.file("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("a.tar"), b"a").unwrap();
    std::fs::write(dist.join("b.tar"), b"b").unwrap();
    let sums = dist.join("SHA256SUMS");
    ok(
        &env,
        &[
            "sign-manifest",
            "--key-id",
            &k,
            "--format",
            "ssh",
            "--out",
            sums.to_str().unwrap(),
            dist.to_str().unwrap(),
        ],
    );
    let sig = dist.join("SHA256SUMS.sig");
    succeeds(&mut ssh_keygen_verify(keygen, &env.file(""), &line, "file", &sums, &sig));
    let v = env.json(&["verify-file", "--public-key", pub_path.to_str().unwrap(), sums.to_str().unwrap()]);
    assert_eq!(v["Files"].as_array().map(Vec::len), Some(2), "{v}");
    std::fs::write(dist.join("b.tar"), b"changed").unwrap();
    let out = env.run(&["verify-file", "--public-key", pub_path.to_str().unwrap(), sums.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 listed file(s) are missing or changed"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED"));
    // --signature-only checks the manifest's signature alone.
    env.json(&[
        "verify-file",
        "--signature-only",
        "--public-key",
        pub_path.to_str().unwrap(),
        sums.to_str().unwrap(),
    ]);
}
