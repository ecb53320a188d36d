//! Signing: Sign, Verify, GetPublicKey.

use pkms_protocol::{KeyId, KeySpec, KeyUsage, KeyVersion, SigningAlgorithm};
use serde::Serialize;

use super::encoding::{base64, display, display_list};

/// Sign's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignOutput {
    /// KeyId.
    #[serde(serialize_with = "display")]
    pub key_id: KeyId,
    /// DER signature (low-S).
    #[serde(serialize_with = "base64")]
    pub signature: Vec<u8>,
    /// SigningAlgorithm.
    #[serde(serialize_with = "display")]
    pub signing_algorithm: SigningAlgorithm,
    /// The version that signed.
    pub key_version: KeyVersion,
}

/// Verify's answer (an invalid signature is the error InvalidSignature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyOutput {
    /// KeyId.
    #[serde(serialize_with = "display")]
    pub key_id: KeyId,
    /// SignatureValid.
    pub signature_valid: bool,
    /// SigningAlgorithm.
    #[serde(serialize_with = "display")]
    pub signing_algorithm: SigningAlgorithm,
    /// The version used.
    pub key_version: KeyVersion,
}

/// GetPublicKey's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublicKeyOutput {
    /// KeyId.
    #[serde(serialize_with = "display")]
    pub key_id: KeyId,
    /// DER SubjectPublicKeyInfo.
    #[serde(serialize_with = "base64")]
    pub public_key: Vec<u8>,
    /// KeySpec.
    #[serde(serialize_with = "display")]
    pub key_spec: KeySpec,
    /// KeyUsage.
    #[serde(serialize_with = "display")]
    pub key_usage: KeyUsage,
    /// SigningAlgorithms: [`super::keys::signing_algorithms`] of the key spec.
    #[serde(serialize_with = "display_list")]
    pub signing_algorithms: Vec<SigningAlgorithm>,
    /// The version whose public key this is.
    pub key_version: KeyVersion,
}
