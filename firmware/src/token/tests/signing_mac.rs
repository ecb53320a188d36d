//! Sign, Verify, GetPublicKey, GenerateMac, VerifyMac, with versions.

use super::*;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use pkms_protocol::{MacAlgorithm, MessageType, SigningAlgorithm};
use sha2::{Digest, Sha256};

fn sign(h: &mut Harness, key: &str, message: &[u8], t: MessageType) -> (Vec<u8>, u32) {
    let r = h.ok(Request::Sign(pkms_protocol::request::Sign {
        key_id: key,
        message,
        message_type: t,
        signing_algorithm: SigningAlgorithm::EcdsaSha256,
    }));
    let Ok(Response::Sign(pkms_protocol::reply::Sign { signature, key_version, .. })) = r.get() else {
        panic!()
    };
    (signature.to_vec(), key_version)
}

fn verify(
    h: &mut Harness,
    key: &str,
    message: &[u8],
    t: MessageType,
    sig: &[u8],
    v: Option<u32>,
) -> Result<u32, ErrorCode> {
    let r = h.call(Request::Verify(pkms_protocol::request::Verify {
        key_id: key,
        message,
        message_type: t,
        signature: sig,
        signing_algorithm: SigningAlgorithm::EcdsaSha256,
        key_version: v,
    }));
    let res = r.get();
    match res {
        Ok(Response::Verify(pkms_protocol::reply::Verify { signature_valid: true, key_version, .. })) => {
            Ok(key_version)
        }
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.code),
    }
}

fn public_key(h: &mut Harness, key: &str, v: Option<u32>) -> Vec<u8> {
    let r = h.ok(Request::GetPublicKey(pkms_protocol::request::GetPublicKey { key_id: key, key_version: v }));
    let Ok(Response::PublicKey(pkms_protocol::reply::PublicKey { public_key, key_spec, key_usage, .. })) =
        r.get()
    else {
        panic!()
    };
    assert_eq!(key_spec, KeySpec::EccNistP256);
    assert_eq!(key_usage, pkms_protocol::KeyUsage::SignVerify);
    public_key.to_vec()
}

#[test]
fn signatures_verify_on_the_token_and_with_the_public_key() {
    let mut h = Harness::new();
    let k = h.create(KeySpec::EccNistP256);
    let key = s(&k);
    let message = std::vec![0xA5u8; 3000];
    let digest: [u8; 32] = Sha256::digest(&message).into();
    let spki = public_key(&mut h, &key, None);
    assert_eq!(spki.len(), 91);
    let vk = VerifyingKey::from_public_key_der(&spki).unwrap();
    let (raw_sig, v) = sign(&mut h, &key, &message, MessageType::Raw);
    let (digest_sig, _) = sign(&mut h, &key, &digest, MessageType::Digest);
    assert_eq!(v, 1);
    for sig in [&raw_sig, &digest_sig] {
        let parsed = Signature::from_der(sig).unwrap();
        assert!(parsed.normalize_s().is_none(), "signature is not low-S");
        vk.verify_prehash(&digest, &parsed).unwrap();
        assert_eq!(verify(&mut h, &key, &message, MessageType::Raw, sig, None), Ok(1));
        assert_eq!(verify(&mut h, &key, &digest, MessageType::Digest, sig, None), Ok(1));
    }
    assert_ne!(raw_sig, digest_sig, "nonces are hedged with randomness");
    let mut changed = message.clone();
    changed[0] ^= 1;
    assert_eq!(
        verify(&mut h, &key, &changed, MessageType::Raw, &raw_sig, None),
        Err(ErrorCode::InvalidSignature)
    );
    assert_eq!(
        verify(&mut h, &key, &message, MessageType::Raw, b"garbage", None),
        Err(ErrorCode::InvalidSignature)
    );
    let big = std::vec![0u8; 4097];
    let sign_err = |h: &mut Harness, m: &[u8], t| {
        h.code(Request::Sign(pkms_protocol::request::Sign {
            key_id: &key,
            message: m,
            message_type: t,
            signing_algorithm: SigningAlgorithm::EcdsaSha256,
        }))
    };
    assert_eq!(sign_err(&mut h, &big, MessageType::Raw), ErrorCode::Validation);
    assert_eq!(sign_err(&mut h, &[], MessageType::Raw), ErrorCode::Validation);
    assert_eq!(sign_err(&mut h, &digest[..31], MessageType::Digest), ErrorCode::Validation);
}

#[test]
fn signing_keys_rotate_only_when_tagged_to() {
    let mut h = Harness::new();
    let key = s(&h.create(KeySpec::EccNistP256));
    let refused = |h: &mut Harness, key: &str| {
        let (code, msg) =
            h.err(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: key }));
        assert_eq!(code, ErrorCode::UnsupportedOperation, "{msg}");
        assert!(msg.contains(pkms_protocol::ALLOW_SIGNING_KEY_ROTATION_TAG), "{msg}");
        let (code, _) = h.err(Request::EnableKeyRotation(pkms_protocol::request::EnableKeyRotation {
            key_id: key,
            rotation_period_in_days: None,
        }));
        assert_eq!(code, ErrorCode::UnsupportedOperation);
    };
    refused(&mut h, &key);
    // Only the value `true` opts in.
    h.tag_signing_rotation(&key, "yes");
    refused(&mut h, &key);
    let (_, v) = sign(&mut h, &key, b"still version 1", MessageType::Raw);
    assert_eq!(v, 1, "nothing rotated");
    h.tag_signing_rotation(&key, "true");
    h.ok(Request::EnableKeyRotation(pkms_protocol::request::EnableKeyRotation {
        key_id: &key,
        rotation_period_in_days: None,
    }));
    h.ok(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &key }));
    assert_eq!(sign(&mut h, &key, b"version 2", MessageType::Raw).1, 2);
    // Other key kinds rotate without the tag.
    for spec in [KeySpec::SymmetricDefault, KeySpec::Hmac256] {
        let k = s(&h.create(spec));
        h.ok(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &k }));
    }
}

#[test]
fn signing_keys_rotate_and_old_signatures_still_verify() {
    let mut h = Harness::new();
    let key = s(&h.create(KeySpec::EccNistP256));
    let (sig1, _) = sign(&mut h, &key, b"release 1", MessageType::Raw);
    let pk1 = public_key(&mut h, &key, None);
    h.tag_signing_rotation(&key, "true");
    h.ok(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &key }));
    let (sig2, v2) = sign(&mut h, &key, b"release 2", MessageType::Raw);
    assert_eq!(v2, 2);
    assert_ne!(public_key(&mut h, &key, None), pk1);
    assert_eq!(public_key(&mut h, &key, Some(1)), pk1);
    assert_eq!(verify(&mut h, &key, b"release 1", MessageType::Raw, &sig1, Some(1)), Ok(1));
    assert_eq!(
        verify(&mut h, &key, b"release 1", MessageType::Raw, &sig1, None),
        Err(ErrorCode::InvalidSignature)
    );
    assert_eq!(verify(&mut h, &key, b"release 2", MessageType::Raw, &sig2, None), Ok(2));
    assert_eq!(
        verify(&mut h, &key, b"release 2", MessageType::Raw, &sig2, Some(9)),
        Err(ErrorCode::NotFound)
    );
    h.ok(Request::RetireKeyVersions(pkms_protocol::request::RetireKeyVersions {
        key_id: &key,
        below_version: 2,
    }));
    assert_eq!(
        verify(&mut h, &key, b"release 1", MessageType::Raw, &sig1, Some(1)),
        Err(ErrorCode::KeyVersionRetired)
    );
    assert_eq!(
        h.code(Request::GetPublicKey(pkms_protocol::request::GetPublicKey {
            key_id: &key,
            key_version: Some(1)
        })),
        ErrorCode::KeyVersionRetired
    );
}

#[test]
fn sign_asks_for_presence_verify_does_not() {
    let mut h = Harness::new();
    let key = s(&h.create_with(KeySpec::EccNistP256, true));
    let req = Request::Sign(pkms_protocol::request::Sign {
        key_id: &key,
        message: b"m",
        message_type: MessageType::Raw,
        signing_algorithm: SigningAlgorithm::EcdsaSha256,
    });
    assert_eq!(h.code(req.clone()), ErrorCode::UserPresenceRequired);
    h.token.board_mut().presence = UserPresence::Confirmed;
    let (sig, _) = sign(&mut h, &key, b"m", MessageType::Raw);
    h.token.board_mut().presence = UserPresence::TimedOut;
    let asked = h.token.core.board().asked;
    assert_eq!(verify(&mut h, &key, b"m", MessageType::Raw, &sig, None), Ok(1));
    public_key(&mut h, &key, None);
    assert_eq!(h.token.core.board().asked, asked);
}

#[test]
fn hmac_keys_generate_and_verify_macs() {
    let mut h = Harness::new();
    let specs = [
        (KeySpec::Hmac256, MacAlgorithm::HmacSha256, 32usize),
        (KeySpec::Hmac384, MacAlgorithm::HmacSha384, 48),
        (KeySpec::Hmac512, MacAlgorithm::HmacSha512, 64),
    ];
    for (spec, alg, len) in specs {
        let key = s(&h.create(spec));
        let r = h.ok(Request::GenerateMac(pkms_protocol::request::GenerateMac {
            key_id: &key,
            message: b"msg",
            mac_algorithm: alg,
        }));
        let Ok(Response::Mac(pkms_protocol::reply::Mac { mac, key_version: 1, .. })) = r.get() else {
            panic!()
        };
        assert_eq!(mac.len(), len);
        let mac = mac.to_vec();
        let vm = |h: &mut Harness, m: &[u8], a, mac: &[u8], v| {
            h.call(Request::VerifyMac(pkms_protocol::request::VerifyMac {
                key_id: &key,
                message: m,
                mac_algorithm: a,
                mac,
                key_version: v,
            }))
            .get()
            .map(|_| ())
            .map_err(|e| e.code)
        };
        assert_eq!(vm(&mut h, b"msg", alg, &mac, None), Ok(()));
        assert_eq!(vm(&mut h, b"msh", alg, &mac, None), Err(ErrorCode::InvalidMac));
        let mut bad = mac.clone();
        bad[len - 1] ^= 1;
        assert_eq!(vm(&mut h, b"msg", alg, &bad, None), Err(ErrorCode::InvalidMac));
        assert_eq!(vm(&mut h, b"msg", alg, &mac[..len - 1], None), Err(ErrorCode::InvalidMac));
        for other in MacAlgorithm::ALL.iter().copied().filter(|a| *a != alg) {
            assert_eq!(vm(&mut h, b"msg", other, &mac, None), Err(ErrorCode::InvalidKeyUsage));
            assert_eq!(
                h.code(Request::GenerateMac(pkms_protocol::request::GenerateMac {
                    key_id: &key,
                    message: b"msg",
                    mac_algorithm: other
                })),
                ErrorCode::InvalidKeyUsage
            );
        }
        // After a rotation the old MAC verifies with its version only.
        h.ok(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &key }));
        assert_eq!(vm(&mut h, b"msg", alg, &mac, None), Err(ErrorCode::InvalidMac));
        assert_eq!(vm(&mut h, b"msg", alg, &mac, Some(1)), Ok(()));
        assert_eq!(
            h.code(Request::GenerateMac(pkms_protocol::request::GenerateMac {
                key_id: &key,
                message: &[0; 4097],
                mac_algorithm: alg
            })),
            ErrorCode::Validation
        );
        assert_eq!(
            h.code(Request::GenerateMac(pkms_protocol::request::GenerateMac {
                key_id: &key,
                message: b"",
                mac_algorithm: alg
            })),
            ErrorCode::Validation
        );
    }
}
