//! Who may use a key. PIN lockout and unblock with the PUK, a principal refused a key
//! its policy does not grant and allowed once a grant exists, and an exported audit log that
//! verifies offline until one byte of it changes.

use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey;
use pkms_lib::audit::{export_bytes, parse_export, verify_export, VerifyError};
use pkms_lib::client::NO_CONTEXT;
use pkms_lib::model::CreateKeyParams;
use pkms_lib::Client;
use pkms_protocol::access::{AuditFullMode, ConditionKind, Role, AUDIT_ENTRY_LEN, PIN_RETRIES};
use pkms_protocol::Action;
use pkms_protocol::{ErrorCode, KeySpec};

use crate::harness::{expect_code, TestToken};

const PIN: &[u8] = b"246810";
const PUK: &[u8] = b"recover-me-1234";

fn login(t: &mut dyn TestToken, who: &str, pin: &[u8]) -> Client {
    let mut c = t.client();
    c.authenticate(who, pin).unwrap_or_else(|e| panic!("{who} cannot log in: {e}"));
    c
}

/// Eight wrong PINs lock a principal (even the right PIN is then refused) across connections
/// and a restart; the PUK unblocks it with a new PIN.
pub fn pin_lockout_and_unblock(t: &mut dyn TestToken) {
    let mut c = t.client();
    assert!(!c.get_info().unwrap().initialized);
    c.initialize(PIN, PUK, AuditFullMode::Overwrite).unwrap();
    c.create_principal("bob", b"135790", Role::User).unwrap();
    drop(c);
    let mut c = t.client();
    assert!(c.get_info().unwrap().initialized);
    expect_code(
        c.create_key(&CreateKeyParams::spec(KeySpec::SymmetricDefault)),
        ErrorCode::AuthenticationFailed,
    );
    for _ in 1..PIN_RETRIES / 2 {
        expect_code(c.authenticate("bob", b"000000"), ErrorCode::AuthenticationFailed);
    }
    drop(c);
    t.restart();
    let mut c = t.client();
    for _ in PIN_RETRIES / 2..PIN_RETRIES {
        expect_code(c.authenticate("bob", b"000000"), ErrorCode::AuthenticationFailed);
    }
    expect_code(c.authenticate("bob", b"000000"), ErrorCode::PinLocked);
    expect_code(c.authenticate("bob", b"135790"), ErrorCode::PinLocked);
    expect_code(c.unblock_pin("bob", b"not-the-puk", b"555555"), ErrorCode::AuthenticationFailed);
    c.unblock_pin("bob", PUK, b"555555").unwrap();
    expect_code(c.authenticate("bob", b"135790"), ErrorCode::AuthenticationFailed);
    c.authenticate("bob", b"555555").unwrap();
    drop(c);
    let mut c = login(t, "admin", PIN);
    let bob = c.list_principals().unwrap().into_iter().find(|p| p.name == "bob").unwrap();
    assert_eq!(bob.pin_retries_left, PIN_RETRIES);
}

/// bob is refused the administrator's key (default policy), allowed once a grant names him
/// (with its context constraint), and refused again once it is revoked.
pub fn grant_opens_a_refused_key(t: &mut dyn TestToken) {
    let mut c = t.client();
    c.initialize(PIN, PUK, AuditFullMode::Overwrite).unwrap();
    c.create_principal("bob", b"135790", Role::User).unwrap();
    let key = c.create_key(&CreateKeyParams::spec(KeySpec::SymmetricDefault)).unwrap().key_id.to_string();
    drop(c);
    let ctx = [("app", "billing")];
    let mut c = login(t, "bob", b"135790");
    expect_code(c.encrypt(&key, b"hi", &ctx), ErrorCode::AccessDenied);
    drop(c);
    let mut c = login(t, "admin", PIN);
    let constraint = pkms_lib::client::ContextConstraint {
        kind: ConditionKind::Subset,
        pairs: vec![("app".into(), "billing".into())],
    };
    let grant = c
        .create_grant(
            &key,
            "bob",
            Action::Encrypt.bit() | Action::Decrypt.bit(),
            Some(&constraint),
            "billing",
        )
        .unwrap();
    let grants = c.list_grants(&key).unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].grantee, "bob");
    drop(c);
    let mut c = login(t, "bob", b"135790");
    let blob = c.encrypt(&key, b"hi", &ctx).unwrap().ciphertext_blob;
    assert_eq!(&c.decrypt(&blob, &ctx, None).unwrap().plaintext[..], b"hi");
    expect_code(c.encrypt(&key, b"hi", NO_CONTEXT), ErrorCode::AccessDenied);
    expect_code(c.schedule_key_deletion(&key, None), ErrorCode::AccessDenied);
    expect_code(c.revoke_grant(&key, &grant), ErrorCode::AccessDenied);
    drop(c);
    let mut c = login(t, "admin", PIN);
    c.revoke_grant(&key, &grant).unwrap();
    drop(c);
    let mut c = login(t, "bob", b"135790");
    expect_code(c.encrypt(&key, b"hi", &ctx), ErrorCode::AccessDenied);
}

/// The exported log verifies with the device key; changing any one byte of an entry makes
/// verification fail at that entry (or, for the checkpoint, at the checkpoint).
pub fn audit_export_verifies_and_one_changed_byte_fails(t: &mut dyn TestToken) {
    let mut c = t.client();
    c.initialize(PIN, PUK, AuditFullMode::Overwrite).unwrap();
    let key = c.create_key(&CreateKeyParams::spec(KeySpec::SymmetricDefault)).unwrap().key_id.to_string();
    for _ in 0..5 {
        c.encrypt(&key, b"x", NO_CONTEXT).unwrap();
    }
    drop(c);
    let mut c = t.client();
    expect_code(c.encrypt(&key, b"x", NO_CONTEXT), ErrorCode::AuthenticationFailed);
    c.authenticate("admin", PIN).unwrap();
    let cp = c.get_audit_checkpoint().unwrap();
    let mut entries = Vec::new();
    let mut next = cp.first_sequence;
    while next <= cp.sequence {
        let page = c.read_audit_log(next, 40).unwrap();
        for e in page.chunks(AUDIT_ENTRY_LEN) {
            let seq = u64::from_be_bytes(e[..8].try_into().unwrap());
            if seq <= cp.sequence {
                entries.extend_from_slice(e);
                next = seq + 1;
            }
        }
    }
    let file = export_bytes(&cp, &entries);
    let key = VerifyingKey::from_public_key_der(&cp.public_key).unwrap();
    let ok = verify_export(&parse_export(&file).unwrap(), &key).unwrap();
    assert_eq!(ok.len() as u64, cp.sequence);
    let entries_at = file.len() - entries.len();
    let n = ok.len();
    // One changed byte in every position of every entry.
    for i in 0..n {
        for b in 0..AUDIT_ENTRY_LEN {
            let mut bad = file.clone();
            bad[entries_at + i * AUDIT_ENTRY_LEN + b] ^= 0x01;
            let got = parse_export(&bad).map(|e| verify_export(&e, &key));
            match got {
                Some(Err(VerifyError::Entry { index, .. })) => assert_eq!(index, i, "byte {b} of entry {i}"),
                other => panic!("byte {b} of entry {i}: {other:?}"),
            }
        }
    }
    // A changed checkpoint or a dropped entry fails too.
    let mut bad = file.clone();
    bad[entries_at - 100] ^= 0x01;
    assert!(parse_export(&bad).is_none_or(|e| verify_export(&e, &key).is_err()));
}

/// Prints what a PIN check costs on this token (Authenticate, which runs PBKDF2 and writes the
/// retry counter twice and an audit entry, against GetInfo, a bare round trip). Asserts only
/// that both answers are right; the numbers go to docs/security.md.
pub fn pin_check_cost(t: &mut dyn TestToken) {
    let mut c = t.client();
    c.initialize(PIN, PUK, AuditFullMode::Overwrite).unwrap();
    let rounds = 5;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        assert!(c.get_info().unwrap().initialized);
    }
    let info = start.elapsed() / rounds;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        c.authenticate("admin", PIN).unwrap();
    }
    let auth = start.elapsed() / rounds;
    println!(
        "PIN check: Authenticate {:.1} ms, GetInfo {:.1} ms per call (mean of {rounds})",
        auth.as_secs_f64() * 1e3,
        info.as_secs_f64() * 1e3
    );
}
