//! The host's side of a session in token tests: [`pkms_protocol::session::host`] (RustCrypto's
//! P-256 and AES-256-GCM, an implementation independent of the token's) with the counters a
//! host keeps.

use std::vec::Vec;

use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::DecodePublicKey;
use pkms_protocol::session::host::{Handshake, HostSession as Keys};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// An open session, host side.
pub struct HostSession {
    pub id: u32,
    keys: Keys,
    pub send_counter: u64,
    pub recv_counter: u64,
}

/// Message 1 of the handshake and what the host keeps to finish it.
pub struct Opening {
    handshake: Handshake,
    pub ephemeral: [u8; 65],
    pub payload: Vec<u8>,
}

fn device_point(spki: &[u8]) -> [u8; 65] {
    let device = p256::PublicKey::from_public_key_der(spki).expect("device key");
    let mut sec1 = [0u8; 65];
    sec1.copy_from_slice(device.to_encoded_point(false).as_bytes());
    sec1
}

/// Starts a handshake with the token whose device key is `spki` (DER), with an empty payload.
pub fn open(spki: &[u8], seed: u64) -> Opening {
    let handshake =
        Handshake::start(&device_point(spki), &mut ChaCha20Rng::seed_from_u64(seed)).expect("handshake");
    Opening { ephemeral: handshake.ephemeral, payload: handshake.payload.to_vec(), handshake }
}

/// As [`open`], asking for the token's status in message 2.
pub fn open_asking_status(spki: &[u8], seed: u64) -> Opening {
    let handshake =
        Handshake::start_asking_status(&device_point(spki), &mut ChaCha20Rng::seed_from_u64(seed))
            .expect("handshake");
    Opening { ephemeral: handshake.ephemeral, payload: handshake.payload.to_vec(), handshake }
}

/// As [`open`], with `flags` as message 1's payload (none, or one byte).
pub fn open_with_flags(spki: &[u8], flags: &[u8], seed: u64) -> Opening {
    let handshake =
        Handshake::start_with_flags(&device_point(spki), flags, &mut ChaCha20Rng::seed_from_u64(seed))
            .expect("handshake");
    Opening { ephemeral: handshake.ephemeral, payload: handshake.payload.to_vec(), handshake }
}

impl Opening {
    /// Whether the host side expects the token's status in message 2.
    pub fn asks_status(&self) -> bool {
        self.handshake.asks_status()
    }

    /// Finishes the handshake with message 2; `None` if it does not verify.
    pub fn finish(self, session_id: u32, token_ephemeral: &[u8], payload: &[u8]) -> Option<HostSession> {
        let keys = self.handshake.finish(session_id, token_ephemeral, payload).ok()?;
        Some(HostSession { id: session_id, keys, send_counter: 0, recv_counter: 0 })
    }
}

impl HostSession {
    /// The status the token sent with message 2 (asked for by [`open_asking_status`]).
    pub fn status(&self) -> Option<pkms_protocol::session::SessionStatus> {
        self.keys.status()
    }

    /// Seals a request payload: (counter, ciphertext ‖ tag).
    pub fn seal(&mut self, plaintext: &[u8]) -> (u64, Vec<u8>) {
        let counter = self.send_counter;
        self.send_counter += 1;
        let mut buf = plaintext.to_vec();
        let tag = self.keys.seal_at(counter, &mut buf);
        buf.extend_from_slice(&tag);
        (counter, buf)
    }

    /// Opens an answer; `None` if the counter or tag is wrong.
    pub fn open(&mut self, counter: u64, sealed: &[u8]) -> Option<Vec<u8>> {
        if counter != self.recv_counter || sealed.len() < 16 {
            return None;
        }
        let (text, tag) = sealed.split_at(sealed.len() - 16);
        let mut buf = text.to_vec();
        self.keys.open_at(counter, &mut buf, tag).ok()?;
        self.recv_counter += 1;
        Some(buf)
    }
}
