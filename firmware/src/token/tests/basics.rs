//! Hello, GetInfo, GenerateRandom, bad frames, corrupt flash, restarts and the clock.

use super::*;
use pkms_protocol::PROTOCOL_VERSION;

pub(super) fn info<P: HarnessPlatform>(h: &mut Harness<P>) -> pkms_protocol::TokenInfo<'static> {
    let r = h.ok(Request::GetInfo(pkms_protocol::request::GetInfo {}));
    let res = r.get();
    match res {
        Ok(Response::Info(pkms_protocol::reply::Info { info: i })) => pkms_protocol::TokenInfo {
            firmware_version: "",
            board: "",
            entropy_source: "",
            key_protection: "",
            ..i
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn hello_checks_the_protocol_version() {
    let mut h = Harness::new();
    let r = h.ok(Request::Hello(pkms_protocol::request::Hello { protocol_version: PROTOCOL_VERSION }));
    assert!(matches!(
        r.get(),
        Ok(Response::Hello(pkms_protocol::reply::Hello { protocol_version: PROTOCOL_VERSION, .. }))
    ));
    assert_eq!(
        h.code(Request::Hello(pkms_protocol::request::Hello { protocol_version: PROTOCOL_VERSION + 1 })),
        ErrorCode::UnsupportedProtocolVersion
    );
}

#[test]
fn get_info_reports_storage_keys_and_time() {
    let mut h = Harness::new();
    let a = info(&mut h);
    assert_eq!(a.storage_total_bytes, 256 * 1024);
    assert!(a.storage_free_bytes > 200 * 1024 && a.storage_free_bytes < a.storage_total_bytes);
    assert_eq!(a.key_count, 0);
    assert_eq!(a.time_high_water_mark, T0);
    assert_eq!(a.platform, Platform::Emulated);
    h.create(KeySpec::SymmetricDefault);
    let b = info(&mut h);
    assert_eq!(b.key_count, 1);
    assert!(b.storage_free_bytes < a.storage_free_bytes);
    // Time never runs backwards.
    h.now = Some(T0 - 1000);
    assert_eq!(info(&mut h).time_high_water_mark, T0);
    h.now = None;
    assert_eq!(info(&mut h).time_high_water_mark, T0);
    h.now = Some(T0 + 10);
    assert_eq!(info(&mut h).time_high_water_mark, T0 + 10);
}

#[test]
fn the_time_high_water_mark_survives_a_restart() {
    let mut h = Harness::new();
    h.now = Some(T0 + 7200);
    h.ok(Request::GetInfo(pkms_protocol::request::GetInfo {}));
    let mut h = h.restart();
    h.now = None;
    assert!(info(&mut h).time_high_water_mark >= T0 + 7200);
    // A key created at a time is dated then, and the mark is at least that after a restart.
    h.now = Some(T0 + 7300);
    let k = h.create(KeySpec::SymmetricDefault);
    let mut h = h.restart();
    h.now = None;
    assert_eq!(h.describe(&s(&k)).creation_date, T0 + 7300);
    assert!(info(&mut h).time_high_water_mark >= T0 + 7300);
}

#[test]
fn generate_random_bounds() {
    let mut h = Harness::new();
    for n in [1u16, 32, 1024] {
        let r = h.ok(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: n }));
        let res = r.get();
        match res {
            Ok(Response::Random(pkms_protocol::reply::Random { plaintext })) => {
                assert_eq!(plaintext.len(), n as usize)
            }
            other => panic!("{other:?}"),
        }
    }
    let r1 = h.ok(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 32 }));
    let r2 = h.ok(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 32 }));
    assert_ne!(format!("{:?}", r1.get()), format!("{:?}", r2.get()));
    assert_eq!(
        h.code(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 0 })),
        ErrorCode::Validation
    );
    assert_eq!(
        h.code(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 1025 })),
        ErrorCode::Validation
    );
}

#[test]
fn garbage_payloads_get_an_error_frame_and_service_continues() {
    let mut h = Harness::new();
    for garbage in [&[][..], &[0xFF, 0xFF, 0xFF], &[1, 1, 0xFF], &[1, 0, 250, 1]] {
        let reply = h.payload(garbage);
        let frame = pkms_protocol::framing::decode_response(&reply).unwrap();
        assert_eq!(frame.id, 0);
        assert_eq!(frame.result.unwrap_err().code, ErrorCode::MalformedFrame);
    }
    h.ok(Request::GetInfo(pkms_protocol::request::GetInfo {}));
}

#[test]
fn a_corrupt_flash_still_answers() {
    for fill in [0x00u8, 0x5A] {
        let mut h = Harness::with_flash(MockFlash::from_bytes(std::vec![fill; 64 * 1024]));
        h.ok(Request::Hello(pkms_protocol::request::Hello { protocol_version: PROTOCOL_VERSION }));
        let i = info(&mut h);
        assert_eq!(i.storage_free_bytes, 0);
        let (code, msg) = h.err(Request::CreateKey(pkms_protocol::request::CreateKey {
            key_spec: KeySpec::SymmetricDefault,
            key_usage: None,
            description: "",
            tags: Tags::new(),
            user_presence_required: false,
        }));
        assert_eq!(code, ErrorCode::StorageCorrupted, "{msg}");
        assert_eq!(
            h.code(Request::ListKeys(pkms_protocol::request::ListKeys { limit: None, marker: None })),
            ErrorCode::StorageCorrupted
        );
        assert_eq!(
            h.code(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: "alias/x" })),
            ErrorCode::StorageCorrupted
        );
        h.ok(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 8 }));
        // Nothing was written to the foreign flash.
        assert!(h.token.flash().as_bytes().iter().all(|&b| b == fill));
    }
    // Too small a flash is refused, not a panic.
    let mut h = Harness::with_flash(MockFlash::new(8192));
    assert_eq!(
        h.code(Request::ListKeys(pkms_protocol::request::ListKeys { limit: None, marker: None })),
        ErrorCode::Internal
    );
}

#[test]
fn keys_survive_a_restart_and_the_raw_flash_holds_no_key_material() {
    let mut h = Harness::new();
    let k = h.create(KeySpec::SymmetricDefault);
    let blob = h.encrypt(&s(&k), b"persist me", &[("a", "1")]);
    // The material, as the token unwraps it, appears nowhere on the flash.
    let mut slot = crate::records::KeyRecord::empty();
    let key = h.token.core.load(&k, &mut slot).unwrap();
    let material = h.token.core.material(&key, 1).unwrap();
    let raw = h.token.flash().as_bytes().to_vec();
    assert!(!raw.windows(32).any(|w| w == material.as_bytes()));
    drop(material);
    let mut h = h.restart();
    assert_eq!(h.decrypt(&blob, &[("a", "1")]).unwrap(), b"persist me");
}

#[test]
fn create_describe_and_list_keys() {
    let mut h = Harness::new();
    let r = h.ok(Request::CreateKey(pkms_protocol::request::CreateKey {
        key_spec: KeySpec::SymmetricDefault,
        key_usage: Some(pkms_protocol::KeyUsage::EncryptDecrypt),
        description: "my key",
        tags: [pkms_protocol::Tag { tag_key: "team", tag_value: "a" }].into_iter().collect(),
        user_presence_required: false,
    }));
    let Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata: m })) = r.get() else {
        panic!()
    };
    assert_eq!(m.description, "my key");
    assert!(m.enabled);
    assert_eq!(m.key_state, pkms_protocol::KeyState::Enabled);
    assert_eq!(m.key_spec, KeySpec::SymmetricDefault);
    assert_eq!(m.key_usage, pkms_protocol::KeyUsage::EncryptDecrypt);
    assert_eq!(m.creation_date, T0);
    assert_eq!(m.current_key_version, 1);
    assert_eq!(m.oldest_key_version, 1);
    assert!(!m.key_rotation_enabled);
    assert_eq!(m.deletion_date, None);
    let id = m.key_id;
    let d = h.describe(&s(&id));
    assert_eq!(d.current_key_material_id, m.current_key_material_id);
    // Usage that the spec does not allow; bad descriptions; unknown and malformed ids.
    let (code, msg) = h.err(Request::CreateKey(pkms_protocol::request::CreateKey {
        key_spec: KeySpec::SymmetricDefault,
        key_usage: Some(pkms_protocol::KeyUsage::SignVerify),
        description: "",
        tags: Tags::new(),
        user_presence_required: false,
    }));
    assert_eq!(code, ErrorCode::Validation, "{msg}");
    let long = "d".repeat(257);
    assert_eq!(
        h.code(Request::CreateKey(pkms_protocol::request::CreateKey {
            key_spec: KeySpec::SymmetricDefault,
            key_usage: None,
            description: &long,
            tags: Tags::new(),
            user_presence_required: false,
        })),
        ErrorCode::Validation
    );
    assert_eq!(
        h.code(Request::DescribeKey(pkms_protocol::request::DescribeKey {
            key_id: "00000000-0000-0000-0000-000000000000"
        })),
        ErrorCode::NotFound
    );
    assert_eq!(
        h.code(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: "not-a-key" })),
        ErrorCode::NotFound
    );
    // ListKeys pages through every key in id order.
    let mut all = std::vec![id];
    for _ in 0..6 {
        all.push(h.create(KeySpec::Hmac256));
    }
    all.sort();
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let r = h.ok(Request::ListKeys(pkms_protocol::request::ListKeys {
            limit: Some(3),
            marker: marker.as_deref(),
        }));
        let Ok(Response::Keys(pkms_protocol::reply::Keys { keys, next_marker, truncated })) = r.get() else {
            panic!()
        };
        assert!(keys.len() <= 3);
        seen.extend(keys.iter().copied());
        assert_eq!(truncated, next_marker.is_some());
        match next_marker {
            Some(m) => marker = Some(String::from(m)),
            None => break,
        }
    }
    assert_eq!(seen, all);
    assert_eq!(
        h.code(Request::ListKeys(pkms_protocol::request::ListKeys { limit: Some(0), marker: None })),
        ErrorCode::Validation
    );
    assert_eq!(
        h.code(Request::ListKeys(pkms_protocol::request::ListKeys { limit: Some(1001), marker: None })),
        ErrorCode::Validation
    );
    assert_eq!(
        h.code(Request::ListKeys(pkms_protocol::request::ListKeys { limit: None, marker: Some("bogus") })),
        ErrorCode::InvalidMarker
    );
}

#[test]
fn a_full_store_refuses_new_keys_and_keeps_the_old_ones() {
    let mut h = Harness::with_flash(MockFlash::new(6 * 4096));
    let mut made = Vec::new();
    let code = loop {
        let r = h.call(Request::CreateKey(pkms_protocol::request::CreateKey {
            key_spec: KeySpec::Hmac512,
            key_usage: None,
            description: "a description that takes some room in the key record, to fill the store faster",
            tags: Tags::new(),
            user_presence_required: false,
        }));
        let res = r.get();
        match res {
            Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata: m })) => {
                made.push(m.key_id)
            }
            Ok(other) => panic!("{other:?}"),
            Err(e) => break e.code,
        }
        assert!(made.len() < 500);
    };
    assert_eq!(code, ErrorCode::LimitExceeded);
    assert!(made.len() > 20, "only {} keys fit in 24 KiB", made.len());
    let last = made[made.len() - 1];
    let mut rotations = 0;
    let code = loop {
        let r = h.call(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand {
            key_id: &s(&last),
        }));
        let res = r.get();
        match res {
            Ok(_) => rotations += 1,
            Err(e) => break e.code,
        }
        assert!(rotations < 100);
    };
    assert_eq!(code, ErrorCode::LimitExceeded);
    let mut h = h.restart();
    for k in &made {
        let expected = if *k == last { 1 + rotations } else { 1 };
        assert_eq!(h.describe(&s(k)).current_key_version, expected);
    }
}
