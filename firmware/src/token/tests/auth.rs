//! Authentication, key policies, grants and the audit log, through the wire interface.

use std::string::String;
use std::vec::Vec;

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use pkms_protocol::access::{
    checkpoint_digest, AuditEntry, AuditFullMode, Condition, ConditionKind, Effect, Policy, Role, Statement,
    AUDIT_ENTRY_LEN, PIN_RETRIES,
};
use pkms_protocol::messages::{Request, Response};
use pkms_protocol::Action;
use pkms_protocol::{ErrorCode, KeySpec};

use super::*;
use crate::audit::DROP_CHUNK;
use crate::Platform;

/// The test platform's audit log capacity.
pub(super) const CAPACITY: usize = <TestPlatform as Platform>::AUDIT_CAPACITY;

pub(super) const PIN: &[u8] = b"246810";
pub(super) const PUK: &[u8] = b"puk-12345678";

/// Initialises the token inside a new session (the PIN and PUK never travel in the clear); the
/// session is then the administrator's.
pub(super) fn init<P: HarnessPlatform>(h: &mut Harness<P>, mode: AuditFullMode) {
    h.open_session();
    h.ok(Request::Initialize(pkms_protocol::request::Initialize { pin: PIN, puk: PUK, audit_full: mode }));
}

/// The host closes its session and starts over in the clear.
pub(super) fn hello<P: HarnessPlatform>(h: &mut Harness<P>) {
    h.close_session();
    h.ok(Request::Hello(pkms_protocol::request::Hello { protocol_version: pkms_protocol::PROTOCOL_VERSION }));
}

/// A new session with no login.
pub(super) fn anonymous_session<P: HarnessPlatform>(h: &mut Harness<P>) {
    h.close_session();
    h.open_session();
}

/// A new session, logged in as `who`.
pub(super) fn login<P: HarnessPlatform>(h: &mut Harness<P>, who: &str, pin: &[u8]) {
    h.close_session();
    h.open_session();
    h.ok(Request::Authenticate(pkms_protocol::request::Authenticate { principal: who, pin }));
}

pub(super) fn initialized<P: HarnessPlatform>(h: &mut Harness<P>) -> bool {
    match h.ok(Request::GetInfo(pkms_protocol::request::GetInfo {})).get() {
        Ok(Response::Info(pkms_protocol::reply::Info { info: i })) => i.initialized,
        other => panic!("{other:?}"),
    }
}

pub(super) fn retries<P: HarnessPlatform>(h: &mut Harness<P>, who: &str) -> u8 {
    match h.ok(Request::ListPrincipals(pkms_protocol::request::ListPrincipals {})).get() {
        Ok(Response::Principals(pkms_protocol::reply::Principals { principals })) => {
            principals.iter().find(|p| p.name == who).map(|p| p.pin_retries_left).expect("principal listed")
        }
        other => panic!("{other:?}"),
    }
}

pub(super) fn add_user<P: HarnessPlatform>(h: &mut Harness<P>, name: &str, pin: &[u8]) {
    h.ok(Request::CreatePrincipal(pkms_protocol::request::CreatePrincipal { name, pin, role: Role::User }));
}

pub(super) fn encrypt_code<P: HarnessPlatform>(
    h: &mut Harness<P>,
    key: &str,
    context: &[(&str, &str)],
) -> Option<ErrorCode> {
    match h
        .call(Request::Encrypt(pkms_protocol::request::Encrypt {
            key_id: key,
            plaintext: b"hi",
            encryption_context: ctx(context),
        }))
        .get()
    {
        Ok(_) => None,
        Err(e) => Some(e.code),
    }
}

pub(super) fn encode_policy(p: &Policy<'_>) -> Vec<u8> {
    let mut buf = std::vec![0u8; 1024];
    let n = postcard::to_slice(p, &mut buf).unwrap().len();
    buf.truncate(n);
    buf
}

#[test]
fn open_token_works_without_pin_until_init_then_needs_a_session() {
    let mut h = Harness::new();
    assert!(!initialized(&mut h));
    let k = s(&h.create(KeySpec::SymmetricDefault));
    assert_eq!(encrypt_code(&mut h, &k, &[]), None);
    init(&mut h, AuditFullMode::Overwrite);
    assert!(initialized(&mut h));
    // The initialising session is the administrator's; in the clear nothing but Hello, GetInfo,
    // GetDeviceKey and the handshake is served any more.
    assert_eq!(encrypt_code(&mut h, &k, &[]), None);
    hello(&mut h);
    assert_eq!(encrypt_code(&mut h, &k, &[]), Some(ErrorCode::AuthenticationFailed));
    assert_eq!(
        h.code(Request::ListKeys(pkms_protocol::request::ListKeys { limit: None, marker: None })),
        ErrorCode::AuthenticationFailed
    );
    assert!(initialized(&mut h));
    // Not even the right PIN is taken in the clear (and it costs no try: it is never checked).
    let compared = crate::auth::pin::COMPARISONS.with(|c| c.get());
    let (code, msg) =
        h.err(Request::Authenticate(pkms_protocol::request::Authenticate { principal: "admin", pin: PIN }));
    assert_eq!(code, ErrorCode::AuthenticationFailed);
    assert!(msg.contains("encrypted session"), "{msg}");
    assert_eq!(crate::auth::pin::COMPARISONS.with(|c| c.get()), compared);
    // A session without a login gets no further than the clear did.
    h.open_session();
    assert_eq!(encrypt_code(&mut h, &k, &[]), Some(ErrorCode::AuthenticationFailed));
    let (code, msg) = h.err(Request::Authenticate(pkms_protocol::request::Authenticate {
        principal: "admin",
        pin: b"999999",
    }));
    assert_eq!((code, msg.as_str()), (ErrorCode::AuthenticationFailed, "wrong principal or PIN"));
    assert_eq!(
        crate::auth::pin::COMPARISONS.with(|c| c.get()),
        compared + 1,
        "the PIN in the session was checked"
    );
    h.ok(Request::Authenticate(pkms_protocol::request::Authenticate { principal: "admin", pin: PIN }));
    assert_eq!(retries(&mut h, "admin"), PIN_RETRIES);
    assert_eq!(encrypt_code(&mut h, &k, &[]), None);
    // A second Initialize is refused; a restart keeps the token initialised and the session gone.
    assert_eq!(
        h.code(Request::Initialize(pkms_protocol::request::Initialize {
            pin: PIN,
            puk: PUK,
            audit_full: AuditFullMode::Refuse
        })),
        ErrorCode::InvalidState
    );
    let mut h = h.restart();
    assert!(initialized(&mut h));
    assert_eq!(encrypt_code(&mut h, &k, &[]), Some(ErrorCode::AuthenticationFailed));
    // Short PINs are refused at init and for new principals.
    login(&mut h, "admin", PIN);
    assert_eq!(
        h.code(Request::CreatePrincipal(pkms_protocol::request::CreatePrincipal {
            name: "bob",
            pin: b"123",
            role: Role::User
        })),
        ErrorCode::Validation
    );
    assert_eq!(
        h.code(Request::CreatePrincipal(pkms_protocol::request::CreatePrincipal {
            name: "bad name",
            pin: PIN,
            role: Role::User
        })),
        ErrorCode::Validation
    );
}

#[test]
fn eight_wrong_pins_lock_until_the_puk_unblocks() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    add_user(&mut h, "bob", b"135790");
    for _ in 1..PIN_RETRIES {
        anonymous_session(&mut h);
        let (code, msg) = h.err(Request::Authenticate(pkms_protocol::request::Authenticate {
            principal: "bob",
            pin: b"000000",
        }));
        assert_eq!((code, msg.as_str()), (ErrorCode::AuthenticationFailed, "wrong principal or PIN"));
    }
    assert_eq!(
        h.code(Request::Authenticate(pkms_protocol::request::Authenticate {
            principal: "bob",
            pin: b"000000"
        })),
        ErrorCode::PinLocked
    );
    // Locked: even the right PIN is refused.
    assert_eq!(
        h.code(Request::Authenticate(pkms_protocol::request::Authenticate {
            principal: "bob",
            pin: b"135790"
        })),
        ErrorCode::PinLocked
    );
    login(&mut h, "admin", PIN);
    assert_eq!(retries(&mut h, "bob"), 0);
    // Wrong PUK costs a PUK try; the right one unblocks with a new PIN.
    anonymous_session(&mut h);
    assert_eq!(
        h.code(Request::UnblockPin(pkms_protocol::request::UnblockPin {
            principal: "bob",
            puk: b"wrong-puk",
            new_pin: b"555555"
        })),
        ErrorCode::AuthenticationFailed
    );
    h.ok(Request::UnblockPin(pkms_protocol::request::UnblockPin {
        principal: "bob",
        puk: PUK,
        new_pin: b"555555",
    }));
    assert_eq!(
        h.code(Request::Authenticate(pkms_protocol::request::Authenticate {
            principal: "bob",
            pin: b"135790"
        })),
        ErrorCode::AuthenticationFailed
    );
    login(&mut h, "bob", b"555555");
    // A user may not manage principals nor factory-reset while the PUK works.
    assert_eq!(
        h.code(Request::CreatePrincipal(pkms_protocol::request::CreatePrincipal {
            name: "eve",
            pin: PIN,
            role: Role::Admin
        })),
        ErrorCode::AccessDenied
    );
    assert_eq!(
        h.code(Request::FactoryReset(pkms_protocol::request::FactoryReset {
            confirm: pkms_protocol::access::FACTORY_RESET_CONFIRMATION
        })),
        ErrorCode::AccessDenied
    );
    // An administrator may; the confirmation text is required.
    login(&mut h, "admin", PIN);
    let k = s(&h.create(KeySpec::SymmetricDefault));
    assert_eq!(
        h.code(Request::FactoryReset(pkms_protocol::request::FactoryReset { confirm: "yes" })),
        ErrorCode::Validation
    );
    h.ok(Request::FactoryReset(pkms_protocol::request::FactoryReset {
        confirm: pkms_protocol::access::FACTORY_RESET_CONFIRMATION,
    }));
    assert!(!initialized(&mut h));
    assert_eq!(
        h.code(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: &k })),
        ErrorCode::NotFound
    );
    let mut h = h.restart();
    assert!(!initialized(&mut h));
    let k2 = s(&h.create(KeySpec::SymmetricDefault));
    assert_eq!(encrypt_code(&mut h, &k2, &[]), None);
}

#[test]
fn a_power_cut_at_any_byte_of_a_pin_check_never_gains_a_try() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    add_user(&mut h, "bob", b"135790");
    hello(&mut h);
    let start = h.token.into_flash();
    let mut points = 0;
    let mut verdicts = 0;
    for pin in [&b"000000"[..], &b"135790"[..]] {
        let total = {
            let mut h = Harness::with_flash(start.clone());
            h.open_session();
            let before = h.token.flash().cut_points();
            let _ =
                h.call(Request::Authenticate(pkms_protocol::request::Authenticate { principal: "bob", pin }));
            h.token.flash().cut_points() - before
        };
        assert!(total > 0);
        for cut in 0..total {
            let mut h = Harness::with_flash(start.clone());
            h.open_session();
            h.token.core.flash_mut().cut_power_after(cut);
            let compared = crate::auth::pin::COMPARISONS.with(|c| c.get());
            let answer = h
                .call(Request::Authenticate(pkms_protocol::request::Authenticate { principal: "bob", pin }))
                .get()
                .map(|_| ())
                .map_err(|e| e.code);
            // Whether the PIN was compared: what an attacker watching the token's power draw
            // would learn before cutting it.
            let verdict = crate::auth::pin::COMPARISONS.with(|c| c.get()) > compared;
            assert!(answer.is_err(), "cut {cut}/{total}: an answer left a token whose power was cut");
            verdicts += usize::from(verdict);
            let mut flash = h.token.into_flash();
            flash.restore_power();
            let mut h = Harness::with_flash_seed(flash, 500 + cut);
            login(&mut h, "admin", PIN);
            let left = retries(&mut h, "bob");
            // A PIN is compared only after the try it costs is on flash: a wrong PIN that was
            // compared always leaves one try fewer; the right one leaves one fewer or all.
            let wrong = pin != b"135790";
            assert!(
                if verdict && wrong { left == PIN_RETRIES - 1 } else { left >= PIN_RETRIES - 1 },
                "cut {cut}/{total}: {left} left, compared {verdict}"
            );
            points += 1;
        }
    }
    assert!(verdicts > 0, "no cut point reached the PIN check");
    std::println!("PIN check: {points} cut points, {verdicts} with a verdict");
}

#[test]
fn policies_and_grants_decide_who_may_use_a_key() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    add_user(&mut h, "bob", b"135790");
    add_user(&mut h, "carol", b"246802");
    let admin_key = s(&h.create(KeySpec::SymmetricDefault));
    // Default policy: administrators only.
    login(&mut h, "bob", b"135790");
    assert_eq!(encrypt_code(&mut h, &admin_key, &[]), Some(ErrorCode::AccessDenied));
    assert_eq!(
        h.code(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: &admin_key })),
        ErrorCode::AccessDenied
    );
    // A key bob creates is his (and the administrators'), not carol's.
    let bob_key = s(&h.create(KeySpec::SymmetricDefault));
    assert_eq!(encrypt_code(&mut h, &bob_key, &[]), None);
    login(&mut h, "carol", b"246802");
    assert_eq!(encrypt_code(&mut h, &bob_key, &[]), Some(ErrorCode::AccessDenied));
    login(&mut h, "admin", PIN);
    assert_eq!(encrypt_code(&mut h, &bob_key, &[]), None);
    // A grant lets bob encrypt under the administrator's key with app=billing in the context.
    let mut pairs = heapless::Vec::new();
    pairs.push(("app", "billing")).unwrap();
    let constraint = Condition { kind: ConditionKind::Subset, pairs };
    let gid = match h
        .ok(Request::CreateGrant(pkms_protocol::request::CreateGrant {
            key_id: &admin_key,
            grantee: "bob",
            operations: Action::Encrypt.bit(),
            constraint: Some(constraint),
            name: "billing",
        }))
        .get()
    {
        Ok(Response::Grant(pkms_protocol::reply::Grant { grant_id })) => String::from(grant_id),
        other => panic!("{other:?}"),
    };
    login(&mut h, "bob", b"135790");
    assert_eq!(encrypt_code(&mut h, &admin_key, &[("app", "billing"), ("x", "y")]), None);
    assert_eq!(encrypt_code(&mut h, &admin_key, &[("app", "other")]), Some(ErrorCode::AccessDenied));
    assert_eq!(encrypt_code(&mut h, &admin_key, &[]), Some(ErrorCode::AccessDenied));
    let blob = h.encrypt(&admin_key, b"x", &[("app", "billing")]);
    assert_eq!(h.decrypt(&blob, &[("app", "billing")]).unwrap_err().0, ErrorCode::AccessDenied);
    // Carol cannot retire bob's grant; bob can.
    login(&mut h, "carol", b"246802");
    assert_eq!(
        h.code(Request::RetireGrant(pkms_protocol::request::RetireGrant {
            key_id: &admin_key,
            grant_id: &gid
        })),
        ErrorCode::AccessDenied
    );
    login(&mut h, "bob", b"135790");
    h.ok(Request::RetireGrant(pkms_protocol::request::RetireGrant { key_id: &admin_key, grant_id: &gid }));
    assert_eq!(encrypt_code(&mut h, &admin_key, &[("app", "billing")]), Some(ErrorCode::AccessDenied));
    assert_eq!(
        h.code(Request::RetireGrant(pkms_protocol::request::RetireGrant {
            key_id: &admin_key,
            grant_id: &gid
        })),
        ErrorCode::InvalidGrantId
    );
    // A policy: carol may decrypt, everyone may encrypt, but bob is denied everything (deny wins).
    login(&mut h, "admin", PIN);
    let mut st = heapless::Vec::new();
    let mut admins = heapless::Vec::new();
    admins.push("role/admin").unwrap();
    st.push(Statement {
        effect: Effect::Allow,
        principals: admins,
        actions: pkms_protocol::access::ALL_ACTIONS,
        condition: None,
        grant_operations: None,
    })
    .unwrap();
    let mut carol = heapless::Vec::new();
    carol.push("carol").unwrap();
    st.push(Statement {
        effect: Effect::Allow,
        principals: carol,
        actions: Action::Decrypt.bit(),
        condition: None,
        grant_operations: None,
    })
    .unwrap();
    let mut all = heapless::Vec::new();
    all.push("*").unwrap();
    st.push(Statement {
        effect: Effect::Allow,
        principals: all,
        actions: Action::Encrypt.bit(),
        condition: None,
        grant_operations: None,
    })
    .unwrap();
    let mut bob = heapless::Vec::new();
    bob.push("bob").unwrap();
    st.push(Statement {
        effect: Effect::Deny,
        principals: bob,
        actions: pkms_protocol::access::ALL_ACTIONS,
        condition: None,
        grant_operations: None,
    })
    .unwrap();
    let policy = encode_policy(&Policy { statements: st });
    h.ok(Request::PutKeyPolicy(pkms_protocol::request::PutKeyPolicy { key_id: &admin_key, policy: &policy }));
    match h.ok(Request::GetKeyPolicy(pkms_protocol::request::GetKeyPolicy { key_id: &admin_key })).get() {
        Ok(Response::KeyPolicy(pkms_protocol::reply::KeyPolicy { policy: p, .. })) => {
            assert_eq!(p, &policy[..])
        }
        other => panic!("{other:?}"),
    }
    let blob = h.encrypt(&admin_key, b"x", &[]);
    login(&mut h, "carol", b"246802");
    assert_eq!(h.decrypt(&blob, &[]).unwrap(), b"x");
    assert_eq!(encrypt_code(&mut h, &admin_key, &[]), None);
    assert_eq!(
        h.code(Request::ScheduleKeyDeletion(pkms_protocol::request::ScheduleKeyDeletion {
            key_id: &admin_key,
            pending_window_in_days: None
        })),
        ErrorCode::AccessDenied
    );
    login(&mut h, "bob", b"135790");
    assert_eq!(encrypt_code(&mut h, &admin_key, &[]), Some(ErrorCode::AccessDenied));
    // Malformed policies and ones that lock the caller out are refused.
    login(&mut h, "admin", PIN);
    assert_eq!(
        h.code(Request::PutKeyPolicy(pkms_protocol::request::PutKeyPolicy {
            key_id: &admin_key,
            policy: b"\x01\x02"
        })),
        ErrorCode::MalformedPolicyDocument
    );
    let mut only_carol = heapless::Vec::new();
    let mut c = heapless::Vec::new();
    c.push("carol").unwrap();
    only_carol
        .push(Statement {
            effect: Effect::Allow,
            principals: c,
            actions: Action::Encrypt.bit(),
            condition: None,
            grant_operations: None,
        })
        .unwrap();
    let lockout = encode_policy(&Policy { statements: only_carol });
    assert_eq!(
        h.code(Request::PutKeyPolicy(pkms_protocol::request::PutKeyPolicy {
            key_id: &admin_key,
            policy: &lockout
        })),
        ErrorCode::MalformedPolicyDocument
    );
}

/// Entries, head sequence, head hash, head signature, public key, first sequence, base signature.
pub(super) type Export = (Vec<AuditEntry>, u64, [u8; 32], Vec<u8>, Vec<u8>, u64, Vec<u8>);

pub(super) fn read_all<P: HarnessPlatform>(h: &mut Harness<P>) -> Export {
    let (seq, hash, sig, first, pk, base) = match h
        .ok(Request::GetAuditCheckpoint(pkms_protocol::request::GetAuditCheckpoint {}))
        .get()
    {
        Ok(Response::AuditCheckpoint(pkms_protocol::reply::AuditCheckpoint {
            sequence,
            hash,
            signature,
            first_sequence,
            public_key,
            base_signature,
            ..
        })) => {
            (sequence, hash, signature.to_vec(), first_sequence, public_key.to_vec(), base_signature.to_vec())
        }
        other => panic!("{other:?}"),
    };
    let mut out = Vec::new();
    let mut next = first;
    while next <= seq {
        let page = match h
            .ok(Request::ReadAuditLog(pkms_protocol::request::ReadAuditLog {
                start_sequence: next,
                limit: 40,
            }))
            .get()
        {
            Ok(Response::AuditEntries(pkms_protocol::reply::AuditEntries { entries })) => entries.to_vec(),
            other => panic!("{other:?}"),
        };
        assert_eq!(page.len() % AUDIT_ENTRY_LEN, 0);
        for c in page.chunks(AUDIT_ENTRY_LEN) {
            let e = AuditEntry::decode(c).unwrap();
            if e.sequence <= seq {
                next = e.sequence + 1;
                out.push(e);
            }
        }
    }
    (out, seq, hash, sig, pk, first, base)
}

pub(super) fn verify_chain(
    entries: &[AuditEntry],
    seq: u64,
    hash: &[u8; 32],
    sig: &[u8],
    pk: &[u8],
    first: u64,
    base: &[u8],
) {
    let key = VerifyingKey::from_public_key_der(pk).unwrap();
    let sig = Signature::from_der(sig).unwrap();
    key.verify_prehash(&checkpoint_digest(seq, hash), &sig).unwrap();
    assert_eq!(entries.first().unwrap().sequence, first);
    for w in entries.windows(2) {
        assert_eq!(w[1].sequence, w[0].sequence + 1);
        assert_eq!(w[1].prev_hash, w[0].hash());
    }
    assert_eq!(entries.last().unwrap().hash(), *hash);
    if first > 1 {
        let b = Signature::from_der(base).unwrap();
        key.verify_prehash(&checkpoint_digest(first - 1, &entries[0].prev_hash), &b).unwrap();
    } else {
        assert_eq!(entries[0].prev_hash, [0; 32]);
    }
}

#[test]
fn every_request_of_a_principal_and_every_secret_tried_is_chained_into_the_audit_log() {
    let mut h = Harness::new();
    let k0 = s(&h.create(KeySpec::SymmetricDefault));
    init(&mut h, AuditFullMode::Overwrite);
    let k = h.create(KeySpec::SymmetricDefault);
    h.encrypt(&s(&k), b"x", &[]);
    hello(&mut h);
    // Requests from no one (in the clear, or in a session before Authenticate) write nothing,
    // except the tries of a secret.
    let before = h.token.flash().cut_points();
    for _ in 0..50 {
        assert_eq!(encrypt_code(&mut h, &k0, &[]), Some(ErrorCode::AuthenticationFailed));
        assert!(initialized(&mut h));
        h.device_key();
        h.open_session();
        assert_eq!(encrypt_code(&mut h, &k0, &[]), Some(ErrorCode::AuthenticationFailed));
        h.close_session();
    }
    assert_eq!(h.token.flash().cut_points(), before, "anonymous requests wrote to or erased the flash");
    // Failed tries of a secret with no one logged in are counted, and the count written as one
    // entry before the next one.
    let entries_before = h.token.core.entries(crate::records::Kind::Audit).len();
    h.open_session();
    for (who, pin) in [("admin", &b"999999"[..]), ("admin", b"999998"), ("nobody", b"999997")] {
        assert_eq!(
            h.code(Request::Authenticate(pkms_protocol::request::Authenticate { principal: who, pin })),
            ErrorCode::AuthenticationFailed
        );
    }
    assert_eq!(
        h.code(Request::FactoryReset(pkms_protocol::request::FactoryReset {
            confirm: pkms_protocol::access::FACTORY_RESET_CONFIRMATION
        })),
        ErrorCode::AccessDenied
    );
    assert_eq!(
        h.token.core.entries(crate::records::Kind::Audit).len(),
        entries_before,
        "failed tries are counted in RAM first"
    );
    h.ok(Request::Authenticate(pkms_protocol::request::Authenticate { principal: "admin", pin: PIN }));
    let (entries, seq, hash, sig, pk, first, base) = read_all(&mut h);
    verify_chain(&entries, seq, &hash, &sig, &pk, first, &base);
    let names: Vec<&str> =
        entries.iter().map(|e| pkms_protocol::access::audit_operation_name(e.operation).unwrap()).collect();
    // What no one logged in asked is one entry of counts, written before the Authenticate.
    assert_eq!(
        names,
        ["Initialize", "CreateKey", "Encrypt", "CloseSession", "UnauthenticatedRequests", "Authenticate"]
    );
    assert_eq!(entries[1].key_id, k.0);
    assert_eq!(entries[2].key_id, k.0);
    assert_eq!(entries[2].key_version, 1);
    assert_eq!(entries[2].principal_name(), "admin");
    assert_eq!(entries[4].principal_name(), "");
    let counts = entries[4].unauthenticated_requests().unwrap();
    // Answered: the Hello; per round GetInfo, GetDeviceKey twice, OpenSession and CloseSession;
    // the last handshake. Refused: two Encrypts per round and the factory reset.
    assert_eq!(
        (counts.answered, counts.failed_authentications, counts.refused),
        (1 + 50 * 5 + 2, 3, 50 * 2 + 1)
    );
    assert_eq!(counts.since as u64, T0);
    assert_eq!(entries[5].principal_name(), "admin");
    // The log survives a restart and the chain continues.
    let mut h = h.restart();
    login(&mut h, "admin", PIN);
    let (entries2, seq2, hash2, sig2, pk2, first2, base2) = read_all(&mut h);
    assert_eq!(pk2, pk);
    assert!(seq2 > seq);
    verify_chain(&entries2, seq2, &hash2, &sig2, &pk2, first2, &base2);
}

#[test]
fn a_full_log_overwrites_behind_a_signed_checkpoint_or_refuses_until_trimmed() {
    let mut h = Harness::with_flash(crate::mock_flash::MockFlash::new(256 * 1024));
    init(&mut h, AuditFullMode::Overwrite);
    for _ in 0..CAPACITY + 10 {
        h.ok(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 1 }));
    }
    let (entries, seq, hash, sig, pk, first, base) = read_all(&mut h);
    assert!(first > 1 && entries.len() <= CAPACITY && entries.len() > CAPACITY - DROP_CHUNK - 1);
    verify_chain(&entries, seq, &hash, &sig, &pk, first, &base);

    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Refuse);
    let k = s(&h.create(KeySpec::SymmetricDefault));
    let mut refused = false;
    for _ in 0..CAPACITY + 1 {
        if let Some(code) = encrypt_code(&mut h, &k, &[]) {
            assert_eq!(code, ErrorCode::AuditLogFull);
            refused = true;
            break;
        }
    }
    assert!(refused);
    let (entries, seq, hash, sig, pk, first, base) = read_all(&mut h);
    assert_eq!(entries.len(), CAPACITY);
    verify_chain(&entries, seq, &hash, &sig, &pk, first, &base);
    h.ok(Request::TrimAuditLog(pkms_protocol::request::TrimAuditLog { through_sequence: seq }));
    assert_eq!(encrypt_code(&mut h, &k, &[]), None);
    let (entries, seq, hash, sig, pk, first, base) = read_all(&mut h);
    assert_eq!(first, CAPACITY as u64 + 1);
    verify_chain(&entries, seq, &hash, &sig, &pk, first, &base);
}

#[test]
fn matrix_of_principals_actions_and_context_conditions() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    for (name, pin) in [("bob", b"111111"), ("carol", b"222222"), ("dave", b"333333"), ("erin", b"444444")] {
        add_user(&mut h, name, pin);
    }
    let pins = [
        ("admin", PIN),
        ("bob", &b"111111"[..]),
        ("carol", b"222222"),
        ("dave", b"333333"),
        ("erin", b"444444"),
    ];
    // bob creates the key (default policy: bob and administrators) and adds a statement for dave.
    login(&mut h, "bob", b"111111");
    let key = s(&h.create(KeySpec::SymmetricDefault));
    let mut st = heapless::Vec::new();
    let mut owners = heapless::Vec::new();
    owners.push("role/admin").unwrap();
    owners.push("bob").unwrap();
    st.push(Statement {
        effect: Effect::Allow,
        principals: owners,
        actions: pkms_protocol::access::ALL_ACTIONS,
        condition: None,
        grant_operations: None,
    })
    .unwrap();
    let mut dave = heapless::Vec::new();
    dave.push("dave").unwrap();
    let mut app = heapless::Vec::new();
    app.push(("app", "x")).unwrap();
    st.push(Statement {
        effect: Effect::Allow,
        principals: dave,
        actions: Action::Decrypt.bit(),
        condition: Some(Condition { kind: ConditionKind::Subset, pairs: app.clone() }),
        grant_operations: None,
    })
    .unwrap();
    h.ok(Request::PutKeyPolicy(pkms_protocol::request::PutKeyPolicy {
        key_id: &key,
        policy: &encode_policy(&Policy { statements: st }),
    }));
    // carol: a grant for Encrypt, Decrypt and GenerateDataKey with exactly app=x.
    h.ok(Request::CreateGrant(pkms_protocol::request::CreateGrant {
        key_id: &key,
        grantee: "carol",
        operations: Action::Encrypt.bit() | Action::Decrypt.bit() | Action::GenerateDataKey.bit(),
        constraint: Some(Condition { kind: ConditionKind::Equals, pairs: app }),
        name: "",
    }));
    let contexts: [&[(&str, &str)]; 3] = [&[("app", "x")], &[("app", "x"), ("more", "y")], &[]];
    let blobs: Vec<Vec<u8>> = contexts.iter().map(|c| h.encrypt(&key, b"m", c)).collect();
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Act {
        Encrypt,
        Decrypt,
        DataKey,
        Describe,
        Tags,
        Delete,
    }
    let acts = [Act::Encrypt, Act::Decrypt, Act::DataKey, Act::Describe, Act::Tags, Act::Delete];
    let mut cells = 0;
    for (who, pin) in pins {
        login(&mut h, who, pin);
        for act in acts {
            for (ci, c) in contexts.iter().enumerate() {
                let exact = ci == 0;
                let subset = ci <= 1;
                let expect_allowed = match who {
                    "admin" | "bob" => true,
                    "carol" => matches!(act, Act::Encrypt | Act::Decrypt | Act::DataKey) && exact,
                    "dave" => act == Act::Decrypt && subset,
                    _ => false,
                };
                let r = match act {
                    Act::Encrypt => h.call(Request::Encrypt(pkms_protocol::request::Encrypt {
                        key_id: &key,
                        plaintext: b"m",
                        encryption_context: ctx(c),
                    })),
                    Act::Decrypt => h.call(Request::Decrypt(pkms_protocol::request::Decrypt {
                        ciphertext_blob: &blobs[ci],
                        encryption_context: ctx(c),
                        key_id: None,
                    })),
                    Act::DataKey => {
                        h.call(Request::GenerateDataKey(pkms_protocol::request::GenerateDataKey {
                            key_id: &key,
                            encryption_context: ctx(c),
                            key_spec: Some(pkms_protocol::DataKeySpec::Aes256),
                            number_of_bytes: None,
                        }))
                    }
                    Act::Describe => {
                        h.call(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: &key }))
                    }
                    Act::Tags => {
                        h.call(Request::ListResourceTags(pkms_protocol::request::ListResourceTags {
                            key_id: &key,
                        }))
                    }
                    // Only ever refused here (an allowed call would change the key).
                    Act::Delete if expect_allowed => continue,
                    Act::Delete => {
                        h.call(Request::ScheduleKeyDeletion(pkms_protocol::request::ScheduleKeyDeletion {
                            key_id: &key,
                            pending_window_in_days: None,
                        }))
                    }
                };
                let got = r.get().map(|_| ()).map_err(|e| e.code);
                let want = if expect_allowed { Ok(()) } else { Err(ErrorCode::AccessDenied) };
                assert_eq!(got, want, "{who} {act:?} context {c:?}");
                cells += 1;
            }
        }
    }
    std::println!("access matrix: {cells} cells");
    assert!(cells >= 80);
}

#[test]
fn grants_are_bounded_and_oversize_inputs_are_refused() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    add_user(&mut h, "bob", b"135790");
    let key = s(&h.create(KeySpec::SymmetricDefault));
    let long = "v".repeat(60);
    let name = "n".repeat(64);
    let mut made = 0;
    for i in 0..12 {
        let keys: Vec<String> = (0..3).map(|j| std::format!("k{i}{j}")).collect();
        let mut pairs = heapless::Vec::new();
        for k in &keys {
            pairs.push((k.as_str(), long.as_str())).unwrap();
        }
        let r = h.call(Request::CreateGrant(pkms_protocol::request::CreateGrant {
            key_id: &key,
            grantee: "bob",
            operations: Action::Encrypt.bit(),
            constraint: Some(Condition { kind: ConditionKind::Equals, pairs }),
            name: &name,
        }));
        match r.get() {
            Ok(_) => made += 1,
            Err(e) => assert_eq!(e.code, ErrorCode::LimitExceeded, "{}", e.message),
        };
    }
    assert_eq!(made, pkms_protocol::access::MAX_GRANTS);
    // Bad grant inputs.
    let code = |h: &mut Harness, grantee: &str, operations: u64, name: &str| {
        h.code(Request::CreateGrant(pkms_protocol::request::CreateGrant {
            key_id: &key,
            grantee,
            operations,
            constraint: None,
            name,
        }))
    };
    assert_eq!(code(&mut h, "no such name!", Action::Encrypt.bit(), ""), ErrorCode::Validation);
    assert_eq!(code(&mut h, "bob", 0, ""), ErrorCode::Validation);
    assert_eq!(code(&mut h, "bob", Action::PutKeyPolicy.bit(), ""), ErrorCode::Validation);
    assert_eq!(code(&mut h, "bob", Action::Encrypt.bit(), &"x".repeat(65)), ErrorCode::Validation);
    assert_eq!(
        h.code(Request::RetireGrant(pkms_protocol::request::RetireGrant { key_id: &key, grant_id: "zz" })),
        ErrorCode::InvalidGrantId
    );
    // Reading past the head gives no entries; a huge limit is clamped.
    match h
        .ok(Request::ReadAuditLog(pkms_protocol::request::ReadAuditLog {
            start_sequence: u64::MAX,
            limit: u16::MAX,
        }))
        .get()
    {
        Ok(Response::AuditEntries(pkms_protocol::reply::AuditEntries { entries })) => {
            assert!(entries.is_empty())
        }
        other => panic!("{other:?}"),
    }
    for _ in 0..pkms_protocol::access::MAX_AUDIT_PAGE {
        h.ok(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 1 }));
    }
    match h
        .ok(Request::ReadAuditLog(pkms_protocol::request::ReadAuditLog {
            start_sequence: 0,
            limit: u16::MAX,
        }))
        .get()
    {
        Ok(Response::AuditEntries(pkms_protocol::reply::AuditEntries { entries })) => {
            assert_eq!(entries.len(), pkms_protocol::access::MAX_AUDIT_PAGE * AUDIT_ENTRY_LEN)
        }
        other => panic!("{other:?}"),
    }
}

/// Checks the log as stored (no requests, so nothing is appended): consecutive sequence
/// numbers, an unbroken chain, a base checkpoint signed by the attestation key behind the first
/// entry when entries were dropped, and a head that matches the last entry. Returns the first
/// sequence number.
pub(super) fn check_stored_log<P: HarnessPlatform>(h: &mut Harness<P>) -> u64 {
    use crate::records::{AuthRecord, BaseRecord, Kind, SINGLETON_ID};
    let core = &mut h.token.core;
    let ids: Vec<_> = core.entries(Kind::Audit).iter().map(|e| e.id).collect();
    let mut entries: Vec<AuditEntry> = Vec::new();
    for id in ids {
        let e = core.read::<AuditEntry>(&id).unwrap().unwrap();
        if let Some(p) = entries.last() {
            assert_eq!(e.sequence, p.sequence + 1);
            assert_eq!(e.prev_hash, p.hash());
        }
        entries.push(e);
    }
    let first = entries.first().unwrap();
    if first.sequence > 1 {
        let base = core.read::<BaseRecord>(&SINGLETON_ID).unwrap().unwrap();
        assert_eq!((base.sequence, base.hash), (first.sequence - 1, first.prev_hash));
        let auth = core.read::<AuthRecord>(&SINGLETON_ID).unwrap().unwrap();
        let mut pk = [0u8; crate::crypto::signing::SPKI_LEN];
        crate::crypto::signing::public_key_der(&auth.attestation_key, &mut pk).unwrap();
        let key = VerifyingKey::from_public_key_der(&pk).unwrap();
        let sig = Signature::from_der(&base.signature).unwrap();
        key.verify_prehash(&checkpoint_digest(base.sequence, &base.hash), &sig).unwrap();
    } else {
        assert_eq!(first.prev_hash, [0; 32]);
    }
    let last = entries.last().unwrap();
    assert_eq!(h.token.log.head_sequence, last.sequence);
    assert_eq!(h.token.log.head_hash, last.hash());
    first.sequence
}

#[test]
fn a_power_cut_at_any_byte_of_an_audit_append_that_drops_old_entries_keeps_a_verifiable_log() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    // One short of full: the administrator's Authenticate after the restart fills it.
    while h.token.core.entries(crate::records::Kind::Audit).len() < CAPACITY - 1 {
        h.ok(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 1 }));
    }
    let start = h.token.into_flash();
    let total = {
        let mut h = Harness::with_flash(start.clone());
        login(&mut h, "admin", PIN);
        assert_eq!(h.token.core.entries(crate::records::Kind::Audit).len(), CAPACITY);
        let before = h.token.flash().cut_points();
        h.call(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 1 }));
        h.token.flash().cut_points() - before
    };
    assert!(total > 0);
    let mut dropped_seen = false;
    for cut in 0..total {
        let mut h = Harness::with_flash(start.clone());
        login(&mut h, "admin", PIN);
        h.token.core.flash_mut().cut_power_after(cut);
        h.call(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 1 }));
        let mut flash = h.token.into_flash();
        assert!(flash.is_power_cut());
        flash.restore_power();
        let mut h = Harness::with_flash_seed(flash, 2000 + cut);
        let first = check_stored_log(&mut h);
        // Entries go only behind a signed base, and only a whole chunk at a time.
        assert!(first == 1 || first == 1 + DROP_CHUNK as u64, "cut {cut}: first {first}");
        dropped_seen |= first > 1;
        if cut % 256 == 0 {
            // And the token answers normally afterwards.
            login(&mut h, "admin", PIN);
            let (entries, seq, hash, sig, pk, first, base) = read_all(&mut h);
            verify_chain(&entries, seq, &hash, &sig, &pk, first, &base);
        }
    }
    assert!(dropped_seen, "no cut reached the drop");
    std::println!("audit drop: {total} cut points");
}

/// Factory reset goes by the registry of record kinds: a record of every kind is planted (a
/// kind added to the registry later is planted too), and afterwards every kind the registry says
/// a reset erases is empty and the device key was replaced (so nothing wrapped under the old one
/// opens).
#[test]
fn factory_reset_erases_every_kind_the_registry_says_it_erases() {
    use crate::records::{DeviceRecord, Kind, OnReset, SINGLETON_ID};
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    let k = s(&h.create(KeySpec::SymmetricDefault));
    let blob = h.encrypt(&k, b"before the reset", &[]);
    let planted = [0xEE; 16];
    for kind in Kind::ALL {
        h.token.core.store_mut().put(kind.byte(), &planted, b"planted").unwrap();
    }
    let old_root = h.token.core.read::<DeviceRecord>(&SINGLETON_ID).unwrap().unwrap().root_key;
    h.ok(Request::FactoryReset(pkms_protocol::request::FactoryReset {
        confirm: pkms_protocol::access::FACTORY_RESET_CONFIRMATION,
    }));
    for kind in Kind::ALL {
        match kind.on_factory_reset() {
            OnReset::Erase => assert!(h.token.core.entries(*kind).is_empty(), "{kind:?} survived the reset"),
            OnReset::Replace => {
                let new_root = h.token.core.read::<DeviceRecord>(&SINGLETON_ID).unwrap().unwrap().root_key;
                assert_ne!(new_root, old_root, "{kind:?} was not replaced");
            }
        }
    }
    assert!(!initialized(&mut h));
    assert_eq!(h.decrypt(&blob, &[]).unwrap_err().0, ErrorCode::InvalidCiphertext);
}

/// Anonymous traffic (Hellos, handshakes, requests refused for want of a login, failed tries of
/// a PIN for names that do not exist) neither pushes retained entries out of an overwriting log
/// nor fills a refusing one: it adds at most one entry before the next one of someone with a PIN.
#[test]
fn anonymous_traffic_neither_pushes_entries_out_nor_fills_a_refusing_log() {
    for mode in [AuditFullMode::Overwrite, AuditFullMode::Refuse] {
        let mut h = Harness::new();
        init(&mut h, mode);
        // A log one entry short of full once the administrator's CloseSession is in.
        while h.token.core.entries(crate::records::Kind::Audit).len() < CAPACITY - 2 {
            h.ok(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 1 }));
        }
        hello(&mut h);
        assert_eq!(h.token.core.entries(crate::records::Kind::Audit).len(), CAPACITY - 1);
        let first = h.token.core.entries(crate::records::Kind::Audit).first().map(|e| e.id);
        for i in 0..40 {
            h.ok(Request::Hello(pkms_protocol::request::Hello {
                protocol_version: pkms_protocol::PROTOCOL_VERSION,
            }));
            assert!(initialized(&mut h));
            anonymous_session(&mut h);
            assert_eq!(
                h.code(Request::ListKeys(pkms_protocol::request::ListKeys { limit: None, marker: None })),
                ErrorCode::AuthenticationFailed
            );
            let name = std::format!("nobody{i}");
            assert_eq!(
                h.code(Request::Authenticate(pkms_protocol::request::Authenticate {
                    principal: &name,
                    pin: b"000000"
                })),
                ErrorCode::AuthenticationFailed
            );
            h.close_session();
        }
        let entries = h.token.core.entries(crate::records::Kind::Audit);
        assert_eq!(entries.len(), CAPACITY - 1, "{mode:?}: anonymous traffic added entries");
        assert_eq!(entries.first().map(|e| e.id), first, "{mode:?}: anonymous traffic pushed entries out");
        // The administrator still gets in, and the log tells of the 40 failed tries when there is
        // room for it: at once when overwriting, after the trim when refusing.
        login(&mut h, "admin", PIN);
        let (entries, ..) = read_all(&mut h);
        let names: Vec<&str> = entries
            .iter()
            .map(|e| pkms_protocol::access::audit_operation_name(e.operation).unwrap())
            .collect();
        match mode {
            AuditFullMode::Overwrite => {
                assert_eq!(names[names.len() - 2..], ["UnauthenticatedRequests", "Authenticate"]);
                let counts = entries[entries.len() - 2].unauthenticated_requests().unwrap();
                assert_eq!((counts.failed_authentications, counts.refused), (40, 40));
            }
            AuditFullMode::Refuse => {
                assert_eq!(names.last(), Some(&"Authenticate"), "the login took the last place");
                assert!(!names.contains(&"UnauthenticatedRequests"));
                let last = entries.last().unwrap().sequence;
                h.ok(Request::TrimAuditLog(pkms_protocol::request::TrimAuditLog {
                    through_sequence: last - 1,
                }));
                h.ok(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 1 }));
                let (entries, ..) = read_all(&mut h);
                let names: Vec<&str> = entries
                    .iter()
                    .map(|e| pkms_protocol::access::audit_operation_name(e.operation).unwrap())
                    .collect();
                let at =
                    names.iter().position(|n| *n == "UnauthenticatedRequests").expect("the count was lost");
                let counts = entries[at].unauthenticated_requests().unwrap();
                assert_eq!((counts.failed_authentications, counts.refused), (40, 40));
            }
        }
    }
}

/// ListGrants of a key holding the most grants: every grant's id, grantee and issuer come back
/// as made (each grant's names live beside every grant id in one buffer).
#[test]
fn list_grants_of_a_full_key_returns_each_grant_as_made() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    let users = ["bob", "carol", "dave-the-long-named-principal"];
    for u in users {
        add_user(&mut h, u, b"135790");
    }
    let key = s(&h.create(KeySpec::SymmetricDefault));
    let mut made = Vec::new();
    for i in 0..pkms_protocol::access::MAX_GRANTS {
        let grantee = users[i % users.len()];
        let id = match h
            .ok(Request::CreateGrant(pkms_protocol::request::CreateGrant {
                key_id: &key,
                grantee,
                operations: Action::Encrypt.bit(),
                constraint: None,
                name: "",
            }))
            .get()
        {
            Ok(Response::Grant(pkms_protocol::reply::Grant { grant_id })) => String::from(grant_id),
            other => panic!("{other:?}"),
        };
        made.push((id, String::from(grantee), String::from("admin")));
    }
    let listed: Vec<(String, String, String)> =
        match h.ok(Request::ListGrants(pkms_protocol::request::ListGrants { key_id: &key })).get() {
            Ok(Response::Grants(pkms_protocol::reply::Grants { grants })) => grants
                .iter()
                .map(|g| (String::from(g.grant_id), String::from(g.grantee), String::from(g.issuer)))
                .collect(),
            other => panic!("{other:?}"),
        };
    assert_eq!(listed, made);
}

/// A key policy naming a principal that does not exist, or something that is no principal name,
/// is refused, and the message says which.
#[test]
fn a_policy_naming_an_unknown_principal_or_no_name_at_all_says_which() {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    let key = s(&h.create(KeySpec::SymmetricDefault));
    let put = |h: &mut Harness, who: &str| {
        let mut admins = heapless::Vec::new();
        admins.push("role/admin").unwrap();
        let mut named = heapless::Vec::new();
        named.push(who).unwrap();
        let mut st = heapless::Vec::new();
        for principals in [admins, named] {
            st.push(Statement {
                effect: Effect::Allow,
                principals,
                actions: pkms_protocol::access::ALL_ACTIONS,
                condition: None,
                grant_operations: None,
            })
            .unwrap();
        }
        let policy = encode_policy(&Policy { statements: st });
        h.err(Request::PutKeyPolicy(pkms_protocol::request::PutKeyPolicy { key_id: &key, policy: &policy }))
    };
    let (code, message) = put(&mut h, "zoe");
    assert_eq!(code, ErrorCode::MalformedPolicyDocument);
    assert!(message.contains("names principal zoe, which does not exist"), "{message}");
    let (code, message) = put(&mut h, "no such name!");
    assert_eq!(code, ErrorCode::MalformedPolicyDocument);
    assert!(message.contains("principal names, role/admin or *"), "{message}");
}

fn change_pin(h: &mut Harness, pin: &[u8], new_pin: &[u8]) -> Result<(), (ErrorCode, String)> {
    let r = h.call(Request::ChangePin(pkms_protocol::request::ChangePin { pin, new_pin }));
    r.get().map(|_| ()).map_err(|e| (e.code, String::from(e.message)))
}

#[test]
fn change_pin_changes_only_ones_own_pin_and_needs_the_current_one() {
    let mut h = Harness::new();
    // An open token has no PINs.
    h.open_session();
    assert_eq!(change_pin(&mut h, PIN, b"13579135").unwrap_err().0, ErrorCode::InvalidState);
    init(&mut h, AuditFullMode::Overwrite);
    add_user(&mut h, "bob", b"111111");
    // No login: refused (the gate wants a logged-in session).
    anonymous_session(&mut h);
    assert!(change_pin(&mut h, b"111111", b"222222").is_err());
    login(&mut h, "bob", b"111111");
    // A new PIN of the wrong length is refused before any try is spent.
    assert_eq!(change_pin(&mut h, b"111111", b"1").unwrap_err().0, ErrorCode::Validation);
    // A wrong current PIN spends a try; the right one restores them and changes the PIN.
    let (code, msg) = change_pin(&mut h, b"999999", b"222222").unwrap_err();
    assert_eq!(code, ErrorCode::AuthenticationFailed, "{msg}");
    change_pin(&mut h, b"111111", b"222222").unwrap();
    // The old PIN no longer logs in; the new one does; admin's PIN is untouched.
    anonymous_session(&mut h);
    assert_eq!(
        h.code(Request::Authenticate(pkms_protocol::request::Authenticate {
            principal: "bob",
            pin: b"111111"
        })),
        ErrorCode::AuthenticationFailed
    );
    login(&mut h, "bob", b"222222");
    anonymous_session(&mut h);
    login(&mut h, "admin", PIN);
    assert_eq!(retries(&mut h, "bob"), PIN_RETRIES);
    // Wrong current PINs lock the principal and end its session, as wrong logins do.
    anonymous_session(&mut h);
    login(&mut h, "bob", b"222222");
    for _ in 1..PIN_RETRIES {
        assert_eq!(change_pin(&mut h, b"000000", b"333333").unwrap_err().0, ErrorCode::AuthenticationFailed);
    }
    assert_eq!(change_pin(&mut h, b"000000", b"333333").unwrap_err().0, ErrorCode::PinLocked);
    assert!(change_pin(&mut h, b"222222", b"333333").is_err(), "the session ended");
    anonymous_session(&mut h);
    login(&mut h, "admin", PIN);
    assert_eq!(retries(&mut h, "bob"), 0);
}
