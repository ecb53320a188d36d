//! The few token operations envelope encryption and file signing need, as a small trait.
//!
//! The library is written against [`KeyService`] rather than the concrete
//! [`crate::client::Client`], so that it can be tested with a local fake and reused over any
//! transport. The implementation for the typed client lives at the end of this file.

use anyhow::Context as _;
use pkms_protocol::{DataKeySpec, ErrorCode, MessageType, SigningAlgorithm};
use zeroize::Zeroizing;

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

/// The token operations used by [`crate::envelope`] and [`crate::filesign`].
pub trait KeyService {
    /// GenerateDataKey with KeySpec AES_256 under `key_id`, bound to `context`.
    fn generate_data_key(&mut self, key_id: &str, context: &ContextPairs) -> anyhow::Result<DataKey>;

    /// Decrypt a wrapped data key. `key_id`, if given, must be the key the blob names.
    /// Errors when the token refuses (wrong context, tampered blob, disabled key …).
    fn decrypt(
        &mut self,
        ciphertext_blob: &[u8],
        context: &ContextPairs,
        key_id: Option<&str>,
    ) -> anyhow::Result<Zeroizing<Vec<u8>>>;

    /// Sign a SHA-256 digest with ECDSA_SHA_256 (MessageType DIGEST) with the key's newest version.
    fn sign_digest(&mut self, key_id: &str, digest: &[u8; 32]) -> anyhow::Result<DigestSignature>;

    /// Verify a DER signature over a SHA-256 digest on the token. `Ok(false)` when the token
    /// says the signature is invalid; `Err` when the verification could not be carried out.
    fn verify_digest(
        &mut self,
        key_id: &str,
        digest: &[u8; 32],
        der: &[u8],
        key_version: Option<u32>,
    ) -> anyhow::Result<bool>;

    /// The DER SubjectPublicKeyInfo of a signing key's version (default newest).
    fn get_public_key(&mut self, key_id: &str, key_version: Option<u32>) -> anyhow::Result<Vec<u8>>;
}

fn str_pairs(context: &ContextPairs) -> Vec<(&str, &str)> {
    context.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

impl KeyService for crate::client::Client {
    fn generate_data_key(&mut self, key_id: &str, context: &ContextPairs) -> anyhow::Result<DataKey> {
        let pairs = str_pairs(context);
        let dk = crate::client::Client::generate_data_key(
            self,
            key_id,
            &pairs,
            crate::model::DataKeySize::Spec(DataKeySpec::Aes256),
        )
        .context("GenerateDataKey failed")?;
        let plain = dk.plaintext.as_ref().context("the token returned no plaintext data key")?;
        let mut plaintext = Zeroizing::new([0u8; 32]);
        if plain.len() != 32 {
            anyhow::bail!("the token returned a {}-byte data key, expected 32", plain.len());
        }
        plaintext.copy_from_slice(plain);
        Ok(DataKey { plaintext, ciphertext_blob: dk.ciphertext_blob.clone(), key_id: dk.key_id.to_string() })
    }

    fn decrypt(
        &mut self,
        ciphertext_blob: &[u8],
        context: &ContextPairs,
        key_id: Option<&str>,
    ) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let pairs = str_pairs(context);
        let out = crate::client::Client::decrypt(self, ciphertext_blob, &pairs, key_id)?;
        Ok(out.plaintext)
    }

    fn sign_digest(&mut self, key_id: &str, digest: &[u8; 32]) -> anyhow::Result<DigestSignature> {
        let out = crate::client::Client::sign(
            self,
            key_id,
            digest,
            MessageType::Digest,
            SigningAlgorithm::EcdsaSha256,
        )
        .context("Sign failed")?;
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
    ) -> anyhow::Result<bool> {
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
            Err(e) => Err(anyhow::Error::new(e).context("Verify failed")),
        }
    }

    fn get_public_key(&mut self, key_id: &str, key_version: Option<u32>) -> anyhow::Result<Vec<u8>> {
        let out = crate::client::Client::get_public_key(self, key_id, key_version)
            .context("GetPublicKey failed")?;
        Ok(out.public_key)
    }
}
