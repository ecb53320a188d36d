//! Ed25519 (RFC 8032) through `ed25519-dalek` 3: pure Ed25519 over the message and Ed25519ph
//! (empty context) over a SHA-512 digest. Keys are the 32-byte RFC 8032 private key (seed);
//! verification is dalek's `verify_strict` (canonical encodings, no small-order keys or R).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2_011::digest::consts::U64;
use sha2_011::digest::{FixedOutput, HashMarker, Output, OutputSizeUser, Update};

/// What is signed.
#[derive(Clone, Copy)]
pub enum Input<'a> {
    /// Pure Ed25519 over the message.
    Message(&'a [u8]),
    /// Ed25519ph over SHA-512(M), given as the 64-byte digest.
    Prehash(&'a [u8; 64]),
}

/// A "hash" whose output is the 64 bytes fed to it: how a SHA-512 value computed elsewhere (a
/// KMS DIGEST message) enters dalek's Ed25519ph, which takes the message's hash state.
#[derive(Clone)]
struct Prehashed {
    bytes: [u8; 64],
    len: usize,
}

impl Default for Prehashed {
    fn default() -> Self {
        Prehashed { bytes: [0; 64], len: 0 }
    }
}

impl HashMarker for Prehashed {}

impl OutputSizeUser for Prehashed {
    type OutputSize = U64;
}

impl Update for Prehashed {
    fn update(&mut self, data: &[u8]) {
        for &b in data {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = b;
            }
            self.len += 1;
        }
    }
}

impl FixedOutput for Prehashed {
    fn finalize_into(self, out: &mut Output<Self>) {
        out.copy_from_slice(&self.bytes);
    }
}

fn prehashed(digest: &[u8; 64]) -> Prehashed {
    Prehashed { bytes: *digest, len: 64 }
}

/// The signing key of a stored 32-byte seed.
pub fn signing_key(seed: &[u8]) -> Option<SigningKey> {
    let seed: &[u8; 32] = seed.try_into().ok()?;
    Some(SigningKey::from_bytes(seed))
}

/// Signs; `None` only if dalek refuses (it does not for these inputs).
pub fn sign(key: &SigningKey, input: Input<'_>) -> Option<[u8; 64]> {
    let sig = match input {
        Input::Message(m) => key.try_sign(m).ok()?,
        Input::Prehash(d) => key.sign_prehashed(prehashed(d), None).ok()?,
    };
    Some(sig.to_bytes())
}

/// Whether `signature` (64 bytes) is a valid strict signature of `input` by `key`.
pub fn verify(key: &VerifyingKey, input: Input<'_>, signature: &[u8]) -> bool {
    let Ok(sig) = Signature::from_slice(signature) else { return false };
    match input {
        Input::Message(m) => key.verify_strict(m, &sig).is_ok(),
        Input::Prehash(d) => key.verify_prehashed_strict(prehashed(d), None, &sig).is_ok(),
    }
}
