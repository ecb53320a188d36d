//! The token: decodes a request, lets host time advance the clock (and the token perform due
//! rotations and deletions), dispatches to the operation modules in [`crate::ops`] and encodes
//! the answer.

use embedded_storage::nor_flash::NorFlash;
use pkms_protocol::framing;
use pkms_protocol::messages::{Request, RequestFrame, Response, ResponseFrame, WireError};
use pkms_protocol::ErrorCode;
use rand_core::{CryptoRng, RngCore};

use crate::auth::{self, Guard};
use crate::board::Board;
use crate::error::{Error, OpResult};
use crate::ops::{self, Buffers};
use crate::serve::error_frame;
use crate::state::Core;
use pkms_protocol::access::{self, Role};
use pkms_protocol::KeyId;

/// The token core over a flash, an RNG and a board.
pub struct Token<F, R, B> {
    core: Core<F, R, B>,
    bufs: Buffers,
    guard: Guard,
}

impl<F, R, B> Token<F, R, B>
where
    F: NorFlash,
    R: RngCore + CryptoRng,
    B: Board,
{
    /// Mounts the store on `flash` (formatting an erased flash) and returns a ready token.
    /// Never panics: on a damaged or foreign flash the token still answers Hello and GetInfo,
    /// and key operations answer StorageCorrupted (or Internal for an unsupported geometry).
    pub fn new(flash: F, rng: R, board: B) -> Self {
        let mut core = Core::mount(flash, rng, board);
        let guard = Guard::mount(&mut core);
        crate::policy::drop_orphans(&mut core);
        Token { core, bufs: Buffers::new(), guard }
    }

    /// Handles one COBS-decoded request payload; writes the COBS-encoded response frame
    /// (with its 0x00 delimiter) into `out` and returns its length. Never panics on any input.
    pub fn handle_payload(&mut self, payload: &[u8], out: &mut [u8]) -> usize {
        let frame: RequestFrame<'_> = match framing::decode_request(payload) {
            Ok(f) => f,
            Err(_) => return error_frame(ErrorCode::MalformedFrame, "request could not be decoded", out),
        };
        self.core.board.activity(true);
        let id = frame.id;
        self.core.observe_time(frame.now);
        self.core.run_due();
        // The gate (sessions, policies, force-audit), the operation, then the audit entry,
        // written before the encoded answer is handed back.
        let operation = access::request_operation(payload).unwrap_or(u16::MAX);
        let (n, outcome, key_id, key_version) = {
            let Token { core, bufs, guard } = self;
            let admitted = guard.admit(core, &frame.request);
            let key_id = admitted.as_ref().ok().and_then(|a| a.key_id);
            let result = match admitted {
                Err(e) => Err(e),
                Ok(_) if auth::handles(&frame.request) => auth::dispatch(core, bufs, guard, &frame.request),
                Ok(_) => dispatch(core, bufs, &frame.request),
            };
            match result {
                Ok(response) => {
                    let (rid, version) = response_key(&response);
                    (encode(id, Ok(response), out), Ok(()), rid.or(key_id), version)
                }
                Err(e) => (
                    encode(id, Err(WireError { code: e.code, message: &e.message }), out),
                    Err(e.code),
                    key_id,
                    0,
                ),
            }
        };
        let n = self.after(&frame.request, operation, outcome, key_id, key_version, n, id, out);
        self.bufs.wipe();
        self.core.board.activity(false);
        n
    }

    /// After an answer was encoded: a non-administrator's new key gets a policy naming its
    /// creator, and the request's audit entry is appended. If either write fails the answer is
    /// replaced by an error (the operation may have happened, but it is not handed back
    /// unrecorded).
    #[allow(clippy::too_many_arguments)]
    fn after(
        &mut self,
        request: &Request<'_>,
        operation: u16,
        mut outcome: Result<(), ErrorCode>,
        key_id: Option<KeyId>,
        key_version: u32,
        n: usize,
        id: u32,
        out: &mut [u8],
    ) -> usize {
        let Token { core, bufs, guard } = self;
        if let (Request::CreateKey { .. }, Ok(()), Some(k), Some(s)) =
            (request, outcome, key_id, &guard.session)
        {
            if s.role == Role::User {
                if let Err(e) = crate::policy::record_creator(core, bufs, &k, s.name.as_str()) {
                    outcome = Err(e.code);
                    let n = encode(id, Err(WireError { code: e.code, message: &e.message }), out);
                    let _ = guard.record(core, operation, outcome, key_id, key_version);
                    return n;
                }
            }
        }
        match guard.record(core, operation, outcome, key_id, key_version) {
            Ok(()) => n,
            Err(e) => {
                let e = Error::format(
                    e.code,
                    format_args!(
                        "the audit log could not be written ({}); the answer is withheld",
                        e.message
                    ),
                );
                encode(id, Err(WireError { code: e.code, message: &e.message }), out)
            }
        }
    }

    /// Ends the current connection's session (boards call it when the host goes away, e.g. a
    /// USB DTR drop; a Hello does the same).
    pub fn end_connection(&mut self) {
        self.guard.session = None;
    }

    /// The flash, e.g. for tests that inspect it.
    pub fn flash(&self) -> &F {
        self.core.store.flash()
    }

    /// Stops the token and gives the flash back (e.g. to persist it or remount it).
    pub fn into_flash(self) -> F {
        let Token { core, .. } = self;
        core.store.into_flash()
    }

    /// The board.
    pub fn board_mut(&mut self) -> &mut B {
        &mut self.core.board
    }
}

/// The key id and version a response names, for its audit entry.
fn response_key(r: &Response<'_>) -> (Option<KeyId>, u32) {
    match r {
        Response::KeyMetadata(m) => (Some(m.key_id), m.current_key_version),
        Response::Encrypt { key_id, key_version, .. }
        | Response::Decrypt { key_id, key_version, .. }
        | Response::Rotated { key_id, key_version, .. }
        | Response::Sign { key_id, key_version, .. }
        | Response::Verify { key_id, key_version, .. }
        | Response::PublicKey { key_id, key_version, .. }
        | Response::Mac { key_id, key_version, .. }
        | Response::VerifyMac { key_id, key_version, .. } => (Some(*key_id), *key_version),
        Response::ReEncrypt { key_id, .. }
        | Response::DataKey { key_id, .. }
        | Response::KeyRotationStatus { key_id, .. }
        | Response::Retired { key_id, .. }
        | Response::DeletionScheduled { key_id, .. }
        | Response::DeletionCancelled { key_id }
        | Response::KeyPolicy { key_id, .. } => (Some(*key_id), 0),
        _ => (None, 0),
    }
}

fn encode(id: u32, result: Result<Response<'_>, WireError<'_>>, out: &mut [u8]) -> usize {
    match framing::encode(&ResponseFrame { id, result }, out) {
        Ok(n) => n,
        Err(_) => {
            let e = WireError { code: ErrorCode::Internal, message: "response too large for a frame" };
            framing::encode(&ResponseFrame { id, result: Err(e) }, out)
                .unwrap_or_else(|_| error_frame(ErrorCode::Internal, "response too large", out))
        }
    }
}

fn dispatch<'b, F, R, B>(
    core: &'b mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    request: &Request<'_>,
) -> OpResult<Response<'b>>
where
    F: NorFlash,
    R: RngCore + CryptoRng,
    B: Board,
{
    use ops::*;
    match request {
        Request::Hello { protocol_version } => info::hello(*protocol_version),
        Request::GetInfo => info::get_info(core),
        Request::GenerateRandom { number_of_bytes } => info::generate_random(core, bufs, *number_of_bytes),
        Request::CreateKey { key_spec, key_usage, description, tags, user_presence_required } => {
            keys::create_key(core, *key_spec, *key_usage, description, tags, *user_presence_required)
        }
        Request::DescribeKey { key_id } => keys::describe_key(core, key_id),
        Request::ListKeys { limit, marker } => keys::list_keys(core, bufs, *limit, *marker),
        Request::Encrypt { key_id, plaintext, encryption_context } => {
            symmetric::encrypt(core, bufs, key_id, plaintext, encryption_context)
        }
        Request::Decrypt { ciphertext_blob, encryption_context, key_id } => {
            symmetric::decrypt(core, bufs, ciphertext_blob, encryption_context, *key_id)
        }
        Request::ReEncrypt {
            ciphertext_blob,
            source_encryption_context,
            source_key_id,
            destination_key_id,
            destination_encryption_context,
        } => symmetric::re_encrypt(
            core,
            bufs,
            ciphertext_blob,
            source_encryption_context,
            *source_key_id,
            destination_key_id,
            destination_encryption_context,
        ),
        Request::GenerateDataKey { key_id, encryption_context, key_spec, number_of_bytes } => {
            symmetric::generate_data_key(
                core,
                bufs,
                key_id,
                encryption_context,
                *key_spec,
                *number_of_bytes,
                true,
            )
        }
        Request::GenerateDataKeyWithoutPlaintext {
            key_id,
            encryption_context,
            key_spec,
            number_of_bytes,
        } => symmetric::generate_data_key(
            core,
            bufs,
            key_id,
            encryption_context,
            *key_spec,
            *number_of_bytes,
            false,
        ),
        Request::EnableKeyRotation { key_id, rotation_period_in_days } => {
            rotation::enable(core, key_id, *rotation_period_in_days)
        }
        Request::DisableKeyRotation { key_id } => rotation::disable(core, key_id),
        Request::GetKeyRotationStatus { key_id } => rotation::status(core, key_id),
        Request::RotateKeyOnDemand { key_id } => rotation::rotate_on_demand(core, key_id),
        Request::ListKeyRotations { key_id, limit, marker } => {
            rotation::list(core, bufs, key_id, *limit, *marker)
        }
        Request::RetireKeyVersions { key_id, below_version } => {
            rotation::retire(core, key_id, *below_version)
        }
        Request::Sign { key_id, message, message_type, signing_algorithm } => {
            signing::sign(core, bufs, key_id, message, *message_type, *signing_algorithm)
        }
        Request::Verify { key_id, message, message_type, signature, signing_algorithm, key_version } => {
            signing::verify(core, key_id, message, *message_type, signature, *signing_algorithm, *key_version)
        }
        Request::GetPublicKey { key_id, key_version } => {
            signing::get_public_key(core, bufs, key_id, *key_version)
        }
        Request::GenerateMac { key_id, message, mac_algorithm } => {
            mac::generate(core, bufs, key_id, message, *mac_algorithm)
        }
        Request::VerifyMac { key_id, message, mac_algorithm, mac, key_version } => {
            mac::verify(core, key_id, message, *mac_algorithm, mac, *key_version)
        }
        Request::EnableKey { key_id } => lifecycle::enable(core, key_id),
        Request::DisableKey { key_id } => lifecycle::disable(core, key_id),
        Request::ScheduleKeyDeletion { key_id, pending_window_in_days } => {
            lifecycle::schedule_deletion(core, key_id, *pending_window_in_days)
        }
        Request::CancelKeyDeletion { key_id } => lifecycle::cancel_deletion(core, key_id),
        Request::CreateAlias { alias_name, target_key_id } => {
            aliases::create(core, alias_name, target_key_id)
        }
        Request::UpdateAlias { alias_name, target_key_id } => {
            aliases::update(core, alias_name, target_key_id)
        }
        Request::DeleteAlias { alias_name } => aliases::delete(core, alias_name),
        Request::ListAliases { key_id, limit, marker } => aliases::list(core, bufs, *key_id, *limit, *marker),
        Request::UpdateKeyDescription { key_id, description } => {
            lifecycle::update_description(core, key_id, description)
        }
        Request::TagResource { key_id, tags } => tags::tag(core, key_id, tags),
        Request::UntagResource { key_id, tag_keys } => tags::untag(core, key_id, tag_keys),
        Request::ListResourceTags { key_id } => tags::list(core, key_id),
        #[allow(unreachable_patterns)]
        _ => Err(Error::new(ErrorCode::UnsupportedOperation, "this token does not implement that operation")),
    }
}

#[cfg(test)]
mod tests;
