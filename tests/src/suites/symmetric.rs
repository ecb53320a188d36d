//! Keys and symmetric cryptography: CreateKey, DescribeKey, ListKeys, Encrypt, Decrypt, GenerateDataKey(WithoutPlaintext),
//! encryption context binding, tampering, unknown keys, size limits, and keys that survive a
//! restart of the token.

use pkms_lib::client::NO_CONTEXT;
use pkms_lib::model::{CreateKeyParams, DataKeySize};
use pkms_lib::Client;
use pkms_protocol::blob::{HEADER_LEN, OVERHEAD};
use pkms_protocol::limits::MAX_PLAINTEXT;
use pkms_protocol::{DataKeySpec, ErrorCode, KeySpec, KeyState, KeyUsage};

use crate::harness::{expect_code, TestToken};

fn now() -> u64 {
    pkms_lib::client::system_now().unwrap_or(0)
}

/// A new SYMMETRIC_DEFAULT key with a description; returns its id as text.
pub fn new_key(c: &mut Client, description: &str) -> String {
    let params = CreateKeyParams { description: description.to_owned(), ..Default::default() };
    c.create_key(&params).unwrap().key_id.to_string()
}

/// CreateKey, DescribeKey and ListKeys (all pages and page by page).
pub fn create_describe_list_keys(t: &mut dyn TestToken) {
    let mut c = t.client();
    let before = now();
    let m = c.create_key(&CreateKeyParams { description: "first".into(), ..Default::default() }).unwrap();
    assert_eq!(m.key_spec, KeySpec::SymmetricDefault);
    assert_eq!(m.key_usage, KeyUsage::EncryptDecrypt);
    assert_eq!(m.key_state, KeyState::Enabled);
    assert!(m.enabled);
    assert_eq!(m.description, "first");
    assert_eq!(m.current_key_version, 1);
    assert!(m.creation_date >= before && m.creation_date <= now() + 1, "creation date {}", m.creation_date);
    assert_eq!(m.deletion_date, None);

    let d = c.describe_key(&m.key_id.to_string()).unwrap();
    assert_eq!(d, m, "DescribeKey agrees with CreateKey");
    // Key ids are accepted in any case.
    assert_eq!(c.describe_key(&m.key_id.to_string().to_uppercase()).unwrap().key_id, m.key_id);

    let mut ids = vec![m.key_id];
    for i in 0..4 {
        ids.push(
            c.create_key(&CreateKeyParams { description: format!("k{i}"), ..Default::default() })
                .unwrap()
                .key_id,
        );
    }
    let all = c.list_all_keys().unwrap();
    for id in &ids {
        assert!(all.contains(id), "ListKeys lacks {id}");
    }
    assert_eq!(all.len(), ids.len());

    // Page by page, two at a time: every key exactly once.
    let mut paged = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..10 {
        let page = c.list_keys(Some(2), marker.as_deref()).unwrap();
        assert!(page.keys.len() <= 2);
        paged.extend(page.keys);
        if !page.truncated {
            break;
        }
        marker = Some(page.next_marker.expect("a truncated page has a NextMarker"));
    }
    paged.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(paged, expected);

    expect_code(c.list_keys(None, Some("not-a-marker-this-token-issued")), ErrorCode::InvalidMarker);
    expect_code(c.describe_key("00000000-0000-0000-0000-000000000000"), ErrorCode::NotFound);
    let too_long = "x".repeat(300);
    let err = c
        .create_key(&CreateKeyParams { description: too_long, ..Default::default() })
        .expect_err("a 300-byte description is over the limit");
    assert!(matches!(err.code(), Some(ErrorCode::Validation)), "{err:?}");
    let err = c
        .create_key(&CreateKeyParams { key_usage: Some(KeyUsage::SignVerify), ..Default::default() })
        .expect_err("SYMMETRIC_DEFAULT with SIGN_VERIFY");
    assert!(matches!(err.code(), Some(ErrorCode::Validation) | Some(ErrorCode::InvalidKeyUsage)), "{err:?}");
}

/// Encrypt and Decrypt with an encryption context; the order of pairs does not matter, any
/// other context fails, and a KeyId on Decrypt must name the blob's key.
pub fn encrypt_decrypt_with_context(t: &mut dyn TestToken) {
    let mut c = t.client();
    let key = new_key(&mut c, "ctx");
    let other = new_key(&mut c, "other");
    let ctx = [("app", "bar"), ("env", "test")];
    let swapped = [("env", "test"), ("app", "bar")];
    let enc = c.encrypt(&key, b"attack at dawn", &ctx).unwrap();
    assert_eq!(enc.key_id.to_string(), key);
    assert_eq!(enc.key_version, 1);
    assert_eq!(enc.ciphertext_blob.len(), b"attack at dawn".len() + OVERHEAD);

    let dec = c.decrypt(&enc.ciphertext_blob, &swapped, None).unwrap();
    assert_eq!(dec.plaintext.as_slice(), b"attack at dawn");
    assert_eq!(dec.key_id, enc.key_id);
    assert_eq!(dec.key_version, 1);
    assert_eq!(dec.key_material_id, enc.key_material_id);

    // The same plaintext encrypts differently each time (random nonce).
    let enc2 = c.encrypt(&key, b"attack at dawn", &ctx).unwrap();
    assert_ne!(enc2.ciphertext_blob, enc.ciphertext_blob);

    for (what, wrong) in [
        ("other value", vec![("app", "other"), ("env", "test")]),
        ("missing pair", vec![("app", "bar")]),
        ("extra pair", vec![("app", "bar"), ("env", "test"), ("x", "y")]),
        ("no context", vec![]),
    ] {
        let msg = expect_code(c.decrypt(&enc.ciphertext_blob, &wrong, None), ErrorCode::InvalidCiphertext);
        let _ = (what, msg);
    }
    // No ambiguity between a=bc and ab=c.
    let split = c.encrypt(&key, b"split", &[("a", "bc")]).unwrap();
    expect_code(c.decrypt(&split.ciphertext_blob, &[("ab", "c")], None), ErrorCode::InvalidCiphertext);
    assert_eq!(
        c.decrypt(&split.ciphertext_blob, &[("a", "bc")], None).unwrap().plaintext.as_slice(),
        b"split"
    );

    // KeyId on Decrypt: the blob's key is fine, another key is IncorrectKey.
    assert!(c.decrypt(&enc.ciphertext_blob, &ctx, Some(&key)).is_ok());
    expect_code(c.decrypt(&enc.ciphertext_blob, &ctx, Some(&other)), ErrorCode::IncorrectKey);
    // A blob without context decrypts without one.
    let plain = c.encrypt(&other, b"\x00\x01\x02", NO_CONTEXT).unwrap();
    assert_eq!(
        c.decrypt(&plain.ciphertext_blob, NO_CONTEXT, None).unwrap().plaintext.as_slice(),
        b"\x00\x01\x02"
    );
}

/// Flipped bits anywhere, truncation, foreign bytes: InvalidCiphertext, and service goes on.
pub fn tampered_blobs_are_refused(t: &mut dyn TestToken) {
    let mut c = t.client();
    let key = new_key(&mut c, "tamper");
    let ctx = [("k", "v")];
    let blob = c.encrypt(&key, b"sixteen byte msg", &ctx).unwrap().ciphertext_blob;
    // One position in each part: magic, version, key id, key version, nonce, ciphertext, tag.
    let positions =
        [0usize, 2, 3, 18, 19, 22, 23, 34, HEADER_LEN, HEADER_LEN + 8, blob.len() - 16, blob.len() - 1];
    for &i in &positions {
        let mut bad = blob.clone();
        bad[i] ^= 0x01;
        let r = c.decrypt(&bad, &ctx, None);
        match r {
            // A flipped key id may name no key at all: NotFound is a fair answer there.
            Err(ref e) if (3..19).contains(&i) && e.code() == Some(ErrorCode::NotFound) => {}
            _ => {
                expect_code(r, ErrorCode::InvalidCiphertext);
            }
        }
    }
    expect_code(c.decrypt(&blob[..blob.len() - 1], &ctx, None), ErrorCode::InvalidCiphertext);
    expect_code(c.decrypt(&blob[..OVERHEAD - 1], &ctx, None), ErrorCode::InvalidCiphertext);
    expect_code(c.decrypt(&[], &ctx, None), ErrorCode::InvalidCiphertext);
    expect_code(c.decrypt(&[0x42; 100], &ctx, None), ErrorCode::InvalidCiphertext);
    assert_eq!(c.decrypt(&blob, &ctx, None).unwrap().plaintext.as_slice(), b"sixteen byte msg");
}

/// Unknown keys are NotFound; plaintexts of 1..=4096 bytes are accepted, 0 and 4097 refused
/// with a message naming the limit.
pub fn unknown_keys_and_size_limits(t: &mut dyn TestToken) {
    let mut c = t.client();
    let key = new_key(&mut c, "limits");
    expect_code(c.encrypt("00000000-0000-0000-0000-000000000000", b"x", NO_CONTEXT), ErrorCode::NotFound);
    expect_code(c.encrypt("alias/does-not-exist", b"x", NO_CONTEXT), ErrorCode::NotFound);
    let max = vec![0xA5u8; MAX_PLAINTEXT];
    let blob = c.encrypt(&key, &max, NO_CONTEXT).unwrap().ciphertext_blob;
    assert_eq!(c.decrypt(&blob, NO_CONTEXT, None).unwrap().plaintext.as_slice(), max.as_slice());
    let msg = expect_code(c.encrypt(&key, &vec![0u8; MAX_PLAINTEXT + 1], NO_CONTEXT), ErrorCode::Validation);
    assert!(msg.contains("4096"), "the message names the limit: {msg:?}");
    expect_code(c.encrypt(&key, &[], NO_CONTEXT), ErrorCode::Validation);
    // The token still serves.
    assert_eq!(c.decrypt(&blob, NO_CONTEXT, None).unwrap().plaintext.len(), MAX_PLAINTEXT);
}

/// GenerateDataKey (AES_256, AES_128, NumberOfBytes) and GenerateDataKeyWithoutPlaintext: the
/// wrapped key decrypts to the plaintext key.
pub fn data_keys(t: &mut dyn TestToken) {
    let mut c = t.client();
    let key = new_key(&mut c, "dk");
    let ctx = [("purpose", "backup")];
    for (size, len) in [
        (DataKeySize::Spec(DataKeySpec::Aes256), 32),
        (DataKeySize::Spec(DataKeySpec::Aes128), 16),
        (DataKeySize::Bytes(1), 1),
        (DataKeySize::Bytes(64), 64),
        (DataKeySize::Bytes(1024), 1024),
    ] {
        let dk = c.generate_data_key(&key, &ctx, size).unwrap();
        let plain = dk.plaintext.as_ref().expect("GenerateDataKey returns the plaintext key");
        assert_eq!(plain.len(), len, "{size:?}");
        assert_eq!(dk.key_id.to_string(), key);
        let back = c.decrypt(&dk.ciphertext_blob, &ctx, None).unwrap();
        assert_eq!(back.plaintext.as_slice(), plain.as_slice());
        expect_code(c.decrypt(&dk.ciphertext_blob, NO_CONTEXT, None), ErrorCode::InvalidCiphertext);
    }
    let a = c.generate_data_key(&key, NO_CONTEXT, DataKeySize::Spec(DataKeySpec::Aes256)).unwrap();
    let b = c.generate_data_key(&key, NO_CONTEXT, DataKeySize::Spec(DataKeySpec::Aes256)).unwrap();
    assert_ne!(a.plaintext, b.plaintext, "data keys are fresh");

    let w =
        c.generate_data_key_without_plaintext(&key, &ctx, DataKeySize::Spec(DataKeySpec::Aes256)).unwrap();
    assert!(w.plaintext.is_none());
    assert_eq!(c.decrypt(&w.ciphertext_blob, &ctx, None).unwrap().plaintext.len(), 32);

    expect_code(c.generate_data_key(&key, NO_CONTEXT, DataKeySize::Bytes(0)), ErrorCode::Validation);
    expect_code(c.generate_data_key(&key, NO_CONTEXT, DataKeySize::Bytes(1025)), ErrorCode::Validation);
    expect_code(
        c.generate_data_key("00000000-0000-0000-0000-000000000000", NO_CONTEXT, DataKeySize::Bytes(16)),
        ErrorCode::NotFound,
    );
}

/// Keys and blobs survive a restart of the token (QEMU killed and booted again over the same
/// flash file; the in-process core remounted from its file).
pub fn keys_survive_restart(t: &mut dyn TestToken) {
    let (key, blob, meta) = {
        let mut c = t.client();
        let key = new_key(&mut c, "survivor");
        let blob =
            c.encrypt(&key, b"made before the restart", &[("when", "before")]).unwrap().ciphertext_blob;
        let meta = c.describe_key(&key).unwrap();
        (key, blob, meta)
    };
    t.restart();
    let mut c = t.client();
    let dec = c.decrypt(&blob, &[("when", "before")], None).unwrap();
    assert_eq!(dec.plaintext.as_slice(), b"made before the restart");
    assert_eq!(c.describe_key(&key).unwrap(), meta);
    assert!(c.list_all_keys().unwrap().contains(&meta.key_id));
    // And the restarted token makes new keys next to the old one.
    let second = new_key(&mut c, "after");
    assert_ne!(second, key);
    assert_eq!(c.list_all_keys().unwrap().len(), 2);
}
