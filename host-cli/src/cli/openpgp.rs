//! OpenPGP: `pkms openpgp export` (a token key's certificate), `sign-file --format openpgp`
//! (detached armored FILE.asc signatures) and verify-file of such signatures. The packets are
//! pkms_lib::sigformat::openpgp's; the token signs.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::files::VerifyFileArgs;
use super::{usage, CliError, Context};
use pkms_lib::envelope::output::AtomicFile;
use pkms_lib::model::Tag;
use pkms_lib::sigformat::openpgp::{self, Certificate, DetachedSig, OpenPgpError, TokenKey};

/// Extension of detached OpenPGP signatures.
pub const EXT: &str = "asc";

/// OpenPGP commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Print the armored OpenPGP certificate (v4) of a token key: the key version as primary
    /// key, the user ID, and a self-signature made on the token. gpg imports it; signatures of
    /// `pkms sign-file --format openpgp` verify with it. Every export of one key version has the
    /// same fingerprint (its creation time is the version's creation date); each version is its
    /// own OpenPGP key.
    #[command(after_help = "Examples:\n  \
        pkms openpgp export --key-id alias/release --user-id \"Release <release@example.com>\" > release.asc\n  \
        gpg --import release.asc\n  \
        pkms sign-file --key-id alias/release --format openpgp dist/      # dist/*.asc\n  \
        gpg --verify dist/app.jar.asc dist/app.jar\n  \
        pkms openpgp export --key-id alias/release --user-id \"Release <release@example.com>\" --key-version 1")]
    Export(ExportArgs),
}

/// `openpgp export`'s arguments.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Key id or alias of an ECC_NIST_P256 or ECC_NIST_EDWARDS25519 SIGN_VERIFY key.
    #[arg(long)]
    pub key_id: String,
    /// The user ID, e.g. "Release Team <release@example.com>" (no control characters).
    #[arg(long)]
    pub user_id: String,
    /// Key version (default: the newest, the one sign-file signs with).
    #[arg(long)]
    pub key_version: Option<u32>,
}

/// Runs an OpenPGP command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::Export(a) => export(a, ctx),
    }
}

/// The CLI's error for an OpenPGP one: token errors keep their type (exit 254/255), a key or
/// user ID that cannot be used is refused before signing (252).
fn cli_error(e: OpenPgpError) -> anyhow::Error {
    match e {
        OpenPgpError::Token(e) => e.into(),
        e @ OpenPgpError::WrongKey { .. } => {
            CliError { kind: "InvalidKeyUsageException", message: e.to_string() }.into()
        }
        e @ (OpenPgpError::BadUserId(_)
        | OpenPgpError::NoSuchVersion { .. }
        | OpenPgpError::KeptSelfSignatureMismatch { .. }) => usage(e.to_string()),
        e @ OpenPgpError::NoKeptSelfSignature { .. } => {
            CliError { kind: "UnsupportedOperationException", message: e.to_string() }.into()
        }
        e @ (OpenPgpError::PublicKey(_)
        | OpenPgpError::Timestamp(_)
        | OpenPgpError::VersionChanged { .. }
        | OpenPgpError::TokenSignature(_)
        | OpenPgpError::Pgp(_)) => anyhow::Error::new(e),
    }
}

/// A status line on stderr, only for people watching a terminal.
fn note(ctx: &Context, msg: &str) {
    if !ctx.quiet && io::stderr().is_terminal() {
        eprintln!("{msg}");
    }
}

fn export(a: ExportArgs, ctx: &mut Context) -> anyhow::Result<()> {
    let key_id = ctx.key(&a.key_id)?;
    // A bad user ID is refused before the token is reached.
    openpgp::check_user_id(&a.user_id).map_err(cli_error)?;
    let quiet = ctx.quiet;
    let client = ctx.client()?;
    let key = TokenKey::load(client, &key_id, a.key_version).map_err(cli_error)?;
    // The self-signature kept from an earlier export of this version, if it certifies this
    // user ID: the same certificate again, byte for byte, with no Sign and no flash write.
    let tag = openpgp::self_signature_tag(key.key_version);
    let kept = client
        .list_resource_tags(&key.key_id)?
        .into_iter()
        .find(|t| t.tag_key == tag)
        .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t.tag_value.trim()).ok());
    let replayed = kept.as_ref().map(|sig| key.replay_certificate(&a.user_id, sig));
    let cert = match replayed {
        Some(Ok(cert)) => cert,
        Some(Err(e)) if key.key_version != key.newest_version => return Err(cli_error(e)),
        None if key.key_version != key.newest_version => {
            return Err(cli_error(OpenPgpError::NoKeptSelfSignature {
                key_id: key.key_id.clone(),
                version: key.key_version,
                newest: key.newest_version,
                tag,
            }))
        }
        // The newest version: the token self-signs, and the signature is kept in the tag (the
        // token cannot sign with this version after a rotation; `--key-version` then rebuilds
        // the certificate from the tag).
        Some(Err(_)) | None => {
            let mut made = Vec::new();
            let cert = key
                .certificate(&a.user_id, |digest| {
                    let sig = openpgp::token_sign(client, &key.key_id, key.algorithm, digest)?;
                    made = sig.signature.clone();
                    Ok(sig)
                })
                .map_err(cli_error)?;
            let keep = Tag {
                tag_key: tag.clone(),
                tag_value: base64::engine::general_purpose::STANDARD.encode(&made),
            };
            if let Err(e) = client.tag_resource(&key.key_id, &[keep]) {
                if !quiet {
                    eprintln!(
                        "warning: could not keep the self-signature in tag {tag} ({e}): after a rotation, \
                         keep this certificate (the token cannot sign it again)"
                    );
                }
            }
            cert
        }
    };
    note(
        ctx,
        &format!("{} version {}: OpenPGP fingerprint {}", key.key_id, key.key_version, key.fingerprint_hex()),
    );
    ctx.emit_raw(&cert)
}

/// `sign-file --format openpgp`: FILE.asc for every file (directories: every file in them,
/// except signatures and checksums), all with one token session and the key's newest version.
pub fn sign_files(
    key_id: &str,
    inputs: &[PathBuf],
    out: Option<&Path>,
    ctx: &mut Context,
) -> anyhow::Result<()> {
    let key_id = ctx.key(key_id)?;
    let mut jobs: Vec<(PathBuf, PathBuf)> = Vec::new();
    for input in inputs {
        if input.as_os_str() == "-" {
            jobs.push((input.clone(), out.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("-"))));
            continue;
        }
        let meta =
            std::fs::metadata(input).map_err(|e| usage(format!("cannot sign {}: {e}", input.display())))?;
        if meta.is_dir() {
            for file in files_in(input)? {
                let asc = with_ext(&file);
                jobs.push((file, asc));
            }
        } else {
            let asc = out.map(Path::to_path_buf).unwrap_or_else(|| with_ext(input));
            jobs.push((input.clone(), asc));
        }
    }
    if jobs.is_empty() {
        return Err(usage("no files to sign"));
    }
    if out.is_some() && jobs.len() != 1 {
        return Err(usage("--out names the signature of one file; without it each FILE gets FILE.asc"));
    }
    if jobs.iter().filter(|(i, _)| i.as_os_str() == "-").count() > 1 {
        return Err(usage("stdin (`-`) can be signed once"));
    }
    let client = ctx.client()?;
    let key = TokenKey::load(client, &key_id, None).map_err(cli_error)?;
    let mut signed = 0usize;
    for (input, output) in &jobs {
        // Never before the key's creation (a host clock behind the token's creation date would
        // make gpg refuse the signature).
        let created = now_secs().max(key.created());
        let armored = if input.as_os_str() == "-" {
            key.sign_detached(io::stdin().lock(), created, |d| {
                openpgp::token_sign(client, &key.key_id, key.algorithm, d)
            })
        } else {
            let f = std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
            key.sign_detached(io::BufReader::with_capacity(256 * 1024, f), created, |d| {
                openpgp::token_sign(client, &key.key_id, key.algorithm, d)
            })
        }
        .map_err(|e| cli_error(e).context(format!("signing {}", input.display())))?;
        write_output(output, armored.as_bytes())?;
        signed += 1;
    }
    note(
        ctx,
        &format!(
            "signed {signed} file(s) with {} version {} (OpenPGP fingerprint {})",
            key.key_id,
            key.key_version,
            key.fingerprint_hex()
        ),
    );
    Ok(())
}

fn now_secs() -> u32 {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

fn with_ext(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".");
    s.push(EXT);
    PathBuf::from(s)
}

/// Extensions of files a directory's signing skips: signatures and checksums (Maven's own
/// signing skips them too, and Maven Central wants no signatures of them).
const SKIPPED: &[&str] = &[EXT, "md5", "sha1", "sha256", "sha512"];

/// Every regular file under `dir`, sorted, except signatures and checksums ([`SKIPPED`]);
/// symlinked directories are not followed.
fn files_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let e = e.with_context(|| format!("cannot list {}", d.display()))?;
            let ft = e.file_type().with_context(|| format!("cannot list {}", d.display()))?;
            let path = e.path();
            if ft.is_dir() {
                stack.push(path);
            } else if (ft.is_file() || (ft.is_symlink() && path.is_file()))
                && path.extension().is_none_or(|x| !SKIPPED.iter().any(|s| x == *s))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn write_output(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        let mut out = io::stdout().lock();
        out.write_all(bytes).and_then(|()| out.flush()).context("cannot write to stdout")?;
        return Ok(());
    }
    let file = AtomicFile::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    (&mut file.file()).write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    file.commit().with_context(|| format!("cannot write {}", path.display()))
}

/// What verify-file reports for a valid OpenPGP signature.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct VerifyOutput {
    signature_valid: bool,
    format: &'static str,
    /// The signing key's OpenPGP fingerprint.
    fingerprint: String,
    /// With --key-id: the key and version that signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_version: Option<u32>,
    /// The certificate's user IDs (with --public-key).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    user_ids: Vec<String>,
    /// When it was signed (Unix seconds, as the signature says).
    #[serde(skip_serializing_if = "Option::is_none")]
    signature_creation_time: Option<u32>,
}

/// The signature verify-file reads: --signature, else FILE.asc when FILE.sig is absent.
fn signature_path(a: &VerifyFileArgs) -> Option<PathBuf> {
    if let Some(p) = &a.signature {
        return Some(p.clone());
    }
    let mut sig = a.file.as_os_str().to_owned();
    sig.push(".sig");
    let asc = with_ext(&a.file);
    (!Path::new(&sig).exists() && asc.exists()).then_some(asc)
}

/// verify-file for OpenPGP signatures: `None` when the signature is not one (the other formats
/// take it), else the verdict. Offline with --public-key CERT.asc (an exported certificate), or
/// with --key-id: the key version whose fingerprint the signature names, read from the token.
pub fn verify_file(a: &VerifyFileArgs, ctx: &mut Context) -> Option<anyhow::Result<()>> {
    let path = signature_path(a)?;
    let bytes = std::fs::read(&path).ok()?;
    if !openpgp::looks_like_signature(&bytes) {
        return None;
    }
    Some(verify(a, &path, &bytes, ctx))
}

fn verify(a: &VerifyFileArgs, sig_path: &Path, sig_bytes: &[u8], ctx: &mut Context) -> anyhow::Result<()> {
    let sig = DetachedSig::parse(sig_bytes).map_err(|e| usage(format!("{}: {e}", sig_path.display())))?;
    let open =
        || std::fs::File::open(&a.file).map_err(|e| usage(format!("cannot open {}: {e}", a.file.display())));
    // rPGP's reason (e.g. "invalid signed hash value") says nothing a user can act on beyond this.
    let failure = |_why: String| {
        super::invalid_signature(format!(
            "Verification failure: the OpenPGP signature {} does not match {}: the file changed, or another key signed it",
            sig_path.display(),
            a.file.display()
        ))
    };
    let mut result = VerifyOutput {
        signature_valid: true,
        format: "openpgp",
        fingerprint: String::new(),
        key_id: None,
        key_version: None,
        user_ids: Vec::new(),
        signature_creation_time: sig.created(),
    };
    if let Some(cert_path) = &a.public_key {
        let cert_bytes = std::fs::read(cert_path)
            .map_err(|e| usage(format!("cannot read the certificate {}: {e}", cert_path.display())))?;
        let cert =
            Certificate::parse(&cert_bytes).map_err(|e| usage(format!("{}: {e}", cert_path.display())))?;
        sig.verify_with_certificate(&cert, open()?).map_err(|e| failure(e.to_string()))?;
        result.fingerprint = cert.fingerprint_hex();
        result.user_ids = cert.user_ids();
    } else if let Some(key_id) = &a.key_id {
        let key_id = &ctx.key(key_id)?;
        let client = ctx.client()?;
        let named = sig.issuer_fingerprints();
        let key = match a.key_version {
            Some(v) => TokenKey::load(client, key_id, Some(v)).map_err(cli_error)?,
            None => find_version(client, key_id, &named)?,
        };
        sig.verify_with_key(&key, open()?).map_err(|e| failure(e.to_string()))?;
        result.fingerprint = key.fingerprint_hex();
        result.key_id = Some(key.key_id.clone());
        result.key_version = Some(key.key_version);
    } else {
        return Err(usage(
            "give --public-key CERT.asc (from `pkms openpgp export`) to verify offline, or --key-id KEY",
        ));
    }
    ctx.emit(&result)
}

/// The held version of `key_id` whose fingerprint the signature names.
fn find_version(
    client: &mut pkms_lib::client::Client,
    key_id: &str,
    named: &[String],
) -> anyhow::Result<TokenKey> {
    let newest = TokenKey::load(client, key_id, None).map_err(cli_error)?;
    if named.contains(&newest.fingerprint_hex()) {
        return Ok(newest);
    }
    let versions: Vec<u32> =
        client.list_all_key_rotations(&newest.key_id)?.iter().map(|r| r.key_version).collect();
    for v in versions.into_iter().rev().filter(|v| *v != newest.key_version) {
        let key = TokenKey::load(client, &newest.key_id, Some(v)).map_err(cli_error)?;
        if named.contains(&key.fingerprint_hex()) {
            return Ok(key);
        }
    }
    Err(super::invalid_signature(format!(
        "Verification failure: no held version of {} has the fingerprint the signature names ({})",
        newest.key_id,
        if named.is_empty() { "none".to_owned() } else { named.join(", ") }
    )))
}
