//! Encrypt, Decrypt, ReEncrypt, GenerateDataKey and GenerateDataKeyWithoutPlaintext
//! (SYMMETRIC_DEFAULT keys: AES-256-GCM).
//!
//! Encrypt and GenerateDataKey use the key's newest version; Decrypt uses the version the blob
//! names. Decrypt and the source side of ReEncrypt ask for a button press on keys created with
//! `user_presence_required`; Encrypt and GenerateDataKey do not (they reveal no stored secret).

use embedded_storage::nor_flash::NorFlash;
use pkms_protocol::blob::{self, ParsedBlob};
use pkms_protocol::context::ContextPair;
use pkms_protocol::limits::{MAX_PLAINTEXT, MAX_RANDOM_BYTES};
use pkms_protocol::{DataKeySpec, ErrorCode, KeyId, KeyMaterialId, KeyUsage, KeyVersion, Response};
use rand_core::{CryptoRng, RngCore};

use super::{Buffers, Core};
use crate::board::Board;
use crate::crypto::blob::{open, seal, AAD_BUF};
use crate::err;
use crate::error::{Error, OpResult};

/// Encrypts `plaintext` under the newest version of the loaded key `id` into `out`.
#[allow(clippy::too_many_arguments)]
fn seal_newest<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    id: &KeyId,
    context: &[ContextPair<'_>],
    plaintext: &[u8],
    aad: &mut [u8; AAD_BUF],
    out: &mut [u8],
) -> OpResult<(usize, KeyVersion, KeyMaterialId)> {
    core.require_enabled(id)?;
    core.require_usage(id, KeyUsage::EncryptDecrypt, "encryption")?;
    let version = core.newest_version();
    let material = core.material(id, version)?;
    let n = seal(&mut core.rng, material.as_bytes(), *id, version, context, plaintext, aad, out)?;
    let mid = match core.rec.newest() {
        Some(e) => core.device()?.material_id(id, e),
        None => KeyMaterialId::default(),
    };
    Ok((n, version, mid))
}

/// Encrypt.
pub fn encrypt<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    key_ref: &str,
    plaintext: &[u8],
    context: &[ContextPair<'_>],
) -> OpResult<Response<'b>> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(err!(
            Validation,
            "Plaintext is {} bytes; Encrypt takes at most {} bytes. Use envelope encryption: GenerateDataKey or `pkms encrypt-file`",
            plaintext.len(),
            MAX_PLAINTEXT
        ));
    }
    if plaintext.is_empty() {
        return Err(err!(Validation, "Plaintext must be 1..={} bytes", MAX_PLAINTEXT));
    }
    let id = core.load_ref(key_ref)?;
    let (n, key_version, key_material_id) =
        seal_newest(core, &id, context, plaintext, &mut bufs.aad, &mut bufs.a)?;
    Ok(Response::Encrypt { ciphertext_blob: &bufs.a[..n], key_id: id, key_version, key_material_id })
}

/// Parses a blob, checks the optional key id, loads the key the blob names and decrypts into
/// `out`. Returns the plaintext length, key id, version and material id.
#[allow(clippy::too_many_arguments)]
fn open_blob<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    blob_bytes: &[u8],
    context: &[ContextPair<'_>],
    key_ref: Option<&str>,
    aad: &mut [u8; AAD_BUF],
    out: &mut [u8],
) -> OpResult<(usize, KeyId, KeyVersion, KeyMaterialId)> {
    let parsed: ParsedBlob<'_> = blob::parse(blob_bytes).ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidCiphertext,
            "CiphertextBlob is not a Pocket KMS ciphertext (bad length or header)",
        )
    })?;
    if parsed.ciphertext.len() > MAX_PLAINTEXT {
        return Err(Error::new(
            ErrorCode::InvalidCiphertext,
            "CiphertextBlob is longer than any this token makes",
        ));
    }
    let id = parsed.header.key_id;
    if let Some(r) = key_ref {
        let given = core.resolve(r)?;
        if given != id {
            return Err(err!(IncorrectKey, "the ciphertext was made under key {}, not {}", id, given));
        }
    }
    match core.load(&id) {
        Ok(()) => {}
        Err(e) if e.code == ErrorCode::NotFound => {
            return Err(err!(
                InvalidCiphertext,
                "the ciphertext names key {}, which this token does not hold",
                id
            ));
        }
        Err(e) => return Err(e),
    }
    core.require_enabled(&id)?;
    core.require_usage(&id, KeyUsage::EncryptDecrypt, "decryption")?;
    let version = parsed.header.key_version;
    let material = match core.material(&id, version) {
        Err(e) if e.code == ErrorCode::NotFound => {
            return Err(err!(
                InvalidCiphertext,
                "the ciphertext names version {} of key {}, which never existed",
                version,
                id
            ))
        }
        other => other?,
    };
    core.require_presence()?;
    let n = open(material.as_bytes(), &parsed, context, aad, out)?;
    let mid = match core.rec.version(version) {
        Some(e) => core.device()?.material_id(&id, e),
        None => KeyMaterialId::default(),
    };
    Ok((n, id, version, mid))
}

/// Decrypt.
pub fn decrypt<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    blob_bytes: &[u8],
    context: &[ContextPair<'_>],
    key_ref: Option<&str>,
) -> OpResult<Response<'b>> {
    let (n, key_id, key_version, key_material_id) =
        open_blob(core, blob_bytes, context, key_ref, &mut bufs.aad, &mut bufs.a)?;
    Ok(Response::Decrypt { plaintext: &bufs.a[..n], key_id, key_version, key_material_id })
}

/// ReEncrypt: decrypt and encrypt again inside the token.
#[allow(clippy::too_many_arguments)]
pub fn re_encrypt<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    blob_bytes: &[u8],
    source_context: &[ContextPair<'_>],
    source_key_ref: Option<&str>,
    destination_key_ref: &str,
    destination_context: &[ContextPair<'_>],
) -> OpResult<Response<'b>> {
    let (n, source_key_id, _, source_key_material_id) =
        open_blob(core, blob_bytes, source_context, source_key_ref, &mut bufs.aad, &mut bufs.b)?;
    let result = (|| -> OpResult<(usize, KeyId, KeyMaterialId)> {
        let dest = core.load_ref(destination_key_ref)?;
        let (m, _, mid) =
            seal_newest(core, &dest, destination_context, &bufs.b[..n], &mut bufs.aad, &mut bufs.a)?;
        Ok((m, dest, mid))
    })();
    bufs.b[..n].fill(0);
    let (m, key_id, destination_key_material_id) = result?;
    Ok(Response::ReEncrypt {
        ciphertext_blob: &bufs.a[..m],
        source_key_id,
        key_id,
        source_key_material_id,
        destination_key_material_id,
    })
}

/// GenerateDataKey (`with_plaintext`) and GenerateDataKeyWithoutPlaintext.
pub fn generate_data_key<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    key_ref: &str,
    context: &[ContextPair<'_>],
    key_spec: Option<DataKeySpec>,
    number_of_bytes: Option<u16>,
    with_plaintext: bool,
) -> OpResult<Response<'b>> {
    let len = match (key_spec, number_of_bytes) {
        (Some(s), None) => s.key_len(),
        (None, Some(n)) if (1..=MAX_RANDOM_BYTES).contains(&(n as usize)) => n as usize,
        (None, Some(n)) => {
            return Err(err!(Validation, "NumberOfBytes must be 1..={}, not {}", MAX_RANDOM_BYTES, n))
        }
        _ => {
            return Err(err!(Validation, "give exactly one of KeySpec (AES_256, AES_128) and NumberOfBytes"))
        }
    };
    let id = core.load_ref(key_ref)?;
    core.rng.fill_bytes(&mut bufs.b[..len]);
    let sealed = seal_newest(core, &id, context, &bufs.b[..len], &mut bufs.aad, &mut bufs.a);
    if !with_plaintext {
        bufs.b[..len].fill(0);
    }
    let (n, _, key_material_id) = sealed?;
    Ok(Response::DataKey {
        ciphertext_blob: &bufs.a[..n],
        plaintext: if with_plaintext { Some(&bufs.b[..len]) } else { None },
        key_id: id,
        key_material_id,
    })
}
