//! The board's USB CDC packet loop, driven over in-memory endpoints: the real `run_usb_side`
//! (on its own thread, as in the board's interrupt executor) and the real `serve_forever` (on
//! another thread, as in thread mode) around the real token core. A test "host" writes packets,
//! toggles DTR, unplugs and replugs, and decodes what comes back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex as Cs;
use embassy_sync::channel::Channel;
use embassy_sync::signal::Signal;
use pkms_firmware::mock_flash::MockFlash;
use pkms_firmware::{FrameServer, TestBoard, Token};
use pkms_nrf52840_support::link::{
    run_usb_side, serve_forever, Disconnected, LineState, Link, Outgoing, Packet, PacketReceiver,
    PacketSender, Received, TokenSide, PACKET_SIZE, SESSION_START,
};
use pkms_protocol::framing::{self, Feed, FrameAccumulator};
use pkms_protocol::messages::{Request, RequestFrame, Response};
use pkms_protocol::{ErrorCode, PROTOCOL_VERSION};
use rand_chacha::rand_core::SeedableRng;

type TestToken = Token<pkms_firmware::Parts<MockFlash, rand_chacha::ChaCha20Rng, TestBoard>>;

// ---------- a minimal executor for one future per thread (parks instead of spinning) ----------

struct Unpark(Thread);
impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park_timeout(Duration::from_millis(50));
    }
}

// ---------- in-memory USB endpoints ----------

enum Wire {
    Plug,
    Packet(Packet),
    Unplug,
}

struct Bus {
    to_device: Channel<Cs, Wire, 64>,
    from_device: Channel<Cs, Packet, 256>,
    dtr: AtomicBool,
    line_changed: Signal<Cs, ()>,
}

struct MockRx {
    bus: &'static Bus,
    configured: bool,
}

impl PacketReceiver for MockRx {
    async fn wait_connection(&mut self) {
        while !self.configured {
            if let Wire::Plug = self.bus.to_device.receive().await {
                self.configured = true;
            }
        }
    }
    async fn read_packet(&mut self, buf: &mut [u8; PACKET_SIZE]) -> Result<usize, Disconnected> {
        if !self.configured {
            return Err(Disconnected);
        }
        match self.bus.to_device.receive().await {
            Wire::Packet(p) => {
                buf[..p.len()].copy_from_slice(p.as_bytes());
                Ok(p.len())
            }
            Wire::Unplug => {
                self.configured = false;
                Err(Disconnected)
            }
            Wire::Plug => Ok(0),
        }
    }
}

struct MockTx {
    bus: &'static Bus,
}

impl PacketSender for MockTx {
    async fn write_packet(&mut self, data: &[u8]) -> Result<(), Disconnected> {
        assert!(data.len() <= PACKET_SIZE, "packet of {} bytes", data.len());
        self.bus.from_device.send(Packet::new(data).unwrap()).await;
        Ok(())
    }
}

struct MockLine {
    bus: &'static Bus,
}

impl LineState for MockLine {
    async fn changed(&mut self) {
        self.bus.line_changed.wait().await
    }
    fn dtr(&self) -> bool {
        self.bus.dtr.load(Ordering::SeqCst)
    }
}

// ---------- the token ----------

/// A test host attached to a running device (both halves on their own threads).
struct Host {
    bus: &'static Bus,
    link: &'static Link,
    acc: FrameAccumulator,
    packets: Vec<Packet>,
}

fn start_device(prefill: impl FnOnce(&'static Link)) -> Host {
    let bus: &'static Bus = Box::leak(Box::new(Bus {
        to_device: Channel::new(),
        from_device: Channel::new(),
        dtr: AtomicBool::new(false),
        line_changed: Signal::new(),
    }));
    let link: &'static Link = Box::leak(Box::new(Link::new()));
    prefill(link);
    thread::spawn(move || {
        let (mut rx, mut tx, mut line) =
            (MockRx { bus, configured: false }, MockTx { bus }, MockLine { bus });
        block_on(run_usb_side(link, &mut rx, &mut tx, &mut line))
    });
    thread::spawn(move || {
        let server: &'static mut FrameServer = Box::leak(Box::new(FrameServer::new()));
        let mut side = TokenSide::new(server);
        let rng = rand_chacha::ChaCha20Rng::from_seed([7; 32]);
        let mut token = TestToken::new(MockFlash::new(64 * 1024), rng, TestBoard::new());
        serve_forever(link, &mut side, &mut token, || thread::sleep(Duration::from_micros(200)))
    });
    Host { bus, link, acc: FrameAccumulator::new(), packets: Vec::new() }
}

impl Host {
    fn wire(&self, w: Wire) {
        block_on(self.bus.to_device.send(w));
    }
    fn plug(&self) {
        self.wire(Wire::Plug);
    }
    fn unplug(&self) {
        self.wire(Wire::Unplug);
    }
    fn set_dtr(&self, on: bool) {
        self.bus.dtr.store(on, Ordering::SeqCst);
        self.bus.line_changed.signal(());
    }
    /// Plugs in and opens the port, then waits until the device is in the DTR-high session.
    fn connect(&self) {
        let before = self.link.active_session();
        self.plug();
        self.wait_session_change(before);
        let plugged = self.link.active_session();
        self.set_dtr(true);
        self.wait_session_change(plugged);
    }
    fn wait_session_change(&self, from: u32) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.link.active_session() == from || self.link.active_session() == 0 {
            assert!(Instant::now() < deadline, "device did not start a new session");
            thread::sleep(Duration::from_millis(1));
        }
    }
    /// Sends `bytes` split into packets at the given cut points (each piece at most 64 bytes).
    fn send_split(&self, bytes: &[u8], sizes: impl Fn(usize) -> usize) {
        let mut rest = bytes;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes(i).clamp(1, PACKET_SIZE).min(rest.len());
            self.wire(Wire::Packet(Packet::new(&rest[..n]).unwrap()));
            rest = &rest[n..];
            i += 1;
        }
    }
    /// Reads until one response frame is complete; returns (id, result as code, random length).
    fn response(&mut self) -> (u32, Result<Response<'static>, ErrorCode>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let packet = loop {
                if let Ok(p) = self.bus.from_device.try_receive() {
                    break p;
                }
                assert!(Instant::now() < deadline, "no response from the device");
                thread::sleep(Duration::from_millis(1));
            };
            self.packets.push(packet);
            let input = packet.as_bytes();
            match self.acc.push(input) {
                Feed::NeedMore => {}
                Feed::Frame(payload, used) => {
                    assert_eq!(used, input.len(), "bytes after a frame's end in the same packet");
                    let frame = framing::decode_response(payload).expect("response decodes");
                    let result = match frame.result {
                        Ok(r) => Ok(leak_response(r)),
                        Err(e) => Err(e.code),
                    };
                    return (frame.id, result);
                }
                other => panic!("bad frame from the device: {other:?}"),
            }
        }
    }
    /// Like [`Host::response`], but skips frames that do not decode, as a host does before its
    /// first good exchange.
    fn response_skipping_garbage(&mut self) -> (u32, Result<Response<'static>, ErrorCode>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "no response from the device");
            let Ok(packet) = self.bus.from_device.try_receive() else {
                thread::sleep(Duration::from_millis(1));
                continue;
            };
            let mut input = packet.as_bytes();
            while !input.is_empty() {
                match self.acc.push(input) {
                    Feed::NeedMore => break,
                    Feed::Frame(payload, used) => {
                        if let Ok(frame) = framing::decode_response(payload) {
                            let result = match frame.result {
                                Ok(r) => Ok(leak_response(r)),
                                Err(e) => Err(e.code),
                            };
                            return (frame.id, result);
                        }
                        input = &input[used..];
                    }
                    Feed::Overflow(used) | Feed::Malformed(used) => input = &input[used..],
                }
            }
        }
    }

    /// Nothing more arrives within `ms`.
    fn assert_silent(&self, ms: u64) {
        thread::sleep(Duration::from_millis(ms));
        assert!(self.bus.from_device.try_receive().is_err(), "unexpected bytes from the device");
    }
    fn drain(&mut self) {
        thread::sleep(Duration::from_millis(100));
        while self.bus.from_device.try_receive().is_ok() {}
        self.acc.reset();
    }
}

/// Keeps only what the assertions look at, with a 'static lifetime.
fn leak_response(r: Response<'_>) -> Response<'static> {
    match r {
        Response::Hello(pkms_protocol::reply::Hello { protocol_version, .. }) => {
            Response::Hello(pkms_protocol::reply::Hello { protocol_version, firmware_version: "" })
        }
        Response::DeviceKey(pkms_protocol::reply::DeviceKey { public_key }) => {
            Response::DeviceKey(pkms_protocol::reply::DeviceKey { public_key: Box::leak(public_key.to_vec().into_boxed_slice()) })
        }
        Response::SessionOpened(pkms_protocol::reply::SessionOpened { session_id, ephemeral, payload }) => {
            Response::SessionOpened(pkms_protocol::reply::SessionOpened {
                session_id,
                ephemeral: Box::leak(ephemeral.to_vec().into_boxed_slice()),
                payload: Box::leak(payload.to_vec().into_boxed_slice()),
            })
        }
        Response::SessionFrame(pkms_protocol::reply::SessionFrame { session_id, counter, sealed }) => {
            Response::SessionFrame(pkms_protocol::reply::SessionFrame {
                session_id,
                counter,
                sealed: Box::leak(sealed.to_vec().into_boxed_slice()),
            })
        }
        Response::Random(pkms_protocol::reply::Random { plaintext }) => {
            Response::Random(pkms_protocol::reply::Random { plaintext: Box::leak(plaintext.to_vec().into_boxed_slice()) })
        }
        _ => Response::Hello(pkms_protocol::reply::Hello { protocol_version: u16::MAX, firmware_version: "other" }),
    }
}

fn encode(id: u32, request: Request<'_>) -> Vec<u8> {
    let mut out = vec![0u8; 1024];
    let n = framing::encode(&RequestFrame { id, now: None, request }, &mut out).unwrap();
    out.truncate(n);
    out
}

fn hello(id: u32) -> Vec<u8> {
    encode(id, Request::Hello(pkms_protocol::request::Hello { protocol_version: PROTOCOL_VERSION }))
}

fn random(id: u32, n: u16) -> Vec<u8> {
    encode(id, Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: n }))
}

fn assert_hello(got: (u32, Result<Response<'static>, ErrorCode>), id: u32) {
    assert_eq!(got.0, id);
    match got.1 {
        Ok(Response::Hello(pkms_protocol::reply::Hello { protocol_version, .. })) => assert_eq!(protocol_version, PROTOCOL_VERSION),
        other => panic!("expected Hello, got {other:?}"),
    }
}

// ---------- the tests ----------

#[test]
fn one_request_in_one_packet() {
    let mut host = start_device(|_| {});
    host.connect();
    host.send_split(&hello(1), |_| 64);
    assert_hello(host.response(), 1);
}

#[test]
fn a_frame_split_byte_by_byte_and_in_odd_pieces() {
    let mut host = start_device(|_| {});
    host.connect();
    host.send_split(&hello(2), |_| 1);
    assert_hello(host.response(), 2);
    host.send_split(&random(3, 10), |i| [3, 1, 5][i % 3]);
    let (id, r) = host.response();
    assert_eq!(id, 3);
    assert!(matches!(r, Ok(Response::Random(pkms_protocol::reply::Random { plaintext })) if plaintext.len() == 10));
}

#[test]
fn several_frames_in_one_packet_are_all_answered_in_order() {
    let mut host = start_device(|_| {});
    host.connect();
    let mut batch = Vec::new();
    for id in 10..14 {
        batch.extend(hello(id));
    }
    assert!(batch.len() <= PACKET_SIZE, "the batch fits one packet ({} bytes)", batch.len());
    host.send_split(&batch, |_| 64);
    for id in 10..14 {
        assert_hello(host.response(), id);
    }
}

#[test]
fn a_frame_ending_mid_packet_and_the_next_starting_there() {
    let mut host = start_device(|_| {});
    host.connect();
    let mut stream = hello(20);
    stream.extend(random(21, 5));
    stream.extend(hello(22));
    // 7-byte packets: frame boundaries fall inside packets.
    host.send_split(&stream, |_| 7);
    assert_hello(host.response(), 20);
    assert_eq!(host.response().0, 21);
    assert_hello(host.response(), 22);
}

#[test]
fn large_responses_go_out_in_64_byte_packets() {
    let mut host = start_device(|_| {});
    host.connect();
    host.send_split(&random(30, 1024), |_| 64);
    let (id, r) = host.response();
    assert_eq!(id, 30);
    assert!(matches!(r, Ok(Response::Random(pkms_protocol::reply::Random { plaintext })) if plaintext.len() == 1024));
    // Sessions start with a lone delimiter (one for plugging in, one for opening the port).
    let starts = host.packets.iter().take_while(|p| p.as_bytes() == [SESSION_START]).count();
    assert!(starts >= 1, "the session starts with a delimiter");
    let answer = &host.packets[starts..];
    assert!(answer.len() >= 1024 / PACKET_SIZE);
    assert!(answer.iter().all(|p| p.len() <= PACKET_SIZE));
    assert!(
        answer[..answer.len() - 1].iter().all(|p| p.len() == PACKET_SIZE),
        "only the last packet is short"
    );
}

#[test]
fn garbage_gets_an_error_frame_and_the_stream_recovers() {
    let mut host = start_device(|_| {});
    host.connect();
    host.send_split(&[0x05, 0x01, 0x00], |_| 64); // COBS says 4 more bytes, the frame ends after 1
    let (id, r) = host.response();
    assert_eq!(id, 0);
    assert_eq!(r.err(), Some(ErrorCode::MalformedFrame));
    host.send_split(&hello(40), |_| 64);
    assert_hello(host.response(), 40);
}

#[test]
fn a_host_that_unplugs_mid_frame_leaves_no_trace() {
    let mut host = start_device(|_| {});
    host.connect();
    let first = hello(50);
    host.send_split(&first[..first.len() / 2], |_| 64);
    thread::sleep(Duration::from_millis(50)); // the token takes in the half frame
    host.unplug();
    host.set_dtr(false);
    host.drain();
    host.connect();
    // Had the half frame survived, this request would be glued to it and fail to decode.
    host.send_split(&hello(51), |_| 64);
    assert_hello(host.response(), 51);
    host.assert_silent(50);
}

#[test]
fn a_host_that_closes_the_port_mid_frame_leaves_no_trace() {
    let mut host = start_device(|_| {});
    host.connect();
    let first = random(60, 8);
    host.send_split(&first[..3], |_| 64);
    thread::sleep(Duration::from_millis(50)); // the token takes in the partial frame
    let open = host.link.active_session();
    host.set_dtr(false); // the port is closed: DTR drops, the USB link stays up
    host.wait_session_change(open);
    let closed = host.link.active_session();
    host.set_dtr(true);
    host.wait_session_change(closed);
    host.send_split(&hello(61), |_| 64);
    assert_hello(host.response(), 61);
}

#[test]
fn answers_and_requests_of_an_earlier_session_are_dropped() {
    let mut host = start_device(|_| {});
    host.connect();
    let current = host.link.active_session();
    // An answer piece and a request of the previous session turn up during this one.
    let stale_answer =
        Outgoing { session: current - 1, packet: Packet::new(&[0xAA; 64]).unwrap(), end_of_frame: true };
    host.link.try_send(stale_answer).unwrap();
    block_on(
        host.link.push_received(Received { session: current - 1, packet: Packet::new(&hello(70)).unwrap() }),
    );
    host.send_split(&hello(71), |_| 64);
    assert_hello(host.response(), 71);
    host.assert_silent(50);
    assert!(host.packets.iter().all(|p| p.as_bytes() != [0xAA; 64]), "the stale piece was not sent");
}

#[test]
fn every_session_starts_with_a_lone_delimiter_that_ends_a_stale_fragment() {
    let mut host = start_device(|_| {});
    host.plug();
    host.wait_session_change(0);
    host.drain();
    // Say the host still receives half an old answer (a packet the controller had already taken).
    let _ = host.acc.push(&[0x21; 20]);
    let plugged = host.link.active_session();
    host.set_dtr(true);
    host.wait_session_change(plugged);
    host.send_split(&hello(91), |_| 64);
    // Without the delimiter the fragment would be glued to this answer and it would not decode.
    let (id, r) = host.response_skipping_garbage();
    assert_eq!(id, 91);
    assert!(matches!(r, Ok(Response::Hello(pkms_protocol::reply::Hello { .. }))));
}

#[test]
fn requests_keep_working_after_many_reconnects() {
    let mut host = start_device(|_| {});
    for round in 0..5u32 {
        host.connect();
        host.send_split(&hello(100 + round), |i| 3 + i);
        assert_hello(host.response(), 100 + round);
        host.unplug();
        host.set_dtr(false);
        host.drain();
    }
}

// ---------- packetising, without threads ----------

#[test]
fn a_full_last_packet_is_followed_by_a_zero_length_packet() {
    use pkms_nrf52840_support::link::packetize;
    let mut pieces = Vec::new();
    packetize(5, &[1u8; 128], |o| pieces.push(o));
    assert_eq!(pieces.len(), 2);
    assert!(pieces.iter().all(|p| p.session == 5 && p.packet.len() == 64));
    assert_eq!(pieces.iter().map(|p| p.end_of_frame).collect::<Vec<_>>(), [false, true]);

    // Through the USB side: 64 + ZLP, then a 65-byte frame as 64 + 1 without a ZLP.
    let host = start_device(|_| {});
    host.plug();
    host.wait_session_change(0);
    let session = host.link.active_session();
    for p in pieces {
        host.link.try_send(Outgoing { session, ..p }).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut sizes = Vec::new();
    while sizes.len() < 4 && Instant::now() < deadline {
        if let Ok(p) = host.bus.from_device.try_receive() {
            sizes.push(p.len());
        }
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(sizes, [1, 64, 64, 0], "the session delimiter, two full packets, then a ZLP");

    let mut pieces = Vec::new();
    packetize(1, &[2u8; 65], |o| pieces.push(o));
    assert_eq!(pieces.iter().map(|p| p.packet.len()).collect::<Vec<_>>(), [64, 1]);
    let mut none = Vec::new();
    packetize(1, &[], |o| none.push(o));
    assert!(none.is_empty());
}

#[test]
fn the_token_side_alone_drops_partial_frames_on_a_new_session() {
    let server: &'static mut FrameServer = Box::leak(Box::new(FrameServer::new()));
    let mut side = TokenSide::new(server);
    let mut token =
        TestToken::new(MockFlash::new(64 * 1024), rand_chacha::ChaCha20Rng::from_seed([1; 32]), TestBoard::new());
    let req = hello(80);
    let mut out = Vec::new();
    side.handle(&mut token, &Received { session: 1, packet: Packet::new(&req[..4]).unwrap() }, 1, |o| {
        out.push(o)
    });
    assert!(side.is_mid_frame());
    assert!(out.is_empty());
    // Session 2 starts: the half frame of session 1 is gone.
    side.handle(&mut token, &Received { session: 2, packet: Packet::new(&req).unwrap() }, 2, |o| out.push(o));
    assert!(!side.is_mid_frame());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].session, 2);
    assert!(out[0].end_of_frame);
    // A packet of a session that is no longer active is not run.
    side.handle(&mut token, &Received { session: 2, packet: Packet::new(&req).unwrap() }, 3, |o| out.push(o));
    assert_eq!(out.len(), 1);
    assert!(!side.is_mid_frame());
}

#[test]
fn closing_the_port_ends_every_session() {
    use pkms_protocol::access::AuditFullMode;
    use pkms_protocol::session::host::Handshake;
    let mut host = start_device(|_| {});
    host.connect();
    // The device key (its SubjectPublicKeyInfo ends with the 65-byte SEC1 point), then a session.
    host.send_split(&encode(78, Request::GetDeviceKey(pkms_protocol::request::GetDeviceKey {})), |_| 64);
    let Ok(Response::DeviceKey(pkms_protocol::reply::DeviceKey { public_key })) = host.response().1 else {
        panic!("no device key")
    };
    let mut device = [0u8; 65];
    device.copy_from_slice(&public_key[public_key.len() - 65..]);
    let handshake = Handshake::start(&device, &mut rand_chacha::ChaCha20Rng::seed_from_u64(5)).unwrap();
    let opening = encode(
        79,
        Request::OpenSession(pkms_protocol::request::OpenSession { ephemeral: &handshake.ephemeral, payload: &handshake.payload }),
    );
    host.send_split(&opening, |_| 64);
    let Ok(Response::SessionOpened(pkms_protocol::reply::SessionOpened { session_id, ephemeral, payload })) = host.response().1
    else {
        panic!("no session")
    };
    let keys = handshake.finish(session_id, ephemeral, payload).expect("the handshake verifies");
    let mut counter = 0u64;
    let mut sealed_call = |host: &mut Host, id: u32, request: Request<'_>| {
        let mut inner = vec![0u8; 512];
        let n = postcard::to_slice(&RequestFrame { id, now: None, request }, &mut inner).unwrap().len();
        inner.truncate(n);
        let tag = keys.seal_at(counter, &mut inner);
        inner.extend_from_slice(&tag);
        let frame = encode(
            id,
            Request::SessionFrame(pkms_protocol::request::SessionFrame { session_id, counter, sealed: &inner }),
        );
        host.send_split(&frame, |_| 64);
        let (got, r) = host.response_skipping_garbage();
        assert_eq!(got, id);
        let answer = match r {
            Ok(Response::SessionFrame(pkms_protocol::reply::SessionFrame { sealed, counter: c, .. })) => {
                assert_eq!(c, counter);
                let (text, tag) = sealed.split_at(sealed.len() - 16);
                let mut text = text.to_vec();
                keys.open_at(c, &mut text, tag).expect("the answer opens");
                let frame = framing::decode_response(&text).unwrap();
                Ok(frame.result.map(|_| ()).map_err(|e| e.code))
            }
            Ok(other) => panic!("{other:?}"),
            Err(code) => Err(code),
        };
        counter += 1;
        answer
    };
    let init = Request::Initialize(pkms_protocol::request::Initialize {
        pin: b"246810",
        puk: b"1234567890abcdef",
        audit_full: AuditFullMode::Overwrite,
    });
    assert_eq!(sealed_call(&mut host, 80, init), Ok(Ok(())), "initialise the token in the session");
    let random = || Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 8 });
    assert_eq!(sealed_call(&mut host, 82, random()), Ok(Ok(())), "the session allows GenerateRandom");
    // The host closes the port and another program opens it: the session is over.
    let open = host.link.active_session();
    host.set_dtr(false);
    host.wait_session_change(open);
    let closed = host.link.active_session();
    host.set_dtr(true);
    host.wait_session_change(closed);
    assert_eq!(sealed_call(&mut host, 83, random()), Err(ErrorCode::SessionEnded), "the session must not carry over");
}
