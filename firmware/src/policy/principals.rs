//! Principals in stored policies and grants: the token stores principal *references* (`#` and
//! the principal's random id, [`PrincipalRef`]) where the host speaks names. PutKeyPolicy and
//! CreateGrant turn names into references ([`Principals::stored_policy`],
//! [`Principals::reference_of`]); GetKeyPolicy and ListGrants turn references back into names
//! ([`Principals::name_policy`], [`Principals::name_of`]). A reference whose principal was
//! deleted stays a reference: it matches no one, ever (a principal created again under the same
//! name has a new id).

use pkms_protocol::access::{valid_principal_name, Policy, Statement, ADMINS, ANYONE, MAX_PRINCIPALS};

use crate::err;
use crate::error::OpResult;
use crate::platform::Platform;
use crate::records::{Kind, PrincipalId, PrincipalRecord, PrincipalRef};
use crate::state::Core;

/// The reference of [`PrincipalId::NONE`], which no principal has: what a migrated name that
/// named no principal becomes.
pub const NO_ONE: &str = "#0000000000000000";

/// One principal: its name and reference.
struct Known {
    name: heapless::String<{ pkms_protocol::access::MAX_PRINCIPAL_NAME }>,
    reference: PrincipalRef,
}

/// Every principal the token holds, by name and reference.
pub struct Principals {
    known: heapless::Vec<Known, MAX_PRINCIPALS>,
}

/// What to do with a name that names no principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Refuse the policy (MalformedPolicyDocument), as KMS refuses a policy naming a principal
    /// that does not exist.
    Refuse,
    /// Replace it by [`NO_ONE`] (records written before principals had ids).
    NoOne,
}

impl Principals {
    /// Reads every principal record (those without an id yet are left out).
    pub fn load<P: Platform>(core: &mut Core<P>) -> OpResult<Principals> {
        let mut known = heapless::Vec::new();
        let mut i = 0;
        while let Some(id) = core.entries(Kind::Principal).get(i).map(|e| e.id) {
            i += 1;
            let Some(p) = core.read::<PrincipalRecord>(&id)? else { continue };
            if p.id == PrincipalId::NONE {
                continue;
            }
            let _ = known.push(Known { name: p.name.clone(), reference: p.id.reference() });
        }
        Ok(Principals { known })
    }

    /// The reference of the principal called `name`.
    pub fn reference_of(&self, name: &str) -> Option<&str> {
        self.known.iter().find(|k| k.name.as_str() == name).map(|k| k.reference.as_str())
    }

    /// The name of the principal `reference` names; the reference itself when that principal no
    /// longer exists; other strings (`role/admin`, `*`, empty) as they are.
    pub fn name_of<'a>(&'a self, reference: &'a str) -> &'a str {
        self.known.iter().find(|k| k.reference.as_str() == reference).map_or(reference, |k| k.name.as_str())
    }

    /// A principal entry of a policy as the token stores it: `role/admin`, `*` and well-formed
    /// references stay; a name becomes its principal's reference.
    fn stored<'a>(&'a self, p: &'a str, unknown: Unknown) -> OpResult<&'a str> {
        if p == ADMINS || p == ANYONE || PrincipalRef::is_reference(p) {
            return Ok(p);
        }
        match (self.reference_of(p), unknown) {
            (Some(r), _) => Ok(r),
            (None, Unknown::NoOne) => Ok(NO_ONE),
            (None, Unknown::Refuse) if valid_principal_name(p) => {
                Err(err!(MalformedPolicyDocument, "the policy names principal {}, which does not exist", p))
            }
            (None, Unknown::Refuse) => {
                Err(err!(MalformedPolicyDocument, "policy principals are principal names, role/admin or *"))
            }
        }
    }

    /// `policy` with principal names replaced by references, encoded into `out`; returns its
    /// length.
    pub fn stored_policy(&self, policy: &Policy<'_>, unknown: Unknown, out: &mut [u8]) -> OpResult<usize> {
        self.rewrite(policy, out, |p| self.stored(p, unknown))
    }

    /// `policy` (as stored) with references replaced by names, encoded into `out`; returns its
    /// length.
    pub fn name_policy(&self, policy: &Policy<'_>, out: &mut [u8]) -> OpResult<usize> {
        self.rewrite(policy, out, |p| Ok(self.name_of(p)))
    }

    fn rewrite<'a, 'p: 'a>(
        &'a self,
        policy: &Policy<'p>,
        out: &mut [u8],
        map: impl Fn(&'a str) -> OpResult<&'a str>,
    ) -> OpResult<usize> {
        let mut statements = heapless::Vec::new();
        for s in &policy.statements {
            let mut principals = heapless::Vec::new();
            for p in &s.principals {
                // Same capacity as the source statement.
                let _ = principals.push(map(p)?);
            }
            let _ = statements.push(Statement {
                effect: s.effect,
                principals,
                actions: s.actions,
                condition: s.condition.clone(),
                grant_operations: s.grant_operations,
            });
        }
        postcard::to_slice(&Policy { statements }, out)
            .map(|b| b.len())
            .map_err(|_| err!(LimitExceeded, "the policy is too large for the token to store"))
    }
}
