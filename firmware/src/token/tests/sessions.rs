//! Encrypted sessions, through the wire interface, against the host side written with RustCrypto
//! (`host_session`): the handshake against the device key, frames refused when replayed,
//! reordered, altered, truncated or sent under another session, concurrent sessions with their
//! own logins, the ways a session ends, and what an initialised token answers in the clear.

use std::vec::Vec;

use pkms_protocol::access::{AuditFullMode, Role};
use pkms_protocol::messages::{Request, RequestFrame, Response};
use pkms_protocol::session::MAX_SESSIONS;
use pkms_protocol::{request, Gate};

use super::host_session::{self, HostSession};
use super::*;

const PIN: &[u8] = b"246810";
const PUK: &[u8] = b"puk-12345678";

fn initialised() -> Harness {
    let mut h = Harness::new();
    h.open_session();
    h.ok(Request::Initialize(request::Initialize {
        pin: PIN,
        puk: PUK,
        audit_full: AuditFullMode::Overwrite,
    }));
    h
}

fn authenticate(h: &mut Harness, who: &str, pin: &[u8]) {
    h.ok(Request::Authenticate(request::Authenticate { principal: who, pin }));
}

/// The postcard bytes of a request frame.
fn frame_bytes(request: Request<'_>) -> Vec<u8> {
    let frame = RequestFrame { id: 7, now: Some(T0), request };
    let mut buf = std::vec![0u8; pkms_protocol::limits::MAX_FRAME];
    let n = postcard::to_slice(&frame, &mut buf).unwrap().len();
    buf.truncate(n);
    buf
}

/// Sends an already sealed frame of session `id`; returns the outer answer.
fn send_sealed(h: &mut Harness, id: u32, counter: u64, sealed: &[u8]) -> Reply {
    h.outer(Request::SessionFrame(request::SessionFrame { session_id: id, counter, sealed }))
}

fn outer_code(reply: &Reply) -> Option<ErrorCode> {
    reply.get().err().map(|e| e.code)
}

/// Opens a session the harness does not track.
fn side_session(h: &mut Harness, seed: u64) -> HostSession {
    h.handshake(seed)
}

/// Sends `request` in session `s` (not the harness's); the inner answer's error code, or None.
fn in_session(
    h: &mut Harness,
    s: &mut HostSession,
    request: Request<'_>,
) -> Result<Option<ErrorCode>, ErrorCode> {
    let (counter, sealed) = s.seal(&frame_bytes(request));
    let reply = send_sealed(h, s.id, counter, &sealed);
    let result = match reply.get() {
        Ok(Response::SessionFrame(pkms_protocol::reply::SessionFrame { session_id, counter, sealed })) => {
            assert_eq!(session_id, s.id);
            let inner = s.open(counter, sealed).expect("the token's answer opens");
            let answer = pkms_protocol::framing::decode_response(&inner).unwrap();
            Ok(answer.result.err().map(|e| e.code))
        }
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.code),
    };
    result
}

fn list_keys<'a>() -> Request<'a> {
    Request::ListKeys(request::ListKeys { limit: None, marker: None })
}

#[test]
fn a_session_carries_requests_sealed_both_ways_and_the_pin_never_crosses_in_the_clear() {
    let mut h = initialised();
    h.close_session();
    h.open_session();
    let pin = b"pin-seen-on-the-wire?";
    let s = h.session.as_mut().unwrap();
    let (counter, sealed) =
        s.seal(&frame_bytes(Request::Authenticate(request::Authenticate { principal: "admin", pin })));
    let id = s.id;
    let wire = frame_bytes(Request::SessionFrame(request::SessionFrame {
        session_id: id,
        counter,
        sealed: &sealed,
    }));
    assert!(!wire.windows(pin.len()).any(|w| w == pin), "the PIN shows in the frame");
    assert!(!wire.windows(5).any(|w| w == b"admin"), "the principal shows in the frame");
    let reply = h.payload(&wire);
    let Ok(Response::SessionFrame(pkms_protocol::reply::SessionFrame { sealed, counter, .. })) =
        pkms_protocol::framing::decode_response(&reply).unwrap().result
    else {
        panic!("no sealed answer")
    };
    assert!(!sealed.windows(6).any(|w| w == b"tries "), "the answer's text shows in the clear");
    let inner = h.session.as_mut().unwrap().open(counter, sealed).expect("answer opens");
    let answer = pkms_protocol::framing::decode_response(&inner).unwrap();
    assert_eq!(answer.result.unwrap_err().code, ErrorCode::AuthenticationFailed);
    // The same session goes on: log in and use a key, both ways sealed.
    authenticate(&mut h, "admin", PIN);
    let k = s_(&h.create(KeySpec::SymmetricDefault));
    let blob = h.encrypt(&k, b"sealed both ways", &[("a", "b")]);
    assert_eq!(h.decrypt(&blob, &[("a", "b")]).unwrap(), b"sealed both ways");
}

fn s_(id: &pkms_protocol::KeyId) -> std::string::String {
    s(id)
}

#[test]
fn a_host_that_pinned_another_device_key_gets_no_session() {
    let mut h = initialised();
    // Another token's key (any other P-256 key): the handshake's first message cannot be opened
    // by this token, and a man in the middle cannot answer it for this token.
    let other = p256::SecretKey::from_slice(&[7u8; 32]).unwrap().public_key();
    let mut spki = h.device_key();
    let at = spki.len() - 65;
    spki[at..].copy_from_slice(
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&other, false).as_bytes(),
    );
    let opening = host_session::open(&spki, 99);
    let (code, msg) = h.err_outer(Request::OpenSession(request::OpenSession {
        ephemeral: &opening.ephemeral,
        payload: &opening.payload,
    }));
    assert_eq!(code, ErrorCode::AuthenticationFailed);
    assert!(msg.contains("device key"), "{msg}");
    // Bad points and lengths are refused without a session.
    for (e, p) in [
        (&[4u8; 65][..], &[0u8; 16][..]),
        (&[4u8; 64][..], &[0u8; 16][..]),
        (&opening.ephemeral[..], &[0u8; 15][..]),
    ] {
        let code = h.err_outer(Request::OpenSession(request::OpenSession { ephemeral: e, payload: p })).0;
        assert!(matches!(code, ErrorCode::Validation | ErrorCode::AuthenticationFailed), "{code:?}");
    }
    // The token's real answer does not verify for a host expecting another key either: a
    // message 2 from this token fails against a state built for `other`.
    let real = h.device_key();
    let genuine = host_session::open(&real, 5);
    let reply = h.outer(Request::OpenSession(request::OpenSession {
        ephemeral: &genuine.ephemeral,
        payload: &genuine.payload,
    }));
    let Ok(Response::SessionOpened(pkms_protocol::reply::SessionOpened { session_id, ephemeral, payload })) =
        reply.get()
    else {
        panic!()
    };
    let (sid, eph, pay) = (session_id, ephemeral.to_vec(), payload.to_vec());
    let mut tampered = pay.clone();
    tampered[0] ^= 1;
    assert!(
        host_session::open(&real, 5).finish(sid, &eph, &tampered).is_none(),
        "an altered message 2 verifies"
    );
    assert!(
        host_session::open(&real, 5).finish(sid ^ 1, &eph, &pay).is_none(),
        "another session id verifies"
    );
    assert!(host_session::open(&real, 5).finish(sid, &eph, &pay).is_some());
}

/// Sends OpenSession with `opening`'s message 1; the raw SessionOpened fields.
fn open_raw(h: &mut Harness, opening: &host_session::Opening) -> (u32, Vec<u8>, Vec<u8>) {
    let reply = h.outer(Request::OpenSession(request::OpenSession {
        ephemeral: &opening.ephemeral,
        payload: &opening.payload,
    }));
    let fields = match reply.get() {
        Ok(Response::SessionOpened(pkms_protocol::reply::SessionOpened {
            session_id,
            ephemeral,
            payload,
        })) => (session_id, ephemeral.to_vec(), payload.to_vec()),
        other => panic!("OpenSession: {other:?}"),
    };
    fields
}

#[test]
fn a_host_that_asks_learns_in_the_handshake_whether_the_token_is_initialised() {
    use pkms_protocol::session::SessionStatus;
    let mut h = Harness::new();
    let spki = h.device_key();
    // Asked: message 2 carries the session id and the status byte (5 + 16 bytes).
    let asking = host_session::open_asking_status(&spki, 11);
    assert_eq!(asking.payload.len(), 17, "one sealed flags byte and the tag");
    let (sid, eph, pay) = open_raw(&mut h, &asking);
    assert_eq!(pay.len(), 4 + 1 + 16);
    let session = host_session::open_asking_status(&spki, 11).finish(sid, &eph, &pay).expect("verifies");
    assert_eq!(session.status(), Some(SessionStatus { initialized: false }), "a fresh token is open");
    // The status is authenticated: flipping its bit breaks message 2.
    let mut flipped = pay.clone();
    flipped[4] ^= 1;
    assert!(host_session::open_asking_status(&spki, 11).finish(sid, &eph, &flipped).is_none());
    // A host that did not ask refuses a payload it did not ask for.
    assert!(host_session::open(&spki, 11).finish(sid, &eph, &pay).is_none());
    // Not asked: the 4-byte payload older hosts expect, and no status.
    let plain = host_session::open(&spki, 12);
    assert_eq!(plain.payload.len(), 16);
    let (sid, eph, pay) = open_raw(&mut h, &plain);
    assert_eq!(pay.len(), 4 + 16, "no status unless asked");
    let session = host_session::open(&spki, 12).finish(sid, &eph, &pay).expect("verifies");
    assert_eq!(session.status(), None);

    // Once initialised, the status says so.
    let mut h = initialised();
    let spki = h.device_key();
    let (sid, eph, pay) = open_raw(&mut h, &host_session::open_asking_status(&spki, 13));
    let session = host_session::open_asking_status(&spki, 13).finish(sid, &eph, &pay).expect("verifies");
    assert_eq!(session.status(), Some(SessionStatus { initialized: true }));
}

#[test]
fn only_the_ask_status_bit_asks_for_the_status() {
    let mut h = Harness::new();
    let spki = h.device_key();
    // A flags byte of zero, or of reserved bits only: the session opens, message 2 carries the
    // session id alone.
    for (i, flags) in [0x00u8, 0x02, 0xFE].into_iter().enumerate() {
        let seed = 30 + i as u64;
        let opening = host_session::open_with_flags(&spki, &[flags], seed);
        assert!(!opening.asks_status(), "the host expects no status for flags {flags:#04x}");
        let (sid, eph, pay) = open_raw(&mut h, &opening);
        assert_eq!(pay.len(), 4 + 16, "flags {flags:#04x} do not ask for the status");
        let session =
            host_session::open_with_flags(&spki, &[flags], seed).finish(sid, &eph, &pay).expect("verifies");
        assert_eq!(session.status(), None);
    }
    // The bit among others still asks, on both sides.
    let opening = host_session::open_with_flags(&spki, &[0xFF], 40);
    assert!(opening.asks_status());
    let (_, _, pay) = open_raw(&mut h, &opening);
    assert_eq!(pay.len(), 4 + 1 + 16);
    assert!(host_session::open_asking_status(&spki, 41).asks_status());
    assert!(!host_session::open(&spki, 42).asks_status());
}

#[test]
fn message_1_flags_are_sealed_and_their_length_is_checked() {
    let mut h = Harness::new();
    let spki = h.device_key();
    let asking = host_session::open_asking_status(&spki, 21);
    // More than one flags byte, or a payload shorter than a tag: Validation, no session.
    for payload in [[&asking.payload[..], &[0u8][..]].concat(), std::vec![0u8; 15], Vec::new()] {
        let (code, msg) = h.err_outer(Request::OpenSession(request::OpenSession {
            ephemeral: &asking.ephemeral,
            payload: &payload,
        }));
        assert_eq!(code, ErrorCode::Validation, "{} bytes", payload.len());
        assert!(msg.contains("flags byte"), "{msg}");
    }
    // An altered flags byte (sealed under the handshake key) does not verify.
    let mut altered = asking.payload.clone();
    altered[0] ^= 0x80;
    let (code, _) = h.err_outer(Request::OpenSession(request::OpenSession {
        ephemeral: &asking.ephemeral,
        payload: &altered,
    }));
    assert_eq!(code, ErrorCode::AuthenticationFailed);
}

#[test]
fn replayed_reordered_altered_truncated_and_foreign_frames_are_refused_and_end_the_session() {
    let mut h = initialised();
    h.close_session();
    // Each attack on a fresh, logged-in session; afterwards the session is gone for good.
    type Attack = fn(&mut Harness, &mut HostSession) -> Reply;
    let attacks: [(&str, Attack); 6] = [
        ("replayed", |h, s| {
            let (c, sealed) = s.seal(&frame_bytes(list_keys()));
            assert!(outer_code(&send_sealed(h, s.id, c, &sealed)).is_none());
            send_sealed(h, s.id, c, &sealed)
        }),
        ("reordered", |h, s| {
            let (_c1, _first) = s.seal(&frame_bytes(list_keys()));
            let (c2, second) = s.seal(&frame_bytes(list_keys()));
            send_sealed(h, s.id, c2, &second)
        }),
        ("counter rewritten", |h, s| {
            let (_c1, _first) = s.seal(&frame_bytes(list_keys()));
            let (_c2, second) = s.seal(&frame_bytes(list_keys()));
            send_sealed(h, s.id, 0, &second)
        }),
        ("altered", |h, s| {
            let (c, mut sealed) = s.seal(&frame_bytes(list_keys()));
            sealed[3] ^= 0x20;
            send_sealed(h, s.id, c, &sealed)
        }),
        ("truncated", |h, s| {
            let (c, sealed) = s.seal(&frame_bytes(list_keys()));
            send_sealed(h, s.id, c, &sealed[..10])
        }),
        ("tag stripped", |h, s| {
            let (c, sealed) = s.seal(&frame_bytes(list_keys()));
            send_sealed(h, s.id, c, &sealed[..sealed.len() - 16])
        }),
    ];
    for (i, (what, attack)) in attacks.iter().enumerate() {
        let mut s = side_session(&mut h, 300 + i as u64);
        assert_eq!(
            in_session(
                &mut h,
                &mut s,
                Request::Authenticate(request::Authenticate { principal: "admin", pin: PIN })
            ),
            Ok(None)
        );
        assert_eq!(in_session(&mut h, &mut s, list_keys()), Ok(None));
        let refused = attack(&mut h, &mut s);
        assert_eq!(outer_code(&refused), Some(ErrorCode::SessionEnded), "{what}");
        // The host is told why.
        let why = match *what {
            "replayed" | "reordered" | "counter rewritten" => "counter is not the next one",
            "altered" => "does not authenticate",
            _ => "too short",
        };
        let message = refused.get().err().map(|e| std::string::String::from(e.message)).unwrap_or_default();
        assert!(message.contains(why) && message.contains("session has ended"), "{what}: {message}");
        // The session and its login are gone: the next correct frame is refused too.
        assert_eq!(
            in_session(&mut h, &mut s, list_keys()),
            Err(ErrorCode::SessionEnded),
            "{what}: session survived"
        );
    }
    // A frame sealed in one session, sent under another's id: refused, and it ends the session it
    // named; the session it came from is untouched.
    let mut a = side_session(&mut h, 400);
    let mut b = side_session(&mut h, 401);
    for s in [&mut a, &mut b] {
        assert_eq!(
            in_session(
                &mut h,
                s,
                Request::Authenticate(request::Authenticate { principal: "admin", pin: PIN })
            ),
            Ok(None)
        );
    }
    let (c, from_a) = a.seal(&frame_bytes(list_keys()));
    assert_eq!(c, b.send_counter, "the counters line up: only the key tells them apart");
    assert_eq!(outer_code(&send_sealed(&mut h, b.id, c, &from_a)), Some(ErrorCode::SessionEnded));
    assert_eq!(in_session(&mut h, &mut b, list_keys()), Err(ErrorCode::SessionEnded));
    // A's own frame, sent now under A's id, is its next: A goes on.
    assert_eq!(outer_code(&send_sealed(&mut h, a.id, c, &from_a)), None);
    a.recv_counter += 1;
    assert_eq!(in_session(&mut h, &mut a, list_keys()), Ok(None));
    // A session id no one opened.
    let (c, sealed) = a.seal(&frame_bytes(list_keys()));
    let (code, msg) = match send_sealed(&mut h, a.id ^ 0x5555, c, &sealed).get() {
        Err(e) => (e.code, std::string::String::from(e.message)),
        Ok(r) => panic!("{r:?}"),
    };
    assert_eq!(code, ErrorCode::SessionEnded);
    assert!(msg.contains("no such session"), "{msg}");
    // A handshake or a session frame inside a session is refused (and the session goes on).
    a.send_counter -= 1; // the frame above never reached session A
    let inner = frame_bytes(Request::SessionFrame(request::SessionFrame {
        session_id: a.id,
        counter: 9,
        sealed: &[0; 20],
    }));
    let (c, sealed) = a.seal(&inner);
    let r = send_sealed(&mut h, a.id, c, &sealed);
    let Ok(Response::SessionFrame(f)) = r.get() else { panic!() };
    let opened = a.open(f.counter, f.sealed).unwrap();
    assert_eq!(
        pkms_protocol::framing::decode_response(&opened).unwrap().result.unwrap_err().code,
        ErrorCode::Validation
    );
    // A sealed request that is not a frame at all ends the session.
    let (c, sealed) = a.seal(b"\xff\xff\xff\xff\xff\xff");
    assert_eq!(outer_code(&send_sealed(&mut h, a.id, c, &sealed)), Some(ErrorCode::MalformedFrame));
    assert_eq!(in_session(&mut h, &mut a, list_keys()), Err(ErrorCode::SessionEnded));
}

#[test]
fn eight_sessions_are_open_at_once_each_with_its_own_login() {
    let mut h = initialised();
    h.ok(Request::CreatePrincipal(request::CreatePrincipal {
        name: "bob",
        pin: b"135790",
        role: Role::User,
    }));
    h.close_session();
    let mut sessions: Vec<HostSession> =
        (0..MAX_SESSIONS as u64).map(|i| side_session(&mut h, 500 + i)).collect();
    let ids: std::collections::BTreeSet<u32> = sessions.iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), MAX_SESSIONS, "each session has its own id");
    // Even sessions log in as admin, odd ones as bob; each keeps its own login, interleaved.
    for (i, s) in sessions.iter_mut().enumerate() {
        let (who, pin) = if i % 2 == 0 { ("admin", PIN) } else { ("bob", &b"135790"[..]) };
        assert_eq!(
            in_session(&mut h, s, Request::Authenticate(request::Authenticate { principal: who, pin })),
            Ok(None)
        );
    }
    let principals = || Request::ReadAuditLog(request::ReadAuditLog { start_sequence: 1, limit: 1 });
    for round in 0..3 {
        for (i, s) in sessions.iter_mut().enumerate() {
            let expect = if i % 2 == 0 { None } else { Some(ErrorCode::AccessDenied) };
            assert_eq!(in_session(&mut h, s, principals()), Ok(expect), "round {round}, session {i}");
        }
    }
    // Every slot holds a logged-in session: a ninth is refused, and none is evicted.
    let spki = h.device_key();
    let opening = host_session::open(&spki, 600);
    let code = h
        .err_outer(Request::OpenSession(request::OpenSession {
            ephemeral: &opening.ephemeral,
            payload: &opening.payload,
        }))
        .0;
    assert_eq!(code, ErrorCode::LimitExceeded);
    for s in sessions.iter_mut() {
        assert!(in_session(&mut h, s, list_keys()).is_ok());
    }
    // One closes: its slot takes a new session.
    let mut closed = sessions.pop().unwrap();
    assert_eq!(in_session(&mut h, &mut closed, Request::CloseSession(request::CloseSession {})), Ok(None));
    assert_eq!(in_session(&mut h, &mut closed, list_keys()), Err(ErrorCode::SessionEnded));
    let mut fresh = side_session(&mut h, 601);
    // A session no one logged in to is evicted (least recently used first) to make room.
    let mut newer = side_session(&mut h, 602);
    assert_eq!(
        in_session(&mut h, &mut fresh, list_keys()),
        Err(ErrorCode::SessionEnded),
        "the anonymous one went"
    );
    assert_eq!(in_session(&mut h, &mut newer, list_keys()), Ok(Some(ErrorCode::AuthenticationFailed)));
    for s in sessions.iter_mut() {
        assert!(in_session(&mut h, s, list_keys()).is_ok(), "a logged-in session was evicted");
    }
}

#[test]
fn a_session_ends_when_closed_when_idle_and_when_the_connection_goes() {
    let mut h = initialised();
    // The documented idle timeout: five minutes on the token's own clock. Used within it the
    // session stays; each use restarts it.
    const FIVE_MINUTES_MS: u64 = 5 * 60 * 1000;
    for _ in 0..3 {
        h.token.board_mut().uptime_ms += FIVE_MINUTES_MS - 1;
        h.ok(list_keys());
    }
    // Exactly five minutes idle is still within them.
    h.token.board_mut().uptime_ms += FIVE_MINUTES_MS;
    h.ok(list_keys());
    h.token.board_mut().uptime_ms += FIVE_MINUTES_MS + 1;
    let r = h.call(list_keys());
    assert_eq!(r.get().unwrap_err().code, ErrorCode::SessionEnded);
    assert!(h.session.is_none());
    // Closed by its host.
    h.open_session();
    authenticate(&mut h, "admin", PIN);
    let id = h.session.as_ref().unwrap().id;
    let (c, sealed) = h.session.as_mut().unwrap().seal(&frame_bytes(list_keys()));
    h.close_session();
    assert_eq!(outer_code(&send_sealed(&mut h, id, c + 1, &sealed)), Some(ErrorCode::SessionEnded));
    // CloseSession in the clear closes nothing (and is refused: it is no Plain operation).
    assert_eq!(
        h.err_outer(Request::CloseSession(request::CloseSession {})).0,
        ErrorCode::AuthenticationFailed
    );
    // The board saw the host go (USB DTR drop): every session ends.
    h.open_session();
    authenticate(&mut h, "admin", PIN);
    let mut other = side_session(&mut h, 700);
    h.token.end_connection();
    assert_eq!(in_session(&mut h, &mut other, list_keys()), Err(ErrorCode::SessionEnded));
    assert_eq!(h.call(list_keys()).get().unwrap_err().code, ErrorCode::SessionEnded);
    // A restart too.
    h.open_session();
    authenticate(&mut h, "admin", PIN);
    let mut kept = h.session.take();
    let mut h = h.restart();
    h.session = kept.take();
    assert_eq!(h.call(list_keys()).get().unwrap_err().code, ErrorCode::SessionEnded);
}

#[test]
fn a_factory_reset_ends_every_session_and_makes_a_new_device_key() {
    let mut h = initialised();
    let before = h.device_key();
    let mut other = side_session(&mut h, 800);
    h.ok(Request::FactoryReset(request::FactoryReset {
        confirm: pkms_protocol::access::FACTORY_RESET_CONFIRMATION,
    }));
    assert!(h.session.is_none());
    assert_eq!(in_session(&mut h, &mut other, list_keys()), Err(ErrorCode::SessionEnded));
    let after = h.device_key();
    assert_ne!(before, after, "the device key survived the reset");
    // A host that pinned the old key cannot open a session with the new token.
    let opening = host_session::open(&before, 801);
    let code = h
        .err_outer(Request::OpenSession(request::OpenSession {
            ephemeral: &opening.ephemeral,
            payload: &opening.payload,
        }))
        .0;
    assert_eq!(code, ErrorCode::AuthenticationFailed);
}

/// Every request of every operation (the golden frames), sent in the clear to an initialised
/// token: only the operations whose gate is Plain are answered; the rest are refused for want of
/// a session, and none writes to the flash.
#[test]
fn nothing_but_hello_getinfo_and_the_handshake_answers_in_the_clear_on_an_initialised_token() {
    let mut h = initialised();
    let k = s(&h.create(KeySpec::SymmetricDefault));
    h.close_session();
    let golden = include_str!("../../../../protocol/tests/fixtures/golden_frames.txt");
    let before = h.token.flash().cut_points();
    let mut refused = 0;
    let mut answered = Vec::new();
    for line in golden.lines().filter(|l| l.starts_with("request.")) {
        let (name, hex) = line.split_once(' ').unwrap();
        let mut bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        bytes.pop(); // the 0x00 delimiter
        let n = pkms_protocol::framing::cobs_decode_in_place(&mut bytes).unwrap().len();
        bytes.truncate(n);
        let frame = pkms_protocol::framing::decode_request(&bytes).unwrap();
        let plain = frame.request.gate() == Gate::Plain;
        let reply = h.payload(&bytes);
        let result = pkms_protocol::framing::decode_response(&reply).unwrap().result;
        match result {
            Err(e)
                if e.code == ErrorCode::AuthenticationFailed && e.message.contains("encrypted session") =>
            {
                assert!(!plain, "{name}: a Plain operation was refused");
                refused += 1;
            }
            other => {
                assert!(plain, "{name} answered in the clear: {other:?}");
                answered.push(name.trim_start_matches("request."));
            }
        }
    }
    assert_eq!(h.token.flash().cut_points(), before, "a request in the clear wrote to or erased the flash");
    assert!(refused > 40, "{refused}");
    assert!(answered.contains(&"Hello") && answered.contains(&"GetInfo"), "{answered:?}");
    // The key is untouched.
    h.open_session();
    authenticate(&mut h, "admin", PIN);
    h.describe(&k);
}

#[test]
fn an_open_token_works_in_the_clear_and_in_a_session_and_says_it_is_open() {
    let mut h = Harness::new();
    let reply = h.ok(Request::GetInfo(request::GetInfo {}));
    let Ok(Response::Info(pkms_protocol::reply::Info { info })) = reply.get() else { panic!() };
    assert!(!info.initialized);
    let k = s(&h.create(KeySpec::SymmetricDefault));
    let blob = h.encrypt(&k, b"open", &[]);
    h.open_session();
    assert_eq!(h.decrypt(&blob, &[]).unwrap(), b"open");
    h.close_session();
    assert_eq!(h.decrypt(&blob, &[]).unwrap(), b"open");
}

#[test]
fn deleting_a_principal_ends_every_session_it_is_logged_in_to() {
    let mut h = initialised();
    h.ok(Request::CreatePrincipal(request::CreatePrincipal {
        name: "bob",
        pin: b"13579135",
        role: Role::User,
    }));
    h.ok(Request::CreatePrincipal(request::CreatePrincipal {
        name: "carol",
        pin: b"24682468",
        role: Role::Admin,
    }));
    let mut bob = [side_session(&mut h, 500), side_session(&mut h, 501)];
    let mut carol = side_session(&mut h, 502);
    for s in bob.iter_mut() {
        let login = Request::Authenticate(request::Authenticate { principal: "bob", pin: b"13579135" });
        assert_eq!(in_session(&mut h, s, login), Ok(None));
        assert_eq!(in_session(&mut h, s, list_keys()), Ok(None));
    }
    let login = Request::Authenticate(request::Authenticate { principal: "carol", pin: b"24682468" });
    assert_eq!(in_session(&mut h, &mut carol, login), Ok(None));
    h.ok(Request::DeletePrincipal(request::DeletePrincipal { name: "bob" }));
    for s in bob.iter_mut() {
        assert_eq!(
            in_session(&mut h, s, list_keys()),
            Err(ErrorCode::SessionEnded),
            "bob is still logged in"
        );
    }
    // Other principals' sessions, and the deleting one, go on.
    assert_eq!(in_session(&mut h, &mut carol, list_keys()), Ok(None));
    h.ok(list_keys());
    // An administrator deleting itself is logged out in its own session, which stays open.
    assert_eq!(
        in_session(&mut h, &mut carol, Request::DeletePrincipal(request::DeletePrincipal { name: "carol" })),
        Ok(None)
    );
    assert_eq!(in_session(&mut h, &mut carol, list_keys()), Ok(Some(ErrorCode::AuthenticationFailed)));
}

/// Opens a session with the host ephemeral drawn from `seed`; returns the token's ephemeral
/// public key, after checking the handshake completes.
fn token_ephemeral(h: &mut Harness, seed: u64) -> Vec<u8> {
    let spki = h.device_key();
    let opening = host_session::open(&spki, seed);
    let reply = h.outer(Request::OpenSession(request::OpenSession {
        ephemeral: &opening.ephemeral,
        payload: &opening.payload,
    }));
    let token_ephemeral = match reply.get() {
        Ok(Response::SessionOpened(pkms_protocol::reply::SessionOpened {
            session_id,
            ephemeral,
            payload,
        })) => {
            opening.finish(session_id, ephemeral, payload).expect("handshake verifies");
            ephemeral.to_vec()
        }
        other => panic!("OpenSession: {other:?}"),
    };
    token_ephemeral
}

#[test]
fn an_ephemeral_key_made_between_requests_serves_exactly_one_handshake() {
    let mut h = Harness::new();
    assert!(h.token.sessions.prepared().is_none());
    h.token.idle();
    let prepared = h.token.sessions.prepared().map(|p| p.to_vec()).expect("idle made no ephemeral");
    h.token.idle();
    assert_eq!(
        h.token.sessions.prepared().map(|p| p.to_vec()),
        Some(prepared.clone()),
        "idle replaced a made key"
    );
    let first = token_ephemeral(&mut h, 1);
    assert_eq!(first, prepared, "the handshake did not use the key made while idle");
    assert!(h.token.sessions.prepared().is_none(), "the made key stayed for another handshake");
    // With none made, the handshake makes its own; each is new.
    let second = token_ephemeral(&mut h, 2);
    h.token.idle();
    let third = token_ephemeral(&mut h, 3);
    assert!(first != second && second != third && first != third);
}

/// A host in mid-conversation never waits for work ahead: with a session just used, the
/// next handshake's key is not made; it is once that session has been quiet for
/// WORK_AHEAD_QUIET_MS, and at once when the session is closed.
#[test]
fn work_ahead_waits_while_a_session_is_in_use() {
    use crate::session::WORK_AHEAD_QUIET_MS;
    let mut h = Harness::new();
    token_ephemeral(&mut h, 1);
    h.token.idle();
    assert!(h.token.sessions.prepared().is_none(), "made right after a handshake");
    h.token.board_mut().uptime_ms += WORK_AHEAD_QUIET_MS - 1;
    h.token.idle();
    assert!(h.token.sessions.prepared().is_none(), "made before the session was quiet");
    h.token.board_mut().uptime_ms += 1;
    h.token.idle();
    assert!(h.token.sessions.prepared().is_some(), "not made once the session was quiet");

    // Closing the session frees the token for work ahead at once.
    let mut h = Harness::new();
    let mut s = side_session(&mut h, 2);
    assert_eq!(in_session(&mut h, &mut s, list_keys()), Ok(None));
    h.token.idle();
    assert!(h.token.sessions.prepared().is_none(), "made while the session was in use");
    assert_eq!(in_session(&mut h, &mut s, Request::CloseSession(request::CloseSession {})), Ok(None));
    h.token.idle();
    assert!(h.token.sessions.prepared().is_some(), "not made after the session closed");
}
