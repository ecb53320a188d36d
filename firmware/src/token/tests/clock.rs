//! The token's clock under a host that lies: no one without a PIN moves it, a user moves it only
//! a day past what an administrator vouched for (plus the token's powered-on time), an
//! administrator catches it up, every automatic act and every long move is audited, the year
//! 9999 is the end of time, and a factory reset forgets it.

use std::vec::Vec;

use pkms_protocol::access::{audit_operation_name, AuditFullMode, Role};
use pkms_protocol::limits::SECONDS_PER_DAY;
use pkms_protocol::messages::{Request, Response};
use pkms_protocol::{request, KeyState};

use super::auth::read_all;
use super::basics::info;
use super::*;
use crate::state::{MAX_UNIX_TIME, USER_CLOCK_SLACK};

const PIN: &[u8] = b"246810";
const BOB: &[u8] = b"135790";
const DAY: u64 = SECONDS_PER_DAY;

/// An initialised token (vouched at T0) with a user bob; the harness is in the admin's session.
fn initialised() -> Harness {
    let mut h = Harness::new();
    h.open_session();
    h.ok(Request::Initialize(request::Initialize {
        pin: PIN,
        puk: b"puk-12345678",
        audit_full: AuditFullMode::Overwrite,
    }));
    h.ok(Request::CreatePrincipal(request::CreatePrincipal { name: "bob", pin: BOB, role: Role::User }));
    h
}

fn session_as(h: &mut Harness, who: &str, pin: &[u8]) {
    h.close_session();
    h.open_session();
    h.ok(Request::Authenticate(request::Authenticate { principal: who, pin }));
}

fn clock(h: &mut Harness) -> u64 {
    info(h).time_high_water_mark
}

fn state(h: &mut Harness, key: &str) -> KeyState {
    h.describe(key).key_state
}

fn versions(h: &mut Harness, key: &str) -> u32 {
    h.describe(key).current_key_version
}

/// A key pending deletion (window `days`) and a key rotating every 90 days, made at T0 by the
/// administrator.
fn pending_and_rotating(h: &mut Harness, days: u16) -> (std::string::String, std::string::String) {
    let a = s(&h.create(KeySpec::SymmetricDefault));
    let r = s(&h.create(KeySpec::SymmetricDefault));
    h.ok(Request::ScheduleKeyDeletion(request::ScheduleKeyDeletion {
        key_id: &a,
        pending_window_in_days: Some(days),
    }));
    h.ok(Request::EnableKeyRotation(request::EnableKeyRotation {
        key_id: &r,
        rotation_period_in_days: Some(90),
    }));
    (a, r)
}

#[test]
fn a_far_future_time_from_someone_without_a_pin_moves_nothing() {
    let mut h = initialised();
    let (a, r) = pending_and_rotating(&mut h, 30);
    h.close_session();
    // Five years ahead: in the clear, and in a session no one logged in to.
    h.now = Some(T0 + 5 * 365 * DAY);
    for _ in 0..30 {
        assert!(info(&mut h).initialized);
        h.device_key();
    }
    h.open_session();
    for _ in 0..30 {
        assert_eq!(
            h.code(Request::DescribeKey(request::DescribeKey { key_id: &a })),
            ErrorCode::AuthenticationFailed
        );
        assert_eq!(
            h.code(Request::Authenticate(request::Authenticate { principal: "nobody", pin: b"000000" })),
            ErrorCode::AuthenticationFailed
        );
    }
    // The answers in the clear carry the token's own clock, not the host's.
    h.close_session();
    assert_eq!(clock(&mut h), T0);
    // The administrator comes back at the real time: nothing happened.
    h.now = Some(T0 + 60);
    session_as(&mut h, "admin", PIN);
    assert_eq!(state(&mut h, &a), KeyState::PendingDeletion);
    assert_eq!(versions(&mut h, &r), 1);
    assert!(clock(&mut h) < T0 + DAY);
    // And the deletion can still be cancelled.
    h.ok(Request::CancelKeyDeletion(request::CancelKeyDeletion { key_id: &a }));
    assert_eq!(state(&mut h, &a), KeyState::Disabled);
}

/// The administrator looks without telling the time (no `now`: the clock stays).
fn admin_looks(h: &mut Harness, key: &str) -> (u64, Result<KeyState, ErrorCode>) {
    let now = h.now.take();
    session_as(h, "admin", PIN);
    let c = clock(h);
    let r = h.call(Request::DescribeKey(request::DescribeKey { key_id: key }));
    let state = match r.get() {
        Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata })) => {
            Ok(key_metadata.key_state)
        }
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.code),
    };
    h.now = now;
    (c, state)
}

#[test]
fn a_user_moves_the_clock_at_most_a_day_past_the_vouched_time_and_cannot_ratchet_it() {
    let mut h = initialised();
    let (a, r) = pending_and_rotating(&mut h, 7);
    let list = || Request::ListKeys(request::ListKeys { limit: None, marker: None });
    session_as(&mut h, "bob", BOB);
    // Bob's host says it is 100 days later, again and again, each time a day further.
    for i in 0..20u64 {
        h.now = Some(T0 + (100 + i) * DAY);
        h.ok(list());
    }
    assert_eq!(admin_looks(&mut h, &a), (T0 + USER_CLOCK_SLACK, Ok(KeyState::PendingDeletion)));
    // The token's own powered-on time widens the bound: three days on, bob may reach T0 + 4 days.
    h.token.board_mut().uptime_ms += 3 * DAY * 1000;
    session_as(&mut h, "bob", BOB);
    h.ok(list());
    assert_eq!(admin_looks(&mut h, &a).0, T0 + 3 * DAY + USER_CLOCK_SLACK);
    // After a restart the bound is the vouched time plus this boot's uptime (earlier boots'
    // uptime is not known), and the clock never runs back.
    let mut h = h.restart();
    h.now = Some(T0 + 100 * DAY);
    session_as(&mut h, "bob", BOB);
    assert_eq!(admin_looks(&mut h, &a).0, T0 + 3 * DAY + USER_CLOCK_SLACK);
    h.token.board_mut().uptime_ms = 5 * DAY * 1000;
    session_as(&mut h, "bob", BOB);
    h.ok(list());
    // Nothing is due at T0 + 6 days: the 7-day window still runs.
    assert_eq!(admin_looks(&mut h, &a), (T0 + 5 * DAY + USER_CLOCK_SLACK, Ok(KeyState::PendingDeletion)));
    // The administrator vouches for the real time: the token catches up at once.
    session_as(&mut h, "admin", PIN);
    assert_eq!(clock(&mut h), T0 + 100 * DAY);
    assert_eq!(
        h.code(Request::DescribeKey(request::DescribeKey { key_id: &a })),
        ErrorCode::NotFound,
        "the deletion the administrator's time made due did not happen"
    );
    assert_eq!(versions(&mut h, &r), 2);
}

#[test]
fn every_automatic_deletion_and_rotation_and_every_long_clock_move_has_an_audit_entry() {
    let mut h = initialised();
    let (a, r) = pending_and_rotating(&mut h, 7);
    // The token sat in a drawer for 200 days; the administrator's next call catches it up.
    h.now = Some(T0 + 200 * DAY);
    h.ok(Request::ListKeys(request::ListKeys { limit: None, marker: None }));
    let (entries, ..) = read_all(&mut h);
    let names: Vec<&str> = entries.iter().map(|e| audit_operation_name(e.operation).unwrap()).collect();
    let at = names.iter().position(|n| *n == "ClockMoved").expect("no ClockMoved entry");
    assert_eq!(entries[at].time, T0 + 200 * DAY);
    assert!(entries[at - 1].time < T0 + DAY, "the entry before carries the old time");
    let deleted: Vec<_> =
        entries.iter().filter(|e| audit_operation_name(e.operation) == Some("AutomaticDeletion")).collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(s(&pkms_protocol::KeyId(deleted[0].key_id)), a);
    let rotated: Vec<_> =
        entries.iter().filter(|e| audit_operation_name(e.operation) == Some("AutomaticRotation")).collect();
    assert!(!rotated.is_empty());
    assert!(rotated.iter().all(|e| s(&pkms_protocol::KeyId(e.key_id)) == r));
    assert_eq!(rotated.last().unwrap().key_version, versions(&mut h, &r));
    assert_eq!(rotated.len() as u32, versions(&mut h, &r) - 1, "one entry per automatic rotation");
    // What the token did by itself comes before the request that made it due, and names no one.
    let list = names.iter().rposition(|n| *n == "ListKeys").unwrap();
    assert!(at < list && names.iter().rposition(|n| *n == "AutomaticRotation").unwrap() < list);
    assert!(deleted[0].principal_name().is_empty());
    // A move of less than a day is not an event.
    h.now = Some(T0 + 200 * DAY + 3600);
    h.ok(Request::ListKeys(request::ListKeys { limit: None, marker: None }));
    let (entries, ..) = read_all(&mut h);
    assert_eq!(entries.iter().filter(|e| audit_operation_name(e.operation) == Some("ClockMoved")).count(), 1);
}

#[test]
fn times_after_the_year_9999_are_refused_and_no_date_saturates_into_always_due() {
    let mut h = initialised();
    let k = s(&h.create(KeySpec::SymmetricDefault));
    for bad in [MAX_UNIX_TIME + 1, u64::MAX] {
        h.now = Some(bad);
        let (code, msg) = h.err(Request::ListKeys(request::ListKeys { limit: None, marker: None }));
        assert_eq!(code, ErrorCode::Validation);
        assert!(msg.contains("9999"), "{msg}");
        // Even GetInfo in the clear.
        let (code, _) = h.err_outer(Request::GetInfo(request::GetInfo {}));
        assert_eq!(code, ErrorCode::Validation);
    }
    // The last second of 9999 is a time like any other: a 30-day deletion scheduled then is
    // not due at once, and stays cancellable.
    h.now = Some(MAX_UNIX_TIME);
    h.ok(Request::ScheduleKeyDeletion(request::ScheduleKeyDeletion {
        key_id: &k,
        pending_window_in_days: Some(30),
    }));
    for _ in 0..3 {
        assert_eq!(state(&mut h, &k), KeyState::PendingDeletion);
    }
    h.ok(Request::CancelKeyDeletion(request::CancelKeyDeletion { key_id: &k }));
    assert_eq!(state(&mut h, &k), KeyState::Disabled);
    h.ok(Request::EnableKey(request::EnableKey { key_id: &k }));
    h.ok(Request::EnableKeyRotation(request::EnableKeyRotation {
        key_id: &k,
        rotation_period_in_days: Some(90),
    }));
    for _ in 0..3 {
        h.ok(Request::ListKeys(request::ListKeys { limit: None, marker: None }));
    }
    assert_eq!(versions(&mut h, &k), 1, "a rotation date past 9999 came due");
}

#[test]
fn a_factory_reset_forgets_the_time() {
    let mut h = initialised();
    h.now = Some(T0 + 1000 * DAY);
    h.ok(Request::ListKeys(request::ListKeys { limit: None, marker: None }));
    assert_eq!(clock(&mut h), T0 + 1000 * DAY);
    h.ok(Request::FactoryReset(request::FactoryReset {
        confirm: pkms_protocol::access::FACTORY_RESET_CONFIRMATION,
    }));
    h.now = Some(T0);
    assert_eq!(clock(&mut h), T0, "the bad clock survived the reset");
    let mut h = h.restart();
    h.now = None;
    assert!(clock(&mut h) < T0 + DAY, "the bad clock came back from flash");
}

/// The clock as a restarted token knows it: what it last wrote to flash.
fn clock_after_restart(h: Harness) -> (Harness, u64) {
    let mut h = h.restart();
    let now = h.now.take();
    let c = clock(&mut h);
    h.now = now;
    (h, c)
}

#[test]
fn the_clock_reaches_flash_each_time_it_or_the_vouched_time_moved_an_hour() {
    use crate::state::CLOCK_PERSIST_INTERVAL as HOUR;
    let list = || Request::ListKeys(request::ListKeys { limit: None, marker: None });
    let h = initialised();
    let (mut h, at_start) = clock_after_restart(h);
    assert_eq!(at_start, T0);
    // Just under an hour later: not written (a restart loses less than an hour).
    session_as(&mut h, "admin", PIN);
    h.now = Some(T0 + HOUR - 1);
    h.ok(list());
    let (mut h, c) = clock_after_restart(h);
    assert_eq!(c, T0, "the clock was written before it had moved an hour");
    // An hour later: written.
    session_as(&mut h, "admin", PIN);
    h.now = Some(T0 + HOUR);
    h.ok(list());
    let (mut h, c) = clock_after_restart(h);
    assert_eq!(c, T0 + HOUR, "the clock was not written after it moved an hour");
    // A user moves the clock (not the vouched time) 20 hours: written.
    session_as(&mut h, "bob", BOB);
    h.now = Some(T0 + HOUR + 20 * HOUR);
    h.ok(list());
    let (mut h, c) = clock_after_restart(h);
    assert_eq!(c, T0 + 21 * HOUR, "a user's bounded move of the clock was not written");
    // The administrator vouches for T0 + 2 h: the clock stays (it never runs back), only the
    // vouched time moves an hour — and that alone is written, as the next user bound shows.
    session_as(&mut h, "admin", PIN);
    h.now = Some(T0 + 2 * HOUR);
    h.ok(list());
    let (mut h, c) = clock_after_restart(h);
    assert_eq!(c, T0 + 21 * HOUR);
    session_as(&mut h, "bob", BOB);
    h.now = Some(T0 + 100 * DAY);
    h.ok(list());
    let (_, c) = clock_after_restart(h);
    assert_eq!(c, T0 + 2 * HOUR + USER_CLOCK_SLACK, "the vouched time's move was not written");
}

#[test]
fn a_move_of_exactly_a_day_is_not_a_clock_jump_and_one_second_more_is() {
    let list = || Request::ListKeys(request::ListKeys { limit: None, marker: None });
    let jumps = |h: &mut Harness| {
        let (entries, ..) = read_all(h);
        entries.iter().filter(|e| audit_operation_name(e.operation) == Some("ClockMoved")).count()
    };
    let mut h = initialised();
    h.now = Some(T0 + USER_CLOCK_SLACK);
    h.ok(list());
    assert_eq!(jumps(&mut h), 0, "a move of exactly a day was logged as a jump");
    h.now = Some(T0 + 2 * USER_CLOCK_SLACK + 1);
    h.ok(list());
    assert_eq!(jumps(&mut h), 1, "a move of a day and a second was not logged");
}
