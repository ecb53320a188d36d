//! What the token's cryptography leaves on the stack: after each call that handles a PIN, an
//! HMAC key or a signing key, the stack its frames used holds nothing but zeros.
//!
//! The test paints the stack below its own frame with a pattern, makes the call, and reads the
//! painted region back: every byte must be the pattern (never reached) or zero (wiped). Allowed
//! besides: the wrapping functions' own frames at the top of the region (pointers, lengths), and
//! the wiper's own call frames just below the area it zeroes (return addresses); the call itself
//! must not have gone deeper than the wiped area. Reading the dead stack needs raw pointers,
//! hence `unsafe` in this test only.

use pkms_firmware::auth::pin;
use pkms_firmware::crypto::asym::{self, AsymSpec, MessageKind, SigningAlg};
use pkms_firmware::crypto::wipe::{wiped_to, StackDepth, LATTICE_STACK_WIPE_BYTES, STACK_WIPE_BYTES};
use pkms_firmware::crypto::{mac, signing};
use pkms_protocol::MacAlgorithm;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// How much stack is painted and read back.
const PAINTED: usize = 4 * STACK_WIPE_BYTES;
/// The frames of the wrapping functions (and of this test's reader) at the top of the painted
/// region: return addresses, saved registers, pointers.
const OWN_FRAMES: usize = 1024;
/// The wiper's own call frames below the area it zeroes.
const WIPER_FRAMES: usize = 512;
const PATTERN: u8 = 0xA5;

/// How much stack is painted for the deep calls (twice the deepest wipe).
const PAINTED_DEEP: usize = 2 * LATTICE_STACK_WIPE_BYTES;

/// Paints `N` bytes below the caller's frame; returns the lowest painted address.
#[inline(never)]
fn paint<const N: usize>() -> usize {
    let mut area = [PATTERN; N];
    std::hint::black_box(&mut area);
    area.as_ptr() as usize
}

/// Bytes of the `painted` region between the top `OWN_FRAMES` and the bottom of the `wiped`
/// area that are neither the pattern nor zero, and how deep (below the caller) the deepest
/// write went.
#[inline(never)]
fn leftovers(base: usize, painted: usize, wiped: usize) -> (usize, usize) {
    let mut left = 0;
    let mut deepest = 0;
    for i in 0..painted - OWN_FRAMES {
        // SAFETY: the region was this thread's stack (paint's local array) and still is; it is
        // only read, with volatile reads of bytes.
        let b = unsafe { std::ptr::read_volatile((base + i) as *const u8) };
        let depth = painted - i;
        if b != PATTERN && deepest == 0 {
            deepest = depth;
        }
        if b != PATTERN && b != 0 && depth <= wiped {
            left += 1;
        }
    }
    (left, deepest)
}

macro_rules! check {
    ($what:expr, $call:expr) => {
        check!($what, PAINTED, STACK_WIPE_BYTES, $call)
    };
    ($what:expr, $painted:expr, $wiped:expr, $call:expr) => {{
        let base = paint::<{ $painted }>();
        let result = $call;
        std::hint::black_box(&result);
        let (left, deepest) = leftovers(base, $painted, $wiped);
        assert!(deepest < $painted, "{}: the call reached the end of the painted stack", $what);
        assert_eq!(
            left, 0,
            "{}: {} bytes left on the stack (the call went {} bytes deep)",
            $what, left, deepest
        );
        assert!(
            deepest <= $wiped + WIPER_FRAMES,
            "{}: {} bytes deep, more than the wipe covers",
            $what,
            deepest
        );
        println!("{}: {} bytes deep", $what, deepest);
        result
    }};
}

#[test]
fn wiped_calls_leave_nothing_on_the_stack() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let salt = [9u8; 16];
    let mut hash = [0u8; 32];
    check!("PBKDF2", pin::stretch_into(b"246810", &salt, &mut hash));
    check!("PIN check", pin::matches(b"246810", &salt, &hash));
    check!("PIN stretch for nobody", pin::stretch_for_nothing(b"246810"));
    let message = vec![0x42u8; 4096];
    let mut tag = [0u8; 64];
    for alg in [MacAlgorithm::HmacSha256, MacAlgorithm::HmacSha384, MacAlgorithm::HmacSha512] {
        check!(format!("{alg:?}"), mac::compute(alg, &[0x17; 64], &message, &mut tag));
        check!(format!("{alg:?} verify"), mac::verify(alg, &[0x17; 64], &message, &tag[..32]));
    }
    let mut scalar = [0u8; 32];
    check!("P-256 key generation", signing::generate(&mut rng, &mut scalar));
    let digest = [0x33u8; 32];
    let mut sig = [0u8; signing::MAX_DER_SIGNATURE];
    check!("ECDSA signing", signing::sign(&mut rng, &scalar, &digest, &mut sig).unwrap());
    check!("ECDSA verifying", signing::verify(&scalar, &digest, &sig).unwrap());
    let mut spki = [0u8; signing::SPKI_LEN];
    check!("public key", signing::public_key_der(&scalar, &mut spki).unwrap());
}

/// The signing algorithm a test signs with for `spec`.
fn algorithm(spec: AsymSpec) -> Option<SigningAlg> {
    match spec {
        AsymSpec::EccNistP256 | AsymSpec::EccSecgP256k1 => Some(SigningAlg::EcdsaSha256),
        AsymSpec::EccNistP384 => Some(SigningAlg::EcdsaSha384),
        AsymSpec::EccNistEdwards25519 => Some(SigningAlg::Ed25519Sha512),
        AsymSpec::MlDsa44 | AsymSpec::MlDsa65 | AsymSpec::MlDsa87 => Some(SigningAlg::MlDsaShake256),
        AsymSpec::MlKem512 | AsymSpec::MlKem768 | AsymSpec::MlKem1024 => None,
    }
}

/// Every asymmetric spec's key generation, public key, signing and verifying, ECDH and ML-KEM,
/// wrapped as the token's operations wrap them (`wiped_to` with the spec's depth): nothing of
/// the secret keys, nonces or ML-DSA's expanded key stays in the stack they used, and no call
/// goes deeper than its spec's wipe.
#[test]
fn every_asymmetric_spec_wipes_as_deep_as_its_calls_go() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let message = b"what the token signs";
    for &spec in AsymSpec::ALL {
        let depth = spec.stack_depth();
        let wiped = depth.bytes();
        assert!(wiped <= LATTICE_STACK_WIPE_BYTES);
        let name = format!("{spec:?} ({depth:?})");
        let mut stored = [0u8; asym::MAX_STORED];
        let len = check!(format!("{name} key generation"), PAINTED_DEEP, wiped, {
            wiped_to(depth, || asym::generate(spec, &mut rng, &mut stored)).unwrap()
        });
        let stored = &stored[..len];
        let mut spki = vec![0u8; asym::MAX_PUBLIC_KEY_DER];
        let spki_len = check!(format!("{name} public key"), PAINTED_DEEP, wiped, {
            wiped_to(depth, || asym::public_key_der(spec, stored, &mut spki)).unwrap()
        });
        spki.truncate(spki_len);
        if let Some(alg) = algorithm(spec) {
            let mut sig = vec![0u8; asym::MAX_SIGNATURE];
            let n = check!(format!("{name} sign"), PAINTED_DEEP, wiped, {
                wiped_to(depth, || {
                    asym::sign(spec, stored, alg, MessageKind::Raw, message, &mut rng, &mut sig)
                })
                .unwrap()
            });
            check!(format!("{name} verify"), PAINTED_DEEP, wiped, {
                assert!(wiped_to(depth, || asym::verify(
                    spec,
                    stored,
                    alg,
                    MessageKind::Raw,
                    message,
                    &sig[..n]
                ))
                .unwrap());
            });
        }
        if let Some(ct_len) = spec.ciphertext_len() {
            let mut ciphertext = vec![0u8; ct_len];
            let mut sent = [0u8; asym::KEM_SHARED_SECRET_LEN];
            let mut got = [0u8; asym::KEM_SHARED_SECRET_LEN];
            check!(format!("{name} encapsulate"), PAINTED_DEEP, wiped, {
                wiped_to(depth, || asym::encapsulate(spec, stored, &mut rng, &mut ciphertext, &mut sent))
                    .unwrap()
            });
            check!(format!("{name} decapsulate"), PAINTED_DEEP, wiped, {
                wiped_to(depth, || asym::decapsulate(spec, stored, &ciphertext, &mut got)).unwrap()
            });
            assert_eq!(sent, got);
        }
        if matches!(spec, AsymSpec::EccNistP256 | AsymSpec::EccSecgP256k1 | AsymSpec::EccNistP384) {
            let mut secret = [0u8; asym::MAX_SHARED_SECRET];
            let peer = spki.clone();
            check!(format!("{name} ECDH"), PAINTED_DEEP, wiped, {
                wiped_to(depth, || asym::derive_shared_secret(spec, stored, &peer, &mut secret)).unwrap()
            });
        }
    }
    assert_eq!(StackDepth::Shallow.bytes(), STACK_WIPE_BYTES);
}
