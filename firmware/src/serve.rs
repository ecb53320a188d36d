//! The framing loop every board uses: bytes in (from a UART, a USB CDC-ACM endpoint, a socket),
//! complete response frames out. Partial reads, several frames in one read, a frame split across
//! reads, oversize and garbage frames all go through this one piece of code.

use pkms_protocol::framing::{self, Feed, FrameAccumulator};
use pkms_protocol::limits::MAX_ENCODED_FRAME;
use pkms_protocol::messages::{ResponseFrame, WireError};
use pkms_protocol::ErrorCode;
use zeroize::Zeroize;

use crate::platform::Platform;
use crate::token::Token;

/// Turns a byte stream into token calls and response frames. Holds one receive and one
/// transmit buffer of [`MAX_ENCODED_FRAME`] bytes each; both are wiped once a frame is answered
/// (requests carry PINs and plaintexts, answers plaintexts and data keys).
pub struct FrameServer {
    acc: FrameAccumulator,
    tx: [u8; MAX_ENCODED_FRAME],
}

impl Default for FrameServer {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameServer {
    /// A server with empty buffers.
    pub const fn new() -> Self {
        FrameServer { acc: FrameAccumulator::new(), tx: [0; MAX_ENCODED_FRAME] }
    }

    /// Drops a partial frame, e.g. when the host disconnects mid-frame (and wipes it).
    pub fn reset(&mut self) {
        self.acc.reset();
    }

    /// Whether both buffers hold nothing but zeros: nothing of a request or an answer stays
    /// between frames.
    pub fn holds_nothing(&self) -> bool {
        self.acc.is_clear() && self.tx.iter().all(|b| *b == 0)
    }

    /// Whether a partial frame is buffered (the host is mid-request).
    pub fn is_mid_frame(&self) -> bool {
        self.acc.is_mid_frame()
    }

    /// Feeds received bytes. For every complete frame, calls the token and passes the encoded
    /// response frame (ending in 0x00) to `send`. Oversize or undecodable frames get an error
    /// frame with id 0; the stream then resumes at the next delimiter.
    pub fn feed<P: Platform>(&mut self, token: &mut Token<P>, mut input: &[u8], mut send: impl FnMut(&[u8])) {
        let FrameServer { acc, tx } = self;
        while !input.is_empty() {
            let (n, used) = match acc.push(input) {
                Feed::NeedMore => break,
                Feed::Frame(payload, used) => (token.handle_payload(payload, tx), used),
                Feed::Overflow(used) => {
                    (error_frame(ErrorCode::FrameTooLarge, "frame exceeds the maximum frame size", tx), used)
                }
                Feed::Malformed(used) => {
                    (error_frame(ErrorCode::MalformedFrame, "frame is not valid COBS", tx), used)
                }
            };
            send(&tx[..n]);
            tx[..n].zeroize();
            acc.wipe();
            input = &input[used..];
        }
    }
}

/// Encodes an error frame with id 0 into `out`; returns its length (0 only if `out` is tiny).
pub fn error_frame(code: ErrorCode, message: &str, out: &mut [u8]) -> usize {
    let frame = ResponseFrame { id: 0, result: Err(WireError { code, message }) };
    // The token's one serializer of answers (see framing::encode_via); an error frame is small.
    let mut scratch = [0u8; 256];
    framing::encode_via(&frame, out, &mut scratch).unwrap_or(0)
}
