//! Through-the-protocol figures against the QEMU token the `pkms` launcher starts (no -icount:
//! host speed), over both of its links in the same run, the packet link (LAN9118) and UART0,
//! with the `pkms_lib` client: ops/s and p50/p99 latency of GetInfo, Encrypt (32 B and 4 KiB),
//! Sign (digest) and GenerateDataKey; the protocol overhead; and whole `pkms` processes: the cold
//! start of `pkms encrypt` (median of several), warm `pkms encrypt`, and warm `pkms
//! generate-data-key` against `openssl rand -hex 32` run interleaved with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pkms_lib::launcher::{self, LaunchOptions, Link};
use pkms_lib::model::{CreateKeyParams, DataKeySize};
use pkms_lib::{connect, Client};
use pkms_protocol::{DataKeySpec, KeySpec, MessageType, SigningAlgorithm};

use crate::firmware::{self, clean_cargo, TokenFigures};

/// Latency statistics of one operation.
pub struct Latency {
    pub n: usize,
    pub ops_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// A measured row or why it could not be measured.
pub type Row = Result<Latency, String>;

/// The figures of one link.
pub struct LinkFigures {
    pub link: Link,
    pub get_info: Row,
    pub encrypt32: Row,
    pub encrypt4k: Row,
    pub sign_digest: Row,
    /// ML-DSA-65 Sign of a 32-byte RAW message (a 3,309-byte signature back).
    pub sign_ml_dsa_65: Row,
    pub generate_data_key: Row,
    /// Opening a session as pkms does: GetDeviceKey and the NK handshake (both ends' ECDH).
    pub session_setup: Row,
    /// (overhead, how it was derived).
    pub overhead: Result<(Duration, String), String>,
    /// Warm `pkms encrypt` (32 B) processes: the median.
    pub warm_start: Result<Latency, String>,
    /// Warm `pkms generate-data-key` processes against `openssl rand -hex 32`, interleaved.
    pub gdk_vs_openssl: Result<(Latency, Latency), String>,
}

/// Every through-the-protocol figure.
pub struct ProtocolFigures {
    /// The packet link first, then the UART.
    pub links: Vec<LinkFigures>,
    /// `pkms encrypt` with no token running (QEMU boot included), over the default link.
    pub cold_start: Result<Latency, String>,
    /// QEMU's pace on warm code over the packet link, in ns per instruction, with how it was
    /// derived: the check of the overhead's 1 ns per instruction.
    pub pace: Result<(f64, String), String>,
    /// A backup's export and restore between two QEMU tokens.
    pub backup: Result<crate::backup::BackupFigures, String>,
    /// `pkms sign-file --format ssh` of [`crate::sigformats::FILES`] files in one command.
    pub ssh_sign_files: Result<crate::sigformats::FilesSigning, String>,
    /// The same with `--format openpgp` (detached .asc signatures).
    pub openpgp_sign_files: Result<crate::sigformats::FilesSigning, String>,
}

/// Cold starts timed (the goal asks for at least 9).
pub const COLD_RUNS: usize = 11;
/// Warm process runs of each kind (the goal asks for at least 20).
pub const WARM_RUNS: usize = 25;

/// A temporary PKMS_HOME whose token is killed and whose directory is removed on drop.
pub(crate) struct TempHome(pub(crate) PathBuf);

impl TempHome {
    pub(crate) fn new(tag: &str) -> std::io::Result<TempHome> {
        let dir = std::env::temp_dir().join(format!("pkms-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(TempHome(dir))
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        launcher::kill_token(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stats(mut samples: Vec<Duration>) -> Latency {
    let total: Duration = samples.iter().sum();
    samples.sort();
    let n = samples.len();
    let pick = |q: f64| samples[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
    Latency { n, ops_per_sec: n as f64 / total.as_secs_f64().max(1e-9), p50: pick(0.50), p99: pick(0.99) }
}

/// Times opening a session `n` times (after two untimed): GetDeviceKey and OpenSession, each
/// time after closing the previous session (untimed). Leaves a session open.
fn time_session_setup(client: &mut Client, n: usize) -> Row {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + 2 {
        client.close_session().map_err(describe)?;
        let t = Instant::now();
        let key = client.device_key().map_err(describe)?;
        client.open_session(&key).map_err(describe)?;
        if i >= 2 {
            samples.push(t.elapsed());
        }
    }
    Ok(stats(samples))
}

/// Times `op` `n` times after `warmup` untimed calls. Stops at the first error.
fn time_op(n: usize, warmup: usize, mut op: impl FnMut() -> pkms_lib::Result<()>) -> Row {
    for _ in 0..warmup {
        op().map_err(describe)?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        op().map_err(describe)?;
        samples.push(t.elapsed());
    }
    Ok(stats(samples))
}

fn describe(e: pkms_lib::Error) -> String {
    match e.code() {
        Some(pkms_protocol::ErrorCode::UnsupportedOperation) => format!("n/a (not yet implemented: {e})"),
        _ => format!("n/a (error: {e})"),
    }
}

fn create(client: &mut Client, spec: KeySpec) -> Result<String, String> {
    let params =
        CreateKeyParams { key_spec: spec, description: "bench".into(), ..CreateKeyParams::default() };
    client.create_key(&params).map(|m| m.key_id.to_string()).map_err(describe)
}

/// Iterations per operation: (most, Sign, a 4 KiB Encrypt). The UART takes hundreds of
/// milliseconds for a 4 KiB plaintext, so it gets fewer of those.
fn iterations(link: Link, quick: bool) -> (usize, usize, usize) {
    match (link, quick) {
        (Link::Ethernet, false) => (200, 100, 100),
        (Link::Ethernet, true) => (30, 20, 20),
        (Link::Uart, false) => (200, 100, 15),
        (Link::Uart, true) => (30, 20, 5),
    }
}

/// Runs every through-the-protocol measurement: both links on one token, then whole `pkms`
/// processes.
pub fn run(root: &Path, quick: bool, token: Option<&TokenFigures>) -> ProtocolFigures {
    let session = TempHome::new("proto").map_err(|e| format!("n/a (temp dir: {e})"));
    let mut links = Vec::new();
    for link in [Link::Ethernet, Link::Uart] {
        eprintln!("[bench]   {link}: client round trips");
        let mut f = match &session {
            Ok(home) => session_figures(&home.0, link, iterations(link, quick)),
            Err(e) => failed(link, e.clone()),
        };
        f.overhead = overhead(&f, token);
        links.push(f);
    }
    drop(session);
    let (cold_start, ssh_sign_files, openpgp_sign_files) = match build_pkms(root) {
        Ok(pkms) => {
            eprintln!("[bench]   whole pkms processes (cold start x{COLD_RUNS}, warm x{WARM_RUNS} per link)");
            let cold = process_figures(&pkms, &mut links);
            (cold, ssh_sign_files(&pkms), openpgp_sign_files(&pkms))
        }
        Err(e) => (Err(e.clone()), Err(e.clone()), Err(e)),
    };
    let pace = pace(links.first(), token);
    eprintln!("[bench]   backup export and restore between two QEMU tokens");
    let backup = crate::backup::measure();
    ProtocolFigures { links, cold_start, pace, backup, ssh_sign_files, openpgp_sign_files }
}

/// `pkms sign-file --format ssh` of [`crate::sigformats::FILES`] files, ECC_NIST_P256.
pub fn ssh_sign_files(pkms: &Path) -> Result<crate::sigformats::FilesSigning, String> {
    eprintln!("[bench]   sign-file --format ssh of {} files in one command", crate::sigformats::FILES);
    crate::sigformats::sign_files(pkms, "ssh", "ECC_NIST_P256", "sig", crate::sigformats::FILES)
}

/// `pkms sign-file --format openpgp` of [`crate::sigformats::FILES`] files, ECC_NIST_P256.
pub fn openpgp_sign_files(pkms: &Path) -> Result<crate::sigformats::FilesSigning, String> {
    eprintln!("[bench]   sign-file --format openpgp of {} files in one command", crate::sigformats::FILES);
    crate::sigformats::sign_files(pkms, "openpgp", "ECC_NIST_P256", "asc", crate::sigformats::FILES)
}

/// Builds the `pkms` binary (for the `--only sign-files` run).
pub fn pkms_binary(root: &Path) -> Result<PathBuf, String> {
    build_pkms(root)
}

/// The in-token figure of a Sign, which [`pace`] sets against the Encrypt.
const IN_TOKEN_SIGN: &str = "token.sign.digest";

/// ns per instruction of warm code: (Sign p50 − Encrypt 32 B p50) / (their instruction counts'
/// difference). Both requests are about the same size, so the link's share cancels out.
fn pace(f: Option<&LinkFigures>, token: Option<&TokenFigures>) -> Result<(f64, String), String> {
    let f = f.ok_or("n/a")?;
    let (sign, encrypt) = match (&f.sign_digest, &f.encrypt32) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return Err(e.clone()),
    };
    let token = token.ok_or("n/a (needs the bench firmware)")?;
    let (Some(&(si, _)), Some(&(ei, _))) =
        (token.figures.get(IN_TOKEN_SIGN), token.figures.get(IN_TOKEN_ENCRYPT))
    else {
        return Err("n/a (needs the in-token Sign and Encrypt figures)".into());
    };
    let extra = si.saturating_sub(ei).max(1) as f64;
    let ns = sign.p50.saturating_sub(encrypt.p50).as_nanos() as f64 / extra;
    Ok((
        ns,
        format!(
            "(Sign p50 {:.3} ms − Encrypt 32 B p50 {:.3} ms) / ({} − {} instructions)",
            ms(sign.p50),
            ms(encrypt.p50),
            crate::render::thousands(si),
            crate::render::thousands(ei)
        ),
    ))
}

fn failed(link: Link, e: String) -> LinkFigures {
    LinkFigures {
        link,
        get_info: Err(e.clone()),
        encrypt32: Err(e.clone()),
        encrypt4k: Err(e.clone()),
        sign_digest: Err(e.clone()),
        sign_ml_dsa_65: Err(e.clone()),
        generate_data_key: Err(e.clone()),
        session_setup: Err(e.clone()),
        overhead: Err(e.clone()),
        warm_start: Err(e.clone()),
        gdk_vs_openssl: Err(e),
    }
}

fn session_figures(home: &Path, link: Link, (n, n_sign, n_4k): (usize, usize, usize)) -> LinkFigures {
    let opts = LaunchOptions { link, ..LaunchOptions::from_env() };
    let mut client = match connect::open_qemu_with(home, &opts) {
        Ok(c) => c,
        Err(e) => return failed(link, format!("n/a (could not reach the QEMU token over {link}: {e})")),
    };
    // Every figure below is taken inside an encrypted session, as pkms makes its calls.
    let session_setup = time_session_setup(&mut client, n_sign);
    if let Err(e) = &session_setup {
        return failed(link, format!("n/a (no session over {link}: {e})"));
    }
    let get_info = time_op(n, 5, || client.get_info().map(|_| ()));
    let symmetric = create(&mut client, KeySpec::SymmetricDefault);
    let no_context: &[(&str, &str)] = &[];
    let (encrypt32, encrypt4k, generate_data_key) = match &symmetric {
        Ok(id) => (
            time_op(n, 5, || client.encrypt(id, &[0x42; 32], no_context).map(|_| ())),
            time_op(n_4k, 2, || client.encrypt(id, &[0x42; 4096], no_context).map(|_| ())),
            time_op(n, 5, || {
                client.generate_data_key(id, no_context, DataKeySize::Spec(DataKeySpec::Aes256)).map(|_| ())
            }),
        ),
        Err(e) => {
            let e = format!("{e} (CreateKey)");
            (Err(e.clone()), Err(e.clone()), Err(e))
        }
    };
    let sign_digest = match create(&mut client, KeySpec::EccNistP256) {
        Ok(id) => time_op(n_sign, 3, || {
            client.sign(&id, &[0x24; 32], MessageType::Digest, SigningAlgorithm::EcdsaSha256).map(|_| ())
        }),
        Err(e) => Err(format!("{e} (CreateKey ECC_NIST_P256)")),
    };
    let sign_ml_dsa_65 = match create(&mut client, KeySpec::MlDsa65) {
        Ok(id) => time_op(n_4k, 2, || {
            client.sign(&id, &[0x24; 32], MessageType::Raw, SigningAlgorithm::MlDsaShake256).map(|_| ())
        }),
        Err(e) => Err(format!("{e} (CreateKey ML_DSA_65)")),
    };
    LinkFigures {
        link,
        get_info,
        encrypt32,
        encrypt4k,
        sign_digest,
        sign_ml_dsa_65,
        generate_data_key,
        session_setup,
        overhead: Err(String::new()),
        warm_start: Err(String::new()),
        gdk_vs_openssl: Err(String::new()),
    }
}

/// Protocol overhead: a 32-byte Encrypt round trip (in a session) minus the in-token cost (in a
/// session too), the same
/// subtraction for both links. The in-token cost is the Encrypt's instruction count (bench
/// firmware under `-icount`) at 1 ns per instruction, the pace of QEMU's translated code on this
/// kind of host once warm (docs/benchmarks.md shows the check). The bench firmware's wall-time
/// figure without `-icount` is a cold first run, QEMU translating the code as it goes, and is
/// used only when there is no instruction count.
fn overhead(f: &LinkFigures, token: Option<&TokenFigures>) -> Result<(Duration, String), String> {
    let rtt = f.encrypt32.as_ref().map_err(|e| format!("{e} (needs Encrypt over the protocol)"))?;
    let token = token.ok_or("n/a (needs the bench firmware)".to_string())?;
    let realtime = token.realtime_ns.get(IN_TOKEN_ENCRYPT_SESSION).filter(|&&ns| ns > 0);
    let (inside, how) = match (token.figures.get(IN_TOKEN_ENCRYPT_SESSION), realtime) {
        (Some(&(n, _)), _) => (
            Duration::from_nanos(n),
            format!("its {} instructions at 1 ns each", crate::render::thousands(n)),
        ),
        (None, Some(&ns)) => {
            (Duration::from_nanos(ns), "its wall time in a cold QEMU without -icount".into())
        }
        (None, None) => return Err("n/a (needs the in-token Encrypt figure)".into()),
    };
    Ok((
        rtt.p50.saturating_sub(inside),
        format!("Encrypt 32 B p50 {:.3} ms − in-token {:.3} ms, {how}", ms(rtt.p50), ms(inside)),
    ))
}

/// The in-token Encrypt 32 B in the clear (the pace compares it with the in-token Sign).
const IN_TOKEN_ENCRYPT: &str = "token.encrypt.32";
/// The figure the protocol overhead subtracts: Encrypt 32 B inside a session, as the round trips
/// are made (opening the request and sealing the answer included).
const IN_TOKEN_ENCRYPT_SESSION: &str = "token.encrypt.32.session";

/// For `bench --only protocol`: the in-token instruction counts the overhead subtracts, from
/// one run of the bench firmware under `-icount` (the full bench takes them from its own runs in
/// [`firmware::run`]).
pub fn in_token_figures(root: &Path) -> Result<TokenFigures, String> {
    firmware::ensure_target(root);
    let dir = root.join("bench/firmware");
    firmware::cargo_build_release(&dir)?;
    let elf = dir.join("target").join(firmware::TARGET).join("release/pkms-bench-firmware");
    let (output, _, wall) = firmware::run_once(&elf, true)?;
    let mut figures = firmware::parse(&output);
    figures.wall = wall;
    if !figures.figures.contains_key(IN_TOKEN_ENCRYPT) {
        return Err(format!("the bench firmware gave no {IN_TOKEN_ENCRYPT} figure"));
    }
    Ok(figures)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Builds the `pkms` binary; returns its path.
fn build_pkms(root: &Path) -> Result<PathBuf, String> {
    let build =
        clean_cargo(Command::new("cargo").current_dir(root).args(["build", "--release", "-p", "pkms"]))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    match build {
        Ok(s) if s.success() => Ok(root.join("target/release/pkms")),
        _ => Err("n/a (the pkms binary did not build)".to_string()),
    }
}

/// Runs one whole process; its wall time and stdout.
fn time_process(cmd: &mut Command) -> Result<(Duration, String), String> {
    let t = Instant::now();
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("n/a ({e})"))?;
    let took = t.elapsed();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "n/a ({}: {})",
            cmd.get_program().to_string_lossy(),
            err.lines().next().unwrap_or("failed")
        ));
    }
    Ok((took, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// Whole `pkms` processes on one home: [`COLD_RUNS`] cold `pkms encrypt` runs over the default
/// link (the token killed before each), then per link [`WARM_RUNS`] warm `pkms encrypt` runs and
/// [`WARM_RUNS`] warm `pkms generate-data-key` runs interleaved with as many `openssl rand -hex
/// 32`, so both see the same machine. Fills each link's process figures; returns the cold start.
fn process_figures(pkms: &Path, links: &mut [LinkFigures]) -> Result<Latency, String> {
    let home = TempHome::new("cli").map_err(|e| format!("n/a (temp dir: {e})"))?;
    let plaintext = home.0.join("plaintext.bin");
    std::fs::write(&plaintext, [0x42u8; 32]).map_err(|e| format!("n/a ({e})"))?;
    let pkms_cmd = |link: Link, args: &[&str]| {
        let mut cmd = Command::new(pkms);
        cmd.env("PKMS_HOME", &home.0).env("PKMS_LINK", link.to_string()).env_remove("PKMS_DEVICE").args(args);
        cmd
    };
    let (_, json) = time_process(&mut pkms_cmd(Link::Ethernet, &["create-key", "--output", "json"]))?;
    let key_id = json_string_field(&json, "KeyId").ok_or("n/a (create-key printed no KeyId)")?;
    let blob = format!("fileb://{}", plaintext.display());
    let encrypt = ["encrypt", "--key-id", key_id.as_str(), "--plaintext", blob.as_str(), "--output", "text"];
    let gdk = ["generate-data-key", "--key-id", key_id.as_str(), "--key-spec", "AES_256"];

    let mut cold = Vec::new();
    for _ in 0..COLD_RUNS {
        launcher::kill_token(&home.0);
        cold.push(time_process(&mut pkms_cmd(Link::Ethernet, &encrypt))?.0);
    }
    for f in links.iter_mut() {
        let link = f.link;
        let warm = (0..=WARM_RUNS)
            .map(|_| time_process(&mut pkms_cmd(link, &encrypt)).map(|(t, _)| t))
            .collect::<Result<Vec<_>, _>>();
        // The first run may have restarted nothing but still pays for the first connection.
        f.warm_start = warm.map(|w| stats(w[1..].to_vec()));
        let mut ours = Vec::new();
        let mut openssl = Vec::new();
        let mut result = Ok(());
        for _ in 0..WARM_RUNS {
            match time_process(&mut pkms_cmd(link, &gdk)) {
                Ok((t, _)) => ours.push(t),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            match time_process(Command::new("openssl").args(["rand", "-hex", "32"])) {
                Ok((t, _)) => openssl.push(t),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        f.gdk_vs_openssl = result.map(|()| (stats(ours), stats(openssl)));
    }
    Ok(stats(cold))
}

/// The string value of `"field": "value"` in a JSON text (enough for pkms's flat output).
pub(crate) fn json_string_field(json: &str, field: &str) -> Option<String> {
    let at = json.find(&format!("\"{field}\""))?;
    let rest = &json[at + field.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    rest.find('"').map(|end| rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_samples() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = stats(samples);
        assert_eq!(s.n, 100);
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert!((s.ops_per_sec - 100.0 / 5.050).abs() < 1e-6);
        let one = stats(vec![Duration::from_millis(7)]);
        assert_eq!((one.p50, one.p99), (Duration::from_millis(7), Duration::from_millis(7)));
    }

    #[test]
    fn overhead_subtracts_the_instructions_or_else_the_wall_time() {
        let mut f = failed(Link::Ethernet, String::new());
        f.encrypt32 = Ok(stats(vec![Duration::from_micros(2500)]));
        let mut t = crate::firmware::parse("BENCH token.encrypt.32.session 300000 0\n");
        t.realtime_ns.insert(IN_TOKEN_ENCRYPT_SESSION.into(), 600_000);
        let (d, how) = overhead(&f, Some(&t)).unwrap();
        assert_eq!(d, Duration::from_micros(2200), "the instruction count comes first");
        assert!(how.contains("300,000 instructions"), "{how}");
        // Without instructions, a wall-time figure; a zero one is a failed calibration.
        t.figures.clear();
        let (d, how) = overhead(&f, Some(&t)).unwrap();
        assert_eq!(d, Duration::from_micros(1900));
        assert!(how.contains("without -icount"), "{how}");
        t.realtime_ns.insert(IN_TOKEN_ENCRYPT_SESSION.into(), 0);
        assert!(overhead(&f, Some(&t)).is_err());
        assert!(overhead(&f, None).is_err());
        f.encrypt32 = Err("n/a".into());
        assert!(overhead(&f, Some(&t)).is_err());
    }

    #[test]
    fn json_field_extraction() {
        let json =
            "{\n  \"KeyMetadata\": {\n    \"KeyId\": \"1234abcd-0000\",\n    \"Enabled\": true\n  }\n}";
        assert_eq!(json_string_field(json, "KeyId").as_deref(), Some("1234abcd-0000"));
        assert_eq!(json_string_field(json, "Missing"), None);
        assert_eq!(json_string_field("{\"KeyId\": 5}", "KeyId"), None);
    }
}
