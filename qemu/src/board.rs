//! The QEMU board as the token core sees it: uptime from SysTick, no button, and plain words
//! about what protects (nothing) and where entropy comes from (a seed the host made).

use pkms_firmware::{Board, BoardInfo, UserPresence};
use pkms_protocol::Platform;

use crate::clock;

/// Reported by GetInfo.
pub const INFO: BoardInfo = BoardInfo {
    name: "qemu-mps2-an386",
    platform: Platform::Emulated,
    entropy_source: "a 32-byte seed from the host, placed in RAM at boot by QEMU's loader (-device loader), \
                     wiped once read, seeding ChaCha20 — emulator only, no hardware RNG: the host knows the seed",
    key_protection: "none: the device root key is in the flash file on the host",
};

/// mps2-an386 under QEMU.
pub struct QemuBoard {
    /// Why the RNG has no entropy, if it has none ([`crate::entropy::BootRng::missing`]).
    entropy_missing: Option<&'static str>,
}

impl QemuBoard {
    /// The board; `entropy_missing` is what [`crate::entropy::take_boot_seed`] found.
    pub const fn new(entropy_missing: Option<&'static str>) -> Self {
        QemuBoard { entropy_missing }
    }
}

impl Board for QemuBoard {
    fn uptime_ms(&mut self) -> u64 {
        clock::uptime_ms()
    }

    /// There is no button under QEMU: keys that require presence cannot be used here.
    fn user_presence(&mut self, _timeout_ms: u32) -> UserPresence {
        UserPresence::Unsupported
    }

    fn info(&self) -> BoardInfo {
        INFO
    }

    fn entropy_missing(&self) -> Option<&'static str> {
        self.entropy_missing
    }
}
