//! NIST SP 800-90B § 4.4 health tests on raw TRNG output: the repetition count test (RCT) and
//! the adaptive proportion test (APT), run on every 8-bit sample the DRBG draws.
//!
//! Their cutoffs follow from the min-entropy claimed per sample, [`CLAIMED_ENTROPY_BITS`], and the
//! false-positive probability α = 2⁻²⁰ (SP 800-90B recommends 2⁻⁴⁰ ≤ α ≤ 2⁻²⁰):
//!
//! * RCT: C = 1 + ⌈20 / H⌉ = 1 + 5 = **6**: six equal samples in a row fail;
//! * APT (window W = 512, the standard's size for non-binary samples): C = 1 + CRITBINOM(512,
//!   2⁻⁴, 1 − 2⁻²⁰) = **62**: the window's first sample seen 62 times among its 512 fails
//!   (SP 800-90B Table 2's value for H = 4).
//!
//! Nordic publishes no SP 800-90B entropy assessment of the nRF52840's RNG. The claim of 4 bits
//! per byte, half of the maximum, is deliberately low: a bias-corrected thermal-noise source
//! should deliver close to 8, so a healthy source practically never trips the tests (for a
//! uniform source the RCT fails with probability 2⁻⁴⁰ per sample and the APT with about 10⁻⁶⁸
//! per window), while a stuck source fails after 6 samples and a source that repeats one value
//! in a quarter of its output fails the first window that starts with that value. The DRBG
//! draws enough samples for that claim (see [`crate::drbg`]).
//!
//! The tests branch on whether samples are equal, so their timing depends on the seed material;
//! they run only while seeding, where no one outside the chip can time them.

/// Min-entropy claimed per 8-bit TRNG sample, in bits; the cutoffs below follow from it.
pub const CLAIMED_ENTROPY_BITS: u32 = 4;
/// Repetition count test: this many equal samples in a row is a failure.
pub const RCT_CUTOFF: u32 = 6;
/// Adaptive proportion test: samples per window.
pub const APT_WINDOW: u32 = 512;
/// Adaptive proportion test: the window's first sample seen this many times in the window is a
/// failure.
pub const APT_CUTOFF: u32 = 62;

/// Which health test the TRNG output failed. The token treats either as fatal: it stops serving
/// key operations (the source is stuck or badly biased).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthTestFailure {
    /// [`RCT_CUTOFF`] equal samples in a row (SP 800-90B § 4.4.1).
    RepetitionCount,
    /// One value [`APT_CUTOFF`] times in an [`APT_WINDOW`]-sample window (SP 800-90B § 4.4.2).
    AdaptiveProportion,
}

impl HealthTestFailure {
    /// A short name for reports (GetInfo's self-test result, logs).
    pub const fn name(self) -> &'static str {
        match self {
            HealthTestFailure::RepetitionCount => "TRNG repetition count test",
            HealthTestFailure::AdaptiveProportion => "TRNG adaptive proportion test",
        }
    }
}

impl core::fmt::Display for HealthTestFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The state of both tests over a stream of samples (kept across reseeds: the tests are
/// continuous).
#[derive(Debug, Clone)]
pub struct HealthTests {
    /// RCT: the last sample and how many times in a row it came (0 before the first sample).
    rct_value: u8,
    rct_run: u32,
    /// APT: the window's first sample, how often it came, and how many samples of the window
    /// were seen (0: the next sample starts a window).
    apt_value: u8,
    apt_count: u32,
    apt_seen: u32,
}

impl Default for HealthTests {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthTests {
    /// Both tests at the start of a stream.
    pub const fn new() -> Self {
        HealthTests { rct_value: 0, rct_run: 0, apt_value: 0, apt_count: 0, apt_seen: 0 }
    }

    /// Feeds one sample to both tests.
    pub fn sample(&mut self, x: u8) -> Result<(), HealthTestFailure> {
        if self.rct_run > 0 && x == self.rct_value {
            self.rct_run += 1;
            if self.rct_run >= RCT_CUTOFF {
                return Err(HealthTestFailure::RepetitionCount);
            }
        } else {
            self.rct_value = x;
            self.rct_run = 1;
        }
        if self.apt_seen == 0 {
            self.apt_value = x;
            self.apt_count = 1;
        } else if x == self.apt_value {
            self.apt_count += 1;
            if self.apt_count >= APT_CUTOFF {
                return Err(HealthTestFailure::AdaptiveProportion);
            }
        }
        self.apt_seen += 1;
        if self.apt_seen == APT_WINDOW {
            self.apt_seen = 0;
        }
        Ok(())
    }

    /// Feeds every sample of `samples`, stopping at the first failure.
    pub fn check(&mut self, samples: &[u8]) -> Result<(), HealthTestFailure> {
        samples.iter().try_for_each(|&x| self.sample(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_equal_samples_in_a_row_pass_and_six_fail() {
        let mut t = HealthTests::new();
        t.check(&[7, 1, 1, 1, 1, 1, 2]).unwrap();
        assert_eq!(t.check(&[3, 3, 3, 3, 3, 3]), Err(HealthTestFailure::RepetitionCount));
        // The run carries over from one call to the next.
        let mut t = HealthTests::new();
        t.check(&[9, 9, 9]).unwrap();
        assert_eq!(t.check(&[9, 9, 9]), Err(HealthTestFailure::RepetitionCount));
    }

    #[test]
    fn the_first_sample_of_a_window_61_times_passes_and_62_times_fails() {
        // 0xAA at every other position of a window starting with it: no runs.
        let window = |hits: usize| -> [u8; 512] {
            let mut w = [0u8; 512];
            for (i, b) in w.iter_mut().enumerate() {
                *b = if i % 2 == 0 && i / 2 < hits { 0xAA } else { (i % 100) as u8 + 1 };
            }
            w
        };
        let mut t = HealthTests::new();
        t.check(&window(61)).unwrap();
        // The count starts again with the next window.
        t.check(&window(61)).unwrap();
        assert_eq!(HealthTests::new().check(&window(62)), Err(HealthTestFailure::AdaptiveProportion));
        // Only the window's first value is counted: another frequent value is not this test's.
        let mut w = window(100);
        w[0] = 0x55;
        HealthTests::new().check(&w).unwrap();
    }

    #[test]
    fn failures_have_names() {
        assert_eq!(HealthTestFailure::RepetitionCount.name(), "TRNG repetition count test");
        assert_eq!(
            std::format!("{}", HealthTestFailure::AdaptiveProportion),
            "TRNG adaptive proportion test"
        );
    }
}
