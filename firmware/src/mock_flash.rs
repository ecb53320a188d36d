//! A RAM NOR flash for host tests and the host library's in-process token.
//!
//! It enforces the rules real NOR flash imposes, and models what real NOR flash does when power
//! fails in the middle of an operation, so a store that passes its tests here does not rely on
//! anything the hardware would refuse or on a kindness it does not grant:
//!
//! * erasing sets a whole page ([`MockFlash::ERASE_SIZE`] bytes) to 0xFF;
//! * a write may only clear bits: writing a 1 over a 0 is [`MockFlashError::NotErased`];
//!   writing zeros over written data is allowed (what [`MultiwriteNorFlash`] promises);
//! * a 4-byte word may be programmed at most [`MockFlash::PROGRAM_LIMIT`] times between two
//!   erases of its page (the nRF52840's nWRITE): every word a write covers counts, whatever it
//!   writes, and so does a program that power cut short. A third program **panics** (it fails
//!   the test that caused it); [`MockFlash::set_program_limit`] lifts the rule for tests of
//!   something else;
//! * writes must start and end on [`MockFlash::WRITE_SIZE`] boundaries, erases on page
//!   boundaries, reads anywhere ([`MockFlash::READ_SIZE`] is 1).
//!
//! # Power cuts
//!
//! [`MockFlash::cut_power_after`] cuts power after a number of *cut points*: every byte a write
//! covers is one, every page an erase covers is [`MockFlash::ERASE_CUT_POINTS`]. The operation
//! that reaches the cut is applied in part and fails with [`MockFlashError::PowerCut`], and so
//! does every later write or erase until [`MockFlash::restore_power`]. Reads keep working, so a
//! test can inspect what reached the flash. What a cut leaves, for each position:
//!
//! * in a write, the words before the cut point are programmed. At the first cut point of a word
//!   the word is untouched; at its other three the word is *cut while programming*: some of the
//!   bits it was to clear are cleared and some are not (a pseudo-random choice, different at each
//!   point; with a single bit to clear, none is), and the word counts as programmed once more;
//! * in an erase, the pages before the cut are erased. At the first cut point of a page the page
//!   is untouched; at the other four the erase was interrupted and the page holds, as the erase
//!   progresses: a few of its 0 bits set back to 1 (each with probability 1/32: barely begun);
//!   each 0 bit set back to 1 with probability ½ (half done); arbitrary bytes; or 0xFF except a
//!   few bits that were 0 and stay 0 (each with probability 1/32: almost done). Words of such a
//!   page that do not read 0xFFFFFFFF may not be programmed again before the page is erased
//!   (programming one panics); words that do are as good as erased.
//!
//! The pseudo-random choices depend only on a seed ([`MockFlash::set_seed`]), the address and how
//! many cut points came before, so every run repeats exactly.
//!
//! It also counts erases per page, bytes written and cut points.

use std::vec;
use std::vec::Vec;

use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// Why a mock flash operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MockFlashError {
    /// Offset or length not aligned to the write or erase size.
    NotAligned,
    /// Outside the flash.
    OutOfBounds,
    /// A write tried to set a bit that is 0 back to 1 (needs an erase first).
    NotErased,
    /// Power was cut (see [`MockFlash::cut_power_after`]).
    PowerCut,
}

impl NorFlashError for MockFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            MockFlashError::NotAligned => NorFlashErrorKind::NotAligned,
            MockFlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            MockFlashError::NotErased | MockFlashError::PowerCut => NorFlashErrorKind::Other,
        }
    }
}

/// A NOR flash held in RAM. See the module documentation for the rules it enforces and what a
/// power cut leaves.
#[derive(Debug, Clone)]
pub struct MockFlash {
    data: Vec<u8>,
    /// Programs of each word since its page was erased ([`Self::PROGRAM_LIMIT`] after an
    /// interrupted erase left the word neither erased nor as it was).
    programs: Vec<u8>,
    erase_counts: Vec<u32>,
    bytes_written: u64,
    cut_points: u64,
    /// Cut points that may still pass before power is cut; `None`: never cut.
    budget: Option<u64>,
    power_cut: bool,
    program_limit: Option<u8>,
    seed: u64,
}

/// What an erase interrupted by a power cut leaves in a page.
#[derive(Clone, Copy)]
enum InterruptedErase {
    /// Each 0 bit back to 1 with probability 1/32.
    BarelyBegun,
    /// Each 0 bit back to 1 with probability ½.
    Partial,
    /// Arbitrary bytes.
    Arbitrary,
    /// 0xFF except a few bits that were 0.
    AlmostDone,
}

/// SplitMix64: a small, well-mixed pseudo-random function for the cut patterns.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl MockFlash {
    /// Reads may start anywhere and have any length.
    pub const READ_SIZE: usize = 1;
    /// Writes start and end on 4-byte boundaries.
    pub const WRITE_SIZE: usize = 4;
    /// Page (erase unit) size.
    pub const ERASE_SIZE: usize = 4096;
    /// Programs a word may take between two erases of its page (the nRF52840's nWRITE).
    pub const PROGRAM_LIMIT: u8 = 2;
    /// Cut points of one page erase (see the module documentation).
    pub const ERASE_CUT_POINTS: u64 = 5;

    const WORD: usize = 4;
    /// Program count of a word an interrupted erase left neither erased nor as it was.
    const UNERASED: u8 = u8::MAX;

    /// An erased (all 0xFF) flash of `capacity` bytes, rounded up to whole pages.
    pub fn new(capacity: usize) -> Self {
        let pages = capacity.div_ceil(Self::ERASE_SIZE);
        Self::with_data(vec![0xFF; pages * Self::ERASE_SIZE])
    }

    /// A flash holding `bytes` (e.g. read back from a file), padded with 0xFF to whole pages.
    /// Erase counts start at zero; a word that is not 0xFFFFFFFF counts as programmed once.
    pub fn from_bytes(mut bytes: Vec<u8>) -> Self {
        let pages = bytes.len().div_ceil(Self::ERASE_SIZE);
        bytes.resize(pages * Self::ERASE_SIZE, 0xFF);
        Self::with_data(bytes)
    }

    fn with_data(data: Vec<u8>) -> Self {
        let pages = data.len() / Self::ERASE_SIZE;
        let mut flash = MockFlash {
            programs: vec![0; data.len() / Self::WORD],
            data,
            erase_counts: vec![0; pages],
            bytes_written: 0,
            cut_points: 0,
            budget: None,
            power_cut: false,
            program_limit: Some(Self::PROGRAM_LIMIT),
            seed: 0x706B_6D73_666C_6173,
        };
        flash.programs_from_contents();
        flash
    }

    /// Sets each word's program count from its contents: 0 if erased, else 1.
    fn programs_from_contents(&mut self) {
        for (count, word) in self.programs.iter_mut().zip(self.data.chunks_exact(Self::WORD)) {
            *count = u8::from(word.iter().any(|&b| b != 0xFF));
        }
    }

    /// The contents, e.g. to persist them to a file.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }

    /// The contents.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// A copy of the contents.
    pub fn snapshot(&self) -> Vec<u8> {
        self.data.clone()
    }

    /// Replaces the contents with a snapshot of the same size (other sizes are padded with 0xFF
    /// or truncated). Program counts are set as [`Self::from_bytes`] sets them; erase counts and
    /// the power state are left as they are.
    pub fn restore(&mut self, snapshot: &[u8]) {
        let n = snapshot.len().min(self.data.len());
        self.data[..n].copy_from_slice(&snapshot[..n]);
        for b in &mut self.data[n..] {
            *b = 0xFF;
        }
        self.programs_from_contents();
    }

    /// Erases per page, indexed by page number (interrupted erases included).
    pub fn erase_counts(&self) -> &[u32] {
        &self.erase_counts
    }

    /// The erase count of the most-erased page.
    pub fn max_erase_count(&self) -> u32 {
        self.erase_counts.iter().copied().max().unwrap_or(0)
    }

    /// Bytes written since this mock was created (successful writes, and cut writes up to their
    /// cut point).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Cut points passed since this mock was created: one per byte written, [`Self::
    /// ERASE_CUT_POINTS`] per page erased (the unit of [`Self::cut_power_after`]).
    pub fn cut_points(&self) -> u64 {
        self.cut_points
    }

    /// The most programs any word has taken since its page was last erased.
    pub fn max_programs(&self) -> u8 {
        self.programs.iter().copied().filter(|&c| c != Self::UNERASED).max().unwrap_or(0)
    }

    /// Cuts power once `n` more cut points have passed (see the module documentation): the
    /// write or erase that reaches the cut is applied in part and fails, later writes and
    /// erases fail until [`Self::restore_power`]. `n == 0` cuts power before the next write or
    /// erase changes anything.
    pub fn cut_power_after(&mut self, n: u64) {
        self.budget = Some(n);
    }

    /// Whether power has been cut.
    pub fn is_power_cut(&self) -> bool {
        self.power_cut
    }

    /// Powers the flash up again and cancels any pending cut.
    pub fn restore_power(&mut self) {
        self.budget = None;
        self.power_cut = false;
    }

    /// Sets how many programs a word may take between erases (`None`: any number, for tests of
    /// something other than a store's write discipline). The default is [`Self::PROGRAM_LIMIT`].
    pub fn set_program_limit(&mut self, limit: Option<u8>) {
        self.program_limit = limit;
    }

    /// Sets the seed of the pseudo-random patterns a power cut leaves.
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<(usize, usize), MockFlashError> {
        let start = offset as usize;
        let end = start.checked_add(len).ok_or(MockFlashError::OutOfBounds)?;
        if end > self.data.len() {
            return Err(MockFlashError::OutOfBounds);
        }
        if !start.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(MockFlashError::NotAligned);
        }
        Ok((start, end))
    }

    /// A pseudo-random word for the cut at `address`, different for every cut point.
    fn noise(&self, address: usize, salt: u64) -> u64 {
        mix(self.seed ^ mix(self.cut_points.wrapping_mul(0x1_0000_0001) ^ ((address as u64) << 8) ^ salt))
    }

    /// Counts one more program of the word at `word_start`; panics if that breaks the limit.
    fn count_program(&mut self, word_start: usize) {
        let count = &mut self.programs[word_start / Self::WORD];
        let Some(limit) = self.program_limit else {
            *count = count.saturating_add(1).min(Self::UNERASED - 1);
            return;
        };
        assert!(
            *count != Self::UNERASED,
            "NOR flash rule broken: the word at {word_start:#x} was programmed, but an interrupted \
             erase left it neither erased nor as it was; erase its page first"
        );
        *count += 1;
        assert!(
            *count <= limit,
            "NOR flash rule broken: the word at {word_start:#x} was programmed {count} times since its \
             page was erased (at most {limit} allowed)"
        );
    }

    /// Takes `n` cut points from the budget; `Err(k)` if the cut comes `k` points in.
    fn spend(&mut self, n: u64) -> Result<(), u64> {
        match self.budget.as_mut() {
            Some(budget) if *budget < n => {
                let k = *budget;
                *budget = 0;
                Err(k)
            }
            Some(budget) => {
                *budget -= n;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// A word cut while programming (cut point `point`, 1 to 3, of the word): clears a
    /// pseudo-random, non-empty and incomplete part of the bits `new` was to clear (none if
    /// there is only one).
    fn program_cut_short(&mut self, start: usize, new: &[u8], point: u64) {
        let old = u32::from_le_bytes([
            self.data[start],
            self.data[start + 1],
            self.data[start + 2],
            self.data[start + 3],
        ]);
        let target = u32::from_le_bytes([new[0], new[1], new[2], new[3]]);
        let to_clear = old & !target;
        let mut cleared = 0;
        if to_clear.count_ones() >= 2 {
            cleared = to_clear & self.noise(start, point) as u32;
            if cleared == 0 {
                cleared = to_clear & to_clear.wrapping_neg(); // the lowest bit
            }
            if cleared == to_clear {
                cleared &= !(1 << (31 - to_clear.leading_zeros())); // all but the highest
            }
        }
        let now = (old & !cleared).to_le_bytes();
        self.data[start..start + Self::WORD].copy_from_slice(&now);
        self.count_program(start);
    }

    /// A page whose erase power cut short.
    fn interrupt_erase(&mut self, page: usize, how: InterruptedErase) {
        let base = page * Self::ERASE_SIZE;
        for w in (base..base + Self::ERASE_SIZE).step_by(Self::WORD) {
            let old =
                u32::from_le_bytes([self.data[w], self.data[w + 1], self.data[w + 2], self.data[w + 3]]);
            let r = self.noise(w, 0xE2A5E);
            // A mask whose bits are each 1 with probability 1/32 (five random bits all ones).
            let rare = || (1..=5).fold(!0u32, |m, salt| m & self.noise(w, 0xE2A5E + salt) as u32);
            let now = match how {
                InterruptedErase::BarelyBegun => old | rare(),
                InterruptedErase::Partial => old | r as u32,
                InterruptedErase::Arbitrary => r as u32,
                InterruptedErase::AlmostDone => old | !rare(),
            };
            self.data[w..w + Self::WORD].copy_from_slice(&now.to_le_bytes());
            self.programs[w / Self::WORD] = if now == u32::MAX { 0 } else { Self::UNERASED };
        }
        self.erase_counts[page] += 1;
    }
}

impl ErrorType for MockFlash {
    type Error = MockFlashError;
}

impl ReadNorFlash for MockFlash {
    const READ_SIZE: usize = Self::READ_SIZE;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let (start, end) = self.check(offset, bytes.len(), Self::READ_SIZE)?;
        bytes.copy_from_slice(&self.data[start..end]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl NorFlash for MockFlash {
    const WRITE_SIZE: usize = Self::WRITE_SIZE;
    const ERASE_SIZE: usize = Self::ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        if self.power_cut {
            return Err(MockFlashError::PowerCut);
        }
        let len = to.checked_sub(from).ok_or(MockFlashError::OutOfBounds)? as usize;
        let (start, end) = self.check(from, len, Self::ERASE_SIZE)?;
        for page in start / Self::ERASE_SIZE..end / Self::ERASE_SIZE {
            if let Err(k) = self.spend(Self::ERASE_CUT_POINTS) {
                self.power_cut = true;
                let how = match k {
                    0 => None,
                    1 => Some(InterruptedErase::BarelyBegun),
                    2 => Some(InterruptedErase::Partial),
                    3 => Some(InterruptedErase::Arbitrary),
                    _ => Some(InterruptedErase::AlmostDone),
                };
                if let Some(how) = how {
                    self.interrupt_erase(page, how);
                }
                self.cut_points += k;
                return Err(MockFlashError::PowerCut);
            }
            let base = page * Self::ERASE_SIZE;
            self.data[base..base + Self::ERASE_SIZE].fill(0xFF);
            self.programs[base / Self::WORD..(base + Self::ERASE_SIZE) / Self::WORD].fill(0);
            self.erase_counts[page] += 1;
            self.cut_points += Self::ERASE_CUT_POINTS;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        if self.power_cut {
            return Err(MockFlashError::PowerCut);
        }
        let (start, end) = self.check(offset, bytes.len(), Self::WRITE_SIZE)?;
        // NOR rule first: no bit may go from 0 to 1.
        for (old, new) in self.data[start..end].iter().zip(bytes) {
            if !*old & *new != 0 {
                return Err(MockFlashError::NotErased);
            }
        }
        for (i, new) in bytes.chunks_exact(Self::WORD).enumerate() {
            let at = start + i * Self::WORD;
            if let Err(k) = self.spend(Self::WORD as u64) {
                self.power_cut = true;
                if k > 0 {
                    self.program_cut_short(at, new, k);
                }
                self.bytes_written += (i * Self::WORD) as u64 + k;
                self.cut_points += (i * Self::WORD) as u64 + k;
                return Err(MockFlashError::PowerCut);
            }
            for (old, new) in self.data[at..at + Self::WORD].iter_mut().zip(new) {
                *old &= *new;
            }
            self.count_program(at);
        }
        self.bytes_written += bytes.len() as u64;
        self.cut_points += bytes.len() as u64;
        Ok(())
    }
}

impl MultiwriteNorFlash for MockFlash {}

#[cfg(test)]
mod tests;
