//! PIN and PUK stretching and checking: PBKDF2-HMAC-SHA256 with a per-secret random salt,
//! compared in constant time.

use pkms_protocol::access::{MAX_PIN, MIN_PIN};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::crypto::wipe::wiped;
use crate::err;
use crate::error::OpResult;

/// PBKDF2 iterations (the cost of a PIN check is measured by the `pin_check_cost` suite; see
/// docs/security.md). Guessing is bounded by the retry counter; stretching only slows an
/// attacker who has read the flash.
pub const PBKDF2_ITERATIONS: u32 = 8192;

/// Refuses a PIN or PUK of the wrong length.
pub fn check_length(what: &str, secret: &[u8]) -> OpResult<()> {
    if secret.len() < MIN_PIN || secret.len() > MAX_PIN {
        return Err(err!(
            Validation,
            "the {} must be {}..={} bytes, not {}",
            what,
            MIN_PIN,
            MAX_PIN,
            secret.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
std::thread_local! {
    /// How many stretches this thread ran (tests compare the work done for different answers).
    pub static STRETCHES: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
}

/// The stretched hash of `secret` under `salt`.
pub fn stretch(secret: &[u8], salt: &[u8; 16]) -> [u8; 32] {
    let mut out = [0u8; 32];
    stretch_into(secret, salt, &mut out);
    out
}

#[cfg(test)]
std::thread_local! {
    /// How many PIN or PUK comparisons this thread made (tests ask whether a check ran).
    pub static COMPARISONS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// Stretches `secret` under `salt` into `out`; the PBKDF2 state (which stands for the PIN) is
/// wiped from the stack.
pub fn stretch_into(secret: &[u8], salt: &[u8; 16], out: &mut [u8; 32]) {
    #[cfg(test)]
    STRETCHES.with(|n| n.set(n.get() + 1));
    wiped(|| pbkdf2::pbkdf2_hmac::<Sha256>(secret, salt, PBKDF2_ITERATIONS, out));
}

/// A salt no stored secret has.
const NO_ONE_SALT: [u8; 16] = *b"pkms: no one's.\0";

/// Stretches `secret` as a check would, and forgets the result: what the token does for a
/// principal that does not exist, so that the answer comes after the same work as for a wrong
/// PIN.
pub fn stretch_for_nothing(secret: &[u8]) {
    let mut h = [0u8; 32];
    stretch_into(secret, &NO_ONE_SALT, &mut h);
    core::hint::black_box(&h);
    h.zeroize();
}

/// Whether `secret` stretches to `hash` (constant-time comparison).
pub fn matches(secret: &[u8], salt: &[u8; 16], hash: &[u8; 32]) -> bool {
    #[cfg(test)]
    COMPARISONS.with(|c| c.set(c.get() + 1));
    let mut h = [0u8; 32];
    stretch_into(secret, salt, &mut h);
    let ok: bool = h.ct_eq(hash).into();
    h.zeroize();
    ok
}
