//! The host's side of the handshake and of transport frames, with RustCrypto's P-256 (`p256`)
//! — an implementation independent of the token's, which brings its own (feature
//! `host-session`; the token never builds this module) — and the shared [`Cipher`]. Counters are the caller's:
//! [`HostSession::seal_at`] and [`HostSession::open_at`] take the counter to use, so a caller may
//! share the sending counter (e.g. with a Ctrl-C handler that closes the session).

use p256::ecdh::EphemeralSecret;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::PublicKey;
use rand_core::CryptoRngCore;
use zeroize::Zeroize;

use super::{
    frame_ad, Cipher, SessionStatus, SymmetricState, ASK_STATUS, MAX_FLAGS_LEN, MAX_OPENED_LEN,
    PUBLIC_KEY_LEN, TAG_LEN,
};

/// Message 1's payload on the wire: the sealed flags (none, or one byte) and the tag.
pub type Message1Payload = heapless::Vec<u8, { MAX_FLAGS_LEN + TAG_LEN }>;

/// Why the host side refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A public key (the device key, or the token's ephemeral key) is not a P-256 point.
    BadPoint,
    /// The token's handshake answer does not verify: it does not hold the device key.
    Handshake,
    /// A sealed answer does not authenticate.
    Tag,
}

fn sec1(p: &PublicKey) -> [u8; PUBLIC_KEY_LEN] {
    let mut out = [0u8; PUBLIC_KEY_LEN];
    out.copy_from_slice(p.to_encoded_point(false).as_bytes());
    out
}

/// Message 1 of the handshake (`-> e, es`), and what the host keeps to finish it.
pub struct Handshake {
    st: SymmetricState,
    secret: EphemeralSecret,
    asked_status: bool,
    /// The host's ephemeral public key (OpenSession's `ephemeral`).
    pub ephemeral: [u8; PUBLIC_KEY_LEN],
    /// EncryptAndHash of message 1's payload (OpenSession's `payload`): the 16-byte tag of an
    /// empty payload, or the sealed flags byte and its tag ([`Handshake::start_asking_status`]).
    pub payload: Message1Payload,
}

impl Handshake {
    /// Starts a handshake with the token whose device key is `device` (SEC1 uncompressed); an
    /// empty payload, as every host before [`ASK_STATUS`] sent.
    pub fn start(device: &[u8; PUBLIC_KEY_LEN], rng: &mut impl CryptoRngCore) -> Result<Handshake, Refused> {
        Self::start_with(device, &[], rng)
    }

    /// As [`Handshake::start`], asking the token for its [`SessionStatus`] in message 2
    /// ([`HostSession::status`]).
    pub fn start_asking_status(
        device: &[u8; PUBLIC_KEY_LEN],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Handshake, Refused> {
        Self::start_with(device, &[ASK_STATUS], rng)
    }

    /// As [`Handshake::start`], with `flags` (none, or one byte) as message 1's payload: the
    /// bits the token knows ([`ASK_STATUS`]) ask for what they name; a token ignores the others.
    /// More than one byte is refused ([`Refused::Handshake`]).
    pub fn start_with_flags(
        device: &[u8; PUBLIC_KEY_LEN],
        flags: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Handshake, Refused> {
        Self::start_with(device, flags, rng)
    }

    fn start_with(
        device: &[u8; PUBLIC_KEY_LEN],
        flags: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Handshake, Refused> {
        let device_key = PublicKey::from_sec1_bytes(device).map_err(|_| Refused::BadPoint)?;
        let secret = EphemeralSecret::random(rng);
        let ephemeral = sec1(&secret.public_key());
        let mut st = SymmetricState::nk(device);
        st.mix_hash(&ephemeral);
        let mut es: [u8; 32] = (*secret.diffie_hellman(&device_key).raw_secret_bytes()).into();
        st.mix_key(&es);
        es.zeroize();
        let (mut k, n) = st.key_and_nonce().ok_or(Refused::Handshake)?;
        let mut text = [0u8; MAX_FLAGS_LEN];
        let text = text.get_mut(..flags.len()).ok_or(Refused::Handshake)?;
        text.copy_from_slice(flags);
        let tag = Cipher::new(&k).seal(n, &st.h(), text);
        k.zeroize();
        let mut payload = Message1Payload::new();
        payload.extend_from_slice(text).map_err(|()| Refused::Handshake)?;
        payload.extend_from_slice(&tag).map_err(|()| Refused::Handshake)?;
        st.mix_hash(&payload);
        // Asked exactly when the token will answer with its status (the bit, not any flags byte).
        let asked_status = flags.first().is_some_and(|f| f & ASK_STATUS != 0);
        Ok(Handshake { st, secret, asked_status, ephemeral, payload })
    }

    /// Whether message 1 asked for the token's status.
    pub fn asks_status(&self) -> bool {
        self.asked_status
    }

    /// `<- e, ee`: checks the token's answer (its ephemeral key, and `session_id` — followed by
    /// its status if this handshake asked — sealed under keys only the holder of the device key
    /// can derive) and opens the session.
    pub fn finish(
        mut self,
        session_id: u32,
        token_ephemeral: &[u8],
        payload: &[u8],
    ) -> Result<HostSession, Refused> {
        let peer = PublicKey::from_sec1_bytes(token_ephemeral).map_err(|_| Refused::BadPoint)?;
        self.st.mix_hash(token_ephemeral);
        let mut ee: [u8; 32] = (*self.secret.diffie_hellman(&peer).raw_secret_bytes()).into();
        self.st.mix_key(&ee);
        ee.zeroize();
        let (mut k, n) = self.st.key_and_nonce().ok_or(Refused::Handshake)?;
        // The session id, then the status only when it was asked for.
        let len = payload.len().checked_sub(TAG_LEN).ok_or(Refused::Handshake)?;
        if len != 4 && !(self.asked_status && len == MAX_OPENED_LEN) {
            return Err(Refused::Handshake);
        }
        let (sealed, tag) = payload.split_at(len);
        let mut text = [0u8; MAX_OPENED_LEN];
        let text = text.get_mut(..len).ok_or(Refused::Handshake)?;
        text.copy_from_slice(sealed);
        let opened = Cipher::new(&k).open(n, &self.st.h(), text, tag);
        k.zeroize();
        if !opened || text[..4] != session_id.to_be_bytes() {
            return Err(Refused::Handshake);
        }
        let status = text.get(4).map(|&b| SessionStatus::from_byte(b));
        let (mut to_token, mut to_host) = self.st.split();
        let session = HostSession::resume(SessionSecrets { id: session_id, to_token, to_host }, status);
        to_token.zeroize();
        to_host.zeroize();
        Ok(session)
    }
}

/// What a host must keep to go on with an open session from another process: its id and the
/// two direction keys (no counters: those are the caller's). As secret as the session itself:
/// zeroized when dropped.
#[derive(Clone)]
pub struct SessionSecrets {
    /// The session's id.
    pub id: u32,
    /// The key of frames to the token.
    pub to_token: [u8; 32],
    /// The key of frames to the host.
    pub to_host: [u8; 32],
}

impl Drop for SessionSecrets {
    fn drop(&mut self) {
        self.to_token.zeroize();
        self.to_host.zeroize();
    }
}

/// An open session, host side: its id, the two direction keys (ChaCha20-Poly1305) and the
/// status the token sent with message 2.
#[derive(Clone)]
pub struct HostSession {
    secrets: SessionSecrets,
    send: Cipher,
    recv: Cipher,
    status: Option<SessionStatus>,
}

impl HostSession {
    /// The session `secrets` describe (kept by [`HostSession::secrets`], possibly by another
    /// process), with `status` as known to the caller.
    pub fn resume(secrets: SessionSecrets, status: Option<SessionStatus>) -> HostSession {
        let send = Cipher::new(&secrets.to_token);
        let recv = Cipher::new(&secrets.to_host);
        HostSession { secrets, send, recv, status }
    }

    /// The session's id and keys, to go on with it elsewhere ([`HostSession::resume`]).
    pub fn secrets(&self) -> &SessionSecrets {
        &self.secrets
    }

    /// The session's id.
    pub fn id(&self) -> u32 {
        self.secrets.id
    }

    /// The token's status, when the handshake asked for it ([`Handshake::start_asking_status`])
    /// and the token sent it.
    pub fn status(&self) -> Option<SessionStatus> {
        self.status
    }

    /// Seals request bytes `text` in place as frame `counter` of this session; returns the tag.
    /// A counter must never be used twice.
    pub fn seal_at(&self, counter: u64, text: &mut [u8]) -> [u8; TAG_LEN] {
        self.send.seal(counter, &frame_ad(self.secrets.id, counter), text)
    }

    /// Opens the token's answer `text` ‖ `tag` in place as frame `counter` of this session.
    pub fn open_at(&self, counter: u64, text: &mut [u8], tag: &[u8]) -> Result<(), Refused> {
        if self.recv.open(counter, &frame_ad(self.secrets.id, counter), text, tag) {
            Ok(())
        } else {
            Err(Refused::Tag)
        }
    }
}
