//! The token's random number generator: a ChaCha20 DRBG seeded, and periodically reseeded, from
//! the hardware TRNG, whose raw output passes the SP 800-90B health tests first.
//!
//! Why not the TRNG directly: the nRF52840's RNG peripheral delivers about one byte per 120 µs
//! with bias correction on (about 8 KB/s), too slow for keys, nonces and GenerateRandom's 1024
//! bytes on every request, and its raw output carries no cryptographic post-processing. A
//! ChaCha20 stream keyed with a full-entropy 256-bit seed is fast and indistinguishable from
//! random as long as the seed is secret.
//!
//! Seeding ([`Drbg::new`]): [`STARTUP_SAMPLES`] TRNG bytes (SP 800-90B's start-up test length)
//! run through the repetition count and adaptive proportion tests ([`crate::entropy_health`]),
//! and SHA-256 of all of them is the ChaCha20 key. At the 4 bits per byte the health tests are
//! calibrated for, that is 4096 bits of entropy into a 256-bit seed (a vetted conditioning
//! function needs 256 + 64). If a test fails, there is no seed: [`Drbg::new`] returns the
//! failure, and [`Drbg::start`] an unseeded generator that says so, which the board hands to the
//! token core's error state (it never draws from it). Start-up takes about 125 ms.
//!
//! Reseeding every [`RESEED_INTERVAL`] output bytes limits how much output a state compromise
//! exposes: [`RESEED_SAMPLES`] fresh TRNG bytes (256 bits at the claim), health-tested on the
//! same continuous test state, are hashed with 32 bytes of DRBG output into the new key, so a
//! TRNG that degrades after boot cannot make the state weaker than it was. If they fail a test,
//! they are not used, the DRBG keeps its state and draws on no more TRNG output, and
//! [`Drbg::health`] reports the failure from then on (`try_fill_bytes` refuses): the core is to
//! enter its error state.

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

pub use crate::entropy_health::HealthTestFailure;
use crate::entropy_health::HealthTests;

/// Output bytes between two reseeds.
pub const RESEED_INTERVAL: usize = 16 * 1024;
/// TRNG bytes drawn, health-tested and hashed into the first seed (SP 800-90B § 4.3 asks for at
/// least 1024 samples of start-up testing).
pub const STARTUP_SAMPLES: usize = 1024;
/// TRNG bytes drawn and health-tested for each reseed.
pub const RESEED_SAMPLES: usize = 64;

const SEED_DOMAIN: &[u8] = b"pkms nRF52840 DRBG seed v1";
const RESEED_DOMAIN: &[u8] = b"pkms nRF52840 DRBG reseed v1";

/// ChaCha20 DRBG over a true random source `T` whose output is health-tested.
pub struct Drbg<T> {
    trng: T,
    chacha: ChaCha20Rng,
    since_reseed: usize,
    health: HealthTests,
    failure: Option<HealthTestFailure>,
    /// The start-up test failed: there is no seed, and nothing comes out but zeros.
    unseeded: bool,
}

impl<T: RngCore> Drbg<T> {
    /// Seeds the DRBG from [`STARTUP_SAMPLES`] health-tested TRNG bytes, or returns the health
    /// test they failed.
    pub fn new(trng: T) -> Result<Self, HealthTestFailure> {
        let drbg = Self::start(trng);
        drbg.health().map(|()| drbg)
    }

    /// As [`Drbg::new`], but a failed start-up still gives a generator: an unseeded one, whose
    /// [`Drbg::health`] reports the failure, whose `try_fill_bytes` refuses and whose
    /// `fill_bytes` gives only zeros. The board hands it to the token core's error state, which
    /// never draws from it (`Token::in_error_state`).
    pub fn start(mut trng: T) -> Self {
        let mut health = HealthTests::new();
        let mut hash = Sha256::new_with_prefix(SEED_DOMAIN);
        let mut chunk = [0u8; 64];
        let mut result = Ok(());
        for _ in 0..STARTUP_SAMPLES / chunk.len() {
            trng.fill_bytes(&mut chunk);
            result = health.check(&chunk);
            if result.is_err() {
                break;
            }
            hash.update(chunk);
        }
        chunk.zeroize();
        let mut seed: [u8; 32] = hash.finalize().into();
        let unseeded = result.is_err();
        if unseeded {
            seed.zeroize();
        }
        let chacha = ChaCha20Rng::from_seed(seed);
        seed.zeroize();
        Drbg { trng, chacha, since_reseed: 0, health, failure: result.err(), unseeded }
    }

    /// Mixes [`RESEED_SAMPLES`] fresh, health-tested TRNG bytes into the state now. If they fail
    /// a test (now or at an earlier reseed), the state is left as it was and the failure
    /// returned.
    pub fn reseed(&mut self) -> Result<(), HealthTestFailure> {
        self.since_reseed = 0;
        if let Some(failure) = self.failure {
            return Err(failure);
        }
        let mut fresh = [0u8; RESEED_SAMPLES];
        self.trng.fill_bytes(&mut fresh);
        if let Err(failure) = self.health.check(&fresh) {
            fresh.zeroize();
            self.failure = Some(failure);
            return Err(failure);
        }
        let mut mix = [0u8; 32];
        self.chacha.fill_bytes(&mut mix);
        let mut seed: [u8; 32] =
            Sha256::new_with_prefix(RESEED_DOMAIN).chain_update(fresh).chain_update(mix).finalize().into();
        self.chacha = ChaCha20Rng::from_seed(seed);
        seed.zeroize();
        mix.zeroize();
        fresh.zeroize();
        Ok(())
    }

    /// `Err` once a reseed's TRNG output failed a health test (the start-up test failing means
    /// there is no `Drbg` at all).
    pub fn health(&self) -> Result<(), HealthTestFailure> {
        match self.failure {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
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
    /// the middle of a long request. (After a failed reseed the output continues from the
    /// state; [`Drbg::health`] says so.)
    fn fill_bytes(&mut self, mut dest: &mut [u8]) {
        if self.unseeded {
            dest.fill(0);
            return;
        }
        while !dest.is_empty() {
            if self.since_reseed >= RESEED_INTERVAL {
                // A failure is kept in `self.failure`.
                let _ = self.reseed();
            }
            let n = dest.len().min(RESEED_INTERVAL - self.since_reseed);
            let (now, rest) = dest.split_at_mut(n);
            self.chacha.fill_bytes(now);
            self.since_reseed += n;
            dest = rest;
        }
    }

    /// As [`fill_bytes`](Self::fill_bytes), but refuses (writing nothing) once a health test has
    /// failed.
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        if self.failure.is_some() {
            dest.zeroize();
            return Err(rand_core::Error::from(ENTROPY_FAILURE));
        }
        Ok(())
    }
}

/// The `rand_core` error code `try_fill_bytes` returns after a health test failed.
pub const ENTROPY_FAILURE: core::num::NonZeroU32 =
    match core::num::NonZeroU32::new(rand_core::Error::CUSTOM_START + 0x90B) {
        Some(code) => code,
        None => panic!("a non-zero constant"),
    };

impl<T: RngCore> CryptoRng for Drbg<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    /// A fake TRNG: a counter pattern, stuck at one value, biased (one value at every fourth
    /// sample, the others pseudo-random), or pseudo-random; counting the bytes drawn. It can
    /// turn stuck after a number of bytes.
    struct FakeTrng {
        kind: Kind,
        next: u8,
        state: u64,
        drawn: usize,
        stuck_after: Option<usize>,
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Counter,
        Stuck,
        Biased,
        Random,
    }

    impl FakeTrng {
        fn new(kind: Kind, seed: u64) -> Self {
            FakeTrng { kind, next: seed as u8, state: seed, drawn: 0, stuck_after: None }
        }

        fn random_byte(&mut self) -> u8 {
            self.state = self.state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.state >> 56) as u8
        }
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
                let stuck = self.stuck_after.is_some_and(|n| self.drawn >= n);
                *b = match (self.kind, stuck) {
                    (_, true) | (Kind::Stuck, false) => 0x5A,
                    (Kind::Counter, false) => {
                        self.next = self.next.wrapping_add(1);
                        self.next
                    }
                    (Kind::Biased, false) if self.drawn.is_multiple_of(4) => 0xB1,
                    (Kind::Biased | Kind::Random, false) => loop {
                        // Never the biased value: that one comes only where the bias puts it.
                        let r = self.random_byte();
                        if r != 0xB1 {
                            break r;
                        }
                    },
                };
                self.drawn += 1;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    fn trng(start: u8) -> FakeTrng {
        FakeTrng::new(Kind::Counter, u64::from(start))
    }

    #[test]
    fn seeds_with_sha256_of_1024_health_tested_trng_bytes() {
        let mut d = Drbg::new(trng(0)).unwrap();
        assert_eq!(d.trng.drawn, STARTUP_SAMPLES);
        let samples: Vec<u8> = (1..=STARTUP_SAMPLES).map(|i| i as u8).collect();
        let seed: [u8; 32] = Sha256::new_with_prefix(SEED_DOMAIN).chain_update(&samples).finalize().into();
        let mut reference = ChaCha20Rng::from_seed(seed);
        let (mut a, mut b) = ([0u8; 100], [0u8; 100]);
        d.fill_bytes(&mut a);
        reference.fill_bytes(&mut b);
        assert_eq!(a, b);
        assert_eq!(d.health(), Ok(()));
    }

    #[test]
    fn different_trng_output_gives_a_different_stream() {
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        Drbg::new(trng(0)).unwrap().fill_bytes(&mut a);
        Drbg::new(trng(1)).unwrap().fill_bytes(&mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn a_stuck_trng_fails_the_repetition_count_test_at_start_up() {
        let mut t = FakeTrng::new(Kind::Stuck, 0);
        t.stuck_after = Some(0);
        let Err(failure) = Drbg::new(t) else { panic!("a stuck TRNG seeded the DRBG") };
        assert_eq!(failure, HealthTestFailure::RepetitionCount);
        // It stops at once: no more than a chunk is drawn from a failing source.
        let mut t = FakeTrng::new(Kind::Stuck, 0);
        assert!(Drbg::new(&mut t).is_err());
        assert!(t.drawn <= 64, "drew {}", t.drawn);
    }

    #[test]
    fn a_trng_that_sticks_during_start_up_fails_it() {
        let mut t = FakeTrng::new(Kind::Random, 3);
        t.stuck_after = Some(700);
        assert_eq!(Drbg::new(t).err(), Some(HealthTestFailure::RepetitionCount));
    }

    /// A start-up failure that still hands the board a generator: unseeded, reporting the
    /// failure, refusing `try_fill_bytes`, and giving nothing but zeros from `fill_bytes`.
    #[test]
    fn a_failed_start_gives_an_unseeded_generator_that_says_so() {
        let mut stuck = FakeTrng::new(Kind::Stuck, 0);
        stuck.stuck_after = Some(0);
        let mut d = Drbg::start(stuck);
        assert!(d.health().is_err());
        let mut out = [0x55u8; 64];
        assert!(d.try_fill_bytes(&mut out).is_err());
        assert_eq!(out, [0; 64]);
        let mut out = [0x55u8; 64];
        d.fill_bytes(&mut out);
        assert_eq!(out, [0; 64]);
        let healthy = Drbg::start(trng(3));
        assert_eq!(healthy.health(), Ok(()));
    }

    #[test]
    fn a_biased_trng_fails_the_adaptive_proportion_test_at_start_up() {
        // One value at every fourth sample: 128 per 512-sample window, far above the cutoff.
        let Err(failure) = Drbg::new(FakeTrng::new(Kind::Biased, 9)) else {
            panic!("a biased TRNG seeded the DRBG")
        };
        assert_eq!(failure, HealthTestFailure::AdaptiveProportion);
    }

    #[test]
    fn healthy_random_trngs_pass() {
        for seed in 0..200 {
            let d = Drbg::new(FakeTrng::new(Kind::Random, seed)).map_err(|e| (seed, e));
            assert!(d.is_ok(), "{d:?}", d = d.err());
        }
    }

    #[test]
    fn reseeds_after_the_interval_even_inside_one_request() {
        let mut d = Drbg::new(trng(0)).unwrap();
        let mut buf = vec![0u8; RESEED_INTERVAL];
        d.fill_bytes(&mut buf);
        assert_eq!(d.trng.drawn, STARTUP_SAMPLES, "no reseed within the interval");
        let mut one = [0u8; 1];
        d.fill_bytes(&mut one);
        assert_eq!(d.trng.drawn, STARTUP_SAMPLES + RESEED_SAMPLES, "reseeded before the next byte");
        let mut long = vec![0u8; 2 * RESEED_INTERVAL + 10];
        d.fill_bytes(&mut long);
        assert_eq!(
            d.trng.drawn,
            STARTUP_SAMPLES + 3 * RESEED_SAMPLES,
            "two more reseeds inside one long request"
        );
        assert_eq!(d.bytes_since_reseed(), 11);
        assert_eq!(d.health(), Ok(()));
    }

    #[test]
    fn a_trng_that_fails_after_boot_is_reported_and_not_used() {
        let mut t = FakeTrng::new(Kind::Random, 9);
        t.stuck_after = Some(STARTUP_SAMPLES + 10);
        let mut d = Drbg::new(t).unwrap();
        assert_eq!(d.reseed(), Err(HealthTestFailure::RepetitionCount));
        assert_eq!(d.health(), Err(HealthTestFailure::RepetitionCount));
        let drawn = d.trng.drawn;
        // Not retried, and the failure stays.
        assert_eq!(d.reseed(), Err(HealthTestFailure::RepetitionCount));
        let mut big = vec![0u8; 3 * RESEED_INTERVAL];
        d.fill_bytes(&mut big);
        assert_eq!(d.trng.drawn, drawn, "a failed TRNG is not drawn on again");
        // The state was not reset to anything known: not a stream keyed with the stuck bytes.
        let mut out = [0u8; 64];
        d.fill_bytes(&mut out);
        let mut stuck_seeded = [0u8; 64];
        ChaCha20Rng::from_seed([0x5A; 32]).fill_bytes(&mut stuck_seeded);
        assert_ne!(out, stuck_seeded);
        // try_fill_bytes refuses and writes nothing.
        let mut buf = [0xEEu8; 16];
        let err = d.try_fill_bytes(&mut buf).unwrap_err();
        assert_eq!(err.code(), Some(ENTROPY_FAILURE));
        assert_eq!(buf, [0; 16]);
    }

    /// What the token asks before each request: an empty draw refuses once a reseed failed.
    #[test]
    fn an_empty_draw_reports_a_failed_reseed() {
        let mut t = FakeTrng::new(Kind::Random, 11);
        t.stuck_after = Some(STARTUP_SAMPLES + 10);
        let mut d = Drbg::new(t).unwrap();
        assert!(d.try_fill_bytes(&mut []).is_ok(), "a healthy generator refused an empty draw");
        let mut big = vec![0u8; RESEED_INTERVAL + 1];
        d.fill_bytes(&mut big);
        assert_eq!(d.health(), Err(HealthTestFailure::RepetitionCount));
        assert!(d.try_fill_bytes(&mut []).is_err(), "an empty draw hid the failed reseed");
    }

    /// A token over the DRBG: a reseed that fails its health test in the middle of a boot puts
    /// the token in the error state at the next request.
    #[test]
    fn a_token_whose_reseed_fails_refuses_key_operations_from_the_next_request() {
        use pkms_firmware::mock_flash::MockFlash;
        use pkms_firmware::{Parts, TestBoard, Token};
        use pkms_protocol::messages::{Request, RequestFrame, Response};
        use pkms_protocol::{request, ErrorCode};

        fn call(
            token: &mut Token<Parts<MockFlash, Drbg<FakeTrng>, TestBoard>>,
            request: Request<'_>,
        ) -> Result<(), ErrorCode> {
            let frame = RequestFrame { id: 1, now: None, request };
            let mut buf = vec![0u8; pkms_protocol::limits::MAX_FRAME];
            let n = postcard::to_slice(&frame, &mut buf).unwrap().len();
            let mut out = vec![0u8; pkms_protocol::limits::MAX_ENCODED_FRAME];
            let m = token.handle_payload(&mut buf[..n], &mut out);
            let len = pkms_protocol::framing::cobs_decode_in_place(&mut out[..m - 1]).unwrap().len();
            let answer = match pkms_protocol::framing::decode_response(&out[..len]).unwrap().result {
                Ok(Response::Random(_)) => Ok(()),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e.code),
            };
            answer
        }
        let random = || Request::GenerateRandom(request::GenerateRandom { number_of_bytes: 1024 });

        let mut t = FakeTrng::new(Kind::Random, 12);
        t.stuck_after = Some(STARTUP_SAMPLES + 10);
        let mut token = Token::new(MockFlash::new(64 * 1024), Drbg::new(t).unwrap(), TestBoard::new());
        // Enough output to pass the reseed interval: the reseed fails inside one of these.
        let mut served = 0;
        while call(&mut token, random()).is_ok() {
            served += 1;
            assert!(served <= RESEED_INTERVAL / 1024 + 2, "the failed reseed was never noticed");
        }
        assert!(served >= RESEED_INTERVAL / 1024 - 2, "refused before the reseed: {served}");
        assert_eq!(call(&mut token, random()), Err(ErrorCode::SelfTestFailed));
        assert_eq!(token.self_tests(), pkms_protocol::SelfTests::Failed(pkms_protocol::SelfTest::Drbg));
    }

    #[test]
    fn a_reseed_is_sha256_of_fresh_trng_bytes_and_drbg_output() {
        let mut d = Drbg::new(trng(0)).unwrap();
        let mut shadow = Drbg::new(trng(0)).unwrap();
        d.reseed().unwrap();
        let fresh: Vec<u8> =
            (STARTUP_SAMPLES + 1..=STARTUP_SAMPLES + RESEED_SAMPLES).map(|i| i as u8).collect();
        let mut mix = [0u8; 32];
        shadow.chacha.fill_bytes(&mut mix);
        let seed: [u8; 32] =
            Sha256::new_with_prefix(RESEED_DOMAIN).chain_update(&fresh).chain_update(mix).finalize().into();
        let (mut a, mut b) = ([0u8; 48], [0u8; 48]);
        d.fill_bytes(&mut a);
        ChaCha20Rng::from_seed(seed).fill_bytes(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn next_words_come_from_the_stream() {
        let mut d = Drbg::new(trng(0)).unwrap();
        let mut reference = Drbg::new(trng(0)).unwrap();
        let mut b = [0u8; 12];
        reference.fill_bytes(&mut b);
        assert_eq!(d.next_u32(), u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        assert_eq!(d.next_u64(), u64::from_le_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]));
        let mut c = [0u8; 4];
        d.try_fill_bytes(&mut c).unwrap();
    }
}
