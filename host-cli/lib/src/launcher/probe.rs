//! The liveness probe the launcher runs on every connection before handing it out, over either
//! link: a lone 0x00 (ends any partial frame a previous client left), then Hello, then wait for
//! the answer. A token that answers is alive and in sync; one that does not is restarted.

use std::time::{Duration, Instant};

use pkms_protocol::framing::{self, Feed, FrameAccumulator};
use pkms_protocol::limits::MAX_ENCODED_FRAME;
use pkms_protocol::{Request, RequestFrame, Response, PROTOCOL_VERSION};

use crate::error::LinkError;
use crate::transport::Transport;

/// Request id of the probe's Hello (clients number their own requests from 1).
const PROBE_ID: u32 = 0xFFFF_FF00;

/// Exchanges Hello over `link` within `timeout`. Returns the token's answer: its protocol and
/// firmware versions (`None` if it refused the Hello, e.g. another protocol version: it is alive
/// all the same). Error frames about earlier garbage are skipped.
pub fn hello(link: &mut dyn Transport, timeout: Duration) -> Result<Option<(u16, String)>, LinkError> {
    let deadline = Instant::now() + timeout;
    // A lone delimiter first: ends any partial frame a previous client left behind.
    let mut frame = [0u8; 64];
    let request = RequestFrame {
        id: PROBE_ID,
        now: None,
        request: Request::Hello(pkms_protocol::request::Hello { protocol_version: PROTOCOL_VERSION }),
    };
    let n = framing::encode(&request, &mut frame[1..])
        .map_err(|e| LinkError::Protocol(format!("cannot encode Hello: {e:?}")))?;
    link.send(&frame[..1 + n])?;

    let mut acc = Box::new(FrameAccumulator::new());
    let mut buf = vec![0u8; MAX_ENCODED_FRAME.min(4096)];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LinkError::Timeout(timeout));
        }
        let got = link.recv(&mut buf, left).map_err(|e| match e {
            LinkError::Timeout(_) => LinkError::Timeout(timeout),
            e => e,
        })?;
        if let Some(version) = find_answer(&mut acc, &buf[..got]) {
            return Ok(version);
        }
    }
}

/// Feeds bytes to the accumulator; returns the token's answer once the probe's is in (inside:
/// the versions, or `None` for a refusal).
fn find_answer(acc: &mut FrameAccumulator, mut input: &[u8]) -> Option<Option<(u16, String)>> {
    while !input.is_empty() {
        match acc.push(input) {
            Feed::NeedMore => break,
            Feed::Frame(payload, used) => {
                input = &input[used..];
                if let Ok(frame) = framing::decode_response(payload) {
                    if frame.id == PROBE_ID {
                        return Some(match frame.result {
                            Ok(Response::Hello(pkms_protocol::reply::Hello {
                                protocol_version,
                                firmware_version,
                            })) => Some((protocol_version, firmware_version.to_owned())),
                            _ => None,
                        });
                    }
                }
            }
            Feed::Overflow(used) | Feed::Malformed(used) => input = &input[used..],
        }
    }
    None
}
