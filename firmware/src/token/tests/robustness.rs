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
fn bytes_after_a_valid_request_are_refused_as_malformed() {
    let mut h = Harness::new();
    let key = s(&h.create(KeySpec::SymmetricDefault));
    let blob = h.encrypt(&key, b"abc", &[("a", "b")]);
    for frame in valid_requests(&key, &blob) {
        for tail in [&[0u8][..], &[1, 2, 3], &frame[..]] {
            let mut longer = frame.clone();
            longer.extend_from_slice(tail);
            let reply = h.payload(&longer);
            let r = pkms_protocol::framing::decode_response(&reply).unwrap();
            assert_eq!(r.result.map(|_| ()).map_err(|e| e.code), Err(ErrorCode::MalformedFrame));
        }
    }
    // Nothing ran: no alias was made.
    assert_eq!(
        h.code(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: "alias/x" })),
        ErrorCode::NotFound
    );
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

/// The frame server keeps nothing of a request (PINs, plaintexts) or of its answer once the
/// answer is sent: both buffers are zero between frames, a partial frame is wiped when the
/// host goes away, and so is an oversize one.
#[test]
fn the_frame_buffers_hold_nothing_of_a_request_once_it_is_answered() {
    use pkms_protocol::access::AuditFullMode;
    let mut t = TestToken::new(MockFlash::new(256 * 1024), ChaCha20Rng::seed_from_u64(4), TestBoard::new());
    let mut server = std::boxed::Box::new(crate::FrameServer::new());
    let frame = |request: Request<'_>| {
        let mut buf = std::vec![0u8; pkms_protocol::limits::MAX_ENCODED_FRAME];
        let n = pkms_protocol::framing::encode(&RequestFrame { id: 1, now: Some(T0), request }, &mut buf)
            .unwrap();
        buf.truncate(n);
        buf
    };
    let frames = [
        frame(Request::Initialize(pkms_protocol::request::Initialize {
            pin: b"secret-pin",
            puk: b"secret-puk",
            audit_full: AuditFullMode::Overwrite,
        })),
        frame(Request::Authenticate(pkms_protocol::request::Authenticate {
            principal: "admin",
            pin: b"secret-pin",
        })),
        frame(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 1024 })),
    ];
    for f in &frames {
        let mut answers = 0;
        for chunk in f.chunks(7) {
            server.feed(&mut t, chunk, |out| {
                assert!(out.len() > 1);
                answers += 1;
            });
        }
        assert_eq!(answers, 1);
        assert!(server.holds_nothing());
    }
    // Half a frame waits for the rest, until the host goes away.
    server.feed(&mut t, &frames[1][..10], |_| panic!("no answer yet"));
    assert!(!server.holds_nothing());
    server.reset();
    assert!(server.holds_nothing());
    // An oversize frame is answered with an error and wiped too.
    let mut big = std::vec![0x55u8; pkms_protocol::limits::MAX_ENCODED_FRAME + 5];
    big.push(0);
    let mut answers = 0;
    server.feed(&mut t, &big, |_| answers += 1);
    assert_eq!(answers, 1);
    assert!(server.holds_nothing());
}
