//! Token-level benchmarks: real request frames through the real core,
//! `pkms_firmware::Token::handle_payload` (postcard decode, the operation, flash, postcard +
//! COBS encode of the response), over the RAM NOR flash. An operation the core answers with
//! UnsupportedOperation is reported as "n/a (not yet implemented: …)".

use pkms_firmware::{Board, BoardInfo, Token, UserPresence};
use pkms_protocol::framing;
use pkms_protocol::limits::{MAX_ENCODED_FRAME, MAX_FRAME};
use pkms_protocol::messages::{Request, RequestFrame, Response, ResponseFrame};
use pkms_protocol::session::host::{Handshake, HostSession};
use pkms_protocol::session::{PUBLIC_KEY_LEN, TAG_LEN};
use pkms_protocol::{
    DataKeySpec, ErrorCode, KeyId, KeySpec, KeyUsage, MessageType, Platform, SigningAlgorithm,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::counter::{self, measure};
use crate::crypto::{heapless_name, SEED};
use embedded_storage::nor_flash::NorFlash;

use crate::nor_flash::{PsramNor, STORE_BYTES};
use crate::report::{bench, check, not_available};

/// The bench board: uptime from the instruction counter (1 instruction = 1 ns of virtual time
/// under `-icount shift=0`), no user presence.
pub struct BenchBoard;

impl Board for BenchBoard {
    fn uptime_ms(&mut self) -> u64 {
        counter::to_instructions(counter::now()) / 1_000_000
    }
    fn user_presence(&mut self, _timeout_ms: u32) -> UserPresence {
        UserPresence::Unsupported
    }
    fn info(&self) -> BoardInfo {
        BoardInfo {
            name: "qemu-mps2-an386-bench",
            platform: Platform::Emulated,
            entropy_source: "fixed-seed ChaCha20 (benchmark only)",
            key_protection: "none (benchmark)",
        }
    }
}

type BenchToken = Token<pkms_firmware::Parts<PsramNor, ChaCha20Rng, BenchBoard>>;

/// What a call answered, reduced to what the benchmarks need.
enum Outcome {
    Ok { key_id: Option<KeyId> },
    Err { code: ErrorCode, message: heapless::String<120> },
}

struct Client {
    token: BenchToken,
    next_id: u32,
    request: [u8; MAX_FRAME],
    response: [u8; MAX_ENCODED_FRAME],
    /// A request inside a session before it is sealed, and the answer once opened.
    inner: [u8; MAX_FRAME],
}

/// The host end of an open session: its keys and both counters.
struct BenchSession {
    keys: HostSession,
    send: u64,
    recv: u64,
}

/// Host wall time sent with every request (fixed: results must not depend on the date).
const NOW: u64 = 1_800_000_000;

impl Client {
    /// Sends one request; returns (instructions inside `handle_payload`, outcome).
    fn call(&mut self, request: Request<'_>) -> (u64, Outcome) {
        self.next_id += 1;
        let frame = RequestFrame { id: self.next_id, now: Some(NOW), request };
        let Ok(payload) = postcard::to_slice(&frame, &mut self.request) else {
            return (0, error(ErrorCode::Internal, "request did not encode"));
        };
        let token = &mut self.token;
        let response = &mut self.response;
        let (instructions, n) = measure(|| token.handle_payload(payload, response));
        if n == 0 || n > self.response.len() {
            return (instructions, error(ErrorCode::Internal, "empty response"));
        }
        let outcome = match framing::cobs_decode_in_place(&mut self.response[..n - 1])
            .and_then(framing::decode_response)
        {
            Ok(frame) => match frame.result {
                Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata: meta })) => {
                    Outcome::Ok { key_id: Some(meta.key_id) }
                }
                Ok(_) => Outcome::Ok { key_id: None },
                Err(e) => error(e.code, e.message),
            },
            Err(_) => error(ErrorCode::Internal, "response did not decode"),
        };
        (instructions, outcome)
    }
}

impl Client {
    /// Opens a session as a host does (GetDeviceKey, then the NK handshake); returns the
    /// instructions the token spent on OpenSession and the session.
    fn open_session(&mut self) -> Result<(u64, BenchSession), Outcome> {
        let mut spki = [0u8; 91];
        let (_, key) = self.call_with(Request::GetDeviceKey(pkms_protocol::request::GetDeviceKey {}), |r| {
            if let Response::DeviceKey(k) = r {
                if let Some(point) =
                    k.public_key.len().checked_sub(PUBLIC_KEY_LEN).and_then(|at| k.public_key.get(at..))
                {
                    spki[..PUBLIC_KEY_LEN].copy_from_slice(point);
                    return true;
                }
            }
            false
        });
        key?;
        let mut device = [0u8; PUBLIC_KEY_LEN];
        device.copy_from_slice(&spki[..PUBLIC_KEY_LEN]);
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let hs =
            Handshake::start(&device, &mut rng).map_err(|_| error(ErrorCode::Internal, "handshake start"))?;
        let mut opened = None;
        let (t, answer) = self.call_with(
            Request::OpenSession(pkms_protocol::request::OpenSession {
                ephemeral: &hs.ephemeral,
                payload: &hs.payload,
            }),
            |r| {
                if let Response::SessionOpened(o) = r {
                    let mut e = [0u8; PUBLIC_KEY_LEN];
                    let mut p = [0u8; 4 + TAG_LEN];
                    if o.ephemeral.len() == e.len() && o.payload.len() == p.len() {
                        e.copy_from_slice(o.ephemeral);
                        p.copy_from_slice(o.payload);
                        opened = Some((o.session_id, e, p));
                        return true;
                    }
                }
                false
            },
        );
        answer?;
        let (id, e, p) = opened.ok_or_else(|| error(ErrorCode::Internal, "no SessionOpened"))?;
        let keys =
            hs.finish(id, &e, &p).map_err(|_| error(ErrorCode::Internal, "handshake did not verify"))?;
        Ok((t, BenchSession { keys, send: 0, recv: 0 }))
    }

    /// Sends one request in the clear; `check` sees the response. Returns the instructions and
    /// `Ok(())` when the token answered and `check` accepted.
    fn call_with(
        &mut self,
        request: Request<'_>,
        check: impl FnOnce(&Response<'_>) -> bool,
    ) -> (u64, Result<(), Outcome>) {
        self.next_id += 1;
        let frame = RequestFrame { id: self.next_id, now: Some(NOW), request };
        let Ok(payload) = postcard::to_slice(&frame, &mut self.request) else {
            return (0, Err(error(ErrorCode::Internal, "request did not encode")));
        };
        let token = &mut self.token;
        let response = &mut self.response;
        let (instructions, n) = measure(|| token.handle_payload(payload, response));
        if n == 0 || n > self.response.len() {
            return (instructions, Err(error(ErrorCode::Internal, "empty response")));
        }
        let result = match framing::cobs_decode_in_place(&mut self.response[..n - 1])
            .and_then(framing::decode_response)
        {
            Ok(frame) => match frame.result {
                Ok(r) if check(&r) => Ok(()),
                Ok(_) => Err(error(ErrorCode::Internal, "unexpected response")),
                Err(e) => Err(error(e.code, e.message)),
            },
            Err(_) => Err(error(ErrorCode::Internal, "response did not decode")),
        };
        (instructions, result)
    }

    /// Sends one request inside `session` (sealed as pkms seals it); returns the instructions
    /// inside `handle_payload` (opening, the operation, sealing the answer) and the outcome.
    fn call_in(&mut self, session: &mut BenchSession, request: Request<'_>) -> (u64, Outcome) {
        self.next_id += 1;
        let frame = RequestFrame { id: self.next_id, now: Some(NOW), request };
        let room = self.inner.len() - TAG_LEN;
        let Ok(text) = postcard::to_slice(&frame, &mut self.inner[..room]) else {
            return (0, error(ErrorCode::Internal, "request did not encode"));
        };
        let n = text.len();
        let counter = session.send;
        session.send += 1;
        let tag = session.keys.seal_at(counter, &mut self.inner[..n]);
        self.inner[n..n + TAG_LEN].copy_from_slice(&tag);
        let len = {
            let outer = RequestFrame {
                id: self.next_id,
                now: None,
                request: Request::SessionFrame(pkms_protocol::request::SessionFrame {
                    session_id: session.keys.id(),
                    counter,
                    sealed: &self.inner[..n + TAG_LEN],
                }),
            };
            match postcard::to_slice(&outer, &mut self.request) {
                Ok(p) => p.len(),
                Err(_) => return (0, error(ErrorCode::Internal, "session frame did not encode")),
            }
        };
        let payload = &mut self.request[..len];
        let token = &mut self.token;
        let response = &mut self.response;
        let (instructions, m) = measure(|| token.handle_payload(payload, response));
        if m == 0 || m > self.response.len() {
            return (instructions, error(ErrorCode::Internal, "empty response"));
        }
        let sealed = match framing::cobs_decode_in_place(&mut self.response[..m - 1])
            .and_then(framing::decode_response)
        {
            Ok(ResponseFrame { result: Ok(Response::SessionFrame(f)), .. }) if f.counter == session.recv => {
                let k = f.sealed.len();
                if k < TAG_LEN || k > self.inner.len() {
                    return (instructions, error(ErrorCode::Internal, "sealed answer of a bad length"));
                }
                self.inner[..k].copy_from_slice(f.sealed);
                k
            }
            Ok(ResponseFrame { result: Err(e), .. }) => return (instructions, error(e.code, e.message)),
            _ => return (instructions, error(ErrorCode::Internal, "no session frame in answer")),
        };
        let (text, tag) = self.inner[..sealed].split_at_mut(sealed - TAG_LEN);
        if session.keys.open_at(session.recv, text, tag).is_err() {
            return (instructions, error(ErrorCode::Internal, "the answer did not open"));
        }
        session.recv += 1;
        let outcome = match framing::decode_response(text) {
            Ok(frame) => match frame.result {
                Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata: meta })) => {
                    Outcome::Ok { key_id: Some(meta.key_id) }
                }
                Ok(_) => Outcome::Ok { key_id: None },
                Err(e) => error(e.code, e.message),
            },
            Err(_) => error(ErrorCode::Internal, "inner response did not decode"),
        };
        (instructions, outcome)
    }
}

fn error(code: ErrorCode, message: &str) -> Outcome {
    let mut m = heapless::String::new();
    for c in message.chars() {
        if m.push(c).is_err() {
            break;
        }
    }
    Outcome::Err { code, message: m }
}

/// Reports `name`: the figure, or n/a with the reason. Returns whether it succeeded.
fn report(name: &str, instructions: u64, outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Ok { .. } => {
            bench(name, instructions, 0);
            true
        }
        Outcome::Err { code: ErrorCode::UnsupportedOperation, message } => {
            let reason =
                heapless_name::<200>(&["n/a (not yet implemented: UnsupportedOperation: ", message, ")"]);
            not_available(name, &reason);
            false
        }
        Outcome::Err { code, message } => {
            let mut reason: heapless::String<200> = heapless::String::new();
            let _ = core::fmt::write(&mut reason, format_args!("n/a (error: {code:?}: {message})"));
            not_available(name, &reason);
            false
        }
    }
}

fn boot(name: &str, flash: PsramNor) -> Client {
    let (instructions, token) = measure(|| BenchToken::new(flash, ChaCha20Rng::from_seed(SEED), BenchBoard));
    bench(name, instructions, 0);
    Client {
        token,
        next_id: 0,
        request: [0; MAX_FRAME],
        response: [0; MAX_ENCODED_FRAME],
        inner: [0; MAX_FRAME],
    }
}

fn create_symmetric(client: &mut Client) -> (u64, Outcome) {
    client.call(Request::CreateKey(pkms_protocol::request::CreateKey {
        key_spec: KeySpec::SymmetricDefault,
        key_usage: None,
        description: "bench",
        tags: heapless::Vec::new(),
        user_presence_required: false,
    }))
}

fn text(id: &KeyId, buf: &mut [u8; 36]) -> heapless::String<36> {
    let mut s = heapless::String::new();
    let _ = s.push_str(id.write_text(buf));
    s
}

/// Every token-level figure. Returns whether the calls that succeeded gave sane answers.
pub fn run() -> bool {
    let Some(mut flash) = PsramNor::take() else {
        not_available("token.boot_to_ready.empty", "n/a (the flash handle was already taken)");
        return false;
    };
    if flash.erase(0, STORE_BYTES as u32).is_err() {
        not_available("token.boot_to_ready.empty", "n/a (the flash could not be erased)");
        return false;
    }
    // The power-on self-tests alone (Token::new runs them first; boot_to_ready includes them).
    let (instructions, outcome) = measure(|| {
        pkms_firmware::selftest::run(&pkms_firmware::selftest::KATS, Some(&mut ChaCha20Rng::from_seed(SEED)))
    });
    if check("token.self_tests", outcome.is_ok(), "every power-on self-test passed") {
        bench("token.self_tests", instructions, 0);
    }
    let mut client = boot("token.boot_to_ready.empty", flash);

    let (t, hello) = client.call(Request::Hello(pkms_protocol::request::Hello {
        protocol_version: pkms_protocol::PROTOCOL_VERSION,
    }));
    let ok = check("token.hello", matches!(hello, Outcome::Ok { .. }), "Hello answered");
    report("token.hello", t, &hello);

    let (t, created) = create_symmetric(&mut client);
    report("token.create_key.symmetric", t, &created);
    let first = match created {
        Outcome::Ok { key_id: Some(id) } => Some(id),
        _ => None,
    };

    let (t, ecc) = client.call(Request::CreateKey(pkms_protocol::request::CreateKey {
        key_spec: KeySpec::EccNistP256,
        key_usage: Some(KeyUsage::SignVerify),
        description: "bench-ecc",
        tags: heapless::Vec::new(),
        user_presence_required: false,
    }));
    report("token.create_key.ecc_nist_p256", t, &ecc);

    let mut buf = [0u8; 36];
    match first {
        Some(id) => {
            let id = text(&id, &mut buf);
            let (t, o) = client.call(Request::GenerateDataKey(pkms_protocol::request::GenerateDataKey {
                key_id: &id,
                encryption_context: heapless::Vec::new(),
                key_spec: Some(DataKeySpec::Aes256),
                number_of_bytes: None,
            }));
            report("token.generate_data_key.aes_256", t, &o);
            let (t, o) = client.call(Request::Encrypt(pkms_protocol::request::Encrypt {
                key_id: &id,
                plaintext: &[0x42; 32],
                encryption_context: heapless::Vec::new(),
            }));
            report("token.encrypt.32", t, &o);
            let (t, o) = client.call(Request::Encrypt(pkms_protocol::request::Encrypt {
                key_id: &id,
                plaintext: &[0x42; 4096],
                encryption_context: heapless::Vec::new(),
            }));
            report("token.encrypt.4096", t, &o);
            session_figures(&mut client, &id);
            let (t, o) = client
                .call(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand { key_id: &id }));
            report("token.rotate_key_on_demand", t, &o);
        }
        None => {
            for name in ["token.generate_data_key.aes_256", "token.encrypt.32", "token.rotate_key_on_demand"]
            {
                not_available(name, "n/a (needs CreateKey, which failed)");
            }
        }
    }
    match ecc {
        Outcome::Ok { key_id: Some(id) } => {
            let id = text(&id, &mut buf);
            let (t, o) = client.call(Request::Sign(pkms_protocol::request::Sign {
                key_id: &id,
                message: &[0x24; 32],
                message_type: MessageType::Digest,
                signing_algorithm: SigningAlgorithm::EcdsaSha256,
            }));
            report("token.sign.digest", t, &o);
        }
        _ => not_available("token.sign.digest", "n/a (needs CreateKey ECC_NIST_P256, which failed)"),
    }

    // Key lookups with 10, 100 and 1,000 keys stored: DescribeKey of the oldest and of the
    // newest key; the larger figure is reported.
    let mut stored = 2usize;
    let mut newest = first;
    let mut store_error = None;
    for target in [10usize, 100, 1000] {
        while stored < target && store_error.is_none() {
            match create_symmetric(&mut client) {
                (_, Outcome::Ok { key_id: Some(id) }) => {
                    newest = Some(id);
                    stored += 1;
                }
                (_, outcome) => store_error = Some(outcome),
            }
        }
        let name = heapless_name::<40>(&["token.describe_key.", count_name(target)]);
        match (&store_error, first, newest) {
            (None, Some(oldest), Some(newest)) => {
                let mut worst = (0, Outcome::Ok { key_id: None });
                for id in [oldest, newest] {
                    let id = text(&id, &mut buf);
                    let (t, o) = client
                        .call(Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: &id }));
                    if !matches!(o, Outcome::Ok { .. }) || t >= worst.0 {
                        worst = (t, o);
                    }
                }
                report(&name, worst.0, &worst.1);
            }
            (Some(err), _, _) => {
                report(&name, 0, err);
            }
            _ => not_available(&name, "n/a (needs CreateKey, which failed)"),
        }
    }

    // Reboot onto the flash holding those keys.
    let flash = client.token.into_flash();
    let name = heapless_name::<60>(&["token.boot_to_ready.", count_name(stored), "_keys"]);
    let _client = boot(&name, flash);
    ok
}

/// The session's cost: OpenSession on the token (two P-256 ECDH and the handshake's hashing and
/// sealing, with the ephemeral key made while idle; and without, the ephemeral made inside the
/// request), the idle work that makes the ephemeral, and Encrypt 32 B and 4 KiB inside a session (opening the
/// request and sealing the answer on top of the operation). The open token serves both in the
/// clear and in a session, so the two are measured side by side in one run.
fn session_figures(client: &mut Client, id: &str) {
    let names = [
        "token.session.open.unprepared",
        "token.session.prepare",
        "token.session.open",
        "token.encrypt.32.session",
        "token.encrypt.4096.session",
    ];
    // A handshake that finds no ephemeral made while idle (right after another handshake,
    // with no idle time between) makes its own.
    let mut first = match client.open_session() {
        Ok((t, s)) => {
            bench(names[0], t, 0);
            s
        }
        Err(o) => {
            for name in names {
                report(name, 0, &o);
            }
            return;
        }
    };
    // Its host closes it, as a pkms call that does not leave it cached does (while a session
    // is in use the token does no work ahead); then the board's idle work between requests,
    // and the handshake as a host normally finds it.
    let (_, closed) = client.call_in(&mut first, Request::CloseSession(pkms_protocol::request::CloseSession {}));
    if let Outcome::Err { .. } = closed {
        for name in &names[1..] {
            report(name, 0, &closed);
        }
        return;
    }
    let token = &mut client.token;
    let (t, ()) = measure(|| token.idle());
    bench(names[1], t, 0);
    let mut session = match client.open_session() {
        Ok((t, s)) => {
            bench(names[2], t, 0);
            s
        }
        Err(o) => {
            for name in &names[2..] {
                report(name, 0, &o);
            }
            return;
        }
    };
    for (name, len) in [(names[3], 32), (names[4], 4096)] {
        let plaintext = [0x42u8; 4096];
        let (t, o) = client.call_in(
            &mut session,
            Request::Encrypt(pkms_protocol::request::Encrypt {
                key_id: id,
                plaintext: &plaintext[..len],
                encryption_context: heapless::Vec::new(),
            }),
        );
        report(name, t, &o);
    }
}

fn count_name(n: usize) -> &'static str {
    match n {
        10 => "10",
        100 => "100",
        1000 => "1000",
        2 => "2",
        _ => "some",
    }
}
