//! The three ML-DSA parameter sets of FIPS 204 (table 1) and the sizes that follow from them.

use super::poly::Q;

/// Most rows (k) of any parameter set (ML-DSA-87).
pub const MAX_K: usize = 8;
/// Most columns (l) of any parameter set (ML-DSA-87).
pub const MAX_L: usize = 7;
/// Longest encoded signature (ML-DSA-87).
pub const MAX_SIGNATURE: usize = 4627;
/// Longest encoded public key (ML-DSA-87).
pub const MAX_PUBLIC_KEY: usize = 2592;

/// An ML-DSA parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// ML-DSA-44 (security category 2).
    MlDsa44,
    /// ML-DSA-65 (security category 3).
    MlDsa65,
    /// ML-DSA-87 (security category 5).
    MlDsa87,
}

/// The numbers of one parameter set.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Rows of A.
    pub k: usize,
    /// Columns of A.
    pub l: usize,
    /// Bound of the secret coefficients.
    pub eta: i32,
    /// Non-zero coefficients of the challenge.
    pub tau: usize,
    /// τ·η.
    pub beta: i32,
    /// Range of the masking vector y.
    pub gamma1: i32,
    /// Low-order rounding range.
    pub gamma2: i32,
    /// Most ones in the hint.
    pub omega: usize,
    /// Bytes of the commitment hash c̃ (λ/4).
    pub ctilde: usize,
}

impl Level {
    /// The parameter set's numbers.
    pub const fn params(self) -> Params {
        match self {
            Level::MlDsa44 => Params {
                k: 4,
                l: 4,
                eta: 2,
                tau: 39,
                beta: 78,
                gamma1: 1 << 17,
                gamma2: (Q - 1) / 88,
                omega: 80,
                ctilde: 32,
            },
            Level::MlDsa65 => Params {
                k: 6,
                l: 5,
                eta: 4,
                tau: 49,
                beta: 196,
                gamma1: 1 << 19,
                gamma2: (Q - 1) / 32,
                omega: 55,
                ctilde: 48,
            },
            Level::MlDsa87 => Params {
                k: 8,
                l: 7,
                eta: 2,
                tau: 60,
                beta: 120,
                gamma1: 1 << 19,
                gamma2: (Q - 1) / 32,
                omega: 75,
                ctilde: 64,
            },
        }
    }

    /// Bytes of the encoded public key: ρ and t1 (10 bits per coefficient).
    pub const fn public_key_len(self) -> usize {
        32 + 320 * self.params().k
    }

    /// Bytes of the encoded signature: c̃, z, and the hint.
    pub const fn signature_len(self) -> usize {
        let p = self.params();
        p.ctilde + p.l * p.z_bytes() + p.omega + p.k
    }
}

impl Params {
    /// Bits per coefficient of z (1 + bitlen(γ1 - 1)).
    pub const fn z_bits(&self) -> u32 {
        if self.gamma1 == 1 << 17 {
            18
        } else {
            20
        }
    }

    /// Bytes of one packed polynomial of z.
    pub const fn z_bytes(&self) -> usize {
        32 * self.z_bits() as usize
    }

    /// Bits per coefficient of w1 (bitlen((q-1)/(2γ2) - 1)).
    pub const fn w1_bits(&self) -> u32 {
        if self.gamma2 == (Q - 1) / 88 {
            6
        } else {
            4
        }
    }

    /// Bytes of one packed polynomial of w1.
    pub const fn w1_bytes(&self) -> usize {
        32 * self.w1_bits() as usize
    }
}
