//! ECDSA P-256 with SHA-256: hedged nonces (RFC 6979 plus fresh randomness), low-S DER
//! signatures, every signature verified before it leaves the token, and the public key as DER
//! SubjectPublicKeyInfo. Every function that uses a secret scalar wipes what the computation
//! left on the stack (the nonce generator's state, intermediate points) when it returns.

use pkms_p256::{PublicKey, SecretKey};
use pkms_protocol::limits::MAX_MESSAGE;
use pkms_protocol::{ErrorCode, MessageType};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use super::wipe::wiped;
use crate::err;
use crate::error::{Error, OpResult};

/// Length of a P-256 SubjectPublicKeyInfo in DER.
pub const SPKI_LEN: usize = pkms_p256::SPKI_DER_LEN;
/// Longest DER ECDSA P-256 signature.
pub const MAX_DER_SIGNATURE: usize = 72;

/// Makes a new random signing scalar into `out` (32 bytes).
pub fn generate<R: RngCore + CryptoRng>(rng: &mut R, out: &mut [u8]) {
    wiped(|| {
        let key = SecretKey::random(rng);
        out.copy_from_slice(&key.to_bytes()[..]);
    })
}

fn signing_key(scalar: &[u8]) -> OpResult<SecretKey> {
    SecretKey::from_bytes(scalar)
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
        MessageType::ExternalMu => {
            Err(err!(Validation, "EXTERNAL_MU messages are for ML_DSA_SHAKE_256 only; use RAW or DIGEST"))
        }
    }
}

/// Signs `digest` with a hedged nonce (RFC 6979 plus fresh randomness, through `pkms-p256`,
/// which uses the Cortex-M4 assembly on the boards); writes a low-S DER signature into `out` and
/// returns its length. The signature is verified with the public key before it is returned, so a
/// fault during signing cannot release a signature that leaks the key.
pub fn sign<R: RngCore + CryptoRng>(
    rng: &mut R,
    scalar: &[u8],
    digest: &[u8; 32],
    out: &mut [u8; MAX_DER_SIGNATURE],
) -> OpResult<usize> {
    wiped(|| {
        let key = signing_key(scalar)?;
        let der = key
            .sign_digest_hedged(digest, rng)
            .map_err(|_| Error::new(ErrorCode::Internal, "signing failed"))?;
        let bytes = der.as_bytes();
        if !key.public_key().verify_digest(digest, bytes) {
            return Err(Error::new(ErrorCode::Internal, "signature failed its self-check; not released"));
        }
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(bytes.len())
    })
}

/// Whether `signature` (DER) is a valid signature of `digest` by the key.
pub fn verify(scalar: &[u8], digest: &[u8; 32], signature: &[u8]) -> OpResult<bool> {
    wiped(|| {
        let key = signing_key(scalar)?;
        let public: PublicKey = key.public_key();
        Ok(public.verify_digest(digest, signature))
    })
}

/// The DER SubjectPublicKeyInfo of the key.
pub fn public_key_der(scalar: &[u8], out: &mut [u8; SPKI_LEN]) -> OpResult<()> {
    wiped(|| {
        let key = signing_key(scalar)?;
        *out = key.public_key_spki_der();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use p256::ecdsa::{Signature, VerifyingKey};
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
