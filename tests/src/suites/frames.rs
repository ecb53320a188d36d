//! Framing and connection behaviour: garbage, truncated, oversize and undecodable frames each
//! get an error frame (id 0), stale answers are skipped, and the token keeps serving.

use std::time::Duration;

use pkms_protocol::framing;
use pkms_protocol::limits::{MAX_ENCODED_FRAME, MAX_RANDOM_BYTES};
use pkms_protocol::messages::{Request, RequestFrame};
use pkms_protocol::{ErrorCode, Platform, PROTOCOL_VERSION};

use crate::harness::{cobs_frame, expect_code, TestToken};

const RAW_TIMEOUT: Duration = Duration::from_secs(20);

fn encoded(id: u32, request: Request<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_ENCODED_FRAME];
    let n = framing::encode(&RequestFrame { id, now: None, request }, &mut buf).expect("encode");
    buf.truncate(n);
    buf
}

/// GetInfo and GenerateRandom, with their bounds.
pub fn info_and_random(t: &mut dyn TestToken) {
    let mut c = t.client();
    let info = c.get_info().unwrap();
    assert_eq!(info.protocol_version, PROTOCOL_VERSION);
    assert_eq!(info.platform, Platform::Emulated, "{} is an emulated token", t.name());
    assert!(!info.entropy_source.is_empty() && !info.key_protection.is_empty());
    assert!(info.storage_total_bytes > 0 && info.storage_free_bytes <= info.storage_total_bytes);
    assert_eq!(c.firmware_version(), info.firmware_version);
    let a = c.generate_random(32).unwrap();
    let b = c.generate_random(32).unwrap();
    assert_eq!(a.len(), 32);
    assert_ne!(a, b, "two random draws are equal");
    assert_eq!(c.generate_random(1).unwrap().len(), 1);
    assert_eq!(c.generate_random(MAX_RANDOM_BYTES as u16).unwrap().len(), MAX_RANDOM_BYTES);
    expect_code(c.generate_random(0), ErrorCode::Validation);
    expect_code(c.generate_random(MAX_RANDOM_BYTES as u16 + 1), ErrorCode::Validation);
}

/// Every kind of bad frame gets an error frame with id 0, then normal service resumes on the
/// same connection.
pub fn bad_frames_then_normal_service(t: &mut dyn TestToken) {
    let mut c = t.client();
    let expect_frame_error = |c: &mut pkms_lib::Client, code: ErrorCode, what: &str| {
        let raw = c.recv_raw(RAW_TIMEOUT).unwrap_or_else(|e| panic!("{what}: no error frame: {e}"));
        assert_eq!(raw.id, 0, "{what}: error frames about undecodable frames carry id 0");
        assert_eq!(raw.error.as_ref().map(|e| e.0), Some(code), "{what}: {raw:?}");
    };

    // Not COBS: the first code byte promises more bytes than the frame has.
    c.send_raw(&[0x05, 0x01, 0x00]).unwrap();
    expect_frame_error(&mut c, ErrorCode::MalformedFrame, "bad COBS");
    assert_eq!(c.generate_random(8).unwrap().len(), 8);

    // Valid COBS, not postcard.
    c.send_raw(&cobs_frame(&[0xFF; 7])).unwrap();
    expect_frame_error(&mut c, ErrorCode::MalformedFrame, "bad postcard");

    // An unknown request variant (index 200): id 5, no time, variant 200.
    c.send_raw(&cobs_frame(&[0x05, 0x00, 0xC8, 0x01])).unwrap();
    expect_frame_error(&mut c, ErrorCode::MalformedFrame, "unknown request");

    // A truncated frame: the first half of a real request, then the delimiter.
    let whole = encoded(
        4242,
        Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 16 }),
    );
    let mut half = whole[..whole.len() / 2].to_vec();
    half.push(0);
    c.send_raw(&half).unwrap();
    expect_frame_error(&mut c, ErrorCode::MalformedFrame, "truncated frame");
    assert_eq!(c.generate_random(8).unwrap().len(), 8);

    // An oversize frame: more bytes than any frame may have before a delimiter.
    let mut big = vec![0x55u8; MAX_ENCODED_FRAME + 100];
    big.push(0);
    c.send_raw(&big).unwrap();
    expect_frame_error(&mut c, ErrorCode::FrameTooLarge, "oversize frame");
    assert_eq!(c.generate_random(8).unwrap().len(), 8);

    // Another protocol version is refused by id.
    c.send_raw(&encoded(
        4243,
        Request::Hello(pkms_protocol::request::Hello { protocol_version: PROTOCOL_VERSION + 7 }),
    ))
    .unwrap();
    let raw = c.recv_raw(RAW_TIMEOUT).unwrap();
    assert_eq!(raw.id, 4243);
    assert_eq!(raw.error.map(|e| e.0), Some(ErrorCode::UnsupportedProtocolVersion));

    // A stale answer (to a request the client did not make) is skipped by the client.
    c.send_raw(&encoded(
        999_999,
        Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 3 }),
    ))
    .unwrap();
    assert_eq!(c.generate_random(5).unwrap().len(), 5);
    c.get_info().unwrap();
}

/// A client that vanished mid-frame leaves a partial frame on the token; the next client's
/// leading 0x00 ends it, and its Hello is answered.
pub fn partial_frame_left_by_a_dead_client(t: &mut dyn TestToken) {
    {
        let mut c = t.client();
        let whole = encoded(
            77,
            Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 16 }),
        );
        c.send_raw(&whole[..whole.len() / 2]).unwrap();
    }
    let mut c = t.client();
    assert_eq!(c.generate_random(4).unwrap().len(), 4);
}
