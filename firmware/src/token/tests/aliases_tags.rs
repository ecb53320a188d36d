//! Aliases and tags.

use super::*;
use pkms_protocol::Tag;

fn alias_page(
    h: &mut Harness,
    key: Option<&str>,
    limit: u16,
    marker: Option<&str>,
) -> (Vec<(String, KeyId)>, Option<String>) {
    let r = h.ok(Request::ListAliases(pkms_protocol::request::ListAliases {
        key_id: key,
        limit: Some(limit),
        marker,
    }));
    let Ok(Response::Aliases(pkms_protocol::reply::Aliases { aliases, next_marker, truncated })) = r.get()
    else {
        panic!()
    };
    assert_eq!(truncated, next_marker.is_some());
    (
        aliases.iter().map(|a| (String::from(a.alias_name), a.target_key_id)).collect(),
        next_marker.map(String::from),
    )
}

#[test]
fn alias_names_follow_kms_rules() {
    let mut h = Harness::new();
    let key = s(&h.create(KeySpec::SymmetricDefault));
    let long = format!("alias/{}", "a".repeat(251));
    for bad in ["bar-test2", "alias/", "alias/has space", "alias/ümlaut", "alias/aws/mine", long.as_str(), ""]
    {
        let (code, msg) = h.err(Request::CreateAlias(pkms_protocol::request::CreateAlias {
            alias_name: bad,
            target_key_id: &key,
        }));
        assert_eq!(code, ErrorCode::InvalidAliasName, "{bad}: {msg}");
    }
    let max = format!("alias/{}", "a".repeat(250));
    for good in ["alias/a", "alias/Ok:with/all_the-chars09", max.as_str()] {
        h.ok(Request::CreateAlias(pkms_protocol::request::CreateAlias {
            alias_name: good,
            target_key_id: &key,
        }));
    }
    assert_eq!(
        h.code(Request::CreateAlias(pkms_protocol::request::CreateAlias {
            alias_name: "alias/a",
            target_key_id: &key
        })),
        ErrorCode::AlreadyExists
    );
    assert_eq!(
        h.code(Request::CreateAlias(pkms_protocol::request::CreateAlias {
            alias_name: "alias/b",
            target_key_id: "alias/a"
        })),
        ErrorCode::Validation
    );
    assert_eq!(
        h.code(Request::CreateAlias(pkms_protocol::request::CreateAlias {
            alias_name: "alias/b",
            target_key_id: "00000000-0000-0000-0000-000000000000"
        })),
        ErrorCode::NotFound
    );
}

#[test]
fn aliases_resolve_update_delete_and_list() {
    let mut h = Harness::new();
    let a = h.create(KeySpec::SymmetricDefault);
    let b = h.create(KeySpec::SymmetricDefault);
    let mac = h.create(KeySpec::Hmac256);
    h.ok(Request::CreateAlias(pkms_protocol::request::CreateAlias {
        alias_name: "alias/app",
        target_key_id: &s(&a),
    }));
    let blob = h.encrypt("alias/app", b"x", &[]);
    assert_eq!(&blob[3..19], &a.0);
    assert_eq!(h.describe("alias/app").key_id, a);
    h.ok(Request::UpdateAlias(pkms_protocol::request::UpdateAlias {
        alias_name: "alias/app",
        target_key_id: &s(&b),
    }));
    assert_eq!(h.describe("alias/app").key_id, b);
    assert_eq!(
        h.code(Request::UpdateAlias(pkms_protocol::request::UpdateAlias {
            alias_name: "alias/app",
            target_key_id: &s(&mac)
        })),
        ErrorCode::Validation
    );
    assert_eq!(
        h.code(Request::UpdateAlias(pkms_protocol::request::UpdateAlias {
            alias_name: "alias/nope",
            target_key_id: &s(&a)
        })),
        ErrorCode::NotFound
    );
    h.ok(Request::DeleteAlias(pkms_protocol::request::DeleteAlias { alias_name: "alias/app" }));
    assert_eq!(
        h.code(Request::DeleteAlias(pkms_protocol::request::DeleteAlias { alias_name: "alias/app" })),
        ErrorCode::NotFound
    );
    assert_eq!(
        h.code(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: "alias/app" })),
        ErrorCode::NotFound
    );
    // Listing: sorted by name, paged, filtered by key.
    let names = ["alias/e", "alias/b", "alias/d", "alias/a", "alias/c"];
    for (i, n) in names.iter().enumerate() {
        let target = if i % 2 == 0 { a } else { b };
        h.ok(Request::CreateAlias(pkms_protocol::request::CreateAlias {
            alias_name: n,
            target_key_id: &s(&target),
        }));
    }
    let mut h = h.restart();
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let (page, next) = alias_page(&mut h, None, 2, marker.as_deref());
        assert!(page.len() <= 2);
        seen.extend(page.into_iter().map(|(n, _)| n));
        match next {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    assert_eq!(seen, ["alias/a", "alias/b", "alias/c", "alias/d", "alias/e"]);
    let (of_b, _) = alias_page(&mut h, Some(&s(&b)), 10, None);
    assert_eq!(of_b, [(String::from("alias/a"), b), (String::from("alias/b"), b)]);
    assert_eq!(
        h.code(Request::ListAliases(pkms_protocol::request::ListAliases {
            key_id: None,
            limit: None,
            marker: Some("junk")
        })),
        ErrorCode::InvalidMarker
    );
    // Pending deletion keys cannot get aliases.
    h.ok(Request::ScheduleKeyDeletion(pkms_protocol::request::ScheduleKeyDeletion {
        key_id: &s(&a),
        pending_window_in_days: None,
    }));
    assert_eq!(
        h.code(Request::CreateAlias(pkms_protocol::request::CreateAlias {
            alias_name: "alias/z",
            target_key_id: &s(&a)
        })),
        ErrorCode::InvalidState
    );
}

#[test]
fn tags_are_added_replaced_removed_and_bounded() {
    let mut h = Harness::new();
    let key = s(&h.create(KeySpec::SymmetricDefault));
    let list = |h: &mut Harness| -> Vec<(String, String)> {
        let r = h.ok(Request::ListResourceTags(pkms_protocol::request::ListResourceTags { key_id: &key }));
        let Ok(Response::Tags(pkms_protocol::reply::Tags { tags })) = r.get() else { panic!() };
        tags.iter().map(|t| (String::from(t.tag_key), String::from(t.tag_value))).collect()
    };
    let tags = |pairs: &[(&'static str, &'static str)]| -> Tags<'static> {
        pairs.iter().map(|&(k, v)| Tag { tag_key: k, tag_value: v }).collect()
    };
    h.ok(Request::TagResource(pkms_protocol::request::TagResource {
        key_id: &key,
        tags: tags(&[("b", "2"), ("a", "1")]),
    }));
    h.ok(Request::TagResource(pkms_protocol::request::TagResource {
        key_id: &key,
        tags: tags(&[("a", "9"), ("c", "")]),
    }));
    assert_eq!(
        list(&mut h),
        [
            (String::from("a"), String::from("9")),
            (String::from("b"), String::from("2")),
            (String::from("c"), String::new())
        ]
    );
    h.ok(Request::UntagResource(pkms_protocol::request::UntagResource {
        key_id: &key,
        tag_keys: ["b", "zz"].into_iter().collect(),
    }));
    assert_eq!(list(&mut h).len(), 2);
    assert_eq!(
        h.code(Request::TagResource(pkms_protocol::request::TagResource {
            key_id: &key,
            tags: tags(&[("", "x")])
        })),
        ErrorCode::Tag
    );
    assert_eq!(
        h.code(Request::TagResource(pkms_protocol::request::TagResource {
            key_id: &key,
            tags: tags(&[("aws:x", "x")])
        })),
        ErrorCode::Tag
    );
    let long_key = "k".repeat(129);
    let t = [Tag { tag_key: &long_key, tag_value: "" }].into_iter().collect();
    assert_eq!(
        h.code(Request::TagResource(pkms_protocol::request::TagResource { key_id: &key, tags: t })),
        ErrorCode::Tag
    );
    // Two tags are held: the 49 more would make one too many.
    let names: Vec<String> =
        (0..pkms_protocol::limits::MAX_TAGS_PER_KEY - 1).map(|i| format!("t{i}")).collect();
    let many: Tags<'_> = names.iter().map(|n| Tag { tag_key: n, tag_value: "v" }).collect();
    assert_eq!(
        h.code(Request::TagResource(pkms_protocol::request::TagResource { key_id: &key, tags: many })),
        ErrorCode::LimitExceeded
    );
    assert_eq!(list(&mut h).len(), 2, "a refused TagResource changes nothing");
    let mut h = h.restart();
    let r = h.ok(Request::ListResourceTags(pkms_protocol::request::ListResourceTags { key_id: &key }));
    assert!(matches!(r.get(), Ok(Response::Tags(pkms_protocol::reply::Tags { tags })) if tags.len() == 2));
}

/// A user cannot make an alias that resolves someone else's calls to its own key: its aliases
/// live under `alias/user/<its name>/`, everything else is the administrators'.
#[test]
fn a_user_cannot_squat_an_alias_that_others_would_resolve_to_its_key() {
    use super::auth::{add_user, encrypt_code, init, login, PIN};
    use pkms_protocol::access::AuditFullMode;
    let alias = |name, target| {
        Request::CreateAlias(pkms_protocol::request::CreateAlias { alias_name: name, target_key_id: target })
    };
    let update = |name, target| {
        Request::UpdateAlias(pkms_protocol::request::UpdateAlias { alias_name: name, target_key_id: target })
    };
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    add_user(&mut h, "mallory", b"135790");
    add_user(&mut h, "bob.smith", b"246802");
    let backups = s(&h.create(KeySpec::SymmetricDefault));
    login(&mut h, "mallory", b"135790");
    let own = s(&h.create(KeySpec::SymmetricDefault));
    // The administrators' names, another user's names, and its own prefix with nothing after it.
    for name in [
        "alias/backups",
        "alias/user/bob.smith/backups",
        "alias/user/mallory",
        "alias/user/mallory/",
        "alias/user/mallorys/x",
    ] {
        assert_eq!(h.code(alias(name, &own)), ErrorCode::AccessDenied, "{name}");
    }
    h.ok(alias("alias/user/mallory/backups", &own));
    // The administrator's alias: the user can neither repoint nor delete it.
    login(&mut h, "admin", PIN);
    h.ok(alias("alias/backups", &backups));
    // Even when the key policy of the administrator's key lets mallory manage its aliases.
    let statement = |who: &'static str, actions: u64| pkms_protocol::access::Statement {
        effect: pkms_protocol::access::Effect::Allow,
        principals: [who].into_iter().collect(),
        actions,
        condition: None,
        grant_operations: None,
    };
    let manage = pkms_protocol::Action::UpdateAlias.bit() | pkms_protocol::Action::DeleteAlias.bit();
    let policy = super::auth::encode_policy(&pkms_protocol::access::Policy {
        statements: [
            statement("role/admin", pkms_protocol::access::ALL_ACTIONS),
            statement("mallory", manage),
        ]
        .into_iter()
        .collect(),
    });
    h.ok(Request::PutKeyPolicy(pkms_protocol::request::PutKeyPolicy { key_id: &backups, policy: &policy }));
    login(&mut h, "mallory", b"135790");
    assert_eq!(h.code(update("alias/backups", &own)), ErrorCode::AccessDenied);
    assert_eq!(
        h.code(Request::DeleteAlias(pkms_protocol::request::DeleteAlias { alias_name: "alias/backups" })),
        ErrorCode::AccessDenied
    );
    h.ok(update("alias/user/mallory/backups", &own));
    // The administrator's call goes to the administrator's key.
    login(&mut h, "admin", PIN);
    assert_eq!(h.describe("alias/backups").key_id, KeyId::parse(&backups).unwrap());
    // A user with a dot in its name has aliases too; administrators name anything.
    login(&mut h, "bob.smith", b"246802");
    let bobs = s(&h.create(KeySpec::SymmetricDefault));
    h.ok(alias("alias/user/bob.smith/db", &bobs));
    login(&mut h, "admin", PIN);
    h.ok(alias("alias/user/bob.smith/admin-made", &backups));
    assert_eq!(encrypt_code(&mut h, "alias/user/bob.smith/db", &[]), None);
}
