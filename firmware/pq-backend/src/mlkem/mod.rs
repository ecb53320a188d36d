//! ML-KEM (FIPS 203): the encapsulation key, encapsulation and decapsulation, each from the
//! 64-byte seed (d ‖ z) the token stores, without a heap.
//!
//! # Why this exists
//!
//! The token keeps an ML-KEM key as its seed (64 bytes, as FIPS 203 section 7.1 allows), so every
//! Decapsulate first re-derives the key. With the `ml-kem` crate that is two separate steps, more
//! than the operation's goal together (docs/benchmarks.md, "The asymmetric key specs"). Here the
//! two share one pass: the matrix Â sampled for t̂ is reused for the
//! re-encryption, the re-encrypted ciphertext is compared as it is produced (never stored), and
//! all hashing runs on this crate's Keccak ([`super::shake`]).
//!
//! # Contract
//!
//! * [`encapsulation_key`] is `ek` of ML-KEM.KeyGen_internal(d, z); [`encapsulate`] is
//!   ML-KEM.Encaps_internal(ek, m) for the caller's 32 random bytes `m`; [`decapsulate`] is
//!   ML-KEM.Decaps_internal(dk, c). Tests check keys, ciphertexts and shared secrets byte for byte
//!   against the `ml-kem` crate and python `cryptography` (OpenSSL).
//! * A ciphertext of the right length always decapsulates: a wrong one gives the
//!   implicit-rejection secret J(z ‖ c), chosen in constant time; nothing tells the caller which.
//!   Only a ciphertext of the wrong length (public information) is an [`Error`].
//! * Secrets (s, z, m', r', the shared secret before selection) are zeroed before returning.

// Index loops follow the specification's notation (Â[i][j], row i, column j).
#![allow(clippy::needless_range_loop)]

mod poly;

use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

use poly::{Poly, N, ZERO};

use super::shake::{Sha3_256, Sha3_512, Shake128, Shake256, RATE_128};

/// Most module rank k (ML-KEM-1024).
const MAX_K: usize = 4;
/// Longest encapsulation key (ML-KEM-1024).
pub const MAX_ENCAPSULATION_KEY: usize = 1568;
/// Longest ciphertext (ML-KEM-1024).
pub const MAX_CIPHERTEXT: usize = 1568;
/// Bytes of the seed d ‖ z.
pub const SEED_LEN: usize = 64;
/// Bytes of the shared secret.
pub const SHARED_SECRET_LEN: usize = 32;

/// An ML-KEM parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// ML-KEM-512 (security category 1).
    MlKem512,
    /// ML-KEM-768 (security category 3).
    MlKem768,
    /// ML-KEM-1024 (security category 5).
    MlKem1024,
}

/// Why an ML-KEM call failed. Carries nothing secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// An output buffer is shorter than the parameter set needs.
    BufferTooSmall,
    /// The ciphertext is not the parameter set's ciphertext length.
    CiphertextLength,
}

#[derive(Clone, Copy)]
struct Params {
    k: usize,
    eta1: u32,
    du: u32,
    dv: u32,
}

impl Level {
    const fn params(self) -> Params {
        match self {
            Level::MlKem512 => Params { k: 2, eta1: 3, du: 10, dv: 4 },
            Level::MlKem768 => Params { k: 3, eta1: 2, du: 10, dv: 4 },
            Level::MlKem1024 => Params { k: 4, eta1: 2, du: 11, dv: 5 },
        }
    }

    /// Bytes of the encapsulation key: 384·k + 32.
    pub const fn encapsulation_key_len(self) -> usize {
        384 * self.params().k + 32
    }

    /// Bytes of a ciphertext: 32·(du·k + dv).
    pub const fn ciphertext_len(self) -> usize {
        let p = self.params();
        32 * (p.du as usize * p.k + p.dv as usize)
    }
}

/// The key re-derived from the seed: Â, t̂, ŝ, H(ek) and z. Zeroed on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
struct Key {
    a_hat: [[Poly; MAX_K]; MAX_K],
    t_hat: [Poly; MAX_K],
    s_hat: [Poly; MAX_K],
    ek_hash: [u8; 32],
    z: [u8; 32],
}

/// SampleNTT(ρ ‖ j ‖ i): uniform coefficients mod q from SHAKE128, 12 bits at a time.
fn sample_ntt(rho: &[u8; 32], i: usize, j: usize, out: &mut Poly) {
    let mut xof = Shake128::new();
    xof.absorb(rho);
    xof.absorb(&[j as u8, i as u8]);
    let mut block = [0u8; RATE_128];
    let mut n = 0;
    while n < N {
        xof.squeeze_block(&mut block);
        for c in block.chunks_exact(3) {
            let d1 = u16::from(c[0]) | (u16::from(c[1] & 0x0f) << 8);
            let d2 = u16::from(c[1] >> 4) | (u16::from(c[2]) << 4);
            for d in [d1, d2] {
                if d < Q_U16 && n < N {
                    out[n] = d as i16;
                    n += 1;
                }
            }
        }
    }
}

const Q_U16: u16 = poly::Q as u16;

/// SamplePolyCBD_η(PRF_η(seed, nonce)): coefficients in -η..=η.
fn sample_cbd(seed: &[u8; 32], nonce: u8, eta: u32, out: &mut Poly) {
    let mut buf = [0u8; 192];
    let len = 64 * eta as usize;
    let mut prf = Shake256::new();
    prf.absorb(seed);
    prf.absorb(&[nonce]);
    prf.squeeze(&mut buf[..len]);
    if eta == 2 {
        for (i, c) in buf[..128].chunks_exact(4).enumerate() {
            let t = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            let d = (t & 0x5555_5555) + ((t >> 1) & 0x5555_5555);
            for j in 0..8 {
                let a = ((d >> (4 * j)) & 3) as i16;
                let b = ((d >> (4 * j + 2)) & 3) as i16;
                out[8 * i + j] = a - b;
            }
        }
    } else {
        for (i, c) in buf[..192].chunks_exact(3).enumerate() {
            let t = u32::from(c[0]) | (u32::from(c[1]) << 8) | (u32::from(c[2]) << 16);
            let d = (t & 0x0024_9249) + ((t >> 1) & 0x0024_9249) + ((t >> 2) & 0x0024_9249);
            for j in 0..4 {
                let a = ((d >> (6 * j)) & 7) as i16;
                let b = ((d >> (6 * j + 3)) & 7) as i16;
                out[4 * i + j] = a - b;
            }
        }
    }
    buf.zeroize();
}

/// K-PKE.KeyGen and the ML-KEM key around it from the seed d ‖ z; streams ek to `ek_sink`.
fn expand(p: &Params, seed: &[u8; SEED_LEN], key: &mut Key, mut ek_sink: impl FnMut(&[u8])) {
    let mut g = [0u8; 64];
    let mut h = Sha3_512::new();
    h.absorb(&seed[..32]);
    h.absorb(&[p.k as u8]);
    h.squeeze(&mut g);
    let mut rho = [0u8; 32];
    let mut sigma = [0u8; 32];
    rho.copy_from_slice(&g[..32]);
    sigma.copy_from_slice(&g[32..]);
    g.zeroize();
    key.z.copy_from_slice(&seed[32..]);

    for i in 0..p.k {
        for j in 0..p.k {
            sample_ntt(&rho, i, j, &mut key.a_hat[i][j]);
        }
    }
    for i in 0..p.k {
        sample_cbd(&sigma, i as u8, p.eta1, &mut key.s_hat[i]);
        poly::ntt(&mut key.s_hat[i]);
    }
    let mut ek_hash = Sha3_256::new();
    let mut e = ZERO;
    let mut bytes = [0u8; 384];
    for i in 0..p.k {
        let t = &mut key.t_hat[i];
        for j in 0..p.k {
            poly::basemul(t, &key.a_hat[i][j], &key.s_hat[j], j > 0);
            poly::reduce(t);
        }
        poly::tomont(t);
        sample_cbd(&sigma, (p.k + i) as u8, p.eta1, &mut e);
        poly::ntt(&mut e);
        for (x, y) in t.iter_mut().zip(e.iter()) {
            *x = poly::barrett_reduce(*x + *y);
        }
        poly::encode(t.iter().map(|&x| poly::canonical(x)), 12, &mut bytes);
        ek_hash.absorb(&bytes);
        ek_sink(&bytes);
    }
    ek_hash.absorb(&rho);
    ek_sink(&rho);
    ek_hash.squeeze(&mut key.ek_hash);
    e.zeroize();
    sigma.zeroize();
}

/// K-PKE.Encrypt(ek, m, r) with Â and t̂ from `key`; streams the ciphertext to `ct_sink`.
fn encrypt(p: &Params, key: &Key, m: &[u8; 32], r: &[u8; 32], mut ct_sink: impl FnMut(&[u8])) {
    let mut y_hat = [ZERO; MAX_K];
    for (i, y) in y_hat[..p.k].iter_mut().enumerate() {
        sample_cbd(r, i as u8, p.eta1, y);
        poly::ntt(y);
    }
    let mut acc = ZERO;
    let mut noise = ZERO;
    let mut bytes = [0u8; 352];
    // u = NTT^-1(Âᵀ ∘ ŷ) + e1, compressed to du bits.
    for i in 0..p.k {
        for j in 0..p.k {
            poly::basemul(&mut acc, &key.a_hat[j][i], &y_hat[j], j > 0);
        }
        poly::reduce(&mut acc);
        poly::invntt_tomont(&mut acc);
        sample_cbd(r, (p.k + i) as u8, 2, &mut noise);
        let len = 32 * p.du as usize;
        poly::encode(
            acc.iter()
                .zip(noise.iter())
                .map(|(&a, &e)| poly::compress(poly::canonical(poly::barrett_reduce(a + e)), p.du)),
            p.du,
            &mut bytes[..len],
        );
        ct_sink(&bytes[..len]);
    }
    // v = NTT^-1(t̂ᵀ ∘ ŷ) + e2 + Decompress_1(m), compressed to dv bits.
    for j in 0..p.k {
        poly::basemul(&mut acc, &key.t_hat[j], &y_hat[j], j > 0);
    }
    poly::reduce(&mut acc);
    poly::invntt_tomont(&mut acc);
    sample_cbd(r, (2 * p.k) as u8, 2, &mut noise);
    for (c, (a, e)) in acc.iter_mut().zip(noise.iter()).enumerate() {
        let bit = i16::from((m[c / 8] >> (c % 8)) & 1);
        *a = poly::barrett_reduce(*a + *e + (-bit & ((poly::Q + 1) / 2)));
    }
    let len = 32 * p.dv as usize;
    poly::encode(acc.iter().map(|&a| poly::compress(poly::canonical(a), p.dv)), p.dv, &mut bytes[..len]);
    ct_sink(&bytes[..len]);
    y_hat.zeroize();
    acc.zeroize();
    noise.zeroize();
}

/// K-PKE.Decrypt(dk, c): the 32-byte message.
fn decrypt(p: &Params, key: &Key, ct: &[u8]) -> [u8; 32] {
    let u_len = 32 * p.du as usize;
    let mut acc = ZERO;
    let mut u = ZERO;
    for (j, chunk) in ct.chunks_exact(u_len).take(p.k).enumerate() {
        poly::decode(chunk, p.du, |c, y| u[c] = poly::decompress(y, p.du));
        poly::ntt(&mut u);
        poly::basemul(&mut acc, &key.s_hat[j], &u, j > 0);
    }
    poly::reduce(&mut acc);
    poly::invntt_tomont(&mut acc);
    let mut v = ZERO;
    poly::decode(&ct[p.k * u_len..], p.dv, |c, y| v[c] = poly::decompress(y, p.dv));
    let mut m = [0u8; 32];
    for (c, (vc, ac)) in v.iter().zip(acc.iter()).enumerate() {
        let w = poly::canonical(poly::barrett_reduce(*vc - *ac));
        m[c / 8] |= (poly::compress(w, 1) as u8) << (c % 8);
    }
    acc.zeroize();
    v.zeroize();
    m
}

fn new_key() -> Key {
    Key {
        a_hat: [[ZERO; MAX_K]; MAX_K],
        t_hat: [ZERO; MAX_K],
        s_hat: [ZERO; MAX_K],
        ek_hash: [0; 32],
        z: [0; 32],
    }
}

/// Writes the encapsulation key ek (ByteEncode12(t̂) ‖ ρ) of the seed into `out` (at least
/// [`Level::encapsulation_key_len`] bytes); returns its length.
pub fn encapsulation_key(level: Level, seed: &[u8; SEED_LEN], out: &mut [u8]) -> Result<usize, Error> {
    let len = level.encapsulation_key_len();
    let out = out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
    let mut key = new_key();
    let mut at = 0;
    expand(&level.params(), seed, &mut key, |bytes| {
        if let Some(dst) = out.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        at += bytes.len();
    });
    Ok(len)
}

/// Encapsulates to the key of the seed with the caller's 32 random bytes `m`: writes the
/// ciphertext into `ct_out` (at least [`Level::ciphertext_len`] bytes) and the shared secret into
/// `shared`; returns the ciphertext length.
pub fn encapsulate(
    level: Level,
    seed: &[u8; SEED_LEN],
    m: &[u8; 32],
    ct_out: &mut [u8],
    shared: &mut [u8; SHARED_SECRET_LEN],
) -> Result<usize, Error> {
    let p = level.params();
    let len = level.ciphertext_len();
    let ct_out = ct_out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
    let mut key = new_key();
    expand(&p, seed, &mut key, |_| {});
    let mut kr = [0u8; 64];
    let mut g = Sha3_512::new();
    g.absorb(m);
    g.absorb(&key.ek_hash);
    g.squeeze(&mut kr);
    let mut r = [0u8; 32];
    r.copy_from_slice(&kr[32..]);
    let mut at = 0;
    encrypt(&p, &key, m, &r, |bytes| {
        if let Some(dst) = ct_out.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        at += bytes.len();
    });
    shared.copy_from_slice(&kr[..32]);
    kr.zeroize();
    r.zeroize();
    Ok(len)
}

/// Decapsulates `ct` with the key of the seed into `shared`. A ciphertext of the right length
/// that was not produced for this key yields the implicit-rejection secret J(z ‖ c) instead, in
/// constant time; only a wrong length is an error.
pub fn decapsulate(
    level: Level,
    seed: &[u8; SEED_LEN],
    ct: &[u8],
    shared: &mut [u8; SHARED_SECRET_LEN],
) -> Result<(), Error> {
    let p = level.params();
    if ct.len() != level.ciphertext_len() {
        return Err(Error::CiphertextLength);
    }
    let mut key = new_key();
    expand(&p, seed, &mut key, |_| {});
    let mut m = decrypt(&p, &key, ct);
    let mut kr = [0u8; 64];
    let mut g = Sha3_512::new();
    g.absorb(&m);
    g.absorb(&key.ek_hash);
    g.squeeze(&mut kr);
    let mut r = [0u8; 32];
    r.copy_from_slice(&kr[32..]);
    // Re-encrypt and compare as the bytes come, without branching on them.
    let mut differ = 0u8;
    let mut at = 0;
    encrypt(&p, &key, &m, &r, |bytes| {
        for (i, b) in bytes.iter().enumerate() {
            differ |= b ^ ct.get(at + i).copied().unwrap_or(0);
        }
        at += bytes.len();
    });
    let equal = differ.ct_eq(&0);
    let mut rejected = [0u8; 32];
    let mut j = Shake256::new();
    j.absorb(&key.z);
    j.absorb(ct);
    j.squeeze(&mut rejected);
    for ((out, good), bad) in shared.iter_mut().zip(kr[..32].iter()).zip(rejected.iter()) {
        *out = u8::conditional_select(bad, good, equal);
    }
    m.zeroize();
    kr.zeroize();
    r.zeroize();
    rejected.zeroize();
    Ok(())
}

#[cfg(test)]
mod tests;
