//! HMAC: GenerateMac, VerifyMac.

use pkms_protocol::{KeyId, KeyVersion, MacAlgorithm};
use serde::Serialize;

use super::encoding::{base64, display, key_arn};

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
    #[serde(serialize_with = "key_arn")]
    pub key_id: KeyId,
    /// The version used.
    pub key_version: KeyVersion,
}

/// VerifyMac's answer (an invalid MAC is the error InvalidMac).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyMacOutput {
    /// KeyId.
    #[serde(serialize_with = "key_arn")]
    pub key_id: KeyId,
    /// MacValid.
    pub mac_valid: bool,
    /// MacAlgorithm.
    #[serde(serialize_with = "display")]
    pub mac_algorithm: MacAlgorithm,
    /// The version used.
    pub key_version: KeyVersion,
}

impl super::Owned for pkms_protocol::kind::Mac {
    type Output = MacOutput;
    fn own(r: pkms_protocol::reply::Mac<'_>) -> MacOutput {
        MacOutput {
            key_id: r.key_id,
            mac: r.mac.to_vec(),
            mac_algorithm: r.mac_algorithm,
            key_version: r.key_version,
        }
    }
}

impl super::Owned for pkms_protocol::kind::VerifyMac {
    type Output = VerifyMacOutput;
    fn own(r: pkms_protocol::reply::VerifyMac) -> VerifyMacOutput {
        VerifyMacOutput {
            key_id: r.key_id,
            mac_valid: r.mac_valid,
            mac_algorithm: r.mac_algorithm,
            key_version: r.key_version,
        }
    }
}
