//! A flash image made by the previous release (principals named by name in policies and grants,
//! no principal ids) mounts, migrates, and keeps every right it gave and no more, even when the
//! power fails at any byte of the migration.

use std::string::String;
use std::vec::Vec;

use pkms_protocol::messages::Request;
use pkms_protocol::ErrorCode;

use super::auth::{encrypt_code, login};
use super::*;
use crate::records::{AccessRecord, Kind, PrincipalRecord, ACCESS_FORMAT, PRINCIPAL_FORMAT};

const IMAGE: &[u8] = include_bytes!("../../../../tests/fixtures/release-0.1.0/token.flash");
const FACTS: &str = include_str!("../../../../tests/fixtures/release-0.1.0/facts.txt");
/// The size of the in-process token's flash the image was made on.
const FLASH_BYTES: usize = 1024 * 1024;

fn fact(name: &str) -> &'static str {
    FACTS.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' '))).expect(name)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn release_flash() -> MockFlash {
    let mut image = IMAGE.to_vec();
    image.resize(FLASH_BYTES, 0xFF);
    MockFlash::from_bytes(image)
}

/// Every principal and access record has the current format, and the release's rights hold:
/// bob uses his key and encrypts (not decrypts) under the administrator's key through his grant,
/// the administrator uses both.
fn check_migrated(h: &mut Harness) {
    h.now = Some(1_764_086_400);
    let core = &mut h.token.core;
    let ids: Vec<_> = core.entries(Kind::Principal).iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 2);
    for id in ids {
        assert_eq!(core.read::<PrincipalRecord>(&id).unwrap().unwrap().format, PRINCIPAL_FORMAT);
    }
    let ids: Vec<_> = core.entries(Kind::Access).iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 2);
    let mut buf = std::vec![0u8; 4096];
    for id in ids {
        assert_eq!(core.read_into::<AccessRecord<'_>>(&id, &mut buf).unwrap().unwrap().format, ACCESS_FORMAT);
    }
    let sym = fact("sym.key");
    let bobs = fact("bob.key");
    login(h, "bob", b"fixture-bob-pin");
    assert_eq!(h.decrypt(&unhex(fact("bob.blob")), &[("owner", "bob")]).unwrap(), b"bob's secret");
    assert_eq!(encrypt_code(h, sym, &[]), None);
    assert_eq!(
        h.decrypt(&unhex(fact("bob.granted_blob")), &[("via", "grant")]).unwrap_err().0,
        ErrorCode::AccessDenied
    );
    login(h, "admin", b"fixture-admin-pin");
    assert_eq!(encrypt_code(h, bobs, &[]), None);
    match h.ok(Request::ListGrants(pkms_protocol::request::ListGrants { key_id: sym })).get() {
        Ok(pkms_protocol::messages::Response::Grants(g)) => {
            let names: Vec<(String, String)> =
                g.grants.iter().map(|g| (String::from(g.grantee), String::from(g.issuer))).collect();
            assert_eq!(names, [(String::from("bob"), String::from("admin"))]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_flash_image_of_the_previous_release_migrates_to_principal_ids() {
    let mut h = Harness::with_flash(release_flash());
    check_migrated(&mut h);
    // Once migrated, a restart writes nothing more.
    let flash = h.token.into_flash();
    let before = flash.bytes_written();
    let h = Harness::with_flash_seed(flash, 9);
    assert_eq!(h.token.flash().bytes_written(), before);
}

#[test]
fn a_power_cut_at_any_byte_of_the_migration_leaves_a_token_that_finishes_it() {
    let total = Harness::with_flash(release_flash()).token.flash().bytes_written();
    assert!(total > 0);
    for cut in 0..total {
        let mut flash = release_flash();
        flash.cut_power_after(cut);
        let h = Harness::with_flash_seed(flash, 100 + cut);
        let mut flash = h.token.into_flash();
        flash.restore_power();
        let mut h = Harness::with_flash_seed(flash, 10_000 + cut);
        check_migrated(&mut h);
    }
    std::println!("migration: {total} cut points");
}
