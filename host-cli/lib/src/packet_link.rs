//! The host's end of the packet link ([`pkms_protocol::link`]): a [`Transport`] over QEMU's
//! `-netdev stream` socket, where each Ethernet frame travels as a 4-byte big-endian length and
//! the frame. It moves the same COBS byte stream as a serial line, so the [`crate::Client`] above
//! it is unchanged. docs/protocol.md ("The packet link") describes the link for readers.
//!
//! * [`PacketTransport::open`] starts a session: SYNC to the broadcast address every
//!   [`SYNC_INTERVAL`] until the token's SYNC_ACK for this session comes back (during a cold
//!   start the NIC drops frames until the firmware has switched it on). Frames of an earlier
//!   session that are still on their way are skipped.
//! * [`Transport::send`] cuts the bytes into DATA frames of at most the agreed payload and writes
//!   as many as the token's window allows in one write; while the window is full it reads the
//!   token's frames (its ACKs, and any DATA, which is kept for [`Transport::recv`]).
//! * Every DATA frame acknowledges everything received; a token DATA frame asking for an ACK
//!   gets one as soon as the frames at hand are read. The token may have at most [`WINDOW`] DATA
//!   frames beyond the last ack sent; more is a fault, so a token that ignores the window cannot
//!   make this end buffer without bound.
//! * Anything the link forbids — an ERROR from the token, a gap in its sequence numbers, an
//!   impossible ack, a frame that does not decode — is a [`LinkError::Protocol`] naming it, and
//!   the transport stays broken: every later call fails the same way (reconnect to go on).
//! * Its buffers hold plaintexts and data keys on their way: consumed bytes are zeroized, and
//!   all of them when the transport is dropped.

use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use pkms_protocol::link::{
    self, Fault, Header, Kind, Mac, Receiver, Sender, SyncParams, BROADCAST, FLAG_ACK_REQUEST, MAX_FRAME,
    WINDOW,
};
use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use crate::error::LinkError;
use crate::transport::{TimeoutStream, Transport};

/// The host's Ethernet address: locally administered (bit 1 of the first byte), unicast.
pub const HOST_MAC: Mac = [0x02, 0x70, 0x6B, 0x6D, 0x73, 0x01];
/// How often SYNC is repeated until the token answers: during a cold start, the firmware's NIC
/// drops frames until it is switched on, and the next SYNC after that is the one answered.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(1);
/// How long [`Transport::send`] waits for the token to open its window before giving up.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of the length prefix QEMU's stream netdev puts before each frame.
const LENGTH_PREFIX: usize = 4;
/// The largest frame accepted from the socket: QEMU's NIC model sends frames under 2,048
/// bytes; anything larger means the stream is out of step.
const MAX_SOCKET_FRAME: usize = 2048;

/// The packet link over a stream socket (QEMU's `-netdev stream`).
pub struct PacketTransport<S = UnixStream> {
    stream: S,
    session: u16,
    peer: Mac,
    sender: Sender,
    receiver: Receiver,
    max_payload: usize,
    /// A token DATA frame asked for an ACK not sent yet.
    ack_owed: bool,
    /// The last ack sent (the token may send [`WINDOW`] DATA frames beyond it).
    ack_sent: u16,
    /// Stream bytes received and not yet returned by `recv`.
    inbound: Vec<u8>,
    /// Socket bytes not yet cut into frames.
    raw: Vec<u8>,
    /// Frames to write in one go.
    out: Vec<u8>,
    /// Set by the first link fault: every later call fails with it.
    broken: Option<String>,
}

impl<S> std::fmt::Debug for PacketTransport<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketTransport")
            .field("session", &self.session)
            .field("peer", &self.peer)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl PacketTransport<UnixStream> {
    /// Connects to QEMU's netdev socket at `path` and opens a session within `timeout`.
    pub fn connect_unix(path: &Path, timeout: Duration) -> Result<Self, LinkError> {
        let stream = UnixStream::connect(path)
            .map_err(|e| LinkError::Open(format!("unix socket {}: {e}", path.display())))?;
        Self::open(stream, timeout)
    }
}

impl<S: TimeoutStream> PacketTransport<S> {
    /// Opens a session on a connected stream: SYNC every [`SYNC_INTERVAL`] until the token's
    /// SYNC_ACK for it arrives, within `timeout` ([`LinkError::Timeout`] otherwise).
    pub fn open(stream: S, timeout: Duration) -> Result<Self, LinkError> {
        let mut session = 0;
        while session == 0 {
            session = OsRng.next_u32() as u16;
        }
        let mut t = PacketTransport {
            stream,
            session,
            peer: BROADCAST,
            sender: Sender::new(1),
            receiver: Receiver::new(),
            max_payload: 1,
            ack_owed: false,
            ack_sent: 0,
            inbound: Vec::new(),
            raw: Vec::new(),
            out: Vec::new(),
            broken: None,
        };
        let deadline = Instant::now() + timeout;
        loop {
            let header = Header { kind: Kind::Sync, flags: 0, session, seq: 0, ack: 0 };
            t.queue(BROADCAST, &header, &SyncParams::OURS.to_bytes())?;
            t.flush()?;
            let wait = SYNC_INTERVAL.min(deadline.saturating_duration_since(Instant::now()));
            if let Some(params) = t.await_sync_ack(Instant::now() + wait)? {
                let towards = SyncParams::towards(params);
                t.sender = Sender::new(towards.window);
                t.max_payload = usize::from(towards.max_payload);
                return Ok(t);
            }
            if Instant::now() >= deadline {
                return Err(LinkError::Timeout(timeout));
            }
        }
    }

    /// The session id this transport chose.
    pub fn session(&self) -> u16 {
        self.session
    }

    /// The token's Ethernet address (from its SYNC_ACK).
    pub fn peer(&self) -> Mac {
        self.peer
    }

    /// The wrapped stream (tests write raw frames on it).
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Reads frames until the SYNC_ACK of this session, or `until`.
    fn await_sync_ack(&mut self, until: Instant) -> Result<Option<SyncParams>, LinkError> {
        loop {
            while let Some(frame) = self.next_raw_frame()? {
                let Ok(p) = link::decode(&frame) else { continue };
                if p.header.session != self.session || p.dst != HOST_MAC {
                    continue; // an earlier session's frame, or not for us
                }
                match p.header.kind {
                    Kind::SyncAck => {
                        let params = SyncParams::from_bytes(p.payload).map_err(|f| self.fail(refused(f)))?;
                        self.peer = p.src;
                        return Ok(Some(params));
                    }
                    Kind::Error => return Err(self.fail(token_error(p.payload))),
                    Kind::Sync | Kind::Data | Kind::Ack => continue,
                }
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.read_socket(left)? {
                return Ok(None);
            }
        }
    }

    /// Marks the transport broken with `msg`; returns the error to report.
    fn fail(&mut self, msg: String) -> LinkError {
        self.broken = Some(msg.clone());
        LinkError::Protocol(msg)
    }

    fn check(&self) -> Result<(), LinkError> {
        match &self.broken {
            Some(msg) => Err(LinkError::Protocol(msg.clone())),
            None => Ok(()),
        }
    }

    /// Appends one frame to the write buffer.
    fn queue(&mut self, to: Mac, header: &Header, payload: &[u8]) -> Result<(), LinkError> {
        let mut frame = [0u8; MAX_FRAME];
        let n = link::encode(&mut frame, to, HOST_MAC, header, payload)
            .ok_or_else(|| LinkError::Protocol(format!("cannot encode a {:?} frame", header.kind)))?;
        self.out.extend_from_slice(&(n as u32).to_be_bytes());
        self.out.extend_from_slice(&frame[..n]);
        frame[..n].zeroize();
        Ok(())
    }

    /// Writes the buffered frames in one write.
    fn flush(&mut self) -> Result<(), LinkError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = self.stream.write_all(&self.out).and_then(|()| self.stream.flush());
        self.out.zeroize();
        result.map_err(|e| match e.kind() {
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => LinkError::Closed,
            _ => LinkError::Io(e),
        })
    }

    /// Reads what the socket has, waiting at most `timeout` for the first byte. Returns false
    /// on a timeout.
    fn read_socket(&mut self, timeout: Duration) -> Result<bool, LinkError> {
        let mut buf = [0u8; 16 * 1024];
        self.stream.set_timeout(timeout)?;
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(LinkError::Closed),
                Ok(n) => {
                    self.raw.extend_from_slice(&buf[..n]);
                    return Ok(true);
                }
                // QEMU went away with frames of ours unread.
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Err(LinkError::Closed),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(false)
                }
                Err(e) => return Err(LinkError::Io(e)),
            }
        }
    }

    /// Cuts the next whole frame off the socket bytes, if one is there.
    fn next_raw_frame(&mut self) -> Result<Option<Zeroizing<Vec<u8>>>, LinkError> {
        let Some(prefix) = self.raw.get(..LENGTH_PREFIX) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > MAX_SOCKET_FRAME {
            return Err(self.fail(format!(
                "the token's socket announced a frame of {len} bytes (at most {MAX_SOCKET_FRAME}): \
                 the stream is out of step"
            )));
        }
        if self.raw.len() < LENGTH_PREFIX + len {
            return Ok(None);
        }
        let frame = Zeroizing::new(self.raw[LENGTH_PREFIX..LENGTH_PREFIX + len].to_vec());
        self.raw[..LENGTH_PREFIX + len].zeroize();
        self.raw.drain(..LENGTH_PREFIX + len);
        Ok(Some(frame))
    }

    /// Handles every whole frame read so far, then sends the ACK one of them asked for.
    fn process(&mut self) -> Result<(), LinkError> {
        while let Some(frame) = self.next_raw_frame()? {
            self.on_frame(&frame)?;
        }
        if self.ack_owed {
            self.ack_owed = false;
            self.ack_sent = self.receiver.next();
            let header = Header {
                kind: Kind::Ack,
                flags: 0,
                session: self.session,
                seq: 0,
                ack: self.receiver.next(),
            };
            self.queue(self.peer, &header, &[])?;
            self.flush()?;
        }
        Ok(())
    }

    fn on_frame(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        let p =
            link::decode(frame).map_err(|fault| self.fail(format!("the token sent a bad frame: {fault}")))?;
        if p.dst != HOST_MAC || p.header.session != self.session {
            // Not for this end, or of an earlier session (the token left it on our SYNC).
            return Ok(());
        }
        match p.header.kind {
            Kind::Data => {
                if let Err(fault) = self.receiver.accept(p.header.seq) {
                    return Err(self.fail(format!("a frame from the token was lost: {fault}")));
                }
                if p.header.seq.wrapping_sub(self.ack_sent) >= WINDOW {
                    let fault = Fault::WindowExceeded { window: WINDOW };
                    return Err(self.fail(refused(fault)));
                }
                self.sender.on_ack(p.header.ack).map_err(|f| self.fail(refused(f)))?;
                self.inbound.extend_from_slice(p.payload);
                if p.header.flags & FLAG_ACK_REQUEST != 0 {
                    self.ack_owed = true;
                }
            }
            Kind::Ack => self.sender.on_ack(p.header.ack).map_err(|f| self.fail(refused(f)))?,
            Kind::Error => return Err(self.fail(token_error(p.payload))),
            // A SYNC_ACK repeated because SYNC was: the session is open already.
            Kind::SyncAck => {}
            Kind::Sync => {
                let fault = Fault::BadHeader { kind: p.header.kind.to_u8(), flags: p.header.flags };
                return Err(self.fail(format!("the token sent a bad frame: {fault}")));
            }
        }
        Ok(())
    }
}

impl<S> Drop for PacketTransport<S> {
    fn drop(&mut self) {
        self.inbound.zeroize();
        self.raw.zeroize();
        self.out.zeroize();
    }
}

/// The message for a fault this end found in the token's frames.
fn refused(fault: Fault) -> String {
    format!("the token broke the link's rules: {fault}")
}

/// The message for an ERROR frame from the token.
fn token_error(payload: &[u8]) -> String {
    match Fault::from_wire(payload) {
        Some(fault) if fault.ends_session() => {
            format!("the token refused a link frame: {fault}; it dropped the request and left the session")
        }
        Some(fault) => format!("the token refused a link frame: {fault}"),
        None => format!("the token refused a link frame (unknown fault {payload:02x?})"),
    }
}

impl<S: TimeoutStream> Transport for PacketTransport<S> {
    fn send(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        self.check()?;
        let mut rest = bytes;
        while !rest.is_empty() {
            if !self.sender.can_send() {
                self.flush()?;
                let deadline = Instant::now() + ACK_TIMEOUT;
                while !self.sender.can_send() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || !self.read_socket(left)? {
                        return Err(LinkError::Timeout(ACK_TIMEOUT));
                    }
                    self.process()?;
                }
            }
            let Some((seq, flags)) = self.sender.take() else { continue };
            let (piece, tail) = rest.split_at(rest.len().min(self.max_payload));
            let header =
                Header { kind: Kind::Data, flags, session: self.session, seq, ack: self.receiver.next() };
            self.ack_owed = false;
            self.ack_sent = self.receiver.next();
            let peer = self.peer;
            self.queue(peer, &header, piece)?;
            rest = tail;
        }
        self.flush()
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        self.check()?;
        let deadline = Instant::now() + timeout;
        loop {
            self.process()?;
            if !self.inbound.is_empty() {
                let n = buf.len().min(self.inbound.len());
                buf[..n].copy_from_slice(&self.inbound[..n]);
                self.inbound[..n].zeroize();
                self.inbound.drain(..n);
                return Ok(n);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.read_socket(left)? {
                return Err(LinkError::Timeout(timeout));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pkms_protocol::link::{Packet, ETHERTYPE, MAX_PAYLOAD, WINDOW};
    use std::io::{Read, Write};

    const TOKEN_MAC: Mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    /// A decoded frame, owned.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Frame {
        dst: Mac,
        header: Header,
        payload: Vec<u8>,
    }

    /// The token's side of the socket, scripted by each test.
    struct Peer {
        stream: UnixStream,
        raw: Vec<u8>,
        session: u16,
    }

    impl Peer {
        /// The next frame, skipping SYNCs repeated before the answer to the first reached the host.
        fn read(&mut self) -> Frame {
            loop {
                let f = self.read_any();
                if self.session == 0 || f.header.kind != Kind::Sync {
                    return f;
                }
            }
        }

        fn read_any(&mut self) -> Frame {
            loop {
                if self.raw.len() >= 4 {
                    let len = u32::from_be_bytes(self.raw[..4].try_into().unwrap()) as usize;
                    if self.raw.len() >= 4 + len {
                        let bytes: Vec<u8> = self.raw.drain(..4 + len).skip(4).collect();
                        let p: Packet<'_> = link::decode(&bytes).expect("the host sends valid frames");
                        assert_eq!(p.src, HOST_MAC);
                        return Frame { dst: p.dst, header: p.header, payload: p.payload.to_vec() };
                    }
                }
                let mut buf = [0u8; 65536];
                let n = self.stream.read(&mut buf).expect("read");
                assert!(n > 0, "the host closed the socket");
                self.raw.extend_from_slice(&buf[..n]);
            }
        }

        fn write_raw(&mut self, frame: &[u8]) {
            let mut bytes = (frame.len() as u32).to_be_bytes().to_vec();
            bytes.extend_from_slice(frame);
            self.stream.write_all(&bytes).unwrap();
        }

        fn write(&mut self, kind: Kind, flags: u8, seq: u16, ack: u16, payload: &[u8]) {
            let header = Header { kind, flags, session: self.session, seq, ack };
            let mut frame = [0u8; MAX_FRAME];
            let n = link::encode(&mut frame, HOST_MAC, TOKEN_MAC, &header, payload).unwrap();
            self.write_raw(&frame[..n]);
        }

        /// Answers the first SYNC.
        fn accept(&mut self) {
            let sync = self.read();
            assert_eq!((sync.dst, sync.header.kind), (BROADCAST, Kind::Sync));
            assert_eq!(SyncParams::from_bytes(&sync.payload), Ok(SyncParams::OURS));
            self.session = sync.header.session;
            self.write(Kind::SyncAck, 0, 0, 0, &SyncParams::OURS.to_bytes());
        }
    }

    /// A transport and its scripted peer, the session open.
    fn pair() -> (PacketTransport, std::thread::JoinHandle<Peer>) {
        let (host, token) = UnixStream::pair().unwrap();
        let peer = std::thread::spawn(move || {
            let mut peer = Peer { stream: token, raw: Vec::new(), session: 0 };
            peer.accept();
            peer
        });
        let t = PacketTransport::open(host, Duration::from_secs(5)).expect("session opens");
        (t, peer)
    }

    fn protocol_error(result: Result<usize, LinkError>) -> String {
        match result {
            Err(LinkError::Protocol(msg)) => msg,
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }

    #[test]
    fn sync_is_repeated_until_answered_and_stale_frames_are_skipped() {
        let (host, token) = UnixStream::pair().unwrap();
        let peer = std::thread::spawn(move || {
            let mut peer = Peer { stream: token, raw: Vec::new(), session: 0 };
            let first = peer.read();
            let second = peer.read();
            assert_eq!((first.header.kind, second.header.kind), (Kind::Sync, Kind::Sync));
            assert_eq!(first.header.session, second.header.session, "one session per connection");
            // Leftovers of an earlier session, then the answer.
            peer.session = first.header.session.wrapping_add(1);
            peer.write(Kind::Data, 0, 0, 0, b"stale\0");
            peer.session = first.header.session;
            peer.write(Kind::SyncAck, 0, 0, 0, &SyncParams::OURS.to_bytes());
            peer
        });
        let mut t = PacketTransport::open(host, Duration::from_secs(5)).unwrap();
        assert_eq!(t.peer(), TOKEN_MAC);
        let mut peer = peer.join().unwrap();
        peer.write(Kind::Data, 0, 0, 0, b"fresh\0");
        let mut buf = [0u8; 64];
        let n = t.recv(&mut buf, Duration::from_secs(5)).unwrap();
        assert_eq!(&buf[..n], b"fresh\0");
    }

    #[test]
    fn an_unanswered_sync_times_out() {
        let (host, _token) = UnixStream::pair().unwrap();
        let started = Instant::now();
        let err = PacketTransport::open(host, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, LinkError::Timeout(_)), "{err:?}");
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    /// A message larger than the window leaves in frames of the agreed size; the sender stops at
    /// the window, asks for ACKs from half of it, and goes on when the ACK comes.
    #[test]
    fn a_large_message_is_split_and_sent_within_the_window() {
        let (mut t, peer) = pair();
        let message: Vec<u8> = (0..12_000u32).map(|i| (i % 251) as u8 + 1).collect();
        let expected = message.clone();
        let peer = std::thread::spawn(move || {
            let mut peer = peer.join().unwrap();
            let mut got = Vec::new();
            let first: Vec<Frame> = (0..WINDOW).map(|_| peer.read()).collect();
            for (i, f) in first.iter().enumerate() {
                assert_eq!((f.dst, f.header.kind, f.header.seq), (TOKEN_MAC, Kind::Data, i as u16));
                assert_eq!(f.header.flags == FLAG_ACK_REQUEST, i >= 2, "frame {i}");
                assert_eq!(f.payload.len(), MAX_PAYLOAD);
                got.extend_from_slice(&f.payload);
            }
            // Nothing more comes until the window opens.
            peer.stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            let mut probe = [0u8; 1];
            assert!(peer.stream.read(&mut probe).is_err(), "the host kept to its window");
            peer.stream.set_read_timeout(None).unwrap();
            peer.write(Kind::Ack, 0, 0, WINDOW, &[]);
            while got.len() < expected.len() {
                got.extend_from_slice(&peer.read().payload);
            }
            assert_eq!(got, expected);
        });
        t.send(&message).unwrap();
        peer.join().unwrap();
    }

    /// The token's DATA frames are put together in order, and one asking for an ACK gets it.
    #[test]
    fn token_data_is_reassembled_and_acknowledged_when_asked() {
        let (mut t, peer) = pair();
        let mut peer = peer.join().unwrap();
        let message: Vec<u8> = (0..4000u32).map(|i| (i % 200) as u8 + 1).collect();
        for (i, piece) in message.chunks(MAX_PAYLOAD).enumerate() {
            let flags = if i == 2 { FLAG_ACK_REQUEST } else { 0 };
            peer.write(Kind::Data, flags, i as u16, 0, piece);
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 1000];
        while got.len() < message.len() {
            let n = t.recv(&mut buf, Duration::from_secs(5)).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, message);
        let ack = peer.read();
        assert_eq!((ack.header.kind, ack.header.ack), (Kind::Ack, 3));
        // The next DATA from the host acknowledges them too.
        t.send(b"x").unwrap();
        let data = peer.read();
        assert_eq!((data.header.kind, data.header.seq, data.header.ack), (Kind::Data, 0, 3));
    }

    #[test]
    fn an_error_from_the_token_is_a_clear_link_error_and_sticks() {
        let (mut t, peer) = pair();
        let mut peer = peer.join().unwrap();
        peer.write(Kind::Error, 0, 0, 0, &Fault::OutOfOrder { expected: 4, found: 6 }.to_wire());
        let mut buf = [0u8; 16];
        let msg = protocol_error(t.recv(&mut buf, Duration::from_secs(5)));
        assert!(msg.contains("refused") && msg.contains("lost"), "{msg}");
        let again = protocol_error(t.recv(&mut buf, Duration::from_secs(5)));
        assert_eq!(again, msg);
        assert!(matches!(t.send(b"more"), Err(LinkError::Protocol(m)) if m == msg));
    }

    #[test]
    fn a_lost_token_frame_is_a_link_error() {
        let (mut t, peer) = pair();
        let mut peer = peer.join().unwrap();
        peer.write(Kind::Data, 0, 0, 0, b"one");
        peer.write(Kind::Data, 0, 2, 0, b"three");
        let mut buf = [0u8; 16];
        let msg = protocol_error(t.recv(&mut buf, Duration::from_secs(5)));
        assert!(msg.contains("lost") && msg.contains("2 arrived where 1"), "{msg}");
    }

    #[test]
    fn frames_the_link_forbids_are_link_errors() {
        // Another EtherType.
        let (mut t, peer) = pair();
        let mut peer = peer.join().unwrap();
        let mut frame = vec![0u8; 60];
        frame[..6].copy_from_slice(&HOST_MAC);
        frame[6..12].copy_from_slice(&TOKEN_MAC);
        frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        peer.write_raw(&frame);
        let mut buf = [0u8; 16];
        assert!(protocol_error(t.recv(&mut buf, Duration::from_secs(5))).contains("EtherType 0x0800"));

        // A length field that disagrees with the frame.
        let (mut t, peer) = pair();
        let mut peer = peer.join().unwrap();
        frame[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
        frame[14] = Kind::Data.to_u8();
        frame[16..18].copy_from_slice(&peer.session.to_be_bytes());
        frame[22..24].copy_from_slice(&100u16.to_be_bytes());
        peer.write_raw(&frame);
        assert!(protocol_error(t.recv(&mut buf, Duration::from_secs(5))).contains("wrong frame length"));

        // An ack for frames the host never sent.
        let (mut t, peer) = pair();
        let mut peer = peer.join().unwrap();
        peer.write(Kind::Ack, 0, 0, 5, &[]);
        assert!(protocol_error(t.recv(&mut buf, Duration::from_secs(5))).contains("never sent"));

        // A length prefix no NIC frame can have: the socket stream is out of step.
        let (mut t, peer) = pair();
        let mut peer = peer.join().unwrap();
        peer.stream.write_all(&100_000u32.to_be_bytes()).unwrap();
        assert!(protocol_error(t.recv(&mut buf, Duration::from_secs(5))).contains("out of step"));
    }

    /// A token that sends more than the window beyond the last ack is refused, rather than
    /// buffered without bound.
    #[test]
    fn a_token_ignoring_the_window_is_a_link_error() {
        let (mut t, peer) = pair();
        let mut peer = peer.join().unwrap();
        for seq in 0..=WINDOW {
            peer.write(Kind::Data, 0, seq, 0, b"x");
        }
        let mut buf = [0u8; 64];
        let msg = protocol_error(t.recv(&mut buf, Duration::from_secs(5)));
        assert!(msg.contains("window of 6"), "{msg}");
    }

    #[test]
    fn a_closed_socket_is_reported_as_closed() {
        let (mut t, peer) = pair();
        drop(peer.join().unwrap());
        let mut buf = [0u8; 16];
        assert!(matches!(t.recv(&mut buf, Duration::from_secs(5)), Err(LinkError::Closed)));
    }
}
