//! A local stand-in for the token in file tests: wraps data keys in the real blob format with
//! AES-256-GCM and signs with software P-256 keys. Counts calls so cache tests can assert them.
#![allow(dead_code)]

use std::collections::HashMap;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::EncodePublicKey;
use pkms_lib::envelope::{
    ContextPairs, DataKey, DigestSignature, KeyService, KeyServiceError, KeyServiceResult, SigningService,
};
use pkms_lib::Error;
use pkms_protocol::blob::{self, BlobHeader};
use pkms_protocol::ErrorCode;
use pkms_protocol::KeyId;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

/// Key id of the fake's symmetric key.
pub const SYM_KEY: &str = "11111111-2222-3333-4444-555555555555";
/// Key id of the fake's signing key.
pub const SIGN_KEY: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

/// Software key service.
pub struct FakeToken {
    sym: HashMap<KeyId, [u8; 32]>,
    sign: HashMap<KeyId, SigningKey>,
    /// GenerateDataKey calls.
    pub generated: usize,
    /// Decrypt calls.
    pub decrypted: usize,
    /// Sign calls.
    pub signed: usize,
}

/// The token's refusal `code`, as the client reports it.
fn refused(code: ErrorCode, message: &str) -> KeyServiceError {
    KeyServiceError::Client(Error::Token { code, message: message.to_owned() })
}

fn ctx_bytes(ctx: &ContextPairs) -> KeyServiceResult<Vec<u8>> {
    pkms_lib::envelope::format::canonical_context(ctx)
        .map_err(|e| refused(ErrorCode::Validation, &e.to_string()))
}

fn key(s: &str) -> KeyServiceResult<KeyId> {
    KeyId::parse(s).ok_or_else(|| refused(ErrorCode::NotFound, s))
}

impl FakeToken {
    pub fn new() -> FakeToken {
        let mut sym = HashMap::new();
        let mut k = [0u8; 32];
        OsRng.fill_bytes(&mut k);
        sym.insert(KeyId::parse(SYM_KEY).unwrap(), k);
        let mut sign = HashMap::new();
        sign.insert(KeyId::parse(SIGN_KEY).unwrap(), SigningKey::random(&mut OsRng));
        FakeToken { sym, sign, generated: 0, decrypted: 0, signed: 0 }
    }

    /// The signing key's public half, DER SPKI.
    pub fn public_key_der(&self) -> Vec<u8> {
        let sk = &self.sign[&KeyId::parse(SIGN_KEY).unwrap()];
        VerifyingKey::from(sk).to_public_key_der().unwrap().as_bytes().to_vec()
    }
}

impl KeyService for FakeToken {
    fn generate_data_key(&mut self, key_id: &str, context: &ContextPairs) -> KeyServiceResult<DataKey> {
        let id = key(key_id)?;
        let master = *self.sym.get(&id).ok_or_else(|| refused(ErrorCode::NotFound, key_id))?;
        let mut plaintext = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut plaintext[..]);
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let header = BlobHeader { key_id: id, key_version: 1, nonce }.to_bytes();
        let mut aad = header.to_vec();
        aad.extend_from_slice(&ctx_bytes(context)?);
        let mut body = plaintext.to_vec();
        let tag = Aes256Gcm::new(&master.into())
            .encrypt_in_place_detached(&Nonce::from(nonce), &aad, &mut body)
            .map_err(|_| refused(ErrorCode::Internal, "seal"))?;
        let mut ciphertext_blob = header.to_vec();
        ciphertext_blob.extend_from_slice(&body);
        ciphertext_blob.extend_from_slice(&tag);
        self.generated += 1;
        Ok(DataKey { plaintext, ciphertext_blob, key_id: id.to_string() })
    }

    fn decrypt(
        &mut self,
        ciphertext_blob: &[u8],
        context: &ContextPairs,
        key_id: Option<&str>,
    ) -> KeyServiceResult<Zeroizing<Vec<u8>>> {
        self.decrypted += 1;
        let p = blob::parse(ciphertext_blob).ok_or_else(|| refused(ErrorCode::InvalidCiphertext, ""))?;
        if let Some(k) = key_id {
            if key(k)? != p.header.key_id {
                return Err(refused(ErrorCode::IncorrectKey, ""));
            }
        }
        let master = self.sym.get(&p.header.key_id).ok_or_else(|| refused(ErrorCode::NotFound, ""))?;
        let mut aad = p.header_bytes.to_vec();
        aad.extend_from_slice(&ctx_bytes(context)?);
        let mut body = Zeroizing::new(p.ciphertext.to_vec());
        let tag: [u8; 16] = p.tag.try_into().map_err(|_| refused(ErrorCode::InvalidCiphertext, ""))?;
        Aes256Gcm::new(&(*master).into())
            .decrypt_in_place_detached(&Nonce::from(p.header.nonce), &aad, &mut body, &Tag::from(tag))
            .map_err(|_| {
                refused(ErrorCode::InvalidCiphertext, "the blob or its encryption context is wrong")
            })?;
        Ok(body)
    }
}

impl SigningService for FakeToken {
    fn sign_digest(&mut self, key_id: &str, digest: &[u8; 32]) -> KeyServiceResult<DigestSignature> {
        let id = key(key_id)?;
        let sk = self.sign.get(&id).ok_or_else(|| refused(ErrorCode::NotFound, key_id))?;
        let sig: Signature = sk.sign_prehash(digest).map_err(|_| refused(ErrorCode::Internal, "sign"))?;
        self.signed += 1;
        Ok(DigestSignature { der: sig.to_der().as_bytes().to_vec(), key_id: id.to_string(), key_version: 1 })
    }

    fn verify_digest(
        &mut self,
        key_id: &str,
        digest: &[u8; 32],
        der: &[u8],
        _key_version: Option<u32>,
    ) -> KeyServiceResult<bool> {
        let id = key(key_id)?;
        let sk = self.sign.get(&id).ok_or_else(|| refused(ErrorCode::NotFound, key_id))?;
        let Ok(sig) = Signature::from_der(der) else { return Ok(false) };
        Ok(VerifyingKey::from(sk).verify_prehash(digest, &sig).is_ok())
    }

    fn get_public_key(&mut self, key_id: &str, _key_version: Option<u32>) -> KeyServiceResult<Vec<u8>> {
        let _ = key(key_id)?;
        Ok(self.public_key_der())
    }
}

#[path = "../support/pseudo_random.rs"]
mod pseudo_random;

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub use pseudo_random::bytes as data;
