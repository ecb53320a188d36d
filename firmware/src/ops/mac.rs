//! GenerateMac and VerifyMac (HMAC_256/384/512 keys; the MacAlgorithm must match the key
//! spec). GenerateMac uses the newest version and asks for a button press on keys that require
//! presence; VerifyMac takes an optional version and compares in constant time.

use pkms_protocol::limits::MAX_MESSAGE;
use pkms_protocol::{reply, request, KeyUsage, MacAlgorithm, Response};

use super::Buffers;
use crate::crypto::mac;
use crate::err;
use crate::error::OpResult;
use crate::key::{LoadedKey, Named};
use crate::platform::Platform;
use crate::records::KeyRecord;
use crate::state::Core;

fn check(key: &LoadedKey, algorithm: MacAlgorithm, operation: &str) -> OpResult<()> {
    key.require_enabled()?;
    key.require_usage(KeyUsage::GenerateVerifyMac, operation)?;
    if mac::algorithm_for(key.record().spec) != Some(algorithm) {
        return Err(err!(
            InvalidKeyUsage,
            "MacAlgorithm {} does not match key {} ({})",
            algorithm,
            key.id(),
            key.record().spec
        ));
    }
    Ok(())
}

fn check_message(message: &[u8]) -> OpResult<()> {
    if message.is_empty() || message.len() > MAX_MESSAGE {
        return Err(err!(Validation, "Message must be 1..={} bytes, not {}", MAX_MESSAGE, message.len()));
    }
    Ok(())
}

/// GenerateMac.
pub fn generate<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
    r: &request::GenerateMac<'_>,
) -> OpResult<Response<'b>> {
    check_message(r.message)?;
    let key = core.load_named(key, &mut bufs.key)?;
    check(&key, r.mac_algorithm, "GenerateMac")?;
    let version = key.newest_version();
    let material = core.material(&key, version)?;
    core.require_presence(&key)?;
    let mut out = [0u8; 64];
    let n = mac::compute(r.mac_algorithm, material.as_bytes(), r.message, &mut out);
    bufs.out[..n].copy_from_slice(&out[..n]);
    Ok(Response::Mac(reply::Mac {
        key_id: key.id(),
        mac: &bufs.out[..n],
        mac_algorithm: r.mac_algorithm,
        key_version: version,
    }))
}

/// VerifyMac: a bad MAC is the error InvalidMac.
pub fn verify<'b, P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    key: Named<'_>,
    r: &request::VerifyMac<'_>,
) -> OpResult<Response<'b>> {
    check_message(r.message)?;
    let key = core.load_named(key, slot)?;
    check(&key, r.mac_algorithm, "VerifyMac")?;
    let version = r.key_version.unwrap_or(key.newest_version());
    let material = core.material(&key, version)?;
    if !mac::verify(r.mac_algorithm, material.as_bytes(), r.message, r.mac) {
        return Err(err!(
            InvalidMac,
            "the MAC is not valid for this message and key {} version {}",
            key.id(),
            version
        ));
    }
    Ok(Response::VerifyMac(reply::VerifyMac {
        key_id: key.id(),
        mac_valid: true,
        mac_algorithm: r.mac_algorithm,
        key_version: version,
    }))
}

crate::dispatch::handle! {
    request::GenerateMac<'_> => |r, cx| generate(cx.core, cx.bufs, cx.admitted.key(), r);
    request::VerifyMac<'_> => |r, cx| verify(cx.core, &mut cx.bufs.key, cx.admitted.key(), r);
}
