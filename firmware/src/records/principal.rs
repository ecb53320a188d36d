//! What authentication keeps: the token-wide authentication record (its presence means
//! "initialised") and one record per principal.

use pkms_protocol::access::{Role, MAX_PRINCIPAL_NAME};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use super::RecordId;

/// The token-wide authentication state.
#[derive(Serialize, Deserialize, Zeroize)]
#[zeroize(drop)]
pub struct AuthRecord {
    /// [`super::FORMAT`].
    pub format: u8,
    /// 0: overwrite the oldest audit entries; 1: refuse operations when the log is full.
    pub audit_refuse: bool,
    /// PUK salt.
    pub puk_salt: [u8; 16],
    /// PBKDF2-HMAC-SHA256 of the PUK.
    pub puk_hash: [u8; 32],
    /// Wrong PUKs left before only a factory reset helps.
    pub puk_retries: u8,
    /// Device attestation key (P-256 scalar) that signs audit checkpoints.
    pub attestation_key: [u8; 32],
}

/// A principal.
#[derive(Serialize, Deserialize, Zeroize, Clone)]
#[zeroize(drop)]
pub struct PrincipalRecord {
    /// [`super::FORMAT`].
    pub format: u8,
    /// Name.
    pub name: heapless::String<MAX_PRINCIPAL_NAME>,
    /// Admin or user.
    #[zeroize(skip)]
    pub role: Role,
    /// PIN salt.
    pub salt: [u8; 16],
    /// PBKDF2-HMAC-SHA256 of the PIN.
    pub hash: [u8; 32],
    /// Wrong PINs left (0: locked).
    pub retries: u8,
}

/// The store id of principal `name`.
pub fn principal_id(name: &str) -> RecordId {
    let mut h = Sha256::new();
    h.update(b"pkms-principal\0");
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    id
}
