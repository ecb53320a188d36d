//! Key policies: whether a principal may do an action on a key ([`allowed`], asked by
//! [`crate::gate`]), and GetKeyPolicy / PutKeyPolicy. A key without an access record (kind
//! [`Kind::Access`]) has the default policy: administrators may do everything. A key created by
//! a non-administrator gets a record naming its creator too.
//!
//! Evaluation: an explicit Deny that matches beats everything; otherwise a matching Allow, or
//! a grant to the principal naming the action (with its constraint met), allows; otherwise
//! AccessDenied.

pub mod grants;

use pkms_protocol::access::{default_policy, Condition, Decision, Policy, Role};
use pkms_protocol::context::ContextPair;
use pkms_protocol::{reply, request, Action, KeyId, Response};

use crate::caller::Caller;
use crate::err;
use crate::error::{Error, OpResult};
use crate::key::Named;
use crate::ops::Buffers;
use crate::platform::Platform;
use crate::records::{AccessRecord, Kind, FORMAT};
use crate::state::Core;

/// AccessDenied unless the key's policy or grants let `name` (with `role`) do `action` with
/// `context`. `scratch` holds the access record while it is evaluated.
pub fn check_key<P: Platform>(
    core: &mut Core<P>,
    scratch: &mut [u8],
    name: &str,
    role: Role,
    id: &KeyId,
    action: Action,
    context: &[ContextPair<'_>],
) -> OpResult<()> {
    if allowed(core, scratch, name, role, id, action, context)? {
        return Ok(());
    }
    Err(err!(AccessDenied, "{} is not allowed {} on key {} (key policy and grants)", name, action.name(), id))
}

/// Whether the key's policy or grants allow the action.
pub fn allowed<P: Platform>(
    core: &mut Core<P>,
    scratch: &mut [u8],
    name: &str,
    role: Role,
    id: &KeyId,
    action: Action,
    context: &[ContextPair<'_>],
) -> OpResult<bool> {
    let Some(rec) = read_access(core, id, scratch)? else {
        return Ok(role == Role::Admin);
    };
    let policy = Policy::decode(rec.policy).ok_or_else(|| corrupt(id))?;
    let act = action.bit();
    match policy.decide(name, role == Role::Admin, act, context) {
        Decision::Deny => Ok(false),
        Decision::Allow => Ok(true),
        Decision::NoMatch => Ok(rec.grants.iter().any(|g| {
            g.grantee == name
                && g.operations & act != 0
                && (g.constraint.is_empty()
                    || postcard::from_bytes::<Condition<'_>>(g.constraint).is_ok_and(|c| c.matches(context)))
        })),
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
    core.read_into::<AccessRecord<'b>>(&id.0, buf).map_err(|e| match e.code {
        pkms_protocol::ErrorCode::StorageCorrupted => corrupt(id),
        _ => e,
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

/// GetKeyPolicy.
pub fn get_key_policy<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
) -> OpResult<Response<'b>> {
    let id = existing_key(core, key)?;
    let n = match read_access(core, &id, &mut bufs.work)? {
        Some(rec) => {
            let n = rec.policy.len().min(bufs.out.len());
            bufs.out[..n].copy_from_slice(&rec.policy[..n]);
            n
        }
        None => default_policy(None, &mut bufs.out)
            .ok_or_else(|| err!(Internal, "cannot encode the default policy"))?,
    };
    Ok(Response::KeyPolicy(reply::KeyPolicy { key_id: id, policy: &bufs.out[..n] }))
}

/// PutKeyPolicy: the policy must decode, and must still let the caller put a policy (KMS's
/// lockout safety check), else MalformedPolicyDocument.
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
    if caller.initialized()
        && p.decide(caller.name(), caller.is_admin(), Action::PutKeyPolicy.bit(), &[]) != Decision::Allow
    {
        return Err(err!(
            MalformedPolicyDocument,
            "the policy would not let you ({}) change it again: refused as a lockout",
            caller.name()
        ));
    }
    let grants = match read_access(core, &id, &mut bufs.work)? {
        Some(old) => old.grants,
        None => heapless::Vec::new(),
    };
    core.write(&id.0, &AccessRecord { format: FORMAT, policy: r.policy, grants })?;
    Ok(Response::Done(reply::Done {}))
}

/// After CreateKey by a non-administrator: a policy naming the creator too.
pub fn record_creator<P: Platform>(
    core: &mut Core<P>,
    scratch: &mut [u8],
    id: &KeyId,
    creator: &str,
) -> OpResult<()> {
    let n = default_policy(Some(creator), scratch).ok_or_else(|| err!(Internal, "cannot encode policy"))?;
    let rec = AccessRecord { format: FORMAT, policy: &scratch[..n], grants: heapless::Vec::new() };
    core.write(&id.0, &rec)
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
