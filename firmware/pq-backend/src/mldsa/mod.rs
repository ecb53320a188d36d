//! ML-DSA (FIPS 204): key generation from the 32-byte seed ξ, signing and verification, in
//! little memory and without a heap.
//!
//! # Why this exists
//!
//! The token stores an ML-DSA key as its seed ξ (32 bytes, as FIPS 204 allows), so every Sign
//! starts from the seed. The `ml-dsa` crate expands the seed into a signing key of tens of
//! kilobytes and needs more stack besides than the nRF52840 has free for ML-DSA-65 and -87
//! (docs/benchmarks.md, "The asymmetric key specs"). This module never holds the matrix A: each entry Â[i][j] is
//! sampled from ρ when it is needed (as pqm4's "m4fstack" variants do), and the signer keeps only
//! NTT-domain ŝ1, ŝ2, t̂0, the mask y and the commitment w (one polynomial is 1 KiB). Optionally
//! ([`Matrix::Cached`]) the caller lends room for Â so that each rejection round reuses it.
//!
//! # Contract
//!
//! * Outputs are those of FIPS 204: [`public_key`] is `pkEncode(ρ, t1)` of ML-DSA.KeyGen_internal(ξ);
//!   [`sign`] is ML-DSA.Sign_internal with the given `rnd` (hedged when `rnd` is fresh randomness,
//!   deterministic when it is 32 zero bytes) over μ = H(tr ‖ 0 ‖ 0 ‖ M) for [`Message::Raw`] (pure
//!   ML-DSA, empty context) or the caller's μ for [`Message::ExternalMu`]. Tests check the bytes
//!   against the `ml-dsa` crate and python `cryptography` (OpenSSL).
//! * [`verify`] is ML-DSA.Verify_internal over an encoded public key, including every check of
//!   sigDecode (‖z‖∞ < γ1 - β, hint indices strictly increasing, at most ω ones, zero padding).
//! * Secret intermediates (ρ', K, s1, s2, t0, y, ρ'', w0) live in two scratch structures (what
//!   key generation needs, and what only the signer needs) that are zeroed when dropped, also on
//!   error.
//! * No panics for any input: buffers of the wrong length give [`Error`].

// Index loops follow the specification's notation (A[x][y], row i, column j).
#![allow(clippy::needless_range_loop)]

mod params;
pub mod poly;
mod sample;

use zeroize::{Zeroize, ZeroizeOnDrop};

pub use params::{Level, Params, MAX_K, MAX_L, MAX_PUBLIC_KEY, MAX_SIGNATURE};
use poly::{Poly, N, ZERO};
use sample::{pack, unpack};

use crate::shake::{shake256, Shake256};

/// Why an ML-DSA call failed. Carries nothing secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// An output buffer is shorter than the parameter set needs.
    BufferTooSmall,
    /// The public key is not `pkEncode` of this parameter set (wrong length).
    PublicKeyLength,
    /// The signer gave up after [`MAX_ATTEMPTS`] rejected rounds (probability below 2^-128).
    TooManyAttempts,
}

/// Rejection rounds the signer tries before giving up: FIPS 204 (section 3.6.1) asks for at least
/// 814 so that failure is below 2^-128.
pub const MAX_ATTEMPTS: u16 = 1000;

/// What is signed or verified.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// The message M of pure ML-DSA with an empty context: μ = H(tr ‖ 0x00 ‖ 0x00 ‖ M).
    Raw(&'a [u8]),
    /// μ computed by the caller (FIPS 204 "external μ", 64 bytes).
    ExternalMu(&'a [u8; 64]),
}

/// Where the matrix Â lives while signing.
pub enum Matrix<'a> {
    /// Sample every entry from ρ each time it is used (least memory; each rejection round
    /// samples all k·l entries again).
    Streamed,
    /// Keep Â in the caller's buffer (k·l KiB: 16, 30 or 56 KiB) after sampling it once.
    Cached(&'a mut [Poly; MAX_K * MAX_L]),
}

/// (ρ, ρ', K) = H(ξ ‖ k ‖ l, 128).
fn expand_seed(p: &Params, xi: &[u8; 32], k: &mut KeySecrets) {
    let mut out = [0u8; 128];
    shake256(&[xi, &[p.k as u8, p.l as u8]], &mut out);
    k.rho.copy_from_slice(&out[..32]);
    k.rho_prime.copy_from_slice(&out[32..96]);
    k.key.copy_from_slice(&out[96..]);
    out.zeroize();
}

/// What key generation keeps: the seeds and ŝ1. Zeroed on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
struct KeySecrets {
    rho: [u8; 32],
    rho_prime: [u8; 64],
    key: [u8; 32],
    s1_hat: [Poly; MAX_L],
}

impl KeySecrets {
    fn new() -> Self {
        KeySecrets { rho: [0; 32], rho_prime: [0; 64], key: [0; 32], s1_hat: [ZERO; MAX_L] }
    }
}

/// What only the signer holds: ŝ2, t̂0, ρ'' and one rejection round's y, w and products.
/// Zeroed on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
struct SignSecrets {
    s2_hat: [Poly; MAX_K],
    t0_hat: [Poly; MAX_K],
    rho2: [u8; 64],
    y: [Poly; MAX_L],
    w0: [Poly; MAX_K],
    w1: [[u8; N]; MAX_K],
    tmp: Poly,
    c_hat: Poly,
}

impl SignSecrets {
    fn new() -> Self {
        SignSecrets {
            s2_hat: [ZERO; MAX_K],
            t0_hat: [ZERO; MAX_K],
            rho2: [0; 64],
            y: [ZERO; MAX_L],
            w0: [ZERO; MAX_K],
            w1: [[0; N]; MAX_K],
            tmp: ZERO,
            c_hat: ZERO,
        }
    }
}

/// Â[i][j]: from the cache, or sampled into `scratch`.
fn entry<'m>(matrix: &'m Matrix<'_>, rho: &[u8; 32], i: usize, j: usize, scratch: &'m mut Poly) -> &'m Poly {
    match matrix {
        Matrix::Cached(a) => &a[i * MAX_L + j],
        Matrix::Streamed => {
            sample::matrix_entry(rho, i, j, scratch);
            scratch
        }
    }
}

/// Key generation from ξ up to t: fills ρ, ρ', K and ŝ1, and ŝ2 and t̂0 into `keep` if given
/// (the signer's), fills the matrix cache if there is one, and streams pkEncode(ρ, t1) into
/// `pk_sink` (32 + 320 bytes at a time).
fn keygen_core(
    p: &Params,
    xi: &[u8; 32],
    k: &mut KeySecrets,
    matrix: &mut Matrix<'_>,
    mut keep: Option<&mut SignSecrets>,
    mut pk_sink: impl FnMut(&[u8]),
) {
    expand_seed(p, xi, k);
    pk_sink(&k.rho);
    for j in 0..p.l {
        sample::bounded(&k.rho_prime, j as u16, p.eta, &mut k.s1_hat[j]);
        poly::ntt(&mut k.s1_hat[j]);
    }
    if let Matrix::Cached(a) = matrix {
        for i in 0..p.k {
            for j in 0..p.l {
                sample::matrix_entry(&k.rho, i, j, &mut a[i * MAX_L + j]);
            }
        }
    }
    let mut a_ij = ZERO;
    let mut t1_packed = [0u8; 320];
    let mut s2 = ZERO;
    let mut t0 = ZERO;
    for i in 0..p.k {
        let mut acc = ZERO;
        for j in 0..p.l {
            let a = entry(matrix, &k.rho, i, j, &mut a_ij);
            poly::pointwise_acc(&mut acc, a, &k.s1_hat[j]);
        }
        poly::reduce(&mut acc);
        poly::invntt_tomont(&mut acc);
        sample::bounded(&k.rho_prime, (p.l + i) as u16, p.eta, &mut s2);
        for c in 0..N {
            let (t1, low) = poly::power2round(poly::freeze(acc[c] + s2[c]));
            acc[c] = t1;
            t0[c] = low;
        }
        // The signer keeps s2 and t0 in the NTT domain.
        if let Some(keep) = keep.as_deref_mut() {
            poly::ntt(&mut s2);
            poly::ntt(&mut t0);
            keep.s2_hat[i] = s2;
            keep.t0_hat[i] = t0;
        }
        pack(&acc, 10, &mut t1_packed);
        pk_sink(&t1_packed);
    }
    s2.zeroize();
    t0.zeroize();
}

/// Writes pkEncode(ρ, t1) of the key with seed `xi` into `out` (at least
/// [`Level::public_key_len`] bytes); returns the length.
pub fn public_key(level: Level, xi: &[u8; 32], out: &mut [u8]) -> Result<usize, Error> {
    let p = level.params();
    let len = level.public_key_len();
    let out = out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
    let mut k = KeySecrets::new();
    let mut at = 0;
    keygen_core(&p, xi, &mut k, &mut Matrix::Streamed, None, |bytes| {
        if let Some(dst) = out.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        at += bytes.len();
    });
    Ok(len)
}

/// μ = H(tr ‖ 0 ‖ 0 ‖ M, 64) for a raw message, or the external μ.
fn message_representative(tr: &[u8; 64], message: Message<'_>) -> [u8; 64] {
    match message {
        Message::Raw(m) => {
            let mut mu = [0u8; 64];
            shake256(&[tr, &[0, 0], m], &mut mu);
            mu
        }
        Message::ExternalMu(mu) => *mu,
    }
}

/// Signs with the key of seed `xi`: ML-DSA.Sign_internal(sk, M', rnd) with `rnd` the 32 bytes
/// of randomness (fresh for hedged signing, zero for deterministic). Writes the encoded
/// signature into `out` (at least [`Level::signature_len`] bytes) and returns its length. If
/// `public_key` is given (at least [`Level::public_key_len`] bytes), the encoded public key,
/// which signing computes anyway, is written there too.
pub fn sign(
    level: Level,
    xi: &[u8; 32],
    message: Message<'_>,
    rnd: &[u8; 32],
    matrix: &mut Matrix<'_>,
    out: &mut [u8],
    mut public_key: Option<&mut [u8]>,
) -> Result<usize, Error> {
    let p = level.params();
    let sig_len = level.signature_len();
    let out = out.get_mut(..sig_len).ok_or(Error::BufferTooSmall)?;
    if let Some(pk) = public_key.as_deref() {
        if pk.len() < level.public_key_len() {
            return Err(Error::BufferTooSmall);
        }
    }
    let mut k = KeySecrets::new();
    let mut s = SignSecrets::new();

    // Key generation (t0 and tr) from the seed; tr = H(pk, 64) is hashed as pk streams out.
    let mut tr_hash = Shake256::new();
    let mut at = 0;
    keygen_core(&p, xi, &mut k, matrix, Some(&mut s), |bytes| {
        tr_hash.absorb(bytes);
        if let Some(dst) = public_key.as_deref_mut().and_then(|pk| pk.get_mut(at..at + bytes.len())) {
            dst.copy_from_slice(bytes);
        }
        at += bytes.len();
    });
    let mut tr = [0u8; 64];
    tr_hash.squeeze(&mut tr);
    let mu = message_representative(&tr, message);
    shake256(&[&k.key, rnd, &mu], &mut s.rho2);

    let z_off = p.ctilde;
    let h_off = z_off + p.l * p.z_bytes();
    let mut kappa: u16 = 0;
    for _ in 0..MAX_ATTEMPTS {
        let round = kappa;
        kappa = kappa.wrapping_add(p.l as u16);
        if sign_round(&p, &k, &mut s, matrix, &mu, round, out, z_off, h_off) {
            return Ok(sig_len);
        }
    }
    out.zeroize();
    Err(Error::TooManyAttempts)
}

/// One round of the signer's rejection loop with mask counter `kappa`; true if `out` now holds
/// the signature.
#[allow(clippy::too_many_arguments)]
fn sign_round(
    p: &Params,
    k: &KeySecrets,
    s: &mut SignSecrets,
    matrix: &Matrix<'_>,
    mu: &[u8; 64],
    kappa: u16,
    out: &mut [u8],
    z_off: usize,
    h_off: usize,
) -> bool {
    // y and w = A·y, column by column so that each Â[i][j] is needed once.
    for w in s.w0[..p.k].iter_mut() {
        *w = ZERO;
    }
    let mut a_ij = ZERO;
    for j in 0..p.l {
        sample::mask(p, &s.rho2, kappa.wrapping_add(j as u16), &mut s.y[j]);
        s.tmp = s.y[j];
        poly::ntt(&mut s.tmp);
        for i in 0..p.k {
            let a = entry(matrix, &k.rho, i, j, &mut a_ij);
            poly::pointwise_acc(&mut s.w0[i], a, &s.tmp);
        }
    }
    // w1 = HighBits(w), w0 = LowBits(w); c̃ = H(μ ‖ w1Encode(w1)).
    let mut c_hash = Shake256::new();
    c_hash.absorb(mu);
    let mut w1_packed = [0u8; 192];
    let w1_len = p.w1_bytes();
    for i in 0..p.k {
        let w = &mut s.w0[i];
        poly::reduce(w);
        poly::invntt_tomont(w);
        let mut high = ZERO;
        for c in 0..N {
            let (a1, a0) = poly::decompose(poly::freeze(w[c]), p.gamma2);
            high[c] = a1;
            s.w1[i][c] = a1 as u8;
            w[c] = a0;
        }
        pack(&high, p.w1_bits(), &mut w1_packed[..w1_len]);
        c_hash.absorb(&w1_packed[..w1_len]);
    }
    let ctilde = &mut out[..p.ctilde];
    c_hash.squeeze(ctilde);
    sample::challenge(p, ctilde, &mut s.c_hat);
    poly::ntt(&mut s.c_hat);

    // z = y + c·s1, rejected if ‖z‖∞ ≥ γ1 - β; packed as γ1 - z.
    let z_bytes = p.z_bytes();
    for j in 0..p.l {
        poly::pointwise(&mut s.tmp, &s.c_hat, &k.s1_hat[j]);
        poly::invntt_tomont(&mut s.tmp);
        for (t, y) in s.tmp.iter_mut().zip(s.y[j].iter()) {
            *t = poly::reduce32(*t + *y);
        }
        if poly::exceeds(&s.tmp, p.gamma1 - p.beta) {
            return false;
        }
        for t in s.tmp.iter_mut() {
            *t = p.gamma1 - *t;
        }
        let at = z_off + j * z_bytes;
        pack(&s.tmp, p.z_bits(), &mut out[at..at + z_bytes]);
    }
    // r0 = LowBits(w - c·s2), rejected if ‖r0‖∞ ≥ γ2 - β.
    for i in 0..p.k {
        poly::pointwise(&mut s.tmp, &s.c_hat, &s.s2_hat[i]);
        poly::invntt_tomont(&mut s.tmp);
        for (w, t) in s.w0[i].iter_mut().zip(s.tmp.iter()) {
            *w = poly::reduce32(*w - *t);
        }
        if poly::exceeds(&s.w0[i], p.gamma2 - p.beta) {
            return false;
        }
    }
    // c·t0 (rejected if ‖c·t0‖∞ ≥ γ2) and the hint, written as HintBitPack.
    let (hints, counts) = out[h_off..].split_at_mut(p.omega);
    let mut ones = 0usize;
    for i in 0..p.k {
        poly::pointwise(&mut s.tmp, &s.c_hat, &s.t0_hat[i]);
        poly::invntt_tomont(&mut s.tmp);
        poly::reduce(&mut s.tmp);
        if poly::exceeds(&s.tmp, p.gamma2) {
            return false;
        }
        for c in 0..N {
            if poly::make_hint(s.w0[i][c] + s.tmp[c], i32::from(s.w1[i][c]), p.gamma2) {
                if ones >= p.omega {
                    return false;
                }
                hints[ones] = c as u8;
                ones += 1;
            }
        }
        counts[i] = ones as u8;
    }
    hints[ones..].fill(0);
    true
}

/// Verifies `signature` over `message` with the encoded public key `pk`: ML-DSA.Verify_internal.
/// Malformed signatures (wrong length, z out of range, malformed hint) are simply invalid.
pub fn verify(level: Level, pk: &[u8], message: Message<'_>, signature: &[u8]) -> Result<bool, Error> {
    let p = level.params();
    if pk.len() != level.public_key_len() {
        return Err(Error::PublicKeyLength);
    }
    if signature.len() != level.signature_len() {
        return Ok(false);
    }
    let (ctilde, rest) = signature.split_at(p.ctilde);
    let (z_packed, hint) = rest.split_at(p.l * p.z_bytes());
    let (hints, counts) = hint.split_at(p.omega);
    // Hint well-formedness (strong unforgeability): counts nondecreasing and ≤ ω, indices
    // strictly increasing per row, unused index bytes zero.
    let mut prev = 0usize;
    for &count in counts {
        let count = usize::from(count);
        if count < prev || count > p.omega {
            return Ok(false);
        }
        if hints[prev..count].windows(2).any(|w| w[1] <= w[0]) {
            return Ok(false);
        }
        prev = count;
    }
    if hints[prev..].iter().any(|&b| b != 0) {
        return Ok(false);
    }

    let mut z_hat = [ZERO; MAX_L];
    for (j, chunk) in z_packed.chunks_exact(p.z_bytes()).enumerate() {
        let z = &mut z_hat[j];
        unpack(chunk, p.z_bits(), z);
        for x in z.iter_mut() {
            *x = p.gamma1 - *x;
        }
        if poly::exceeds(z, p.gamma1 - p.beta) {
            return Ok(false);
        }
        poly::ntt(z);
    }

    let mut tr = [0u8; 64];
    shake256(&[pk], &mut tr);
    let mu = message_representative(&tr, message);
    let mut c_hat = ZERO;
    sample::challenge(&p, ctilde, &mut c_hat);
    poly::ntt(&mut c_hat);

    let mut rho = [0u8; 32];
    rho.copy_from_slice(&pk[..32]);
    let mut c_hash = Shake256::new();
    c_hash.absorb(&mu);
    let mut a_ij = ZERO;
    let mut t1 = ZERO;
    let mut w1_packed = [0u8; 192];
    let w1_len = p.w1_bytes();
    let mut start = 0usize;
    for i in 0..p.k {
        let mut acc = ZERO;
        for j in 0..p.l {
            sample::matrix_entry(&rho, i, j, &mut a_ij);
            poly::pointwise_acc(&mut acc, &a_ij, &z_hat[j]);
        }
        let at = 32 + 320 * i;
        unpack(&pk[at..at + 320], 10, &mut t1);
        for x in t1.iter_mut() {
            *x <<= poly::D;
        }
        poly::ntt(&mut t1);
        poly::pointwise(&mut a_ij, &c_hat, &t1);
        for (x, y) in acc.iter_mut().zip(a_ij.iter()) {
            *x = poly::reduce32(*x - *y);
        }
        poly::invntt_tomont(&mut acc);
        // This row's hint positions.
        let end = usize::from(counts[i]);
        let mut marks = hints[start..end].iter().peekable();
        for (c, x) in acc.iter_mut().enumerate() {
            let h = marks.next_if(|&&m| usize::from(m) == c).is_some();
            *x = poly::use_hint(poly::freeze(*x), h, p.gamma2);
        }
        start = end;
        pack(&acc, p.w1_bits(), &mut w1_packed[..w1_len]);
        c_hash.absorb(&w1_packed[..w1_len]);
    }
    let mut expected = [0u8; 64];
    c_hash.squeeze(&mut expected[..p.ctilde]);
    Ok(expected[..p.ctilde] == *ctilde)
}

#[cfg(test)]
mod tests;
