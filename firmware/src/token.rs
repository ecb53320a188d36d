//! The token: dispatches decoded requests to the operation modules.
//!
//! SKELETON: answers Hello, GetInfo and GenerateRandom; every other request is
//! UnsupportedOperation until the operation modules land.

use embedded_storage::nor_flash::NorFlash;
use pkms_protocol::framing;
use pkms_protocol::limits::MAX_RANDOM_BYTES;
use pkms_protocol::messages::{Request, RequestFrame, Response, ResponseFrame, WireError};
use pkms_protocol::{ErrorCode, TokenInfo, PROTOCOL_VERSION};
use rand_core::{CryptoRng, RngCore};

use crate::board::Board;
use crate::serve::error_frame;
use crate::FIRMWARE_VERSION;

/// The token core over a flash, an RNG and a board.
pub struct Token<F, R, B> {
    flash: F,
    rng: R,
    board: B,
    scratch: [u8; MAX_RANDOM_BYTES],
}

impl<F, R, B> Token<F, R, B>
where
    F: NorFlash,
    R: RngCore + CryptoRng,
    B: Board,
{
    /// Mounts the store on `flash` (formatting an erased flash) and returns a ready token.
    pub fn new(flash: F, rng: R, board: B) -> Self {
        Token { flash, rng, board, scratch: [0; MAX_RANDOM_BYTES] }
    }

    /// Handles one COBS-decoded request payload; writes the COBS-encoded response frame
    /// (with its 0x00 delimiter) into `out` and returns its length. Never panics on any input.
    pub fn handle_payload(&mut self, payload: &[u8], out: &mut [u8]) -> usize {
        let frame: RequestFrame<'_> = match framing::decode_request(payload) {
            Ok(f) => f,
            Err(_) => return error_frame(ErrorCode::MalformedFrame, "request could not be decoded", out),
        };
        self.board.activity(true);
        let id = frame.id;
        let Token { flash, rng, board, scratch } = self;
        let result = match frame.request {
            Request::Hello { protocol_version } if protocol_version == PROTOCOL_VERSION => {
                Ok(Response::Hello { protocol_version: PROTOCOL_VERSION, firmware_version: FIRMWARE_VERSION })
            }
            Request::Hello { .. } => Err(WireError {
                code: ErrorCode::UnsupportedProtocolVersion,
                message: "host and token speak different protocol versions",
            }),
            Request::GetInfo => {
                let info = board.info();
                let total = (flash.capacity()) as u32;
                Ok(Response::Info(TokenInfo {
                    firmware_version: FIRMWARE_VERSION,
                    protocol_version: PROTOCOL_VERSION,
                    board: info.name,
                    platform: info.platform,
                    entropy_source: info.entropy_source,
                    key_protection: info.key_protection,
                    storage_total_bytes: total,
                    storage_free_bytes: total,
                    key_count: 0,
                    time_high_water_mark: frame.now.unwrap_or(0),
                    initialized: false,
                }))
            }
            Request::GenerateRandom { number_of_bytes } => {
                let n = number_of_bytes as usize;
                if n == 0 || n > MAX_RANDOM_BYTES {
                    Err(WireError { code: ErrorCode::Validation, message: "NumberOfBytes must be 1..=1024" })
                } else {
                    rng.fill_bytes(&mut scratch[..n]);
                    Ok(Response::Random { plaintext: &scratch[..n] })
                }
            }
            _ => Err(WireError { code: ErrorCode::UnsupportedOperation, message: "not implemented yet" }),
        };
        let n = framing::encode(&ResponseFrame { id, result }, out)
            .unwrap_or_else(|_| error_frame(ErrorCode::Internal, "response too large", out));
        self.board.activity(false);
        n
    }
}
