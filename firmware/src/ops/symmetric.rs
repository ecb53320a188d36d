//! Encrypt, Decrypt, ReEncrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext,
//! GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext (SYMMETRIC_DEFAULT keys:
//! AES-256-GCM).
//!
//! Encrypt and GenerateDataKey use the key's newest version; Decrypt uses the version the blob
//! names. Decrypt and the source side of ReEncrypt ask for a button press on keys created with
//! `user_presence_required`; Encrypt and GenerateDataKey do not (they reveal no stored secret).

use pkms_protocol::blob::ParsedBlob;
use pkms_protocol::context::ContextPair;
use pkms_protocol::limits::{MAX_PLAINTEXT, MAX_RANDOM_BYTES};
use pkms_protocol::{
    reply, request, DataKeyPairSpec, DataKeySpec, ErrorCode, KeyId, KeyMaterialId, KeyUsage, KeyVersion,
    Response,
};
use rand_core::RngCore;
use zeroize::Zeroizing;

use super::Buffers;
use crate::crypto::asym::{self, AsymSpec};
use crate::crypto::blob::{open, seal, AAD_BUF};
use crate::crypto::wipe::wiped_to;
use crate::err;
use crate::error::{Error, OpResult};
use crate::key::{LoadedKey, Named};
use crate::platform::Platform;
use crate::records::KeyRecord;
use crate::state::Core;

/// Encrypts `plaintext` under the newest version of `key` into `out`, counting the encryption
/// ([`Core::count_encryption`]: at the version's limit it is refused, or the key rotated first
/// if automatic rotation is on).
fn seal_newest<P: Platform>(
    core: &mut Core<P>,
    key: &mut LoadedKey,
    context: &[ContextPair<'_>],
    plaintext: &[u8],
    aad: &mut [u8; AAD_BUF],
    out: &mut [u8],
) -> OpResult<(usize, KeyVersion, KeyMaterialId)> {
    key.require_enabled()?;
    key.require_usage(KeyUsage::EncryptDecrypt, "encryption")?;
    core.count_encryption(key)?;
    let version = key.newest_version();
    let material = core.material(key, version)?;
    let n = seal(core.rng(), material.as_bytes(), key.id(), version, context, plaintext, aad, out)?;
    Ok((n, version, core.material_id(key, version)?))
}

/// Encrypt.
pub fn encrypt<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
    r: &request::Encrypt<'_>,
) -> OpResult<Response<'b>> {
    let plaintext = r.plaintext;
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
    let mut key = core.load_named(key, &mut bufs.key)?;
    let (n, key_version, key_material_id) =
        seal_newest(core, &mut key, &r.encryption_context, plaintext, &mut bufs.aad, &mut bufs.out)?;
    Ok(Response::Encrypt(reply::Encrypt {
        ciphertext_blob: &bufs.out[..n],
        key_id: key.id(),
        key_version,
        key_material_id,
    }))
}

/// The ciphertext blob the gate parsed and the key id given beside it (Decrypt's `KeyId`,
/// ReEncrypt's `SourceKeyId`), resolved.
pub struct BlobTarget<'r> {
    /// The blob, if it could be parsed.
    pub blob: Option<ParsedBlob<'r>>,
    /// The key id given with it, if any.
    pub given: Option<Named<'r>>,
}

/// Checks the optional key id against the blob, loads the key the blob names and decrypts into
/// `out`. Returns the plaintext length, key id, version and material id.
fn open_blob<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    target: BlobTarget<'_>,
    context: &[ContextPair<'_>],
    aad: &mut [u8; AAD_BUF],
    out: &mut [u8],
) -> OpResult<(usize, KeyId, KeyVersion, KeyMaterialId)> {
    let parsed = target.blob.ok_or_else(|| {
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
    if let Some(given) = target.given {
        let given = core.key_id(given)?;
        if given != id {
            return Err(err!(IncorrectKey, "the ciphertext was made under key {}, not {}", id, given));
        }
    }
    let key = match core.load(&id, slot) {
        Ok(k) => k,
        Err(e) if e.code == ErrorCode::NotFound => {
            return Err(err!(
                InvalidCiphertext,
                "the ciphertext names key {}, which this token does not hold",
                id
            ));
        }
        Err(e) => return Err(e),
    };
    key.require_enabled()?;
    key.require_usage(KeyUsage::EncryptDecrypt, "decryption")?;
    let version = parsed.header.key_version;
    let material = match core.material(&key, version) {
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
    core.require_presence(&key)?;
    let n = open(material.as_bytes(), &parsed, context, aad, out)?;
    Ok((n, id, version, core.material_id(&key, version)?))
}

/// Decrypt.
pub fn decrypt<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    target: BlobTarget<'_>,
    r: &request::Decrypt<'_>,
) -> OpResult<Response<'b>> {
    let (n, key_id, key_version, key_material_id) =
        open_blob(core, &mut bufs.key, target, &r.encryption_context, &mut bufs.aad, &mut bufs.out)?;
    Ok(Response::Decrypt(reply::Decrypt { plaintext: &bufs.out[..n], key_id, key_version, key_material_id }))
}

/// ReEncrypt: decrypt and encrypt again inside the token.
pub fn re_encrypt<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    source: BlobTarget<'_>,
    destination: Named<'_>,
    r: &request::ReEncrypt<'_>,
) -> OpResult<Response<'b>> {
    let (n, source_key_id, _, source_key_material_id) =
        open_blob(core, &mut bufs.key, source, &r.source_encryption_context, &mut bufs.aad, &mut bufs.work)?;
    let result = (|| -> OpResult<(usize, KeyId, KeyMaterialId)> {
        let mut dest = core.load_named(destination, &mut bufs.key)?;
        let (m, _, mid) = seal_newest(
            core,
            &mut dest,
            &r.destination_encryption_context,
            &bufs.work[..n],
            &mut bufs.aad,
            &mut bufs.out,
        )?;
        Ok((m, dest.id(), mid))
    })();
    bufs.work[..n].fill(0);
    let (m, key_id, destination_key_material_id) = result?;
    Ok(Response::ReEncrypt(reply::ReEncrypt {
        ciphertext_blob: &bufs.out[..m],
        source_key_id,
        key_id,
        source_key_material_id,
        destination_key_material_id,
    }))
}

/// The arguments GenerateDataKey and GenerateDataKeyWithoutPlaintext share.
pub struct DataKeyRequest<'r> {
    /// EncryptionContext.
    pub context: &'r [ContextPair<'r>],
    /// KeySpec of the data key.
    pub key_spec: Option<DataKeySpec>,
    /// NumberOfBytes.
    pub number_of_bytes: Option<u16>,
}

impl<'r> From<&'r request::GenerateDataKey<'r>> for DataKeyRequest<'r> {
    fn from(r: &'r request::GenerateDataKey<'r>) -> Self {
        DataKeyRequest {
            context: &r.encryption_context,
            key_spec: r.key_spec,
            number_of_bytes: r.number_of_bytes,
        }
    }
}

impl<'r> From<&'r request::GenerateDataKeyWithoutPlaintext<'r>> for DataKeyRequest<'r> {
    fn from(r: &'r request::GenerateDataKeyWithoutPlaintext<'r>) -> Self {
        DataKeyRequest {
            context: &r.encryption_context,
            key_spec: r.key_spec,
            number_of_bytes: r.number_of_bytes,
        }
    }
}

/// GenerateDataKey (`with_plaintext`) and GenerateDataKeyWithoutPlaintext.
pub fn generate_data_key<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
    r: DataKeyRequest<'_>,
    with_plaintext: bool,
) -> OpResult<Response<'b>> {
    let len = match (r.key_spec, r.number_of_bytes) {
        (Some(s), None) => s.key_len(),
        (None, Some(n)) if (1..=MAX_RANDOM_BYTES).contains(&(n as usize)) => n as usize,
        (None, Some(n)) => {
            return Err(err!(Validation, "NumberOfBytes must be 1..={}, not {}", MAX_RANDOM_BYTES, n))
        }
        _ => {
            return Err(err!(Validation, "give exactly one of KeySpec (AES_256, AES_128) and NumberOfBytes"))
        }
    };
    let mut key = core.load_named(key, &mut bufs.key)?;
    core.rng().fill_bytes(&mut bufs.work[..len]);
    let sealed = seal_newest(core, &mut key, r.context, &bufs.work[..len], &mut bufs.aad, &mut bufs.out);
    if !with_plaintext {
        bufs.work[..len].fill(0);
    }
    let (n, _, key_material_id) = sealed?;
    Ok(Response::DataKey(reply::DataKey {
        ciphertext_blob: &bufs.out[..n],
        plaintext: if with_plaintext { Some(&bufs.work[..len]) } else { None },
        key_id: key.id(),
        key_material_id,
    }))
}

/// The arguments GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext share.
pub struct DataKeyPairRequest<'r> {
    /// EncryptionContext.
    pub context: &'r [ContextPair<'r>],
    /// KeyPairSpec.
    pub spec: DataKeyPairSpec,
}

impl<'r> From<&'r request::GenerateDataKeyPair<'r>> for DataKeyPairRequest<'r> {
    fn from(r: &'r request::GenerateDataKeyPair<'r>) -> Self {
        DataKeyPairRequest { context: &r.encryption_context, spec: r.key_pair_spec }
    }
}

impl<'r> From<&'r request::GenerateDataKeyPairWithoutPlaintext<'r>> for DataKeyPairRequest<'r> {
    fn from(r: &'r request::GenerateDataKeyPairWithoutPlaintext<'r>) -> Self {
        DataKeyPairRequest { context: &r.encryption_context, spec: r.key_pair_spec }
    }
}

/// Where the public key sits in the work buffer, after the PKCS#8 private key.
const PUBLIC_KEY_AT: usize = 1024;

/// GenerateDataKeyPair (`with_plaintext`) and GenerateDataKeyPairWithoutPlaintext: a fresh key
/// pair of `r.spec`; its private key as PKCS#8 DER sealed under the newest version of `key` (a
/// SYMMETRIC_DEFAULT key) with the encryption context, so Decrypt of the blob returns it.
pub fn generate_data_key_pair<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
    r: DataKeyPairRequest<'_>,
    with_plaintext: bool,
) -> OpResult<Response<'b>> {
    let spec = AsymSpec::of(r.spec.key_spec())
        .ok_or_else(|| Error::new(ErrorCode::Internal, "a key pair spec is asymmetric"))?;
    let mut key = core.load_named(key, &mut bufs.key)?;
    key.require_enabled()?;
    key.require_usage(KeyUsage::EncryptDecrypt, "GenerateDataKeyPair")?;
    let mut stored = Zeroizing::new([0u8; asym::MAX_STORED]);
    let rng = core.rng();
    let made = wiped_to(spec.stack_depth(), || -> Result<(usize, usize), asym::AsymError> {
        let len = asym::generate(spec, rng, &mut stored[..])?;
        let (private, public) = bufs.work.split_at_mut(PUBLIC_KEY_AT);
        let private_len = asym::private_key_pkcs8(spec, &stored[..len], private)?;
        let public_len = asym::public_key_der(spec, &stored[..len], public)?;
        Ok((private_len, public_len))
    });
    drop(stored);
    let (private_len, public_len) = match made {
        Ok(lens) => lens,
        Err(e) => {
            bufs.work.fill(0);
            return Err(e.into());
        }
    };
    let sealed =
        seal_newest(core, &mut key, r.context, &bufs.work[..private_len], &mut bufs.aad, &mut bufs.out);
    if !with_plaintext || sealed.is_err() {
        bufs.work[..private_len].fill(0);
    }
    let (n, _, key_material_id) = sealed?;
    let (private, public) = bufs.work.split_at(PUBLIC_KEY_AT);
    Ok(Response::DataKeyPair(reply::DataKeyPair {
        key_id: key.id(),
        private_key_ciphertext_blob: &bufs.out[..n],
        private_key_plaintext: if with_plaintext { Some(&private[..private_len]) } else { None },
        public_key: &public[..public_len],
        key_pair_spec: r.spec,
        key_material_id,
    }))
}

crate::dispatch::handle! {
    request::Encrypt<'_> => |r, cx| encrypt(cx.core, cx.bufs, cx.admitted.key(), r);
    request::Decrypt<'_> => |r, cx| decrypt(cx.core, cx.bufs, cx.admitted.blob(), r);
    request::ReEncrypt<'_> => |r, cx| re_encrypt(cx.core, cx.bufs, cx.admitted.blob(), cx.admitted.second_key(), r);
    request::GenerateDataKey<'_> => |r, cx| generate_data_key(cx.core, cx.bufs, cx.admitted.key(), r.into(), true);
    request::GenerateDataKeyWithoutPlaintext<'_> => |r, cx| {
        generate_data_key(cx.core, cx.bufs, cx.admitted.key(), r.into(), false)
    };
    request::GenerateDataKeyPair<'_> => |r, cx| {
        generate_data_key_pair(cx.core, cx.bufs, cx.admitted.key(), r.into(), true)
    };
    request::GenerateDataKeyPairWithoutPlaintext<'_> => |r, cx| {
        generate_data_key_pair(cx.core, cx.bufs, cx.admitted.key(), r.into(), false)
    };
}
