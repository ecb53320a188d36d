//! What key policies and grants keep: one access record per key (its policy and grants).

use pkms_protocol::access::MAX_GRANTS;
use serde::{Deserialize, Serialize};

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
    /// [`super::FORMAT`].
    pub format: u8,
    /// The encoded [`pkms_protocol::access::Policy`].
    pub policy: &'a [u8],
    /// Grants.
    #[serde(borrow)]
    pub grants: heapless::Vec<GrantRecord<'a>, MAX_GRANTS>,
}
