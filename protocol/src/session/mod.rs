//! The encrypted, authenticated session between a host and a token: the Noise Protocol
//! Framework's **NK** handshake (rev. 34, §7.4) over P-256, ChaCha20-Poly1305 and SHA-256 —
//! `Noise_NK_P256_ChaChaPoly_SHA256` — followed by transport frames with explicit
//! per-direction counters. This module holds what both sides compute identically (the symmetric
//! state, the cipher, the nonces, the associated data); each side brings its own P-256 (the
//! token its Cortex-M4 code, the host RustCrypto), and the tests check they agree.
//!
//! ```text
//! NK:   <- s                 the token's device key, pinned by the host on first use
//!       ...
//!       -> e, es             OpenSession { ephemeral, payload: EncryptAndHash("" or flags) }
//!       <- e, ee             SessionOpened { session_id, ephemeral,
//!                                            payload: EncryptAndHash(session_id [‖ status]) }
//!       Split() -> (host→token key, token→host key)
//! ```
//!
//! * Message 1's payload is empty, or one byte of flags: [`ASK_STATUS`] asks the token to append
//!   its [`SessionStatus`] to message 2's payload, so a host learns what it would otherwise ask
//!   GetInfo for (whether the token is initialised) without another round trip, authenticated
//!   by the handshake like the session id. Unknown flag bits are ignored. A host that sends no
//!   flags gets the 4-byte payload older hosts expect; a token too old to take flags refuses the
//!   17-byte payload (Validation) and the host opens again without them.
//!
//! * P-256 public keys travel as 65-byte uncompressed SEC1 points; DH is the x-coordinate of the
//!   product (SEC 1 ECDH). Noise names 25519 and 448 only; P-256 is our documented choice, since
//!   the token has constant-time P-256 in Cortex-M4 assembly.
//! * The prologue binds the session to this protocol and its version ([`PROLOGUE`]).
//! * Only the token's knowing its device key completes the handshake: the host encrypts with a
//!   key mixed from `es` (its ephemeral × the pinned static key), so a token with another key — or
//!   anyone in the middle — cannot produce message 2's payload.
//! * Transport frames carry the sender's counter in clear; the receiver accepts exactly the next
//!   counter, so a replayed, reordered or dropped frame is refused, and ChaCha20-Poly1305 under
//!   the session's direction key with associated data [`frame_ad`] refuses an altered frame or one
//!   from another session. Any refusal ends the session.
//! * ChaCha20-Poly1305 rather than AES-256-GCM: both are Noise ciphers, but on a Cortex-M4
//!   without AES hardware constant-time AES costs several times more per byte than ChaCha20's
//!   additions, rotations and XORs, and every request and answer pays it twice.

#[cfg(feature = "host-session")]
pub mod host;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The Noise protocol name (31 bytes: padded with zeros to form the first `h`).
pub const PROTOCOL_NAME: &[u8] = b"Noise_NK_P256_ChaChaPoly_SHA256";
/// The prologue both sides mix in before the handshake.
pub const PROLOGUE: &[u8] = b"pocket-kms session v1";
/// Length of a P-256 public key on the wire (uncompressed SEC1).
pub const PUBLIC_KEY_LEN: usize = 65;
/// Length of a Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// The most sessions a token holds at once.
pub const MAX_SESSIONS: usize = 8;
/// Message 1's flag asking the token to append its [`SessionStatus`] to message 2's payload.
pub const ASK_STATUS: u8 = 0x01;
/// The longest plaintext of message 1's payload: the flags byte.
pub const MAX_FLAGS_LEN: usize = 1;
/// Message 2's plaintext: the session id (4 bytes, big-endian), then the status if it was asked.
pub const MAX_OPENED_LEN: usize = 4 + SessionStatus::LEN;

/// What the token tells a host that asked ([`ASK_STATUS`]) at the end of message 2's payload:
/// one byte today. Bit 0: the token is initialised (GetInfo's `initialized`: a PIN protects it).
/// The other bits are reserved: a token sends them zero and a host ignores them, so later
/// tokens can add facts without breaking this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionStatus {
    /// The token is initialised: operations need a logged-in session.
    pub initialized: bool,
}

impl SessionStatus {
    /// Bytes on the wire.
    pub const LEN: usize = 1;
    const INITIALIZED: u8 = 0x01;

    /// The status byte.
    pub fn to_byte(self) -> u8 {
        if self.initialized {
            Self::INITIALIZED
        } else {
            0
        }
    }

    /// From the status byte (reserved bits ignored).
    pub fn from_byte(byte: u8) -> SessionStatus {
        SessionStatus { initialized: byte & Self::INITIALIZED != 0 }
    }
}

/// HMAC-SHA256.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Noise's HKDF with two outputs.
fn hkdf2(chaining_key: &[u8; 32], input: &[u8]) -> ([u8; 32], [u8; 32]) {
    let temp = hmac(chaining_key, &[input]);
    let out1 = hmac(&temp, &[&[1]]);
    let out2 = hmac(&temp, &[&out1, &[2]]);
    (out1, out2)
}

/// The ChaCha20-Poly1305 nonce of counter `n`: 32 zero bits, then `n` little-endian (Noise's
/// ChaChaPoly).
pub fn nonce(n: u64) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[4..].copy_from_slice(&n.to_le_bytes());
    out
}

/// The session's AEAD, ChaCha20-Poly1305 (RFC 8439) under one 256-bit key, with Noise's nonces
/// ([`nonce`]); both ends use it, for the handshake's payloads and for transport frames. The key
/// is wiped when the value is dropped.
#[derive(Clone)]
pub struct Cipher(ChaCha20Poly1305);

impl Cipher {
    /// The cipher under `key`.
    pub fn new(key: &[u8; 32]) -> Cipher {
        Cipher(ChaCha20Poly1305::new(key.into()))
    }

    /// Encrypts `text` in place with nonce `n` and associated data `ad`; returns the tag. (The
    /// AEAD refuses only texts longer than 256 GiB; were it to refuse, the tag is zeros, which
    /// the other end refuses.)
    pub fn seal(&self, n: u64, ad: &[u8], text: &mut [u8]) -> [u8; TAG_LEN] {
        let mut tag = [0u8; TAG_LEN];
        if let Ok(t) = self.0.encrypt_in_place_detached(&nonce(n).into(), ad, text) {
            tag.copy_from_slice(&t);
        }
        tag
    }

    /// Checks `tag` and, only if it verifies (in constant time), decrypts `text` in place;
    /// `false` leaves `text` as it was.
    pub fn open(&self, n: u64, ad: &[u8], text: &mut [u8], tag: &[u8]) -> bool {
        let Ok(tag) = <&[u8; TAG_LEN]>::try_from(tag) else {
            return false;
        };
        self.0.decrypt_in_place_detached(&nonce(n).into(), ad, text, tag.into()).is_ok()
    }
}

/// The associated data of transport frame `counter` of session `session_id`.
pub fn frame_ad(session_id: u32, counter: u64) -> [u8; 16] {
    let mut ad = [0u8; 16];
    ad[..4].copy_from_slice(b"pkms");
    ad[4..8].copy_from_slice(&session_id.to_be_bytes());
    ad[8..].copy_from_slice(&counter.to_be_bytes());
    ad
}

/// Noise's SymmetricState (§5.2) for SHA-256, without the cipher: the caller encrypts and
/// decrypts with [`SymmetricState::key`], [`SymmetricState::nonce`] and the hash `h` as
/// associated data, then calls [`SymmetricState::mix_hash`] on the ciphertext (what Noise's
/// EncryptAndHash / DecryptAndHash do).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SymmetricState {
    ck: [u8; 32],
    h: [u8; 32],
    k: Option<[u8; 32]>,
    n: u64,
}

impl SymmetricState {
    /// InitializeSymmetric(PROTOCOL_NAME), MixHash(PROLOGUE), and the NK pre-message: MixHash of
    /// the responder's (the token's) static public key.
    pub fn nk(token_static: &[u8; PUBLIC_KEY_LEN]) -> Self {
        let mut h = [0u8; 32];
        h[..PROTOCOL_NAME.len()].copy_from_slice(PROTOCOL_NAME);
        let mut s = SymmetricState { ck: h, h, k: None, n: 0 };
        s.mix_hash(PROLOGUE);
        s.mix_hash(token_static);
        s
    }

    /// MixHash: h = SHA-256(h ‖ data).
    pub fn mix_hash(&mut self, data: &[u8]) {
        let mut d = Sha256::new();
        d.update(self.h);
        d.update(data);
        self.h = d.finalize().into();
    }

    /// MixKey with a DH output: new chaining key and cipher key, nonce back to 0.
    pub fn mix_key(&mut self, dh: &[u8; 32]) {
        let (ck, k) = hkdf2(&self.ck, dh);
        self.ck = ck;
        self.k = Some(k);
        self.n = 0;
    }

    /// The handshake hash (associated data of the next EncryptAndHash / DecryptAndHash).
    pub fn h(&self) -> [u8; 32] {
        self.h
    }

    /// The current cipher key (`None` before the first MixKey) and the nonce counter to use
    /// with it; the counter advances.
    pub fn key_and_nonce(&mut self) -> Option<([u8; 32], u64)> {
        let k = self.k?;
        let n = self.n;
        self.n = self.n.wrapping_add(1);
        Some((k, n))
    }

    /// Split: the two transport keys, (initiator → responder, responder → initiator), i.e.
    /// (host → token, token → host).
    pub fn split(&self) -> ([u8; 32], [u8; 32]) {
        hkdf2(&self.ck, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_matches_rfc_5869_style_hmac_chaining() {
        // Noise's HKDF(ck, ikm) = (HMAC(HMAC(ck, ikm), 0x01), HMAC(HMAC(ck, ikm), out1 ‖ 0x02)).
        let (a, b) = hkdf2(&[1; 32], b"input");
        let t = hmac(&[1; 32], &[b"input"]);
        assert_eq!(a, hmac(&t, &[&[1]]));
        assert_eq!(b, hmac(&t, &[&a, &[2]]));
        assert_ne!(a, b);
    }

    #[test]
    fn both_sides_of_a_handshake_derive_the_same_keys_and_another_static_key_does_not() {
        let s = [4u8; PUBLIC_KEY_LEN];
        let mut host = SymmetricState::nk(&s);
        let mut token = SymmetricState::nk(&s);
        for st in [&mut host, &mut token] {
            st.mix_hash(&[5; 65]);
            st.mix_key(&[6; 32]);
            st.mix_hash(b"ciphertext");
            st.mix_hash(&[7; 65]);
            st.mix_key(&[8; 32]);
        }
        assert_eq!(host.h(), token.h());
        assert_eq!(host.split(), token.split());
        let (k1, k2) = host.split();
        assert_ne!(k1, k2, "each direction has its own key");
        let mut other = SymmetricState::nk(&[9; PUBLIC_KEY_LEN]);
        other.mix_hash(&[5; 65]);
        other.mix_key(&[6; 32]);
        assert_ne!(other.key_and_nonce().map(|k| k.0), SymmetricState::nk(&s).key_and_nonce().map(|k| k.0));
        assert_ne!(other.h(), host.h());
    }

    #[test]
    fn the_status_byte_carries_initialized_in_bit_0_and_ignores_reserved_bits() {
        assert_eq!(SessionStatus { initialized: true }.to_byte(), 1);
        assert_eq!(SessionStatus { initialized: false }.to_byte(), 0);
        assert_eq!(SessionStatus::from_byte(1), SessionStatus { initialized: true });
        assert_eq!(SessionStatus::from_byte(0), SessionStatus { initialized: false });
        assert_eq!(SessionStatus::from_byte(0xFE), SessionStatus { initialized: false });
        assert_eq!(SessionStatus::from_byte(0xFF), SessionStatus { initialized: true });
        assert_eq!(MAX_OPENED_LEN, 5);
    }

    #[test]
    fn nonces_count_little_endian_after_four_zero_bytes() {
        assert_eq!(nonce(0), [0; 12]);
        assert_eq!(nonce(0x0102), [0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0]);
        let mut st = SymmetricState::nk(&[1; 65]);
        assert!(st.key_and_nonce().is_none(), "no key before the first DH");
        st.mix_key(&[2; 32]);
        assert_eq!(st.key_and_nonce().map(|x| x.1), Some(0));
        assert_eq!(st.key_and_nonce().map(|x| x.1), Some(1));
        assert_ne!(frame_ad(1, 2), frame_ad(2, 1));
    }

    #[test]
    fn the_cipher_opens_only_what_it_sealed_with_the_same_nonce_and_associated_data() {
        let c = Cipher::new(&[3; 32]);
        let mut text = *b"a request frame";
        let tag = c.seal(5, b"ad", &mut text);
        assert_ne!(&text, b"a request frame");
        let sealed = text;
        for (n, ad, key) in [(6, &b"ad"[..], [3; 32]), (5, b"AD", [3; 32]), (5, b"ad", [4; 32])] {
            let mut t = sealed;
            assert!(!Cipher::new(&key).open(n, ad, &mut t, &tag));
            assert_eq!(t, sealed, "a refused frame is left as it was");
        }
        let mut bad = tag;
        bad[15] ^= 1;
        assert!(!c.open(5, b"ad", &mut text.clone(), &bad));
        assert!(!c.open(5, b"ad", &mut text.clone(), &tag[..15]));
        assert!(c.open(5, b"ad", &mut text, &tag));
        assert_eq!(&text, b"a request frame");
    }
}
