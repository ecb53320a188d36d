//! AES-256-GCM (NIST SP 800-38D, 96-bit nonces, 128-bit tags) with a constant-time GHASH built
//! for the Cortex-M4's single-cycle 32×32→64 multiplier.
//!
//! # Why this exists
//!
//! RustCrypto's `aes-gcm` 0.10 computes GHASH with `polyval`'s portable 32-bit multiplier (a port
//! of BearSSL's `ghash_ctmul32`), which uses only 32×32→32 multiplies and bit reversal: too slow
//! on the token for the AES-256-GCM speed goal (docs/benchmarks.md has the before and after;
//! BENCHMARKS.md the current figures). The Cortex-M4 has `UMULL`/`UMLAL`, a 64-bit product in one
//! cycle whatever the operands, so this module multiplies in GF(2¹²⁸) with integer multiplies of
//! operands masked into bit classes with holes (BearSSL's `ghash_ctmul` idea), two products
//! summed per `UMLAL`, over a two-level Karatsuba split into 32-bit limbs (nine 32×32 products
//! per block), and runs CTR eight blocks per call into the fixsliced AES. The AES is the `aes`
//! crate's; no assembly here (this crate forbids `unsafe`).
//!
//! # Contract
//!
//! * Output is byte-for-byte what `aes-gcm` 0.10's `Aes256Gcm` produces for the same key, nonce,
//!   associated data and plaintext: ciphertext (CTR32 from inc32(J0), J0 = nonce ‖ 0³¹ ‖ 1) and
//!   tag (GHASH over the padded associated data, the padded ciphertext and the length block,
//!   XORed with E(J0)). Data sealed by the old code opens here and the other way round. Tests:
//!   the McGrew–Viega / NIST AES-256 vectors and randomized cross-checks against `aes-gcm`.
//! * Decryption authenticates first: on a wrong tag the buffer is left as it was (ciphertext, no
//!   plaintext is ever written) and [`Error`] is returned. Tags are compared in constant time.
//! * No secret-dependent branches or memory indices: AES is the `aes` crate's fixsliced software
//!   implementation on thumbv7em (no tables), GHASH uses only AND/XOR/shift and multiplies (the
//!   compiler may predicate a data-processing instruction with `IT`, as it does once in the key
//!   setup; that is not a branch, and on the Cortex-M4 the instruction takes its one cycle either
//!   way). The multiply is constant-time on the Cortex-M4 (both boards: QEMU's mps2-an386 and the
//!   nRF52840); on a Cortex-M3, whose `UMULL` finishes early for small operands, it would not be.
//! * Key material (the AES round keys, the hash key and its prepared forms) is zeroed on drop; the
//!   keystream, E(J0) and the running hash are zeroed before returning.
//! * Limits as in `aes-gcm`: at most 2³⁶ bytes of plaintext (2³⁶ + 16 of ciphertext) and of
//!   associated data, else [`Error`].

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes256, Block};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Key length in bytes.
pub const KEY_LEN: usize = 32;
/// Nonce length in bytes (the only one supported: J0 = nonce ‖ 0³¹ ‖ 1).
pub const NONCE_LEN: usize = 12;
/// Tag length in bytes.
pub const TAG_LEN: usize = 16;

/// Longest plaintext and associated data, as in `aes-gcm` 0.10.
const P_MAX: u64 = 1 << 36;
const A_MAX: u64 = 1 << 36;
const C_MAX: u64 = (1 << 36) + 16;

/// Counter blocks encrypted per call into the block cipher (the fixsliced AES does two at a
/// time; a larger batch only amortises the call).
const CTR_BATCH: usize = 8;

/// Encryption or decryption failed: a wrong tag (or key, nonce, associated data), or a length
/// over the limits. Deliberately says nothing more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error;

/// AES-256-GCM under one key: the AES round keys and the prepared hash key.
#[derive(ZeroizeOnDrop)]
pub struct Aes256Gcm {
    aes: Aes256,
    hash_key: GhashKey,
}

impl Aes256Gcm {
    /// Expands `key` (AES-256 key schedule, H = E(0¹²⁸), the hash key's prepared form).
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        let aes = Aes256::new(key.into());
        let mut h = Block::default();
        aes.encrypt_block(&mut h);
        let mut h_bytes = [0u8; 16];
        h_bytes.copy_from_slice(&h);
        let hash_key = GhashKey::new(&h_bytes);
        h.zeroize();
        h_bytes.zeroize();
        Aes256Gcm { aes, hash_key }
    }

    /// As [`new`](Self::new), from a slice that must be [`KEY_LEN`] bytes long.
    pub fn new_from_slice(key: &[u8]) -> Result<Self, Error> {
        let key: &[u8; KEY_LEN] = key.try_into().map_err(|_| Error)?;
        Ok(Self::new(key))
    }

    /// Encrypts `buffer` in place; returns the tag.
    pub fn encrypt_in_place_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        associated_data: &[u8],
        buffer: &mut [u8],
    ) -> Result<[u8; TAG_LEN], Error> {
        if !within_limits(buffer.len() as u64, P_MAX, associated_data.len() as u64) {
            return Err(Error);
        }
        let mut ghash = Ghash::new(&self.hash_key);
        ghash.update_padded(associated_data);
        // CTR and GHASH chunk by chunk: one pass over the buffer.
        let mut ctr = Ctr::new(&self.aes, nonce);
        for chunk in buffer.chunks_mut(CTR_BATCH * 16) {
            ctr.apply(chunk);
            ghash.update_padded(chunk);
        }
        Ok(self.finish(ghash, nonce, associated_data.len(), buffer.len()))
    }

    /// Decrypts `buffer` in place if `tag` authenticates it; otherwise leaves it unchanged and
    /// returns [`Error`].
    pub fn decrypt_in_place_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        associated_data: &[u8],
        buffer: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Error> {
        if !within_limits(buffer.len() as u64, C_MAX, associated_data.len() as u64) {
            return Err(Error);
        }
        let mut ghash = Ghash::new(&self.hash_key);
        ghash.update_padded(associated_data);
        ghash.update_padded(buffer);
        let mut expected = self.finish(ghash, nonce, associated_data.len(), buffer.len());
        let ok: bool = expected.ct_eq(tag).into();
        expected.zeroize();
        if !ok {
            return Err(Error);
        }
        let mut ctr = Ctr::new(&self.aes, nonce);
        for chunk in buffer.chunks_mut(CTR_BATCH * 16) {
            ctr.apply(chunk);
        }
        Ok(())
    }

    /// Hashes the length block and returns GHASH ⊕ E(J0).
    fn finish(
        &self,
        mut ghash: Ghash<'_>,
        nonce: &[u8; NONCE_LEN],
        aad_len: usize,
        ct_len: usize,
    ) -> [u8; 16] {
        ghash.update_block(length_block(aad_len as u64, ct_len as u64));
        let mut tag = ghash.finalize();
        let mut j0 = counter_block(nonce, 1);
        self.aes.encrypt_block(&mut j0);
        for (t, k) in tag.iter_mut().zip(j0.iter()) {
            *t ^= k;
        }
        j0.zeroize();
        tag
    }
}

/// Whether a text of `len` bytes (at most `max`) and associated data of `aad_len` bytes are
/// within the limits.
fn within_limits(len: u64, max: u64, aad_len: u64) -> bool {
    len <= max && aad_len <= A_MAX
}

/// GHASH's last block, `be64(8·aad_len) ‖ be64(8·ct_len)`, as words (`w[0]` least significant).
fn length_block(aad_len: u64, ct_len: u64) -> [u32; 4] {
    let aad_bits = aad_len.wrapping_mul(8);
    let ct_bits = ct_len.wrapping_mul(8);
    [ct_bits as u32, (ct_bits >> 32) as u32, aad_bits as u32, (aad_bits >> 32) as u32]
}

/// `nonce ‖ be32(counter)`.
#[inline(always)]
fn counter_block(nonce: &[u8; NONCE_LEN], counter: u32) -> Block {
    let mut block = Block::default();
    block[..NONCE_LEN].copy_from_slice(nonce);
    block[NONCE_LEN..].copy_from_slice(&counter.to_be_bytes());
    block
}

/// CTR32 keystream from inc32(J0), applied [`CTR_BATCH`] blocks at a time.
///
/// Written with plain index loops (no slice-copy or iterator-adapter helpers) so that it stays
/// cheap when the crate is built for size (`opt-level = "s"`/`"z"`), where those are calls.
struct Ctr<'a> {
    aes: &'a Aes256,
    counter: u32,
    /// `nonce ‖ counter` blocks: the nonce is written once, the counter words per batch.
    counters: [Block; CTR_BATCH],
    keystream: [Block; CTR_BATCH],
}

impl<'a> Ctr<'a> {
    fn new(aes: &'a Aes256, nonce: &[u8; NONCE_LEN]) -> Self {
        let mut counters = [Block::default(); CTR_BATCH];
        for block in counters.iter_mut() {
            for (b, n) in block.iter_mut().zip(nonce.iter()) {
                *b = *n;
            }
        }
        Ctr { aes, counter: 2, counters, keystream: [Block::default(); CTR_BATCH] }
    }

    /// XORs the next `data.len()` keystream bytes into `data` (at most [`CTR_BATCH`] blocks;
    /// only the last call may end inside a block).
    fn apply(&mut self, data: &mut [u8]) {
        let blocks = data.len().div_ceil(16).min(CTR_BATCH);
        for block in self.counters[..blocks].iter_mut() {
            let c = self.counter.to_be_bytes();
            block[12] = c[0];
            block[13] = c[1];
            block[14] = c[2];
            block[15] = c[3];
            self.counter = self.counter.wrapping_add(1);
        }
        for (k, c) in self.keystream[..blocks].iter_mut().zip(self.counters.iter()) {
            *k = *c;
        }
        self.aes.encrypt_blocks(&mut self.keystream[..blocks]);
        let full = data.len() / 16;
        let mut chunks = data.chunks_exact_mut(16);
        for (d, k) in (&mut chunks).zip(self.keystream.iter()) {
            let (Ok(d), k): (Result<&mut [u8; 16], _>, &[u8; 16]) = (d.try_into(), k.as_ref()) else {
                continue; // never: the chunks are exactly 16 bytes
            };
            // A word at a time.
            let mut i = 0;
            while i < 16 {
                let w = u32::from_ne_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]])
                    ^ u32::from_ne_bytes([k[i], k[i + 1], k[i + 2], k[i + 3]]);
                let w = w.to_ne_bytes();
                d[i] = w[0];
                d[i + 1] = w[1];
                d[i + 2] = w[2];
                d[i + 3] = w[3];
                i += 4;
            }
        }
        let tail = chunks.into_remainder();
        if let Some(k) = self.keystream.get(full) {
            for (d, k) in tail.iter_mut().zip(k.iter()) {
                *d ^= k;
            }
        }
    }
}

impl Drop for Ctr<'_> {
    fn drop(&mut self) {
        self.keystream.zeroize();
    }
}

/// One 32-bit Karatsuba operand of the hash key, prepared for [`clmul32`].
#[derive(Clone, Zeroize)]
struct KeyWord {
    /// The word's bits in four classes: `parts[c]` keeps the bits at positions ≡ c (mod 4),
    /// except bits 0 and 31.
    parts: [u32; 4],
    /// All ones if bit 0 of the word is set, else zero.
    bit0: u32,
    /// All ones if bit 31 of the word is set, else zero.
    bit31: u32,
}

impl KeyWord {
    fn new(w: u32) -> Self {
        let w_inner = w & 0x7FFF_FFFE;
        KeyWord {
            parts: [
                w_inner & 0x1111_1111,
                w_inner & 0x2222_2222,
                w_inner & 0x4444_4444,
                w_inner & 0x8888_8888,
            ],
            bit0: 0u32.wrapping_sub(w & 1),
            bit31: 0u32.wrapping_sub(w >> 31),
        }
    }
}

/// Carry-less product of `x` and a prepared key word, 32×32→64, in constant time.
///
/// Integer multiplication of operands that keep only every fourth bit ("holes") adds up the
/// partial products of one residue class mod 4 without letting carries reach the next bit of
/// that class, as long as at most 15 partial products meet at one position. Each output class is
/// the XOR of two sums of two integer products (`UMULL` + `UMLAL`), each sum taking `x`'s bits
/// from two classes (16 bits). Leaving the key word's bits 0 and 31 out of its parts keeps every
/// sum at 15 or fewer (the only positions that could collect 16 need one of those bits); their
/// products, `x` and `x`·2³¹, are added back with masks.
#[inline(never)]
fn clmul32(x: u32, k: &KeyWord) -> u64 {
    let lo = (x & k.bit0) ^ ((x << 31) & k.bit31);
    let hi = (x >> 1) & k.bit31;
    let mut r = u64::from(lo) | (u64::from(hi) << 32);
    let x0 = x & 0x1111_1111;
    let x1 = x & 0x2222_2222;
    let x2 = x & 0x4444_4444;
    let x3 = x & 0x8888_8888;
    let m = |a: u32, b: u32| u64::from(a) * u64::from(b);
    // Two passes, each with two of the key parts in registers: fewer live values, fewer spills.
    let [y0, _, y2, _] = k.parts;
    r ^= m(x0, y0).wrapping_add(m(x2, y2)) & 0x1111_1111_1111_1111;
    r ^= m(x0, y2).wrapping_add(m(x2, y0)) & 0x4444_4444_4444_4444;
    r ^= m(x1, y0).wrapping_add(m(x3, y2)) & 0x2222_2222_2222_2222;
    r ^= m(x1, y2).wrapping_add(m(x3, y0)) & 0x8888_8888_8888_8888;
    let [_, y1, _, y3] = k.parts;
    r ^= m(x0, y1).wrapping_add(m(x2, y3)) & 0x2222_2222_2222_2222;
    r ^= m(x0, y3).wrapping_add(m(x2, y1)) & 0x8888_8888_8888_8888;
    r ^= m(x1, y3).wrapping_add(m(x3, y1)) & 0x1111_1111_1111_1111;
    r ^= m(x1, y1).wrapping_add(m(x3, y3)) & 0x4444_4444_4444_4444;
    r
}

/// The GHASH key H, prepared: the nine Karatsuba operands of H·x⁻¹ (see [`Ghash`]).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct GhashKey {
    words: [KeyWord; 9],
}

impl GhashKey {
    /// Prepares the hash key `h` (for GCM, E(0¹²⁸)).
    pub fn new(h: &[u8; 16]) -> Self {
        let mut v = load_block(h);
        // H·x⁻¹: multiplying by x⁻¹ shifts every coefficient down one degree, which is one bit
        // up in this bit-reflected layout; the x⁰ coefficient (bit 127) becomes
        // x⁻¹ = x¹²⁷ + x⁶ + x + 1 (bits 0, 121, 126, 127). Using it makes the 255-bit product
        // land where the reduction expects it without shifting each product by one bit.
        let top = 0u32.wrapping_sub(v[3] >> 31);
        let mut s =
            [v[0] << 1, (v[1] << 1) | (v[0] >> 31), (v[2] << 1) | (v[1] >> 31), (v[3] << 1) | (v[2] >> 31)];
        s[0] ^= top & 1;
        s[3] ^= top & 0xC200_0000;
        let [h0, h1, h2, h3] = s;
        let words = [
            KeyWord::new(h0),
            KeyWord::new(h1),
            KeyWord::new(h0 ^ h1),
            KeyWord::new(h2),
            KeyWord::new(h3),
            KeyWord::new(h2 ^ h3),
            KeyWord::new(h0 ^ h2),
            KeyWord::new(h1 ^ h3),
            KeyWord::new(h0 ^ h1 ^ h2 ^ h3),
        ];
        v.zeroize();
        s.zeroize();
        GhashKey { words }
    }
}

/// GHASH (SP 800-38D) under a prepared key: Y ← (Y ⊕ X)·H per 16-byte block X.
///
/// Layout: a block is four big-endian 32-bit words, `w[0]` the last (least significant), so the
/// coefficient of xⁱ is integer bit 127 − i ("bit-reflected"). The integer carry-less product of
/// two such values holds the coefficient of xᵐ at bit 254 − m; with H·x⁻¹ as the key that is
/// the product A·H with xᵐ at bit 255 − m, and the low 128 bits (x¹²⁸ … x²⁵⁵) fold into the high
/// ones with x¹²⁸ = x⁷ + x² + x + 1 (BearSSL's reduction).
pub struct Ghash<'k> {
    key: &'k GhashKey,
    y: [u32; 4],
}

impl<'k> Ghash<'k> {
    /// Starts a hash (Y = 0).
    pub fn new(key: &'k GhashKey) -> Self {
        Ghash { key, y: [0; 4] }
    }

    /// Hashes `data`, the last partial block padded with zeros.
    pub fn update_padded(&mut self, data: &[u8]) {
        let mut blocks = data.chunks_exact(16);
        for block in &mut blocks {
            self.update_block(load_block(block));
        }
        let tail = blocks.remainder();
        if !tail.is_empty() {
            let mut last = [0u8; 16];
            last[..tail.len()].copy_from_slice(tail);
            self.update_block(load_block(&last));
            last.zeroize();
        }
    }

    /// Hashes one block given as words (`w[0]` least significant).
    #[inline]
    fn update_block(&mut self, w: [u32; 4]) {
        let a = [self.y[0] ^ w[0], self.y[1] ^ w[1], self.y[2] ^ w[2], self.y[3] ^ w[3]];
        self.y = mul_reduce(a, self.key);
    }

    /// The hash value (and zeroes the state).
    pub fn finalize(mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (o, w) in out.chunks_exact_mut(4).zip(self.y.iter().rev()) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        self.y.zeroize();
        out
    }
}

impl Drop for Ghash<'_> {
    fn drop(&mut self) {
        self.y.zeroize();
    }
}

/// Loads a 16-byte block as big-endian words, `w[0]` least significant (callers pass exactly 16
/// bytes; a word past the end of a shorter slice would read as zero).
#[inline(always)]
fn load_block(b: &[u8]) -> [u32; 4] {
    let word = |i: usize| match b.get(i..i + 4) {
        Some(&[p, q, r, s]) => u32::from_be_bytes([p, q, r, s]),
        _ => 0,
    };
    [word(12), word(8), word(4), word(0)]
}

/// 64-bit Karatsuba step: lo·T⁰ + (mid ⊕ lo ⊕ hi)·T + hi·T², T = 2³², as (low, high) 64-bit
/// halves.
#[inline(always)]
fn karatsuba(lo: u64, hi: u64, mid: u64) -> (u64, u64) {
    let mid = mid ^ lo ^ hi;
    (lo ^ (mid << 32), hi ^ (mid >> 32))
}

/// (a · H·x⁻¹) reduced: the new GHASH state. Nine 32×32 carry-less products (two-level
/// Karatsuba), then the fold of the low 128 bits.
#[inline(always)]
fn mul_reduce(a: [u32; 4], key: &GhashKey) -> [u32; 4] {
    let k = &key.words;
    let [a0, a1, a2, a3] = a;
    let d0 = karatsuba(clmul32(a0, &k[0]), clmul32(a1, &k[1]), clmul32(a0 ^ a1, &k[2]));
    let d1 = karatsuba(clmul32(a2, &k[3]), clmul32(a3, &k[4]), clmul32(a2 ^ a3, &k[5]));
    let (a02, a13) = (a0 ^ a2, a1 ^ a3);
    let d2 = karatsuba(clmul32(a02, &k[6]), clmul32(a13, &k[7]), clmul32(a02 ^ a13, &k[8]));
    // (A0 + A1)(H0 + H1) + A0H0 + A1H1 is the middle 128 bits.
    let mid = (d2.0 ^ d0.0 ^ d1.0, d2.1 ^ d0.1 ^ d1.1);
    let p = [d0.0, d0.1 ^ mid.0, d1.0 ^ mid.1, d1.1];
    let mut z = [
        p[0] as u32,
        (p[0] >> 32) as u32,
        p[1] as u32,
        (p[1] >> 32) as u32,
        p[2] as u32,
        (p[2] >> 32) as u32,
        p[3] as u32,
        (p[3] >> 32) as u32,
    ];
    // Bit q < 128 stands for x^(255 − q); x^128 = x^7 + x^2 + x + 1 moves it to bits q + 128,
    // q + 127, q + 126 and q + 121. Word by word from the lowest, so bits that land below 128
    // (from word 0 into word 3) are folded again.
    for i in 0..4 {
        let lw = z[i];
        z[i + 4] ^= lw ^ (lw >> 1) ^ (lw >> 2) ^ (lw >> 7);
        z[i + 3] ^= (lw << 31) ^ (lw << 30) ^ (lw << 25);
    }
    [z[4], z[5], z[6], z[7]]
}

#[cfg(test)]
mod tests;
