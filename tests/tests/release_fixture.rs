//! A flash image and the blobs, signatures and MACs made by the 0.1.0 release
//! (`fixtures/release-0.1.0`, written by `examples/make_release_fixture.rs` before the code was
//! restructured) still load, decrypt and verify with this build: the flash format and the blob
//! format have not changed under anyone's data.

use std::collections::HashMap;

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use pkms_lib::inprocess::{InProcessToken, FLASH_BYTES};
use pkms_lib::{Client, Error};
use pkms_protocol::{ErrorCode, KeyState, MacAlgorithm, MessageType, SigningAlgorithm};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/release-0.1.0");

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

struct Fixture {
    facts: HashMap<String, String>,
    _dir: tempfile::TempDir,
    client: Client,
}

impl Fixture {
    fn open() -> Fixture {
        let text = std::fs::read_to_string(format!("{DIR}/facts.txt")).expect("facts.txt");
        let facts = text
            .lines()
            .map(|l| l.split_once(' ').expect("KEY VALUE"))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut image = std::fs::read(format!("{DIR}/token.flash")).expect("token.flash");
        assert!(image.len() < FLASH_BYTES);
        image.resize(FLASH_BYTES, 0xff);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.flash");
        std::fs::write(&path, image).unwrap();
        let mut client =
            pkms_tests::harness::in_session(Client::connect(InProcessToken::open(&path).unwrap()).unwrap());
        // The fixture was made at 1_764_000_000; a day later nothing is due yet.
        client.set_clock(Box::new(|| Some(1_764_086_400)));
        client.authenticate("admin", b"fixture-admin-pin").expect("the release's admin PIN still works");
        Fixture { facts, _dir: dir, client }
    }

    fn fact(&self, k: &str) -> &str {
        self.facts.get(k).unwrap_or_else(|| panic!("fact {k}"))
    }

    fn bytes(&self, k: &str) -> Vec<u8> {
        unhex(self.fact(k))
    }
}

#[test]
fn blobs_of_every_version_and_data_keys_still_decrypt() {
    let mut f = Fixture::open();
    for v in 1..=3u32 {
        let blob = f.bytes(&format!("sym.blob.{v}"));
        let vs = v.to_string();
        let out = f.client.decrypt(&blob, &[("app", "fixture"), ("v", vs.as_str())], None).unwrap();
        assert_eq!(out.plaintext.as_slice(), f.bytes(&format!("sym.plain.{v}")).as_slice());
        assert_eq!(out.key_version, v);
        assert_eq!(out.key_id.to_string(), f.fact("sym.key"));
    }
    let dk = f.bytes("sym.datakey.blob");
    let out = f.client.decrypt(&dk, &[("file", "a")], Some("alias/fixture")).unwrap();
    assert_eq!(out.plaintext.as_slice(), f.bytes("sym.datakey.plain").as_slice());
    // A wrong context is still refused.
    let blob = f.bytes("sym.blob.1");
    match f.client.decrypt(&blob, &[("app", "other")], None) {
        Err(Error::Token { code: ErrorCode::InvalidCiphertext, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn signatures_public_keys_and_macs_still_verify() {
    let mut f = Fixture::open();
    let sig = f.fact("sig.key").to_owned();
    for v in 1..=2u32 {
        let msg = f.bytes(&format!("sig.message.{v}"));
        let signature = f.bytes(&format!("sig.signature.{v}"));
        let public = f.client.get_public_key(&sig, Some(v)).unwrap().public_key;
        assert_eq!(public, f.bytes(&format!("sig.public.{v}")), "version {v}'s public key is unchanged");
        let vk = VerifyingKey::from_public_key_der(&public).unwrap();
        vk.verify(&msg, &DerSignature::try_from(signature.as_slice()).unwrap()).unwrap();
        let out = f
            .client
            .verify(&sig, &msg, MessageType::Raw, &signature, SigningAlgorithm::EcdsaSha256, Some(v))
            .unwrap();
        assert!(out.signature_valid);
    }
    for (name, alg) in [
        ("hmac256", MacAlgorithm::HmacSha256),
        ("hmac384", MacAlgorithm::HmacSha384),
        ("hmac512", MacAlgorithm::HmacSha512),
    ] {
        let key = f.fact(&format!("{name}.key")).to_owned();
        let mac = f.bytes(&format!("{name}.mac"));
        assert!(f.client.verify_mac(&key, b"fixture message", alg, &mac, None).unwrap().mac_valid);
    }
}

#[test]
fn metadata_aliases_tags_states_grants_and_the_audit_key_are_intact() {
    let mut f = Fixture::open();
    let sym = f.fact("sym.key").to_owned();
    let m = f.client.describe_key("alias/fixture").unwrap();
    assert_eq!(m.key_id.to_string(), sym);
    assert_eq!((m.current_key_version, m.oldest_key_version), (3, 1));
    assert_eq!(m.description, "fixture symmetric");
    assert!(m.key_rotation_enabled);
    assert_eq!(m.rotation_period_in_days, Some(180));
    let mut tags: Vec<_> =
        f.client.list_resource_tags(&sym).unwrap().into_iter().map(|t| (t.tag_key, t.tag_value)).collect();
    tags.sort();
    assert_eq!(tags, [("env".to_owned(), "fixture".to_owned()), ("team".to_owned(), "ops".to_owned())]);
    assert_eq!(f.client.describe_key("alias/fixture-signing").unwrap().key_id.to_string(), f.fact("sig.key"));
    let disabled = f.fact("disabled.key").to_owned();
    assert_eq!(f.client.describe_key(&disabled).unwrap().key_state, KeyState::Disabled);
    let doomed = f.fact("doomed.key").to_owned();
    let d = f.client.describe_key(&doomed).unwrap();
    assert_eq!(d.key_state, KeyState::PendingDeletion);
    assert_eq!(d.deletion_date.map(|t| t.to_string()).as_deref(), Some(f.fact("doomed.deletion_date")));
    let grants = f.client.list_grants(&sym).unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].grantee, "bob");
    let cp = f.client.get_audit_checkpoint().unwrap();
    assert!(cp.sequence > f.fact("audit.sequence").parse::<u64>().unwrap());
    assert_eq!(cp.public_key, f.bytes("audit.public_key"), "the device attestation key is unchanged");
    // The release's log, kept whole, in the larger log of today's in-process token (the QEMU
    // board's capacity), which the login's answer reports.
    assert_eq!((cp.first_sequence, cp.capacity), (1, 3696));
    let status = f.client.audit_log_status().expect("the login's answer tells the log's status");
    assert_eq!((status.capacity, status.room), (3696, 3696 - status.entries));
    assert!(u64::from(status.entries) >= f.fact("audit.sequence").parse::<u64>().unwrap());
}

#[test]
fn a_user_principal_keeps_its_key_its_grant_and_no_more() {
    let mut f = Fixture::open();
    f.client.authenticate("bob", b"fixture-bob-pin").expect("bob's PIN still works");
    let blob = f.bytes("bob.blob");
    let out = f.client.decrypt(&blob, &[("owner", "bob")], None).unwrap();
    assert_eq!(out.plaintext.as_slice(), b"bob's secret");
    // The grant lets bob encrypt under the administrator's key, not decrypt.
    let sym = f.fact("sym.key").to_owned();
    f.client.encrypt(&sym, b"x", &[("via", "grant")]).unwrap();
    let granted = f.bytes("bob.granted_blob");
    match f.client.decrypt(&granted, &[("via", "grant")], None) {
        Err(Error::Token { code: ErrorCode::AccessDenied, .. }) => {}
        other => panic!("{other:?}"),
    }
}
