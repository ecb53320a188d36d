//! Key policies: whether a principal may do an action on a key ([`allowed`], asked by
//! [`crate::gate`]), and GetKeyPolicy / PutKeyPolicy. A key without an access record (kind
//! [`Kind::Access`]) has the default policy: administrators may do everything. A key created by
//! a non-administrator gets a record naming its creator too.
//!
//! Evaluation: an explicit Deny that matches beats everything; otherwise a matching Allow, or
//! a grant to the principal naming the action (with its constraint met), allows; otherwise
//! AccessDenied. For CreateGrant, conditions see the new grant's constraint pairs, a
//! `kms:GrantOperations` limit its operations, and a grant the caller holds allows only a new
//! grant within it (a subset of its operations, a constraint at least as strict).
//!
//! Stored policies and grants name principals by reference ([`principals`]): a principal deleted
//! and created again under the same name is not named by them.

pub mod grants;
pub mod principals;

use pkms_protocol::access::{
    constraint_within, default_policy, Condition, Decision, Policy, MAX_POLICY_BYTES,
};
use pkms_protocol::context::ContextPair;
use pkms_protocol::{reply, request, Action, KeyId, Response};

use crate::caller::Caller;
use crate::err;
use crate::error::{Error, OpResult};
use crate::key::Named;
use crate::ops::Buffers;
use crate::platform::Platform;
use crate::records::{AccessRecord, GrantRecord, Kind, ACCESS_FORMAT};
use crate::state::Core;
use principals::{Principals, Unknown};

/// Largest policy the token stores: principal references (17 bytes) may be longer than the
/// names they replace, up to 16 bytes more for each of the at most 64 principal entries.
pub const MAX_STORED_POLICY_BYTES: usize = MAX_POLICY_BYTES + 64 * 16;

/// The grant a CreateGrant asks for: what a grant the caller holds must cover (KMS's rule for
/// grants made under a grant), and what a `kms:GrantOperations` limit is checked against.
#[derive(Debug, Clone, Copy)]
pub struct NewGrant<'r> {
    /// Its operations.
    pub operations: u64,
    /// Its constraint.
    pub constraint: Option<&'r Condition<'r>>,
}

/// AccessDenied unless the key's policy or grants let the caller (`reference`, `is_admin`; its
/// `name` for the message) do `action` with `context`; `new_grant` is the grant a CreateGrant
/// asks for. `scratch` holds the access record while it is evaluated.
#[allow(clippy::too_many_arguments)]
pub fn check_key<P: Platform>(
    core: &mut Core<P>,
    scratch: &mut [u8],
    caller: Caller<'_>,
    id: &KeyId,
    action: Action,
    context: &[ContextPair<'_>],
    new_grant: Option<NewGrant<'_>>,
) -> OpResult<()> {
    let reference = caller.reference();
    let who = reference.as_ref().map_or("", |r| r.as_str());
    if allowed(core, scratch, who, caller.is_admin(), id, action, context, new_grant)? {
        return Ok(());
    }
    let name = caller.name();
    match new_grant {
        Some(_) => Err(err!(
            AccessDenied,
            "{} may not grant these operations with this constraint on key {} (a grant made under a grant carries a subset of its operations and a constraint at least as strict)",
            name,
            id
        )),
        None => Err(err!(
            AccessDenied,
            "{} is not allowed {} on key {} (key policy and grants)",
            name,
            action.name(),
            id
        )),
    }
}

/// Whether the key's policy or grants allow principal `reference` (an administrator if
/// `is_admin`) the action. For CreateGrant (`new_grant`), a grant the caller holds allows only
/// a new grant with a subset of its operations and a constraint at least as strict as its own.
#[allow(clippy::too_many_arguments)]
pub fn allowed<P: Platform>(
    core: &mut Core<P>,
    scratch: &mut [u8],
    reference: &str,
    is_admin: bool,
    id: &KeyId,
    action: Action,
    context: &[ContextPair<'_>],
    new_grant: Option<NewGrant<'_>>,
) -> OpResult<bool> {
    let Some(rec) = read_access(core, id, scratch)? else {
        return Ok(is_admin);
    };
    let policy = Policy::decode_within(rec.policy, MAX_STORED_POLICY_BYTES).ok_or_else(|| corrupt(id))?;
    let act = action.bit();
    let operations = new_grant.map_or(0, |g| g.operations);
    match policy.decide_grant(reference, is_admin, act, context, operations) {
        Decision::Deny => Ok(false),
        Decision::Allow => Ok(true),
        Decision::NoMatch => Ok(rec.grants.iter().any(|g| {
            !reference.is_empty()
                && g.grantee == reference
                && g.operations & act != 0
                && grant_allows(g, context, new_grant)
        })),
    }
}

/// Whether grant `g` (which names the action) allows the request: its constraint holds for the
/// request's context; for CreateGrant, the new grant is within it.
fn grant_allows(g: &GrantRecord<'_>, context: &[ContextPair<'_>], new_grant: Option<NewGrant<'_>>) -> bool {
    let constraint = if g.constraint.is_empty() {
        None
    } else {
        match postcard::from_bytes::<Condition<'_>>(g.constraint) {
            Ok(c) => Some(c),
            Err(_) => return false,
        }
    };
    match new_grant {
        Some(n) => n.operations & !g.operations == 0 && constraint_within(n.constraint, constraint.as_ref()),
        None => constraint.is_none_or(|c| c.matches(context)),
    }
}

fn corrupt(id: &KeyId) -> Error {
    err!(StorageCorrupted, "the access record of key {} cannot be read", id)
}

/// Reads key `id`'s access record into `buf` (`None`: default policy, no grants).
pub fn read_access<'b, P: Platform>(
    core: &mut Core<P>,
    id: &KeyId,
    buf: &'b mut [u8],
) -> OpResult<Option<AccessRecord<'b>>> {
    core.read_into::<AccessRecord<'b>>(&id.0, buf).map_err(|e| {
        if e.code == pkms_protocol::ErrorCode::StorageCorrupted {
            corrupt(id)
        } else {
            e
        }
    })
}

/// The key a resolved reference names, which must exist.
fn existing_key<P: Platform>(core: &Core<P>, key: Named<'_>) -> OpResult<KeyId> {
    let id = core.key_id(key)?;
    if !core.contains(Kind::Key, &id.0) {
        return Err(err!(NotFound, "key {} does not exist", id));
    }
    Ok(id)
}

/// GetKeyPolicy: the stored policy with principal references turned back into names (a
/// reference whose principal was deleted is shown as it is, `#` and 16 hex digits).
pub fn get_key_policy<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
) -> OpResult<Response<'b>> {
    let id = existing_key(core, key)?;
    let principals = Principals::load(core)?;
    let n = match read_access(core, &id, &mut bufs.work)? {
        Some(rec) => {
            let p = Policy::decode_within(rec.policy, MAX_STORED_POLICY_BYTES).ok_or_else(|| corrupt(&id))?;
            principals.name_policy(&p, &mut bufs.out)?
        }
        None => default_policy(None, &mut bufs.out)
            .ok_or_else(|| err!(Internal, "cannot encode the default policy"))?,
    };
    Ok(Response::KeyPolicy(reply::KeyPolicy { key_id: id, policy: &bufs.out[..n] }))
}

/// PutKeyPolicy: the policy must decode and name only principals that exist (or `role/admin`,
/// `*`), and must still let the caller put a policy (KMS's lockout safety check), else
/// MalformedPolicyDocument. On an open token the caller is the administrator-to-be: the policy
/// must let administrators put a policy, and cannot name principals (there are none yet).
pub fn put_key_policy<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    caller: Caller<'_>,
    key: Named<'_>,
    r: &request::PutKeyPolicy<'_>,
) -> OpResult<Response<'b>> {
    let id = existing_key(core, key)?;
    let Some(p) = Policy::decode(r.policy) else {
        return Err(err!(MalformedPolicyDocument, "the policy is not a valid Pocket KMS policy"));
    };
    let principals = Principals::load(core)?;
    let n = principals.stored_policy(&p, Unknown::Refuse, &mut bufs.out[..MAX_STORED_POLICY_BYTES])?;
    let stored = &bufs.out[..n];
    let policy = Policy::decode_within(stored, MAX_STORED_POLICY_BYTES)
        .ok_or_else(|| err!(Internal, "the stored form of the policy does not decode"))?;
    let reference = caller.reference();
    let who = reference.as_ref().map_or("", |r| r.as_str());
    // An open token: the administrator init will create must still be able to change it.
    let is_admin = caller.is_admin() || !caller.initialized();
    if policy.decide(who, is_admin, Action::PutKeyPolicy.bit(), &[]) != Decision::Allow {
        let you = if caller.initialized() { caller.name() } else { "the administrator" };
        return Err(err!(
            MalformedPolicyDocument,
            "the policy would not let {} change it again: refused as a lockout",
            you
        ));
    }
    let grants = match read_access(core, &id, &mut bufs.work)? {
        Some(old) => old.grants,
        None => heapless::Vec::new(),
    };
    core.write(&id.0, &AccessRecord { format: ACCESS_FORMAT, policy: stored, grants })?;
    Ok(Response::Done(reply::Done {}))
}

/// After CreateKey by a non-administrator: a policy naming the creator (`creator`, a principal
/// reference) too.
pub fn record_creator<P: Platform>(
    core: &mut Core<P>,
    scratch: &mut [u8],
    id: &KeyId,
    creator: &str,
) -> OpResult<()> {
    let n = default_policy(Some(creator), scratch).ok_or_else(|| err!(Internal, "cannot encode policy"))?;
    let rec = AccessRecord { format: ACCESS_FORMAT, policy: &scratch[..n], grants: heapless::Vec::new() };
    core.write(&id.0, &rec)
}

/// Converts access records written before principals had ids (format 1, principals by name)
/// into references to the principals of those names, a name that names no principal into
/// [`principals::NO_ONE`]. Runs at mount, after every principal has an id; each record is one
/// atomic write and a converted record is not converted again, so a power cut anywhere leaves
/// records that the next mount finishes.
pub fn migrate<P: Platform>(core: &mut Core<P>, bufs: &mut Buffers) -> OpResult<()> {
    let mut principals: Option<Principals> = None;
    let mut i = 0;
    while let Some(id) = core.entries(Kind::Access).get(i).map(|e| e.id) {
        i += 1;
        let Buffers { out, work, .. } = &mut *bufs;
        let Some(rec) = core.read_into::<AccessRecord<'_>>(&id, work)? else { continue };
        if rec.format != 1 {
            continue;
        }
        if principals.is_none() {
            principals = Some(Principals::load(core)?);
        }
        let Some(known) = principals.as_ref() else { continue };
        let policy = Policy::decode(rec.policy).ok_or_else(|| corrupt(&KeyId(id)))?;
        let n = known.stored_policy(&policy, Unknown::NoOne, out)?;
        let mut grants = heapless::Vec::new();
        for g in &rec.grants {
            let mapped = |name: &'_ str| -> &'_ str {
                match name {
                    "" => "",
                    n => known.reference_of(n).unwrap_or(principals::NO_ONE),
                }
            };
            let _ = grants.push(GrantRecord {
                grantee: mapped(g.grantee),
                issuer: mapped(g.issuer),
                ..g.clone()
            });
        }
        core.write(&id, &AccessRecord { format: ACCESS_FORMAT, policy: &out[..n], grants })?;
    }
    Ok(())
}

/// Drops access records of keys that no longer exist (a key deleted after its window).
pub fn drop_orphans<P: Platform>(core: &mut Core<P>) {
    let mut i = 0;
    while let Some(id) = core.entries(Kind::Access).get(i).map(|e| e.id) {
        if core.contains(Kind::Key, &id) || core.remove(Kind::Access, &id).is_err() {
            i += 1;
        }
    }
}

crate::dispatch::handle! {
    request::GetKeyPolicy<'_> => |_r, cx| get_key_policy(cx.core, cx.bufs, cx.admitted.key());
    request::PutKeyPolicy<'_> => |r, cx| put_key_policy(cx.core, cx.bufs, cx.auth.caller(), cx.admitted.key(), r);
}
