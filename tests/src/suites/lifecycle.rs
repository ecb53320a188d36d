//! Key states (Enabled → Disabled → PendingDeletion → Disabled → Enabled), deletion
//! when the window has passed, aliases, tags and descriptions.

use pkms_lib::client::NO_CONTEXT;
use pkms_lib::model::{CreateKeyParams, Tag};
use pkms_lib::Client;
use pkms_protocol::limits::{MAX_TAGS_PER_KEY, SECONDS_PER_DAY};
use pkms_protocol::{ErrorCode, KeyState};

use super::symmetric::new_key;
use crate::harness::{expect_code, TestToken};

fn now() -> u64 {
    pkms_lib::client::system_now().unwrap_or(0)
}

fn state(c: &mut Client, key: &str) -> KeyState {
    c.describe_key(key).unwrap().key_state
}

/// The walk Enabled → Disabled → PendingDeletion → Disabled → Enabled, with what each state
/// refuses.
pub fn key_state_walk(t: &mut dyn TestToken) {
    let mut c = t.client();
    let key = new_key(&mut c, "walker");
    let blob = c.encrypt(&key, b"x", NO_CONTEXT).unwrap().ciphertext_blob;

    c.disable_key(&key).unwrap();
    let m = c.describe_key(&key).unwrap();
    assert_eq!((m.key_state, m.enabled), (KeyState::Disabled, false));
    expect_code(c.encrypt(&key, b"x", NO_CONTEXT), ErrorCode::Disabled);
    expect_code(c.decrypt(&blob, NO_CONTEXT, None), ErrorCode::Disabled);
    expect_code(c.rotate_key_on_demand(&key), ErrorCode::Disabled);

    expect_code(c.schedule_key_deletion(&key, Some(6)), ErrorCode::Validation);
    expect_code(c.schedule_key_deletion(&key, Some(31)), ErrorCode::Validation);
    let before = now();
    let s = c.schedule_key_deletion(&key, Some(7)).unwrap();
    assert_eq!(s.key_state, KeyState::PendingDeletion);
    assert_eq!(s.pending_window_in_days, 7);
    let expected = before + 7 * SECONDS_PER_DAY;
    assert!(s.deletion_date >= expected && s.deletion_date <= expected + 300, "{}", s.deletion_date);
    let m = c.describe_key(&key).unwrap();
    assert_eq!(m.key_state, KeyState::PendingDeletion);
    assert_eq!(m.deletion_date, Some(s.deletion_date));
    assert_eq!(m.pending_deletion_window_in_days, Some(7));
    expect_code(c.encrypt(&key, b"x", NO_CONTEXT), ErrorCode::InvalidState);
    expect_code(c.decrypt(&blob, NO_CONTEXT, None), ErrorCode::InvalidState);
    expect_code(c.enable_key(&key), ErrorCode::InvalidState);

    assert_eq!(c.cancel_key_deletion(&key).unwrap().to_string(), key);
    let m = c.describe_key(&key).unwrap();
    assert_eq!(m.key_state, KeyState::Disabled);
    assert_eq!(m.deletion_date, None);
    expect_code(c.cancel_key_deletion(&key), ErrorCode::InvalidState);

    c.enable_key(&key).unwrap();
    assert_eq!(state(&mut c, &key), KeyState::Enabled);
    assert_eq!(c.decrypt(&blob, NO_CONTEXT, None).unwrap().plaintext.as_slice(), b"x");
    expect_code(c.disable_key("00000000-0000-0000-0000-000000000000"), ErrorCode::NotFound);
}

/// Once the pending window has passed (host time), the key and all its versions are gone.
pub fn deletion_after_the_window(t: &mut dyn TestToken) {
    let mut c = t.client();
    let doomed = new_key(&mut c, "doomed");
    let kept = new_key(&mut c, "kept");
    c.rotate_key_on_demand(&doomed).unwrap();
    let blob = c.encrypt(&doomed, b"x", NO_CONTEXT).unwrap().ciphertext_blob;
    let kept_blob = c.encrypt(&kept, b"y", NO_CONTEXT).unwrap().ciphertext_blob;
    c.create_alias("alias/doomed", &doomed).unwrap();
    let s = c.schedule_key_deletion(&doomed, None).unwrap();
    assert_eq!(s.pending_window_in_days, 30);

    let at = s.deletion_date - 60;
    c.set_clock(Box::new(move || Some(at)));
    assert_eq!(state(&mut c, &doomed), KeyState::PendingDeletion, "not yet");
    let at = s.deletion_date + 60;
    c.set_clock(Box::new(move || Some(at)));
    expect_code(c.describe_key(&doomed), ErrorCode::NotFound);
    // The blob names a key the token no longer holds: nothing authenticates that name, so
    // InvalidCiphertext is as fair an answer as NotFound; it must not decrypt.
    let gone = c.decrypt(&blob, NO_CONTEXT, None).expect_err("a blob of a deleted key");
    assert!(
        matches!(gone.code(), Some(ErrorCode::NotFound) | Some(ErrorCode::InvalidCiphertext)),
        "{gone:?}"
    );
    expect_code(c.list_all_key_rotations(&doomed), ErrorCode::NotFound);
    let keys: Vec<String> = c.list_all_keys().unwrap().iter().map(|k| k.to_string()).collect();
    assert_eq!(keys, std::slice::from_ref(&kept));
    assert!(
        c.list_all_aliases(None).unwrap().iter().all(|a| a.alias_name != "alias/doomed"),
        "the deleted key's alias is gone too"
    );
    assert_eq!(c.decrypt(&kept_blob, NO_CONTEXT, None).unwrap().plaintext.as_slice(), b"y");
}

/// Aliases: naming rules, every key argument accepts them, update, delete, list, pages.
pub fn aliases(t: &mut dyn TestToken) {
    let mut c = t.client();
    let k1 = new_key(&mut c, "one");
    let k2 = new_key(&mut c, "two");
    c.create_alias("alias/app", &k1).unwrap();
    assert_eq!(c.encrypt("alias/app", b"x", NO_CONTEXT).unwrap().key_id.to_string(), k1);
    assert_eq!(c.describe_key("alias/app").unwrap().key_id.to_string(), k1);
    expect_code(c.create_alias("alias/app", &k2), ErrorCode::AlreadyExists);
    for bad in
        ["app", "alias/", "alias/aws/reserved", "alias/has space", "alias/semi;colon", "Alias/upper-prefix"]
    {
        let e = c.create_alias(bad, &k1).expect_err(bad);
        assert!(
            matches!(e.code(), Some(ErrorCode::InvalidAliasName) | Some(ErrorCode::Validation)),
            "{bad}: {e:?}"
        );
    }
    let long = format!("alias/{}", "a".repeat(251));
    assert_eq!(long.len(), 257);
    assert!(c.create_alias(&long, &k1).is_err(), "257-character alias");
    c.create_alias(&format!("alias/{}", "b".repeat(250)), &k1).unwrap();
    c.create_alias("alias/ok_name-1:x/y", &k1).unwrap();
    expect_code(c.create_alias("alias/ghost", "00000000-0000-0000-0000-000000000000"), ErrorCode::NotFound);

    let of_k1 = c.list_all_aliases(Some(&k1)).unwrap();
    assert_eq!(of_k1.len(), 3);
    assert!(c.list_all_aliases(Some(&k2)).unwrap().is_empty());
    let app = of_k1.iter().find(|a| a.alias_name == "alias/app").expect("alias/app listed");
    assert_eq!(app.target_key_id.to_string(), k1);

    c.update_alias("alias/app", &k2).unwrap();
    assert_eq!(c.encrypt("alias/app", b"x", NO_CONTEXT).unwrap().key_id.to_string(), k2);
    let updated = c.list_all_aliases(Some(&k2)).unwrap();
    assert_eq!(updated.len(), 1);
    assert!(updated[0].last_updated_date >= updated[0].creation_date);
    expect_code(c.update_alias("alias/nope", &k2), ErrorCode::NotFound);

    c.delete_alias("alias/app").unwrap();
    expect_code(c.encrypt("alias/app", b"x", NO_CONTEXT), ErrorCode::NotFound);
    expect_code(c.delete_alias("alias/app"), ErrorCode::NotFound);

    for i in 0..5 {
        c.create_alias(&format!("alias/page-{i}"), &k2).unwrap();
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..20 {
        let page = c.list_aliases(None, Some(2), marker.as_deref()).unwrap();
        assert!(page.aliases.len() <= 2);
        seen.extend(page.aliases.into_iter().map(|a| a.alias_name));
        if !page.truncated {
            break;
        }
        marker = page.next_marker;
    }
    seen.sort();
    let mut all: Vec<String> = c.list_all_aliases(None).unwrap().into_iter().map(|a| a.alias_name).collect();
    all.sort();
    assert_eq!(seen, all);
    assert_eq!(all.len(), 7);
}

/// Tags and descriptions.
pub fn tags_and_descriptions(t: &mut dyn TestToken) {
    let mut c = t.client();
    let key = c
        .create_key(&CreateKeyParams {
            tags: vec![Tag::new("a", "1")],
            description: "d0".into(),
            ..Default::default()
        })
        .unwrap()
        .key_id
        .to_string();
    let sorted = |mut v: Vec<Tag>| {
        v.sort();
        v
    };
    assert_eq!(c.list_resource_tags(&key).unwrap(), vec![Tag::new("a", "1")]);
    c.tag_resource(&key, &[Tag::new("b", "2"), Tag::new("a", "3")]).unwrap();
    assert_eq!(sorted(c.list_resource_tags(&key).unwrap()), vec![Tag::new("a", "3"), Tag::new("b", "2")]);
    c.untag_resource(&key, &["a"]).unwrap();
    assert_eq!(c.list_resource_tags(&key).unwrap(), vec![Tag::new("b", "2")]);

    expect_code(c.tag_resource(&key, &[Tag::new("", "x")]), ErrorCode::Tag);
    expect_code(c.tag_resource(&key, &[Tag::new("k".repeat(129), "x")]), ErrorCode::Tag);
    expect_code(c.tag_resource(&key, &[Tag::new("k", "v".repeat(257))]), ErrorCode::Tag);
    let many: Vec<Tag> = (0..MAX_TAGS_PER_KEY - 1).map(|i| Tag::new(format!("t{i}"), "v")).collect();
    c.tag_resource(&key, &many).unwrap();
    assert_eq!(c.list_resource_tags(&key).unwrap().len(), MAX_TAGS_PER_KEY);
    expect_code(c.tag_resource(&key, &[Tag::new("one-too-many", "v")]), ErrorCode::LimitExceeded);
    assert_eq!(c.list_resource_tags(&key).unwrap().len(), MAX_TAGS_PER_KEY, "nothing was half-applied");
    // Fewer tags than the count allows, but more bytes than a key's flash record holds for tags.
    let big: Vec<Tag> = (0..4).map(|i| Tag::new(format!("big{i}"), "v".repeat(256))).collect();
    let other = new_key(&mut c, "tag bytes");
    match c.tag_resource(&other, &big) {
        Err(e) => {
            assert_eq!(e.code(), Some(ErrorCode::LimitExceeded), "{e}");
            assert!(e.to_string().contains("1024 bytes"), "the message names the byte limit: {e}");
        }
        Ok(()) => panic!("{} bytes of tags were accepted", 4 * (2 + 4 + 2 + 256)),
    }
    assert!(c.list_resource_tags(&other).unwrap().is_empty(), "nothing was half-applied");

    c.update_key_description(&key, "new description").unwrap();
    assert_eq!(c.describe_key(&key).unwrap().description, "new description");
    expect_code(c.update_key_description(&key, &"d".repeat(300)), ErrorCode::Validation);
    assert_eq!(c.describe_key(&key).unwrap().description, "new description");
    expect_code(c.list_resource_tags("00000000-0000-0000-0000-000000000000"), ErrorCode::NotFound);
}
