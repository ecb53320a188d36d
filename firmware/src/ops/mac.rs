//! GenerateMac and VerifyMac (HMAC_256/384/512 keys; the MacAlgorithm must match the key
//! spec). GenerateMac uses the newest version and asks for a button press on keys that require
//! presence; VerifyMac takes an optional version and compares in constant time.

use embedded_storage::nor_flash::NorFlash;
use pkms_protocol::limits::MAX_MESSAGE;
use pkms_protocol::{KeyId, KeyUsage, KeyVersion, MacAlgorithm, Response};
use rand_core::{CryptoRng, RngCore};

use super::{Buffers, Core};
use crate::board::Board;
use crate::crypto::mac;
use crate::err;
use crate::error::OpResult;

fn check<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &Core<F, R, B>,
    id: &KeyId,
    algorithm: MacAlgorithm,
    operation: &str,
) -> OpResult<()> {
    core.require_enabled(id)?;
    core.require_usage(id, KeyUsage::GenerateVerifyMac, operation)?;
    if mac::algorithm_for(core.rec.spec) != Some(algorithm) {
        return Err(err!(
            InvalidKeyUsage,
            "MacAlgorithm {} does not match key {} ({})",
            algorithm,
            id,
            core.rec.spec
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
pub fn generate<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    key_ref: &str,
    message: &[u8],
    mac_algorithm: MacAlgorithm,
) -> OpResult<Response<'b>> {
    check_message(message)?;
    let id = core.load_ref(key_ref)?;
    check(core, &id, mac_algorithm, "GenerateMac")?;
    let version = core.newest_version();
    let material = core.material(&id, version)?;
    core.require_presence()?;
    let mut out = [0u8; 64];
    let n = mac::compute(mac_algorithm, material.as_bytes(), message, &mut out);
    bufs.a[..n].copy_from_slice(&out[..n]);
    Ok(Response::Mac { key_id: id, mac: &bufs.a[..n], mac_algorithm, key_version: version })
}

/// VerifyMac: a bad MAC is the error InvalidMac.
pub fn verify<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    key_ref: &str,
    message: &[u8],
    mac_algorithm: MacAlgorithm,
    mac_value: &[u8],
    key_version: Option<KeyVersion>,
) -> OpResult<Response<'b>> {
    check_message(message)?;
    let id = core.load_ref(key_ref)?;
    check(core, &id, mac_algorithm, "VerifyMac")?;
    let version = key_version.unwrap_or(core.newest_version());
    let material = core.material(&id, version)?;
    if !mac::verify(mac_algorithm, material.as_bytes(), message, mac_value) {
        return Err(err!(
            InvalidMac,
            "the MAC is not valid for this message and key {} version {}",
            id,
            version
        ));
    }
    Ok(Response::VerifyMac { key_id: id, mac_valid: true, mac_algorithm, key_version: version })
}
