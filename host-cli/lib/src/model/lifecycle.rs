//! Key states: ScheduleKeyDeletion, CancelKeyDeletion (and EnableKey / DisableKey, which answer
//! nothing).

use pkms_protocol::{KeyId, KeyState, UnixTime};
use serde::Serialize;

use super::encoding::{date, display, key_arn};

/// ScheduleKeyDeletion's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeletionScheduled {
    /// KeyId.
    #[serde(serialize_with = "key_arn")]
    pub key_id: KeyId,
    /// DeletionDate.
    #[serde(serialize_with = "date")]
    pub deletion_date: UnixTime,
    /// KeyState (PendingDeletion).
    #[serde(serialize_with = "display")]
    pub key_state: KeyState,
    /// PendingWindowInDays.
    pub pending_window_in_days: u16,
}

/// CancelKeyDeletion's answer as KMS writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeletionCancelled {
    /// KeyId: the key, back in state Disabled.
    #[serde(serialize_with = "key_arn")]
    pub key_id: KeyId,
}

impl super::Owned for pkms_protocol::kind::DeletionScheduled {
    type Output = DeletionScheduled;
    fn own(r: pkms_protocol::reply::DeletionScheduled) -> DeletionScheduled {
        DeletionScheduled {
            key_id: r.key_id,
            deletion_date: r.deletion_date,
            key_state: r.key_state,
            pending_window_in_days: r.pending_window_in_days,
        }
    }
}

impl super::Owned for pkms_protocol::kind::DeletionCancelled {
    /// The key id.
    type Output = pkms_protocol::KeyId;
    fn own(r: pkms_protocol::reply::DeletionCancelled) -> pkms_protocol::KeyId {
        r.key_id
    }
}
