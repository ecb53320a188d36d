//! Sign, Verify and GetPublicKey for every asymmetric key spec. Sign uses the newest version and
//! asks for a button press on keys that require presence; Verify and GetPublicKey take an
//! optional version (default: newest).
//!
//! ECC_NIST_P256 signs through `crypto::signing` (the Cortex-M4 assembly on the boards); the
//! other specs through `crypto::asym`. Both verify every signature before it leaves the token.
//! GetPublicKey serves SIGN_VERIFY, KEY_AGREEMENT and ENCAPSULATE_DECAPSULATE keys.

use pkms_protocol::{reply, request, KeyUsage, Response, SigningAlgorithm};

use super::Buffers;
use crate::crypto::asym::{self, AsymSpec, MessageKind, SigningAlg};
use crate::crypto::signing::{self, MAX_DER_SIGNATURE};
use crate::crypto::wipe::wiped_to;
use crate::err;
use crate::error::OpResult;
use crate::key::{LoadedKey, Named};
use crate::platform::Platform;
use crate::records::KeyRecord;
use crate::state::Core;

/// The asymmetric spec of `key`, or InvalidKeyUsage naming `operation`.
pub fn asym_spec(key: &LoadedKey, operation: &str) -> OpResult<AsymSpec> {
    let spec = key.record().spec;
    AsymSpec::of(spec).ok_or_else(|| {
        err!(InvalidKeyUsage, "{} needs an asymmetric key; key {} is {}", operation, key.id(), spec)
    })
}

/// An enabled SIGN_VERIFY key whose spec signs with `alg` (InvalidKeyUsage otherwise, as KMS).
fn require_signing_key(key: &LoadedKey, operation: &str, alg: SigningAlgorithm) -> OpResult<AsymSpec> {
    key.require_enabled()?;
    key.require_usage(KeyUsage::SignVerify, operation)?;
    let spec = asym_spec(key, operation)?;
    if !key.record().spec.signing_algorithms().contains(&alg) {
        return Err(err!(
            InvalidKeyUsage,
            "{} with {} is not valid for key {}: a {} key signs with {}",
            operation,
            alg,
            key.id(),
            key.record().spec,
            SigningList(key.record().spec.signing_algorithms())
        ));
    }
    Ok(spec)
}

/// Shows a list of signing algorithms as `A or B`.
struct SigningList(&'static [SigningAlgorithm]);

impl core::fmt::Display for SigningList {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            f.write_str(a.as_str())?;
        }
        Ok(())
    }
}

/// Sign.
pub fn sign<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
    r: &request::Sign<'_>,
) -> OpResult<Response<'b>> {
    let key = core.load_named(key, &mut bufs.key)?;
    let spec = require_signing_key(&key, "Sign", r.signing_algorithm)?;
    let version = key.newest_version();
    let n = match spec {
        AsymSpec::EccNistP256 => {
            let digest = signing::digest(r.message, r.message_type)?;
            let material = core.material(&key, version)?;
            core.require_presence(&key)?;
            let mut sig = [0u8; MAX_DER_SIGNATURE];
            let n = signing::sign(core.rng(), material.as_bytes(), &digest, &mut sig)?;
            bufs.out[..n].copy_from_slice(&sig[..n]);
            n
        }
        AsymSpec::EccSecgP256k1
        | AsymSpec::EccNistP384
        | AsymSpec::EccNistEdwards25519
        | AsymSpec::MlDsa44
        | AsymSpec::MlDsa65
        | AsymSpec::MlDsa87
        | AsymSpec::MlKem512
        | AsymSpec::MlKem768
        | AsymSpec::MlKem1024 => {
            let alg = SigningAlg::of(r.signing_algorithm);
            let kind = MessageKind::of(r.message_type);
            // The request's shape is checked before the key is unwrapped or the button asked for.
            asym::check_message(spec, alg, kind, r.message)?;
            let material = core.material(&key, version)?;
            core.require_presence(&key)?;
            let rng = core.rng();
            let out = &mut bufs.out[..];
            wiped_to(spec.stack_depth(), || {
                asym::sign(spec, material.as_bytes(), alg, kind, r.message, rng, out)
            })?
        }
    };
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
    let key = core.load_named(key, slot)?;
    let spec = require_signing_key(&key, "Verify", r.signing_algorithm)?;
    let version = r.key_version.unwrap_or(key.newest_version());
    let valid = match spec {
        AsymSpec::EccNistP256 => {
            let digest = signing::digest(r.message, r.message_type)?;
            let material = core.material(&key, version)?;
            signing::verify(material.as_bytes(), &digest, r.signature)?
        }
        AsymSpec::EccSecgP256k1
        | AsymSpec::EccNistP384
        | AsymSpec::EccNistEdwards25519
        | AsymSpec::MlDsa44
        | AsymSpec::MlDsa65
        | AsymSpec::MlDsa87
        | AsymSpec::MlKem512
        | AsymSpec::MlKem768
        | AsymSpec::MlKem1024 => {
            let material = core.material(&key, version)?;
            let alg = SigningAlg::of(r.signing_algorithm);
            let kind = MessageKind::of(r.message_type);
            wiped_to(spec.stack_depth(), || {
                asym::verify(spec, material.as_bytes(), alg, kind, r.message, r.signature)
            })?
        }
    };
    if !valid {
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

/// GetPublicKey: DER SubjectPublicKeyInfo of any asymmetric key (SIGN_VERIFY, KEY_AGREEMENT or
/// ENCAPSULATE_DECAPSULATE).
pub fn get_public_key<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
    r: &request::GetPublicKey<'_>,
) -> OpResult<Response<'b>> {
    let key = core.load_named(key, &mut bufs.key)?;
    key.require_enabled()?;
    match key.record().usage {
        KeyUsage::SignVerify | KeyUsage::KeyAgreement | KeyUsage::EncapsulateDecapsulate => {}
        KeyUsage::EncryptDecrypt | KeyUsage::GenerateVerifyMac => {
            return Err(err!(
                InvalidKeyUsage,
                "GetPublicKey needs an asymmetric key; key {} is {} with usage {}",
                key.id(),
                key.record().spec,
                key.record().usage
            ))
        }
    }
    let spec = asym_spec(&key, "GetPublicKey")?;
    let version = r.key_version.unwrap_or(key.newest_version());
    let material = core.material(&key, version)?;
    let out = &mut bufs.out[..];
    let n = wiped_to(spec.stack_depth(), || asym::public_key_der(spec, material.as_bytes(), out))?;
    Ok(Response::PublicKey(reply::PublicKey {
        key_id: key.id(),
        public_key: &bufs.out[..n],
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
