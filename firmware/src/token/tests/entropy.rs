//! A board whose RNG has no entropy (the QEMU board without a seed at boot): the token draws no
//! randomness at all — no device key, no random bytes, no session, no key — answers Hello and
//! GetInfo, and refuses the rest with the board's reason; once booted with entropy over the same
//! flash it works as a new token.

use super::*;
use pkms_protocol::access::{AuditFullMode, FACTORY_RESET_CONFIRMATION};
use pkms_protocol::PROTOCOL_VERSION;
use rand_chacha::rand_core::{CryptoRng, RngCore};

use crate::board::{Board, BoardInfo};

const NO_SEED: &str = "no entropy seed at boot: keys and random numbers are refused";

/// An RNG that must never be drawn from: the test fails if the token does.
struct MustNotDraw;

impl RngCore for MustNotDraw {
    fn next_u32(&mut self) -> u32 {
        panic!("the token drew randomness from an RNG without entropy")
    }
    fn next_u64(&mut self) -> u64 {
        panic!("the token drew randomness from an RNG without entropy")
    }
    fn fill_bytes(&mut self, _dest: &mut [u8]) {
        panic!("the token drew randomness from an RNG without entropy")
    }
    fn try_fill_bytes(&mut self, _dest: &mut [u8]) -> Result<(), rand_chacha::rand_core::Error> {
        panic!("the token drew randomness from an RNG without entropy")
    }
}

impl CryptoRng for MustNotDraw {}

/// A board that says its RNG got no entropy.
struct NoSeedBoard;

impl Board for NoSeedBoard {
    fn uptime_ms(&mut self) -> u64 {
        0
    }
    fn user_presence(&mut self, _timeout_ms: u32) -> UserPresence {
        UserPresence::Unsupported
    }
    fn info(&self) -> BoardInfo {
        BoardInfo {
            name: "no-seed-board",
            platform: Platform::Emulated,
            entropy_source: "none: no seed at boot",
            key_protection: "none (tests only)",
        }
    }
    fn entropy_missing(&self) -> Option<&'static str> {
        Some(NO_SEED)
    }
}

type NoSeedToken = Token<crate::Parts<MockFlash, MustNotDraw, NoSeedBoard>>;

/// Sends `request` in the clear; returns the answer frame.
fn call<P: crate::Platform>(token: &mut Token<P>, request: Request<'_>) -> Vec<u8> {
    let frame = RequestFrame { id: 7, now: Some(T0), request };
    let mut buf = std::vec![0u8; pkms_protocol::limits::MAX_FRAME];
    let n = postcard::to_slice(&frame, &mut buf).expect("request too large").len();
    let mut out = std::vec![0u8; pkms_protocol::limits::MAX_ENCODED_FRAME];
    let m = token.handle_payload(&mut buf[..n], &mut out);
    assert!(m > 0 && out[m - 1] == 0, "no frame");
    let mut frame = out[..m - 1].to_vec();
    let len = pkms_protocol::framing::cobs_decode_in_place(&mut frame).expect("bad COBS from token").len();
    frame.truncate(len);
    frame
}

fn answer(frame: &[u8]) -> Result<Response<'_>, WireError<'_>> {
    pkms_protocol::framing::decode_response(frame).expect("undecodable answer").result
}

fn refused(token: &mut NoSeedToken, request: Request<'_>) {
    let what = std::format!("{request:?}");
    match answer(&call(token, request)) {
        Err(e) => {
            assert_eq!(e.code, ErrorCode::Internal, "{what}: {}", e.message);
            assert_eq!(e.message, NO_SEED, "{what}");
        }
        Ok(r) => panic!("{what} was served without entropy: {r:?}"),
    }
}

#[test]
fn a_board_without_entropy_gets_no_keys_no_randomness_and_says_why() {
    let mut token = NoSeedToken::new(MockFlash::new(256 * 1024), MustNotDraw, NoSeedBoard);

    let hello = call(
        &mut token,
        Request::Hello(pkms_protocol::request::Hello { protocol_version: PROTOCOL_VERSION }),
    );
    assert!(matches!(answer(&hello), Ok(Response::Hello(_))));
    match answer(&call(&mut token, Request::GetInfo(pkms_protocol::request::GetInfo {}))) {
        Ok(Response::Info(pkms_protocol::reply::Info { info })) => {
            assert_eq!(info.entropy_source, "none: no seed at boot");
            assert_eq!(info.key_count, 0);
            assert!(!info.initialized);
        }
        other => panic!("GetInfo: {other:?}"),
    }

    refused(
        &mut token,
        Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 32 }),
    );
    refused(&mut token, Request::GetDeviceKey(pkms_protocol::request::GetDeviceKey {}));
    refused(
        &mut token,
        Request::OpenSession(pkms_protocol::request::OpenSession {
            ephemeral: &[4u8; 65],
            payload: &[0u8; 16],
        }),
    );
    refused(
        &mut token,
        Request::CreateKey(pkms_protocol::request::CreateKey {
            key_spec: KeySpec::SymmetricDefault,
            key_usage: None,
            description: "",
            tags: Tags::new(),
            user_presence_required: false,
        }),
    );
    refused(
        &mut token,
        Request::CreateKey(pkms_protocol::request::CreateKey {
            key_spec: KeySpec::EccNistP256,
            key_usage: None,
            description: "",
            tags: Tags::new(),
            user_presence_required: false,
        }),
    );
    refused(
        &mut token,
        Request::Initialize(pkms_protocol::request::Initialize {
            pin: b"123456",
            puk: b"12345678",
            audit_full: AuditFullMode::Overwrite,
        }),
    );
    refused(
        &mut token,
        Request::FactoryReset(pkms_protocol::request::FactoryReset { confirm: FACTORY_RESET_CONFIRMATION }),
    );

    // Booted again with entropy over the same flash: a new token, with a device key made now
    // (nothing the seedless boot wrote stands in its way).
    let mut h = Harness::with_flash(token.into_flash());
    assert!(!h.device_key().is_empty());
    let key = h.create(KeySpec::SymmetricDefault);
    let mut text = [0u8; 36];
    let blob = h.encrypt(key.write_text(&mut text), b"after a seeded boot", &[]);
    assert!(!blob.is_empty());
}

/// A generator whose entropy source can fail its health test after boot (the nRF52840 DRBG
/// after a failed reseed): from then on `try_fill_bytes` refuses.
struct FailsLater {
    rng: ChaCha20Rng,
    failed: std::rc::Rc<core::cell::Cell<bool>>,
}

impl RngCore for FailsLater {
    fn next_u32(&mut self) -> u32 {
        self.rng.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.rng.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_chacha::rand_core::Error> {
        self.rng.fill_bytes(dest);
        if self.failed.get() {
            dest.fill(0);
            return Err(rand_chacha::rand_core::Error::from(
                core::num::NonZeroU32::new(0x8000_0001).unwrap(),
            ));
        }
        Ok(())
    }
}

impl CryptoRng for FailsLater {}

type FailsLaterToken = Token<crate::Parts<MockFlash, FailsLater, TestBoard>>;

fn create_key() -> Request<'static> {
    Request::CreateKey(pkms_protocol::request::CreateKey {
        key_spec: KeySpec::SymmetricDefault,
        key_usage: None,
        description: "",
        tags: Tags::new(),
        user_presence_required: false,
    })
}

#[test]
fn an_entropy_source_failing_its_health_test_after_boot_puts_the_token_in_the_error_state() {
    let failed = std::rc::Rc::new(core::cell::Cell::new(false));
    let rng = FailsLater { rng: ChaCha20Rng::seed_from_u64(9), failed: failed.clone() };
    let mut token = FailsLaterToken::new(MockFlash::new(256 * 1024), rng, TestBoard::new());
    assert!(matches!(answer(&call(&mut token, create_key())), Ok(Response::KeyMetadata(_))));

    // A reseed fails its health test: the very next request finds the token in its error state.
    failed.set(true);
    let flash_before = token.flash().as_bytes().to_vec();
    let cuts_before = token.flash().cut_points();
    match answer(&call(&mut token, create_key())) {
        Err(e) => {
            assert_eq!(e.code, ErrorCode::SelfTestFailed, "{}", e.message);
            assert!(e.message.contains("DRBG"), "the refusal names the DRBG: {}", e.message);
        }
        Ok(r) => panic!("a key was made after the entropy source failed: {r:?}"),
    }
    for request in [
        Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 32 }),
        Request::GetDeviceKey(pkms_protocol::request::GetDeviceKey {}),
        Request::ListKeys(pkms_protocol::request::ListKeys { limit: None, marker: None }),
    ] {
        let what = std::format!("{request:?}");
        assert!(
            matches!(answer(&call(&mut token, request)), Err(e) if e.code == ErrorCode::SelfTestFailed),
            "{what} was served after the entropy source failed"
        );
    }
    match answer(&call(&mut token, Request::GetSelfTests(pkms_protocol::request::GetSelfTests {}))) {
        Ok(Response::SelfTestReport(r)) => {
            assert_eq!(r.outcome, pkms_protocol::SelfTests::Failed(pkms_protocol::SelfTest::Drbg))
        }
        other => panic!("GetSelfTests: {other:?}"),
    }
    assert!(matches!(
        answer(&call(&mut token, Request::GetInfo(pkms_protocol::request::GetInfo {}))),
        Ok(Response::Info(_))
    ));
    assert!(token.flash().as_bytes() == flash_before.as_slice(), "the error state wrote to the flash");
    assert_eq!(token.flash().cut_points(), cuts_before, "the error state wrote or erased");

    // A healthy generator again (a restart whose self-tests pass): the key is still there.
    failed.set(false);
    let flash = token.into_flash();
    let rng = FailsLater { rng: ChaCha20Rng::seed_from_u64(10), failed };
    let mut token = FailsLaterToken::new(flash, rng, TestBoard::new());
    match answer(&call(&mut token, Request::GetInfo(pkms_protocol::request::GetInfo {}))) {
        Ok(Response::Info(pkms_protocol::reply::Info { info })) => assert_eq!(info.key_count, 1),
        other => panic!("GetInfo: {other:?}"),
    }
}

#[test]
fn idle_work_draws_no_randomness_without_entropy_or_after_a_failed_health_test() {
    let mut token = NoSeedToken::new(MockFlash::new(256 * 1024), MustNotDraw, NoSeedBoard);
    token.idle(); // MustNotDraw panics if drawn from
    assert!(token.sessions.prepared().is_none());

    let failed = std::rc::Rc::new(core::cell::Cell::new(true));
    let rng = FailsLater { rng: ChaCha20Rng::seed_from_u64(9), failed };
    let mut token = FailsLaterToken::new(MockFlash::new(256 * 1024), rng, TestBoard::new());
    token.idle();
    assert!(token.sessions.prepared().is_none(), "a key was made from a failed generator");
    assert_eq!(token.self_tests(), pkms_protocol::SelfTests::Failed(pkms_protocol::SelfTest::Drbg));
}
