//! Power-on self-tests: known-answer tests of every algorithm the token relies on, run once per
//! boot before the store is mounted (so no key is made, unwrapped or used by code that failed
//! them). A failure puts the token in its error state: only Hello, GetInfo and GetSelfTests
//! answer, and GetSelfTests names the failed test (see [`crate::token`]).
//!
//! | Test | What it checks |
//! |---|---|
//! | SHA-256 | the digest of `"abc"` (FIPS 180-2 B.1) |
//! | HMAC-SHA-256 | RFC 4231 test case 2 through [`crate::crypto::mac`]; a wrong tag refused |
//! | AES-256-GCM | NIST GCM test case 16 (60-byte message, 20-byte associated data) through [`crate::crypto::gcm`]: ciphertext and tag; it decrypts back; a tampered tag refused |
//! | ECDSA P-256 | RFC 6979 A.2.5's key with the active backend (the Cortex-M4 assembly on the boards): its public key, its deterministic low-S signature of `"sample"`, verified with that public key (pairwise consistency) |
//! | DRBG | ChaCha20 (both boards' generator) from an all-zero seed gives RFC 8439's keystream; the token's own generator gives two different, non-zero 32-byte outputs |
//!
//! The expected answers are a [`Kats`] value, so a test (or a build with the QEMU firmware's
//! `corrupt-kat` feature) can corrupt one and watch the token refuse to serve.

use pkms_p256::{Backend, PublicKey, SecretKey};
use pkms_protocol::{MacAlgorithm, SelfTest};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::crypto::gcm::Aes256Gcm;
use crate::crypto::mac;

/// The answers the self-tests expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kats {
    /// SHA-256 of `"abc"`.
    pub sha256: [u8; 32],
    /// HMAC-SHA-256 of RFC 4231 test case 2.
    pub hmac_sha256: [u8; 32],
    /// AES-256-GCM ciphertext of NIST test case 16.
    pub gcm_ciphertext: [u8; GCM_PLAINTEXT.len()],
    /// Its tag.
    pub gcm_tag: [u8; 16],
    /// The uncompressed public key of RFC 6979 A.2.5's scalar.
    pub ecdsa_public: [u8; 65],
    /// Its deterministic (no added randomness) low-S DER signature of SHA-256(`"sample"`).
    pub ecdsa_signature: [u8; 71],
    /// The first 32 bytes ChaCha20 gives from an all-zero seed.
    pub chacha20: [u8; 32],
}

/// The correct answers.
pub const KATS: Kats = Kats {
    sha256: [
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0,
        0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
    ],
    hmac_sha256: [
        0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a,
        0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
    ],
    gcm_ciphertext: [
        0x52, 0x2d, 0xc1, 0xf0, 0x99, 0x56, 0x7d, 0x07, 0xf4, 0x7f, 0x37, 0xa3, 0x2a, 0x84, 0x42, 0x7d, 0x64,
        0x3a, 0x8c, 0xdc, 0xbf, 0xe5, 0xc0, 0xc9, 0x75, 0x98, 0xa2, 0xbd, 0x25, 0x55, 0xd1, 0xaa, 0x8c, 0xb0,
        0x8e, 0x48, 0x59, 0x0d, 0xbb, 0x3d, 0xa7, 0xb0, 0x8b, 0x10, 0x56, 0x82, 0x88, 0x38, 0xc5, 0xf6, 0x1e,
        0x63, 0x93, 0xba, 0x7a, 0x0a, 0xbc, 0xc9, 0xf6, 0x62,
    ],
    gcm_tag: [0x76, 0xfc, 0x6e, 0xce, 0x0f, 0x4e, 0x17, 0x68, 0xcd, 0xdf, 0x88, 0x53, 0xbb, 0x2d, 0x55, 0x1b],
    ecdsa_public: [
        0x04, 0x60, 0xfe, 0xd4, 0xba, 0x25, 0x5a, 0x9d, 0x31, 0xc9, 0x61, 0xeb, 0x74, 0xc6, 0x35, 0x6d, 0x68,
        0xc0, 0x49, 0xb8, 0x92, 0x3b, 0x61, 0xfa, 0x6c, 0xe6, 0x69, 0x62, 0x2e, 0x60, 0xf2, 0x9f, 0xb6, 0x79,
        0x03, 0xfe, 0x10, 0x08, 0xb8, 0xbc, 0x99, 0xa4, 0x1a, 0xe9, 0xe9, 0x56, 0x28, 0xbc, 0x64, 0xf2, 0xf1,
        0xb2, 0x0c, 0x2d, 0x7e, 0x9f, 0x51, 0x77, 0xa3, 0xc2, 0x94, 0xd4, 0x46, 0x22, 0x99,
    ],
    ecdsa_signature: [
        0x30, 0x45, 0x02, 0x21, 0x00, 0xef, 0xd4, 0x8b, 0x2a, 0xac, 0xb6, 0xa8, 0xfd, 0x11, 0x40, 0xdd, 0x9c,
        0xd4, 0x5e, 0x81, 0xd6, 0x9d, 0x2c, 0x87, 0x7b, 0x56, 0xaa, 0xf9, 0x91, 0xc3, 0x4d, 0x0e, 0xa8, 0x4e,
        0xaf, 0x37, 0x16, 0x02, 0x20, 0x08, 0x34, 0xe3, 0x6a, 0xd2, 0x9a, 0x83, 0xbf, 0x2b, 0xc9, 0x38, 0x5e,
        0x49, 0x1d, 0x60, 0x99, 0xc8, 0xfd, 0xf9, 0xd1, 0xed, 0x67, 0xaa, 0x7e, 0xa5, 0xf5, 0x1f, 0x93, 0x78,
        0x28, 0x57, 0xa9,
    ],
    chacha20: [
        0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90, 0x40, 0x5d, 0x6a, 0xe5, 0x53, 0x86, 0xbd, 0x28, 0xbd,
        0xd2, 0x19, 0xb8, 0xa0, 0x8d, 0xed, 0x1a, 0xa8, 0x36, 0xef, 0xcc, 0x8b, 0x77, 0x0d, 0xc7,
    ],
};

impl Kats {
    /// These answers with one bit of `test`'s expected answer flipped: that test must fail.
    pub const fn corrupted(self, test: SelfTest) -> Kats {
        let mut k = self;
        match test {
            SelfTest::Sha256 => k.sha256[7] ^= 0x10,
            SelfTest::HmacSha256 => k.hmac_sha256[31] ^= 0x01,
            SelfTest::Aes256Gcm => k.gcm_tag[0] ^= 0x80,
            SelfTest::EcdsaP256 => k.ecdsa_signature[70] ^= 0x01,
            SelfTest::Drbg => k.chacha20[0] ^= 0x01,
        }
        k
    }
}

const HMAC_KEY: &[u8] = b"Jefe";
const HMAC_MESSAGE: &[u8] = b"what do ya want for nothing?";

const GCM_KEY: [u8; 32] = [
    0xfe, 0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c, 0x6d, 0x6a, 0x8f, 0x94, 0x67, 0x30, 0x83, 0x08, 0xfe,
    0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c, 0x6d, 0x6a, 0x8f, 0x94, 0x67, 0x30, 0x83, 0x08,
];
const GCM_PLAINTEXT: [u8; 60] = [
    0xd9, 0x31, 0x32, 0x25, 0xf8, 0x84, 0x06, 0xe5, 0xa5, 0x59, 0x09, 0xc5, 0xaf, 0xf5, 0x26, 0x9a, 0x86,
    0xa7, 0xa9, 0x53, 0x15, 0x34, 0xf7, 0xda, 0x2e, 0x4c, 0x30, 0x3d, 0x8a, 0x31, 0x8a, 0x72, 0x1c, 0x3c,
    0x0c, 0x95, 0x95, 0x68, 0x09, 0x53, 0x2f, 0xcf, 0x0e, 0x24, 0x49, 0xa6, 0xb5, 0x25, 0xb1, 0x6a, 0xed,
    0xf5, 0xaa, 0x0d, 0xe6, 0x57, 0xba, 0x63, 0x7b, 0x39,
];
const GCM_AAD: [u8; 20] = [
    0xfe, 0xed, 0xfa, 0xce, 0xde, 0xad, 0xbe, 0xef, 0xfe, 0xed, 0xfa, 0xce, 0xde, 0xad, 0xbe, 0xef, 0xab,
    0xad, 0xda, 0xd2,
];
const GCM_NONCE: [u8; 12] = [0xca, 0xfe, 0xba, 0xbe, 0xfa, 0xce, 0xdb, 0xad, 0xde, 0xca, 0xf8, 0x88];

/// RFC 6979 A.2.5's private key.
const ECDSA_SCALAR: [u8; 32] = [
    0xc9, 0xaf, 0xa9, 0xd8, 0x45, 0xba, 0x75, 0x16, 0x6b, 0x5c, 0x21, 0x57, 0x67, 0xb1, 0xd6, 0x93, 0x4e,
    0x50, 0xc3, 0xdb, 0x36, 0xe8, 0x9b, 0x12, 0x7b, 0x8a, 0x62, 0x2b, 0x12, 0x0f, 0x67, 0x21,
];
/// SHA-256(`"sample"`).
const ECDSA_DIGEST: [u8; 32] = [
    0xaf, 0x2b, 0xdb, 0xe1, 0xaa, 0x9b, 0x6e, 0xc1, 0xe2, 0xad, 0xe1, 0xd6, 0x94, 0xf4, 0x1f, 0xc7, 0x1a,
    0x83, 0x1d, 0x02, 0x68, 0xe9, 0x89, 0x15, 0x62, 0x11, 0x3d, 0x8a, 0x62, 0xad, 0xd1, 0xbf,
];

/// Runs every self-test in [`SelfTest::ALL`]'s order against `expected`, drawing from the
/// token's generator `rng` for the DRBG test (`None`: a board with no entropy, whose generator
/// must not be drawn from at all — the core refuses everything that needs it anyway; the
/// ChaCha20 known answer still runs); returns the first that fails.
pub fn run<R: RngCore>(expected: &Kats, rng: Option<&mut R>) -> Result<(), SelfTest> {
    let mut rng = rng;
    for test in SelfTest::ALL {
        let passed = match test {
            SelfTest::Sha256 | SelfTest::HmacSha256 | SelfTest::Aes256Gcm | SelfTest::EcdsaP256 => {
                known_answer(test, expected)
            }
            SelfTest::Drbg => drbg(expected, rng.as_deref_mut()),
        };
        if !passed {
            return Err(test);
        }
    }
    Ok(())
}

/// One of the known-answer tests that draw no randomness (all but the DRBG's).
fn known_answer(test: SelfTest, expected: &Kats) -> bool {
    #[cfg(all(fuzzing, feature = "std"))]
    if *expected == KATS {
        return fuzzing::first_answer(test, || compute_known_answer(test, expected));
    }
    compute_known_answer(test, expected)
}

fn compute_known_answer(test: SelfTest, expected: &Kats) -> bool {
    match test {
        SelfTest::Sha256 => sha256(expected),
        SelfTest::HmacSha256 => hmac_sha256(expected),
        SelfTest::Aes256Gcm => aes_256_gcm(expected),
        SelfTest::EcdsaP256 => ecdsa_p256(expected),
        // Draws from the token's generator: never memoised, never answered here.
        SelfTest::Drbg => false,
    }
}

/// Fuzz builds only (`cargo fuzz` sets `--cfg fuzzing`; the boards never have it): a fuzz target
/// boots a token for every input, and the P-256 known answer alone was half of each execution.
/// A known-answer test's result depends on nothing but the code and the expected answers, so it
/// is computed once per process for the real answers ([`KATS`]). The DRBG test still runs at
/// every boot: it draws from the token's generator, and skipping it would change what an input
/// does between its first and later runs.
#[cfg(all(fuzzing, feature = "std"))]
mod fuzzing {
    use std::sync::OnceLock;

    use pkms_protocol::SelfTest;

    static ANSWERS: [OnceLock<bool>; 4] = [const { OnceLock::new() }; 4];

    pub(super) fn first_answer(test: SelfTest, compute: impl FnOnce() -> bool) -> bool {
        let slot = match test {
            SelfTest::Sha256 => 0,
            SelfTest::HmacSha256 => 1,
            SelfTest::Aes256Gcm => 2,
            SelfTest::EcdsaP256 => 3,
            SelfTest::Drbg => return compute(),
        };
        *ANSWERS[slot].get_or_init(compute)
    }
}

fn sha256(k: &Kats) -> bool {
    let digest: [u8; 32] = Sha256::digest(b"abc").into();
    digest == k.sha256
}

fn hmac_sha256(k: &Kats) -> bool {
    let mut out = [0u8; 64];
    let n = mac::compute(MacAlgorithm::HmacSha256, HMAC_KEY, HMAC_MESSAGE, &mut out);
    let mut wrong = k.hmac_sha256;
    wrong[0] ^= 1;
    n == 32
        && out[..32] == k.hmac_sha256
        && mac::verify(MacAlgorithm::HmacSha256, HMAC_KEY, HMAC_MESSAGE, &k.hmac_sha256)
        && !mac::verify(MacAlgorithm::HmacSha256, HMAC_KEY, HMAC_MESSAGE, &wrong)
}

fn aes_256_gcm(k: &Kats) -> bool {
    let cipher = Aes256Gcm::new(&GCM_KEY);
    let mut buf = GCM_PLAINTEXT;
    let Ok(tag) = cipher.encrypt_in_place_detached(&GCM_NONCE, &GCM_AAD, &mut buf) else { return false };
    if buf != k.gcm_ciphertext || tag != k.gcm_tag {
        return false;
    }
    let mut tampered = tag;
    tampered[15] ^= 1;
    if cipher.decrypt_in_place_detached(&GCM_NONCE, &GCM_AAD, &mut buf, &tampered).is_ok() {
        return false;
    }
    cipher.decrypt_in_place_detached(&GCM_NONCE, &GCM_AAD, &mut buf, &tag).is_ok() && buf == GCM_PLAINTEXT
}

fn ecdsa_p256(k: &Kats) -> bool {
    let Ok(key) = SecretKey::from_bytes(&ECDSA_SCALAR) else { return false };
    let public: PublicKey = key.public_key();
    if public.to_sec1_uncompressed() != k.ecdsa_public {
        return false;
    }
    let Ok(signature) = key.sign_digest_with(Backend::ACTIVE, &ECDSA_DIGEST, &[]) else { return false };
    signature.as_bytes() == k.ecdsa_signature && public.verify_digest(&ECDSA_DIGEST, &k.ecdsa_signature)
}

fn drbg<R: RngCore>(k: &Kats, rng: Option<&mut R>) -> bool {
    let mut known = [0u8; 32];
    ChaCha20Rng::from_seed([0; 32]).fill_bytes(&mut known);
    if known != k.chacha20 {
        return false;
    }
    let Some(rng) = rng else { return true };
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    rng.fill_bytes(&mut a);
    rng.fill_bytes(&mut b);
    let ok = !bool::from(a.ct_eq(&b)) && a != [0; 32] && b != [0; 32];
    a.zeroize();
    b.zeroize();
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(7)
    }

    #[test]
    fn every_self_test_passes_with_the_correct_answers() {
        assert_eq!(run(&KATS, Some(&mut rng())), Ok(()));
    }

    /// The answers are not copied from the code under test: the GCM vector is the one the
    /// reference `aes-gcm` crate computes, the signature is RFC 6979's (s made low).
    #[test]
    fn the_expected_answers_agree_with_reference_implementations() {
        use aes_gcm::aead::{AeadInPlace, KeyInit};
        let reference = aes_gcm::Aes256Gcm::new((&GCM_KEY).into());
        let mut buf = GCM_PLAINTEXT;
        let tag = reference.encrypt_in_place_detached((&GCM_NONCE).into(), &GCM_AAD, &mut buf).unwrap();
        assert_eq!(buf, KATS.gcm_ciphertext);
        assert_eq!(tag[..], KATS.gcm_tag);
        let sk = p256::ecdsa::SigningKey::from_slice(&ECDSA_SCALAR).unwrap();
        assert_eq!(sk.verifying_key().to_encoded_point(false).as_bytes(), &KATS.ecdsa_public[..]);
        let sig = p256::ecdsa::Signature::from_der(&KATS.ecdsa_signature).unwrap();
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        sk.verifying_key().verify_prehash(&ECDSA_DIGEST, &sig).unwrap();
        assert_eq!(Sha256::digest(b"sample")[..], ECDSA_DIGEST);
    }

    #[test]
    fn each_corrupted_answer_fails_its_own_test_and_no_earlier_one() {
        for test in SelfTest::ALL {
            assert_eq!(run(&KATS.corrupted(test), Some(&mut rng())), Err(test), "{test:?}");
            assert_eq!(run::<ChaCha20Rng>(&KATS.corrupted(test), None), Err(test), "{test:?}, no generator");
        }
    }

    /// A generator stuck at one value fails the DRBG test even though ChaCha20 is sound.
    #[test]
    fn a_stuck_generator_fails_the_drbg_test() {
        struct Stuck;
        impl RngCore for Stuck {
            fn next_u32(&mut self) -> u32 {
                0x5a5a_5a5a
            }
            fn next_u64(&mut self) -> u64 {
                0x5a5a_5a5a_5a5a_5a5a
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                dest.fill(0x5a);
            }
            fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
                dest.fill(0x5a);
                Ok(())
            }
        }
        assert_eq!(run(&KATS, Some(&mut Stuck)), Err(SelfTest::Drbg));
        assert_eq!(run::<Stuck>(&KATS, None), Ok(()), "not drawn from without entropy");
    }
}
