//! A RAM NOR flash for host tests and the host library's in-process token.
//!
//! It enforces the rules real NOR flash imposes, so a store that passes its tests here does not
//! rely on anything the hardware would refuse:
//!
//! * erasing sets a whole page ([`MockFlash::ERASE_SIZE`] bytes) to 0xFF;
//! * a write may only clear bits: writing a 1 over a 0 is [`MockFlashError::NotErased`];
//!   writing zeros over written data is allowed (what [`MultiwriteNorFlash`] promises);
//! * writes must start and end on [`MockFlash::WRITE_SIZE`] boundaries, erases on page
//!   boundaries, reads anywhere ([`MockFlash::READ_SIZE`] is 1).
//!
//! It counts erases per page and bytes written, and it can *cut power* after a chosen number of
//! further written bytes: the write that crosses the limit is applied only partly (byte by byte up
//! to the limit) and fails, and every later write or erase fails with
//! [`MockFlashError::PowerCut`] until [`MockFlash::restore_power`]. Reads keep working so a test
//! can inspect or snapshot what reached the flash.

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

/// A NOR flash held in RAM. See the module documentation for the rules it enforces.
#[derive(Debug, Clone)]
pub struct MockFlash {
    data: Vec<u8>,
    erase_counts: Vec<u32>,
    bytes_written: u64,
    /// Bytes that may still be written before power is cut; `None`: never cut.
    budget: Option<u64>,
    power_cut: bool,
}

impl MockFlash {
    /// Reads may start anywhere and have any length.
    pub const READ_SIZE: usize = 1;
    /// Writes start and end on 4-byte boundaries.
    pub const WRITE_SIZE: usize = 4;
    /// Page (erase unit) size.
    pub const ERASE_SIZE: usize = 4096;

    /// An erased (all 0xFF) flash of `capacity` bytes, rounded up to whole pages.
    pub fn new(capacity: usize) -> Self {
        let pages = capacity.div_ceil(Self::ERASE_SIZE);
        MockFlash {
            data: vec![0xFF; pages * Self::ERASE_SIZE],
            erase_counts: vec![0; pages],
            bytes_written: 0,
            budget: None,
            power_cut: false,
        }
    }

    /// A flash holding `bytes` (e.g. read back from a file), padded with 0xFF to whole pages.
    /// Erase counts start at zero.
    pub fn from_bytes(mut bytes: Vec<u8>) -> Self {
        let pages = bytes.len().div_ceil(Self::ERASE_SIZE);
        bytes.resize(pages * Self::ERASE_SIZE, 0xFF);
        MockFlash {
            data: bytes,
            erase_counts: vec![0; pages],
            bytes_written: 0,
            budget: None,
            power_cut: false,
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
    /// or truncated). Counters and the power state are left as they are.
    pub fn restore(&mut self, snapshot: &[u8]) {
        let n = snapshot.len().min(self.data.len());
        self.data[..n].copy_from_slice(&snapshot[..n]);
        for b in &mut self.data[n..] {
            *b = 0xFF;
        }
    }

    /// Erases per page, indexed by page number.
    pub fn erase_counts(&self) -> &[u32] {
        &self.erase_counts
    }

    /// The erase count of the most-erased page.
    pub fn max_erase_count(&self) -> u32 {
        self.erase_counts.iter().copied().max().unwrap_or(0)
    }

    /// Bytes written since this mock was created (successful or cut writes, as applied).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Cuts power once `n` more bytes have been written: the write that crosses the limit is
    /// applied up to it and fails (as does an erase attempted once the `n` bytes are written);
    /// later writes and erases fail until [`Self::restore_power`].
    /// `n == 0` cuts power before the next write changes anything.
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
        if self.budget == Some(0) {
            // The budget is spent: power is gone before this erase starts.
            self.power_cut = true;
        }
        if self.power_cut {
            return Err(MockFlashError::PowerCut);
        }
        let len = to.checked_sub(from).ok_or(MockFlashError::OutOfBounds)? as usize;
        let (start, end) = self.check(from, len, Self::ERASE_SIZE)?;
        for page in start / Self::ERASE_SIZE..end / Self::ERASE_SIZE {
            self.erase_counts[page] += 1;
        }
        for b in &mut self.data[start..end] {
            *b = 0xFF;
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
        for (i, (old, new)) in self.data[start..end].iter_mut().zip(bytes).enumerate() {
            if let Some(budget) = self.budget.as_mut() {
                if *budget == 0 {
                    self.power_cut = true;
                    self.bytes_written += i as u64;
                    return Err(MockFlashError::PowerCut);
                }
                *budget -= 1;
            }
            *old &= *new;
        }
        self.bytes_written += bytes.len() as u64;
        Ok(())
    }
}

impl MultiwriteNorFlash for MockFlash {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_flash_is_erased_and_page_sized() {
        let f = MockFlash::new(5000);
        assert_eq!(f.capacity(), 8192);
        assert!(f.as_bytes().iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn writes_only_clear_bits() {
        let mut f = MockFlash::new(4096);
        f.write(0, &[0xF0, 0x0F, 0xAA, 0x55]).unwrap();
        // Clearing more bits is fine (e.g. zeroing a record).
        f.write(0, &[0x00, 0x00, 0x00, 0x00]).unwrap();
        assert_eq!(&f.as_bytes()[..4], &[0, 0, 0, 0]);
        assert_eq!(f.write(0, &[0x01, 0, 0, 0]), Err(MockFlashError::NotErased));
        f.erase(0, 4096).unwrap();
        assert_eq!(f.erase_counts(), &[1]);
        f.write(0, &[0x01, 0, 0, 0]).unwrap();
    }

    #[test]
    fn alignment_and_bounds_are_checked() {
        let mut f = MockFlash::new(8192);
        assert_eq!(f.write(2, &[0; 4]), Err(MockFlashError::NotAligned));
        assert_eq!(f.write(0, &[0; 3]), Err(MockFlashError::NotAligned));
        assert_eq!(f.erase(0, 100), Err(MockFlashError::NotAligned));
        assert_eq!(f.erase(4096, 0), Err(MockFlashError::OutOfBounds));
        assert_eq!(f.write(8192, &[0; 4]), Err(MockFlashError::OutOfBounds));
        let mut b = [0u8; 3];
        f.read(1, &mut b).unwrap();
        assert_eq!(f.read(8190, &mut b), Err(MockFlashError::OutOfBounds));
    }

    #[test]
    fn power_cut_applies_a_partial_write_then_fails_everything() {
        let mut f = MockFlash::new(8192);
        f.cut_power_after(6);
        f.write(0, &[1, 2, 3, 4]).unwrap();
        assert_eq!(f.write(4, &[5, 6, 7, 8]), Err(MockFlashError::PowerCut));
        assert_eq!(&f.as_bytes()[..8], &[1, 2, 3, 4, 5, 6, 0xFF, 0xFF]);
        assert!(f.is_power_cut());
        assert_eq!(f.erase(4096, 8192), Err(MockFlashError::PowerCut));
        assert_eq!(f.write(4096, &[0; 4]), Err(MockFlashError::PowerCut));
        assert_eq!(f.bytes_written(), 6);
        f.restore_power();
        f.write(8, &[0; 4]).unwrap();
    }

    #[test]
    fn snapshot_restore_and_bytes_round_trip() {
        let mut f = MockFlash::new(4096);
        f.write(0, &[0, 1, 2, 3]).unwrap();
        let snap = f.snapshot();
        f.write(4, &[0; 4]).unwrap();
        f.restore(&snap);
        assert_eq!(&f.as_bytes()[..8], &[0, 1, 2, 3, 0xFF, 0xFF, 0xFF, 0xFF]);
        let g = MockFlash::from_bytes(f.clone().into_bytes());
        assert_eq!(g.as_bytes(), f.as_bytes());
        let short = MockFlash::from_bytes(vec![0u8; 10]);
        assert_eq!(short.capacity(), 4096);
        assert_eq!(short.as_bytes()[10], 0xFF);
    }
}
