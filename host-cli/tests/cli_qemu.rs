//! The CLI flows against the QEMU token the binary starts by itself (no `--device`: the token
//! of a private `PKMS_HOME`), plus a restart of QEMU and eight `pkms` processes at once on one
//! home. Every test's QEMU is killed when its environment is dropped.

mod cli_support;

use cli_support::{field, flows, unb64, Env};

#[test]
fn symmetric() {
    flows::symmetric(&Env::qemu());
}

#[test]
fn rotation() {
    flows::rotation(&Env::qemu());
}

#[test]
fn signing() {
    flows::signing(&Env::qemu());
}

#[test]
fn lifecycle() {
    flows::lifecycle(&Env::qemu());
}

/// A QEMU whose command line names this home is running.
fn qemu_running(env: &Env) -> bool {
    std::process::Command::new("pgrep")
        .arg("-f")
        .arg(env.home().join("token.flash"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn blob_made_before_a_qemu_restart_decrypts_after_it() {
    let env = Env::qemu();
    let key = field(&env.json(&["create-key", "--description", "restart"]), "KeyMetadata.KeyId");
    assert!(qemu_running(&env), "the token is kept warm between calls");
    let msg = env.fileb("m", b"made before the restart");
    let blob = field(
        &env.json(&["encrypt", "--key-id", &key, "--plaintext", &msg, "--encryption-context", "when=before"]),
        "CiphertextBlob",
    );
    assert_eq!(pkms_lib::launcher::kill_token(&env.home()), 1, "one QEMU ran for this home");
    assert!(!qemu_running(&env));
    let dec = env.json(&["decrypt", "--ciphertext-blob", &blob, "--encryption-context", "when=before"]);
    assert_eq!(unb64(&field(&dec, "Plaintext")), b"made before the restart");
    assert_eq!(field(&env.json(&["describe-key", "--key-id", &key]), "KeyMetadata.Description"), "restart");
}

#[test]
fn eight_parallel_processes_on_one_home_all_get_correct_answers() {
    let env = Env::qemu();
    let key = field(&env.json(&["create-key"]), "KeyMetadata.KeyId");
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|i| {
                let env = &env;
                let key = key.clone();
                s.spawn(move || {
                    let plain = format!("worker {i} says hello");
                    let msg = env.fileb(&format!("w{i}"), plain.as_bytes());
                    let ctx = format!("worker={i}");
                    let enc = env.json(&[
                        "encrypt",
                        "--key-id",
                        &key,
                        "--plaintext",
                        &msg,
                        "--encryption-context",
                        &ctx,
                    ]);
                    let dec = env.json(&[
                        "decrypt",
                        "--ciphertext-blob",
                        &field(&enc, "CiphertextBlob"),
                        "--encryption-context",
                        &ctx,
                    ]);
                    assert_eq!(unb64(&field(&dec, "Plaintext")), plain.as_bytes(), "worker {i}");
                    let rnd = env.json(&["generate-random", "--number-of-bytes", "16"]);
                    assert_eq!(unb64(&field(&rnd, "Plaintext")).len(), 16);
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker");
        }
    });
    // One token served them all.
    let out =
        std::process::Command::new("pgrep").arg("-fc").arg(env.home().join("token.flash")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1", "exactly one QEMU over the home's flash");
}
