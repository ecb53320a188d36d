//! Each key version counts its AES-GCM encryptions (Encrypt, GenerateDataKey, ReEncrypt) in
//! batches reserved ahead on flash, and refuses to encrypt at 2^32 (or rotates first, when
//! automatic rotation is on).

use super::*;
use crate::records::{Kind, UsageRecord, FORMAT};
use crate::state::{ENCRYPTION_LIMIT, USAGE_BATCH};

fn reserved(h: &mut Harness, key: &KeyId) -> Option<(u32, u64)> {
    h.token.core.read::<UsageRecord>(&key.0).unwrap().map(|r| (r.version, r.reserved))
}

/// Plants a count for version `version` of `key` and restarts (the RAM count is gone).
fn plant(h: Harness, key: &KeyId, version: u32, count: u64) -> Harness {
    let mut h = h;
    h.token.core.write(&key.0, &UsageRecord { format: FORMAT, version, reserved: count }).unwrap();
    h.restart()
}

fn encrypt_result(h: &mut Harness, key: &str) -> Result<u32, (ErrorCode, String)> {
    let r = h.call(Request::Encrypt(pkms_protocol::request::Encrypt {
        key_id: key,
        plaintext: b"counted",
        encryption_context: EncryptionContext::new(),
    }));
    let res = r.get();
    match res {
        Ok(Response::Encrypt(pkms_protocol::reply::Encrypt { key_version, .. })) => Ok(key_version),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err((e.code, String::from(e.message))),
    }
}

#[test]
fn encryptions_are_counted_in_batches_reserved_ahead() {
    let mut h = Harness::new();
    let key = h.create(KeySpec::SymmetricDefault);
    let k = s(&key);
    assert_eq!(reserved(&mut h, &key), None, "nothing counted before the first encryption");
    h.encrypt(&k, b"one", &[]);
    assert_eq!(reserved(&mut h, &key), Some((1, USAGE_BATCH)));
    // The rest of the batch writes nothing.
    let before = h.token.flash().cut_points();
    for _ in 1..USAGE_BATCH {
        h.encrypt(&k, b"more", &[]);
    }
    assert_eq!(h.token.flash().cut_points(), before, "encryptions within a batch wrote to the flash");
    // The next one reserves the next batch; GenerateDataKey and ReEncrypt count too.
    h.ok(Request::GenerateDataKey(pkms_protocol::request::GenerateDataKey {
        key_id: &k,
        encryption_context: EncryptionContext::new(),
        key_spec: Some(pkms_protocol::DataKeySpec::Aes256),
        number_of_bytes: None,
    }));
    assert_eq!(reserved(&mut h, &key), Some((1, 2 * USAGE_BATCH)));
    // A restart counts the whole reserved batch as used.
    let mut h = h.restart();
    let blob = h.encrypt(&k, b"after restart", &[]);
    assert_eq!(reserved(&mut h, &key), Some((1, 3 * USAGE_BATCH)));
    h.ok(Request::ReEncrypt(pkms_protocol::request::ReEncrypt {
        ciphertext_blob: &blob,
        source_encryption_context: EncryptionContext::new(),
        source_key_id: None,
        destination_key_id: &k,
        destination_encryption_context: EncryptionContext::new(),
    }));
    assert_eq!(reserved(&mut h, &key), Some((1, 3 * USAGE_BATCH)), "within the batch");
    // A new version starts from zero.
    h.ok(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &k }));
    h.encrypt(&k, b"version 2", &[]);
    assert_eq!(reserved(&mut h, &key), Some((2, USAGE_BATCH)));
}

#[test]
fn a_version_refuses_encryption_at_two_to_the_32_until_the_key_rotates() {
    let mut h = Harness::new();
    let key = h.create(KeySpec::SymmetricDefault);
    let k = s(&key);
    let old_blob = h.encrypt(&k, b"made early", &[]);
    let mut h = plant(h, &key, 1, ENCRYPTION_LIMIT - 2);
    assert_eq!(encrypt_result(&mut h, &k), Ok(1));
    assert_eq!(encrypt_result(&mut h, &k), Ok(1));
    assert_eq!(reserved(&mut h, &key), Some((1, ENCRYPTION_LIMIT)), "never reserved past the limit");
    let (code, message) = encrypt_result(&mut h, &k).unwrap_err();
    assert_eq!(code, ErrorCode::LimitExceeded);
    assert!(message.contains("2^32") && message.contains("rotate"), "{message}");
    let data_key =
        Request::GenerateDataKeyWithoutPlaintext(pkms_protocol::request::GenerateDataKeyWithoutPlaintext {
            key_id: &k,
            encryption_context: EncryptionContext::new(),
            key_spec: Some(pkms_protocol::DataKeySpec::Aes256),
            number_of_bytes: None,
        });
    assert_eq!(h.code(data_key), ErrorCode::LimitExceeded);
    let re_encrypt = Request::ReEncrypt(pkms_protocol::request::ReEncrypt {
        ciphertext_blob: &old_blob,
        source_encryption_context: EncryptionContext::new(),
        source_key_id: None,
        destination_key_id: &k,
        destination_encryption_context: EncryptionContext::new(),
    });
    assert_eq!(h.code(re_encrypt), ErrorCode::LimitExceeded);
    // Still refused after a restart; decryption still works.
    let mut h = h.restart();
    assert_eq!(encrypt_result(&mut h, &k).unwrap_err().0, ErrorCode::LimitExceeded);
    assert_eq!(h.decrypt(&old_blob, &[]).unwrap(), b"made early");
    // A new version encrypts again.
    h.ok(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &k }));
    assert_eq!(encrypt_result(&mut h, &k), Ok(2));
}

#[test]
fn automatic_rotation_rotates_a_key_at_the_limit_before_it_encrypts() {
    let mut h = Harness::new();
    let key = h.create(KeySpec::SymmetricDefault);
    let k = s(&key);
    h.ok(Request::EnableKeyRotation(pkms_protocol::request::EnableKeyRotation {
        key_id: &k,
        rotation_period_in_days: Some(365),
    }));
    let old_blob = h.encrypt(&k, b"version 1", &[]);
    let mut h = plant(h, &key, 1, ENCRYPTION_LIMIT);
    assert_eq!(encrypt_result(&mut h, &k), Ok(2), "rotated, then encrypted under the new version");
    let m = h.describe(&k);
    assert_eq!(m.current_key_version, 2);
    assert_eq!(reserved(&mut h, &key), Some((2, USAGE_BATCH)));
    assert_eq!(h.decrypt(&old_blob, &[]).unwrap(), b"version 1");
}

/// The batch reservation is one store write: power cut at any point of it leaves the old or the
/// new reservation, never less, and the token keeps counting from there.
#[test]
fn a_power_cut_while_reserving_a_batch_never_lowers_the_count() {
    let mut h = Harness::with_flash(MockFlash::new(16 * 4096));
    let key = h.create(KeySpec::SymmetricDefault);
    let k = s(&key);
    h.encrypt(&k, b"first batch", &[]);
    let start = h.restart().token.into_flash();
    let total = {
        let mut h = Harness::with_flash(start.clone());
        let before = h.token.flash().cut_points();
        h.encrypt(&k, b"second batch", &[]);
        h.token.flash().cut_points() - before
    };
    assert!(total > 0);
    for cut in 0..total {
        let mut h = Harness::with_flash(start.clone());
        h.token.core.flash_mut().cut_power_after(cut);
        let _ = encrypt_result(&mut h, &k);
        let mut flash = h.token.into_flash();
        assert!(flash.is_power_cut(), "cut {cut} of {total} not reached");
        flash.restore_power();
        let mut h = Harness::with_flash_seed(flash, 500 + cut);
        let r = reserved(&mut h, &key);
        assert!(r == Some((1, USAGE_BATCH)) || r == Some((1, 2 * USAGE_BATCH)), "cut {cut}: {r:?}");
        assert_eq!(encrypt_result(&mut h, &k), Ok(1), "cut {cut}");
        let after = reserved(&mut h, &key).unwrap().1;
        assert!(after > r.unwrap().1, "cut {cut}: the count went back");
    }
    std::println!("encryption count reservation: {total} cut points");
}

/// Deleting a key removes its count; a count left by a cut during deletion goes at mount.
#[test]
fn a_deleted_key_leaves_no_count_behind() {
    let mut h = Harness::new();
    let key = h.create(KeySpec::SymmetricDefault);
    h.encrypt(&s(&key), b"x", &[]);
    assert!(h.token.core.contains(Kind::Usage, &key.0));
    h.ok(Request::ScheduleKeyDeletion(pkms_protocol::request::ScheduleKeyDeletion {
        key_id: &s(&key),
        pending_window_in_days: Some(7),
    }));
    h.now = Some(T0 + 8 * 86_400);
    h.ok(Request::GetInfo(pkms_protocol::request::GetInfo {}));
    assert!(!h.token.core.contains(Kind::Key, &key.0));
    assert!(!h.token.core.contains(Kind::Usage, &key.0), "the count outlived its key");
    // An orphan (as a cut between the two removals leaves) is dropped at mount.
    h.token.core.write(&[7; 16], &UsageRecord { format: FORMAT, version: 1, reserved: 5 }).unwrap();
    let h = h.restart();
    assert!(!h.token.core.contains(Kind::Usage, &[7; 16]));
}

/// On an initialised token the forced rotation has its own audit entry (no principal: the token
/// did it), naming the key and the new version, just before the request's own entry.
#[test]
fn a_rotation_forced_by_the_limit_has_its_own_audit_entry() {
    use pkms_protocol::access::{audit_operation_name, AuditFullMode};
    let pin: &[u8] = b"246810";
    let mut h = Harness::new();
    h.open_session();
    h.ok(Request::Initialize(pkms_protocol::request::Initialize {
        pin,
        puk: b"puk-12345678",
        audit_full: AuditFullMode::Overwrite,
    }));
    let key = h.create(KeySpec::SymmetricDefault);
    let k = s(&key);
    h.ok(Request::EnableKeyRotation(pkms_protocol::request::EnableKeyRotation {
        key_id: &k,
        rotation_period_in_days: Some(365),
    }));
    h.close_session();
    let mut h = plant(h, &key, 1, ENCRYPTION_LIMIT);
    h.open_session();
    h.ok(Request::Authenticate(pkms_protocol::request::Authenticate { principal: "admin", pin }));
    assert_eq!(encrypt_result(&mut h, &k), Ok(2));
    assert_eq!(encrypt_result(&mut h, &k), Ok(2), "the next encryption rotates nothing");
    let (entries, ..) = super::auth::read_all(&mut h);
    let names: Vec<&str> = entries.iter().map(|e| audit_operation_name(e.operation).unwrap_or("?")).collect();
    let at =
        names.iter().position(|n| *n == "EncryptionLimitRotation").expect("no entry for the forced rotation");
    assert_eq!(names.iter().filter(|n| **n == "EncryptionLimitRotation").count(), 1, "{names:?}");
    let entry = &entries[at];
    assert_eq!((entry.key_id, entry.key_version, entry.principal_name()), (key.0, 2, ""));
    assert_eq!(names[at + 1], "Encrypt", "{names:?}");
    assert_eq!(entries[at + 1].key_version, 2);
}
