//! An attacker on the host, with no PIN, against an initialised token: raw frames in the clear,
//! a far-future clock, the frames of an administrator's session replayed after it ended and
//! injected while it runs, wrong PUKs followed by a factory reset, and a flood of anonymous
//! requests. Every attack is refused and leaves the keys, the clock and the audit log as they
//! were.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pkms_lib::error::LinkError;
use pkms_lib::model::CreateKeyParams;
use pkms_lib::transport::Transport;
use pkms_lib::Client;
use pkms_protocol::access::{AuditFullMode, Role, FACTORY_RESET_CONFIRMATION};
use pkms_protocol::framing;
use pkms_protocol::limits::MAX_ENCODED_FRAME;
use pkms_protocol::messages::{Request, RequestFrame};
use pkms_protocol::{request, ErrorCode, KeySpec, KeyState};

use crate::harness::{expect_code, in_session, TestToken};

const PIN: &[u8] = b"24681357";
const PUK: &[u8] = b"attacker-test-puk-1234";
const RAW: Duration = Duration::from_secs(20);
const DAY: u64 = 86_400;

/// A transport that keeps a copy of every byte it sends (a wiretap on the host).
struct Tap {
    inner: Box<dyn Transport>,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Transport for Tap {
    fn send(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        self.sent.lock().unwrap().extend_from_slice(bytes);
        self.inner.send(bytes)
    }
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        self.inner.recv(buf, timeout)
    }
}

fn frame(id: u32, now: Option<u64>, request: Request<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_ENCODED_FRAME];
    let n = framing::encode(&RequestFrame { id, now, request }, &mut buf).expect("encode");
    buf.truncate(n);
    buf
}

/// Sends a raw frame and returns the error code of its answer (None: served).
fn raw(c: &mut Client, id: u32, now: Option<u64>, request: Request<'_>) -> Option<ErrorCode> {
    c.send_raw(&frame(id, now, request)).expect("send");
    loop {
        let r = c.recv_raw(RAW).expect("an answer");
        if r.id == id || r.id == 0 {
            return r.error.map(|e| e.0);
        }
    }
}

/// The attacks, one after the other, on one token.
pub fn host_attacks_without_a_pin_are_refused(t: &mut dyn TestToken) {
    // The owner sets the token up: two keys whose fate depends on the clock, and a user.
    let mut admin = t.client();
    let now = pkms_lib::client::system_now().unwrap();
    admin.set_clock(Box::new(move || Some(now)));
    admin.initialize(PIN, PUK, AuditFullMode::Refuse).unwrap();
    let pending =
        admin.create_key(&CreateKeyParams::spec(KeySpec::SymmetricDefault)).unwrap().key_id.to_string();
    let rotating =
        admin.create_key(&CreateKeyParams::spec(KeySpec::SymmetricDefault)).unwrap().key_id.to_string();
    admin.schedule_key_deletion(&pending, Some(30)).unwrap();
    admin.enable_key_rotation(&rotating, Some(90)).unwrap();
    admin.create_principal("bob", b"13579135", Role::User).unwrap();
    let blob = admin.encrypt(&rotating, b"the owner's secret", &[("app", "x")]).unwrap().ciphertext_blob;
    let entries = admin.get_audit_checkpoint().unwrap().sequence;
    drop(admin);

    // 1. No PIN, in the clear: nothing but Hello, GetInfo, GetDeviceKey and the handshake.
    let mut eve = t.plain_client();
    let far = Some(now + 5 * 365 * DAY);
    let refused = [
        raw(&mut eve, 10, far, Request::ListKeys(request::ListKeys { limit: None, marker: None })),
        raw(
            &mut eve,
            11,
            far,
            Request::Decrypt(request::Decrypt {
                ciphertext_blob: &blob,
                encryption_context: [("app", "x")].into_iter().collect(),
                key_id: None,
            }),
        ),
        raw(&mut eve, 12, far, Request::Authenticate(request::Authenticate { principal: "admin", pin: PIN })),
        raw(
            &mut eve,
            13,
            far,
            Request::CreatePrincipal(request::CreatePrincipal {
                name: "eve",
                pin: b"00000000",
                role: Role::Admin,
            }),
        ),
        raw(
            &mut eve,
            14,
            far,
            Request::FactoryReset(request::FactoryReset { confirm: FACTORY_RESET_CONFIRMATION }),
        ),
    ];
    assert!(refused.iter().all(|r| *r == Some(ErrorCode::AuthenticationFailed)), "{refused:?}");
    // 2. A clock five years ahead from someone without a PIN: in the clear, and in a session
    //    no one logged in to, again and again.
    for i in 0..20 {
        assert_eq!(raw(&mut eve, 100 + i, far, Request::GetInfo(request::GetInfo {})), None);
    }
    assert_eq!(
        raw(&mut eve, 130, Some(253_402_300_800), Request::GetInfo(request::GetInfo {})),
        Some(ErrorCode::Validation),
        "a time after 9999"
    );
    drop(eve);
    let mut anon = t.client();
    anon.set_clock(Box::new(move || far));
    for _ in 0..10 {
        expect_code(anon.list_keys(None, None), ErrorCode::AuthenticationFailed);
    }
    drop(anon);

    // 3. The owner's session: its frames replayed after it ended, and injected while it runs.
    let sent = Arc::new(Mutex::new(Vec::new()));
    let mut owner = in_session(
        Client::connect_boxed(Box::new(Tap { inner: t.transport(), sent: sent.clone() })).unwrap(),
    );
    owner.authenticate("admin", PIN).unwrap();
    owner.describe_key(&rotating).unwrap();
    let session = owner.session_id().unwrap();
    drop(owner); // pkms exits: it closes its session
    let recorded = sent.lock().unwrap().clone();
    let mut eve = t.plain_client();
    eve.send_raw(&recorded).unwrap();
    let mut answers = Vec::new();
    while let Ok(r) = eve.recv_raw(Duration::from_secs(2)) {
        answers.push(r);
    }
    let sealed: Vec<_> =
        answers.iter().filter(|r| r.error.as_ref().is_some_and(|e| e.0 == ErrorCode::SessionEnded)).collect();
    assert!(sealed.len() >= 3, "every replayed session frame is refused: {answers:?}");
    assert!(
        answers.iter().all(|r| r.error.is_some() || r.id <= 3),
        "a replayed session frame was served: {answers:?}"
    );
    let _ = session;
    drop(eve);
    // Injected into a running session (a frame slipped onto its link with the session's id):
    // refused, and the session ends — its owner must open a new one, and nothing was done on
    // its behalf.
    let mut owner = t.client();
    owner.authenticate("admin", PIN).unwrap();
    let live = owner.session_id().unwrap();
    let injected = raw(
        &mut owner,
        200,
        None,
        Request::SessionFrame(request::SessionFrame { session_id: live, counter: 2, sealed: &[0x41; 48] }),
    );
    assert_eq!(injected, Some(ErrorCode::SessionEnded));
    expect_code(owner.describe_key(&rotating), ErrorCode::SessionEnded);
    drop(owner);

    // 4. Wrong PUKs (for principals that exist and that do not), then a factory reset: refused
    //    without an administrator's session.
    let mut eve = t.client();
    for i in 0..9 {
        let who = if i % 2 == 0 { "nobody" } else { "bob" };
        let _ = eve.unblock_pin(who, format!("wrong-puk-{i}").as_bytes(), b"99887766");
    }
    expect_code(eve.factory_reset(), ErrorCode::AccessDenied);
    drop(eve);

    // 5. An anonymous flood: Hellos, GetInfo, handshakes and refused requests.
    let mut eve = t.plain_client();
    for i in 0..150 {
        assert_eq!(
            raw(
                &mut eve,
                1000 + i,
                far,
                Request::Hello(request::Hello { protocol_version: pkms_protocol::PROTOCOL_VERSION })
            ),
            None
        );
        assert_eq!(
            raw(&mut eve, 2000 + i, far, Request::ListKeys(request::ListKeys { limit: None, marker: None })),
            Some(ErrorCode::AuthenticationFailed)
        );
    }
    drop(eve);
    for _ in 0..20 {
        let mut anon = t.client();
        expect_code(anon.list_keys(None, None), ErrorCode::AuthenticationFailed);
    }

    // The owner comes back at the real time: everything is as it was.
    let mut admin = t.client();
    admin.set_clock(Box::new(move || Some(now + 60)));
    admin.authenticate("admin", PIN).unwrap();
    assert_eq!(admin.describe_key(&pending).unwrap().key_state, KeyState::PendingDeletion);
    assert_eq!(admin.list_all_key_rotations(&rotating).unwrap().len(), 1, "a rotation happened");
    let plain = admin.decrypt(&blob, &[("app", "x")], None).unwrap().plaintext;
    assert_eq!(plain.as_slice(), b"the owner's secret");
    assert!(admin.list_principals().unwrap().iter().all(|p| p.name != "eve"));
    let log = admin.get_audit_checkpoint().unwrap();
    // The owner's own requests since, the two counted batches of failed tries, and this login;
    // never one entry per anonymous request.
    assert!(
        log.sequence - entries < 20,
        "the flood reached the audit log: {} new entries",
        log.sequence - entries
    );
    assert!(log.first_sequence <= 1, "entries were pushed out");
    admin.cancel_key_deletion(&pending).unwrap();
}
