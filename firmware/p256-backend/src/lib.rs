//! P-256 ECDSA for Pocket KMS behind one small, backend-independent API.
//!
//! * [`SecretKey`]: a scalar in `1..n-1` (big-endian, zeroized on drop). Key generation by
//!   rejection sampling, public key in SEC1 uncompressed form or as DER SubjectPublicKeyInfo,
//!   hedged signing of a 32-byte digest.
//! * [`PublicKey`]: a validated curve point; [`verify_digest`] checks a DER signature.
//! * ECDH ([`SecretKey::diffie_hellman`]): the x-coordinate of d·Q for a validated peer point Q.
//!
//! Signing is **hedged**: the nonce `k` is RFC 6979's HMAC-DRBG over (secret key, digest) with 32
//! bytes of fresh randomness as the additional input (RFC 6979 § 3.6), so a broken RNG degrades to
//! deterministic RFC 6979 and never to nonce reuse. Signatures are **low-S** normalized and DER
//! encoded. Verification accepts both low-S and high-S signatures (as OpenSSL and AWS KMS do).
//!
//! Two backends compute the same results ([`Backend`]):
//! * [`Backend::Portable`]: RustCrypto `p256` 0.13 (pure Rust, constant time). Always present;
//!   the only one on the host.
//! * `Backend::CortexM4Asm`: Emil Lenngren's hand-written P256-Cortex-M4 assembly through ycrypto's
//!   `p256-cortex-m4-sys` (constant time for secret data). Present only with the `cortex-m4-asm`
//!   feature on thumbv7em / thumbv8m.main, and then [`Backend::ACTIVE`].
//!
//! Given the same secret, digest and added randomness, both backends derive the same `k` and hence
//! the same signature byte for byte; each verifies the other's signatures. Encodings (DER
//! signatures, SPKI) always come from the portable crates.
#![no_std]
#![deny(unsafe_code)]

#[cfg(test)]
extern crate std;

#[cfg(all(feature = "cortex-m4-asm", pkms_cortex_m4))]
pub mod asm;
#[cfg_attr(not(all(feature = "cortex-m4-asm", pkms_cortex_m4)), allow(dead_code))]
mod nonce;
pub mod portable;
mod spki;

use ecdsa::Signature as RawSignature;
use p256::NistP256;
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A DER-encoded ECDSA signature (`ECDSA-Sig-Value`, at most 72 bytes); `as_bytes()` gives the
/// encoding.
pub use p256::ecdsa::DerSignature;
pub use spki::{SPKI_DER_LEN, SPKI_PREFIX};

/// Length of an uncompressed SEC1 point: `04 || X || Y`.
pub const SEC1_UNCOMPRESSED_LEN: usize = 65;

/// What went wrong. Carries no secret data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The bytes are not a scalar in `1..n-1` (or not 32 bytes long).
    InvalidSecretKey,
    /// The bytes are not a valid encoding of a point on the curve.
    InvalidPublicKey,
    /// The signature computation failed (probability about 2^-256 per call, or an internal
    /// encoding error). Retrying with fresh randomness is safe.
    SigningFailed,
}

/// Which implementation of the curve arithmetic does the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// RustCrypto `p256` (pure Rust).
    Portable,
    /// P256-Cortex-M4 assembly (only built with `cortex-m4-asm` on thumbv7em / thumbv8m.main).
    #[cfg(all(feature = "cortex-m4-asm", pkms_cortex_m4))]
    CortexM4Asm,
}

impl Backend {
    /// The backend the default methods use: the assembly when it is built, else the portable one.
    #[cfg(all(feature = "cortex-m4-asm", pkms_cortex_m4))]
    pub const ACTIVE: Backend = Backend::CortexM4Asm;
    /// The backend the default methods use: the assembly when it is built, else the portable one.
    #[cfg(not(all(feature = "cortex-m4-asm", pkms_cortex_m4)))]
    pub const ACTIVE: Backend = Backend::Portable;

    /// Every backend built into this binary, the active one first.
    pub const ALL: &'static [Backend] = &[
        #[cfg(all(feature = "cortex-m4-asm", pkms_cortex_m4))]
        Backend::CortexM4Asm,
        Backend::Portable,
    ];

    /// A short name for reports: `cortex-m4-asm` or `portable`.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Portable => "portable",
            #[cfg(all(feature = "cortex-m4-asm", pkms_cortex_m4))]
            Backend::CortexM4Asm => "cortex-m4-asm",
        }
    }

    fn public_key(self, secret: &[u8; 32]) -> Option<[u8; 65]> {
        match self {
            Backend::Portable => portable::public_key(secret),
            #[cfg(all(feature = "cortex-m4-asm", pkms_cortex_m4))]
            Backend::CortexM4Asm => asm::public_key(secret),
        }
    }

    fn sign(self, secret: &[u8; 32], digest: &[u8; 32], added: &[u8]) -> Option<RawSignature<NistP256>> {
        match self {
            Backend::Portable => portable::sign(secret, digest, added),
            #[cfg(all(feature = "cortex-m4-asm", pkms_cortex_m4))]
            Backend::CortexM4Asm => asm::sign(secret, digest, added),
        }
    }

    fn verify(self, public: &[u8; 65], digest: &[u8; 32], sig: &RawSignature<NistP256>) -> bool {
        match self {
            Backend::Portable => portable::verify(public, digest, sig),
            #[cfg(all(feature = "cortex-m4-asm", pkms_cortex_m4))]
            Backend::CortexM4Asm => asm::verify(public, digest, sig),
        }
    }

    fn ecdh(self, secret: &[u8; 32], peer: &[u8; 65]) -> Option<Zeroizing<[u8; 32]>> {
        match self {
            Backend::Portable => portable::ecdh(secret, peer),
            #[cfg(all(feature = "cortex-m4-asm", pkms_cortex_m4))]
            Backend::CortexM4Asm => asm::ecdh(secret, peer),
        }
    }

    fn decode_point(self, sec1: &[u8]) -> Option<[u8; 65]> {
        match self {
            Backend::Portable => portable::decode_point(sec1),
            #[cfg(all(feature = "cortex-m4-asm", pkms_cortex_m4))]
            Backend::CortexM4Asm => asm::decode_point(sec1),
        }
    }
}

/// A P-256 secret scalar in `1..n-1`, stored big-endian and zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey {
    scalar: [u8; 32],
}

impl core::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// Draws 32 bytes from `rng` until they form a scalar in `1..n-1` (rejection sampling; a
    /// retry happens with probability about 2^-32). The range check is constant time.
    pub fn random<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut candidate = Zeroizing::new([0u8; 32]);
        loop {
            rng.fill_bytes(&mut candidate[..]);
            if let Ok(key) = Self::from_bytes(&candidate[..]) {
                return key;
            }
        }
    }

    /// Takes a big-endian scalar; it must be exactly 32 bytes and in `1..n-1`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let scalar: [u8; 32] = bytes.try_into().map_err(|_| Error::InvalidSecretKey)?;
        let key = SecretKey { scalar };
        if portable::is_valid_scalar(&key.scalar) {
            Ok(key)
        } else {
            Err(Error::InvalidSecretKey)
        }
    }

    /// The big-endian scalar (for storing the key); zeroized when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.scalar)
    }

    /// The public key `d·G`, computed by the active backend.
    pub fn public_key(&self) -> PublicKey {
        self.public_key_with(Backend::ACTIVE)
    }

    /// The public key computed by a chosen backend (for benchmarks and cross-checks).
    pub fn public_key_with(&self, backend: Backend) -> PublicKey {
        // A SecretKey is in range by construction, so both backends always succeed; the
        // fallback to the portable backend exists only so this can never panic.
        let sec1 = backend
            .public_key(&self.scalar)
            .or_else(|| portable::public_key(&self.scalar))
            .unwrap_or([0u8; 65]);
        PublicKey { sec1 }
    }

    /// `04 || X || Y` of the public key.
    pub fn public_key_sec1_uncompressed(&self) -> [u8; 65] {
        self.public_key().sec1
    }

    /// DER SubjectPublicKeyInfo (id-ecPublicKey, prime256v1) of the public key, as KMS's
    /// GetPublicKey returns it.
    pub fn public_key_spki_der(&self) -> [u8; SPKI_DER_LEN] {
        self.public_key().to_spki_der()
    }

    /// Signs a 32-byte digest (e.g. SHA-256 of the message) with a hedged RFC 6979 nonce:
    /// 32 bytes drawn from `rng` are the additional input. Low-S, DER encoded.
    pub fn sign_digest_hedged<R: RngCore + CryptoRng + ?Sized>(
        &self,
        digest: &[u8; 32],
        rng: &mut R,
    ) -> Result<DerSignature, Error> {
        let mut added = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut added[..]);
        self.sign_digest_with(Backend::ACTIVE, digest, &added[..])
    }

    /// ECDH (SEC 1 §3.3.1, cofactor 1): the big-endian x-coordinate of d·Q, computed by the
    /// active backend. `peer` is a validated point (not the identity), so the product is never
    /// the identity; the error exists only so that nothing here can panic.
    pub fn diffie_hellman(&self, peer: &PublicKey) -> Result<Zeroizing<[u8; 32]>, Error> {
        self.diffie_hellman_with(Backend::ACTIVE, peer)
    }

    /// As [`diffie_hellman`](Self::diffie_hellman), with a chosen backend.
    pub fn diffie_hellman_with(
        &self,
        backend: Backend,
        peer: &PublicKey,
    ) -> Result<Zeroizing<[u8; 32]>, Error> {
        backend.ecdh(&self.scalar, &peer.sec1).ok_or(Error::InvalidPublicKey)
    }

    /// Signs with RFC 6979 whose HMAC-DRBG gets `added` as additional input (RFC 6979 § 3.6;
    /// empty gives plain deterministic RFC 6979, which the token must not use: pass fresh
    /// randomness, as [`sign_digest_hedged`](Self::sign_digest_hedged) does). Both backends give
    /// identical output for identical inputs. Low-S, DER encoded.
    pub fn sign_digest_with(
        &self,
        backend: Backend,
        digest: &[u8; 32],
        added: &[u8],
    ) -> Result<DerSignature, Error> {
        let sig = backend.sign(&self.scalar, digest, added).ok_or(Error::SigningFailed)?;
        Ok(sig.normalize_s().unwrap_or(sig).to_der())
    }
}

/// A P-256 public key: a point checked to lie on the curve, kept as `04 || X || Y`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PublicKey {
    sec1: [u8; 65],
}

impl PublicKey {
    /// Decodes SEC1 `04 || X || Y` (65 bytes) or compressed `02|03 || X` (33 bytes) and checks
    /// the point is on the curve (hybrid `06`/`07` and the identity are refused).
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_sec1_bytes_with(Backend::ACTIVE, bytes)
    }

    /// As [`from_sec1_bytes`](Self::from_sec1_bytes), with a chosen backend.
    pub fn from_sec1_bytes_with(backend: Backend, bytes: &[u8]) -> Result<Self, Error> {
        let well_formed = matches!((bytes.len(), bytes.first()), (65, Some(0x04)) | (33, Some(0x02 | 0x03)));
        if !well_formed {
            return Err(Error::InvalidPublicKey);
        }
        backend.decode_point(bytes).map(|sec1| PublicKey { sec1 }).ok_or(Error::InvalidPublicKey)
    }

    /// Decodes a DER SubjectPublicKeyInfo holding an uncompressed P-256 point (the form
    /// [`to_spki_der`](Self::to_spki_der) writes).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, Error> {
        let point = spki::point_from_spki(der).ok_or(Error::InvalidPublicKey)?;
        Self::from_sec1_bytes(point)
    }

    /// `04 || X || Y`.
    pub fn to_sec1_uncompressed(&self) -> [u8; 65] {
        self.sec1
    }

    /// DER SubjectPublicKeyInfo (91 bytes).
    pub fn to_spki_der(&self) -> [u8; SPKI_DER_LEN] {
        spki::spki_from_point(&self.sec1)
    }

    /// Whether `der_signature` is a valid DER ECDSA signature by this key over `digest`,
    /// checked by the active backend. Malformed signatures are simply `false`.
    pub fn verify_digest(&self, digest: &[u8; 32], der_signature: &[u8]) -> bool {
        self.verify_digest_with(Backend::ACTIVE, digest, der_signature)
    }

    /// As [`verify_digest`](Self::verify_digest), with a chosen backend.
    pub fn verify_digest_with(&self, backend: Backend, digest: &[u8; 32], der_signature: &[u8]) -> bool {
        match RawSignature::<NistP256>::from_der(der_signature) {
            Ok(sig) => backend.verify(&self.sec1, digest, &sig),
            Err(_) => false,
        }
    }
}

/// Checks a DER signature over a 32-byte digest against a SEC1-encoded public key (65-byte
/// uncompressed or 33-byte compressed). Any malformed input gives `false`.
pub fn verify_digest(public_key_sec1: &[u8], digest: &[u8; 32], der_signature: &[u8]) -> bool {
    match PublicKey::from_sec1_bytes(public_key_sec1) {
        Ok(key) => key.verify_digest(digest, der_signature),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
