//! COBS framing: each frame is the COBS encoding of one postcard message followed by a 0x00
//! delimiter. A host that connects mid-stream sends a lone 0x00 first, which ends any partial
//! frame on the token (an empty frame is ignored).
//!
//! [`FrameAccumulator`] turns a byte stream (UART, USB packets of any size) into frames; it is
//! used by every board and by the host transports, so partial reads, several frames in one read
//! and a frame split across reads behave the same everywhere.

use serde::Serialize;
use zeroize::Zeroize;

use crate::access::AuditLogStatus;
use crate::limits::{MAX_ENCODED_FRAME, MAX_FRAME};
use crate::messages::{RequestFrame, ResponseFrame};

/// Why encoding or decoding a frame failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The message does not fit in [`MAX_FRAME`] / the buffer given.
    TooLarge,
    /// Bad COBS or bad postcard.
    Malformed,
}

/// Serialises `msg` with postcard and COBS-encodes it into `out`, including the trailing 0x00.
/// Returns the encoded length.
pub fn encode<T: Serialize>(msg: &T, out: &mut [u8]) -> Result<usize, FrameError> {
    let len = out.len().min(MAX_ENCODED_FRAME);
    postcard::to_slice_cobs(msg, &mut out[..len]).map(|s| s.len()).map_err(|_| FrameError::TooLarge)
}

/// As [`encode`], in two steps: postcard into `out`, then COBS through `scratch` (at least as
/// long as the encoding) back into `out` ([`cobs_frame_via`]). For a token that also serialises
/// answers without COBS (sealed in a session): one postcard serializer serves both, instead of
/// two copies of it in the image.
pub fn encode_via<T: Serialize>(msg: &T, out: &mut [u8], scratch: &mut [u8]) -> Result<usize, FrameError> {
    let len = out.len().min(MAX_ENCODED_FRAME);
    let n = postcard::to_slice(msg, &mut out[..len]).map_err(|_| FrameError::TooLarge)?.len();
    cobs_frame_via(out, n, scratch)
}

/// Turns the postcard bytes `out[..n]` into a frame in `out` (COBS encoding and the 0x00
/// delimiter), through `scratch`, which is wiped afterwards. Returns the frame's length.
pub fn cobs_frame_via(out: &mut [u8], n: usize, scratch: &mut [u8]) -> Result<usize, FrameError> {
    let source = out.get(..n).ok_or(FrameError::TooLarge)?;
    let m = cobs::try_encode(source, scratch).map_err(|_| FrameError::TooLarge)?;
    let framed = out.get_mut(..m + 1).ok_or(FrameError::TooLarge)?;
    framed[..m].copy_from_slice(&scratch[..m]);
    framed[m] = 0;
    scratch[..m].fill(0);
    Ok(m + 1)
}

/// Decodes a COBS frame *in place* (the delimiter already stripped) and returns the postcard
/// payload slice within `frame`.
pub fn cobs_decode_in_place(frame: &mut [u8]) -> Result<&[u8], FrameError> {
    let n = cobs::decode_in_place(frame).map_err(|_| FrameError::Malformed)?;
    Ok(&frame[..n])
}

impl From<postcard::Error> for FrameError {
    fn from(_: postcard::Error) -> Self {
        FrameError::Malformed
    }
}

/// Decodes a request payload (already COBS-decoded): exactly one request frame, nothing after
/// it (bytes after a valid request are Malformed, not ignored).
pub fn decode_request(payload: &[u8]) -> Result<RequestFrame<'_>, FrameError> {
    if payload.len() > MAX_FRAME {
        return Err(FrameError::TooLarge);
    }
    match postcard::take_from_bytes(payload)? {
        (frame, []) => Ok(frame),
        (_, _trailing) => Err(FrameError::Malformed),
    }
}

/// Decodes a response payload (already COBS-decoded). Bytes after the frame are ignored: they
/// are what later tokens append for hosts that read them ([`decode_response_with_status`]).
pub fn decode_response(payload: &[u8]) -> Result<ResponseFrame<'_>, FrameError> {
    if payload.len() > MAX_FRAME {
        return Err(FrameError::TooLarge);
    }
    Ok(postcard::from_bytes(payload)?)
}

/// As [`decode_response`], and also reads the audit log's status a token appends after the
/// frame of its answer to a successful Authenticate (postcard, right after the
/// `ResponseFrame`). `None` when nothing follows the frame (any other answer, or a token that
/// predates it) or what follows does not decode. Hosts that predate it stop reading at the
/// frame's end, so the status never breaks them.
pub fn decode_response_with_status(
    payload: &[u8],
) -> Result<(ResponseFrame<'_>, Option<AuditLogStatus>), FrameError> {
    if payload.len() > MAX_FRAME {
        return Err(FrameError::TooLarge);
    }
    let (frame, rest) = postcard::take_from_bytes(payload)?;
    let status = if rest.is_empty() { None } else { postcard::from_bytes(rest).ok() };
    Ok((frame, status))
}

/// What [`FrameAccumulator::push`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Feed<'b> {
    /// More bytes are needed; all of the input was consumed.
    NeedMore,
    /// A complete, COBS-decoded payload (writable: the token opens sealed frames in place), and
    /// the input consumed so far.
    Frame(&'b mut [u8], usize),
    /// A frame exceeded [`MAX_ENCODED_FRAME`] (its bytes up to the next 0x00 are discarded), and
    /// the input consumed so far.
    Overflow(usize),
    /// A frame failed COBS decoding, and the input consumed so far.
    Malformed(usize),
}

/// Collects bytes until a 0x00 delimiter, bounded by [`MAX_ENCODED_FRAME`].
///
/// Feed it with [`push`](Self::push) in a loop, advancing the input by the returned count:
///
/// ```
/// # use pkms_protocol::framing::{FrameAccumulator, Feed};
/// let mut acc = FrameAccumulator::new();
/// let mut input: &[u8] = &[0x02, 0x07, 0x00];
/// while !input.is_empty() {
///     match acc.push(input) {
///         Feed::NeedMore => break,
///         Feed::Frame(payload, used) => { assert_eq!(payload, &[7]); input = &input[used..]; }
///         Feed::Overflow(used) | Feed::Malformed(used) => input = &input[used..],
///     }
/// }
/// ```
pub struct FrameAccumulator {
    buf: [u8; MAX_ENCODED_FRAME],
    len: usize,
    overflowed: bool,
    /// Bytes of `buf` that may hold data since the last [`FrameAccumulator::wipe`].
    dirty: usize,
}

impl Default for FrameAccumulator {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameAccumulator {
    /// An empty accumulator.
    pub const fn new() -> Self {
        FrameAccumulator { buf: [0; MAX_ENCODED_FRAME], len: 0, overflowed: false, dirty: 0 }
    }

    /// Drops any partial frame (e.g. when the host disconnects) and wipes it.
    pub fn reset(&mut self) {
        self.len = 0;
        self.overflowed = false;
        self.wipe();
    }

    /// Zeroes every byte a frame occupied, keeping a partial frame in progress: call it once a
    /// frame [`FrameAccumulator::push`] returned has been handled, so that no request (PINs,
    /// plaintexts) stays in memory after its answer.
    pub fn wipe(&mut self) {
        let keep = self.len;
        self.buf[keep..self.dirty.max(keep)].zeroize();
        self.dirty = keep;
    }

    /// Whether the buffer holds nothing but zeros (no frame, nothing of an old one).
    pub fn is_clear(&self) -> bool {
        self.buf.iter().all(|b| *b == 0)
    }

    /// Whether a partial frame is buffered.
    pub fn is_mid_frame(&self) -> bool {
        self.len > 0 || self.overflowed
    }

    /// Consumes bytes from `input` up to and including the first complete frame.
    /// Empty frames (a lone 0x00) are skipped silently.
    pub fn push<'b>(&'b mut self, input: &[u8]) -> Feed<'b> {
        for (i, &byte) in input.iter().enumerate() {
            if byte == 0 {
                let used = i + 1;
                if self.overflowed {
                    self.reset();
                    return Feed::Overflow(used);
                }
                if self.len == 0 {
                    continue;
                }
                let n = self.len;
                self.len = 0;
                return match cobs::decode_in_place(&mut self.buf[..n]) {
                    Ok(m) => Feed::Frame(&mut self.buf[..m], used),
                    Err(_) => Feed::Malformed(used),
                };
            }
            if self.overflowed {
                continue;
            }
            if self.len >= self.buf.len() {
                self.overflowed = true;
                self.len = 0;
                continue;
            }
            self.buf[self.len] = byte;
            self.len += 1;
            self.dirty = self.dirty.max(self.len);
        }
        Feed::NeedMore
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::messages::{Request, Response, WireError};
    use crate::ErrorCode;
    use std::vec::Vec;

    fn frames(acc: &mut FrameAccumulator, mut input: &[u8]) -> Vec<Result<Vec<u8>, &'static str>> {
        let mut out = Vec::new();
        while !input.is_empty() {
            match acc.push(input) {
                Feed::NeedMore => break,
                Feed::Frame(p, used) => {
                    out.push(Ok(p.to_vec()));
                    input = &input[used..];
                }
                Feed::Overflow(used) => {
                    out.push(Err("overflow"));
                    input = &input[used..];
                }
                Feed::Malformed(used) => {
                    out.push(Err("malformed"));
                    input = &input[used..];
                }
            }
        }
        out
    }

    #[test]
    fn request_round_trips_through_a_frame() {
        let req = RequestFrame {
            id: 7,
            now: Some(1_700_000_000),
            request: Request::GenerateRandom(crate::request::GenerateRandom { number_of_bytes: 32 }),
        };
        let mut buf = [0u8; 64];
        let n = encode(&req, &mut buf).unwrap();
        assert_eq!(buf[n - 1], 0);
        let mut acc = FrameAccumulator::new();
        let got = frames(&mut acc, &buf[..n]);
        assert_eq!(got.len(), 1);
        let payload = got[0].clone().unwrap();
        assert_eq!(decode_request(&payload).unwrap(), req);
        // A byte after the request: refused, not ignored.
        let mut longer = payload.clone();
        longer.push(0);
        assert_eq!(decode_request(&longer), Err(FrameError::Malformed));
    }

    #[test]
    fn frames_split_and_joined_arbitrarily() {
        let mut wire = Vec::new();
        for id in 1..=3u32 {
            let resp = ResponseFrame {
                id,
                result: Err(WireError { code: ErrorCode::NotFound, message: "no such key" }),
            };
            let mut buf = [0u8; 64];
            let n = encode(&resp, &mut buf).unwrap();
            wire.extend_from_slice(&buf[..n]);
        }
        for chunk in 1..wire.len() {
            let mut acc = FrameAccumulator::new();
            let mut ids = Vec::new();
            for part in wire.chunks(chunk) {
                for p in frames(&mut acc, part) {
                    ids.push(decode_response(&p.unwrap()).unwrap().id);
                }
            }
            assert_eq!(ids, [1, 2, 3], "chunk size {chunk}");
        }
    }

    #[test]
    fn oversize_frame_is_reported_then_service_resumes() {
        let mut acc = FrameAccumulator::new();
        let mut wire = std::vec![0x55u8; MAX_ENCODED_FRAME + 10];
        wire.push(0);
        wire.extend_from_slice(&[0x02, 0x07, 0x00]);
        let got = frames(&mut acc, &wire);
        assert_eq!(got, std::vec![Err("overflow"), Ok(std::vec![7])]);
    }

    #[test]
    fn the_audit_log_status_after_a_response_frame_is_read_by_hosts_that_know_it_and_ignored_by_others() {
        use crate::access::{AuditFullMode, AuditLogStatus};
        let frame = ResponseFrame { id: 9, result: Ok(Response::Done(crate::reply::Done {})) };
        let status =
            AuditLogStatus { entries: 3000, capacity: 3696, room: 696, when_full: AuditFullMode::Refuse };
        let mut buf = [0u8; 64];
        let n = postcard::to_slice(&frame, &mut buf).unwrap().len();
        let m = postcard::to_slice(&status, &mut buf[n..]).unwrap().len();
        // An older host's decoding: the frame, whatever follows it.
        assert_eq!(decode_response(&buf[..n + m]).unwrap(), frame);
        assert_eq!(decode_response_with_status(&buf[..n + m]).unwrap(), (frame.clone(), Some(status)));
        // An older token's answer: nothing follows.
        assert_eq!(decode_response_with_status(&buf[..n]).unwrap(), (frame.clone(), None));
        // Something that is no status: the frame still decodes.
        assert_eq!(decode_response_with_status(&[&buf[..n], &[0xff][..]].concat()).unwrap(), (frame, None));
        // A frame that does not decode is still refused.
        assert_eq!(decode_response_with_status(&[200]), Err(FrameError::Malformed));
        assert_eq!(decode_response_with_status(&std::vec![0; MAX_FRAME + 1]), Err(FrameError::TooLarge));
        // A frame of exactly MAX_FRAME bytes (here: the frame, then filler) is still read.
        let mut full = std::vec![0u8; MAX_FRAME];
        full[..n].copy_from_slice(&buf[..n]);
        assert_eq!(decode_response_with_status(&full).unwrap().0.id, 9);
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let mut acc = FrameAccumulator::new();
        let got = frames(&mut acc, &[0x05, 0x01, 0x00]);
        assert_eq!(got, std::vec![Err("malformed")]);
        assert!(decode_request(&[0xff, 0xff, 0xff]).is_err());
        let resp: Result<Response<'_>, _> = postcard::from_bytes(&[200]);
        assert!(resp.is_err());
    }
}
