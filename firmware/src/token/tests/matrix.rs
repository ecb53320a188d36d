//! Every (key spec × key usage × operation): a mismatch is InvalidKeyUsage; a match is not.

use super::*;
use crate::crypto::asym::{self, AsymSpec};
use pkms_protocol::{
    DataKeyPairSpec, EncapsulationAlgorithm, KeyAgreementAlgorithm, KeyUsage, MacAlgorithm, MessageType,
    SigningAlgorithm,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Encrypt,
    Decrypt,
    ReEncryptTo,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    Sign,
    Verify,
    GetPublicKey,
    GenerateMac,
    VerifyMac,
    DeriveSharedSecret,
    Encapsulate,
    Decapsulate,
    GenerateDataKeyPair,
}

const OPS: [Op; 14] = [
    Op::Encrypt,
    Op::Decrypt,
    Op::ReEncryptTo,
    Op::GenerateDataKey,
    Op::GenerateDataKeyWithoutPlaintext,
    Op::Sign,
    Op::Verify,
    Op::GetPublicKey,
    Op::GenerateMac,
    Op::VerifyMac,
    Op::DeriveSharedSecret,
    Op::Encapsulate,
    Op::Decapsulate,
    Op::GenerateDataKeyPair,
];

/// What KMS allows: the usage decides (CreateKey only makes the usages a spec allows).
fn allowed(usage: KeyUsage, op: Op) -> bool {
    match usage {
        KeyUsage::EncryptDecrypt => matches!(
            op,
            Op::Encrypt
                | Op::Decrypt
                | Op::ReEncryptTo
                | Op::GenerateDataKey
                | Op::GenerateDataKeyWithoutPlaintext
                | Op::GenerateDataKeyPair
        ),
        KeyUsage::SignVerify => matches!(op, Op::Sign | Op::Verify | Op::GetPublicKey),
        KeyUsage::GenerateVerifyMac => matches!(op, Op::GenerateMac | Op::VerifyMac),
        KeyUsage::KeyAgreement => matches!(op, Op::DeriveSharedSecret | Op::GetPublicKey),
        KeyUsage::EncapsulateDecapsulate => {
            matches!(op, Op::Encapsulate | Op::Decapsulate | Op::GetPublicKey)
        }
    }
}

fn mac_alg(spec: KeySpec) -> MacAlgorithm {
    match spec {
        KeySpec::Hmac384 => MacAlgorithm::HmacSha384,
        KeySpec::Hmac512 => MacAlgorithm::HmacSha512,
        KeySpec::Hmac256
        | KeySpec::SymmetricDefault
        | KeySpec::EccNistP256
        | KeySpec::EccSecgP256k1
        | KeySpec::EccNistP384
        | KeySpec::EccNistEdwards25519
        | KeySpec::MlDsa44
        | KeySpec::MlDsa65
        | KeySpec::MlDsa87
        | KeySpec::MlKem512
        | KeySpec::MlKem768
        | KeySpec::MlKem1024 => MacAlgorithm::HmacSha256,
    }
}

/// A signing algorithm the spec has (ECDSA_SHA_256 for specs that sign nothing).
fn signing_alg(spec: KeySpec) -> SigningAlgorithm {
    spec.signing_algorithms().first().copied().unwrap_or(SigningAlgorithm::EcdsaSha256)
}

/// A valid peer public key on the key's curve (a P-256 one for keys without a curve).
fn peer_key(spec: KeySpec) -> Vec<u8> {
    let asym = match AsymSpec::of(spec) {
        Some(a @ (AsymSpec::EccNistP256 | AsymSpec::EccSecgP256k1 | AsymSpec::EccNistP384)) => a,
        Some(
            AsymSpec::EccNistEdwards25519
            | AsymSpec::MlDsa44
            | AsymSpec::MlDsa65
            | AsymSpec::MlDsa87
            | AsymSpec::MlKem512
            | AsymSpec::MlKem768
            | AsymSpec::MlKem1024,
        )
        | None => AsymSpec::EccNistP256,
    };
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let mut stored = [0u8; asym::MAX_STORED];
    let n = asym::generate(asym, &mut rng, &mut stored).unwrap();
    let mut spki = [0u8; asym::MAX_PUBLIC_KEY_DER];
    let m = asym::public_key_der(asym, &stored[..n], &mut spki).unwrap();
    spki[..m].to_vec()
}

/// A blob whose header names `key` (version 1); its tag is wrong, so a token that lets the
/// key through the usage check answers InvalidCiphertext instead.
fn blob_naming(key: &KeyId) -> Vec<u8> {
    let header = pkms_protocol::blob::BlobHeader { key_id: *key, key_version: 1, nonce: [0; 12] };
    let mut b = header.to_bytes().to_vec();
    b.extend_from_slice(&[0u8; 20]);
    b
}

fn run(h: &mut Harness, op: Op, key: &KeyId, spec: KeySpec, sym: &KeyId) -> Result<(), ErrorCode> {
    let k = s(key);
    let blob = blob_naming(key);
    let sym_blob = h.encrypt(&s(sym), b"x", &[]);
    let peer = peer_key(spec);
    let ciphertext = std::vec![0u8; AsymSpec::of(spec).and_then(|a| a.ciphertext_len()).unwrap_or(768)];
    let req = match op {
        Op::Encrypt => Request::Encrypt(pkms_protocol::request::Encrypt {
            key_id: &k,
            plaintext: b"x",
            encryption_context: ctx(&[]),
        }),
        Op::Decrypt => Request::Decrypt(pkms_protocol::request::Decrypt {
            ciphertext_blob: &blob,
            encryption_context: ctx(&[]),
            key_id: None,
        }),
        Op::ReEncryptTo => Request::ReEncrypt(pkms_protocol::request::ReEncrypt {
            ciphertext_blob: &sym_blob,
            source_encryption_context: ctx(&[]),
            source_key_id: None,
            destination_key_id: &k,
            destination_encryption_context: ctx(&[]),
        }),
        Op::GenerateDataKey => Request::GenerateDataKey(pkms_protocol::request::GenerateDataKey {
            key_id: &k,
            encryption_context: ctx(&[]),
            key_spec: Some(pkms_protocol::DataKeySpec::Aes256),
            number_of_bytes: None,
        }),
        Op::GenerateDataKeyWithoutPlaintext => Request::GenerateDataKeyWithoutPlaintext(
            pkms_protocol::request::GenerateDataKeyWithoutPlaintext {
                key_id: &k,
                encryption_context: ctx(&[]),
                key_spec: Some(pkms_protocol::DataKeySpec::Aes256),
                number_of_bytes: None,
            },
        ),
        Op::Sign => Request::Sign(pkms_protocol::request::Sign {
            key_id: &k,
            message: b"m",
            message_type: MessageType::Raw,
            signing_algorithm: signing_alg(spec),
        }),
        Op::Verify => Request::Verify(pkms_protocol::request::Verify {
            key_id: &k,
            message: b"m",
            message_type: MessageType::Raw,
            signature: b"\x30\x06\x02\x01\x01\x02\x01\x01",
            signing_algorithm: signing_alg(spec),
            key_version: None,
        }),
        Op::GetPublicKey => {
            Request::GetPublicKey(pkms_protocol::request::GetPublicKey { key_id: &k, key_version: None })
        }
        Op::GenerateMac => Request::GenerateMac(pkms_protocol::request::GenerateMac {
            key_id: &k,
            message: b"m",
            mac_algorithm: mac_alg(spec),
        }),
        Op::VerifyMac => Request::VerifyMac(pkms_protocol::request::VerifyMac {
            key_id: &k,
            message: b"m",
            mac_algorithm: mac_alg(spec),
            mac: &[0; 32],
            key_version: None,
        }),
        Op::DeriveSharedSecret => Request::DeriveSharedSecret(pkms_protocol::request::DeriveSharedSecret {
            key_id: &k,
            key_agreement_algorithm: KeyAgreementAlgorithm::Ecdh,
            public_key: &peer,
        }),
        Op::Encapsulate => Request::Encapsulate(pkms_protocol::request::Encapsulate {
            key_id: &k,
            encapsulation_algorithm: EncapsulationAlgorithm::MlKem,
        }),
        Op::Decapsulate => Request::Decapsulate(pkms_protocol::request::Decapsulate {
            key_id: &k,
            shared_secret_ciphertext_blob: &ciphertext,
            encapsulation_algorithm: EncapsulationAlgorithm::MlKem,
            key_version: None,
        }),
        Op::GenerateDataKeyPair => {
            Request::GenerateDataKeyPair(pkms_protocol::request::GenerateDataKeyPair {
                key_id: &k,
                encryption_context: ctx(&[]),
                key_pair_spec: DataKeyPairSpec::EccNistEdwards25519,
            })
        }
    };
    h.call(req).get().map(|_| ()).map_err(|e| e.code)
}

#[test]
fn every_spec_usage_operation_mismatch_is_invalid_key_usage() {
    let mut h = Harness::new();
    let sym = h.create(KeySpec::SymmetricDefault);
    let mut checked = 0;
    let mut combinations = 0;
    for &spec in KeySpec::ALL {
        for &usage in spec.allowed_usages() {
            combinations += 1;
            let r = h.ok(Request::CreateKey(pkms_protocol::request::CreateKey {
                key_spec: spec,
                key_usage: Some(usage),
                description: "",
                tags: Tags::new(),
                user_presence_required: false,
            }));
            let Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata: m })) = r.get()
            else {
                panic!("{spec} {usage}")
            };
            let key = m.key_id;
            for op in OPS {
                let got = run(&mut h, op, &key, spec, &sym);
                if allowed(usage, op) {
                    assert_ne!(got, Err(ErrorCode::InvalidKeyUsage), "{spec} {usage} {op:?}");
                    // Allowed operations either work or fail on the deliberately bad input.
                    let expected_failure = match op {
                        Op::Decrypt => Some(ErrorCode::InvalidCiphertext),
                        Op::Verify => Some(ErrorCode::InvalidSignature),
                        Op::VerifyMac => Some(ErrorCode::InvalidMac),
                        Op::Encrypt
                        | Op::ReEncryptTo
                        | Op::GenerateDataKey
                        | Op::GenerateDataKeyWithoutPlaintext
                        | Op::Sign
                        | Op::GetPublicKey
                        | Op::GenerateMac
                        | Op::DeriveSharedSecret
                        | Op::Encapsulate
                        | Op::Decapsulate
                        | Op::GenerateDataKeyPair => None,
                    };
                    assert_eq!(got.err(), expected_failure, "{spec} {usage} {op:?}");
                } else {
                    assert_eq!(got, Err(ErrorCode::InvalidKeyUsage), "{spec} {usage} {op:?}");
                }
                checked += 1;
            }
        }
    }
    // SYMMETRIC_DEFAULT, 3 HMAC, 3 curves × 2 usages, Ed25519, 3 ML-DSA, 3 ML-KEM.
    assert_eq!(combinations, 1 + 3 + 3 * 2 + 1 + 3 + 3);
    assert_eq!(checked, combinations * OPS.len());
}
