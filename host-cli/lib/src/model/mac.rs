//! HMAC: GenerateMac, VerifyMac.

use pkms_protocol::{KeyId, KeyVersion, MacAlgorithm};
use serde::Serialize;

use super::encoding::{base64, display};

/// GenerateMac's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MacOutput {
    /// Mac.
    #[serde(serialize_with = "base64")]
    pub mac: Vec<u8>,
    /// MacAlgorithm.
    #[serde(serialize_with = "display")]
    pub mac_algorithm: MacAlgorithm,
    /// KeyId.
    #[serde(serialize_with = "display")]
    pub key_id: KeyId,
    /// The version used.
    pub key_version: KeyVersion,
}

/// VerifyMac's answer (an invalid MAC is the error InvalidMac).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyMacOutput {
    /// KeyId.
    #[serde(serialize_with = "display")]
    pub key_id: KeyId,
    /// MacValid.
    pub mac_valid: bool,
    /// MacAlgorithm.
    #[serde(serialize_with = "display")]
    pub mac_algorithm: MacAlgorithm,
    /// The version used.
    pub key_version: KeyVersion,
}
