//! The proof that no power cut corrupts the store: for each key-changing operation (CreateKey,
//! RotateKeyOnDemand, a scheduled rotation, RetireKeyVersions, a scheduled deletion), power is
//! cut after every possible number of written bytes. After each cut the token is remounted and
//! must report no corruption, hold every key in its old or its new state, decrypt every
//! ciphertext made before the cut (unless that very operation retired its version), verify
//! every signature and MAC made before it, and keep working.
//!
//! Each operation runs from two starting states: a fresh store, and a store churned until the
//! operation's own writes trigger a garbage collection (so cuts also land inside collections).

use super::*;
use pkms_protocol::limits::SECONDS_PER_DAY;
use pkms_protocol::{KeyState, MacAlgorithm, MessageType, SigningAlgorithm};

const FLASH: usize = 16 * 4096;
const ROTATION_DAYS: u16 = 90;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    CreateKey,
    RotateOnDemand,
    ScheduledRotation,
    Retire,
    ScheduledDeletion,
}

/// What was made before the cut.
#[derive(Clone)]
struct Fixture {
    sym: KeyId,
    signer: KeyId,
    hmac: KeyId,
    doomed: KeyId,
    filler: KeyId,
    /// (version, blob) under `sym`.
    blobs: Vec<(u32, Vec<u8>)>,
    signature: Vec<u8>,
    mac: Vec<u8>,
    sym_versions: u32,
    key_count: usize,
    deletion_date: u64,
    rotation_due: u64,
}

fn build() -> (Harness, Fixture) {
    let mut h = Harness::with_flash(MockFlash::new(FLASH));
    let sym = h.create(KeySpec::SymmetricDefault);
    let signer = h.create(KeySpec::EccNistP256);
    let hmac = h.create(KeySpec::Hmac256);
    let doomed = h.create(KeySpec::SymmetricDefault);
    let filler = h.create(KeySpec::SymmetricDefault);
    h.ok(Request::CreateAlias(pkms_protocol::request::CreateAlias {
        alias_name: "alias/doomed",
        target_key_id: &s(&doomed),
    }));
    h.ok(Request::EnableKeyRotation(pkms_protocol::request::EnableKeyRotation {
        key_id: &s(&sym),
        rotation_period_in_days: Some(ROTATION_DAYS),
    }));
    let mut blobs = Vec::new();
    for v in 1..=3u32 {
        blobs.push((v, h.encrypt(&s(&sym), format!("secret {v}").as_bytes(), &[("v", "1")])));
        if v < 3 {
            h.ok(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &s(&sym) }));
        }
    }
    let r = h.ok(Request::Sign(pkms_protocol::request::Sign {
        key_id: &s(&signer),
        message: b"artifact",
        message_type: MessageType::Raw,
        signing_algorithm: SigningAlgorithm::EcdsaSha256,
    }));
    let res = r.get();
    let Ok(Response::Sign(pkms_protocol::reply::Sign { signature, .. })) = res else { panic!() };
    let signature = signature.to_vec();
    let r = h.ok(Request::GenerateMac(pkms_protocol::request::GenerateMac {
        key_id: &s(&hmac),
        message: b"m",
        mac_algorithm: MacAlgorithm::HmacSha256,
    }));
    let res = r.get();
    let Ok(Response::Mac(pkms_protocol::reply::Mac { mac, .. })) = res else { panic!() };
    let mac = mac.to_vec();
    let r = h.ok(Request::ScheduleKeyDeletion(pkms_protocol::request::ScheduleKeyDeletion {
        key_id: &s(&doomed),
        pending_window_in_days: Some(7),
    }));
    let res = r.get();
    let Ok(Response::DeletionScheduled(pkms_protocol::reply::DeletionScheduled { deletion_date, .. })) = res
    else {
        panic!()
    };
    let rotation_due = T0 + ROTATION_DAYS as u64 * SECONDS_PER_DAY;
    let f = Fixture {
        sym,
        signer,
        hmac,
        doomed,
        filler,
        blobs,
        signature,
        mac,
        sym_versions: 3,
        key_count: 5,
        deletion_date,
        rotation_due,
    };
    (h, f)
}

/// Runs `op`; the result is ignored (it fails when the cut hits).
fn apply(h: &mut Harness, f: &Fixture, op: Op) {
    match op {
        Op::CreateKey => {
            h.call(Request::CreateKey(pkms_protocol::request::CreateKey {
                key_spec: KeySpec::SymmetricDefault,
                key_usage: None,
                description: "new",
                tags: Tags::new(),
                user_presence_required: false,
            }));
        }
        Op::RotateOnDemand => {
            h.call(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand {
                key_id: &s(&f.sym),
            }));
        }
        Op::ScheduledRotation => {
            h.now = Some(f.rotation_due + 1);
            h.call(Request::Hello(pkms_protocol::request::Hello {
                protocol_version: pkms_protocol::PROTOCOL_VERSION,
            }));
        }
        Op::Retire => {
            h.call(Request::RetireKeyVersions(pkms_protocol::request::RetireKeyVersions {
                key_id: &s(&f.sym),
                below_version: 3,
            }));
        }
        Op::ScheduledDeletion => {
            h.now = Some(f.deletion_date);
            h.call(Request::GetInfo(pkms_protocol::request::GetInfo {}));
        }
    }
}

/// Checks the state after a cut and remount; `deep` adds the (slow) signature check.
fn check(h: &mut Harness, f: &Fixture, op: Op, deep: bool, what: &str) {
    if let Some(e) = h.token.core.broken() {
        panic!("{what}: token broken after remount: {:?} {}", e.code, e.message);
    }
    // Keys: count old or new.
    let keys: Vec<KeyId> = {
        let r = h.ok(Request::ListKeys(pkms_protocol::request::ListKeys { limit: None, marker: None }));
        let res = r.get();
        let Ok(Response::Keys(pkms_protocol::reply::Keys { keys, .. })) = res else { panic!() };
        keys.to_vec()
    };
    let n = keys.len();
    match op {
        Op::CreateKey => assert!(n == f.key_count || n == f.key_count + 1, "{what}: {n} keys"),
        // Host time 90 days on also passes the doomed key's deletion date.
        Op::ScheduledDeletion | Op::ScheduledRotation => {
            assert!(n == f.key_count || n == f.key_count - 1, "{what}: {n} keys")
        }
        _ => assert_eq!(n, f.key_count, "{what}"),
    }
    for k in &keys {
        // Every key describes (no corruption) and its record is complete.
        let m = h.describe(&s(k));
        assert!(m.current_key_version >= 1, "{what}");
        if !f.blobs.is_empty() && ![f.sym, f.signer, f.hmac, f.doomed, f.filler].contains(k) {
            // A key CreateKey made before the cut: fully usable.
            assert_eq!(m.current_key_version, 1);
            let blob = h.encrypt(&s(k), b"new key works", &[]);
            assert_eq!(h.decrypt(&blob, &[]).unwrap(), b"new key works", "{what}");
        }
    }
    // The rotated key: old or new version set.
    let m = h.describe(&s(&f.sym));
    let (cur, oldest) = (m.current_key_version, m.oldest_key_version);
    match op {
        Op::RotateOnDemand | Op::ScheduledRotation => {
            assert!(cur == f.sym_versions || cur == f.sym_versions + 1, "{what}: version {cur}");
            assert_eq!(oldest, 1, "{what}");
        }
        Op::Retire => {
            assert_eq!(cur, f.sym_versions, "{what}");
            assert!(oldest == 1 || oldest == 3, "{what}: oldest {oldest}");
        }
        _ => assert_eq!((cur, oldest), (f.sym_versions, 1), "{what}"),
    }
    if op == Op::ScheduledRotation && cur == f.sym_versions + 1 {
        assert!(
            m.next_rotation_date.unwrap() > f.rotation_due,
            "{what}: schedule not advanced with the rotation"
        );
    }
    // Every ciphertext made before the cut decrypts, unless this retirement erased its version.
    for (v, blob) in &f.blobs {
        match h.decrypt(blob, &[("v", "1")]) {
            Ok(p) => assert_eq!(p, format!("secret {v}").as_bytes(), "{what}"),
            Err((code, msg)) => {
                assert!(op == Op::Retire && oldest == 3 && *v < 3, "{what}: v{v} blob: {code:?} {msg}");
                assert_eq!(code, ErrorCode::KeyVersionRetired, "{what}");
            }
        }
    }
    // MAC and signature made before the cut still verify.
    h.ok(Request::VerifyMac(pkms_protocol::request::VerifyMac {
        key_id: &s(&f.hmac),
        message: b"m",
        mac_algorithm: MacAlgorithm::HmacSha256,
        mac: &f.mac,
        key_version: None,
    }));
    if deep {
        h.ok(Request::Verify(pkms_protocol::request::Verify {
            key_id: &s(&f.signer),
            message: b"artifact",
            message_type: MessageType::Raw,
            signature: &f.signature,
            signing_algorithm: SigningAlgorithm::EcdsaSha256,
            key_version: None,
        }));
    }
    // The doomed key: pending, or gone together with its alias.
    let r = h.call(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: &s(&f.doomed) }));
    let res = r.get();
    let doomed_there = match &res {
        Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata: m })) => {
            assert_eq!(m.key_state, KeyState::PendingDeletion, "{what}");
            true
        }
        Err(e) => {
            assert_eq!(e.code, ErrorCode::NotFound, "{what}");
            assert!(
                matches!(op, Op::ScheduledDeletion | Op::ScheduledRotation),
                "{what}: doomed key vanished"
            );
            false
        }
        Ok(other) => panic!("{other:?}"),
    };
    drop(res);
    let alias = h
        .call(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: "alias/doomed" }))
        .get()
        .is_ok();
    assert_eq!(alias, doomed_there, "{what}: alias and key disagree");
    // The token keeps working after the cut.
    h.ok(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &s(&f.hmac) }));
    let blob = h.encrypt(&s(&f.sym), b"after", &[]);
    assert_eq!(h.decrypt(&blob, &[]).unwrap(), b"after", "{what}");
}

/// Cut points of `op` from `start` (bytes written, erases), and whether it erased a page.
fn probe(start: &MockFlash, f: &Fixture, op: Op) -> (u64, bool) {
    let mut h = Harness::with_flash(start.clone());
    let before = h.token.flash().cut_points();
    let erases: u32 = h.token.flash().erase_counts().iter().sum();
    apply(&mut h, f, op);
    let flash = h.token.flash();
    (flash.cut_points() - before, flash.erase_counts().iter().sum::<u32>() > erases)
}

/// Cuts power at every byte of `op` from `start`; returns the number of cut points.
fn cut_everywhere(start: &MockFlash, f: &Fixture, op: Op, label: &str) -> u64 {
    let (total, _) = probe(start, f, op);
    assert!(total > 0, "{op:?} wrote nothing");
    for cut in 0..total {
        let mut h = Harness::with_flash(start.clone());
        h.token.core.flash_mut().cut_power_after(cut);
        apply(&mut h, f, op);
        let mut flash = h.token.into_flash();
        assert!(flash.is_power_cut(), "{label} {op:?}: cut {cut} of {total} not reached");
        flash.restore_power();
        let mut h = Harness::with_flash_seed(flash, 1000 + cut);
        h.now = Some(T0 + 60);
        check(&mut h, f, op, cut % 16 == 0, &format!("{label} {op:?} cut {cut}/{total}"));
    }
    // And uncut: the operation's new state.
    let mut h = Harness::with_flash(start.clone());
    apply(&mut h, f, op);
    let mut h = h.restart();
    h.now = Some(T0 + 60);
    check(&mut h, f, op, true, &format!("{label} {op:?} uncut"));
    total
}

#[test]
fn power_cut_at_every_byte_of_every_key_change() {
    let (h, fixture) = build();
    let fresh = h.token.into_flash();
    let ops = [Op::CreateKey, Op::RotateOnDemand, Op::ScheduledRotation, Op::Retire, Op::ScheduledDeletion];
    let mut grand = 0u64;
    for op in ops {
        let n = cut_everywhere(&fresh, &fixture, op, "fresh store");
        // Churn the filler key until this operation triggers a garbage collection.
        let mut h = Harness::with_flash(fresh.clone());
        let mut churned = 0;
        let gc_start = loop {
            let flash = h.token.flash().clone();
            if probe(&flash, &fixture, op).1 {
                break flash;
            }
            // Varying sizes, so that the head page ends at every possible fill level.
            let text = format!("churn {churned} {}", "x".repeat(churned * 7 % 61 + churned % 3));
            h.ok(Request::UpdateKeyDescription(pkms_protocol::request::UpdateKeyDescription {
                key_id: &s(&fixture.filler),
                description: &text,
            }));
            churned += 1;
            assert!(churned < 500, "{op:?} never triggered a garbage collection");
        };
        let m = cut_everywhere(&gc_start, &fixture, op, "store about to collect");
        std::println!("power cut: {op:?}: {n} cut points on a fresh store, {m} during garbage collection");
        grand += n + m;
    }
    std::println!("power cut: exercised {grand} cut points in total");
    assert!(grand > 2000);
}
