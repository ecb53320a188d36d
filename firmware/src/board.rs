//! The board seam: what the token core needs from the board it runs on, besides flash and RNG.

use pkms_protocol::Platform;

/// Static facts about a board, reported by GetInfo. Stated plainly: the QEMU board says it has
/// no hardware entropy and no key protection.
#[derive(Debug, Clone, Copy)]
pub struct BoardInfo {
    /// e.g. `qemu-mps2-an386`, `nrf52840-dk`, `host-in-process`.
    pub name: &'static str,
    /// Emulated or hardware.
    pub platform: Platform,
    /// Where randomness comes from.
    pub entropy_source: &'static str,
    /// What protects key material at rest.
    pub key_protection: &'static str,
}

/// Result of asking the user to confirm presence (press the button).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserPresence {
    /// The user pressed the button in time.
    Confirmed,
    /// Nobody pressed within the timeout.
    TimedOut,
    /// This board has no way to ask (e.g. QEMU): keys that require presence cannot be used.
    Unsupported,
}

/// Clock, user presence and platform facts of a board.
pub trait Board {
    /// Milliseconds since boot, monotonic (sessions, timeouts). Not wall time: wall time comes
    /// from the host with each request.
    fn uptime_ms(&mut self) -> u64;
    /// Asks the user to confirm presence, waiting at most `timeout_ms`.
    fn user_presence(&mut self, timeout_ms: u32) -> UserPresence;
    /// Static facts reported by GetInfo.
    fn info(&self) -> BoardInfo;
    /// Shows activity (e.g. an LED) while a request is processed. Default: nothing.
    fn activity(&mut self, _busy: bool) {}
    /// Why the RNG must not be used, if it must not (e.g. the QEMU board got no seed at boot).
    /// The token then makes no device key and refuses every operation that needs keys or
    /// randomness with this message; Hello and GetInfo still answer. Asked once, at mount.
    /// Default: `None` (the RNG is ready).
    fn entropy_missing(&self) -> Option<&'static str> {
        None
    }
}

/// A board for tests and examples: a clock the test sets, a button that answers as told (and
/// counts how often the token asked), and facts that say it protects nothing.
#[derive(Debug, Clone)]
pub struct TestBoard {
    /// What the button answers.
    pub presence: UserPresence,
    /// How often the token asked for presence.
    pub asked: u32,
    /// What the clock reads: milliseconds since boot.
    pub uptime_ms: u64,
}

impl TestBoard {
    /// A board with no button and its clock at 0.
    pub const fn new() -> Self {
        TestBoard { presence: UserPresence::Unsupported, asked: 0, uptime_ms: 0 }
    }
}

impl Default for TestBoard {
    fn default() -> Self {
        Self::new()
    }
}

impl Board for TestBoard {
    fn uptime_ms(&mut self) -> u64 {
        self.uptime_ms
    }
    fn user_presence(&mut self, _timeout_ms: u32) -> UserPresence {
        self.asked += 1;
        self.presence
    }
    fn info(&self) -> BoardInfo {
        BoardInfo {
            name: "test-board",
            platform: Platform::Emulated,
            entropy_source: "seeded ChaCha20 (tests only)",
            key_protection: "none (tests only)",
        }
    }
}
