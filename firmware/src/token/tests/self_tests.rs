//! Power-on self-tests: a token whose self-test fails (a corrupted known answer stands in for
//! broken crypto) answers only Hello, GetInfo and GetSelfTests, touches nothing, and serves again
//! once it boots with sound crypto.

use super::*;
use crate::selftest::KATS;
use pkms_protocol::access::AuditFullMode;
use pkms_protocol::{SelfTest, SelfTests};

fn self_tests(h: &mut Harness, in_session: bool) -> SelfTests {
    let request = Request::GetSelfTests(pkms_protocol::request::GetSelfTests {});
    let reply = if in_session { h.call(request) } else { h.outer(request) };
    let outcome = match reply.get() {
        Ok(Response::SelfTestReport(pkms_protocol::reply::SelfTestReport { outcome })) => outcome,
        other => panic!("{other:?}"),
    };
    outcome
}

/// Boots on `flash` with one self-test's expected answer corrupted.
fn boot_failing(flash: MockFlash, test: SelfTest) -> Harness {
    let token = Token::with_self_test_answers(
        flash,
        ChaCha20Rng::seed_from_u64(77),
        TestBoard::new(),
        &KATS.corrupted(test),
    );
    Harness { token: std::boxed::Box::new(token), now: Some(T0 + 10), seed: 77, session: None }
}

#[test]
fn a_sound_token_reports_its_self_tests_passed_in_the_clear_and_in_a_session() {
    let mut h = Harness::new();
    assert_eq!(h.token.self_tests(), SelfTests::Passed);
    assert_eq!(self_tests(&mut h, false), SelfTests::Passed);
    h.open_session();
    h.ok(Request::Initialize(pkms_protocol::request::Initialize {
        pin: b"246810",
        puk: b"puk-12345678",
        audit_full: AuditFullMode::Overwrite,
    }));
    assert_eq!(self_tests(&mut h, true), SelfTests::Passed);
    h.close_session();
    assert_eq!(self_tests(&mut h, false), SelfTests::Passed, "answered in the clear once initialised");
}

#[test]
fn a_failed_self_test_leaves_only_hello_get_info_and_get_self_tests_and_touches_nothing() {
    // An open token with a key and a ciphertext under it.
    let mut h = Harness::new();
    let key = h.create(KeySpec::SymmetricDefault).to_string();
    let blob = h.encrypt(&key, b"kept safe", &[("app", "x")]);
    let start = h.token.into_flash();

    for test in SelfTest::ALL {
        let mut h = boot_failing(start.clone(), test);
        assert_eq!(h.token.self_tests(), SelfTests::Failed(test));
        assert_eq!(self_tests(&mut h, false), SelfTests::Failed(test), "{test:?}");
        h.ok(Request::Hello(pkms_protocol::request::Hello {
            protocol_version: pkms_protocol::PROTOCOL_VERSION,
        }));
        let info = super::basics::info(&mut h);
        assert_eq!(info.key_count, 1, "GetInfo still reports on the store");
        let refused: [Request<'_>; 7] = [
            Request::GetDeviceKey(pkms_protocol::request::GetDeviceKey {}),
            Request::OpenSession(pkms_protocol::request::OpenSession {
                ephemeral: &[4; 65],
                payload: &[0; 16],
            }),
            Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 16 }),
            Request::CreateKey(pkms_protocol::request::CreateKey {
                key_spec: KeySpec::SymmetricDefault,
                key_usage: None,
                description: "",
                tags: Tags::new(),
                user_presence_required: false,
            }),
            Request::Encrypt(pkms_protocol::request::Encrypt {
                key_id: &key,
                plaintext: b"new",
                encryption_context: EncryptionContext::new(),
            }),
            Request::Decrypt(pkms_protocol::request::Decrypt {
                ciphertext_blob: &blob,
                encryption_context: ctx(&[("app", "x")]),
                key_id: None,
            }),
            Request::ListKeys(pkms_protocol::request::ListKeys { limit: None, marker: None }),
        ];
        for request in refused {
            let what = std::format!("{test:?}: {request:?}");
            let (code, message) = h.err_outer(request);
            assert_eq!(code, ErrorCode::SelfTestFailed, "{what}");
            assert!(message.contains(test.name()), "{what}: {message}");
        }
        let flash = h.token.into_flash();
        assert_eq!(flash.as_bytes(), start.as_bytes(), "{test:?}: the error state wrote to the flash");
        assert_eq!(flash.cut_points(), start.cut_points(), "{test:?}: the error state wrote or erased");
    }

    // The next boot with sound crypto serves the same key and ciphertext.
    let mut h = Harness::with_flash(start);
    assert_eq!(h.decrypt(&blob, &[("app", "x")]).unwrap(), b"kept safe");
}

/// On an erased flash a failed self-test makes no device key: the first sound boot makes it.
#[test]
fn a_failed_self_test_on_a_new_token_makes_no_device_key() {
    let mut h = boot_failing(MockFlash::new(256 * 1024), SelfTest::EcdsaP256);
    assert_eq!(
        h.err_outer(Request::GetDeviceKey(pkms_protocol::request::GetDeviceKey {})).0,
        ErrorCode::SelfTestFailed
    );
    assert!(!super::basics::info(&mut h).initialized);
    let flash = h.token.into_flash();
    let mut h = Harness::with_flash(flash);
    assert_eq!(h.device_key().len(), pkms_p256::SPKI_DER_LEN);
    h.create(KeySpec::SymmetricDefault);
}

/// An initialised token in the error state still says it is initialised (GetInfo), so nobody
/// mistakes it for an open one.
#[test]
fn an_initialised_token_in_the_error_state_still_reports_itself_initialised() {
    let mut h = Harness::new();
    h.open_session();
    h.ok(Request::Initialize(pkms_protocol::request::Initialize {
        pin: b"246810",
        puk: b"puk-12345678",
        audit_full: AuditFullMode::Overwrite,
    }));
    let mut h = boot_failing(h.token.into_flash(), SelfTest::Aes256Gcm);
    assert!(super::basics::info(&mut h).initialized);
    assert_eq!(self_tests(&mut h, false), SelfTests::Failed(SelfTest::Aes256Gcm));
}

/// A board whose own test failed first (the nRF52840's TRNG health tests) starts the token in
/// the error state naming it; the token never draws from the generator it was given.
#[test]
fn a_board_reported_failure_is_the_error_state_too() {
    let mut h = Harness::new();
    h.create(KeySpec::SymmetricDefault);
    let start = h.token.into_flash();
    let token =
        Token::in_error_state(start.clone(), ChaCha20Rng::seed_from_u64(5), TestBoard::new(), SelfTest::Drbg);
    let mut h = Harness { token: std::boxed::Box::new(token), now: Some(T0), seed: 5, session: None };
    assert_eq!(self_tests(&mut h, false), SelfTests::Failed(SelfTest::Drbg));
    let (code, message) = h.err_outer(Request::GetDeviceKey(pkms_protocol::request::GetDeviceKey {}));
    assert_eq!(code, ErrorCode::SelfTestFailed);
    assert!(message.contains("DRBG"), "{message}");
    assert_eq!(super::basics::info(&mut h).key_count, 1);
    assert_eq!(h.token.into_flash().as_bytes(), start.as_bytes());
}
