//! Key agreement, key encapsulation and data key pairs: DeriveSharedSecret, Encapsulate,
//! Decapsulate, GenerateDataKeyPair(WithoutPlaintext). Shared secrets and plaintext private
//! keys are [`Zeroizing`] so they are wiped when dropped.

use pkms_protocol::{
    DataKeyPairSpec, EncapsulationAlgorithm, KeyAgreementAlgorithm, KeyId, KeyMaterialId, KeyVersion,
};
use serde::Serialize;
use zeroize::Zeroizing;

use super::encoding::{base64, display, key_arn, opt_base64};

/// DeriveSharedSecret's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SharedSecretOutput {
    /// KeyId.
    #[serde(serialize_with = "key_arn")]
    pub key_id: KeyId,
    /// SharedSecret (the raw ECDH x-coordinate), wiped on drop.
    #[serde(serialize_with = "base64")]
    pub shared_secret: Zeroizing<Vec<u8>>,
    /// KeyAgreementAlgorithm.
    #[serde(serialize_with = "display")]
    pub key_agreement_algorithm: KeyAgreementAlgorithm,
    /// KeyOrigin: keys are made on the token.
    pub key_origin: &'static str,
    /// The version used (newest).
    pub key_version: KeyVersion,
}

/// Encapsulate's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncapsulateOutput {
    /// KeyId.
    #[serde(serialize_with = "key_arn")]
    pub key_id: KeyId,
    /// SharedSecret, wiped on drop.
    #[serde(serialize_with = "base64")]
    pub shared_secret: Zeroizing<Vec<u8>>,
    /// SharedSecretCiphertextBlob: the ML-KEM ciphertext.
    #[serde(serialize_with = "base64")]
    pub shared_secret_ciphertext_blob: Vec<u8>,
    /// EncapsulationAlgorithm.
    #[serde(serialize_with = "display")]
    pub encapsulation_algorithm: EncapsulationAlgorithm,
    /// The version used (newest).
    pub key_version: KeyVersion,
}

/// Decapsulate's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DecapsulateOutput {
    /// KeyId.
    #[serde(serialize_with = "key_arn")]
    pub key_id: KeyId,
    /// SharedSecret, wiped on drop.
    #[serde(serialize_with = "base64")]
    pub shared_secret: Zeroizing<Vec<u8>>,
    /// EncapsulationAlgorithm.
    #[serde(serialize_with = "display")]
    pub encapsulation_algorithm: EncapsulationAlgorithm,
    /// The version used.
    pub key_version: KeyVersion,
}

/// GenerateDataKeyPair's answer (the plaintext private key absent, and left out of the JSON,
/// for GenerateDataKeyPairWithoutPlaintext).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataKeyPairOutput {
    /// PrivateKeyCiphertextBlob: the PKCS#8 private key encrypted under the KMS key.
    #[serde(serialize_with = "base64")]
    pub private_key_ciphertext_blob: Vec<u8>,
    /// PrivateKeyPlaintext: PKCS#8 DER, wiped on drop.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_base64")]
    pub private_key_plaintext: Option<Zeroizing<Vec<u8>>>,
    /// PublicKey: DER SubjectPublicKeyInfo.
    #[serde(serialize_with = "base64")]
    pub public_key: Vec<u8>,
    /// KeyId.
    #[serde(serialize_with = "key_arn")]
    pub key_id: KeyId,
    /// KeyPairSpec.
    #[serde(serialize_with = "display")]
    pub key_pair_spec: DataKeyPairSpec,
    /// KeyMaterialId of the symmetric key version that encrypted the private key.
    #[serde(serialize_with = "display")]
    pub key_material_id: KeyMaterialId,
}

impl super::Owned for pkms_protocol::kind::SharedSecret {
    type Output = SharedSecretOutput;
    fn own(r: pkms_protocol::reply::SharedSecret<'_>) -> SharedSecretOutput {
        SharedSecretOutput {
            key_id: r.key_id,
            shared_secret: Zeroizing::new(r.shared_secret.to_vec()),
            key_agreement_algorithm: r.key_agreement_algorithm,
            key_origin: "AWS_KMS",
            key_version: r.key_version,
        }
    }
}

impl super::Owned for pkms_protocol::kind::Encapsulated {
    type Output = EncapsulateOutput;
    fn own(r: pkms_protocol::reply::Encapsulated<'_>) -> EncapsulateOutput {
        EncapsulateOutput {
            key_id: r.key_id,
            shared_secret: Zeroizing::new(r.shared_secret.to_vec()),
            shared_secret_ciphertext_blob: r.shared_secret_ciphertext_blob.to_vec(),
            encapsulation_algorithm: r.encapsulation_algorithm,
            key_version: r.key_version,
        }
    }
}

impl super::Owned for pkms_protocol::kind::Decapsulated {
    type Output = DecapsulateOutput;
    fn own(r: pkms_protocol::reply::Decapsulated<'_>) -> DecapsulateOutput {
        DecapsulateOutput {
            key_id: r.key_id,
            shared_secret: Zeroizing::new(r.shared_secret.to_vec()),
            encapsulation_algorithm: r.encapsulation_algorithm,
            key_version: r.key_version,
        }
    }
}

impl super::Owned for pkms_protocol::kind::DataKeyPair {
    type Output = DataKeyPairOutput;
    fn own(r: pkms_protocol::reply::DataKeyPair<'_>) -> DataKeyPairOutput {
        DataKeyPairOutput {
            private_key_ciphertext_blob: r.private_key_ciphertext_blob.to_vec(),
            private_key_plaintext: r.private_key_plaintext.map(|p| Zeroizing::new(p.to_vec())),
            public_key: r.public_key.to_vec(),
            key_id: r.key_id,
            key_pair_spec: r.key_pair_spec,
            key_material_id: r.key_material_id,
        }
    }
}
