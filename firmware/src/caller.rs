//! Who is asking: what the gate, the policy checks and the audit log know about the sender of
//! a request.

use pkms_protocol::access::Role;

use crate::records::{PrincipalId, PrincipalRef};

/// The sender of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'s> {
    /// An open (uninitialised) token: anyone may do anything and nothing is logged.
    Open,
    /// An initialised token, a request in the clear (outside any session).
    Outside,
    /// An initialised token, inside a session no one has authenticated in.
    Nobody,
    /// An authenticated principal.
    Principal {
        /// Its name.
        name: &'s str,
        /// Its role.
        role: Role,
        /// Its random id (what key policies and grants name).
        id: PrincipalId,
    },
}

impl Caller<'_> {
    /// The same caller without its name (to keep past the borrow of the session it came from).
    pub fn unnamed(&self) -> Caller<'static> {
        match self {
            Caller::Open => Caller::Open,
            Caller::Outside => Caller::Outside,
            Caller::Nobody => Caller::Nobody,
            Caller::Principal { role, id, .. } => Caller::Principal { name: "", role: *role, id: *id },
        }
    }

    /// The principal's name ("" when there is none).
    pub fn name(&self) -> &str {
        match self {
            Caller::Principal { name, .. } => name,
            Caller::Open | Caller::Outside | Caller::Nobody => "",
        }
    }

    /// How key policies and grants name the principal (`None` when there is none).
    pub fn reference(&self) -> Option<PrincipalRef> {
        match self {
            Caller::Principal { id, .. } => Some(id.reference()),
            Caller::Open | Caller::Outside | Caller::Nobody => None,
        }
    }

    /// Whether an administrator is asking.
    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Principal { role: Role::Admin, .. })
    }

    /// Whether the token is initialised (principals, PINs and an audit log exist).
    pub fn initialized(&self) -> bool {
        match self {
            Caller::Open => false,
            Caller::Outside | Caller::Nobody | Caller::Principal { .. } => true,
        }
    }

    /// A user (not an administrator) of an initialised token: its name and id.
    pub fn user(&self) -> Option<(&str, PrincipalId)> {
        match self {
            Caller::Principal { name, role: Role::User, id } => Some((name, *id)),
            Caller::Principal { role: Role::Admin, .. } | Caller::Open | Caller::Outside | Caller::Nobody => {
                None
            }
        }
    }
}
