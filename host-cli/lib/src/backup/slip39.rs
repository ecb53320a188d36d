//! SLIP-39 (Shamir's Secret-Sharing for Mnemonic Codes), the single-group case: a master
//! secret split into `count` mnemonics of which any `threshold` recover it, with the empty
//! passphrase. Written to the specification and checked against its reference implementation
//! (PyPI `shamir-mnemonic` 0.3.0; tests/backup_slip39.rs): its word list, the RS1024 checksum,
//! Shamir's scheme over GF(256) with the digest share, and the 4-round Feistel encryption with
//! PBKDF2-HMAC-SHA-256. Shares are made with the extendable flag set and iteration exponent 1,
//! as the reference does by default; shares without the flag (older tools) are read too.
//!
//! No Rust crate fit: `sssmc39` (the only SLIP-39 crate) calls itself an untested work in
//! progress and was last released in 2020.

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

const WORDS_TEXT: &str = include_str!("slip39_words.txt");
const RADIX_BITS: usize = 10;
const ID_BITS: u32 = 15;
const ID_EXP_WORDS: usize = 2;
const CHECKSUM_WORDS: usize = 3;
const METADATA_WORDS: usize = ID_EXP_WORDS + 2 + CHECKSUM_WORDS;
const MIN_MNEMONIC_WORDS: usize = METADATA_WORDS + 13; // 128 bits
const DIGEST_LEN: usize = 4;
const SECRET_INDEX: u8 = 255;
const DIGEST_INDEX: u8 = 254;
const BASE_ITERATIONS: u32 = 10_000;
const ROUNDS: u8 = 4;
/// Most shares SLIP-39 allows in a group.
pub const MAX_SHARES: u8 = 16;
/// The iteration exponent of the shares this module makes (the reference's default).
pub const ITERATION_EXPONENT: u8 = 1;

/// Why mnemonics were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Slip39Error {
    /// A word that is not in the SLIP-39 word list.
    #[error("\"{0}\" is not a SLIP-39 word")]
    UnknownWord(String),
    /// A mnemonic of a length SLIP-39 does not have.
    #[error("a SLIP-39 share has 20 or 33 words (or another length SLIP-39 allows), not {0}")]
    Length(usize),
    /// The RS1024 checksum fails: a word mistyped or missing.
    #[error("the share's checksum fails: a word is mistyped, swapped or missing")]
    Checksum,
    /// The padding bits are not zero.
    #[error("the share's padding is not zero: it is damaged")]
    Padding,
    /// Shares of different secrets, or of another scheme (several groups).
    #[error("these shares do not belong together: {0}")]
    Mismatch(&'static str),
    /// Fewer shares than the threshold.
    #[error("{needed} shares are needed, {given} given")]
    TooFew {
        /// The threshold.
        needed: u8,
        /// Distinct shares given.
        given: usize,
    },
    /// The recovered secret fails its digest: shares of different splits mixed.
    #[error("the shares do not combine to a consistent secret (the digest fails): shares of different backups were mixed")]
    Digest,
    /// Parameters out of range when splitting.
    #[error("{0}")]
    Parameters(&'static str),
}

fn words() -> &'static [&'static str] {
    static WORDS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    WORDS.get_or_init(|| WORDS_TEXT.split_whitespace().collect())
}

fn word_index(word: &str) -> Result<u16, Slip39Error> {
    let w = word.to_ascii_lowercase();
    words()
        .binary_search(&w.as_str())
        .map(|i| i as u16)
        .map_err(|_| Slip39Error::UnknownWord(word.to_owned()))
}

fn polymod(values: impl IntoIterator<Item = u32>) -> u32 {
    const GEN: [u32; 10] = [
        0xE0E040, 0x1C1C080, 0x3838100, 0x7070200, 0xE0E0009, 0x1C0C2412, 0x38086C24, 0x3090FC48, 0x21B1F890,
        0x3F3F120,
    ];
    let mut chk: u32 = 1;
    for v in values {
        let b = chk >> 20;
        chk = ((chk & 0xFFFFF) << 10) ^ v;
        for (i, g) in GEN.iter().enumerate() {
            if (b >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

fn customization(extendable: bool) -> &'static [u8] {
    if extendable {
        b"shamir_extendable"
    } else {
        b"shamir"
    }
}

fn checksum(data: &[u16], extendable: bool) -> [u16; CHECKSUM_WORDS] {
    let values = customization(extendable)
        .iter()
        .map(|&c| c as u32)
        .chain(data.iter().map(|&d| d as u32))
        .chain([0; CHECKSUM_WORDS]);
    let p = polymod(values) ^ 1;
    [((p >> 20) & 1023) as u16, ((p >> 10) & 1023) as u16, (p & 1023) as u16]
}

fn checksum_ok(data: &[u16], extendable: bool) -> bool {
    polymod(customization(extendable).iter().map(|&c| c as u32).chain(data.iter().map(|&d| d as u32))) == 1
}

// GF(256) with the AES polynomial, by log tables (as the reference computes it).
struct Gf {
    exp: [u8; 255],
    log: [u8; 256],
}

fn gf() -> &'static Gf {
    static GF: std::sync::OnceLock<Gf> = std::sync::OnceLock::new();
    GF.get_or_init(|| {
        let mut t = Gf { exp: [0; 255], log: [0; 256] };
        let mut poly: u16 = 1;
        for i in 0..255 {
            t.exp[i] = poly as u8;
            t.log[poly as usize] = i as u8;
            poly = (poly << 1) ^ poly;
            if poly & 0x100 != 0 {
                poly ^= 0x11B;
            }
        }
        t
    })
}

/// f(x) of the polynomial through `shares` (distinct x, equal lengths).
fn interpolate(shares: &[(u8, Zeroizing<Vec<u8>>)], x: u8) -> Zeroizing<Vec<u8>> {
    if let Some((_, d)) = shares.iter().find(|(sx, _)| *sx == x) {
        return d.clone();
    }
    let t = gf();
    let log_prod: u32 = shares.iter().map(|(sx, _)| t.log[(sx ^ x) as usize] as u32).sum();
    let len = shares[0].1.len();
    let mut result = Zeroizing::new(vec![0u8; len]);
    for (sx, data) in shares {
        let others: u32 = shares.iter().map(|(ox, _)| t.log[(sx ^ ox) as usize] as u32).sum();
        let basis = (log_prod + 255 * 32 - t.log[(sx ^ x) as usize] as u32 - others) % 255;
        for (r, &v) in result.iter_mut().zip(data.iter()) {
            if v != 0 {
                *r ^= t.exp[((t.log[v as usize] as u32 + basis) % 255) as usize];
            }
        }
    }
    result
}

fn digest(random: &[u8], secret: &[u8]) -> [u8; DIGEST_LEN] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(random).expect("HMAC takes any key length");
    mac.update(secret);
    let d = mac.finalize().into_bytes();
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(&d[..DIGEST_LEN]);
    out
}

fn split_secret<R: RngCore + CryptoRng>(
    threshold: u8,
    count: u8,
    secret: &[u8],
    rng: &mut R,
) -> Vec<(u8, Zeroizing<Vec<u8>>)> {
    if threshold == 1 {
        return (0..count).map(|i| (i, Zeroizing::new(secret.to_vec()))).collect();
    }
    let random_count = threshold - 2;
    let mut shares: Vec<(u8, Zeroizing<Vec<u8>>)> = (0..random_count)
        .map(|i| {
            let mut v = Zeroizing::new(vec![0u8; secret.len()]);
            rng.fill_bytes(&mut v);
            (i, v)
        })
        .collect();
    let mut random_part = Zeroizing::new(vec![0u8; secret.len() - DIGEST_LEN]);
    rng.fill_bytes(&mut random_part);
    let mut digest_share = Zeroizing::new(digest(&random_part, secret).to_vec());
    digest_share.extend_from_slice(&random_part);
    let mut base = shares.clone();
    base.push((DIGEST_INDEX, digest_share));
    base.push((SECRET_INDEX, Zeroizing::new(secret.to_vec())));
    for i in random_count..count {
        shares.push((i, interpolate(&base, i)));
    }
    shares
}

fn recover_secret(
    threshold: u8,
    shares: &[(u8, Zeroizing<Vec<u8>>)],
) -> Result<Zeroizing<Vec<u8>>, Slip39Error> {
    if threshold == 1 {
        return Ok(shares[0].1.clone());
    }
    let secret = interpolate(shares, SECRET_INDEX);
    let d = interpolate(shares, DIGEST_INDEX);
    let want = digest(&d[DIGEST_LEN..], &secret);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&want[..], &d[..DIGEST_LEN])) {
        return Err(Slip39Error::Digest);
    }
    Ok(secret)
}

fn feistel(
    data: &[u8],
    identifier: u16,
    extendable: bool,
    exponent: u8,
    decrypt: bool,
) -> Zeroizing<Vec<u8>> {
    let half = data.len() / 2;
    let mut l = Zeroizing::new(data[..half].to_vec());
    let mut r = Zeroizing::new(data[half..].to_vec());
    let mut salt = Vec::new();
    if !extendable {
        salt.extend_from_slice(b"shamir");
        salt.extend_from_slice(&identifier.to_be_bytes());
    }
    let iterations = (BASE_ITERATIONS << exponent) / ROUNDS as u32;
    let order: Vec<u8> = if decrypt { (0..ROUNDS).rev().collect() } else { (0..ROUNDS).collect() };
    for i in order {
        let mut f = Zeroizing::new(vec![0u8; r.len()]);
        let mut full_salt = salt.clone();
        full_salt.extend_from_slice(&r);
        // The passphrase is empty: the PBKDF2 password is the round number alone.
        pbkdf2::pbkdf2_hmac::<Sha256>(&[i], &full_salt, iterations, &mut f);
        let next: Zeroizing<Vec<u8>> = Zeroizing::new(l.iter().zip(f.iter()).map(|(a, b)| a ^ b).collect());
        l = std::mem::replace(&mut r, next);
    }
    let mut out = Zeroizing::new(r.to_vec());
    out.extend_from_slice(&l);
    out
}

/// One decoded share.
#[derive(Clone)]
pub struct Share {
    /// The random identifier common to one split.
    pub identifier: u16,
    /// The extendable-backup flag.
    pub extendable: bool,
    /// The iteration exponent.
    pub iteration_exponent: u8,
    group_index: u8,
    group_threshold: u8,
    group_count: u8,
    /// Its index in its group.
    pub index: u8,
    /// How many shares recover the secret.
    pub threshold: u8,
    value: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Share(id {}, {} of threshold {})", self.identifier, self.index, self.threshold)
    }
}

/// Appends `nbits` of `value` (big-endian) to a bit string.
fn push_bits(bits: &mut Vec<bool>, value: u64, nbits: usize) {
    for i in (0..nbits).rev() {
        bits.push((value >> i) & 1 == 1);
    }
}

fn bits_to_words(bits: &[bool]) -> Vec<u16> {
    bits.chunks(RADIX_BITS).map(|c| c.iter().fold(0u16, |acc, &b| (acc << 1) | b as u16)).collect()
}

impl Share {
    /// The mnemonic.
    pub fn mnemonic(&self) -> String {
        let mut bits = Vec::new();
        let id_exp = ((self.identifier as u64) << 5)
            | ((self.extendable as u64) << 4)
            | self.iteration_exponent as u64;
        push_bits(&mut bits, id_exp, 20);
        push_bits(&mut bits, self.group_index as u64, 4);
        push_bits(&mut bits, (self.group_threshold - 1) as u64, 4);
        push_bits(&mut bits, (self.group_count - 1) as u64, 4);
        push_bits(&mut bits, self.index as u64, 4);
        push_bits(&mut bits, (self.threshold - 1) as u64, 4);
        let value_words = (self.value.len() * 8).div_ceil(RADIX_BITS);
        let padding = value_words * RADIX_BITS - self.value.len() * 8;
        push_bits(&mut bits, 0, padding);
        for b in self.value.iter() {
            push_bits(&mut bits, *b as u64, 8);
        }
        let mut data = bits_to_words(&bits);
        let sum = checksum(&data, self.extendable);
        data.extend_from_slice(&sum);
        let list = words();
        data.iter().map(|&i| list[i as usize]).collect::<Vec<_>>().join(" ")
    }

    /// Decodes a mnemonic, checking its word list membership, length, checksum and padding.
    pub fn parse(mnemonic: &str) -> Result<Share, Slip39Error> {
        let data: Vec<u16> = mnemonic.split_whitespace().map(word_index).collect::<Result<_, _>>()?;
        if data.len() < MIN_MNEMONIC_WORDS {
            return Err(Slip39Error::Length(data.len()));
        }
        let padding = (RADIX_BITS * (data.len() - METADATA_WORDS)) % 16;
        if padding > 8 {
            return Err(Slip39Error::Length(data.len()));
        }
        let id_exp = ((data[0] as u32) << 10) | data[1] as u32;
        let identifier = (id_exp >> 5) as u16;
        let extendable = (id_exp >> 4) & 1 == 1;
        let iteration_exponent = (id_exp & 15) as u8;
        if !checksum_ok(&data, extendable) {
            return Err(Slip39Error::Checksum);
        }
        let params = ((data[2] as u32) << 10) | data[3] as u32;
        let nib = |shift: u32| ((params >> shift) & 15) as u8;
        let (group_index, group_threshold, group_count, index, threshold) =
            (nib(16), nib(12) + 1, nib(8) + 1, nib(4), nib(0) + 1);
        if group_count < group_threshold {
            return Err(Slip39Error::Mismatch("the group threshold exceeds the group count"));
        }
        let value_words = &data[4..data.len() - CHECKSUM_WORDS];
        let mut bits = Vec::with_capacity(value_words.len() * RADIX_BITS);
        for &w in value_words {
            push_bits(&mut bits, w as u64, RADIX_BITS);
        }
        if bits[..padding].iter().any(|&b| b) {
            return Err(Slip39Error::Padding);
        }
        let value: Zeroizing<Vec<u8>> = Zeroizing::new(
            bits[padding..].chunks(8).map(|c| c.iter().fold(0u8, |acc, &b| (acc << 1) | b as u8)).collect(),
        );
        Ok(Share {
            identifier,
            extendable,
            iteration_exponent,
            group_index,
            group_threshold,
            group_count,
            index,
            threshold,
            value,
        })
    }
}

/// Splits `secret` (16..=32 bytes, even length) into `count` mnemonics, any `threshold` of which
/// recover it (1 ≤ threshold ≤ count ≤ 16; a threshold of 1 only with one share), with the empty
/// passphrase.
pub fn split<R: RngCore + CryptoRng>(
    secret: &[u8],
    threshold: u8,
    count: u8,
    rng: &mut R,
) -> Result<Vec<String>, Slip39Error> {
    if secret.len() < 16 || !secret.len().is_multiple_of(2) {
        return Err(Slip39Error::Parameters("the secret must be an even number of bytes, at least 16"));
    }
    if threshold == 0 || threshold > count || count > MAX_SHARES {
        return Err(Slip39Error::Parameters("the threshold must be 1..=shares, and at most 16 shares"));
    }
    if threshold == 1 && count > 1 {
        return Err(Slip39Error::Parameters("a threshold of 1 with several shares is not allowed"));
    }
    let identifier = (rng.next_u32() & ((1 << ID_BITS) - 1)) as u16;
    let ems = feistel(secret, identifier, true, ITERATION_EXPONENT, false);
    Ok(split_secret(threshold, count, &ems, rng)
        .into_iter()
        .map(|(index, value)| {
            Share {
                identifier,
                extendable: true,
                iteration_exponent: ITERATION_EXPONENT,
                group_index: 0,
                group_threshold: 1,
                group_count: 1,
                index,
                threshold,
                value,
            }
            .mnemonic()
        })
        .collect())
}

/// Combines decoded shares (single group) into the secret. More shares than the threshold are
/// fine (the first ones are used); repeated shares count once.
pub fn combine_shares(shares: &[Share]) -> Result<Zeroizing<Vec<u8>>, Slip39Error> {
    let first = shares.first().ok_or(Slip39Error::TooFew { needed: 1, given: 0 })?;
    if first.group_count != 1 || first.group_threshold != 1 {
        return Err(Slip39Error::Mismatch("they are split into groups, which this tool does not read"));
    }
    for s in shares {
        if s.identifier != first.identifier
            || s.extendable != first.extendable
            || s.iteration_exponent != first.iteration_exponent
            || s.group_count != first.group_count
            || s.group_threshold != first.group_threshold
            || s.threshold != first.threshold
            || s.value.len() != first.value.len()
        {
            return Err(Slip39Error::Mismatch(
                "they begin with different words (shares of different backups)",
            ));
        }
    }
    let mut seen = BTreeSet::new();
    let distinct: Vec<(u8, Zeroizing<Vec<u8>>)> =
        shares.iter().filter(|s| seen.insert(s.index)).map(|s| (s.index, s.value.clone())).collect();
    if distinct.len() < first.threshold as usize {
        return Err(Slip39Error::TooFew { needed: first.threshold, given: distinct.len() });
    }
    let ems = recover_secret(first.threshold, &distinct[..first.threshold as usize])?;
    Ok(feistel(&ems, first.identifier, first.extendable, first.iteration_exponent, true))
}

/// Combines mnemonics into the secret (see [`combine_shares`]).
pub fn combine<S: AsRef<str>>(mnemonics: &[S]) -> Result<Zeroizing<Vec<u8>>, Slip39Error> {
    let shares: Vec<Share> = mnemonics.iter().map(|m| Share::parse(m.as_ref())).collect::<Result<_, _>>()?;
    combine_shares(&shares)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn any_threshold_of_the_shares_recover_the_secret_and_fewer_do_not() {
        let secret: Vec<u8> = (0..32).collect();
        let shares = split(&secret, 3, 5, &mut OsRng).unwrap();
        assert_eq!(shares.len(), 5);
        for s in &shares {
            assert_eq!(s.split_whitespace().count(), 33);
        }
        for (a, b, c) in [(0, 1, 2), (2, 3, 4), (0, 2, 4), (4, 1, 3)] {
            let got = combine(&[&shares[a], &shares[b], &shares[c]]).unwrap();
            assert_eq!(&got[..], &secret[..]);
        }
        assert_eq!(
            combine(&[&shares[0], &shares[1]]).unwrap_err(),
            Slip39Error::TooFew { needed: 3, given: 2 }
        );
        assert_eq!(
            combine(&[&shares[0], &shares[1], &shares[1]]).unwrap_err(),
            Slip39Error::TooFew { needed: 3, given: 2 }
        );
        let other = split(&secret, 3, 5, &mut OsRng).unwrap();
        assert!(matches!(combine(&[&shares[0], &shares[1], &other[2]]), Err(Slip39Error::Mismatch(_))));
    }

    #[test]
    fn a_mistyped_word_fails_the_checksum() {
        let shares = split(&[9u8; 32], 2, 3, &mut OsRng).unwrap();
        let mut words: Vec<&str> = shares[0].split_whitespace().collect();
        let replacement = if words[10] == "academic" { "acid" } else { "academic" };
        words[10] = replacement;
        assert_eq!(Share::parse(&words.join(" ")).unwrap_err(), Slip39Error::Checksum);
        assert!(matches!(Share::parse("not slip39 words"), Err(Slip39Error::UnknownWord(_))));
    }
}
