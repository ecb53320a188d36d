//! Writes `tests/fixtures/release-0.1.0/`: a token's flash image made by the 0.1.0 release and
//! what was done with it (blobs, signatures, MACs, public keys, ids), so that
//! `tests/tests/release_fixture.rs` can prove later builds still load that flash and open those
//! blobs. Run once, by the release that made it; never re-run to make a change pass.
//!
//!     cargo run --release -p pkms-tests --example make_release_fixture

use std::fmt::Write as _;
use std::path::Path;

use pkms_lib::inprocess::InProcessToken;
use pkms_lib::model::{CreateKeyParams, DataKeySize, Tag};
use pkms_lib::Client;
use pkms_protocol::access::{AuditFullMode, Role};
use pkms_protocol::{DataKeySpec, KeySpec, KeyUsage, MacAlgorithm, MessageType, SigningAlgorithm};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/release-0.1.0");
/// The administrator's PIN and the PUK of the fixture token.
const ADMIN_PIN: &[u8] = b"fixture-admin-pin";
const PUK: &[u8] = b"fixture-puk-0123456789";
const BOB_PIN: &[u8] = b"fixture-bob-pin";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() {
    let dir = Path::new(DIR);
    std::fs::create_dir_all(dir).unwrap();
    let flash_path = dir.join("token.flash.full");
    let _ = std::fs::remove_file(&flash_path);
    let mut facts = String::new();
    let mut fact = |k: &str, v: String| writeln!(facts, "{k} {v}").unwrap();
    {
        let mut c = Client::connect(InProcessToken::open(&flash_path).unwrap()).unwrap();
        c.set_clock(Box::new(|| Some(1_764_000_000)));
        c.initialize(ADMIN_PIN, PUK, AuditFullMode::Overwrite).unwrap();

        // A symmetric key with three versions and a blob under each, plus data keys.
        let sym = c
            .create_key(&CreateKeyParams {
                description: "fixture symmetric".into(),
                tags: vec![Tag::new("team", "ops"), Tag::new("env", "fixture")],
                ..Default::default()
            })
            .unwrap()
            .key_id
            .to_string();
        fact("sym.key", sym.clone());
        for v in 1..=3u32 {
            if v > 1 {
                c.rotate_key_on_demand(&sym).unwrap();
            }
            let plain = format!("secret under version {v}");
            let out =
                c.encrypt(&sym, plain.as_bytes(), &[("app", "fixture"), ("v", &v.to_string())]).unwrap();
            assert_eq!(out.key_version, v);
            fact(&format!("sym.blob.{v}"), hex(&out.ciphertext_blob));
            fact(&format!("sym.plain.{v}"), hex(plain.as_bytes()));
        }
        c.enable_key_rotation(&sym, Some(180)).unwrap();
        c.create_alias("alias/fixture", &sym).unwrap();
        let dk = c.generate_data_key(&sym, &[("file", "a")], DataKeySize::Spec(DataKeySpec::Aes256)).unwrap();
        fact("sym.datakey.blob", hex(&dk.ciphertext_blob));
        fact("sym.datakey.plain", hex(dk.plaintext.as_ref().unwrap()));

        // A P-256 signing key with two versions, a signature by each.
        let sig = c
            .create_key(&CreateKeyParams {
                key_spec: KeySpec::EccNistP256,
                key_usage: Some(KeyUsage::SignVerify),
                description: "fixture signing".into(),
                ..Default::default()
            })
            .unwrap()
            .key_id
            .to_string();
        fact("sig.key", sig.clone());
        for v in 1..=2u32 {
            if v > 1 {
                // Signing keys rotate only once tagged to (the release fixture predates it).
                let opt_in = Tag {
                    tag_key: pkms_protocol::ALLOW_SIGNING_KEY_ROTATION_TAG.to_owned(),
                    tag_value: "true".to_owned(),
                };
                c.tag_resource(&sig, &[opt_in]).unwrap();
                c.rotate_key_on_demand(&sig).unwrap();
            }
            let msg = format!("release {v}");
            let s = c.sign(&sig, msg.as_bytes(), MessageType::Raw, SigningAlgorithm::EcdsaSha256).unwrap();
            fact(&format!("sig.message.{v}"), hex(msg.as_bytes()));
            fact(&format!("sig.signature.{v}"), hex(&s.signature));
            fact(&format!("sig.public.{v}"), hex(&c.get_public_key(&sig, Some(v)).unwrap().public_key));
        }
        c.create_alias("alias/fixture-signing", &sig).unwrap();

        // HMAC keys of each size.
        for (spec, alg, name) in [
            (KeySpec::Hmac256, MacAlgorithm::HmacSha256, "hmac256"),
            (KeySpec::Hmac384, MacAlgorithm::HmacSha384, "hmac384"),
            (KeySpec::Hmac512, MacAlgorithm::HmacSha512, "hmac512"),
        ] {
            let k = c.create_key(&CreateKeyParams::spec(spec)).unwrap().key_id.to_string();
            let mac = c.generate_mac(&k, b"fixture message", alg).unwrap();
            fact(&format!("{name}.key"), k);
            fact(&format!("{name}.mac"), hex(&mac.mac));
        }

        // A disabled key and one pending deletion.
        let disabled = c.create_key(&CreateKeyParams::default()).unwrap().key_id.to_string();
        c.disable_key(&disabled).unwrap();
        fact("disabled.key", disabled);
        let doomed = c.create_key(&CreateKeyParams::default()).unwrap().key_id.to_string();
        let d = c.schedule_key_deletion(&doomed, Some(30)).unwrap();
        fact("doomed.key", doomed);
        fact("doomed.deletion_date", d.deletion_date.to_string());

        // A user principal with a key of its own (its policy names its creator) and a grant on
        // the administrator's symmetric key.
        c.create_principal("bob", BOB_PIN, Role::User).unwrap();
        c.create_grant(&sym, "bob", pkms_protocol::access::Action::Encrypt.bit(), None, "fixture-grant")
            .unwrap();
        c.authenticate("bob", BOB_PIN).unwrap();
        let bobs = c.create_key(&CreateKeyParams::default()).unwrap().key_id.to_string();
        let b = c.encrypt(&bobs, b"bob's secret", &[("owner", "bob")]).unwrap();
        fact("bob.key", bobs);
        fact("bob.blob", hex(&b.ciphertext_blob));
        let g = c.encrypt(&sym, b"granted", &[("via", "grant")]).unwrap();
        fact("bob.granted_blob", hex(&g.ciphertext_blob));
        c.authenticate("admin", ADMIN_PIN).unwrap();

        let cp = c.get_audit_checkpoint().unwrap();
        fact("audit.sequence", cp.sequence.to_string());
        fact("audit.public_key", hex(&cp.public_key));
    }
    let facts_text = facts;
    // The image, without its erased tail.
    let full = std::fs::read(&flash_path).unwrap();
    let used = full.iter().rposition(|&b| b != 0xff).map_or(0, |i| i + 1);
    std::fs::write(dir.join("token.flash"), &full[..used]).unwrap();
    std::fs::remove_file(&flash_path).unwrap();
    for f in std::fs::read_dir(dir).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "lock") {
            std::fs::remove_file(p).unwrap();
        }
    }
    std::fs::write(dir.join("facts.txt"), facts_text).unwrap();
    println!("wrote {} ({} of {} bytes used)", dir.display(), used, full.len());
}
