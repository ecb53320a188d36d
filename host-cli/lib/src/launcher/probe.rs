//! The liveness probe the launcher runs on every connection before handing it out: a lone
//! 0x00 (ends any partial frame a previous client left), then Hello, then wait for the answer.
//! A token that answers is alive and in sync; one that does not is restarted.

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use pkms_protocol::framing::{self, Feed, FrameAccumulator};
use pkms_protocol::limits::MAX_ENCODED_FRAME;
use pkms_protocol::{Request, RequestFrame, Response, PROTOCOL_VERSION};

/// Request id of the probe's Hello (clients number their own requests from 1).
const PROBE_ID: u32 = 0xFFFF_FF00;

/// Exchanges Hello on `stream` within `timeout`. Returns the firmware version the token
/// reported (empty if it refused the Hello, e.g. another protocol version: it is alive all the
/// same). Error frames about earlier garbage are skipped. Leaves the read timeout unset.
pub fn hello(stream: &mut UnixStream, timeout: Duration) -> io::Result<String> {
    let deadline = Instant::now() + timeout;
    // A lone delimiter first: ends any partial frame a previous client left behind.
    let mut frame = [0u8; 64];
    let request = RequestFrame {
        id: PROBE_ID,
        now: None,
        request: Request::Hello(pkms_protocol::request::Hello { protocol_version: PROTOCOL_VERSION }),
    };
    let n = framing::encode(&request, &mut frame[1..])
        .map_err(|e| io::Error::new(ErrorKind::InvalidInput, format!("cannot encode Hello: {e:?}")))?;
    stream.write_all(&frame[..1 + n])?;

    let mut acc = Box::new(FrameAccumulator::new());
    let mut buf = vec![0u8; MAX_ENCODED_FRAME.min(4096)];
    let result = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(io::Error::new(ErrorKind::TimedOut, format!("no answer to Hello within {timeout:?}")));
        }
        stream.set_read_timeout(Some(left))?;
        let got = match stream.read(&mut buf) {
            Ok(0) => break Err(io::Error::new(ErrorKind::UnexpectedEof, "the token closed the connection")),
            Ok(got) => got,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => break Err(e),
        };
        if let Some(version) = find_answer(&mut acc, &buf[..got]) {
            break Ok(version);
        }
    };
    stream.set_read_timeout(None)?;
    result
}

/// Feeds bytes to the accumulator; returns the firmware version once the probe's answer is in.
fn find_answer(acc: &mut FrameAccumulator, mut input: &[u8]) -> Option<String> {
    while !input.is_empty() {
        match acc.push(input) {
            Feed::NeedMore => break,
            Feed::Frame(payload, used) => {
                input = &input[used..];
                if let Ok(frame) = framing::decode_response(payload) {
                    if frame.id == PROBE_ID {
                        return Some(match frame.result {
                            Ok(Response::Hello(pkms_protocol::reply::Hello { firmware_version, .. })) => {
                                firmware_version.to_owned()
                            }
                            _ => String::new(),
                        });
                    }
                }
            }
            Feed::Overflow(used) | Feed::Malformed(used) => input = &input[used..],
        }
    }
    None
}
