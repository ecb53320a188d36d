//! SHAKE128 and SHAKE256 (FIPS 202): a sponge over [`super::keccak`]'s bit-interleaved
//! Keccak-f[1600], absorbing and squeezing whole 64-bit lanes.
//!
//! # Why this exists
//!
//! ML-DSA spends most of its time in SHAKE (one matrix entry squeezes five SHAKE128 blocks), so
//! the permutation is this crate's 32-bit one (see [`super::keccak`]), and lanes are converted
//! to and from the interleaved form once per 8 bytes; [`Sponge::squeeze_block`] hands out a whole
//! rate-sized block at once.
//!
//! # Contract
//!
//! Output is byte for byte SHAKE128 / SHAKE256 (tests: python's `hashlib` and the `shake` crate
//! for many lengths and split points). The state is zeroed on drop.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::keccak::{deinterleave, f1600, interleave};

/// SHAKE128's rate in bytes.
pub const RATE_128: usize = 168;
/// SHAKE256's (and SHA3-256's) rate in bytes.
pub const RATE_256: usize = 136;
/// SHA3-512's rate in bytes.
pub const RATE_SHA3_512: usize = 72;
/// The domain-separation and first padding bits of SHAKE (`1111` then pad10*1).
const PAD_SHAKE: u8 = 0x1f;
/// The domain-separation and first padding bits of SHA3 (`01` then pad10*1).
const PAD_SHA3: u8 = 0x06;

/// SHAKE128.
pub type Shake128 = Sponge<RATE_128, PAD_SHAKE>;
/// SHAKE256.
pub type Shake256 = Sponge<RATE_256, PAD_SHAKE>;
/// SHA3-256 (squeeze 32 bytes).
pub type Sha3_256 = Sponge<RATE_256, PAD_SHA3>;
/// SHA3-512 (squeeze 64 bytes).
pub type Sha3_512 = Sponge<RATE_SHA3_512, PAD_SHA3>;

/// A Keccak sponge with a rate of `RATE` bytes and padding `PAD` (SHAKE or SHA3). Absorb with
/// [`absorb`](Self::absorb), then squeeze; the first squeeze pads and switches to squeezing, after
/// which absorbing is ignored. For the SHA3 hashes, squeeze exactly the digest length.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Sponge<const RATE: usize, const PAD: u8> {
    /// Interleaved lanes (see [`super::keccak`]).
    state: [u32; 50],
    /// Bytes absorbed into (or squeezed from) the current block.
    pos: usize,
    squeezing: bool,
}

impl<const RATE: usize, const PAD: u8> Default for Sponge<RATE, PAD> {
    fn default() -> Self {
        Self::new()
    }
}

#[inline(always)]
fn permute(state: &mut [u32; 50]) {
    f1600(state);
}

impl<const RATE: usize, const PAD: u8> Sponge<RATE, PAD> {
    const LANES: usize = {
        assert!(RATE == RATE_128 || RATE == RATE_256 || RATE == RATE_SHA3_512);
        assert!(PAD == PAD_SHAKE || PAD == PAD_SHA3);
        RATE / 8
    };

    /// An empty sponge.
    pub const fn new() -> Self {
        Sponge { state: [0; 50], pos: 0, squeezing: false }
    }

    /// Absorbs `data` (ignored once squeezing has started).
    pub fn absorb(&mut self, mut data: &[u8]) {
        if self.squeezing {
            return;
        }
        // Up to a lane boundary byte by byte, then whole lanes, then the tail.
        while !data.is_empty() && !self.pos.is_multiple_of(8) {
            self.xor_byte(data[0]);
            data = &data[1..];
        }
        while data.len() >= 8 {
            let mut word = [0u8; 8];
            word.copy_from_slice(&data[..8]);
            self.xor_lane(self.pos / 8, u64::from_le_bytes(word));
            self.pos += 8;
            if self.pos == RATE {
                permute(&mut self.state);
                self.pos = 0;
            }
            data = &data[8..];
        }
        for &b in data {
            self.xor_byte(b);
        }
    }

    #[inline(always)]
    fn xor_lane(&mut self, lane: usize, value: u64) {
        let (e, o) = interleave(value);
        if let Some(pair) = self.state.get_mut(2 * lane..2 * lane + 2) {
            pair[0] ^= e;
            pair[1] ^= o;
        }
    }

    fn lane(&self, lane: usize) -> u64 {
        match self.state.get(2 * lane..2 * lane + 2) {
            Some(pair) => deinterleave(pair[0], pair[1]),
            None => 0,
        }
    }

    fn xor_byte(&mut self, b: u8) {
        self.xor_lane(self.pos / 8, u64::from(b) << (8 * (self.pos % 8)));
        self.pos += 1;
        if self.pos == RATE {
            permute(&mut self.state);
            self.pos = 0;
        }
    }

    /// Pads (the domain bits, then 10*1) and switches to squeezing.
    fn finish(&mut self) {
        if self.squeezing {
            return;
        }
        self.xor_lane(self.pos / 8, u64::from(PAD) << (8 * (self.pos % 8)));
        self.xor_lane(Self::LANES - 1, 1 << 63);
        self.squeezing = true;
        // The next squeeze permutes first.
        self.pos = RATE;
    }

    /// Squeezes `out.len()` bytes.
    pub fn squeeze(&mut self, mut out: &mut [u8]) {
        self.finish();
        while !out.is_empty() {
            if self.pos == RATE {
                permute(&mut self.state);
                self.pos = 0;
            }
            let bytes = self.lane(self.pos / 8).to_le_bytes();
            let from = self.pos % 8;
            let n = (8 - from).min(out.len());
            out[..n].copy_from_slice(&bytes[from..from + n]);
            self.pos += n;
            out = &mut out[n..];
        }
    }

    /// Squeezes the next whole block. Must only be mixed with [`squeeze`](Self::squeeze) calls
    /// that end on a block boundary (bytes of a partly read block are skipped).
    pub fn squeeze_block(&mut self, out: &mut [u8; RATE]) {
        self.finish();
        permute(&mut self.state);
        for (chunk, pair) in out.chunks_exact_mut(8).zip(self.state.chunks_exact(2)) {
            chunk.copy_from_slice(&deinterleave(pair[0], pair[1]).to_le_bytes());
        }
        self.pos = RATE;
    }
}

/// SHAKE256 of the concatenated `parts` into `out`.
pub fn shake256(parts: &[&[u8]], out: &mut [u8]) {
    let mut h = Shake256::new();
    for part in parts {
        h.absorb(part);
    }
    h.squeeze(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use shake::{ExtendableOutput, Update, XofReader};

    fn reference<const RATE: usize>(data: &[u8], out_len: usize) -> Vec<u8> {
        let mut out = vec![0u8; out_len];
        if RATE == RATE_128 {
            let mut h = shake::Shake128::default();
            h.update(data);
            h.finalize_xof().read(&mut out);
        } else {
            let mut h = shake::Shake256::default();
            h.update(data);
            h.finalize_xof().read(&mut out);
        }
        out
    }

    fn check<const RATE: usize>() {
        type Sponge<const R: usize> = super::Sponge<R, PAD_SHAKE>;
        let data: Vec<u8> = (0..700u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0usize, 1, 7, 8, 9, 135, 136, 137, 167, 168, 169, 335, 336, 700] {
            for split in [0usize, 1, 5, 8, 13, len / 2, len] {
                let split = split.min(len);
                let expected = reference::<RATE>(&data[..len], 3 * RATE + 5);
                let mut s = Sponge::<RATE>::new();
                s.absorb(&data[..split]);
                s.absorb(&data[split..len]);
                let mut out = vec![0u8; 3 * RATE + 5];
                let (a, b) = out.split_at_mut(11);
                s.squeeze(a);
                s.squeeze(b);
                assert_eq!(out, expected, "len {len} split {split}");
                // Whole blocks.
                let mut s = Sponge::<RATE>::new();
                s.absorb(&data[..len]);
                let mut block = [0u8; RATE];
                s.squeeze_block(&mut block);
                assert_eq!(block[..], expected[..RATE]);
                s.squeeze_block(&mut block);
                assert_eq!(block[..], expected[RATE..2 * RATE]);
            }
        }
    }

    #[test]
    fn shake128_matches_the_shake_crate() {
        check::<RATE_128>();
    }

    #[test]
    fn shake256_matches_the_shake_crate() {
        check::<RATE_256>();
    }

    #[test]
    fn sha3_256_and_sha3_512_match_python_hashlib() {
        // hashlib.sha3_256(bytes(range(200))) and sha3_512 of the same, and of b"abc".
        let data: Vec<u8> = (0..200u8).collect();
        let mut d = [0u8; 32];
        let mut h = Sha3_256::new();
        h.absorb(&data);
        h.squeeze(&mut d);
        assert_eq!(hex(&d), SHA3_256_RANGE200);
        let mut d = [0u8; 64];
        let mut h = Sha3_512::new();
        h.absorb(&data[..100]);
        h.absorb(&data[100..]);
        h.squeeze(&mut d);
        assert_eq!(hex(&d), SHA3_512_RANGE200);
        let mut h = Sha3_512::new();
        h.absorb(b"abc");
        h.squeeze(&mut d);
        assert_eq!(hex(&d[..8]), "b751850b1a57168a");
    }

    const SHA3_256_RANGE200: &str = "5f728f63bf5ee48c77f453c0490398fa645b8d4c4e56be9a41cfec344d6ca899";
    const SHA3_512_RANGE200: &str = "ea5d05f19348dd589793354793a15f37a73b4c0bb4e750b9a00757dfce2f8b65\
                                     a64191bb9b137de00feef6474cfd47abf7880efbc51614a5715df12cfe0caee3";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn known_answers_from_fips_202_examples() {
        // SHAKE128("") and SHAKE256("") first bytes (NIST / python hashlib).
        let mut out = [0u8; 8];
        Shake128::new().squeeze(&mut out);
        assert_eq!(out, [0x7f, 0x9c, 0x2b, 0xa4, 0xe8, 0x8f, 0x82, 0x7d]);
        Shake256::new().squeeze(&mut out);
        assert_eq!(out, [0x46, 0xb9, 0xdd, 0x2b, 0x0b, 0xa8, 0x8d, 0x13]);
    }
}
