//! minisign's public keys and signatures (<https://jedisct1.github.io/minisign/>), for Ed25519
//! token keys.
//!
//! A signature file holds an untrusted comment, `base64("ED" || key id || Ed25519(BLAKE2b-512(file)))`
//! (the prehashed algorithm; the legacy `Ed`, which signs the whole file, is not written or read),
//! a trusted comment, and `base64(Ed25519(signature || trusted comment))`, the global signature
//! that binds the comment. The token makes both Ed25519 signatures (RAW, ED25519_SHA_512).
//!
//! The 8-byte key id minisign shows and matches is not stored on the token: pkms derives it from
//! the public key, as the first 8 bytes of SHA-256("pkms minisign key id" || public key). Every
//! key version therefore has its own id, and the same id on every call.

use std::io::{self, Read};

use base64::Engine as _;
use blake2::{Blake2b512, Digest as _};
use sha2::Sha256;

use super::{verify_ed25519, FormatError};

/// The public key's algorithm tag.
const KEY_ALG: &[u8; 2] = b"Ed";
/// The prehashed signature algorithm tag.
const PREHASHED: &[u8; 2] = b"ED";
/// The legacy (whole-file) signature algorithm tag.
const LEGACY: &[u8; 2] = b"Ed";
const UNTRUSTED: &str = "untrusted comment: ";
const TRUSTED: &str = "trusted comment: ";
const READ_CHUNK: usize = 256 * 1024;

/// A minisign key id.
pub type KeyId = [u8; 8];

/// The key id pkms gives an Ed25519 public key (see the module docs).
pub fn key_id(key: &ed25519_dalek::VerifyingKey) -> KeyId {
    let mut h = Sha256::new();
    sha2::Digest::update(&mut h, b"pkms minisign key id");
    sha2::Digest::update(&mut h, key.as_bytes());
    let d = sha2::Digest::finalize(h);
    let mut id = [0u8; 8];
    id.copy_from_slice(&d[..8]);
    id
}

/// The key id as minisign prints it (the little-endian 64-bit number in upper-case hex).
pub fn key_id_hex(id: &KeyId) -> String {
    format!("{:016X}", u64::from_le_bytes(*id))
}

/// A minisign public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyFile {
    /// Its key id.
    pub key_id: KeyId,
    /// The Ed25519 key.
    pub key: ed25519_dalek::VerifyingKey,
}

/// The public key file (`minisign -p KEY.pub` reads it).
pub fn public_key_file(key: &ed25519_dalek::VerifyingKey) -> String {
    let id = key_id(key);
    let mut blob = KEY_ALG.to_vec();
    blob.extend_from_slice(&id);
    blob.extend_from_slice(key.as_bytes());
    format!(
        "{UNTRUSTED}minisign public key {}\n{}\n",
        key_id_hex(&id),
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

fn b64(text: &str, what: &str) -> Result<Vec<u8>, FormatError> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| FormatError::Malformed(format!("the minisign {what} is not base64")))
}

/// Reads a public key: the file (comment line and key line) or the bare base64 key line.
pub fn parse_public_key(text: &str) -> Result<PublicKeyFile, FormatError> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with(UNTRUSTED.trim_end()))
        .ok_or_else(|| FormatError::PublicKey("no minisign key line".into()))?;
    let blob =
        b64(line, "public key").map_err(|_| FormatError::PublicKey("not a minisign public key".into()))?;
    if blob.len() != 42 || &blob[..2] != KEY_ALG {
        return Err(FormatError::PublicKey("not a minisign Ed25519 public key".into()));
    }
    let mut key_id = [0u8; 8];
    key_id.copy_from_slice(&blob[2..10]);
    let mut raw = [0u8; 32];
    raw.copy_from_slice(&blob[10..]);
    let key = ed25519_dalek::VerifyingKey::from_bytes(&raw)
        .map_err(|_| FormatError::PublicKey("the minisign key is not a valid Ed25519 point".into()))?;
    Ok(PublicKeyFile { key_id, key })
}

/// BLAKE2b-512 of everything `input` yields, in constant memory (what `ED` signatures sign).
pub fn prehash<R: Read + ?Sized>(input: &mut R) -> io::Result<[u8; 64]> {
    let mut h = Blake2b512::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(h.finalize().into())
}

/// The trusted comment pkms signs: minisign's own form, `timestamp:<unix seconds>\tfile:<name>\thashed`
/// (control characters of the name shown as `?`, so the comment stays one line).
pub fn trusted_comment(timestamp: u64, file_name: &str) -> String {
    let name: String = file_name.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    format!("timestamp:{timestamp}\tfile:{name}\thashed")
}

/// What the global signature signs: the file signature, then the trusted comment.
pub fn global_message(signature: &[u8; 64], trusted_comment: &str) -> Vec<u8> {
    let mut m = signature.to_vec();
    m.extend_from_slice(trusted_comment.as_bytes());
    m
}

/// A prehashed minisign signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The signing key's id.
    pub key_id: KeyId,
    /// Ed25519 over the BLAKE2b-512 of the file.
    pub signature: [u8; 64],
    /// The trusted comment.
    pub trusted_comment: String,
    /// Ed25519 over [`global_message`].
    pub global_signature: [u8; 64],
}

impl Signature {
    /// The `.minisig` file text.
    pub fn to_file(&self, untrusted_comment: &str) -> String {
        let mut blob = PREHASHED.to_vec();
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(&self.signature);
        let e = &base64::engine::general_purpose::STANDARD;
        format!(
            "{UNTRUSTED}{}\n{}\n{TRUSTED}{}\n{}\n",
            untrusted_comment.replace(['\n', '\r'], " "),
            e.encode(blob),
            self.trusted_comment,
            e.encode(self.global_signature)
        )
    }

    /// Checks both signatures with `key`, against the file's BLAKE2b-512 `prehash`.
    pub fn verify(&self, key: &PublicKeyFile, prehash: &[u8; 64]) -> Result<(), FormatError> {
        if self.key_id != key.key_id {
            return Err(FormatError::Invalid(format!(
                "the signature was made by key {}, not by key {}",
                key_id_hex(&self.key_id),
                key_id_hex(&key.key_id)
            )));
        }
        if !verify_ed25519(&key.key, prehash, &self.signature) {
            return Err(FormatError::Invalid("the signature does not match the file and key".into()));
        }
        if !verify_ed25519(
            &key.key,
            &global_message(&self.signature, &self.trusted_comment),
            &self.global_signature,
        ) {
            return Err(FormatError::Invalid("the trusted comment's signature does not verify".into()));
        }
        Ok(())
    }
}

/// Whether a signature file looks like a minisign signature.
pub fn is_minisig(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().starts_with(UNTRUSTED.as_bytes())
}

/// Reads a `.minisig` file.
pub fn parse_signature(bytes: &[u8]) -> Result<Signature, FormatError> {
    let bad = |m: &str| FormatError::Malformed(format!("not a minisign signature: {m}"));
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8 text"))?;
    let mut lines = text.lines();
    if !lines.next().is_some_and(|l| l.starts_with(UNTRUSTED)) {
        return Err(bad("no untrusted comment line"));
    }
    let blob = b64(lines.next().ok_or_else(|| bad("no signature line"))?, "signature")?;
    let trusted = lines
        .next()
        .and_then(|l| l.strip_prefix(TRUSTED))
        .ok_or_else(|| bad("no trusted comment line"))?
        .to_owned();
    let global = b64(lines.next().ok_or_else(|| bad("no global signature line"))?, "global signature")?;
    if blob.len() != 74 {
        return Err(bad("the signature line is not 74 bytes"));
    }
    match &blob[..2] {
        a if a == PREHASHED => {}
        a if a == LEGACY => {
            return Err(bad("a legacy (Ed) signature of the whole file; pkms reads prehashed (ED) ones only"))
        }
        _ => return Err(bad("unknown signature algorithm")),
    }
    let mut key_id = [0u8; 8];
    key_id.copy_from_slice(&blob[2..10]);
    let mut signature = [0u8; 64];
    signature.copy_from_slice(&blob[10..]);
    let global_signature: [u8; 64] =
        global.as_slice().try_into().map_err(|_| bad("the global signature is not 64 bytes"))?;
    Ok(Signature { key_id, signature, trusted_comment: trusted, global_signature })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer as _;

    fn sign(sk: &ed25519_dalek::SigningKey, file: &[u8], comment: &str) -> Signature {
        let ph = prehash(&mut &file[..]).unwrap();
        let signature = sk.sign(&ph).to_bytes();
        let global_signature = sk.sign(&global_message(&signature, comment)).to_bytes();
        Signature {
            key_id: key_id(&sk.verifying_key()),
            signature,
            trusted_comment: comment.into(),
            global_signature,
        }
    }

    #[test]
    fn key_ids_are_derived_from_the_key() {
        let a = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
        let b = ed25519_dalek::SigningKey::from_bytes(&[2; 32]).verifying_key();
        assert_eq!(key_id(&a), key_id(&a));
        assert_ne!(key_id(&a), key_id(&b));
        assert_eq!(key_id_hex(&[1, 2, 3, 4, 5, 6, 7, 8]), "0807060504030201");
        let text = public_key_file(&a);
        assert!(text
            .starts_with(&format!("untrusted comment: minisign public key {}\nRW", key_id_hex(&key_id(&a)))));
        let parsed = parse_public_key(&text).unwrap();
        assert_eq!(parsed, PublicKeyFile { key_id: key_id(&a), key: a });
        assert_eq!(parse_public_key(text.lines().nth(1).unwrap()).unwrap(), parsed);
        assert!(parse_public_key("RWQ=").is_err());
    }

    #[test]
    fn signatures_round_trip_and_bind_file_comment_and_key() {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let pk = parse_public_key(&public_key_file(&sk.verifying_key())).unwrap();
        let comment = trusted_comment(1_700_000_000, "art\n.bin");
        assert_eq!(comment, "timestamp:1700000000\tfile:art?.bin\thashed");
        let sig = sign(&sk, b"artifact", &comment);
        let text = sig.to_file("signature from pkms");
        assert!(is_minisig(text.as_bytes()));
        let parsed = parse_signature(text.as_bytes()).unwrap();
        assert_eq!(parsed, sig);
        let ph = prehash(&mut &b"artifact"[..]).unwrap();
        parsed.verify(&pk, &ph).unwrap();
        let other = prehash(&mut &b"artifacT"[..]).unwrap();
        assert!(parsed.verify(&pk, &other).is_err());
        let mut forged = parsed.clone();
        forged.trusted_comment.push('x');
        assert!(forged.verify(&pk, &ph).unwrap_err().to_string().contains("trusted comment"));
        let sk2 = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
        let pk2 = parse_public_key(&public_key_file(&sk2.verifying_key())).unwrap();
        assert!(parsed.verify(&pk2, &ph).unwrap_err().to_string().contains("made by key"));
    }

    #[test]
    fn prehashes_retry_interrupted_reads_and_are_blake2b_512() {
        let data = b"artifact bytes, read three at a time";
        let mut r = super::super::tests::Interrupting(data, false);
        let ph = prehash(&mut r).unwrap();
        assert_eq!(ph, prehash(&mut &data[..]).unwrap());
        let expected: [u8; 64] = Blake2b512::digest(data).into();
        assert_eq!(ph, expected);
        let failing = std::io::Read::chain(&b"x"[..], super::super::tests::Failing);
        assert_eq!(prehash(&mut { failing }).unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn other_files_are_refused() {
        assert!(parse_signature(b"hello").is_err());
        assert!(parse_signature(b"untrusted comment: x\nAAAA\ntrusted comment: y\nAAAA\n").is_err());
        let mut legacy = b"Ed".to_vec();
        legacy.extend_from_slice(&[0; 72]);
        let text = format!(
            "untrusted comment: x\n{}\ntrusted comment: y\n{}\n",
            base64::engine::general_purpose::STANDARD.encode(&legacy),
            base64::engine::general_purpose::STANDARD.encode([0u8; 64])
        );
        assert!(parse_signature(text.as_bytes()).unwrap_err().to_string().contains("legacy"));
        let unknown = text.replace(&base64::engine::general_purpose::STANDARD.encode(&legacy), &{
            let mut other = b"XX".to_vec();
            other.extend_from_slice(&[0; 72]);
            base64::engine::general_purpose::STANDARD.encode(other)
        });
        assert!(parse_signature(unknown.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("unknown signature algorithm"));
        assert!(is_minisig(b"\nuntrusted comment: x\n"));
        assert!(!is_minisig(b"-----BEGIN SSH SIGNATURE-----\n"));
        assert!(!is_minisig(b"trusted comment: x\n"));
    }
}
