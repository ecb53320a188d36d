//! NOR-flash emulation over the mps2-an386 PSRAM (0x2100_0000, 16 MiB).
//!
//! The launcher backs the PSRAM with a host file (`memory-backend-file ... share=on`), so what
//! the token writes here lands in the page cache of that file at once and survives a QEMU
//! restart or kill. A new file is created by the launcher filled with 0xFF (erased).
//!
//! NOR rules are enforced, as on a real part and as in the core's mock flash:
//! * erase works on whole [`ERASE_SIZE`] pages and sets them to 0xFF;
//! * a write must be [`WRITE_SIZE`]-aligned in offset and length and may only clear bits
//!   (1 → 0); a write that would set a bit fails with [`NorError::BitsAlreadyCleared`] and
//!   leaves the flash unchanged (the whole write is checked before any byte is written);
//! * writing the same word again is allowed as long as it only clears bits
//!   ([`MultiwriteNorFlash`]).
//!
//! The benchmark firmware (`bench/firmware`) runs on the same board and uses this very file.

use core::sync::atomic::{AtomicBool, Ordering};

use embedded_storage::nor_flash::{
    check_erase, check_read, check_write, ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError,
    NorFlashErrorKind, ReadNorFlash,
};

/// Base address of the PSRAM on mps2-an386 (QEMU hw/arm/mps2.c: `psram_base`).
pub const PSRAM_BASE: usize = 0x2100_0000;
/// Size of the PSRAM and of the host flash file (the machine insists on exactly 16 MiB).
pub const PSRAM_SIZE: usize = 16 * 1024 * 1024;
/// Bytes of the PSRAM given to the key store: the first 1 MiB (256 pages of 4 KiB). The rest is
/// left erased and unused, room for a later layout without moving keys (the audit log shares the
/// first 1 MiB with the keys: see `pkms_firmware::platform`).
pub const STORE_BYTES: usize = 1024 * 1024;
/// Program granularity in bytes.
pub const WRITE_SIZE: usize = 4;
/// Erase page size in bytes.
pub const ERASE_SIZE: usize = 4096;

const _: () = assert!(STORE_BYTES <= PSRAM_SIZE && STORE_BYTES.is_multiple_of(ERASE_SIZE));

/// Why a flash operation was refused. The flash is unchanged after any error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NorError {
    /// Offset or length not aligned to [`WRITE_SIZE`] / [`ERASE_SIZE`].
    NotAligned,
    /// The range runs past [`STORE_BYTES`].
    OutOfBounds,
    /// The write would turn a 0 bit back into 1, which NOR cannot do without an erase.
    BitsAlreadyCleared,
}

impl NorFlashError for NorError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            NorError::NotAligned => NorFlashErrorKind::NotAligned,
            NorError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            NorError::BitsAlreadyCleared => NorFlashErrorKind::Other,
        }
    }
}

fn from_kind(kind: NorFlashErrorKind) -> NorError {
    match kind {
        NorFlashErrorKind::NotAligned => NorError::NotAligned,
        _ => NorError::OutOfBounds,
    }
}

/// The key store's flash: the first [`STORE_BYTES`] of the PSRAM. Exactly one exists
/// ([`PsramNor::take`]), so nothing else aliases that memory.
pub struct PsramNor {
    _private: (),
}

static TAKEN: AtomicBool = AtomicBool::new(false);

impl PsramNor {
    /// Hands out the one flash handle; `None` if it was already taken.
    pub fn take() -> Option<Self> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            None
        } else {
            Some(PsramNor { _private: () })
        }
    }

    fn word_ptr(offset: usize) -> *mut u32 {
        (PSRAM_BASE + offset) as *mut u32
    }

    fn read_word(offset: usize) -> u32 {
        // SAFETY: callers keep `offset` word-aligned and below STORE_BYTES, inside the PSRAM
        // region that only this (single) handle accesses.
        unsafe { core::ptr::read_volatile(Self::word_ptr(offset)) }
    }

    fn write_word(offset: usize, value: u32) {
        // SAFETY: as for `read_word`.
        unsafe { core::ptr::write_volatile(Self::word_ptr(offset), value) }
    }
}

impl ErrorType for PsramNor {
    type Error = NorError;
}

impl ReadNorFlash for PsramNor {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), NorError> {
        check_read(self, offset, bytes.len()).map_err(from_kind)?;
        // Reads need no volatile access (only this handle writes the region, and every write
        // is volatile, in order); a plain copy is several times faster than byte by byte.
        // SAFETY: check_read bounded offset + len by STORE_BYTES, inside the PSRAM, and `bytes`
        // is a distinct RAM buffer.
        unsafe {
            core::ptr::copy_nonoverlapping(
                (PSRAM_BASE + offset as usize) as *const u8,
                bytes.as_mut_ptr(),
                bytes.len(),
            )
        };
        Ok(())
    }

    fn capacity(&self) -> usize {
        STORE_BYTES
    }
}

impl NorFlash for PsramNor {
    const WRITE_SIZE: usize = WRITE_SIZE;
    const ERASE_SIZE: usize = ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), NorError> {
        check_erase(self, from, to).map_err(from_kind)?;
        for offset in (from as usize..to as usize).step_by(WRITE_SIZE) {
            Self::write_word(offset, u32::MAX);
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), NorError> {
        check_write(self, offset, bytes.len()).map_err(from_kind)?;
        let start = offset as usize;
        let words = || {
            bytes.chunks_exact(WRITE_SIZE).enumerate().map(move |(i, chunk)| {
                let mut word = [0u8; WRITE_SIZE];
                word.copy_from_slice(chunk);
                (start + i * WRITE_SIZE, u32::from_le_bytes(word))
            })
        };
        if words().any(|(at, new)| new & !Self::read_word(at) != 0) {
            return Err(NorError::BitsAlreadyCleared);
        }
        for (at, new) in words() {
            Self::write_word(at, new);
        }
        Ok(())
    }
}

impl MultiwriteNorFlash for PsramNor {}
