//! The typed client: one generic [`Client::call`] that sends any request struct and returns its
//! reply, owned ([`crate::model::Owned`]); convenience methods per operation that build the
//! request from host types; one error type.
//!
//! A [`Client`] owns a [`Transport`]. At connect it sends a lone 0x00 (which ends any partial
//! frame a previous host left on the token) and a Hello with a generous timeout (QEMU's first
//! exchange can stall about a second). Every request carries a fresh, increasing request id and
//! the host's wall time; response frames with another id are stale and discarded.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pkms_protocol::access::AuditLogStatus;
use pkms_protocol::context::EncryptionContext;
use pkms_protocol::framing::{self, Feed, FrameAccumulator, FrameError};
use pkms_protocol::limits::{MAX_ENCODED_FRAME, MAX_TAGS_PER_KEY};
use pkms_protocol::messages::{Request, RequestFrame, Response};
use pkms_protocol::{
    DataKeyPairSpec, DataKeySpec, EncapsulationAlgorithm, ErrorCode, KeyAgreementAlgorithm, KeyVersion,
    MacAlgorithm, MessageType, SigningAlgorithm, UnixTime, PROTOCOL_VERSION,
};
use zeroize::Zeroizing;

use crate::error::{Error, LinkError, Result};
use crate::model::*;
use crate::session::{self as sealing, DeviceKey, Session};
use crate::transport::Transport;
use pkms_protocol::{request, Call, FromResponse, ReplyKind};

/// How long the first exchange (Hello) may take.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time one request may take (P-256 key generation under QEMU is the slowest).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An empty encryption context (an untyped `&[]` cannot infer the pair types).
pub const NO_CONTEXT: &[(&str, &str)] = &[];

/// A source of wall time (Unix seconds) sent with every request.
pub type Clock = Box<dyn Fn() -> Option<UnixTime> + Send>;

/// The system clock as Unix seconds (`None` if it is before 1970).
pub fn system_now() -> Option<UnixTime> {
    SystemTime::now().duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// A connected token. Not shareable between threads at once (`&mut self` per call); open one
/// client per thread, or put it behind a mutex.
pub struct Client {
    transport: Box<dyn Transport>,
    acc: Box<FrameAccumulator>,
    pending: Vec<u8>,
    tx: Vec<u8>,
    next_id: u32,
    timeout: Duration,
    clock: Clock,
    synced: bool,
    firmware_version: String,
    /// The open session, if any: every request travels sealed in it.
    session: Option<Session>,
    /// Whether calls stop at [`crate::interrupt::requested`] (not while dropping: the session
    /// is closed even then).
    heed_interrupt: bool,
    /// What the token said of its audit log at the last login.
    audit_log: Option<AuditLogStatus>,
    /// The QEMU token process this client reaches, holding its home's lock: the token a session
    /// may be cached for ([`crate::session_cache`]). `None` for any other token.
    qemu_token_pid: Option<u32>,
}

/// A response frame seen by [`Client::recv_raw`]: its id, and the error it carried if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// The request id it answers (0: a frame the token could not decode).
    pub id: u32,
    /// `None` for a success, else the error code and message.
    pub error: Option<(ErrorCode, String)>,
}

impl Drop for Client {
    /// Closes the open session: sends CloseSession without waiting for its answer. The token
    /// ends the session when it reads the frame, which it does before anything a later
    /// connection sends (QEMU's sockets serve one connection at a time, in order; the USB token
    /// also ends every session when its port closes), so the process need not stay for the
    /// answer. [`Client::close_session`] waits for it.
    fn drop(&mut self) {
        self.heed_interrupt = false;
        if self.session.is_some() {
            let _ = self.send_request(request::CloseSession {});
            self.session = None;
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("firmware_version", &self.firmware_version).finish_non_exhaustive()
    }
}

fn protocol(msg: impl Into<String>) -> Error {
    Error::Link(LinkError::Protocol(msg.into()))
}

fn unexpected(op: &str) -> Error {
    protocol(format!("the token answered {op} with a response of another kind"))
}

/// Whether each request and its answer are described on stderr (`pkms --debug`).
static DEBUG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns on (or off) describing each request and its answer on stderr: the operation, its
/// frame size, whether it travels inside the encrypted session, and the answer (`ok` or the
/// token's code). No secret is printed: only names and sizes.
pub fn set_debug(on: bool) {
    DEBUG.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn debugging() -> bool {
    DEBUG.load(std::sync::atomic::Ordering::Relaxed)
}

fn token_error(code: ErrorCode, message: &str) -> Error {
    Error::Token { code, message: message.to_owned() }
}

/// Builds a wire encryption context from string pairs.
fn wire_context<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Result<EncryptionContext<'_>> {
    let mut ctx = EncryptionContext::new();
    for (k, v) in pairs {
        ctx.push((k.as_ref(), v.as_ref())).map_err(|_| {
            Error::InvalidInput(format!(
                "an encryption context holds at most {} pairs",
                pkms_protocol::limits::MAX_CONTEXT_PAIRS
            ))
        })?;
    }
    Ok(ctx)
}

fn wire_tags(tags: &[Tag]) -> Result<pkms_protocol::Tags<'_>> {
    let mut out = pkms_protocol::Tags::new();
    for t in tags {
        out.push(pkms_protocol::Tag { tag_key: &t.tag_key, tag_value: &t.tag_value })
            .map_err(|_| Error::InvalidInput(format!("a key holds at most {MAX_TAGS_PER_KEY} tags")))?;
    }
    Ok(out)
}

impl Client {
    /// Connects over `transport`: flushes any partial frame, then exchanges Hello. Fails with
    /// [`ErrorCode::UnsupportedProtocolVersion`] if the token speaks another protocol version.
    pub fn connect<T: Transport + 'static>(transport: T) -> Result<Client> {
        Self::connect_boxed(Box::new(transport))
    }

    /// As [`Client::connect`], for an already boxed transport.
    pub fn connect_boxed(transport: Box<dyn Transport>) -> Result<Client> {
        Self::connect_with_timeout(transport, HELLO_TIMEOUT)
    }

    fn unsynced(transport: Box<dyn Transport>) -> Client {
        Client {
            transport,
            acc: Box::new(FrameAccumulator::new()),
            pending: Vec::new(),
            tx: vec![0u8; MAX_ENCODED_FRAME],
            next_id: 1,
            timeout: DEFAULT_TIMEOUT,
            clock: Box::new(system_now),
            synced: false,
            firmware_version: String::new(),
            session: None,
            heed_interrupt: true,
            audit_log: None,
            qemu_token_pid: None,
        }
    }

    /// A client over a transport whose Hello has just been answered on it (the launcher's
    /// liveness probe: a lone 0x00, then Hello, then its answer), so none is sent again:
    /// `protocol_version` and `firmware_version` are what the token answered. Fails as
    /// [`Client::connect`] does when the token speaks another protocol version.
    pub fn connect_after_hello(
        transport: Box<dyn Transport>,
        protocol_version: u16,
        firmware_version: &str,
    ) -> Result<Client> {
        if protocol_version != PROTOCOL_VERSION {
            return Err(token_error(
                ErrorCode::UnsupportedProtocolVersion,
                &format!("token speaks protocol {protocol_version}, host speaks {PROTOCOL_VERSION}"),
            ));
        }
        let mut client = Self::unsynced(transport);
        client.firmware_version = firmware_version.to_owned();
        client.synced = true;
        Ok(client)
    }

    /// As [`Client::connect_boxed`], waiting at most `hello_timeout` for the Hello answer.
    pub fn connect_with_timeout(transport: Box<dyn Transport>, hello_timeout: Duration) -> Result<Client> {
        let mut client = Self::unsynced(transport);
        client.transport.send(&[0])?;
        let version =
            client.call_with_timeout(request::Hello { protocol_version: PROTOCOL_VERSION }, hello_timeout)?;
        if version.0 != PROTOCOL_VERSION {
            return Err(token_error(
                ErrorCode::UnsupportedProtocolVersion,
                &format!("token speaks protocol {}, host speaks {PROTOCOL_VERSION}", version.0),
            ));
        }
        client.firmware_version = version.1;
        client.synced = true;
        Ok(client)
    }

    /// The QEMU token process this client reaches, if it reaches one through its home's
    /// launcher ([`crate::connect::open_qemu`]).
    pub fn qemu_token_pid(&self) -> Option<u32> {
        self.qemu_token_pid
    }

    /// Records that this client reaches the QEMU token process `pid` (with its home's lock).
    pub(crate) fn set_qemu_token_pid(&mut self, pid: u32) {
        self.qemu_token_pid = Some(pid);
    }

    /// The firmware version the token reported at connect.
    pub fn firmware_version(&self) -> &str {
        &self.firmware_version
    }

    /// What the token said of its audit log in its answer to the last successful Authenticate
    /// (entries held, capacity, room left, what happens when full); `None` before a login, or
    /// from a token that predates it.
    pub fn audit_log_status(&self) -> Option<AuditLogStatus> {
        self.audit_log
    }

    /// Sets how long each request may take (default [`DEFAULT_TIMEOUT`]).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Replaces the wall clock sent with requests (tests use it to move time forward; the token
    /// never moves its own time backwards).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    fn next_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        id
    }

    /// Sends raw bytes as they are (tests of the token's handling of garbage).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.transport.send(bytes)?;
        Ok(())
    }

    /// Waits for the next response frame of any id (tests of garbage handling).
    pub fn recv_raw(&mut self, timeout: Duration) -> Result<RawResponse> {
        let payload = self.read_payload(Instant::now() + timeout, timeout)?;
        let frame = framing::decode_response(&payload).map_err(|_| protocol("undecodable response frame"))?;
        Ok(RawResponse { id: frame.id, error: frame.result.err().map(|e| (e.code, e.message.to_owned())) })
    }

    /// Reads until one complete frame payload is available.
    fn read_payload(&mut self, deadline: Instant, timeout: Duration) -> Result<Vec<u8>> {
        let mut buf = [0u8; 4096];
        loop {
            while !self.pending.is_empty() {
                match self.acc.push(&self.pending) {
                    Feed::NeedMore => self.pending.clear(),
                    Feed::Frame(payload, used) => {
                        let out = payload.to_vec();
                        self.pending.drain(..used);
                        return Ok(out);
                    }
                    Feed::Overflow(used) | Feed::Malformed(used) => {
                        self.pending.drain(..used);
                        if self.synced {
                            return Err(protocol(
                                "the token sent a frame that is not valid COBS or too large",
                            ));
                        }
                    }
                }
            }
            if self.heed_interrupt && crate::interrupt::requested() {
                return Err(Error::Interrupted);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LinkError::Timeout(timeout).into());
            }
            // Wait in slices, looking at the interrupt mark between them.
            match self.transport.recv(&mut buf, left.min(crate::interrupt::POLL)) {
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(LinkError::Timeout(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Encodes `request` (sealed in the open session, if any) and sends it; returns its id.
    fn send_request<'q, C: Call<'q>>(&mut self, request: C) -> Result<u32> {
        let op = C::OPERATION.name();
        let request: Request<'q> = request.into();
        // A session whose keys have been on disk carries no secret: a fresh one takes over.
        if let Some(device) = self.session.as_ref().and_then(Session::from_disk_with) {
            if !crate::session_cache::may_travel(&request) {
                let device = device.clone();
                self.close_session()?;
                self.open_session(&device)?;
            }
        }
        if let Some(session) = &mut self.session {
            session.note_request(&request);
        }
        let id = self.next_id();
        let frame = RequestFrame { id, now: (self.clock)(), request };
        let too_large = |e: FrameError| match e {
            FrameError::TooLarge => Error::InvalidInput(format!(
                "the {op} request does not fit in one frame of {} bytes",
                pkms_protocol::limits::MAX_FRAME
            )),
            FrameError::Malformed => Error::InvalidInput(format!("the {op} request cannot be encoded")),
        };
        let n = match &mut self.session {
            None => framing::encode(&frame, &mut self.tx).map_err(too_large)?,
            Some(session) => {
                // The request frame, sealed, inside a SessionFrame (whose own time is unused).
                let mut inner = Zeroizing::new(vec![0u8; pkms_protocol::limits::MAX_FRAME]);
                let len = postcard::to_slice(&frame, &mut inner[..])
                    .map_err(|_| too_large(FrameError::TooLarge))?
                    .len();
                inner.truncate(len);
                let counter = session.seal(&mut inner);
                let outer = RequestFrame {
                    id,
                    now: None,
                    request: Request::SessionFrame(request::SessionFrame {
                        session_id: session.id(),
                        counter,
                        sealed: &inner,
                    }),
                };
                framing::encode(&outer, &mut self.tx).map_err(too_large)?
            }
        };
        drop(frame);
        if debugging() {
            let how = if self.session.is_some() { "in the encrypted session" } else { "in the clear" };
            eprintln!("debug: request {id}: {op} ({n} bytes, {how})");
        }
        self.transport.send(&self.tx[..n])?;
        self.tx[..n].fill(0);
        Ok(id)
    }

    /// Sends one request and returns its reply, owned: the one way every operation is called.
    /// The reply type follows from the request ([`Call::Reply`], kept as [`Owned::Output`]);
    /// a refusal is [`Error::Token`], a broken link [`Error::Link`].
    pub fn call<'q, C>(&mut self, request: C) -> Result<<C::Reply as Owned>::Output>
    where
        C: Call<'q>,
        C::Reply: Owned,
    {
        let timeout = self.timeout;
        self.call_with_timeout(request, timeout)
    }

    /// As [`Client::call`], waiting at most `timeout` for the answer.
    pub fn call_with_timeout<'q, C>(
        &mut self,
        request: C,
        timeout: Duration,
    ) -> Result<<C::Reply as Owned>::Output>
    where
        C: Call<'q>,
        C::Reply: Owned,
    {
        let op = C::OPERATION.name();
        let id = self.send_request(request)?;
        let deadline = Instant::now() + timeout;
        loop {
            let payload = Zeroizing::new(self.read_payload(deadline, timeout)?);
            let frame = match framing::decode_response(&payload) {
                Ok(f) => f,
                Err(_) if !self.synced => continue,
                Err(_) => return Err(protocol(format!("undecodable response frame to {op}"))),
            };
            let ours = frame.id == id || (frame.id == 0 && self.synced && frame.result.is_err());
            if !ours {
                continue; // a stale answer to an earlier request
            }
            let opened;
            let frame = match (&mut self.session, frame.result) {
                // A status after a clear answer is ignored: only one sealed in a session is
                // authenticated (anyone on the link could append one here).
                (None, result) => pkms_protocol::messages::ResponseFrame { id, result },
                (Some(session), Ok(Response::SessionFrame(f))) if f.session_id == session.id() => {
                    opened = match session.open(f.counter, f.sealed) {
                        Ok(text) => Zeroizing::new(text),
                        Err(e) => {
                            self.session = None;
                            return Err(e);
                        }
                    };
                    let (inner, status) = framing::decode_response_with_status(&opened)
                        .map_err(|_| protocol(format!("undecodable sealed answer to {op}")))?;
                    if inner.id != id {
                        self.session = None;
                        return Err(protocol(format!("the sealed answer to {op} is for another request")));
                    }
                    if status.is_some() {
                        self.audit_log = status;
                    }
                    inner
                }
                (Some(_), Ok(_)) => {
                    self.session = None;
                    return Err(protocol(format!("the token answered {op} outside the session")));
                }
                // The token refused the frame itself: the session has ended.
                (Some(_), Err(e)) => {
                    self.session = None;
                    return Err(token_error(e.code, e.message));
                }
            };
            if C::OPERATION == pkms_protocol::Operation::CloseSession
                || (C::OPERATION == pkms_protocol::Operation::FactoryReset && frame.result.is_ok())
            {
                // The token ends the session once it has answered (a factory reset ends every
                // session: the token has a new device key).
                self.session = None;
            }
            if debugging() {
                match &frame.result {
                    Ok(_) => eprintln!("debug: answer {id}: {op} ok"),
                    Err(e) => eprintln!("debug: answer {id}: {op} refused: {:?}: {}", e.code, e.message),
                }
            }
            return match frame.result {
                Ok(resp) => {
                    match <<C::Reply as ReplyKind>::Of<'_> as FromResponse<'_>>::from_response(resp) {
                        Some(reply) => Ok(<C::Reply as Owned>::own(reply)),
                        None => Err(unexpected(op)),
                    }
                }
                Err(e) => Err(token_error(e.code, e.message)),
            };
        }
    }

    /// GetDeviceKey: the token's device key, the static key of its session handshakes.
    pub fn device_key(&mut self) -> Result<DeviceKey> {
        let der = self.call(request::GetDeviceKey {})?;
        DeviceKey::from_spki_der(&der)
    }

    /// Opens an encrypted session with the token holding `device` (the pinned device key; see
    /// [`crate::pins`]): every later request travels sealed in it, until
    /// [`Client::close_session`], the client is dropped, or the token ends it. A session already
    /// open is closed first. Fails if the token does not hold `device`'s private key.
    pub fn open_session(&mut self, device: &DeviceKey) -> Result<()> {
        self.open_session_with(device, sealing::start(device, true)?)
    }

    /// As [`Client::open_session`], with message 1 already made by [`crate::session::start`]
    /// for `device` (a caller may make it while the link comes up). A handshake that asks for
    /// the token's status ([`Client::session_status`]) and is refused as invalid — a token older
    /// than that flag — is run again without asking.
    pub fn open_session_with(&mut self, device: &DeviceKey, handshake: sealing::Handshake) -> Result<()> {
        self.close_session()?;
        let asked = handshake.asks_status();
        match self.handshake(handshake) {
            Err(Error::Token { code: ErrorCode::Validation, .. }) if asked => {
                self.handshake(sealing::start(device, false)?)
            }
            result => result,
        }
    }

    fn handshake(&mut self, handshake: sealing::Handshake) -> Result<()> {
        let opened =
            self.call(request::OpenSession { ephemeral: &handshake.ephemeral, payload: &handshake.payload })?;
        self.session =
            Some(sealing::finish(handshake, opened.session_id, &opened.ephemeral, &opened.payload)?);
        Ok(())
    }

    /// What the token said about itself when the open session was opened (whether it is
    /// initialised), sealed in the handshake: `None` without a session or from a token too old
    /// to say (ask GetInfo then).
    pub fn session_status(&self) -> Option<pkms_protocol::session::SessionStatus> {
        self.session.as_ref().and_then(Session::status)
    }

    /// Whether requests travel in an encrypted session.
    pub fn in_session(&self) -> bool {
        self.session.is_some()
    }

    /// The open session's id.
    pub fn session_id(&self) -> Option<u32> {
        self.session.as_ref().map(|s| s.id())
    }

    /// Takes the open session out of the client (requests then travel in the clear until
    /// [`Client::put_session`]), so one link can carry several sessions, each logged in as its
    /// own principal, used one at a time (the KMS endpoint holds one per principal). A session
    /// taken out is not closed when the client drops: put it back first.
    pub fn take_session(&mut self) -> Option<Session> {
        self.session.take()
    }

    /// Puts back a session taken with [`Client::take_session`] (on the same link); returns the
    /// session that was open, if any.
    pub fn put_session(&mut self, session: Session) -> Option<Session> {
        self.session.replace(session)
    }

    /// Ends the open session (CloseSession inside it); nothing if none is open.
    pub fn close_session(&mut self) -> Result<()> {
        if self.session.is_none() {
            return Ok(());
        }
        let r = self.call(request::CloseSession {});
        self.session = None;
        r
    }

    /// GetSelfTests: the outcome of the token's power-on self-tests (answered in the clear, and
    /// by a token whose self-tests failed).
    pub fn get_self_tests(&mut self) -> Result<pkms_protocol::SelfTests> {
        self.call(request::GetSelfTests {})
    }

    /// GetInfo.
    pub fn get_info(&mut self) -> Result<TokenInfo> {
        self.call(request::GetInfo {})
    }

    /// GenerateRandom: `number_of_bytes` (1..=1024) random bytes from the token.
    pub fn generate_random(&mut self, number_of_bytes: u16) -> Result<Zeroizing<Vec<u8>>> {
        self.call(request::GenerateRandom { number_of_bytes })
    }

    /// CreateKey.
    pub fn create_key(&mut self, params: &CreateKeyParams) -> Result<KeyMetadata> {
        let tags = wire_tags(&params.tags)?;
        self.call(request::CreateKey {
            key_spec: params.key_spec,
            key_usage: params.key_usage,
            description: &params.description,
            tags,
            user_presence_required: params.user_presence_required,
        })
    }

    /// DescribeKey (key id or alias).
    pub fn describe_key(&mut self, key_id: &str) -> Result<KeyMetadata> {
        self.call(request::DescribeKey { key_id })
    }

    /// One page of ListKeys.
    pub fn list_keys(&mut self, limit: Option<u16>, marker: Option<&str>) -> Result<KeysPage> {
        self.call(request::ListKeys { limit, marker })
    }

    /// Every key, following NextMarker.
    pub fn list_all_keys(&mut self) -> Result<Vec<pkms_protocol::KeyId>> {
        let mut all = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self.list_keys(None, marker.as_deref())?;
            all.extend(page.keys);
            match page.next_marker {
                Some(m) if page.truncated => marker = Some(m),
                _ => return Ok(all),
            }
        }
    }

    /// Encrypt up to 4096 bytes under the key's newest version.
    pub fn encrypt<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        key_id: &str,
        plaintext: &[u8],
        encryption_context: &[(K, V)],
    ) -> Result<EncryptOutput> {
        let encryption_context = wire_context(encryption_context)?;
        self.call(request::Encrypt { key_id, plaintext, encryption_context })
    }

    /// Decrypt; `key_id`, if given, must name the blob's key (else IncorrectKey).
    pub fn decrypt<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        ciphertext_blob: &[u8],
        encryption_context: &[(K, V)],
        key_id: Option<&str>,
    ) -> Result<DecryptOutput> {
        let encryption_context = wire_context(encryption_context)?;
        self.call(request::Decrypt { ciphertext_blob, encryption_context, key_id })
    }

    /// ReEncrypt inside the token.
    pub fn re_encrypt<K: AsRef<str>, V: AsRef<str>, K2: AsRef<str>, V2: AsRef<str>>(
        &mut self,
        ciphertext_blob: &[u8],
        source_encryption_context: &[(K, V)],
        source_key_id: Option<&str>,
        destination_key_id: &str,
        destination_encryption_context: &[(K2, V2)],
    ) -> Result<ReEncryptOutput> {
        let source_encryption_context = wire_context(source_encryption_context)?;
        let destination_encryption_context = wire_context(destination_encryption_context)?;
        self.call(request::ReEncrypt {
            ciphertext_blob,
            source_encryption_context,
            source_key_id,
            destination_key_id,
            destination_encryption_context,
        })
    }

    fn data_key<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        key_id: &str,
        encryption_context: &[(K, V)],
        size: DataKeySize,
        with_plaintext: bool,
    ) -> Result<DataKey> {
        let encryption_context = wire_context(encryption_context)?;
        let (key_spec, number_of_bytes): (Option<DataKeySpec>, Option<u16>) = match size {
            DataKeySize::Spec(s) => (Some(s), None),
            DataKeySize::Bytes(n) => (None, Some(n)),
        };
        let key = if with_plaintext {
            self.call(request::GenerateDataKey { key_id, encryption_context, key_spec, number_of_bytes })?
        } else {
            self.call(request::GenerateDataKeyWithoutPlaintext {
                key_id,
                encryption_context,
                key_spec,
                number_of_bytes,
            })?
        };
        if with_plaintext != key.plaintext.is_some() {
            return Err(protocol("the token's answer to a data-key request has the wrong shape"));
        }
        Ok(key)
    }

    /// GenerateDataKey: a fresh data key, in plaintext and encrypted under `key_id`.
    pub fn generate_data_key<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        key_id: &str,
        encryption_context: &[(K, V)],
        size: DataKeySize,
    ) -> Result<DataKey> {
        self.data_key(key_id, encryption_context, size, true)
    }

    /// GenerateDataKeyWithoutPlaintext: only the encrypted data key.
    pub fn generate_data_key_without_plaintext<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        key_id: &str,
        encryption_context: &[(K, V)],
        size: DataKeySize,
    ) -> Result<DataKey> {
        self.data_key(key_id, encryption_context, size, false)
    }

    /// EnableKeyRotation (period 90..=2560 days; `None`: 365).
    pub fn enable_key_rotation(&mut self, key_id: &str, rotation_period_in_days: Option<u16>) -> Result<()> {
        self.call(request::EnableKeyRotation { key_id, rotation_period_in_days })
    }

    /// DisableKeyRotation.
    pub fn disable_key_rotation(&mut self, key_id: &str) -> Result<()> {
        self.call(request::DisableKeyRotation { key_id })
    }

    /// GetKeyRotationStatus.
    pub fn get_key_rotation_status(&mut self, key_id: &str) -> Result<KeyRotationStatus> {
        self.call(request::GetKeyRotationStatus { key_id })
    }

    /// RotateKeyOnDemand: adds a new version now.
    pub fn rotate_key_on_demand(&mut self, key_id: &str) -> Result<Rotated> {
        self.call(request::RotateKeyOnDemand { key_id })
    }

    /// One page of ListKeyRotations.
    pub fn list_key_rotations(
        &mut self,
        key_id: &str,
        limit: Option<u16>,
        marker: Option<&str>,
    ) -> Result<RotationsPage> {
        self.call(request::ListKeyRotations { key_id, limit, marker })
    }

    /// Every version of a key still held, oldest first, following NextMarker.
    pub fn list_all_key_rotations(&mut self, key_id: &str) -> Result<Vec<RotationEntry>> {
        let mut all = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self.list_key_rotations(key_id, None, marker.as_deref())?;
            all.extend(page.rotations);
            match page.next_marker {
                Some(m) if page.truncated => marker = Some(m),
                _ => return Ok(all),
            }
        }
    }

    /// RetireKeyVersions: crypto-erase every version below `below_version`.
    pub fn retire_key_versions(&mut self, key_id: &str, below_version: KeyVersion) -> Result<Retired> {
        self.call(request::RetireKeyVersions { key_id, below_version })
    }

    /// Sign with the newest version of a SIGN_VERIFY key.
    pub fn sign(
        &mut self,
        key_id: &str,
        message: &[u8],
        message_type: MessageType,
        signing_algorithm: SigningAlgorithm,
    ) -> Result<SignOutput> {
        self.call(request::Sign { key_id, message, message_type, signing_algorithm })
    }

    /// Verify a DER signature; an invalid one is the error [`ErrorCode::InvalidSignature`].
    pub fn verify(
        &mut self,
        key_id: &str,
        message: &[u8],
        message_type: MessageType,
        signature: &[u8],
        signing_algorithm: SigningAlgorithm,
        key_version: Option<KeyVersion>,
    ) -> Result<VerifyOutput> {
        self.call(request::Verify {
            key_id,
            message,
            message_type,
            signature,
            signing_algorithm,
            key_version,
        })
    }

    /// GetPublicKey: DER SubjectPublicKeyInfo of a version (default newest).
    pub fn get_public_key(
        &mut self,
        key_id: &str,
        key_version: Option<KeyVersion>,
    ) -> Result<PublicKeyOutput> {
        self.call(request::GetPublicKey { key_id, key_version })
    }

    /// DeriveSharedSecret: ECDH of the newest version of a KEY_AGREEMENT key with a peer's DER
    /// SubjectPublicKeyInfo.
    pub fn derive_shared_secret(
        &mut self,
        key_id: &str,
        key_agreement_algorithm: KeyAgreementAlgorithm,
        public_key: &[u8],
    ) -> Result<SharedSecretOutput> {
        self.call(request::DeriveSharedSecret { key_id, key_agreement_algorithm, public_key })
    }

    /// Encapsulate: a fresh shared secret and its ML-KEM ciphertext.
    pub fn encapsulate(
        &mut self,
        key_id: &str,
        encapsulation_algorithm: EncapsulationAlgorithm,
    ) -> Result<EncapsulateOutput> {
        self.call(request::Encapsulate { key_id, encapsulation_algorithm })
    }

    /// Decapsulate an ML-KEM ciphertext (with a version, default newest).
    pub fn decapsulate(
        &mut self,
        key_id: &str,
        shared_secret_ciphertext_blob: &[u8],
        encapsulation_algorithm: EncapsulationAlgorithm,
        key_version: Option<KeyVersion>,
    ) -> Result<DecapsulateOutput> {
        self.call(request::Decapsulate {
            key_id,
            shared_secret_ciphertext_blob,
            encapsulation_algorithm,
            key_version,
        })
    }

    /// GenerateDataKeyPair (`with_plaintext`) or GenerateDataKeyPairWithoutPlaintext: a fresh key
    /// pair whose PKCS#8 private key is encrypted under the symmetric key `key_id`.
    pub fn generate_data_key_pair<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        key_id: &str,
        encryption_context: &[(K, V)],
        key_pair_spec: DataKeyPairSpec,
        with_plaintext: bool,
    ) -> Result<DataKeyPairOutput> {
        let encryption_context = wire_context(encryption_context)?;
        let pair = if with_plaintext {
            self.call(request::GenerateDataKeyPair { key_id, encryption_context, key_pair_spec })?
        } else {
            self.call(request::GenerateDataKeyPairWithoutPlaintext {
                key_id,
                encryption_context,
                key_pair_spec,
            })?
        };
        if with_plaintext != pair.private_key_plaintext.is_some() {
            return Err(protocol("the token's answer to a data-key-pair request has the wrong shape"));
        }
        Ok(pair)
    }

    /// GenerateMac with the newest version of an HMAC key.
    pub fn generate_mac(
        &mut self,
        key_id: &str,
        message: &[u8],
        mac_algorithm: MacAlgorithm,
    ) -> Result<MacOutput> {
        self.call(request::GenerateMac { key_id, message, mac_algorithm })
    }

    /// VerifyMac; an invalid MAC is the error [`ErrorCode::InvalidMac`].
    pub fn verify_mac(
        &mut self,
        key_id: &str,
        message: &[u8],
        mac_algorithm: MacAlgorithm,
        mac: &[u8],
        key_version: Option<KeyVersion>,
    ) -> Result<VerifyMacOutput> {
        self.call(request::VerifyMac { key_id, message, mac_algorithm, mac, key_version })
    }

    /// EnableKey.
    pub fn enable_key(&mut self, key_id: &str) -> Result<()> {
        self.call(request::EnableKey { key_id })
    }

    /// DisableKey.
    pub fn disable_key(&mut self, key_id: &str) -> Result<()> {
        self.call(request::DisableKey { key_id })
    }

    /// ScheduleKeyDeletion (window 7..=30 days; `None`: 30).
    pub fn schedule_key_deletion(
        &mut self,
        key_id: &str,
        pending_window_in_days: Option<u16>,
    ) -> Result<DeletionScheduled> {
        self.call(request::ScheduleKeyDeletion { key_id, pending_window_in_days })
    }

    /// CancelKeyDeletion: the key goes back to Disabled. Returns the key id.
    pub fn cancel_key_deletion(&mut self, key_id: &str) -> Result<pkms_protocol::KeyId> {
        self.call(request::CancelKeyDeletion { key_id })
    }

    /// CreateAlias.
    pub fn create_alias(&mut self, alias_name: &str, target_key_id: &str) -> Result<()> {
        self.call(request::CreateAlias { alias_name, target_key_id })
    }

    /// UpdateAlias.
    pub fn update_alias(&mut self, alias_name: &str, target_key_id: &str) -> Result<()> {
        self.call(request::UpdateAlias { alias_name, target_key_id })
    }

    /// DeleteAlias.
    pub fn delete_alias(&mut self, alias_name: &str) -> Result<()> {
        self.call(request::DeleteAlias { alias_name })
    }

    /// One page of ListAliases (optionally only those of `key_id`).
    pub fn list_aliases(
        &mut self,
        key_id: Option<&str>,
        limit: Option<u16>,
        marker: Option<&str>,
    ) -> Result<AliasesPage> {
        self.call(request::ListAliases { key_id, limit, marker })
    }

    /// Every alias (optionally only those of `key_id`), following NextMarker.
    pub fn list_all_aliases(&mut self, key_id: Option<&str>) -> Result<Vec<AliasEntry>> {
        let mut all = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self.list_aliases(key_id, None, marker.as_deref())?;
            all.extend(page.aliases);
            match page.next_marker {
                Some(m) if page.truncated => marker = Some(m),
                _ => return Ok(all),
            }
        }
    }

    /// UpdateKeyDescription.
    pub fn update_key_description(&mut self, key_id: &str, description: &str) -> Result<()> {
        self.call(request::UpdateKeyDescription { key_id, description })
    }

    /// TagResource: adds or replaces tags.
    pub fn tag_resource(&mut self, key_id: &str, tags: &[Tag]) -> Result<()> {
        let tags = wire_tags(tags)?;
        self.call(request::TagResource { key_id, tags })
    }

    /// UntagResource.
    pub fn untag_resource<S: AsRef<str>>(&mut self, key_id: &str, tag_keys: &[S]) -> Result<()> {
        let mut keys = heapless::Vec::new();
        for k in tag_keys {
            keys.push(k.as_ref())
                .map_err(|_| Error::InvalidInput(format!("at most {MAX_TAGS_PER_KEY} tag keys at once")))?;
        }
        self.call(request::UntagResource { key_id, tag_keys: keys })
    }

    /// ListResourceTags.
    pub fn list_resource_tags(&mut self, key_id: &str) -> Result<Vec<Tag>> {
        self.call(request::ListResourceTags { key_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::StreamTransport;
    use pkms_protocol::{Request, Response};
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_silent_token_is_a_link_timeout() {
        let (a, _b) = UnixStream::pair().unwrap();
        let started = Instant::now();
        let err = Client::connect_with_timeout(Box::new(StreamTransport::new(a)), Duration::from_millis(200))
            .expect_err("nobody answers");
        assert!(matches!(err, Error::Link(LinkError::Timeout(_))), "{err:?}");
        assert!(err.is_link() && err.code().is_none());
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn a_token_that_hangs_up_is_a_closed_link() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let err = Client::connect(StreamTransport::new(a)).expect_err("closed");
        assert!(err.is_link(), "{err:?}");
    }

    /// Before Hello is answered, garbage, undecodable frames and stale answers from an earlier
    /// session are skipped; the first byte sent is the lone 0x00 that ends a partial frame.
    #[test]
    fn connect_skips_leftovers_and_sends_a_delimiter_first() {
        use pkms_protocol::messages::{ResponseFrame, WireError};
        let (a, mut b) = UnixStream::pair().unwrap();
        let token = std::thread::spawn(move || {
            let mut first = [0u8; 1];
            b.read_exact(&mut first).unwrap();
            assert_eq!(first, [0], "a lone delimiter first");
            let mut acc = FrameAccumulator::new();
            let mut buf = [0u8; 256];
            let id = loop {
                let n = b.read(&mut buf).unwrap();
                if let Feed::Frame(p, _) = acc.push(&buf[..n]) {
                    let frame = framing::decode_request(p).unwrap();
                    assert!(matches!(frame.request, Request::Hello(request::Hello { .. })));
                    assert!(frame.now.is_some(), "every request carries the host time");
                    break frame.id;
                }
            };
            let mut out = vec![0u8; 512];
            // Leftovers: bad COBS, an error about an undecodable frame, a stale answer.
            b.write_all(&[0x05, 0x01, 0x00]).unwrap();
            for (fid, result) in [
                (0, Err(WireError { code: ErrorCode::MalformedFrame, message: "junk" })),
                (id + 1000, Ok(Response::Done(pkms_protocol::reply::Done {}))),
                (
                    id,
                    Ok(Response::Hello(pkms_protocol::reply::Hello {
                        protocol_version: PROTOCOL_VERSION,
                        firmware_version: "9.9.9",
                    })),
                ),
            ] {
                let n = framing::encode(&ResponseFrame { id: fid, result }, &mut out).unwrap();
                b.write_all(&out[..n]).unwrap();
            }
            b
        });
        let c = Client::connect(StreamTransport::new(a)).unwrap();
        assert_eq!(c.firmware_version(), "9.9.9");
        drop(token.join().unwrap());
    }
}

#[cfg(test)]
mod typed_call {
    use super::*;
    use crate::transport::StreamTransport;
    use pkms_protocol::messages::ResponseFrame;
    use pkms_protocol::{reply, Response};
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    /// A fake token that answers Hello, then answers the next request with `answer`.
    fn token_answering(answer: Response<'static>) -> (Client, std::thread::JoinHandle<()>) {
        let (a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut acc = FrameAccumulator::new();
            let mut buf = [0u8; 512];
            let mut out = vec![0u8; 512];
            let mut answered = 0;
            while answered < 2 {
                let n = b.read(&mut buf).unwrap();
                let mut input = &buf[..n];
                while let Feed::Frame(p, used) = acc.push(input) {
                    let id = framing::decode_request(p).unwrap().id;
                    let result = if answered == 0 {
                        Ok(Response::Hello(reply::Hello {
                            protocol_version: PROTOCOL_VERSION,
                            firmware_version: "t",
                        }))
                    } else {
                        Ok(answer.clone())
                    };
                    let m = framing::encode(&ResponseFrame { id, result }, &mut out).unwrap();
                    b.write_all(&out[..m]).unwrap();
                    answered += 1;
                    input = &input[used..];
                }
            }
        });
        (Client::connect(StreamTransport::new(a)).unwrap(), t)
    }

    /// An audit-log status after a clear answer (not sealed in a session, so anyone on the link
    /// could have appended it) is not taken for the token's.
    #[test]
    fn an_audit_log_status_outside_a_session_is_ignored() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut acc = FrameAccumulator::new();
            let mut buf = [0u8; 512];
            loop {
                let n = b.read(&mut buf).unwrap();
                if let Feed::Frame(p, _) = acc.push(&buf[..n]) {
                    let id = framing::decode_request(p).unwrap().id;
                    let hello = Response::Hello(reply::Hello {
                        protocol_version: PROTOCOL_VERSION,
                        firmware_version: "t",
                    });
                    let forged = pkms_protocol::access::AuditLogStatus {
                        entries: 99,
                        capacity: 100,
                        room: 1,
                        when_full: pkms_protocol::access::AuditFullMode::Refuse,
                    };
                    let mut out = vec![0u8; 512];
                    let n =
                        postcard::to_slice(&ResponseFrame { id, result: Ok(hello) }, &mut out).unwrap().len();
                    let n = n + postcard::to_slice(&forged, &mut out[n..]).unwrap().len();
                    let mut scratch = vec![0u8; 512];
                    let m = framing::cobs_frame_via(&mut out, n, &mut scratch).unwrap();
                    b.write_all(&out[..m]).unwrap();
                    return b;
                }
            }
        });
        let c = Client::connect(StreamTransport::new(a)).unwrap();
        assert_eq!(c.firmware_version(), "t", "the answer itself is read");
        assert_eq!(c.audit_log_status(), None);
        drop(t.join().unwrap());
    }

    #[test]
    fn a_call_returns_the_reply_its_request_declares() {
        let key_id = pkms_protocol::KeyId([5; 16]);
        let (mut c, t) = token_answering(Response::DeletionCancelled(reply::DeletionCancelled { key_id }));
        let got: pkms_protocol::KeyId = c.call(request::CancelKeyDeletion { key_id: "k" }).unwrap();
        assert_eq!(got, key_id);
        t.join().unwrap();
    }

    #[test]
    fn an_answer_of_another_kind_is_a_protocol_error() {
        let (mut c, t) = token_answering(Response::Done(reply::Done {}));
        let err = c.call(request::CancelKeyDeletion { key_id: "k" }).unwrap_err();
        assert!(
            matches!(&err, Error::Link(LinkError::Protocol(m)) if m.contains("CancelKeyDeletion")),
            "{err:?}"
        );
        t.join().unwrap();
    }
}

#[path = "client_access.rs"]
mod access;
pub use crate::model::{AuditCheckpoint, ContextConstraint, Grant, Principal};
