//! The one seam between the token core and what it runs on.
//!
//! A board names its parts once, as the associated items of a [`Platform`]:
//!
//! ```text
//! enum Qemu {}
//! const AUDIT: usize = pkms_firmware::platform::audit_capacity(STORE_BYTES, ERASE_SIZE);
//! impl Platform for Qemu {
//!     type Flash = QemuNorFlash;
//!     type Rng = ChaCha20Rng;
//!     type Board = QemuBoard;
//!     type Index = pkms_firmware::store::Index<{ pkms_firmware::platform::index_records(AUDIT) }>;
//!     const AUDIT_CAPACITY: usize = AUDIT;
//! }
//! let token = Token::<Qemu>::new(flash, rng, board);
//! ```
//!
//! Code that is generic over its parts (tests, examples) can use [`Parts`] instead of declaring
//! a type.
//!
//! # Sizing the audit log
//!
//! The audit log shares the store with the keys, one record of [`AUDIT_ENTRY_BYTES`] per entry,
//! and each entry it can hold costs [`crate::store::INDEX_BYTES_PER_RECORD`] bytes of RAM in the
//! store's index. [`audit_capacity`] gives the log as many entries as fit in half the store's
//! usable flash (whole [`crate::audit::DROP_CHUNK`]s), so the keys always keep the other half;
//! [`index_records`] sizes the index for the keys' records plus that log.

use core::marker::PhantomData;

use embedded_storage::nor_flash::NorFlash;
use pkms_protocol::access::AUDIT_ENTRY_LEN;
use rand_core::{CryptoRng, RngCore};

use crate::board::Board;
use crate::store::{self, RecordIndex};

/// What a token runs on: NOR flash for its store, a cryptographic RNG, a board (clock, user
/// presence, facts about the platform), and how large its audit log and the store's RAM index
/// are.
pub trait Platform {
    /// The flash the key store lives in.
    type Flash: NorFlash;
    /// The source of every key, nonce and salt.
    type Rng: RngCore + CryptoRng;
    /// Clock, button and platform facts.
    type Board: Board;
    /// The store's RAM index: [`store::Index`]`<N>` with `N` at least
    /// [`index_records`]`(AUDIT_CAPACITY)` (checked when the token is built).
    type Index: RecordIndex;
    /// Most entries the audit log holds ([`audit_capacity`] of the board's store). Fewer
    /// when the keys leave it less flash than that (see [`crate::audit::Log::room`]).
    const AUDIT_CAPACITY: usize;
}

/// A [`Platform`] made of any flash `F`, RNG `R` and board `B`, with an audit log of
/// [`PARTS_AUDIT_CAPACITY`] entries.
pub struct Parts<F, R, B>(PhantomData<(F, R, B)>);

/// The audit capacity of [`Parts`]: 256 entries (35 KiB of flash).
pub const PARTS_AUDIT_CAPACITY: usize = 256;

impl<F: NorFlash, R: RngCore + CryptoRng, B: Board> Platform for Parts<F, R, B> {
    type Flash = F;
    type Rng = R;
    type Board = B;
    type Index = store::Index<{ index_records(PARTS_AUDIT_CAPACITY) }>;
    const AUDIT_CAPACITY: usize = PARTS_AUDIT_CAPACITY;
}

/// Flash bytes one audit entry takes: its store record (header, id, the entry), padded.
pub const AUDIT_ENTRY_BYTES: usize = store::record_size(store::ID_LEN + AUDIT_ENTRY_LEN);

/// Records other than audit entries the index holds at most: 1,024 keys, 256 aliases, the
/// device and clock records, principals and what goes with keys.
pub const KEY_RECORDS: usize = 1300;

/// Records the index of a platform whose audit log holds `audit_capacity` entries needs: the
/// keys' [`KEY_RECORDS`], the log, and its base checkpoint and pending counts.
pub const fn index_records(audit_capacity: usize) -> usize {
    KEY_RECORDS + audit_capacity + 2
}

/// The audit log suited to a store of `store_bytes` in erase pages of `page_size` bytes: as
/// many entries as fit in half the store's usable flash, rounded down to whole
/// [`crate::audit::DROP_CHUNK`]s (at least one chunk).
pub const fn audit_capacity(store_bytes: usize, page_size: usize) -> usize {
    let chunk = crate::audit::DROP_CHUNK;
    let half = store::usable_bytes(store_bytes / page_size, page_size) / 2;
    let entries = half / AUDIT_ENTRY_BYTES / chunk * chunk;
    if entries < chunk {
        chunk
    } else {
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_gets_half_of_each_boards_store_in_whole_drop_chunks() {
        assert_eq!(AUDIT_ENTRY_BYTES, 140);
        // QEMU: 256 pages of 4 KiB; 254 × 4,088 usable bytes, half of them is 3,708 entries.
        assert_eq!(audit_capacity(1024 * 1024, 4096), 3696);
        // A larger flash: the store uses its first 1 MiB.
        assert_eq!(audit_capacity(16 * 1024 * 1024, 4096), 3696);
        // nRF52840: 32 pages; 30 × 4,088 usable bytes, half of them is 438 entries.
        assert_eq!(audit_capacity(128 * 1024, 4096), 432);
        // The token tests' 256 KiB: 62 pages.
        assert_eq!(audit_capacity(256 * 1024, 4096), 896);
        // A store too small for a chunk in half of it still gets one chunk.
        assert_eq!(audit_capacity(4 * 1024, 1024), 16);
        for (bytes, page) in [(1024 * 1024, 4096), (128 * 1024, 4096), (64 * 1024, 1024)] {
            let c = audit_capacity(bytes, page);
            assert_eq!(c % crate::audit::DROP_CHUNK, 0);
            assert!(c * AUDIT_ENTRY_BYTES <= store::usable_bytes(bytes / page, page) / 2);
            assert!(
                (c + crate::audit::DROP_CHUNK) * AUDIT_ENTRY_BYTES
                    > store::usable_bytes(bytes / page, page) / 2
            );
        }
        assert_eq!(index_records(3696), 4998);
        assert_eq!(store::INDEX_BYTES_PER_RECORD, 28);
    }
}
