//! What authentication, policies and the audit log keep in the store. Kinds 16..=20 belong to
//! these modules (the core's kinds are in [`crate::records`]).

use pkms_protocol::access::{Role, MAX_GRANTS, MAX_PRINCIPAL_NAME};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::store::RecordId;

/// The authentication record (singleton): its presence means "initialised".
pub const KIND_AUTH: u8 = 16;
/// One record per principal (id: [`principal_id`]).
pub const KIND_PRINCIPAL: u8 = 17;
/// A key's policy and grants (id: the key id); absent means the default policy, no grants.
pub const KIND_ACCESS: u8 = 18;
/// One record per audit entry (id: the sequence number, big-endian, in the first 8 bytes).
pub const KIND_AUDIT: u8 = 19;
/// The signed checkpoint behind the oldest held audit entry (singleton).
pub const KIND_AUDIT_BASE: u8 = 20;

/// Format byte of these records.
pub const FORMAT: u8 = 1;

/// The token-wide authentication state.
#[derive(Serialize, Deserialize, Zeroize)]
#[zeroize(drop)]
pub struct AuthRecord {
    /// [`FORMAT`].
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
    /// [`FORMAT`].
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

/// One grant on a key.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord<'a> {
    /// GrantId (random).
    pub id: [u8; 16],
    /// Name.
    pub name: &'a str,
    /// GranteePrincipal.
    pub grantee: &'a str,
    /// Who created it.
    pub issuer: &'a str,
    /// Action bits.
    pub operations: u64,
    /// Encoded [`pkms_protocol::access::Condition`], empty for none.
    pub constraint: &'a [u8],
    /// CreationDate.
    pub created: u64,
}

/// A key's access record: its policy (compact form) and grants. Both share one store record,
/// so together they must fit in one 4 KiB page; else CreateGrant / PutKeyPolicy answer
/// LimitExceeded.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord<'a> {
    /// [`FORMAT`].
    pub format: u8,
    /// The encoded [`pkms_protocol::access::Policy`].
    pub policy: &'a [u8],
    /// Grants.
    #[serde(borrow)]
    pub grants: heapless::Vec<GrantRecord<'a>, MAX_GRANTS>,
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

/// The store id of audit entry `sequence`.
pub fn audit_id(sequence: u64) -> RecordId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&sequence.to_be_bytes());
    id
}

/// The sequence number of an audit record id.
pub fn audit_sequence(id: &RecordId) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id[..8]);
    u64::from_be_bytes(b)
}
