//! Interrupting a process's token calls from a signal handler (Ctrl-C): [`request`] marks the
//! process interrupted; every [`crate::Client`] call then stops waiting within
//! [`POLL`] with [`crate::Error::Interrupted`], and the client, once dropped, closes its
//! session with the token (which it does without heeding the mark). So a program that returns
//! on the error ends its session cleanly instead of leaving it open on the token.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How often a waiting call looks at the mark.
pub const POLL: Duration = Duration::from_millis(100);

/// Marks the process interrupted (async-signal-safe: one atomic store). Returns whether it was
/// already marked (a second Ctrl-C: the caller may then exit at once).
pub fn request() -> bool {
    INTERRUPTED.swap(true, Ordering::SeqCst)
}

/// Whether the process was interrupted.
pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
