//! Arithmetic in R_q = Z_q[X]/(X^256 + 1), q = 3329, for ML-KEM (FIPS 203 section 4.3): the NTT,
//! multiplication in the NTT domain, compression and byte encoding. Written after the
//! CRYSTALS-Kyber reference implementation (same Montgomery and Barrett constants and bounds).

/// The modulus q.
pub const Q: i16 = 3329;
/// Coefficients per polynomial.
pub const N: usize = 256;
/// q^-1 mod 2^16.
const QINV: i16 = -3327;
/// mont^2 / 128 mod q (mont = 2^16 mod q): the scaling at the end of the inverse NTT.
const INV_NTT_SCALE: i16 = 1441;
/// 2^32 mod q: multiplying by it with a Montgomery reduction converts into Montgomery form.
const MONT_SQUARED: i16 = 1353;

/// A polynomial: 256 coefficients.
pub type Poly = [i16; N];

/// The zero polynomial.
pub const ZERO: Poly = [0; N];

/// 17^brv7(i) · 2^16 mod q, centred, for i in 0..128: the NTT's twiddle factors in Montgomery
/// form, computed at compile time.
const ZETAS: [i16; 128] = zetas();

const fn zetas() -> [i16; 128] {
    let q = Q as u32;
    let mont = (1u32 << 16) % q;
    let mut out = [0i16; 128];
    let mut i = 0;
    while i < 128 {
        let mut r = 0u32;
        let mut b = 0;
        while b < 7 {
            r |= ((i as u32 >> b) & 1) << (6 - b);
            b += 1;
        }
        let mut z = 1u32;
        let mut e = 0;
        while e < r {
            z = z * 17 % q;
            e += 1;
        }
        let v = z * mont % q;
        out[i] = if v > q / 2 { v as i16 - Q } else { v as i16 };
        i += 1;
    }
    out
}

/// a · 2^-16 mod q for |a| ≤ 2^15·q; |result| < q.
#[inline(always)]
fn montgomery_reduce(a: i32) -> i16 {
    let t = (a as i16).wrapping_mul(QINV);
    ((a - i32::from(t) * i32::from(Q)) >> 16) as i16
}

#[inline(always)]
fn fqmul(a: i16, b: i16) -> i16 {
    montgomery_reduce(i32::from(a) * i32::from(b))
}

/// The representative of a mod q in -(q-1)/2..=(q-1)/2.
#[inline(always)]
pub fn barrett_reduce(a: i16) -> i16 {
    const V: i32 = ((1 << 26) + (Q as i32) / 2) / Q as i32;
    let t = ((V * i32::from(a) + (1 << 25)) >> 26) as i16;
    a.wrapping_sub(t.wrapping_mul(Q))
}

/// The representative in 0..q of a reduced (|a| < q) coefficient.
#[inline(always)]
pub fn canonical(a: i16) -> u16 {
    (a + ((a >> 15) & Q)) as u16
}

/// Forward NTT in place, then reduced. Input |a| < q.
pub fn ntt(a: &mut Poly) {
    let mut k = 1;
    let mut len = 128;
    while len >= 2 {
        let mut start = 0;
        while start < N {
            let zeta = ZETAS[k & 127];
            k += 1;
            let (lo, hi) = a[start..start + 2 * len].split_at_mut(len);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let t = fqmul(zeta, *y);
                *y = *x - t;
                *x += t;
            }
            start += 2 * len;
        }
        len >>= 1;
    }
    reduce(a);
}

/// Inverse NTT in place, multiplying by 2^16 on the way. Input |a| < q; output |a| < q.
pub fn invntt_tomont(a: &mut Poly) {
    let mut k = 127usize;
    let mut len = 2;
    while len <= 128 {
        let mut start = 0;
        while start < N {
            let zeta = ZETAS[k & 127];
            k = k.wrapping_sub(1);
            let (lo, hi) = a[start..start + 2 * len].split_at_mut(len);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let t = *x;
                *x = barrett_reduce(t + *y);
                *y = fqmul(zeta, *y - t);
            }
            start += 2 * len;
        }
        len <<= 1;
    }
    for x in a.iter_mut() {
        *x = fqmul(*x, INV_NTT_SCALE);
    }
}

/// acc (+)= a ∘ b · 2^-16 in the NTT domain (128 products in Z_q[X]/(X^2 - ζ)).
pub fn basemul(acc: &mut Poly, a: &Poly, b: &Poly, accumulate: bool) {
    for i in 0..64 {
        let zeta = ZETAS[64 + i];
        for (at, z) in [(4 * i, zeta), (4 * i + 2, -zeta)] {
            let (a0, a1, b0, b1) = (a[at], a[at + 1], b[at], b[at + 1]);
            let r0 = fqmul(fqmul(a1, b1), z) + fqmul(a0, b0);
            let r1 = fqmul(a0, b1) + fqmul(a1, b0);
            if accumulate {
                acc[at] += r0;
                acc[at + 1] += r1;
            } else {
                acc[at] = r0;
                acc[at + 1] = r1;
            }
        }
    }
}

/// Multiplies every coefficient by 2^16 (into Montgomery form) and reduces.
pub fn tomont(a: &mut Poly) {
    for x in a.iter_mut() {
        *x = montgomery_reduce(i32::from(*x) * i32::from(MONT_SQUARED));
    }
}

/// Barrett-reduces every coefficient.
pub fn reduce(a: &mut Poly) {
    for x in a.iter_mut() {
        *x = barrett_reduce(*x);
    }
}

/// floor(n / q) for n < 2^23, by multiplication (constant time; checked exhaustively).
#[inline(always)]
fn div_q(n: u32) -> u32 {
    ((u64::from(n) * 2_580_335) >> 33) as u32
}

/// Compress_d(x) = round(2^d·x / q) mod 2^d for x in 0..q.
#[inline(always)]
pub fn compress(x: u16, d: u32) -> u16 {
    (div_q((u32::from(x) << d) + (Q as u32 - 1) / 2) & ((1 << d) - 1)) as u16
}

/// Decompress_d(y) = round(q·y / 2^d).
#[inline(always)]
pub fn decompress(y: u16, d: u32) -> i16 {
    ((u32::from(y) * Q as u32 + (1 << (d - 1))) >> d) as i16
}

/// ByteEncode_d: 256 values of `d` bits each (little-endian bit order) into 32·d bytes.
pub fn encode(values: impl Iterator<Item = u16>, d: u32, out: &mut [u8]) {
    let mut acc: u32 = 0;
    let mut have = 0u32;
    let mut o = out.iter_mut();
    for v in values {
        acc |= u32::from(v) << have;
        have += d;
        while have >= 8 {
            if let Some(byte) = o.next() {
                *byte = acc as u8;
            }
            acc >>= 8;
            have -= 8;
        }
    }
}

/// ByteDecode_d: 256 values of `d` bits each from 32·d bytes, passed to `f(index, value)`.
pub fn decode(bytes: &[u8], d: u32, mut f: impl FnMut(usize, u16)) {
    let mut acc: u32 = 0;
    let mut have = 0u32;
    let mut it = bytes.iter();
    for i in 0..N {
        while have < d {
            acc |= u32::from(it.next().copied().unwrap_or(0)) << have;
            have += 8;
        }
        f(i, (acc & ((1 << d) - 1)) as u16);
        acc >>= d;
        have -= d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zetas_match_the_reference_table() {
        // The CRYSTALS-Kyber reference `zetas` begin -1044, -758, -359, -1517.
        assert_eq!(&ZETAS[..4], &[-1044, -758, -359, -1517]);
    }

    #[test]
    fn division_by_q_is_exact_below_2_pow_23() {
        for n in 0..(1u32 << 23) {
            assert_eq!(div_q(n), n / Q as u32, "{n}");
        }
    }

    #[test]
    fn compression_rounds_as_fips_203_defines() {
        for d in [1u32, 4, 5, 10, 11] {
            for x in 0..Q as u32 {
                // round(2^d x / q) with ties up, mod 2^d, in exact rational arithmetic.
                let num = (x << d) * 2 + Q as u32;
                let expected = (num / (2 * Q as u32)) % (1 << d);
                assert_eq!(u32::from(compress(x as u16, d)), expected, "d={d} x={x}");
            }
            for y in 0..(1u16 << d) {
                let expected = ((u32::from(y) * Q as u32 * 2 + (1 << d)) / (2 << d)) as i16;
                assert_eq!(decompress(y, d), expected);
            }
        }
    }

    fn schoolbook(a: &Poly, b: &Poly) -> Poly {
        let q = i32::from(Q);
        let mut r = [0i32; N];
        for i in 0..N {
            for j in 0..N {
                let p = i32::from(a[i]) * i32::from(b[j]) % q;
                if i + j < N {
                    r[i + j] = (r[i + j] + p) % q;
                } else {
                    r[i + j - N] = (r[i + j - N] - p) % q;
                }
            }
        }
        let mut out = ZERO;
        for (o, v) in out.iter_mut().zip(r) {
            *o = v.rem_euclid(q) as i16;
        }
        out
    }

    #[test]
    fn ntt_multiplication_equals_schoolbook_in_the_ring() {
        let mut seed = 0x2545_f491u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for _ in 0..4 {
            let mut a = ZERO;
            let mut b = ZERO;
            for i in 0..N {
                a[i] = (next() % Q as u32) as i16;
                b[i] = (next() % 5) as i16 - 2;
            }
            let expected = schoolbook(&a, &b);
            let (mut ah, mut bh) = (a, b);
            ntt(&mut ah);
            ntt(&mut bh);
            let mut c = ZERO;
            basemul(&mut c, &ah, &bh, false);
            invntt_tomont(&mut c);
            let got: Vec<i16> = c.iter().map(|&x| canonical(barrett_reduce(x)) as i16).collect();
            assert_eq!(got[..], expected[..]);
        }
    }
}
