//! Symmetric cryptography: Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
//! GenerateDataKeyWithoutPlaintext and GenerateRandom. Plaintexts and data keys are
//! [`Zeroizing`] so they are wiped when dropped.

use pkms_protocol::{DataKeySpec, EncryptionAlgorithm, KeyId, KeyMaterialId, KeyVersion};
use serde::Serialize;
use zeroize::Zeroizing;

use super::encoding::{base64, display, key_arn, opt_base64};

/// Encrypt's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptOutput {
    /// CiphertextBlob.
    #[serde(serialize_with = "base64")]
    pub ciphertext_blob: Vec<u8>,
    /// KeyId.
    #[serde(serialize_with = "key_arn")]
    pub key_id: KeyId,
    /// EncryptionAlgorithm (the token's only one, SYMMETRIC_DEFAULT).
    #[serde(serialize_with = "display")]
    pub encryption_algorithm: EncryptionAlgorithm,
    /// KeyMaterialId of that version.
    #[serde(serialize_with = "display")]
    pub key_material_id: KeyMaterialId,
    /// The version used (newest).
    pub key_version: KeyVersion,
}

/// Decrypt's answer; the plaintext is wiped on drop.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DecryptOutput {
    /// KeyId.
    #[serde(serialize_with = "key_arn")]
    pub key_id: KeyId,
    /// Plaintext.
    #[serde(serialize_with = "base64")]
    pub plaintext: Zeroizing<Vec<u8>>,
    /// EncryptionAlgorithm (SYMMETRIC_DEFAULT).
    #[serde(serialize_with = "display")]
    pub encryption_algorithm: EncryptionAlgorithm,
    /// KeyMaterialId.
    #[serde(serialize_with = "display")]
    pub key_material_id: KeyMaterialId,
    /// The version the blob named.
    pub key_version: KeyVersion,
}

/// ReEncrypt's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReEncryptOutput {
    /// CiphertextBlob under the destination key.
    #[serde(serialize_with = "base64")]
    pub ciphertext_blob: Vec<u8>,
    /// SourceKeyId.
    #[serde(serialize_with = "key_arn")]
    pub source_key_id: KeyId,
    /// KeyId (destination).
    #[serde(serialize_with = "key_arn")]
    pub key_id: KeyId,
    /// SourceEncryptionAlgorithm (SYMMETRIC_DEFAULT).
    #[serde(serialize_with = "display")]
    pub source_encryption_algorithm: EncryptionAlgorithm,
    /// DestinationEncryptionAlgorithm (SYMMETRIC_DEFAULT).
    #[serde(serialize_with = "display")]
    pub destination_encryption_algorithm: EncryptionAlgorithm,
    /// SourceKeyMaterialId.
    #[serde(serialize_with = "display")]
    pub source_key_material_id: KeyMaterialId,
    /// DestinationKeyMaterialId.
    #[serde(serialize_with = "display")]
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

/// GenerateDataKey's answer (plaintext absent for GenerateDataKeyWithoutPlaintext, and then
/// left out of the JSON too).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataKey {
    /// CiphertextBlob: the data key encrypted under the KMS key.
    #[serde(serialize_with = "base64")]
    pub ciphertext_blob: Vec<u8>,
    /// The plaintext data key, wiped on drop.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_base64")]
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    /// KeyId.
    #[serde(serialize_with = "key_arn")]
    pub key_id: KeyId,
    /// KeyMaterialId.
    #[serde(serialize_with = "display")]
    pub key_material_id: KeyMaterialId,
}

/// GenerateRandom's answer as KMS writes it; the bytes are wiped on drop.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateRandomOutput {
    /// Plaintext: the random bytes.
    #[serde(serialize_with = "base64")]
    pub plaintext: Zeroizing<Vec<u8>>,
}

impl super::Owned for pkms_protocol::kind::Random {
    type Output = Zeroizing<Vec<u8>>;
    fn own(r: pkms_protocol::reply::Random<'_>) -> Self::Output {
        Zeroizing::new(r.plaintext.to_vec())
    }
}

impl super::Owned for pkms_protocol::kind::Encrypt {
    type Output = EncryptOutput;
    fn own(r: pkms_protocol::reply::Encrypt<'_>) -> EncryptOutput {
        EncryptOutput {
            ciphertext_blob: r.ciphertext_blob.to_vec(),
            key_id: r.key_id,
            encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
            key_version: r.key_version,
            key_material_id: r.key_material_id,
        }
    }
}

impl super::Owned for pkms_protocol::kind::Decrypt {
    type Output = DecryptOutput;
    fn own(r: pkms_protocol::reply::Decrypt<'_>) -> DecryptOutput {
        DecryptOutput {
            plaintext: Zeroizing::new(r.plaintext.to_vec()),
            encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
            key_id: r.key_id,
            key_version: r.key_version,
            key_material_id: r.key_material_id,
        }
    }
}

impl super::Owned for pkms_protocol::kind::ReEncrypt {
    type Output = ReEncryptOutput;
    fn own(r: pkms_protocol::reply::ReEncrypt<'_>) -> ReEncryptOutput {
        ReEncryptOutput {
            ciphertext_blob: r.ciphertext_blob.to_vec(),
            source_key_id: r.source_key_id,
            key_id: r.key_id,
            source_encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
            destination_encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
            source_key_material_id: r.source_key_material_id,
            destination_key_material_id: r.destination_key_material_id,
        }
    }
}

impl super::Owned for pkms_protocol::kind::DataKey {
    type Output = DataKey;
    fn own(r: pkms_protocol::reply::DataKey<'_>) -> DataKey {
        DataKey {
            ciphertext_blob: r.ciphertext_blob.to_vec(),
            plaintext: r.plaintext.map(|p| Zeroizing::new(p.to_vec())),
            key_id: r.key_id,
            key_material_id: r.key_material_id,
        }
    }
}
