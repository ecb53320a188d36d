//! Primitive benchmarks: P-256 (each backend), AES-256-GCM, HMAC-SHA256; and the on-target
//! cross-checks of the two P-256 backends and of the token's AES-256-GCM against `aes-gcm`.

use hmac::{Hmac, Mac};
use pkms_firmware::crypto::gcm::{Aes256Gcm, Ghash, GhashKey};
use pkms_p256::{Backend, PublicKey, SecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use crate::counter::measure;
use crate::report::{bench, check};

/// A fixed seed: every run draws the same keys and nonces, so every figure repeats exactly.
pub const SEED: [u8; 32] = *b"pocket-kms benchmark seed 000001";

fn digest() -> [u8; 32] {
    Sha256::digest(b"Pocket KMS benchmark message").into()
}

/// Keygen (random scalar + public key), hedged sign (randomness + RFC 6979 + low-S + DER) and
/// verify (SEC1 decode + DER parse + verify) for every backend built in.
pub fn p256() {
    let digest = digest();
    for &backend in Backend::ALL {
        let name = backend.name();
        let mut rng = ChaCha20Rng::from_seed(SEED);
        let (keygen, (key, public)) = measure(|| {
            let key = SecretKey::random(&mut rng);
            let public = key.public_key_with(backend).to_sec1_uncompressed();
            (key, public)
        });
        bench(&heapless_name::<40>(&["p256.keygen.", name]), keygen, 0);

        let (sign, sig) = measure(|| {
            let mut added = [0u8; 32];
            rng.fill_bytes(&mut added);
            key.sign_digest_with(backend, &digest, &added)
        });
        bench(&heapless_name::<40>(&["p256.sign.", name]), sign, 0);

        let (verify, ok) = measure(|| match (&sig, PublicKey::from_sec1_bytes_with(backend, &public)) {
            (Ok(sig), Ok(public)) => public.verify_digest_with(backend, &digest, sig.as_bytes()),
            _ => false,
        });
        bench(&heapless_name::<40>(&["p256.verify.", name]), verify, 0);

        // What the token core does per Sign: load the stored scalar, sign, and verify the
        // signature with the derived public key before releasing it (fault-attack self-check).
        let stored = key.to_bytes();
        let (selfcheck, _) = measure(|| {
            let Ok(key) = SecretKey::from_bytes(&stored[..]) else { return false };
            let mut added = [0u8; 32];
            rng.fill_bytes(&mut added);
            match key.sign_digest_with(backend, &digest, &added) {
                Ok(sig) => key.public_key_with(backend).verify_digest_with(backend, &digest, sig.as_bytes()),
                Err(_) => false,
            }
        });
        bench(&heapless_name::<48>(&["p256.sign_selfchecked.", name]), selfcheck, 0);
        check(&heapless_name::<40>(&["p256.roundtrip.", name]), ok, "own signature verifies");
    }
}

/// Each backend verifies the other's signatures, both derive the same public key and the same
/// signature from the same inputs, the RFC 6979 test vector comes out of both, and tampered
/// signatures fail on both. Returns whether everything passed.
pub fn p256_cross_check() -> bool {
    let backends = Backend::ALL;
    let mut all_ok = check("p256.backends", backends.len() == 2, "cortex-m4-asm and portable both built");
    let mut rng = ChaCha20Rng::from_seed(SEED);
    for round in 0..4u8 {
        let key = SecretKey::random(&mut rng);
        let mut digest = [0u8; 32];
        rng.fill_bytes(&mut digest);
        let mut added = [0u8; 32];
        rng.fill_bytes(&mut added);
        let publics: heapless::Vec<PublicKey, 2> = backends.iter().map(|&b| key.public_key_with(b)).collect();
        let same_public = publics.windows(2).all(|w| w[0] == w[1]);
        all_ok &= check("p256.cross.public_key", same_public, "both backends derive the same public key");
        let mut sigs: heapless::Vec<heapless::Vec<u8, 72>, 2> = heapless::Vec::new();
        for &signer in backends {
            let Ok(sig) = key.sign_digest_with(signer, &digest, &added) else {
                all_ok &= check("p256.cross.sign", false, signer.name());
                continue;
            };
            let _ = sigs.push(heapless::Vec::from_slice(sig.as_bytes()).unwrap_or_default());
            for &verifier in backends {
                let ok = publics[0].verify_digest_with(verifier, &digest, sig.as_bytes());
                let mut tampered = digest;
                tampered[usize::from(round)] ^= 0x80;
                let rejects = !publics[0].verify_digest_with(verifier, &tampered, sig.as_bytes());
                let label = heapless_name::<60>(&["p256.cross.", signer.name(), "->", verifier.name()]);
                all_ok &= check(&label, ok && rejects, "verifies; rejects a changed digest");
            }
        }
        let identical = sigs.windows(2).all(|w| w[0] == w[1]);
        all_ok &= check("p256.cross.identical", identical, "same inputs give the same signature bytes");
    }
    // Point decoding: compressed and uncompressed forms agree on both backends; a point off the
    // curve and a hybrid encoding are refused by both.
    let key = SecretKey::random(&mut rng);
    let uncompressed = key.public_key().to_sec1_uncompressed();
    let mut compressed = [0u8; 33];
    compressed[0] = 0x02 | (uncompressed[64] & 1);
    compressed[1..].copy_from_slice(&uncompressed[1..33]);
    let mut off_curve = uncompressed;
    off_curve[64] ^= 1;
    let mut hybrid = uncompressed;
    hybrid[0] = 0x06 | (uncompressed[64] & 1);
    for &backend in backends {
        let decoded = PublicKey::from_sec1_bytes_with(backend, &compressed).map(|p| p.to_sec1_uncompressed());
        let ok = decoded == Ok(uncompressed)
            && PublicKey::from_sec1_bytes_with(backend, &off_curve).is_err()
            && PublicKey::from_sec1_bytes_with(backend, &hybrid).is_err()
            && PublicKey::from_sec1_bytes_with(backend, &uncompressed[..64]).is_err();
        let label = heapless_name::<40>(&["p256.decode.", backend.name()]);
        all_ok &= check(&label, ok, "compressed = uncompressed; off-curve, hybrid, short refused");
    }
    // RFC 6979 A.2.5 (P-256, SHA-256, "sample"), plain deterministic: r must match on both.
    let x = hex32("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721");
    let r = hex32("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716");
    let sample: [u8; 32] = Sha256::digest(b"sample").into();
    if let Ok(key) = SecretKey::from_bytes(&x) {
        for &backend in backends {
            let ok = match key.sign_digest_with(backend, &sample, &[]) {
                Ok(der) => p256::ecdsa::Signature::from_der(der.as_bytes())
                    .map(|s| s.r().to_bytes()[..] == r[..] && s.normalize_s().is_none())
                    .unwrap_or(false),
                Err(_) => false,
            };
            all_ok &= check(
                &heapless_name::<40>(&["p256.rfc6979.", backend.name()]),
                ok,
                "RFC 6979 A.2.5 r, low-S",
            );
        }
    }
    all_ok
}

fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
    }
    out
}

/// AES-256-GCM as the token runs it (`pkms_firmware::crypto::gcm`: the `aes` crate's fixsliced
/// AES-256 in CTR mode, the token's own constant-time GHASH): encrypt and decrypt in place
/// (12-byte nonce, no AAD) of 32 B, 1 KiB and 4 KiB, key schedule (AES key expansion, H and the
/// prepared hash key) measured separately.
pub fn aes_gcm() {
    let key = [0x11u8; 32];
    let nonce = [0x22u8; 12];
    let (setup, cipher) = measure(|| Aes256Gcm::new(&key));
    bench("aes256gcm.key_setup", setup, 0);
    let mut buf = [0x5au8; 4096];
    for len in [32usize, 1024, 4096] {
        let (enc, tag) = measure(|| cipher.encrypt_in_place_detached(&nonce, &[], &mut buf[..len]));
        bench(&heapless_name::<40>(&["aes256gcm.encrypt.", len_name(len)]), enc, len);
        let tag = tag.unwrap_or_default();
        let (dec, ok) = measure(|| cipher.decrypt_in_place_detached(&nonce, &[], &mut buf[..len], &tag));
        bench(&heapless_name::<40>(&["aes256gcm.decrypt.", len_name(len)]), dec, len);
        check(
            &heapless_name::<40>(&["aes256gcm.roundtrip.", len_name(len)]),
            ok.is_ok() && buf[..len].iter().all(|&b| b == 0x5a),
            "decrypt restores the plaintext",
        );
    }
}

/// Where AES-256-GCM's time goes, per 1 KiB: the AES-256 block cipher alone (fixslice, as CTR
/// mode runs it, eight blocks per call) and GHASH alone (the token's UMULL-based multiplier).
pub fn aes_gcm_parts() {
    use aes::cipher::{BlockEncrypt, KeyInit as _};
    let aes = aes::Aes256::new(&[0x11u8; 32].into());
    let mut blocks = [aes::Block::default(); 64];
    let (t, ()) = measure(|| {
        for batch in blocks.chunks_mut(8) {
            aes.encrypt_blocks(batch);
        }
    });
    bench("aes256.blocks.1024", t, 1024);
    let key = GhashKey::new(&[0x44u8; 16]);
    let data = [0u8; 1024];
    let (t, _) = measure(|| {
        let mut ghash = Ghash::new(&key);
        ghash.update_padded(&data);
        ghash.finalize()
    });
    bench("ghash.1024", t, 1024);
}

/// The token's AES-256-GCM against RustCrypto's `aes-gcm` 0.10 (which sealed the blobs and wrapped
/// keys written before) on this target: same ciphertext and tag, each opens the other's, a changed
/// tag or associated-data byte fails. Lengths around block boundaries, with and without associated
/// data, seeded. Returns whether everything passed.
pub fn aes_gcm_cross_check() -> bool {
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    let mut rng = ChaCha20Rng::from_seed(SEED);
    let mut all_ok = true;
    let mut plain = [0u8; 300];
    let mut ours = [0u8; 300];
    let mut theirs = [0u8; 300];
    let mut aad = [0u8; 40];
    for (i, &(len, aad_len)) in
        [(0usize, 0usize), (1, 13), (15, 0), (16, 16), (17, 40), (32, 1), (63, 32), (129, 0), (300, 23)]
            .iter()
            .enumerate()
    {
        let mut key = [0u8; 32];
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut nonce);
        rng.fill_bytes(&mut plain[..len]);
        rng.fill_bytes(&mut aad[..aad_len]);
        let aad = &aad[..aad_len];
        ours[..len].copy_from_slice(&plain[..len]);
        theirs[..len].copy_from_slice(&plain[..len]);
        let token = Aes256Gcm::new(&key);
        let reference = aes_gcm::Aes256Gcm::new(&key.into());
        let our_tag = token.encrypt_in_place_detached(&nonce, aad, &mut ours[..len]);
        let their_tag = reference.encrypt_in_place_detached(&nonce.into(), aad, &mut theirs[..len]);
        let (Ok(our_tag), Ok(their_tag)) = (our_tag, their_tag) else {
            all_ok &= check("aes256gcm.cross.encrypt", false, "an encryption failed");
            continue;
        };
        let their_tag: [u8; 16] = their_tag.into();
        let same = our_tag == their_tag && ours[..len] == theirs[..len];
        let mut bad_tag = their_tag;
        bad_tag[i % 16] ^= 0x01;
        let refuses_bad_tag =
            token.decrypt_in_place_detached(&nonce, aad, &mut theirs[..len], &bad_tag).is_err()
                && ours[..len] == theirs[..len];
        let opens_theirs =
            token.decrypt_in_place_detached(&nonce, aad, &mut theirs[..len], &their_tag).is_ok()
                && theirs[..len] == plain[..len];
        let they_open_ours = reference
            .decrypt_in_place_detached(&nonce.into(), aad, &mut ours[..len], &our_tag.into())
            .is_ok()
            && ours[..len] == plain[..len];
        let refuses_other_aad = aad_len == 0 || {
            let mut other = [0u8; 40];
            other[..aad_len].copy_from_slice(aad);
            other[aad_len - 1] ^= 0x80;
            let mut buf = [0u8; 300];
            buf[..len].copy_from_slice(&plain[..len]);
            let tag = token.encrypt_in_place_detached(&nonce, aad, &mut buf[..len]).unwrap_or_default();
            token.decrypt_in_place_detached(&nonce, &other[..aad_len], &mut buf[..len], &tag).is_err()
        };
        all_ok &= check(
            "aes256gcm.cross.aes_gcm_0_10",
            same && refuses_bad_tag && opens_theirs && they_open_ours && refuses_other_aad,
            "same ciphertext and tag; each opens the other's; changed tag or AAD refused",
        );
    }
    all_ok
}

/// HMAC-SHA256 (key setup included) of 32 B and 4 KiB.
pub fn hmac_sha256() {
    let data = [0xa5u8; 4096];
    for len in [32usize, 4096] {
        let (t, tag) = measure(|| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[0x33u8; 32]).ok()?;
            mac.update(&data[..len]);
            Some(mac.finalize().into_bytes())
        });
        bench(&heapless_name::<40>(&["hmac_sha256.", len_name(len)]), t, len);
        check(&heapless_name::<40>(&["hmac_sha256.ran.", len_name(len)]), tag.is_some(), "computed");
    }
}

fn len_name(len: usize) -> &'static str {
    match len {
        32 => "32",
        1024 => "1024",
        4096 => "4096",
        _ => "other",
    }
}

/// Concatenates parts into a bounded string (truncating if too long).
pub fn heapless_name<const N: usize>(parts: &[&str]) -> heapless::String<N> {
    let mut s = heapless::String::new();
    for part in parts {
        for c in part.chars() {
            let _ = s.push(c);
        }
    }
    s
}
