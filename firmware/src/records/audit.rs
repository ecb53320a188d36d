//! What the audit log keeps: one record per entry (the fixed-size encoding of
//! [`pkms_protocol::access::AuditEntry`], id = the sequence number) and the signed checkpoint
//! behind the oldest entry still held.

use serde::{Deserialize, Serialize};

use super::RecordId;
use crate::crypto::signing::MAX_DER_SIGNATURE;

/// The signed checkpoint behind the oldest held entry.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct BaseRecord {
    /// [`super::FORMAT`].
    pub format: u8,
    /// Sequence number of the last dropped entry.
    pub sequence: u64,
    /// Its hash.
    pub hash: [u8; 32],
    /// Signature over [`pkms_protocol::access::checkpoint_digest`]`(sequence, hash)`.
    pub signature: heapless::Vec<u8, MAX_DER_SIGNATURE>,
}

/// Counts of requests answered outside a session that are not in the log yet, kept on flash
/// once a failed PIN or PUK check is among them (so pulling the plug does not hide failed
/// tries); removed once they are written.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PendingCountsRecord {
    /// [`super::FORMAT`].
    pub format: u8,
    /// The sequence number the entry of these counts gets (the log's head + 1 when counting
    /// began): if the log already holds that entry, the counts were written.
    pub sequence: u64,
    /// The counts, as [`pkms_protocol::access::UnauthenticatedRequests::encode`] writes them.
    pub counts: [u8; 16],
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
