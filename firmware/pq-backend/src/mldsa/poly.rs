//! Arithmetic in R_q = Z_q[X]/(X^256 + 1), q = 8380417: the number-theoretic transform and the
//! rounding functions of FIPS 204 (Power2Round, Decompose, MakeHint, UseHint), written after the
//! CRYSTALS-Dilithium reference implementation (same Montgomery constants, same coefficient
//! bounds), so every step can be compared with it.
//!
//! Coefficients are `i32`. Functions state the range they expect and give; "reduced" means
//! [`reduce32`]'s range (|a| ≤ 6,283,008), "frozen" means the canonical `0..q`.

/// The modulus q = 2^23 - 2^13 + 1.
pub const Q: i32 = 8_380_417;
/// Coefficients per polynomial.
pub const N: usize = 256;
/// Bits dropped from t by Power2Round.
pub const D: u32 = 13;
/// q^-1 mod 2^32.
const QINV: i32 = 58_728_449;
/// mont^2 / 256 mod q (mont = 2^32 mod q): the scaling at the end of the inverse NTT.
const INV_NTT_SCALE: i32 = 41_978;

/// A polynomial: 256 coefficients.
pub type Poly = [i32; N];

/// The zero polynomial.
pub const ZERO: Poly = [0; N];

/// 1753^brv8(i) · 2^32 mod q, centred, for i in 0..256 (entry 0 is unused): the twiddle factors
/// of the NTT in Montgomery form, computed at compile time.
const ZETAS: [i32; N] = zetas();

const fn pow_mod(mut base: u64, mut exp: u32) -> u64 {
    let q = Q as u64;
    let mut acc = 1u64;
    base %= q;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = acc * base % q;
        }
        base = base * base % q;
        exp >>= 1;
    }
    acc
}

const fn zetas() -> [i32; N] {
    let q = Q as u64;
    let mont = (1u64 << 32) % q;
    let mut out = [0i32; N];
    let mut i = 1;
    while i < N {
        // brv8(i): bit reversal of the 8-bit index.
        let mut r = 0u32;
        let mut b = 0;
        while b < 8 {
            r |= (((i as u32) >> b) & 1) << (7 - b);
            b += 1;
        }
        let z = pow_mod(1753, r) * mont % q;
        out[i] = if z > q / 2 { z as i32 - Q } else { z as i32 };
        i += 1;
    }
    out
}

/// a · 2^-32 mod q for |a| ≤ 2^31·q; the result has |r| < q.
#[inline(always)]
pub fn montgomery_reduce(a: i64) -> i32 {
    let t = (a as i32).wrapping_mul(QINV);
    ((a - i64::from(t) * i64::from(Q)) >> 32) as i32
}

/// A representative of a mod q with |r| ≤ 6,283,008, for a ≤ 2^31 - 2^22 - 1.
#[inline(always)]
pub fn reduce32(a: i32) -> i32 {
    let t = (a + (1 << 22)) >> 23;
    a - t * Q
}

/// Adds q if a is negative.
#[inline(always)]
pub fn caddq(a: i32) -> i32 {
    a + ((a >> 31) & Q)
}

/// The canonical representative in 0..q, for a ≤ 2^31 - 2^22 - 1.
#[inline(always)]
pub fn freeze(a: i32) -> i32 {
    caddq(reduce32(a))
}

/// Forward NTT in place (bit-reversed output order). Input |a| ≤ some B; output |a| ≤ B + 8q.
pub fn ntt(a: &mut Poly) {
    let mut k = 0;
    let mut len = 128;
    while len > 0 {
        let mut start = 0;
        while start < N {
            k += 1;
            let zeta = i64::from(ZETAS[k & (N - 1)]);
            let (lo, hi) = a[start..start + 2 * len].split_at_mut(len);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let t = montgomery_reduce(zeta * i64::from(*y));
                *y = *x - t;
                *x += t;
            }
            start += 2 * len;
        }
        len >>= 1;
    }
}

/// Inverse NTT in place, multiplying by 2^32 on the way (so that NTT → pointwise Montgomery
/// product → this gives the plain product). Input |a| < q; output |a| < q.
pub fn invntt_tomont(a: &mut Poly) {
    let mut k = N;
    let mut len = 1;
    while len < N {
        let mut start = 0;
        while start < N {
            k -= 1;
            let zeta = -i64::from(ZETAS[k & (N - 1)]);
            let (lo, hi) = a[start..start + 2 * len].split_at_mut(len);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let t = *x;
                *x = t + *y;
                *y = montgomery_reduce(zeta * i64::from(t - *y));
            }
            start += 2 * len;
        }
        len <<= 1;
    }
    for x in a.iter_mut() {
        *x = montgomery_reduce(i64::from(INV_NTT_SCALE) * i64::from(*x));
    }
}

/// acc = a ∘ b · 2^-32 (pointwise Montgomery product) for NTT-domain a, b with |a·b| ≤ 2^31·q.
pub fn pointwise(acc: &mut Poly, a: &Poly, b: &Poly) {
    for ((r, x), y) in acc.iter_mut().zip(a.iter()).zip(b.iter()) {
        *r = montgomery_reduce(i64::from(*x) * i64::from(*y));
    }
}

/// acc += a ∘ b · 2^-32.
pub fn pointwise_acc(acc: &mut Poly, a: &Poly, b: &Poly) {
    for ((r, x), y) in acc.iter_mut().zip(a.iter()).zip(b.iter()) {
        *r += montgomery_reduce(i64::from(*x) * i64::from(*y));
    }
}

/// Applies [`reduce32`] to every coefficient.
pub fn reduce(a: &mut Poly) {
    for x in a.iter_mut() {
        *x = reduce32(*x);
    }
}

/// Applies [`freeze`] to every coefficient.
pub fn freeze_all(a: &mut Poly) {
    for x in a.iter_mut() {
        *x = freeze(*x);
    }
}

/// Whether some coefficient (reduced) has |a| ≥ bound. Leaks which coefficient fails, never the
/// sign of one (as the reference implementation): rejected candidates are discarded.
pub fn exceeds(a: &Poly, bound: i32) -> bool {
    let mut over = false;
    for &x in a.iter() {
        let t = x - ((x >> 31) & (2 * x));
        over |= t >= bound;
    }
    over
}

/// Power2Round for a frozen a: (a1, a0) with a = a1·2^13 + a0, -2^12 < a0 ≤ 2^12.
#[inline(always)]
pub fn power2round(a: i32) -> (i32, i32) {
    let a1 = (a + (1 << (D - 1)) - 1) >> D;
    (a1, a - (a1 << D))
}

/// Decompose for a frozen a: (a1, a0) with a ≡ a1·2γ2 + a0, |a0| ≤ γ2 (HighBits, LowBits).
/// `gamma2` is (q-1)/88 or (q-1)/32.
#[inline(always)]
pub fn decompose(a: i32, gamma2: i32) -> (i32, i32) {
    let mut a1 = (a + 127) >> 7;
    if gamma2 == (Q - 1) / 32 {
        a1 = (a1 * 1025 + (1 << 21)) >> 22;
        a1 &= 15;
    } else {
        a1 = (a1 * 11275 + (1 << 23)) >> 24;
        a1 ^= ((43 - a1) >> 31) & a1;
    }
    let mut a0 = a - a1 * 2 * gamma2;
    a0 -= (((Q - 1) / 2 - a0) >> 31) & Q;
    (a1, a0)
}

/// MakeHint from the low part a0 = w0 - cs2 + ct0 (exact, |a0| < 2γ2) and the high part a1:
/// whether adding ct0 changed the high bits.
#[inline(always)]
pub fn make_hint(a0: i32, a1: i32, gamma2: i32) -> bool {
    a0 > gamma2 || a0 < -gamma2 || (a0 == -gamma2 && a1 != 0)
}

/// UseHint for a frozen a.
#[inline(always)]
pub fn use_hint(a: i32, hint: bool, gamma2: i32) -> i32 {
    let (a1, a0) = decompose(a, gamma2);
    if !hint {
        return a1;
    }
    if gamma2 == (Q - 1) / 32 {
        if a0 > 0 {
            (a1 + 1) & 15
        } else {
            (a1 - 1) & 15
        }
    } else if a0 > 0 {
        if a1 == 43 {
            0
        } else {
            a1 + 1
        }
    } else if a1 == 0 {
        43
    } else {
        a1 - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zetas_match_the_reference_table() {
        // The first entries of the CRYSTALS-Dilithium reference `zetas` and its last one.
        assert_eq!(&ZETAS[1..9], &[25847, -2608894, -518909, 237124, -777960, -876248, 466468, 1826347]);
        assert_eq!(ZETAS[255], 1976782);
    }

    fn schoolbook(a: &Poly, b: &Poly) -> Poly {
        let mut r = [0i64; N];
        for i in 0..N {
            for j in 0..N {
                let p = i64::from(a[i]) * i64::from(b[j]) % i64::from(Q);
                if i + j < N {
                    r[i + j] += p;
                } else {
                    r[i + j - N] -= p;
                }
            }
        }
        let mut out = ZERO;
        for (o, v) in out.iter_mut().zip(r) {
            *o = v.rem_euclid(i64::from(Q)) as i32;
        }
        out
    }

    #[test]
    fn ntt_multiplication_equals_schoolbook_in_the_ring() {
        let mut seed = 0x1234_5678u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for round in 0..4 {
            let mut a = ZERO;
            let mut b = ZERO;
            for i in 0..N {
                a[i] = (next() % Q as u32) as i32 - if round % 2 == 0 { 0 } else { Q / 2 };
                b[i] = (next() % 9) as i32 - 4;
            }
            let expected = schoolbook(&a, &b);
            let (mut ah, mut bh) = (a, b);
            ntt(&mut ah);
            ntt(&mut bh);
            let mut c = ZERO;
            pointwise(&mut c, &ah, &bh);
            invntt_tomont(&mut c);
            freeze_all(&mut c);
            assert_eq!(c, expected);
        }
    }

    /// UseHint as FIPS 204 algorithm 40 states it, with the modular wrap of the high part.
    fn use_hint_by_definition(r: i32, h: bool, gamma2: i32) -> i32 {
        let m = (Q - 1) / (2 * gamma2);
        let (r1, r0) = decompose(r, gamma2);
        match (h, r0 > 0) {
            (false, _) => r1,
            (true, true) => (r1 + 1).rem_euclid(m),
            (true, false) => (r1 - 1).rem_euclid(m),
        }
    }

    #[test]
    fn use_hint_wraps_the_high_part_around_for_both_gammas() {
        for gamma2 in [(Q - 1) / 88, (Q - 1) / 32] {
            let m = (Q - 1) / (2 * gamma2);
            // Every value near each high part's boundaries, the wrap-arounds included.
            for r1 in 0..m {
                let centre = r1 * 2 * gamma2;
                for delta in [-gamma2 - 1, -gamma2, -gamma2 + 1, -1, 0, 1, gamma2 - 1, gamma2, gamma2 + 1] {
                    let r = (centre + delta).rem_euclid(Q);
                    for h in [false, true] {
                        assert_eq!(
                            use_hint(r, h, gamma2),
                            use_hint_by_definition(r, h, gamma2),
                            "r={r} h={h}"
                        );
                    }
                }
            }
            // And the wrap itself: high part m-1 stepping up gives 0, high part 0 stepping down m-1.
            let top = (m - 1) * 2 * gamma2 + 1;
            assert_eq!(use_hint(top, true, gamma2), 0);
            assert_eq!(use_hint(0, true, gamma2), m - 1);
        }
    }

    #[test]
    fn the_verifier_recovers_the_signers_high_bits_from_the_hint() {
        // The signer has r = w - c·s2 with |LowBits(r)| < γ2 - β and |c·t0| < γ2; it hints
        // MakeHint(LowBits(r) + c·t0, HighBits(r)); the verifier sees r' = r + c·t0 and must get
        // HighBits(r) back from UseHint(h, r').
        let mut x = 0x1357_9bdfu32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for (gamma2, beta) in [((Q - 1) / 88, 78), ((Q - 1) / 32, 196)] {
            let m = (Q - 1) / (2 * gamma2);
            for round in 0..40_000 {
                let r1 = (next() % m as u32) as i32;
                let span = 2 * (gamma2 - beta) - 1;
                let r0 = (next() % span as u32) as i32 - (gamma2 - beta - 1);
                let ct0 = (next() % (2 * gamma2 - 1) as u32) as i32 - (gamma2 - 1);
                // The extremes too, now and then.
                let (r0, ct0) = match round % 4 {
                    0 => (gamma2 - beta - 1, gamma2 - 1),
                    1 => (-(gamma2 - beta - 1), -(gamma2 - 1)),
                    _ => (r0, ct0),
                };
                let r = (r1 * 2 * gamma2 + r0).rem_euclid(Q);
                assert_eq!(decompose(r, gamma2), (r1, r0));
                let hint = make_hint(r0 + ct0, r1, gamma2);
                let seen = (r + ct0).rem_euclid(Q);
                assert_eq!(use_hint(seen, hint, gamma2), r1, "r1={r1} r0={r0} ct0={ct0}");
            }
        }
    }

    #[test]
    fn decompose_and_hints_agree_with_the_definitions() {
        for gamma2 in [(Q - 1) / 88, (Q - 1) / 32] {
            for a in (0..Q).step_by(997).chain([0, 1, gamma2, gamma2 + 1, Q - 1, Q - gamma2]) {
                let (a1, a0) = decompose(a, gamma2);
                assert!(a0 > -gamma2 - 1 && a0 <= gamma2, "{a}");
                assert_eq!((a1 * 2 * gamma2 + a0).rem_euclid(Q), a);
                let (t1, t0) = power2round(a);
                assert_eq!(t1 * (1 << D) + t0, a);
                assert!(t0 > -(1 << (D - 1)) && t0 <= 1 << (D - 1));
            }
        }
    }
}
