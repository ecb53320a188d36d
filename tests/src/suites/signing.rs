//! Signing: ECC_NIST_P256 Sign / Verify / GetPublicKey (checked on the host with the p256
//! crate), HMAC keys, versions of both, and the key-usage matrix.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use pkms_lib::client::NO_CONTEXT;
use pkms_lib::model::{CreateKeyParams, DataKeySize};
use pkms_lib::Client;
use pkms_protocol::{DataKeySpec, ErrorCode, KeySpec, KeyUsage, MacAlgorithm, MessageType, SigningAlgorithm};
use sha2::{Digest, Sha256};

use crate::harness::{expect_code, TestToken};

const ECDSA: SigningAlgorithm = SigningAlgorithm::EcdsaSha256;

fn create(c: &mut Client, spec: KeySpec) -> String {
    c.create_key(&CreateKeyParams::spec(spec)).unwrap().key_id.to_string()
}

fn host_key(der: &[u8]) -> VerifyingKey {
    VerifyingKey::from_public_key_der(der).expect("GetPublicKey returns DER SubjectPublicKeyInfo for P-256")
}

fn host_signature(der: &[u8]) -> Signature {
    let sig = Signature::from_der(der).expect("the signature is DER");
    assert!(sig.normalize_s().is_none(), "the signature is low-S");
    sig
}

/// Sign RAW and DIGEST; the host verifies with the public key; the token's Verify agrees;
/// signatures made before a rotation verify with their version.
pub fn sign_and_verify(t: &mut dyn TestToken) {
    let mut c = t.client();
    let m = c
        .create_key(&CreateKeyParams {
            key_spec: KeySpec::EccNistP256,
            key_usage: Some(KeyUsage::SignVerify),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(m.key_spec, KeySpec::EccNistP256);
    assert_eq!(m.key_usage, KeyUsage::SignVerify);
    let key = m.key_id.to_string();

    let pk = c.get_public_key(&key, None).unwrap();
    assert_eq!(pk.key_spec, KeySpec::EccNistP256);
    assert_eq!(pk.key_usage, KeyUsage::SignVerify);
    assert_eq!(pk.key_version, 1);
    let vk = host_key(&pk.public_key);

    let message: Vec<u8> = (0..3000u32).map(|i| (i * 7 + 3) as u8).collect();
    let raw = c.sign(&key, &message, MessageType::Raw, ECDSA).unwrap();
    assert_eq!(raw.key_version, 1);
    assert_eq!(raw.signing_algorithm, ECDSA);
    vk.verify(&message, &host_signature(&raw.signature)).expect("the host verifies a RAW signature");

    let digest = Sha256::digest(&message);
    let pre = c.sign(&key, &digest, MessageType::Digest, ECDSA).unwrap();
    vk.verify_prehash(&digest, &host_signature(&pre.signature))
        .expect("the host verifies a DIGEST signature");
    vk.verify(&message, &host_signature(&pre.signature))
        .expect("a DIGEST signature is a signature of the message");

    let ok = c.verify(&key, &message, MessageType::Raw, &raw.signature, ECDSA, None).unwrap();
    assert!(ok.signature_valid);
    assert!(
        c.verify(&key, &digest, MessageType::Digest, &raw.signature, ECDSA, None).unwrap().signature_valid
    );
    let mut changed = message.clone();
    changed[100] ^= 1;
    expect_code(
        c.verify(&key, &changed, MessageType::Raw, &raw.signature, ECDSA, None),
        ErrorCode::InvalidSignature,
    );
    let mut bad_sig = raw.signature.clone();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 1;
    expect_code(
        c.verify(&key, &message, MessageType::Raw, &bad_sig, ECDSA, None),
        ErrorCode::InvalidSignature,
    );
    assert!(c.verify(&key, &message, MessageType::Raw, b"not DER", ECDSA, None).is_err());

    expect_code(c.sign(&key, &digest[..31], MessageType::Digest, ECDSA), ErrorCode::Validation);
    c.sign(&key, &vec![1u8; 4096], MessageType::Raw, ECDSA).unwrap();
    expect_code(c.sign(&key, &vec![1u8; 4097], MessageType::Raw, ECDSA), ErrorCode::Validation);

    // Two signatures of one message differ (hedged nonces) and both verify.
    let again = c.sign(&key, &message, MessageType::Raw, ECDSA).unwrap();
    assert_ne!(again.signature, raw.signature);
    vk.verify(&message, &host_signature(&again.signature)).unwrap();

    // Rotation (a signing key rotates only once tagged to: KMS refuses it): the new version
    // signs; the old signature verifies with version 1 only.
    expect_code(c.rotate_key_on_demand(&key), ErrorCode::UnsupportedOperation);
    let opt_in = pkms_lib::model::Tag {
        tag_key: pkms_protocol::ALLOW_SIGNING_KEY_ROTATION_TAG.to_owned(),
        tag_value: "true".to_owned(),
    };
    c.tag_resource(&key, &[opt_in]).unwrap();
    assert_eq!(c.rotate_key_on_demand(&key).unwrap().key_version, 2);
    let s2 = c.sign(&key, &message, MessageType::Raw, ECDSA).unwrap();
    assert_eq!(s2.key_version, 2);
    let pk2 = c.get_public_key(&key, None).unwrap();
    assert_eq!(pk2.key_version, 2);
    assert_ne!(pk2.public_key, pk.public_key);
    host_key(&pk2.public_key).verify(&message, &host_signature(&s2.signature)).unwrap();
    assert_eq!(c.get_public_key(&key, Some(1)).unwrap().public_key, pk.public_key);
    let v1 = c.verify(&key, &message, MessageType::Raw, &raw.signature, ECDSA, Some(1)).unwrap();
    assert_eq!(v1.key_version, 1);
    expect_code(
        c.verify(&key, &message, MessageType::Raw, &raw.signature, ECDSA, None),
        ErrorCode::InvalidSignature,
    );
    expect_code(c.get_public_key(&key, Some(9)), ErrorCode::NotFound);
}

/// HMAC_256/384/512: GenerateMac is deterministic per version, VerifyMac accepts it and
/// refuses any change; the algorithm must match the key spec.
pub fn hmac_keys(t: &mut dyn TestToken) {
    let mut c = t.client();
    for (spec, alg, len) in [
        (KeySpec::Hmac256, MacAlgorithm::HmacSha256, 32),
        (KeySpec::Hmac384, MacAlgorithm::HmacSha384, 48),
        (KeySpec::Hmac512, MacAlgorithm::HmacSha512, 64),
    ] {
        let m = c.create_key(&CreateKeyParams::spec(spec)).unwrap();
        assert_eq!(m.key_usage, KeyUsage::GenerateVerifyMac);
        let key = m.key_id.to_string();
        let mac = c.generate_mac(&key, b"message", alg).unwrap();
        assert_eq!(mac.mac.len(), len, "{spec:?}");
        assert_eq!(mac.mac_algorithm, alg);
        assert_eq!(c.generate_mac(&key, b"message", alg).unwrap().mac, mac.mac, "HMAC is deterministic");
        assert!(c.verify_mac(&key, b"message", alg, &mac.mac, None).unwrap().mac_valid);
        expect_code(c.verify_mac(&key, b"messagE", alg, &mac.mac, None), ErrorCode::InvalidMac);
        let mut bad = mac.mac.clone();
        bad[0] ^= 0x80;
        expect_code(c.verify_mac(&key, b"message", alg, &bad, None), ErrorCode::InvalidMac);
        expect_code(c.verify_mac(&key, b"message", alg, &mac.mac[..len - 1], None), ErrorCode::InvalidMac);
        for other in MacAlgorithm::ALL.iter().copied().filter(|a| *a != alg) {
            expect_code(c.generate_mac(&key, b"message", other), ErrorCode::InvalidKeyUsage);
        }
        c.generate_mac(&key, &vec![9u8; 4096], alg).unwrap();
        expect_code(c.generate_mac(&key, &vec![9u8; 4097], alg), ErrorCode::Validation);

        // A new version MACs differently; the old MAC verifies with version 1.
        c.rotate_key_on_demand(&key).unwrap();
        let mac2 = c.generate_mac(&key, b"message", alg).unwrap();
        assert_eq!(mac2.key_version, 2);
        assert_ne!(mac2.mac, mac.mac);
        assert!(c.verify_mac(&key, b"message", alg, &mac.mac, Some(1)).unwrap().mac_valid);
        expect_code(c.verify_mac(&key, b"message", alg, &mac.mac, None), ErrorCode::InvalidMac);
    }
}

/// Every (key spec, operation) pair the spec does not allow gets InvalidKeyUsage.
pub fn key_usage_matrix(t: &mut dyn TestToken) {
    let mut c = t.client();
    let specs = [
        KeySpec::SymmetricDefault,
        KeySpec::EccNistP256,
        KeySpec::Hmac256,
        KeySpec::Hmac384,
        KeySpec::Hmac512,
    ];
    let keys: Vec<(KeySpec, String)> = specs.iter().map(|&s| (s, create(&mut c, s))).collect();
    let sym = keys[0].1.clone();
    let blob = c.encrypt(&sym, b"x", NO_CONTEXT).unwrap().ciphertext_blob;
    let digest = [7u8; 32];
    let mut checked = 0;
    for (spec, key) in &keys {
        let symmetric = *spec == KeySpec::SymmetricDefault;
        let signing = *spec == KeySpec::EccNistP256;
        let mac_alg = match spec {
            KeySpec::Hmac256 => Some(MacAlgorithm::HmacSha256),
            KeySpec::Hmac384 => Some(MacAlgorithm::HmacSha384),
            KeySpec::Hmac512 => Some(MacAlgorithm::HmacSha512),
            _ => None,
        };
        let mut check = |allowed: bool, what: &str, r: Result<(), pkms_lib::Error>| {
            checked += 1;
            match (allowed, r) {
                (true, Ok(())) => {}
                (false, Err(e)) if e.code() == Some(ErrorCode::InvalidKeyUsage) => {}
                (_, other) => panic!("{spec:?} {what}: allowed={allowed}, got {other:?}"),
            }
        };
        check(symmetric, "Encrypt", c.encrypt(key, b"x", NO_CONTEXT).map(drop));
        check(
            symmetric,
            "GenerateDataKey",
            c.generate_data_key(key, NO_CONTEXT, DataKeySize::Spec(DataKeySpec::Aes256)).map(drop),
        );
        check(
            symmetric,
            "GenerateDataKeyWithoutPlaintext",
            c.generate_data_key_without_plaintext(key, NO_CONTEXT, DataKeySize::Bytes(16)).map(drop),
        );
        check(
            symmetric,
            "ReEncrypt (destination)",
            c.re_encrypt(&blob, NO_CONTEXT, None, key, NO_CONTEXT).map(drop),
        );
        check(signing, "Sign", c.sign(key, &digest, MessageType::Digest, ECDSA).map(drop));
        check(signing, "GetPublicKey", c.get_public_key(key, None).map(drop));
        if !signing {
            // A well-formed signature from the signing key, offered to the wrong key.
            let sig = c.sign(&keys[1].1, &digest, MessageType::Digest, ECDSA).unwrap().signature;
            check(false, "Verify", c.verify(key, &digest, MessageType::Digest, &sig, ECDSA, None).map(drop));
        }
        for alg in MacAlgorithm::ALL.iter().copied() {
            let allowed = mac_alg == Some(alg);
            check(allowed, "GenerateMac", c.generate_mac(key, b"m", alg).map(drop));
            if !allowed {
                check(false, "VerifyMac", c.verify_mac(key, b"m", alg, &[0u8; 32], None).map(drop));
            }
        }
    }
    assert!(checked >= 5 * 12, "checked {checked} pairs");
}

/// Keys created with user presence required: on an emulated token (no button) Decrypt and Sign
/// are refused with UserPresenceRequired; operations that need no presence still work.
pub fn user_presence_keys_on_an_emulated_token(t: &mut dyn TestToken) {
    let mut c = t.client();
    let sym = c.create_key(&CreateKeyParams { user_presence_required: true, ..Default::default() }).unwrap();
    assert!(sym.user_presence_required);
    let sym = sym.key_id.to_string();
    let blob = c.encrypt(&sym, b"x", NO_CONTEXT).unwrap().ciphertext_blob;
    expect_code(c.decrypt(&blob, NO_CONTEXT, None), ErrorCode::UserPresenceRequired);
    let signer = c
        .create_key(&CreateKeyParams {
            key_spec: KeySpec::EccNistP256,
            user_presence_required: true,
            ..Default::default()
        })
        .unwrap()
        .key_id
        .to_string();
    expect_code(c.sign(&signer, &[1u8; 32], MessageType::Digest, ECDSA), ErrorCode::UserPresenceRequired);
    c.get_public_key(&signer, None).unwrap();
}
