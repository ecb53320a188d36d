//! The asymmetric key specs beyond P-256 (and P-256's ECDH): instructions and peak stack of key
//! generation, signing, verification, ECDH and ML-KEM, each through `pkms_firmware::crypto::asym`
//! (what the token's operations call: from the stored seed or scalar, signatures verified before
//! release) and, where a goal or another implementation's figure refers to the bare primitive,
//! the primitive too (a loaded key, no self-check). ML-DSA signing is averaged over many messages
//! (the number of rejection rounds varies), for both places the matrix can live. On-target
//! checks: every signature verifies and a changed message is refused, ECDH agrees both ways and
//! across the P-256 backends, ML-KEM round-trips and decapsulates a changed ciphertext to another
//! secret in exactly as many instructions.

use ed25519_dalek::{Signer, SigningKey};
use pkms_firmware::crypto::asym::{self, AsymSpec, MessageKind, MlDsaMatrix, SigningAlg};
use pkms_pq::mldsa::{self, Matrix, Message};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::crypto::{heapless_name, SEED};
use crate::report::{bench, check, stack};

/// One figure with its peak stack.
fn record(name: &str, instructions: u64, peak_stack: usize) {
    bench(name, instructions, 0);
    stack(name, peak_stack);
}

fn name(spec: &str, what: &str) -> heapless::String<48> {
    heapless_name(&[spec, ".", what])
}

/// Key generation as CreateKey does it: a fresh secret, then the public key as DER.
fn keygen(spec: AsymSpec, label: &str, rng: &mut ChaCha20Rng) -> ([u8; asym::MAX_STORED], usize) {
    let mut stored = [0u8; asym::MAX_STORED];
    let mut spki = [0u8; asym::MAX_PUBLIC_KEY_DER];
    let (n, s, ok) = crate::stack::measure(|| {
        asym::generate(spec, rng, &mut stored)
            .and_then(|len| asym::public_key_der(spec, &stored[..len], &mut spki))
    });
    record(&name(label, "keygen"), n, s);
    check(&name(label, "keygen.ok"), ok == Ok(spec.public_key_der_len()), "key and public key made");
    (stored, spec.stored_len())
}

/// Sign and Verify as the token runs them (stored key in, signature verified before release),
/// averaged over `rounds` messages; checks each verifies and a changed message does not. The
/// signing figure is `label.token_sign` (ML-DSA: `.cached` / `.streamed`, where `matrix` puts Â).
#[allow(clippy::too_many_arguments)]
fn token_sign_verify(
    spec: AsymSpec,
    label: &str,
    stored: &[u8],
    alg: SigningAlg,
    kind: MessageKind,
    rounds: u32,
    rng: &mut ChaCha20Rng,
    matrix: Option<MlDsaMatrix>,
) -> bool {
    let mut sig = [0u8; asym::MAX_SIGNATURE];
    let (mut sign_total, mut sign_stack, mut verify_total, mut verify_stack) = (0u64, 0usize, 0u64, 0usize);
    let mut all_ok = true;
    for round in 0..rounds {
        let mut message = [0u8; 64];
        rng.fill_bytes(&mut message);
        message[0] = round as u8;
        let len = match kind {
            MessageKind::Raw | MessageKind::ExternalMu => 64,
            MessageKind::Digest => 32,
        };
        let placement = matrix.unwrap_or(MlDsaMatrix::BUILD);
        let (n, s, signed) = crate::stack::measure(|| {
            asym::sign_with(spec, stored, alg, kind, &message[..len], rng, &mut sig, placement)
        });
        sign_total += n;
        sign_stack = sign_stack.max(s);
        let Ok(sig_len) = signed else {
            all_ok = false;
            continue;
        };
        let (n, s, verified) =
            crate::stack::measure(|| asym::verify(spec, stored, alg, kind, &message[..len], &sig[..sig_len]));
        verify_total += n;
        verify_stack = verify_stack.max(s);
        message[1] ^= 1;
        let refused = asym::verify(spec, stored, alg, kind, &message[..len], &sig[..sig_len]) == Ok(false);
        all_ok &= verified == Ok(true) && refused;
    }
    let rounds = u64::from(rounds.max(1));
    let sign_name = match matrix {
        None => "token_sign",
        Some(MlDsaMatrix::Cached) => "token_sign.cached",
        Some(MlDsaMatrix::Streamed) => "token_sign.streamed",
    };
    record(&name(label, sign_name), sign_total / rounds, sign_stack);
    record(&name(label, "token_verify"), verify_total / rounds, verify_stack);
    check(
        &name(label, "token_sign.verifies"),
        all_ok,
        "every signature verifies; a changed message is refused",
    )
}

/// ECDH through the API with the SubjectPublicKeyInfo of a second key, and the same secret the
/// other way round.
fn ecdh(spec: AsymSpec, label: &str, stored: &[u8], rng: &mut ChaCha20Rng) -> bool {
    let mut peer = [0u8; asym::MAX_STORED];
    let peer_len = asym::generate(spec, rng, &mut peer).unwrap_or(0);
    let mut peer_spki = [0u8; asym::MAX_PUBLIC_KEY_DER];
    let mut our_spki = [0u8; asym::MAX_PUBLIC_KEY_DER];
    let peer_spki_len = asym::public_key_der(spec, &peer[..peer_len], &mut peer_spki).unwrap_or(0);
    let our_spki_len = asym::public_key_der(spec, stored, &mut our_spki).unwrap_or(0);
    let mut ours = [0u8; asym::MAX_SHARED_SECRET];
    let mut theirs = [0u8; asym::MAX_SHARED_SECRET];
    let (n, s, a) = crate::stack::measure(|| {
        asym::derive_shared_secret(spec, stored, &peer_spki[..peer_spki_len], &mut ours)
    });
    record(&name(label, "ecdh"), n, s);
    let b = asym::derive_shared_secret(spec, &peer[..peer_len], &our_spki[..our_spki_len], &mut theirs);
    check(
        &name(label, "ecdh.agrees"),
        a.is_ok() && a == b && ours == theirs,
        "both sides derive the same secret",
    )
}

/// P-256 (the existing key spec) through the API: ECDH on the assembly backend, and ECDH of the
/// two backends compared.
fn p256(rng: &mut ChaCha20Rng) -> bool {
    let spec = AsymSpec::EccNistP256;
    let (stored, len) = keygen(spec, "p256", rng);
    let mut ok = ecdh(spec, "p256", &stored[..len], rng);
    ok &= token_sign_verify(
        spec,
        "p256",
        &stored[..len],
        SigningAlg::EcdsaSha256,
        MessageKind::Digest,
        4,
        rng,
        None,
    );
    for _ in 0..4 {
        let a = pkms_p256::SecretKey::random(rng);
        let b = pkms_p256::SecretKey::random(rng);
        let outs: heapless::Vec<[u8; 32], 2> = pkms_p256::Backend::ALL
            .iter()
            .filter_map(|&backend| a.diffie_hellman_with(backend, &b.public_key()).ok().map(|s| *s))
            .collect();
        let same = outs.len() == pkms_p256::Backend::ALL.len() && outs.windows(2).all(|w| w[0] == w[1]);
        ok &= check("p256.ecdh.backends_agree", same, "cortex-m4-asm and portable derive the same secret");
    }
    ok
}

fn ed25519(rng: &mut ChaCha20Rng) -> bool {
    let spec = AsymSpec::EccNistEdwards25519;
    let (stored, len) = keygen(spec, "ed25519", rng);
    let seed: [u8; 32] = stored[..32].try_into().unwrap_or([0; 32]);
    // The primitive with the key loaded (what other Ed25519 figures measure).
    let key = SigningKey::from_bytes(&seed);
    let message = [0x42u8; 64];
    let (n, s, sig) = crate::stack::measure(|| key.sign(&message));
    record("ed25519.sign", n, s);
    let public = key.verifying_key();
    let (n, s, ok) = crate::stack::measure(|| public.verify_strict(&message, &sig).is_ok());
    record("ed25519.verify", n, s);
    let mut all = check("ed25519.verify.ok", ok, "verify_strict accepts the signature");
    all &= token_sign_verify(
        spec,
        "ed25519",
        &stored[..len],
        SigningAlg::Ed25519Sha512,
        MessageKind::Raw,
        4,
        rng,
        None,
    );
    all &= token_sign_verify(
        spec,
        "ed25519ph",
        &stored[..len],
        SigningAlg::Ed25519PhSha512,
        MessageKind::Raw,
        4,
        rng,
        None,
    );
    all
}

/// secp256k1 and P-384: the primitive (hedged RFC 6979 ECDSA, low-S, DER, from the scalar) and
/// verification with the public key given, as well as the API's.
macro_rules! weierstrass {
    ($fn:ident, $krate:ident, $curve:ty, $digest:ty, $spec:expr, $label:literal, $alg:expr, $dlen:literal) => {
        fn $fn(rng: &mut ChaCha20Rng) -> bool {
            use ::$krate::ecdsa::signature::hazmat::PrehashVerifier;
            let spec = $spec;
            let (stored, len) = keygen(spec, $label, rng);
            let Ok(key) = ::$krate::ecdsa::SigningKey::from_slice(&stored[..len]) else {
                return check(concat!($label, ".key"), false, "stored scalar loads");
            };
            let digest = [0x5au8; $dlen];
            let mut added = [0u8; 32];
            rng.fill_bytes(&mut added);
            let (n, s, sig) = crate::stack::measure(|| {
                let (sig, _) = ecdsa::hazmat::sign_prehashed_rfc6979::<$curve, $digest>(
                    key.as_nonzero_scalar(),
                    &digest,
                    &added,
                );
                sig.normalize_s()
            });
            record(concat!($label, ".sign"), n, s);
            let public = *key.verifying_key();
            let (n, s, ok) = crate::stack::measure(|| public.verify_prehash(&digest, &sig).is_ok());
            record(concat!($label, ".verify"), n, s);
            let mut all = check(concat!($label, ".verify.ok"), ok, "the signature verifies");
            all &= token_sign_verify(spec, $label, &stored[..len], $alg, MessageKind::Raw, 4, rng, None);
            all &= ecdh(spec, $label, &stored[..len], rng);
            all
        }
    };
}

weierstrass!(
    secp256k1,
    k256,
    k256::Secp256k1,
    sha2_011::Sha256,
    AsymSpec::EccSecgP256k1,
    "secp256k1",
    SigningAlg::EcdsaSha256,
    32
);
weierstrass!(
    p384,
    p384,
    p384::NistP384,
    sha2_011::Sha384,
    AsymSpec::EccNistP384,
    "p384",
    SigningAlg::EcdsaSha384,
    48
);

/// What the first secp256k1 operation after boot pays once: building k256's table of multiples of
/// the generator (the firmware's `secp256k1-tables` feature, which this firmware has on, as the
/// QEMU board does). Measured apart so the key generation and signing rows are the steady state.
fn secp256k1_table() {
    let (n, s, _) = crate::stack::measure(|| k256::ProjectivePoint::mul_by_generator(&k256::Scalar::ONE));
    record("secp256k1.table", n, s);
}

/// Signing rounds averaged per ML-DSA figure (bare signer, each matrix placement).
const ML_DSA_ROUNDS: u32 = 100;
/// Sign-and-verify rounds averaged for the API figures (they add a verification each).
const ML_DSA_TOKEN_ROUNDS: u32 = 20;

/// Â for the cached-matrix signer (56 KiB: too big to sit beside the measured stack frames).
static mut MATRIX: [mldsa::poly::Poly; mldsa::MAX_K * mldsa::MAX_L] =
    [mldsa::poly::ZERO; mldsa::MAX_K * mldsa::MAX_L];

fn ml_dsa(rng: &mut ChaCha20Rng) -> bool {
    let mut all = true;
    for (spec, level, label) in [
        (AsymSpec::MlDsa44, mldsa::Level::MlDsa44, "mldsa44"),
        (AsymSpec::MlDsa65, mldsa::Level::MlDsa65, "mldsa65"),
        (AsymSpec::MlDsa87, mldsa::Level::MlDsa87, "mldsa87"),
    ] {
        let (stored, len) = keygen(spec, label, rng);
        let xi: [u8; 32] = stored[..32].try_into().unwrap_or([0; 32]);
        let mut pk = [0u8; mldsa::MAX_PUBLIC_KEY];
        let pk_len = mldsa::public_key(level, &xi, &mut pk).unwrap_or(0);
        let mut sig = [0u8; mldsa::MAX_SIGNATURE];
        let (mut streamed, mut streamed_stack, mut cached, mut cached_stack) = (0u64, 0usize, 0u64, 0usize);
        let (mut verify, mut verify_stack) = (0u64, 0usize);
        let mut ok = true;
        for round in 0..ML_DSA_ROUNDS {
            let mut message = [0u8; 64];
            let mut rnd = [0u8; 32];
            rng.fill_bytes(&mut message);
            rng.fill_bytes(&mut rnd);
            message[0] = round as u8;
            let msg = Message::Raw(&message);
            let (n, s, a) = crate::stack::measure(|| {
                mldsa::sign(level, &xi, msg, &rnd, &mut Matrix::Streamed, &mut sig, None)
            });
            streamed += n;
            streamed_stack = streamed_stack.max(s);
            let first = sig;
            // SAFETY: single-threaded; the only reference to MATRIX while it lives.
            #[allow(static_mut_refs)]
            let matrix = unsafe { &mut MATRIX };
            let (n, s, b) = crate::stack::measure(|| {
                mldsa::sign(level, &xi, msg, &rnd, &mut Matrix::Cached(matrix), &mut sig, None)
            });
            cached += n;
            cached_stack = cached_stack.max(s);
            let sig_len = level.signature_len();
            let (n, s, v) =
                crate::stack::measure(|| mldsa::verify(level, &pk[..pk_len], msg, &sig[..sig_len]));
            verify += n;
            verify_stack = verify_stack.max(s);
            ok &= a == Ok(sig_len) && b == Ok(sig_len) && first[..sig_len] == sig[..sig_len] && v == Ok(true);
        }
        let rounds = u64::from(ML_DSA_ROUNDS);
        record(&name(label, "sign.streamed"), streamed / rounds, streamed_stack);
        record(&name(label, "sign.cached"), cached / rounds, cached_stack);
        record(&name(label, "verify"), verify / rounds, verify_stack);
        all &= check(
            &name(label, "sign.identical"),
            ok,
            "streamed and cached matrix give the same signature; it verifies",
        );
        for matrix in [MlDsaMatrix::Cached, MlDsaMatrix::Streamed] {
            all &= token_sign_verify(
                spec,
                label,
                &stored[..len],
                SigningAlg::MlDsaShake256,
                MessageKind::Raw,
                ML_DSA_TOKEN_ROUNDS,
                rng,
                Some(matrix),
            );
        }
    }
    all
}

fn ml_kem(rng: &mut ChaCha20Rng) -> bool {
    let mut all = true;
    for (spec, label) in [
        (AsymSpec::MlKem512, "mlkem512"),
        (AsymSpec::MlKem768, "mlkem768"),
        (AsymSpec::MlKem1024, "mlkem1024"),
    ] {
        let (stored, len) = keygen(spec, label, rng);
        let stored = &stored[..len];
        let mut ct = [0u8; asym::MAX_CIPHERTEXT];
        let mut sent = [0u8; 32];
        let (n, s, ct_len) =
            crate::stack::measure(|| asym::encapsulate(spec, stored, rng, &mut ct, &mut sent));
        record(&name(label, "encapsulate"), n, s);
        let ct_len = ct_len.unwrap_or(0);
        let mut got = [0u8; 32];
        let (n, s, r) = crate::stack::measure(|| asym::decapsulate(spec, stored, &ct[..ct_len], &mut got));
        record(&name(label, "decapsulate"), n, s);
        all &= check(
            &name(label, "roundtrip"),
            r.is_ok() && got == sent,
            "decapsulation gives the encapsulated secret",
        );
        ct[ct_len / 2] ^= 1;
        let mut rejected = [0u8; 32];
        let (m, _, r) =
            crate::stack::measure(|| asym::decapsulate(spec, stored, &ct[..ct_len], &mut rejected));
        all &= check(
            &name(label, "implicit_rejection"),
            r.is_ok() && rejected != sent && m == n,
            "a changed ciphertext gives another secret, in exactly as many instructions",
        );
    }
    all
}

/// Runs every figure and check; returns whether every check passed.
pub fn run() -> bool {
    let mut rng = ChaCha20Rng::from_seed(SEED);
    let mut ok = p256(&mut rng);
    ok &= ed25519(&mut rng);
    secp256k1_table();
    ok &= secp256k1(&mut rng);
    ok &= p384(&mut rng);
    ok &= ml_dsa(&mut rng);
    ok &= ml_kem(&mut rng);
    ok
}
