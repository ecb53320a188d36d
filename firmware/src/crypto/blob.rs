//! Sealing and opening ciphertext blobs (format in [`pkms_protocol::blob`]): AES-256-GCM under
//! a key version's material, random 12-byte nonce, associated data = header || canonical
//! encryption context.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use pkms_protocol::blob::{self, BlobHeader, ParsedBlob, HEADER_LEN, TAG_LEN};
use pkms_protocol::context::{encode_canonical, ContextError, ContextPair};
use pkms_protocol::limits::MAX_CONTEXT_BYTES;
use pkms_protocol::{ErrorCode, KeyId, KeyVersion};
use rand_core::{CryptoRng, RngCore};

use crate::err;
use crate::error::{Error, OpResult};

/// Room for the associated data: a header and the largest canonical context.
pub const AAD_BUF: usize = HEADER_LEN + MAX_CONTEXT_BYTES;

/// Writes `header || canonical(context)` into `aad`; returns its length.
pub fn associated_data(
    header: &[u8],
    context: &[ContextPair<'_>],
    aad: &mut [u8; AAD_BUF],
) -> OpResult<usize> {
    aad[..HEADER_LEN].copy_from_slice(header);
    let n = encode_canonical(context, &mut aad[HEADER_LEN..]).map_err(|e| match e {
        ContextError::DuplicateKey => Error::new(ErrorCode::Validation, "EncryptionContext has a key twice"),
        ContextError::EmptyKey => {
            Error::new(ErrorCode::Validation, "EncryptionContext keys must not be empty")
        }
        ContextError::TooLarge => err!(
            Validation,
            "EncryptionContext is too large: at most {} bytes encoded on this token",
            MAX_CONTEXT_BYTES
        ),
    })?;
    Ok(HEADER_LEN + n)
}

/// Seals `plaintext` into a blob in `out`; returns the blob length.
#[allow(clippy::too_many_arguments)]
pub fn seal<R: RngCore + CryptoRng>(
    rng: &mut R,
    material: &[u8],
    key_id: KeyId,
    key_version: KeyVersion,
    context: &[ContextPair<'_>],
    plaintext: &[u8],
    aad: &mut [u8; AAD_BUF],
    out: &mut [u8],
) -> OpResult<usize> {
    let mut nonce = [0u8; blob::NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let header = BlobHeader { key_id, key_version, nonce }.to_bytes();
    let aad_len = associated_data(&header, context, aad)?;
    let total = HEADER_LEN + plaintext.len() + TAG_LEN;
    if out.len() < total {
        return Err(Error::new(ErrorCode::Internal, "blob buffer too small"));
    }
    out[..HEADER_LEN].copy_from_slice(&header);
    let body = &mut out[HEADER_LEN..HEADER_LEN + plaintext.len()];
    body.copy_from_slice(plaintext);
    let cipher =
        Aes256Gcm::new_from_slice(material).map_err(|_| Error::new(ErrorCode::Internal, "bad key length"))?;
    let tag = cipher
        .encrypt_in_place_detached(&Nonce::from(nonce), &aad[..aad_len], body)
        .map_err(|_| Error::new(ErrorCode::Internal, "encryption failed"))?;
    out[total - TAG_LEN..total].copy_from_slice(&tag);
    Ok(total)
}

/// Opens a parsed blob into `out`; returns the plaintext length. Any mismatch (tampering, wrong
/// context, wrong key) is InvalidCiphertext.
pub fn open(
    material: &[u8],
    parsed: &ParsedBlob<'_>,
    context: &[ContextPair<'_>],
    aad: &mut [u8; AAD_BUF],
    out: &mut [u8],
) -> OpResult<usize> {
    let aad_len = associated_data(parsed.header_bytes, context, aad)?;
    let n = parsed.ciphertext.len();
    if out.len() < n {
        return Err(Error::new(ErrorCode::Internal, "plaintext buffer too small"));
    }
    out[..n].copy_from_slice(parsed.ciphertext);
    let cipher =
        Aes256Gcm::new_from_slice(material).map_err(|_| Error::new(ErrorCode::Internal, "bad key length"))?;
    let tag: [u8; TAG_LEN] = parsed
        .tag
        .try_into()
        .map_err(|_| Error::new(ErrorCode::InvalidCiphertext, "CiphertextBlob is malformed"))?;
    let ok = cipher.decrypt_in_place_detached(
        &Nonce::from(parsed.header.nonce),
        &aad[..aad_len],
        &mut out[..n],
        &Tag::from(tag),
    );
    if ok.is_err() {
        out[..n].fill(0);
        return Err(Error::new(
            ErrorCode::InvalidCiphertext,
            "the ciphertext was altered, or the encryption context differs from the one used to encrypt",
        ));
    }
    Ok(n)
}
