//! The token: for every request frame, in this order —
//!
//! 1. decode the frame (a frame that does not decode gets MalformedFrame, nothing else runs);
//! 2. let host time advance the clock, and do the rotations and deletions that came due;
//! 3. the gate ([`crate::gate`]) decides, with the session ([`crate::auth`]) and the key
//!    policies ([`crate::policy`]), and resolves the keys the request names;
//! 4. the operation runs ([`crate::dispatch`]);
//! 5. the audit log ([`crate::audit`]) records it — before the answer leaves the token; if the
//!    entry cannot be written the answer is withheld;
//! 6. the answer is encoded and every buffer that held request or answer data is wiped.

use pkms_protocol::framing;
use pkms_protocol::messages::{RequestFrame, ResponseFrame, WireError};
use pkms_protocol::{ErrorCode, Request, Response};

use crate::audit::Log;
use crate::auth::Auth;
use crate::board::Board;
use crate::dispatch::{dispatch, Cx};
use crate::error::Error;
use crate::gate;
use crate::ops::Buffers;
use crate::platform::Platform;
use crate::serve::error_frame;
use crate::state::Core;

/// The token core over a [`Platform`].
pub struct Token<P: Platform> {
    core: Core<P>,
    bufs: Buffers,
    auth: Auth,
    log: Log,
}

impl<P: Platform> Token<P> {
    /// Mounts the store on `flash` (formatting an erased flash) and returns a ready token.
    /// Never panics: on a damaged or foreign flash the token still answers Hello and GetInfo,
    /// and key operations answer StorageCorrupted (or Internal for an unsupported geometry).
    pub fn new(flash: P::Flash, rng: P::Rng, board: P::Board) -> Self {
        let mut bufs = Buffers::new();
        let mut core = Core::mount(flash, rng, board, &mut bufs.key);
        let auth = Auth::mount(&mut core);
        // After every principal has an id (Auth::mount): access records naming principals by name.
        if core.is_usable() {
            let _ = crate::policy::migrate(&mut core, &mut bufs);
        }
        let log = Log::mount(&mut core);
        crate::policy::drop_orphans(&mut core);
        bufs.wipe();
        Token { core, bufs, auth, log }
    }

    /// Handles one COBS-decoded request payload; writes the COBS-encoded response frame
    /// (with its 0x00 delimiter) into `out` and returns its length. Never panics on any input.
    pub fn handle_payload(&mut self, payload: &[u8], out: &mut [u8]) -> usize {
        let frame: RequestFrame<'_> = match framing::decode_request(payload) {
            Ok(f) => f,
            Err(_) => return error_frame(ErrorCode::MalformedFrame, "request could not be decoded", out),
        };
        self.core.board().activity(true);
        let n = self.handle(&frame, out);
        self.bufs.wipe();
        self.core.board().activity(false);
        n
    }

    fn handle(&mut self, frame: &RequestFrame<'_>, out: &mut [u8]) -> usize {
        let Token { core, bufs, auth, log } = self;
        let id = frame.id;
        let request = &frame.request;
        core.observe_time(frame.now);
        core.run_due(&mut bufs.key);
        let now_ms = core.board().uptime_ms();
        auth.touch(now_ms);
        if let Request::Hello(_) = request {
            auth.end_session();
        }
        let admitted = gate::admit(core, auth, log, &mut bufs.work, request);
        let audit_key = admitted.as_ref().ok().and_then(|a| a.audit_key());
        let result = match &admitted {
            Ok(admitted) => dispatch(Cx { core, bufs, auth, log, admitted }, request),
            Err(e) => Err(e.clone()),
        };
        let (n, outcome, key_id, key_version) = match result {
            Ok(response) => {
                let (rid, version) = response.audit_key();
                (encode(id, Ok(response), out), Ok(()), rid.or(audit_key), version)
            }
            Err(e) => (
                encode(id, Err(WireError { code: e.code, message: &e.message }), out),
                Err(e.code),
                audit_key,
                0,
            ),
        };
        let recorded = log.record(
            core,
            auth.caller(),
            auth.audit_full(),
            request.operation(),
            outcome,
            key_id,
            key_version,
        );
        match recorded {
            Ok(()) => n,
            Err(e) => {
                let e = Error::format(
                    e.code,
                    format_args!(
                        "the audit log could not be written ({}); the answer is withheld",
                        e.message
                    ),
                );
                encode(id, Err(WireError { code: e.code, message: &e.message }), out)
            }
        }
    }

    /// Ends the current connection's session (boards call it when the host goes away, e.g. a
    /// USB DTR drop; a Hello does the same).
    pub fn end_connection(&mut self) {
        self.auth.end_session();
    }

    /// The flash, e.g. for tests that inspect it.
    pub fn flash(&self) -> &P::Flash {
        self.core.flash()
    }

    /// Stops the token and gives the flash back (e.g. to persist it or remount it).
    pub fn into_flash(self) -> P::Flash {
        self.core.into_flash()
    }

    /// The board.
    pub fn board_mut(&mut self) -> &mut P::Board {
        self.core.board()
    }
}

fn encode(id: u32, result: Result<Response<'_>, WireError<'_>>, out: &mut [u8]) -> usize {
    match framing::encode(&ResponseFrame { id, result }, out) {
        Ok(n) => n,
        Err(_) => {
            let e = WireError { code: ErrorCode::Internal, message: "response too large for a frame" };
            framing::encode(&ResponseFrame { id, result: Err(e) }, out)
                .unwrap_or_else(|_| error_frame(ErrorCode::Internal, "response too large", out))
        }
    }
}

#[cfg(test)]
mod tests;
