//! The host's side of the encrypted session with a token: the device key a host pins, and the
//! session's counters around [`pkms_protocol::session::host`] (the NK handshake and frame
//! sealing with RustCrypto's P-256 and AES-256-GCM; [`pkms_protocol::session`] has the
//! construction, docs/security.md its reasoning).
//!
//! [`crate::Client`] uses it: [`crate::Client::open_session`] runs the handshake, every later
//! request travels sealed, and the session ends with [`crate::Client::close_session`] (also
//! when the client is dropped, and through a [`SessionCloser`] from a signal handler).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use p256::PublicKey;
use pkms_protocol::session::host::{Handshake, HostSession, Refused};
use pkms_protocol::session::{PUBLIC_KEY_LEN, TAG_LEN};
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
pub fn start(device: &DeviceKey) -> Result<Handshake> {
    Handshake::start(&device.sec1(), &mut rand_core::OsRng).map_err(refused)
}

/// Finishes a handshake with OpenSession's answer and opens the session.
pub fn finish(handshake: Handshake, session_id: u32, ephemeral: &[u8], payload: &[u8]) -> Result<Session> {
    let keys = handshake.finish(session_id, ephemeral, payload).map_err(refused)?;
    Ok(Session { keys, send_counter: Arc::new(AtomicU64::new(0)), recv_counter: 0 })
}

/// An open session, host side: its keys and counters.
pub struct Session {
    keys: HostSession,
    /// Shared with [`SessionCloser`]s: a counter is never used twice.
    send_counter: Arc<AtomicU64>,
    recv_counter: u64,
}

impl Session {
    /// The session's id.
    pub fn id(&self) -> u32 {
        self.keys.id()
    }

    /// Seals a request frame (postcard bytes) in place and appends the tag; returns its counter.
    pub fn seal(&self, frame: &mut Vec<u8>) -> u64 {
        seal(&self.keys, &self.send_counter, frame)
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

    /// What ends this session from elsewhere (a signal handler): see [`SessionCloser`].
    pub fn closer(&self) -> SessionCloser {
        SessionCloser { keys: self.keys.clone(), send_counter: self.send_counter.clone() }
    }
}

fn seal(keys: &HostSession, counter: &AtomicU64, frame: &mut Vec<u8>) -> u64 {
    let c = counter.fetch_add(1, Ordering::SeqCst);
    let tag = keys.seal_at(c, frame);
    frame.extend_from_slice(&tag);
    c
}

/// Ends a session from outside the client that runs it (e.g. on Ctrl-C):
/// [`SessionCloser::frame`] is a complete, COBS-encoded CloseSession frame for the session's
/// next counter. Were a request of the client to take a counter after it but reach the token
/// first, the token refuses the later frame as out of order — which ends the session too.
#[derive(Clone)]
pub struct SessionCloser {
    keys: HostSession,
    send_counter: Arc<AtomicU64>,
}

impl SessionCloser {
    /// The encoded frame that closes the session (with its 0x00 delimiter).
    pub fn frame(&self) -> Result<Vec<u8>> {
        use pkms_protocol::messages::{Request, RequestFrame};
        let cannot = || protocol("CloseSession cannot be encoded");
        let inner = RequestFrame {
            id: u32::MAX,
            now: None,
            request: Request::CloseSession(pkms_protocol::request::CloseSession {}),
        };
        let mut buf = [0u8; 32];
        let mut sealed = postcard::to_slice(&inner, &mut buf).map_err(|_| cannot())?.to_vec();
        let counter = seal(&self.keys, &self.send_counter, &mut sealed);
        let outer = RequestFrame {
            id: u32::MAX,
            now: None,
            request: Request::SessionFrame(pkms_protocol::request::SessionFrame {
                session_id: self.keys.id(),
                counter,
                sealed: &sealed,
            }),
        };
        let mut out = vec![0u8; pkms_protocol::limits::MAX_ENCODED_FRAME];
        let n = pkms_protocol::framing::encode(&outer, &mut out).map_err(|_| cannot())?;
        out.truncate(n);
        Ok(out)
    }
}
