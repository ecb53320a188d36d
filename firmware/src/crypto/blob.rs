//! Sealing and opening ciphertext blobs (format in [`pkms_protocol::blob`]): AES-256-GCM under
//! a key version's material, random 12-byte nonce, associated data = header || canonical
//! encryption context.

use pkms_protocol::blob::{self, BlobHeader, ParsedBlob, HEADER_LEN, TAG_LEN};
use pkms_protocol::context::{encode_canonical, ContextError, ContextPair};
use pkms_protocol::limits::MAX_CONTEXT_BYTES;
use pkms_protocol::{ErrorCode, KeyId, KeyVersion};
use rand_core::{CryptoRng, RngCore};

use super::gcm::Aes256Gcm;
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
        .encrypt_in_place_detached(&nonce, &aad[..aad_len], body)
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
    let ok = cipher.decrypt_in_place_detached(&parsed.header.nonce, &aad[..aad_len], &mut out[..n], &tag);
    if ok.is_err() {
        out[..n].fill(0);
        return Err(Error::new(
            ErrorCode::InvalidCiphertext,
            "the ciphertext was altered, or the encryption context differs from the one used to encrypt",
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    use rand_chacha::rand_core::SeedableRng;

    /// A blob sealed the way the token did before `crypto::gcm` (RustCrypto `aes-gcm` 0.10,
    /// associated data = header ‖ canonical context) opens, and a blob sealed now opens with
    /// `aes-gcm`: existing ciphertexts stay readable in both directions.
    #[test]
    fn blobs_sealed_with_the_aes_gcm_crate_still_open_and_the_other_way_round() {
        let material = [0x3cu8; 32];
        let context = [("app", "billing"), ("env", "prod")];
        let plaintext = b"a secret of 37 bytes, not a multiple";
        let header = BlobHeader { key_id: KeyId([5; 16]), key_version: 3, nonce: [0xa7; 12] }.to_bytes();
        let mut aad = [0u8; AAD_BUF];
        let aad_len = associated_data(&header, &context, &mut aad).unwrap();
        let old = aes_gcm::Aes256Gcm::new(&material.into());
        let mut body = plaintext.to_vec();
        let tag = old.encrypt_in_place_detached(&[0xa7; 12].into(), &aad[..aad_len], &mut body).unwrap();
        let mut blob = header.to_vec();
        blob.extend_from_slice(&body);
        blob.extend_from_slice(&tag);

        let parsed = blob::parse(&blob).unwrap();
        let mut out = [0u8; 64];
        let n = open(&material, &parsed, &context, &mut aad, &mut out).unwrap();
        assert_eq!(&out[..n], plaintext);
        assert!(open(&material, &parsed, &context[..1], &mut aad, &mut out).is_err(), "other context");

        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let mut sealed = [0u8; 128];
        let len =
            seal(&mut rng, &material, KeyId([5; 16]), 3, &context, plaintext, &mut aad, &mut sealed).unwrap();
        let parsed = blob::parse(&sealed[..len]).unwrap();
        let aad_len = associated_data(parsed.header_bytes, &context, &mut aad).unwrap();
        let mut body = parsed.ciphertext.to_vec();
        let tag: [u8; TAG_LEN] = parsed.tag.try_into().unwrap();
        old.decrypt_in_place_detached(&parsed.header.nonce.into(), &aad[..aad_len], &mut body, &tag.into())
            .unwrap();
        assert_eq!(&body[..], plaintext);
    }
}
