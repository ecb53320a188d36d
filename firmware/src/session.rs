//! Encrypted, authenticated sessions: the token's side of the NK handshake and of transport
//! frames ([`pkms_protocol::session`] has the construction and its reasoning), and the table of
//! open sessions.
//!
//! * The token's static key is its device key, derived from the device root key
//!   ([`crate::crypto::DeviceKeys::identity`]): every factory reset makes a new one.
//! * Up to [`MAX_SESSIONS`] sessions are open at once, each with its own id, keys, counters and
//!   (after Authenticate inside it) principal. A session ends when its host closes it, after
//!   [`SESSION_IDLE_MS`] without a frame, when a frame of it fails a check (a wrong counter, a
//!   tag that does not verify), and — on boards that can see it — when the host connection goes.
//! * A new session takes a free slot, else the slot of an expired session, else that of the
//!   least recently used session no one has authenticated in; only when every slot holds an
//!   authenticated, live session is OpenSession refused.

use pkms_p256::{PublicKey, SecretKey};
use pkms_protocol::session::{
    frame_ad, Cipher, SessionStatus, SymmetricState, ASK_STATUS, MAX_FLAGS_LEN, MAX_OPENED_LEN, MAX_SESSIONS,
    PUBLIC_KEY_LEN, TAG_LEN,
};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroize;

use crate::auth::Login;
use crate::err;
use crate::error::OpResult;

/// A session ends after this long without a frame.
pub const SESSION_IDLE_MS: u64 = 5 * 60 * 1000;

/// Work ahead ([`Sessions::prepare`]) waits while a session has had a frame within this long
/// ([`Sessions::in_use`]): a host in mid-conversation (its handshake just answered, its request
/// on the way) would otherwise find the token busy with a key generation it did not ask for.
pub const WORK_AHEAD_QUIET_MS: u64 = 50;

/// One direction of a session: its cipher and the next counter.
struct Direction {
    cipher: Cipher,
    counter: u64,
}

/// An open session.
struct Session {
    id: u32,
    to_token: Direction,
    to_host: Direction,
    login: Option<Login>,
    last_ms: u64,
}

/// Why a session frame was refused (the session it named, if any, has ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameRefused {
    /// No open session has that id (never opened, closed, expired or ended by an earlier refusal).
    UnknownSession,
    /// The counter is not the next one: a replayed, reordered or lost frame.
    WrongCounter,
    /// The tag does not verify: altered, or sealed under another session's key.
    BadTag,
    /// Too short to hold a tag.
    Truncated,
}

impl FrameRefused {
    /// What the host is told.
    pub fn message(self) -> &'static str {
        match self {
            FrameRefused::UnknownSession => {
                "no such session (closed, expired, or ended by a refused frame): open a new one"
            }
            FrameRefused::WrongCounter => {
                "the frame's counter is not the next one (replayed, reordered or lost): the session has ended"
            }
            FrameRefused::BadTag => {
                "the frame does not authenticate (altered, or not from this session): the session has ended"
            }
            FrameRefused::Truncated => "the frame is too short to be sealed: the session has ended",
        }
    }
}

/// The open sessions.
pub struct Sessions {
    slots: [Option<Session>; MAX_SESSIONS],
    /// The ephemeral key (and its public key) of the next handshake, made between requests
    /// ([`Sessions::prepare`]); used once, then gone.
    spare: Option<(SecretKey, [u8; PUBLIC_KEY_LEN])>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new()
    }
}

impl Sessions {
    /// No sessions.
    pub const fn new() -> Self {
        Sessions { slots: [const { None }; MAX_SESSIONS], spare: None }
    }

    /// Ends every session (the host connection went away, or a factory reset).
    pub fn end_all(&mut self) {
        for s in &mut self.slots {
            *s = None;
        }
    }

    /// Ends every session logged in as `name` (its principal was deleted).
    pub fn end_logins_of(&mut self, name: &str) {
        for s in &mut self.slots {
            if s.as_ref().is_some_and(|x| x.login.as_ref().is_some_and(|l| l.name() == name)) {
                *s = None;
            }
        }
    }

    fn expire(&mut self, now_ms: u64) {
        for s in &mut self.slots {
            if s.as_ref().is_some_and(|x| now_ms.saturating_sub(x.last_ms) > SESSION_IDLE_MS) {
                *s = None;
            }
        }
    }

    /// Answers OpenSession (message 1 of NK) and opens the session: writes the token's ephemeral
    /// public key into `ephemeral_out` and message 2's payload (the sealed session id, followed
    /// by `status` when message 1's flags ask for it) into `payload_out`; returns the new
    /// session's id and the payload's length.
    #[allow(clippy::too_many_arguments)]
    pub fn open<R: RngCore + CryptoRng>(
        &mut self,
        identity: &SecretKey,
        identity_public: &[u8; PUBLIC_KEY_LEN],
        rng: &mut R,
        now_ms: u64,
        host_ephemeral: &[u8],
        host_payload: &[u8],
        status: SessionStatus,
        ephemeral_out: &mut [u8; PUBLIC_KEY_LEN],
        payload_out: &mut [u8; MAX_OPENED_LEN + TAG_LEN],
    ) -> OpResult<(u32, usize)> {
        self.expire(now_ms);
        let slot = self.free_slot().ok_or_else(|| {
            err!(
                LimitExceeded,
                "{} authenticated sessions are open: close one (pkms closes its session when it exits) or wait for one to expire",
                MAX_SESSIONS
            )
        })?;
        let peer = match <&[u8; PUBLIC_KEY_LEN]>::try_from(host_ephemeral)
            .ok()
            .map(|e| (e, PublicKey::from_sec1_bytes(e)))
        {
            Some((bytes, Ok(p))) => (bytes, p),
            _ => {
                return Err(err!(
                    Validation,
                    "OpenSession needs a valid P-256 public key (65 bytes, uncompressed)"
                ))
            }
        };
        // Message 1's payload: no flags (a 16-byte tag), or one flags byte and the tag.
        let flags_len = match host_payload.len().checked_sub(TAG_LEN) {
            Some(n) if n <= MAX_FLAGS_LEN => n,
            _ => {
                return Err(err!(
                    Validation,
                    "OpenSession's payload must be a 16-byte tag, or one flags byte and the tag"
                ))
            }
        };
        let (sealed_flags, tag) = host_payload.split_at(flags_len);
        let mut flags = [0u8; MAX_FLAGS_LEN];
        let flags = &mut flags[..flags_len];
        flags.copy_from_slice(sealed_flags);
        let mut st = SymmetricState::nk(identity_public);
        // -> e, es
        st.mix_hash(peer.0);
        let es = identity
            .diffie_hellman(&peer.1)
            .map_err(|_| err!(Internal, "the session key agreement failed"))?;
        st.mix_key(&es);
        let (mut k, n) = st.key_and_nonce().ok_or_else(|| err!(Internal, "no handshake key"))?;
        let opened = Cipher::new(&k).open(n, &st.h(), flags, tag);
        k.zeroize();
        if !opened {
            return Err(err!(
                AuthenticationFailed,
                "the handshake does not verify: the host used another device key than this token's"
            ));
        }
        let asks_status = flags.first().is_some_and(|f| f & ASK_STATUS != 0);
        st.mix_hash(host_payload);
        // <- e, ee
        let (ephemeral, public) = match self.spare.take() {
            Some(spare) => spare,
            None => fresh_ephemeral(rng),
        };
        *ephemeral_out = public;
        st.mix_hash(ephemeral_out);
        let ee = ephemeral
            .diffie_hellman(&peer.1)
            .map_err(|_| err!(Internal, "the session key agreement failed"))?;
        st.mix_key(&ee);
        let id = self.new_id(rng)?;
        let (mut k, n) = st.key_and_nonce().ok_or_else(|| err!(Internal, "no handshake key"))?;
        let text_len = if asks_status { MAX_OPENED_LEN } else { 4 };
        payload_out[..4].copy_from_slice(&id.to_be_bytes());
        payload_out[4] = status.to_byte();
        let (text, rest) = payload_out.split_at_mut(text_len);
        let tag = Cipher::new(&k).seal(n, &st.h(), text);
        k.zeroize();
        rest[..TAG_LEN].copy_from_slice(&tag);
        let (mut to_token, mut to_host) = st.split();
        self.slots[slot] = Some(Session {
            id,
            to_token: Direction { cipher: Cipher::new(&to_token), counter: 0 },
            to_host: Direction { cipher: Cipher::new(&to_host), counter: 0 },
            login: None,
            last_ms: now_ms,
        });
        to_token.zeroize();
        to_host.zeroize();
        Ok((id, text_len + TAG_LEN))
    }

    /// Makes the ephemeral key of the next handshake now, between requests, so OpenSession
    /// does not wait for its key generation. Nothing if one is already made.
    pub fn prepare<R: RngCore + CryptoRng>(&mut self, rng: &mut R) {
        if self.spare.is_none() {
            self.spare = Some(fresh_ephemeral(rng));
        }
    }

    /// Whether a host is in mid-conversation: some open session has had a frame (or was opened)
    /// less than [`WORK_AHEAD_QUIET_MS`] before `now_ms`. A closed session is not in use.
    pub fn in_use(&self, now_ms: u64) -> bool {
        self.slots.iter().flatten().any(|s| now_ms.saturating_sub(s.last_ms) < WORK_AHEAD_QUIET_MS)
    }

    /// The public key of the next handshake's ephemeral, if it is made already.
    pub fn prepared(&self) -> Option<&[u8; PUBLIC_KEY_LEN]> {
        self.spare.as_ref().map(|(_, public)| public)
    }

    fn free_slot(&self) -> Option<usize> {
        if let Some(i) = self.slots.iter().position(|s| s.is_none()) {
            return Some(i);
        }
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().filter(|x| x.login.is_none()).map(|x| (i, x.last_ms)))
            .min_by_key(|&(_, last)| last)
            .map(|(i, _)| i)
    }

    /// A fresh session id: random, not 0, not one an open session has. A generator that keeps
    /// repeating itself gets an error after 8 draws rather than a token that hangs.
    fn new_id<R: RngCore>(&self, rng: &mut R) -> OpResult<u32> {
        for _ in 0..8 {
            let id = rng.next_u32();
            if id != 0 && !self.slots.iter().flatten().any(|s| s.id == id) {
                return Ok(id);
            }
        }
        Err(err!(Internal, "the random number generator keeps repeating itself: no session id"))
    }

    /// Opens a session frame in place: `sealed` is ciphertext ‖ tag; on success the plaintext is
    /// `sealed[..len - 16]` and the session's slot index is returned. Any refusal ends the session.
    pub fn open_frame(
        &mut self,
        now_ms: u64,
        id: u32,
        counter: u64,
        sealed: &mut [u8],
    ) -> Result<usize, FrameRefused> {
        self.expire(now_ms);
        let Some(slot) = self.slots.iter().position(|s| s.as_ref().is_some_and(|x| x.id == id)) else {
            return Err(FrameRefused::UnknownSession);
        };
        let result = (|| {
            let s = self.slots[slot].as_mut().ok_or(FrameRefused::UnknownSession)?;
            if counter != s.to_token.counter {
                return Err(FrameRefused::WrongCounter);
            }
            let n = sealed.len().checked_sub(TAG_LEN).ok_or(FrameRefused::Truncated)?;
            let (text, tag) = sealed.split_at_mut(n);
            if !s.to_token.cipher.open(counter, &frame_ad(id, counter), text, tag) {
                return Err(FrameRefused::BadTag);
            }
            s.to_token.counter += 1;
            s.last_ms = now_ms;
            Ok(slot)
        })();
        if result.is_err() {
            self.slots[slot] = None;
        }
        result
    }

    /// Seals the answer `text` of the session in `slot` in place; writes the tag into `tag` and
    /// returns (session id, counter). `None` if the session ended meanwhile (CloseSession).
    pub fn seal_frame(
        &mut self,
        slot: usize,
        text: &mut [u8],
        tag: &mut [u8; TAG_LEN],
    ) -> Option<(u32, u64)> {
        let s = self.slots.get_mut(slot)?.as_mut()?;
        let counter = s.to_host.counter;
        *tag = s.to_host.cipher.seal(counter, &frame_ad(s.id, counter), text);
        s.to_host.counter += 1;
        Some((s.id, counter))
    }

    /// The login of the session in `slot` (moved out while a request of it runs).
    pub fn take_login(&mut self, slot: usize) -> Option<Login> {
        self.slots.get_mut(slot)?.as_mut()?.login.take()
    }

    /// Puts a session's login back after its request ran.
    pub fn put_login(&mut self, slot: usize, login: Option<Login>) {
        if let Some(Some(s)) = self.slots.get_mut(slot) {
            s.login = login;
        }
    }

    /// Ends the session in `slot` once its current answer is sealed (CloseSession).
    pub fn end_slot(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            *s = None;
        }
    }
}

/// A new ephemeral key pair for one handshake.
fn fresh_ephemeral<R: RngCore + CryptoRng>(rng: &mut R) -> (SecretKey, [u8; PUBLIC_KEY_LEN]) {
    let key = SecretKey::random(rng);
    let public = key.public_key_sec1_uncompressed();
    (key, public)
}

crate::dispatch::handle! {
    pkms_protocol::request::GetDeviceKey => |_r, cx| {
        let public = cx.core.device_public_key()?;
        let spki = pkms_p256::PublicKey::from_sec1_bytes(&public)
            .map_err(|_| err!(Internal, "the device key is not a valid point"))?
            .to_spki_der();
        let out = &mut cx.bufs.out[..spki.len()];
        out.copy_from_slice(&spki);
        Ok(pkms_protocol::Response::DeviceKey(pkms_protocol::reply::DeviceKey { public_key: out }))
    };
    pkms_protocol::request::OpenSession<'_> => |r, cx| {
        let identity = cx.core.device()?.identity()?;
        let public = cx.core.device_public_key()?;
        let now_ms = crate::board::Board::uptime_ms(cx.core.board());
        let status = SessionStatus { initialized: cx.auth.is_initialized() };
        let (ephemeral, rest) = cx.bufs.out.split_at_mut(PUBLIC_KEY_LEN);
        let ephemeral: &mut [u8; PUBLIC_KEY_LEN] = ephemeral.try_into().map_err(|_| err!(Internal, "buffer"))?;
        let payload: &mut [u8; MAX_OPENED_LEN + TAG_LEN] = rest
            .get_mut(..MAX_OPENED_LEN + TAG_LEN)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| err!(Internal, "buffer"))?;
        let (session_id, len) = cx.sessions.open(
            &identity,
            &public,
            cx.core.rng(),
            now_ms,
            r.ephemeral,
            r.payload,
            status,
            ephemeral,
            payload,
        )?;
        Ok(pkms_protocol::Response::SessionOpened(pkms_protocol::reply::SessionOpened {
            session_id,
            ephemeral: &ephemeral[..],
            payload: &payload[..len],
        }))
    };
    pkms_protocol::request::SessionFrame<'_> => |_r, _cx| {
        Err(err!(Validation, "a session frame cannot travel inside a session"))
    };
    pkms_protocol::request::CloseSession => |_r, cx| match cx.slot {
        // The token ends the session once this answer is sealed.
        Some(_) => Ok(pkms_protocol::Response::Done(pkms_protocol::reply::Done {})),
        None => Err(err!(Validation, "CloseSession closes the session it arrives in; this request came in the clear")),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use pkms_protocol::ErrorCode;

    /// An RNG that returns the given words, then repeats the last.
    struct Script(&'static [u32], usize);

    impl RngCore for Script {
        fn next_u32(&mut self) -> u32 {
            let w = self.0[self.1.min(self.0.len() - 1)];
            self.1 += 1;
            w
        }
        fn next_u64(&mut self) -> u64 {
            u64::from(self.next_u32())
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = self.next_u32() as u8;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    fn open_with_id(id: u32) -> Session {
        Session {
            id,
            to_token: Direction { cipher: Cipher::new(&[1; 32]), counter: 0 },
            to_host: Direction { cipher: Cipher::new(&[2; 32]), counter: 0 },
            login: None,
            last_ms: 0,
        }
    }

    #[test]
    fn session_ids_are_never_zero_nor_an_open_sessions_and_a_stuck_generator_is_an_error() {
        let mut sessions = Sessions::new();
        sessions.slots[3] = Some(open_with_id(7));
        assert_eq!(sessions.new_id(&mut Script(&[0, 7, 0, 9], 0)).ok(), Some(9));
        assert_eq!(sessions.new_id(&mut Script(&[7], 0)).map_err(|e| e.code), Err(ErrorCode::Internal));
        assert_eq!(sessions.new_id(&mut Script(&[0], 0)).map_err(|e| e.code), Err(ErrorCode::Internal));
    }
}
