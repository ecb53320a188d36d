//! Signing: Sign, Verify, GetPublicKey.

use pkms_protocol::{
    EncapsulationAlgorithm, KeyAgreementAlgorithm, KeyId, KeySpec, KeyUsage, KeyVersion, SigningAlgorithm,
};
use serde::Serialize;

use super::encoding::{base64, display, display_list, key_arn};

/// Sign's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignOutput {
    /// KeyId.
    #[serde(serialize_with = "key_arn")]
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
    #[serde(serialize_with = "key_arn")]
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
    #[serde(serialize_with = "key_arn")]
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
    /// SigningAlgorithms: [`super::keys::signing_algorithms`] of the key spec and usage.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "display_list")]
    pub signing_algorithms: Vec<SigningAlgorithm>,
    /// KeyAgreementAlgorithms (KEY_AGREEMENT keys).
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "display_list")]
    pub key_agreement_algorithms: Vec<KeyAgreementAlgorithm>,
    /// EncapsulationAlgorithms (ML-KEM keys).
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "display_list")]
    pub encapsulation_algorithms: Vec<EncapsulationAlgorithm>,
    /// The version whose public key this is.
    pub key_version: KeyVersion,
}

impl super::Owned for pkms_protocol::kind::Sign {
    type Output = SignOutput;
    fn own(r: pkms_protocol::reply::Sign<'_>) -> SignOutput {
        SignOutput {
            key_id: r.key_id,
            signature: r.signature.to_vec(),
            signing_algorithm: r.signing_algorithm,
            key_version: r.key_version,
        }
    }
}

impl super::Owned for pkms_protocol::kind::Verify {
    type Output = VerifyOutput;
    fn own(r: pkms_protocol::reply::Verify) -> VerifyOutput {
        VerifyOutput {
            key_id: r.key_id,
            signature_valid: r.signature_valid,
            signing_algorithm: r.signing_algorithm,
            key_version: r.key_version,
        }
    }
}

impl super::Owned for pkms_protocol::kind::PublicKey {
    type Output = PublicKeyOutput;
    fn own(r: pkms_protocol::reply::PublicKey<'_>) -> PublicKeyOutput {
        PublicKeyOutput {
            key_id: r.key_id,
            public_key: r.public_key.to_vec(),
            key_spec: r.key_spec,
            key_usage: r.key_usage,
            signing_algorithms: super::keys::signing_algorithms(r.key_spec, r.key_usage),
            key_agreement_algorithms: super::keys::key_agreement_algorithms(r.key_usage),
            encapsulation_algorithms: super::keys::encapsulation_algorithms(r.key_usage),
            key_version: r.key_version,
        }
    }
}
