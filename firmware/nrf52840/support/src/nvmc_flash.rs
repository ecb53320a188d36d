//! The key store's flash region behind `NorFlash`, over the nRF52840's NVMC.
//!
//! [`NvmcRegion`] exposes a page-aligned window `[start, start + len)` of the on-chip flash as a
//! NOR flash whose offsets start at 0. Every rule is checked here, before the hardware is touched,
//! so that the checks run (and are tested) on the host against any [`RawNvmc`]:
//!
//! * bounds: an operation must lie entirely inside the window (offset + length never wraps);
//! * alignment: reads anywhere ([`READ_SIZE`](ReadNorFlash::READ_SIZE) 1); writes on whole 32-bit
//!   words ([`WORD_SIZE`]), the NVMC's programming unit; erases on whole 4 KiB pages
//!   ([`PAGE_SIZE`]);
//! * bits: a write may only clear bits. A write that would need a 0 to become 1 is refused as
//!   [`NvmcError::NotErased`] before anything is programmed;
//! * verification: written words and erased pages are read back; a mismatch (a worn or faulty
//!   cell, power trouble) is [`NvmcError::Verify`].
//!
//! Words whose content would not change are not programmed again: the nRF52840 allows each
//! word to be written at most twice between erases (nWRITE = 2, product specification §4.3.9).
//! Error precedence matches `pkms_firmware::mock_flash::MockFlash`: bounds, then alignment,
//! then the bit rule.

use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// The NVMC's erase unit.
pub const PAGE_SIZE: usize = 4096;
/// The NVMC's programming unit.
pub const WORD_SIZE: usize = 4;
/// Bytes handled per step when checking, writing and verifying (bounds stack use).
const STEP: usize = 64;

/// Raw access to the flash at absolute addresses. [`NvmcRegion`] calls it only with arguments
/// that obey the rules above, so implementations need not check them again.
pub trait RawNvmc {
    /// Reads `buf.len()` bytes at absolute `address`.
    fn read(&mut self, address: u32, buf: &mut [u8]);
    /// Programs whole words at absolute `address` (word aligned; `data.len()` a multiple of
    /// [`WORD_SIZE`]; every bit set in `data` is still set in the flash).
    fn write_words(&mut self, address: u32, data: &[u8]);
    /// Erases the page at absolute `address` (page aligned) to 0xFF.
    fn erase_page(&mut self, address: u32);
}

/// Why a flash operation was refused or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NvmcError {
    /// Not on a word (write) or page (erase) boundary.
    NotAligned,
    /// Outside the region, or the end before the start.
    OutOfBounds,
    /// The write needs a bit to go from 0 to 1: erase the page first.
    NotErased,
    /// Read-back after a write or erase did not match.
    Verify,
}

impl NorFlashError for NvmcError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            NvmcError::NotAligned => NorFlashErrorKind::NotAligned,
            NvmcError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            NvmcError::NotErased | NvmcError::Verify => NorFlashErrorKind::Other,
        }
    }
}

/// A page-aligned window of the flash as a `NorFlash` with offsets from 0.
pub struct NvmcRegion<N> {
    nvmc: N,
    start: u32,
    len: u32,
}

impl<N: RawNvmc> NvmcRegion<N> {
    /// The window `[start, start + len)`. Refused unless `start` and `len` are page multiples,
    /// `len` is not zero and the end fits in 32 bits.
    pub fn new(nvmc: N, start: u32, len: u32) -> Result<Self, NvmcError> {
        if !(start as usize).is_multiple_of(PAGE_SIZE) || !(len as usize).is_multiple_of(PAGE_SIZE) {
            return Err(NvmcError::NotAligned);
        }
        if len == 0 || start.checked_add(len).is_none() {
            return Err(NvmcError::OutOfBounds);
        }
        Ok(NvmcRegion { nvmc, start, len })
    }

    /// Absolute address of the window's first byte.
    pub fn start(&self) -> u32 {
        self.start
    }

    /// The raw flash, back.
    pub fn into_inner(self) -> N {
        self.nvmc
    }

    /// Checks `[offset, offset + len)` lies in the window and is `align`-aligned; returns the
    /// absolute start address.
    fn check(&self, offset: u32, len: usize, align: usize) -> Result<u32, NvmcError> {
        let len32 = u32::try_from(len).map_err(|_| NvmcError::OutOfBounds)?;
        let end = offset.checked_add(len32).ok_or(NvmcError::OutOfBounds)?;
        if end > self.len {
            return Err(NvmcError::OutOfBounds);
        }
        if !(offset as usize).is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(NvmcError::NotAligned);
        }
        Ok(self.start + offset)
    }
}

impl<N: RawNvmc> ErrorType for NvmcRegion<N> {
    type Error = NvmcError;
}

impl<N: RawNvmc> ReadNorFlash for NvmcRegion<N> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), NvmcError> {
        let address = self.check(offset, bytes.len(), 1)?;
        self.nvmc.read(address, bytes);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.len as usize
    }
}

impl<N: RawNvmc> NorFlash for NvmcRegion<N> {
    const WRITE_SIZE: usize = WORD_SIZE;
    const ERASE_SIZE: usize = PAGE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), NvmcError> {
        let len = to.checked_sub(from).ok_or(NvmcError::OutOfBounds)?;
        let first = self.check(from, len as usize, PAGE_SIZE)?;
        let mut page = [0u8; STEP];
        for address in (first..first + len).step_by(PAGE_SIZE) {
            self.nvmc.erase_page(address);
            for part in (address..address + PAGE_SIZE as u32).step_by(STEP) {
                self.nvmc.read(part, &mut page);
                if page.iter().any(|&b| b != 0xFF) {
                    return Err(NvmcError::Verify);
                }
            }
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), NvmcError> {
        let first = self.check(offset, bytes.len(), WORD_SIZE)?;
        let mut current = [0u8; STEP];
        // Pass 1: refuse the whole write if any bit would have to go from 0 to 1.
        for (i, data) in bytes.chunks(STEP).enumerate() {
            let now = &mut current[..data.len()];
            self.nvmc.read(first + (i * STEP) as u32, now);
            if now.iter().zip(data).any(|(old, new)| !old & new != 0) {
                return Err(NvmcError::NotErased);
            }
        }
        // Pass 2: program the words that change, then read back.
        for (i, data) in bytes.chunks(STEP).enumerate() {
            let base = first + (i * STEP) as u32;
            let now = &mut current[..data.len()];
            self.nvmc.read(base, now);
            for (w, word) in data.chunks(WORD_SIZE).enumerate() {
                let at = w * WORD_SIZE;
                if now[at..at + WORD_SIZE] != *word {
                    self.nvmc.write_words(base + at as u32, word);
                }
            }
            self.nvmc.read(base, now);
            if now != data {
                return Err(NvmcError::Verify);
            }
        }
        Ok(())
    }
}

/// Clearing further bits of written words is allowed, as on any NOR flash; on the nRF52840 each
/// word may be programmed at most twice between erases, and unchanged words are skipped.
impl<N: RawNvmc> MultiwriteNorFlash for NvmcRegion<N> {}

#[cfg(test)]
mod tests {
    use super::*;
    use pkms_firmware::mock_flash::MockFlash;
    use std::vec;
    use std::vec::Vec;

    /// A simulated NVMC: the whole 1 MiB address space, enforcing the hardware's alignment rules
    /// with assertions (so a rule the adapter forgets to check fails the test), and counting word
    /// programs since the last erase (the hardware allows two: nWRITE = 2).
    struct SimNvmc {
        mem: Vec<u8>,
        programs: Vec<u8>,
        erases: usize,
        words_written: usize,
        /// Flip this absolute address's lowest bit back to 1 after each write (a bad cell).
        stuck_bit_at: Option<u32>,
    }

    const FLASH: usize = 1 << 20;

    impl SimNvmc {
        fn new() -> Self {
            SimNvmc {
                mem: vec![0xFF; FLASH],
                programs: vec![0; FLASH / 4],
                erases: 0,
                words_written: 0,
                stuck_bit_at: None,
            }
        }
    }

    impl RawNvmc for SimNvmc {
        fn read(&mut self, address: u32, buf: &mut [u8]) {
            let a = address as usize;
            buf.copy_from_slice(&self.mem[a..a + buf.len()]);
        }
        fn write_words(&mut self, address: u32, data: &[u8]) {
            let a = address as usize;
            assert_eq!(a % 4, 0, "unaligned program");
            assert_eq!(data.len() % 4, 0, "partial word program");
            for (i, word) in data.chunks(4).enumerate() {
                let w = a / 4 + i;
                self.programs[w] = self.programs[w].saturating_add(1);
                for (j, b) in word.iter().enumerate() {
                    self.mem[a + i * 4 + j] &= b;
                }
                self.words_written += 1;
            }
            if let Some(stuck) = self.stuck_bit_at {
                self.mem[stuck as usize] |= 1;
            }
        }
        fn erase_page(&mut self, address: u32) {
            let a = address as usize;
            assert_eq!(a % PAGE_SIZE, 0, "unaligned erase");
            self.mem[a..a + PAGE_SIZE].fill(0xFF);
            self.programs[a / 4..(a + PAGE_SIZE) / 4].fill(0);
            self.erases += 1;
        }
    }

    const START: u32 = 0xE0000;
    const LEN: u32 = 0x20000;

    fn region() -> NvmcRegion<SimNvmc> {
        NvmcRegion::new(SimNvmc::new(), START, LEN).unwrap()
    }

    #[test]
    fn region_must_be_page_aligned_and_non_empty() {
        assert_eq!(NvmcRegion::new(SimNvmc::new(), 0xE0004, LEN).err(), Some(NvmcError::NotAligned));
        assert_eq!(NvmcRegion::new(SimNvmc::new(), START, 100).err(), Some(NvmcError::NotAligned));
        assert_eq!(NvmcRegion::new(SimNvmc::new(), START, 0).err(), Some(NvmcError::OutOfBounds));
        assert_eq!(NvmcRegion::new(SimNvmc::new(), 0xFFFF_F000, 0x2000).err(), Some(NvmcError::OutOfBounds));
        let r = region();
        assert_eq!(r.capacity(), LEN as usize);
        assert_eq!(r.start(), START);
    }

    #[test]
    fn offsets_are_relative_to_the_region_start() {
        let mut r = region();
        r.write(8, &[1, 2, 3, 4]).unwrap();
        let sim = r.into_inner();
        assert_eq!(&sim.mem[START as usize + 8..START as usize + 12], &[1, 2, 3, 4]);
        assert!(
            sim.mem[..START as usize].iter().all(|&b| b == 0xFF),
            "nothing outside the region is touched"
        );
    }

    #[test]
    fn writes_must_be_whole_words() {
        let mut r = region();
        assert_eq!(r.write(1, &[0; 4]), Err(NvmcError::NotAligned));
        assert_eq!(r.write(0, &[0; 3]), Err(NvmcError::NotAligned));
        assert_eq!(r.write(2, &[0; 6]), Err(NvmcError::NotAligned));
        assert_eq!(r.into_inner().words_written, 0);
    }

    #[test]
    fn erases_must_be_whole_pages_in_order() {
        let mut r = region();
        assert_eq!(r.erase(0, 100), Err(NvmcError::NotAligned));
        assert_eq!(r.erase(4, 4096), Err(NvmcError::NotAligned));
        assert_eq!(r.erase(8192, 4096), Err(NvmcError::OutOfBounds));
        assert_eq!(r.erase(0, LEN + 4096), Err(NvmcError::OutOfBounds));
        assert_eq!(r.into_inner().erases, 0);
    }

    #[test]
    fn nothing_outside_the_region_is_reachable() {
        let mut r = region();
        let mut buf = [0u8; 8];
        assert_eq!(r.read(LEN - 4, &mut buf), Err(NvmcError::OutOfBounds));
        assert_eq!(
            r.read(u32::MAX - 2, &mut buf),
            Err(NvmcError::OutOfBounds),
            "offset + length must not wrap"
        );
        assert_eq!(r.write(LEN, &[0; 4]), Err(NvmcError::OutOfBounds));
        assert_eq!(r.write(u32::MAX - 3, &[0; 8]), Err(NvmcError::OutOfBounds));
        assert_eq!(r.erase(LEN, LEN + PAGE_SIZE as u32), Err(NvmcError::OutOfBounds));
        r.read(LEN - 8, &mut buf).unwrap();
        r.read(3, &mut buf[..5]).unwrap(); // reads need no alignment
        assert_eq!(r.into_inner().erases, 0);
    }

    #[test]
    fn a_write_that_sets_bits_is_refused_before_anything_is_programmed() {
        let mut r = region();
        r.write(0, &[0x0F, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00]).unwrap();
        let before = r.into_inner();
        let written = before.words_written;
        let mut r = NvmcRegion::new(before, START, LEN).unwrap();
        // The first word could be written (clears bits) but the second needs 0 -> 1.
        assert_eq!(r.write(0, &[0x0E, 0xFF, 0xFF, 0xFF, 0x01, 0x00, 0x00, 0x00]), Err(NvmcError::NotErased));
        let sim = r.into_inner();
        assert_eq!(sim.words_written, written, "no word was programmed");
        assert_eq!(sim.mem[START as usize], 0x0F);
    }

    #[test]
    fn clearing_more_bits_works_and_unchanged_words_are_not_reprogrammed() {
        let mut r = region();
        r.write(0, &[0xF0, 0xFF, 0xFF, 0xFF, 0xAA, 0xAA, 0xAA, 0xAA]).unwrap();
        // Same second word, first word clears more bits: only one word is programmed.
        r.write(0, &[0x00, 0xFF, 0xFF, 0xFF, 0xAA, 0xAA, 0xAA, 0xAA]).unwrap();
        // A third identical write programs nothing (nWRITE stays within 2).
        r.write(0, &[0x00, 0xFF, 0xFF, 0xFF, 0xAA, 0xAA, 0xAA, 0xAA]).unwrap();
        let mut buf = [0u8; 8];
        r.read(0, &mut buf).unwrap();
        assert_eq!(buf, [0x00, 0xFF, 0xFF, 0xFF, 0xAA, 0xAA, 0xAA, 0xAA]);
        let sim = r.into_inner();
        assert_eq!(sim.words_written, 3);
        assert_eq!(sim.programs[START as usize / 4], 2, "first word: two programs");
        assert_eq!(sim.programs[START as usize / 4 + 1], 1, "second word: one program");
    }

    #[test]
    fn erase_restores_ff_and_allows_rewriting() {
        let mut r = region();
        r.write(4096, &[0u8; 64]).unwrap();
        assert_eq!(r.write(4096, &[0xFF; 4]), Err(NvmcError::NotErased));
        r.erase(4096, 8192).unwrap();
        let mut buf = [0u8; 64];
        r.read(4096, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0xFF));
        r.write(4096, &[0x12; 64]).unwrap();
        assert_eq!(r.into_inner().erases, 1);
    }

    #[test]
    fn a_cell_that_does_not_program_is_reported() {
        let mut sim = SimNvmc::new();
        sim.stuck_bit_at = Some(START + 4);
        let mut r = NvmcRegion::new(sim, START, LEN).unwrap();
        assert_eq!(r.write(4, &[0x00, 0x00, 0x00, 0x00]), Err(NvmcError::Verify));
    }

    #[test]
    fn error_kinds_map_to_embedded_storage() {
        assert_eq!(NvmcError::NotAligned.kind(), NorFlashErrorKind::NotAligned);
        assert_eq!(NvmcError::OutOfBounds.kind(), NorFlashErrorKind::OutOfBounds);
        assert_eq!(NvmcError::NotErased.kind(), NorFlashErrorKind::Other);
    }

    /// A small deterministic generator for the differential test.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) as u32
        }
    }

    /// The adapter behaves like the NOR mock the token core is tested on: the same operations
    /// give the same results and leave the same bytes, including the refused ones.
    #[test]
    fn behaves_like_the_core_nor_mock() {
        const SMALL: u32 = 4 * PAGE_SIZE as u32;
        let mut r = NvmcRegion::new(SimNvmc::new(), START, SMALL).unwrap();
        let mut mock = MockFlash::new(SMALL as usize);
        // Random writes program words any number of times; this compares the adapter's alignment,
        // bounds and bit rules with the mock's, not a store's write discipline.
        mock.set_program_limit(None);
        let mut rng = Lcg(7);
        let (mut oks, mut errs) = (0, 0);
        for step in 0..4000 {
            let op = rng.next() % 10;
            // Mostly aligned offsets, some not, some beyond the end.
            let offset = match rng.next() % 8 {
                0 => rng.next() % (SMALL + 64),
                _ => (rng.next() % (SMALL / 4)) * 4,
            };
            let len = match rng.next() % 6 {
                0 => rng.next() % 9,
                _ => (rng.next() % 33) * 4,
            } as usize;
            let (a, b) = if op == 0 {
                let from =
                    (rng.next() % 5) * PAGE_SIZE as u32 + if rng.next().is_multiple_of(8) { 4 } else { 0 };
                let to = from + (rng.next() % 3) * PAGE_SIZE as u32;
                (r.erase(from, to).map_err(|e| e.kind()), mock.erase(from, to).map_err(|e| e.kind()))
            } else if op < 6 {
                let data: Vec<u8> = (0..len)
                    .map(|_| {
                        if rng.next().is_multiple_of(4) {
                            0xFF
                        } else {
                            rng.next() as u8 & rng.next() as u8
                        }
                    })
                    .collect();
                (
                    r.write(offset, &data).map_err(|e| e.kind()),
                    mock.write(offset, &data).map_err(|e| e.kind()),
                )
            } else {
                let mut x = vec![0u8; len];
                let mut y = vec![0u8; len];
                let res = (
                    r.read(offset, &mut x).map_err(|e| e.kind()),
                    mock.read(offset, &mut y).map_err(|e| e.kind()),
                );
                assert_eq!(x, y, "step {step}: reads differ");
                res
            };
            assert_eq!(a, b, "step {step}: op {op} offset {offset} len {len}");
            if a.is_ok() {
                oks += 1
            } else {
                errs += 1
            }
        }
        let mut all = vec![0u8; SMALL as usize];
        r.read(0, &mut all).unwrap();
        assert_eq!(all, mock.as_bytes(), "contents differ after the run");
        assert!(oks > 500 && errs > 500, "both outcomes exercised: {oks} ok, {errs} refused");
    }
}
