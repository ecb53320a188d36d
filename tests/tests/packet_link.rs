//! The QEMU token's packet link, frame by frame, with hand-made Ethernet frames on its netdev
//! socket: every frame the link forbids gets an ERROR naming what was wrong; a lost, repeated or
//! foreign-session frame ends the session and drops the partial request, so it never runs; a
//! flood beyond the window loses frames without hanging the token; and a response larger than the
//! window waits for the host's ACK. Needs `qemu-system-arm`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use pkms_lib::launcher::Link;
use pkms_lib::model::CreateKeyParams;
use pkms_protocol::framing::{self, Feed, FrameAccumulator};
use pkms_protocol::limits::MAX_ENCODED_FRAME;
use pkms_protocol::link::{
    self, Fault, Header, Kind, Mac, SyncParams, BROADCAST, FLAG_ACK_REQUEST, MAX_FRAME, MAX_PAYLOAD, WINDOW,
};
use pkms_protocol::messages::{Request, RequestFrame, Response};
use pkms_protocol::ErrorCode;
use pkms_tests::harness::{Qemu, TestToken};

const HOST: Mac = [0x02, 0, 0, 0, 0, 0x42];
const WAIT: Duration = Duration::from_secs(10);

/// A frame from the token, owned.
#[derive(Debug, Clone)]
struct Frame {
    header: Header,
    payload: Vec<u8>,
}

/// A hand-driven connection to the token's netdev socket.
struct RawLink {
    stream: UnixStream,
    raw: Vec<u8>,
    session: u16,
    token: Mac,
}

impl RawLink {
    /// Connects and opens session `session` (SYNC until SYNC_ACK).
    fn open(q: &Qemu, session: u16) -> RawLink {
        let stream =
            UnixStream::connect(&q.token().paths().net_socket).expect("connect to the netdev socket");
        let mut l = RawLink { stream, raw: Vec::new(), session, token: BROADCAST };
        l.sync(session);
        l
    }

    /// Sends SYNC for `session` until the token answers it; learns the token's address.
    fn sync(&mut self, session: u16) {
        self.sync_with(session, SyncParams::OURS);
    }

    /// As [`RawLink::sync`], announcing `params` (e.g. a smaller window).
    fn sync_with(&mut self, session: u16, params: SyncParams) {
        self.session = session;
        let deadline = Instant::now() + WAIT;
        loop {
            let header = Header { kind: Kind::Sync, flags: 0, session, seq: 0, ack: 0 };
            self.send(&frame(BROADCAST, &header, &params.to_bytes()));
            while let Some((src, f)) = self.next_from(Duration::from_millis(100)) {
                if f.header.kind == Kind::SyncAck && f.header.session == session {
                    assert_eq!(SyncParams::from_bytes(&f.payload), Ok(SyncParams::OURS));
                    self.token = src;
                    return;
                }
            }
            assert!(Instant::now() < deadline, "no SYNC_ACK");
        }
    }

    fn send(&mut self, frame: &[u8]) {
        self.send_all(&[frame.to_vec()]);
    }

    /// Writes frames in one write, so QEMU hands them to the NIC in one turn.
    fn send_all(&mut self, frames: &[Vec<u8>]) {
        let mut bytes = Vec::new();
        for f in frames {
            bytes.extend_from_slice(&(f.len() as u32).to_be_bytes());
            bytes.extend_from_slice(f);
        }
        self.stream.write_all(&bytes).unwrap();
    }

    fn header(&self, kind: Kind, flags: u8, seq: u16, ack: u16) -> Header {
        Header { kind, flags, session: self.session, seq, ack }
    }

    fn data(&self, seq: u16, ack: u16, payload: &[u8]) -> Vec<u8> {
        frame(self.token, &self.header(Kind::Data, 0, seq, ack), payload)
    }

    /// The next frame and its source, or `None` after `timeout`.
    fn next_from(&mut self, timeout: Duration) -> Option<(Mac, Frame)> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.raw.len() >= 4 {
                let len = u32::from_be_bytes(self.raw[..4].try_into().unwrap()) as usize;
                if self.raw.len() >= 4 + len {
                    let bytes: Vec<u8> = self.raw.drain(..4 + len).skip(4).collect();
                    let p =
                        link::decode(&bytes).unwrap_or_else(|f| panic!("the token sent a bad frame: {f}"));
                    assert_eq!(p.dst, HOST, "frames go to the sender's address");
                    return Some((p.src, Frame { header: p.header, payload: p.payload.to_vec() }));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 65536];
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("QEMU closed the socket"),
                Ok(n) => self.raw.extend_from_slice(&buf[..n]),
                Err(_) => return None,
            }
        }
    }

    /// The next frame, skipping SYNC_ACKs (a SYNC repeated before the first answer came gets
    /// one more).
    fn next(&mut self) -> Frame {
        loop {
            let f = self.next_from(WAIT).expect("a frame from the token").1;
            if f.header.kind != Kind::SyncAck {
                return f;
            }
        }
    }

    /// The next frame must be an ERROR; returns its fault.
    #[track_caller]
    fn expect_fault(&mut self) -> Fault {
        let f = self.next();
        assert_eq!(f.header.kind, Kind::Error, "{f:?}");
        Fault::from_wire(&f.payload).expect("a known fault")
    }

    /// Nothing more comes for a while.
    #[track_caller]
    fn expect_silence(&mut self) {
        while let Some((_, f)) = self.next_from(Duration::from_millis(200)) {
            assert_eq!(f.header.kind, Kind::SyncAck, "unexpected frame {f:?}");
        }
    }

    /// Reads DATA until one protocol frame is complete, acknowledging what asks for it; returns
    /// the decoded payload and the token's next sequence number.
    fn response(&mut self, mut expected_seq: u16) -> (Vec<u8>, u16) {
        let mut acc = Box::new(FrameAccumulator::new());
        loop {
            let f = self.next();
            assert_eq!((f.header.kind, f.header.seq), (Kind::Data, expected_seq), "{f:?}");
            expected_seq = expected_seq.wrapping_add(1);
            if f.header.flags & FLAG_ACK_REQUEST != 0 {
                let ack = frame(self.token, &self.header(Kind::Ack, 0, 0, expected_seq), &[]);
                self.send(&ack);
            }
            if let Feed::Frame(payload, _) = acc.push(&f.payload) {
                return (payload.to_vec(), expected_seq);
            }
        }
    }
}

fn frame(dst: Mac, header: &Header, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; MAX_FRAME];
    let n = link::encode(&mut out, dst, HOST, header, payload).expect("encodable frame");
    out.truncate(n);
    out
}

fn request(id: u32, request: Request<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_ENCODED_FRAME];
    let n = framing::encode(&RequestFrame { id, now: None, request }, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// GetInfo's key count from a response payload.
fn key_count(payload: &[u8]) -> u32 {
    match framing::decode_response(payload).unwrap().result {
        Ok(Response::Info(reply)) => reply.info.key_count,
        other => panic!("GetInfo answered {other:?}"),
    }
}

#[test]
fn frames_the_link_refuses_get_an_error_and_the_session_goes_on() {
    let q = Qemu::new();
    let mut l = RawLink::open(&q, 0x1001);
    let hello = request(1, Request::GetInfo(pkms_protocol::request::GetInfo {}));

    let mut ipv4 = l.data(0, 0, &hello);
    ipv4[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    l.send(&ipv4);
    assert_eq!(l.expect_fault(), Fault::WrongEtherType { found: 0x0800 });

    let short = l.data(0, 0, &hello)[..20].to_vec();
    l.send(&short);
    assert_eq!(l.expect_fault(), Fault::WrongLength { frame: 20, declared: 0 });

    let mut lying = l.data(0, 0, &hello);
    lying[22..24].copy_from_slice(&100u16.to_be_bytes());
    l.send(&lying);
    assert_eq!(l.expect_fault(), Fault::WrongLength { frame: 60, declared: 100 });

    // Longer than an Ethernet frame (QEMU passes frames under 2,048 bytes), length field agreeing.
    let mut long = l.data(0, 0, &[1; MAX_PAYLOAD]);
    long.extend_from_slice(&[1; 300]);
    long[22..24].copy_from_slice(&((MAX_PAYLOAD + 300) as u16).to_be_bytes());
    l.send(&long);
    assert_eq!(
        l.expect_fault(),
        Fault::WrongLength { frame: (MAX_FRAME + 300) as u16, declared: (MAX_PAYLOAD + 300) as u16 }
    );

    let mut kind = l.data(0, 0, &hello);
    kind[14] = 9;
    l.send(&kind);
    assert_eq!(l.expect_fault(), Fault::BadHeader { kind: 9, flags: 0 });
    let mut ack_with_flags = frame(l.token, &l.header(Kind::Ack, 0, 0, 0), &[]);
    ack_with_flags[15] = FLAG_ACK_REQUEST;
    l.send(&ack_with_flags);
    assert_eq!(l.expect_fault(), Fault::BadHeader { kind: Kind::Ack.to_u8(), flags: FLAG_ACK_REQUEST });
    l.send(&frame(l.token, &l.header(Kind::SyncAck, 0, 0, 0), &SyncParams::OURS.to_bytes()));
    assert_eq!(l.expect_fault(), Fault::BadHeader { kind: Kind::SyncAck.to_u8(), flags: 0 });
    // The token does not answer an ERROR: that could start an exchange of errors.
    l.send(&frame(l.token, &l.header(Kind::Error, 0, 0, 0), &Fault::NotSynchronised.to_wire()));
    l.expect_silence();

    // None of that touched the session: its first DATA frame is still number 0.
    l.send(&l.data(0, 0, &hello));
    let (payload, _) = l.response(0);
    assert_eq!(key_count(&payload), 0);
}

#[test]
fn a_lost_or_repeated_frame_drops_the_partial_request_and_ends_the_session() {
    let mut q = Qemu::new();
    let create = request(
        1,
        Request::CreateKey(pkms_protocol::request::CreateKey {
            key_spec: pkms_protocol::KeySpec::SymmetricDefault,
            key_usage: None,
            description: "must never be created",
            tags: Default::default(),
            user_presence_required: false,
        }),
    );
    let (first, rest) = create.split_at(create.len() / 2);
    {
        let mut l = RawLink::open(&q, 0x2001);
        l.send(&l.data(0, 0, first));
        l.send(&l.data(2, 0, rest)); // frame 1 never came
        assert_eq!(l.expect_fault(), Fault::OutOfOrder { expected: 1, found: 2 });
        l.send(&l.data(3, 0, &request(2, Request::GetInfo(pkms_protocol::request::GetInfo {}))));
        assert_eq!(l.expect_fault(), Fault::NotSynchronised, "the session ended");

        // A new session: the half request left behind was dropped, so the other half alone is
        // an undecodable frame, not the end of a CreateKey.
        l.sync(0x2002);
        l.send(&l.data(0, 0, rest));
        let (payload, next) = l.response(0);
        let answer = framing::decode_response(&payload).unwrap();
        assert_eq!(answer.id, 0);
        assert_eq!(answer.result.unwrap_err().code, ErrorCode::MalformedFrame);
        l.send(&l.data(1, next, &request(3, Request::GetInfo(pkms_protocol::request::GetInfo {}))));
        let (payload, next) = l.response(next);
        assert_eq!(key_count(&payload), 0, "the cut CreateKey never ran");

        // A repeated frame.
        let info = request(4, Request::GetInfo(pkms_protocol::request::GetInfo {}));
        l.send(&l.data(2, next, &info));
        let (_, next) = l.response(next);
        l.send(&l.data(2, next, &info));
        assert_eq!(l.expect_fault(), Fault::OutOfOrder { expected: 3, found: 2 });

        // A frame QEMU drops (2,048 bytes or more) is noticed at the next one, as lost.
        l.sync(0x2003);
        let mut huge = l.data(0, 0, &[1; MAX_PAYLOAD]);
        huge.resize(3000, 1);
        l.send(&huge);
        l.send(&l.data(1, 0, &info));
        assert_eq!(l.expect_fault(), Fault::OutOfOrder { expected: 0, found: 1 });
    }
    let mut c = q.client();
    assert_eq!(c.get_info().unwrap().key_count, 0);
}

#[test]
fn foreign_sessions_impossible_acks_frames_beyond_the_window_and_bad_syncs_are_refused() {
    let q = Qemu::new();
    let mut l = RawLink::open(&q, 0x3001);
    let info = request(1, Request::GetInfo(pkms_protocol::request::GetInfo {}));

    let mut other = l.data(0, 0, &info);
    other[16..18].copy_from_slice(&0x3002u16.to_be_bytes());
    l.send(&other);
    assert_eq!(l.expect_fault(), Fault::WrongSession { expected: 0x3001, found: 0x3002 });
    l.send(&l.data(0, 0, &info));
    assert_eq!(l.expect_fault(), Fault::NotSynchronised);

    l.sync(0x3003);
    l.send(&l.data(0, 5, &info));
    assert_eq!(l.expect_fault(), Fault::BadAck { ack: 5, next: 0 }, "acknowledges frames never sent");

    let old = SyncParams { version: 2, ..SyncParams::OURS };
    l.send(&frame(BROADCAST, &l.header(Kind::Sync, 0, 0, 0), &old.to_bytes()));
    assert_eq!(
        l.expect_fault(),
        Fault::BadSync {
            version: 2,
            window: SyncParams::OURS.window,
            max_payload: SyncParams::OURS.max_payload
        }
    );
    // More DATA than the window beyond the last ack (none was asked for, none was sent).
    l.sync(0x3004);
    for seq in 0..WINDOW {
        l.send(&l.data(seq, 0, b"x"));
    }
    l.send(&l.data(WINDOW, 0, b"x"));
    assert_eq!(l.expect_fault(), Fault::WindowExceeded { window: WINDOW });

    let zero = SyncParams { window: 0, ..SyncParams::OURS };
    l.send(&frame(BROADCAST, &l.header(Kind::Sync, 0, 0, 0), &zero.to_bytes()));
    assert!(matches!(l.expect_fault(), Fault::BadSync { window: 0, .. }));
}

/// A sender that ignores the window overruns the NIC's receive FIFO: QEMU drops what does not
/// fit, the token notices the gap at the next frame, and it keeps serving after a new SYNC.
#[test]
fn a_flood_beyond_the_window_loses_frames_but_never_hangs_the_token() {
    let mut q = Qemu::new();
    {
        let mut l = RawLink::open(&q, 0x4001);
        let flood: Vec<Vec<u8>> = (0..20).map(|seq| l.data(seq, 0, &[0x55; MAX_PAYLOAD])).collect();
        l.send_all(&flood);
        l.send(&l.data(20, 0, &[0]));
        match l.expect_fault() {
            Fault::OutOfOrder { expected, found: 20 } => {
                assert!(expected <= WINDOW + 1, "only about a window fits the FIFO; {expected} came")
            }
            other => panic!("expected a lost frame, got {other}"),
        }
        l.sync(0x4002);
        l.send(&l.data(0, 0, &request(1, Request::GetInfo(pkms_protocol::request::GetInfo {}))));
        let (payload, _) = l.response(0);
        assert_eq!(key_count(&payload), 0);
    }
    assert!(q.token_mut().is_running(), "QEMU never stopped");
}

/// A response of more than a window of frames: the token sends a window's worth (the window
/// this host announced in its SYNC), each frame from half the window on asking for an ACK, waits
/// while none comes, and goes on once acknowledged.
#[test]
fn a_response_larger_than_the_window_waits_for_the_hosts_ack() {
    const SMALL_WINDOW: u16 = 2;
    let mut q = Qemu::new();
    {
        let mut c = q.client();
        let key = c.create_key(&CreateKeyParams::default()).unwrap().key_id.to_string();
        for i in 0..32 {
            let name = format!("alias/{i:02}-{}", "x".repeat(240));
            c.create_alias(&name, &key).unwrap();
        }
    }
    let stream = UnixStream::connect(&q.token().paths().net_socket).unwrap();
    let mut l = RawLink { stream, raw: Vec::new(), session: 0x5001, token: BROADCAST };
    l.sync_with(0x5001, SyncParams { window: SMALL_WINDOW, ..SyncParams::OURS });
    l.send(&l.data(
        0,
        0,
        &request(
            1,
            Request::ListAliases(pkms_protocol::request::ListAliases {
                key_id: None,
                limit: Some(32),
                marker: None,
            }),
        ),
    ));
    let mut acc = Box::new(FrameAccumulator::new());
    let mut seq = 0u16;
    let mut stalls = 0;
    let payload = 'response: loop {
        for _ in 0..SMALL_WINDOW {
            let f = l.next();
            assert_eq!((f.header.kind, f.header.seq, f.header.ack), (Kind::Data, seq, 1));
            assert_eq!(f.header.flags, FLAG_ACK_REQUEST, "half of a window of 2 is in flight at every frame");
            seq += 1;
            if let Feed::Frame(p, _) = acc.push(&f.payload) {
                break 'response p.to_vec();
            }
        }
        // The window is full and the response is not: nothing comes until the ACK.
        l.expect_silence();
        stalls += 1;
        l.send(&frame(l.token, &l.header(Kind::Ack, 0, 0, seq), &[]));
    };
    assert!(stalls >= 2, "a response of {seq} frames waited {stalls} times");
    match framing::decode_response(&payload).unwrap().result {
        // As many as fit one frame; the rest would follow with the marker.
        Ok(Response::Aliases(pkms_protocol::reply::Aliases { aliases, .. })) => {
            assert!(
                aliases.len() >= 16 && aliases.iter().all(|a| a.alias_name.len() == 249),
                "{}",
                aliases.len()
            )
        }
        other => panic!("ListAliases answered {other:?}"),
    }
    drop(l);

    // The same through the library's transport, with the full window.
    let mut c = q.client();
    assert_eq!(c.list_all_aliases(None).unwrap().len(), 32);
}

/// The token serves the packet link and the UART at once; a session on one does not disturb the
/// other.
#[test]
fn both_links_reach_the_one_token() {
    let q = Qemu::new();
    let eth = q.token().connect_over(Link::Ethernet, WAIT).unwrap();
    let mut a = pkms_lib::Client::connect(eth).unwrap();
    let key = a.create_key(&CreateKeyParams::default()).unwrap().key_id.to_string();
    drop(a);
    let uart = q.token().connect_over(Link::Uart, WAIT).unwrap();
    let mut b = pkms_lib::Client::connect(uart).unwrap();
    let blob = b.encrypt(&key, &[7; 4096], &[("via", "uart")]).unwrap().ciphertext_blob;
    drop(b);
    let eth = q.token().connect_over(Link::Ethernet, WAIT).unwrap();
    let mut a = pkms_lib::Client::connect(eth).unwrap();
    assert_eq!(a.decrypt(&blob, &[("via", "uart")], None).unwrap().plaintext.as_slice(), &[7; 4096]);
}
