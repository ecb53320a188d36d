//! Progress of long file operations (envelope encryption, hashing), reported to whatever the
//! caller supplies: a progress bar in the `pkms` CLI, nothing in a library user that does not
//! care ([`NoProgress`]), or any `Fn(u64)` closure.

/// Receives how many more bytes a long operation has processed. Called on the caller's thread
/// (the one that writes the output or reads the input), once per batch or read; never with
/// bytes that were not processed yet.
pub trait Progress {
    /// `bytes` more bytes were processed since the last call.
    fn advance(&self, bytes: u64);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _bytes: u64) {}
}

impl<F: Fn(u64)> Progress for F {
    fn advance(&self, bytes: u64) {
        self(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_closure_adds_up_what_it_is_told() {
        let total = Cell::new(0u64);
        let count = |n: u64| total.set(total.get() + n);
        let progress: &dyn Progress = &count;
        progress.advance(3);
        progress.advance(4);
        NoProgress.advance(100);
        assert_eq!(total.get(), 7);
    }
}
