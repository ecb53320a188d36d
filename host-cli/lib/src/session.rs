//! The host's side of the encrypted session with a token: the device key a host pins, and the
//! session's counters around [`pkms_protocol::session::host`] (the NK handshake and frame
//! sealing with RustCrypto's P-256 and AES-256-GCM; [`pkms_protocol::session`] has the
//! construction, docs/security.md its reasoning).
//!
//! [`crate::Client`] uses it: [`crate::Client::open_session`] runs the handshake, every later
//! request travels sealed, and the session ends with [`crate::Client::close_session`] (also
//! when the client is dropped, and so after an interrupt: [`crate::interrupt`]).

use base64::Engine;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use p256::PublicKey;
pub use pkms_protocol::session::host::{Handshake, SessionSecrets};
use pkms_protocol::session::host::{HostSession, Refused};
use pkms_protocol::session::{SessionStatus, PUBLIC_KEY_LEN, TAG_LEN};
use sha2::{Digest, Sha256};

use crate::error::{Error, LinkError, Result};

/// A token's device key: the static key of its session handshakes, made anew by every factory
/// reset. Hosts pin it on first use ([`crate::pins`]).
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKey {
    public: PublicKey,
    spki: Vec<u8>,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey({})", self.fingerprint())
    }
}

impl DeviceKey {
    /// From a DER SubjectPublicKeyInfo (what GetDeviceKey answers); only P-256 keys.
    pub fn from_spki_der(der: &[u8]) -> Result<DeviceKey> {
        let public = PublicKey::from_public_key_der(der)
            .map_err(|_| protocol("the token's device key is not a P-256 public key"))?;
        Ok(DeviceKey { public, spki: der.to_vec() })
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_pem(&self) -> String {
        self.public.to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// `SHA256:` and the unpadded base64 of the SHA-256 of the DER SubjectPublicKeyInfo (the
    /// form OpenSSH prints fingerprints in).
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(&self.spki);
        format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest))
    }

    fn sec1(&self) -> [u8; PUBLIC_KEY_LEN] {
        sec1(&self.public)
    }
}

fn sec1(p: &PublicKey) -> [u8; PUBLIC_KEY_LEN] {
    let mut out = [0u8; PUBLIC_KEY_LEN];
    out.copy_from_slice(p.to_encoded_point(false).as_bytes());
    out
}

fn protocol(msg: &str) -> Error {
    Error::Link(LinkError::Protocol(msg.to_owned()))
}

fn refused(r: Refused) -> Error {
    protocol(match r {
        Refused::BadPoint => "the token sent a public key that is not a P-256 point",
        Refused::Handshake => {
            "the token's handshake answer does not verify: it does not hold the pinned device key"
        }
        Refused::Tag => "the token's answer does not authenticate",
    })
}

/// Starts a handshake with the token whose device key is `device`: what OpenSession sends.
/// `ask_status`: message 1 asks the token for its [`SessionStatus`] ([`Session::status`]).
pub fn start(device: &DeviceKey, ask_status: bool) -> Result<Handshake> {
    let rng = &mut rand_core::OsRng;
    match ask_status {
        true => Handshake::start_asking_status(&device.sec1(), rng),
        false => Handshake::start(&device.sec1(), rng),
    }
    .map_err(refused)
}

/// Finishes a handshake with OpenSession's answer and opens the session.
pub fn finish(handshake: Handshake, session_id: u32, ephemeral: &[u8], payload: &[u8]) -> Result<Session> {
    let keys = handshake.finish(session_id, ephemeral, payload).map_err(refused)?;
    let opened_at = crate::session_cache::now_secs();
    Ok(Session { keys, send_counter: 0, recv_counter: 0, opened_at, from_disk: None, carried_secret: false })
}

/// An open session, host side: its keys and counters.
pub struct Session {
    keys: HostSession,
    send_counter: u64,
    recv_counter: u64,
    /// When its handshake ran (seconds since the epoch, host clock): the session cache ages its
    /// records from it.
    opened_at: u64,
    /// Its keys have been on disk ([`crate::session_cache`]): the device key it was opened
    /// with, for the new session that takes over before a request that may not travel in it.
    from_disk: Option<DeviceKey>,
    /// It carried a request that may not travel in a cached session
    /// ([`crate::session_cache::may_travel`]): it is never cached.
    carried_secret: bool,
}

impl Session {
    /// The session a record of the session cache describes: `secrets`, its next counters (send,
    /// receive), the time of its handshake, the device key it was opened with. Its status is
    /// unknown until asked ([`Session::knowing_status`]).
    pub(crate) fn from_disk(
        secrets: SessionSecrets,
        (send_counter, recv_counter): (u64, u64),
        opened_at: u64,
        device: DeviceKey,
    ) -> Session {
        Session {
            keys: HostSession::resume(secrets, None),
            send_counter,
            recv_counter,
            opened_at,
            from_disk: Some(device),
            carried_secret: false,
        }
    }

    /// This session, with the token's status as the caller learned it.
    pub fn knowing_status(self, status: SessionStatus) -> Session {
        Session { keys: HostSession::resume(self.keys.secrets().clone(), Some(status)), ..self }
    }

    /// The session's id and keys, and its next counters (send, receive), to go on with it in
    /// another process ([`crate::session_cache`]).
    pub fn secrets(&self) -> (&SessionSecrets, u64, u64) {
        (self.keys.secrets(), self.send_counter, self.recv_counter)
    }

    /// When its handshake ran (seconds since the epoch, host clock).
    pub fn opened_at(&self) -> u64 {
        self.opened_at
    }

    /// If its keys have been on disk (it came from the session cache), the device key it was
    /// opened with.
    pub fn from_disk_with(&self) -> Option<&DeviceKey> {
        self.from_disk.as_ref()
    }

    /// Whether it carried a request that may not travel in a cached session.
    pub fn carried_secret(&self) -> bool {
        self.carried_secret
    }

    /// Notes a request about to be sent in it.
    pub(crate) fn note_request(&mut self, request: &pkms_protocol::Request<'_>) {
        if !crate::session_cache::may_travel(request) {
            self.carried_secret = true;
        }
    }

    /// The session's id.
    pub fn id(&self) -> u32 {
        self.keys.id()
    }

    /// What the token said about itself in the handshake, if it was asked and told.
    pub fn status(&self) -> Option<SessionStatus> {
        self.keys.status()
    }

    /// Seals a request frame (postcard bytes) in place and appends the tag; returns its counter.
    pub fn seal(&mut self, frame: &mut Vec<u8>) -> u64 {
        let counter = self.send_counter;
        self.send_counter += 1;
        let tag = self.keys.seal_at(counter, frame);
        frame.extend_from_slice(&tag);
        counter
    }

    /// Opens the token's answer `sealed` (ciphertext ‖ tag) with `counter`: it must be the next
    /// one and authentic.
    pub fn open(&mut self, counter: u64, sealed: &[u8]) -> Result<Vec<u8>> {
        if counter != self.recv_counter {
            return Err(protocol("the token's answer carries an unexpected counter (replayed or reordered)"));
        }
        let n =
            sealed.len().checked_sub(TAG_LEN).ok_or_else(|| protocol("the token's answer is too short"))?;
        let mut text = sealed[..n].to_vec();
        self.keys.open_at(counter, &mut text, &sealed[n..]).map_err(refused)?;
        self.recv_counter += 1;
        Ok(text)
    }
}
