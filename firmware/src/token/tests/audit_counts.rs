//! Requests from outside a session are counted in the audit log, not logged one by one: a flood
//! of them neither pushes retained entries out nor fills a log that refuses when full.

use pkms_protocol::access::{AuditFullMode, FACTORY_RESET_CONFIRMATION};
use pkms_protocol::messages::Request;
use pkms_protocol::{ErrorCode, KeySpec};

use super::auth::{encrypt_code, hello, init, login, read_all, verify_chain, PIN};
use super::*;
use crate::audit::CAPACITY;

/// Sends `n` requests without a session, of every kind an attacker without a PIN can send;
/// returns how many were answered without error, failed authentication, and were refused.
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
        let ok = answer.get().is_ok();
        match (ok, i % 6) {
            (true, _) => counts.0 += 1,
            (false, 2 | 3) => counts.1 += 1,
            (false, _) => counts.2 += 1,
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
    hello(&mut h);
    let (answered, failed, refused) = flood(&mut h, &k, 3 * CAPACITY);
    assert!(answered > 0 && failed > 0 && refused > 0);
    h.ok(Request::Authenticate(pkms_protocol::request::Authenticate { principal: "admin", pin: PIN }));
    let (entries, seq, hash, sig, pk, first, base) = read_all(&mut h);
    verify_chain(&entries, seq, &hash, &sig, &pk, first, &base);
    // Nothing was dropped: every entry held before is still there, unchanged.
    assert_eq!(first, 1);
    assert_eq!(entries[..before.len()], before[..]);
    // The flood (and the Hello before it) is one entry of counts, just before the
    // administrator's Authenticate; every other entry is a principal's.
    let at: Vec<usize> =
        (0..entries.len()).filter(|i| entries[*i].unauthenticated_requests().is_some()).collect();
    assert_eq!(at.len(), 1);
    let counts = entries[at[0]].unauthenticated_requests().unwrap();
    assert_eq!(
        (counts.answered, counts.failed_authentications, counts.refused),
        (answered + 1, failed, refused)
    );
    assert_eq!(counts.total(), 3 * CAPACITY as u64 + 1);
    assert_eq!(entries[at[0] + 1].operation, pkms_protocol::Operation::Authenticate.index());
    assert!(entries.iter().enumerate().all(|(i, e)| i == at[0] || e.principal_name() == "admin"));
    assert!(entries.len() < before.len() + 10);
}

#[test]
fn requests_outside_a_session_cannot_fill_a_log_that_refuses_when_full() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Refuse);
    let k = s(&h.create(KeySpec::SymmetricDefault));
    hello(&mut h);
    flood(&mut h, &k, 2 * CAPACITY);
    login(&mut h, "admin", PIN);
    assert_eq!(encrypt_code(&mut h, &k, &[]), None);
    let (entries, ..) = read_all(&mut h);
    assert!(entries.len() < 8, "{} entries", entries.len());
    // Close to full, the counts wait rather than take the last place an operation needs.
    while h.token.core.entries(crate::records::Kind::Audit).len() < CAPACITY - 1 {
        assert_eq!(encrypt_code(&mut h, &k, &[]), None);
    }
    let sequence = h.token.log.head_sequence;
    h.token.end_connection();
    flood(&mut h, &k, 12);
    h.ok(Request::Authenticate(pkms_protocol::request::Authenticate { principal: "admin", pin: PIN }));
    assert_eq!(h.token.log.head_sequence, sequence + 1, "the Authenticate alone took the last place");
    assert_eq!(h.token.log.unauthenticated.total(), 12);
    assert_eq!(encrypt_code(&mut h, &k, &[]), Some(ErrorCode::AuditLogFull));
}
