//! Key policies: which principal may do which action on which key ([`authorize`]), and
//! GetKeyPolicy / PutKeyPolicy. A key without an access record (kind
//! [`KIND_ACCESS`](crate::auth::records::KIND_ACCESS)) has the default policy: administrators
//! may do everything. A key created by a non-administrator gets a record naming its creator too.
//!
//! Evaluation: an explicit Deny that matches beats everything; otherwise a matching Allow, or
//! a grant to the principal naming the action (with its constraint met), allows; otherwise
//! AccessDenied.

pub mod grants;

use embedded_storage::nor_flash::NorFlash;
use pkms_protocol::access::{action, default_policy, Condition, Decision, Policy, Role};
use pkms_protocol::context::ContextPair;
use pkms_protocol::messages::{Request, Response};
use pkms_protocol::KeyId;
use rand_core::{CryptoRng, RngCore};

use crate::auth::records::{AccessRecord, FORMAT, KIND_ACCESS};
use crate::auth::{Admitted, Guard};
use crate::board::Board;
use crate::err;
use crate::error::{Error, OpResult};
use crate::ops::Buffers;
use crate::records::KIND_KEY;
use crate::state::Core;

/// Checks what `principal` (with `role`) asks for in `request` against the policies and grants
/// of the keys it names. Key references that do not resolve are let through: the operation
/// answers NotFound itself.
pub fn authorize<F, R, B>(
    core: &mut Core<F, R, B>,
    principal: &str,
    role: Role,
    request: &Request<'_>,
) -> OpResult<Admitted>
where
    F: NorFlash,
    R: RngCore + CryptoRng,
    B: Board,
{
    use action::*;
    let admin = role == Role::Admin;
    let check =
        |core: &mut Core<F, R, B>, key_ref: &str, act: u64, ctx: &[ContextPair<'_>]| -> OpResult<Admitted> {
            let Ok(id) = core.resolve(key_ref) else { return Ok(Admitted::default()) };
            check_key(core, principal, role, &id, act, ctx)?;
            Ok(Admitted { key_id: Some(id) })
        };
    let none: &[ContextPair<'_>] = &[];
    match request {
        Request::Hello { .. }
        | Request::GetInfo
        | Request::GenerateRandom { .. }
        | Request::CreateKey { .. }
        | Request::ListKeys { .. }
        | Request::ListAliases { .. }
        | Request::ListPrincipals
        | Request::GetAuditCheckpoint
        | Request::Authenticate { .. }
        | Request::UnblockPin { .. }
        | Request::FactoryReset { .. }
        | Request::Initialize { .. }
        | Request::RetireGrant { .. } => Ok(Admitted::default()),
        Request::CreatePrincipal { .. }
        | Request::DeletePrincipal { .. }
        | Request::ReadAuditLog { .. }
        | Request::TrimAuditLog { .. } => {
            if admin {
                Ok(Admitted::default())
            } else {
                Err(err!(AccessDenied, "only an administrator may do this"))
            }
        }
        Request::Encrypt { key_id, encryption_context, .. } => {
            check(core, key_id, ENCRYPT, encryption_context)
        }
        Request::Decrypt { ciphertext_blob, encryption_context, key_id } => {
            match pkms_protocol::blob::parse(ciphertext_blob) {
                Some(b) => {
                    let id = b.header.key_id;
                    if core.store.contains(KIND_KEY, &id.0) {
                        check_key(core, principal, role, &id, DECRYPT, encryption_context)?;
                    }
                    Ok(Admitted { key_id: Some(id) })
                }
                None => match key_id {
                    Some(k) => check(core, k, DECRYPT, encryption_context),
                    None => Ok(Admitted::default()),
                },
            }
        }
        Request::ReEncrypt {
            ciphertext_blob,
            source_encryption_context,
            destination_key_id,
            destination_encryption_context,
            ..
        } => {
            if let Some(b) = pkms_protocol::blob::parse(ciphertext_blob) {
                if core.store.contains(KIND_KEY, &b.header.key_id.0) {
                    check_key(
                        core,
                        principal,
                        role,
                        &b.header.key_id,
                        RE_ENCRYPT_FROM,
                        source_encryption_context,
                    )?;
                }
            }
            check(core, destination_key_id, RE_ENCRYPT_TO, destination_encryption_context)
        }
        Request::GenerateDataKey { key_id, encryption_context, .. } => {
            check(core, key_id, GENERATE_DATA_KEY, encryption_context)
        }
        Request::GenerateDataKeyWithoutPlaintext { key_id, encryption_context, .. } => {
            check(core, key_id, GENERATE_DATA_KEY_WITHOUT_PLAINTEXT, encryption_context)
        }
        Request::DescribeKey { key_id } => check(core, key_id, DESCRIBE_KEY, none),
        Request::EnableKeyRotation { key_id, .. } => check(core, key_id, ENABLE_KEY_ROTATION, none),
        Request::DisableKeyRotation { key_id } => check(core, key_id, DISABLE_KEY_ROTATION, none),
        Request::GetKeyRotationStatus { key_id } => check(core, key_id, GET_KEY_ROTATION_STATUS, none),
        Request::RotateKeyOnDemand { key_id } => check(core, key_id, ROTATE_KEY_ON_DEMAND, none),
        Request::ListKeyRotations { key_id, .. } => check(core, key_id, LIST_KEY_ROTATIONS, none),
        Request::RetireKeyVersions { key_id, .. } => check(core, key_id, RETIRE_KEY_VERSIONS, none),
        Request::Sign { key_id, .. } => check(core, key_id, SIGN, none),
        Request::Verify { key_id, .. } => check(core, key_id, VERIFY, none),
        Request::GetPublicKey { key_id, .. } => check(core, key_id, GET_PUBLIC_KEY, none),
        Request::GenerateMac { key_id, .. } => check(core, key_id, GENERATE_MAC, none),
        Request::VerifyMac { key_id, .. } => check(core, key_id, VERIFY_MAC, none),
        Request::EnableKey { key_id } => check(core, key_id, ENABLE_KEY, none),
        Request::DisableKey { key_id } => check(core, key_id, DISABLE_KEY, none),
        Request::ScheduleKeyDeletion { key_id, .. } => check(core, key_id, SCHEDULE_KEY_DELETION, none),
        Request::CancelKeyDeletion { key_id } => check(core, key_id, CANCEL_KEY_DELETION, none),
        Request::CreateAlias { target_key_id, .. } => check(core, target_key_id, CREATE_ALIAS, none),
        Request::UpdateAlias { alias_name, target_key_id } => {
            check(core, alias_name, UPDATE_ALIAS, none)?;
            check(core, target_key_id, UPDATE_ALIAS, none)
        }
        Request::DeleteAlias { alias_name } => check(core, alias_name, DELETE_ALIAS, none),
        Request::UpdateKeyDescription { key_id, .. } => check(core, key_id, UPDATE_KEY_DESCRIPTION, none),
        Request::TagResource { key_id, .. } => check(core, key_id, TAG_RESOURCE, none),
        Request::UntagResource { key_id, .. } => check(core, key_id, UNTAG_RESOURCE, none),
        Request::ListResourceTags { key_id } => check(core, key_id, LIST_RESOURCE_TAGS, none),
        Request::GetKeyPolicy { key_id } => check(core, key_id, GET_KEY_POLICY, none),
        Request::PutKeyPolicy { key_id, .. } => check(core, key_id, PUT_KEY_POLICY, none),
        Request::CreateGrant { key_id, .. } => check(core, key_id, CREATE_GRANT, none),
        Request::ListGrants { key_id } => check(core, key_id, LIST_GRANTS, none),
        Request::RevokeGrant { key_id, .. } => check(core, key_id, REVOKE_GRANT, none),
        // Requests added later are for administrators until they are classified here.
        #[allow(unreachable_patterns)]
        _ if admin => Ok(Admitted::default()),
        #[allow(unreachable_patterns)]
        _ => Err(err!(AccessDenied, "only an administrator may do this")),
    }
}

/// AccessDenied unless the key's policy or grants let `principal` do `act` with `ctx`.
pub fn check_key<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    principal: &str,
    role: Role,
    id: &KeyId,
    act: u64,
    ctx: &[ContextPair<'_>],
) -> OpResult<()> {
    if allowed(core, principal, role, id, act, ctx)? {
        return Ok(());
    }
    let name = pkms_protocol::access::ACTIONS.iter().find(|(_, b)| *b == act).map(|(n, _)| *n).unwrap_or("?");
    Err(err!(AccessDenied, "{} is not allowed {} on key {} (key policy and grants)", principal, name, id))
}

/// Whether the key's policy or grants allow the action.
pub fn allowed<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    principal: &str,
    role: Role,
    id: &KeyId,
    act: u64,
    ctx: &[ContextPair<'_>],
) -> OpResult<bool> {
    let Some(n) = core.store.get(KIND_ACCESS, &id.0, &mut core.io)? else {
        return Ok(role == Role::Admin);
    };
    let rec: AccessRecord<'_> = postcard::from_bytes(&core.io[..n]).map_err(|_| corrupt(id))?;
    let policy = Policy::decode(rec.policy).ok_or_else(|| corrupt(id))?;
    match policy.decide(principal, role == Role::Admin, act, ctx) {
        Decision::Deny => Ok(false),
        Decision::Allow => Ok(true),
        Decision::NoMatch => Ok(rec.grants.iter().any(|g| {
            g.grantee == principal
                && g.operations & act != 0
                && (g.constraint.is_empty()
                    || postcard::from_bytes::<Condition<'_>>(g.constraint).is_ok_and(|c| c.matches(ctx)))
        })),
    }
}

fn corrupt(id: &KeyId) -> Error {
    err!(StorageCorrupted, "the access record of key {} cannot be read", id)
}

/// Reads key `id`'s access record into `core.io` (`None`: default policy, no grants).
pub fn read_access<'c, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &'c mut Core<F, R, B>,
    id: &KeyId,
) -> OpResult<Option<AccessRecord<'c>>> {
    match core.store.get(KIND_ACCESS, &id.0, &mut core.io)? {
        Some(n) => Ok(Some(postcard::from_bytes(&core.io[..n]).map_err(|_| corrupt(id))?)),
        None => Ok(None),
    }
}

/// Encodes `rec` into `scratch` and stores it as key `id`'s access record.
pub fn write_access<F: NorFlash>(
    store: &mut crate::store::Store<F>,
    id: &KeyId,
    rec: &AccessRecord<'_>,
    scratch: &mut [u8],
) -> OpResult<()> {
    let n = postcard::to_slice(rec, scratch)
        .map_err(|_| err!(LimitExceeded, "the key's policy and grants do not fit in one record"))?
        .len();
    store.put(KIND_ACCESS, &id.0, &scratch[..n])?;
    Ok(())
}

/// The key a reference names, which must exist.
fn existing_key<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    key_ref: &str,
) -> OpResult<KeyId> {
    let id = core.resolve(key_ref)?;
    if !core.store.contains(KIND_KEY, &id.0) {
        return Err(err!(NotFound, "key {} does not exist", id));
    }
    Ok(id)
}

/// GetKeyPolicy.
pub fn get_key_policy<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &'b mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    key_ref: &str,
) -> OpResult<Response<'b>> {
    let id = existing_key(core, key_ref)?;
    let n = match read_access(core, &id)? {
        Some(rec) => {
            let n = rec.policy.len().min(bufs.a.len());
            bufs.a[..n].copy_from_slice(&rec.policy[..n]);
            n
        }
        None => default_policy(None, &mut bufs.a)
            .ok_or_else(|| err!(Internal, "cannot encode the default policy"))?,
    };
    Ok(Response::KeyPolicy { key_id: id, policy: &bufs.a[..n] })
}

/// PutKeyPolicy: the policy must decode, and must still let the caller put a policy (KMS's
/// lockout safety check), else MalformedPolicyDocument.
pub fn put_key_policy<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &'b mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    guard: &Guard,
    key_ref: &str,
    policy: &[u8],
) -> OpResult<Response<'b>> {
    let id = existing_key(core, key_ref)?;
    let Some(p) = Policy::decode(policy) else {
        return Err(err!(MalformedPolicyDocument, "the policy is not a valid Pocket KMS policy"));
    };
    if guard.initialized
        && p.decide(guard.principal(), guard.is_admin(), action::PUT_KEY_POLICY, &[]) != Decision::Allow
    {
        return Err(err!(
            MalformedPolicyDocument,
            "the policy would not let you ({}) change it again: refused as a lockout",
            guard.principal()
        ));
    }
    let Core { store, io, .. } = core;
    let grants = match store.get(KIND_ACCESS, &id.0, io)? {
        Some(n) => postcard::from_bytes::<AccessRecord<'_>>(&io[..n]).map_err(|_| corrupt(&id))?.grants,
        None => heapless::Vec::new(),
    };
    let rec = AccessRecord { format: FORMAT, policy, grants };
    write_access(store, &id, &rec, &mut bufs.b)?;
    Ok(Response::Done)
}

/// After CreateKey by a non-administrator: a policy naming the creator too.
pub fn record_creator<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    bufs: &mut Buffers,
    id: &KeyId,
    creator: &str,
) -> OpResult<()> {
    let n =
        default_policy(Some(creator), &mut bufs.aad).ok_or_else(|| err!(Internal, "cannot encode policy"))?;
    let (policy, _) = bufs.aad.split_at(n);
    let rec = AccessRecord { format: FORMAT, policy, grants: heapless::Vec::new() };
    write_access(&mut core.store, id, &rec, &mut bufs.b)
}

/// Drops access records of keys that no longer exist (a key deleted after its window).
pub fn drop_orphans<F: NorFlash, R: RngCore + CryptoRng, B: Board>(core: &mut Core<F, R, B>) {
    let mut i = 0;
    while let Some(id) = core.store.entries(KIND_ACCESS).get(i).map(|e| e.id) {
        if core.store.contains(KIND_KEY, &id) || core.store.remove(KIND_ACCESS, &id).is_err() {
            i += 1;
        }
    }
}
