//! The few token operations envelope encryption and file signing need, as two small traits:
//! [`KeyService`] (data keys, for [`crate::envelope`] and [`crate::datakey_cache`]) and
//! [`SigningService`] (digest signatures, for [`crate::filesign`]).
//!
//! The library is written against them rather than the concrete [`crate::client::Client`], so
//! that it can be tested with a local fake and reused over any transport. The implementations
//! for the typed client live at the end of this file.

use pkms_protocol::{DataKeySpec, ErrorCode, MessageType, SigningAlgorithm};
use zeroize::Zeroizing;

use crate::error::{Chain, Error};

/// Why a [`KeyService`] or [`SigningService`] call failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyServiceError {
    /// The token refused the request, or the link to it failed.
    #[error("{}", Chain(.0))]
    Client(Error),
    /// As [`KeyServiceError::Client`], reported under the name of the token operation.
    #[error("{operation} failed: {}", Chain(.error))]
    Operation {
        /// The KMS operation, e.g. `GenerateDataKey`.
        operation: &'static str,
        /// What the client reported.
        error: Error,
    },
    /// GenerateDataKey's answer carried no plaintext data key.
    #[error("the token returned no plaintext data key")]
    MissingPlaintext,
    /// GenerateDataKey's plaintext data key is not 32 bytes long.
    #[error("the token returned a {0}-byte data key, expected 32")]
    DataKeyLength(usize),
}

impl KeyServiceError {
    /// The client's error (the token's refusal or the link failure), if that is what failed.
    pub fn client_error(&self) -> Option<&Error> {
        match self {
            KeyServiceError::Client(e) | KeyServiceError::Operation { error: e, .. } => Some(e),
            KeyServiceError::MissingPlaintext | KeyServiceError::DataKeyLength(_) => None,
        }
    }
}

impl From<Error> for KeyServiceError {
    fn from(e: Error) -> Self {
        KeyServiceError::Client(e)
    }
}

/// A [`KeyService`] or [`SigningService`] result.
pub type KeyServiceResult<T> = Result<T, KeyServiceError>;

/// Encryption context pairs (key, value) as the caller gave them; order is irrelevant.
pub type ContextPairs = [(String, String)];

/// A fresh 256-bit data key: its plaintext (wiped on drop) and the blob that wraps it.
#[derive(Clone)]
pub struct DataKey {
    /// The plaintext AES-256 data key. Never written anywhere; zeroized on drop.
    pub plaintext: Zeroizing<[u8; 32]>,
    /// The data key encrypted under the KMS key (a [`pkms_protocol::blob`] ciphertext blob).
    pub ciphertext_blob: Vec<u8>,
    /// The KMS key that wrapped it, in UUID form.
    pub key_id: String,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("plaintext", &"<redacted>")
            .field("ciphertext_blob_len", &self.ciphertext_blob.len())
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// An ECDSA_SHA_256 signature made over a SHA-256 digest (MessageType DIGEST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSignature {
    /// DER-encoded ECDSA signature.
    pub der: Vec<u8>,
    /// The signing key, in UUID form.
    pub key_id: String,
    /// The key version that signed.
    pub key_version: u32,
}

/// The data-key operations envelope encryption uses.
pub trait KeyService {
    /// GenerateDataKey with KeySpec AES_256 under `key_id`, bound to `context`.
    fn generate_data_key(&mut self, key_id: &str, context: &ContextPairs) -> KeyServiceResult<DataKey>;

    /// Decrypt a wrapped data key. `key_id`, if given, must be the key the blob names.
    /// Errors when the token refuses (wrong context, tampered blob, disabled key …).
    fn decrypt(
        &mut self,
        ciphertext_blob: &[u8],
        context: &ContextPairs,
        key_id: Option<&str>,
    ) -> KeyServiceResult<Zeroizing<Vec<u8>>>;
}

/// The signing operations file signing uses.
pub trait SigningService {
    /// Sign a SHA-256 digest with ECDSA_SHA_256 (MessageType DIGEST) with the key's newest version.
    fn sign_digest(&mut self, key_id: &str, digest: &[u8; 32]) -> KeyServiceResult<DigestSignature>;

    /// Verify a DER signature over a SHA-256 digest on the token. `Ok(false)` when the token
    /// says the signature is invalid; `Err` when the verification could not be carried out.
    fn verify_digest(
        &mut self,
        key_id: &str,
        digest: &[u8; 32],
        der: &[u8],
        key_version: Option<u32>,
    ) -> KeyServiceResult<bool>;

    /// The DER SubjectPublicKeyInfo of a signing key's version (default newest).
    fn get_public_key(&mut self, key_id: &str, key_version: Option<u32>) -> KeyServiceResult<Vec<u8>>;
}

fn str_pairs(context: &ContextPairs) -> Vec<(&str, &str)> {
    context.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

impl KeyService for crate::client::Client {
    fn generate_data_key(&mut self, key_id: &str, context: &ContextPairs) -> KeyServiceResult<DataKey> {
        let pairs = str_pairs(context);
        let dk = crate::client::Client::generate_data_key(
            self,
            key_id,
            &pairs,
            crate::model::DataKeySize::Spec(DataKeySpec::Aes256),
        )
        .map_err(|error| KeyServiceError::Operation { operation: "GenerateDataKey", error })?;
        let plain = dk.plaintext.as_ref().ok_or(KeyServiceError::MissingPlaintext)?;
        let mut plaintext = Zeroizing::new([0u8; 32]);
        if plain.len() != 32 {
            return Err(KeyServiceError::DataKeyLength(plain.len()));
        }
        plaintext.copy_from_slice(plain);
        Ok(DataKey { plaintext, ciphertext_blob: dk.ciphertext_blob.clone(), key_id: dk.key_id.to_string() })
    }

    fn decrypt(
        &mut self,
        ciphertext_blob: &[u8],
        context: &ContextPairs,
        key_id: Option<&str>,
    ) -> KeyServiceResult<Zeroizing<Vec<u8>>> {
        let pairs = str_pairs(context);
        let out = crate::client::Client::decrypt(self, ciphertext_blob, &pairs, key_id)?;
        Ok(out.plaintext)
    }
}

impl SigningService for crate::client::Client {
    fn sign_digest(&mut self, key_id: &str, digest: &[u8; 32]) -> KeyServiceResult<DigestSignature> {
        let out = crate::client::Client::sign(
            self,
            key_id,
            digest,
            MessageType::Digest,
            SigningAlgorithm::EcdsaSha256,
        )
        .map_err(|error| KeyServiceError::Operation { operation: "Sign", error })?;
        Ok(DigestSignature {
            der: out.signature,
            key_id: out.key_id.to_string(),
            key_version: out.key_version,
        })
    }

    fn verify_digest(
        &mut self,
        key_id: &str,
        digest: &[u8; 32],
        der: &[u8],
        key_version: Option<u32>,
    ) -> KeyServiceResult<bool> {
        match crate::client::Client::verify(
            self,
            key_id,
            digest,
            MessageType::Digest,
            der,
            SigningAlgorithm::EcdsaSha256,
            key_version,
        ) {
            Ok(out) => Ok(out.signature_valid),
            Err(e) if e.code() == Some(ErrorCode::InvalidSignature) => Ok(false),
            Err(error) => Err(KeyServiceError::Operation { operation: "Verify", error }),
        }
    }

    fn get_public_key(&mut self, key_id: &str, key_version: Option<u32>) -> KeyServiceResult<Vec<u8>> {
        let out = crate::client::Client::get_public_key(self, key_id, key_version)
            .map_err(|error| KeyServiceError::Operation { operation: "GetPublicKey", error })?;
        Ok(out.public_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_operation_and_keep_the_client_error() {
        let refused = Error::Token { code: ErrorCode::NotFound, message: "no such key".into() };
        let e = KeyServiceError::Operation { operation: "GenerateDataKey", error: refused };
        assert_eq!(e.to_string(), "GenerateDataKey failed: NotFoundException: no such key");
        assert_eq!(e.client_error().and_then(Error::code), Some(ErrorCode::NotFound));
        let link = KeyServiceError::from(Error::Link(crate::error::LinkError::Closed));
        assert_eq!(link.to_string(), "the token closed the connection");
        assert!(link.client_error().is_some_and(Error::is_link));
        assert!(KeyServiceError::MissingPlaintext.client_error().is_none());
    }
}
