//! HMAC for HMAC_256/384/512 keys.

use hmac::{Hmac, Mac};
use pkms_protocol::{KeySpec, MacAlgorithm};
use sha2::{Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

use super::wipe::wiped;

/// The MAC algorithm a key spec allows, if it is an HMAC spec.
pub const fn algorithm_for(spec: KeySpec) -> Option<MacAlgorithm> {
    match spec {
        KeySpec::Hmac256 => Some(MacAlgorithm::HmacSha256),
        KeySpec::Hmac384 => Some(MacAlgorithm::HmacSha384),
        KeySpec::Hmac512 => Some(MacAlgorithm::HmacSha512),
        _ => None,
    }
}

fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8], out: &mut [u8; 64]) -> usize {
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else { return 0 };
    mac.update(message);
    let tag = mac.finalize().into_bytes();
    out[..tag.len()].copy_from_slice(&tag);
    tag.len()
}

/// Computes the MAC of `message` into `out`; returns its length. The HMAC state (which stands
/// for the key) is wiped from the stack.
pub fn compute(algorithm: MacAlgorithm, key: &[u8], message: &[u8], out: &mut [u8; 64]) -> usize {
    wiped(|| match algorithm {
        MacAlgorithm::HmacSha256 => run::<Hmac<Sha256>>(key, message, out),
        MacAlgorithm::HmacSha384 => run::<Hmac<Sha384>>(key, message, out),
        MacAlgorithm::HmacSha512 => run::<Hmac<Sha512>>(key, message, out),
    })
}

/// Whether `mac` is the MAC of `message`, compared in constant time.
pub fn verify(algorithm: MacAlgorithm, key: &[u8], message: &[u8], mac: &[u8]) -> bool {
    let mut expected = [0u8; 64];
    let n = compute(algorithm, key, message, &mut expected);
    let ok = n != 0 && mac.len() == n && bool::from(expected[..n].ct_eq(mac));
    expected.fill(0);
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        let mut out = [0u8; 64];
        let n = compute(MacAlgorithm::HmacSha256, b"Jefe", b"what do ya want for nothing?", &mut out);
        assert_eq!(n, 32);
        assert_eq!(out[..4], [0x5b, 0xdc, 0xc1, 0x46]);
        assert!(verify(MacAlgorithm::HmacSha256, b"Jefe", b"what do ya want for nothing?", &out[..32]));
        assert!(!verify(MacAlgorithm::HmacSha256, b"Jefe", b"what do ya want for nothing!", &out[..32]));
        assert!(!verify(MacAlgorithm::HmacSha256, b"Jefe", b"what do ya want for nothing?", &out[..31]));
        assert_eq!(compute(MacAlgorithm::HmacSha384, b"k", b"m", &mut out), 48);
        assert_eq!(compute(MacAlgorithm::HmacSha512, b"k", b"m", &mut out), 64);
    }
}
