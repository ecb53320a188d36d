//! Versions, rotation (on demand and scheduled), ListKeyRotations, RetireKeyVersions.

use super::*;
use pkms_protocol::limits::SECONDS_PER_DAY;
use pkms_protocol::{KeyMaterialState, RotationType};

fn rotations(h: &mut Harness, key: &str) -> Vec<pkms_protocol::RotationsListEntry> {
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let r = h.ok(Request::ListKeyRotations(pkms_protocol::request::ListKeyRotations {
            key_id: key,
            limit: Some(2),
            marker: marker.as_deref(),
        }));
        let Ok(Response::Rotations(pkms_protocol::reply::Rotations { rotations, next_marker, truncated })) =
            r.get()
        else {
            panic!()
        };
        all.extend(rotations.iter().copied());
        assert_eq!(truncated, next_marker.is_some());
        match next_marker {
            Some(m) => marker = Some(String::from(m)),
            None => return all,
        }
    }
}

#[test]
fn old_ciphertext_decrypts_after_any_number_of_rotations() {
    let mut h = Harness::new();
    let k = h.create(KeySpec::SymmetricDefault);
    let mut blobs = Vec::new();
    for v in 1..=6u32 {
        let blob = h.encrypt(&s(&k), format!("under v{v}").as_bytes(), &[("v", "x")]);
        assert_eq!(&blob[19..23], &v.to_be_bytes(), "Encrypt uses the newest version");
        blobs.push(blob);
        h.now = Some(T0 + v as u64 * 100);
        let r =
            h.ok(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &s(&k) }));
        let Ok(Response::Rotated(pkms_protocol::reply::Rotated { key_version, .. })) = r.get() else {
            panic!()
        };
        assert_eq!(key_version, v + 1);
    }
    let mut h = h.restart();
    for (i, blob) in blobs.iter().enumerate() {
        assert_eq!(h.decrypt(blob, &[("v", "x")]).unwrap(), format!("under v{}", i + 1).as_bytes());
    }
    let m = h.describe(&s(&k));
    assert_eq!((m.current_key_version, m.oldest_key_version), (7, 1));
    let list = rotations(&mut h, &s(&k));
    assert_eq!(list.len(), 7);
    assert_eq!(list[0].rotation_type, None);
    assert_eq!(list[0].rotation_date, T0);
    assert_eq!(list[3].rotation_type, Some(RotationType::OnDemand));
    assert_eq!(list[3].rotation_date, T0 + 300);
    assert_eq!(list[6].key_material_state, KeyMaterialState::Current);
    assert_eq!(list[5].key_material_state, KeyMaterialState::NonCurrent);
    assert_eq!(list[6].key_material_id, m.current_key_material_id);
    let mut ids: Vec<_> = list.iter().map(|e| e.key_material_id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 7, "material ids are distinct");
    let r =
        h.ok(Request::GetKeyRotationStatus(pkms_protocol::request::GetKeyRotationStatus { key_id: &s(&k) }));
    let Ok(Response::KeyRotationStatus(pkms_protocol::reply::KeyRotationStatus {
        on_demand_rotation_start_date,
        key_rotation_enabled,
        ..
    })) = r.get()
    else {
        panic!()
    };
    assert_eq!(on_demand_rotation_start_date, Some(T0 + 600));
    assert!(!key_rotation_enabled);
    assert_eq!(
        h.code(Request::ListKeyRotations(pkms_protocol::request::ListKeyRotations {
            key_id: &s(&k),
            limit: None,
            marker: Some("x")
        })),
        ErrorCode::InvalidMarker
    );
}

#[test]
fn rotation_settings_follow_kms_limits() {
    let mut h = Harness::new();
    let k = h.create(KeySpec::SymmetricDefault);
    for bad in [0u16, 89, 2561] {
        let (code, msg) = h.err(Request::EnableKeyRotation(pkms_protocol::request::EnableKeyRotation {
            key_id: &s(&k),
            rotation_period_in_days: Some(bad),
        }));
        assert_eq!(code, ErrorCode::Validation, "{msg}");
    }
    h.ok(Request::EnableKeyRotation(pkms_protocol::request::EnableKeyRotation {
        key_id: &s(&k),
        rotation_period_in_days: None,
    }));
    let r =
        h.ok(Request::GetKeyRotationStatus(pkms_protocol::request::GetKeyRotationStatus { key_id: &s(&k) }));
    let Ok(Response::KeyRotationStatus(pkms_protocol::reply::KeyRotationStatus {
        key_rotation_enabled,
        rotation_period_in_days,
        next_rotation_date,
        ..
    })) = r.get()
    else {
        panic!()
    };
    assert!(key_rotation_enabled);
    assert_eq!(rotation_period_in_days, Some(365));
    assert_eq!(next_rotation_date, Some(T0 + 365 * SECONDS_PER_DAY));
    let m = h.describe(&s(&k));
    assert!(m.key_rotation_enabled);
    assert_eq!(m.next_rotation_date, Some(T0 + 365 * SECONDS_PER_DAY));
    h.ok(Request::EnableKeyRotation(pkms_protocol::request::EnableKeyRotation {
        key_id: &s(&k),
        rotation_period_in_days: Some(90),
    }));
    assert_eq!(h.describe(&s(&k)).next_rotation_date, Some(T0 + 90 * SECONDS_PER_DAY));
    h.ok(Request::DisableKeyRotation(pkms_protocol::request::DisableKeyRotation { key_id: &s(&k) }));
    let m = h.describe(&s(&k));
    assert!(!m.key_rotation_enabled);
    assert_eq!(m.next_rotation_date, None);
    h.ok(Request::DisableKey(pkms_protocol::request::DisableKey { key_id: &s(&k) }));
    assert_eq!(
        h.code(Request::EnableKeyRotation(pkms_protocol::request::EnableKeyRotation {
            key_id: &s(&k),
            rotation_period_in_days: None
        })),
        ErrorCode::Disabled
    );
    assert_eq!(
        h.code(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &s(&k) })),
        ErrorCode::Disabled
    );
}

#[test]
fn the_token_rotates_by_itself_when_host_time_passes_the_date() {
    let mut h = Harness::new();
    let k = h.create(KeySpec::SymmetricDefault);
    let other = h.create(KeySpec::Hmac256);
    let blob = h.encrypt(&s(&k), b"before", &[]);
    h.ok(Request::EnableKeyRotation(pkms_protocol::request::EnableKeyRotation {
        key_id: &s(&k),
        rotation_period_in_days: Some(90),
    }));
    let due = T0 + 90 * SECONDS_PER_DAY;
    h.now = Some(due - 1);
    h.ok(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: &s(&other) }));
    assert_eq!(h.describe(&s(&k)).current_key_version, 1);
    // Host time passes the date: the next request (any request, e.g. Hello) rotates.
    let mut h = h.restart();
    h.now = Some(due + 5);
    h.ok(Request::Hello(pkms_protocol::request::Hello { protocol_version: pkms_protocol::PROTOCOL_VERSION }));
    h.now = None;
    let m = h.describe(&s(&k));
    assert_eq!(m.current_key_version, 2);
    assert_eq!(m.next_rotation_date, Some(due + 5 + 90 * SECONDS_PER_DAY));
    let list = rotations(&mut h, &s(&k));
    assert_eq!(list[1].rotation_type, Some(RotationType::Automatic));
    assert_eq!(list[1].rotation_date, due + 5);
    assert_eq!(h.describe(&s(&other)).current_key_version, 1);
    assert_eq!(h.decrypt(&blob, &[]).unwrap(), b"before");
    // Time running backwards does not undo or repeat anything.
    h.now = Some(T0);
    h.ok(Request::GetInfo(pkms_protocol::request::GetInfo {}));
    assert_eq!(h.describe(&s(&k)).current_key_version, 2);
    // A disabled key is not rotated.
    h.ok(Request::DisableKey(pkms_protocol::request::DisableKey { key_id: &s(&k) }));
    h.now = Some(due + 5 + 91 * SECONDS_PER_DAY);
    h.ok(Request::GetInfo(pkms_protocol::request::GetInfo {}));
    assert_eq!(h.describe(&s(&k)).current_key_version, 2);
    h.ok(Request::EnableKey(pkms_protocol::request::EnableKey { key_id: &s(&k) }));
    h.ok(Request::GetInfo(pkms_protocol::request::GetInfo {}));
    assert_eq!(h.describe(&s(&k)).current_key_version, 3);
}

#[test]
fn retired_versions_are_erased_and_refused_clearly() {
    let mut h = Harness::new();
    let k = h.create(KeySpec::SymmetricDefault);
    let mut blobs = Vec::new();
    for _ in 0..4 {
        blobs.push(h.encrypt(&s(&k), b"data", &[]));
        h.ok(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &s(&k) }));
    }
    // Version 5 is newest; the wrapped material of versions 1 and 2 is on flash now.
    let mut slot = crate::records::KeyRecord::empty();
    let key = h.token.core.load(&k, &mut slot).unwrap();
    let old_wrapped: Vec<Vec<u8>> = key.record().versions[..2].iter().map(|v| v.wrapped.to_vec()).collect();
    let raw = h.token.flash().as_bytes().to_vec();
    assert!(old_wrapped.iter().all(|w| raw.windows(w.len()).any(|x| x == &w[..])));
    let free_before = h.token.core.storage_free_bytes();
    let (code, msg) = h.err(Request::RetireKeyVersions(pkms_protocol::request::RetireKeyVersions {
        key_id: &s(&k),
        below_version: 6,
    }));
    assert_eq!(code, ErrorCode::Validation);
    assert!(msg.contains("newest"), "{msg}");
    let r = h.ok(Request::RetireKeyVersions(pkms_protocol::request::RetireKeyVersions {
        key_id: &s(&k),
        below_version: 3,
    }));
    let Ok(Response::Retired(pkms_protocol::reply::Retired { retired_count, oldest_key_version, .. })) =
        r.get()
    else {
        panic!()
    };
    assert_eq!((retired_count, oldest_key_version), (2, 3));
    assert!(h.token.core.storage_free_bytes() > free_before, "space reclaimed");
    // Crypto-erase: the retired versions' bytes are gone from the flash.
    let raw = h.token.flash().as_bytes().to_vec();
    for w in &old_wrapped {
        assert!(!raw.windows(w.len()).any(|x| x == &w[..]), "retired material still on flash");
    }
    let mut h = h.restart();
    for (i, blob) in blobs.iter().enumerate() {
        match h.decrypt(blob, &[]) {
            Ok(p) => {
                assert!(i >= 2);
                assert_eq!(p, b"data");
            }
            Err((code, msg)) => {
                assert!(i < 2);
                assert_eq!(code, ErrorCode::KeyVersionRetired);
                assert!(msg.contains("retired") && msg.contains(&format!("version {}", i + 1)), "{msg}");
            }
        }
    }
    assert_eq!(rotations(&mut h, &s(&k)).len(), 3);
    assert_eq!(h.describe(&s(&k)).oldest_key_version, 3);
    // Retiring below what is already retired changes nothing; the newest always stays.
    let r = h.ok(Request::RetireKeyVersions(pkms_protocol::request::RetireKeyVersions {
        key_id: &s(&k),
        below_version: 2,
    }));
    assert!(matches!(
        r.get(),
        Ok(Response::Retired(pkms_protocol::reply::Retired { retired_count: 0, oldest_key_version: 3, .. }))
    ));
    let r = h.ok(Request::RetireKeyVersions(pkms_protocol::request::RetireKeyVersions {
        key_id: &s(&k),
        below_version: 5,
    }));
    assert!(matches!(
        r.get(),
        Ok(Response::Retired(pkms_protocol::reply::Retired { retired_count: 2, oldest_key_version: 5, .. }))
    ));
    assert_eq!(h.encrypt(&s(&k), b"x", &[])[19..23], 5u32.to_be_bytes());
}

#[test]
fn a_key_holds_a_bounded_number_of_versions() {
    let mut h = Harness::new();
    let k = h.create(KeySpec::Hmac512);
    for _ in 1..crate::records::MAX_VERSIONS {
        h.ok(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &s(&k) }));
    }
    let (code, msg) =
        h.err(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &s(&k) }));
    assert_eq!(code, ErrorCode::LimitExceeded);
    assert!(msg.contains("retire"), "{msg}");
    h.ok(Request::RetireKeyVersions(pkms_protocol::request::RetireKeyVersions {
        key_id: &s(&k),
        below_version: 10,
    }));
    h.ok(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &s(&k) }));
    assert_eq!(h.describe(&s(&k)).current_key_version, crate::records::MAX_VERSIONS as u32 + 1);
}
