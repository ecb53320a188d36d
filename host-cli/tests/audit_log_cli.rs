//! The audit log's size and fill level through the CLI, against the QEMU token: its capacity in
//! `info`, a one-line warning on stderr from every call once the log is more than 80 % full (and
//! none below), that `-q` keeps it in either `--audit-full` mode, and the export and trim the
//! warning names emptying it. The log is filled through the host library in one session (cheap
//! GenerateRandom requests), not by thousands of `pkms` runs.

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::Env;
use pkms_lib::connect;
use pkms_lib::launcher::LaunchOptions;
use serde_json::Value;

const PIN: &str = "24681357";
/// The QEMU token's audit log: half its 1 MiB store (docs/flash-format.md).
const QEMU_CAPACITY: u64 = 3696;

/// An initialised QEMU token with the log in `mode` (`overwrite` or `refuse`).
fn initialised(mode: &str) -> Env {
    let env = Env::qemu();
    let out = env
        .command(&["init", "--audit-full", mode, "--puk-out", &env.file("puk").display().to_string()])
        .env("PKMS_PIN", PIN)
        .output()
        .unwrap();
    assert!(out.status.success(), "init: {}", String::from_utf8_lossy(&out.stderr));
    env
}

/// Logs in through the host library and sends GenerateRandom until the log will hold `entries`
/// once the session is closed; returns how long that took.
fn fill_to(env: &Env, entries: u64) -> Duration {
    let opts = LaunchOptions { idle_timeout: Duration::from_secs(60), ..LaunchOptions::default() };
    let mut client = connect::open_qemu_with(&env.home(), &opts).expect("reach the QEMU token");
    connect::secure(&mut client, &env.home(), connect::pin_name(None).as_deref()).expect("session");
    client.authenticate("admin", PIN.as_bytes()).expect("login");
    let status = client.audit_log_status().expect("the login's answer tells the log's status");
    assert_eq!(u64::from(status.capacity), QEMU_CAPACITY);
    let held = u64::from(status.entries);
    // Closing the session adds one more entry.
    assert!(held < entries, "the log already holds {held} entries");
    let started = Instant::now();
    for _ in held..entries - 1 {
        client.generate_random(1).expect("GenerateRandom");
    }
    let took = started.elapsed();
    drop(client);
    took
}

/// Runs `pkms ARGS` logged in; returns stderr's audit-log warning lines.
fn warnings(env: &Env, args: &[&str]) -> Vec<String> {
    let out = env.command(args).env("PKMS_PIN", PIN).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "pkms {args:?}: {stderr}");
    stderr.lines().filter(|l| l.contains("audit log")).map(str::to_owned).collect()
}

/// The entries and capacity a warning names (`… N% full: HELD of FULL entries …`).
fn named(warning: &str) -> (u64, u64) {
    let after = warning.split("full: ").nth(1).expect("a fill level");
    let mut words = after.split_whitespace();
    let held = words.next().and_then(|w| w.parse().ok()).expect("entries held");
    assert_eq!(words.next(), Some("of"));
    let full = words.next().and_then(|w| w.parse().ok()).expect("entries when full");
    (held, full)
}

#[test]
fn every_call_warns_once_an_overwriting_log_is_more_than_80_percent_full_even_with_quiet() {
    let env = initialised("overwrite");
    let info = env.command(&["info"]).env("PKMS_PIN", PIN).output().unwrap();
    let info: Value = serde_json::from_slice(&info.stdout).expect("info JSON");
    assert_eq!(info["AuditLogCapacity"].as_u64(), Some(QEMU_CAPACITY), "{info}");
    assert_eq!(info["AuditLogWhenFull"], "OVERWRITE");

    // The last fill level without a warning: the next call's login makes it exactly 80 %
    // rounded down (2,956 of 3,696 is 79.98 %).
    let quiet_until = QEMU_CAPACITY * 80 / 100;
    let took = fill_to(&env, quiet_until - 1);
    eprintln!("filled the QEMU token's log to {} entries in {took:?}", quiet_until - 1);
    assert_eq!(warnings(&env, &["generate-random", "--number-of-bytes", "1"]), Vec::<String>::new());
    // That call's own entries took it over.
    let w = warnings(&env, &["generate-random", "--number-of-bytes", "1"]);
    assert_eq!(w.len(), 1, "{w:?}");
    let (held, full) = named(&w[0]);
    assert!(held > quiet_until && held * 100 > QEMU_CAPACITY * 80 && full == QEMU_CAPACITY, "{w:?}");
    assert!(w[0].starts_with("warning: the token's audit log is 80% full"), "{w:?}");
    assert!(
        w[0].contains("drops the oldest") && w[0].contains("`pkms audit export --out FILE --trim`"),
        "{w:?}"
    );
    // Losing entries is silent otherwise: -q keeps the warning; so do other commands.
    assert_eq!(warnings(&env, &["-q", "list-keys"]).len(), 1);
    assert_eq!(warnings(&env, &["list-keys", "--output", "text"]).len(), 1);

    // The command it names empties the log: then no call warns.
    let export = env.file("log.pkaudit").display().to_string();
    let exported =
        env.command(&["audit", "export", "--out", &export, "--trim"]).env("PKMS_PIN", PIN).output().unwrap();
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let exported: Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert!(exported["Entries"].as_u64().unwrap() > quiet_until, "{exported}");
    assert_eq!(warnings(&env, &["list-keys"]), Vec::<String>::new());
}

#[test]
fn a_refusing_log_warns_that_operations_will_be_refused_even_with_quiet() {
    let env = initialised("refuse");
    fill_to(&env, QEMU_CAPACITY * 9 / 10);
    let w = warnings(&env, &["generate-random", "--number-of-bytes", "1"]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("90% full") && w[0].contains("refuses operations until it is exported and trimmed"),
        "{w:?}"
    );
    assert!(w[0].contains("`pkms audit export --out FILE --trim`"), "{w:?}");
    // -q keeps it: a quiet script is the one that would otherwise meet the refusals unwarned.
    let quiet = warnings(&env, &["-q", "generate-random", "--number-of-bytes", "1"]);
    assert!(quiet.len() == 1 && quiet[0].contains("refuses operations"), "{quiet:?}");
}
