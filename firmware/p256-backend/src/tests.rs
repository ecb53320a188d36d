//! Host tests: they exercise the portable backend (the only one on the host) and the shared
//! encoding, normalization and parsing code. The assembly backend is cross-checked against the
//! portable one on the target, in the QEMU bench firmware (bench/firmware).

use super::*;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::pkcs8::EncodePublicKey;
use rand_core::OsRng;
use sha2::Digest;

fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// An RNG that returns a fixed pattern, to make "hedged" signing reproducible in tests.
struct FixedRng(u8);
impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes([self.0; 4])
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes([self.0; 8])
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(self.0)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(self.0);
        Ok(())
    }
}
impl CryptoRng for FixedRng {}

// RFC 6979 A.2.5: P-256, SHA-256, message "sample".
const RFC_X: &str = "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721";
const RFC_UX: &str = "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6";
const RFC_UY: &str = "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299";
const RFC_R: &str = "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716";
const RFC_S: &str = "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8";

fn sample_digest() -> [u8; 32] {
    sha2::Sha256::digest(b"sample").into()
}

#[test]
fn rfc6979_vector_with_empty_added_input_is_reproduced_low_s() {
    let key = SecretKey::from_bytes(&hex32(RFC_X)).unwrap();
    let public = key.public_key_sec1_uncompressed();
    assert_eq!(public[0], 0x04);
    assert_eq!(public[1..33], hex32(RFC_UX));
    assert_eq!(public[33..], hex32(RFC_UY));

    let der = key.sign_digest_with(Backend::Portable, &sample_digest(), &[]).unwrap();
    let sig = p256::ecdsa::Signature::from_der(der.as_bytes()).unwrap();
    assert_eq!(&sig.r().to_bytes()[..], &hex32(RFC_R)[..]);
    // The RFC's s is high; we return n - s.
    let high_s = p256::ecdsa::Signature::from_scalars(hex32(RFC_R), hex32(RFC_S)).unwrap();
    assert_eq!(high_s.normalize_s().unwrap(), sig);
    assert!(sig.normalize_s().is_none(), "signature must be low-S");
}

#[test]
fn hedged_signatures_differ_per_call_and_match_ecdsa_crate_for_same_randomness() {
    let key = SecretKey::random(&mut OsRng);
    let digest = sample_digest();
    let a = key.sign_digest_hedged(&digest, &mut OsRng).unwrap();
    let b = key.sign_digest_hedged(&digest, &mut OsRng).unwrap();
    assert_ne!(a.as_bytes(), b.as_bytes(), "fresh randomness must change k");

    // Same added randomness as the ecdsa crate's own hedged signer → same signature.
    let ours = key.sign_digest_hedged(&digest, &mut FixedRng(0x5a)).unwrap();
    let signing_key = p256::ecdsa::SigningKey::from_slice(&key.to_bytes()[..]).unwrap();
    let theirs: p256::ecdsa::Signature =
        p256::ecdsa::signature::hazmat::RandomizedPrehashSigner::sign_prehash_with_rng(
            &signing_key,
            &mut FixedRng(0x5a),
            &digest,
        )
        .unwrap();
    let theirs = theirs.normalize_s().unwrap_or(theirs);
    assert_eq!(ours.as_bytes(), theirs.to_der().as_bytes());
}

#[test]
fn signatures_verify_here_and_with_the_p256_crate() {
    for _ in 0..8 {
        let key = SecretKey::random(&mut OsRng);
        let mut digest = [0u8; 32];
        OsRng.fill_bytes(&mut digest);
        let der = key.sign_digest_hedged(&digest, &mut OsRng).unwrap();
        let public = key.public_key();
        assert!(public.verify_digest(&digest, der.as_bytes()));
        assert!(verify_digest(&public.to_sec1_uncompressed(), &digest, der.as_bytes()));
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public.to_sec1_uncompressed()).unwrap();
        let sig = p256::ecdsa::Signature::from_der(der.as_bytes()).unwrap();
        assert!(vk.verify_prehash(&digest, &sig).is_ok());
        assert!(sig.normalize_s().is_none(), "signature must be low-S");
    }
}

#[test]
fn verification_rejects_wrong_digest_key_and_tampered_or_garbage_signatures() {
    let key = SecretKey::random(&mut OsRng);
    let other = SecretKey::random(&mut OsRng);
    let digest = sample_digest();
    let der = key.sign_digest_hedged(&digest, &mut OsRng).unwrap();
    let public = key.public_key();

    let mut wrong_digest = digest;
    wrong_digest[31] ^= 1;
    assert!(!public.verify_digest(&wrong_digest, der.as_bytes()));
    assert!(!other.public_key().verify_digest(&digest, der.as_bytes()));

    let bytes = der.as_bytes();
    for i in 0..bytes.len() {
        let mut tampered = [0u8; 72];
        tampered[..bytes.len()].copy_from_slice(bytes);
        tampered[i] ^= 0x01;
        assert!(!public.verify_digest(&digest, &tampered[..bytes.len()]), "flipped byte {i} accepted");
    }
    assert!(!public.verify_digest(&digest, &[]));
    assert!(!public.verify_digest(&digest, &bytes[..bytes.len() - 1]));
    assert!(!public.verify_digest(&digest, &[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01]), "r = 0");
    assert!(!public.verify_digest(&digest, &[0xff; 80]));
    assert!(!verify_digest(&[0x04; 65], &digest, bytes), "point not on curve");
    assert!(!verify_digest(&[], &digest, bytes));
}

#[test]
fn high_s_signatures_are_accepted_like_openssl_does() {
    let key = SecretKey::from_bytes(&hex32(RFC_X)).unwrap();
    let high_s = p256::ecdsa::Signature::from_scalars(hex32(RFC_R), hex32(RFC_S)).unwrap();
    assert!(key.public_key().verify_digest(&sample_digest(), high_s.to_der().as_bytes()));
}

#[test]
fn secret_keys_out_of_range_or_wrong_length_are_refused() {
    // n, the group order, and n + 1 are out of range; 0 too.
    let n = hex32("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");
    let mut n_plus_1 = n;
    n_plus_1[31] += 1;
    let mut n_minus_1 = n;
    n_minus_1[31] -= 1;
    assert_eq!(SecretKey::from_bytes(&[0u8; 32]).unwrap_err(), Error::InvalidSecretKey);
    assert_eq!(SecretKey::from_bytes(&n).unwrap_err(), Error::InvalidSecretKey);
    assert_eq!(SecretKey::from_bytes(&n_plus_1).unwrap_err(), Error::InvalidSecretKey);
    assert_eq!(SecretKey::from_bytes(&[0xff; 32]).unwrap_err(), Error::InvalidSecretKey);
    assert_eq!(SecretKey::from_bytes(&[1u8; 31]).unwrap_err(), Error::InvalidSecretKey);
    assert_eq!(SecretKey::from_bytes(&[1u8; 33]).unwrap_err(), Error::InvalidSecretKey);
    let top = SecretKey::from_bytes(&n_minus_1).unwrap();
    assert_eq!(&top.to_bytes()[..], &n_minus_1[..]);
    assert_eq!(std::format!("{top:?}"), "SecretKey(..)", "Debug must not print the scalar");
}

#[test]
fn random_rejects_out_of_range_draws() {
    // An RNG stuck at 0xff never gives a valid scalar; one that gives 0xff then 0x01 must land on
    // the second draw.
    struct TwoStep(u32);
    impl RngCore for TwoStep {
        fn next_u32(&mut self) -> u32 {
            0
        }
        fn next_u64(&mut self) -> u64 {
            0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(if self.0 == 0 { 0xff } else { 0x01 });
            self.0 += 1;
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl CryptoRng for TwoStep {}
    let mut rng = TwoStep(0);
    let key = SecretKey::random(&mut rng);
    assert_eq!(rng.0, 2);
    assert_eq!(&key.to_bytes()[..], &[0x01; 32]);
}

#[test]
fn spki_matches_the_pkcs8_encoder_and_round_trips() {
    let key = SecretKey::random(&mut OsRng);
    let ours = key.public_key_spki_der();
    let theirs = p256::PublicKey::from_sec1_bytes(&key.public_key_sec1_uncompressed())
        .unwrap()
        .to_public_key_der()
        .unwrap();
    assert_eq!(&ours[..], theirs.as_bytes());
    assert_eq!(PublicKey::from_spki_der(&ours).unwrap(), key.public_key());

    let mut bad_oid = ours;
    bad_oid[20] ^= 1;
    assert_eq!(PublicKey::from_spki_der(&bad_oid).unwrap_err(), Error::InvalidPublicKey);
    assert_eq!(PublicKey::from_spki_der(&ours[..90]).unwrap_err(), Error::InvalidPublicKey);
    let mut off_curve = ours;
    off_curve[90] ^= 1;
    assert_eq!(PublicKey::from_spki_der(&off_curve).unwrap_err(), Error::InvalidPublicKey);
}

#[test]
fn public_keys_decode_compressed_and_refuse_bad_encodings() {
    let key = SecretKey::random(&mut OsRng);
    let uncompressed = key.public_key_sec1_uncompressed();
    let compressed = p256::PublicKey::from_sec1_bytes(&uncompressed).unwrap();
    let compressed = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&compressed, true);
    assert_eq!(
        PublicKey::from_sec1_bytes(compressed.as_bytes()).unwrap().to_sec1_uncompressed(),
        uncompressed
    );

    let mut hybrid = uncompressed;
    hybrid[0] = 0x06 | (uncompressed[64] & 1);
    assert_eq!(PublicKey::from_sec1_bytes(&hybrid).unwrap_err(), Error::InvalidPublicKey);
    assert_eq!(PublicKey::from_sec1_bytes(&[0x00]).unwrap_err(), Error::InvalidPublicKey);
    assert_eq!(PublicKey::from_sec1_bytes(&uncompressed[..64]).unwrap_err(), Error::InvalidPublicKey);
    let mut off_curve = uncompressed;
    off_curve[64] ^= 1;
    assert_eq!(PublicKey::from_sec1_bytes(&off_curve).unwrap_err(), Error::InvalidPublicKey);
}

#[test]
fn every_backend_built_here_agrees_with_every_other() {
    // On the host only the portable backend exists; on the target this is what the bench
    // firmware's cross-check does for the assembly backend.
    assert_eq!(Backend::ALL[0], Backend::ACTIVE);
    let key = SecretKey::random(&mut OsRng);
    let digest = sample_digest();
    for &signer in Backend::ALL {
        let der = key.sign_digest_with(signer, &digest, &[7u8; 32][..]).unwrap();
        for &verifier in Backend::ALL {
            assert!(key.public_key_with(verifier).verify_digest_with(verifier, &digest, der.as_bytes()));
        }
    }
}

#[test]
fn ecdh_agrees_with_the_p256_crate_in_both_directions() {
    for _ in 0..8 {
        let a = SecretKey::random(&mut OsRng);
        let b = SecretKey::random(&mut OsRng);
        let ab = a.diffie_hellman(&b.public_key()).unwrap();
        let ba = b.diffie_hellman(&a.public_key()).unwrap();
        assert_eq!(*ab, *ba);
        let theirs = p256::ecdh::diffie_hellman(
            p256::NonZeroScalar::from_repr((*a.to_bytes()).into()).unwrap(),
            p256::PublicKey::from_sec1_bytes(&b.public_key_sec1_uncompressed()).unwrap().as_affine(),
        );
        assert_eq!(ab[..], theirs.raw_secret_bytes()[..]);
    }
}
