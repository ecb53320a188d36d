//! The Cortex-M4 backend: Emil Lenngren's P256-Cortex-M4 assembly through ycrypto's
//! `p256-cortex-m4-sys` bindings (built with the `cortex-m4-asm` feature on thumbv7em /
//! thumbv8m.main only). The assembly is constant time for secret data.
//!
//! The assembly takes scalars and coordinates as little-endian `u32` words; this module converts
//! from and to the big-endian bytes the rest of the crate uses. The nonce `k` is derived here with
//! RFC 6979's HMAC-DRBG ([`crate::nonce`]), giving the same `k` as `ecdsa` 0.16 derives, so for the same inputs this backend
//! and [`crate::portable`] produce the same signature.
#![allow(unsafe_code)]

use ecdsa::Signature;
use p256::NistP256;
use p256_cortex_m4_sys as sys;
use zeroize::Zeroizing;

use crate::nonce::NonceDrbg;

/// How many DRBG outputs to try for `k` before giving up. Each attempt fails with probability
/// about 2^-32 (k ≥ n), so a second attempt is already rare.
const MAX_NONCE_ATTEMPTS: usize = 8;

fn to_words(be: &[u8]) -> [u32; 8] {
    let mut words = [0u32; 8];
    for (i, w) in words.iter_mut().enumerate() {
        let at = 32 - 4 * (i + 1);
        *w = u32::from_be_bytes([be[at], be[at + 1], be[at + 2], be[at + 3]]);
    }
    words
}

fn to_be_bytes(words: &[u32; 8], out: &mut [u8]) {
    for (i, w) in words.iter().enumerate() {
        let at = 32 - 4 * (i + 1);
        out[at..at + 4].copy_from_slice(&w.to_be_bytes());
    }
}

fn point_bytes(x: &[u32; 8], y: &[u32; 8]) -> [u8; 65] {
    let mut out = [0u8; 65];
    out[0] = 0x04;
    to_be_bytes(x, &mut out[1..33]);
    to_be_bytes(y, &mut out[33..65]);
    out
}

/// `d·G` as `04 || X || Y`, or `None` if `secret` is not in `1..n-1`.
pub fn public_key(secret: &[u8; 32]) -> Option<[u8; 65]> {
    let d = Zeroizing::new(to_words(secret));
    let (mut x, mut y) = ([0u32; 8], [0u32; 8]);
    // SAFETY: every pointer refers to a live, aligned [u32; 8]; the function reads `d` and
    // writes only `x` and `y`.
    let ok = unsafe { sys::p256_keygen(x.as_mut_ptr(), y.as_mut_ptr(), d.as_ptr()) };
    ok.then(|| point_bytes(&x, &y))
}

/// ECDSA over `digest` with `k` from RFC 6979 (HMAC-SHA-256 DRBG seeded with the secret and the
/// digest, `added` as additional input; further DRBG outputs if a `k` is out of range). Not
/// normalized to low-S. `None` if `secret` is out of range.
pub fn sign(secret: &[u8; 32], digest: &[u8; 32], added: &[u8]) -> Option<Signature<NistP256>> {
    let d = Zeroizing::new(to_words(secret));
    let mut drbg = NonceDrbg::new(secret, digest, added);
    let mut k_bytes = Zeroizing::new([0u8; 32]);
    let mut k = Zeroizing::new([0u32; 8]);
    for _ in 0..MAX_NONCE_ATTEMPTS {
        drbg.next_candidate(&mut k_bytes);
        *k = to_words(&k_bytes[..]);
        let (mut r, mut s) = ([0u32; 8], [0u32; 8]);
        // SAFETY: `r`, `s`, `d`, `k` are live, aligned [u32; 8]; `digest` is 32 readable bytes
        // and its length is passed; the function writes only `r` and `s`.
        let ok = unsafe {
            sys::p256_sign(r.as_mut_ptr(), s.as_mut_ptr(), digest.as_ptr(), 32, d.as_ptr(), k.as_ptr())
        };
        if ok {
            let (mut r_be, mut s_be) = ([0u8; 32], [0u8; 32]);
            to_be_bytes(&r, &mut r_be);
            to_be_bytes(&s, &mut s_be);
            return Signature::from_scalars(r_be, s_be).ok();
        }
    }
    None
}

/// ECDSA verification of `sig` over `digest` by the point `public` (`04 || X || Y`); the
/// assembly re-checks that the point is on the curve and that r, s are in `1..n-1`.
pub fn verify(public: &[u8; 65], digest: &[u8; 32], sig: &Signature<NistP256>) -> bool {
    let x = to_words(&public[1..33]);
    let y = to_words(&public[33..65]);
    let (r_be, s_be) = sig.split_bytes();
    let r = to_words(&r_be);
    let s = to_words(&s_be);
    // SAFETY: all word pointers refer to live, aligned [u32; 8]; `digest` is 32 readable bytes
    // and its length is passed; the function only reads.
    unsafe { sys::p256_verify(x.as_ptr(), y.as_ptr(), digest.as_ptr(), 32, r.as_ptr(), s.as_ptr()) }
}

/// ECDH: the big-endian x-coordinate of d·Q for `peer` (`04 || X || Y`); the assembly checks that
/// the point is on the curve and that the secret is in range. `None` if either check fails.
pub fn ecdh(secret: &[u8; 32], peer: &[u8; 65]) -> Option<Zeroizing<[u8; 32]>> {
    let d = Zeroizing::new(to_words(secret));
    let x = to_words(&peer[1..33]);
    let y = to_words(&peer[33..65]);
    let mut out = Zeroizing::new([0u8; 32]);
    // SAFETY: `out` is 32 writable bytes; `d`, `x`, `y` are live, aligned [u32; 8] the function
    // only reads.
    let ok =
        unsafe { sys::p256_ecdh_calc_shared_secret(out.as_mut_ptr(), d.as_ptr(), x.as_ptr(), y.as_ptr()) };
    ok.then_some(out)
}

/// Decodes a SEC1 point (65-byte `04…` or 33-byte `02…`/`03…`; the caller has checked length and
/// tag), checks it is on the curve and returns it uncompressed.
pub fn decode_point(sec1: &[u8]) -> Option<[u8; 65]> {
    if !matches!((sec1.len(), sec1.first()), (65, Some(0x04)) | (33, Some(0x02 | 0x03))) {
        return None;
    }
    let (mut x, mut y) = ([0u32; 8], [0u32; 8]);
    // SAFETY: `sec1` is `sec1.len()` readable bytes (33 or 65, checked above); `x`, `y` are live,
    // aligned [u32; 8] written by the function.
    let ok = unsafe {
        sys::p256_octet_string_to_point(x.as_mut_ptr(), y.as_mut_ptr(), sec1.as_ptr(), sec1.len() as u32)
    };
    ok.then(|| point_bytes(&x, &y))
}
