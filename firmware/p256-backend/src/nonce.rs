//! RFC 6979 § 3.2 nonce generation (HMAC-SHA-256 DRBG) for the assembly backend, with optional
//! additional data (§ 3.6) for hedged signing. It yields exactly the sequence of candidates that
//! `rfc6979::HmacDrbg` (and so `ecdsa` 0.16's signer) yields for the same inputs, with less work:
//! the HMAC key's inner and outer pad states are computed once per key instead of once per MAC,
//! and the state update that follows a candidate is done only if another candidate is asked for
//! (almost never: a candidate is rejected with probability about 2^-32). About 20 SHA-256
//! compressions per signature instead of about 32.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

type HmacSha256 = Hmac<Sha256>;

/// The DRBG state: `K` (as a keyed HMAC) and `V`.
pub struct NonceDrbg {
    k: HmacSha256,
    v: [u8; 32],
    /// A candidate was produced and the § 3.2 h.3 update has not been applied yet.
    update_pending: bool,
}

fn keyed(key: &[u8; 32]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail; the zero key is only a fallback to
    // keep the function total.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| HmacSha256::new(&Default::default()))
}

impl NonceDrbg {
    /// § 3.2 steps b–g with `x` the secret scalar, `h` the digest as used by `ecdsa` 0.16 (the
    /// 32-byte digest as given) and `added` the additional data (§ 3.6; may be empty).
    pub fn new(x: &[u8; 32], h: &[u8; 32], added: &[u8]) -> Self {
        let mut v = [0x01u8; 32];
        let mut k = keyed(&[0u8; 32]);
        for round in [0x00u8, 0x01] {
            let mut mac = k.clone();
            mac.update(&v);
            mac.update(&[round]);
            mac.update(x);
            mac.update(h);
            mac.update(added);
            let mut new_key: [u8; 32] = mac.finalize().into_bytes().into();
            k = keyed(&new_key);
            new_key.zeroize();
            v = Self::mac(&k, &v);
        }
        NonceDrbg { k, v, update_pending: false }
    }

    fn mac(k: &HmacSha256, data: &[u8; 32]) -> [u8; 32] {
        let mut mac = k.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// The next 256-bit candidate for `k` (§ 3.2 h.2), big-endian. The caller checks its range.
    pub fn next_candidate(&mut self, out: &mut [u8; 32]) {
        if self.update_pending {
            // § 3.2 h.3: K = HMAC_K(V || 0x00); V = HMAC_K(V).
            let mut mac = self.k.clone();
            mac.update(&self.v);
            mac.update(&[0x00]);
            let mut new_key: [u8; 32] = mac.finalize().into_bytes().into();
            self.k = keyed(&new_key);
            new_key.zeroize();
            self.v = Self::mac(&self.k, &self.v);
        }
        self.v = Self::mac(&self.k, &self.v);
        out.copy_from_slice(&self.v);
        self.update_pending = true;
    }
}

impl Drop for NonceDrbg {
    fn drop(&mut self) {
        self.v.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rfc6979::HmacDrbg;

    #[test]
    fn same_candidates_as_the_rfc6979_crate() {
        for (x, h, added) in [
            ([1u8; 32], [2u8; 32], &[][..]),
            ([0xc9u8; 32], [0x5au8; 32], &[7u8; 32][..]),
            ([0xffu8; 32], [0u8; 32], &[3u8; 5][..]),
        ] {
            let mut ours = NonceDrbg::new(&x, &h, added);
            let mut theirs = HmacDrbg::<Sha256>::new(&x, &h, added);
            for _ in 0..4 {
                let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
                ours.next_candidate(&mut a);
                theirs.fill_bytes(&mut b);
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn inputs_change_the_candidate() {
        let mut first = [0u8; 32];
        NonceDrbg::new(&[1u8; 32], &[2u8; 32], &[]).next_candidate(&mut first);
        for (x, h, added) in [
            ([9u8; 32], [2u8; 32], &[][..]),
            ([1u8; 32], [3u8; 32], &[][..]),
            ([1u8; 32], [2u8; 32], &[0u8][..]),
        ] {
            let mut other = [0u8; 32];
            NonceDrbg::new(&x, &h, added).next_candidate(&mut other);
            assert_ne!(first, other);
        }
    }
}
