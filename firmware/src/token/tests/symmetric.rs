//! Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext).

use super::*;

#[test]
fn encrypt_decrypt_with_context_in_any_order() {
    let mut h = Harness::new();
    let k = h.create(KeySpec::SymmetricDefault);
    let blob = h.encrypt(&s(&k), b"hello", &[("a", "1"), ("b", "2")]);
    assert_eq!(blob.len(), pkms_protocol::blob::OVERHEAD + 5);
    assert_eq!(&blob[3..19], &k.0, "blob names its key");
    assert_eq!(&blob[19..23], &1u32.to_be_bytes(), "blob names its version");
    assert_eq!(h.decrypt(&blob, &[("b", "2"), ("a", "1")]).unwrap(), b"hello");
    // Wrong or missing context.
    assert_eq!(h.decrypt(&blob, &[("a", "1")]).unwrap_err().0, ErrorCode::InvalidCiphertext);
    assert_eq!(h.decrypt(&blob, &[("a", "1"), ("b", "3")]).unwrap_err().0, ErrorCode::InvalidCiphertext);
    assert_eq!(h.decrypt(&blob, &[("ab", ""), ("b", "2")]).unwrap_err().0, ErrorCode::InvalidCiphertext);
    // Two encryptions differ (random nonces).
    assert_ne!(h.encrypt(&s(&k), b"hello", &[]), h.encrypt(&s(&k), b"hello", &[]));
    // Bad contexts are Validation.
    assert_eq!(
        h.code(Request::Encrypt(pkms_protocol::request::Encrypt {
            key_id: &s(&k),
            plaintext: b"x",
            encryption_context: ctx(&[("a", "1"), ("a", "2")])
        })),
        ErrorCode::Validation
    );
    assert_eq!(
        h.code(Request::Encrypt(pkms_protocol::request::Encrypt {
            key_id: &s(&k),
            plaintext: b"x",
            encryption_context: ctx(&[("", "1")])
        })),
        ErrorCode::Validation
    );
}

#[test]
fn a_flipped_bit_anywhere_is_invalid_ciphertext() {
    let mut h = Harness::new();
    let k = h.create(KeySpec::SymmetricDefault);
    let blob = h.encrypt(&s(&k), b"sixteen byte msg", &[("k", "v")]);
    for i in 0..blob.len() {
        for bit in [0u8, 7] {
            let mut bad = blob.clone();
            bad[i] ^= 1 << bit;
            let (code, msg) = h.decrypt(&bad, &[("k", "v")]).unwrap_err();
            assert_eq!(code, ErrorCode::InvalidCiphertext, "byte {i} bit {bit}: {msg}");
        }
    }
    for len in [0, 1, 50, blob.len() - 1] {
        assert_eq!(h.decrypt(&blob[..len], &[("k", "v")]).unwrap_err().0, ErrorCode::InvalidCiphertext);
    }
    assert_eq!(h.decrypt(&blob, &[("k", "v")]).unwrap(), b"sixteen byte msg");
}

#[test]
fn plaintext_limits_point_to_envelope_encryption() {
    let mut h = Harness::new();
    let k = h.create(KeySpec::SymmetricDefault);
    let big = std::vec![7u8; 4097];
    let (code, msg) = h.err(Request::Encrypt(pkms_protocol::request::Encrypt {
        key_id: &s(&k),
        plaintext: &big,
        encryption_context: ctx(&[]),
    }));
    assert_eq!(code, ErrorCode::Validation);
    assert!(msg.contains("4096"), "{msg}");
    assert!(msg.contains("envelope") && msg.contains("encrypt-file"), "{msg}");
    assert_eq!(
        h.code(Request::Encrypt(pkms_protocol::request::Encrypt {
            key_id: &s(&k),
            plaintext: b"",
            encryption_context: ctx(&[])
        })),
        ErrorCode::Validation
    );
    let max = std::vec![9u8; 4096];
    let blob = h.encrypt(&s(&k), &max, &[]);
    assert_eq!(h.decrypt(&blob, &[]).unwrap(), max);
    assert_eq!(
        h.code(Request::Encrypt(pkms_protocol::request::Encrypt {
            key_id: "00000000000000000000000000000000",
            plaintext: b"x",
            encryption_context: ctx(&[])
        })),
        ErrorCode::NotFound
    );
}

#[test]
fn decrypt_checks_an_optional_key_id() {
    let mut h = Harness::new();
    let k = h.create(KeySpec::SymmetricDefault);
    let other = h.create(KeySpec::SymmetricDefault);
    h.ok(Request::CreateAlias(pkms_protocol::request::CreateAlias {
        alias_name: "alias/mine",
        target_key_id: &s(&k),
    }));
    let blob = h.encrypt("alias/mine", b"x", &[]);
    for given in [s(&k), String::from("alias/mine")] {
        h.ok(Request::Decrypt(pkms_protocol::request::Decrypt {
            ciphertext_blob: &blob,
            encryption_context: ctx(&[]),
            key_id: Some(&given),
        }));
    }
    let (code, msg) = h.err(Request::Decrypt(pkms_protocol::request::Decrypt {
        ciphertext_blob: &blob,
        encryption_context: ctx(&[]),
        key_id: Some(&s(&other)),
    }));
    assert_eq!(code, ErrorCode::IncorrectKey, "{msg}");
    assert_eq!(
        h.code(Request::Decrypt(pkms_protocol::request::Decrypt {
            ciphertext_blob: &blob,
            encryption_context: ctx(&[]),
            key_id: Some("alias/none")
        })),
        ErrorCode::NotFound
    );
}

#[test]
fn re_encrypt_moves_data_between_keys_and_contexts() {
    let mut h = Harness::new();
    let a = h.create(KeySpec::SymmetricDefault);
    let b = h.create(KeySpec::SymmetricDefault);
    let blob = h.encrypt(&s(&a), b"moving", &[("t", "1")]);
    let r = h.ok(Request::ReEncrypt(pkms_protocol::request::ReEncrypt {
        ciphertext_blob: &blob,
        source_encryption_context: ctx(&[("t", "1")]),
        source_key_id: None,
        destination_key_id: &s(&b),
        destination_encryption_context: ctx(&[("t", "2")]),
    }));
    let Ok(Response::ReEncrypt(pkms_protocol::reply::ReEncrypt {
        ciphertext_blob,
        source_key_id,
        key_id,
        ..
    })) = r.get()
    else {
        panic!()
    };
    assert_eq!((source_key_id, key_id), (a, b));
    let moved = ciphertext_blob.to_vec();
    assert_eq!(h.decrypt(&moved, &[("t", "2")]).unwrap(), b"moving");
    assert_eq!(h.decrypt(&moved, &[("t", "1")]).unwrap_err().0, ErrorCode::InvalidCiphertext);
    // Wrong source context, wrong source key, unusable destination.
    let bad = |h: &mut Harness, sc: &[(&str, &str)], sk: Option<&str>, dk: &str| {
        h.code(Request::ReEncrypt(pkms_protocol::request::ReEncrypt {
            ciphertext_blob: &blob,
            source_encryption_context: ctx(sc),
            source_key_id: sk,
            destination_key_id: dk,
            destination_encryption_context: ctx(&[]),
        }))
    };
    assert_eq!(bad(&mut h, &[], None, &s(&b)), ErrorCode::InvalidCiphertext);
    assert_eq!(bad(&mut h, &[("t", "1")], Some(&s(&b)), &s(&b)), ErrorCode::IncorrectKey);
    let signer = h.create(KeySpec::EccNistP256);
    assert_eq!(bad(&mut h, &[("t", "1")], None, &s(&signer)), ErrorCode::InvalidKeyUsage);
    h.ok(Request::DisableKey(pkms_protocol::request::DisableKey { key_id: &s(&b) }));
    assert_eq!(bad(&mut h, &[("t", "1")], None, &s(&b)), ErrorCode::Disabled);
}

#[test]
fn generate_data_key_specs_and_bytes() {
    let mut h = Harness::new();
    let k = h.create(KeySpec::SymmetricDefault);
    let cases = [
        (Some(pkms_protocol::DataKeySpec::Aes256), None, 32usize),
        (Some(pkms_protocol::DataKeySpec::Aes128), None, 16),
        (None, Some(1u16), 1),
        (None, Some(1024), 1024),
    ];
    for (spec, n, len) in cases {
        let r = h.ok(Request::GenerateDataKey(pkms_protocol::request::GenerateDataKey {
            key_id: &s(&k),
            encryption_context: ctx(&[("f", "x")]),
            key_spec: spec,
            number_of_bytes: n,
        }));
        let Ok(Response::DataKey(pkms_protocol::reply::DataKey {
            ciphertext_blob,
            plaintext: Some(p),
            key_id,
            ..
        })) = r.get()
        else {
            panic!()
        };
        assert_eq!(key_id, k);
        assert_eq!(p.len(), len);
        let (blob, p) = (ciphertext_blob.to_vec(), p.to_vec());
        assert_eq!(h.decrypt(&blob, &[("f", "x")]).unwrap(), p);
        let r = h.ok(Request::GenerateDataKeyWithoutPlaintext(
            pkms_protocol::request::GenerateDataKeyWithoutPlaintext {
                key_id: &s(&k),
                encryption_context: ctx(&[]),
                key_spec: spec,
                number_of_bytes: n,
            },
        ));
        let Ok(Response::DataKey(pkms_protocol::reply::DataKey { ciphertext_blob, plaintext: None, .. })) =
            r.get()
        else {
            panic!()
        };
        let blob = ciphertext_blob.to_vec();
        assert_eq!(h.decrypt(&blob, &[]).unwrap().len(), len);
    }
    let bad = [
        (None, None),
        (Some(pkms_protocol::DataKeySpec::Aes256), Some(32)),
        (None, Some(0)),
        (None, Some(1025)),
    ];
    for (spec, n) in bad {
        let req = Request::GenerateDataKey(pkms_protocol::request::GenerateDataKey {
            key_id: &s(&k),
            encryption_context: ctx(&[]),
            key_spec: spec,
            number_of_bytes: n,
        });
        assert_eq!(h.code(req), ErrorCode::Validation);
    }
}

#[test]
fn user_presence_guards_decrypt_but_not_encrypt() {
    let mut h = Harness::new();
    let k = h.create_with(KeySpec::SymmetricDefault, true);
    assert!(h.describe(&s(&k)).user_presence_required);
    let blob = h.encrypt(&s(&k), b"guarded", &[]);
    assert_eq!(h.token.core.board().asked, 0, "Encrypt asked for presence");
    let (code, msg) = h.decrypt(&blob, &[]).unwrap_err();
    assert_eq!(code, ErrorCode::UserPresenceRequired);
    assert!(msg.contains("no button") && msg.contains("test-board"), "{msg}");
    h.token.board_mut().presence = UserPresence::TimedOut;
    let (code, msg) = h.decrypt(&blob, &[]).unwrap_err();
    assert_eq!(code, ErrorCode::UserPresenceRequired);
    assert!(msg.contains("within 30 s"), "{msg}");
    h.token.board_mut().presence = UserPresence::Confirmed;
    assert_eq!(h.decrypt(&blob, &[]).unwrap(), b"guarded");
    assert_eq!(h.token.core.board().asked, 3);
}
