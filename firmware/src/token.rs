//! The token: for every request frame, in this order —
//!
//! 1. decode the frame (a frame that does not decode, or has bytes after the request, gets
//!    MalformedFrame and nothing else runs);
//! 2. a session frame is opened with its session's key ([`crate::session`]): a wrong counter or
//!    tag refuses it and ends the session; the request inside runs in the session, with its login;
//! 3. host time advances the clock as far as the caller may move it ([`TimeAuthority`]), and the
//!    rotations and deletions that came due are done;
//! 4. the gate ([`crate::gate`]) decides, with the session's login ([`crate::auth`]) and the key
//!    policies ([`crate::policy`]), and resolves the keys the request names;
//! 5. the operation runs ([`crate::dispatch`]);
//! 6. the audit log ([`crate::audit`]) records what the token did by itself and the request —
//!    before the answer leaves the token; if the entry cannot be written the answer is withheld;
//! 7. the answer is encoded (and sealed, in a session) and every buffer that held request or
//!    answer data is wiped.

use pkms_protocol::access::{AuditEvent, AuditFullMode, Role};
use pkms_protocol::limits::{MAX_ENCODED_FRAME, MAX_FRAME};
use pkms_protocol::messages::{RequestFrame, ResponseFrame, WireError};
use pkms_protocol::session::TAG_LEN;
use pkms_protocol::{framing, reply, ErrorCode, Request, Response, SelfTest, SelfTests};

use crate::audit::{Log, Recording};
use crate::auth::Auth;
use crate::backup::Transfer;
use crate::board::Board;
use crate::caller::Caller;
use crate::dispatch::{dispatch, Cx};
use crate::error::{Error, OpResult};
use crate::gate;
use crate::ops::Buffers;
use crate::platform::Platform;
use crate::selftest::{self, Kats};
use crate::serve::error_frame;
use crate::session::Sessions;
use crate::state::{Core, DueEvent, TimeAuthority, MAX_DUE_PER_REQUEST, MAX_UNIX_TIME};

/// The token core over a [`Platform`].
pub struct Token<P: Platform> {
    core: Core<P>,
    bufs: Buffers,
    auth: Auth,
    log: Log,
    sessions: Sessions,
    /// The backup or restore in progress.
    transfer: Transfer,
    /// A session's answer before it is sealed; the COBS encoding of every answer passes
    /// through it too.
    sealed: [u8; MAX_ENCODED_FRAME],
}

/// Where a decoded frame goes.
enum Route {
    /// In the clear.
    Plain,
    /// A session frame: the frame id, the session, the counter, and where the sealed bytes are
    /// in the payload.
    Sealed { id: u32, session: u32, counter: u64, at: usize, len: usize },
}

impl<P: Platform> Token<P> {
    /// Runs the power-on self-tests ([`crate::selftest`]), mounts the store on `flash`
    /// (formatting an erased flash) and returns a ready token. Never panics: on a damaged or
    /// foreign flash the token still answers Hello and GetInfo, and key operations answer
    /// StorageCorrupted (or Internal for an unsupported geometry). If a self-test fails, the
    /// token is in its error state: Hello, GetInfo and GetSelfTests (which names the test)
    /// answer, every other request gets SelfTestFailed, and nothing is written to the flash.
    pub fn new(flash: P::Flash, rng: P::Rng, board: P::Board) -> Self {
        Self::with_self_test_answers(flash, rng, board, &selftest::KATS)
    }

    /// As [`Token::new`], with the self-tests expecting `answers` (a corrupted one proves the
    /// error state).
    pub fn with_self_test_answers(flash: P::Flash, mut rng: P::Rng, board: P::Board, answers: &Kats) -> Self {
        // A board without entropy: its generator is never drawn from (not even here).
        let rng_ready = board.entropy_missing().is_none();
        let self_tests = match selftest::run(answers, rng_ready.then_some(&mut rng)) {
            Ok(()) => SelfTests::Passed,
            Err(test) => SelfTests::Failed(test),
        };
        Self::mount(flash, rng, board, self_tests)
    }

    /// A token whose board found one of its own tests failed before the core's ran (the nRF52840's
    /// TRNG health tests: `failed` is [`SelfTest::Drbg`]): it starts in the error state, naming
    /// `failed`, and never draws from `rng`.
    pub fn in_error_state(flash: P::Flash, rng: P::Rng, board: P::Board, failed: SelfTest) -> Self {
        Self::mount(flash, rng, board, SelfTests::Failed(failed))
    }

    fn mount(flash: P::Flash, rng: P::Rng, board: P::Board, self_tests: SelfTests) -> Self {
        let mut bufs = Buffers::new();
        let mut core = Core::mount(flash, rng, board, &mut bufs.key, self_tests);
        let auth = Auth::mount(&mut core);
        // After every principal has an id (Auth::mount): access records naming principals by name.
        if core.is_usable() {
            let _ = crate::policy::migrate(&mut core, &mut bufs);
        }
        let log = Log::mount(&mut core);
        if self_tests == SelfTests::Passed {
            crate::policy::drop_orphans(&mut core);
        }
        bufs.wipe();
        Token {
            core,
            bufs,
            auth,
            log,
            sessions: Sessions::new(),
            transfer: Transfer::default(),
            sealed: [0; MAX_ENCODED_FRAME],
        }
    }

    /// This boot's power-on self-tests.
    pub fn self_tests(&self) -> SelfTests {
        self.core.self_tests()
    }

    /// Handles one COBS-decoded request payload (decrypted in place when it is a session frame);
    /// writes the COBS-encoded response frame (with its 0x00 delimiter) into `out` and returns
    /// its length. Never panics on any input.
    pub fn handle_payload(&mut self, payload: &mut [u8], out: &mut [u8]) -> usize {
        self.core.board().activity(true);
        let n = self.handle(payload, out);
        self.bufs.wipe();
        self.sealed.fill(0);
        payload.fill(0);
        self.core.board().activity(false);
        n
    }

    /// Work done between requests so the next one answers sooner: today the ephemeral key of
    /// the next session handshake (one P-256 key generation after each handshake, nothing
    /// otherwise). Boards call it when no request is waiting; a request that arrives meanwhile
    /// waits for it, so the work waits in turn while a host is in mid-conversation
    /// ([`crate::session::Sessions::in_use`]: a session had a frame in the last
    /// [`crate::session::WORK_AHEAD_QUIET_MS`]) and is done once every session is closed or
    /// quiet. Never draws randomness from a token that has none to give (no entropy at boot, a
    /// failed self-test or health test).
    pub fn idle(&mut self) {
        if self.core.check_entropy() {
            self.sessions.end_all();
        }
        if self.core.self_tests() == SelfTests::Passed
            && self.core.is_usable()
            && self.sessions.prepared().is_none()
            && !self.sessions.in_use(self.core.board().uptime_ms())
        {
            self.sessions.prepare(self.core.rng());
        }
    }

    fn handle(&mut self, payload: &mut [u8], out: &mut [u8]) -> usize {
        if self.core.check_entropy() {
            self.sessions.end_all();
        }
        if let SelfTests::Failed(test) = self.core.self_tests() {
            return self.handle_in_error_state(test, payload, out);
        }
        let route = match framing::decode_request(payload) {
            Err(_) => return error_frame(ErrorCode::MalformedFrame, "request could not be decoded", out),
            // Only a session frame is sealed; every other request is answered in the clear.
            Ok(frame) => {
                if let Request::SessionFrame(f) = &frame.request {
                    Route::Sealed {
                        id: frame.id,
                        session: f.session_id,
                        counter: f.counter,
                        at: f.sealed.as_ptr() as usize - payload.as_ptr() as usize,
                        len: f.sealed.len(),
                    }
                } else {
                    Route::Plain
                }
            }
        };
        match route {
            Route::Plain => {
                let Ok(frame) = framing::decode_request(payload) else {
                    return error_frame(ErrorCode::MalformedFrame, "request could not be decoded", out);
                };
                self.auth.enter(false, None);
                let Token { core, bufs, auth, log, sessions, transfer, sealed: scratch } = self;
                let answer = run(Parts { core, bufs, auth, log, sessions, transfer, slot: None }, &frame);
                let reset = resets_the_token(&frame.request, &answer);
                let n = with_frame(frame.id, answer, |f| encode_frame(f, out, scratch));
                self.auth.leave();
                if reset {
                    self.sessions.end_all();
                }
                n
            }
            Route::Sealed { id, session, counter, at, len } => {
                let Some(sealed) = payload.get_mut(at..at + len) else {
                    return error_frame(ErrorCode::MalformedFrame, "request could not be decoded", out);
                };
                self.handle_sealed(id, session, counter, sealed, out)
            }
        }
    }

    /// The error state a failed self-test leaves: Hello, GetInfo and GetSelfTests answer (in the clear, with
    /// no clock, gate or audit log: nothing touches the flash); everything else is refused.
    fn handle_in_error_state(&mut self, failed: SelfTest, payload: &[u8], out: &mut [u8]) -> usize {
        let Ok(frame) = framing::decode_request(payload) else {
            return error_frame(ErrorCode::MalformedFrame, "request could not be decoded", out);
        };
        let answer = if let Request::Hello(r) = &frame.request {
            crate::ops::info::hello(r)
        } else if let Request::GetInfo(_) = &frame.request {
            crate::ops::info::get_info(&self.core, self.auth.is_initialized(), Default::default())
        } else if let Request::GetSelfTests(_) = &frame.request {
            crate::ops::info::get_self_tests(&self.core)
        } else {
            Err(Error::format(
                ErrorCode::SelfTestFailed,
                format_args!(
                    "the power-on self-test {} failed: this token answers only Hello, GetInfo and GetSelfTests",
                    failed.name()
                ),
            ))
        };
        with_frame(frame.id, answer, |f| encode_frame(f, out, &mut self.sealed))
    }

    /// A session frame: open it, run the request inside with the session's login, seal the
    /// answer.
    fn handle_sealed(
        &mut self,
        id: u32,
        session: u32,
        counter: u64,
        sealed: &mut [u8],
        out: &mut [u8],
    ) -> usize {
        let now_ms = self.core.board().uptime_ms();
        let slot = match self.sessions.open_frame(now_ms, session, counter, sealed) {
            Ok(slot) => slot,
            Err(refused) => {
                let e = WireError { code: ErrorCode::SessionEnded, message: refused.message() };
                return encode_frame(&ResponseFrame { id, result: Err(e) }, out, &mut self.sealed);
            }
        };
        let text_len = sealed.len() - TAG_LEN;
        let inner = match framing::decode_request(&sealed[..text_len]) {
            Ok(f) => f,
            Err(_) => {
                self.sessions.end_slot(slot);
                let e = WireError {
                    code: ErrorCode::MalformedFrame,
                    message: "the sealed request could not be decoded: the session has ended",
                };
                return encode_frame(&ResponseFrame { id, result: Err(e) }, out, &mut self.sealed);
            }
        };
        let closing = matches!(inner.request, Request::CloseSession(_));
        let login = self.sessions.take_login(slot);
        self.auth.enter(true, login);
        let Token { core, bufs, auth, log, sessions, transfer, sealed: plain } = self;
        let answer = if matches!(inner.request, Request::SessionFrame(_) | Request::OpenSession(_)) {
            Err(Error::new(
                ErrorCode::Validation,
                "a session frame or handshake cannot travel inside a session",
            ))
        } else {
            run(Parts { core, bufs, auth, log, sessions, transfer, slot: Some(slot) }, &inner)
        };
        // A factory reset made a new device key: every session (this one once its answer is
        // sealed) belongs to a token that no longer exists.
        let reset = resets_the_token(&inner.request, &answer);
        // A deleted principal is logged out everywhere: its other sessions end once the answer
        // is encoded (this one, if it deleted itself, was logged out by the deletion).
        let deleted = match (&inner.request, &answer) {
            (Request::DeletePrincipal(r), Ok(_)) => Some(r.name),
            _ => None,
        };
        // A principal who logs in is told how full the audit log is, after the answer's frame.
        let logged_in = matches!(inner.request, Request::Authenticate(_)) && answer.is_ok();
        // The inner answer, postcard-encoded (no COBS), then sealed in place.
        let inner_id = inner.id;
        let room = &mut plain[..MAX_FRAME - TAG_LEN];
        let n = match with_frame(inner_id, answer, |frame| postcard::to_slice(frame, room).map(|s| s.len())) {
            Ok(n) => n,
            Err(_) => {
                let fallback = ResponseFrame {
                    id: inner_id,
                    result: Err(WireError {
                        code: ErrorCode::Internal,
                        message: "response too large for a frame",
                    }),
                };
                postcard::to_slice(&fallback, &mut plain[..MAX_FRAME - TAG_LEN]).map_or(0, |s| s.len())
            }
        };
        let n = if logged_in {
            let status = log.status(core, auth.audit_full());
            postcard::to_slice(&status, &mut plain[n..MAX_FRAME - TAG_LEN]).map_or(n, |s| n + s.len())
        } else {
            n
        };
        if let Some(name) = deleted {
            sessions.end_logins_of(name);
        }
        let login = auth.leave();
        sessions.put_login(slot, login);
        let mut tag = [0u8; TAG_LEN];
        let sealed_answer = sessions.seal_frame(slot, &mut plain[..n], &mut tag);
        if closing {
            sessions.end_slot(slot);
        }
        if reset {
            sessions.end_all();
        }
        let Some((session_id, counter)) = sealed_answer else {
            let e = WireError { code: ErrorCode::SessionEnded, message: "the session ended" };
            return encode_frame(&ResponseFrame { id, result: Err(e) }, out, plain);
        };
        plain[n..n + TAG_LEN].copy_from_slice(&tag);
        // The outer frame: postcard into `out`, then COBS through `plain` (the sealed bytes
        // are in `out` by then).
        let result = Ok(Response::SessionFrame(reply::SessionFrame {
            session_id,
            counter,
            sealed: &plain[..n + TAG_LEN],
        }));
        let serialized = postcard::to_slice(&ResponseFrame { id, result }, &mut out[..]).map(|s| s.len());
        match serialized.map(|m| framing::cobs_frame_via(out, m, plain)) {
            Ok(Ok(len)) => len,
            Ok(Err(_)) | Err(_) => {
                let e = WireError { code: ErrorCode::Internal, message: "response too large for a frame" };
                encode_frame(&ResponseFrame { id, result: Err(e) }, out, plain)
            }
        }
    }

    /// Ends every session (boards call it when the host goes away, e.g. a USB DTR drop).
    pub fn end_connection(&mut self) {
        self.sessions.end_all();
    }

    /// The flash, e.g. for tests that inspect it.
    pub fn flash(&self) -> &P::Flash {
        self.core.flash()
    }

    /// The flash, e.g. for tests and fuzzing that cut its power.
    pub fn flash_mut(&mut self) -> &mut P::Flash {
        self.core.flash_mut()
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

/// The token's parts one request works with.
struct Parts<'t, P: Platform> {
    core: &'t mut Core<P>,
    bufs: &'t mut Buffers,
    auth: &'t mut Auth,
    log: &'t mut Log,
    sessions: &'t mut Sessions,
    transfer: &'t mut Transfer,
    /// The session the request arrived in.
    slot: Option<usize>,
}

/// Runs one request (in the clear, or the one inside a session frame) through the clock, the
/// gate, its handler and the audit log; returns the answer to encode.
fn run<'t, P: Platform>(p: Parts<'t, P>, frame: &RequestFrame<'_>) -> OpResult<Response<'t>> {
    let Parts { core, bufs, auth, log, sessions, transfer, slot } = p;
    let request = &frame.request;
    if frame.now.is_some_and(|t| t > MAX_UNIX_TIME) {
        return Err(Error::new(ErrorCode::Validation, "the request's time is after the year 9999"));
    }
    let uptime_ms = core.board().uptime_ms();
    let asked_as = auth.caller().unnamed();
    // While a log that refuses when full is full, the token does nothing it could not record:
    // its clock stays, and due deletions and rotations wait until the log is trimmed.
    let log_refuses =
        asked_as.initialized() && auth.audit_full() == AuditFullMode::Refuse && log.is_full(core);
    let authority = if log_refuses { TimeAuthority::Ignore } else { time_authority(asked_as) };
    let moved = core.observe_time(frame.now, authority, uptime_ms);
    let mut due: heapless::Vec<DueEvent, MAX_DUE_PER_REQUEST> = heapless::Vec::new();
    if authority != TimeAuthority::Ignore {
        core.run_due(&mut bufs.key, &mut due);
    }
    // What the token did by itself is recorded first, by itself (no principal).
    if asked_as.initialized() {
        let mode = auth.audit_full();
        if moved.is_some() {
            log.record_event(core, mode, AuditEvent::ClockMoved, None, 0)?;
        }
        for event in &due {
            match *event {
                DueEvent::Rotated(key, version) => {
                    log.record_event(core, mode, AuditEvent::AutomaticRotation, Some(key), version)?
                }
                DueEvent::Deleted(key) => {
                    log.record_event(core, mode, AuditEvent::AutomaticDeletion, Some(key), 0)?
                }
            }
        }
    }
    // A log that refuses when full and is full now admits only what is served anyway.
    let full_when_admitted =
        asked_as.initialized() && auth.audit_full() == AuditFullMode::Refuse && log.is_full(core);
    let admitted = gate::admit(core, auth, log, &mut bufs.work, request);
    let audit_key = admitted.as_ref().ok().and_then(|a| a.audit_key());
    let result = match &admitted {
        Ok(admitted) => dispatch(Cx { core, bufs, auth, log, sessions, transfer, slot, admitted }, request),
        Err(e) => Err(e.clone()),
    };
    // A rotation the encryption limit forced inside the operation comes before its entry.
    if let Some((key, version)) = core.take_limit_rotation() {
        if asked_as.initialized() {
            if let Err(e) = log.record_event(
                core,
                auth.audit_full(),
                AuditEvent::EncryptionLimitRotation,
                Some(key),
                version,
            ) {
                return Err(withheld(e));
            }
        }
    }
    let (outcome, key_id, key_version) = match &result {
        Ok(response) => {
            let (rid, version) = response.audit_key();
            (Ok(()), rid.or(audit_key), version)
        }
        Err(e) => (Err(e.code), audit_key, 0),
    };
    // The entry names the caller as the request left it: a successful Authenticate or
    // Initialize is recorded as the principal it logged in.
    let caller = auth.caller();
    // The caller as the request arrived decides what the log does with it; on an open token,
    // Initialize is recorded as the administrator it makes. A restore that completes made the
    // token initialised with no one logged in: its entry is the one the restore wrote.
    let restoring = matches!(request, Request::BackupRestoreChunk(_));
    let decides = if asked_as == Caller::Open && !restoring { caller } else { asked_as };
    match crate::audit::recording(decides, request, outcome) {
        Recording::Entry => {}
        Recording::Counted(count) => {
            return match log.count(core, count) {
                Ok(()) => result,
                Err(e) => Err(withheld(e)),
            };
        }
        Recording::Nothing => return result,
    }
    let mode = auth.audit_full();
    match log.record(
        core,
        caller,
        mode,
        full_when_admitted,
        request.operation(),
        outcome,
        key_id,
        key_version,
    ) {
        Ok(()) => result,
        Err(e) => Err(withheld(e)),
    }
}

/// The answer to a request whose audit entry could not be written (`e` says why).
fn withheld(e: Error) -> Error {
    Error::format(
        e.code,
        format_args!("the audit log could not be written ({}); the answer is withheld", e.message),
    )
}

/// How far a caller may move the token's clock: anyone on an open token and an administrator
/// vouch for the time; a user moves it within the vouched bound; no one else moves it.
fn time_authority(caller: Caller<'_>) -> TimeAuthority {
    match caller {
        Caller::Open | Caller::Principal { role: Role::Admin, .. } => TimeAuthority::Vouch,
        Caller::Principal { role: Role::User, .. } => TimeAuthority::Bounded,
        Caller::Outside | Caller::Nobody => TimeAuthority::Ignore,
    }
}

/// Whether `answer` is that of a factory reset that happened.
fn resets_the_token(request: &Request<'_>, answer: &OpResult<Response<'_>>) -> bool {
    matches!(request, Request::FactoryReset(_)) && answer.is_ok()
}

/// Hands `answer`, as a response frame with `id`, to `write`.
fn with_frame<T>(id: u32, answer: OpResult<Response<'_>>, write: impl FnOnce(&ResponseFrame<'_>) -> T) -> T {
    match answer {
        Ok(r) => write(&ResponseFrame { id, result: Ok(r) }),
        Err(e) => write(&ResponseFrame { id, result: Err(WireError { code: e.code, message: &e.message }) }),
    }
}

/// Encodes a response frame into `out` (COBS through `scratch`); one too large for a frame
/// becomes an Internal error frame.
fn encode_frame(frame: &ResponseFrame<'_>, out: &mut [u8], scratch: &mut [u8]) -> usize {
    match framing::encode_via(frame, out, scratch) {
        Ok(n) => n,
        Err(_) => error_frame(ErrorCode::Internal, "response too large for a frame", out),
    }
}

#[cfg(test)]
mod tests;
