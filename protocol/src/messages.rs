//! The request and response enums and the frames that carry them.
//!
//! Every request is wrapped in a [`RequestFrame`] carrying a request id (echoed in the
//! [`ResponseFrame`], so a host can discard stale replies) and the host's wall time (the token has
//! no battery clock; it keeps a persisted high-water mark and never runs time backwards).
//!
//! Key arguments (`key_id`) are strings: a key id in UUID form or an alias name (`alias/…`).
//! Field names follow KMS in snake case; the CLI prints them in KMS's PascalCase.

use serde::{Deserialize, Serialize};

use crate::access::{AuditFullMode, Condition, GrantEntry, PrincipalEntry, Role, MAX_GRANTS, MAX_PRINCIPALS};
use crate::context::EncryptionContext;
use crate::error::ErrorCode;
use crate::limits::{MAX_ALIAS_PAGE, MAX_PAGE, MAX_TAGS_PER_KEY};
use crate::types::*;

/// A request as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFrame<'a> {
    /// Chosen by the host; echoed in the response. 0 is reserved for errors about frames the
    /// token could not decode.
    pub id: u32,
    /// Host wall time (Unix seconds), if the host knows it. The token takes
    /// `max(high_water_mark, now)`.
    pub now: Option<UnixTime>,
    /// The operation.
    #[serde(borrow)]
    pub request: Request<'a>,
}

/// A response as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseFrame<'a> {
    /// The id of the request this answers; 0 when the request could not be decoded.
    pub id: u32,
    /// The answer or a typed error.
    #[serde(borrow)]
    pub result: Result<Response<'a>, WireError<'a>>,
}

/// A typed error with a human-readable message (at most
/// [`crate::limits::MAX_ERROR_MESSAGE`] bytes; may be empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError<'a> {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: &'a str,
}

/// Every operation the token performs. Append-only (postcard encodes the variant index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
// Borrowed wire types: the large variants hold bounded inline lists; boxing needs an allocator
// the firmware does not have, and a request/response lives once per frame.
#[allow(clippy::large_enum_variant)]
pub enum Request<'a> {
    /// Connect handshake: the host's protocol version.
    Hello {
        /// Host's [`crate::PROTOCOL_VERSION`].
        protocol_version: u16,
    },
    /// GetInfo.
    GetInfo,
    /// GenerateRandom: 1..=1024 bytes from the token's RNG.
    GenerateRandom {
        /// NumberOfBytes.
        number_of_bytes: u16,
    },
    /// CreateKey.
    CreateKey {
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
    },
    /// DescribeKey.
    DescribeKey {
        /// Key id or alias.
        key_id: &'a str,
    },
    /// ListKeys.
    ListKeys {
        /// Limit (1..=1000; the token clamps pages to MAX_PAGE).
        limit: Option<u16>,
        /// Marker from a previous page's `next_marker`.
        marker: Option<&'a str>,
    },
    /// Encrypt under the key's newest version.
    Encrypt {
        /// Key id or alias.
        key_id: &'a str,
        /// Plaintext, 1..=4096 bytes.
        plaintext: &'a [u8],
        /// EncryptionContext.
        #[serde(borrow)]
        encryption_context: EncryptionContext<'a>,
    },
    /// Decrypt with the key and version the blob names.
    Decrypt {
        /// CiphertextBlob.
        ciphertext_blob: &'a [u8],
        /// EncryptionContext (must equal the one given at encryption, in any order).
        #[serde(borrow)]
        encryption_context: EncryptionContext<'a>,
        /// Optional KeyId; if it names another key than the blob, IncorrectKey.
        key_id: Option<&'a str>,
    },
    /// ReEncrypt inside the token: plaintext never crosses the wire.
    ReEncrypt {
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
    },
    /// GenerateDataKey: exactly one of `key_spec` / `number_of_bytes`.
    GenerateDataKey {
        /// Key id or alias.
        key_id: &'a str,
        /// EncryptionContext.
        #[serde(borrow)]
        encryption_context: EncryptionContext<'a>,
        /// KeySpec of the data key.
        key_spec: Option<DataKeySpec>,
        /// NumberOfBytes (1..=1024).
        number_of_bytes: Option<u16>,
    },
    /// GenerateDataKeyWithoutPlaintext: as GenerateDataKey, but only the blob is returned.
    GenerateDataKeyWithoutPlaintext {
        /// Key id or alias.
        key_id: &'a str,
        /// EncryptionContext.
        #[serde(borrow)]
        encryption_context: EncryptionContext<'a>,
        /// KeySpec of the data key.
        key_spec: Option<DataKeySpec>,
        /// NumberOfBytes (1..=1024).
        number_of_bytes: Option<u16>,
    },
    /// EnableKeyRotation.
    EnableKeyRotation {
        /// Key id or alias.
        key_id: &'a str,
        /// RotationPeriodInDays (90..=2560, default 365).
        rotation_period_in_days: Option<u16>,
    },
    /// DisableKeyRotation.
    DisableKeyRotation {
        /// Key id or alias.
        key_id: &'a str,
    },
    /// GetKeyRotationStatus.
    GetKeyRotationStatus {
        /// Key id or alias.
        key_id: &'a str,
    },
    /// RotateKeyOnDemand: add a new version now.
    RotateKeyOnDemand {
        /// Key id or alias.
        key_id: &'a str,
    },
    /// ListKeyRotations: every version still held, oldest first.
    ListKeyRotations {
        /// Key id or alias.
        key_id: &'a str,
        /// Limit.
        limit: Option<u16>,
        /// Marker.
        marker: Option<&'a str>,
    },
    /// Beyond KMS: erase every version below `below_version` (crypto-erase, space reclaimed).
    RetireKeyVersions {
        /// Key id or alias.
        key_id: &'a str,
        /// Versions `< below_version` are retired; the newest version can never be retired.
        below_version: KeyVersion,
    },
    /// Sign with the newest version of an ECC_NIST_P256 key.
    Sign {
        /// Key id or alias.
        key_id: &'a str,
        /// Message (RAW, ≤4096 bytes) or digest (DIGEST, 32 bytes).
        message: &'a [u8],
        /// MessageType.
        message_type: MessageType,
        /// SigningAlgorithm.
        signing_algorithm: SigningAlgorithm,
    },
    /// Verify a DER signature.
    Verify {
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
    },
    /// GetPublicKey: DER SubjectPublicKeyInfo.
    GetPublicKey {
        /// Key id or alias.
        key_id: &'a str,
        /// Version (default newest).
        key_version: Option<KeyVersion>,
    },
    /// GenerateMac with the newest version of an HMAC key.
    GenerateMac {
        /// Key id or alias.
        key_id: &'a str,
        /// Message (≤4096 bytes).
        message: &'a [u8],
        /// MacAlgorithm.
        mac_algorithm: MacAlgorithm,
    },
    /// VerifyMac (constant-time comparison).
    VerifyMac {
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
    },
    /// EnableKey.
    EnableKey {
        /// Key id or alias.
        key_id: &'a str,
    },
    /// DisableKey.
    DisableKey {
        /// Key id or alias.
        key_id: &'a str,
    },
    /// ScheduleKeyDeletion.
    ScheduleKeyDeletion {
        /// Key id or alias.
        key_id: &'a str,
        /// PendingWindowInDays (7..=30, default 30).
        pending_window_in_days: Option<u16>,
    },
    /// CancelKeyDeletion: back to Disabled.
    CancelKeyDeletion {
        /// Key id or alias.
        key_id: &'a str,
    },
    /// CreateAlias.
    CreateAlias {
        /// AliasName.
        alias_name: &'a str,
        /// TargetKeyId (a key id, not an alias).
        target_key_id: &'a str,
    },
    /// UpdateAlias.
    UpdateAlias {
        /// AliasName.
        alias_name: &'a str,
        /// TargetKeyId.
        target_key_id: &'a str,
    },
    /// DeleteAlias.
    DeleteAlias {
        /// AliasName.
        alias_name: &'a str,
    },
    /// ListAliases.
    ListAliases {
        /// Only aliases of this key.
        key_id: Option<&'a str>,
        /// Limit.
        limit: Option<u16>,
        /// Marker.
        marker: Option<&'a str>,
    },
    /// UpdateKeyDescription.
    UpdateKeyDescription {
        /// Key id or alias.
        key_id: &'a str,
        /// Description.
        description: &'a str,
    },
    /// TagResource: add or replace tags.
    TagResource {
        /// Key id or alias.
        key_id: &'a str,
        /// Tags.
        #[serde(borrow)]
        tags: Tags<'a>,
    },
    /// UntagResource.
    UntagResource {
        /// Key id or alias.
        key_id: &'a str,
        /// TagKeys.
        #[serde(borrow)]
        tag_keys: heapless::Vec<&'a str, MAX_TAGS_PER_KEY>,
    },
    /// ListResourceTags.
    ListResourceTags {
        /// Key id or alias.
        key_id: &'a str,
    },
    /// Initialise an open token: creates the administrator `admin` with `pin`, sets the PUK
    /// (recovery secret), makes the device attestation key and starts the audit log.
    Initialize {
        /// The administrator's PIN.
        pin: &'a [u8],
        /// The PUK.
        puk: &'a [u8],
        /// What to do when the audit log is full.
        audit_full: AuditFullMode,
    },
    /// Authenticate this connection's session as `principal`.
    Authenticate {
        /// Principal name.
        principal: &'a str,
        /// PIN.
        pin: &'a [u8],
    },
    /// Admin: create a principal.
    CreatePrincipal {
        /// Name.
        name: &'a str,
        /// PIN.
        pin: &'a [u8],
        /// Role.
        role: Role,
    },
    /// Admin: remove a principal.
    DeletePrincipal {
        /// Name.
        name: &'a str,
    },
    /// ListPrincipals.
    ListPrincipals,
    /// Unlock a principal (and set a new PIN) with the PUK.
    UnblockPin {
        /// Principal name.
        principal: &'a str,
        /// The PUK.
        puk: &'a [u8],
        /// The new PIN.
        new_pin: &'a [u8],
    },
    /// Erase every key, principal and log entry; the token is open again.
    FactoryReset {
        /// Must be [`crate::access::FACTORY_RESET_CONFIRMATION`] (so that no damaged or
        /// stray frame can erase the token).
        confirm: &'a str,
    },
    /// The audit log's head, signed by the device attestation key.
    GetAuditCheckpoint,
    /// Audit entries from `start_sequence` on (at most `limit`, clamped to MAX_AUDIT_PAGE).
    ReadAuditLog {
        /// First sequence number wanted.
        start_sequence: u64,
        /// Most entries.
        limit: u16,
    },
    /// Admin: drop entries up to and including `through_sequence` (after exporting them).
    TrimAuditLog {
        /// Last sequence number to drop.
        through_sequence: u64,
    },
    /// GetKeyPolicy (compact form).
    GetKeyPolicy {
        /// Key id or alias.
        key_id: &'a str,
    },
    /// PutKeyPolicy (compact form).
    PutKeyPolicy {
        /// Key id or alias.
        key_id: &'a str,
        /// postcard-encoded [`crate::access::Policy`].
        policy: &'a [u8],
    },
    /// CreateGrant.
    CreateGrant {
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
    },
    /// ListGrants.
    ListGrants {
        /// Key id or alias.
        key_id: &'a str,
    },
    /// RetireGrant (by the grantee, or an administrator).
    RetireGrant {
        /// Key id or alias.
        key_id: &'a str,
        /// GrantId.
        grant_id: &'a str,
    },
    /// RevokeGrant (needs kms:RevokeGrant).
    RevokeGrant {
        /// Key id or alias.
        key_id: &'a str,
        /// GrantId.
        grant_id: &'a str,
    },
}

/// Every successful answer. Append-only, as [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // see Request
pub enum Response<'a> {
    /// Answer to Hello.
    Hello {
        /// Token's [`crate::PROTOCOL_VERSION`].
        protocol_version: u16,
        /// Firmware version.
        firmware_version: &'a str,
    },
    /// GetInfo.
    Info(#[serde(borrow)] TokenInfo<'a>),
    /// GenerateRandom.
    Random {
        /// Plaintext: the random bytes.
        plaintext: &'a [u8],
    },
    /// CreateKey and DescribeKey.
    KeyMetadata(#[serde(borrow)] KeyMetadata<'a>),
    /// ListKeys.
    Keys {
        /// Keys.
        keys: heapless::Vec<KeyId, MAX_PAGE>,
        /// NextMarker when truncated.
        next_marker: Option<&'a str>,
        /// Truncated.
        truncated: bool,
    },
    /// Encrypt.
    Encrypt {
        /// CiphertextBlob.
        ciphertext_blob: &'a [u8],
        /// KeyId.
        key_id: KeyId,
        /// The version used (newest).
        key_version: KeyVersion,
        /// KeyMaterialId of that version.
        key_material_id: KeyMaterialId,
    },
    /// Decrypt.
    Decrypt {
        /// Plaintext.
        plaintext: &'a [u8],
        /// KeyId.
        key_id: KeyId,
        /// The version the blob named.
        key_version: KeyVersion,
        /// KeyMaterialId.
        key_material_id: KeyMaterialId,
    },
    /// ReEncrypt.
    ReEncrypt {
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
    /// GenerateDataKey (plaintext present) and GenerateDataKeyWithoutPlaintext (absent).
    DataKey {
        /// CiphertextBlob.
        ciphertext_blob: &'a [u8],
        /// Plaintext data key.
        plaintext: Option<&'a [u8]>,
        /// KeyId.
        key_id: KeyId,
        /// KeyMaterialId.
        key_material_id: KeyMaterialId,
    },
    /// Operations with an empty KMS output (EnableKeyRotation, EnableKey, CreateAlias, …).
    Done,
    /// GetKeyRotationStatus.
    KeyRotationStatus {
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
    /// RotateKeyOnDemand.
    Rotated {
        /// KeyId.
        key_id: KeyId,
        /// The new version.
        key_version: KeyVersion,
        /// Its KeyMaterialId.
        key_material_id: KeyMaterialId,
    },
    /// ListKeyRotations.
    Rotations {
        /// Rotations, oldest first.
        rotations: heapless::Vec<RotationsListEntry, MAX_PAGE>,
        /// NextMarker.
        next_marker: Option<&'a str>,
        /// Truncated.
        truncated: bool,
    },
    /// RetireKeyVersions.
    Retired {
        /// KeyId.
        key_id: KeyId,
        /// How many versions were erased.
        retired_count: u32,
        /// Oldest version still held.
        oldest_key_version: KeyVersion,
    },
    /// Sign.
    Sign {
        /// KeyId.
        key_id: KeyId,
        /// DER signature (low-S).
        signature: &'a [u8],
        /// SigningAlgorithm.
        signing_algorithm: SigningAlgorithm,
        /// The version that signed.
        key_version: KeyVersion,
    },
    /// Verify (a bad signature is the error InvalidSignature, as in KMS).
    Verify {
        /// KeyId.
        key_id: KeyId,
        /// SignatureValid (always true in a success).
        signature_valid: bool,
        /// SigningAlgorithm.
        signing_algorithm: SigningAlgorithm,
        /// The version used.
        key_version: KeyVersion,
    },
    /// GetPublicKey.
    PublicKey {
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
    /// GenerateMac.
    Mac {
        /// KeyId.
        key_id: KeyId,
        /// Mac.
        mac: &'a [u8],
        /// MacAlgorithm.
        mac_algorithm: MacAlgorithm,
        /// The version used.
        key_version: KeyVersion,
    },
    /// VerifyMac (a bad MAC is the error InvalidMac, as in KMS).
    VerifyMac {
        /// KeyId.
        key_id: KeyId,
        /// MacValid (always true in a success).
        mac_valid: bool,
        /// MacAlgorithm.
        mac_algorithm: MacAlgorithm,
        /// The version used.
        key_version: KeyVersion,
    },
    /// ScheduleKeyDeletion.
    DeletionScheduled {
        /// KeyId.
        key_id: KeyId,
        /// DeletionDate.
        deletion_date: UnixTime,
        /// KeyState (PendingDeletion).
        key_state: KeyState,
        /// PendingWindowInDays.
        pending_window_in_days: u16,
    },
    /// CancelKeyDeletion.
    DeletionCancelled {
        /// KeyId.
        key_id: KeyId,
    },
    /// ListAliases.
    Aliases {
        /// Aliases.
        #[serde(borrow)]
        aliases: heapless::Vec<AliasListEntry<'a>, MAX_ALIAS_PAGE>,
        /// NextMarker.
        next_marker: Option<&'a str>,
        /// Truncated.
        truncated: bool,
    },
    /// ListResourceTags.
    Tags {
        /// Tags.
        #[serde(borrow)]
        tags: Tags<'a>,
    },
    /// ListPrincipals.
    Principals {
        /// Principals.
        #[serde(borrow)]
        principals: heapless::Vec<PrincipalEntry<'a>, MAX_PRINCIPALS>,
    },
    /// GetAuditCheckpoint.
    AuditCheckpoint {
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
    /// ReadAuditLog: encoded entries (each AUDIT_ENTRY_LEN bytes), oldest first.
    AuditEntries {
        /// Concatenated entries.
        entries: &'a [u8],
    },
    /// GetKeyPolicy.
    KeyPolicy {
        /// KeyId.
        key_id: KeyId,
        /// The compact policy.
        policy: &'a [u8],
    },
    /// CreateGrant.
    Grant {
        /// GrantId.
        grant_id: &'a str,
    },
    /// ListGrants.
    Grants {
        /// Grants.
        #[serde(borrow)]
        grants: heapless::Vec<GrantEntry<'a>, MAX_GRANTS>,
    },
}
