//! The asymmetric key specs through the token's wire interface, checked by an independent
//! implementation (python `cryptography`, through crypto::asym's checker script): CreateKey's
//! usages, GetPublicKey, Sign/Verify with every algorithm and message type, rotation,
//! DeriveSharedSecret, Encapsulate/Decapsulate and GenerateDataKeyPair.

use super::*;
use crate::crypto::asym::tests::{hex, python, unhex};
use crate::crypto::asym::{AsymSpec, SigningAlg};
use pkms_protocol::{
    reply, request, DataKeyPairSpec, EncapsulationAlgorithm, KeyAgreementAlgorithm, KeyUsage, MessageType,
    SigningAlgorithm,
};
use sha2::{Digest, Sha256, Sha384, Sha512};

const SIGNING: [KeySpec; 7] = [
    KeySpec::EccNistP256,
    KeySpec::EccSecgP256k1,
    KeySpec::EccNistP384,
    KeySpec::EccNistEdwards25519,
    KeySpec::MlDsa44,
    KeySpec::MlDsa65,
    KeySpec::MlDsa87,
];

fn create(h: &mut Harness, spec: KeySpec, usage: Option<KeyUsage>) -> Result<KeyId, ErrorCode> {
    let r = h.call(Request::CreateKey(request::CreateKey {
        key_spec: spec,
        key_usage: usage,
        description: "",
        tags: Tags::new(),
        user_presence_required: false,
    }));
    let result = match r.get() {
        Ok(Response::KeyMetadata(reply::KeyMetadata { key_metadata: m })) => {
            assert_eq!(m.key_spec, spec);
            Ok(m.key_id)
        }
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.code),
    };
    result
}

fn public_key(h: &mut Harness, key: &str, version: Option<u32>) -> Vec<u8> {
    let r = h.ok(Request::GetPublicKey(request::GetPublicKey { key_id: key, key_version: version }));
    let Ok(Response::PublicKey(reply::PublicKey { public_key, .. })) = r.get() else { panic!() };
    public_key.to_vec()
}

fn sign(
    h: &mut Harness,
    key: &str,
    message: &[u8],
    message_type: MessageType,
    alg: SigningAlgorithm,
) -> Result<Vec<u8>, ErrorCode> {
    let r =
        h.call(Request::Sign(request::Sign { key_id: key, message, message_type, signing_algorithm: alg }));
    let result = match r.get() {
        Ok(Response::Sign(reply::Sign { signature, .. })) => Ok(signature.to_vec()),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.code),
    };
    result
}

fn verify(
    h: &mut Harness,
    key: &str,
    message: &[u8],
    message_type: MessageType,
    alg: SigningAlgorithm,
    signature: &[u8],
    version: Option<u32>,
) -> Result<(), ErrorCode> {
    let r = h.call(Request::Verify(request::Verify {
        key_id: key,
        message,
        message_type,
        signature,
        signing_algorithm: alg,
        key_version: version,
    }));
    r.get().map(|_| ()).map_err(|e| e.code)
}

/// The DIGEST a signing algorithm takes for `message`, or ML-DSA's μ for EXTERNAL_MU.
fn prepared(alg: SigningAlgorithm, kind: MessageType, spki: &[u8], message: &[u8]) -> Vec<u8> {
    match (kind, alg) {
        (MessageType::Raw, _) => message.to_vec(),
        (MessageType::Digest, SigningAlgorithm::EcdsaSha256) => Sha256::digest(message).to_vec(),
        (MessageType::Digest, SigningAlgorithm::EcdsaSha384) => Sha384::digest(message).to_vec(),
        (MessageType::Digest, SigningAlgorithm::Ed25519PhSha512) => Sha512::digest(message).to_vec(),
        (MessageType::ExternalMu, SigningAlgorithm::MlDsaShake256) => {
            // μ = SHAKE256(SHAKE256(pk, 64) ‖ 0 ‖ 0 ‖ M). An ML-DSA SPKI is 22 bytes of header
            // (SEQUENCE, AlgorithmIdentifier, BIT STRING) before the public key.
            let level_pk = &spki[22..];
            let mut tr = [0u8; 64];
            pkms_pq::shake::shake256(&[level_pk], &mut tr);
            let mut mu = [0u8; 64];
            pkms_pq::shake::shake256(&[&tr, &[0, 0], message], &mut mu);
            mu.to_vec()
        }
        (MessageType::Digest | MessageType::ExternalMu, _) => panic!("{alg} does not take {kind}"),
    }
}

#[test]
fn create_key_takes_exactly_the_usages_kms_allows_for_each_spec() {
    let mut h = Harness::new();
    let usages = [
        KeyUsage::EncryptDecrypt,
        KeyUsage::SignVerify,
        KeyUsage::GenerateVerifyMac,
        KeyUsage::KeyAgreement,
        KeyUsage::EncapsulateDecapsulate,
    ];
    for &spec in KeySpec::ALL {
        for usage in usages {
            let allowed = match spec {
                KeySpec::SymmetricDefault => usage == KeyUsage::EncryptDecrypt,
                KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 | KeySpec::EccNistP384 => {
                    matches!(usage, KeyUsage::SignVerify | KeyUsage::KeyAgreement)
                }
                KeySpec::EccNistEdwards25519 | KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => {
                    usage == KeyUsage::SignVerify
                }
                KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
                    usage == KeyUsage::GenerateVerifyMac
                }
                KeySpec::MlKem512 | KeySpec::MlKem768 | KeySpec::MlKem1024 => {
                    usage == KeyUsage::EncapsulateDecapsulate
                }
            };
            let got = create(&mut h, spec, Some(usage));
            if allowed {
                assert!(got.is_ok(), "{spec} {usage}: {got:?}");
            } else {
                assert_eq!(got, Err(ErrorCode::Validation), "{spec} {usage}");
            }
        }
        // No usage given: the spec's first (SIGN_VERIFY for the ECC curves).
        assert!(create(&mut h, spec, None).is_ok(), "{spec}");
    }
}

/// Every signing spec, every algorithm and message type: signatures made on the token verify
/// with python `cryptography` against GetPublicKey's key (and fail for another message), verify
/// on the token, and a changed signature is InvalidSignature; the algorithm of another spec is
/// InvalidKeyUsage.
#[test]
fn signatures_of_every_spec_verify_with_python_cryptography() {
    let mut h = Harness::new();
    let message = b"release 1.2.3 of the thing".to_vec();
    let mut requests = String::new();
    for spec in SIGNING {
        let key = s(&create(&mut h, spec, Some(KeyUsage::SignVerify)).unwrap());
        let spki = public_key(&mut h, &key, None);
        let asym = AsymSpec::of(spec).unwrap();
        assert_eq!(spki.len(), asym.public_key_der_len(), "{spec}");
        requests += &std::format!("spki {} {}\n", spec, hex(&spki));
        for &alg in spec.signing_algorithms() {
            let kinds: &[MessageType] = match alg {
                SigningAlgorithm::EcdsaSha256 | SigningAlgorithm::EcdsaSha384 => {
                    &[MessageType::Raw, MessageType::Digest]
                }
                SigningAlgorithm::Ed25519Sha512 => &[MessageType::Raw],
                SigningAlgorithm::Ed25519PhSha512 => &[MessageType::Raw, MessageType::Digest],
                SigningAlgorithm::MlDsaShake256 => &[MessageType::Raw, MessageType::ExternalMu],
            };
            for &kind in kinds {
                let given = prepared(alg, kind, &spki, &message);
                let sig = sign(&mut h, &key, &given, kind, alg)
                    .unwrap_or_else(|e| panic!("{spec} {alg} {kind}: {e:?}"));
                assert!(sig.len() <= asym.max_signature_len());
                assert_eq!(
                    verify(&mut h, &key, &given, kind, alg, &sig, None),
                    Ok(()),
                    "{spec} {alg} {kind}"
                );
                let mut bad = sig.clone();
                let last = bad.len() - 1;
                bad[last] ^= 1;
                assert_eq!(
                    verify(&mut h, &key, &given, kind, alg, &bad, None),
                    Err(ErrorCode::InvalidSignature),
                    "{spec} {alg} {kind}"
                );
                // Python checks the message (the digest for DIGEST); μ stands for the message.
                let (checked, python_kind) = match kind {
                    MessageType::ExternalMu => (message.clone(), "RAW"),
                    MessageType::Raw => (given.clone(), "RAW"),
                    MessageType::Digest => (given.clone(), "DIGEST"),
                };
                let mut other = checked.clone();
                other[0] ^= 1;
                for (cmd, m) in [("verify", &checked), ("reject", &other)] {
                    requests += &std::format!(
                        "{cmd} {} {python_kind} {} {} {}\n",
                        SigningAlg::of(alg).as_str(),
                        hex(&spki),
                        hex(m),
                        hex(&sig)
                    );
                }
            }
        }
        // An algorithm of another spec, and EXTERNAL_MU outside ML-DSA.
        let foreign = match spec {
            KeySpec::EccNistP384 => SigningAlgorithm::EcdsaSha256,
            _ => SigningAlgorithm::EcdsaSha384,
        };
        assert_eq!(
            sign(&mut h, &key, &message, MessageType::Raw, foreign),
            Err(ErrorCode::InvalidKeyUsage),
            "{spec}"
        );
        if !matches!(spec, KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87) {
            let alg = spec.signing_algorithms()[0];
            assert_eq!(
                sign(&mut h, &key, &[0; 64], MessageType::ExternalMu, alg),
                Err(ErrorCode::Validation)
            );
        }
    }
    // ED25519_SHA_512 signs RAW only.
    let ed = s(&create(&mut h, KeySpec::EccNistEdwards25519, None).unwrap());
    assert_eq!(
        sign(&mut h, &ed, &[0; 64], MessageType::Digest, SigningAlgorithm::Ed25519Sha512),
        Err(ErrorCode::Validation)
    );
    let out = python(&requests);
    assert_eq!(out.len(), requests.lines().count());
    assert!(out.iter().all(|l| l == "ok"), "{out:?}");
}

/// After a rotation, older versions of the new specs keep verifying and decapsulating.
#[test]
fn older_versions_keep_verifying_and_decapsulating_after_rotation() {
    let mut h = Harness::new();
    let message = b"m".to_vec();
    for (spec, alg) in [
        (KeySpec::EccNistEdwards25519, SigningAlgorithm::Ed25519Sha512),
        (KeySpec::EccSecgP256k1, SigningAlgorithm::EcdsaSha256),
        (KeySpec::EccNistP384, SigningAlgorithm::EcdsaSha384),
        (KeySpec::MlDsa44, SigningAlgorithm::MlDsaShake256),
    ] {
        let key = s(&create(&mut h, spec, None).unwrap());
        let old_pub = public_key(&mut h, &key, None);
        let sig = sign(&mut h, &key, &message, MessageType::Raw, alg).unwrap();
        h.tag_signing_rotation(&key, "true");
        h.ok(Request::RotateKeyOnDemand(request::RotateKeyOnDemand { key_id: &key }));
        assert_ne!(public_key(&mut h, &key, None), old_pub, "{spec}");
        assert_eq!(public_key(&mut h, &key, Some(1)), old_pub, "{spec}");
        assert_eq!(verify(&mut h, &key, &message, MessageType::Raw, alg, &sig, Some(1)), Ok(()), "{spec}");
        assert_eq!(
            verify(&mut h, &key, &message, MessageType::Raw, alg, &sig, None),
            Err(ErrorCode::InvalidSignature),
            "{spec}"
        );
    }
    let kem = s(&create(&mut h, KeySpec::MlKem768, None).unwrap());
    let (ct, ss) = encapsulate(&mut h, &kem).unwrap();
    h.ok(Request::RotateKeyOnDemand(request::RotateKeyOnDemand { key_id: &kem }));
    assert_eq!(decapsulate(&mut h, &kem, &ct, Some(1)).unwrap(), ss);
    assert_ne!(decapsulate(&mut h, &kem, &ct, None).unwrap(), ss);
}

fn encapsulate(h: &mut Harness, key: &str) -> Result<(Vec<u8>, Vec<u8>), ErrorCode> {
    let r = h.call(Request::Encapsulate(request::Encapsulate {
        key_id: key,
        encapsulation_algorithm: EncapsulationAlgorithm::MlKem,
    }));
    let result = match r.get() {
        Ok(Response::Encapsulated(reply::Encapsulated {
            shared_secret,
            shared_secret_ciphertext_blob,
            ..
        })) => Ok((shared_secret_ciphertext_blob.to_vec(), shared_secret.to_vec())),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.code),
    };
    result
}

fn decapsulate(h: &mut Harness, key: &str, ct: &[u8], version: Option<u32>) -> Result<Vec<u8>, ErrorCode> {
    let r = h.call(Request::Decapsulate(request::Decapsulate {
        key_id: key,
        shared_secret_ciphertext_blob: ct,
        encapsulation_algorithm: EncapsulationAlgorithm::MlKem,
        key_version: version,
    }));
    let result = match r.get() {
        Ok(Response::Decapsulated(reply::Decapsulated { shared_secret, .. })) => Ok(shared_secret.to_vec()),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.code),
    };
    result
}

/// ML-KEM: python (768, 1024) or RustCrypto's `ml-kem` (512) encapsulates to GetPublicKey's key and the token decapsulates to the same
/// secret; the token's own encapsulation decapsulates; a changed ciphertext gives another secret
/// (implicit rejection), never an error; a wrong length is ValidationException.
#[test]
fn ml_kem_decapsulates_python_encapsulations_and_its_own() {
    let mut h = Harness::new();
    for spec in [KeySpec::MlKem768, KeySpec::MlKem1024] {
        let key = s(&create(&mut h, spec, Some(KeyUsage::EncapsulateDecapsulate)).unwrap());
        let spki = public_key(&mut h, &key, None);
        let out = python(&std::format!("encaps {}\n", hex(&spki)));
        let parts: Vec<&str> = out[0].split(' ').collect();
        assert_eq!(parts[0], "encaps");
        let (ct, ss) = (unhex(parts[1]), unhex(parts[2]));
        assert_eq!(decapsulate(&mut h, &key, &ct, None).unwrap(), ss, "{spec}");
        let (mine, secret) = encapsulate(&mut h, &key).unwrap();
        assert_eq!(secret.len(), 32);
        assert_eq!(decapsulate(&mut h, &key, &mine, None).unwrap(), secret, "{spec}");
        let mut changed = mine.clone();
        changed[5] ^= 0x40;
        let rejected = decapsulate(&mut h, &key, &changed, None).unwrap();
        assert_ne!(rejected, secret);
        assert_eq!(
            decapsulate(&mut h, &key, &changed, None).unwrap(),
            rejected,
            "implicit rejection is deterministic"
        );
        assert_eq!(decapsulate(&mut h, &key, &mine[1..], None), Err(ErrorCode::Validation));
    }
    // ML-KEM-512 (python `cryptography` 48 has none): RustCrypto's `ml-kem` reads GetPublicKey's
    // SPKI and encapsulates to it; the token decapsulates to the same secret, and its own
    // encapsulation round-trips.
    let key = s(&create(&mut h, KeySpec::MlKem512, None).unwrap());
    let spki = public_key(&mut h, &key, None);
    let ek =
        <ml_kem::EncapsulationKey<ml_kem::MlKem512> as ml_kem::pkcs8::DecodePublicKey>::from_public_key_der(
            &spki,
        )
        .expect("an ML-KEM-512 SubjectPublicKeyInfo");
    for m in [[0u8; 32], [0x5a; 32]] {
        let (ct, ss) = ek.encapsulate_deterministic(&m.into());
        assert_eq!(decapsulate(&mut h, &key, &ct, None).unwrap(), ss[..], "ML-KEM-512");
    }
    let (ct, ss) = encapsulate(&mut h, &key).unwrap();
    assert_eq!(decapsulate(&mut h, &key, &ct, None).unwrap(), ss);
}

fn derive(h: &mut Harness, key: &str, peer: &[u8]) -> Result<Vec<u8>, ErrorCode> {
    let r = h.call(Request::DeriveSharedSecret(request::DeriveSharedSecret {
        key_id: key,
        key_agreement_algorithm: KeyAgreementAlgorithm::Ecdh,
        public_key: peer,
    }));
    let result = match r.get() {
        Ok(Response::SharedSecret(reply::SharedSecret { shared_secret, .. })) => Ok(shared_secret.to_vec()),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.code),
    };
    result
}

/// DeriveSharedSecret equals python's ECDH with a fresh peer on each curve; a peer on another
/// curve is InvalidKeyUsage, a malformed one ValidationException; a SIGN_VERIFY key refuses.
#[test]
fn derive_shared_secret_equals_python_ecdh_on_each_curve() {
    let mut h = Harness::new();
    let mut peers = Vec::new();
    for spec in [KeySpec::EccNistP256, KeySpec::EccSecgP256k1, KeySpec::EccNistP384] {
        let key = s(&create(&mut h, spec, Some(KeyUsage::KeyAgreement)).unwrap());
        let spki = public_key(&mut h, &key, None);
        let out = python(&std::format!("ecdh {} {}\n", spec, hex(&spki)));
        let parts: Vec<&str> = out[0].split(' ').collect();
        assert_eq!(parts[0], "ecdh");
        let (peer, ss) = (unhex(parts[1]), unhex(parts[2]));
        assert_eq!(derive(&mut h, &key, &peer).unwrap(), ss, "{spec}");
        let mut bad = peer.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(derive(&mut h, &key, &bad), Err(ErrorCode::Validation), "{spec}: point off the curve");
        assert_eq!(derive(&mut h, &key, &peer[..10]), Err(ErrorCode::Validation), "{spec}: truncated");
        peers.push((key, peer));
        // Sign and Verify are not KEY_AGREEMENT operations.
        let alg = spec.signing_algorithms()[0];
        assert_eq!(
            sign(&mut h, &peers.last().unwrap().0, b"m", MessageType::Raw, alg),
            Err(ErrorCode::InvalidKeyUsage)
        );
    }
    // A peer of another curve.
    assert_eq!(derive(&mut h, &peers[0].0, &peers[2].1), Err(ErrorCode::InvalidKeyUsage));
    assert_eq!(derive(&mut h, &peers[2].0, &peers[1].1), Err(ErrorCode::InvalidKeyUsage));
    let signing = s(&create(&mut h, KeySpec::EccNistP256, Some(KeyUsage::SignVerify)).unwrap());
    assert_eq!(derive(&mut h, &signing, &peers[0].1), Err(ErrorCode::InvalidKeyUsage));
}

/// GenerateDataKeyPair: the PKCS#8 private key loads in python and matches the public key;
/// Decrypt of the blob (with the context) returns it; WithoutPlaintext returns none; a
/// non-symmetric key refuses.
#[test]
fn generate_data_key_pair_returns_a_matching_pair_sealed_under_the_symmetric_key() {
    let mut h = Harness::new();
    let sym = s(&h.create(KeySpec::SymmetricDefault));
    let mut requests = String::new();
    for &spec in DataKeyPairSpec::ALL {
        let r = h.ok(Request::GenerateDataKeyPair(request::GenerateDataKeyPair {
            key_id: &sym,
            encryption_context: ctx(&[("app", "t")]),
            key_pair_spec: spec,
        }));
        let Ok(Response::DataKeyPair(reply::DataKeyPair {
            private_key_ciphertext_blob,
            private_key_plaintext: Some(private),
            public_key,
            key_pair_spec,
            ..
        })) = r.get()
        else {
            panic!("{spec}")
        };
        assert_eq!(key_pair_spec, spec);
        let (blob, private, public) =
            (private_key_ciphertext_blob.to_vec(), private.to_vec(), public_key.to_vec());
        assert_eq!(h.decrypt(&blob, &[("app", "t")]).unwrap(), private, "{spec}");
        assert!(h.decrypt(&blob, &[("app", "u")]).is_err());
        // python `cryptography` 48 reads the ECC, Ed25519 and ML-KEM-768/1024 keys.
        if spec != DataKeyPairSpec::MlKem512 {
            requests += &std::format!("pkcs8 {} {} {}\n", spec.key_spec(), hex(&private), hex(&public));
        }
        let r = h.ok(Request::GenerateDataKeyPairWithoutPlaintext(
            request::GenerateDataKeyPairWithoutPlaintext {
                key_id: &sym,
                encryption_context: ctx(&[]),
                key_pair_spec: spec,
            },
        ));
        let Ok(Response::DataKeyPair(reply::DataKeyPair { private_key_plaintext: None, .. })) = r.get()
        else {
            panic!("{spec}")
        };
    }
    let out = python(&requests);
    assert_eq!(out.len(), requests.lines().count());
    assert!(out.iter().all(|l| l == "ok"), "{out:?}");
    let ed = s(&create(&mut h, KeySpec::EccNistEdwards25519, None).unwrap());
    assert_eq!(
        h.code(Request::GenerateDataKeyPair(request::GenerateDataKeyPair {
            key_id: &ed,
            encryption_context: ctx(&[]),
            key_pair_spec: DataKeyPairSpec::EccNistP256,
        })),
        ErrorCode::InvalidKeyUsage
    );
}
