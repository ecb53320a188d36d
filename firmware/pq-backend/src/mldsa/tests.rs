//! ML-DSA against the `ml-dsa` crate (RustCrypto, an independent implementation of FIPS 204):
//! identical public keys from the same seed, identical signatures from the same seed, message and
//! randomness, each verifies the other's signatures, and tampering is rejected.

use ml_dsa::signature::Keypair;
use ml_dsa::{EncodedSignature, MlDsa44, MlDsa65, MlDsa87, MlDsaParams, Signature, SigningKey};

use super::*;

fn seed(n: u8) -> [u8; 32] {
    core::array::from_fn(|i| n.wrapping_mul(31).wrapping_add(i as u8))
}

fn crate_public_key<P: MlDsaParams>(xi: &[u8; 32]) -> Vec<u8> {
    let sk = SigningKey::<P>::from_seed(&(*xi).into());
    sk.verifying_key().encode().to_vec()
}

fn crate_sign<P: MlDsaParams>(xi: &[u8; 32], msg: &[u8], rnd: &[u8; 32]) -> Vec<u8> {
    let sk = SigningKey::<P>::from_seed(&(*xi).into());
    sk.expanded_key().sign_internal(&[&[0, 0], msg], &(*rnd).into()).encode().to_vec()
}

fn crate_verify<P: MlDsaParams>(xi: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    let sk = SigningKey::<P>::from_seed(&(*xi).into());
    let Ok(enc) = EncodedSignature::<P>::try_from(sig) else { return false };
    match Signature::<P>::decode(&enc) {
        Some(sig) => sk.verifying_key().verify_with_context(msg, &[], &sig),
        None => false,
    }
}

fn check_level<P: MlDsaParams>(level: Level) {
    let mut cache = Box::new([ZERO; MAX_K * MAX_L]);
    for n in 0..3u8 {
        let xi = seed(n);
        let mut pk = [0u8; MAX_PUBLIC_KEY];
        let pk_len = public_key(level, &xi, &mut pk).unwrap();
        assert_eq!(pk_len, level.public_key_len());
        assert_eq!(pk[..pk_len], crate_public_key::<P>(&xi)[..], "public key, seed {n}");

        let msg: Vec<u8> = (0..(n as usize * 37 + 1)).map(|i| i as u8).collect();
        for rnd in [[0u8; 32], [n ^ 0x5a; 32]] {
            let expected = crate_sign::<P>(&xi, &msg, &rnd);
            let mut ours = [0u8; MAX_SIGNATURE];
            let len =
                sign(level, &xi, Message::Raw(&msg), &rnd, &mut Matrix::Streamed, &mut ours, None).unwrap();
            assert_eq!(len, level.signature_len());
            assert_eq!(ours[..len], expected[..], "streamed signature, seed {n}");
            let mut cached = [0u8; MAX_SIGNATURE];
            sign(level, &xi, Message::Raw(&msg), &rnd, &mut Matrix::Cached(&mut cache), &mut cached, None)
                .unwrap();
            assert_eq!(cached[..len], expected[..], "cached-matrix signature, seed {n}");

            assert!(crate_verify::<P>(&xi, &msg, &ours[..len]));
            assert!(verify(level, &pk[..pk_len], Message::Raw(&msg), &expected).unwrap());
            // Tampering anywhere is rejected: c̃, z, hint, message.
            for at in [0, level.params().ctilde + 3, len - 1 - level.params().k, len - 1] {
                let mut bad = ours;
                bad[at] ^= 1;
                assert!(!verify(level, &pk[..pk_len], Message::Raw(&msg), &bad[..len]).unwrap(), "byte {at}");
            }
            let mut other = msg.clone();
            other[0] ^= 0x80;
            assert!(!verify(level, &pk[..pk_len], Message::Raw(&other), &ours[..len]).unwrap());
            assert!(!verify(level, &pk[..pk_len], Message::Raw(&msg), &ours[..len - 1]).unwrap());
        }
    }
}

#[test]
fn ml_dsa_44_matches_the_ml_dsa_crate() {
    check_level::<MlDsa44>(Level::MlDsa44);
}

#[test]
fn ml_dsa_65_matches_the_ml_dsa_crate() {
    check_level::<MlDsa65>(Level::MlDsa65);
}

#[test]
fn ml_dsa_87_matches_the_ml_dsa_crate() {
    check_level::<MlDsa87>(Level::MlDsa87);
}

#[test]
fn external_mu_signs_what_the_raw_message_signs() {
    let level = Level::MlDsa65;
    let xi = seed(9);
    let mut pk = [0u8; MAX_PUBLIC_KEY];
    let pk_len = public_key(level, &xi, &mut pk).unwrap();
    let mut tr = [0u8; 64];
    crate::shake::shake256(&[&pk[..pk_len]], &mut tr);
    let msg = b"external mu";
    let mu = message_representative(&tr, Message::Raw(msg));
    let rnd = [7u8; 32];
    let mut a = [0u8; MAX_SIGNATURE];
    let mut b = [0u8; MAX_SIGNATURE];
    let n = sign(level, &xi, Message::Raw(msg), &rnd, &mut Matrix::Streamed, &mut a, None).unwrap();
    sign(level, &xi, Message::ExternalMu(&mu), &rnd, &mut Matrix::Streamed, &mut b, None).unwrap();
    assert_eq!(a[..n], b[..n]);
    assert!(verify(level, &pk[..pk_len], Message::ExternalMu(&mu), &a[..n]).unwrap());
}

#[test]
fn short_buffers_and_wrong_lengths_are_errors_not_panics() {
    let xi = seed(1);
    let mut small = [0u8; 100];
    assert_eq!(public_key(Level::MlDsa44, &xi, &mut small), Err(Error::BufferTooSmall));
    assert_eq!(
        sign(Level::MlDsa44, &xi, Message::Raw(b"m"), &[0; 32], &mut Matrix::Streamed, &mut small, None),
        Err(Error::BufferTooSmall)
    );
    assert_eq!(verify(Level::MlDsa44, &small, Message::Raw(b"m"), &small), Err(Error::PublicKeyLength));
    let mut pk = [0u8; MAX_PUBLIC_KEY];
    let n = public_key(Level::MlDsa44, &xi, &mut pk).unwrap();
    // Garbage signatures of the right length: every byte value pattern is simply invalid.
    for fill in [0u8, 0xff, 0x55] {
        let sig = [fill; 2420];
        assert!(!verify(Level::MlDsa44, &pk[..n], Message::Raw(b"m"), &sig).unwrap());
    }
}
