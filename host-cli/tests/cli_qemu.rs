//! The CLI flows against the QEMU token the binary starts by itself (no `--device`: the token
//! of a private `PKMS_HOME`), over its packet link and over UART0; `pkms token start|status|stop`;
//! a restart of QEMU and eight `pkms` processes at once on one home. Every test's QEMU is stopped
//! with `pkms token stop` when its environment is dropped.

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
fn key_specs() {
    flows::key_specs(&Env::qemu());
}

#[test]
fn lifecycle() {
    flows::lifecycle(&Env::qemu());
}

#[test]
fn symmetric_over_the_uart() {
    flows::symmetric(&Env::qemu_over("uart"));
}

#[test]
fn signing_over_the_uart() {
    flows::signing(&Env::qemu_over("uart"));
}

/// `pkms token start|status|stop`: status before anything runs, a start that boots QEMU and
/// one that finds it running, the status of each link, a call over each, and a stop that
/// leaves no QEMU for the home and is harmless when repeated.
#[test]
fn token_start_status_stop() {
    let env = Env::qemu();
    let idle = env.json(&["token", "status"]);
    assert_eq!(idle["Running"], false);
    assert_eq!(field(&idle, "FlashFile"), env.home().join("token.flash").display().to_string());
    assert!(!qemu_running(&env));

    let started = env.json(&["token", "start"]);
    assert_eq!((started["Running"].clone(), started["Started"].clone()), (true.into(), true.into()));
    assert!(qemu_running(&env));
    let pid = field(&started, "Pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the pid is a live process");
    let flash = env.home().join("token.flash");
    let flash = flash.as_os_str().as_encoded_bytes();
    assert!(cmdline.windows(flash.len()).any(|w| w == flash), "the pid is this home's QEMU");
    assert_eq!(field(&started, "Link"), "ethernet");
    assert_eq!(field(&started, "Socket"), env.home().join("token-net.sock").display().to_string());
    assert_eq!(started["Links"], serde_json::json!(["ethernet", "uart"]));
    assert_eq!(started["IdleTimeoutSeconds"], 60, "PKMS_IDLE_SECS of the test environment");
    assert!(started["UptimeSeconds"].as_f64().is_some_and(|u| (0.0..60.0).contains(&u)), "{started}");
    assert_eq!(started["FirmwareCurrent"], true);

    let again = env.json(&["token", "start"]);
    assert_eq!((again["Started"].clone(), field(&again, "Pid")), (false.into(), pid.clone()));
    let status = env.json(&["token", "status"]);
    assert_eq!((status["Running"].clone(), field(&status, "Pid")), (true.into(), pid.clone()));
    let uart = env.json(&["--link", "uart", "token", "status"]);
    assert_eq!(field(&uart, "Link"), "uart");
    assert_eq!(field(&uart, "Socket"), env.home().join("token.sock").display().to_string());
    for link in ["ethernet", "uart"] {
        let info = env.json(&["--link", link, "info"]);
        assert_eq!(field(&info, "Board"), "qemu-mps2-an386", "over {link}");
    }
    assert!(env.fails(&["--link", "carrier-pigeon", "info"], 2).contains("ethernet"));
    assert_eq!(field(&env.json(&["token", "status"]), "Pid"), pid, "both links reach the one token");

    let stopped = env.json(&["token", "stop"]);
    assert_eq!((stopped["Stopped"].clone(), field(&stopped, "Pid")), (true.into(), pid));
    assert!(!qemu_running(&env), "no QEMU is left for the home");
    assert!(!env.home().join("token-net.sock").exists() && !env.home().join("token.pid").exists());
    assert_eq!(env.json(&["token", "status"])["Running"], false);
    assert_eq!(env.json(&["token", "stop"])["Stopped"], false);
}

/// A warm call goes on with the session the last call left in the home (its requests: GetInfo
/// to check it, then the operation, both sealed; no handshake), on an open token only. `pkms
/// token stop` forgets it; a call after that opens a session as usual; a token with a PIN never
/// gets its sessions left, and every call on it logs in anew.
#[test]
fn a_warm_call_goes_on_with_the_session_the_last_call_left() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::qemu();
    let requests = |args: &[&str]| {
        let mut all = vec!["--debug"];
        all.extend_from_slice(args);
        let out = env.run(&all);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "pkms {args:?}: {stderr}");
        stderr
            .lines()
            .filter_map(|l| {
                l.split_once(": request ").map(|(_, r)| r.split(' ').nth(1).unwrap_or("").to_owned())
            })
            .collect::<Vec<_>>()
    };
    let key = field(&env.json(&["create-key"]), "KeyMetadata.KeyId");
    let cache = env.home().join("token-session");
    assert!(cache.exists(), "the call left its session");
    assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(
        requests(&["generate-data-key", "--key-id", &key, "--key-spec", "AES_256"]),
        ["GetInfo", "GenerateDataKey"]
    );
    assert_eq!(requests(&["describe-key", "--key-id", &key]), ["GetInfo", "DescribeKey"]);
    // A failed call leaves nothing (it may have a request unanswered): the next one opens anew.
    assert!(env.fails(&["describe-key", "--key-id", "alias/none"], 254).contains("NotFound"));
    assert!(!cache.exists());
    assert_eq!(requests(&["describe-key", "--key-id", &key]), ["OpenSession", "DescribeKey"]);

    // A PIN never travels in a session that was on disk: a new one is opened for it (the open
    // token then refuses a principal), and it is not left.
    assert!(cache.exists());
    let out = env
        .command(&["--debug", "create-principal", "--name", "bob", "--role", "user"])
        .env("PKMS_NEW_PIN", "13572468")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an open token has no principals: {stderr}");
    let order: Vec<&str> = ["request 1: GetInfo", ": CloseSession", ": OpenSession", ": CreatePrincipal"]
        .iter()
        .filter_map(|r| stderr.find(r).map(|_| *r))
        .collect();
    assert_eq!(order.len(), 4, "{stderr}");
    let at = |r: &str| stderr.find(r).unwrap();
    assert!(
        at(": CloseSession") < at(": OpenSession") && at(": OpenSession") < at(": CreatePrincipal"),
        "{stderr}"
    );
    assert!(!cache.exists());
    assert_eq!(requests(&["describe-key", "--key-id", &key]), ["OpenSession", "DescribeKey"]);

    assert_eq!(env.json(&["token", "stop"])["Stopped"], true);
    assert!(!cache.exists(), "the token's sessions ended with it");
    assert_eq!(requests(&["describe-key", "--key-id", &key]), ["OpenSession", "DescribeKey"]);
    assert!(cache.exists());

    let out =
        env.command(&["init"]).env("PKMS_PIN", "246810").env("PKMS_PUK", "recover-me-1234").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for first in [true, false] {
        let out = env
            .command(&["--debug", "describe-key", "--key-id", &key])
            .env("PKMS_PIN", "246810")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            stderr.contains("request 1: GetInfo"),
            first,
            "the session left before init is checked, then closed: {stderr}"
        );
        assert!(stderr.contains(": OpenSession") && stderr.contains(": Authenticate"), "{stderr}");
        assert!(!cache.exists(), "a session with a login is never left");
    }
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
    assert_eq!(env.json(&["token", "stop"])["Stopped"], true, "the home's QEMU was stopped");
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

/// A test build of the QEMU token whose AES-256-GCM self-test expects a corrupted answer (the
/// `corrupt-kat` feature of qemu/): the token boots into its error state. `pkms info` still
/// answers, in the clear, and names the failed test; every other command is refused with
/// KMSInternalException (the KMS exception of the token's SelfTestFailed) naming the test.
#[test]
fn a_token_whose_self_test_fails_says_which_in_pkms_info_and_serves_nothing_else() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Deep under target/ (test-builds/…), so a search of target/*/thumbv7em-none-eabihf/ for
    // "the firmware image" (size checks) never takes this test build for a real one.
    let target_dir = root.join("target/test-builds/qemu-corrupt-kat");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    // qemu/.cargo/config.toml (target, linker scripts) is found from the working directory.
    build
        .current_dir(root.join("qemu"))
        .args(["build", "--release", "--quiet", "--features", "corrupt-kat", "--target-dir"])
        .arg(&target_dir);
    for var in
        ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "CARGO_MAKEFLAGS"]
    {
        build.env_remove(var);
    }
    let built = build.output().expect("run cargo for the test firmware");
    assert!(
        built.status.success(),
        "building qemu/ with corrupt-kat: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let firmware = target_dir.join("thumbv7em-none-eabihf/release/pkms-qemu");

    let env = Env::qemu();
    let run =
        |args: &[&str]| env.command(args).env("PKMS_QEMU_FIRMWARE", &firmware).output().expect("run pkms");
    let out = run(&["info", "--output", "json"]);
    assert!(out.status.success(), "pkms info: {}", String::from_utf8_lossy(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(field(&info, "SelfTests"), "AES-256-GCM");
    assert_eq!(field(&info, "Platform"), "EMULATED");
    for args in [&["create-key"][..], &["list-keys"], &["generate-random", "--number-of-bytes", "8"]] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "pkms {args:?} succeeded on a token whose self-test failed");
        assert!(
            stderr.contains("KMSInternalException")
                && stderr.contains("self-test")
                && stderr.contains("AES-256-GCM"),
            "pkms {args:?}: {stderr}"
        );
    }
}

/// Whether process `pid` is still alive (a zombie counts as gone).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// A QEMU token kept warm (idle timeout: never) ends within seconds when its PKMS_HOME is
/// removed, and when the home is replaced by a new directory of the same path.
#[test]
fn the_token_exits_when_its_home_is_removed_or_replaced() {
    for replace in [false, true] {
        let env = Env::qemu();
        let started = env.command(&["token", "start"]).env("PKMS_IDLE_SECS", "0").output().unwrap();
        assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
        let status: serde_json::Value = serde_json::from_slice(&started.stdout).unwrap();
        assert_eq!(status["IdleTimeoutSeconds"], serde_json::json!(0), "{status}");
        let pid = field(&status, "Pid");
        assert!(alive(&pid));
        std::fs::remove_dir_all(env.home()).unwrap();
        if replace {
            std::fs::create_dir(env.home()).unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while alive(&pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let outlived = alive(&pid);
        pkms_lib::launcher::kill_token(&env.home());
        assert!(!outlived, "QEMU {pid} outlived its home (replaced: {replace})");
    }
}
