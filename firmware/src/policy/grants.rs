//! Grants: CreateGrant, ListGrants, RetireGrant, RevokeGrant. A grant lets its grantee do the
//! operations it names on one key (with its encryption-context constraint met); grants are
//! kept in the key's access record, at most [`MAX_GRANTS`] per key.

use embedded_storage::nor_flash::NorFlash;
use pkms_protocol::access::{
    default_policy, valid_principal_name, Condition, GrantEntry, GRANT_OPERATIONS, MAX_CONSTRAINT_BYTES,
    MAX_GRANTS, MAX_GRANT_NAME,
};
use pkms_protocol::messages::Response;
use rand_core::{CryptoRng, RngCore};

use super::{corrupt, existing_key, write_access};
use crate::auth::records::{AccessRecord, GrantRecord, FORMAT, KIND_ACCESS};
use crate::auth::Guard;
use crate::board::Board;
use crate::err;
use crate::error::OpResult;
use crate::ops::Buffers;
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

/// CreateGrant.
#[allow(clippy::too_many_arguments)]
pub fn create<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &'b mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    guard: &Guard,
    key_ref: &str,
    grantee: &str,
    operations: u64,
    constraint: Option<&Condition<'_>>,
    name: &str,
) -> OpResult<Response<'b>> {
    let id = existing_key(core, key_ref)?;
    if !valid_principal_name(grantee) {
        return Err(err!(Validation, "GranteePrincipal must be a principal name"));
    }
    if operations == 0 || operations & !GRANT_OPERATIONS != 0 {
        return Err(err!(Validation, "Operations must name one or more KMS grant operations"));
    }
    if name.len() > MAX_GRANT_NAME {
        return Err(err!(Validation, "Name is at most {} bytes", MAX_GRANT_NAME));
    }
    // The constraint is kept encoded; bufs.marker is too small, so use the tail of bufs.a.
    let (policy_buf, rest) = bufs.a.split_at_mut(2048);
    let (constraint_buf, _) = rest.split_at_mut(MAX_CONSTRAINT_BYTES);
    let constraint_len = match constraint {
        Some(c) => postcard::to_slice(c, constraint_buf)
            .map_err(|_| {
                err!(Validation, "the grant constraints are larger than {} bytes", MAX_CONSTRAINT_BYTES)
            })?
            .len(),
        None => 0,
    };
    let mut grant_id = [0u8; 16];
    core.rng.fill_bytes(&mut grant_id);
    let now = core.now();
    let Core { store, io, .. } = core;
    let mut rec = match store.get(KIND_ACCESS, &id.0, io)? {
        Some(n) => postcard::from_bytes::<AccessRecord<'_>>(&io[..n]).map_err(|_| corrupt(&id))?,
        None => {
            let n = default_policy(None, policy_buf).ok_or_else(|| err!(Internal, "cannot encode policy"))?;
            AccessRecord { format: FORMAT, policy: &policy_buf[..n], grants: heapless::Vec::new() }
        }
    };
    rec.grants
        .push(GrantRecord {
            id: grant_id,
            name,
            grantee,
            issuer: guard.principal(),
            operations,
            constraint: &constraint_buf[..constraint_len],
            created: now,
        })
        .map_err(|_| err!(LimitExceeded, "a key holds at most {} grants", MAX_GRANTS))?;
    write_access(store, &id, &rec, &mut bufs.b)?;
    hex(&grant_id, &mut bufs.marker);
    Ok(Response::Grant { grant_id: core::str::from_utf8(&bufs.marker[..32]).unwrap_or("") })
}

/// ListGrants.
pub fn list<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &'b mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    key_ref: &str,
) -> OpResult<Response<'b>> {
    let id = existing_key(core, key_ref)?;
    let core: &'b mut Core<F, R, B> = core;
    let Core { store, io, .. } = core;
    let mut grants = heapless::Vec::new();
    let Some(n) = store.get(KIND_ACCESS, &id.0, io)? else {
        return Ok(Response::Grants { grants });
    };
    let io: &'b [u8] = &io[..n];
    let rec: AccessRecord<'b> = postcard::from_bytes(io).map_err(|_| corrupt(&id))?;
    for (i, g) in rec.grants.iter().enumerate() {
        hex(&g.id, &mut bufs.a[32 * i..32 * i + 32]);
    }
    let ids: &'b [u8] = &bufs.a[..32 * rec.grants.len()];
    for (i, g) in rec.grants.iter().enumerate() {
        let constraint = if g.constraint.is_empty() {
            None
        } else {
            Some(postcard::from_bytes::<Condition<'b>>(g.constraint).map_err(|_| corrupt(&id))?)
        };
        let _ = grants.push(GrantEntry {
            grant_id: core::str::from_utf8(&ids[32 * i..32 * i + 32]).unwrap_or(""),
            name: g.name,
            grantee: g.grantee,
            issuer: g.issuer,
            operations: g.operations,
            constraint,
            created: g.created,
        });
    }
    Ok(Response::Grants { grants })
}

/// RetireGrant (`revoke` false: by the grantee, the issuer or an administrator) and RevokeGrant
/// (`revoke` true: the gate already checked kms:RevokeGrant).
pub fn retire<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &'b mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    guard: &Guard,
    key_ref: &str,
    grant_id: &str,
    revoke: bool,
) -> OpResult<Response<'b>> {
    let id = existing_key(core, key_ref)?;
    let gid = parse_hex(grant_id).ok_or_else(|| err!(InvalidGrantId, "GrantId must be 32 hex digits"))?;
    let Core { store, io, .. } = core;
    let Some(n) = store.get(KIND_ACCESS, &id.0, io)? else {
        return Err(err!(InvalidGrantId, "key {} has no grant {}", id, grant_id));
    };
    let mut rec = postcard::from_bytes::<AccessRecord<'_>>(&io[..n]).map_err(|_| corrupt(&id))?;
    let Some(pos) = rec.grants.iter().position(|g| g.id == gid) else {
        return Err(err!(InvalidGrantId, "key {} has no grant {}", id, grant_id));
    };
    if !revoke && guard.initialized && !guard.is_admin() {
        let g = &rec.grants[pos];
        if g.grantee != guard.principal() && g.issuer != guard.principal() {
            return Err(err!(
                AccessDenied,
                "only the grantee, the issuer or an administrator may retire a grant"
            ));
        }
    }
    rec.grants.remove(pos);
    write_access(store, &id, &rec, &mut bufs.b)?;
    Ok(Response::Done)
}
