//! The one dispatcher: every request, admitted by the gate, goes to its handler here. The match
//! is exhaustive — no wildcard — so an operation without a handler does not compile.

use pkms_protocol::{Request, Response};

use crate::audit::Log;
use crate::auth::{self, Auth};
use crate::error::OpResult;
use crate::gate::Admitted;
use crate::ops::{self, Buffers};
use crate::platform::Platform;
use crate::policy;
use crate::state::Core;

/// Runs an admitted request.
pub fn dispatch<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    auth: &mut Auth,
    log: &mut Log,
    admitted: &Admitted<'_>,
    request: &Request<'_>,
) -> OpResult<Response<'b>> {
    use ops::*;
    let caller = auth.caller();
    match request {
        Request::Hello(r) => info::hello(r),
        Request::GetInfo(_) => info::get_info(core, auth.is_initialized()),
        Request::GenerateRandom(r) => info::generate_random(core, bufs, r),
        Request::CreateKey(r) => keys::create_key(core, bufs, caller, r),
        Request::DescribeKey(_) => keys::describe_key(core, bufs, admitted.key()),
        Request::ListKeys(r) => keys::list_keys(core, bufs, r),
        Request::Encrypt(r) => symmetric::encrypt(core, bufs, admitted.key(), r),
        Request::Decrypt(r) => symmetric::decrypt(core, bufs, admitted.blob(), r),
        Request::ReEncrypt(r) => symmetric::re_encrypt(core, bufs, admitted.blob(), admitted.second_key(), r),
        Request::GenerateDataKey(r) => {
            symmetric::generate_data_key(core, bufs, admitted.key(), r.into(), true)
        }
        Request::GenerateDataKeyWithoutPlaintext(r) => {
            symmetric::generate_data_key(core, bufs, admitted.key(), r.into(), false)
        }
        Request::EnableKeyRotation(r) => rotation::enable(core, admitted.key(), r),
        Request::DisableKeyRotation(_) => rotation::disable(core, admitted.key()),
        Request::GetKeyRotationStatus(_) => rotation::status(core, admitted.key()),
        Request::RotateKeyOnDemand(_) => rotation::rotate_on_demand(core, admitted.key()),
        Request::ListKeyRotations(r) => rotation::list(core, bufs, admitted.key(), r),
        Request::RetireKeyVersions(r) => rotation::retire(core, admitted.key(), r),
        Request::Sign(r) => signing::sign(core, bufs, admitted.key(), r),
        Request::Verify(r) => signing::verify(core, admitted.key(), r),
        Request::GetPublicKey(r) => signing::get_public_key(core, bufs, admitted.key(), r),
        Request::GenerateMac(r) => mac::generate(core, bufs, admitted.key(), r),
        Request::VerifyMac(r) => mac::verify(core, admitted.key(), r),
        Request::EnableKey(_) => lifecycle::enable(core, admitted.key()),
        Request::DisableKey(_) => lifecycle::disable(core, admitted.key()),
        Request::ScheduleKeyDeletion(r) => lifecycle::schedule_deletion(core, admitted.key(), r),
        Request::CancelKeyDeletion(_) => lifecycle::cancel_deletion(core, admitted.key()),
        Request::CreateAlias(r) => aliases::create(core, admitted.key(), r),
        Request::UpdateAlias(r) => aliases::update(core, admitted.second_key(), r),
        Request::DeleteAlias(r) => aliases::delete(core, r),
        Request::ListAliases(r) => aliases::list(core, bufs, r),
        Request::UpdateKeyDescription(r) => lifecycle::update_description(core, admitted.key(), r),
        Request::TagResource(r) => tags::tag(core, admitted.key(), r),
        Request::UntagResource(r) => tags::untag(core, admitted.key(), r),
        Request::ListResourceTags(_) => tags::list(core, bufs, admitted.key()),
        Request::Initialize(r) => {
            let answer = auth.initialize(core, r)?;
            *log = Log::mount(core);
            Ok(answer)
        }
        Request::Authenticate(r) => auth.authenticate(core, r),
        Request::CreatePrincipal(r) => auth.create_principal(core, r),
        Request::DeletePrincipal(r) => auth.delete_principal(core, r),
        Request::ListPrincipals(_) => auth::list_principals(core, bufs),
        Request::UnblockPin(r) => auth.unblock(core, r),
        Request::FactoryReset(r) => {
            let answer = auth.factory_reset(core, r)?;
            *log = Log::default();
            Ok(answer)
        }
        Request::GetAuditCheckpoint(_) => log.checkpoint(core, bufs, auth.audit_full()),
        Request::ReadAuditLog(r) => log.read(core, bufs, r.start_sequence, r.limit),
        Request::TrimAuditLog(r) => log.trim_request(core, r.through_sequence),
        Request::GetKeyPolicy(_) => policy::get_key_policy(core, bufs, admitted.key()),
        Request::PutKeyPolicy(r) => policy::put_key_policy(core, bufs, caller, admitted.key(), r),
        Request::CreateGrant(r) => policy::grants::create(core, bufs, caller, admitted.key(), r),
        Request::ListGrants(_) => policy::grants::list(core, bufs, admitted.key()),
        Request::RetireGrant(r) => {
            let key = core.resolve(r.key_id);
            policy::grants::retire(core, bufs, caller, key, r.grant_id, false)
        }
        Request::RevokeGrant(r) => {
            policy::grants::retire(core, bufs, caller, admitted.key(), r.grant_id, true)
        }
    }
}
