//! The encrypted session (protocol/src/session/, the token's firmware/src/session.rs), both
//! ends. By the first byte (modulo 3; its top bit makes the host's handshakes ask for the
//! token's status in message 2):
//! * token, handshake: OpenSession with a fuzzed ephemeral key and payload, then session frames
//!   with fuzzed ids, counters and sealed bytes; none may open a session or be answered inside
//!   one (no forged frame is accepted);
//! * token, inside a session: a real handshake, then fuzzed request bytes sealed properly (so
//!   the token decodes them as the inner request), with fuzzed counters; every frame is
//!   answered, and a wrong counter ends the session;
//! * host: `Handshake::finish` with a fuzzed answer (session id, token ephemeral key, payload)
//!   and `HostSession::open_at` with fuzzed frames; never succeeds with what the fuzzer makes up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p256::pkcs8::DecodePublicKey;
use pkms_firmware::mock_flash::MockFlash;
use pkms_firmware::{Parts, TestBoard, Token};
use pkms_protocol::limits::{MAX_ENCODED_FRAME, MAX_FRAME};
use pkms_protocol::messages::{Request, RequestFrame, Response, ResponseFrame};
use pkms_protocol::session::host::Handshake;
use pkms_protocol::{framing, request, ErrorCode};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

type FuzzToken = Token<Parts<MockFlash, ChaCha20Rng, TestBoard>>;

fn call(token: &mut FuzzToken, request: Request<'_>) -> Vec<u8> {
    let frame = RequestFrame { id: 5, now: None, request };
    let mut payload = vec![0u8; MAX_FRAME];
    let Ok(n) = postcard::to_slice(&frame, &mut payload).map(|s| s.len()) else { return Vec::new() };
    payload.truncate(n);
    let mut out = vec![0u8; MAX_ENCODED_FRAME];
    let m = token.handle_payload(&mut payload, &mut out);
    assert!(m > 0 && out[m - 1] == 0, "every frame is answered");
    let mut answer = out[..m - 1].to_vec();
    let len = framing::cobs_decode_in_place(&mut answer).expect("valid COBS").len();
    answer.truncate(len);
    answer
}

fn decode(answer: &[u8]) -> ResponseFrame<'_> {
    framing::decode_response(answer).expect("the answer decodes")
}

fn device_point(token: &mut FuzzToken) -> [u8; 65] {
    let answer = call(token, Request::GetDeviceKey(request::GetDeviceKey {}));
    let Ok(Response::DeviceKey(k)) = decode(&answer).result else { panic!("GetDeviceKey failed") };
    let key = p256::PublicKey::from_public_key_der(k.public_key).expect("an SPKI");
    let mut point = [0u8; 65];
    point.copy_from_slice(
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key, false).as_bytes(),
    );
    point
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut token: FuzzToken =
        Token::new(MockFlash::new(16 * 4096), ChaCha20Rng::seed_from_u64(9), TestBoard::new());
    let mut chunks = rest.split(|&b| b == 0xFE);
    match mode % 3 {
        0 => {
            let ephemeral = chunks.next().unwrap_or(&[]).to_vec();
            let payload = chunks.next().unwrap_or(&[]).to_vec();
            let answer = call(
                &mut token,
                Request::OpenSession(request::OpenSession { ephemeral: &ephemeral, payload: &payload }),
            );
            // A made-up message 1 may open a session (any point and tag the token accepts is a
            // valid handshake for someone), but nothing sealed here can be opened by it.
            let opened = match decode(&answer).result {
                Ok(Response::SessionOpened(s)) => Some(s.session_id),
                _ => None,
            };
            for chunk in chunks {
                if chunk.len() < 12 {
                    continue;
                }
                let session_id = u32::from_le_bytes(chunk[..4].try_into().expect("4"));
                let session_id = opened.filter(|_| chunk[0] & 1 == 1).unwrap_or(session_id);
                let counter = u64::from_le_bytes(chunk[4..12].try_into().expect("8"));
                let answer = call(
                    &mut token,
                    Request::SessionFrame(request::SessionFrame {
                        session_id,
                        counter,
                        sealed: &chunk[12..],
                    }),
                );
                let result = decode(&answer).result;
                match result {
                    Err(e) => assert!(
                        matches!(
                            e.code,
                            ErrorCode::SessionEnded | ErrorCode::MalformedFrame | ErrorCode::Validation
                        ),
                        "{:?}",
                        e.code
                    ),
                    Ok(r) => panic!("a forged session frame was answered: {r:?}"),
                };
            }
        }
        1 => {
            let point = device_point(&mut token);
            let mut rng = ChaCha20Rng::seed_from_u64(3);
            // Half the runs ask for the token's status in message 2 (the mode byte's top bit).
            let asks = mode & 0x80 != 0;
            let hs = if asks {
                Handshake::start_asking_status(&point, &mut rng)
            } else {
                Handshake::start(&point, &mut rng)
            }
            .expect("a valid device key");
            let answer = call(
                &mut token,
                Request::OpenSession(request::OpenSession { ephemeral: &hs.ephemeral, payload: &hs.payload }),
            );
            let Ok(Response::SessionOpened(s)) = decode(&answer).result else {
                panic!("the handshake failed")
            };
            let session =
                hs.finish(s.session_id, s.ephemeral, s.payload).expect("the token's answer verifies");
            assert_eq!(
                session.status().is_some(),
                asks,
                "the status came back exactly when it was asked for"
            );
            let mut expected = 0u64;
            let mut alive = true;
            for chunk in chunks {
                let Some((&skew, inner)) = chunk.split_first() else { continue };
                // Mostly the right counter; sometimes one off.
                let counter = if skew % 8 == 0 { expected.wrapping_add(u64::from(skew)) } else { expected };
                let mut sealed = inner.to_vec();
                let tag = session.seal_at(counter, &mut sealed);
                sealed.extend_from_slice(&tag);
                let answer = call(
                    &mut token,
                    Request::SessionFrame(request::SessionFrame {
                        session_id: session.id(),
                        counter,
                        sealed: &sealed,
                    }),
                );
                let result = decode(&answer).result;
                if !alive {
                    assert!(result.is_err(), "an ended session answered");
                    continue;
                }
                match result {
                    Ok(Response::SessionFrame(_)) => {
                        assert_eq!(counter, expected, "a frame with a wrong counter was answered");
                        expected += 1;
                    }
                    Ok(other) => panic!("a session frame answered outside the session: {other:?}"),
                    Err(_) => alive = false,
                }
            }
        }
        _ => {
            let point = device_point(&mut token);
            let mut rng = ChaCha20Rng::seed_from_u64(4);
            let hs = if mode & 0x80 != 0 {
                Handshake::start_asking_status(&point, &mut rng)
            } else {
                Handshake::start(&point, &mut rng)
            }
            .expect("a valid device key");
            let head = chunks.next().unwrap_or(&[]);
            let session_id = head.get(..4).map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4")));
            let ephemeral = chunks.next().unwrap_or(&[]);
            let payload = chunks.next().unwrap_or(&[]);
            assert!(
                hs.finish(session_id, ephemeral, payload).is_err(),
                "a made-up answer finished the handshake without the device key"
            );
        }
    }
});
