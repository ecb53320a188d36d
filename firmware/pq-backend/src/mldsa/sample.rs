//! The hash-based samplers of FIPS 204 (section 7.3) and the bit packing of section 7.1.

use zeroize::Zeroize;

use super::params::Params;
use super::poly::{Poly, N, Q};
use crate::shake::{Shake128, Shake256, RATE_128, RATE_256};

/// RejNTTPoly: the NTT-domain matrix entry Â[row][col] from ρ (SHAKE128 of ρ ‖ col ‖ row,
/// three bytes per candidate, 23 bits, kept if < q). Coefficients are in 0..q.
pub fn matrix_entry(rho: &[u8; 32], row: usize, col: usize, out: &mut Poly) {
    let mut h = Shake128::new();
    h.absorb(rho);
    h.absorb(&[col as u8, row as u8]);
    let mut block = [0u8; RATE_128];
    let mut n = 0;
    while n < N {
        h.squeeze_block(&mut block);
        for c in block.chunks_exact(3) {
            let t = u32::from(c[0]) | (u32::from(c[1]) << 8) | (u32::from(c[2] & 0x7f) << 16);
            if t < Q as u32 && n < N {
                out[n] = t as i32;
                n += 1;
            }
        }
    }
}

/// RejBoundedPoly: a secret polynomial with coefficients in -η..=η from ρ' and a 16-bit index
/// (SHAKE256; half-bytes < 15 give 2 - (b mod 5) for η = 2, half-bytes < 9 give 4 - b for η = 4).
pub fn bounded(rho_prime: &[u8; 64], index: u16, eta: i32, out: &mut Poly) {
    let mut h = Shake256::new();
    h.absorb(rho_prime);
    h.absorb(&index.to_le_bytes());
    let mut block = [0u8; RATE_256];
    let mut n = 0;
    while n < N {
        h.squeeze_block(&mut block);
        for &byte in block.iter() {
            for b in [i32::from(byte & 0x0f), i32::from(byte >> 4)] {
                if n >= N {
                    break;
                }
                if eta == 2 && b < 15 {
                    out[n] = 2 - (b % 5);
                    n += 1;
                } else if eta == 4 && b < 9 {
                    out[n] = 4 - b;
                    n += 1;
                }
            }
        }
    }
    block.zeroize();
}

/// ExpandMask for one polynomial: y with coefficients in -γ1+1..=γ1 from ρ'' and the 16-bit
/// counter κ + r (SHAKE256, γ1 - (20- or 18-bit value)).
pub fn mask(p: &Params, rho2: &[u8; 64], counter: u16, out: &mut Poly) {
    let mut h = Shake256::new();
    h.absorb(rho2);
    h.absorb(&counter.to_le_bytes());
    // Whole blocks: 5 × 136 ≥ 640 bytes.
    let mut buf = [0u8; 5 * RATE_256];
    for block in buf.chunks_exact_mut(RATE_256) {
        if let Ok(block) = block.try_into() {
            h.squeeze_block(block);
        }
    }
    let len = p.z_bytes();
    unpack(&buf[..len], p.z_bits(), out);
    for x in out.iter_mut() {
        *x = p.gamma1 - *x;
    }
    buf.zeroize();
}

/// SampleInBall: the challenge c with τ coefficients ±1 from c̃ (SHAKE256: 8 bytes of signs,
/// then a Fisher-Yates shuffle by rejection).
pub fn challenge(p: &Params, ctilde: &[u8], out: &mut Poly) {
    let mut h = Shake256::new();
    h.absorb(ctilde);
    let mut block = [0u8; RATE_256];
    h.squeeze_block(&mut block);
    let mut signs =
        u64::from_le_bytes([block[0], block[1], block[2], block[3], block[4], block[5], block[6], block[7]]);
    let mut pos = 8;
    *out = [0; N];
    for i in N - p.tau..N {
        let j = loop {
            if pos == block.len() {
                h.squeeze_block(&mut block);
                pos = 0;
            }
            let j = usize::from(block[pos]);
            pos += 1;
            if j <= i {
                break j;
            }
        };
        out[i] = out[j];
        out[j] = 1 - 2 * (signs & 1) as i32;
        signs >>= 1;
    }
}

/// Packs 256 coefficients of `bits` bits each (little-endian bit order) into `out`
/// (32·bits bytes). Coefficients must already be in 0..2^bits.
pub fn pack(a: &Poly, bits: u32, out: &mut [u8]) {
    let mut acc: u64 = 0;
    let mut have = 0u32;
    let mut o = 0;
    for &x in a.iter() {
        acc |= u64::from(x as u32 & ((1 << bits) - 1)) << have;
        have += bits;
        while have >= 8 {
            if let Some(byte) = out.get_mut(o) {
                *byte = acc as u8;
            }
            o += 1;
            acc >>= 8;
            have -= 8;
        }
    }
}

/// Unpacks 256 coefficients of `bits` bits each from `bytes` (32·bits bytes).
pub fn unpack(bytes: &[u8], bits: u32, out: &mut Poly) {
    let mut acc: u64 = 0;
    let mut have = 0u32;
    let mut it = bytes.iter();
    for x in out.iter_mut() {
        while have < bits {
            acc |= u64::from(it.next().copied().unwrap_or(0)) << have;
            have += 8;
        }
        *x = (acc & ((1 << bits) - 1)) as i32;
        acc >>= bits;
        have -= bits;
    }
}
