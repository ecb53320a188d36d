//! The session handshake's answers (GetDeviceKey, OpenSession, a session frame), as the client
//! keeps them; [`crate::session`] makes sense of them.

/// OpenSession's answer: the new session's id, the token's ephemeral key and message 2's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOpened {
    /// The session id.
    pub session_id: u32,
    /// The token's ephemeral public key (SEC1, uncompressed).
    pub ephemeral: Vec<u8>,
    /// The session id sealed under the handshake's key.
    pub payload: Vec<u8>,
}

/// A sealed answer in a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedFrame {
    /// The session id.
    pub session_id: u32,
    /// The token's counter.
    pub counter: u64,
    /// Ciphertext ‖ tag.
    pub sealed: Vec<u8>,
}

impl super::Owned for pkms_protocol::kind::DeviceKey {
    /// The device key's DER SubjectPublicKeyInfo.
    type Output = Vec<u8>;
    fn own(r: pkms_protocol::reply::DeviceKey<'_>) -> Vec<u8> {
        r.public_key.to_vec()
    }
}

impl super::Owned for pkms_protocol::kind::SessionOpened {
    type Output = SessionOpened;
    fn own(r: pkms_protocol::reply::SessionOpened<'_>) -> SessionOpened {
        SessionOpened {
            session_id: r.session_id,
            ephemeral: r.ephemeral.to_vec(),
            payload: r.payload.to_vec(),
        }
    }
}

impl super::Owned for pkms_protocol::kind::SessionFrame {
    type Output = SealedFrame;
    fn own(r: pkms_protocol::reply::SessionFrame<'_>) -> SealedFrame {
        SealedFrame { session_id: r.session_id, counter: r.counter, sealed: r.sealed.to_vec() }
    }
}
