//! The audit log: GetAuditCheckpoint (and ReadAuditLog, which answers encoded entries, and
//! TrimAuditLog, which answers nothing). The export file is [`crate::audit`].

use p256::ecdsa::VerifyingKey;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use pkms_protocol::access::AuditFullMode;
use serde::Serialize;

use super::encoding::base64;

/// The audit log's signed head, as GetAuditCheckpoint returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// Sequence number of the newest entry.
    pub sequence: u64,
    /// Its hash.
    pub hash: [u8; 32],
    /// DER signature over `checkpoint_digest(sequence, hash)`.
    pub signature: Vec<u8>,
    /// Oldest entry held.
    pub first_sequence: u64,
    /// Device attestation key (DER SubjectPublicKeyInfo).
    pub public_key: Vec<u8>,
    /// Entries the log holds at most.
    pub capacity: u32,
    /// What happens when full.
    pub audit_full: AuditFullMode,
    /// Signature behind the oldest held entry (empty when none was dropped).
    pub base_signature: Vec<u8>,
}

/// An audit-full mode's name: `OVERWRITE` or `REFUSE`.
pub fn audit_full_name(mode: AuditFullMode) -> &'static str {
    match mode {
        AuditFullMode::Overwrite => "OVERWRITE",
        AuditFullMode::Refuse => "REFUSE",
    }
}

/// The device public key of a checkpoint is not a P-256 SubjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token sent an invalid public key")]
pub struct InvalidPublicKey;

/// The device's public key (DER SubjectPublicKeyInfo) as PEM.
pub fn public_key_pem(der: &[u8]) -> Result<String, InvalidPublicKey> {
    let key = VerifyingKey::from_public_key_der(der).map_err(|_| InvalidPublicKey)?;
    key.to_public_key_pem(LineEnding::LF).map_err(|_| InvalidPublicKey)
}

/// A checkpoint as `pkms audit checkpoint` shows it: the hash in hex, the device public key in
/// PEM (what `pkms audit verify --public-key` reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuditCheckpointOutput {
    /// Sequence number of the newest entry.
    pub sequence: u64,
    /// Its hash, lower-case hex.
    pub hash: String,
    /// Oldest entry held.
    pub first_sequence: u64,
    /// Entries the log holds at most.
    pub capacity: u32,
    /// `OVERWRITE` or `REFUSE`.
    pub audit_full: &'static str,
    /// DER signature of the checkpoint.
    #[serde(serialize_with = "base64")]
    pub signature: Vec<u8>,
    /// Device attestation key, PEM.
    pub public_key: String,
}

impl AuditCheckpointOutput {
    /// The output of `cp`; fails if its public key is not a P-256 key.
    pub fn new(cp: &AuditCheckpoint) -> Result<Self, InvalidPublicKey> {
        Ok(AuditCheckpointOutput {
            sequence: cp.sequence,
            hash: cp.hash.iter().map(|b| format!("{b:02x}")).collect(),
            first_sequence: cp.first_sequence,
            capacity: cp.capacity,
            audit_full: audit_full_name(cp.audit_full),
            signature: cp.signature.clone(),
            public_key: public_key_pem(&cp.public_key)?,
        })
    }
}

impl super::Owned for pkms_protocol::kind::AuditCheckpoint {
    type Output = AuditCheckpoint;
    fn own(r: pkms_protocol::reply::AuditCheckpoint<'_>) -> AuditCheckpoint {
        AuditCheckpoint {
            sequence: r.sequence,
            hash: r.hash,
            signature: r.signature.to_vec(),
            first_sequence: r.first_sequence,
            public_key: r.public_key.to_vec(),
            capacity: r.capacity,
            audit_full: r.audit_full,
            base_signature: r.base_signature.to_vec(),
        }
    }
}

impl super::Owned for pkms_protocol::kind::AuditEntries {
    /// The concatenated encoded entries.
    type Output = Vec<u8>;
    fn own(r: pkms_protocol::reply::AuditEntries<'_>) -> Vec<u8> {
        r.entries.to_vec()
    }
}
