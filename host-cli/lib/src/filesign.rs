//! Offline artifact signing: files are hashed (SHA-256, streamed) on the host and only the
//! 32-byte digest goes to the token (Sign with MessageType DIGEST, ECDSA_SHA_256). The result is a
//! plain DER ECDSA signature that `openssl dgst -sha256 -verify pub.pem -signature F.sig F`
//! accepts, or a JSON [`SignatureEnvelope`] naming the key, version, algorithm and digest.
//!
//! Verification needs no token: [`parse_public_key`] takes a PEM or DER SubjectPublicKeyInfo,
//! [`parse_signature`] a DER signature, a base64 one, or an envelope.
//!
//! A manifest ([`Manifest`]) lists files as `sha256sum` does (`<64 hex>  <path>` lines), so
//! one signature over the manifest covers a whole release; `sha256sum -c` reads it too.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::progress::Progress;
use base64::Engine as _;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::envelope::key_service::{DigestSignature, KeyServiceError, SigningService};
use crate::error::Chain;

/// Why signing, reading a signature or key, or hashing files failed.
#[derive(Debug, thiserror::Error)]
pub enum FileSignError {
    /// The key service failed.
    #[error(transparent)]
    Service(#[from] KeyServiceError),
    /// The token's signature does not parse as DER.
    #[error("the token returned a signature that is not valid DER: {}", Chain(.0))]
    TokenSignatureNotDer(p256::ecdsa::Error),
    /// A file could not be opened.
    #[error("cannot open {}: {}", .path.display(), Chain(.error))]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A file could not be read.
    #[error("cannot read {}: {}", .path.display(), Chain(.error))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A signature envelope's `Digest` is not 64 hex digits.
    #[error("the signature envelope's Digest is not 64 hex digits")]
    EnvelopeDigest,
    /// A signature file starts like JSON but is not a signature envelope.
    #[error("the signature file is JSON but not a signature envelope: {}", Chain(.0))]
    NotAnEnvelope(serde_json::Error),
    /// A signature envelope names another algorithm.
    #[error("unsupported signing algorithm {0} (only {SIGNING_ALGORITHM})")]
    UnsupportedAlgorithm(String),
    /// A signature envelope's `Signature` is not base64.
    #[error("the envelope's Signature is not base64: {}", Chain(.0))]
    EnvelopeSignatureNotBase64(base64::DecodeError),
    /// A signature envelope's `Signature` is not a DER ECDSA signature.
    #[error("the envelope's Signature is not a DER ECDSA signature: {}", Chain(.0))]
    EnvelopeSignatureNotDer(p256::ecdsa::Error),
    /// A signature file is none of the accepted forms.
    #[error("the signature is neither DER, base64 DER nor a pkms signature envelope")]
    UnknownSignature,
    /// A public key file is not a P-256 SubjectPublicKeyInfo.
    #[error("not a P-256 {encoding} public key: {error}")]
    PublicKey {
        /// `PEM` or `DER`.
        encoding: &'static str,
        /// Why.
        error: p256::pkcs8::spki::Error,
    },
    /// A manifest entry's path is not UTF-8.
    #[error("{} is not valid UTF-8", .0.display())]
    NotUtf8(PathBuf),
    /// A path a manifest cannot hold (sha256sum would escape it).
    #[error("cannot list {0:?} in a manifest (newline or backslash in the name)")]
    UnlistablePath(String),
}

impl FileSignError {
    /// The client's error (the token's refusal or the link failure), if that is what failed.
    pub fn client_error(&self) -> Option<&crate::error::Error> {
        match self {
            FileSignError::Service(e) => e.client_error(),
            FileSignError::TokenSignatureNotDer(_)
            | FileSignError::Open { .. }
            | FileSignError::Read { .. }
            | FileSignError::EnvelopeDigest
            | FileSignError::NotAnEnvelope(_)
            | FileSignError::UnsupportedAlgorithm(_)
            | FileSignError::EnvelopeSignatureNotBase64(_)
            | FileSignError::EnvelopeSignatureNotDer(_)
            | FileSignError::UnknownSignature
            | FileSignError::PublicKey { .. }
            | FileSignError::NotUtf8(_)
            | FileSignError::UnlistablePath(_) => None,
        }
    }
}

/// The one signing algorithm: ECDSA over P-256 with SHA-256.
pub const SIGNING_ALGORITHM: &str = "ECDSA_SHA_256";
/// The `Format` value of a JSON signature envelope.
pub const ENVELOPE_FORMAT: &str = "pkms-signature/1";
/// Read size when hashing.
const HASH_CHUNK: usize = 256 * 1024;

/// SHA-256 of everything `input` yields, in constant memory; `progress` advances by bytes read.
pub fn sha256_reader<R: Read + ?Sized>(input: &mut R, progress: &dyn Progress) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                progress.advance(n as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finalize().into())
}

/// SHA-256 of a file.
pub fn sha256_file(path: &Path, progress: &dyn Progress) -> Result<[u8; 32], FileSignError> {
    let mut f = File::open(path).map_err(|error| FileSignError::Open { path: path.to_path_buf(), error })?;
    sha256_reader(&mut f, progress).map_err(|error| FileSignError::Read { path: path.to_path_buf(), error })
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// Parses exactly 64 hex digits (either case).
pub fn parse_digest_hex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// A signature with what it signs, as `sign-file --format json` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignatureEnvelope {
    /// Always [`ENVELOPE_FORMAT`].
    pub format: String,
    /// The signing key (UUID).
    pub key_id: String,
    /// The key version that signed.
    pub key_version: u32,
    /// Always [`SIGNING_ALGORITHM`].
    pub signing_algorithm: String,
    /// Always "DIGEST": the token signed the digest below.
    pub message_type: String,
    /// SHA-256 of the signed file, lower-case hex.
    pub digest: String,
    /// DER ECDSA signature, base64.
    pub signature: String,
}

impl SignatureEnvelope {
    /// The envelope of `sig` over `digest`.
    pub fn new(sig: &DigestSignature, digest: &[u8; 32]) -> SignatureEnvelope {
        SignatureEnvelope {
            format: ENVELOPE_FORMAT.into(),
            key_id: sig.key_id.clone(),
            key_version: sig.key_version,
            signing_algorithm: SIGNING_ALGORITHM.into(),
            message_type: "DIGEST".into(),
            digest: hex(digest),
            signature: base64::engine::general_purpose::STANDARD.encode(&sig.der),
        }
    }
}

/// Signs `digest` on the token with `key_id`.
pub fn sign_digest(
    service: &mut dyn SigningService,
    key_id: &str,
    digest: &[u8; 32],
) -> Result<DigestSignature, FileSignError> {
    let sig = service.sign_digest(key_id, digest)?;
    // Refuse to hand out something openssl would not parse.
    Signature::from_der(&sig.der).map_err(FileSignError::TokenSignatureNotDer)?;
    Ok(sig)
}

/// A signature read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSignature {
    /// DER ECDSA signature.
    pub der: Vec<u8>,
    /// The envelope, when the file was one.
    pub envelope: Option<SignatureEnvelope>,
}

impl ParsedSignature {
    /// The digest the envelope says was signed, if any.
    pub fn signed_digest(&self) -> Result<Option<[u8; 32]>, FileSignError> {
        match &self.envelope {
            None => Ok(None),
            Some(e) => parse_digest_hex(&e.digest).map(Some).ok_or(FileSignError::EnvelopeDigest),
        }
    }
}

/// Reads a signature: a JSON envelope, raw DER, or base64 of DER (as KMS tools print it).
pub fn parse_signature(bytes: &[u8]) -> Result<ParsedSignature, FileSignError> {
    let trimmed = bytes.trim_ascii();
    if trimmed.first() == Some(&b'{') {
        let env: SignatureEnvelope = serde_json::from_slice(trimmed).map_err(FileSignError::NotAnEnvelope)?;
        if env.signing_algorithm != SIGNING_ALGORITHM {
            return Err(FileSignError::UnsupportedAlgorithm(env.signing_algorithm));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(env.signature.trim())
            .map_err(FileSignError::EnvelopeSignatureNotBase64)?;
        Signature::from_der(&der).map_err(FileSignError::EnvelopeSignatureNotDer)?;
        return Ok(ParsedSignature { der, envelope: Some(env) });
    }
    if Signature::from_der(bytes).is_ok() {
        return Ok(ParsedSignature { der: bytes.to_vec(), envelope: None });
    }
    if let Ok(text) = std::str::from_utf8(trimmed) {
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(text) {
            if Signature::from_der(&der).is_ok() {
                return Ok(ParsedSignature { der, envelope: None });
            }
        }
    }
    Err(FileSignError::UnknownSignature)
}

/// Reads a P-256 public key: PEM ("BEGIN PUBLIC KEY") or DER SubjectPublicKeyInfo.
pub fn parse_public_key(bytes: &[u8]) -> Result<VerifyingKey, FileSignError> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if text.contains("-----BEGIN") {
            return VerifyingKey::from_public_key_pem(text.trim())
                .map_err(|error| FileSignError::PublicKey { encoding: "PEM", error });
        }
    }
    VerifyingKey::from_public_key_der(bytes)
        .map_err(|error| FileSignError::PublicKey { encoding: "DER", error })
}

/// Checks `der` over `digest` with `key`, offline.
pub fn verify_offline(key: &VerifyingKey, digest: &[u8; 32], der: &[u8]) -> bool {
    match Signature::from_der(der) {
        Ok(sig) => key.verify_prehash(digest, &sig).is_ok(),
        Err(_) => false,
    }
}

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// SHA-256 of the file.
    pub digest: [u8; 32],
    /// Its path, relative to the manifest's directory unless absolute.
    pub path: String,
}

/// A SHA256SUMS-style list of files and their digests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Entries in file order.
    pub entries: Vec<ManifestEntry>,
}

/// How one manifest entry checked out.
#[derive(Debug)]
pub enum EntryCheck {
    /// The file's digest matches.
    Ok,
    /// The file differs from what was signed.
    Mismatch,
    /// The file could not be read.
    Unreadable(FileSignError),
}

impl Manifest {
    /// Hashes `files` into a manifest whose paths are relative to `base` when the file lies
    /// under it. Paths with a newline or backslash are refused (sha256sum would escape them).
    pub fn build(files: &[PathBuf], base: &Path, progress: &dyn Progress) -> Result<Manifest, FileSignError> {
        let base_abs = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
        let mut entries = Vec::with_capacity(files.len());
        for f in files {
            let abs =
                std::fs::canonicalize(f).map_err(|error| FileSignError::Open { path: f.clone(), error })?;
            let shown = match abs.strip_prefix(&base_abs) {
                Ok(rel) => rel.to_path_buf(),
                Err(_) => f.clone(),
            };
            let path = shown.to_str().ok_or_else(|| FileSignError::NotUtf8(shown.clone()))?.to_owned();
            if path.contains('\n') || path.contains('\\') || path.is_empty() {
                return Err(FileSignError::UnlistablePath(path));
            }
            entries.push(ManifestEntry { digest: sha256_file(f, progress)?, path });
        }
        Ok(Manifest { entries })
    }

    /// The manifest text: `<hex>  <path>\n` per entry.
    pub fn to_text(&self) -> String {
        self.entries.iter().map(|e| format!("{}  {}\n", hex(&e.digest), e.path)).collect()
    }

    /// Parses manifest text. `None` unless every non-empty line is `<64 hex>  <path>` (or
    /// `<64 hex> *<path>`, sha256sum's binary mode) and there is at least one.
    pub fn parse(bytes: &[u8]) -> Option<Manifest> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut entries = Vec::new();
        for line in text.lines() {
            if line.is_empty() {
                continue;
            }
            let digest = parse_digest_hex(line.get(..64)?)?;
            let rest = line.get(64..)?;
            let path = rest.strip_prefix("  ").or_else(|| rest.strip_prefix(" *"))?;
            if path.is_empty() {
                return None;
            }
            entries.push(ManifestEntry { digest, path: path.to_owned() });
        }
        (!entries.is_empty()).then_some(Manifest { entries })
    }

    /// Re-hashes every listed file (relative paths resolved against `base`).
    pub fn check(&self, base: &Path, progress: &dyn Progress) -> Vec<(String, EntryCheck)> {
        self.entries
            .iter()
            .map(|e| {
                let p = Path::new(&e.path);
                let full = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
                let verdict = match sha256_file(&full, progress) {
                    Ok(d) if d == e.digest => EntryCheck::Ok,
                    Ok(_) => EntryCheck::Mismatch,
                    Err(err) => EntryCheck::Unreadable(err),
                };
                (e.path.clone(), verdict)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let d: [u8; 32] = core::array::from_fn(|i| (i * 9) as u8);
        assert_eq!(parse_digest_hex(&hex(&d)), Some(d));
        assert_eq!(parse_digest_hex(&hex(&d).to_uppercase()), Some(d));
        assert_eq!(parse_digest_hex("zz"), None);
        assert_eq!(parse_digest_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn manifest_text_round_trips_and_rejects_other_text() {
        let m = Manifest {
            entries: vec![
                ManifestEntry { digest: [1; 32], path: "a.bin".into() },
                ManifestEntry { digest: [2; 32], path: "dir/b c.tar".into() },
            ],
        };
        let text = m.to_text();
        assert!(text.starts_with(&format!("{}  a.bin\n", hex(&[1; 32]))));
        assert_eq!(Manifest::parse(text.as_bytes()), Some(m));
        assert_eq!(Manifest::parse(b"hello world\n"), None);
        assert_eq!(Manifest::parse(b""), None);
        assert_eq!(Manifest::parse(format!("{} a\n", hex(&[1; 32])).as_bytes()), None);
    }

    #[test]
    fn garbage_signatures_and_keys_are_refused() {
        let unknown = "the signature is neither DER, base64 DER nor a pkms signature envelope";
        assert_eq!(parse_signature(b"").unwrap_err().to_string(), unknown);
        assert_eq!(parse_signature(b"\x30\x03\x02\x01").unwrap_err().to_string(), unknown);
        let e = parse_signature(b"{\"Format\":1}").unwrap_err().to_string();
        assert!(
            e.starts_with("the signature file is JSON but not a signature envelope: invalid type"),
            "{e}"
        );
        assert!(parse_public_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err());
        let e = parse_public_key(&[0x30, 0x00]).unwrap_err().to_string();
        assert!(e.starts_with("not a P-256 DER public key: "), "{e}");
    }

    #[test]
    fn unreadable_files_name_the_file_and_the_cause() {
        let e = sha256_file(Path::new("/no/such/file"), &crate::progress::NoProgress).unwrap_err();
        assert_eq!(e.to_string(), "cannot open /no/such/file: No such file or directory (os error 2)");
        assert!(e.client_error().is_none());
    }
}
