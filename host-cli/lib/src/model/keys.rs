//! Keys: GetInfo, CreateKey, DescribeKey, ListKeys (and UpdateKeyDescription, which answers
//! nothing).

use pkms_protocol::{
    EncapsulationAlgorithm, EncryptionAlgorithm, KeyAgreementAlgorithm, KeyId, KeyMaterialId, KeySpec,
    KeyState, KeyUsage, KeyVersion, MacAlgorithm, Platform, SelfTests, SigningAlgorithm, UnixTime,
};
use serde::Serialize;

use super::encoding::{arn_scope, date, display, display_list, key_list, opt_date, platform};
use super::tags::Tag;

/// GetInfo's answer, owned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TokenInfo {
    /// Firmware version (semver).
    pub firmware_version: String,
    /// Protocol version of the firmware.
    pub protocol_version: u16,
    /// Board name, e.g. `qemu-mps2-an386`, `host-in-process`.
    pub board: String,
    /// Emulated or hardware.
    #[serde(serialize_with = "platform")]
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
    #[serde(serialize_with = "date")]
    pub time_high_water_mark: UnixTime,
    /// Whether principals and PINs are set up.
    pub initialized: bool,
    /// Live key versions in no backup export since the backup key was made (all of them when
    /// the token has none).
    pub key_versions_not_backed_up: u32,
    /// Whether the token has a backup key.
    pub backup_key: bool,
}

/// KeyMetadata, owned: KMS's fields (with the algorithm lists KMS derives from the key spec)
/// plus Pocket KMS's version, rotation and presence fields. Serialises as KMS's KeyMetadata,
/// with the fields KMS derives from the key id and from where keys live: `AWSAccountId` and
/// `Arn` (the current [`super::encoding::Style`]'s scope), `Origin` (`AWS_KMS`: generated on the
/// token), `KeyManager` (`CUSTOMER`), `CustomerMasterKeySpec` (KMS's older name of the key spec,
/// which KMS still returns) and `MultiRegion` (false).
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
    /// DeletionDate when PendingDeletion.
    pub deletion_date: Option<UnixTime>,
    /// KeySpec.
    pub key_spec: KeySpec,
    /// EncryptionAlgorithms: [`encryption_algorithms`] of the key spec (empty: not listed).
    pub encryption_algorithms: Vec<EncryptionAlgorithm>,
    /// SigningAlgorithms: [`signing_algorithms`] of the key spec and usage (empty: not listed).
    pub signing_algorithms: Vec<SigningAlgorithm>,
    /// KeyAgreementAlgorithms: [`key_agreement_algorithms`] (empty: not listed).
    pub key_agreement_algorithms: Vec<KeyAgreementAlgorithm>,
    /// EncapsulationAlgorithms: [`encapsulation_algorithms`] (empty: not listed).
    pub encapsulation_algorithms: Vec<EncapsulationAlgorithm>,
    /// MacAlgorithms: [`mac_algorithms`] of the key spec (empty: not listed).
    pub mac_algorithms: Vec<MacAlgorithm>,
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

/// KeyMetadata as KMS writes it, in KMS's field order, Pocket KMS's extensions last.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct KeyMetadataJson<'a> {
    #[serde(rename = "AWSAccountId")]
    aws_account_id: String,
    #[serde(serialize_with = "display")]
    key_id: &'a KeyId,
    arn: String,
    #[serde(serialize_with = "date")]
    creation_date: UnixTime,
    enabled: bool,
    description: &'a str,
    #[serde(serialize_with = "display")]
    key_usage: &'a KeyUsage,
    #[serde(serialize_with = "display")]
    key_state: &'a KeyState,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_date")]
    deletion_date: Option<UnixTime>,
    origin: &'static str,
    key_manager: &'static str,
    #[serde(serialize_with = "display")]
    customer_master_key_spec: &'a KeySpec,
    #[serde(serialize_with = "display")]
    key_spec: &'a KeySpec,
    #[serde(skip_serializing_if = "is_empty", serialize_with = "names")]
    encryption_algorithms: &'a [EncryptionAlgorithm],
    #[serde(skip_serializing_if = "is_empty", serialize_with = "names")]
    signing_algorithms: &'a [SigningAlgorithm],
    #[serde(skip_serializing_if = "is_empty", serialize_with = "names")]
    key_agreement_algorithms: &'a [KeyAgreementAlgorithm],
    #[serde(skip_serializing_if = "is_empty", serialize_with = "names")]
    encapsulation_algorithms: &'a [EncapsulationAlgorithm],
    multi_region: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_deletion_window_in_days: &'a Option<u16>,
    #[serde(skip_serializing_if = "is_empty", serialize_with = "names")]
    mac_algorithms: &'a [MacAlgorithm],
    #[serde(serialize_with = "display")]
    current_key_material_id: &'a KeyMaterialId,
    current_key_version: KeyVersion,
    oldest_key_version: KeyVersion,
    key_rotation_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation_period_in_days: &'a Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_date")]
    next_rotation_date: Option<UnixTime>,
    user_presence_required: bool,
}

fn is_empty<T>(list: &&[T]) -> bool {
    list.is_empty()
}

fn names<T: std::fmt::Display, S: serde::Serializer>(list: &&[T], s: S) -> Result<S::Ok, S::Error> {
    display_list(list, s)
}

impl Serialize for KeyMetadata {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let KeyMetadata {
            key_id,
            creation_date,
            enabled,
            description,
            key_usage,
            key_state,
            deletion_date,
            key_spec,
            encryption_algorithms,
            signing_algorithms,
            key_agreement_algorithms,
            encapsulation_algorithms,
            mac_algorithms,
            pending_deletion_window_in_days,
            current_key_material_id,
            current_key_version,
            oldest_key_version,
            key_rotation_enabled,
            rotation_period_in_days,
            next_rotation_date,
            user_presence_required,
        } = self;
        let scope = arn_scope();
        KeyMetadataJson {
            arn: scope.key_arn(key_id),
            aws_account_id: scope.account_id,
            key_id,
            creation_date: *creation_date,
            enabled: *enabled,
            description,
            key_usage,
            key_state,
            deletion_date: *deletion_date,
            origin: "AWS_KMS",
            key_manager: "CUSTOMER",
            customer_master_key_spec: key_spec,
            key_spec,
            encryption_algorithms,
            signing_algorithms,
            key_agreement_algorithms,
            encapsulation_algorithms,
            multi_region: false,
            pending_deletion_window_in_days,
            mac_algorithms,
            current_key_material_id,
            current_key_version: *current_key_version,
            oldest_key_version: *oldest_key_version,
            key_rotation_enabled: *key_rotation_enabled,
            rotation_period_in_days,
            next_rotation_date: *next_rotation_date,
            user_presence_required: *user_presence_required,
        }
        .serialize(s)
    }
}

/// The encryption algorithms KMS lists for a key of `spec`.
pub fn encryption_algorithms(spec: KeySpec) -> Vec<EncryptionAlgorithm> {
    match spec {
        KeySpec::SymmetricDefault => vec![EncryptionAlgorithm::SymmetricDefault],
        KeySpec::EccNistP256
        | KeySpec::Hmac256
        | KeySpec::Hmac384
        | KeySpec::Hmac512
        | KeySpec::EccSecgP256k1
        | KeySpec::EccNistP384
        | KeySpec::EccNistEdwards25519
        | KeySpec::MlDsa44
        | KeySpec::MlDsa65
        | KeySpec::MlDsa87
        | KeySpec::MlKem512
        | KeySpec::MlKem768
        | KeySpec::MlKem1024 => Vec::new(),
    }
}

/// The signing algorithms KMS lists for a key of `spec` and `usage` (SIGN_VERIFY keys only).
pub fn signing_algorithms(spec: KeySpec, usage: KeyUsage) -> Vec<SigningAlgorithm> {
    match usage {
        KeyUsage::SignVerify => spec.signing_algorithms().to_vec(),
        KeyUsage::EncryptDecrypt
        | KeyUsage::GenerateVerifyMac
        | KeyUsage::KeyAgreement
        | KeyUsage::EncapsulateDecapsulate => Vec::new(),
    }
}

/// The key agreement algorithms KMS lists for a key of `usage` (KEY_AGREEMENT keys: ECDH).
pub fn key_agreement_algorithms(usage: KeyUsage) -> Vec<KeyAgreementAlgorithm> {
    match usage {
        KeyUsage::KeyAgreement => vec![KeyAgreementAlgorithm::Ecdh],
        KeyUsage::EncryptDecrypt
        | KeyUsage::SignVerify
        | KeyUsage::GenerateVerifyMac
        | KeyUsage::EncapsulateDecapsulate => Vec::new(),
    }
}

/// The encapsulation algorithms KMS lists for a key of `usage` (ML-KEM keys: ML_KEM).
pub fn encapsulation_algorithms(usage: KeyUsage) -> Vec<EncapsulationAlgorithm> {
    match usage {
        KeyUsage::EncapsulateDecapsulate => vec![EncapsulationAlgorithm::MlKem],
        KeyUsage::EncryptDecrypt
        | KeyUsage::SignVerify
        | KeyUsage::GenerateVerifyMac
        | KeyUsage::KeyAgreement => Vec::new(),
    }
}

/// The MAC algorithms KMS lists for a key of `spec`.
pub fn mac_algorithms(spec: KeySpec) -> Vec<MacAlgorithm> {
    match spec {
        KeySpec::Hmac256 => vec![MacAlgorithm::HmacSha256],
        KeySpec::Hmac384 => vec![MacAlgorithm::HmacSha384],
        KeySpec::Hmac512 => vec![MacAlgorithm::HmacSha512],
        KeySpec::SymmetricDefault
        | KeySpec::EccNistP256
        | KeySpec::EccSecgP256k1
        | KeySpec::EccNistP384
        | KeySpec::EccNistEdwards25519
        | KeySpec::MlDsa44
        | KeySpec::MlDsa65
        | KeySpec::MlDsa87
        | KeySpec::MlKem512
        | KeySpec::MlKem768
        | KeySpec::MlKem1024 => Vec::new(),
    }
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
            deletion_date: m.deletion_date,
            key_spec: m.key_spec,
            encryption_algorithms: encryption_algorithms(m.key_spec),
            signing_algorithms: signing_algorithms(m.key_spec, m.key_usage),
            key_agreement_algorithms: key_agreement_algorithms(m.key_usage),
            encapsulation_algorithms: encapsulation_algorithms(m.key_usage),
            mac_algorithms: mac_algorithms(m.key_spec),
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

/// CreateKey's and DescribeKey's answer as KMS writes it: `{"KeyMetadata": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeKeyOutput {
    /// KeyMetadata.
    pub key_metadata: KeyMetadata,
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

/// One page of ListKeys: `{"Keys": [{"KeyId": …, "KeyArn": …}], "NextMarker": …, "Truncated": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeysPage {
    /// Keys.
    #[serde(serialize_with = "key_list")]
    pub keys: Vec<KeyId>,
    /// NextMarker when truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    /// Truncated.
    pub truncated: bool,
}

impl super::Owned for pkms_protocol::kind::Hello {
    /// The token's protocol version and firmware version.
    type Output = (u16, String);
    fn own(r: pkms_protocol::reply::Hello<'_>) -> Self::Output {
        (r.protocol_version, r.firmware_version.to_owned())
    }
}

impl super::Owned for pkms_protocol::kind::Info {
    type Output = TokenInfo;
    fn own(r: pkms_protocol::reply::Info<'_>) -> TokenInfo {
        let i = r.info;
        TokenInfo {
            firmware_version: i.firmware_version.to_owned(),
            protocol_version: i.protocol_version,
            board: i.board.to_owned(),
            platform: i.platform,
            entropy_source: i.entropy_source.to_owned(),
            key_protection: i.key_protection.to_owned(),
            storage_total_bytes: i.storage_total_bytes,
            storage_free_bytes: i.storage_free_bytes,
            key_count: i.key_count,
            time_high_water_mark: i.time_high_water_mark,
            initialized: i.initialized,
            key_versions_not_backed_up: i.key_versions_not_backed_up,
            backup_key: i.backup_key,
        }
    }
}

impl super::Owned for pkms_protocol::kind::SelfTestReport {
    /// Passed, or the test that failed.
    type Output = SelfTests;
    fn own(r: pkms_protocol::reply::SelfTestReport) -> SelfTests {
        r.outcome
    }
}

impl super::Owned for pkms_protocol::kind::KeyMetadata {
    type Output = KeyMetadata;
    fn own(r: pkms_protocol::reply::KeyMetadata<'_>) -> KeyMetadata {
        KeyMetadata::from(&r.key_metadata)
    }
}

impl super::Owned for pkms_protocol::kind::Keys {
    type Output = KeysPage;
    fn own(r: pkms_protocol::reply::Keys<'_>) -> KeysPage {
        KeysPage {
            keys: r.keys.to_vec(),
            next_marker: r.next_marker.map(str::to_owned),
            truncated: r.truncated,
        }
    }
}
