//! Sign, Verify and GetPublicKey (ECC_NIST_P256 keys, ECDSA_SHA_256). Sign uses the newest
//! version and asks for a button press on keys that require presence; Verify and GetPublicKey
//! take an optional version (default: newest).

use embedded_storage::nor_flash::NorFlash;
use pkms_protocol::{KeyId, KeySpec, KeyUsage, KeyVersion, MessageType, Response, SigningAlgorithm};
use rand_core::{CryptoRng, RngCore};

use super::{Buffers, Core};
use crate::board::Board;
use crate::crypto::signing::{self, MAX_DER_SIGNATURE, SPKI_LEN};
use crate::err;
use crate::error::OpResult;

fn require_signing_key<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &Core<F, R, B>,
    id: &KeyId,
    operation: &str,
) -> OpResult<()> {
    core.require_enabled(id)?;
    core.require_usage(id, KeyUsage::SignVerify, operation)?;
    if core.rec.spec != KeySpec::EccNistP256 {
        return Err(err!(
            InvalidKeyUsage,
            "{} needs an ECC_NIST_P256 key; key {} is {}",
            operation,
            id,
            core.rec.spec
        ));
    }
    Ok(())
}

/// Sign.
pub fn sign<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    key_ref: &str,
    message: &[u8],
    message_type: MessageType,
    signing_algorithm: SigningAlgorithm,
) -> OpResult<Response<'b>> {
    let digest = signing::digest(message, message_type)?;
    let id = core.load_ref(key_ref)?;
    require_signing_key(core, &id, "Sign")?;
    let version = core.newest_version();
    let material = core.material(&id, version)?;
    core.require_presence()?;
    let mut sig = [0u8; MAX_DER_SIGNATURE];
    let n = signing::sign(&mut core.rng, material.as_bytes(), &digest, &mut sig)?;
    bufs.a[..n].copy_from_slice(&sig[..n]);
    Ok(Response::Sign { key_id: id, signature: &bufs.a[..n], signing_algorithm, key_version: version })
}

/// Verify: a bad signature is the error InvalidSignature.
#[allow(clippy::too_many_arguments)]
pub fn verify<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    key_ref: &str,
    message: &[u8],
    message_type: MessageType,
    signature: &[u8],
    signing_algorithm: SigningAlgorithm,
    key_version: Option<KeyVersion>,
) -> OpResult<Response<'b>> {
    let digest = signing::digest(message, message_type)?;
    let id = core.load_ref(key_ref)?;
    require_signing_key(core, &id, "Verify")?;
    let version = key_version.unwrap_or(core.newest_version());
    let material = core.material(&id, version)?;
    if !signing::verify(material.as_bytes(), &digest, signature)? {
        return Err(err!(
            InvalidSignature,
            "the signature is not valid for this message and key {} version {}",
            id,
            version
        ));
    }
    Ok(Response::Verify { key_id: id, signature_valid: true, signing_algorithm, key_version: version })
}

/// GetPublicKey: DER SubjectPublicKeyInfo.
pub fn get_public_key<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    key_ref: &str,
    key_version: Option<KeyVersion>,
) -> OpResult<Response<'b>> {
    let id = core.load_ref(key_ref)?;
    require_signing_key(core, &id, "GetPublicKey")?;
    let version = key_version.unwrap_or(core.newest_version());
    let material = core.material(&id, version)?;
    let mut spki = [0u8; SPKI_LEN];
    signing::public_key_der(material.as_bytes(), &mut spki)?;
    bufs.a[..SPKI_LEN].copy_from_slice(&spki);
    Ok(Response::PublicKey {
        key_id: id,
        public_key: &bufs.a[..SPKI_LEN],
        key_spec: core.rec.spec,
        key_usage: core.rec.usage,
        key_version: version,
    })
}
