//! Requests from no one logged in are counted in the audit log, not logged one by one: a flood of
//! them neither pushes retained entries out nor fills a log that refuses when full, and failed
//! PIN and PUK checks survive a power cut until they are written.

use pkms_protocol::access::{AuditFullMode, FACTORY_RESET_CONFIRMATION};
use pkms_protocol::messages::Request;
use pkms_protocol::{ErrorCode, KeySpec};

use super::auth::CAPACITY;
use super::auth::{anonymous_session, encrypt_code, init, login, read_all, verify_chain, PIN};
use super::*;

/// Sends `n` requests in a session with no login, of every kind an attacker without a PIN can
/// send; returns how many were answered without error, failed a PIN or PUK check, and were
/// refused otherwise (a PUK try before its wait, a factory reset, an Encrypt).
fn flood(h: &mut Harness, key: &str, n: usize) -> (u32, u32, u32) {
    let mut counts = (0, 0, 0);
    for i in 0..n {
        let answer = match i % 6 {
            0 => h.call(Request::Hello(pkms_protocol::request::Hello {
                protocol_version: pkms_protocol::PROTOCOL_VERSION,
            })),
            1 => h.call(Request::GetInfo(pkms_protocol::request::GetInfo {})),
            2 => h.call(Request::Authenticate(pkms_protocol::request::Authenticate {
                principal: "nobody",
                pin: b"000000",
            })),
            3 => h.call(Request::UnblockPin(pkms_protocol::request::UnblockPin {
                principal: "nobody",
                puk: b"wrong-puk",
                new_pin: b"000000",
            })),
            4 => h.call(Request::Encrypt(pkms_protocol::request::Encrypt {
                key_id: key,
                plaintext: b"x",
                encryption_context: ctx(&[]),
            })),
            _ => h.call(Request::FactoryReset(pkms_protocol::request::FactoryReset {
                confirm: FACTORY_RESET_CONFIRMATION,
            })),
        };
        let code = answer.get().map(|_| ()).map_err(|e| e.code);
        match code {
            Ok(()) => counts.0 += 1,
            Err(ErrorCode::AuthenticationFailed) if matches!(i % 6, 2 | 3) => counts.1 += 1,
            Err(_) => counts.2 += 1,
        }
    }
    counts
}

#[test]
fn requests_outside_a_session_cannot_push_entries_out_of_the_log() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    let k = s(&h.create(KeySpec::SymmetricDefault));
    h.encrypt(&k, b"x", &[]);
    let (before, ..) = read_all(&mut h);
    anonymous_session(&mut h);
    let (answered, failed, refused) = flood(&mut h, &k, 3 * CAPACITY);
    assert!(answered > 0 && failed > 0 && refused > 0);
    h.ok(Request::Authenticate(pkms_protocol::request::Authenticate { principal: "admin", pin: PIN }));
    let (entries, seq, hash, sig, pk, first, base) = read_all(&mut h);
    verify_chain(&entries, seq, &hash, &sig, &pk, first, &base);
    // Nothing was dropped: every entry held before is still there, unchanged.
    assert_eq!(first, 1);
    assert_eq!(entries[..before.len()], before[..]);
    // The flood (and the handshake before it: GetDeviceKey and OpenSession) is one entry of
    // counts, just before the administrator's Authenticate; every other entry is a principal's.
    let at: Vec<usize> =
        (0..entries.len()).filter(|i| entries[*i].unauthenticated_requests().is_some()).collect();
    assert_eq!(at.len(), 1);
    let counts = entries[at[0]].unauthenticated_requests().unwrap();
    assert_eq!(
        (counts.answered, counts.failed_authentications, counts.refused),
        (answered + 2, failed, refused)
    );
    assert_eq!(counts.total(), 3 * CAPACITY as u64 + 2);
    assert_eq!(entries[at[0] + 1].operation, pkms_protocol::Operation::Authenticate.index());
    assert!(entries.iter().enumerate().all(|(i, e)| i == at[0] || e.principal_name() == "admin"));
    assert!(entries.len() < before.len() + 10);
}

#[test]
fn requests_outside_a_session_cannot_fill_a_log_that_refuses_when_full() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Refuse);
    let k = s(&h.create(KeySpec::SymmetricDefault));
    anonymous_session(&mut h);
    flood(&mut h, &k, 2 * CAPACITY);
    login(&mut h, "admin", PIN);
    assert_eq!(encrypt_code(&mut h, &k, &[]), None);
    let (entries, ..) = read_all(&mut h);
    assert!(entries.len() < 8, "{} entries", entries.len());
    // Close to full, the counts wait rather than take the last place an operation needs.
    while h.token.core.entries(crate::records::Kind::Audit).len() < CAPACITY - 2 {
        assert_eq!(encrypt_code(&mut h, &k, &[]), None);
    }
    // The administrator's CloseSession takes the last place but one.
    anonymous_session(&mut h);
    let sequence = h.token.log.head_sequence;
    let pending = h.token.log.unauthenticated.total();
    flood(&mut h, &k, 12);
    h.ok(Request::Authenticate(pkms_protocol::request::Authenticate { principal: "admin", pin: PIN }));
    assert_eq!(h.token.log.head_sequence, sequence + 1, "the Authenticate alone took the last place");
    assert_eq!(h.token.log.unauthenticated.total(), pending + 12);
    assert_eq!(encrypt_code(&mut h, &k, &[]), Some(ErrorCode::AuditLogFull));
    // The failed PIN and PUK checks among them survive a restart while they wait, and are
    // written once the log is trimmed.
    let failed = h.token.log.unauthenticated.failed_authentications;
    assert!(failed > 0);
    let mut h = h.restart();
    login(&mut h, "admin", PIN);
    assert_eq!(h.token.log.unauthenticated.failed_authentications, failed);
    h.ok(Request::TrimAuditLog(pkms_protocol::request::TrimAuditLog { through_sequence: sequence }));
    assert_eq!(encrypt_code(&mut h, &k, &[]), None);
    let (entries, ..) = read_all(&mut h);
    let counts: Vec<_> = entries.iter().filter_map(|e| e.unauthenticated_requests()).collect();
    assert_eq!(counts.last().map(|c| c.failed_authentications), Some(failed));
}

fn wrong_pin(h: &mut Harness, who: &str) {
    assert_eq!(
        h.code(Request::Authenticate(pkms_protocol::request::Authenticate {
            principal: who,
            pin: b"000000"
        })),
        ErrorCode::AuthenticationFailed
    );
}

fn admin_session(h: &mut Harness) {
    h.ok(Request::Authenticate(pkms_protocol::request::Authenticate { principal: "admin", pin: PIN }));
}

/// The entries of counts the log holds (read from the store: no request is made).
fn counts_in_log(h: &mut Harness) -> std::vec::Vec<pkms_protocol::access::UnauthenticatedRequests> {
    let ids: std::vec::Vec<_> =
        h.token.core.entries(crate::records::Kind::Audit).iter().map(|e| e.id).collect();
    ids.iter()
        .filter_map(|id| {
            h.token
                .core
                .read::<pkms_protocol::access::AuditEntry>(id)
                .unwrap()
                .unwrap()
                .unauthenticated_requests()
        })
        .collect()
}

#[test]
fn failed_authentications_survive_a_restart_until_they_are_logged() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    anonymous_session(&mut h);
    wrong_pin(&mut h, "nobody");
    h.ok(Request::GetInfo(pkms_protocol::request::GetInfo {}));
    wrong_pin(&mut h, "admin");
    wrong_pin(&mut h, "nobody");
    // Counted after the last failure: kept in RAM only, lost with the power.
    h.ok(Request::GetInfo(pkms_protocol::request::GetInfo {}));
    let mut h = h.restart();
    anonymous_session(&mut h);
    admin_session(&mut h);
    let counts = counts_in_log(&mut h);
    assert_eq!(counts.len(), 1);
    // Written at the last failure: the three failures and the three answers before it (the
    // handshake and a GetInfo); the GetInfo after it was lost with the power, and the new
    // handshake is added.
    assert_eq!((counts[0].answered, counts[0].failed_authentications, counts[0].refused), (3 + 2, 3, 0));
    assert!(!h.token.core.contains(crate::records::Kind::AuditPending, &crate::records::SINGLETON_ID));
}

#[test]
fn a_power_cut_at_any_byte_of_writing_the_counts_neither_loses_nor_repeats_them() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    anonymous_session(&mut h);
    wrong_pin(&mut h, "nobody");
    wrong_pin(&mut h, "nobody");
    let start = h.token.into_flash();
    let total = {
        let mut h = Harness::with_flash(start.clone());
        h.open_session();
        let before = h.token.flash().bytes_written();
        admin_session(&mut h);
        h.token.flash().bytes_written() - before
    };
    assert!(total > 0);
    for cut in 0..total {
        let mut h = Harness::with_flash_seed(start.clone(), 300 + cut);
        h.open_session();
        h.token.core.flash_mut().cut_power_after(cut);
        let _ = h.call(Request::Authenticate(pkms_protocol::request::Authenticate {
            principal: "admin",
            pin: PIN,
        }));
        let mut flash = h.token.into_flash();
        flash.restore_power();
        let mut h = Harness::with_flash_seed(flash, 900 + cut);
        h.open_session();
        admin_session(&mut h);
        let counts = counts_in_log(&mut h);
        assert_eq!(counts.len(), 1, "cut {cut}/{total}: {counts:?}");
        assert_eq!(counts[0].failed_authentications, 2, "cut {cut}/{total}");
    }
    std::println!("counts: {total} cut points");
}

/// A log that refuses when full cannot record what the token would do by itself, so while it is
/// full the token does none of it: the clock stays, a due deletion and a due rotation wait; once
/// the log is trimmed, the next administrator request catches up and each act gets its entry.
#[test]
fn while_a_refusing_log_is_full_the_token_moves_no_clock_and_runs_no_due_act() {
    use pkms_protocol::access::audit_operation_name;
    let day = pkms_protocol::limits::SECONDS_PER_DAY;
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Refuse);
    let pending = s(&h.create(KeySpec::SymmetricDefault));
    let rotating = s(&h.create(KeySpec::SymmetricDefault));
    h.ok(Request::ScheduleKeyDeletion(pkms_protocol::request::ScheduleKeyDeletion {
        key_id: &pending,
        pending_window_in_days: Some(7),
    }));
    h.ok(Request::EnableKeyRotation(pkms_protocol::request::EnableKeyRotation {
        key_id: &rotating,
        rotation_period_in_days: Some(90),
    }));
    while !h.token.log.is_full(&h.token.core) {
        assert_eq!(encrypt_code(&mut h, &rotating, &[]), None);
    }
    let sequence = h.token.log.head_sequence;
    // 200 days later, the administrator's requests while the log is full.
    let before = super::basics::info(&mut h).time_high_water_mark;
    h.now = Some(T0 + 200 * day);
    let (entries, ..) = read_all(&mut h);
    assert_eq!(entries.last().map(|e| e.sequence), Some(sequence), "something was logged into a full log");
    assert_eq!(super::basics::info(&mut h).time_high_water_mark, before, "the clock moved unrecorded");
    assert_eq!(super::basics::info(&mut h).key_count, 2, "a key was deleted unrecorded");
    // Trimmed: the next request catches up, with an entry for each act.
    h.ok(Request::TrimAuditLog(pkms_protocol::request::TrimAuditLog { through_sequence: sequence }));
    assert_eq!(encrypt_code(&mut h, &rotating, &[]), None);
    assert_eq!(h.describe(&rotating).current_key_version, 2);
    assert_eq!(
        h.code(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: &pending })),
        ErrorCode::NotFound
    );
    let (entries, ..) = read_all(&mut h);
    let names: Vec<&str> = entries.iter().map(|e| audit_operation_name(e.operation).unwrap_or("?")).collect();
    for event in ["ClockMoved", "AutomaticDeletion", "AutomaticRotation"] {
        assert_eq!(names.iter().filter(|n| **n == event).count(), 1, "{event}: {names:?}");
    }
}

/// A counts entry says since when it counted: the token's time at the first request it counts,
/// not at a later one.
#[test]
fn a_counts_entry_starts_at_the_first_request_it_counts() {
    let day = pkms_protocol::limits::SECONDS_PER_DAY;
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    h.close_session();
    // Counted at T0: a GetInfo in the clear (answered; answers alone wait for a refusal).
    h.ok(Request::GetInfo(pkms_protocol::request::GetInfo {}));
    // The administrator moves the clock five days on.
    h.now = Some(T0 + 5 * day);
    h.open_session();
    admin_session(&mut h);
    h.close_session();
    // Counted later: a wrong PIN, which writes the counts.
    anonymous_session(&mut h);
    wrong_pin(&mut h, "nobody");
    h.open_session();
    admin_session(&mut h);
    let counts = counts_in_log(&mut h);
    let last = counts.last().expect("no counts entry");
    assert!(last.answered > 0 && last.failed_authentications == 1, "{last:?}");
    assert_eq!(u64::from(last.since), T0, "the counts entry starts at a later request");
}

/// In a log that refuses when full, counts are written as soon as a refusal waits and at least
/// two places are free (one for the counts, one for the entry that follows) — also when the log
/// is more than half full.
#[test]
fn a_refusing_log_writes_counts_while_two_places_are_free() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Refuse);
    let k = s(&h.create(KeySpec::SymmetricDefault));
    while h.token.core.entries(crate::records::Kind::Audit).len() < CAPACITY - 8 {
        assert_eq!(encrypt_code(&mut h, &k, &[]), None);
    }
    let before = counts_in_log(&mut h).len();
    anonymous_session(&mut h);
    assert!(encrypt_code(&mut h, &k, &[]).is_some(), "an Encrypt with no login was served");
    admin_session(&mut h);
    let counts = counts_in_log(&mut h);
    assert_eq!(counts.len(), before + 1, "the waiting refusal was not written though there was room");
    assert!(counts.last().is_some_and(|c| c.refused >= 1));
}
