//! Every (key spec × operation) pair: a mismatch is InvalidKeyUsage; a match is not.

use super::*;
use pkms_protocol::{MacAlgorithm, MessageType, SigningAlgorithm};

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
}

const OPS: [Op; 10] = [
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
];

fn allowed(spec: KeySpec, op: Op) -> bool {
    match spec {
        KeySpec::SymmetricDefault => matches!(
            op,
            Op::Encrypt
                | Op::Decrypt
                | Op::ReEncryptTo
                | Op::GenerateDataKey
                | Op::GenerateDataKeyWithoutPlaintext
        ),
        KeySpec::EccNistP256 => matches!(op, Op::Sign | Op::Verify | Op::GetPublicKey),
        _ => matches!(op, Op::GenerateMac | Op::VerifyMac),
    }
}

fn mac_alg(spec: KeySpec) -> MacAlgorithm {
    match spec {
        KeySpec::Hmac384 => MacAlgorithm::HmacSha384,
        KeySpec::Hmac512 => MacAlgorithm::HmacSha512,
        _ => MacAlgorithm::HmacSha256,
    }
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
            signing_algorithm: SigningAlgorithm::EcdsaSha256,
        }),
        Op::Verify => Request::Verify(pkms_protocol::request::Verify {
            key_id: &k,
            message: b"m",
            message_type: MessageType::Raw,
            signature: b"\x30\x06\x02\x01\x01\x02\x01\x01",
            signing_algorithm: SigningAlgorithm::EcdsaSha256,
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
    };
    h.call(req).get().map(|_| ()).map_err(|e| e.code)
}

#[test]
fn every_spec_operation_mismatch_is_invalid_key_usage() {
    let mut h = Harness::new();
    let sym = h.create(KeySpec::SymmetricDefault);
    let mut checked = 0;
    for &spec in KeySpec::ALL {
        let key = h.create(spec);
        for op in OPS {
            let got = run(&mut h, op, &key, spec, &sym);
            if allowed(spec, op) {
                assert_ne!(got, Err(ErrorCode::InvalidKeyUsage), "{spec} {op:?}");
                // Allowed operations either work or fail on the deliberately bad input.
                let expected_failure = match op {
                    Op::Decrypt => Some(ErrorCode::InvalidCiphertext),
                    Op::Verify => Some(ErrorCode::InvalidSignature),
                    Op::VerifyMac => Some(ErrorCode::InvalidMac),
                    _ => None,
                };
                assert_eq!(got.err(), expected_failure, "{spec} {op:?}");
            } else {
                assert_eq!(got, Err(ErrorCode::InvalidKeyUsage), "{spec} {op:?}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, KeySpec::ALL.len() * OPS.len());
}
