//! ECDSA P-256 with SHA-256: hedged nonces (RFC 6979 plus fresh randomness), low-S DER
//! signatures, every signature verified before it leaves the token, and the public key as DER
//! SubjectPublicKeyInfo.

use p256::ecdsa::signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use pkms_protocol::limits::MAX_MESSAGE;
use pkms_protocol::{ErrorCode, MessageType};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::err;
use crate::error::{Error, OpResult};

/// Length of a P-256 SubjectPublicKeyInfo in DER.
pub const SPKI_LEN: usize = 91;
/// Longest DER ECDSA P-256 signature.
pub const MAX_DER_SIGNATURE: usize = 72;

/// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (uncompressed point) }.
const SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
    0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Makes a new random signing scalar into `out`.
pub fn generate<R: RngCore + CryptoRng>(rng: &mut R, out: &mut [u8]) {
    let key = SigningKey::random(rng);
    let mut bytes = key.to_bytes();
    out.copy_from_slice(&bytes);
    let secret: &mut [u8] = &mut bytes;
    secret.zeroize();
}

fn signing_key(scalar: &[u8]) -> OpResult<SigningKey> {
    SigningKey::from_slice(scalar)
        .map_err(|_| Error::new(ErrorCode::StorageCorrupted, "stored signing key is invalid"))
}

/// The SHA-256 digest a message stands for: hashed (RAW, 1..=4096 bytes) or as given (DIGEST,
/// exactly 32 bytes).
pub fn digest(message: &[u8], message_type: MessageType) -> OpResult<[u8; 32]> {
    match message_type {
        MessageType::Raw => {
            if message.is_empty() || message.len() > MAX_MESSAGE {
                return Err(err!(
                    Validation,
                    "Message is {} bytes; RAW messages must be 1..={} bytes (sign a digest for more)",
                    message.len(),
                    MAX_MESSAGE
                ));
            }
            Ok(Sha256::digest(message).into())
        }
        MessageType::Digest => {
            let d: [u8; 32] = message.try_into().map_err(|_| {
                err!(
                    Validation,
                    "a DIGEST message must be a 32-byte SHA-256 digest, not {} bytes",
                    message.len()
                )
            })?;
            Ok(d)
        }
    }
}

/// Signs `digest`; writes a low-S DER signature into `out` and returns its length. The
/// signature is verified with the public key before it is returned.
pub fn sign<R: RngCore + CryptoRng>(
    rng: &mut R,
    scalar: &[u8],
    digest: &[u8; 32],
    out: &mut [u8; MAX_DER_SIGNATURE],
) -> OpResult<usize> {
    let key = signing_key(scalar)?;
    let sig: Signature = key
        .sign_prehash_with_rng(rng, digest)
        .map_err(|_| Error::new(ErrorCode::Internal, "signing failed"))?;
    let sig = sig.normalize_s().unwrap_or(sig);
    if key.verifying_key().verify_prehash(digest, &sig).is_err() {
        return Err(Error::new(ErrorCode::Internal, "signature failed its self-check; not released"));
    }
    let der = sig.to_der();
    let bytes = der.as_bytes();
    out[..bytes.len()].copy_from_slice(bytes);
    Ok(bytes.len())
}

/// Whether `signature` (DER) is a valid signature of `digest` by the key.
pub fn verify(scalar: &[u8], digest: &[u8; 32], signature: &[u8]) -> OpResult<bool> {
    let key = signing_key(scalar)?;
    let Ok(sig) = Signature::from_der(signature) else { return Ok(false) };
    Ok(key.verifying_key().verify_prehash(digest, &sig).is_ok())
}

/// The DER SubjectPublicKeyInfo of the key.
pub fn public_key_der(scalar: &[u8], out: &mut [u8; SPKI_LEN]) -> OpResult<()> {
    let key = signing_key(scalar)?;
    let vk: &VerifyingKey = key.verifying_key();
    let point = vk.to_encoded_point(false);
    out[..SPKI_PREFIX.len()].copy_from_slice(&SPKI_PREFIX);
    let p = point.as_bytes();
    if p.len() != SPKI_LEN - SPKI_PREFIX.len() {
        return Err(Error::new(ErrorCode::Internal, "unexpected public key encoding"));
    }
    out[SPKI_PREFIX.len()..].copy_from_slice(p);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::DecodePublicKey;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn signatures_are_low_s_der_and_verify() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let mut scalar = [0u8; 32];
        generate(&mut rng, &mut scalar);
        let d = digest(b"hello", MessageType::Raw).unwrap();
        let mut spki = [0u8; SPKI_LEN];
        public_key_der(&scalar, &mut spki).unwrap();
        let vk = VerifyingKey::from_public_key_der(&spki).unwrap();
        for _ in 0..20 {
            let mut sig = [0u8; MAX_DER_SIGNATURE];
            let n = sign(&mut rng, &scalar, &d, &mut sig).unwrap();
            let s = Signature::from_der(&sig[..n]).unwrap();
            assert!(s.normalize_s().is_none(), "high-S signature");
            vk.verify_prehash(&d, &s).unwrap();
            assert!(verify(&scalar, &d, &sig[..n]).unwrap());
            let other = digest(b"hellp", MessageType::Raw).unwrap();
            assert!(!verify(&scalar, &other, &sig[..n]).unwrap());
        }
        assert!(!verify(&scalar, &d, b"not der").unwrap());
        assert_eq!(digest(&[0; 31], MessageType::Digest).unwrap_err().code, ErrorCode::Validation);
        assert_eq!(digest(&[], MessageType::Raw).unwrap_err().code, ErrorCode::Validation);
        assert_eq!(digest(&[0; 4097], MessageType::Raw).unwrap_err().code, ErrorCode::Validation);
    }
}
