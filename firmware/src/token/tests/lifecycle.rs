//! EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion, deletion when due,
//! UpdateKeyDescription.

use super::*;
use pkms_protocol::limits::SECONDS_PER_DAY;
use pkms_protocol::KeyState;

#[test]
fn enabled_disabled_pending_disabled_enabled() {
    let mut h = Harness::new();
    let k = h.create(KeySpec::SymmetricDefault);
    let key = s(&k);
    let blob = h.encrypt(&key, b"x", &[]);
    h.ok(Request::DisableKey(pkms_protocol::request::DisableKey { key_id: &key }));
    let m = h.describe(&key);
    assert_eq!((m.key_state, m.enabled), (KeyState::Disabled, false));
    let (code, msg) = h.err(Request::Encrypt(pkms_protocol::request::Encrypt {
        key_id: &key,
        plaintext: b"x",
        encryption_context: ctx(&[]),
    }));
    assert_eq!(code, ErrorCode::Disabled, "{msg}");
    assert_eq!(h.decrypt(&blob, &[]).unwrap_err().0, ErrorCode::Disabled);
    h.ok(Request::EnableKey(pkms_protocol::request::EnableKey { key_id: &key }));
    assert_eq!(h.decrypt(&blob, &[]).unwrap(), b"x");
    for bad in [6u16, 31, 0] {
        assert_eq!(
            h.code(Request::ScheduleKeyDeletion(pkms_protocol::request::ScheduleKeyDeletion {
                key_id: &key,
                pending_window_in_days: Some(bad)
            })),
            ErrorCode::Validation
        );
    }
    let r = h.ok(Request::ScheduleKeyDeletion(pkms_protocol::request::ScheduleKeyDeletion {
        key_id: &key,
        pending_window_in_days: Some(7),
    }));
    let Ok(Response::DeletionScheduled(pkms_protocol::reply::DeletionScheduled {
        deletion_date,
        key_state,
        pending_window_in_days,
        ..
    })) = r.get()
    else {
        panic!()
    };
    assert_eq!(
        (deletion_date, key_state, pending_window_in_days),
        (T0 + 7 * SECONDS_PER_DAY, KeyState::PendingDeletion, 7)
    );
    let m = h.describe(&key);
    assert_eq!(m.key_state, KeyState::PendingDeletion);
    assert_eq!(m.deletion_date, Some(T0 + 7 * SECONDS_PER_DAY));
    assert_eq!(m.pending_deletion_window_in_days, Some(7));
    assert_eq!(
        h.code(Request::Encrypt(pkms_protocol::request::Encrypt {
            key_id: &key,
            plaintext: b"x",
            encryption_context: ctx(&[])
        })),
        ErrorCode::InvalidState
    );
    assert_eq!(h.decrypt(&blob, &[]).unwrap_err().0, ErrorCode::InvalidState);
    assert_eq!(
        h.code(Request::EnableKey(pkms_protocol::request::EnableKey { key_id: &key })),
        ErrorCode::InvalidState
    );
    assert_eq!(
        h.code(Request::DisableKey(pkms_protocol::request::DisableKey { key_id: &key })),
        ErrorCode::InvalidState
    );
    assert_eq!(
        h.code(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &key })),
        ErrorCode::InvalidState
    );
    assert_eq!(
        h.code(Request::ScheduleKeyDeletion(pkms_protocol::request::ScheduleKeyDeletion {
            key_id: &key,
            pending_window_in_days: None
        })),
        ErrorCode::InvalidState
    );
    h.ok(Request::CancelKeyDeletion(pkms_protocol::request::CancelKeyDeletion { key_id: &key }));
    let m = h.describe(&key);
    assert_eq!(
        (m.key_state, m.deletion_date, m.pending_deletion_window_in_days),
        (KeyState::Disabled, None, None)
    );
    assert_eq!(
        h.code(Request::CancelKeyDeletion(pkms_protocol::request::CancelKeyDeletion { key_id: &key })),
        ErrorCode::InvalidState
    );
    h.ok(Request::EnableKey(pkms_protocol::request::EnableKey { key_id: &key }));
    assert_eq!(h.describe(&key).key_state, KeyState::Enabled);
    assert_eq!(h.decrypt(&blob, &[]).unwrap(), b"x");
}

#[test]
fn the_token_deletes_a_key_when_its_window_has_passed() {
    let mut h = Harness::new();
    let k = h.create(KeySpec::SymmetricDefault);
    let keep = h.create(KeySpec::SymmetricDefault);
    let key = s(&k);
    h.ok(Request::CreateAlias(pkms_protocol::request::CreateAlias {
        alias_name: "alias/doomed",
        target_key_id: &key,
    }));
    let blob = h.encrypt(&key, b"x", &[]);
    let r = h.ok(Request::ScheduleKeyDeletion(pkms_protocol::request::ScheduleKeyDeletion {
        key_id: &key,
        pending_window_in_days: None,
    }));
    let Ok(Response::DeletionScheduled(pkms_protocol::reply::DeletionScheduled {
        deletion_date,
        pending_window_in_days: 30,
        ..
    })) = r.get()
    else {
        panic!()
    };
    let mut slot = crate::records::KeyRecord::empty();
    let wrapped = h.token.core.load(&k, &mut slot).unwrap().record().versions[0].wrapped.to_vec();
    h.now = Some(deletion_date - 1);
    h.ok(Request::GetInfo(pkms_protocol::request::GetInfo {}));
    assert_eq!(h.describe(&key).key_state, KeyState::PendingDeletion);
    let mut h = h.restart();
    h.now = Some(deletion_date);
    h.ok(Request::GetInfo(pkms_protocol::request::GetInfo {}));
    assert_eq!(
        h.code(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: &key })),
        ErrorCode::NotFound
    );
    assert_eq!(
        h.code(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: "alias/doomed" })),
        ErrorCode::NotFound
    );
    assert_eq!(h.decrypt(&blob, &[]).unwrap_err().0, ErrorCode::InvalidCiphertext);
    let raw = h.token.flash().as_bytes().to_vec();
    assert!(!raw.windows(wrapped.len()).any(|w| w == &wrapped[..]), "deleted material still on flash");
    assert_eq!(h.describe(&s(&keep)).key_state, KeyState::Enabled);
    let r = h.ok(Request::ListAliases(pkms_protocol::request::ListAliases {
        key_id: None,
        limit: None,
        marker: None,
    }));
    assert!(
        matches!(r.get(), Ok(Response::Aliases(pkms_protocol::reply::Aliases { aliases, .. })) if aliases.is_empty())
    );
}

#[test]
fn update_key_description() {
    let mut h = Harness::new();
    let key = s(&h.create(KeySpec::Hmac256));
    h.ok(Request::UpdateKeyDescription(pkms_protocol::request::UpdateKeyDescription {
        key_id: &key,
        description: "new words",
    }));
    let r = h.ok(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: &key }));
    assert!(
        matches!(r.get(), Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata: m })) if m.description == "new words")
    );
    let long = "x".repeat(257);
    assert_eq!(
        h.code(Request::UpdateKeyDescription(pkms_protocol::request::UpdateKeyDescription {
            key_id: &key,
            description: &long
        })),
        ErrorCode::Validation
    );
    assert_eq!(
        h.code(Request::UpdateKeyDescription(pkms_protocol::request::UpdateKeyDescription {
            key_id: "alias/none",
            description: "x"
        })),
        ErrorCode::NotFound
    );
}
