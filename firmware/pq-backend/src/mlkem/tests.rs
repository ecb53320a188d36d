//! ML-KEM against the `ml-kem` crate (RustCrypto, an independent implementation of FIPS 203):
//! the same encapsulation key from the same seed, the same ciphertext and shared secret from the
//! same randomness, each decapsulates the other's ciphertexts, and a changed ciphertext gives the
//! same implicit-rejection secret in both.

use ml_kem::{Ciphertext, Decapsulate, DecapsulationKey, KeyExport, MlKem1024, MlKem512, MlKem768};

use super::*;

fn seed(n: u8) -> [u8; 64] {
    core::array::from_fn(|i| n.wrapping_mul(13).wrapping_add(i as u8))
}

macro_rules! check_level {
    ($name:ident, $params:ty, $level:expr) => {
        #[test]
        fn $name() {
            let level = $level;
            for n in 0..4u8 {
                let s = seed(n);
                let dk = DecapsulationKey::<$params>::from_seed(s.into());
                let ek = dk.encapsulation_key();
                let mut ours = [0u8; MAX_ENCAPSULATION_KEY];
                let len = encapsulation_key(level, &s, &mut ours).unwrap();
                assert_eq!(ours[..len], ek.to_bytes()[..], "encapsulation key, seed {n}");

                let m = [n ^ 0xa5; 32];
                let (their_ct, their_ss) = ek.encapsulate_deterministic(&m.into());
                let mut ct = [0u8; MAX_CIPHERTEXT + 1];
                let mut ss = [0u8; 32];
                let ct_len = encapsulate(level, &s, &m, &mut ct, &mut ss).unwrap();
                assert_eq!(ct_len, level.ciphertext_len());
                assert_eq!(ct[..ct_len], their_ct[..], "ciphertext, seed {n}");
                assert_eq!(ss[..], their_ss[..], "shared secret, seed {n}");

                let mut back = [0u8; 32];
                decapsulate(level, &s, &their_ct, &mut back).unwrap();
                assert_eq!(back, ss);

                // A changed ciphertext: implicit rejection, the same secret as the crate's.
                for at in [0, ct_len / 2, ct_len - 1] {
                    let mut bad = ct;
                    bad[at] ^= 0x04;
                    let mut rejected = [0u8; 32];
                    decapsulate(level, &s, &bad[..ct_len], &mut rejected).unwrap();
                    let Ok(bad_ct) = Ciphertext::<$params>::try_from(&bad[..ct_len]) else { panic!() };
                    assert_eq!(rejected[..], dk.decapsulate(&bad_ct)[..], "byte {at}");
                    assert_ne!(rejected, ss);
                }
                assert_eq!(
                    decapsulate(level, &s, &ct[..ct_len - 1], &mut back),
                    Err(Error::CiphertextLength)
                );
                assert_eq!(
                    decapsulate(level, &s, &ct[..ct_len + 1], &mut back),
                    Err(Error::CiphertextLength)
                );
            }
        }
    };
}

check_level!(ml_kem_512_matches_the_ml_kem_crate, MlKem512, Level::MlKem512);
check_level!(ml_kem_768_matches_the_ml_kem_crate, MlKem768, Level::MlKem768);
check_level!(ml_kem_1024_matches_the_ml_kem_crate, MlKem1024, Level::MlKem1024);

#[test]
fn short_buffers_are_errors_not_panics() {
    let s = seed(1);
    let mut small = [0u8; 10];
    let mut ss = [0u8; 32];
    assert_eq!(encapsulation_key(Level::MlKem768, &s, &mut small), Err(Error::BufferTooSmall));
    assert_eq!(encapsulate(Level::MlKem768, &s, &[0; 32], &mut small, &mut ss), Err(Error::BufferTooSmall));
    assert_eq!(decapsulate(Level::MlKem768, &s, &small, &mut ss), Err(Error::CiphertextLength));
}
