//! One entry point for every asymmetric key spec the token holds: key generation into the bytes
//! stored per key version, the public key as DER SubjectPublicKeyInfo, Sign / Verify, ECDH,
//! ML-KEM encapsulation and decapsulation, and the PKCS#8 private key of a data key pair.
//!
//! # Specs, what is stored, and what each operation accepts
//!
//! | [`AsymSpec`] | stored bytes | public key DER | signing algorithm, message types | other |
//! |---|---|---|---|---|
//! | `ECC_NIST_P256` | 32 (scalar) | 91 | ECDSA_SHA_256: RAW, DIGEST (32) | ECDH (32-byte secret) |
//! | `ECC_SECG_P256K1` | 32 (scalar) | 88 | ECDSA_SHA_256: RAW, DIGEST (32) | ECDH (32) |
//! | `ECC_NIST_P384` | 48 (scalar) | 120 | ECDSA_SHA_384: RAW, DIGEST (48) | ECDH (48) |
//! | `ECC_NIST_EDWARDS25519` | 32 (RFC 8032 seed) | 44 | ED25519_SHA_512: RAW; ED25519_PH_SHA_512: RAW, DIGEST (64) | — |
//! | `ML_DSA_44/65/87` | 32 (seed ξ) | 1334 / 1974 / 2614 | ML_DSA_SHAKE_256: RAW, EXTERNAL_MU (64) | — |
//! | `ML_KEM_512/768/1024` | 64 (seed d ‖ z) | 822 / 1206 / 1590 | — | Encapsulate / Decapsulate |
//!
//! RAW messages are 1..=4096 bytes ([`MAX_MESSAGE`]); the token hashes them (SHA-256, SHA-384 or
//! SHA-512, or ML-DSA's μ = SHAKE256(tr ‖ 0 ‖ 0 ‖ M), pure ML-DSA with an empty context). A DIGEST
//! or EXTERNAL_MU message is exactly the length in parentheses. Every stored form is what the
//! standard calls the private key or its seed (FIPS 203 §7.1 and FIPS 204 §3.6.3 allow seeds), so a
//! version costs at most 64 bytes of material.
//!
//! Output sizes: [`AsymSpec::public_key_der_len`] (at most [`MAX_PUBLIC_KEY_DER`]),
//! [`AsymSpec::max_signature_len`] (at most [`MAX_SIGNATURE`]: ECDSA signatures are DER and
//! vary in length, the others are fixed), [`AsymSpec::shared_secret_len`],
//! [`AsymSpec::ciphertext_len`] and [`AsymSpec::private_key_pkcs8_len`]. Buffers may be longer;
//! each call returns the length it wrote.
//!
//! # Properties
//!
//! * ECDSA nonces are hedged (RFC 6979 with 32 fresh random bytes as additional input), signatures
//!   low-S DER; Verify accepts low and high S. Ed25519 is deterministic (RFC 8032). ML-DSA signing
//!   is **hedged** (FIPS 204's default: `rnd` is 32 fresh random bytes).
//! * Every signature is verified with the public key before it is returned ([`sign`]); a
//!   signature that fails (a fault while signing) is never released: [`AsymError::SigningFailed`].
//! * ECDH checks the peer's SubjectPublicKeyInfo strictly, with distinct errors for malformed
//!   DER, a key that is not an EC key, another curve, the identity and a point not on the curve.
//! * ML-KEM decapsulation of a wrong ciphertext of the right length returns the implicit-rejection
//!   secret (constant time); only a wrong length is an error.
//! * No heap; no panics on any input; secrets are zeroized. ML-DSA keeps its matrix in a 56 KiB
//!   stack buffer unless the `mldsa-streamed-matrix` feature is on (the nRF52840 build), in which
//!   case every entry is sampled when used ([`MlDsaMatrix`]; BENCHMARKS.md has both figures).
//!   The post-quantum paths run in functions of their own, so the classical ones' stack frames do
//!   not carry their buffers.

mod der;
mod ecc;
mod ed25519;

use pkms_protocol::ErrorCode;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256, Sha384, Sha512};
use zeroize::Zeroizing;

use crate::error::Error;
use pkms_pq::mldsa::{self, Matrix};
use pkms_pq::mlkem;

pub use pkms_protocol::limits::MAX_MESSAGE;

/// Most bytes stored per key version (ML-KEM's d ‖ z).
pub const MAX_STORED: usize = 64;
/// Longest public key DER (ML-DSA-87).
pub const MAX_PUBLIC_KEY_DER: usize = 2614;
/// Longest signature (ML-DSA-87).
pub const MAX_SIGNATURE: usize = mldsa::MAX_SIGNATURE;
/// Longest ECDH shared secret (P-384).
pub const MAX_SHARED_SECRET: usize = 48;
/// Longest ML-KEM ciphertext (ML-KEM-1024).
pub const MAX_CIPHERTEXT: usize = mlkem::MAX_CIPHERTEXT;
/// Bytes of an ML-KEM shared secret.
pub const KEM_SHARED_SECRET_LEN: usize = mlkem::SHARED_SECRET_LEN;
/// Longest PKCS#8 private key (P-384).
pub const MAX_PRIVATE_KEY_PKCS8: usize = 185;

/// An asymmetric key spec (KMS KeySpec / KeyPairSpec names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsymSpec {
    /// ECC_NIST_P256.
    EccNistP256,
    /// ECC_SECG_P256K1.
    EccSecgP256k1,
    /// ECC_NIST_P384.
    EccNistP384,
    /// ECC_NIST_EDWARDS25519.
    EccNistEdwards25519,
    /// ML_DSA_44.
    MlDsa44,
    /// ML_DSA_65.
    MlDsa65,
    /// ML_DSA_87.
    MlDsa87,
    /// ML_KEM_512.
    MlKem512,
    /// ML_KEM_768.
    MlKem768,
    /// ML_KEM_1024.
    MlKem1024,
}

impl AsymSpec {
    /// How deep this spec's calls go on the stack: what [`crate::crypto::wipe::wiped_to`] must
    /// zero after each.
    pub const fn stack_depth(self) -> crate::crypto::wipe::StackDepth {
        use crate::crypto::wipe::StackDepth;
        match self {
            AsymSpec::EccNistP256 => StackDepth::Shallow,
            // k256's generator table is copied onto the stack for each multiplication (and
            // built there once per boot): about 35 KB deep, 100 KB for the first.
            #[cfg(feature = "secp256k1-tables")]
            AsymSpec::EccSecgP256k1 => StackDepth::Lattice,
            #[cfg(not(feature = "secp256k1-tables"))]
            AsymSpec::EccSecgP256k1 => StackDepth::Deep,
            AsymSpec::EccNistP384
            | AsymSpec::EccNistEdwards25519
            | AsymSpec::MlKem512
            | AsymSpec::MlKem768
            | AsymSpec::MlKem1024 => StackDepth::Deep,
            AsymSpec::MlDsa44 | AsymSpec::MlDsa65 | AsymSpec::MlDsa87 => StackDepth::Lattice,
        }
    }
}

/// A signing algorithm (KMS SigningAlgorithmSpec names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    /// ECDSA_SHA_256 (P-256, secp256k1).
    EcdsaSha256,
    /// ECDSA_SHA_384 (P-384).
    EcdsaSha384,
    /// ED25519_SHA_512: pure Ed25519 (RAW only).
    Ed25519Sha512,
    /// ED25519_PH_SHA_512: Ed25519ph over SHA-512 (RAW, hashed here, or the DIGEST).
    Ed25519PhSha512,
    /// ML_DSA_SHAKE_256: pure ML-DSA, empty context (RAW or EXTERNAL_MU).
    MlDsaShake256,
}

/// How the message is given (KMS MessageType names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// RAW: the message itself, 1..=4096 bytes.
    Raw,
    /// DIGEST: the algorithm's hash of the message.
    Digest,
    /// EXTERNAL_MU: ML-DSA's 64-byte μ.
    ExternalMu,
}

/// Why an asymmetric operation failed. Distinct per cause; nothing secret in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsymError {
    /// The operation does not exist for this spec (ECDH with Ed25519, Sign with ML-KEM, …).
    OperationNotForSpec,
    /// The signing algorithm is not one this spec supports.
    AlgorithmNotForSpec,
    /// The message type is not one this signing algorithm accepts.
    MessageTypeNotForAlgorithm,
    /// A RAW message is empty or longer than 4096 bytes, or a DIGEST / EXTERNAL_MU message has
    /// the wrong length.
    MessageLength,
    /// An output buffer is too short (a caller bug).
    BufferTooSmall,
    /// The stored bytes are not a key of this spec (wrong length, scalar out of range).
    StoredKeyInvalid,
    /// The peer public key is not DER SubjectPublicKeyInfo (or uses an unsupported encoding).
    PeerKeyMalformed,
    /// The peer public key is not an elliptic-curve key.
    PeerKeyNotEc,
    /// The peer public key is on another curve than this key.
    PeerKeyWrongCurve,
    /// The peer public key is the point at infinity.
    PeerKeyIdentity,
    /// The peer public key's point is not on the curve.
    PeerKeyNotOnCurve,
    /// The ciphertext does not have this ML-KEM parameter set's length.
    CiphertextLength,
    /// Signing failed, or the signature failed its verification before release (a fault).
    SigningFailed,
    /// Key generation drew [`SCALAR_ATTEMPTS`] out-of-range scalars in a row: the RNG is broken.
    RandomnessFailed,
}

/// Draws of a secret scalar before key generation gives up ([`AsymError::RandomnessFailed`]).
/// A uniform draw is out of range with probability below 2^-32 (P-256) or 2^-128 (secp256k1,
/// P-384), so reaching this means the RNG does not work.
pub const SCALAR_ATTEMPTS: usize = 8;

impl AsymError {
    /// The KMS error code this maps to.
    pub const fn code(self) -> ErrorCode {
        match self {
            AsymError::OperationNotForSpec
            | AsymError::AlgorithmNotForSpec
            | AsymError::PeerKeyNotEc
            | AsymError::PeerKeyWrongCurve => ErrorCode::InvalidKeyUsage,
            AsymError::MessageTypeNotForAlgorithm
            | AsymError::MessageLength
            | AsymError::PeerKeyMalformed
            | AsymError::PeerKeyIdentity
            | AsymError::PeerKeyNotOnCurve
            | AsymError::CiphertextLength => ErrorCode::Validation,
            AsymError::StoredKeyInvalid => ErrorCode::StorageCorrupted,
            AsymError::BufferTooSmall | AsymError::SigningFailed | AsymError::RandomnessFailed => {
                ErrorCode::Internal
            }
        }
    }

    /// A message for people.
    pub const fn message(self) -> &'static str {
        match self {
            AsymError::OperationNotForSpec => "the operation is not valid for this key spec",
            AsymError::AlgorithmNotForSpec => "the signing algorithm is not valid for this key spec",
            AsymError::MessageTypeNotForAlgorithm => "the message type is not valid for this signing algorithm",
            AsymError::MessageLength => {
                "RAW messages are 1..=4096 bytes; DIGEST and EXTERNAL_MU messages are exactly the digest or mu length"
            }
            AsymError::BufferTooSmall => "an output buffer is too small",
            AsymError::StoredKeyInvalid => "the stored key material is not valid for its key spec",
            AsymError::PeerKeyMalformed => "the public key is not a DER SubjectPublicKeyInfo this token can read",
            AsymError::PeerKeyNotEc => "the public key is not an elliptic-curve key",
            AsymError::PeerKeyWrongCurve => "the public key is on a different curve than the KMS key",
            AsymError::PeerKeyIdentity => "the public key is the point at infinity",
            AsymError::PeerKeyNotOnCurve => "the public key's point is not on the curve",
            AsymError::CiphertextLength => "the ciphertext length does not match the key's ML-KEM parameter set",
            AsymError::SigningFailed => "signing failed its self-check; no signature was released",
            AsymError::RandomnessFailed => "the random number generator failed; no key was made",
        }
    }
}

impl From<AsymError> for Error {
    fn from(e: AsymError) -> Self {
        Error::new(e.code(), e.message())
    }
}

type Result<T> = core::result::Result<T, AsymError>;

impl AsymSpec {
    /// The asymmetric spec of a KMS key spec; `None` for symmetric and HMAC keys.
    pub const fn of(spec: pkms_protocol::KeySpec) -> Option<AsymSpec> {
        use pkms_protocol::KeySpec as K;
        match spec {
            K::EccNistP256 => Some(AsymSpec::EccNistP256),
            K::EccSecgP256k1 => Some(AsymSpec::EccSecgP256k1),
            K::EccNistP384 => Some(AsymSpec::EccNistP384),
            K::EccNistEdwards25519 => Some(AsymSpec::EccNistEdwards25519),
            K::MlDsa44 => Some(AsymSpec::MlDsa44),
            K::MlDsa65 => Some(AsymSpec::MlDsa65),
            K::MlDsa87 => Some(AsymSpec::MlDsa87),
            K::MlKem512 => Some(AsymSpec::MlKem512),
            K::MlKem768 => Some(AsymSpec::MlKem768),
            K::MlKem1024 => Some(AsymSpec::MlKem1024),
            K::SymmetricDefault | K::Hmac256 | K::Hmac384 | K::Hmac512 => None,
        }
    }

    /// Every spec.
    pub const ALL: &'static [AsymSpec] = &[
        AsymSpec::EccNistP256,
        AsymSpec::EccSecgP256k1,
        AsymSpec::EccNistP384,
        AsymSpec::EccNistEdwards25519,
        AsymSpec::MlDsa44,
        AsymSpec::MlDsa65,
        AsymSpec::MlDsa87,
        AsymSpec::MlKem512,
        AsymSpec::MlKem768,
        AsymSpec::MlKem1024,
    ];

    /// The KMS name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AsymSpec::EccNistP256 => "ECC_NIST_P256",
            AsymSpec::EccSecgP256k1 => "ECC_SECG_P256K1",
            AsymSpec::EccNistP384 => "ECC_NIST_P384",
            AsymSpec::EccNistEdwards25519 => "ECC_NIST_EDWARDS25519",
            AsymSpec::MlDsa44 => "ML_DSA_44",
            AsymSpec::MlDsa65 => "ML_DSA_65",
            AsymSpec::MlDsa87 => "ML_DSA_87",
            AsymSpec::MlKem512 => "ML_KEM_512",
            AsymSpec::MlKem768 => "ML_KEM_768",
            AsymSpec::MlKem1024 => "ML_KEM_1024",
        }
    }

    /// Bytes stored per key version (what [`generate`] writes).
    pub const fn stored_len(self) -> usize {
        match self {
            AsymSpec::EccNistP256
            | AsymSpec::EccSecgP256k1
            | AsymSpec::EccNistEdwards25519
            | AsymSpec::MlDsa44
            | AsymSpec::MlDsa65
            | AsymSpec::MlDsa87 => 32,
            AsymSpec::EccNistP384 => 48,
            AsymSpec::MlKem512 | AsymSpec::MlKem768 | AsymSpec::MlKem1024 => 64,
        }
    }

    /// Bytes of the public key's DER SubjectPublicKeyInfo.
    pub const fn public_key_der_len(self) -> usize {
        match self {
            AsymSpec::EccNistP256 => pkms_p256::SPKI_DER_LEN,
            AsymSpec::EccSecgP256k1 => der::spki_len(der::ALG_SECP256K1.len(), ecc::secp256k1::POINT_LEN),
            AsymSpec::EccNistP384 => der::spki_len(der::ALG_P384.len(), ecc::nist_p384::POINT_LEN),
            AsymSpec::EccNistEdwards25519 => der::spki_len(der::ALG_ED25519.len(), 32),
            AsymSpec::MlDsa44 | AsymSpec::MlDsa65 | AsymSpec::MlDsa87 => match self.ml_dsa() {
                Some(level) => der::spki_len(13, level.public_key_len()),
                None => 0,
            },
            AsymSpec::MlKem512 | AsymSpec::MlKem768 | AsymSpec::MlKem1024 => match self.ml_kem() {
                Some(level) => der::spki_len(13, level.encapsulation_key_len()),
                None => 0,
            },
        }
    }

    /// The signing algorithms this spec supports (empty for ML-KEM).
    pub const fn signing_algorithms(self) -> &'static [SigningAlg] {
        match self {
            AsymSpec::EccNistP256 | AsymSpec::EccSecgP256k1 => &[SigningAlg::EcdsaSha256],
            AsymSpec::EccNistP384 => &[SigningAlg::EcdsaSha384],
            AsymSpec::EccNistEdwards25519 => &[SigningAlg::Ed25519Sha512, SigningAlg::Ed25519PhSha512],
            AsymSpec::MlDsa44 | AsymSpec::MlDsa65 | AsymSpec::MlDsa87 => &[SigningAlg::MlDsaShake256],
            AsymSpec::MlKem512 | AsymSpec::MlKem768 | AsymSpec::MlKem1024 => &[],
        }
    }

    /// Longest signature (0 for ML-KEM).
    pub const fn max_signature_len(self) -> usize {
        match self {
            AsymSpec::EccNistP256 => 72,
            AsymSpec::EccSecgP256k1 => ecc::secp256k1::MAX_DER_SIGNATURE,
            AsymSpec::EccNistP384 => ecc::nist_p384::MAX_DER_SIGNATURE,
            AsymSpec::EccNistEdwards25519 => 64,
            AsymSpec::MlDsa44 | AsymSpec::MlDsa65 | AsymSpec::MlDsa87 => match self.ml_dsa() {
                Some(level) => level.signature_len(),
                None => 0,
            },
            AsymSpec::MlKem512 | AsymSpec::MlKem768 | AsymSpec::MlKem1024 => 0,
        }
    }

    /// Bytes of the ECDH shared secret, if the spec does key agreement (KEY_AGREEMENT, ECDH).
    pub const fn shared_secret_len(self) -> Option<usize> {
        match self {
            AsymSpec::EccNistP256 | AsymSpec::EccSecgP256k1 => Some(32),
            AsymSpec::EccNistP384 => Some(48),
            AsymSpec::EccNistEdwards25519
            | AsymSpec::MlDsa44
            | AsymSpec::MlDsa65
            | AsymSpec::MlDsa87
            | AsymSpec::MlKem512
            | AsymSpec::MlKem768
            | AsymSpec::MlKem1024 => None,
        }
    }

    /// Bytes of an ML-KEM ciphertext, if the spec is ML-KEM (ENCAPSULATE_DECAPSULATE).
    pub const fn ciphertext_len(self) -> Option<usize> {
        match self.ml_kem() {
            Some(level) => Some(level.ciphertext_len()),
            None => None,
        }
    }

    /// Bytes of the PKCS#8 private key ([`private_key_pkcs8`]).
    pub const fn private_key_pkcs8_len(self) -> usize {
        match self {
            AsymSpec::EccNistP256 => 138,
            AsymSpec::EccSecgP256k1 => 135,
            AsymSpec::EccNistP384 => 185,
            AsymSpec::EccNistEdwards25519 => 48,
            AsymSpec::MlDsa44 | AsymSpec::MlDsa65 | AsymSpec::MlDsa87 => 54,
            AsymSpec::MlKem512 | AsymSpec::MlKem768 | AsymSpec::MlKem1024 => 86,
        }
    }

    const fn ml_dsa(self) -> Option<mldsa::Level> {
        match self {
            AsymSpec::MlDsa44 => Some(mldsa::Level::MlDsa44),
            AsymSpec::MlDsa65 => Some(mldsa::Level::MlDsa65),
            AsymSpec::MlDsa87 => Some(mldsa::Level::MlDsa87),
            AsymSpec::EccNistP256
            | AsymSpec::EccSecgP256k1
            | AsymSpec::EccNistP384
            | AsymSpec::EccNistEdwards25519
            | AsymSpec::MlKem512
            | AsymSpec::MlKem768
            | AsymSpec::MlKem1024 => None,
        }
    }

    const fn ml_kem(self) -> Option<mlkem::Level> {
        match self {
            AsymSpec::MlKem512 => Some(mlkem::Level::MlKem512),
            AsymSpec::MlKem768 => Some(mlkem::Level::MlKem768),
            AsymSpec::MlKem1024 => Some(mlkem::Level::MlKem1024),
            AsymSpec::EccNistP256
            | AsymSpec::EccSecgP256k1
            | AsymSpec::EccNistP384
            | AsymSpec::EccNistEdwards25519
            | AsymSpec::MlDsa44
            | AsymSpec::MlDsa65
            | AsymSpec::MlDsa87 => None,
        }
    }
}

impl SigningAlg {
    /// The algorithm of a KMS signing algorithm name.
    pub const fn of(alg: pkms_protocol::SigningAlgorithm) -> SigningAlg {
        use pkms_protocol::SigningAlgorithm as A;
        match alg {
            A::EcdsaSha256 => SigningAlg::EcdsaSha256,
            A::EcdsaSha384 => SigningAlg::EcdsaSha384,
            A::Ed25519Sha512 => SigningAlg::Ed25519Sha512,
            A::Ed25519PhSha512 => SigningAlg::Ed25519PhSha512,
            A::MlDsaShake256 => SigningAlg::MlDsaShake256,
        }
    }

    /// The KMS name.
    pub const fn as_str(self) -> &'static str {
        match self {
            SigningAlg::EcdsaSha256 => "ECDSA_SHA_256",
            SigningAlg::EcdsaSha384 => "ECDSA_SHA_384",
            SigningAlg::Ed25519Sha512 => "ED25519_SHA_512",
            SigningAlg::Ed25519PhSha512 => "ED25519_PH_SHA_512",
            SigningAlg::MlDsaShake256 => "ML_DSA_SHAKE_256",
        }
    }

    /// The message types this algorithm accepts.
    pub const fn message_kinds(self) -> &'static [MessageKind] {
        match self {
            SigningAlg::EcdsaSha256 | SigningAlg::EcdsaSha384 | SigningAlg::Ed25519PhSha512 => {
                &[MessageKind::Raw, MessageKind::Digest]
            }
            SigningAlg::Ed25519Sha512 => &[MessageKind::Raw],
            SigningAlg::MlDsaShake256 => &[MessageKind::Raw, MessageKind::ExternalMu],
        }
    }
}

impl MessageKind {
    /// The kind of a KMS message type.
    pub const fn of(kind: pkms_protocol::MessageType) -> MessageKind {
        use pkms_protocol::MessageType as M;
        match kind {
            M::Raw => MessageKind::Raw,
            M::Digest => MessageKind::Digest,
            M::ExternalMu => MessageKind::ExternalMu,
        }
    }

    /// The KMS name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageKind::Raw => "RAW",
            MessageKind::Digest => "DIGEST",
            MessageKind::ExternalMu => "EXTERNAL_MU",
        }
    }
}

/// Writes a fresh key for `spec` (its [`AsymSpec::stored_len`] bytes) into `out`; returns the
/// length. ECC scalars are drawn uniformly in 1..n-1 by rejection (at most [`SCALAR_ATTEMPTS`]
/// draws).
pub fn generate<R: RngCore + CryptoRng>(spec: AsymSpec, rng: &mut R, out: &mut [u8]) -> Result<usize> {
    let len = spec.stored_len();
    let out = out.get_mut(..len).ok_or(AsymError::BufferTooSmall)?;
    match spec {
        AsymSpec::EccNistP256 => {
            let mut d = Zeroizing::new([0u8; 32]);
            let drawn = (0..SCALAR_ATTEMPTS).any(|_| {
                rng.fill_bytes(&mut d[..]);
                pkms_p256::SecretKey::from_bytes(&d[..]).is_ok()
            });
            if !drawn {
                return Err(AsymError::RandomnessFailed);
            }
            out.copy_from_slice(&d[..]);
        }
        AsymSpec::EccSecgP256k1 => {
            let mut d = Zeroizing::new([0u8; 32]);
            if !ecc::secp256k1::generate(rng, &mut d, SCALAR_ATTEMPTS) {
                return Err(AsymError::RandomnessFailed);
            }
            out.copy_from_slice(&d[..]);
        }
        AsymSpec::EccNistP384 => {
            let mut d = Zeroizing::new([0u8; 48]);
            if !ecc::nist_p384::generate(rng, &mut d, SCALAR_ATTEMPTS) {
                return Err(AsymError::RandomnessFailed);
            }
            out.copy_from_slice(&d[..]);
        }
        AsymSpec::EccNistEdwards25519
        | AsymSpec::MlDsa44
        | AsymSpec::MlDsa65
        | AsymSpec::MlDsa87
        | AsymSpec::MlKem512
        | AsymSpec::MlKem768
        | AsymSpec::MlKem1024 => rng.fill_bytes(out),
    }
    Ok(len)
}

fn seed32(stored: &[u8]) -> Result<&[u8; 32]> {
    stored.try_into().map_err(|_| AsymError::StoredKeyInvalid)
}

fn seed64(stored: &[u8]) -> Result<&[u8; 64]> {
    stored.try_into().map_err(|_| AsymError::StoredKeyInvalid)
}

fn p256_key(stored: &[u8]) -> Result<pkms_p256::SecretKey> {
    pkms_p256::SecretKey::from_bytes(stored).map_err(|_| AsymError::StoredKeyInvalid)
}

fn copy_out(bytes: &[u8], out: &mut [u8]) -> Result<usize> {
    out.get_mut(..bytes.len()).ok_or(AsymError::BufferTooSmall)?.copy_from_slice(bytes);
    Ok(bytes.len())
}

/// Writes the public key of the stored key as DER SubjectPublicKeyInfo into `out` (at least
/// [`AsymSpec::public_key_der_len`] bytes); returns the length. OIDs: id-ecPublicKey with
/// prime256v1 / secp256k1 / secp384r1, id-Ed25519 (RFC 8410), id-ml-dsa-44/65/87 and
/// id-alg-ml-kem-512/768/1024 (NIST).
pub fn public_key_der(spec: AsymSpec, stored: &[u8], out: &mut [u8]) -> Result<usize> {
    let written = match spec {
        AsymSpec::EccNistP256 => return copy_out(&p256_key(stored)?.public_key_spki_der(), out),
        AsymSpec::EccSecgP256k1 => {
            let d = ecc::secp256k1::scalar(stored).ok_or(AsymError::StoredKeyInvalid)?;
            let point = ecc::secp256k1::point_bytes(&ecc::secp256k1::public(&d));
            der::write_spki(der::ALG_SECP256K1, &point, out)
        }
        AsymSpec::EccNistP384 => {
            let d = ecc::nist_p384::scalar(stored).ok_or(AsymError::StoredKeyInvalid)?;
            let point = ecc::nist_p384::point_bytes(&ecc::nist_p384::public(&d));
            der::write_spki(der::ALG_P384, &point, out)
        }
        AsymSpec::EccNistEdwards25519 => {
            let key = ed25519::signing_key(stored).ok_or(AsymError::StoredKeyInvalid)?;
            der::write_spki(der::ALG_ED25519, key.verifying_key().as_bytes(), out)
        }
        AsymSpec::MlDsa44 | AsymSpec::MlDsa65 | AsymSpec::MlDsa87 => {
            return ml_dsa_public_key_der(spec.ml_dsa().ok_or(AsymError::OperationNotForSpec)?, stored, out)
        }
        AsymSpec::MlKem512 | AsymSpec::MlKem768 | AsymSpec::MlKem1024 => {
            return ml_kem_public_key_der(spec.ml_kem().ok_or(AsymError::OperationNotForSpec)?, stored, out)
        }
    };
    written.ok_or(AsymError::BufferTooSmall)
}

// The post-quantum paths hold kilobytes of buffers: kept out of line so that the classical
// paths' stack frames do not carry them.
#[inline(never)]
fn ml_dsa_public_key_der(level: mldsa::Level, stored: &[u8], out: &mut [u8]) -> Result<usize> {
    let mut pk = [0u8; mldsa::MAX_PUBLIC_KEY];
    let n = mldsa::public_key(level, seed32(stored)?, &mut pk).map_err(|_| AsymError::BufferTooSmall)?;
    der::write_spki(&der::alg_ml_dsa(ml_dsa_oid(level)), &pk[..n], out).ok_or(AsymError::BufferTooSmall)
}

#[inline(never)]
fn ml_kem_public_key_der(level: mlkem::Level, stored: &[u8], out: &mut [u8]) -> Result<usize> {
    let mut ek = [0u8; mlkem::MAX_ENCAPSULATION_KEY];
    let n =
        mlkem::encapsulation_key(level, seed64(stored)?, &mut ek).map_err(|_| AsymError::BufferTooSmall)?;
    der::write_spki(&der::alg_ml_kem(ml_kem_oid(level)), &ek[..n], out).ok_or(AsymError::BufferTooSmall)
}

const fn ml_dsa_oid(level: mldsa::Level) -> u8 {
    match level {
        mldsa::Level::MlDsa44 => 0x11,
        mldsa::Level::MlDsa65 => 0x12,
        mldsa::Level::MlDsa87 => 0x13,
    }
}

const fn ml_kem_oid(level: mlkem::Level) -> u8 {
    match level {
        mlkem::Level::MlKem512 => 0x01,
        mlkem::Level::MlKem768 => 0x02,
        mlkem::Level::MlKem1024 => 0x03,
    }
}

/// The message as the scheme takes it: a digest of the right length, or the RAW bytes.
enum Prepared<'a> {
    Digest32([u8; 32]),
    Digest48([u8; 48]),
    Digest64([u8; 64]),
    Raw(&'a [u8]),
    Mu([u8; 64]),
}

fn raw(message: &[u8]) -> Result<&[u8]> {
    if message.is_empty() || message.len() > MAX_MESSAGE {
        return Err(AsymError::MessageLength);
    }
    Ok(message)
}

fn exact<const N: usize>(message: &[u8]) -> Result<[u8; N]> {
    message.try_into().map_err(|_| AsymError::MessageLength)
}

/// Checks that `alg` belongs to `spec` and `kind` to `alg`, and hashes a RAW message where the
/// algorithm signs a digest.
fn prepare(spec: AsymSpec, alg: SigningAlg, kind: MessageKind, message: &[u8]) -> Result<Prepared<'_>> {
    if spec.signing_algorithms().is_empty() {
        return Err(AsymError::OperationNotForSpec);
    }
    if !spec.signing_algorithms().contains(&alg) {
        return Err(AsymError::AlgorithmNotForSpec);
    }
    if !alg.message_kinds().contains(&kind) {
        return Err(AsymError::MessageTypeNotForAlgorithm);
    }
    Ok(match (alg, kind) {
        (SigningAlg::EcdsaSha256, MessageKind::Raw) => {
            Prepared::Digest32(Sha256::digest(raw(message)?).into())
        }
        (SigningAlg::EcdsaSha256, MessageKind::Digest) => Prepared::Digest32(exact(message)?),
        (SigningAlg::EcdsaSha384, MessageKind::Raw) => {
            Prepared::Digest48(Sha384::digest(raw(message)?).into())
        }
        (SigningAlg::EcdsaSha384, MessageKind::Digest) => Prepared::Digest48(exact(message)?),
        (SigningAlg::Ed25519PhSha512, MessageKind::Raw) => {
            Prepared::Digest64(Sha512::digest(raw(message)?).into())
        }
        (SigningAlg::Ed25519PhSha512, MessageKind::Digest) => Prepared::Digest64(exact(message)?),
        (SigningAlg::Ed25519Sha512, MessageKind::Raw) | (SigningAlg::MlDsaShake256, MessageKind::Raw) => {
            Prepared::Raw(raw(message)?)
        }
        (SigningAlg::MlDsaShake256, MessageKind::ExternalMu) => Prepared::Mu(exact(message)?),
        (SigningAlg::EcdsaSha256, MessageKind::ExternalMu)
        | (SigningAlg::EcdsaSha384, MessageKind::ExternalMu)
        | (SigningAlg::Ed25519Sha512, MessageKind::Digest)
        | (SigningAlg::Ed25519Sha512, MessageKind::ExternalMu)
        | (SigningAlg::Ed25519PhSha512, MessageKind::ExternalMu)
        | (SigningAlg::MlDsaShake256, MessageKind::Digest) => {
            return Err(AsymError::MessageTypeNotForAlgorithm)
        }
    })
}

impl Prepared<'_> {
    fn ed25519(&self) -> Result<ed25519::Input<'_>> {
        match self {
            Prepared::Raw(m) => Ok(ed25519::Input::Message(m)),
            Prepared::Digest64(d) => Ok(ed25519::Input::Prehash(d)),
            Prepared::Digest32(_) | Prepared::Digest48(_) | Prepared::Mu(_) => {
                Err(AsymError::MessageTypeNotForAlgorithm)
            }
        }
    }

    fn ml_dsa(&self) -> Result<mldsa::Message<'_>> {
        match self {
            Prepared::Raw(m) => Ok(mldsa::Message::Raw(m)),
            Prepared::Mu(mu) => Ok(mldsa::Message::ExternalMu(mu)),
            Prepared::Digest32(_) | Prepared::Digest48(_) | Prepared::Digest64(_) => {
                Err(AsymError::MessageTypeNotForAlgorithm)
            }
        }
    }

    fn digest(&self) -> Result<&[u8]> {
        match self {
            Prepared::Digest32(d) => Ok(d),
            Prepared::Digest48(d) => Ok(d),
            Prepared::Digest64(_) | Prepared::Raw(_) | Prepared::Mu(_) => {
                Err(AsymError::MessageTypeNotForAlgorithm)
            }
        }
    }
}

/// Checks a Sign request's shape without the key: `alg` belongs to `spec`, `kind` to `alg`, and
/// the message has a length `kind` allows. [`sign`] makes the same checks; this lets a caller
/// refuse a bad request before it unwraps the key or asks for a button press.
pub fn check_message(spec: AsymSpec, alg: SigningAlg, kind: MessageKind, message: &[u8]) -> Result<()> {
    prepare(spec, alg, kind, message).map(|_| ())
}

/// Where ML-DSA signing keeps the matrix Â.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlDsaMatrix {
    /// In a 56 KiB stack buffer, sampled once per signature: faster, and the largest peak
    /// stack of any operation (BENCHMARKS.md).
    Cached,
    /// Each entry sampled when it is used: slower, with about half the peak stack
    /// (BENCHMARKS.md).
    Streamed,
}

impl MlDsaMatrix {
    /// This build's choice: [`MlDsaMatrix::Streamed`] with the `mldsa-streamed-matrix` feature
    /// (the nRF52840), else [`MlDsaMatrix::Cached`].
    #[cfg(feature = "mldsa-streamed-matrix")]
    pub const BUILD: MlDsaMatrix = MlDsaMatrix::Streamed;
    /// This build's choice: [`MlDsaMatrix::Streamed`] with the `mldsa-streamed-matrix` feature
    /// (the nRF52840), else [`MlDsaMatrix::Cached`].
    #[cfg(not(feature = "mldsa-streamed-matrix"))]
    pub const BUILD: MlDsaMatrix = MlDsaMatrix::Cached;
}

/// Signs `message` (given as `kind`) with algorithm `alg` and the stored key; writes the
/// signature into `out` (at least [`AsymSpec::max_signature_len`] bytes) and returns its length.
/// The signature is verified with the public key before it is returned. `rng` feeds the hedged
/// ECDSA nonce and ML-DSA's `rnd`. ML-DSA keeps its matrix where [`MlDsaMatrix::BUILD`] says.
#[allow(clippy::too_many_arguments)]
pub fn sign<R: RngCore + CryptoRng>(
    spec: AsymSpec,
    stored: &[u8],
    alg: SigningAlg,
    kind: MessageKind,
    message: &[u8],
    rng: &mut R,
    out: &mut [u8],
) -> Result<usize> {
    sign_with(spec, stored, alg, kind, message, rng, out, MlDsaMatrix::BUILD)
}

/// [`sign`] with the ML-DSA matrix placement chosen by the caller (benchmarks measure both).
#[allow(clippy::too_many_arguments)]
pub fn sign_with<R: RngCore + CryptoRng>(
    spec: AsymSpec,
    stored: &[u8],
    alg: SigningAlg,
    kind: MessageKind,
    message: &[u8],
    rng: &mut R,
    out: &mut [u8],
    matrix: MlDsaMatrix,
) -> Result<usize> {
    let prepared = prepare(spec, alg, kind, message)?;
    if out.len() < spec.max_signature_len() {
        return Err(AsymError::BufferTooSmall);
    }
    match spec {
        AsymSpec::EccNistP256 => sign_p256(stored, &prepared, rng, out),
        AsymSpec::EccSecgP256k1 => sign_secp256k1(stored, &prepared, rng, out),
        AsymSpec::EccNistP384 => sign_p384(stored, &prepared, rng, out),
        AsymSpec::EccNistEdwards25519 => sign_ed25519(stored, &prepared, out),
        AsymSpec::MlDsa44 | AsymSpec::MlDsa65 | AsymSpec::MlDsa87 => {
            let level = spec.ml_dsa().ok_or(AsymError::OperationNotForSpec)?;
            let mut rnd = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(&mut rnd[..]);
            match matrix {
                MlDsaMatrix::Cached => sign_ml_dsa_cached(level, stored, &prepared, &rnd, out),
                MlDsaMatrix::Streamed => {
                    sign_ml_dsa(level, stored, &prepared, &rnd, out, &mut Matrix::Streamed)
                }
            }
        }
        AsymSpec::MlKem512 | AsymSpec::MlKem768 | AsymSpec::MlKem1024 => Err(AsymError::OperationNotForSpec),
    }
}

#[inline(never)]
fn sign_p256<R: RngCore + CryptoRng>(
    stored: &[u8],
    prepared: &Prepared<'_>,
    rng: &mut R,
    out: &mut [u8],
) -> Result<usize> {
    let key = p256_key(stored)?;
    let digest: [u8; 32] = exact(prepared.digest()?)?;
    let der = key.sign_digest_hedged(&digest, rng).map_err(|_| AsymError::SigningFailed)?;
    if !key.public_key().verify_digest(&digest, der.as_bytes()) {
        return Err(AsymError::SigningFailed);
    }
    copy_out(der.as_bytes(), out)
}

#[inline(never)]
fn sign_secp256k1<R: RngCore + CryptoRng>(
    stored: &[u8],
    prepared: &Prepared<'_>,
    rng: &mut R,
    out: &mut [u8],
) -> Result<usize> {
    use ecc::secp256k1 as c;
    let d = c::scalar(stored).ok_or(AsymError::StoredKeyInvalid)?;
    let mut sig = [0u8; c::MAX_DER_SIGNATURE];
    let n = c::sign(&d, prepared.digest()?, rng, &mut sig).ok_or(AsymError::SigningFailed)?;
    if !c::verify(&c::public(&d), prepared.digest()?, &sig[..n]) {
        return Err(AsymError::SigningFailed);
    }
    copy_out(&sig[..n], out)
}

#[inline(never)]
fn sign_p384<R: RngCore + CryptoRng>(
    stored: &[u8],
    prepared: &Prepared<'_>,
    rng: &mut R,
    out: &mut [u8],
) -> Result<usize> {
    use ecc::nist_p384 as c;
    let d = c::scalar(stored).ok_or(AsymError::StoredKeyInvalid)?;
    let mut sig = [0u8; c::MAX_DER_SIGNATURE];
    let n = c::sign(&d, prepared.digest()?, rng, &mut sig).ok_or(AsymError::SigningFailed)?;
    if !c::verify(&c::public(&d), prepared.digest()?, &sig[..n]) {
        return Err(AsymError::SigningFailed);
    }
    copy_out(&sig[..n], out)
}

#[inline(never)]
fn sign_ed25519(stored: &[u8], prepared: &Prepared<'_>, out: &mut [u8]) -> Result<usize> {
    let key = ed25519::signing_key(stored).ok_or(AsymError::StoredKeyInvalid)?;
    let input = prepared.ed25519()?;
    let sig = ed25519::sign(&key, input).ok_or(AsymError::SigningFailed)?;
    if !ed25519::verify(&key.verifying_key(), input, &sig) {
        return Err(AsymError::SigningFailed);
    }
    copy_out(&sig, out)
}

#[inline(never)]
fn sign_ml_dsa_cached(
    level: mldsa::Level,
    stored: &[u8],
    prepared: &Prepared<'_>,
    rnd: &[u8; 32],
    out: &mut [u8],
) -> Result<usize> {
    let mut cache = [mldsa::poly::ZERO; mldsa::MAX_K * mldsa::MAX_L];
    sign_ml_dsa(level, stored, prepared, rnd, out, &mut Matrix::Cached(&mut cache))
}

/// ML-DSA signing, then verification with the public key signing computed.
#[inline(never)]
fn sign_ml_dsa(
    level: mldsa::Level,
    stored: &[u8],
    prepared: &Prepared<'_>,
    rnd: &[u8; 32],
    out: &mut [u8],
    matrix: &mut Matrix<'_>,
) -> Result<usize> {
    let message = prepared.ml_dsa()?;
    let mut pk = [0u8; mldsa::MAX_PUBLIC_KEY];
    let n = mldsa::sign(level, seed32(stored)?, message, rnd, matrix, out, Some(&mut pk)).map_err(
        |e| match e {
            mldsa::Error::BufferTooSmall | mldsa::Error::PublicKeyLength => AsymError::BufferTooSmall,
            mldsa::Error::TooManyAttempts => AsymError::SigningFailed,
        },
    )?;
    match mldsa::verify(level, &pk[..level.public_key_len()], message, &out[..n]) {
        Ok(true) => Ok(n),
        Ok(false) | Err(_) => {
            out[..n].fill(0);
            Err(AsymError::SigningFailed)
        }
    }
}

/// Whether `signature` is a valid signature of `message` (given as `kind`) under algorithm
/// `alg` by the stored key. Malformed signatures are `Ok(false)`; errors are for requests that
/// are wrong whatever the signature (algorithm or message type not allowed, message length).
pub fn verify(
    spec: AsymSpec,
    stored: &[u8],
    alg: SigningAlg,
    kind: MessageKind,
    message: &[u8],
    signature: &[u8],
) -> Result<bool> {
    let prepared = prepare(spec, alg, kind, message)?;
    match spec {
        AsymSpec::EccNistP256 => {
            let digest: [u8; 32] = exact(prepared.digest()?)?;
            Ok(p256_key(stored)?.public_key().verify_digest(&digest, signature))
        }
        AsymSpec::EccSecgP256k1 => {
            use ecc::secp256k1 as c;
            let d = c::scalar(stored).ok_or(AsymError::StoredKeyInvalid)?;
            Ok(c::verify(&c::public(&d), prepared.digest()?, signature))
        }
        AsymSpec::EccNistP384 => {
            use ecc::nist_p384 as c;
            let d = c::scalar(stored).ok_or(AsymError::StoredKeyInvalid)?;
            Ok(c::verify(&c::public(&d), prepared.digest()?, signature))
        }
        AsymSpec::EccNistEdwards25519 => {
            let key = ed25519::signing_key(stored).ok_or(AsymError::StoredKeyInvalid)?;
            Ok(ed25519::verify(&key.verifying_key(), prepared.ed25519()?, signature))
        }
        AsymSpec::MlDsa44 | AsymSpec::MlDsa65 | AsymSpec::MlDsa87 => {
            let level = spec.ml_dsa().ok_or(AsymError::OperationNotForSpec)?;
            let mut pk = [0u8; mldsa::MAX_PUBLIC_KEY];
            let n =
                mldsa::public_key(level, seed32(stored)?, &mut pk).map_err(|_| AsymError::BufferTooSmall)?;
            mldsa::verify(level, &pk[..n], prepared.ml_dsa()?, signature)
                .map_err(|_| AsymError::BufferTooSmall)
        }
        AsymSpec::MlKem512 | AsymSpec::MlKem768 | AsymSpec::MlKem1024 => Err(AsymError::OperationNotForSpec),
    }
}

/// The peer point of an EC SubjectPublicKeyInfo on the curve named by `alg`.
fn peer_point<'a>(alg: &[u8], peer_spki: &'a [u8], point_len: usize) -> Result<&'a [u8]> {
    let (curve, point) = der::read_ec_spki(peer_spki).map_err(|e| match e {
        der::SpkiError::Malformed => AsymError::PeerKeyMalformed,
        der::SpkiError::NotEc => AsymError::PeerKeyNotEc,
    })?;
    if curve != der::curve_oid(alg) {
        return Err(AsymError::PeerKeyWrongCurve);
    }
    let coordinate = (point_len - 1) / 2;
    match (point.first(), point.len()) {
        (Some(0x00), 1) => Err(AsymError::PeerKeyIdentity),
        (Some(0x04), n) if n == point_len => Ok(point),
        (Some(0x02 | 0x03), n) if n == coordinate + 1 => Ok(point),
        _ => Err(AsymError::PeerKeyMalformed),
    }
}

/// ECDH (KMS DeriveSharedSecret, algorithm ECDH): the x-coordinate of d·Q for the stored key d
/// and the peer's DER SubjectPublicKeyInfo Q, written into `out` (at least
/// [`AsymSpec::shared_secret_len`] bytes); returns the length. The peer key must be an
/// id-ecPublicKey on the same named curve, uncompressed or compressed, on the curve and not the
/// identity; each failure has its own [`AsymError`].
pub fn derive_shared_secret(
    spec: AsymSpec,
    stored: &[u8],
    peer_spki: &[u8],
    out: &mut [u8],
) -> Result<usize> {
    match spec {
        AsymSpec::EccNistP256 => ecdh_p256(stored, peer_spki, out),
        AsymSpec::EccSecgP256k1 => ecdh_secp256k1(stored, peer_spki, out),
        AsymSpec::EccNistP384 => ecdh_p384(stored, peer_spki, out),
        AsymSpec::EccNistEdwards25519
        | AsymSpec::MlDsa44
        | AsymSpec::MlDsa65
        | AsymSpec::MlDsa87
        | AsymSpec::MlKem512
        | AsymSpec::MlKem768
        | AsymSpec::MlKem1024 => Err(AsymError::OperationNotForSpec),
    }
}

#[inline(never)]
fn ecdh_p256(stored: &[u8], peer_spki: &[u8], out: &mut [u8]) -> Result<usize> {
    let point = peer_point(der::ALG_P256, peer_spki, pkms_p256::SEC1_UNCOMPRESSED_LEN)?;
    let peer = pkms_p256::PublicKey::from_sec1_bytes(point).map_err(|_| AsymError::PeerKeyNotOnCurve)?;
    let secret = p256_key(stored)?.diffie_hellman(&peer).map_err(|_| AsymError::PeerKeyNotOnCurve)?;
    copy_out(&secret[..], out)
}

#[inline(never)]
fn ecdh_secp256k1(stored: &[u8], peer_spki: &[u8], out: &mut [u8]) -> Result<usize> {
    use ecc::secp256k1 as c;
    let point = peer_point(der::ALG_SECP256K1, peer_spki, c::POINT_LEN)?;
    let peer = c::decode_point(point).ok_or(AsymError::PeerKeyNotOnCurve)?;
    let d = c::scalar(stored).ok_or(AsymError::StoredKeyInvalid)?;
    c::ecdh(&d, &peer, out).ok_or(AsymError::BufferTooSmall)
}

#[inline(never)]
fn ecdh_p384(stored: &[u8], peer_spki: &[u8], out: &mut [u8]) -> Result<usize> {
    use ecc::nist_p384 as c;
    let point = peer_point(der::ALG_P384, peer_spki, c::POINT_LEN)?;
    let peer = c::decode_point(point).ok_or(AsymError::PeerKeyNotOnCurve)?;
    let d = c::scalar(stored).ok_or(AsymError::StoredKeyInvalid)?;
    c::ecdh(&d, &peer, out).ok_or(AsymError::BufferTooSmall)
}

/// ML-KEM Encapsulate against the stored key with 32 bytes from `rng`: writes the ciphertext
/// into `ciphertext` (at least [`AsymSpec::ciphertext_len`] bytes) and the 32-byte shared secret
/// into `shared`; returns the ciphertext length.
pub fn encapsulate<R: RngCore + CryptoRng>(
    spec: AsymSpec,
    stored: &[u8],
    rng: &mut R,
    ciphertext: &mut [u8],
    shared: &mut [u8; KEM_SHARED_SECRET_LEN],
) -> Result<usize> {
    let level = spec.ml_kem().ok_or(AsymError::OperationNotForSpec)?;
    let mut m = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut m[..]);
    mlkem::encapsulate(level, seed64(stored)?, &m, ciphertext, shared).map_err(|e| match e {
        mlkem::Error::BufferTooSmall => AsymError::BufferTooSmall,
        mlkem::Error::CiphertextLength => AsymError::CiphertextLength,
    })
}

/// ML-KEM Decapsulate of `ciphertext` with the stored key into `shared`. A ciphertext of the
/// right length that was not made for this key gives ML-KEM's implicit-rejection secret (no
/// error, constant time); a wrong length is [`AsymError::CiphertextLength`].
pub fn decapsulate(
    spec: AsymSpec,
    stored: &[u8],
    ciphertext: &[u8],
    shared: &mut [u8; KEM_SHARED_SECRET_LEN],
) -> Result<()> {
    let level = spec.ml_kem().ok_or(AsymError::OperationNotForSpec)?;
    mlkem::decapsulate(level, seed64(stored)?, ciphertext, shared).map_err(|e| match e {
        mlkem::Error::BufferTooSmall => AsymError::BufferTooSmall,
        mlkem::Error::CiphertextLength => AsymError::CiphertextLength,
    })
}

/// The private key as PKCS#8 DER (RFC 5958) into `out` (at least
/// [`AsymSpec::private_key_pkcs8_len`] bytes); returns the length. EC keys are RFC 5915
/// ECPrivateKey with the public key, Ed25519 is RFC 8410, ML-DSA and ML-KEM the seed-only form.
/// This is the plaintext private key of GenerateDataKeyPair; the caller zeroizes `out`.
pub fn private_key_pkcs8(spec: AsymSpec, stored: &[u8], out: &mut [u8]) -> Result<usize> {
    let written = match spec {
        AsymSpec::EccNistP256 => {
            let key = p256_key(stored)?;
            let point = key.public_key_sec1_uncompressed();
            der::write_pkcs8(
                der::ALG_P256,
                &der::PrivateKey::Ec { scalar: &key.to_bytes()[..], point: &point },
                out,
            )
        }
        AsymSpec::EccSecgP256k1 => {
            let d = ecc::secp256k1::scalar(stored).ok_or(AsymError::StoredKeyInvalid)?;
            let point = ecc::secp256k1::point_bytes(&ecc::secp256k1::public(&d));
            der::write_pkcs8(der::ALG_SECP256K1, &der::PrivateKey::Ec { scalar: stored, point: &point }, out)
        }
        AsymSpec::EccNistP384 => {
            let d = ecc::nist_p384::scalar(stored).ok_or(AsymError::StoredKeyInvalid)?;
            let point = ecc::nist_p384::point_bytes(&ecc::nist_p384::public(&d));
            der::write_pkcs8(der::ALG_P384, &der::PrivateKey::Ec { scalar: stored, point: &point }, out)
        }
        AsymSpec::EccNistEdwards25519 => {
            der::write_pkcs8(der::ALG_ED25519, &der::PrivateKey::Ed25519 { seed: seed32(stored)? }, out)
        }
        AsymSpec::MlDsa44 | AsymSpec::MlDsa65 | AsymSpec::MlDsa87 => {
            let level = spec.ml_dsa().ok_or(AsymError::OperationNotForSpec)?;
            let alg = der::alg_ml_dsa(ml_dsa_oid(level));
            der::write_pkcs8(&alg, &der::PrivateKey::Seed { seed: seed32(stored)? }, out)
        }
        AsymSpec::MlKem512 | AsymSpec::MlKem768 | AsymSpec::MlKem1024 => {
            let level = spec.ml_kem().ok_or(AsymError::OperationNotForSpec)?;
            let alg = der::alg_ml_kem(ml_kem_oid(level));
            der::write_pkcs8(&alg, &der::PrivateKey::Seed { seed: seed64(stored)? }, out)
        }
    };
    written.ok_or(AsymError::BufferTooSmall)
}

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod wycheproof_vectors;
