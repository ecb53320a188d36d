//! Recovery without a session: PUK tries (spent only for principals that exist, answered alike
//! for unknown principals, delayed on the token's own clock) and factory reset (an
//! administrator's, or a blocked PUK and a press of the token's button).

use std::string::String;

use pkms_protocol::access::{AuditFullMode, FACTORY_RESET_CONFIRMATION, PIN_RETRIES};
use pkms_protocol::messages::Request;
use pkms_protocol::{ErrorCode, KeySpec};

use super::auth::{add_user, anonymous_session, init, initialized, login, PIN, PUK};
use super::*;
use crate::auth::{pin::STRETCHES, puk_delay_ms, PUK_DELAY_BASE_MS, PUK_DELAY_MAX_MS};

fn unblock(h: &mut Harness, who: &str, puk: &[u8]) -> Result<(), (ErrorCode, String)> {
    let r = h.call(Request::UnblockPin(pkms_protocol::request::UnblockPin {
        principal: who,
        puk,
        new_pin: b"555555",
    }));
    let res = r.get();
    res.map(|_| ()).map_err(|e| (e.code, String::from(e.message)))
}

fn reset(h: &mut Harness) -> Result<(), ErrorCode> {
    let r = h.call(Request::FactoryReset(pkms_protocol::request::FactoryReset {
        confirm: FACTORY_RESET_CONFIRMATION,
    }));
    let res = r.get();
    res.map(|_| ()).map_err(|e| e.code)
}

/// Lets `ms` pass on the token's clock; the anonymous session, idle that long, is replaced by a
/// new one.
fn advance(h: &mut Harness, ms: u64) {
    h.token.board_mut().uptime_ms += ms;
    anonymous_session(h);
}

/// Lets the longest wait between PUK tries pass on the token's clock.
fn wait_out(h: &mut Harness) {
    advance(h, PUK_DELAY_MAX_MS);
}

fn stretches() -> u32 {
    STRETCHES.with(|n| n.get())
}

fn key_exists(h: &mut Harness, k: &str) -> bool {
    login(h, "admin", PIN);
    h.call(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: k })).get().is_ok()
}

#[test]
fn wrong_puk_tries_wait_longer_each_time_on_the_tokens_clock_not_the_hosts() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    add_user(&mut h, "bob", b"135790");
    anonymous_session(&mut h);
    // A typo costs nothing (and its answer names no wait); the second failure makes the token
    // wait a minute.
    assert_eq!(
        unblock(&mut h, "bob", b"wrong-puk").unwrap_err(),
        (ErrorCode::AuthenticationFailed, String::from("wrong principal or PUK"))
    );
    let (code, msg) = unblock(&mut h, "bob", b"wrong-puk").unwrap_err();
    assert_eq!(code, ErrorCode::AuthenticationFailed);
    assert!(msg.contains("60 s"), "{msg}");
    // Until then every try is refused unchecked, the right PUK too, and a host clock years ahead
    // changes nothing.
    for now in [Some(T0), Some(T0 + 5 * 365 * 86_400), None] {
        h.now = now;
        let (code, msg) = unblock(&mut h, "bob", PUK).unwrap_err();
        assert_eq!(code, ErrorCode::LimitExceeded, "{msg}");
        assert!(msg.contains("60 s"), "{msg}");
    }
    h.now = Some(T0);
    advance(&mut h, PUK_DELAY_BASE_MS - 1);
    assert_eq!(
        unblock(&mut h, "bob", PUK).unwrap_err(),
        (
            ErrorCode::LimitExceeded,
            String::from("wrong PUKs make the token wait: the next PUK try is accepted in 1 s")
        )
    );
    advance(&mut h, 1);
    // Each further failure doubles the wait, up to an hour and four minutes.
    let mut expected = PUK_DELAY_BASE_MS;
    for failures in 3..=6u8 {
        assert_eq!(unblock(&mut h, "bob", b"wrong-puk").unwrap_err().0, ErrorCode::AuthenticationFailed);
        expected *= 2;
        assert_eq!(puk_delay_ms(failures), expected);
        advance(&mut h, expected - 1);
        assert_eq!(unblock(&mut h, "bob", PUK).unwrap_err().0, ErrorCode::LimitExceeded);
        advance(&mut h, 1);
    }
    assert_eq!(puk_delay_ms(7), PUK_DELAY_BASE_MS << 5);
    assert_eq!(puk_delay_ms(8), PUK_DELAY_MAX_MS);
    assert_eq!(puk_delay_ms(9), PUK_DELAY_MAX_MS);
    assert_eq!(puk_delay_ms(u8::MAX), PUK_DELAY_MAX_MS);
    assert_eq!((puk_delay_ms(0), puk_delay_ms(1)), (0, 0));
    // Six tries spent; a restart does not cut the wait short: it starts again at boot.
    assert_eq!(unblock(&mut h, "bob", b"wrong-puk").unwrap_err().0, ErrorCode::AuthenticationFailed);
    let mut h = h.restart();
    anonymous_session(&mut h);
    assert_eq!(unblock(&mut h, "bob", PUK).unwrap_err().0, ErrorCode::LimitExceeded);
    advance(&mut h, puk_delay_ms(7));
    // The right PUK, in time, unblocks, and the count starts over.
    unblock(&mut h, "bob", PUK).unwrap();
    assert_eq!(unblock(&mut h, "bob", b"wrong-puk").unwrap_err().0, ErrorCode::AuthenticationFailed);
    assert_eq!(unblock(&mut h, "bob", b"wrong-puk").unwrap_err().0, ErrorCode::AuthenticationFailed);
    assert_eq!(unblock(&mut h, "bob", PUK).unwrap_err().0, ErrorCode::LimitExceeded);
}

/// Two identical tokens: one is asked about a principal that exists, the other about one that
/// does not. Every answer is the same, each try stretches the PUK once, and only the first
/// token's PUK blocks.
#[test]
fn a_puk_try_is_spent_only_for_a_principal_that_exists_and_the_answer_does_not_tell() {
    let mut real = Harness::new();
    let mut ghost = Harness::new();
    for h in [&mut real, &mut ghost] {
        init(h, AuditFullMode::Overwrite);
        add_user(h, "bob", b"135790");
        anonymous_session(h);
    }
    for i in 0..PIN_RETRIES - 1 {
        let before = stretches();
        let a = unblock(&mut real, "bob", b"wrong-puk").unwrap_err();
        assert_eq!(stretches() - before, 1);
        let before = stretches();
        let b = unblock(&mut ghost, "nobody", b"wrong-puk").unwrap_err();
        assert_eq!(stretches() - before, 1);
        assert_eq!(a, b, "try {i}");
        // Even the right PUK with an unknown name: a failure like any other.
        wait_out(&mut real);
        wait_out(&mut ghost);
    }
    let before = stretches();
    assert_eq!(unblock(&mut ghost, "nobody", PUK).unwrap_err().0, ErrorCode::AuthenticationFailed);
    assert_eq!(stretches() - before, 1);
    wait_out(&mut ghost);
    // The eighth spent try blocks the real token's PUK; the other's still works.
    assert_eq!(unblock(&mut real, "bob", b"wrong-puk").unwrap_err().0, ErrorCode::PinLocked);
    wait_out(&mut real);
    assert_eq!(unblock(&mut real, "bob", PUK).unwrap_err().0, ErrorCode::PinLocked);
    for _ in 0..2 * PIN_RETRIES {
        assert_eq!(
            unblock(&mut ghost, "nobody", b"wrong-puk").unwrap_err().0,
            ErrorCode::AuthenticationFailed
        );
        wait_out(&mut ghost);
    }
    unblock(&mut ghost, "bob", PUK).unwrap();
    login(&mut ghost, "bob", b"555555");
}

#[test]
fn an_unknown_principal_and_a_wrong_pin_get_the_same_answer_after_the_same_work() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    add_user(&mut h, "bob", b"135790");
    anonymous_session(&mut h);
    let mut answers = std::vec::Vec::new();
    for who in ["bob", "nobody", "not a valid name"] {
        let before = stretches();
        let answer = h.err(Request::Authenticate(pkms_protocol::request::Authenticate {
            principal: who,
            pin: b"000000",
        }));
        assert_eq!(stretches() - before, 1, "{who}: one PIN stretch");
        answers.push(answer);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    assert_eq!(answers[0], (ErrorCode::AuthenticationFailed, String::from("wrong principal or PIN")));
}

#[test]
fn with_a_blocked_puk_only_an_administrator_or_a_button_press_resets_the_token() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    add_user(&mut h, "bob", b"135790");
    let k = s(&h.create(KeySpec::SymmetricDefault));
    // With the PUK working, a button press alone opens nothing (and is not even asked for).
    anonymous_session(&mut h);
    h.token.board_mut().presence = UserPresence::Confirmed;
    assert_eq!(reset(&mut h), Err(ErrorCode::AccessDenied));
    assert_eq!(h.token.board_mut().asked, 0);
    h.token.board_mut().presence = UserPresence::Unsupported;
    // Eight wrong PUKs for a principal that exists block the PUK.
    for _ in 0..PIN_RETRIES {
        let _ = unblock(&mut h, "bob", b"wrong-puk");
        wait_out(&mut h);
    }
    assert_eq!(unblock(&mut h, "bob", PUK).unwrap_err().0, ErrorCode::PinLocked);
    // No session and no button (the QEMU token): refused, the keys stay.
    assert_eq!(reset(&mut h), Err(ErrorCode::AccessDenied));
    assert!(key_exists(&mut h, &k));
    // A button nobody presses: refused.
    anonymous_session(&mut h);
    h.token.board_mut().presence = UserPresence::TimedOut;
    assert_eq!(reset(&mut h), Err(ErrorCode::AccessDenied));
    assert_eq!(h.token.board_mut().asked, 2);
    assert!(key_exists(&mut h, &k));
    // A user's session is no better than none.
    login(&mut h, "bob", b"135790");
    assert_eq!(reset(&mut h), Err(ErrorCode::AccessDenied));
    assert!(key_exists(&mut h, &k));
    // A press of the button, with the PUK blocked: the token is wiped and open again.
    anonymous_session(&mut h);
    h.token.board_mut().presence = UserPresence::Confirmed;
    reset(&mut h).unwrap();
    assert!(!initialized(&mut h));
    assert_eq!(
        h.code(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: &k })),
        ErrorCode::NotFound
    );
}

#[test]
fn an_administrator_resets_a_token_whose_puk_is_blocked_without_a_button() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    anonymous_session(&mut h);
    for _ in 0..PIN_RETRIES {
        let _ = unblock(&mut h, "admin", b"wrong-puk");
        wait_out(&mut h);
    }
    login(&mut h, "admin", PIN);
    reset(&mut h).unwrap();
    assert_eq!(h.token.board_mut().asked, 0);
    assert!(!initialized(&mut h));
}
