//! Token tests through the wire interface (`handle_payload`), with a mock flash, a seeded
//! ChaCha RNG and a test board. One module per operation family.

mod aliases_tags;
mod audit_counts;
mod auth;
mod basics;
mod delegation;
mod lifecycle;
mod matrix;
mod migration;
mod power_cut;
mod recovery;
mod robustness;
mod rotation;
mod signing_mac;
mod symmetric;

use std::string::String;
use std::vec::Vec;

use pkms_protocol::context::EncryptionContext;
use pkms_protocol::messages::{Request, RequestFrame, Response, WireError};
use pkms_protocol::{ErrorCode, KeyId, KeySpec, Platform, Tags};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::Token;
use crate::board::{TestBoard, UserPresence};
use crate::mock_flash::MockFlash;

/// The platform of token tests: a mock flash, a seeded ChaCha RNG and a test board.
pub type TestPlatform = crate::Parts<MockFlash, ChaCha20Rng, TestBoard>;

pub type TestToken = Token<TestPlatform>;

/// A token plus the host time it is given.
pub struct Harness {
    pub token: TestToken,
    pub now: Option<u64>,
    seed: u64,
}

/// A decoded reply, owning its bytes.
pub struct Reply(Vec<u8>);

impl Reply {
    pub fn get(&self) -> Result<Response<'_>, WireError<'_>> {
        pkms_protocol::framing::decode_response(&self.0).expect("token sent an undecodable frame").result
    }
}

pub const T0: u64 = 1_750_000_000;

impl Harness {
    pub fn new() -> Self {
        Self::with_flash(MockFlash::new(256 * 1024))
    }

    pub fn with_flash(flash: MockFlash) -> Self {
        Self::with_flash_seed(flash, 1)
    }

    pub fn with_flash_seed(flash: MockFlash, seed: u64) -> Self {
        let board = TestBoard::new();
        Harness { token: Token::new(flash, ChaCha20Rng::seed_from_u64(seed), board), now: Some(T0), seed }
    }

    /// Powers the token off and on: remounts on the same flash.
    pub fn restart(self) -> Self {
        let now = self.now;
        let seed = self.seed + 1;
        let mut h = Self::with_flash_seed(self.token.into_flash(), seed);
        h.now = now;
        h
    }

    pub fn payload(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut out = std::vec![0u8; pkms_protocol::limits::MAX_ENCODED_FRAME];
        let n = self.token.handle_payload(payload, &mut out);
        assert!(n > 0 && out[n - 1] == 0, "no frame");
        let mut frame = out[..n - 1].to_vec();
        let m = pkms_protocol::framing::cobs_decode_in_place(&mut frame).expect("bad COBS from token").len();
        frame.truncate(m);
        frame
    }

    pub fn call(&mut self, request: Request<'_>) -> Reply {
        let frame = RequestFrame { id: 42, now: self.now, request };
        let mut buf = std::vec![0u8; pkms_protocol::limits::MAX_FRAME];
        let n = postcard::to_slice(&frame, &mut buf).expect("request too large").len();
        let reply = self.payload(&buf[..n]);
        assert_eq!(pkms_protocol::framing::decode_response(&reply).unwrap().id, 42);
        Reply(reply)
    }

    /// Calls and expects success.
    pub fn ok(&mut self, request: Request<'_>) -> Reply {
        let dbg = std::format!("{request:?}");
        let r = self.call(request);
        if let Err(e) = r.get() {
            panic!("{dbg} failed: {:?} {}", e.code, e.message);
        }
        r
    }

    /// Calls and expects an error; returns its code and message.
    pub fn err(&mut self, request: Request<'_>) -> (ErrorCode, String) {
        let dbg = std::format!("{request:?}");
        let r = self.call(request);
        let res = r.get();
        match res {
            Ok(resp) => panic!("{dbg} succeeded: {resp:?}"),
            Err(e) => (e.code, String::from(e.message)),
        }
    }

    pub fn code(&mut self, request: Request<'_>) -> ErrorCode {
        self.err(request).0
    }

    pub fn create(&mut self, spec: KeySpec) -> KeyId {
        self.create_with(spec, false)
    }

    pub fn create_with(&mut self, spec: KeySpec, presence: bool) -> KeyId {
        let r = self.ok(Request::CreateKey(pkms_protocol::request::CreateKey {
            key_spec: spec,
            key_usage: None,
            description: "",
            tags: Tags::new(),
            user_presence_required: presence,
        }));
        let res = r.get();
        match res {
            Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata: m })) => m.key_id,
            other => panic!("{other:?}"),
        }
    }

    pub fn encrypt(&mut self, key: &str, plaintext: &[u8], context: &[(&str, &str)]) -> Vec<u8> {
        let r = self.ok(Request::Encrypt(pkms_protocol::request::Encrypt {
            key_id: key,
            plaintext,
            encryption_context: ctx(context),
        }));
        let res = r.get();
        match res {
            Ok(Response::Encrypt(pkms_protocol::reply::Encrypt { ciphertext_blob, .. })) => {
                ciphertext_blob.to_vec()
            }
            other => panic!("{other:?}"),
        }
    }

    pub fn decrypt(&mut self, blob: &[u8], context: &[(&str, &str)]) -> Result<Vec<u8>, (ErrorCode, String)> {
        let r = self.call(Request::Decrypt(pkms_protocol::request::Decrypt {
            ciphertext_blob: blob,
            encryption_context: ctx(context),
            key_id: None,
        }));
        let res = r.get();
        match res {
            Ok(Response::Decrypt(pkms_protocol::reply::Decrypt { plaintext, .. })) => Ok(plaintext.to_vec()),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err((e.code, String::from(e.message))),
        }
    }

    pub fn describe(&mut self, key: &str) -> pkms_protocol::KeyMetadata<'static> {
        let r = self.ok(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: key }));
        let res = r.get();
        match res {
            Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata: m })) => {
                pkms_protocol::KeyMetadata { description: "", ..m }
            }
            other => panic!("{other:?}"),
        }
    }
}

pub fn ctx<'a>(pairs: &[(&'a str, &'a str)]) -> EncryptionContext<'a> {
    pairs.iter().copied().collect()
}

pub fn s(id: &KeyId) -> String {
    std::format!("{id}")
}
