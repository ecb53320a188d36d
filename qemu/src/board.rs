//! The QEMU board as the token core sees it: uptime from SysTick, no button, and plain words
//! about what protects (nothing) and where entropy comes from (the host).

use pkms_firmware::{Board, BoardInfo, UserPresence};
use pkms_protocol::Platform;

use crate::clock;

/// Reported by GetInfo.
pub const INFO: BoardInfo = BoardInfo {
    name: "qemu-mps2-an386",
    platform: Platform::Emulated,
    entropy_source: "host /dev/urandom via semihosting — emulator only, no hardware RNG",
    key_protection: "none: the device root key is in the flash file on the host",
};

/// mps2-an386 under QEMU.
pub struct QemuBoard;

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
}
