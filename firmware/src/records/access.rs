//! What key policies and grants keep: one access record per key (its policy and grants).
//!
//! Format 2 ([`ACCESS_FORMAT`]) names principals by reference (`#` and the principal's random
//! id, [`super::PrincipalRef`]); format 1 named them by name, and the token converts such records
//! when it mounts (`auth::migrate`).

use pkms_protocol::access::MAX_GRANTS;
use serde::{Deserialize, Serialize};

/// Format byte of access records whose policies and grants name principals by reference.
pub const ACCESS_FORMAT: u8 = 2;

/// One grant on a key.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord<'a> {
    /// GrantId (random).
    pub id: [u8; 16],
    /// Name.
    pub name: &'a str,
    /// GranteePrincipal (a principal reference).
    pub grantee: &'a str,
    /// Who created it (a principal reference; empty: made on an open token).
    pub issuer: &'a str,
    /// Action bits.
    pub operations: u64,
    /// Encoded [`pkms_protocol::access::Condition`], empty for none.
    pub constraint: &'a [u8],
    /// CreationDate.
    pub created: u64,
}

/// A key's access record: its policy (compact form, principals by reference) and grants. Both
/// share one store record, so together they must fit in one 4 KiB page; else CreateGrant /
/// PutKeyPolicy answer LimitExceeded.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord<'a> {
    /// [`ACCESS_FORMAT`].
    pub format: u8,
    /// The encoded [`pkms_protocol::access::Policy`].
    pub policy: &'a [u8],
    /// Grants.
    #[serde(borrow)]
    pub grants: heapless::Vec<GrantRecord<'a>, MAX_GRANTS>,
}
