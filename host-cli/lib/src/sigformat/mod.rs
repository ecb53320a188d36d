//! Signatures in the formats other verifiers already read, made with token keys:
//!
//! * [`sshsig`]: OpenSSH public keys (`authorized_keys` lines) and SSHSIG signatures
//!   (`ssh-keygen -Y sign/verify`, git's `gpg.format=ssh`);
//! * [`agent`]: the SSH agent protocol's messages (draft-miller-ssh-agent), for `pkms ssh-agent`;
//! * [`minisign`]: minisign public keys and prehashed (`ED`) signatures;
//! * [`openpgp`]: OpenPGP certificates and detached signatures (`gpg --verify`), which build and
//!   sign their packets through the token themselves.
//!
//! Only the formats live here (no token calls): what to sign comes from these functions, the
//! token signs it (ECDSA P-256: the SHA-256 DIGEST; Ed25519: the RAW message), and these
//! functions wrap the token's signature. Verification is offline.

pub mod agent;
pub mod minisign;
pub mod openpgp;
pub mod sshsig;

/// RustCrypto's ssh-key, whose types ([`ssh_key::Signature`]) these functions take.
pub use ssh_key;

use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::pkcs8::DecodePublicKey;
use pkms_protocol::{MessageType, SigningAlgorithm};
use sha2::{Digest, Sha256};
use ssh_key::public::{EcdsaPublicKey, Ed25519PublicKey, KeyData};
use ssh_key::{Algorithm, EcdsaCurve};

/// Why a key, signature or namespace is refused.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// A key these formats cannot carry.
    #[error("{0}")]
    UnsupportedKey(String),
    /// A public key file that is none of the accepted forms.
    #[error("not a public key pkms can read: {0}")]
    PublicKey(String),
    /// A signature file that does not parse.
    #[error("{0}")]
    Malformed(String),
    /// An SSHSIG namespace that is refused.
    #[error("invalid namespace {0:?}: {1}")]
    Namespace(String, &'static str),
    /// A message too large to be signed as it is (Ed25519 signs the RAW message).
    #[error("the data to sign is {0} bytes; the token signs at most {max} bytes RAW with Ed25519", max = pkms_protocol::limits::MAX_MESSAGE)]
    TooLarge(usize),
    /// The signature does not verify.
    #[error("{0}")]
    Invalid(String),
}

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 }, BIT STRING (32 bytes) }.
const ED25519_SPKI_PREFIX: [u8; 12] =
    [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// A token public key these formats carry: ECDSA P-256 or P-384 (SSH), or Ed25519.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// ECC_NIST_P256 (`ecdsa-sha2-nistp256`).
    P256(p256::ecdsa::VerifyingKey),
    /// ECC_NIST_P384 (`ecdsa-sha2-nistp384`).
    P384(p384::ecdsa::VerifyingKey),
    /// ECC_NIST_EDWARDS25519 (`ssh-ed25519`, minisign).
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// What the token signs for one signature: the message, its type and the algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSignRequest {
    /// The Sign call's Message.
    pub message: Vec<u8>,
    /// RAW or DIGEST.
    pub message_type: MessageType,
    /// The Sign call's SigningAlgorithm.
    pub signing_algorithm: SigningAlgorithm,
}

impl PublicKey {
    /// The key in a DER SubjectPublicKeyInfo (what GetPublicKey returns).
    pub fn from_spki(der: &[u8]) -> Result<PublicKey, FormatError> {
        if let Some(raw) = der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
            let bytes: [u8; 32] =
                raw.try_into().map_err(|_| FormatError::PublicKey("an Ed25519 key is 32 bytes".into()))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| FormatError::PublicKey("not a valid Ed25519 point".into()))?;
            return Ok(PublicKey::Ed25519(key));
        }
        if let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Ok(PublicKey::P384(key));
        }
        p256::ecdsa::VerifyingKey::from_public_key_der(der).map(PublicKey::P256).map_err(|_| {
            FormatError::PublicKey(
                "not a P-256, P-384 or Ed25519 SubjectPublicKeyInfo (the only keys SSH and minisign signatures take here)"
                    .into(),
            )
        })
    }

    /// Reads a public key: an OpenSSH line (`ecdsa-sha2-nistp256 AAAA… comment`, `ssh-ed25519 …`),
    /// a minisign public key file, a PEM or DER SubjectPublicKeyInfo.
    pub fn parse(bytes: &[u8]) -> Result<PublicKey, FormatError> {
        if let Ok(text) = std::str::from_utf8(bytes) {
            let text = text.trim();
            if let Some(body) = pem_body(text, "PUBLIC KEY") {
                return PublicKey::from_spki(&body);
            }
            if text.starts_with("untrusted comment:") || minisign::parse_public_key(text).is_ok() {
                return minisign::parse_public_key(text).map(|k| PublicKey::Ed25519(k.key));
            }
            if let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')) {
                if let Ok(k) = ssh_key::PublicKey::from_openssh(line) {
                    return PublicKey::from_ssh(k.key_data());
                }
            }
        }
        PublicKey::from_spki(bytes).map_err(|_| {
            FormatError::PublicKey(
                "expected an OpenSSH public key line, a minisign public key, or a PEM/DER P-256, P-384 or Ed25519 \
                 SubjectPublicKeyInfo"
                    .into(),
            )
        })
    }

    /// The key of an SSH public key blob's data.
    pub fn from_ssh(data: &KeyData) -> Result<PublicKey, FormatError> {
        match data {
            KeyData::Ecdsa(e @ EcdsaPublicKey::NistP256(_)) => p256::ecdsa::VerifyingKey::try_from(e)
                .map(PublicKey::P256)
                .map_err(|_| FormatError::PublicKey("not a valid P-256 point".into())),
            KeyData::Ecdsa(e @ EcdsaPublicKey::NistP384(_)) => p384::ecdsa::VerifyingKey::try_from(e)
                .map(PublicKey::P384)
                .map_err(|_| FormatError::PublicKey("not a valid P-384 point".into())),
            KeyData::Ed25519(k) => ed25519_dalek::VerifyingKey::from_bytes(&k.0)
                .map(PublicKey::Ed25519)
                .map_err(|_| FormatError::PublicKey("not a valid Ed25519 point".into())),
            other => Err(FormatError::UnsupportedKey(format!(
                "{} keys are not token keys (only ecdsa-sha2-nistp256, ecdsa-sha2-nistp384 and ssh-ed25519)",
                other.algorithm()
            ))),
        }
    }

    /// The SSH public key data.
    pub fn ssh_key_data(&self) -> KeyData {
        match self {
            PublicKey::P256(k) => KeyData::Ecdsa(EcdsaPublicKey::from(k)),
            PublicKey::P384(k) => KeyData::Ecdsa(EcdsaPublicKey::from(k)),
            PublicKey::Ed25519(k) => KeyData::Ed25519(Ed25519PublicKey(k.to_bytes())),
        }
    }

    /// The SSH wire encoding of the key (the blob `authorized_keys` holds in base64).
    pub fn ssh_blob(&self) -> Vec<u8> {
        use ssh_encoding::Encode as _;
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail.
        let _ = self.ssh_key_data().encode(&mut out);
        out
    }

    /// An `authorized_keys` line: `ecdsa-sha2-nistp256 AAAA… COMMENT` or `ssh-ed25519 AAAA… COMMENT`.
    pub fn authorized_keys_line(&self, comment: &str) -> String {
        let key = ssh_key::PublicKey::new(self.ssh_key_data(), comment.replace(['\n', '\r'], " "));
        key.to_openssh().unwrap_or_default()
    }

    /// The SSH signature algorithm of the key.
    pub fn ssh_algorithm(&self) -> Algorithm {
        match self {
            PublicKey::P256(_) => Algorithm::Ecdsa { curve: EcdsaCurve::NistP256 },
            PublicKey::P384(_) => Algorithm::Ecdsa { curve: EcdsaCurve::NistP384 },
            PublicKey::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// What the token signs so that its signature is this key's SSH signature over `data`:
    /// ECDSA P-256 signs the SHA-256 of the data (RFC 5656: DIGEST, ECDSA_SHA_256), P-384 its
    /// SHA-384 (DIGEST, ECDSA_SHA_384), Ed25519
    /// signs the data itself (RFC 8709: RAW, ED25519_SHA_512, up to 4096 bytes).
    pub fn token_request(&self, data: &[u8]) -> Result<TokenSignRequest, FormatError> {
        match self {
            PublicKey::P256(_) => Ok(TokenSignRequest {
                message: Sha256::digest(data).to_vec(),
                message_type: MessageType::Digest,
                signing_algorithm: SigningAlgorithm::EcdsaSha256,
            }),
            PublicKey::P384(_) => Ok(TokenSignRequest {
                message: sha2::Sha384::digest(data).to_vec(),
                message_type: MessageType::Digest,
                signing_algorithm: SigningAlgorithm::EcdsaSha384,
            }),
            PublicKey::Ed25519(_) if data.len() > pkms_protocol::limits::MAX_MESSAGE => {
                Err(FormatError::TooLarge(data.len()))
            }
            PublicKey::Ed25519(_) => Ok(TokenSignRequest {
                message: data.to_vec(),
                message_type: MessageType::Raw,
                signing_algorithm: SigningAlgorithm::Ed25519Sha512,
            }),
        }
    }

    /// The token's signature (DER ECDSA, or 64 Ed25519 bytes) as an SSH signature.
    pub fn ssh_signature(&self, token_signature: &[u8]) -> Result<ssh_key::Signature, FormatError> {
        let bad = |what: &str| FormatError::Malformed(format!("the token returned {what}"));
        match self {
            PublicKey::P256(_) => {
                let sig = p256::ecdsa::Signature::from_der(token_signature)
                    .map_err(|_| bad("an ECDSA signature that is not DER"))?;
                ssh_key::Signature::try_from(sig).map_err(|_| bad("an ECDSA signature SSH cannot encode"))
            }
            PublicKey::P384(_) => {
                let sig = p384::ecdsa::Signature::from_der(token_signature)
                    .map_err(|_| bad("an ECDSA signature that is not DER"))?;
                ssh_key::Signature::try_from(sig).map_err(|_| bad("an ECDSA signature SSH cannot encode"))
            }
            PublicKey::Ed25519(_) => {
                if token_signature.len() != 64 {
                    return Err(bad("an Ed25519 signature that is not 64 bytes"));
                }
                ssh_key::Signature::new(Algorithm::Ed25519, token_signature.to_vec())
                    .map_err(|_| bad("an Ed25519 signature SSH cannot encode"))
            }
        }
    }

    /// The inverse of [`PublicKey::ssh_signature`]: an SSH signature as the token's Verify takes
    /// it (DER ECDSA, or the 64 Ed25519 bytes). Fails when the signature is not of this key's
    /// algorithm or does not decode.
    pub fn token_signature(&self, signature: &ssh_key::Signature) -> Result<Vec<u8>, FormatError> {
        let bad = |e: ssh_key::Error| FormatError::Invalid(e.to_string());
        match self {
            PublicKey::P256(_) => {
                Ok(p256::ecdsa::Signature::try_from(signature).map_err(bad)?.to_der().as_bytes().to_vec())
            }
            PublicKey::P384(_) => {
                Ok(p384::ecdsa::Signature::try_from(signature).map_err(bad)?.to_der().as_bytes().to_vec())
            }
            PublicKey::Ed25519(_) => Ok(signature.as_bytes().to_vec()),
        }
    }

    /// Checks an SSH signature over `data` with this key (offline).
    pub fn verify_ssh(&self, data: &[u8], signature: &ssh_key::Signature) -> bool {
        if signature.algorithm() != self.ssh_algorithm() {
            return false;
        }
        match self {
            PublicKey::P256(k) => match p256::ecdsa::Signature::try_from(signature) {
                Ok(sig) => k.verify(data, &sig).is_ok(),
                Err(_) => false,
            },
            PublicKey::P384(k) => match p384::ecdsa::Signature::try_from(signature) {
                Ok(sig) => k.verify(data, &sig).is_ok(),
                Err(_) => false,
            },
            PublicKey::Ed25519(k) => self::verify_ed25519(k, data, signature.as_bytes()),
        }
    }
}

/// Checks a 64-byte Ed25519 signature (RFC 8032, strict: no malleable encodings).
pub fn verify_ed25519(key: &ed25519_dalek::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(bytes) = <[u8; 64]>::try_from(signature) else { return false };
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes)).is_ok()
}

/// The base64 body of a PEM block labelled `label`, if `text` holds one.
fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let compact: String = text[start..stop].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn p256_key(seed: u8) -> (p256::ecdsa::SigningKey, PublicKey) {
        let sk = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
        let pk = PublicKey::P256(*sk.verifying_key());
        (sk, pk)
    }

    /// A reader that is interrupted (EINTR) before every read: readers must retry.
    pub(crate) struct Interrupting<'a>(pub &'a [u8], pub bool);

    impl std::io::Read for Interrupting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.1 = !self.1;
            if self.1 {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(self.0.len()).min(3);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// A reader whose every read fails: the error must come back, not be retried.
    pub(crate) struct Failing;

    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    pub(crate) fn ed_key(seed: u8) -> (ed25519_dalek::SigningKey, PublicKey) {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let pk = PublicKey::Ed25519(sk.verifying_key());
        (sk, pk)
    }

    #[test]
    fn public_keys_read_back_from_every_form() {
        use p256::pkcs8::EncodePublicKey;
        let (sk, pk) = p256_key(7);
        let der = sk.verifying_key().to_public_key_der().unwrap();
        assert_eq!(PublicKey::from_spki(der.as_bytes()).unwrap(), pk);
        let line = pk.authorized_keys_line("arn:aws:kms:us-east-1:111122223333:key/k");
        assert!(line.starts_with("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY"), "{line}");
        assert!(line.ends_with(" arn:aws:kms:us-east-1:111122223333:key/k"), "{line}");
        assert_eq!(PublicKey::parse(line.as_bytes()).unwrap(), pk);
        let pem = sk.verifying_key().to_public_key_pem(Default::default()).unwrap();
        assert_eq!(PublicKey::parse(pem.as_bytes()).unwrap(), pk);
        assert_eq!(PublicKey::parse(der.as_bytes()).unwrap(), pk);

        let (esk, epk) = ed_key(9);
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(esk.verifying_key().as_bytes());
        assert_eq!(PublicKey::from_spki(&spki).unwrap(), epk);
        let line = epk.authorized_keys_line("c");
        assert!(line.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"), "{line}");
        assert_eq!(PublicKey::parse(line.as_bytes()).unwrap(), epk);
        let mini = minisign::public_key_file(&esk.verifying_key());
        assert_eq!(PublicKey::parse(mini.as_bytes()).unwrap(), epk);
    }

    #[test]
    fn other_keys_are_refused_with_a_reason() {
        let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7 x";
        assert!(PublicKey::parse(rsa.as_bytes()).is_err());
        let e = PublicKey::from_spki(&[0x30, 0x00]).unwrap_err().to_string();
        assert!(e.contains("P-256, P-384 or Ed25519"), "{e}");
        assert!(PublicKey::parse(b"hello").unwrap_err().to_string().contains("OpenSSH public key line"));
    }

    #[test]
    fn token_requests_follow_the_ssh_algorithms() {
        let (_, pk) = p256_key(3);
        let r = pk.token_request(b"data").unwrap();
        assert_eq!(r.message, Sha256::digest(b"data").to_vec());
        assert_eq!(
            (r.message_type, r.signing_algorithm),
            (MessageType::Digest, SigningAlgorithm::EcdsaSha256)
        );
        let (_, epk) = ed_key(3);
        let r = epk.token_request(b"data").unwrap();
        assert_eq!(r.message, b"data".to_vec());
        assert_eq!(
            (r.message_type, r.signing_algorithm),
            (MessageType::Raw, SigningAlgorithm::Ed25519Sha512)
        );
        assert!(matches!(epk.token_request(&[0; 4097]), Err(FormatError::TooLarge(4097))));
    }

    #[test]
    fn ssh_signatures_wrap_token_signatures_and_verify() {
        use p256::ecdsa::signature::Signer as _;
        let (sk, pk) = p256_key(5);
        let sig: p256::ecdsa::Signature = sk.sign(b"msg");
        let ssh = pk.ssh_signature(sig.to_der().as_bytes()).unwrap();
        assert!(pk.verify_ssh(b"msg", &ssh));
        assert!(!pk.verify_ssh(b"other", &ssh));
        assert!(pk.ssh_signature(&[1, 2, 3]).is_err());

        let (esk, epk) = ed_key(5);
        let sig = ed25519_dalek::Signer::sign(&esk, b"msg");
        let ssh = epk.ssh_signature(&sig.to_bytes()).unwrap();
        assert!(epk.verify_ssh(b"msg", &ssh));
        assert!(!epk.verify_ssh(b"msg2", &ssh));
        assert!(!pk.verify_ssh(b"msg", &ssh), "another key's algorithm");
        assert!(epk.ssh_signature(&[0; 63]).is_err());
    }

    #[test]
    fn p384_keys_are_ecdsa_sha2_nistp384_signed_over_sha384() {
        use p384::ecdsa::signature::hazmat::PrehashSigner as _;
        use p384::pkcs8::EncodePublicKey as _;
        let sk = p384::ecdsa::SigningKey::from_slice(&[9; 48]).unwrap();
        let spki = sk.verifying_key().to_public_key_der().unwrap();
        let pk = PublicKey::from_spki(spki.as_bytes()).unwrap();
        assert_eq!(pk, PublicKey::P384(*sk.verifying_key()));
        assert_eq!(pk.ssh_algorithm(), Algorithm::Ecdsa { curve: EcdsaCurve::NistP384 });
        let line = pk.authorized_keys_line("c");
        assert!(line.starts_with("ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQ"), "{line}");
        assert_eq!(PublicKey::parse(line.as_bytes()).unwrap(), pk, "the ssh line reads back");

        // The token signs SHA-384 of the data as a DIGEST with ECDSA_SHA_384.
        let r = pk.token_request(b"data").unwrap();
        assert_eq!(r.message, sha2::Sha384::digest(b"data").to_vec());
        assert_eq!(
            (r.message_type, r.signing_algorithm),
            (MessageType::Digest, SigningAlgorithm::EcdsaSha384)
        );
        // What the token would answer (DER over that digest) wraps into a verifying SSH signature.
        let sig: p384::ecdsa::Signature = sk.sign_prehash(&r.message).unwrap();
        let ssh = pk.ssh_signature(sig.to_der().as_bytes()).unwrap();
        assert!(pk.verify_ssh(b"data", &ssh));
        assert!(!pk.verify_ssh(b"date", &ssh));
        assert_eq!(pk.token_signature(&ssh).unwrap(), sig.to_der().as_bytes(), "back to DER");
        assert!(pk.ssh_signature(&[1, 2, 3]).is_err());
        let (_, p256) = p256_key(9);
        assert!(!p256.verify_ssh(b"data", &ssh), "another curve's signature");
    }
}
