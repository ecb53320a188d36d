//! DeriveSharedSecret (KEY_AGREEMENT keys: ECC_NIST_P256, ECC_SECG_P256K1, ECC_NIST_P384; ECDH)
//! and Encapsulate / Decapsulate (ENCAPSULATE_DECAPSULATE keys: ML_KEM_512/768/1024).
//!
//! DeriveSharedSecret and Encapsulate use the newest version; Decapsulate takes an optional
//! version (default newest), so ciphertexts made for older versions still decapsulate after a
//! rotation. DeriveSharedSecret and Decapsulate reveal a secret derived from the stored key and
//! ask for a button press on keys that require presence; Encapsulate needs only the public key.

use pkms_protocol::limits::MAX_PEER_PUBLIC_KEY;
use pkms_protocol::{reply, request, KeyUsage, Response};

use super::signing::asym_spec;
use super::Buffers;
use crate::crypto::asym::{self, KEM_SHARED_SECRET_LEN};
use crate::crypto::wipe::wiped_to;
use crate::err;
use crate::error::OpResult;
use crate::key::Named;
use crate::platform::Platform;
use crate::state::Core;

/// DeriveSharedSecret: ECDH of the key's newest version with the peer's DER
/// SubjectPublicKeyInfo (same curve; not the identity; on the curve).
pub fn derive_shared_secret<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
    r: &request::DeriveSharedSecret<'_>,
) -> OpResult<Response<'b>> {
    if r.public_key.is_empty() || r.public_key.len() > MAX_PEER_PUBLIC_KEY {
        return Err(err!(Validation, "PublicKey must be 1..={} bytes of DER", MAX_PEER_PUBLIC_KEY));
    }
    let key = core.load_named(key, &mut bufs.key)?;
    key.require_enabled()?;
    key.require_usage(KeyUsage::KeyAgreement, "DeriveSharedSecret")?;
    let spec = asym_spec(&key, "DeriveSharedSecret")?;
    let version = key.newest_version();
    let material = core.material(&key, version)?;
    core.require_presence(&key)?;
    let out = &mut bufs.out[..];
    let n = wiped_to(spec.stack_depth(), || {
        asym::derive_shared_secret(spec, material.as_bytes(), r.public_key, out)
    })?;
    Ok(Response::SharedSecret(reply::SharedSecret {
        key_id: key.id(),
        shared_secret: &bufs.out[..n],
        key_agreement_algorithm: r.key_agreement_algorithm,
        key_version: version,
    }))
}

/// Encapsulate: a fresh 32-byte shared secret and its ML-KEM ciphertext under the newest version.
pub fn encapsulate<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
    r: &request::Encapsulate<'_>,
) -> OpResult<Response<'b>> {
    let key = core.load_named(key, &mut bufs.key)?;
    key.require_enabled()?;
    key.require_usage(KeyUsage::EncapsulateDecapsulate, "Encapsulate")?;
    let spec = asym_spec(&key, "Encapsulate")?;
    let version = key.newest_version();
    let material = core.material(&key, version)?;
    let rng = core.rng();
    let (secret, ciphertext) = bufs.out.split_at_mut(KEM_SHARED_SECRET_LEN);
    let secret: &mut [u8; KEM_SHARED_SECRET_LEN] =
        secret.try_into().map_err(|_| err!(Internal, "shared secret buffer"))?;
    let n = wiped_to(spec.stack_depth(), || {
        asym::encapsulate(spec, material.as_bytes(), rng, ciphertext, secret)
    })?;
    let (secret, ciphertext) = bufs.out.split_at(KEM_SHARED_SECRET_LEN);
    Ok(Response::Encapsulated(reply::Encapsulated {
        key_id: key.id(),
        shared_secret: secret,
        shared_secret_ciphertext_blob: &ciphertext[..n],
        encapsulation_algorithm: r.encapsulation_algorithm,
        key_version: version,
    }))
}

/// Decapsulate: the shared secret of an ML-KEM ciphertext. A ciphertext of the right length that
/// was not made for this key gives ML-KEM's implicit-rejection secret (no error); a wrong length
/// is a ValidationException.
pub fn decapsulate<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
    r: &request::Decapsulate<'_>,
) -> OpResult<Response<'b>> {
    let key = core.load_named(key, &mut bufs.key)?;
    key.require_enabled()?;
    key.require_usage(KeyUsage::EncapsulateDecapsulate, "Decapsulate")?;
    let spec = asym_spec(&key, "Decapsulate")?;
    if spec.ciphertext_len() != Some(r.shared_secret_ciphertext_blob.len()) {
        return Err(err!(
            Validation,
            "SharedSecretCiphertextBlob is {} bytes; a {} ciphertext is {}",
            r.shared_secret_ciphertext_blob.len(),
            key.record().spec,
            spec.ciphertext_len().unwrap_or(0)
        ));
    }
    let version = r.key_version.unwrap_or(key.newest_version());
    let material = core.material(&key, version)?;
    core.require_presence(&key)?;
    let secret: &mut [u8; KEM_SHARED_SECRET_LEN] = (&mut bufs.out[..KEM_SHARED_SECRET_LEN])
        .try_into()
        .map_err(|_| err!(Internal, "shared secret buffer"))?;
    wiped_to(spec.stack_depth(), || {
        asym::decapsulate(spec, material.as_bytes(), r.shared_secret_ciphertext_blob, secret)
    })?;
    Ok(Response::Decapsulated(reply::Decapsulated {
        key_id: key.id(),
        shared_secret: &bufs.out[..KEM_SHARED_SECRET_LEN],
        encapsulation_algorithm: r.encapsulation_algorithm,
        key_version: version,
    }))
}

crate::dispatch::handle! {
    request::DeriveSharedSecret<'_> => |r, cx| derive_shared_secret(cx.core, cx.bufs, cx.admitted.key(), r);
    request::Encapsulate<'_> => |r, cx| encapsulate(cx.core, cx.bufs, cx.admitted.key(), r);
    request::Decapsulate<'_> => |r, cx| decapsulate(cx.core, cx.bufs, cx.admitted.key(), r);
}
