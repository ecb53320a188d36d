//! Sign, Verify and GetPublicKey (ECC_NIST_P256 keys, ECDSA_SHA_256). Sign uses the newest
//! version and asks for a button press on keys that require presence; Verify and GetPublicKey
//! take an optional version (default: newest).

use pkms_protocol::{reply, request, KeySpec, KeyUsage, Response};

use super::Buffers;
use crate::crypto::signing::{self, MAX_DER_SIGNATURE, SPKI_LEN};
use crate::err;
use crate::error::OpResult;
use crate::key::{LoadedKey, Named};
use crate::platform::Platform;
use crate::records::KeyRecord;
use crate::state::Core;

fn require_signing_key(key: &LoadedKey, operation: &str) -> OpResult<()> {
    key.require_enabled()?;
    key.require_usage(KeyUsage::SignVerify, operation)?;
    match key.record().spec {
        KeySpec::EccNistP256 => Ok(()),
        spec @ (KeySpec::SymmetricDefault | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512) => Err(
            err!(InvalidKeyUsage, "{} needs an ECC_NIST_P256 key; key {} is {}", operation, key.id(), spec),
        ),
    }
}

/// Sign.
pub fn sign<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
    r: &request::Sign<'_>,
) -> OpResult<Response<'b>> {
    let digest = signing::digest(r.message, r.message_type)?;
    let key = core.load_named(key, &mut bufs.key)?;
    require_signing_key(&key, "Sign")?;
    let version = key.newest_version();
    let material = core.material(&key, version)?;
    core.require_presence(&key)?;
    let mut sig = [0u8; MAX_DER_SIGNATURE];
    let n = signing::sign(core.rng(), material.as_bytes(), &digest, &mut sig)?;
    bufs.out[..n].copy_from_slice(&sig[..n]);
    Ok(Response::Sign(reply::Sign {
        key_id: key.id(),
        signature: &bufs.out[..n],
        signing_algorithm: r.signing_algorithm,
        key_version: version,
    }))
}

/// Verify: a bad signature is the error InvalidSignature.
pub fn verify<'b, P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    key: Named<'_>,
    r: &request::Verify<'_>,
) -> OpResult<Response<'b>> {
    let digest = signing::digest(r.message, r.message_type)?;
    let key = core.load_named(key, slot)?;
    require_signing_key(&key, "Verify")?;
    let version = r.key_version.unwrap_or(key.newest_version());
    let material = core.material(&key, version)?;
    if !signing::verify(material.as_bytes(), &digest, r.signature)? {
        return Err(err!(
            InvalidSignature,
            "the signature is not valid for this message and key {} version {}",
            key.id(),
            version
        ));
    }
    Ok(Response::Verify(reply::Verify {
        key_id: key.id(),
        signature_valid: true,
        signing_algorithm: r.signing_algorithm,
        key_version: version,
    }))
}

/// GetPublicKey: DER SubjectPublicKeyInfo.
pub fn get_public_key<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
    r: &request::GetPublicKey<'_>,
) -> OpResult<Response<'b>> {
    let key = core.load_named(key, &mut bufs.key)?;
    require_signing_key(&key, "GetPublicKey")?;
    let version = r.key_version.unwrap_or(key.newest_version());
    let material = core.material(&key, version)?;
    let mut spki = [0u8; SPKI_LEN];
    signing::public_key_der(material.as_bytes(), &mut spki)?;
    bufs.out[..SPKI_LEN].copy_from_slice(&spki);
    Ok(Response::PublicKey(reply::PublicKey {
        key_id: key.id(),
        public_key: &bufs.out[..SPKI_LEN],
        key_spec: key.record().spec,
        key_usage: key.record().usage,
        key_version: version,
    }))
}

crate::dispatch::handle! {
    request::Sign<'_> => |r, cx| sign(cx.core, cx.bufs, cx.admitted.key(), r);
    request::Verify<'_> => |r, cx| verify(cx.core, &mut cx.bufs.key, cx.admitted.key(), r);
    request::GetPublicKey<'_> => |r, cx| get_public_key(cx.core, cx.bufs, cx.admitted.key(), r);
}
