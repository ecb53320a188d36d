//! Reading the token's frames off a raw link, for the tests that talk to a launched token
//! without a client.

use std::time::{Duration, Instant};

use pkms_lib::transport::Transport;
use pkms_protocol::framing::{Feed, FrameAccumulator};

/// Collects bytes from a link into frames.
pub struct FrameReader {
    acc: Box<FrameAccumulator>,
    pending: Vec<u8>,
}

impl FrameReader {
    pub fn new() -> Self {
        FrameReader { acc: Box::new(FrameAccumulator::new()), pending: Vec::new() }
    }

    /// The next complete frame's payload (COBS-decoded); panics on a bad frame or when none
    /// comes within `timeout`.
    pub fn next_payload(&mut self, link: &mut dyn Transport, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut input: &[u8] = &self.pending.clone();
            let mut found = None;
            while !input.is_empty() {
                match self.acc.push(input) {
                    Feed::NeedMore => input = &[],
                    Feed::Frame(payload, used) => {
                        found = Some(payload.to_vec());
                        input = &input[used..];
                        break;
                    }
                    Feed::Overflow(used) | Feed::Malformed(used) => {
                        panic!("the token sent a bad frame ({used} bytes)")
                    }
                }
            }
            self.pending = input.to_vec();
            if let Some(p) = found {
                return p;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no frame from the token within {timeout:?}");
            let mut buf = [0u8; 4096];
            let n = link.recv(&mut buf, left).expect("read from the token");
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}
