//! The token's random number generator: a ChaCha20 DRBG seeded, and periodically reseeded, from
//! the hardware TRNG.
//!
//! Why not the TRNG directly: the nRF52840's RNG peripheral delivers about one byte per 120 µs
//! with bias correction on (about 8 KB/s), too slow for keys, nonces and GenerateRandom's 1024
//! bytes on every request, and its raw output carries no cryptographic post-processing. A
//! ChaCha20 stream keyed with 256 TRNG bits is fast and indistinguishable from random as long as
//! the seed is secret. Reseeding every [`RESEED_INTERVAL`] bytes limits how much output a state
//! compromise exposes; each new seed is fresh TRNG output XORed with DRBG output, so a TRNG that
//! fails after boot can not make the state weaker than it already was.

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use zeroize::Zeroize;

/// Output bytes between two reseeds.
pub const RESEED_INTERVAL: usize = 16 * 1024;
/// Seed length drawn from the TRNG for each (re)seed.
pub const SEED_LEN: usize = 32;

/// ChaCha20 DRBG over a true random source `T`.
pub struct Drbg<T> {
    trng: T,
    chacha: ChaCha20Rng,
    since_reseed: usize,
}

impl<T: RngCore> Drbg<T> {
    /// Seeds the DRBG with [`SEED_LEN`] bytes from `trng`.
    pub fn new(mut trng: T) -> Self {
        let mut seed = [0u8; SEED_LEN];
        trng.fill_bytes(&mut seed);
        let chacha = ChaCha20Rng::from_seed(seed);
        seed.zeroize();
        Drbg { trng, chacha, since_reseed: 0 }
    }

    /// Mixes [`SEED_LEN`] fresh TRNG bytes into the state now.
    pub fn reseed(&mut self) {
        let mut seed = [0u8; SEED_LEN];
        let mut mix = [0u8; SEED_LEN];
        self.trng.fill_bytes(&mut seed);
        self.chacha.fill_bytes(&mut mix);
        for (s, m) in seed.iter_mut().zip(mix.iter()) {
            *s ^= m;
        }
        self.chacha = ChaCha20Rng::from_seed(seed);
        seed.zeroize();
        mix.zeroize();
        self.since_reseed = 0;
    }

    /// Output bytes since the last reseed.
    pub fn bytes_since_reseed(&self) -> usize {
        self.since_reseed
    }
}

impl<T: RngCore> RngCore for Drbg<T> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    /// Fills `dest`, reseeding whenever [`RESEED_INTERVAL`] bytes have been produced, also in
    /// the middle of a long request.
    fn fill_bytes(&mut self, mut dest: &mut [u8]) {
        while !dest.is_empty() {
            if self.since_reseed >= RESEED_INTERVAL {
                self.reseed();
            }
            let n = dest.len().min(RESEED_INTERVAL - self.since_reseed);
            let (now, rest) = dest.split_at_mut(n);
            self.chacha.fill_bytes(now);
            self.since_reseed += n;
            dest = rest;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl<T: RngCore> CryptoRng for Drbg<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    /// A fake TRNG: a counter pattern (or stuck at zero), counting the bytes drawn.
    struct FakeTrng {
        next: u8,
        stuck: bool,
        drawn: usize,
    }

    impl RngCore for FakeTrng {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = if self.stuck { 0 } else { self.next };
                self.next = self.next.wrapping_add(1);
                self.drawn += 1;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    fn trng(start: u8) -> FakeTrng {
        FakeTrng { next: start, stuck: false, drawn: 0 }
    }

    #[test]
    fn seeds_from_32_trng_bytes_and_is_chacha20_of_that_seed() {
        let mut d = Drbg::new(trng(0));
        assert_eq!(d.trng.drawn, SEED_LEN);
        let seed: [u8; 32] = core::array::from_fn(|i| i as u8);
        let mut reference = ChaCha20Rng::from_seed(seed);
        let (mut a, mut b) = ([0u8; 100], [0u8; 100]);
        d.fill_bytes(&mut a);
        reference.fill_bytes(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn different_trng_output_gives_a_different_stream() {
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        Drbg::new(trng(0)).fill_bytes(&mut a);
        Drbg::new(trng(1)).fill_bytes(&mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn reseeds_after_the_interval_even_inside_one_request() {
        let mut d = Drbg::new(trng(0));
        let mut buf = vec![0u8; RESEED_INTERVAL];
        d.fill_bytes(&mut buf);
        assert_eq!(d.trng.drawn, SEED_LEN, "no reseed within the interval");
        let mut one = [0u8; 1];
        d.fill_bytes(&mut one);
        assert_eq!(d.trng.drawn, 2 * SEED_LEN, "reseeded before the next byte");
        let mut long = vec![0u8; 2 * RESEED_INTERVAL + 10];
        d.fill_bytes(&mut long);
        assert_eq!(d.trng.drawn, 4 * SEED_LEN, "two more reseeds inside one long request");
        assert_eq!(d.bytes_since_reseed(), 11);
    }

    #[test]
    fn a_trng_that_fails_after_boot_does_not_reset_the_state_to_a_known_seed() {
        let mut d = Drbg::new(trng(9));
        d.trng.stuck = true;
        d.reseed();
        let mut out = [0u8; 64];
        d.fill_bytes(&mut out);
        let mut zero_seeded = [0u8; 64];
        ChaCha20Rng::from_seed([0; 32]).fill_bytes(&mut zero_seeded);
        assert_ne!(out, zero_seeded);
    }

    #[test]
    fn next_words_come_from_the_stream() {
        let mut d = Drbg::new(trng(0));
        let mut reference = Drbg::new(trng(0));
        let mut b = [0u8; 12];
        reference.fill_bytes(&mut b);
        assert_eq!(d.next_u32(), u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        assert_eq!(d.next_u64(), u64::from_le_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]));
    }
}
