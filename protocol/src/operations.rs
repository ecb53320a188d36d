//! The operations: **one declaration per operation**, in two tables.
//!
//! The request table has one row per operation, in wire order. From a row follow the request
//! struct ([`request`]), its [`Request`] variant, its [`Operation`] (stable index and name), the
//! [`Action`]s a key policy or grant names for it (with their stored bits), its [`Gate`] (what
//! the token checks before running it: no session, any session, an administrator, or a policy
//! check on the keys it names, with where its key reference and encryption context live), whether
//! a full audit log stops it, and the reply type the host gets back ([`Call::Reply`]).
//!
//! ```text
//! /// Docs.
//! Name<'a> = INDEX { field: Type, … } -> ReplyKindName,
//! actions { kms:Name = BIT grant },     // `grant`: a KMS GrantOperation
//! gate |r| Gate::key(Action::Name, KeyRef::Named(r.key_id), &r.encryption_context),
//! full_log: refused;                    // or `served`
//! ```
//!
//! The reply table has one row per kind of successful answer ([`reply`], [`Response`]), with the
//! key and version its audit entry records.
//!
//! Wire form: postcard encodes a request or reply as its variant index (a varint) followed by
//! its fields in order, exactly as serde's derive encodes a struct variant — rows and fields are
//! only ever appended; `protocol/tests/fixtures/golden_frames.txt` freezes the bytes.
//! To add an operation, see docs/architecture.md.

#[macro_use]
mod macros;

use crate::access::{AuditFullMode, Condition, GrantEntry, PrincipalEntry, Role, MAX_GRANTS, MAX_PRINCIPALS};
use crate::context::{ContextPair, EncryptionContext};
use crate::limits::{MAX_ALIAS_PAGE, MAX_PAGE, MAX_TAGS_PER_KEY};
use crate::types::*;

/// What the token checks before it runs a request, on an initialised token (an open token
/// admits everything but still resolves the keys a request names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate<'r> {
    /// Answered in the clear, outside any session, even on an initialised token: what a host
    /// needs to find the token and open a session.
    Plain,
    /// Needs no authenticated principal; on an initialised token it must arrive inside an
    /// encrypted session (it carries secrets, or acts on the session itself).
    Open,
    /// Needs an authenticated session; names no key (or checks its own rights).
    Session,
    /// Needs an administrator's session.
    Admin,
    /// Needs a session whose principal the key's policy or grants allow.
    Key(KeyCheck<'r>),
    /// Two keys: ReEncrypt's source and destination, UpdateAlias's alias and new target.
    Keys(KeyCheck<'r>, KeyCheck<'r>),
}

impl<'r> Gate<'r> {
    /// One key check.
    pub const fn key(action: Action, key: KeyRef<'r>, context: &'r [ContextPair<'r>]) -> Gate<'r> {
        Gate::Key(KeyCheck { action, key, context })
    }
}

/// One policy check: `action` on the key `key` names, with the request's encryption context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCheck<'r> {
    /// The action the policy must allow.
    pub action: Action,
    /// Where the request names the key.
    pub key: KeyRef<'r>,
    /// The encryption context conditions are evaluated against.
    pub context: &'r [ContextPair<'r>],
}

/// Where a request names a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef<'r> {
    /// A key id or an alias name.
    Named(&'r str),
    /// The key a ciphertext blob's header names; when the blob cannot be parsed, the key id
    /// given beside it, if any.
    Blob {
        /// The ciphertext blob.
        blob: &'r [u8],
        /// The optional KeyId given with it.
        key_id: Option<&'r str>,
    },
}

/// A request struct that is one operation: ties it to its kind of answer, so a host can send
/// it and get back exactly its reply.
pub trait Call<'a>: Into<Request<'a>> {
    /// The operation.
    const OPERATION: Operation;
    /// What a successful answer carries (see [`ReplyKind`]).
    type Reply: ReplyKind;
}

/// A kind of successful answer ([`kind`]), independent of the buffer a decoded reply borrows
/// from: `Of<'r>` is the reply struct borrowing for `'r`.
pub trait ReplyKind {
    /// The reply struct.
    type Of<'r>: FromResponse<'r>;
}

/// A reply struct that can be taken out of a [`Response`].
pub trait FromResponse<'a>: Sized {
    /// The reply, if `r` is this kind of answer.
    fn from_response(r: Response<'a>) -> Option<Self>;
}

requests! {
    ($)
    /// Connect handshake: the host's protocol version.
    Hello = 0 {
        /// Host's [`crate::PROTOCOL_VERSION`].
        protocol_version: u16,
    } -> Hello,
    actions {  },
    gate |r| Gate::Plain,
    full_log: served;

    /// GetInfo.
    GetInfo = 1 {} -> Info,
    actions {  },
    gate |r| Gate::Plain,
    full_log: served;

    /// GenerateRandom: 1..=1024 bytes from the token's RNG.
    GenerateRandom = 2 {
        /// NumberOfBytes.
        number_of_bytes: u16,
    } -> Random,
    actions {  },
    gate |r| Gate::Session,
    full_log: refused;

    /// CreateKey.
    CreateKey<'a> = 3 {
        /// KeySpec (default SYMMETRIC_DEFAULT on the CLI).
        key_spec: KeySpec,
        /// KeyUsage; `None` takes the spec's only usage. A usage the spec does not allow is
        /// Validation.
        key_usage: Option<KeyUsage>,
        /// Description (0..=MAX_DESCRIPTION bytes).
        description: &'a str,
        /// Tags.
        #[serde(borrow)]
        tags: Tags<'a>,
        /// Beyond KMS: Sign/Decrypt need a user-presence check (button press) on the token.
        user_presence_required: bool,
    } -> KeyMetadata,
    actions {  },
    gate |r| Gate::Session,
    full_log: refused;

    /// DescribeKey.
    DescribeKey<'a> = 4 {
        /// Key id or alias.
        key_id: &'a str,
    } -> KeyMetadata,
    actions { kms:DescribeKey = 11 grant },
    gate |r| Gate::key(Action::DescribeKey, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// ListKeys.
    ListKeys<'a> = 5 {
        /// Limit (1..=1000; the token clamps pages to MAX_PAGE).
        limit: Option<u16>,
        /// Marker from a previous page's `next_marker`.
        marker: Option<&'a str>,
    } -> Keys,
    actions {  },
    gate |r| Gate::Session,
    full_log: refused;

    /// Encrypt under the key's newest version.
    Encrypt<'a> = 6 {
        /// Key id or alias.
        key_id: &'a str,
        /// Plaintext, 1..=4096 bytes.
        plaintext: &'a [u8],
        /// EncryptionContext.
        #[serde(borrow)]
        encryption_context: EncryptionContext<'a>,
    } -> Encrypt,
    actions { kms:Encrypt = 0 grant },
    gate |r| Gate::key(Action::Encrypt, KeyRef::Named(r.key_id), &r.encryption_context),
    full_log: refused;

    /// Decrypt with the key and version the blob names.
    Decrypt<'a> = 7 {
        /// CiphertextBlob.
        ciphertext_blob: &'a [u8],
        /// EncryptionContext (must equal the one given at encryption, in any order).
        #[serde(borrow)]
        encryption_context: EncryptionContext<'a>,
        /// Optional KeyId; if it names another key than the blob, IncorrectKey.
        key_id: Option<&'a str>,
    } -> Decrypt,
    actions { kms:Decrypt = 1 grant },
    gate |r| Gate::key(Action::Decrypt, KeyRef::Blob { blob: r.ciphertext_blob, key_id: r.key_id }, &r.encryption_context),
    full_log: refused;

    /// ReEncrypt inside the token: plaintext never crosses the wire.
    ReEncrypt<'a> = 8 {
        /// CiphertextBlob.
        ciphertext_blob: &'a [u8],
        /// SourceEncryptionContext.
        #[serde(borrow)]
        source_encryption_context: EncryptionContext<'a>,
        /// SourceKeyId (optional, as for Decrypt).
        source_key_id: Option<&'a str>,
        /// DestinationKeyId.
        destination_key_id: &'a str,
        /// DestinationEncryptionContext.
        #[serde(borrow)]
        destination_encryption_context: EncryptionContext<'a>,
    } -> ReEncrypt,
    actions { kms:ReEncryptFrom = 2 grant, kms:ReEncryptTo = 3 grant },
    gate |r| Gate::Keys(
                KeyCheck { action: Action::ReEncryptFrom, key: KeyRef::Blob { blob: r.ciphertext_blob, key_id: r.source_key_id }, context: &r.source_encryption_context },
                KeyCheck { action: Action::ReEncryptTo, key: KeyRef::Named(r.destination_key_id), context: &r.destination_encryption_context },
            ),
    full_log: refused;

    /// GenerateDataKey: exactly one of `key_spec` / `number_of_bytes`.
    GenerateDataKey<'a> = 9 {
        /// Key id or alias.
        key_id: &'a str,
        /// EncryptionContext.
        #[serde(borrow)]
        encryption_context: EncryptionContext<'a>,
        /// KeySpec of the data key.
        key_spec: Option<DataKeySpec>,
        /// NumberOfBytes (1..=1024).
        number_of_bytes: Option<u16>,
    } -> DataKey,
    actions { kms:GenerateDataKey = 4 grant },
    gate |r| Gate::key(Action::GenerateDataKey, KeyRef::Named(r.key_id), &r.encryption_context),
    full_log: refused;

    /// GenerateDataKeyWithoutPlaintext: as GenerateDataKey, but only the blob is returned.
    GenerateDataKeyWithoutPlaintext<'a> = 10 {
        /// Key id or alias.
        key_id: &'a str,
        /// EncryptionContext.
        #[serde(borrow)]
        encryption_context: EncryptionContext<'a>,
        /// KeySpec of the data key.
        key_spec: Option<DataKeySpec>,
        /// NumberOfBytes (1..=1024).
        number_of_bytes: Option<u16>,
    } -> DataKey,
    actions { kms:GenerateDataKeyWithoutPlaintext = 5 grant },
    gate |r| Gate::key(Action::GenerateDataKeyWithoutPlaintext, KeyRef::Named(r.key_id), &r.encryption_context),
    full_log: refused;

    /// EnableKeyRotation.
    EnableKeyRotation<'a> = 11 {
        /// Key id or alias.
        key_id: &'a str,
        /// RotationPeriodInDays (90..=2560, default 365).
        rotation_period_in_days: Option<u16>,
    } -> Done,
    actions { kms:EnableKeyRotation = 16 },
    gate |r| Gate::key(Action::EnableKeyRotation, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// DisableKeyRotation.
    DisableKeyRotation<'a> = 12 {
        /// Key id or alias.
        key_id: &'a str,
    } -> Done,
    actions { kms:DisableKeyRotation = 17 },
    gate |r| Gate::key(Action::DisableKeyRotation, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// GetKeyRotationStatus.
    GetKeyRotationStatus<'a> = 13 {
        /// Key id or alias.
        key_id: &'a str,
    } -> KeyRotationStatus,
    actions { kms:GetKeyRotationStatus = 18 },
    gate |r| Gate::key(Action::GetKeyRotationStatus, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// RotateKeyOnDemand: add a new version now.
    RotateKeyOnDemand<'a> = 14 {
        /// Key id or alias.
        key_id: &'a str,
    } -> Rotated,
    actions { kms:RotateKeyOnDemand = 19 },
    gate |r| Gate::key(Action::RotateKeyOnDemand, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// ListKeyRotations: every version still held, oldest first.
    ListKeyRotations<'a> = 15 {
        /// Key id or alias.
        key_id: &'a str,
        /// Limit.
        limit: Option<u16>,
        /// Marker.
        marker: Option<&'a str>,
    } -> Rotations,
    actions { kms:ListKeyRotations = 20 },
    gate |r| Gate::key(Action::ListKeyRotations, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// Beyond KMS: erase every version below `below_version` (crypto-erase, space reclaimed).
    RetireKeyVersions<'a> = 16 {
        /// Key id or alias.
        key_id: &'a str,
        /// Versions `< below_version` are retired; the newest version can never be retired.
        below_version: KeyVersion,
    } -> Retired,
    actions { pkms:RetireKeyVersions = 21 },
    gate |r| Gate::key(Action::RetireKeyVersions, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// Sign with the newest version of an ECC_NIST_P256 key.
    Sign<'a> = 17 {
        /// Key id or alias.
        key_id: &'a str,
        /// Message (RAW, ≤4096 bytes) or digest (DIGEST, 32 bytes).
        message: &'a [u8],
        /// MessageType.
        message_type: MessageType,
        /// SigningAlgorithm.
        signing_algorithm: SigningAlgorithm,
    } -> Sign,
    actions { kms:Sign = 6 grant },
    gate |r| Gate::key(Action::Sign, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// Verify a DER signature.
    Verify<'a> = 18 {
        /// Key id or alias.
        key_id: &'a str,
        /// Message or digest.
        message: &'a [u8],
        /// MessageType.
        message_type: MessageType,
        /// DER signature.
        signature: &'a [u8],
        /// SigningAlgorithm.
        signing_algorithm: SigningAlgorithm,
        /// Version to verify with (default newest).
        key_version: Option<KeyVersion>,
    } -> Verify,
    actions { kms:Verify = 7 grant },
    gate |r| Gate::key(Action::Verify, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// GetPublicKey: DER SubjectPublicKeyInfo.
    GetPublicKey<'a> = 19 {
        /// Key id or alias.
        key_id: &'a str,
        /// Version (default newest).
        key_version: Option<KeyVersion>,
    } -> PublicKey,
    actions { kms:GetPublicKey = 8 grant },
    gate |r| Gate::key(Action::GetPublicKey, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// GenerateMac with the newest version of an HMAC key.
    GenerateMac<'a> = 20 {
        /// Key id or alias.
        key_id: &'a str,
        /// Message (≤4096 bytes).
        message: &'a [u8],
        /// MacAlgorithm.
        mac_algorithm: MacAlgorithm,
    } -> Mac,
    actions { kms:GenerateMac = 9 grant },
    gate |r| Gate::key(Action::GenerateMac, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// VerifyMac (constant-time comparison).
    VerifyMac<'a> = 21 {
        /// Key id or alias.
        key_id: &'a str,
        /// Message.
        message: &'a [u8],
        /// MacAlgorithm.
        mac_algorithm: MacAlgorithm,
        /// The MAC to check.
        mac: &'a [u8],
        /// Version to verify with (default newest).
        key_version: Option<KeyVersion>,
    } -> VerifyMac,
    actions { kms:VerifyMac = 10 grant },
    gate |r| Gate::key(Action::VerifyMac, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// EnableKey.
    EnableKey<'a> = 22 {
        /// Key id or alias.
        key_id: &'a str,
    } -> Done,
    actions { kms:EnableKey = 12 },
    gate |r| Gate::key(Action::EnableKey, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// DisableKey.
    DisableKey<'a> = 23 {
        /// Key id or alias.
        key_id: &'a str,
    } -> Done,
    actions { kms:DisableKey = 13 },
    gate |r| Gate::key(Action::DisableKey, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// ScheduleKeyDeletion.
    ScheduleKeyDeletion<'a> = 24 {
        /// Key id or alias.
        key_id: &'a str,
        /// PendingWindowInDays (7..=30, default 30).
        pending_window_in_days: Option<u16>,
    } -> DeletionScheduled,
    actions { kms:ScheduleKeyDeletion = 14 },
    gate |r| Gate::key(Action::ScheduleKeyDeletion, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// CancelKeyDeletion: back to Disabled.
    CancelKeyDeletion<'a> = 25 {
        /// Key id or alias.
        key_id: &'a str,
    } -> DeletionCancelled,
    actions { kms:CancelKeyDeletion = 15 },
    gate |r| Gate::key(Action::CancelKeyDeletion, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// CreateAlias.
    CreateAlias<'a> = 26 {
        /// AliasName.
        alias_name: &'a str,
        /// TargetKeyId (a key id, not an alias).
        target_key_id: &'a str,
    } -> Done,
    actions { kms:CreateAlias = 22 },
    gate |r| Gate::key(Action::CreateAlias, KeyRef::Named(r.target_key_id), &[]),
    full_log: refused;

    /// UpdateAlias.
    UpdateAlias<'a> = 27 {
        /// AliasName.
        alias_name: &'a str,
        /// TargetKeyId.
        target_key_id: &'a str,
    } -> Done,
    actions { kms:UpdateAlias = 23 },
    gate |r| Gate::Keys(
                KeyCheck { action: Action::UpdateAlias, key: KeyRef::Named(r.alias_name), context: &[] },
                KeyCheck { action: Action::UpdateAlias, key: KeyRef::Named(r.target_key_id), context: &[] },
            ),
    full_log: refused;

    /// DeleteAlias.
    DeleteAlias<'a> = 28 {
        /// AliasName.
        alias_name: &'a str,
    } -> Done,
    actions { kms:DeleteAlias = 24 },
    gate |r| Gate::key(Action::DeleteAlias, KeyRef::Named(r.alias_name), &[]),
    full_log: refused;

    /// ListAliases.
    ListAliases<'a> = 29 {
        /// Only aliases of this key.
        key_id: Option<&'a str>,
        /// Limit.
        limit: Option<u16>,
        /// Marker.
        marker: Option<&'a str>,
    } -> Aliases,
    actions {  },
    gate |r| Gate::Session,
    full_log: refused;

    /// UpdateKeyDescription.
    UpdateKeyDescription<'a> = 30 {
        /// Key id or alias.
        key_id: &'a str,
        /// Description.
        description: &'a str,
    } -> Done,
    actions { kms:UpdateKeyDescription = 25 },
    gate |r| Gate::key(Action::UpdateKeyDescription, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// TagResource: add or replace tags.
    TagResource<'a> = 31 {
        /// Key id or alias.
        key_id: &'a str,
        /// Tags.
        #[serde(borrow)]
        tags: Tags<'a>,
    } -> Done,
    actions { kms:TagResource = 26 },
    gate |r| Gate::key(Action::TagResource, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// UntagResource.
    UntagResource<'a> = 32 {
        /// Key id or alias.
        key_id: &'a str,
        /// TagKeys.
        #[serde(borrow)]
        tag_keys: heapless::Vec<&'a str, MAX_TAGS_PER_KEY>,
    } -> Done,
    actions { kms:UntagResource = 27 },
    gate |r| Gate::key(Action::UntagResource, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// ListResourceTags.
    ListResourceTags<'a> = 33 {
        /// Key id or alias.
        key_id: &'a str,
    } -> Tags,
    actions { kms:ListResourceTags = 28 },
    gate |r| Gate::key(Action::ListResourceTags, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// Initialise an open token: creates the administrator `admin` with `pin`, sets the PUK
    /// (recovery secret), makes the device attestation key and starts the audit log.
    Initialize<'a> = 34 {
        /// The administrator's PIN.
        pin: &'a [u8],
        /// The PUK.
        puk: &'a [u8],
        /// What to do when the audit log is full.
        audit_full: AuditFullMode,
    } -> Done,
    actions {  },
    gate |r| Gate::Open,
    full_log: refused;

    /// Authenticate this connection's session as `principal`.
    Authenticate<'a> = 35 {
        /// Principal name.
        principal: &'a str,
        /// PIN.
        pin: &'a [u8],
    } -> Done,
    actions {  },
    gate |r| Gate::Open,
    full_log: served;

    /// Admin: create a principal.
    CreatePrincipal<'a> = 36 {
        /// Name.
        name: &'a str,
        /// PIN.
        pin: &'a [u8],
        /// Role.
        role: Role,
    } -> Done,
    actions {  },
    gate |r| Gate::Admin,
    full_log: refused;

    /// Admin: remove a principal.
    DeletePrincipal<'a> = 37 {
        /// Name.
        name: &'a str,
    } -> Done,
    actions {  },
    gate |r| Gate::Admin,
    full_log: refused;

    /// ListPrincipals.
    ListPrincipals = 38 {} -> Principals,
    actions {  },
    gate |r| Gate::Session,
    full_log: refused;

    /// Unlock a principal (and set a new PIN) with the PUK.
    UnblockPin<'a> = 39 {
        /// Principal name.
        principal: &'a str,
        /// The PUK.
        puk: &'a [u8],
        /// The new PIN.
        new_pin: &'a [u8],
    } -> Done,
    actions {  },
    gate |r| Gate::Open,
    full_log: refused;

    /// Erase every key, principal and log entry; the token is open again.
    FactoryReset<'a> = 40 {
        /// Must be [`crate::access::FACTORY_RESET_CONFIRMATION`] (so that no damaged or
        /// stray frame can erase the token).
        confirm: &'a str,
    } -> Done,
    actions {  },
    gate |r| Gate::Open,
    full_log: served;

    /// The audit log's head, signed by the device attestation key.
    GetAuditCheckpoint = 41 {} -> AuditCheckpoint,
    actions {  },
    gate |r| Gate::Session,
    full_log: served;

    /// Audit entries from `start_sequence` on (at most `limit`, clamped to MAX_AUDIT_PAGE).
    ReadAuditLog = 42 {
        /// First sequence number wanted.
        start_sequence: u64,
        /// Most entries.
        limit: u16,
    } -> AuditEntries,
    actions {  },
    gate |r| Gate::Admin,
    full_log: served;

    /// Admin: drop entries up to and including `through_sequence` (after exporting them).
    TrimAuditLog = 43 {
        /// Last sequence number to drop.
        through_sequence: u64,
    } -> Done,
    actions {  },
    gate |r| Gate::Admin,
    full_log: served;

    /// GetKeyPolicy (compact form).
    GetKeyPolicy<'a> = 44 {
        /// Key id or alias.
        key_id: &'a str,
    } -> KeyPolicy,
    actions { kms:GetKeyPolicy = 29 },
    gate |r| Gate::key(Action::GetKeyPolicy, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// PutKeyPolicy (compact form).
    PutKeyPolicy<'a> = 45 {
        /// Key id or alias.
        key_id: &'a str,
        /// postcard-encoded [`crate::access::Policy`].
        policy: &'a [u8],
    } -> Done,
    actions { kms:PutKeyPolicy = 30 },
    gate |r| Gate::key(Action::PutKeyPolicy, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// CreateGrant.
    CreateGrant<'a> = 46 {
        /// Key id or alias.
        key_id: &'a str,
        /// GranteePrincipal.
        grantee: &'a str,
        /// Operations (action bits).
        operations: u64,
        /// Constraints.
        #[serde(borrow)]
        constraint: Option<Condition<'a>>,
        /// Name.
        name: &'a str,
    } -> Grant,
    actions { kms:CreateGrant = 31 grant },
    // Conditions on the encryption context see the new grant's constraint pairs (as KMS's do).
    gate |r| Gate::key(Action::CreateGrant, KeyRef::Named(r.key_id), r.constraint.as_ref().map_or(&[], |c| c.pairs.as_slice())),
    full_log: refused;

    /// ListGrants.
    ListGrants<'a> = 47 {
        /// Key id or alias.
        key_id: &'a str,
    } -> Grants,
    actions { kms:ListGrants = 32 },
    gate |r| Gate::key(Action::ListGrants, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// RetireGrant (by the grantee, or an administrator).
    RetireGrant<'a> = 48 {
        /// Key id or alias.
        key_id: &'a str,
        /// GrantId.
        grant_id: &'a str,
    } -> Done,
    actions { kms:RetireGrant = 34 grant },
    gate |r| Gate::Session,
    full_log: refused;

    /// RevokeGrant (needs kms:RevokeGrant).
    RevokeGrant<'a> = 49 {
        /// Key id or alias.
        key_id: &'a str,
        /// GrantId.
        grant_id: &'a str,
    } -> Done,
    actions { kms:RevokeGrant = 33 },
    gate |r| Gate::key(Action::RevokeGrant, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// The token's device key, the static key of session handshakes (DER SubjectPublicKeyInfo,
    /// P-256): a host pins it on first use.
    GetDeviceKey = 50 {} -> DeviceKey,
    actions {  },
    gate |r| Gate::Plain,
    full_log: served;

    /// Opens an encrypted session: message 1 of the NK handshake ([`crate::session`]).
    OpenSession<'a> = 51 {
        /// The host's ephemeral P-256 public key (65 bytes, uncompressed SEC1).
        ephemeral: &'a [u8],
        /// EncryptAndHash of an empty payload: its 16-byte tag.
        payload: &'a [u8],
    } -> SessionOpened,
    actions {  },
    gate |r| Gate::Plain,
    full_log: served;

    /// A request inside a session: the postcard encoding of a [`crate::RequestFrame`], sealed
    /// with the session's host-to-token key.
    SessionFrame<'a> = 52 {
        /// The session.
        session_id: u32,
        /// The host's frame counter: exactly one more than the last one the token accepted.
        counter: u64,
        /// Ciphertext followed by the 16-byte tag.
        sealed: &'a [u8],
    } -> SessionFrame,
    actions {  },
    gate |r| Gate::Plain,
    full_log: served;

    /// Ends the session this request arrives in.
    CloseSession = 53 {} -> Done,
    actions {  },
    gate |r| Gate::Open,
    full_log: served;

    /// The outcome of this boot's power-on self-tests. Answered in the clear, and in the error
    /// state a failed self-test leaves, where only Hello, GetInfo and this answer.
    GetSelfTests = 54 {} -> SelfTestReport,
    actions {  },
    gate |r| Gate::Plain,
    full_log: served;

    /// Makes the token's backup key (32 random bytes, stored sealed under the device root key)
    /// and answers it once, for the host to split into SLIP-39 shares. A token that has one
    /// keeps it unless `replace` is set (older backups then need the old shares).
    BackupInit = 55 {
        /// Replace an existing backup key.
        replace: bool,
    } -> BackupSecret,
    actions {  },
    gate |r| Gate::Admin,
    full_log: refused;

    /// Starts a streamed export of everything the token holds (docs/backup.md): sealed under
    /// the backup key, or, with `peer_device_key`, wrapped to that token's device key. Answers
    /// the file's authenticated header; the chunks follow with [`request::BackupExportChunk`].
    BackupExportBegin<'a> = 56 {
        /// The recipient token's device key (DER SubjectPublicKeyInfo, P-256), for peer mode.
        peer_device_key: Option<&'a [u8]>,
    } -> BackupHeader,
    actions {  },
    gate |r| Gate::Admin,
    full_log: refused;

    /// The next sealed chunk of the export this session began.
    BackupExportChunk = 57 {} -> BackupChunk,
    actions {  },
    gate |r| Gate::Admin,
    full_log: served;

    /// Starts a restore on a fresh token: the file's header and, for a file sealed under a
    /// backup key, that key (the shares combined). Checks the header; writes nothing.
    BackupRestoreBegin<'a> = 58 {
        /// The file's header.
        header: &'a [u8],
        /// The backup key (mode 1); `None` in peer mode (the token uses its device key).
        secret: Option<&'a [u8]>,
    } -> Done,
    actions {  },
    gate |r| Gate::Admin,
    full_log: refused;

    /// The next chunk of the restore this session began. The last chunk commits the restore
    /// (atomically under power cuts); any refusal leaves the token fresh.
    BackupRestoreChunk<'a> = 59 {
        /// The sealed chunk.
        sealed: &'a [u8],
        /// Whether the file marks it as the last.
        last: bool,
    } -> BackupRestored,
    actions {  },
    gate |r| Gate::Admin,
    full_log: served;

    /// DeriveSharedSecret: ECDH between the newest version of a KEY_AGREEMENT key and a peer's
    /// public key on the same curve.
    DeriveSharedSecret<'a> = 60 {
        /// Key id or alias.
        key_id: &'a str,
        /// KeyAgreementAlgorithm.
        key_agreement_algorithm: KeyAgreementAlgorithm,
        /// PublicKey: the peer's DER SubjectPublicKeyInfo.
        public_key: &'a [u8],
    } -> SharedSecret,
    actions { kms:DeriveSharedSecret = 35 grant },
    gate |r| Gate::key(Action::DeriveSharedSecret, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// Encapsulate: a fresh shared secret and its ML-KEM ciphertext under the newest version of
    /// an ENCAPSULATE_DECAPSULATE key.
    Encapsulate<'a> = 61 {
        /// Key id or alias.
        key_id: &'a str,
        /// EncapsulationAlgorithm.
        encapsulation_algorithm: EncapsulationAlgorithm,
    } -> Encapsulated,
    actions { kms:Encapsulate = 36 grant },
    gate |r| Gate::key(Action::Encapsulate, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// Decapsulate: the shared secret of an ML-KEM ciphertext (a ciphertext of the right length
    /// made for another key gives ML-KEM's implicit-rejection secret, not an error).
    Decapsulate<'a> = 62 {
        /// Key id or alias.
        key_id: &'a str,
        /// SharedSecretCiphertextBlob.
        shared_secret_ciphertext_blob: &'a [u8],
        /// EncapsulationAlgorithm.
        encapsulation_algorithm: EncapsulationAlgorithm,
        /// Version to decapsulate with (default newest).
        key_version: Option<KeyVersion>,
    } -> Decapsulated,
    actions { kms:Decapsulate = 37 grant },
    gate |r| Gate::key(Action::Decapsulate, KeyRef::Named(r.key_id), &[]),
    full_log: refused;

    /// GenerateDataKeyPair: a fresh key pair; its PKCS#8 private key sealed under the newest
    /// version of a SYMMETRIC_DEFAULT key with the encryption context.
    GenerateDataKeyPair<'a> = 63 {
        /// Key id or alias of the symmetric key.
        key_id: &'a str,
        /// EncryptionContext.
        #[serde(borrow)]
        encryption_context: EncryptionContext<'a>,
        /// KeyPairSpec.
        key_pair_spec: DataKeyPairSpec,
    } -> DataKeyPair,
    actions { kms:GenerateDataKeyPair = 38 grant },
    gate |r| Gate::key(Action::GenerateDataKeyPair, KeyRef::Named(r.key_id), &r.encryption_context),
    full_log: refused;

    /// GenerateDataKeyPairWithoutPlaintext: as GenerateDataKeyPair, without the plaintext
    /// private key.
    GenerateDataKeyPairWithoutPlaintext<'a> = 64 {
        /// Key id or alias of the symmetric key.
        key_id: &'a str,
        /// EncryptionContext.
        #[serde(borrow)]
        encryption_context: EncryptionContext<'a>,
        /// KeyPairSpec.
        key_pair_spec: DataKeyPairSpec,
    } -> DataKeyPair,
    actions { kms:GenerateDataKeyPairWithoutPlaintext = 39 grant },
    gate |r| Gate::key(Action::GenerateDataKeyPairWithoutPlaintext, KeyRef::Named(r.key_id), &r.encryption_context),
    full_log: refused;

    /// Change the logged-in principal's own PIN: the current PIN, then the new one. A wrong
    /// current PIN spends a try, as Authenticate does.
    ChangePin<'a> = 65 {
        /// The current PIN.
        pin: &'a [u8],
        /// The new PIN.
        new_pin: &'a [u8],
    } -> Done,
    actions {  },
    gate |r| Gate::Session,
    full_log: refused;
}

replies! {
    /// Answer to Hello.
    Hello<'a> = 0 {
        /// Token's [`crate::PROTOCOL_VERSION`].
        protocol_version: u16,
        /// Firmware version.
        firmware_version: &'a str,
    },
    audit |r| (None, 0);

    /// GetInfo.
    Info<'a> = 1 {
        /// GetInfo's answer.
        #[serde(borrow)]
        info: TokenInfo<'a>,
    },
    audit |r| (None, 0);

    /// GenerateRandom.
    Random<'a> = 2 {
        /// Plaintext: the random bytes.
        plaintext: &'a [u8],
    },
    audit |r| (None, 0);

    /// CreateKey and DescribeKey.
    KeyMetadata<'a> = 3 {
        /// KeyMetadata.
        #[serde(borrow)]
        key_metadata: crate::types::KeyMetadata<'a>,
    },
    audit |r| (Some(r.key_metadata.key_id), r.key_metadata.current_key_version);

    /// ListKeys.
    Keys<'a> = 4 {
        /// Keys.
        keys: heapless::Vec<KeyId, MAX_PAGE>,
        /// NextMarker when truncated.
        next_marker: Option<&'a str>,
        /// Truncated.
        truncated: bool,
    },
    audit |r| (None, 0);

    /// Encrypt.
    Encrypt<'a> = 5 {
        /// CiphertextBlob.
        ciphertext_blob: &'a [u8],
        /// KeyId.
        key_id: KeyId,
        /// The version used (newest).
        key_version: KeyVersion,
        /// KeyMaterialId of that version.
        key_material_id: KeyMaterialId,
    },
    audit |r| (Some(r.key_id), r.key_version);

    /// Decrypt.
    Decrypt<'a> = 6 {
        /// Plaintext.
        plaintext: &'a [u8],
        /// KeyId.
        key_id: KeyId,
        /// The version the blob named.
        key_version: KeyVersion,
        /// KeyMaterialId.
        key_material_id: KeyMaterialId,
    },
    audit |r| (Some(r.key_id), r.key_version);

    /// ReEncrypt.
    ReEncrypt<'a> = 7 {
        /// CiphertextBlob under the destination key.
        ciphertext_blob: &'a [u8],
        /// SourceKeyId.
        source_key_id: KeyId,
        /// KeyId (destination).
        key_id: KeyId,
        /// SourceKeyMaterialId.
        source_key_material_id: KeyMaterialId,
        /// DestinationKeyMaterialId.
        destination_key_material_id: KeyMaterialId,
    },
    audit |r| (Some(r.key_id), 0);

    /// GenerateDataKey (plaintext present) and GenerateDataKeyWithoutPlaintext (absent).
    DataKey<'a> = 8 {
        /// CiphertextBlob.
        ciphertext_blob: &'a [u8],
        /// Plaintext data key.
        plaintext: Option<&'a [u8]>,
        /// KeyId.
        key_id: KeyId,
        /// KeyMaterialId.
        key_material_id: KeyMaterialId,
    },
    audit |r| (Some(r.key_id), 0);

    /// Operations with an empty KMS output (EnableKeyRotation, EnableKey, CreateAlias, …).
    Done = 9 {},
    audit |r| (None, 0);

    /// GetKeyRotationStatus.
    KeyRotationStatus = 10 {
        /// KeyId.
        key_id: KeyId,
        /// KeyRotationEnabled.
        key_rotation_enabled: bool,
        /// RotationPeriodInDays.
        rotation_period_in_days: Option<u16>,
        /// NextRotationDate.
        next_rotation_date: Option<UnixTime>,
        /// OnDemandRotationStartDate of the latest on-demand rotation.
        on_demand_rotation_start_date: Option<UnixTime>,
    },
    audit |r| (Some(r.key_id), 0);

    /// RotateKeyOnDemand.
    Rotated = 11 {
        /// KeyId.
        key_id: KeyId,
        /// The new version.
        key_version: KeyVersion,
        /// Its KeyMaterialId.
        key_material_id: KeyMaterialId,
    },
    audit |r| (Some(r.key_id), r.key_version);

    /// ListKeyRotations.
    Rotations<'a> = 12 {
        /// Rotations, oldest first.
        rotations: heapless::Vec<RotationsListEntry, MAX_PAGE>,
        /// NextMarker.
        next_marker: Option<&'a str>,
        /// Truncated.
        truncated: bool,
    },
    audit |r| (None, 0);

    /// RetireKeyVersions.
    Retired = 13 {
        /// KeyId.
        key_id: KeyId,
        /// How many versions were erased.
        retired_count: u32,
        /// Oldest version still held.
        oldest_key_version: KeyVersion,
    },
    audit |r| (Some(r.key_id), 0);

    /// Sign.
    Sign<'a> = 14 {
        /// KeyId.
        key_id: KeyId,
        /// DER signature (low-S).
        signature: &'a [u8],
        /// SigningAlgorithm.
        signing_algorithm: SigningAlgorithm,
        /// The version that signed.
        key_version: KeyVersion,
    },
    audit |r| (Some(r.key_id), r.key_version);

    /// Verify (a bad signature is the error InvalidSignature, as in KMS).
    Verify = 15 {
        /// KeyId.
        key_id: KeyId,
        /// SignatureValid (always true in a success).
        signature_valid: bool,
        /// SigningAlgorithm.
        signing_algorithm: SigningAlgorithm,
        /// The version used.
        key_version: KeyVersion,
    },
    audit |r| (Some(r.key_id), r.key_version);

    /// GetPublicKey.
    PublicKey<'a> = 16 {
        /// KeyId.
        key_id: KeyId,
        /// DER SubjectPublicKeyInfo.
        public_key: &'a [u8],
        /// KeySpec.
        key_spec: KeySpec,
        /// KeyUsage.
        key_usage: KeyUsage,
        /// The version whose public key this is.
        key_version: KeyVersion,
    },
    audit |r| (Some(r.key_id), r.key_version);

    /// GenerateMac.
    Mac<'a> = 17 {
        /// KeyId.
        key_id: KeyId,
        /// Mac.
        mac: &'a [u8],
        /// MacAlgorithm.
        mac_algorithm: MacAlgorithm,
        /// The version used.
        key_version: KeyVersion,
    },
    audit |r| (Some(r.key_id), r.key_version);

    /// VerifyMac (a bad MAC is the error InvalidMac, as in KMS).
    VerifyMac = 18 {
        /// KeyId.
        key_id: KeyId,
        /// MacValid (always true in a success).
        mac_valid: bool,
        /// MacAlgorithm.
        mac_algorithm: MacAlgorithm,
        /// The version used.
        key_version: KeyVersion,
    },
    audit |r| (Some(r.key_id), r.key_version);

    /// ScheduleKeyDeletion.
    DeletionScheduled = 19 {
        /// KeyId.
        key_id: KeyId,
        /// DeletionDate.
        deletion_date: UnixTime,
        /// KeyState (PendingDeletion).
        key_state: KeyState,
        /// PendingWindowInDays.
        pending_window_in_days: u16,
    },
    audit |r| (Some(r.key_id), 0);

    /// CancelKeyDeletion.
    DeletionCancelled = 20 {
        /// KeyId.
        key_id: KeyId,
    },
    audit |r| (Some(r.key_id), 0);

    /// ListAliases.
    Aliases<'a> = 21 {
        /// Aliases.
        #[serde(borrow)]
        aliases: heapless::Vec<AliasListEntry<'a>, MAX_ALIAS_PAGE>,
        /// NextMarker.
        next_marker: Option<&'a str>,
        /// Truncated.
        truncated: bool,
    },
    audit |r| (None, 0);

    /// ListResourceTags.
    Tags<'a> = 22 {
        /// Tags.
        #[serde(borrow)]
        tags: crate::types::Tags<'a>,
    },
    audit |r| (None, 0);

    /// ListPrincipals.
    Principals<'a> = 23 {
        /// Principals.
        #[serde(borrow)]
        principals: heapless::Vec<PrincipalEntry<'a>, MAX_PRINCIPALS>,
    },
    audit |r| (None, 0);

    /// GetAuditCheckpoint.
    AuditCheckpoint<'a> = 24 {
        /// Sequence number of the newest entry (0: none yet).
        sequence: u64,
        /// Hash of that entry.
        hash: [u8; 32],
        /// DER ECDSA P-256 signature over [`crate::access::checkpoint_digest`].
        signature: &'a [u8],
        /// Sequence number of the oldest entry still held.
        first_sequence: u64,
        /// Device attestation public key (DER SubjectPublicKeyInfo).
        public_key: &'a [u8],
        /// Entries the log holds at most.
        capacity: u32,
        /// What happens when it is full.
        audit_full: AuditFullMode,
        /// When entries were dropped (`first_sequence > 1`): the signature over
        /// `checkpoint_digest(first_sequence - 1, prev_hash of the first entry held)`, made
        /// when they were dropped; empty otherwise.
        base_signature: &'a [u8],
    },
    audit |r| (None, 0);

    /// ReadAuditLog: encoded entries (each AUDIT_ENTRY_LEN bytes), oldest first.
    AuditEntries<'a> = 25 {
        /// Concatenated entries.
        entries: &'a [u8],
    },
    audit |r| (None, 0);

    /// GetKeyPolicy.
    KeyPolicy<'a> = 26 {
        /// KeyId.
        key_id: KeyId,
        /// The compact policy.
        policy: &'a [u8],
    },
    audit |r| (Some(r.key_id), 0);

    /// CreateGrant.
    Grant<'a> = 27 {
        /// GrantId.
        grant_id: &'a str,
    },
    audit |r| (None, 0);

    /// ListGrants.
    Grants<'a> = 28 {
        /// Grants.
        #[serde(borrow)]
        grants: heapless::Vec<GrantEntry<'a>, MAX_GRANTS>,
    },
    audit |r| (None, 0);

    /// GetDeviceKey.
    DeviceKey<'a> = 29 {
        /// DER SubjectPublicKeyInfo of the device key (P-256).
        public_key: &'a [u8],
    },
    audit |r| (None, 0);

    /// OpenSession: message 2 of the NK handshake.
    SessionOpened<'a> = 30 {
        /// The new session's id.
        session_id: u32,
        /// The token's ephemeral P-256 public key (65 bytes, uncompressed SEC1).
        ephemeral: &'a [u8],
        /// EncryptAndHash of the session id (4 bytes big-endian): ciphertext and tag.
        payload: &'a [u8],
    },
    audit |r| (None, 0);

    /// The answer to a SessionFrame: the postcard encoding of a [`crate::ResponseFrame`],
    /// sealed with the session's token-to-host key.
    SessionFrame<'a> = 31 {
        /// The session.
        session_id: u32,
        /// The token's frame counter.
        counter: u64,
        /// Ciphertext followed by the 16-byte tag.
        sealed: &'a [u8],
    },
    audit |r| (None, 0);

    /// GetSelfTests.
    SelfTestReport = 32 {
        /// Passed, or the test that failed.
        outcome: SelfTests,
    },
    audit |r| (None, 0);

    /// BackupInit: the new backup key, shown once.
    BackupSecret<'a> = 33 {
        /// The 32-byte backup key.
        secret: &'a [u8],
    },
    audit |r| (None, 0);

    /// BackupExportBegin: the file's header ([`crate::backup::Header`]).
    BackupHeader<'a> = 34 {
        /// The header bytes.
        header: &'a [u8],
    },
    audit |r| (None, 0);

    /// BackupExportChunk: one sealed chunk.
    BackupChunk<'a> = 35 {
        /// The sealed chunk (ciphertext and tag).
        sealed: &'a [u8],
        /// Whether it is the last.
        last: bool,
        /// Records it carries.
        records: u32,
    },
    audit |r| (None, 0);

    /// BackupRestoreChunk: what the chunk did.
    BackupRestored = 36 {
        /// Records written so far.
        records: u32,
        /// Whether the restore is complete (committed).
        complete: bool,
    },
    audit |r| (None, 0);

    /// DeriveSharedSecret.
    SharedSecret<'a> = 37 {
        /// KeyId.
        key_id: KeyId,
        /// SharedSecret.
        shared_secret: &'a [u8],
        /// KeyAgreementAlgorithm.
        key_agreement_algorithm: KeyAgreementAlgorithm,
        /// The version used.
        key_version: KeyVersion,
    },
    audit |r| (Some(r.key_id), r.key_version);

    /// Encapsulate.
    Encapsulated<'a> = 38 {
        /// KeyId.
        key_id: KeyId,
        /// SharedSecret.
        shared_secret: &'a [u8],
        /// SharedSecretCiphertextBlob: the ML-KEM ciphertext.
        shared_secret_ciphertext_blob: &'a [u8],
        /// EncapsulationAlgorithm.
        encapsulation_algorithm: EncapsulationAlgorithm,
        /// The version used.
        key_version: KeyVersion,
    },
    audit |r| (Some(r.key_id), r.key_version);

    /// Decapsulate.
    Decapsulated<'a> = 39 {
        /// KeyId.
        key_id: KeyId,
        /// SharedSecret.
        shared_secret: &'a [u8],
        /// EncapsulationAlgorithm.
        encapsulation_algorithm: EncapsulationAlgorithm,
        /// The version used.
        key_version: KeyVersion,
    },
    audit |r| (Some(r.key_id), r.key_version);

    /// GenerateDataKeyPair (plaintext present) and GenerateDataKeyPairWithoutPlaintext (absent).
    DataKeyPair<'a> = 40 {
        /// KeyId of the symmetric key.
        key_id: KeyId,
        /// PrivateKeyCiphertextBlob.
        private_key_ciphertext_blob: &'a [u8],
        /// PrivateKeyPlaintext: PKCS#8 DER.
        private_key_plaintext: Option<&'a [u8]>,
        /// PublicKey: DER SubjectPublicKeyInfo.
        public_key: &'a [u8],
        /// KeyPairSpec.
        key_pair_spec: DataKeyPairSpec,
        /// KeyMaterialId of the symmetric key version that sealed the private key.
        key_material_id: KeyMaterialId,
    },
    audit |r| (Some(r.key_id), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_have_their_row_index_and_a_unique_name() {
        for (i, op) in Operation::ALL.iter().enumerate() {
            assert_eq!(op.index() as usize, i);
            assert_eq!(Operation::from_index(i as u16), Some(*op));
            assert_eq!(Operation::ALL.iter().filter(|o| o.name() == op.name()).count(), 1);
        }
        assert_eq!(Operation::from_index(Operation::ALL.len() as u16), None);
        let r: Request<'_> = request::ListResourceTags { key_id: "k" }.into();
        assert_eq!(r.operation(), Operation::ListResourceTags);
        assert_eq!(r.operation().name(), "ListResourceTags");
    }

    /// Action bits are stored in key policies and grants on flash: they never change.
    #[test]
    fn action_names_and_stored_bits_are_frozen() {
        const FROZEN: &[(&str, u8)] = &[
            ("kms:Encrypt", 0),
            ("kms:Decrypt", 1),
            ("kms:ReEncryptFrom", 2),
            ("kms:ReEncryptTo", 3),
            ("kms:GenerateDataKey", 4),
            ("kms:GenerateDataKeyWithoutPlaintext", 5),
            ("kms:Sign", 6),
            ("kms:Verify", 7),
            ("kms:GetPublicKey", 8),
            ("kms:GenerateMac", 9),
            ("kms:VerifyMac", 10),
            ("kms:DescribeKey", 11),
            ("kms:EnableKey", 12),
            ("kms:DisableKey", 13),
            ("kms:ScheduleKeyDeletion", 14),
            ("kms:CancelKeyDeletion", 15),
            ("kms:EnableKeyRotation", 16),
            ("kms:DisableKeyRotation", 17),
            ("kms:GetKeyRotationStatus", 18),
            ("kms:RotateKeyOnDemand", 19),
            ("kms:ListKeyRotations", 20),
            ("pkms:RetireKeyVersions", 21),
            ("kms:CreateAlias", 22),
            ("kms:UpdateAlias", 23),
            ("kms:DeleteAlias", 24),
            ("kms:UpdateKeyDescription", 25),
            ("kms:TagResource", 26),
            ("kms:UntagResource", 27),
            ("kms:ListResourceTags", 28),
            ("kms:GetKeyPolicy", 29),
            ("kms:PutKeyPolicy", 30),
            ("kms:CreateGrant", 31),
            ("kms:ListGrants", 32),
            ("kms:RevokeGrant", 33),
            ("kms:RetireGrant", 34),
            ("kms:DeriveSharedSecret", 35),
            ("kms:Encapsulate", 36),
            ("kms:Decapsulate", 37),
            ("kms:GenerateDataKeyPair", 38),
            ("kms:GenerateDataKeyPairWithoutPlaintext", 39),
        ];
        assert_eq!(Action::ALL.len(), FROZEN.len());
        for (name, bit) in FROZEN {
            let a = Action::ALL.iter().find(|a| a.name() == *name).expect(name);
            assert_eq!(a.bit(), 1 << bit, "{name}");
        }
        assert_eq!(ALL_ACTIONS, (1 << 40) - 1);
        let grants: u64 = [
            Action::Encrypt,
            Action::Decrypt,
            Action::ReEncryptFrom,
            Action::ReEncryptTo,
            Action::GenerateDataKey,
            Action::GenerateDataKeyWithoutPlaintext,
            Action::Sign,
            Action::Verify,
            Action::GetPublicKey,
            Action::GenerateMac,
            Action::VerifyMac,
            Action::DescribeKey,
            Action::CreateGrant,
            Action::RetireGrant,
            Action::DeriveSharedSecret,
            Action::Encapsulate,
            Action::Decapsulate,
            Action::GenerateDataKeyPair,
            Action::GenerateDataKeyPairWithoutPlaintext,
        ]
        .iter()
        .fold(0, |acc, a| acc | a.bit());
        assert_eq!(GRANT_OPERATIONS, grants);
    }

    #[test]
    fn gates_name_the_key_and_context_where_the_request_holds_them() {
        let mut ctx = EncryptionContext::new();
        ctx.push(("a", "1")).unwrap();
        let r = request::Encrypt { key_id: "alias/x", plaintext: b"p", encryption_context: ctx };
        assert_eq!(r.gate(), Gate::key(Action::Encrypt, KeyRef::Named("alias/x"), &[("a", "1")]));
        let d = request::Decrypt {
            ciphertext_blob: b"b",
            encryption_context: EncryptionContext::new(),
            key_id: None,
        };
        assert!(matches!(
            d.gate(),
            Gate::Key(KeyCheck { action: Action::Decrypt, key: KeyRef::Blob { .. }, .. })
        ));
        assert_eq!(request::CreatePrincipal { name: "b", pin: b"", role: Role::User }.gate(), Gate::Admin);
        assert_eq!(request::GetInfo {}.gate(), Gate::Plain);
        assert_eq!(request::Authenticate { principal: "a", pin: b"" }.gate(), Gate::Open);
        assert!(Operation::ReadAuditLog.served_when_log_full());
        assert!(!Operation::Encrypt.served_when_log_full());
        assert_eq!(Operation::ReEncrypt.actions(), &[Action::ReEncryptFrom, Action::ReEncryptTo]);
    }

    #[test]
    fn replies_name_their_key_for_the_audit_log() {
        let k = KeyId([7; 16]);
        let r: Response<'_> = reply::Sign {
            key_id: k,
            signature: &[],
            signing_algorithm: SigningAlgorithm::EcdsaSha256,
            key_version: 3,
        }
        .into();
        assert_eq!(r.audit_key(), (Some(k), 3));
        assert_eq!(Response::Done(reply::Done {}).audit_key(), (None, 0));
        assert_eq!(reply::Done::from_response(r), None);
    }
}
