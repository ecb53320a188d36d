//! Who a key's policy and grants name, and how far a grantee may pass its rights on: principals
//! named by random id (a re-created name inherits nothing), grants made under grants (a subset
//! of the operations, constraints at least as strict), `kms:GrantOperations` limits in key
//! policies, and the lockout check on open tokens.

use std::string::String;
use std::vec::Vec;

use pkms_protocol::access::{
    AuditFullMode, Condition, ConditionKind, Effect, Policy, Statement, ALL_ACTIONS,
};
use pkms_protocol::messages::{Request, Response};
use pkms_protocol::{Action, ErrorCode, KeySpec};

use super::auth::{add_user, encode_policy, encrypt_code, init, login, PIN};
use super::*;

fn grant(
    h: &mut Harness,
    key: &str,
    grantee: &str,
    operations: u64,
    constraint: Option<Condition<'_>>,
) -> Result<String, ErrorCode> {
    let r = h.call(Request::CreateGrant(pkms_protocol::request::CreateGrant {
        key_id: key,
        grantee,
        operations,
        constraint,
        name: "",
    }));
    let res = r.get();
    match res {
        Ok(Response::Grant(pkms_protocol::reply::Grant { grant_id })) => Ok(String::from(grant_id)),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.code),
    }
}

fn cond<'a>(kind: ConditionKind, pairs: &[(&'a str, &'a str)]) -> Option<Condition<'a>> {
    Some(Condition { kind, pairs: pairs.iter().copied().collect() })
}

fn statement<'a>(effect: Effect, who: &[&'a str], actions: u64) -> Statement<'a> {
    Statement {
        effect,
        principals: who.iter().copied().collect(),
        actions,
        condition: None,
        grant_operations: None,
    }
}

fn put_policy(h: &mut Harness, key: &str, statements: Vec<Statement<'_>>) -> Result<(), ErrorCode> {
    let policy = encode_policy(&Policy { statements: statements.into_iter().collect() });
    let r =
        h.call(Request::PutKeyPolicy(pkms_protocol::request::PutKeyPolicy { key_id: key, policy: &policy }));
    let res = r.get();
    res.map(|_| ()).map_err(|e| e.code)
}

fn get_policy(h: &mut Harness, key: &str) -> Vec<u8> {
    match h.ok(Request::GetKeyPolicy(pkms_protocol::request::GetKeyPolicy { key_id: key })).get() {
        Ok(Response::KeyPolicy(pkms_protocol::reply::KeyPolicy { policy, .. })) => policy.to_vec(),
        other => panic!("{other:?}"),
    }
}

fn grantees(h: &mut Harness, key: &str) -> Vec<String> {
    match h.ok(Request::ListGrants(pkms_protocol::request::ListGrants { key_id: key })).get() {
        Ok(Response::Grants(pkms_protocol::reply::Grants { grants })) => {
            grants.iter().map(|g| String::from(g.grantee)).collect()
        }
        other => panic!("{other:?}"),
    }
}

fn decrypt_code(h: &mut Harness, blob: &[u8], context: &[(&str, &str)]) -> Option<ErrorCode> {
    h.decrypt(blob, context).err().map(|e| e.0)
}

#[test]
fn a_principal_deleted_and_created_again_inherits_nothing() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    add_user(&mut h, "bob", b"135790");
    let granted = s(&h.create(KeySpec::SymmetricDefault));
    let named = s(&h.create(KeySpec::SymmetricDefault));
    grant(&mut h, &granted, "bob", Action::Encrypt.bit(), None).unwrap();
    put_policy(
        &mut h,
        &named,
        std::vec![
            statement(Effect::Allow, &["role/admin"], ALL_ACTIONS),
            statement(Effect::Allow, &["bob"], Action::Encrypt.bit()),
        ],
    )
    .unwrap();
    let before = get_policy(&mut h, &named);
    // bob's own key (its policy names its creator), and an alias of his.
    login(&mut h, "bob", b"135790");
    let own = s(&h.create(KeySpec::SymmetricDefault));
    h.ok(Request::CreateAlias(pkms_protocol::request::CreateAlias {
        alias_name: "alias/user/bob/mine",
        target_key_id: &own,
    }));
    for k in [&granted, &named, &own] {
        assert_eq!(encrypt_code(&mut h, k, &[]), None, "{k}");
    }
    // bob goes; someone else is given the name.
    login(&mut h, "admin", PIN);
    h.ok(Request::DeletePrincipal(pkms_protocol::request::DeletePrincipal { name: "bob" }));
    add_user(&mut h, "bob", b"135790");
    login(&mut h, "bob", b"135790");
    for k in [&granted, &named, &own] {
        assert_eq!(encrypt_code(&mut h, k, &[]), Some(ErrorCode::AccessDenied), "{k}");
    }
    assert_eq!(
        h.code(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: "alias/user/bob/mine" })),
        ErrorCode::NotFound
    );
    // The old grant was retired with its grantee; the policy statement names the old
    // principal, shown by its reference.
    login(&mut h, "admin", PIN);
    assert!(grantees(&mut h, &granted).is_empty(), "a deleted principal's grants are retired");
    let after = get_policy(&mut h, &named);
    assert_ne!(after, before);
    let p = Policy::decode_within(&after, crate::policy::MAX_STORED_POLICY_BYTES).unwrap();
    assert!(crate::records::PrincipalRef::is_reference(p.statements[1].principals[0]));
    // Putting that policy back is allowed (a reference names no one now), and naming bob again
    // names the new bob.
    let r = h
        .call(Request::PutKeyPolicy(pkms_protocol::request::PutKeyPolicy { key_id: &named, policy: &after }));
    r.get().unwrap();
    put_policy(
        &mut h,
        &named,
        std::vec![
            statement(Effect::Allow, &["role/admin"], ALL_ACTIONS),
            statement(Effect::Allow, &["bob"], Action::Encrypt.bit()),
        ],
    )
    .unwrap();
    assert_eq!(get_policy(&mut h, &named), before);
    login(&mut h, "bob", b"135790");
    assert_eq!(encrypt_code(&mut h, &named, &[]), None);
}

#[test]
fn policies_and_grants_name_only_principals_that_exist() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    let key = s(&h.create(KeySpec::SymmetricDefault));
    assert_eq!(grant(&mut h, &key, "ghost", Action::Encrypt.bit(), None), Err(ErrorCode::NotFound));
    assert_eq!(
        put_policy(
            &mut h,
            &key,
            std::vec![
                statement(Effect::Allow, &["role/admin"], ALL_ACTIONS),
                statement(Effect::Allow, &["ghost"], ALL_ACTIONS),
            ],
        ),
        Err(ErrorCode::MalformedPolicyDocument)
    );
    // The principal named later does not inherit a grant or statement made before it existed.
    add_user(&mut h, "ghost", b"135790");
    login(&mut h, "ghost", b"135790");
    assert_eq!(encrypt_code(&mut h, &key, &[]), Some(ErrorCode::AccessDenied));
}

#[test]
fn a_grantee_cannot_widen_its_grant() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    add_user(&mut h, "bob", b"135790");
    add_user(&mut h, "carol", b"246802");
    let key = s(&h.create(KeySpec::SymmetricDefault));
    let blob = h.encrypt(&key, b"the administrator's data", &[]);
    let enc = Action::Encrypt.bit();
    let dec = Action::Decrypt.bit();
    let create = Action::CreateGrant.bit();
    grant(&mut h, &key, "bob", enc | create, None).unwrap();
    login(&mut h, "bob", b"135790");
    // Not Decrypt for itself, nor for anyone else, nor anything beyond Encrypt and CreateGrant.
    assert_eq!(grant(&mut h, &key, "bob", dec, None), Err(ErrorCode::AccessDenied));
    assert_eq!(grant(&mut h, &key, "carol", dec, None), Err(ErrorCode::AccessDenied));
    assert_eq!(grant(&mut h, &key, "carol", enc | dec, None), Err(ErrorCode::AccessDenied));
    assert_eq!(decrypt_code(&mut h, &blob, &[]), Some(ErrorCode::AccessDenied));
    // The same or fewer operations may be passed on, and passed on again.
    grant(&mut h, &key, "carol", enc | create, None).unwrap();
    login(&mut h, "carol", b"246802");
    assert_eq!(encrypt_code(&mut h, &key, &[]), None);
    assert_eq!(decrypt_code(&mut h, &blob, &[]), Some(ErrorCode::AccessDenied));
    assert_eq!(grant(&mut h, &key, "carol", dec | create, None), Err(ErrorCode::AccessDenied));
    grant(&mut h, &key, "bob", enc, None).unwrap();
}

#[test]
fn a_grant_with_a_constraint_passes_on_only_constraints_at_least_as_strict() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    add_user(&mut h, "bob", b"135790");
    add_user(&mut h, "carol", b"246802");
    let key = s(&h.create(KeySpec::SymmetricDefault));
    let enc = Action::Encrypt.bit();
    let create = Action::CreateGrant.bit();
    use ConditionKind::{Equals, Subset};
    grant(&mut h, &key, "bob", enc | create, cond(Subset, &[("app", "x")])).unwrap();
    login(&mut h, "bob", b"135790");
    // Looser or other constraints: refused.
    for c in
        [None, cond(Subset, &[("app", "y")]), cond(Subset, &[("env", "y")]), cond(Equals, &[("env", "y")])]
    {
        assert_eq!(grant(&mut h, &key, "carol", enc, c.clone()), Err(ErrorCode::AccessDenied), "{c:?}");
    }
    // The same, more pairs, or exactly a context that holds them: the grant can be used.
    let strict = [("app", "x"), ("env", "prod")];
    grant(&mut h, &key, "carol", enc, cond(Subset, &[("app", "x")])).unwrap();
    grant(&mut h, &key, "carol", enc, cond(Subset, &strict)).unwrap();
    grant(&mut h, &key, "carol", enc | create, cond(Equals, &strict)).unwrap();
    login(&mut h, "carol", b"246802");
    assert_eq!(encrypt_code(&mut h, &key, &strict), None);
    assert_eq!(encrypt_code(&mut h, &key, &[("app", "y")]), Some(ErrorCode::AccessDenied));
    // Under an equals constraint only that same constraint passes on.
    assert_eq!(grant(&mut h, &key, "bob", enc, cond(Subset, &strict)), Err(ErrorCode::AccessDenied));
    grant(&mut h, &key, "bob", enc, cond(Equals, &[("env", "prod"), ("app", "x")])).unwrap();
}

#[test]
fn key_policies_limit_the_operations_and_constraints_of_the_grants_a_principal_makes() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    for (name, pin) in [("bob", b"135790"), ("carol", b"246802"), ("dave", b"357913")] {
        add_user(&mut h, name, pin);
    }
    let key = s(&h.create(KeySpec::SymmetricDefault));
    let enc = Action::Encrypt.bit();
    let dec = Action::Decrypt.bit();
    let dk = Action::GenerateDataKey.bit();
    let mut limited = statement(Effect::Allow, &["bob"], Action::CreateGrant.bit() | enc);
    limited.grant_operations = Some(enc | dec);
    let mut conditioned = statement(Effect::Allow, &["dave"], Action::CreateGrant.bit());
    conditioned.condition = cond(ConditionKind::Subset, &[("app", "x")]);
    put_policy(
        &mut h,
        &key,
        std::vec![statement(Effect::Allow, &["role/admin"], ALL_ACTIONS), limited, conditioned],
    )
    .unwrap();
    login(&mut h, "bob", b"135790");
    grant(&mut h, &key, "carol", enc, None).unwrap();
    grant(&mut h, &key, "carol", enc | dec, None).unwrap();
    assert_eq!(grant(&mut h, &key, "carol", enc | dk, None), Err(ErrorCode::AccessDenied));
    assert_eq!(grant(&mut h, &key, "carol", dk, None), Err(ErrorCode::AccessDenied));
    // The limit is about CreateGrant only: bob still encrypts.
    assert_eq!(encrypt_code(&mut h, &key, &[]), None);
    // A context condition on CreateGrant is about the grant's constraint.
    login(&mut h, "dave", b"357913");
    assert_eq!(grant(&mut h, &key, "carol", dk, None), Err(ErrorCode::AccessDenied));
    assert_eq!(
        grant(&mut h, &key, "carol", dk, cond(ConditionKind::Subset, &[("app", "y")])),
        Err(ErrorCode::AccessDenied)
    );
    grant(&mut h, &key, "carol", dk, cond(ConditionKind::Subset, &[("app", "x"), ("env", "y")])).unwrap();
    // The policy reads back with its limit.
    login(&mut h, "admin", PIN);
    let back = get_policy(&mut h, &key);
    let p = Policy::decode(&back).unwrap();
    assert_eq!(p.statements[1].grant_operations, Some(enc | dec));
    assert_eq!(p.statements[1].principals[0], "bob");
}

#[test]
fn the_lockout_check_holds_on_an_open_token_too() {
    let mut h = Harness::new();
    let key = s(&h.create(KeySpec::SymmetricDefault));
    // Naming a principal that does not exist (an open token has none) or leaving administrators
    // unable to put a policy: refused.
    let refused: [Vec<Statement<'_>>; 3] = [
        std::vec![statement(Effect::Allow, &["admin"], ALL_ACTIONS)],
        std::vec![statement(Effect::Allow, &["*"], Action::Encrypt.bit())],
        std::vec![
            statement(Effect::Allow, &["role/admin"], ALL_ACTIONS),
            statement(Effect::Deny, &["*"], Action::PutKeyPolicy.bit()),
        ],
    ];
    for p in refused {
        assert_eq!(put_policy(&mut h, &key, p), Err(ErrorCode::MalformedPolicyDocument));
    }
    put_policy(
        &mut h,
        &key,
        std::vec![
            statement(
                Effect::Allow,
                &["role/admin"],
                Action::PutKeyPolicy.bit() | Action::GetKeyPolicy.bit()
            ),
            statement(Effect::Allow, &["*"], Action::Encrypt.bit()),
        ],
    )
    .unwrap();
    // After init the administrator can still change it.
    init(&mut h, AuditFullMode::Overwrite);
    put_policy(&mut h, &key, std::vec![statement(Effect::Allow, &["admin"], ALL_ACTIONS)]).unwrap();
    assert_eq!(encrypt_code(&mut h, &key, &[]), None);
}

#[test]
fn deleting_a_principal_retires_its_grants_on_every_key_and_no_others() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    add_user(&mut h, "bob", b"135790");
    add_user(&mut h, "carol", b"246802");
    let k1 = s(&h.create(KeySpec::SymmetricDefault));
    let k2 = s(&h.create(KeySpec::SymmetricDefault));
    for k in [&k1, &k2] {
        grant(&mut h, k, "bob", Action::Encrypt.bit(), None).unwrap();
        grant(&mut h, k, "bob", Action::Decrypt.bit(), None).unwrap();
        grant(&mut h, k, "carol", Action::Encrypt.bit(), None).unwrap();
    }
    h.ok(Request::DeletePrincipal(pkms_protocol::request::DeletePrincipal { name: "bob" }));
    for k in [&k1, &k2] {
        assert_eq!(grantees(&mut h, k), std::vec![String::from("carol")], "{k}");
    }
}
