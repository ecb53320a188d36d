//! The token's end of the packet link ([`pkms_protocol::link`]) over the LAN9118: raw Ethernet
//! frames carrying the same COBS byte stream as the UART, cut into DATA frames, with a sliding
//! window in each direction. docs/protocol.md ("The packet link") is the description for
//! readers; here is how the token keeps it.
//!
//! * Every frame waiting in the NIC is taken at each [`PacketLink::poll`], so the FIFO empties as
//!   fast as the main loop turns. Frames that [`link::decode`] refuses, and DATA out of sequence,
//!   outside a session or beyond the window, are answered with an ERROR frame naming the
//!   [`Fault`]; sequence faults also end the session and drop the partial request, so a request
//!   missing a piece never runs. Nothing here panics or waits on the host.
//! * DATA payloads are appended to a stream buffer. The token acknowledges them only while that
//!   buffer has room for a whole window of the largest payloads, so what the host may still send
//!   always fits: an ack is the credit for the next [`WINDOW`] frames, and a frame beyond that
//!   credit is refused.
//! * Requests are taken from the stream buffer one protocol frame at a time, and only once the
//!   previous response has left, so at most one response (at most [`MAX_ENCODED_FRAME`] bytes)
//!   waits to be sent. It leaves in DATA frames as the host's window allows; frames past half the
//!   window ask for an ACK, so a large response keeps flowing.
//! * Request and response bytes are zeroized once used (they carry plaintexts and data keys).

use pkms_firmware::{FrameServer, Platform, Token};
use pkms_protocol::limits::MAX_ENCODED_FRAME;
use pkms_protocol::link::{
    self, Fault, Header, Kind, Mac, Packet, Receiver, Sender, SyncParams, ETHERTYPE, FLAG_ACK_REQUEST,
    MAX_FRAME, MAX_PAYLOAD, WINDOW,
};
use zeroize::Zeroize;

use crate::lan9118::{self, Received};

/// Bytes of the stream buffer: room for a window of the largest payloads beyond whatever part
/// of a request is still waiting for the server.
const STREAM_BYTES: usize = 16 * 1024;
/// An ack (a credit for [`WINDOW`] more frames) goes out only while the stream buffer has room
/// for this many bytes.
const WINDOW_BYTES: usize = WINDOW as usize * MAX_PAYLOAD;
const _: () = assert!(STREAM_BYTES >= WINDOW_BYTES, "an empty stream buffer must take a whole window");
/// Frames up to this size are read whole (QEMU hands over frames under 2,048 bytes), so a
/// too-long frame is refused with its header read.
const RX_FRAME_BYTES: usize = 2048;

/// Received stream bytes not yet given to the frame server, kept contiguous.
struct StreamBuf {
    buf: [u8; STREAM_BYTES],
    start: usize,
    end: usize,
}

impl StreamBuf {
    const fn new() -> Self {
        StreamBuf { buf: [0; STREAM_BYTES], start: 0, end: 0 }
    }

    fn len(&self) -> usize {
        self.end - self.start
    }

    fn free(&self) -> usize {
        STREAM_BYTES - self.len()
    }

    /// Appends `bytes`; false (nothing appended) if they do not fit.
    fn push(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.free() {
            return false;
        }
        if self.end + bytes.len() > STREAM_BYTES {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            self.buf[self.end..].zeroize();
        }
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
        true
    }

    /// The buffered bytes up to and including the first 0x00 (the end of one protocol frame),
    /// or all of them if no frame ends yet.
    fn next_piece(&self) -> &[u8] {
        let bytes = &self.buf[self.start..self.end];
        match bytes.iter().position(|&b| b == 0) {
            Some(i) => &bytes[..=i],
            None => bytes,
        }
    }

    /// Drops the first `n` bytes, zeroized.
    fn consume(&mut self, n: usize) {
        let n = n.min(self.len());
        self.buf[self.start..self.start + n].zeroize();
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    fn clear(&mut self) {
        self.consume(self.len());
    }
}

/// The response being sent.
struct Outgoing {
    buf: [u8; MAX_ENCODED_FRAME],
    len: usize,
    sent: usize,
}

impl Outgoing {
    const fn new() -> Self {
        Outgoing { buf: [0; MAX_ENCODED_FRAME], len: 0, sent: 0 }
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes a response; false if one is still being sent or it does not fit (neither happens:
    /// one request is served at a time and a response is at most one encoded frame).
    fn set(&mut self, bytes: &[u8]) -> bool {
        if !self.is_empty() || bytes.len() > self.buf.len() {
            return false;
        }
        self.buf[..bytes.len()].copy_from_slice(bytes);
        self.len = bytes.len();
        self.sent = 0;
        true
    }

    fn unsent(&self) -> &[u8] {
        &self.buf[self.sent..self.len]
    }

    fn advance(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.len);
        if self.sent == self.len {
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.buf[..self.len].zeroize();
        self.len = 0;
        self.sent = 0;
    }
}

/// A session opened by the host's SYNC.
struct Session {
    id: u16,
    peer: Mac,
    sender: Sender,
    receiver: Receiver,
    /// The last ack sent (cumulative).
    ack_sent: u16,
    /// A DATA frame asked for an ACK that has not gone yet.
    ack_requested: bool,
    max_payload: usize,
}

/// Everything but the receive frame buffer, so a frame borrowed from that buffer can be handled.
struct State {
    mac: Mac,
    session: Option<Session>,
    stream: StreamBuf,
    out: Outgoing,
    server: FrameServer,
    tx_frame: [u8; MAX_FRAME],
}

/// The token's end of the packet link. One lives in a static (about 60 KB).
pub struct PacketLink {
    rx_frame: [u8; RX_FRAME_BYTES],
    state: State,
}

impl PacketLink {
    /// A link with no session, for the NIC with address `mac` (set by [`PacketLink::start`]).
    pub const fn new() -> Self {
        PacketLink {
            rx_frame: [0; RX_FRAME_BYTES],
            state: State {
                mac: [0; 6],
                session: None,
                stream: StreamBuf::new(),
                out: Outgoing::new(),
                server: FrameServer::new(),
                tx_frame: [0; MAX_FRAME],
            },
        }
    }

    /// Records the NIC's address (from [`lan9118::init`]).
    pub fn start(&mut self, mac: Mac) {
        self.state.mac = mac;
    }

    /// Whether the link has work that does not wait for a frame: only then may the main loop
    /// skip its sleep. (Work that waits for the host's ack or next frame is woken by the NIC.)
    pub fn has_work(&self) -> bool {
        self.state.out.is_empty() && self.state.stream.len() > 0
    }

    /// Takes every frame waiting in the NIC, gives complete requests to the token, and sends
    /// what the window allows. Returns whether any frame arrived.
    pub fn poll<P: Platform>(&mut self, token: &mut Token<P>) -> bool {
        let mut arrived = false;
        while let Some(rx) = lan9118::receive(&mut self.rx_frame) {
            arrived = true;
            self.on_frame(rx);
        }
        let state = &mut self.state;
        loop {
            state.serve(token);
            state.send_data();
            if !state.out.is_empty() || state.stream.len() == 0 {
                break;
            }
        }
        state.send_owed_ack();
        arrived
    }

    fn on_frame(&mut self, rx: Received) {
        // A frame the NIC flags as bad cannot be trusted, not even its source address.
        if !rx.error {
            let frame = &self.rx_frame[..rx.len.min(RX_FRAME_BYTES)];
            if rx.len > RX_FRAME_BYTES {
                let declared = frame.get(22..24).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                let fault = Fault::WrongLength { frame: rx.len.min(usize::from(u16::MAX)) as u16, declared };
                self.state.refuse(link::source(frame), session_of(frame), fault);
            } else {
                match link::decode(frame) {
                    Ok(packet) => self.state.on_packet(&packet),
                    Err(fault) => self.state.refuse(link::source(frame), session_of(frame), fault),
                }
            }
        }
        self.rx_frame[..rx.len.min(RX_FRAME_BYTES)].zeroize();
    }
}

impl Default for PacketLink {
    fn default() -> Self {
        Self::new()
    }
}

/// The session field of a frame of this link's EtherType, if it has one.
fn session_of(frame: &[u8]) -> Option<u16> {
    let ethertype = frame.get(12..14)?;
    let session = frame.get(16..18)?;
    (u16::from_be_bytes([ethertype[0], ethertype[1]]) == ETHERTYPE)
        .then(|| u16::from_be_bytes([session[0], session[1]]))
}

impl State {
    fn on_packet(&mut self, p: &Packet<'_>) {
        match p.header.kind {
            Kind::Sync => match SyncParams::from_bytes(p.payload) {
                Ok(peer) => self.open_session(p.src, p.header.session, peer),
                Err(fault) => self.refuse(Some(p.src), Some(p.header.session), fault),
            },
            // Only the token sends SYNC_ACK.
            Kind::SyncAck => self.refuse(
                Some(p.src),
                Some(p.header.session),
                Fault::BadHeader { kind: p.header.kind.to_u8(), flags: p.header.flags },
            ),
            // The host's complaint about a token frame: the host ends its connection itself.
            // Answering it could start an exchange of errors.
            Kind::Error => {}
            Kind::Data | Kind::Ack => {
                if let Err(fault) = self.on_session_frame(p) {
                    self.refuse(Some(p.src), Some(p.header.session), fault);
                }
            }
        }
    }

    /// DATA or ACK: checks session, ack and sequence; appends DATA to the stream.
    fn on_session_frame(&mut self, p: &Packet<'_>) -> Result<(), Fault> {
        let Some(s) = self.session.as_mut() else {
            return Err(Fault::NotSynchronised);
        };
        if p.header.session != s.id {
            return Err(Fault::WrongSession { expected: s.id, found: p.header.session });
        }
        s.sender.on_ack(p.header.ack)?;
        if p.header.kind == Kind::Data {
            s.receiver.accept(p.header.seq)?;
            // The host may send WINDOW frames beyond the last ack, no more.
            if p.header.seq.wrapping_sub(s.ack_sent) >= WINDOW || !self.stream.push(p.payload) {
                return Err(Fault::WindowExceeded { window: WINDOW });
            }
            if p.header.flags & FLAG_ACK_REQUEST != 0 {
                s.ack_requested = true;
            }
        }
        Ok(())
    }

    /// A SYNC: drops whatever the previous session left and answers SYNC_ACK.
    fn open_session(&mut self, peer: Mac, id: u16, params: SyncParams) {
        self.reset();
        let towards = SyncParams::towards(params);
        self.session = Some(Session {
            id,
            peer,
            sender: Sender::new(towards.window),
            receiver: Receiver::new(),
            ack_sent: 0,
            ack_requested: false,
            max_payload: usize::from(towards.max_payload),
        });
        let header = Header { kind: Kind::SyncAck, flags: 0, session: id, seq: 0, ack: 0 };
        self.send_control(peer, &header, &SyncParams::OURS.to_bytes());
    }

    fn reset(&mut self) {
        self.session = None;
        self.stream.clear();
        self.out.clear();
        self.server.reset();
    }

    /// Answers a refused frame with ERROR (when it has a source address) and, for a sequence
    /// fault, ends the session.
    fn refuse(&mut self, to: Option<Mac>, session: Option<u16>, fault: Fault) {
        if let Some(to) = to {
            let session = session.or(self.session.as_ref().map(|s| s.id)).unwrap_or(0);
            let header = Header { kind: Kind::Error, flags: 0, session, seq: 0, ack: 0 };
            self.send_control(to, &header, &fault.to_wire());
        }
        if fault.ends_session() && self.session.is_some() {
            defmt::warn!("packet link: session ended by a sequence fault; waiting for SYNC");
            self.reset();
        }
    }

    /// Gives the frame server the next protocol frame while no response is waiting.
    fn serve<P: Platform>(&mut self, token: &mut Token<P>) {
        while self.out.is_empty() && self.stream.len() > 0 {
            let piece = self.stream.next_piece();
            let n = piece.len();
            let out = &mut self.out;
            self.server.feed(token, piece, |response| {
                if !out.set(response) {
                    defmt::error!("packet link: a second response to one request was dropped");
                }
            });
            self.stream.consume(n);
        }
    }

    /// The ack to carry: the receiver's position if the stream buffer can take a whole window
    /// more, else the last one sent.
    fn ack_to_send(s: &mut Session, stream_free: usize) -> u16 {
        if stream_free >= WINDOW_BYTES {
            s.ack_sent = s.receiver.next();
            s.ack_requested = false;
        }
        s.ack_sent
    }

    /// Sends the response in DATA frames while the window allows.
    fn send_data(&mut self) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        while !self.out.is_empty() {
            let Some((seq, flags)) = s.sender.take() else {
                break;
            };
            let unsent = self.out.unsent();
            let piece = &unsent[..unsent.len().min(s.max_payload)];
            let ack = Self::ack_to_send(s, self.stream.free());
            let header = Header { kind: Kind::Data, flags, session: s.id, seq, ack };
            // A frame that cannot be sent is lost: the host sees the gap in the sequence.
            if let Some(n) = link::encode(&mut self.tx_frame, s.peer, self.mac, &header, piece) {
                lan9118::transmit(&self.tx_frame[..n]);
                self.tx_frame[..n].zeroize();
            }
            let n = piece.len();
            self.out.advance(n);
        }
    }

    /// Sends the ACK a DATA frame asked for, once the stream buffer can take a window more.
    fn send_owed_ack(&mut self) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if !s.ack_requested {
            return;
        }
        if s.ack_sent == s.receiver.next() {
            s.ack_requested = false;
            return;
        }
        if self.stream.free() < WINDOW_BYTES {
            return;
        }
        let ack = Self::ack_to_send(s, self.stream.free());
        let (peer, header) = (s.peer, Header { kind: Kind::Ack, flags: 0, session: s.id, seq: 0, ack });
        self.send_control(peer, &header, &[]);
    }

    fn send_control(&mut self, to: Mac, header: &Header, payload: &[u8]) {
        if let Some(n) = link::encode(&mut self.tx_frame, to, self.mac, header, payload) {
            lan9118::transmit(&self.tx_frame[..n]);
        }
    }
}
