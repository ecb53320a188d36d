//! No dangling advice: the CLI's error paths, walked one by one (unknown key, disabled key, key
//! pending deletion, wrong key kind, oversized plaintext, retired version, refused query,
//! missing file, missing and wrong PIN, locked principal, wrong PUK, denied actions, missing
//! --yes, unreachable token, changed device key, several USB tokens, …). Each message must say
//! what to do, and every `pkms …` command it names must be a real subcommand whose `--help`
//! lists the flags given; every other `--flag` it names must be a flag of the failing command,
//! of a command it names, or a global one.

mod cli_support;

use std::collections::HashMap;
use std::process::Output;

use cli_support::{fake_usb_tokens, field, Env};

/// `pkms PATH --help`, cached: None when PATH is no subcommand.
struct Helps {
    cache: HashMap<String, Option<String>>,
}

impl Helps {
    fn help(&mut self, path: &[&str]) -> Option<String> {
        let key = path.join(" ");
        self.cache
            .entry(key)
            .or_insert_with(|| {
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_pkms"))
                    .args(path)
                    .arg("--help")
                    .output()
                    .expect("run pkms --help");
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let usage = format!("Usage: pkms {}", path.join(" "));
                (out.status.success() && text.contains(usage.trim_end())).then_some(text)
            })
            .clone()
    }
}

/// The `--flags` named in `text`.
fn flags_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("--") {
        let before = rest[..at].chars().last();
        let after = &rest[at + 2..];
        let name: String =
            after.chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-').collect();
        if before.is_none_or(|c| c.is_whitespace() || "(`'\"[/,".contains(c))
            && name.starts_with(|c: char| c.is_ascii_lowercase())
        {
            out.push(format!("--{}", name.trim_end_matches('-')));
        }
        rest = after;
    }
    out
}

/// The `pkms …` commands in backticks in `text`, as words (up to a pipe or redirection).
fn commands_in(text: &str) -> Vec<Vec<String>> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|s| s.strip_prefix("pkms "))
        .map(|c| {
            c.split_whitespace()
                .take_while(|w| !matches!(*w, "|" | ">" | "<" | "&&" | "#"))
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// Checks one error message of `pkms ARGS`: it names at least one of `expected`; every `pkms …`
/// command in it is a subcommand whose help lists the flags given; every flag it names is a
/// flag of `args`'s command, of a command it names, or global.
fn check(helps: &mut Helps, args: &[&str], message: &str, expected: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    let what = format!("pkms {}", args.join(" "));
    if !expected.iter().any(|e| message.contains(e)) {
        bad.push(format!("{what}: the message names none of {expected:?}: {message}"));
    }
    let global = helps.help(&[]).expect("pkms --help");
    // The failing command: the leading words that are subcommands.
    let mut own: Vec<&str> = Vec::new();
    for w in args.iter().filter(|w| !w.starts_with('-')) {
        let mut path = own.clone();
        path.push(w);
        if helps.help(&path).is_some() {
            own = path;
        } else {
            break;
        }
    }
    let mut allowed = vec![global.clone()];
    allowed.extend(helps.help(&own));
    for cmd in commands_in(message) {
        let path: Vec<&str> = cmd.iter().map(String::as_str).take_while(|w| !w.starts_with('-')).collect();
        // `a|b` lists alternatives; placeholders (KEY, NAME) are not subcommands.
        let path: Vec<&str> =
            path.into_iter().take_while(|w| !w.chars().all(|c| c.is_ascii_uppercase())).collect();
        let alternatives: Vec<Vec<&str>> = match path.iter().position(|w| w.contains('|')) {
            Some(i) => path[i].split('|').map(|alt| [&path[..i], &[alt]].concat()).collect(),
            None => vec![path.clone()],
        };
        for path in alternatives {
            match helps.help(&path) {
                None => bad
                    .push(format!("{what}: names `pkms {}`, which is no command: {message}", path.join(" "))),
                Some(help) => {
                    for f in cmd.iter().filter(|w| w.starts_with("--")) {
                        let f = f.split('=').next().unwrap_or(f);
                        if !help.contains(&format!("{f} "))
                            && !help.contains(&format!("{f}\n"))
                            && !help.contains(&format!("{f},"))
                        {
                            bad.push(format!("{what}: `pkms {}` has no {f}: {message}", path.join(" ")));
                        }
                    }
                    allowed.push(help);
                }
            }
        }
    }
    let outside: String = message
        .split('`')
        .enumerate()
        .filter(|(i, s)| i % 2 == 0 || !s.starts_with("pkms "))
        .map(|(_, s)| s)
        .collect();
    for f in flags_in(&outside) {
        if message.contains(&format!("{f} is not accepted")) {
            continue; // named to refuse it (`--puk is not accepted: …`)
        }
        let known = allowed.iter().any(|h| {
            h.contains(&format!("{f} ")) || h.contains(&format!("{f}\n")) || h.contains(&format!("{f},"))
        });
        if !known {
            bad.push(format!("{what}: names {f}, a flag of no command involved: {message}"));
        }
    }
    bad
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// One error path: the arguments, the run's output, the exit status expected, and what the
/// message must name (any one of them).
struct Case<'a> {
    args: Vec<String>,
    out: Output,
    status: i32,
    names: &'a [&'a str],
}

fn case<'a>(args: &[&str], out: Output, status: i32, names: &'a [&'a str]) -> Case<'a> {
    Case { args: args.iter().map(|a| (*a).to_owned()).collect(), out, status, names }
}

#[test]
fn every_error_path_names_real_commands_and_flags() {
    let env = Env::in_process();
    let run = |args: &[&str]| env.run(args);
    let mut cases: Vec<Case> = Vec::new();

    // Keys: unknown, of the wrong kind, disabled, pending deletion, retired material.
    let missing = "11111111-2222-3333-4444-555555555555";
    cases.push(case(
        &["describe-key", "--key-id", missing],
        run(&["describe-key", "--key-id", missing]),
        254,
        &["`pkms list-keys`"],
    ));
    let key_owned = field(&env.json(&["create-key"]), "KeyMetadata.KeyId");
    let key = key_owned.as_str();
    let sign = ["sign", "--key-id", key, "--message", "aGVsbG8=", "--signing-algorithm", "ECDSA_SHA_256"];
    cases.push(case(&sign, run(&sign), 254, &["`pkms describe-key`"]));
    let big_owned = format!("fileb://{}", env.file("big").display());
    std::fs::write(env.file("big"), vec![7u8; 5000]).unwrap();
    let big = big_owned.as_str();
    let enc_big = ["encrypt", "--key-id", key, "--plaintext", big];
    cases.push(case(&enc_big, run(&enc_big), 252, &["`pkms encrypt-file`"]));
    let blob_owned =
        field(&env.json(&["encrypt", "--key-id", key, "--plaintext", "aGVsbG8="]), "CiphertextBlob");
    let blob = blob_owned.as_str();
    assert!(run(&["rotate-key-on-demand", "--key-id", key]).status.success());
    assert!(run(&["retire-key-versions", "--key-id", key, "--below-version", "2", "--yes"]).status.success());
    let dec = ["decrypt", "--ciphertext-blob", blob];
    cases.push(case(&dec, run(&dec), 254, &["--include-key-material"]));
    let retire = ["retire-key-versions", "--key-id", key, "--below-version", "2"];
    cases.push(case(&retire, run(&retire), 252, &["--yes"]));
    assert!(run(&["disable-key", "--key-id", key]).status.success());
    let enc = ["encrypt", "--key-id", key, "--plaintext", "aGVsbG8="];
    cases.push(case(&enc, run(&enc), 254, &["`pkms enable-key"]));
    let gone_owned = field(&env.json(&["create-key"]), "KeyMetadata.KeyId");
    let gone = gone_owned.as_str();
    assert!(run(&["schedule-key-deletion", "--key-id", gone, "--pending-window-in-days", "7"])
        .status
        .success());
    let enc_gone = ["encrypt", "--key-id", gone, "--plaintext", "aGVsbG8="];
    cases.push(case(&enc_gone, run(&enc_gone), 254, &["`pkms cancel-key-deletion`"]));
    let sk_owned = field(
        &env.json(&["create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"]),
        "KeyMetadata.KeyId",
    );
    let sk = sk_owned.as_str();
    let rot = ["rotate-key-on-demand", "--key-id", sk];
    cases.push(case(&rot, run(&rot), 254, &["--allow-signing-key-rotation"]));
    let alias = ["create-alias", "--alias-name", "alias/aws/mine", "--target-key-id", sk];
    cases.push(case(&alias, run(&alias), 254, &["alias/"]));
    let alias_only = ["enable-key", "--key-id", "alias/nothing"];
    cases.push(case(&alias_only, run(&alias_only), 254, &["alias"]));

    // Arguments and local files.
    let query = ["list-keys", "--query", "Keys[x]"];
    cases.push(case(&query, run(&query), 252, &["--query"]));
    let nofile_owned = env.file("no-such-file").display().to_string();
    let nofile = nofile_owned.as_str();
    let sign_missing = ["sign-file", "--key-id", sk, nofile];
    cases.push(case(&sign_missing, run(&sign_missing), 253, &["no-such-file"]));
    let ns = ["sign-file", "--key-id", sk, "--namespace", "x", big];
    cases.push(case(&ns, run(&ns), 252, &["--format ssh"]));
    std::fs::write(env.file("f"), b"x").unwrap();
    let f_owned = env.file("f").display().to_string();
    let f = f_owned.as_str();
    assert!(run(&["sign-file", "--key-id", sk, f]).status.success());
    let verify_nokey = ["verify-file", f];
    cases.push(case(&verify_nokey, run(&verify_nokey), 252, &["--public-key", "--key-id"]));
    let reset = ["factory-reset"];
    cases.push(case(&reset, run(&reset), 252, &["--yes"]));
    let device = ["--device", "floppy:/a", "info"];
    cases.push(case(&device, run(&device), 252, &["--device"]));
    let unreachable = ["--device", "unix:/nonexistent/token.sock", "list-keys"];
    cases.push(case(&unreachable, run(&unreachable), 255, &["--device"]));

    // Sessions: a device key that changed since it was pinned.
    let other = Env::in_process();
    assert!(other.run(&["info"]).status.success());
    let pins = std::fs::read_to_string(env.home().join("known_device_keys")).unwrap();
    let theirs = std::fs::read_to_string(other.home().join("known_device_keys")).unwrap();
    let their_key: Vec<&str> =
        theirs.lines().filter(|l| !l.starts_with('#')).flat_map(|l| l.split_whitespace().skip(1)).collect();
    let forged: String = pins
        .lines()
        .map(|l| match l.split_whitespace().next() {
            Some(name) if !l.starts_with('#') => format!("{name} {}\n", their_key.join(" ")),
            _ => format!("{l}\n"),
        })
        .collect();
    std::fs::write(env.home().join("known_device_keys"), forged).unwrap();
    let changed = ["list-keys"];
    cases.push(case(&changed, run(&changed), 255, &["`pkms pin-device-key`"]));
    std::fs::write(env.home().join("known_device_keys"), pins).unwrap();

    // Several USB tokens and no choice made.
    let usb = Env::qemu();
    let sysfs = usb.file("sysfs");
    fake_usb_tokens(&sysfs, &["ttyACM1", "ttyACM2"]);
    let several = ["list-keys"];
    let out = usb
        .command(&several)
        .env("PKMS_USB_SYSFS", &sysfs)
        .env_remove("PKMS_HOME")
        .env("XDG_DATA_HOME", usb.file("data"))
        .output()
        .unwrap();
    cases.push(case(&several, out, 255, &["--device"]));

    // Authentication: init without a PIN, init -q without --puk-out, the PUK on the command line.
    let init = ["init"];
    let out = env.command(&init).env_remove("PKMS_PIN").env("PKMS_PUK", "puk-12345678").output().unwrap();
    cases.push(case(&init, out, 252, &["--pin-file"]));
    let quiet_init = ["-q", "init"];
    let out = env.command(&quiet_init).env("PKMS_PIN", "24681357").env_remove("PKMS_PUK").output().unwrap();
    cases.push(case(&quiet_init, out, 252, &["--puk-out"]));
    let puk_flag = ["init", "--puk", "puk-12345678"];
    let out = env.command(&puk_flag).env("PKMS_PIN", "24681357").output().unwrap();
    let puk_status = out.status.code().unwrap_or(0);
    cases.push(case(&puk_flag, out, puk_status, &["--puk-file", "PKMS_PUK"]));
    let admin = [("PKMS_PIN", "24681357")];
    let made = env.command(&["init"]).envs(admin).env("PKMS_PUK", "puk-12345678").output().unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let bob = env
        .command(&["create-principal", "--name", "bob"])
        .envs(admin)
        .env("PKMS_NEW_PIN", "13579135")
        .output()
        .unwrap();
    assert!(bob.status.success(), "{}", stderr(&bob));
    let as_bob = |args: &[&str], pin: &str| {
        env.command(args).env("PKMS_PIN", pin).env("PKMS_PRINCIPAL", "bob").output().unwrap()
    };

    let list = ["list-keys"];
    let out = env.command(&list).env_remove("PKMS_PIN").output().unwrap();
    cases.push(case(&list, out, 252, &["PKMS_PIN", "--pin-file"]));
    let out = env.command(&list).env("PKMS_PIN", "00000000").output().unwrap();
    cases.push(case(&list, out, 254, &["--pin-file"]));
    // A user denied an administrator's command, a key it has no grant for, a factory reset.
    let admin_cmd = ["create-principal", "--name", "carol"];
    let out = env
        .command(&admin_cmd)
        .env("PKMS_PIN", "13579135")
        .env("PKMS_PRINCIPAL", "bob")
        .env("PKMS_NEW_PIN", "11223344")
        .output()
        .unwrap();
    cases.push(case(&admin_cmd, out, 254, &["--principal"]));
    let k2_owned = field(
        &serde_json::from_slice(&env.command(&["create-key"]).envs(admin).output().unwrap().stdout).unwrap(),
        "KeyMetadata.KeyId",
    );
    let k2 = k2_owned.as_str();
    let denied = ["encrypt", "--key-id", k2, "--plaintext", "aGVsbG8="];
    cases.push(case(&denied, as_bob(&denied, "13579135"), 254, &["`pkms get-key-policy`"]));
    let reset_yes = ["factory-reset", "--yes"];
    cases.push(case(&reset_yes, as_bob(&reset_yes, "13579135"), 254, &["--principal"]));
    let grant =
        ["create-grant", "--key-id", k2, "--operations", "Encrypt", "--grantee-principal", "nobody-here"];
    let out = env.command(&grant).envs(admin).output().unwrap();
    cases.push(case(&grant, out, 254, &["nobody-here"]));
    let change = ["change-pin"];
    let out =
        env.command(&change).env("PKMS_PIN", "00000000").env("PKMS_NEW_PIN", "99887766").output().unwrap();
    cases.push(case(&change, out, 254, &["--pin-file"]));
    // A wrong PUK, then bob's PIN locked by wrong tries: the hint names bob.
    let unblock = ["unblock-pin", "--for", "bob"];
    let out = env
        .command(&unblock)
        .env("PKMS_PUK", "wrong-puk-000")
        .env("PKMS_NEW_PIN", "55667788")
        .output()
        .unwrap();
    cases.push(case(&unblock, out, 254, &["--for NAME"]));
    // No PUK and no terminal: the PUK's variable and flag, not the PIN's.
    let out = env.command(&unblock).env_remove("PKMS_PUK").env("PKMS_NEW_PIN", "55667788").output().unwrap();
    cases.push(case(&unblock, out, 252, &["--puk-file"]));
    // pkms serve with a credentials entry that says nowhere where its PIN is, no terminal.
    let creds = env.file("creds.json");
    std::fs::write(
        &creds,
        r#"{"Credentials": [{"AccessKeyId": "AKIDADMIN", "SecretAccessKey": "long-random-secret", "Principal": "admin"}]}"#,
    )
    .unwrap();
    let creds_owned = creds.display().to_string();
    let serve = ["serve", "--listen", "127.0.0.1:0", "--credentials", creds_owned.as_str()];
    let out = env.command(&serve).env_remove("PKMS_PIN").output().unwrap();
    cases.push(case(&serve, out, 252, &["PinEnv"]));
    let mut locked = None;
    for _ in 0..12 {
        let out = as_bob(&list, "00000000");
        if stderr(&out).contains("locked") {
            locked = Some(out);
            break;
        }
    }
    let locked = locked.expect("bob's PIN locks after wrong tries");
    cases.push(case(&list, locked, 254, &["`pkms unblock-pin --for bob`"]));

    let mut helps = Helps { cache: HashMap::new() };
    let mut bad = Vec::new();
    for c in &cases {
        let message = stderr(&c.out);
        if c.out.status.code() != Some(c.status) {
            bad.push(format!(
                "pkms {}: exit {:?}, not {}: {message}",
                c.args.join(" "),
                c.out.status.code(),
                c.status
            ));
        }
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        bad.extend(check(&mut helps, &args, &message, c.names));
    }
    assert!(cases.len() >= 30, "{} error paths walked", cases.len());
    assert!(bad.is_empty(), "dangling or missing advice:\n{}", bad.join("\n"));
}

#[test]
fn the_checker_finds_dangling_advice() {
    let mut helps = Helps { cache: HashMap::new() };
    let ok = "Unlock it with the PUK: `pkms unblock-pin --for bob`; or use --pin-file.";
    assert!(check(&mut helps, &["list-keys"], ok, &["unblock-pin"]).is_empty());
    let no_command = "Run `pkms unblock-pins --for bob`.";
    assert_eq!(check(&mut helps, &["list-keys"], no_command, &["unblock"]).len(), 1);
    let no_flag = "Run `pkms unblock-pin --principal-name bob`.";
    assert_eq!(check(&mut helps, &["list-keys"], no_flag, &["unblock"]).len(), 1);
    let stray = "Give it with --puk-file.";
    assert_eq!(check(&mut helps, &["list-keys"], stray, &["puk"]).len(), 1, "list-keys has no --puk-file");
    assert!(check(&mut helps, &["unblock-pin"], stray, &["puk"]).is_empty());
    assert_eq!(check(&mut helps, &["list-keys"], "nothing to do", &["pkms"]).len(), 1, "no advice at all");
}
