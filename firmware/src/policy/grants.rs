//! Grants: CreateGrant, ListGrants, RetireGrant, RevokeGrant. A grant lets its grantee do the
//! operations it names on one key (with its encryption-context constraint met); grants are
//! kept in the key's access record, at most [`MAX_GRANTS`] per key.

use pkms_protocol::access::{
    default_policy, valid_principal_name, Condition, GrantEntry, GRANT_OPERATIONS, MAX_CONSTRAINT_BYTES,
    MAX_GRANTS, MAX_GRANT_NAME, MAX_PRINCIPAL_NAME,
};
use pkms_protocol::{reply, request, Response};
use rand_core::RngCore;

use super::principals::Principals;
use super::{corrupt, existing_key, read_access};
use crate::caller::Caller;
use crate::err;
use crate::error::OpResult;
use crate::key::Named;
use crate::ops::Buffers;
use crate::platform::Platform;
use crate::records::{AccessRecord, GrantRecord, ACCESS_FORMAT};
use crate::state::Core;

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex(id: &[u8; 16], out: &mut [u8]) {
    for (i, b) in id.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 15) as usize];
    }
}

fn parse_hex(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut id = [0u8; 16];
    for i in 0..16 {
        id[i] = nib(b[2 * i])? << 4 | nib(b[2 * i + 1])?;
    }
    Some(id)
}

/// CreateGrant: the grantee must be a principal that exists; the grant names it (and its
/// issuer) by reference. Whether the caller may make this grant the gate decided
/// ([`super::check_key`] with the [`super::NewGrant`]).
pub fn create<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    caller: Caller<'_>,
    key: Named<'_>,
    r: &request::CreateGrant<'_>,
) -> OpResult<Response<'b>> {
    let id = existing_key(core, key)?;
    if !valid_principal_name(r.grantee) {
        return Err(err!(Validation, "GranteePrincipal must be a principal name"));
    }
    if r.operations == 0 || r.operations & !GRANT_OPERATIONS != 0 {
        return Err(err!(Validation, "Operations must name one or more KMS grant operations"));
    }
    if r.name.len() > MAX_GRANT_NAME {
        return Err(err!(Validation, "Name is at most {} bytes", MAX_GRANT_NAME));
    }
    let principals = Principals::load(core)?;
    let grantee = principals
        .reference_of(r.grantee)
        .ok_or_else(|| err!(NotFound, "principal {} does not exist", r.grantee))?;
    let issuer = caller.reference();
    // The constraint is kept encoded, in the tail of bufs.out; the default policy before it.
    let (policy_buf, rest) = bufs.out.split_at_mut(2048);
    let (constraint_buf, _) = rest.split_at_mut(MAX_CONSTRAINT_BYTES);
    let constraint_len = match &r.constraint {
        Some(c) => postcard::to_slice(c, constraint_buf)
            .map_err(|_| {
                err!(Validation, "the grant constraints are larger than {} bytes", MAX_CONSTRAINT_BYTES)
            })?
            .len(),
        None => 0,
    };
    let mut grant_id = [0u8; 16];
    core.rng().fill_bytes(&mut grant_id);
    let now = core.now();
    let mut rec = match read_access(core, &id, &mut bufs.work)? {
        Some(rec) => rec,
        None => {
            let n = default_policy(None, policy_buf).ok_or_else(|| err!(Internal, "cannot encode policy"))?;
            AccessRecord { format: ACCESS_FORMAT, policy: &policy_buf[..n], grants: heapless::Vec::new() }
        }
    };
    rec.grants
        .push(GrantRecord {
            id: grant_id,
            name: r.name,
            grantee,
            issuer: issuer.as_ref().map_or("", |i| i.as_str()),
            operations: r.operations,
            constraint: &constraint_buf[..constraint_len],
            created: now,
        })
        .map_err(|_| err!(LimitExceeded, "a key holds at most {} grants", MAX_GRANTS))?;
    core.write(&id.0, &rec)?;
    hex(&grant_id, &mut bufs.marker);
    Ok(Response::Grant(reply::Grant { grant_id: core::str::from_utf8(&bufs.marker[..32]).unwrap_or("") }))
}

/// ListGrants: grantees and issuers by name (a deleted principal's reference as it is).
pub fn list<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
) -> OpResult<Response<'b>> {
    let id = existing_key(core, key)?;
    let principals = Principals::load(core)?;
    let mut grants = heapless::Vec::new();
    let Buffers { out, work, .. } = bufs;
    let Some(rec) = read_access(core, &id, work)? else {
        return Ok(Response::Grants(reply::Grants { grants }));
    };
    // out: the grant ids (32 hex digits each), then each grant's grantee and issuer names.
    const NAMES_AT: usize = 32 * MAX_GRANTS;
    const NAME_SLOT: usize = MAX_PRINCIPAL_NAME;
    for (i, g) in rec.grants.iter().enumerate() {
        hex(&g.id, &mut out[32 * i..32 * i + 32]);
        for (j, reference) in [g.grantee, g.issuer].into_iter().enumerate() {
            let name = principals.name_of(reference).as_bytes();
            let at = NAMES_AT + (2 * i + j) * NAME_SLOT;
            let n = name.len().min(NAME_SLOT);
            out[at..at + n].copy_from_slice(&name[..n]);
            out[at + n..at + NAME_SLOT].fill(0);
        }
    }
    let out: &'b [u8] = out;
    let name = |i: usize, j: usize| -> &'b str {
        let at = NAMES_AT + (2 * i + j) * NAME_SLOT;
        let slot = &out[at..at + NAME_SLOT];
        let n = slot.iter().position(|b| *b == 0).unwrap_or(NAME_SLOT);
        core::str::from_utf8(&slot[..n]).unwrap_or("")
    };
    for (i, g) in rec.grants.iter().enumerate() {
        let constraint = if g.constraint.is_empty() {
            None
        } else {
            Some(postcard::from_bytes::<Condition<'b>>(g.constraint).map_err(|_| corrupt(&id))?)
        };
        let _ = grants.push(GrantEntry {
            grant_id: core::str::from_utf8(&out[32 * i..32 * i + 32]).unwrap_or(""),
            name: g.name,
            grantee: name(i, 0),
            issuer: name(i, 1),
            operations: g.operations,
            constraint,
            created: g.created,
        });
    }
    Ok(Response::Grants(reply::Grants { grants }))
}

/// RetireGrant (`revoke` false: by the grantee, the issuer or an administrator) and RevokeGrant
/// (`revoke` true: the gate already checked kms:RevokeGrant).
pub fn retire<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    caller: Caller<'_>,
    key: Named<'_>,
    grant_id: &str,
    revoke: bool,
) -> OpResult<Response<'b>> {
    let id = existing_key(core, key)?;
    let gid = parse_hex(grant_id).ok_or_else(|| err!(InvalidGrantId, "GrantId must be 32 hex digits"))?;
    let Some(mut rec) = read_access(core, &id, &mut bufs.work)? else {
        return Err(err!(InvalidGrantId, "key {} has no grant {}", id, grant_id));
    };
    let Some(pos) = rec.grants.iter().position(|g| g.id == gid) else {
        return Err(err!(InvalidGrantId, "key {} has no grant {}", id, grant_id));
    };
    if !revoke && caller.initialized() && !caller.is_admin() {
        let g = &rec.grants[pos];
        let me = caller.reference();
        let me = me.as_ref().map_or("", |r| r.as_str());
        if me.is_empty() || (g.grantee != me && g.issuer != me) {
            return Err(err!(
                AccessDenied,
                "only the grantee, the issuer or an administrator may retire a grant"
            ));
        }
    }
    rec.grants.remove(pos);
    core.write(&id.0, &rec)?;
    Ok(Response::Done(reply::Done {}))
}

/// Retires every grant whose grantee is the principal `reference` (DeletePrincipal: a deleted
/// principal's grants go with it, on every key). One atomic write per access record changed;
/// a cut in between leaves some grants, and repeating the deletion retires the rest.
pub fn retire_grants_of<P: Platform>(core: &mut Core<P>, work: &mut [u8], reference: &str) -> OpResult<()> {
    let mut i = 0;
    while let Some(id) = core.entries(crate::records::Kind::Access).get(i).map(|e| e.id) {
        i += 1;
        let Some(mut rec) = core.read_into::<AccessRecord<'_>>(&id, work)? else { continue };
        let before = rec.grants.len();
        rec.grants.retain(|g| g.grantee != reference);
        if rec.grants.len() != before {
            core.write(&id, &rec)?;
        }
    }
    Ok(())
}

crate::dispatch::handle! {
    request::CreateGrant<'_> => |r, cx| create(cx.core, cx.bufs, cx.auth.caller(), cx.admitted.key(), r);
    request::ListGrants<'_> => |_r, cx| list(cx.core, cx.bufs, cx.admitted.key());
    request::RetireGrant<'_> => |r, cx| {
        let key = cx.core.resolve_ref(r.key_id);
        retire(cx.core, cx.bufs, cx.auth.caller(), key, r.grant_id, false)
    };
    request::RevokeGrant<'_> => |r, cx| retire(cx.core, cx.bufs, cx.auth.caller(), cx.admitted.key(), r.grant_id, true);
}
