//! The one table (printed) and BENCHMARKS.md.
//!
//! BENCHMARKS.md is read by machines too: the first line that mentions P-256 and "sign" (and
//! likewise "verify") must be the token's Cortex-M4 backend row, whose smallest number is the
//! figure; the portable baseline rows therefore come last. [`acceptance_figure`] re-reads the
//! text the way the acceptance check does, and the run warns if it finds another figure.

use std::fmt::Write as _;

use crate::firmware::TokenFigures;
use crate::host::HostFigures;
use crate::machine::Facts;
use pkms_lib::launcher::Link;

use crate::protocol::{ms, Latency, LinkFigures, ProtocolFigures};
use crate::sizes::BoardSize;

pub struct Report<'a> {
    pub facts: Facts,
    pub token: &'a Result<TokenFigures, String>,
    pub proto: &'a ProtocolFigures,
    pub host: &'a HostFigures,
    pub sizes: &'a [BoardSize],
}

struct Row {
    group: &'static str,
    what: String,
    figure: String,
    goal: String,
    status: &'static str,
}

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn status(meets: bool) -> &'static str {
    if meets {
        "meets"
    } else {
        "misses"
    }
}

const ASM: &str = "cortex-m4-asm";
const PORTABLE: &str = "portable";

fn token_rows(rows: &mut Vec<Row>, t: &Result<TokenFigures, String>, portable_pass: bool) {
    let g = if portable_pass { "On token, portable baseline" } else { "On token (instructions)" };
    let t = match t {
        Ok(t) => t,
        Err(e) => {
            if !portable_pass {
                rows.push(Row {
                    group: g,
                    what: "bench firmware".into(),
                    figure: format!("n/a ({e})"),
                    goal: String::new(),
                    status: "",
                });
            }
            return;
        }
    };
    let fig = |name: &str| -> Result<(u64, usize), String> {
        t.figures
            .get(name)
            .copied()
            .ok_or_else(|| t.not_available.get(name).cloned().unwrap_or_else(|| "n/a (not measured)".into()))
    };
    let mut instr = |what: String, name: &str, goal: Option<u64>| {
        let (figure, goal_text, st) = match fig(name) {
            Ok((n, _)) => match goal {
                Some(goal) => (thousands(n), format!("≤ {}", thousands(goal)), status(n <= goal)),
                None => (thousands(n), String::new(), ""),
            },
            Err(reason) => (reason, goal.map(|g| format!("≤ {}", thousands(g))).unwrap_or_default(), ""),
        };
        rows.push(Row { group: g, what, figure, goal: goal_text, status: st });
    };
    if portable_pass {
        instr("P-256 key generation, portable p256 crate (baseline)".into(), "p256.keygen.portable", None);
        instr("P-256 sign (digest), portable p256 crate (baseline)".into(), "p256.sign.portable", None);
        instr("P-256 verify (digest), portable p256 crate (baseline)".into(), "p256.verify.portable", None);
        instr(
            "Token-style Sign (sign + public key + verify), portable p256 crate (baseline)".into(),
            "p256.sign_selfchecked.portable",
            None,
        );
        return;
    }
    instr(format!("P-256 key generation, {ASM} backend"), &format!("p256.keygen.{ASM}"), Some(300_000));
    instr(
        format!("P-256 sign (digest; hedged nonce, low-S, DER), {ASM} backend"),
        &format!("p256.sign.{ASM}"),
        Some(400_000),
    );
    instr(format!("P-256 verify (digest, DER), {ASM} backend"), &format!("p256.verify.{ASM}"), Some(900_000));
    instr(
        format!("Token-style Sign: load key + sign + derive public key + verify before release, {ASM}"),
        &format!("p256.sign_selfchecked.{ASM}"),
        None,
    );
    instr(
        format!(
            "Power-on self-tests at every boot (SHA-256, HMAC, AES-256-GCM, ECDSA pairwise, DRBG), {ASM}"
        ),
        "token.self_tests",
        Some(2_000_000),
    );
    let _ = PORTABLE;

    let mut per_byte = |what: String, name: &str, goal: Option<f64>| {
        let (figure, goal_text, st) = match fig(name) {
            Ok((n, bytes)) if bytes > 0 => {
                let pb = n as f64 / bytes as f64;
                let figure = format!("{} ({pb:.1} instr/B)", thousands(n));
                match goal {
                    Some(goal) => (figure, format!("≤ {goal:.0} instr/B"), status(pb <= goal)),
                    None => (figure, String::new(), ""),
                }
            }
            Ok((n, _)) => (thousands(n), String::new(), ""),
            Err(reason) => (reason, String::new(), ""),
        };
        rows.push(Row { group: g, what, figure, goal: goal_text, status: st });
    };
    for (op, label) in [("encrypt", "encrypt"), ("decrypt", "decrypt")] {
        for (len, size) in [("32", "32 B"), ("1024", "1 KiB"), ("4096", "4 KiB")] {
            let goal = (len == "1024").then_some(215.0);
            per_byte(
                format!("AES-256-GCM {label} {size} (fixsliced AES, UMULL GHASH)"),
                &format!("aes256gcm.{op}.{len}"),
                goal,
            );
        }
    }
    per_byte("AES-256-GCM key setup (once per key use)".into(), "aes256gcm.key_setup", None);
    per_byte("of which AES-256 block cipher alone, 1 KiB".into(), "aes256.blocks.1024", None);
    per_byte("of which GHASH alone (UMULL/UMLAL multiplier), 1 KiB".into(), "ghash.1024", None);
    per_byte("HMAC-SHA256 32 B (key setup included)".into(), "hmac_sha256.32", None);
    per_byte("HMAC-SHA256 4 KiB (key setup included)".into(), "hmac_sha256.4096", Some(47.0));

    let mut instr = |what: &str, name: &str| {
        let figure = match fig(name) {
            Ok((n, _)) => thousands(n),
            Err(reason) => reason,
        };
        rows.push(Row { group: g, what: what.into(), figure, goal: String::new(), status: "" });
    };
    instr("Token: boot to ready, erased flash (Token::new)", "token.boot_to_ready.empty");
    instr("Token: Hello (frame decode + encode only)", "token.hello");
    instr("Token: CreateKey SYMMETRIC_DEFAULT", "token.create_key.symmetric");
    instr("Token: CreateKey ECC_NIST_P256", "token.create_key.ecc_nist_p256");
    instr("Token: GenerateDataKey AES_256", "token.generate_data_key.aes_256");
    instr("Token: Encrypt 32 B", "token.encrypt.32");
    instr("Token: RotateKeyOnDemand", "token.rotate_key_on_demand");
    instr("Token: Sign (digest) through the core", "token.sign.digest");
    instr("Token: DescribeKey with 10 keys stored", "token.describe_key.10");
    instr("Token: DescribeKey with 100 keys stored", "token.describe_key.100");
    instr("Token: DescribeKey with 1,000 keys stored", "token.describe_key.1000");
    instr("Token: Encrypt 4 KiB", "token.encrypt.4096");
    let boot_keys =
        t.figures.keys().find(|k| k.starts_with("token.boot_to_ready.") && k.ends_with("_keys")).cloned();
    if let Some(name) = boot_keys {
        let count = name.trim_start_matches("token.boot_to_ready.").trim_end_matches("_keys").to_string();
        instr(&format!("Token: boot to ready with {count} keys stored"), &name);
    }
    session_rows(rows, g, &fig);
}

/// A figure of the bench firmware (instructions, bytes), or why there is none.
type Figure = Result<(u64, usize), String>;

/// The session's cost on the token, measured beside the same operations in the clear in one run:
/// OpenSession against its goal, and what a session adds to Encrypt 32 B and 4 KiB (opening the
/// request, sealing the answer) against a quarter of the clear Encrypt 32 B.
fn session_rows(rows: &mut Vec<Row>, g: &'static str, fig: &dyn Fn(&str) -> Figure) {
    const OPEN_GOAL: u64 = 1_500_000;
    let (figure, st) = match fig("token.session.open") {
        Ok((n, _)) => (thousands(n), status(n <= OPEN_GOAL)),
        Err(reason) => (reason, ""),
    };
    rows.push(Row {
        group: g,
        what: "Token: OpenSession (NK handshake: two P-256 ECDH, hashing, sealing; its ephemeral key made while idle, below; Authenticate's PBKDF2 comes on top)".into(),
        figure,
        goal: format!("≤ {}", thousands(OPEN_GOAL)),
        status: st,
    });
    for (what, name) in [
        (
            "Token: idle work between requests (the next handshake's ephemeral P-256 key)",
            "token.session.prepare",
        ),
        (
            "Token: OpenSession with no idle time since the last handshake (makes its own ephemeral)",
            "token.session.open.unprepared",
        ),
    ] {
        rows.push(Row {
            group: g,
            what: what.into(),
            figure: match fig(name) {
                Ok((n, _)) => thousands(n),
                Err(reason) => reason,
            },
            goal: "—".into(),
            status: "",
        });
    }
    let base = fig("token.encrypt.32");
    for (what, clear, sealed) in [
        ("Token: Encrypt 32 B in a session", "token.encrypt.32", "token.encrypt.32.session"),
        ("Token: Encrypt 4 KiB in a session", "token.encrypt.4096", "token.encrypt.4096.session"),
    ] {
        let (figure, goal, st) = match (fig(clear), fig(sealed), base.clone()) {
            (Ok((c, _)), Ok((s, _)), Ok((b, _))) => {
                let b = &b;
                let extra = s.saturating_sub(c);
                let limit = b / 4;
                (
                    format!(
                        "{} (+{} over the clear {}: {:.1} % of Encrypt 32 B)",
                        thousands(s),
                        thousands(extra),
                        thousands(c),
                        extra as f64 * 100.0 / *b as f64
                    ),
                    format!("overhead ≤ {} (25 % of Encrypt 32 B)", thousands(limit)),
                    status(extra <= limit),
                )
            }
            (_, Err(reason), _) | (Err(reason), _, _) | (_, _, Err(reason)) => (reason, String::new(), ""),
        };
        rows.push(Row { group: g, what: what.into(), figure, goal, status: st });
    }
}

fn latency(l: &Result<Latency, String>) -> String {
    match l {
        Ok(l) => format!(
            "{:.1} ops/s; p50 {:.3} ms, p99 {:.3} ms (n={})",
            l.ops_per_sec,
            ms(l.p50),
            ms(l.p99),
            l.n
        ),
        Err(e) => e.clone(),
    }
}

fn mb(rate: &Result<f64, String>) -> String {
    match rate {
        Ok(r) => format!("{:.0} MB/s", r / 1e6),
        Err(e) => e.clone(),
    }
}

/// The through-the-protocol rows (also all of `bench --only protocol`'s table): each
/// measurement over the packet link, then over the UART, in adjacent rows. Goals are the packet
/// link's; the UART keeps the overhead goal it had before the packet link.
fn protocol_rows(rows: &mut Vec<Row>, p: &ProtocolFigures) {
    let g = "Through the protocol (QEMU token)";
    backup_rows(rows, &p.backup);
    sign_files_rows(rows, &p.ssh_sign_files, &p.openpgp_sign_files);
    let name = |link: Link| match link {
        Link::Ethernet => "packet link (LAN9118)",
        Link::Uart => "UART0",
    };
    let each = |rows: &mut Vec<Row>, f: &dyn Fn(&LinkFigures) -> Row| {
        for l in &p.links {
            rows.push(f(l));
        }
    };
    for (what, pick) in [
        ("GetInfo round trip", (|l| &l.get_info) as fn(&LinkFigures) -> &crate::protocol::Row),
        ("Encrypt 32 B", |l| &l.encrypt32),
        ("Sign (digest)", |l| &l.sign_digest),
        ("ML-DSA-65 Sign (RAW 32 B; signature 3,309 B)", |l| &l.sign_ml_dsa_65),
        ("GenerateDataKey AES_256", |l| &l.generate_data_key),
        ("Session set-up (GetDeviceKey + NK handshake), as a pkms call without a cached session does", |l| {
            &l.session_setup
        }),
    ] {
        each(rows, &|l| Row {
            group: g,
            what: format!("{what}, {}", name(l.link)),
            figure: latency(pick(l)),
            goal: String::new(),
            status: "",
        });
    }
    each(rows, &|l| {
        let goal_ms = match l.link {
            Link::Ethernet => 0.3,
            Link::Uart => 1.0,
        };
        let (figure, st) = match &l.overhead {
            Ok((d, how)) => (format!("{:.3} ms ({how})", ms(*d)), status(ms(*d) < goal_ms)),
            Err(e) => (e.clone(), ""),
        };
        Row {
            group: g,
            what: format!("Protocol overhead (Encrypt 32 B), {}", name(l.link)),
            figure,
            goal: format!("< {goal_ms} ms"),
            status: st,
        }
    });
    each(rows, &|l| {
        let (figure, goal, st) = match (&l.encrypt4k, l.link) {
            (Ok(lat), Link::Ethernet) => {
                (latency(&l.encrypt4k), "< 3 ms p50".to_string(), status(ms(lat.p50) < 3.0))
            }
            (_, Link::Ethernet) => (latency(&l.encrypt4k), "< 3 ms p50".to_string(), ""),
            (_, Link::Uart) => (latency(&l.encrypt4k), String::new(), ""),
        };
        Row {
            group: g,
            what: format!("Encrypt 4 KiB round trip, {}", name(l.link)),
            figure,
            goal,
            status: st,
        }
    });
    each(rows, &|l| {
        let figure = match (&l.encrypt4k, &l.encrypt32) {
            (Ok(big), Ok(small)) => format!(
                "{:.3} ms (Encrypt 4 KiB p50 {:.3} ms − Encrypt 32 B p50 {:.3} ms)",
                ms(big.p50.saturating_sub(small.p50)),
                ms(big.p50),
                ms(small.p50)
            ),
            (Err(e), _) | (_, Err(e)) => e.clone(),
        };
        Row {
            group: g,
            what: format!("A 4 KiB plaintext's crossing (its extra time over 32 B), {}", name(l.link)),
            figure,
            goal: String::new(),
            status: "",
        }
    });
    rows.push(Row {
        group: g,
        what: "QEMU's pace on warm code, packet link (checks the overhead's 1 ns per instruction)".into(),
        figure: match &p.pace {
            Ok((ns, how)) => format!("{ns:.2} ns per instruction {how}"),
            Err(e) => e.clone(),
        },
        goal: String::new(),
        status: "",
    });
    let (figure, st) = match &p.cold_start {
        Ok(c) => (
            format!("median {:.0} ms of {} runs (p99 {:.0} ms)", ms(c.p50), c.n, ms(c.p99)),
            status(ms(c.p50) <= 100.0 && c.n >= 9),
        ),
        Err(e) => (e.clone(), ""),
    };
    rows.push(Row {
        group: g,
        what: "`pkms encrypt` cold start (process start to exit, QEMU boot included), packet link".into(),
        figure,
        goal: "≤ 100 ms median, ≥ 9 runs".into(),
        status: st,
    });
    each(rows, &|l| Row {
        group: g,
        what: format!("`pkms encrypt` warm (token already running), {}", name(l.link)),
        figure: match &l.warm_start {
            Ok(w) => format!("median {:.1} ms of {} runs (p99 {:.1} ms)", ms(w.p50), w.n, ms(w.p99)),
            Err(e) => e.clone(),
        },
        goal: String::new(),
        status: "",
    });
    each(rows, &|l| {
        let (figure, goal, st) = match &l.gdk_vs_openssl {
            Ok((ours, theirs)) => {
                let ratio = ours.p50.as_secs_f64() / theirs.p50.as_secs_f64().max(1e-9);
                let figure = format!(
                    "{ratio:.2}× (medians {:.2} ms vs {:.2} ms, {} runs each, interleaved)",
                    ms(ours.p50),
                    ms(theirs.p50),
                    ours.n
                );
                match l.link {
                    Link::Ethernet => (figure, "≤ 1.2×".to_string(), status(ratio <= 1.2 && ours.n >= 20)),
                    Link::Uart => (figure, String::new(), ""),
                }
            }
            Err(e) => (e.clone(), String::new(), ""),
        };
        Row {
            group: g,
            what: format!(
                "Warm `pkms generate-data-key` process vs `openssl rand -hex 32` process, {}",
                name(l.link)
            ),
            figure,
            goal,
            status: st,
        }
    });
}

/// One key-spec figure: what it is, its name in the bench output, and the goals it has
/// (instructions, peak stack in bytes).
struct KeySpecRow {
    what: &'static str,
    name: &'static str,
    max_instructions: Option<u64>,
    max_stack: Option<u64>,
}

const fn ks(what: &'static str, name: &'static str) -> KeySpecRow {
    KeySpecRow { what, name, max_instructions: None, max_stack: None }
}

const fn ks_goal(what: &'static str, name: &'static str, max_instructions: u64) -> KeySpecRow {
    KeySpecRow { what, name, max_instructions: Some(max_instructions), max_stack: None }
}

/// The key specs beyond P-256 (bench firmware `keyspecs`): "as the token runs it" is
/// `pkms_firmware::crypto::asym` from the stored seed or scalar with the signature verified before
/// release; the other rows are the bare primitive. ML-DSA goals are 3× pqm4's m4f averages
/// (sign 44: 3.82 M, 65: 6.19 M; verify 44: 1.42 M, 65: 2.42 M cycles); the streamed-matrix rows
/// are the nRF52840's low-memory path (goal ≤ 30 M and 64 KiB for ML-DSA-65).
const KEY_SPEC_ROWS: &[KeySpecRow] = &[
    ks("Ed25519 key generation (random seed + public key DER)", "ed25519.keygen"),
    ks_goal("Ed25519 sign (ed25519-dalek, key loaded)", "ed25519.sign", 600_000),
    ks("Ed25519 verify (verify_strict)", "ed25519.verify"),
    ks("Ed25519 Sign as the token runs it (from the seed, verified before release)", "ed25519.token_sign"),
    ks("Ed25519ph Sign as the token runs it (RAW, SHA-512 on the token)", "ed25519ph.token_sign"),
    ks("Ed25519 Verify as the token runs it", "ed25519.token_verify"),
    ks("secp256k1 table of the generator's multiples, built once per boot (QEMU build; the nRF52840 has none)", "secp256k1.table"),
    ks("secp256k1 key generation (random scalar + public key DER)", "secp256k1.keygen"),
    ks_goal("secp256k1 sign (k256, hedged RFC 6979, low-S)", "secp256k1.sign", 2_100_000),
    ks("secp256k1 verify (k256)", "secp256k1.verify"),
    ks("secp256k1 Sign as the token runs it (public key + verify before release)", "secp256k1.token_sign"),
    ks("secp256k1 Verify as the token runs it (public key from the scalar)", "secp256k1.token_verify"),
    ks("secp256k1 DeriveSharedSecret (peer SPKI checked, ECDH)", "secp256k1.ecdh"),
    ks("P-384 key generation (random scalar + public key DER)", "p384.keygen"),
    ks("P-384 sign (p384, hedged RFC 6979, low-S)", "p384.sign"),
    ks("P-384 verify (p384)", "p384.verify"),
    ks("P-384 Sign as the token runs it (public key + verify before release)", "p384.token_sign"),
    ks("P-384 Verify as the token runs it (public key from the scalar)", "p384.token_verify"),
    ks("P-384 DeriveSharedSecret (peer SPKI checked, ECDH)", "p384.ecdh"),
    ks("P-256 DeriveSharedSecret (peer SPKI checked, ECDH in the cortex-m4-asm backend)", "p256.ecdh"),
    ks("P-256 key generation through crypto::asym", "p256.keygen"),
    ks("P-256 Sign through crypto::asym (digest; verified before release)", "p256.token_sign"),
    ks("ML-DSA-44 key generation (random seed + public key DER)", "mldsa44.keygen"),
    ks_goal("ML-DSA-44 sign from the seed, matrix cached (avg of 100)", "mldsa44.sign.cached", 11_460_000),
    ks("ML-DSA-44 sign from the seed, matrix streamed (avg of 100)", "mldsa44.sign.streamed"),
    ks_goal("ML-DSA-44 verify (avg of 100)", "mldsa44.verify", 4_260_000),
    ks("ML-DSA-44 Sign as the token runs it, matrix cached (avg of 20)", "mldsa44.token_sign.cached"),
    ks("ML-DSA-44 Sign as the token runs it, matrix streamed (avg of 20)", "mldsa44.token_sign.streamed"),
    ks("ML-DSA-44 Verify as the token runs it (public key from the seed)", "mldsa44.token_verify"),
    ks("ML-DSA-65 key generation (random seed + public key DER)", "mldsa65.keygen"),
    ks_goal("ML-DSA-65 sign from the seed, matrix cached (avg of 100)", "mldsa65.sign.cached", 18_570_000),
    KeySpecRow {
        what: "ML-DSA-65 sign from the seed, matrix streamed: the low-memory path (avg of 100)",
        name: "mldsa65.sign.streamed",
        max_instructions: Some(30_000_000),
        max_stack: Some(64 * 1024),
    },
    ks_goal("ML-DSA-65 verify (avg of 100)", "mldsa65.verify", 7_260_000),
    ks("ML-DSA-65 Sign as the token runs it, matrix cached (avg of 20)", "mldsa65.token_sign.cached"),
    KeySpecRow {
        what: "ML-DSA-65 Sign as the nRF52840 runs it, matrix streamed (avg of 20)",
        name: "mldsa65.token_sign.streamed",
        max_instructions: Some(30_000_000),
        max_stack: Some(64 * 1024),
    },
    ks("ML-DSA-65 Verify as the token runs it (public key from the seed)", "mldsa65.token_verify"),
    ks("ML-DSA-87 key generation (random seed + public key DER)", "mldsa87.keygen"),
    ks("ML-DSA-87 sign from the seed, matrix cached (avg of 100)", "mldsa87.sign.cached"),
    ks("ML-DSA-87 sign from the seed, matrix streamed (avg of 100)", "mldsa87.sign.streamed"),
    ks("ML-DSA-87 verify (avg of 100)", "mldsa87.verify"),
    ks("ML-DSA-87 Sign as the token runs it, matrix cached (avg of 20)", "mldsa87.token_sign.cached"),
    ks("ML-DSA-87 Sign as the token runs it, matrix streamed (avg of 20)", "mldsa87.token_sign.streamed"),
    ks("ML-DSA-87 Verify as the token runs it (public key from the seed)", "mldsa87.token_verify"),
    ks("ML-KEM-512 key generation (random seed + public key DER)", "mlkem512.keygen"),
    ks("ML-KEM-512 Encapsulate (from the seed)", "mlkem512.encapsulate"),
    ks("ML-KEM-512 Decapsulate (from the seed)", "mlkem512.decapsulate"),
    ks_goal("ML-KEM-768 key generation (random seed + public key DER)", "mlkem768.keygen", 2_000_000),
    ks_goal("ML-KEM-768 Encapsulate (from the seed)", "mlkem768.encapsulate", 2_000_000),
    ks_goal("ML-KEM-768 Decapsulate (from the seed)", "mlkem768.decapsulate", 2_000_000),
    ks("ML-KEM-1024 key generation (random seed + public key DER)", "mlkem1024.keygen"),
    ks("ML-KEM-1024 Encapsulate (from the seed)", "mlkem1024.encapsulate"),
    ks("ML-KEM-1024 Decapsulate (from the seed)", "mlkem1024.decapsulate"),
];

/// The key-spec rows: instructions and peak stack, with goals where there are some.
fn key_spec_rows(rows: &mut Vec<Row>, t: &Result<TokenFigures, String>) {
    let g = "On token, key specs (instructions; peak stack)";
    let Ok(t) = t else { return };
    for row in KEY_SPEC_ROWS {
        let Some(&(n, _)) = t.figures.get(row.name) else {
            let reason =
                t.not_available.get(row.name).cloned().unwrap_or_else(|| "n/a (not measured)".into());
            rows.push(Row {
                group: g,
                what: row.what.into(),
                figure: reason,
                goal: String::new(),
                status: "",
            });
            continue;
        };
        let stack = t.stack.get(row.name).copied();
        let figure = match stack {
            Some(s) => format!("{}; stack {} B", thousands(n), thousands(s)),
            None => thousands(n),
        };
        let mut goals = Vec::new();
        let mut meets = true;
        if let Some(max) = row.max_instructions {
            goals.push(format!("≤ {}", thousands(max)));
            meets &= n <= max;
        }
        if let Some(max) = row.max_stack {
            goals.push(format!("stack ≤ {} B", thousands(max)));
            meets &= stack.is_some_and(|s| s <= max);
        }
        let st = if goals.is_empty() { "" } else { status(meets) };
        rows.push(Row { group: g, what: row.what.into(), figure, goal: goals.join("; "), status: st });
    }
}

fn rows(r: &Report<'_>) -> Vec<Row> {
    let mut rows = Vec::new();
    token_rows(&mut rows, r.token, false);
    key_spec_rows(&mut rows, r.token);

    protocol_rows(&mut rows, r.proto);

    let g = "Host (single core)";
    let h = r.host;
    for (what, ours, theirs) in [
        (
            "AES-256-GCM, pkms library (file segment sealing) vs openssl speed -evp aes-256-gcm",
            &h.pkms_aes_gcm,
            &h.openssl_aes_gcm,
        ),
        (
            "SHA-256, pkms library (sign-file hashing) vs openssl speed -evp sha256",
            &h.pkms_sha256,
            &h.openssl_sha256,
        ),
    ] {
        let ratio = match (ours, theirs) {
            (Ok(a), Ok(b)) if *b > 0.0 => format!("; ratio {:.2}×", a / b),
            _ => String::new(),
        };
        rows.push(Row {
            group: g,
            what: what.into(),
            figure: format!("{} vs {}{ratio}", mb(ours), mb(theirs)),
            goal: String::new(),
            status: "",
        });
    }

    let g = "Firmware image";
    for s in r.sizes {
        let figure = match &s.result {
            Ok((flash, ram)) => format!("flash {} B, RAM {} B", thousands(*flash), thousands(*ram)),
            Err(e) => e.clone(),
        };
        rows.push(Row { group: g, what: s.board.into(), figure, goal: String::new(), status: "" });
    }

    token_rows(&mut rows, r.token, true);
    rows
}

/// The one table, in Markdown (also what is printed).
pub fn table(r: &Report<'_>) -> String {
    markdown_rows(&rows(r))
}

/// The backup rows: export and restore per 100 key versions, and the RAM an export needs.
fn backup_rows(rows: &mut Vec<Row>, backup: &Result<crate::backup::BackupFigures, String>) {
    let g = "Through the protocol (QEMU token)";
    let (export, restore) = match backup {
        Ok(b) => (
            format!(
                "{:.3} s per 100 key versions ({} versions: {} chunks, {} bytes)",
                b.export_s, b.versions, b.chunks, b.bytes
            ),
            format!("{:.3} s per 100 key versions ({} versions)", b.restore_s, b.versions),
        ),
        Err(e) => (e.clone(), e.clone()),
    };
    let (state, buffers) = crate::backup::export_ram();
    for (what, figure) in [
        ("Backup export (streamed, packet link)", export),
        ("Backup restore onto a fresh token (packet link)", restore),
        (
            "Token RAM a backup export needs",
            format!(
                "{state} B kept between requests, in {buffers} B of buffers every request already has (one chunk, one key record, one record body)"
            ),
        ),
    ] {
        rows.push(Row { group: g, what: what.into(), figure, goal: String::new(), status: "" });
    }
}

/// The signature-format rows: `pkms sign-file --format ssh` and `--format openpgp` of many files
/// in one command each.
fn sign_files_rows(
    rows: &mut Vec<Row>,
    ssh: &Result<crate::sigformats::FilesSigning, String>,
    openpgp: &Result<crate::sigformats::FilesSigning, String>,
) {
    for (what, figures) in [
        ("`pkms sign-file --format ssh` (SSHSIG, P-256), many files in one command, packet link", ssh),
        ("`pkms sign-file --format openpgp` (detached .asc, P-256), many files in one command, packet link", openpgp),
    ] {
        let figure = match figures {
            Ok(s) => {
                format!("{:.4} s per file ({:.2} s for {} files of 4 KiB)", s.per_file_s(), s.total_s, s.files)
            }
            Err(e) => e.clone(),
        };
        rows.push(Row {
            group: "Through the protocol (QEMU token)",
            what: what.into(),
            figure,
            goal: String::new(),
            status: "",
        });
    }
}

/// `bench --only sign-files`' table.
pub fn sign_files_table(
    ssh: &Result<crate::sigformats::FilesSigning, String>,
    openpgp: &Result<crate::sigformats::FilesSigning, String>,
) -> String {
    let mut rows = Vec::new();
    sign_files_rows(&mut rows, ssh, openpgp);
    markdown_rows(&rows)
}

/// `bench --only backup`'s table.
pub fn backup_table(backup: &Result<crate::backup::BackupFigures, String>) -> String {
    let mut rows = Vec::new();
    backup_rows(&mut rows, backup);
    markdown_rows(&rows)
}

/// `bench --only protocol`'s table: the through-the-protocol rows of the full one.
pub fn protocol_table(p: &ProtocolFigures) -> String {
    let mut rows = Vec::new();
    protocol_rows(&mut rows, p);
    markdown_rows(&rows)
}

fn markdown_rows(rows: &[Row]) -> String {
    let mut out = String::from("| Group | Measurement | Figure | Goal | Status |\n|---|---|---|---|---|\n");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            row.group, row.what, row.figure, row.goal, row.status
        );
    }
    out
}

/// What the acceptance check reads: the smallest number (4+ characters) on the first line
/// matching `pattern` words (both must appear, case-insensitive).
pub fn acceptance_figure(text: &str, a: &str, b: &str) -> Option<u64> {
    for line in text.lines() {
        let lower = line.to_lowercase();
        let has_a = lower.contains(a) || lower.contains(&a.replace('-', ""));
        if has_a && lower.contains(b) {
            let mut nums = Vec::new();
            let mut cur = String::new();
            for c in line.chars().chain(std::iter::once(' ')) {
                if c.is_ascii_digit() || (!cur.is_empty() && (c == ',' || c == '_')) {
                    cur.push(c);
                } else {
                    if cur.len() >= 4 {
                        let digits: String = cur.chars().filter(char::is_ascii_digit).collect();
                        if let Ok(n) = digits.parse::<u64>() {
                            nums.push(n);
                        }
                    }
                    cur.clear();
                }
            }
            if let Some(min) = nums.into_iter().min() {
                return Some(min);
            }
        }
    }
    None
}

pub fn markdown(r: &Report<'_>, table: &str) -> String {
    let f = &r.facts;
    let mut md = String::new();
    let _ = writeln!(md, "# Pocket KMS benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `scripts/bench.sh` (`cargo run --release -p xtask -- bench`); do not edit by hand.\n"
    );
    let _ = writeln!(md, "- Date: {}", f.date_utc);
    let _ = writeln!(md, "- Commit: {}", f.commit);
    let _ = writeln!(
        md,
        "- Machine: {} ({} cores available; load average {} at the start: wall-time figures below are only as \
         quiet as the machine was)",
        f.cpu_model, f.cores, f.load
    );
    let _ = writeln!(md, "- Tools: {}; {}; {}", f.qemu, f.rustc, r.host.openssl_version);
    match r.token {
        Ok(t) => {
            let repeat = if t.repeat_differences.is_empty() {
                format!("yes: two runs gave identical figures ({} figures)", t.figures.len())
            } else {
                format!("NO: {}", t.repeat_differences.join("; "))
            };
            let _ = writeln!(md, "- On-token figures repeatable exactly: {repeat}");
            let checks = if t.checks_failed.is_empty() {
                format!("all {} passed", t.checks_passed)
            } else {
                format!("FAILED: {}", t.checks_failed.join(", "))
            };
            let _ =
                writeln!(md, "- On-target correctness checks (backend cross-check, round trips): {checks}");
            if let Some(ratio) = t.info.get("instructions_per_tick_x1000") {
                let per_tick =
                    ratio.parse::<u64>().map(|x| (x / 1000).to_string()).unwrap_or_else(|_| ratio.clone());
                let exact = t.info.get("exact_to_the_instruction_at_end").map(String::as_str) == Some("true");
                let resolution = if exact {
                    "figures exact to the instruction (41-instruction vernier on the tick edges, \
                     self-checked on a loop of known length)"
                        .to_string()
                } else {
                    format!("figures are multiples of {per_tick} (the vernier self-check did not pass)")
                };
                let _ = writeln!(md, "- Counter: SysTick, {per_tick} instructions per tick; {resolution}");
            }
        }
        Err(e) => {
            let _ = writeln!(md, "- On-token figures: not taken ({e})");
        }
    }
    let _ = writeln!(md, "\n{table}");
    let _ = writeln!(
        md,
        "Notes: on-token figures are instructions counted under `qemu-system-arm -M mps2-an386 -icount shift=0` \
         (1 instruction = 1 ns of virtual time) by SysTick at 25 MHz (one tick = 40 instructions, resolved to \
         the instruction by a vernier); each is one run of the operation with a fixed-seed RNG, minus the cost \
         of reading the counter. The bench firmware is \
         built with opt-level 3 and LTO. \"n/a\" rows name why a figure is missing (e.g. an operation the token \
         core does not implement yet). Through-the-protocol figures are wall time on this machine against a QEMU \
         token without -icount. Peak stack (key-spec rows) is found by stack painting: 512 KiB below the \
         measuring frame filled with a pattern before the operation, the lowest overwritten word found after it. \
         See docs/benchmarks.md for how instructions relate to time on the nRF52840 and \
         for published figures of other tokens."
    );
    for (title, report) in [
        ("Files benchmark", &r.host.files_bench),
        ("Flash store: bytes, capacity and wear", &r.host.store_report),
    ] {
        let _ = writeln!(md, "\n## {title}\n");
        match report {
            Ok(out) => {
                let (what, body) = out.split_once("\n\n").unwrap_or(("the report", out));
                let _ = writeln!(
                    md,
                    "Output of {}:\n\n```\n{}\n```",
                    what.trim_end_matches(':'),
                    body.trim_end()
                );
            }
            Err(e) => {
                let _ = writeln!(md, "{e}");
            }
        }
    }
    let _ = writeln!(md, "\n{}", kms_endpoint_section(&r.host.kms_endpoint_bench));
    // Self-check against the acceptance reader.
    let sign = acceptance_figure(&md, "p-256", "sign");
    let verify = acceptance_figure(&md, "p-256", "verif");
    let expected = |name: &str| r.token.as_ref().ok().and_then(|t| t.figures.get(name)).map(|&(n, _)| n);
    if sign != expected(&format!("p256.sign.{ASM}")) || verify != expected(&format!("p256.verify.{ASM}")) {
        eprintln!(
            "[bench] warning: BENCHMARKS.md's first P-256 sign/verify lines do not carry the {ASM} figures"
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_spec_rows_show_stack_and_judge_both_goals() {
        let mut t = crate::firmware::parse(
            "BENCH mldsa65.token_sign.streamed 21379119 0\nSTACK mldsa65.token_sign.streamed 70000\n\
             BENCH ed25519.sign 560306 0\nSTACK ed25519.sign 2600\nBENCH secp256k1.sign 2535246 0\n",
        );
        t.not_available.insert("p384.sign".into(), "n/a (why)".into());
        let mut rows = Vec::new();
        key_spec_rows(&mut rows, &Ok(t));
        let find = |what: &str| rows.iter().find(|r| r.what.starts_with(what)).unwrap();
        let ed = find("Ed25519 sign (");
        assert_eq!((ed.figure.as_str(), ed.status), ("560,306; stack 2,600 B", "meets"));
        assert_eq!(find("secp256k1 sign (").status, "misses");
        // Instructions within 30 M but 70,000 B of stack: misses.
        let ml = find("ML-DSA-65 Sign as the nRF52840");
        assert_eq!((ml.status, ml.goal.as_str()), ("misses", "≤ 30,000,000; stack ≤ 65,536 B"));
        assert_eq!(find("P-384 sign (").figure, "n/a (why)");
        assert_eq!(find("ML-KEM-512 Decapsulate").figure, "n/a (not measured)");
    }

    #[test]
    fn sign_files_row_shows_seconds_per_file_or_why_not() {
        let ok = Ok(crate::sigformats::FilesSigning { files: 100, total_s: 2.5 });
        let pgp = Ok(crate::sigformats::FilesSigning { files: 100, total_s: 4.0 });
        let t = sign_files_table(&ok, &pgp);
        assert!(
            t.contains("`pkms sign-file --format ssh`")
                && t.contains("0.0250 s per file (2.50 s for 100 files"),
            "{t}"
        );
        assert!(
            t.contains("`pkms sign-file --format openpgp`")
                && t.contains("0.0400 s per file (4.00 s for 100"),
            "{t}"
        );
        let t = sign_files_table(&Err("n/a (the pkms binary did not build)".into()), &pgp);
        assert!(t.contains("n/a (the pkms binary did not build)"), "{t}");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(268_123), "268,123");
        assert_eq!(thousands(10_495_280), "10,495,280");
    }

    #[test]
    fn acceptance_reader_takes_the_first_matching_line_minimum() {
        let text = "# title\n| On token | P-256 sign (digest), cortex-m4-asm backend | 359,480 | ≤ 400,000 | meets |\n\
                    | x | P-256 sign, portable | 5,878,040 | | |\n";
        assert_eq!(acceptance_figure(text, "p-256", "sign"), Some(359_480));
        assert_eq!(acceptance_figure(text, "p-256", "verif"), None);
        assert_eq!(acceptance_figure("p256 verify 1_234 and 99\n", "p-256", "verif"), Some(1234));
    }
}

/// The title of the KMS endpoint benchmark's section.
pub const KMS_ENDPOINT_TITLE: &str = "## KMS endpoint benchmark";

/// The KMS endpoint benchmark's section: the script's Markdown as it printed it.
pub fn kms_endpoint_section(report: &Result<String, String>) -> String {
    match report {
        Ok(out) => {
            let (what, body) = out.split_once("\n\n").unwrap_or(("the report", out));
            format!(
                "{KMS_ENDPOINT_TITLE}\n\nOutput of {}:\n\n{}\n",
                what.trim_end_matches(':'),
                body.trim_end()
            )
        }
        Err(e) => format!("{KMS_ENDPOINT_TITLE}\n\n{e}\n"),
    }
}

/// `document` with its KMS endpoint section replaced by `section` (appended if absent).
pub fn replace_kms_endpoint_section(document: &str, section: &str) -> String {
    match document.find(KMS_ENDPOINT_TITLE) {
        None => format!("{}\n\n{section}", document.trim_end()),
        Some(start) => {
            let after = start + KMS_ENDPOINT_TITLE.len();
            let end = document[after..].find("\n## ").map(|i| after + i + 1).unwrap_or(document.len());
            let rest = &document[end..];
            let gap = if rest.is_empty() { "" } else { "\n" };
            format!("{}{section}{gap}{rest}", &document[..start])
        }
    }
}

#[cfg(test)]
mod kms_endpoint_section_tests {
    use super::*;

    #[test]
    fn the_section_is_replaced_in_place_or_appended() {
        let doc = "# B\n\nintro\n\n## KMS endpoint benchmark\n\nold\n\n## Later\n\nkept\n";
        let new = replace_kms_endpoint_section(doc, "## KMS endpoint benchmark\n\nnew\n");
        assert_eq!(new, "# B\n\nintro\n\n## KMS endpoint benchmark\n\nnew\n\n## Later\n\nkept\n");
        let appended = replace_kms_endpoint_section("# B\n", "## KMS endpoint benchmark\n\nx\n");
        assert_eq!(appended, "# B\n\n## KMS endpoint benchmark\n\nx\n");
    }
}
