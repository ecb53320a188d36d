//! Rotation: GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations, RetireKeyVersions (and
//! EnableKeyRotation / DisableKeyRotation, which answer nothing).

use pkms_protocol::{KeyId, KeyMaterialId, KeyMaterialState, KeyVersion, RotationType, UnixTime};
use serde::Serialize;

use super::encoding::{date, display, opt_date, opt_display};

/// GetKeyRotationStatus's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyRotationStatus {
    /// KeyRotationEnabled.
    pub key_rotation_enabled: bool,
    /// KeyId.
    #[serde(serialize_with = "display")]
    pub key_id: KeyId,
    /// RotationPeriodInDays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_period_in_days: Option<u16>,
    /// NextRotationDate.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_date")]
    pub next_rotation_date: Option<UnixTime>,
    /// OnDemandRotationStartDate.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_date")]
    pub on_demand_rotation_start_date: Option<UnixTime>,
}

/// RotateKeyOnDemand's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Rotated {
    /// KeyId.
    #[serde(serialize_with = "display")]
    pub key_id: KeyId,
    /// The new version.
    pub key_version: KeyVersion,
    /// Its KeyMaterialId.
    #[serde(serialize_with = "display")]
    pub key_material_id: KeyMaterialId,
}

/// One ListKeyRotations item (KMS's RotationsListEntry), owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationEntry {
    /// KeyId.
    #[serde(serialize_with = "display")]
    pub key_id: KeyId,
    /// KeyMaterialId.
    #[serde(serialize_with = "display")]
    pub key_material_id: KeyMaterialId,
    /// The version number (Pocket KMS shows it beside the material id).
    pub key_version: KeyVersion,
    /// KeyMaterialState.
    #[serde(serialize_with = "display")]
    pub key_material_state: KeyMaterialState,
    /// RotationDate: when this version was made (creation date for version 1).
    #[serde(serialize_with = "date")]
    pub rotation_date: UnixTime,
    /// RotationType; `None` for the version the key was created with.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_display")]
    pub rotation_type: Option<RotationType>,
}

impl From<&pkms_protocol::RotationsListEntry> for RotationEntry {
    fn from(r: &pkms_protocol::RotationsListEntry) -> Self {
        RotationEntry {
            key_id: r.key_id,
            key_material_id: r.key_material_id,
            key_version: r.key_version,
            key_material_state: r.key_material_state,
            rotation_date: r.rotation_date,
            rotation_type: r.rotation_type,
        }
    }
}

/// One page of ListKeyRotations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationsPage {
    /// Versions, oldest first.
    pub rotations: Vec<RotationEntry>,
    /// NextMarker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    /// Truncated.
    pub truncated: bool,
}

impl RotationsPage {
    /// The page with only the versions `include` lists (a page may come out shorter than the
    /// limit asked for, as KMS's may).
    pub fn including(mut self, include: IncludeKeyMaterial) -> RotationsPage {
        self.rotations.retain(|r| include.lists(r));
        self
    }
}

/// ListKeyRotations' `IncludeKeyMaterial`: which versions a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeKeyMaterial {
    /// `ROTATIONS_ONLY` (KMS's default): the versions rotations made; the material the key was
    /// created with is left out.
    #[default]
    RotationsOnly,
    /// `ALL_KEY_MATERIAL`: every version still held, the original one too.
    AllKeyMaterial,
}

impl IncludeKeyMaterial {
    /// Every value, in KMS's order.
    pub const ALL: &'static [IncludeKeyMaterial] =
        &[IncludeKeyMaterial::AllKeyMaterial, IncludeKeyMaterial::RotationsOnly];

    /// KMS's name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncludeKeyMaterial::RotationsOnly => "ROTATIONS_ONLY",
            IncludeKeyMaterial::AllKeyMaterial => "ALL_KEY_MATERIAL",
        }
    }

    /// Whether a listing with this setting shows `entry`.
    pub fn lists(self, entry: &RotationEntry) -> bool {
        match self {
            IncludeKeyMaterial::AllKeyMaterial => true,
            IncludeKeyMaterial::RotationsOnly => entry.rotation_type.is_some(),
        }
    }
}

impl std::str::FromStr for IncludeKeyMaterial {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        IncludeKeyMaterial::ALL.iter().copied().find(|v| v.as_str() == s).ok_or(())
    }
}

impl std::fmt::Display for IncludeKeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RetireKeyVersions's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Retired {
    /// KeyId.
    #[serde(serialize_with = "display")]
    pub key_id: KeyId,
    /// How many versions were erased.
    pub retired_count: u32,
    /// Oldest version still held.
    pub oldest_key_version: KeyVersion,
}

impl super::Owned for pkms_protocol::kind::Done {
    type Output = ();
    fn own(_: pkms_protocol::reply::Done) {}
}

impl super::Owned for pkms_protocol::kind::KeyRotationStatus {
    type Output = KeyRotationStatus;
    fn own(r: pkms_protocol::reply::KeyRotationStatus) -> KeyRotationStatus {
        KeyRotationStatus {
            key_id: r.key_id,
            key_rotation_enabled: r.key_rotation_enabled,
            rotation_period_in_days: r.rotation_period_in_days,
            next_rotation_date: r.next_rotation_date,
            on_demand_rotation_start_date: r.on_demand_rotation_start_date,
        }
    }
}

impl super::Owned for pkms_protocol::kind::Rotated {
    type Output = Rotated;
    fn own(r: pkms_protocol::reply::Rotated) -> Rotated {
        Rotated { key_id: r.key_id, key_version: r.key_version, key_material_id: r.key_material_id }
    }
}

impl super::Owned for pkms_protocol::kind::Rotations {
    type Output = RotationsPage;
    fn own(r: pkms_protocol::reply::Rotations<'_>) -> RotationsPage {
        RotationsPage {
            rotations: r.rotations.iter().map(RotationEntry::from).collect(),
            next_marker: r.next_marker.map(str::to_owned),
            truncated: r.truncated,
        }
    }
}

impl super::Owned for pkms_protocol::kind::Retired {
    type Output = Retired;
    fn own(r: pkms_protocol::reply::Retired) -> Retired {
        Retired { key_id: r.key_id, retired_count: r.retired_count, oldest_key_version: r.oldest_key_version }
    }
}
