//! Rotation: RotateKeyOnDemand, ListKeyRotations, scheduled rotation from host time,
//! ReEncrypt, and RetireKeyVersions.

use pkms_lib::client::NO_CONTEXT;
use pkms_lib::Client;
use pkms_protocol::limits::SECONDS_PER_DAY;
use pkms_protocol::{ErrorCode, KeyMaterialState, RotationType};

use super::symmetric::new_key;
use crate::harness::{expect_code, TestToken};

fn now() -> u64 {
    pkms_lib::client::system_now().unwrap_or(0)
}

/// Sends `at` as the host time with every later request.
fn set_time(c: &mut Client, at: u64) {
    c.set_clock(Box::new(move || Some(at)));
}

/// Three on-demand rotations: versions 2..=4 with distinct material, the newest encrypts,
/// every older version still decrypts, and ListKeyRotations shows them all.
pub fn rotation_on_demand(t: &mut dyn TestToken) {
    let mut c = t.client();
    let key = new_key(&mut c, "rotating");
    let ctx = [("t", "1")];
    let first = c.encrypt(&key, b"v1 secret", &ctx).unwrap();
    assert_eq!(first.key_version, 1);
    let mut blobs = vec![(1u32, first.ciphertext_blob.clone())];
    let mut materials = vec![first.key_material_id];
    for expected in 2..=4u32 {
        let r = c.rotate_key_on_demand(&key).unwrap();
        assert_eq!(r.key_version, expected);
        assert!(!materials.contains(&r.key_material_id), "each version has its own KeyMaterialId");
        materials.push(r.key_material_id);
        let e = c.encrypt(&key, format!("v{expected} secret").as_bytes(), &ctx).unwrap();
        assert_eq!(e.key_version, expected, "Encrypt uses the newest version");
        assert_eq!(e.key_material_id, r.key_material_id);
        blobs.push((expected, e.ciphertext_blob));
    }
    for (version, blob) in &blobs {
        let d = c.decrypt(blob, &ctx, None).unwrap();
        assert_eq!(d.key_version, *version);
        assert_eq!(d.plaintext.as_slice(), format!("v{version} secret").as_bytes());
        assert_eq!(d.key_material_id, materials[*version as usize - 1]);
    }
    assert_ne!(blobs[0].1[..23], blobs[3].1[..23], "the header names the version");

    let rotations = c.list_all_key_rotations(&key).unwrap();
    let versions: Vec<u32> = rotations.iter().map(|r| r.key_version).collect();
    assert_eq!(versions, [1, 2, 3, 4], "oldest first");
    for (i, r) in rotations.iter().enumerate() {
        assert_eq!(r.key_id.to_string(), key);
        assert_eq!(r.key_material_id, materials[i]);
        let state = if i == 3 { KeyMaterialState::Current } else { KeyMaterialState::NonCurrent };
        assert_eq!(r.key_material_state, state);
        let kind = if i == 0 { None } else { Some(RotationType::OnDemand) };
        assert_eq!(r.rotation_type, kind, "version {}", r.key_version);
    }
    // Page by page.
    let page = c.list_key_rotations(&key, Some(3), None).unwrap();
    assert_eq!(page.rotations.len(), 3);
    assert!(page.truncated);
    let rest = c.list_key_rotations(&key, Some(3), page.next_marker.as_deref()).unwrap();
    assert_eq!(rest.rotations.iter().map(|r| r.key_version).collect::<Vec<_>>(), [4]);
    assert!(!rest.truncated);

    let m = c.describe_key(&key).unwrap();
    assert_eq!(m.current_key_version, 4);
    assert_eq!(m.current_key_material_id, materials[3]);
    assert_eq!(m.oldest_key_version, 1);
    let status = c.get_key_rotation_status(&key).unwrap();
    assert!(status.on_demand_rotation_start_date.is_some());
    expect_code(c.rotate_key_on_demand("00000000-0000-0000-0000-000000000000"), ErrorCode::NotFound);
}

/// ReEncrypt under another key and context, inside the token.
pub fn re_encrypt_inside_the_token(t: &mut dyn TestToken) {
    let mut c = t.client();
    let k1 = new_key(&mut c, "source");
    let k2 = new_key(&mut c, "destination");
    let b1 = c.encrypt(&k1, b"v1 secret", &[("t", "1")]).unwrap().ciphertext_blob;
    c.rotate_key_on_demand(&k1).unwrap();

    let r = c.re_encrypt(&b1, &[("t", "1")], None, &k2, &[("t", "2")]).unwrap();
    assert_eq!(r.source_key_id.to_string(), k1);
    assert_eq!(r.key_id.to_string(), k2);
    assert_ne!(r.source_key_material_id, r.destination_key_material_id);
    let d = c.decrypt(&r.ciphertext_blob, &[("t", "2")], None).unwrap();
    assert_eq!(d.plaintext.as_slice(), b"v1 secret");
    assert_eq!(d.key_id.to_string(), k2);
    expect_code(c.decrypt(&r.ciphertext_blob, &[("t", "1")], None), ErrorCode::InvalidCiphertext);

    // Re-encrypting under the same key moves the blob to its newest version.
    let same = c.re_encrypt(&b1, &[("t", "1")], Some(&k1), &k1, &[("t", "1")]).unwrap();
    assert_eq!(c.decrypt(&same.ciphertext_blob, &[("t", "1")], None).unwrap().key_version, 2);

    expect_code(c.re_encrypt(&b1, &[("t", "x")], None, &k2, &[("t", "2")]), ErrorCode::InvalidCiphertext);
    expect_code(c.re_encrypt(&b1, &[("t", "1")], Some(&k2), &k2, &[("t", "2")]), ErrorCode::IncorrectKey);
    expect_code(
        c.re_encrypt(&b1, &[("t", "1")], None, "00000000-0000-0000-0000-000000000000", &[("t", "2")]),
        ErrorCode::NotFound,
    );
}

/// EnableKeyRotation bounds and status; due rotations happen when host time passes the
/// date, and the token's time never runs backwards.
pub fn scheduled_rotation(t: &mut dyn TestToken) {
    let mut c = t.client();
    let key = new_key(&mut c, "scheduled");
    let status = c.get_key_rotation_status(&key).unwrap();
    assert!(!status.key_rotation_enabled);
    expect_code(c.enable_key_rotation(&key, Some(89)), ErrorCode::Validation);
    expect_code(c.enable_key_rotation(&key, Some(2561)), ErrorCode::Validation);
    c.enable_key_rotation(&key, None).unwrap();
    assert_eq!(c.get_key_rotation_status(&key).unwrap().rotation_period_in_days, Some(365));
    c.disable_key_rotation(&key).unwrap();
    assert!(!c.get_key_rotation_status(&key).unwrap().key_rotation_enabled);

    let start = now();
    c.enable_key_rotation(&key, Some(90)).unwrap();
    let status = c.get_key_rotation_status(&key).unwrap();
    assert!(status.key_rotation_enabled);
    assert_eq!(status.rotation_period_in_days, Some(90));
    let next = status.next_rotation_date.expect("NextRotationDate");
    let due = start + 90 * SECONDS_PER_DAY;
    assert!(next >= due - 5 && next <= due + 5 * 60, "next rotation {next}, expected about {due}");
    let blob = c.encrypt(&key, b"before", NO_CONTEXT).unwrap().ciphertext_blob;

    // Not yet due: nothing happens.
    set_time(&mut c, next - 60);
    assert_eq!(c.describe_key(&key).unwrap().current_key_version, 1);
    // Due: the token rotates by itself.
    set_time(&mut c, next + 60);
    c.get_info().unwrap();
    let m = c.describe_key(&key).unwrap();
    assert_eq!(m.current_key_version, 2, "the due rotation happened");
    let rotations = c.list_all_key_rotations(&key).unwrap();
    assert_eq!(rotations.last().map(|r| r.rotation_type), Some(Some(RotationType::Automatic)));
    let next2 = c.get_key_rotation_status(&key).unwrap().next_rotation_date.expect("next date");
    assert!(next2 > next, "the next rotation is scheduled after this one");
    assert_eq!(c.encrypt(&key, b"after", NO_CONTEXT).unwrap().key_version, 2);
    assert_eq!(c.decrypt(&blob, NO_CONTEXT, None).unwrap().plaintext.as_slice(), b"before");

    // Host time going backwards changes nothing: the token keeps its high-water mark.
    set_time(&mut c, start);
    assert!(c.get_info().unwrap().time_high_water_mark >= next + 60);
    assert_eq!(c.describe_key(&key).unwrap().current_key_version, 2);
}

/// RetireKeyVersions: older versions are erased, their blobs fail with KeyVersionRetired,
/// the newest can never be retired.
pub fn retire_key_versions(t: &mut dyn TestToken) {
    let mut c = t.client();
    let key = new_key(&mut c, "retiring");
    let mut blobs = Vec::new();
    for v in 1..=3u32 {
        if v > 1 {
            c.rotate_key_on_demand(&key).unwrap();
        }
        blobs.push(c.encrypt(&key, format!("v{v}").as_bytes(), NO_CONTEXT).unwrap().ciphertext_blob);
    }
    let free_before = c.get_info().unwrap().storage_free_bytes;
    let r = c.retire_key_versions(&key, 3).unwrap();
    assert_eq!(r.retired_count, 2);
    assert_eq!(r.oldest_key_version, 3);
    expect_code(c.decrypt(&blobs[0], NO_CONTEXT, None), ErrorCode::KeyVersionRetired);
    expect_code(c.decrypt(&blobs[1], NO_CONTEXT, None), ErrorCode::KeyVersionRetired);
    assert_eq!(c.decrypt(&blobs[2], NO_CONTEXT, None).unwrap().plaintext.as_slice(), b"v3");
    assert_eq!(c.describe_key(&key).unwrap().oldest_key_version, 3);
    let versions: Vec<u32> = c.list_all_key_rotations(&key).unwrap().iter().map(|r| r.key_version).collect();
    assert_eq!(versions, [3]);
    assert!(c.get_info().unwrap().storage_free_bytes >= free_before, "retiring does not use up space");

    // The newest version stays, whatever is asked.
    assert!(c.retire_key_versions(&key, 4).is_err(), "retiring the newest version is refused");
    assert!(c.retire_key_versions(&key, 100).is_err());
    assert_eq!(c.decrypt(&blobs[2], NO_CONTEXT, None).unwrap().plaintext.as_slice(), b"v3");
    // Retiring nothing new is harmless.
    assert_eq!(c.retire_key_versions(&key, 3).unwrap().retired_count, 0);
}

/// A full store: creating keys ends in LimitExceeded with nothing already stored harmed; a key
/// holding the most versions refuses to rotate until old versions are retired; deleting a key
/// makes room again.
pub fn full_store_is_limit_exceeded(t: &mut dyn TestToken) {
    let mut c = t.client();
    let first = new_key(&mut c, "first");
    let blob = c.encrypt(&first, b"kept safe", &[("k", "v")]).unwrap().ciphertext_blob;

    // Versions: rotate until the key is full.
    let mut rotations = 0;
    let full = loop {
        match c.rotate_key_on_demand(&first) {
            Ok(_) => rotations += 1,
            Err(e) => break e,
        }
        assert!(rotations < 10_000, "rotation never hit a limit");
    };
    assert_eq!(full.code(), Some(ErrorCode::LimitExceeded), "{full:?}");
    let newest = c.describe_key(&first).unwrap().current_key_version;
    assert_eq!(newest, rotations + 1);
    assert_eq!(c.decrypt(&blob, &[("k", "v")], None).unwrap().plaintext.as_slice(), b"kept safe");
    // Retiring makes room (the blob is re-encrypted under the newest version first).
    let blob = c.re_encrypt(&blob, &[("k", "v")], None, &first, &[("k", "v")]).unwrap().ciphertext_blob;
    c.retire_key_versions(&first, newest).unwrap();
    assert_eq!(c.rotate_key_on_demand(&first).unwrap().key_version, newest + 1);

    // Keys: create until the store (or its index) is full.
    let mut keys = vec![first.clone()];
    let refused = loop {
        match c.create_key(&Default::default()) {
            Ok(m) => keys.push(m.key_id.to_string()),
            Err(e) => break e,
        }
        assert!(keys.len() < 100_000, "key creation never hit a limit");
    };
    assert_eq!(refused.code(), Some(ErrorCode::LimitExceeded), "{refused:?}");
    assert!(keys.len() >= 100, "only {} keys fit", keys.len());
    println!("{}: {} keys fit; a key holds {} versions", t.name(), keys.len(), rotations + 1);
    assert_eq!(c.list_all_keys().unwrap().len(), keys.len(), "nothing half-created");
    assert_eq!(c.decrypt(&blob, &[("k", "v")], None).unwrap().plaintext.as_slice(), b"kept safe");
    let last = keys.last().unwrap().clone();
    let b = c.encrypt(&last, b"last", NO_CONTEXT).unwrap().ciphertext_blob;
    assert_eq!(c.decrypt(&b, NO_CONTEXT, None).unwrap().plaintext.as_slice(), b"last");

    // Deleting a key frees its slot.
    let s = c.schedule_key_deletion(&last, Some(7)).unwrap();
    set_time(&mut c, s.deletion_date + 1);
    expect_code(c.describe_key(&last), ErrorCode::NotFound);
    c.create_key(&Default::default()).unwrap();
    assert_eq!(c.decrypt(&blob, &[("k", "v")], None).unwrap().plaintext.as_slice(), b"kept safe");
}
