//! Token tests through the wire interface (`handle_payload`), with a mock flash, a seeded
//! ChaCha RNG and a test board. One module per operation family.

mod aliases_tags;
mod audit_capacity;
mod audit_counts;
mod auth;
mod backup;
mod basics;
mod clock;
mod delegation;
mod encryption_limit;
mod entropy;
pub mod host_session;
mod key_specs;
mod lifecycle;
mod matrix;
mod migration;
mod model;
mod power_cut;
mod recovery;
mod robustness;
mod rotation;
mod self_tests;
mod sessions;
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

/// The platform of token tests: a mock flash, a seeded ChaCha RNG and a test board (and the
/// audit log of [`crate::Parts`]: 256 entries).
pub type TestPlatform = crate::Parts<MockFlash, ChaCha20Rng, TestBoard>;

pub type TestToken = Token<TestPlatform>;

/// The test parts with the QEMU board's audit log and index: for tests at its size, on a mock
/// flash of its 1 MiB ([`QEMU_FLASH`]).
pub enum QemuSized {}

/// The QEMU board's store size.
pub const QEMU_FLASH: usize = 1024 * 1024;
const QEMU_AUDIT: usize = crate::platform::audit_capacity(QEMU_FLASH, 4096);

impl crate::Platform for QemuSized {
    type Flash = MockFlash;
    type Rng = ChaCha20Rng;
    type Board = TestBoard;
    type Index = crate::store::Index<{ crate::platform::index_records(QEMU_AUDIT) }>;
    const AUDIT_CAPACITY: usize = QEMU_AUDIT;
}

/// What a [`Harness`] runs on: the test parts, with any audit log and index.
pub trait HarnessPlatform: crate::Platform<Flash = MockFlash, Rng = ChaCha20Rng, Board = TestBoard> {}
impl<P: crate::Platform<Flash = MockFlash, Rng = ChaCha20Rng, Board = TestBoard>> HarnessPlatform for P {}

/// A token plus the host time it is given, and the session requests go through (if one is open).
pub struct Harness<P: HarnessPlatform = TestPlatform> {
    /// Boxed: tests keep several harnesses in one frame, and an unoptimised build would hold a
    /// whole token (index, buffers: 80 KiB and more) on the stack for each.
    pub token: std::boxed::Box<Token<P>>,
    pub now: Option<u64>,
    seed: u64,
    pub session: Option<host_session::HostSession>,
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
        Self::on(flash, seed)
    }
}

impl<P: HarnessPlatform> Harness<P> {
    /// A harness of platform `P` on `flash`, its RNG seeded with `seed`.
    pub fn on(flash: MockFlash, seed: u64) -> Self {
        let board = TestBoard::new();
        Harness {
            token: std::boxed::Box::new(Token::new(flash, ChaCha20Rng::seed_from_u64(seed), board)),
            now: Some(T0),
            seed,
            session: None,
        }
    }

    /// Powers the token off and on: remounts on the same flash.
    pub fn restart(self) -> Self {
        let now = self.now;
        let seed = self.seed + 1;
        let mut h = Self::on(self.token.into_flash(), seed);
        h.now = now;
        h
    }

    pub fn payload(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut out = std::vec![0u8; pkms_protocol::limits::MAX_ENCODED_FRAME];
        let mut payload = payload.to_vec();
        let n = self.token.handle_payload(&mut payload, &mut out);
        assert!(n > 0 && out[n - 1] == 0, "no frame");
        let mut frame = out[..n - 1].to_vec();
        let m = pkms_protocol::framing::cobs_decode_in_place(&mut frame).expect("bad COBS from token").len();
        frame.truncate(m);
        frame
    }

    /// Sends a request: inside the open session (sealed, and the answer opened), else in the
    /// clear. The reply is the (inner) response frame.
    pub fn call(&mut self, request: Request<'_>) -> Reply {
        let request_was_reset = matches!(request, Request::FactoryReset(_));
        let frame = RequestFrame { id: 42, now: self.now, request };
        let mut buf = std::vec![0u8; pkms_protocol::limits::MAX_FRAME];
        let n = postcard::to_slice(&frame, &mut buf).expect("request too large").len();
        let Some(session) = self.session.as_mut() else {
            let reply = self.payload(&buf[..n]);
            assert_eq!(pkms_protocol::framing::decode_response(&reply).unwrap().id, 42);
            return Reply(reply);
        };
        let session_id = session.id;
        let (counter, sealed) = session.seal(&buf[..n]);
        let outer = self.outer(Request::SessionFrame(pkms_protocol::request::SessionFrame {
            session_id,
            counter,
            sealed: &sealed,
        }));
        let opened = match pkms_protocol::framing::decode_response(&outer.0)
            .expect("undecodable outer frame")
            .result
        {
            Ok(Response::SessionFrame(pkms_protocol::reply::SessionFrame {
                session_id: sid,
                counter,
                sealed,
            })) => {
                assert_eq!(sid, session_id);
                let session = self.session.as_mut().expect("session");
                Some(session.open(counter, sealed).expect("the token's answer does not open"))
            }
            _ => None,
        };
        match opened {
            Some(inner) => {
                let (id, ok) = pkms_protocol::framing::decode_response(&inner)
                    .map(|a| (a.id, a.result.is_ok()))
                    .unwrap();
                assert_eq!(id, 42);
                // A factory reset ends every session (the token has a new device key).
                let reset = request_was_reset && ok;
                if reset {
                    self.session = None;
                }
                Reply(inner)
            }
            // A refused frame: the session is over; hand the outer error back.
            None => {
                self.session = None;
                outer
            }
        }
    }

    /// Sends a request in the clear, whatever session is open.
    pub fn outer(&mut self, request: Request<'_>) -> Reply {
        let frame = RequestFrame { id: 42, now: self.now, request };
        let mut buf = std::vec![0u8; pkms_protocol::limits::MAX_FRAME];
        let n = postcard::to_slice(&frame, &mut buf).expect("request too large").len();
        Reply(self.payload(&buf[..n]))
    }

    /// Sends a request in the clear and expects an error; returns its code and message.
    pub fn err_outer(&mut self, request: Request<'_>) -> (ErrorCode, String) {
        let dbg = std::format!("{request:?}");
        match self.outer(request).get() {
            Ok(resp) => panic!("{dbg} succeeded: {resp:?}"),
            Err(e) => (e.code, String::from(e.message)),
        }
    }

    /// The token's device key (DER SubjectPublicKeyInfo), asked in the clear.
    pub fn device_key(&mut self) -> Vec<u8> {
        match self.outer(Request::GetDeviceKey(pkms_protocol::request::GetDeviceKey {})).get() {
            Ok(Response::DeviceKey(pkms_protocol::reply::DeviceKey { public_key })) => public_key.to_vec(),
            other => panic!("{other:?}"),
        }
    }

    /// Runs the session handshake with the host ephemeral drawn from `seed`; returns the
    /// session, which the harness does not track.
    pub fn handshake(&mut self, seed: u64) -> host_session::HostSession {
        let spki = self.device_key();
        let opening = host_session::open(&spki, seed);
        let reply = self.outer(Request::OpenSession(pkms_protocol::request::OpenSession {
            ephemeral: &opening.ephemeral,
            payload: &opening.payload,
        }));
        let session = match reply.get() {
            Ok(Response::SessionOpened(pkms_protocol::reply::SessionOpened {
                session_id,
                ephemeral,
                payload,
            })) => opening.finish(session_id, ephemeral, payload).expect("handshake verifies"),
            other => panic!("OpenSession: {other:?}"),
        };
        session
    }

    /// Opens a new session (closing none: the old one is simply forgotten) and sends what
    /// follows through it.
    pub fn open_session(&mut self) {
        self.seed += 1000;
        let session = self.handshake(self.seed);
        self.session = Some(session);
    }

    /// Closes the open session (CloseSession inside it) and goes back to the clear.
    pub fn close_session(&mut self) {
        if self.session.is_some() {
            let _ = self.call(Request::CloseSession(pkms_protocol::request::CloseSession {}));
            self.session = None;
        }
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

    /// Tags `key` with `pkms:AllowSigningKeyRotation=value` (`true`: a SIGN_VERIFY key may rotate).
    pub fn tag_signing_rotation(&mut self, key: &str, value: &'static str) {
        let mut tags = pkms_protocol::Tags::new();
        let _ = tags.push(pkms_protocol::Tag {
            tag_key: pkms_protocol::ALLOW_SIGNING_KEY_ROTATION_TAG,
            tag_value: value,
        });
        self.ok(Request::TagResource(pkms_protocol::request::TagResource { key_id: key, tags }));
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
