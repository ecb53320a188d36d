//! The signature formats other verifiers read, on the command line: `get-public-key --output
//! ssh|minisign`, `sign-file --format ssh|minisign` (SSHSIG `FILE.sig`, minisign
//! `FILE.minisig`) and `verify-file` of those files. The formats are
//! [`pkms_lib::sigformat`]'s; here are the token calls.

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use pkms_lib::error::Error;
use pkms_lib::sigformat::{minisign, sshsig, FormatError, PublicKey};
use pkms_protocol::{ErrorCode, KeySpec, KeyUsage, MessageType, SigningAlgorithm};
use serde::Serialize;

use super::{usage, Context};

/// A signature format of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// OpenSSH: authorized_keys lines, SSHSIG, the agent.
    Ssh,
    /// minisign (Ed25519 only).
    Minisign,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ssh => "SSH",
            Kind::Minisign => "minisign",
        }
    }

    fn takes(self, spec: KeySpec) -> bool {
        match self {
            Kind::Ssh => {
                matches!(spec, KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccNistEdwards25519)
            }
            Kind::Minisign => spec == KeySpec::EccNistEdwards25519,
        }
    }

    fn specs(self) -> &'static str {
        match self {
            Kind::Ssh => {
                "ECC_NIST_P256 (ecdsa-sha2-nistp256), ECC_NIST_P384 (ecdsa-sha2-nistp384) or ECC_NIST_EDWARDS25519 (ssh-ed25519)"
            }
            Kind::Minisign => "ECC_NIST_EDWARDS25519",
        }
    }
}

/// A token key and one version's public key.
#[derive(Debug, Clone)]
pub struct TokenKey {
    /// The key id (UUID) the token takes.
    pub key_id: String,
    /// Its ARN (the comment of SSH keys).
    pub arn: String,
    /// The version of `public`.
    pub version: u32,
    /// The public key.
    pub public: PublicKey,
}

/// A refusal shaped like the token's own (exit status 254, with the CLI's hint).
fn token_refusal(code: ErrorCode, message: String) -> anyhow::Error {
    Error::Token { code, message }.into()
}

/// The public key of `key_id` (a key id or alias, resolved) at `version` (default newest),
/// refused unless it is a SIGN_VERIFY key of a spec `kind` carries.
pub fn token_key(
    ctx: &mut Context,
    key_id: &str,
    version: Option<u32>,
    kind: Kind,
) -> anyhow::Result<TokenKey> {
    let out = ctx.client()?.get_public_key(key_id, version)?;
    let arn = ctx.scope().key_arn(&out.key_id);
    if out.key_usage != KeyUsage::SignVerify {
        return Err(token_refusal(
            ErrorCode::InvalidKeyUsage,
            format!("{} signatures need a SIGN_VERIFY key; {arn} is a {} key", kind.name(), out.key_usage),
        ));
    }
    if !kind.takes(out.key_spec) {
        return Err(token_refusal(
            ErrorCode::InvalidKeyUsage,
            format!("{} signatures take {} keys; {arn} is {}", kind.name(), kind.specs(), out.key_spec),
        ));
    }
    let public = PublicKey::from_spki(&out.public_key)?;
    Ok(TokenKey { key_id: out.key_id.to_string(), arn, version: out.key_version, public })
}

/// Has the token sign `data` as `key`'s SSH or minisign algorithm wants (ECDSA: the SHA-256
/// DIGEST; Ed25519: the RAW data) and returns its signature; refused if the token signed with
/// another version than `key`'s (the key was rotated meanwhile).
pub fn token_sign(
    client: &mut pkms_lib::client::Client,
    key: &TokenKey,
    data: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let req = key.public.token_request(data)?;
    let out = client.sign(&key.key_id, &req.message, req.message_type, req.signing_algorithm)?;
    if out.key_version != key.version {
        anyhow::bail!(
            "{} was rotated to version {} while signing with version {}: run the command again",
            key.arn,
            out.key_version,
            key.version
        );
    }
    Ok(out.signature)
}

/// `get-public-key --output ssh|minisign`.
pub fn print_public_key(
    ctx: &mut Context,
    key_id: &str,
    version: Option<u32>,
    kind: Kind,
) -> anyhow::Result<()> {
    let key = token_key(ctx, key_id, version, kind)?;
    let text = match (kind, &key.public) {
        (Kind::Ssh, pk) => pk.authorized_keys_line(&key.arn) + "\n",
        (Kind::Minisign, PublicKey::Ed25519(k)) => minisign::public_key_file(k),
        (Kind::Minisign, PublicKey::P256(_) | PublicKey::P384(_)) => {
            return Err(token_refusal(ErrorCode::InvalidKeyUsage, "minisign takes Ed25519 keys only".into()))
        }
    };
    ctx.emit_raw(&text)
}

/// The default signature file of `file` in `kind`'s format.
pub fn default_signature(file: &Path, kind: Kind) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(match kind {
        Kind::Ssh => ".sig",
        Kind::Minisign => ".minisig",
    });
    PathBuf::from(s)
}

/// Opens a file to sign or verify (`-`: stdin).
fn open(path: &Path) -> anyhow::Result<Box<dyn Read>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(io::stdin().lock()));
    }
    let meta = std::fs::metadata(path).map_err(|e| usage(format!("cannot open {}: {e}", path.display())))?;
    if meta.is_dir() {
        return Err(usage(format!("{} is a directory: name the files to sign", path.display())));
    }
    let f = File::open(path).map_err(|e| usage(format!("cannot open {}: {e}", path.display())))?;
    Ok(Box::new(io::BufReader::with_capacity(256 * 1024, f)))
}

/// `sign-file --format ssh|minisign FILE…`: one token session for every file; each signature
/// goes to `out` (one file only) or the file's default signature path.
pub fn sign_files(
    ctx: &mut Context,
    key_id: &str,
    kind: Kind,
    namespace: Option<&str>,
    files: &[PathBuf],
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let namespace = match (kind, namespace) {
        (Kind::Ssh, ns) => ns.unwrap_or(sshsig::DEFAULT_NAMESPACE),
        (Kind::Minisign, Some(_)) => return Err(usage("--namespace applies to --format ssh only")),
        (Kind::Minisign, None) => "",
    };
    if kind == Kind::Ssh {
        sshsig::check_namespace(namespace).map_err(|e| usage(e.to_string()))?;
    }
    if out.is_some() && files.len() > 1 {
        return Err(usage(
            "--out names one signature file: leave it out to sign several files (FILE.sig each)",
        ));
    }
    if files.iter().filter(|f| f.as_os_str() == "-").count() > 0 && files.len() > 1 {
        return Err(usage("`-` (stdin) can only be signed alone"));
    }
    // Every file must be there before the token is asked for anything.
    for f in files {
        if f.as_os_str() != "-" {
            open(f)?;
        }
    }
    let key = token_key(ctx, key_id, None, kind)?;
    for file in files {
        let target = match out {
            Some(p) => p.to_path_buf(),
            None if file.as_os_str() == "-" => PathBuf::from("-"),
            None => default_signature(file, kind),
        };
        let mut input = open(file)?;
        let text = match kind {
            Kind::Ssh => sign_ssh(ctx, &key, namespace, &mut input),
            Kind::Minisign => sign_minisign(ctx, &key, file, &mut input),
        }
        .with_context(|| format!("signing {}", file.display()))?;
        super::files::write_output(&target, text.as_bytes())?;
        if !ctx.quiet && io::stderr().is_terminal() && target.as_os_str() != "-" {
            eprintln!(
                "signed {} with {} version {}: {}",
                file.display(),
                key.arn,
                key.version,
                target.display()
            );
        }
    }
    Ok(())
}

fn sign_ssh(
    ctx: &mut Context,
    key: &TokenKey,
    namespace: &str,
    input: &mut dyn Read,
) -> anyhow::Result<String> {
    let hash = sshsig::hash_reader(sshsig::HASH, input).context("cannot read the file")?;
    let data = sshsig::signed_data(namespace, sshsig::HASH, &hash);
    let raw = token_sign(ctx.client()?, key, &data)?;
    let sig = key.public.ssh_signature(&raw)?;
    if !key.public.verify_ssh(&data, &sig) {
        anyhow::bail!("the token's signature does not verify with {} version {}", key.arn, key.version);
    }
    Ok(sshsig::armor(&key.public, namespace, sig)?)
}

fn sign_minisign(
    ctx: &mut Context,
    key: &TokenKey,
    file: &Path,
    input: &mut dyn Read,
) -> anyhow::Result<String> {
    let PublicKey::Ed25519(pk) = &key.public else {
        return Err(token_refusal(ErrorCode::InvalidKeyUsage, "minisign takes Ed25519 keys only".into()));
    };
    let prehash = minisign::prehash(input).context("cannot read the file")?;
    let client = ctx.client()?;
    let signature = ed_signature(token_sign(client, key, &prehash)?)?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "stdin".into());
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let trusted_comment = minisign::trusted_comment(now, &name);
    let global_signature =
        ed_signature(token_sign(client, key, &minisign::global_message(&signature, &trusted_comment))?)?;
    let sig =
        minisign::Signature { key_id: minisign::key_id(pk), signature, trusted_comment, global_signature };
    let public = minisign::PublicKeyFile { key_id: sig.key_id, key: *pk };
    sig.verify(&public, &prehash)
        .map_err(|e| anyhow::anyhow!("the token's signature does not verify: {e}"))?;
    Ok(sig.to_file(&format!("signature from pkms key {} version {}", key.arn, key.version)))
}

fn ed_signature(bytes: Vec<u8>) -> anyhow::Result<[u8; 64]> {
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("the token returned an Ed25519 signature that is not 64 bytes"))
}

/// The format of a signature file, if it is one of this module's.
pub fn detect(bytes: &[u8]) -> Option<Kind> {
    if sshsig::is_armored(bytes) {
        Some(Kind::Ssh)
    } else if minisign::is_minisig(bytes) {
        Some(Kind::Minisign)
    } else {
        None
    }
}

/// What `verify-file` reports for a valid SSHSIG or minisign signature.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Verified {
    signature_valid: bool,
    /// `SSHSIG` or `minisign`.
    format: &'static str,
    /// `ecdsa-sha2-nistp256`, `ssh-ed25519` or minisign's `ED` (prehashed Ed25519).
    signing_algorithm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trusted_comment: Option<String>,
    /// The signer's public key (an authorized_keys line, or the minisign key id).
    signer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_version: Option<u32>,
    /// For a signed manifest (SHA256SUMS), each listed file's check.
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<ListedFile>>,
}

/// One file a signed manifest lists: `OK` or why not.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListedFile {
    path: String,
    status: String,
}

/// Re-hashes the files `file` lists when it is a SHA256SUMS-style manifest (up to 64 MiB):
/// their checks, and how many failed.
fn check_manifest(file: &Path) -> anyhow::Result<(Option<Vec<ListedFile>>, usize)> {
    use pkms_lib::filesign::{EntryCheck, Manifest};
    if std::fs::metadata(file).map(|m| m.len() > 64 << 20).unwrap_or(true) {
        return Ok((None, 0));
    }
    let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let Some(manifest) = Manifest::parse(&text) else { return Ok((None, 0)) };
    let base = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut failed = 0;
    let mut files = Vec::new();
    for (path, check) in manifest.check(base, &pkms_lib::progress::NoProgress) {
        let status = match check {
            EntryCheck::Ok => "OK".to_owned(),
            EntryCheck::Mismatch => "FAILED".to_owned(),
            EntryCheck::Unreadable(e) => format!("FAILED open or read: {e:#}"),
        };
        failed += usize::from(status != "OK");
        files.push(ListedFile { path, status });
    }
    Ok((Some(files), failed))
}

/// How verify-file checks one of this module's signatures.
pub struct VerifyRequest<'a> {
    /// The signature file's bytes and path.
    pub signature: (&'a [u8], &'a Path),
    /// The signed file.
    pub file: &'a Path,
    /// `--public-key`: verify offline.
    pub public_key: Option<&'a Path>,
    /// `--key-id` (resolved): verify on the token.
    pub key_id: Option<&'a str>,
    /// `--key-version`.
    pub key_version: Option<u32>,
    /// `--namespace` (SSHSIG; default "file").
    pub namespace: Option<&'a str>,
    /// Check the files a signed manifest lists (not with `--signature-only`).
    pub check_manifest: bool,
}

fn invalid(sig_path: &Path, file: &Path, why: impl std::fmt::Display) -> anyhow::Error {
    token_refusal(
        ErrorCode::InvalidSignature,
        format!("the signature {} does not verify for {}: {why}", sig_path.display(), file.display()),
    )
}

/// `verify-file` of an SSHSIG or minisign signature: offline with a public key (OpenSSH line,
/// minisign key, PEM or DER), or on the token with the key version that made it.
pub fn verify_file(ctx: &mut Context, kind: Kind, r: VerifyRequest<'_>) -> anyhow::Result<()> {
    let (sig_bytes, sig_path) = r.signature;
    let public = match r.public_key {
        Some(p) => {
            let bytes = std::fs::read(p)
                .map_err(|e| usage(format!("cannot read the public key {}: {e}", p.display())))?;
            Some(PublicKey::parse(&bytes).map_err(|e| usage(format!("{}: {e}", p.display())))?)
        }
        None => None,
    };
    if public.is_none() && r.key_id.is_none() {
        return Err(usage(
            "give --public-key KEY (an OpenSSH, minisign or PEM public key) or --key-id KEY to verify",
        ));
    }
    if kind == Kind::Minisign && r.namespace.is_some() {
        return Err(usage("--namespace applies to SSH signatures only"));
    }
    let malformed = |e: FormatError| usage(format!("{}: {e}", sig_path.display()));
    let result = match kind {
        Kind::Ssh => {
            let namespace = r.namespace.unwrap_or(sshsig::DEFAULT_NAMESPACE);
            let sig = sshsig::parse(sig_bytes).map_err(malformed)?;
            let signer = sshsig::signer(&sig).map_err(malformed)?;
            let hash = sshsig::hash_reader(sig.hash_alg(), &mut open(r.file)?)
                .with_context(|| format!("cannot read {}", r.file.display()))?;
            let (key_id, key_version) = match (&public, r.key_id) {
                (Some(pk), _) => {
                    sshsig::verify(&sig, namespace, &hash, Some(pk))
                        .map_err(|e| invalid(sig_path, r.file, e))?;
                    (None, None)
                }
                (None, Some(k)) => {
                    if sig.namespace() != namespace {
                        sshsig::verify(&sig, namespace, &hash, None)
                            .map_err(|e| invalid(sig_path, r.file, e))?;
                    }
                    let key = signing_version(ctx, k, r.key_version, Kind::Ssh, |pk| *pk == signer)?;
                    let data = sshsig::signed_data(sig.namespace(), sig.hash_alg(), &hash);
                    verify_ssh_on_token(ctx, &key, &data, sig.signature(), sig_path, r.file)?;
                    (Some(key.arn), Some(key.version))
                }
                (None, None) => return Err(usage("give --public-key or --key-id")),
            };
            Verified {
                signature_valid: true,
                format: "SSHSIG",
                signing_algorithm: signer.ssh_algorithm().to_string(),
                namespace: Some(sig.namespace().to_owned()),
                trusted_comment: None,
                signer: signer.authorized_keys_line("").trim_end().to_owned(),
                key_id,
                key_version,
                files: None,
            }
        }
        Kind::Minisign => {
            let sig = minisign::parse_signature(sig_bytes).map_err(malformed)?;
            let prehash = minisign::prehash(&mut open(r.file)?)
                .with_context(|| format!("cannot read {}", r.file.display()))?;
            let (key_id, key_version) = match (&public, r.key_id) {
                (Some(PublicKey::Ed25519(pk)), _) => {
                    // A minisign public key file carries its own key id; other forms get pkms's.
                    let file_key = r
                        .public_key
                        .and_then(|p| std::fs::read_to_string(p).ok())
                        .and_then(|t| minisign::parse_public_key(&t).ok())
                        .unwrap_or(minisign::PublicKeyFile { key_id: minisign::key_id(pk), key: *pk });
                    sig.verify(&file_key, &prehash).map_err(|e| invalid(sig_path, r.file, e))?;
                    (None, None)
                }
                (Some(PublicKey::P256(_) | PublicKey::P384(_)), _) => {
                    return Err(usage("minisign signatures are Ed25519: the public key is an ECDSA key"))
                }
                (None, Some(k)) => {
                    let key = signing_version(ctx, k, r.key_version, Kind::Minisign, |pk| match pk {
                        PublicKey::Ed25519(e) => minisign::key_id(e) == sig.key_id,
                        PublicKey::P256(_) | PublicKey::P384(_) => false,
                    })?;
                    let client = ctx.client()?;
                    for (msg, s) in [
                        (prehash.to_vec(), sig.signature),
                        (
                            minisign::global_message(&sig.signature, &sig.trusted_comment),
                            sig.global_signature,
                        ),
                    ] {
                        client.verify(
                            &key.key_id,
                            &msg,
                            MessageType::Raw,
                            &s,
                            SigningAlgorithm::Ed25519Sha512,
                            Some(key.version),
                        )?;
                    }
                    (Some(key.arn), Some(key.version))
                }
                (None, None) => return Err(usage("give --public-key or --key-id")),
            };
            Verified {
                signature_valid: true,
                format: "minisign",
                signing_algorithm: "ED".into(),
                namespace: None,
                trusted_comment: Some(sig.trusted_comment.clone()),
                signer: minisign::key_id_hex(&sig.key_id),
                key_id,
                key_version,
                files: None,
            }
        }
    };
    let mut result = result;
    let mut failed = 0;
    if r.check_manifest && r.file.as_os_str() != "-" {
        (result.files, failed) = check_manifest(r.file)?;
    }
    ctx.emit(&result)?;
    if failed > 0 {
        anyhow::bail!(
            "the manifest's signature is valid, but {failed} listed file(s) are missing or changed"
        );
    }
    Ok(())
}

/// The version of `key_id` that made a signature: `version` when given, else the newest one
/// whose public key `made_it` accepts (older versions are tried down to 1; retired ones are
/// skipped).
fn signing_version(
    ctx: &mut Context,
    key_id: &str,
    version: Option<u32>,
    kind: Kind,
    made_it: impl Fn(&PublicKey) -> bool,
) -> anyhow::Result<TokenKey> {
    let newest = token_key(ctx, key_id, version, kind)?;
    if version.is_some() || made_it(&newest.public) {
        return Ok(newest);
    }
    for v in (1..newest.version).rev() {
        match token_key(ctx, key_id, Some(v), kind) {
            Ok(k) if made_it(&k.public) => return Ok(k),
            Ok(_) => {}
            Err(e)
                if e.downcast_ref::<Error>().and_then(Error::code) == Some(ErrorCode::KeyVersionRetired) => {}
            Err(e) => return Err(e),
        }
    }
    Err(token_refusal(
        ErrorCode::InvalidSignature,
        format!("no version of {} made this signature (another key signed it)", newest.arn),
    ))
}

fn verify_ssh_on_token(
    ctx: &mut Context,
    key: &TokenKey,
    data: &[u8],
    sig: &pkms_lib::sigformat::ssh_key::Signature,
    sig_path: &Path,
    file: &Path,
) -> anyhow::Result<()> {
    let req = key.public.token_request(data)?;
    let token_sig = key.public.token_signature(sig).map_err(|e| invalid(sig_path, file, e))?;
    ctx.client()?.verify(
        &key.key_id,
        &req.message,
        req.message_type,
        &token_sig,
        req.signing_algorithm,
        Some(key.version),
    )?;
    Ok(())
}
