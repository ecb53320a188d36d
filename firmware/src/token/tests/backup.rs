//! Backups through the wire: a full round trip onto a fresh token (every key kind, rotated and
//! retired versions, aliases, tags, grants, principals, the backup key), peer mode, each
//! refusal (and that it leaves the token fresh), who may do what, the count of key versions in
//! no backup, and a power cut at every written byte of a restore.

use std::string::String;
use std::vec::Vec;

use pkms_protocol::access::{AuditEntry, AuditEvent, AuditFullMode, Role, AUDIT_ENTRY_LEN};
use pkms_protocol::backup::{Header, HEADER_LEN};
use pkms_protocol::messages::{Request, Response};
use pkms_protocol::{request, Action, ErrorCode, KeySpec, MacAlgorithm, MessageType, SigningAlgorithm, Tag};

use super::auth::{add_user, init, login, PIN};
use super::*;

const BOB_PIN: &[u8] = b"135790";
/// Keys with long descriptions, so that a backup spans several chunks.
const FILLERS: usize = 24;

/// What the source token holds, and what was made with it.
struct Source {
    h: Harness,
    secret: Vec<u8>,
    sym: KeyId,
    signer: KeyId,
    hmac: KeyId,
    hmac512: KeyId,
    fillers: Vec<KeyId>,
    blobs: Vec<(u32, Vec<u8>)>,
    signature: Vec<u8>,
    public_key: Vec<u8>,
    mac: Vec<u8>,
    grant_id: String,
}

fn public_key(h: &mut Harness, key: &KeyId) -> Vec<u8> {
    match h.ok(Request::GetPublicKey(request::GetPublicKey { key_id: &s(key), key_version: None })).get() {
        Ok(Response::PublicKey(pkms_protocol::reply::PublicKey { public_key, .. })) => public_key.to_vec(),
        other => panic!("{other:?}"),
    }
}

fn info(h: &mut Harness) -> pkms_protocol::TokenInfo<'static> {
    match h.ok(Request::GetInfo(request::GetInfo {})).get() {
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

fn backup_init(h: &mut Harness, replace: bool) -> Vec<u8> {
    match h.ok(Request::BackupInit(request::BackupInit { replace })).get() {
        Ok(Response::BackupSecret(pkms_protocol::reply::BackupSecret { secret })) => secret.to_vec(),
        other => panic!("{other:?}"),
    }
}

fn source() -> Source {
    let mut h = Harness::new();
    init(&mut h, AuditFullMode::Overwrite);
    add_user(&mut h, "bob", BOB_PIN);
    let sym = h.create(KeySpec::SymmetricDefault);
    let signer = h.create(KeySpec::EccNistP256);
    let hmac = h.create(KeySpec::Hmac256);
    let hmac512 = h.create(KeySpec::Hmac512);
    let mut blobs = Vec::new();
    for v in 1..=4u32 {
        blobs.push((v, h.encrypt(&s(&sym), format!("secret {v}").as_bytes(), &[("app", "x")])));
        if v < 4 {
            h.ok(Request::RotateKeyOnDemand(request::RotateKeyOnDemand { key_id: &s(&sym) }));
        }
    }
    // Version 1 is retired: it must stay erased on the restored token too.
    h.ok(Request::RetireKeyVersions(request::RetireKeyVersions { key_id: &s(&sym), below_version: 2 }));
    h.ok(Request::EnableKeyRotation(request::EnableKeyRotation {
        key_id: &s(&hmac),
        rotation_period_in_days: Some(180),
    }));
    h.ok(Request::CreateAlias(request::CreateAlias { alias_name: "alias/app", target_key_id: &s(&sym) }));
    let mut tags = Tags::new();
    tags.push(Tag { tag_key: "team", tag_value: "billing" }).unwrap();
    h.ok(Request::TagResource(request::TagResource { key_id: &s(&sym), tags }));
    let grant_id = match h
        .ok(Request::CreateGrant(request::CreateGrant {
            key_id: &s(&sym),
            grantee: "bob",
            operations: Action::Decrypt.bit(),
            constraint: None,
            name: "bob-decrypts",
        }))
        .get()
    {
        Ok(Response::Grant(pkms_protocol::reply::Grant { grant_id })) => String::from(grant_id),
        other => panic!("{other:?}"),
    };
    let signature = match h
        .ok(Request::Sign(request::Sign {
            key_id: &s(&signer),
            message: b"release",
            message_type: MessageType::Raw,
            signing_algorithm: SigningAlgorithm::EcdsaSha256,
        }))
        .get()
    {
        Ok(Response::Sign(pkms_protocol::reply::Sign { signature, .. })) => signature.to_vec(),
        other => panic!("{other:?}"),
    };
    let public_key = public_key(&mut h, &signer);
    let mac = match h
        .ok(Request::GenerateMac(request::GenerateMac {
            key_id: &s(&hmac512),
            message: b"m",
            mac_algorithm: MacAlgorithm::HmacSha512,
        }))
        .get()
    {
        Ok(Response::Mac(pkms_protocol::reply::Mac { mac, .. })) => mac.to_vec(),
        other => panic!("{other:?}"),
    };
    let mut fillers = Vec::new();
    for i in 0..FILLERS {
        let description = format!("filler {i} {}", "d".repeat(200));
        let r = h.ok(Request::CreateKey(request::CreateKey {
            key_spec: KeySpec::SymmetricDefault,
            key_usage: None,
            description: &description,
            tags: Tags::new(),
            user_presence_required: false,
        }));
        let id = match r.get() {
            Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata: m })) => m.key_id,
            other => panic!("{other:?}"),
        };
        fillers.push(id);
    }
    let secret = backup_init(&mut h, false);
    Source { h, secret, sym, signer, hmac, hmac512, fillers, blobs, signature, public_key, mac, grant_id }
}

/// An export: the header and each sealed chunk with its last flag.
struct Exported {
    header: Vec<u8>,
    chunks: Vec<(Vec<u8>, bool)>,
}

fn export(h: &mut Harness, peer: Option<&[u8]>) -> Exported {
    let header =
        match h.ok(Request::BackupExportBegin(request::BackupExportBegin { peer_device_key: peer })).get() {
            Ok(Response::BackupHeader(pkms_protocol::reply::BackupHeader { header })) => header.to_vec(),
            other => panic!("{other:?}"),
        };
    let mut chunks = Vec::new();
    loop {
        let (sealed, last) = match h.ok(Request::BackupExportChunk(request::BackupExportChunk {})).get() {
            Ok(Response::BackupChunk(pkms_protocol::reply::BackupChunk { sealed, last, .. })) => {
                (sealed.to_vec(), last)
            }
            other => panic!("{other:?}"),
        };
        chunks.push((sealed, last));
        if last {
            break;
        }
        assert!(chunks.len() < 1000, "the export never ends");
    }
    Exported { header, chunks }
}

/// Restores `e` onto `h` in a new session (on a fresh token no login is needed).
fn restore(h: &mut Harness, e: &Exported, secret: Option<&[u8]>) -> Result<(), (ErrorCode, String)> {
    h.close_session();
    h.open_session();
    restore_in_session(h, &e.header, secret, &e.chunks)
}

fn restore_in_session(
    h: &mut Harness,
    header: &[u8],
    secret: Option<&[u8]>,
    chunks: &[(Vec<u8>, bool)],
) -> Result<(), (ErrorCode, String)> {
    let begin = h.call(Request::BackupRestoreBegin(request::BackupRestoreBegin { header, secret }));
    if let Err(e) = begin.get() {
        return Err((e.code, String::from(e.message)));
    }
    for (sealed, last) in chunks {
        let r = h.call(Request::BackupRestoreChunk(request::BackupRestoreChunk { sealed, last: *last }));
        let outcome = match r.get() {
            Ok(Response::BackupRestored(pkms_protocol::reply::BackupRestored { complete, .. })) => {
                assert_eq!(complete, *last);
                Ok(())
            }
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err((e.code, String::from(e.message))),
        };
        outcome?;
    }
    Ok(())
}

/// A fresh token: open, no keys, no principals, and (below the wire) no record a restore writes.
fn assert_fresh(h: &mut Harness, what: &str) {
    let i = info(h);
    assert!(!i.initialized, "{what}: the token is initialised");
    assert_eq!(i.key_count, 0, "{what}: the token holds keys");
    for kind in crate::records::Kind::ALL {
        match kind {
            crate::records::Kind::Device | crate::records::Kind::Clock => {}
            other => assert!(h.token.core.entries(*other).is_empty(), "{what}: records of {other:?} left"),
        }
    }
}

fn list_keys(h: &mut Harness) -> Vec<KeyId> {
    match h.ok(Request::ListKeys(request::ListKeys { limit: None, marker: None })).get() {
        Ok(Response::Keys(pkms_protocol::reply::Keys { keys, .. })) => keys.to_vec(),
        other => panic!("{other:?}"),
    }
}

/// The restored token holds exactly what the source held and made.
fn check_restored(h: &mut Harness, src: &Source, source_id: &[u8; 32]) {
    login(h, "admin", PIN);
    let mut want = std::vec![src.sym, src.signer, src.hmac, src.hmac512];
    want.extend_from_slice(&src.fillers);
    want.sort_by_key(|k| k.0);
    assert_eq!(list_keys(h), want);
    for (v, blob) in &src.blobs {
        match h.decrypt(blob, &[("app", "x")]) {
            Ok(p) => assert_eq!(p, format!("secret {v}").as_bytes()),
            Err((code, _)) => {
                assert_eq!((*v, code), (1, ErrorCode::KeyVersionRetired), "version {v} must decrypt");
            }
        }
    }
    assert_eq!(public_key(h, &src.signer), src.public_key);
    h.ok(Request::Verify(request::Verify {
        key_id: &s(&src.signer),
        message: b"release",
        message_type: MessageType::Raw,
        signature: &src.signature,
        signing_algorithm: SigningAlgorithm::EcdsaSha256,
        key_version: None,
    }));
    h.ok(Request::VerifyMac(request::VerifyMac {
        key_id: &s(&src.hmac512),
        message: b"m",
        mac_algorithm: MacAlgorithm::HmacSha512,
        mac: &src.mac,
        key_version: None,
    }));
    // Alias, tags, rotation schedule, versions.
    assert_eq!(h.describe("alias/app").key_id, src.sym);
    match h.ok(Request::ListResourceTags(request::ListResourceTags { key_id: &s(&src.sym) })).get() {
        Ok(Response::Tags(pkms_protocol::reply::Tags { tags })) => {
            assert_eq!(tags.as_slice(), &[Tag { tag_key: "team", tag_value: "billing" }])
        }
        other => panic!("{other:?}"),
    }
    let m = h.describe(&s(&src.hmac));
    assert_eq!(m.rotation_period_in_days, Some(180));
    let m = h.describe(&s(&src.sym));
    assert_eq!((m.oldest_key_version, m.current_key_version), (2, 4));
    // The grant, and bob with his PIN.
    match h.ok(Request::ListGrants(request::ListGrants { key_id: &s(&src.sym) })).get() {
        Ok(Response::Grants(pkms_protocol::reply::Grants { grants })) => {
            assert_eq!(grants.len(), 1);
            assert_eq!(grants[0].grant_id, src.grant_id.as_str());
        }
        other => panic!("{other:?}"),
    }
    login(h, "bob", BOB_PIN);
    let plain = h.decrypt(&src.blobs[3].1, &[("app", "x")]).expect("bob's grant came along");
    assert_eq!(plain, b"secret 4");
    // The audit log starts with the restore, naming the source token and the backup time.
    login(h, "admin", PIN);
    let entries =
        match h.ok(Request::ReadAuditLog(request::ReadAuditLog { start_sequence: 1, limit: 4 })).get() {
            Ok(Response::AuditEntries(pkms_protocol::reply::AuditEntries { entries })) => entries.to_vec(),
            other => panic!("{other:?}"),
        };
    let first = AuditEntry::decode(&entries[..AUDIT_ENTRY_LEN]).expect("an entry");
    assert_eq!(first.sequence, 1);
    assert_eq!(first.operation, AuditEvent::RestoredFromBackup.code());
    assert_eq!(first.key_id[..], source_id[..16]);
    // Everything restored is in the backup it came from; the backup key came along.
    let i = info(h);
    assert!(i.backup_key);
    assert_eq!(i.key_versions_not_backed_up, 0);
}

fn source_id(header: &[u8]) -> [u8; 32] {
    Header::parse(header).expect("header").source
}

#[test]
fn a_backup_restores_every_key_version_alias_tag_grant_and_principal_on_a_fresh_token() {
    let mut src = source();
    // 6 live versions (the sym key's 2..=4, one each for the others) and the fillers' are in
    // no backup yet.
    assert_eq!(info(&mut src.h).key_versions_not_backed_up, 6 + FILLERS as u32);
    let e = export(&mut src.h, None);
    assert_eq!(info(&mut src.h).key_versions_not_backed_up, 0);
    src.h.ok(Request::RotateKeyOnDemand(request::RotateKeyOnDemand { key_id: &s(&src.hmac) }));
    assert_eq!(info(&mut src.h).key_versions_not_backed_up, 1);

    let mut b = Harness::with_flash_seed(MockFlash::new(256 * 1024), 77);
    assert_ne!(b.device_key(), src.h.device_key());
    restore(&mut b, &e, Some(&src.secret)).expect("restore");
    check_restored(&mut b, &src, &source_id(&e.header));
    // A restart changes nothing.
    let mut b = b.restart();
    check_restored(&mut b, &src, &source_id(&e.header));
    // The restored token's own backups open with the same shares.
    let again = export(&mut b, None);
    let mut c = Harness::with_flash_seed(MockFlash::new(256 * 1024), 91);
    restore(&mut c, &again, Some(&src.secret)).expect("a backup of a restored token restores");
    c.open_session();
    let blob = &src.blobs[2].1;
    login(&mut c, "admin", PIN);
    assert_eq!(c.decrypt(blob, &[("app", "x")]).unwrap(), b"secret 3");
}

#[test]
fn a_backup_wrapped_to_a_peer_restores_only_on_that_peer() {
    let mut src = source();
    let mut g = Harness::with_flash_seed(MockFlash::new(256 * 1024), 55);
    let peer = g.device_key();
    let e = export(&mut src.h, Some(&peer));
    assert_eq!(Header::parse(&e.header).unwrap().mode, pkms_protocol::backup::Mode::Peer);
    // Another token cannot; nor can shares.
    let mut i = Harness::with_flash_seed(MockFlash::new(256 * 1024), 56);
    let (code, msg) = restore(&mut i, &e, None).unwrap_err();
    assert_eq!(code, ErrorCode::AccessDenied, "{msg}");
    assert_fresh(&mut i, "another token");
    assert_eq!(restore(&mut g, &e, Some(&src.secret)).unwrap_err().0, ErrorCode::Validation);
    restore(&mut g, &e, None).expect("the peer restores");
    check_restored(&mut g, &src, &source_id(&e.header));
}

#[test]
fn every_refused_restore_leaves_the_token_fresh() {
    let mut src = source();
    let e = export(&mut src.h, None);
    assert!(e.chunks.len() >= 2, "the fixture should span chunks; it has {}", e.chunks.len());
    let mut b = Harness::with_flash_seed(MockFlash::new(256 * 1024), 77);
    // Another backup key.
    let (code, msg) = restore(&mut b, &e, Some(&[7u8; 32])).unwrap_err();
    assert_eq!(code, ErrorCode::InvalidCiphertext, "{msg}");
    assert!(msg.contains("shares"), "{msg}");
    assert_fresh(&mut b, "wrong secret");
    // A flipped bit in the header, and in every chunk (also in its last chunk, after earlier
    // chunks were written).
    let mut header = e.header.clone();
    header[60] ^= 1;
    let (code, _) = restore_in_session(&mut b, &header, Some(&src.secret), &e.chunks).unwrap_err();
    assert_eq!(code, ErrorCode::InvalidCiphertext);
    assert_fresh(&mut b, "flipped header bit");
    for k in 0..e.chunks.len() {
        let mut chunks = e.chunks.clone();
        let n = chunks[k].0.len();
        chunks[k].0[n / 2] ^= 0x10;
        let (code, _) = restore_in_session(&mut b, &e.header, Some(&src.secret), &chunks).unwrap_err();
        assert_eq!(code, ErrorCode::InvalidCiphertext);
        assert_fresh(&mut b, &format!("flipped bit in chunk {k}"));
    }
    // Reordered, and cut short (a chunk that is not the last presented as the last).
    let mut swapped = e.chunks.clone();
    swapped.swap(0, 1);
    assert!(restore_in_session(&mut b, &e.header, Some(&src.secret), &swapped).is_err());
    assert_fresh(&mut b, "reordered");
    let mut cut = e.chunks[..e.chunks.len() - 1].to_vec();
    cut.last_mut().unwrap().1 = true;
    assert!(restore_in_session(&mut b, &e.header, Some(&src.secret), &cut).is_err());
    assert_fresh(&mut b, "cut short");
    // A newer format version.
    let mut newer = e.header.clone();
    newer[9] = 2;
    let (code, msg) = restore_in_session(&mut b, &newer, Some(&src.secret), &e.chunks).unwrap_err();
    assert_eq!(code, ErrorCode::Validation);
    assert!(msg.contains("newer"), "{msg}");
    assert_eq!(
        restore_in_session(&mut b, &e.header[..HEADER_LEN - 1], Some(&src.secret), &e.chunks).unwrap_err().0,
        ErrorCode::Validation
    );
    assert_fresh(&mut b, "newer version");
    // A restore abandoned half-way is undone by the next boot.
    b.open_session();
    restore_in_session(&mut b, &e.header, Some(&src.secret), &e.chunks[..1]).unwrap();
    assert!(!b.token.core.entries(crate::records::Kind::Key).is_empty());
    let mut b = b.restart();
    assert_fresh(&mut b, "abandoned, then restarted");
    // A token that is not fresh: refused, and it keeps what it had.
    let mut other = Harness::with_flash_seed(MockFlash::new(256 * 1024), 78);
    let k = other.create(KeySpec::SymmetricDefault);
    let (code, msg) = restore(&mut other, &e, Some(&src.secret)).unwrap_err();
    assert_eq!(code, ErrorCode::InvalidState, "{msg}");
    assert_eq!(list_keys(&mut other), std::vec![k]);
    // The real thing still works on b.
    restore(&mut b, &e, Some(&src.secret)).expect("restore");
    check_restored(&mut b, &src, &source_id(&e.header));
}

#[test]
fn only_an_administrator_makes_exports_or_backup_keys() {
    let mut src = source();
    login(&mut src.h, "bob", BOB_PIN);
    assert_eq!(
        src.h.code(Request::BackupInit(request::BackupInit { replace: true })),
        ErrorCode::AccessDenied
    );
    assert_eq!(
        src.h.code(Request::BackupExportBegin(request::BackupExportBegin { peer_device_key: None })),
        ErrorCode::AccessDenied
    );
    assert_eq!(
        src.h.code(Request::BackupExportChunk(request::BackupExportChunk {})),
        ErrorCode::AccessDenied
    );
    let e = Exported { header: std::vec![0; HEADER_LEN], chunks: Vec::new() };
    assert_eq!(restore_in_session(&mut src.h, &e.header, None, &[]).unwrap_err().0, ErrorCode::AccessDenied);
    // An administrator on an initialised token: not fresh.
    login(&mut src.h, "admin", PIN);
    assert_eq!(restore_in_session(&mut src.h, &e.header, None, &[]).unwrap_err().0, ErrorCode::InvalidState);
    // A second backup key only with replace; the old one then no longer opens new exports.
    assert_eq!(
        src.h.code(Request::BackupInit(request::BackupInit { replace: false })),
        ErrorCode::InvalidState
    );
    let new_secret = backup_init(&mut src.h, true);
    assert_ne!(new_secret, src.secret);
    assert_eq!(info(&mut src.h).key_versions_not_backed_up, 6 + FILLERS as u32);
    let e = export(&mut src.h, None);
    let mut b = Harness::with_flash_seed(MockFlash::new(256 * 1024), 77);
    assert_eq!(restore(&mut b, &e, Some(&src.secret)).unwrap_err().0, ErrorCode::InvalidCiphertext);
    restore(&mut b, &e, Some(&new_secret)).expect("the new key opens it");
    // On an open token, which admits requests in the clear, the backup key still never travels
    // outside a session.
    let mut open = Harness::new();
    assert_eq!(open.code(Request::BackupInit(request::BackupInit { replace: false })), ErrorCode::Validation);
    let (code, _) = restore_in_session(&mut open, &e.header, Some(&new_secret), &e.chunks).unwrap_err();
    assert_eq!(code, ErrorCode::Validation);
    assert_fresh(&mut open, "a restore in the clear");
    // Without a backup key there is nothing to export under.
    let mut fresh = Harness::new();
    init(&mut fresh, AuditFullMode::Overwrite);
    assert_eq!(
        fresh.code(Request::BackupExportBegin(request::BackupExportBegin { peer_device_key: None })),
        ErrorCode::InvalidState
    );
    let _ = Role::User;
}

/// Power is cut after every possible number of written bytes of a restore; after each cut the
/// token remounts fresh or completely restored, never half.
#[test]
fn a_power_cut_at_any_byte_of_a_restore_leaves_a_fresh_token_or_the_whole_restore() {
    let mut src = source();
    let e = export(&mut src.h, None);
    let start = Harness::with_flash_seed(MockFlash::new(64 * 1024), 77).token.into_flash();
    // Returns the flash and the cut points the restore passed.
    let run = |flash: MockFlash, cut: Option<u64>| -> (MockFlash, u64) {
        let mut b = Harness::with_flash_seed(flash, 77);
        b.open_session();
        let before = b.token.flash().cut_points();
        if let Some(c) = cut {
            b.token.core.flash_mut().cut_power_after(c);
        }
        let _ = restore_in_session(&mut b, &e.header, Some(&src.secret), &e.chunks);
        let passed = b.token.flash().cut_points() - before;
        (b.token.into_flash(), passed)
    };
    let total = run(start.clone(), None).1;
    assert!(total > 1000, "a restore writes {total} cut points");
    let (mut fresh, mut whole) = (0u64, 0u64);
    for cut in 0..total {
        let (mut flash, _) = run(start.clone(), Some(cut));
        assert!(flash.is_power_cut(), "cut {cut} of {total} not reached");
        flash.restore_power();
        let mut b = Harness::with_flash_seed(flash, 2000 + cut);
        let i = info(&mut b);
        if i.initialized {
            whole += 1;
            assert_eq!(i.key_count as usize, 4 + FILLERS, "cut {cut}: a half restore");
            if cut % 64 == 0 {
                check_restored(&mut b, &src, &source_id(&e.header));
            }
        } else {
            fresh += 1;
            assert_fresh(&mut b, &format!("cut {cut}/{total}"));
            if cut % 128 == 0 {
                // A fresh token after the cut restores completely.
                restore(&mut b, &e, Some(&src.secret)).expect("restore after a cut");
                check_restored(&mut b, &src, &source_id(&e.header));
            }
        }
    }
    std::println!(
        "power cut: restore: {total} cut points ({fresh} left a fresh token, {whole} the whole restore)"
    );
    assert!(fresh > 0 && whole > 0);
}

/// A token nobody initialised (open) backs up to a peer and restores as an open token with its
/// keys; the restored token then initialises as any open token does.
#[test]
fn an_open_token_restores_as_an_open_token_with_its_keys() {
    let mut a = Harness::new();
    let k = a.create(KeySpec::SymmetricDefault);
    let blob = a.encrypt(&s(&k), b"open", &[]);
    let mut g = Harness::with_flash_seed(MockFlash::new(256 * 1024), 55);
    let peer = g.device_key();
    a.open_session();
    let e = export(&mut a, Some(&peer));
    restore(&mut g, &e, None).expect("restore");
    let i = info(&mut g);
    assert!(!i.initialized);
    assert_eq!(list_keys(&mut g), std::vec![k]);
    assert_eq!(g.decrypt(&blob, &[]).unwrap(), b"open");
    init(&mut g, AuditFullMode::Overwrite);
    assert_eq!(g.decrypt(&blob, &[]).unwrap(), b"open");
}
