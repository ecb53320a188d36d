//! The USB CDC-ACM packet loop: the same code runs on the board and in the host tests.
//!
//! Two halves meet in a [`Link`] (two bounded channels):
//!
//! * the **USB side**, [`run_usb_side`], runs in a high-priority async executor next to the USB
//!   stack. It waits for the host to configure the device, then for each *session* moves every
//!   received bulk OUT packet into the link and writes response pieces from the link as bulk IN
//!   packets of at most [`PACKET_SIZE`] bytes, ending a response whose last packet is full with a
//!   zero-length packet. A session ends when the endpoints are disabled (unplug, bus reset,
//!   deconfiguration) or when DTR changes (the host opened or closed the port). Each session's
//!   output starts with a lone frame delimiter ([`SESSION_START`]).
//! * the **token side**, [`serve_forever`] / [`TokenSide::handle`], runs in thread mode where the
//!   token core may block (crypto, waiting for the button). It feeds each packet to the core's
//!   [`FrameServer`] and cuts each response frame into packets.
//!
//! Every packet carries the number of the session it belongs to. The token side drops a partial
//! frame when the session changes (the host vanished mid-frame), ignores packets of sessions that
//! are already over, and the USB side never writes a response piece of an earlier session, so a
//! host that reconnects never sees the tail of an answer meant for its predecessor.
//!
//! Back-pressure is end to end: while the token is busy the receive channel fills, the USB side
//! stops reading and the USB controller NAKs the host.

use core::sync::atomic::{AtomicU32, Ordering};

use embassy_futures::select::{select, select3};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;
use pkms_firmware::{FrameServer, Platform, Token};

/// Bulk packet size of the CDC-ACM data endpoints (full-speed maximum).
pub const PACKET_SIZE: usize = 64;
/// Received packets buffered between the USB side and the token side.
pub const RECEIVE_DEPTH: usize = 4;
/// Response packets buffered between the token side and the USB side.
pub const SEND_DEPTH: usize = 8;

/// The packet every session's output starts with: a lone frame delimiter (an empty frame).
pub const SESSION_START: u8 = 0x00;

/// Session number meaning "no session": the host is not connected.
pub const NO_SESSION: u32 = 0;

/// Up to [`PACKET_SIZE`] bytes: one USB bulk packet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    len: u8,
    bytes: [u8; PACKET_SIZE],
}

impl Packet {
    /// A packet holding `data`, or `None` when `data` is longer than [`PACKET_SIZE`].
    pub fn new(data: &[u8]) -> Option<Self> {
        if data.len() > PACKET_SIZE {
            return None;
        }
        let mut bytes = [0; PACKET_SIZE];
        bytes[..data.len()].copy_from_slice(data);
        Some(Packet { len: data.len() as u8, bytes })
    }

    /// The packet's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Number of bytes in the packet.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the packet holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl core::fmt::Debug for Packet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Packet({:02x?})", self.as_bytes())
    }
}

/// Bytes the host sent during a session.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// The session the bytes arrived in (never [`NO_SESSION`]).
    pub session: u32,
    /// The bytes.
    pub packet: Packet,
}

/// A piece of a response frame, to be sent in a session.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing {
    /// The session whose request this answers; the USB side drops it in any other session.
    pub session: u32,
    /// The bytes (at most one packet).
    pub packet: Packet,
    /// The last piece of a frame: a full last packet is followed by a zero-length packet.
    pub end_of_frame: bool,
}

/// The two channels between the USB side and the token side, and the current session.
pub struct Link {
    received: Channel<CriticalSectionRawMutex, Received, RECEIVE_DEPTH>,
    outgoing: Channel<CriticalSectionRawMutex, Outgoing, SEND_DEPTH>,
    active: AtomicU32,
}

impl Default for Link {
    fn default() -> Self {
        Self::new()
    }
}

impl Link {
    /// An idle link (no session).
    pub const fn new() -> Self {
        Link { received: Channel::new(), outgoing: Channel::new(), active: AtomicU32::new(NO_SESSION) }
    }

    /// The session in progress, or [`NO_SESSION`].
    pub fn active_session(&self) -> u32 {
        self.active.load(Ordering::Acquire)
    }

    /// Takes the next received packet, if any (token side).
    pub fn try_receive(&self) -> Option<Received> {
        self.received.try_receive().ok()
    }

    /// Queues a response piece; gives it back when the queue is full (token side).
    pub fn try_send(&self, outgoing: Outgoing) -> Result<(), Outgoing> {
        self.outgoing.try_send(outgoing).map_err(|embassy_sync::channel::TrySendError::Full(o)| o)
    }

    /// Queues a response piece, waiting for room.
    pub async fn send(&self, outgoing: Outgoing) {
        self.outgoing.send(outgoing).await
    }

    /// Queues a received packet, waiting for room (tests use this to play the USB side).
    pub async fn push_received(&self, received: Received) {
        self.received.send(received).await
    }

    /// Sets the active session (the USB side's business; public for tests of the token side).
    pub fn set_active_session(&self, session: u32) {
        self.active.store(session, Ordering::Release)
    }
}

/// The endpoint was disabled: the host unplugged, reset the bus or deconfigured the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disconnected;

/// The bulk OUT endpoint of the CDC data interface.
#[allow(async_fn_in_trait)] // single-threaded executors: no `Send` bound is needed
pub trait PacketReceiver {
    /// Waits until the host has configured the device (returns at once if it has).
    async fn wait_connection(&mut self);
    /// Reads one packet into `buf`; returns its length (0 for a zero-length packet).
    async fn read_packet(&mut self, buf: &mut [u8; PACKET_SIZE]) -> Result<usize, Disconnected>;
}

/// The bulk IN endpoint of the CDC data interface.
#[allow(async_fn_in_trait)]
pub trait PacketSender {
    /// Writes one packet of at most [`PACKET_SIZE`] bytes (an empty slice: a zero-length packet).
    async fn write_packet(&mut self, data: &[u8]) -> Result<(), Disconnected>;
}

/// The CDC control interface's line state (SET_CONTROL_LINE_STATE from the host).
#[allow(async_fn_in_trait)]
pub trait LineState {
    /// Waits until the host changes the line state or line coding.
    async fn changed(&mut self);
    /// Whether DTR is asserted (the host has the port open).
    fn dtr(&self) -> bool;
}

/// The USB side: serves one session after another, forever. See the module documentation.
pub async fn run_usb_side<Rx, Tx, L>(link: &Link, rx: &mut Rx, tx: &mut Tx, line: &mut L) -> !
where
    Rx: PacketReceiver,
    Tx: PacketSender,
    L: LineState,
{
    let mut session = NO_SESSION;
    loop {
        // While nobody listens, answers still being produced are dropped so the token never
        // blocks on a full queue.
        select(rx.wait_connection(), discard_outgoing(link)).await;
        session = next_session(session);
        link.set_active_session(session);
        serve_session(link, session, rx, tx, line).await;
        link.set_active_session(NO_SESSION);
    }
}

/// The session after `session`, skipping [`NO_SESSION`] when the counter wraps.
pub fn next_session(session: u32) -> u32 {
    match session.wrapping_add(1) {
        NO_SESSION => 1,
        s => s,
    }
}

async fn discard_outgoing(link: &Link) {
    loop {
        let _ = link.outgoing.receive().await;
    }
}

/// Moves packets both ways until the endpoints are disabled or DTR changes.
async fn serve_session<Rx, Tx, L>(link: &Link, session: u32, rx: &mut Rx, tx: &mut Tx, line: &mut L)
where
    Rx: PacketReceiver,
    Tx: PacketSender,
    L: LineState,
{
    let dtr_at_start = line.dtr();
    select3(pump_in(link, session, rx), pump_out(link, session, tx), watch_dtr(line, dtr_at_start)).await;
}

async fn pump_in<Rx: PacketReceiver>(link: &Link, session: u32, rx: &mut Rx) {
    let mut buf = [0u8; PACKET_SIZE];
    loop {
        let n = match rx.read_packet(&mut buf).await {
            Ok(n) => n.min(PACKET_SIZE),
            Err(Disconnected) => return,
        };
        if n == 0 {
            continue;
        }
        if let Some(packet) = Packet::new(&buf[..n]) {
            link.received.send(Received { session, packet }).await;
        }
    }
}

async fn pump_out<Tx: PacketSender>(link: &Link, session: u32, tx: &mut Tx) {
    // A packet already handed to the USB controller cannot be recalled when a session ends, so
    // the host may still receive the start of an answer meant for its predecessor. A lone
    // delimiter first ends any such fragment; hosts skip empty frames.
    if tx.write_packet(&[SESSION_START]).await.is_err() {
        return;
    }
    loop {
        let out = link.outgoing.receive().await;
        if out.session != session {
            continue; // an answer for a host that has gone
        }
        if tx.write_packet(out.packet.as_bytes()).await.is_err() {
            return;
        }
        // A full last packet does not end the bulk transfer; a zero-length packet does.
        if out.end_of_frame && out.packet.len() == PACKET_SIZE && tx.write_packet(&[]).await.is_err() {
            return;
        }
    }
}

async fn watch_dtr<L: LineState>(line: &mut L, dtr_at_start: bool) {
    loop {
        line.changed().await;
        if line.dtr() != dtr_at_start {
            return;
        }
    }
}

/// Cuts `frame` into [`Outgoing`] pieces of at most [`PACKET_SIZE`] bytes for `session`; the
/// last one is marked `end_of_frame`. An empty frame emits nothing.
pub fn packetize(session: u32, frame: &[u8], mut emit: impl FnMut(Outgoing)) {
    let count = frame.len().div_ceil(PACKET_SIZE);
    for (i, piece) in frame.chunks(PACKET_SIZE).enumerate() {
        if let Some(packet) = Packet::new(piece) {
            emit(Outgoing { session, packet, end_of_frame: i + 1 == count });
        }
    }
}

/// The token side's state: the core's frame server and the session it is serving.
pub struct TokenSide<'a> {
    server: &'a mut FrameServer,
    session: u32,
}

impl<'a> TokenSide<'a> {
    /// A token side over `server` (a static: it holds two frame-sized buffers).
    pub fn new(server: &'a mut FrameServer) -> Self {
        server.reset();
        TokenSide { server, session: NO_SESSION }
    }

    /// Whether a partial request frame is buffered.
    pub fn is_mid_frame(&self) -> bool {
        self.server.is_mid_frame()
    }

    /// Handles one received packet. `active` is the link's current session: a packet from an
    /// earlier session is dropped unanswered. A packet from a new session first drops any partial
    /// frame left by the previous one. Each response frame is passed to `emit` in pieces.
    pub fn handle<P: Platform>(
        &mut self,
        token: &mut Token<P>,
        received: &Received,
        active: u32,
        mut emit: impl FnMut(Outgoing),
    ) {
        if received.session != self.session {
            // A new host connection (port reopened, DTR toggled, re-enumerated): drop the old
            // one's partial frame and its authenticated session.
            self.server.reset();
            token.end_connection();
            self.session = received.session;
        }
        if received.session != active {
            // The host that sent this has gone; do not run its request.
            self.server.reset();
            return;
        }
        let session = self.session;
        self.server.feed(token, received.packet.as_bytes(), |frame| packetize(session, frame, &mut emit));
    }
}

/// The token side's loop: takes packets from `link`, runs them through the token and queues the
/// response pieces. When nothing waits it lets the token work ahead ([`Token::idle`]), then
/// calls `idle`; `idle` is also called whenever the send queue is full
/// (on the board: `wfe`, sleeping until an interrupt; in tests: a thread yield).
pub fn serve_forever<P: Platform>(
    link: &Link,
    side: &mut TokenSide<'_>,
    token: &mut Token<P>,
    mut idle: impl FnMut(),
) -> ! {
    loop {
        let Some(received) = link.try_receive() else {
            // Nothing waits: make what the next request would otherwise wait for.
            token.idle();
            idle();
            continue;
        };
        side.handle(token, &received, link.active_session(), |mut piece| loop {
            match link.try_send(piece) {
                Ok(()) => break,
                Err(back) => {
                    if back.session != link.active_session() {
                        break; // nobody will read it
                    }
                    piece = back;
                    idle();
                }
            }
        });
    }
}
