//! A RAM NOR flash for the token benchmarks, over the mps2-an386 PSRAM at 0x2100_0000 (not backed
//! by a file here, so it starts fresh every run). Same geometry as the QEMU board's flash
//! (qemu/src/nor_flash.rs: 1 MiB, 4-byte writes, 4 KiB erase pages) and the same NOR rules: erase
//! sets a page to 0xFF; a write may only clear bits (a write that would set one fails and changes
//! nothing).
//!
//! A [`RamFlash`] is a handle on that one region. [`RamFlash::handle`] may be called again after
//! the token that owned the previous handle is dropped, to "reboot" onto the same contents.

use embedded_storage::nor_flash::{
    check_erase, check_read, check_write, ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError,
    NorFlashErrorKind, ReadNorFlash,
};

const BASE: usize = 0x2100_0000;
/// Bytes of flash, as on the QEMU board.
pub const CAPACITY: usize = 1024 * 1024;
const WRITE: usize = 4;
const ERASE: usize = 4096;

/// Why an operation was refused; the flash is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RamFlashError {
    /// Misaligned offset or length.
    NotAligned,
    /// Past the end.
    OutOfBounds,
    /// The write would set a bit that is 0.
    BitsAlreadyCleared,
}

impl NorFlashError for RamFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            RamFlashError::NotAligned => NorFlashErrorKind::NotAligned,
            RamFlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            RamFlashError::BitsAlreadyCleared => NorFlashErrorKind::Other,
        }
    }
}

fn from_kind(kind: NorFlashErrorKind) -> RamFlashError {
    match kind {
        NorFlashErrorKind::NotAligned => RamFlashError::NotAligned,
        _ => RamFlashError::OutOfBounds,
    }
}

/// A handle on the PSRAM flash region.
pub struct RamFlash {
    _private: (),
}

impl RamFlash {
    /// A handle on the region. At most one handle may be in use at a time (the benchmarks drop a
    /// token before making the next one).
    pub fn handle() -> Self {
        RamFlash { _private: () }
    }

    /// Erases the whole region (0xFF), as a factory-fresh part.
    pub fn erase_all(&mut self) {
        for offset in (0..CAPACITY).step_by(WRITE) {
            // SAFETY: BASE..BASE+CAPACITY is PSRAM on mps2-an386, used by nothing else; aligned.
            unsafe { core::ptr::write_volatile((BASE + offset) as *mut u32, u32::MAX) };
        }
    }

    fn word(offset: usize) -> u32 {
        // SAFETY: callers pass a WRITE-aligned offset inside the region (checked beforehand).
        unsafe { core::ptr::read_volatile((BASE + offset) as *const u32) }
    }

    fn set_word(offset: usize, value: u32) {
        // SAFETY: as in `word`.
        unsafe { core::ptr::write_volatile((BASE + offset) as *mut u32, value) }
    }
}

impl ErrorType for RamFlash {
    type Error = RamFlashError;
}

impl ReadNorFlash for RamFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        check_read(self, offset, bytes.len()).map_err(from_kind)?;
        // SAFETY: the range was checked to lie inside the region; `bytes` does not overlap it.
        unsafe {
            core::ptr::copy_nonoverlapping(
                (BASE + offset as usize) as *const u8,
                bytes.as_mut_ptr(),
                bytes.len(),
            )
        };
        Ok(())
    }

    fn capacity(&self) -> usize {
        CAPACITY
    }
}

impl NorFlash for RamFlash {
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        check_erase(self, from, to).map_err(from_kind)?;
        for offset in (from as usize..to as usize).step_by(WRITE) {
            Self::set_word(offset, u32::MAX);
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        check_write(self, offset, bytes.len()).map_err(from_kind)?;
        let start = offset as usize;
        let words = bytes.chunks_exact(WRITE).enumerate().map(|(i, chunk)| {
            (start + i * WRITE, u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
        });
        if words.clone().any(|(at, new)| Self::word(at) & new != new) {
            return Err(RamFlashError::BitsAlreadyCleared);
        }
        for (at, new) in words {
            Self::set_word(at, Self::word(at) & new);
        }
        Ok(())
    }
}

impl MultiwriteNorFlash for RamFlash {}
