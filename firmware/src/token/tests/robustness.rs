//! No input panics the token: random and mutated frames, and damaged flash.

use super::*;
use rand_chacha::rand_core::RngCore;

fn valid_requests(key: &str, blob: &[u8]) -> Vec<Vec<u8>> {
    let reqs = [
        Request::Encrypt(pkms_protocol::request::Encrypt {
            key_id: key,
            plaintext: b"abc",
            encryption_context: ctx(&[("a", "b")]),
        }),
        Request::Decrypt(pkms_protocol::request::Decrypt {
            ciphertext_blob: blob,
            encryption_context: ctx(&[("a", "b")]),
            key_id: Some(key),
        }),
        Request::CreateAlias(pkms_protocol::request::CreateAlias {
            alias_name: "alias/x",
            target_key_id: key,
        }),
        Request::ListAliases(pkms_protocol::request::ListAliases {
            key_id: None,
            limit: Some(3),
            marker: None,
        }),
        Request::TagResource(pkms_protocol::request::TagResource {
            key_id: key,
            tags: [pkms_protocol::Tag { tag_key: "k", tag_value: "v" }].into_iter().collect(),
        }),
        Request::ListKeyRotations(pkms_protocol::request::ListKeyRotations {
            key_id: key,
            limit: Some(1),
            marker: Some("1"),
        }),
        Request::RetireKeyVersions(pkms_protocol::request::RetireKeyVersions {
            key_id: key,
            below_version: 1,
        }),
        Request::GenerateDataKey(pkms_protocol::request::GenerateDataKey {
            key_id: key,
            encryption_context: ctx(&[]),
            key_spec: None,
            number_of_bytes: Some(9),
        }),
    ];
    reqs.into_iter()
        .map(|request| {
            let frame = RequestFrame { id: 7, now: Some(T0), request };
            let mut buf = std::vec![0u8; 1024];
            let n = postcard::to_slice(&frame, &mut buf).unwrap().len();
            buf.truncate(n);
            buf
        })
        .collect()
}

#[test]
fn random_and_mutated_frames_never_panic() {
    let mut h = Harness::new();
    let key = s(&h.create(KeySpec::SymmetricDefault));
    let blob = h.encrypt(&key, b"abc", &[("a", "b")]);
    let seeds = valid_requests(&key, &blob);
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    for i in 0..3000 {
        let mut frame = if i % 3 == 0 {
            let mut b = std::vec![0u8; (rng.next_u32() % 300) as usize];
            rng.fill_bytes(&mut b);
            b
        } else {
            seeds[i % seeds.len()].clone()
        };
        if !frame.is_empty() {
            for _ in 0..1 + rng.next_u32() % 4 {
                let at = (rng.next_u32() as usize) % frame.len();
                frame[at] = rng.next_u32() as u8;
            }
        }
        let reply = h.payload(&frame);
        assert!(pkms_protocol::framing::decode_response(&reply).is_ok(), "undecodable reply to {frame:?}");
    }
    // Still serving normally.
    assert_eq!(h.decrypt(&blob, &[("a", "b")]).unwrap(), b"abc");
}

#[test]
fn damaged_flash_never_panics() {
    let mut h = Harness::with_flash(MockFlash::new(32 * 4096));
    let key = h.create(KeySpec::EccNistP256);
    let sym = h.create(KeySpec::SymmetricDefault);
    h.ok(Request::CreateAlias(pkms_protocol::request::CreateAlias {
        alias_name: "alias/a",
        target_key_id: &s(&sym),
    }));
    for _ in 0..5 {
        h.ok(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &s(&sym) }));
    }
    let clean = h.token.into_flash().into_bytes();
    let used = clean.iter().rposition(|&b| b != 0xFF).unwrap_or(0) + 1;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    for round in 0..300 {
        let mut bytes = clean.clone();
        for _ in 0..1 + round % 8 {
            let at = (rng.next_u32() as usize) % used;
            bytes[at] ^= 1 << (rng.next_u32() % 8);
        }
        let mut h = Harness::with_flash(MockFlash::from_bytes(bytes));
        // Whatever the damage, every request gets an answer.
        h.call(Request::GetInfo(pkms_protocol::request::GetInfo {}));
        h.call(Request::ListKeys(pkms_protocol::request::ListKeys { limit: None, marker: None }));
        h.call(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: "alias/a" }));
        h.call(Request::Encrypt(pkms_protocol::request::Encrypt {
            key_id: &s(&sym),
            plaintext: b"x",
            encryption_context: ctx(&[]),
        }));
        h.call(Request::GetPublicKey(pkms_protocol::request::GetPublicKey {
            key_id: &s(&key),
            key_version: None,
        }));
        h.call(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &s(&sym) }));
        h.call(Request::CreateKey(pkms_protocol::request::CreateKey {
            key_spec: KeySpec::Hmac256,
            key_usage: None,
            description: "",
            tags: Tags::new(),
            user_presence_required: false,
        }));
    }
}
