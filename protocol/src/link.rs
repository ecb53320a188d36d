//! The packet link: the COBS byte stream of [`crate::framing`] carried in raw Ethernet frames,
//! no IP. The QEMU token speaks it over its LAN9118 (QEMU joins the NIC to a unix socket), and
//! the host's packet transport speaks it on that socket. docs/protocol.md ("The packet link")
//! describes it for readers; this module is the one implementation of its frame format and its
//! sequence rules, shared by both ends.
//!
//! A frame is an Ethernet header, a 10-byte link header and a payload:
//!
//! ```text
//!  0  destination MAC (6)   6  source MAC (6)   12  EtherType 0x88B5 (2, big-endian)
//! 14  kind (1)  15  flags (1)  16  session (2)  18  seq (2)  20  ack (2)  22  length (2)
//! 24  payload (length bytes), then zero padding up to the Ethernet minimum of 60 bytes
//! ```
//!
//! All multi-byte fields are big-endian. Kinds: [`Kind::Sync`] and [`Kind::SyncAck`] open a
//! session; [`Kind::Data`] carries the next piece of the byte stream; [`Kind::Ack`] only
//! acknowledges; [`Kind::Error`] says why a frame was refused ([`Fault`]).
//!
//! * Fragmentation: the stream is cut into DATA payloads of at most [`MAX_PAYLOAD`] bytes; the
//!   receiver appends them in sequence order, and the COBS delimiter (0x00) ends each protocol
//!   frame as on a serial line. A protocol frame of 4 KiB travels in three DATA frames.
//! * Flow control: a sliding window of [`WINDOW`] DATA frames per direction ([`Sender`]). The
//!   `ack` field of every frame is cumulative: the sequence number of the next DATA frame the
//!   sender of the ack expects. A DATA frame with [`FLAG_ACK_REQUEST`] asks for an ACK at once;
//!   the sender sets it once half its window is in flight. [`WINDOW`] frames of [`MAX_FRAME`]
//!   bytes fit the LAN9118's receive FIFO (checked at compile time against [`RX_FIFO_BYTES`]).
//! * Errors: every frame with a wrong length, a wrong EtherType, an unknown kind, a sequence
//!   number out of order (a frame lost, repeated or reordered) or an impossible ack is answered
//!   with an ERROR frame naming the [`Fault`]; nothing is retransmitted. After a sequence fault
//!   the receiver drops DATA until the next SYNC, so a half-received request never runs.

use core::fmt;

/// The EtherType of the link: IEEE 802's "Local Experimental Ethertype 1", reserved for
/// private protocols that never leave a network segment.
pub const ETHERTYPE: u16 = 0x88B5;
/// Version of the link carried in SYNC and SYNC_ACK.
pub const VERSION: u8 = 1;
/// Bytes of the Ethernet header (MACs and EtherType; no VLAN tag, no FCS).
pub const ETH_HEADER_LEN: usize = 14;
/// Bytes of the link header after the Ethernet header.
pub const LINK_HEADER_LEN: usize = 10;
/// Bytes of both headers.
pub const HEADER_LEN: usize = ETH_HEADER_LEN + LINK_HEADER_LEN;
/// Ethernet's minimum frame without FCS: shorter frames are padded with zeros.
pub const MIN_FRAME: usize = 60;
/// Largest frame: the standard 1,500-byte Ethernet payload plus the Ethernet header.
pub const MAX_FRAME: usize = 1514;
/// Largest payload of one frame.
pub const MAX_PAYLOAD: usize = MAX_FRAME - HEADER_LEN;
/// DATA frames a sender may have unacknowledged.
pub const WINDOW: u16 = 6;
/// The LAN9118's receive data FIFO as QEMU 7.2 models it (2,640 words). QEMU drops a frame
/// that does not fit, so everything in flight towards the token must fit in it.
pub const RX_FIFO_BYTES: usize = 10_560;
/// Flag of a DATA frame: acknowledge at once.
pub const FLAG_ACK_REQUEST: u8 = 0x01;
/// The broadcast address: the destination of SYNC, before the token's address is known.
pub const BROADCAST: Mac = [0xFF; 6];
/// Payload bytes of SYNC and SYNC_ACK ([`SyncParams`]).
pub const SYNC_PAYLOAD_LEN: usize = 5;
/// Payload bytes of ERROR ([`Fault::to_wire`]).
pub const ERROR_PAYLOAD_LEN: usize = 6;

/// An Ethernet address.
pub type Mac = [u8; 6];

/// Bytes a frame of `frame_len` bytes takes in the LAN9118's receive data FIFO: whole 32-bit
/// words, plus one word for the CRC the NIC appends.
pub const fn rx_fifo_cost(frame_len: usize) -> usize {
    frame_len.div_ceil(4) * 4 + 4
}

// A full window of the largest DATA frames, plus as many minimum-size control frames (an ACK
// answers each frame that asks for one, at most one per DATA frame), fits the receive FIFO.
const _: () = assert!(
    WINDOW as usize * (rx_fifo_cost(MAX_FRAME) + rx_fifo_cost(MIN_FRAME)) <= RX_FIFO_BYTES,
    "a full window must fit the LAN9118 receive FIFO"
);

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Host → token: start a session (payload: [`SyncParams`]); sent to [`BROADCAST`], repeated
    /// until answered. Resets the token's side of the link.
    Sync,
    /// Token → host: the session is open (payload: the token's [`SyncParams`]).
    SyncAck,
    /// The next piece of the byte stream (1 to [`MAX_PAYLOAD`] bytes).
    Data,
    /// Acknowledges DATA (the `ack` field) and carries nothing else.
    Ack,
    /// A frame was refused (payload: [`Fault::to_wire`]).
    Error,
}

impl Kind {
    /// The byte on the wire.
    pub const fn to_u8(self) -> u8 {
        match self {
            Kind::Sync => 1,
            Kind::SyncAck => 2,
            Kind::Data => 3,
            Kind::Ack => 4,
            Kind::Error => 5,
        }
    }

    /// The kind a wire byte names, if any.
    pub const fn from_u8(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Sync),
            2 => Some(Kind::SyncAck),
            3 => Some(Kind::Data),
            4 => Some(Kind::Ack),
            5 => Some(Kind::Error),
            _ => None,
        }
    }

    /// The payload length this kind requires: `None` for DATA (1 to [`MAX_PAYLOAD`]).
    const fn fixed_payload(self) -> Option<usize> {
        match self {
            Kind::Sync | Kind::SyncAck => Some(SYNC_PAYLOAD_LEN),
            Kind::Data => None,
            Kind::Ack => Some(0),
            Kind::Error => Some(ERROR_PAYLOAD_LEN),
        }
    }
}

/// The link header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What the frame is.
    pub kind: Kind,
    /// [`FLAG_ACK_REQUEST`] or 0.
    pub flags: u8,
    /// The session the host chose in its SYNC (never 0).
    pub session: u16,
    /// DATA: this frame's sequence number (the first DATA of a session is 0). Otherwise 0.
    pub seq: u16,
    /// The sequence number of the next DATA frame the sender expects from its peer.
    pub ack: u16,
}

/// A decoded frame, its payload borrowed from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Destination address.
    pub dst: Mac,
    /// Source address.
    pub src: Mac,
    /// The link header.
    pub header: Header,
    /// The payload (padding removed).
    pub payload: &'a [u8],
}

/// Why a frame was refused; also the payload of an ERROR frame. Every variant names what was
/// found, so the peer can say exactly what went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The frame's length does not match its header (too short for the headers, longer than
    /// [`MAX_FRAME`], a length field that disagrees with the bytes carried, or a payload length
    /// its kind does not allow).
    WrongLength {
        /// Bytes in the frame (without FCS).
        frame: u16,
        /// The length field (0 when the frame is too short to carry one).
        declared: u16,
    },
    /// The frame is not of this link's EtherType.
    WrongEtherType {
        /// The EtherType found.
        found: u16,
    },
    /// Unknown kind, or flags this kind does not take.
    BadHeader {
        /// The kind byte.
        kind: u8,
        /// The flags byte.
        flags: u8,
    },
    /// DATA or ACK arrived outside a session (no SYNC yet, or the last one was ended by a
    /// sequence fault): send SYNC.
    NotSynchronised,
    /// The frame belongs to another session.
    WrongSession {
        /// The current session.
        expected: u16,
        /// The frame's session.
        found: u16,
    },
    /// A DATA frame out of sequence: one was lost, repeated or reordered. The receiver drops
    /// the partial protocol frame and leaves the session.
    OutOfOrder {
        /// The sequence number expected.
        expected: u16,
        /// The one that came.
        found: u16,
    },
    /// An ack for DATA frames never sent, or going backwards.
    BadAck {
        /// The ack received.
        ack: u16,
        /// The sequence number of the next DATA frame not yet sent.
        next: u16,
    },
    /// More DATA arrived than the receiver's buffer was promised to hold (the sender ignored
    /// the window).
    WindowExceeded {
        /// The window in DATA frames.
        window: u16,
    },
    /// SYNC or SYNC_ACK of another link version, or with a zero window or payload size.
    BadSync {
        /// The version found.
        version: u8,
        /// The window found.
        window: u16,
        /// The maximum payload found.
        max_payload: u16,
    },
}

impl Fault {
    /// The ERROR payload: a code byte, a one-byte detail and two big-endian details.
    pub fn to_wire(self) -> [u8; ERROR_PAYLOAD_LEN] {
        let (code, small, a, b) = match self {
            Fault::WrongLength { frame, declared } => (1, 0, frame, declared),
            Fault::WrongEtherType { found } => (2, 0, found, 0),
            Fault::BadHeader { kind, flags } => (3, 0, u16::from(kind), u16::from(flags)),
            Fault::NotSynchronised => (4, 0, 0, 0),
            Fault::WrongSession { expected, found } => (5, 0, expected, found),
            Fault::OutOfOrder { expected, found } => (6, 0, expected, found),
            Fault::BadAck { ack, next } => (7, 0, ack, next),
            Fault::WindowExceeded { window } => (8, 0, window, 0),
            Fault::BadSync { version, window, max_payload } => (9, version, window, max_payload),
        };
        let [a0, a1] = a.to_be_bytes();
        let [b0, b1] = b.to_be_bytes();
        [code, small, a0, a1, b0, b1]
    }

    /// Reads an ERROR payload; `None` for an unknown code or a payload of another length.
    pub fn from_wire(payload: &[u8]) -> Option<Fault> {
        let &[code, small, a0, a1, b0, b1] = payload else {
            return None;
        };
        let a = u16::from_be_bytes([a0, a1]);
        let b = u16::from_be_bytes([b0, b1]);
        let byte = |v: u16| u8::try_from(v).ok();
        Some(match code {
            1 => Fault::WrongLength { frame: a, declared: b },
            2 => Fault::WrongEtherType { found: a },
            3 => Fault::BadHeader { kind: byte(a)?, flags: byte(b)? },
            4 => Fault::NotSynchronised,
            5 => Fault::WrongSession { expected: a, found: b },
            6 => Fault::OutOfOrder { expected: a, found: b },
            7 => Fault::BadAck { ack: a, next: b },
            8 => Fault::WindowExceeded { window: a },
            9 => Fault::BadSync { version: small, window: a, max_payload: b },
            _ => return None,
        })
    }

    /// Whether the fault ends the session: the receiver's sequence state can no longer be
    /// trusted and it drops DATA until the next SYNC. Faults about one malformed frame do not.
    pub const fn ends_session(self) -> bool {
        match self {
            Fault::WrongLength { .. }
            | Fault::WrongEtherType { .. }
            | Fault::BadHeader { .. }
            | Fault::NotSynchronised
            | Fault::BadSync { .. } => false,
            Fault::WrongSession { .. }
            | Fault::OutOfOrder { .. }
            | Fault::BadAck { .. }
            | Fault::WindowExceeded { .. } => true,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fault::WrongLength { frame, declared } => write!(
                f,
                "wrong frame length: {frame} bytes with a length field of {declared} \
                 (headers {HEADER_LEN} bytes, payload at most {MAX_PAYLOAD})"
            ),
            Fault::WrongEtherType { found } => {
                write!(f, "wrong EtherType {found:#06x} (the link uses {ETHERTYPE:#06x})")
            }
            Fault::BadHeader { kind, flags } => write!(f, "unknown frame kind {kind} or flags {flags:#04x}"),
            Fault::NotSynchronised => write!(f, "no link session: SYNC first"),
            Fault::WrongSession { expected, found } => {
                write!(f, "frame of session {found:#06x}, the link is in session {expected:#06x}")
            }
            Fault::OutOfOrder { expected, found } => write!(
                f,
                "DATA frame {found} arrived where {expected} was expected: a frame was lost, repeated \
                 or reordered"
            ),
            Fault::BadAck { ack, next } => {
                write!(f, "acknowledgement {ack} for frames never sent (next to send is {next})")
            }
            Fault::WindowExceeded { window } => {
                write!(f, "more DATA in flight than the window of {window} frames allows")
            }
            Fault::BadSync { version, window, max_payload } => write!(
                f,
                "unusable SYNC: link version {version} (this end speaks {VERSION}), window {window}, \
                 maximum payload {max_payload}"
            ),
        }
    }
}

/// What each end of a session announces in SYNC / SYNC_ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncParams {
    /// [`VERSION`].
    pub version: u8,
    /// DATA frames this end can take unacknowledged.
    pub window: u16,
    /// The largest DATA payload this end takes.
    pub max_payload: u16,
}

impl SyncParams {
    /// This implementation's parameters.
    pub const OURS: SyncParams =
        SyncParams { version: VERSION, window: WINDOW, max_payload: MAX_PAYLOAD as u16 };

    /// The SYNC / SYNC_ACK payload.
    pub fn to_bytes(self) -> [u8; SYNC_PAYLOAD_LEN] {
        let [w0, w1] = self.window.to_be_bytes();
        let [m0, m1] = self.max_payload.to_be_bytes();
        [self.version, w0, w1, m0, m1]
    }

    /// Reads a SYNC / SYNC_ACK payload: [`Fault::BadSync`] for another version or a zero
    /// window or payload size.
    pub fn from_bytes(payload: &[u8]) -> Result<SyncParams, Fault> {
        let &[version, w0, w1, m0, m1] = payload else {
            return Err(Fault::WrongLength { frame: 0, declared: payload.len() as u16 });
        };
        let params = SyncParams {
            version,
            window: u16::from_be_bytes([w0, w1]),
            max_payload: u16::from_be_bytes([m0, m1]),
        };
        if version != VERSION || params.window == 0 || params.max_payload == 0 {
            return Err(Fault::BadSync { version, window: params.window, max_payload: params.max_payload });
        }
        Ok(params)
    }

    /// What this end uses towards a peer that announced `peer`: the peer's window (at most
    /// [`WINDOW`]) and the smaller of the two payload sizes.
    pub fn towards(peer: SyncParams) -> SyncParams {
        SyncParams {
            version: VERSION,
            window: peer.window.min(WINDOW),
            max_payload: peer.max_payload.min(MAX_PAYLOAD as u16),
        }
    }
}

/// Writes one frame into `out`, padded with zeros to [`MIN_FRAME`]; returns its length. `None`
/// if the payload exceeds [`MAX_PAYLOAD`], its length does not suit the kind, or `out` is too
/// small.
pub fn encode(out: &mut [u8], dst: Mac, src: Mac, header: &Header, payload: &[u8]) -> Option<usize> {
    let payload_ok = match header.kind.fixed_payload() {
        Some(n) => payload.len() == n,
        None => !payload.is_empty() && payload.len() <= MAX_PAYLOAD,
    };
    let len = (HEADER_LEN + payload.len()).max(MIN_FRAME);
    if !payload_ok || out.len() < len {
        return None;
    }
    out[0..6].copy_from_slice(&dst);
    out[6..12].copy_from_slice(&src);
    out[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    out[14] = header.kind.to_u8();
    out[15] = header.flags;
    out[16..18].copy_from_slice(&header.session.to_be_bytes());
    out[18..20].copy_from_slice(&header.seq.to_be_bytes());
    out[20..22].copy_from_slice(&header.ack.to_be_bytes());
    out[22..24].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    out[HEADER_LEN..HEADER_LEN + payload.len()].copy_from_slice(payload);
    out[HEADER_LEN + payload.len()..len].fill(0);
    Some(len)
}

/// The source address of a frame, if it is long enough to have one (for answering a frame that
/// [`decode`] refused).
pub fn source(frame: &[u8]) -> Option<Mac> {
    frame.get(6..12).and_then(|s| s.try_into().ok())
}

/// Decodes and checks one frame (without FCS). Padding is allowed only up to [`MIN_FRAME`].
pub fn decode(frame: &[u8]) -> Result<Packet<'_>, Fault> {
    let frame_len = frame.len().min(usize::from(u16::MAX)) as u16;
    let too_short = Fault::WrongLength { frame: frame_len, declared: 0 };
    let (Some(dst), Some(src), Some(ethertype)) = (frame.get(0..6), frame.get(6..12), frame.get(12..14))
    else {
        return Err(too_short);
    };
    let ethertype = u16::from_be_bytes([ethertype[0], ethertype[1]]);
    if ethertype != ETHERTYPE {
        return Err(Fault::WrongEtherType { found: ethertype });
    }
    let Some(h) = frame.get(ETH_HEADER_LEN..HEADER_LEN) else {
        return Err(too_short);
    };
    let be = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    let declared = be(8);
    let wrong_length = Fault::WrongLength { frame: frame_len, declared };
    let Some(kind) = Kind::from_u8(h[0]) else {
        return Err(Fault::BadHeader { kind: h[0], flags: h[1] });
    };
    let allowed_flags = match kind {
        Kind::Data => FLAG_ACK_REQUEST,
        Kind::Sync | Kind::SyncAck | Kind::Ack | Kind::Error => 0,
    };
    if h[1] & !allowed_flags != 0 {
        return Err(Fault::BadHeader { kind: h[0], flags: h[1] });
    }
    let end = HEADER_LEN + usize::from(declared);
    let padded = frame.len() == MIN_FRAME && end < MIN_FRAME;
    if frame.len() > MAX_FRAME || (frame.len() != end && !padded) {
        return Err(wrong_length);
    }
    let payload = &frame[HEADER_LEN..end];
    let length_ok = match kind.fixed_payload() {
        Some(n) => payload.len() == n,
        None => !payload.is_empty(),
    };
    if !length_ok {
        return Err(wrong_length);
    }
    let mut dst_mac = [0u8; 6];
    dst_mac.copy_from_slice(dst);
    let mut src_mac = [0u8; 6];
    src_mac.copy_from_slice(src);
    Ok(Packet {
        dst: dst_mac,
        src: src_mac,
        header: Header { kind, flags: h[1], session: be(2), seq: be(4), ack: be(6) },
        payload,
    })
}

/// The sending half of a session: numbers DATA frames, keeps at most `window` unacknowledged,
/// and says which frames ask for an ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    next: u16,
    acked: u16,
    window: u16,
}

impl Sender {
    /// A sender at the start of a session, allowed `window` frames in flight (at least 1).
    pub const fn new(window: u16) -> Sender {
        Sender { next: 0, acked: 0, window: if window == 0 { 1 } else { window } }
    }

    /// DATA frames sent and not yet acknowledged.
    pub const fn in_flight(&self) -> u16 {
        self.next.wrapping_sub(self.acked)
    }

    /// Whether another DATA frame may go now.
    pub const fn can_send(&self) -> bool {
        self.in_flight() < self.window
    }

    /// The sequence number of the next DATA frame.
    pub const fn next_seq(&self) -> u16 {
        self.next
    }

    /// Numbers the next DATA frame: its sequence number and flags ([`FLAG_ACK_REQUEST`] once
    /// half the window is in flight, so the ACK comes back while the rest is sent). `None` while
    /// the window is full.
    pub fn take(&mut self) -> Option<(u16, u8)> {
        if !self.can_send() {
            return None;
        }
        let seq = self.next;
        self.next = self.next.wrapping_add(1);
        let flags = if self.in_flight() >= self.window.div_ceil(2) { FLAG_ACK_REQUEST } else { 0 };
        Some((seq, flags))
    }

    /// Takes a cumulative ack: the peer expects `ack` next. [`Fault::BadAck`] if that is
    /// behind the last ack or past the frames sent.
    pub fn on_ack(&mut self, ack: u16) -> Result<(), Fault> {
        let advance = ack.wrapping_sub(self.acked);
        if advance > self.in_flight() {
            return Err(Fault::BadAck { ack, next: self.next });
        }
        self.acked = ack;
        Ok(())
    }
}

/// The receiving half of a session: takes DATA frames in sequence only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Receiver {
    next: u16,
}

impl Receiver {
    /// A receiver at the start of a session.
    pub const fn new() -> Receiver {
        Receiver { next: 0 }
    }

    /// The sequence number of the next DATA frame expected (the cumulative ack to send).
    pub const fn next(&self) -> u16 {
        self.next
    }

    /// Accepts DATA frame `seq` if it is the next one; [`Fault::OutOfOrder`] otherwise.
    pub fn accept(&mut self, seq: u16) -> Result<(), Fault> {
        if seq != self.next {
            return Err(Fault::OutOfOrder { expected: self.next, found: seq });
        }
        self.next = self.next.wrapping_add(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const HOST: Mac = [0x02, 0, 0, 0, 0, 1];
    const TOKEN: Mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    fn header(kind: Kind) -> Header {
        Header { kind, flags: 0, session: 0x1234, seq: 7, ack: 9 }
    }

    fn frame(kind: Kind, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; MAX_FRAME];
        let n = encode(&mut out, TOKEN, HOST, &header(kind), payload).expect("encodes");
        out.truncate(n);
        out
    }

    #[test]
    fn every_kind_round_trips_and_short_frames_are_padded() {
        let data = [0xAB; 100];
        let sync = SyncParams::OURS.to_bytes();
        let error = Fault::OutOfOrder { expected: 3, found: 5 }.to_wire();
        for (kind, payload) in [
            (Kind::Sync, &sync[..]),
            (Kind::SyncAck, &sync[..]),
            (Kind::Data, &data[..]),
            (Kind::Data, &[0x42][..]),
            (Kind::Ack, &[][..]),
            (Kind::Error, &error[..]),
        ] {
            let f = frame(kind, payload);
            assert_eq!(f.len(), (HEADER_LEN + payload.len()).max(MIN_FRAME), "{kind:?}");
            let p = decode(&f).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!((p.dst, p.src, p.header, p.payload), (TOKEN, HOST, header(kind), payload));
        }
        let big = frame(Kind::Data, &[7; MAX_PAYLOAD]);
        assert_eq!(big.len(), MAX_FRAME);
        assert_eq!(decode(&big).unwrap().payload.len(), MAX_PAYLOAD);
    }

    #[test]
    fn encode_refuses_payloads_the_kind_does_not_take() {
        let mut out = [0u8; MAX_FRAME + 10];
        for (kind, len) in [
            (Kind::Data, 0),
            (Kind::Data, MAX_PAYLOAD + 1),
            (Kind::Ack, 1),
            (Kind::Sync, 4),
            (Kind::Error, 0),
        ] {
            let payload = vec![1u8; len];
            assert_eq!(encode(&mut out, TOKEN, HOST, &header(kind), &payload), None, "{kind:?} {len}");
        }
        assert_eq!(encode(&mut out[..59], TOKEN, HOST, &header(Kind::Ack), &[]), None, "buffer too small");
    }

    #[test]
    fn decode_names_what_is_wrong() {
        let good = frame(Kind::Data, &[1; 40]);
        assert_eq!(decode(&good[..10]), Err(Fault::WrongLength { frame: 10, declared: 0 }));
        assert_eq!(decode(&good[..20]), Err(Fault::WrongLength { frame: 20, declared: 0 }));
        let mut ipv4 = good.clone();
        ipv4[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(decode(&ipv4), Err(Fault::WrongEtherType { found: 0x0800 }));
        assert_eq!(decode(&ipv4[..12]), Err(Fault::WrongLength { frame: 12, declared: 0 }));
        // One byte missing, one byte extra (beyond padding).
        assert_eq!(decode(&good[..good.len() - 1]), Err(Fault::WrongLength { frame: 63, declared: 40 }));
        let mut long = good.clone();
        long.push(0);
        assert_eq!(decode(&long), Err(Fault::WrongLength { frame: 65, declared: 40 }));
        // Longer than an Ethernet frame, even with a matching length field.
        let mut huge = frame(Kind::Data, &[1; MAX_PAYLOAD]);
        huge.push(1);
        huge[22..24].copy_from_slice(&((MAX_PAYLOAD + 1) as u16).to_be_bytes());
        assert_eq!(
            decode(&huge),
            Err(Fault::WrongLength { frame: MAX_FRAME as u16 + 1, declared: MAX_PAYLOAD as u16 + 1 })
        );
        let mut kind = good.clone();
        kind[14] = 0x77;
        assert_eq!(decode(&kind), Err(Fault::BadHeader { kind: 0x77, flags: 0 }));
        let mut flags = frame(Kind::Ack, &[]);
        flags[15] = FLAG_ACK_REQUEST;
        assert_eq!(decode(&flags), Err(Fault::BadHeader { kind: 4, flags: 1 }));
        let mut data_flags = good.clone();
        data_flags[15] = 0x80;
        assert_eq!(decode(&data_flags), Err(Fault::BadHeader { kind: 3, flags: 0x80 }));
        // An ACK claiming a payload; a DATA claiming none (padding hides the bytes).
        let mut ack = frame(Kind::Ack, &[]);
        ack[22..24].copy_from_slice(&3u16.to_be_bytes());
        assert_eq!(decode(&ack), Err(Fault::WrongLength { frame: 60, declared: 3 }));
        let mut empty = frame(Kind::Data, &[1]);
        empty[22..24].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(decode(&empty), Err(Fault::WrongLength { frame: 60, declared: 0 }));
        // Padding is only allowed up to the Ethernet minimum.
        let mut padded = frame(Kind::Data, &[1]);
        padded.push(0);
        assert_eq!(decode(&padded), Err(Fault::WrongLength { frame: 61, declared: 1 }));
        assert_eq!(source(&good), Some(HOST));
        assert_eq!(source(&good[..11]), None);
    }

    #[test]
    fn every_fault_survives_the_wire_and_reads_clearly() {
        let faults = [
            Fault::WrongLength { frame: 3000, declared: 12 },
            Fault::WrongEtherType { found: 0x86DD },
            Fault::BadHeader { kind: 200, flags: 0x80 },
            Fault::NotSynchronised,
            Fault::WrongSession { expected: 1, found: 2 },
            Fault::OutOfOrder { expected: 4, found: 6 },
            Fault::BadAck { ack: 9, next: 3 },
            Fault::WindowExceeded { window: WINDOW },
            Fault::BadSync { version: 9, window: 0, max_payload: 1490 },
        ];
        for fault in faults {
            assert_eq!(Fault::from_wire(&fault.to_wire()), Some(fault));
            assert!(!std::format!("{fault}").is_empty());
        }
        assert!(std::format!("{}", faults[1]).contains("0x86dd"));
        assert!(std::format!("{}", faults[5]).contains("lost"));
        assert_eq!(Fault::from_wire(&[0, 0, 0, 0, 0, 0]), None);
        assert_eq!(Fault::from_wire(&[6, 0, 0, 1]), None);
        assert_eq!(Fault::from_wire(&[3, 0, 1, 0, 0, 0]), None, "a kind byte cannot exceed 255");
    }

    #[test]
    fn sync_parameters_are_checked() {
        let ours = SyncParams::OURS;
        assert_eq!(SyncParams::from_bytes(&ours.to_bytes()), Ok(ours));
        let other = SyncParams { version: 2, ..ours };
        assert_eq!(
            SyncParams::from_bytes(&other.to_bytes()),
            Err(Fault::BadSync { version: 2, window: WINDOW, max_payload: MAX_PAYLOAD as u16 })
        );
        let zero = SyncParams { window: 0, ..ours };
        assert!(SyncParams::from_bytes(&zero.to_bytes()).is_err());
        assert!(SyncParams::from_bytes(&[1, 2]).is_err());
        let peer = SyncParams { version: VERSION, window: 100, max_payload: 100 };
        assert_eq!(
            SyncParams::towards(peer),
            SyncParams { version: VERSION, window: WINDOW, max_payload: 100 }
        );
    }

    #[test]
    fn the_sender_keeps_the_window_and_asks_for_acks_from_half_of_it() {
        let mut s = Sender::new(WINDOW);
        let taken: Vec<(u16, u8)> = core::iter::from_fn(|| s.take()).collect();
        assert_eq!(taken.len(), usize::from(WINDOW));
        let asks: Vec<bool> = taken.iter().map(|&(_, f)| f == FLAG_ACK_REQUEST).collect();
        assert_eq!(asks, [false, false, true, true, true, true]);
        assert_eq!(taken.iter().map(|&(seq, _)| seq).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
        assert!(!s.can_send());
        assert_eq!(s.on_ack(7), Err(Fault::BadAck { ack: 7, next: 6 }), "acks a frame never sent");
        s.on_ack(3).unwrap();
        assert_eq!(s.in_flight(), 3);
        assert_eq!(s.on_ack(2), Err(Fault::BadAck { ack: 2, next: 6 }), "goes backwards");
        s.on_ack(3).unwrap();
        assert_eq!(s.take(), Some((6, FLAG_ACK_REQUEST)));
        s.on_ack(7).unwrap();
        assert_eq!(s.take(), Some((7, 0)));
        let mut one = Sender::new(0);
        assert_eq!(one.take(), Some((0, FLAG_ACK_REQUEST)), "a window of 0 is taken as 1");
        assert_eq!(one.take(), None);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = Sender { next: u16::MAX - 1, acked: u16::MAX - 1, window: WINDOW };
        let mut r = Receiver { next: u16::MAX - 1 };
        for expected in [u16::MAX - 1, u16::MAX, 0, 1] {
            let (seq, _) = s.take().unwrap();
            assert_eq!(seq, expected);
            r.accept(seq).unwrap();
        }
        s.on_ack(r.next()).unwrap();
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn the_receiver_takes_frames_in_sequence_only() {
        let mut r = Receiver::new();
        r.accept(0).unwrap();
        r.accept(1).unwrap();
        assert_eq!(r.accept(3), Err(Fault::OutOfOrder { expected: 2, found: 3 }), "frame 2 lost");
        assert_eq!(r.accept(1), Err(Fault::OutOfOrder { expected: 2, found: 1 }), "frame 1 repeated");
        r.accept(2).unwrap();
        assert_eq!(r.next(), 3);
    }

    #[test]
    fn a_full_window_fits_the_receive_fifo() {
        assert_eq!(rx_fifo_cost(MAX_FRAME), 1520);
        assert_eq!(rx_fifo_cost(MIN_FRAME), 64);
        assert!(usize::from(WINDOW) * (rx_fifo_cost(MAX_FRAME) + rx_fifo_cost(MIN_FRAME)) <= RX_FIFO_BYTES);
    }
}
