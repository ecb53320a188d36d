//! Owned results of client calls. Wire responses borrow from the receive buffer; these own
//! their data. Plaintexts and data keys are [`Zeroizing`] so they are wiped when dropped.

use pkms_protocol::{
    DataKeySpec, KeyId, KeyMaterialId, KeySpec, KeyState, KeyUsage, KeyVersion, MacAlgorithm, Platform,
    RotationsListEntry, SigningAlgorithm, UnixTime,
};
use zeroize::Zeroizing;

pub use pkms_protocol::RotationsListEntry as RotationEntry;

/// GetInfo's answer, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Firmware version (semver).
    pub firmware_version: String,
    /// Protocol version of the firmware.
    pub protocol_version: u16,
    /// Board name, e.g. `qemu-mps2-an386`, `host-in-process`.
    pub board: String,
    /// Emulated or hardware.
    pub platform: Platform,
    /// Where the token's randomness comes from.
    pub entropy_source: String,
    /// What protects key material at rest.
    pub key_protection: String,
    /// Flash bytes the key store may use.
    pub storage_total_bytes: u32,
    /// Flash bytes still free.
    pub storage_free_bytes: u32,
    /// Keys stored (any state).
    pub key_count: u32,
    /// The token's wall-time high-water mark.
    pub time_high_water_mark: UnixTime,
    /// Whether principals and PINs are set up.
    pub initialized: bool,
}

/// KeyMetadata, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMetadata {
    /// KeyId.
    pub key_id: KeyId,
    /// CreationDate (Unix seconds).
    pub creation_date: UnixTime,
    /// Enabled.
    pub enabled: bool,
    /// Description.
    pub description: String,
    /// KeyUsage.
    pub key_usage: KeyUsage,
    /// KeyState.
    pub key_state: KeyState,
    /// KeySpec.
    pub key_spec: KeySpec,
    /// DeletionDate when PendingDeletion.
    pub deletion_date: Option<UnixTime>,
    /// PendingDeletionWindowInDays when PendingDeletion.
    pub pending_deletion_window_in_days: Option<u16>,
    /// CurrentKeyMaterialId.
    pub current_key_material_id: KeyMaterialId,
    /// Newest version number.
    pub current_key_version: KeyVersion,
    /// Oldest version still held.
    pub oldest_key_version: KeyVersion,
    /// Automatic rotation enabled.
    pub key_rotation_enabled: bool,
    /// RotationPeriodInDays.
    pub rotation_period_in_days: Option<u16>,
    /// NextRotationDate.
    pub next_rotation_date: Option<UnixTime>,
    /// Sign/Decrypt need a user-presence check.
    pub user_presence_required: bool,
}

impl From<&pkms_protocol::KeyMetadata<'_>> for KeyMetadata {
    fn from(m: &pkms_protocol::KeyMetadata<'_>) -> Self {
        KeyMetadata {
            key_id: m.key_id,
            creation_date: m.creation_date,
            enabled: m.enabled,
            description: m.description.to_owned(),
            key_usage: m.key_usage,
            key_state: m.key_state,
            key_spec: m.key_spec,
            deletion_date: m.deletion_date,
            pending_deletion_window_in_days: m.pending_deletion_window_in_days,
            current_key_material_id: m.current_key_material_id,
            current_key_version: m.current_key_version,
            oldest_key_version: m.oldest_key_version,
            key_rotation_enabled: m.key_rotation_enabled,
            rotation_period_in_days: m.rotation_period_in_days,
            next_rotation_date: m.next_rotation_date,
            user_presence_required: m.user_presence_required,
        }
    }
}

/// Arguments of CreateKey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateKeyParams {
    /// KeySpec.
    pub key_spec: KeySpec,
    /// KeyUsage; `None` takes the spec's only usage.
    pub key_usage: Option<KeyUsage>,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Sign/Decrypt need a button press on the token.
    pub user_presence_required: bool,
}

impl Default for CreateKeyParams {
    fn default() -> Self {
        CreateKeyParams {
            key_spec: KeySpec::SymmetricDefault,
            key_usage: None,
            description: String::new(),
            tags: Vec::new(),
            user_presence_required: false,
        }
    }
}

impl CreateKeyParams {
    /// A key of `spec` with its default usage and no description or tags.
    pub fn spec(key_spec: KeySpec) -> Self {
        CreateKeyParams { key_spec, ..Default::default() }
    }
}

/// One tag, owned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tag {
    /// TagKey.
    pub tag_key: String,
    /// TagValue.
    pub tag_value: String,
}

impl Tag {
    /// A tag from key and value.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag { tag_key: key.into(), tag_value: value.into() }
    }
}

/// One page of ListKeys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysPage {
    /// Keys.
    pub keys: Vec<KeyId>,
    /// NextMarker when truncated.
    pub next_marker: Option<String>,
    /// Truncated.
    pub truncated: bool,
}

/// Encrypt's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptOutput {
    /// CiphertextBlob.
    pub ciphertext_blob: Vec<u8>,
    /// KeyId.
    pub key_id: KeyId,
    /// The version used (newest).
    pub key_version: KeyVersion,
    /// KeyMaterialId of that version.
    pub key_material_id: KeyMaterialId,
}

/// Decrypt's answer; the plaintext is wiped on drop.
#[derive(Debug, Clone)]
pub struct DecryptOutput {
    /// Plaintext.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// KeyId.
    pub key_id: KeyId,
    /// The version the blob named.
    pub key_version: KeyVersion,
    /// KeyMaterialId.
    pub key_material_id: KeyMaterialId,
}

/// ReEncrypt's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReEncryptOutput {
    /// CiphertextBlob under the destination key.
    pub ciphertext_blob: Vec<u8>,
    /// SourceKeyId.
    pub source_key_id: KeyId,
    /// KeyId (destination).
    pub key_id: KeyId,
    /// SourceKeyMaterialId.
    pub source_key_material_id: KeyMaterialId,
    /// DestinationKeyMaterialId.
    pub destination_key_material_id: KeyMaterialId,
}

/// What GenerateDataKey should make: a KMS DataKeySpec or a byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKeySize {
    /// KeySpec AES_256 / AES_128.
    Spec(DataKeySpec),
    /// NumberOfBytes (1..=1024).
    Bytes(u16),
}

/// GenerateDataKey's answer (plaintext absent for GenerateDataKeyWithoutPlaintext).
#[derive(Debug, Clone)]
pub struct DataKey {
    /// CiphertextBlob: the data key encrypted under the KMS key.
    pub ciphertext_blob: Vec<u8>,
    /// The plaintext data key, wiped on drop.
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    /// KeyId.
    pub key_id: KeyId,
    /// KeyMaterialId.
    pub key_material_id: KeyMaterialId,
}

/// GetKeyRotationStatus's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRotationStatus {
    /// KeyId.
    pub key_id: KeyId,
    /// KeyRotationEnabled.
    pub key_rotation_enabled: bool,
    /// RotationPeriodInDays.
    pub rotation_period_in_days: Option<u16>,
    /// NextRotationDate.
    pub next_rotation_date: Option<UnixTime>,
    /// OnDemandRotationStartDate.
    pub on_demand_rotation_start_date: Option<UnixTime>,
}

/// RotateKeyOnDemand's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// KeyId.
    pub key_id: KeyId,
    /// The new version.
    pub key_version: KeyVersion,
    /// Its KeyMaterialId.
    pub key_material_id: KeyMaterialId,
}

/// One page of ListKeyRotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationsPage {
    /// Versions, oldest first.
    pub rotations: Vec<RotationsListEntry>,
    /// NextMarker.
    pub next_marker: Option<String>,
    /// Truncated.
    pub truncated: bool,
}

/// RetireKeyVersions's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retired {
    /// KeyId.
    pub key_id: KeyId,
    /// How many versions were erased.
    pub retired_count: u32,
    /// Oldest version still held.
    pub oldest_key_version: KeyVersion,
}

/// Sign's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOutput {
    /// KeyId.
    pub key_id: KeyId,
    /// DER signature (low-S).
    pub signature: Vec<u8>,
    /// SigningAlgorithm.
    pub signing_algorithm: SigningAlgorithm,
    /// The version that signed.
    pub key_version: KeyVersion,
}

/// Verify's answer (an invalid signature is the error InvalidSignature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOutput {
    /// KeyId.
    pub key_id: KeyId,
    /// SignatureValid.
    pub signature_valid: bool,
    /// SigningAlgorithm.
    pub signing_algorithm: SigningAlgorithm,
    /// The version used.
    pub key_version: KeyVersion,
}

/// GetPublicKey's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyOutput {
    /// KeyId.
    pub key_id: KeyId,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    /// KeySpec.
    pub key_spec: KeySpec,
    /// KeyUsage.
    pub key_usage: KeyUsage,
    /// The version whose public key this is.
    pub key_version: KeyVersion,
}

/// GenerateMac's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacOutput {
    /// KeyId.
    pub key_id: KeyId,
    /// Mac.
    pub mac: Vec<u8>,
    /// MacAlgorithm.
    pub mac_algorithm: MacAlgorithm,
    /// The version used.
    pub key_version: KeyVersion,
}

/// VerifyMac's answer (an invalid MAC is the error InvalidMac).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyMacOutput {
    /// KeyId.
    pub key_id: KeyId,
    /// MacValid.
    pub mac_valid: bool,
    /// MacAlgorithm.
    pub mac_algorithm: MacAlgorithm,
    /// The version used.
    pub key_version: KeyVersion,
}

/// ScheduleKeyDeletion's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionScheduled {
    /// KeyId.
    pub key_id: KeyId,
    /// DeletionDate.
    pub deletion_date: UnixTime,
    /// KeyState (PendingDeletion).
    pub key_state: KeyState,
    /// PendingWindowInDays.
    pub pending_window_in_days: u16,
}

/// One ListAliases item, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasEntry {
    /// AliasName.
    pub alias_name: String,
    /// TargetKeyId.
    pub target_key_id: KeyId,
    /// CreationDate.
    pub creation_date: UnixTime,
    /// LastUpdatedDate.
    pub last_updated_date: UnixTime,
}

/// One page of ListAliases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasesPage {
    /// Aliases.
    pub aliases: Vec<AliasEntry>,
    /// NextMarker.
    pub next_marker: Option<String>,
    /// Truncated.
    pub truncated: bool,
}
