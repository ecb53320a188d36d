//! The body: fixed-size segments, each sealed with AES-256-GCM under a nonce made of the file's
//! nonce prefix, the segment index and a last-segment flag (the STREAM construction of Hoang,
//! Reyhanitabar, Rogaway and Vizár). Reordering, duplicating or dropping segments changes the
//! nonce a segment is opened with, so its tag fails; cutting the file after a full segment
//! leaves no segment sealed as "last", which the reader reports as truncation.
//!
//! Segments are independent, so batches of them are sealed or opened on several threads
//! ([`super::pipeline`]).

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};

use super::format::{FileKeys, NONCE_PREFIX_LEN, SEGMENT_TAG_LEN};

/// Seals and opens the segments of one file with `ring`'s AES-256-GCM (BoringSSL's assembly:
/// AES-NI or VAES with aggregated CLMUL GHASH on x86_64, chosen at run time).
///
/// Key hygiene: `ring` does not zeroize its keys on drop, so the expanded key (AES round keys
/// and GHASH table) lives in one heap allocation that this type overwrites in place, when it is
/// dropped, with the expansion of an all-zero key. Copies `ring` made on the stack while
/// expanding the key are outside its reach (as they are for any by-value key type).
pub struct SegmentCipher {
    /// `None` only if `ring` refused the key, which it does only for a key of the wrong length
    /// (never for a 32-byte one); every seal and open then fails.
    key: Option<Box<LessSafeKey>>,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

/// A segment whose tag did not verify (modified, moved, duplicated, or wrongly flagged last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentAuthFailed;

/// An AES-256-GCM key for `bytes`.
fn aes_key(bytes: &[u8; 32]) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, bytes).ok().map(LessSafeKey::new)
}

impl SegmentCipher {
    /// A cipher for the file whose keys are `keys`.
    pub fn new(keys: &FileKeys) -> SegmentCipher {
        SegmentCipher { key: aes_key(&keys.segment_key).map(Box::new), nonce_prefix: keys.nonce_prefix }
    }

    /// nonce = prefix (7) ‖ index (u32 big-endian) ‖ last (0x01 for the final segment, else 0x00).
    pub fn nonce(&self, index: u32, last: bool) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..NONCE_PREFIX_LEN].copy_from_slice(&self.nonce_prefix);
        n[NONCE_PREFIX_LEN..11].copy_from_slice(&index.to_be_bytes());
        n[11] = u8::from(last);
        n
    }

    /// Encrypts `buf[..len]` in place and writes the tag into `buf[len..len + 16]`.
    /// Fails if `buf` is shorter than `len + 16` bytes.
    pub fn seal(&self, index: u32, last: bool, buf: &mut [u8], len: usize) -> Result<(), SegmentAuthFailed> {
        let key = self.key.as_deref().ok_or(SegmentAuthFailed)?;
        let end = len.checked_add(SEGMENT_TAG_LEN).ok_or(SegmentAuthFailed)?;
        let (data, tag_out) = buf.get_mut(..end).ok_or(SegmentAuthFailed)?.split_at_mut(len);
        let nonce = Nonce::assume_unique_for_key(self.nonce(index, last));
        let tag = key.seal_in_place_separate_tag(nonce, Aad::empty(), data).map_err(|_| SegmentAuthFailed)?;
        tag_out.copy_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens a sealed segment held in `buf` (ciphertext ‖ tag) in place. On success the
    /// plaintext is `buf[..returned length]`; on failure `buf` holds no plaintext (`ring`
    /// decrypts while it authenticates and overwrites the output with zeros when the tag fails).
    pub fn open(&self, index: u32, last: bool, buf: &mut [u8]) -> Result<usize, SegmentAuthFailed> {
        let key = self.key.as_deref().ok_or(SegmentAuthFailed)?;
        let len = buf.len().checked_sub(SEGMENT_TAG_LEN).ok_or(SegmentAuthFailed)?;
        let (data, tag) = buf.split_at_mut(len);
        let tag = Tag::try_from(&*tag).map_err(|_| SegmentAuthFailed)?;
        let nonce = Nonce::assume_unique_for_key(self.nonce(index, last));
        key.open_in_place_separate_tag(nonce, Aad::empty(), tag, data, 0..).map_err(|_| SegmentAuthFailed)?;
        Ok(len)
    }

    /// Overwrites the expanded key in place with that of the all-zero key (see the type's
    /// documentation); the cipher is useless afterwards.
    fn wipe(&mut self) {
        if let (Some(key), Some(zero)) = (self.key.as_deref_mut(), aes_key(&[0u8; 32])) {
            *key = zero;
            // Keep the store from being elided as dead before the allocation is freed.
            std::hint::black_box(&*key);
        }
    }
}

impl Drop for SegmentCipher {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// One segment's buffer in a batch: room for a full segment and its tag, and how many bytes
/// of it are in use.
pub struct Slot {
    /// Backing storage of `segment_size + 16` bytes.
    pub buf: Vec<u8>,
    /// Bytes in use (plaintext length before sealing; ciphertext + tag length before opening).
    pub len: usize,
}

#[cfg(test)]
#[path = "../../tests/support/pseudo_random.rs"]
mod pseudo_random;

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> SegmentCipher {
        SegmentCipher::new(&FileKeys::derive(&[3; 32], &[4; 32]))
    }

    #[test]
    fn seal_open_round_trip_and_position_binding() {
        let c = cipher();
        let mut buf = vec![0u8; 100 + 16];
        buf[..100].copy_from_slice(&[0x5a; 100]);
        c.seal(7, false, &mut buf, 100).unwrap();
        assert_ne!(&buf[..100], &[0x5a; 100][..]);
        let sealed = buf.clone();
        assert_eq!(c.open(7, false, &mut buf), Ok(100));
        assert_eq!(&buf[..100], &[0x5a; 100][..]);
        for (idx, last) in [(8, false), (6, false), (7, true)] {
            let mut b = sealed.clone();
            assert_eq!(c.open(idx, last, &mut b), Err(SegmentAuthFailed), "index {idx} last {last}");
        }
        let mut b = sealed.clone();
        b[50] ^= 0x80;
        assert_eq!(c.open(7, false, &mut b), Err(SegmentAuthFailed));
        assert_eq!(c.open(7, false, &mut [0u8; 15]), Err(SegmentAuthFailed));
        // A buffer without room for the tag is refused, not a panic.
        assert_eq!(c.seal(0, false, &mut [0u8; 20], 4), Ok(()));
        assert_eq!(c.seal(0, false, &mut [0u8; 20], 5), Err(SegmentAuthFailed));
        assert_eq!(c.seal(0, false, &mut [0u8; 20], usize::MAX), Err(SegmentAuthFailed));
    }

    #[test]
    fn wiping_replaces_the_key_in_place() {
        let mut c = cipher();
        let mut sealed = vec![0x11u8; 64 + 16];
        c.seal(0, true, &mut sealed, 64).unwrap();
        c.wipe();
        let mut b = sealed.clone();
        assert_eq!(c.open(0, true, &mut b), Err(SegmentAuthFailed));
        // ring zeroed what it decrypted before the tag failed.
        assert_eq!(b[..64], [0u8; 64]);
        // What is left behaves as the all-zero key with the file's nonce prefix.
        let zero = SegmentCipher { key: aes_key(&[0; 32]).map(Box::new), nonce_prefix: c.nonce_prefix };
        let (mut x, mut y) = (vec![0x22u8; 48], vec![0x22u8; 48]);
        c.seal(5, false, &mut x, 32).unwrap();
        zero.seal(5, false, &mut y, 32).unwrap();
        assert_eq!(x, y);
    }

    /// Known answer recorded with RustCrypto `aes-gcm` 0.10 (the backend that wrote the first
    /// files): a full 64 KiB segment and a 100-byte final one. Any backend must seal them to the
    /// same bytes, and open them.
    #[test]
    fn sealing_matches_the_bytes_recorded_with_aes_gcm_0_10() {
        use sha2::{Digest, Sha256};
        let c = cipher();
        let mut h = Sha256::new();
        let mut sealed = Vec::new();
        for (i, (len, last)) in [(65536usize, false), (100, true)].into_iter().enumerate() {
            let mut buf = pseudo_random::bytes(len + 16, 77 + i as u64);
            c.seal(i as u32, last, &mut buf, len).unwrap();
            h.update(&buf);
            sealed.push((buf, len, last));
        }
        let want = "e1458e8019fcb5cee4db7e0fe18dcf7603f726c53dd0bd4a068c253c8db31c5b";
        let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, want);
        for (i, (mut buf, len, last)) in sealed.into_iter().enumerate() {
            assert_eq!(c.open(i as u32, last, &mut buf), Ok(len));
            assert_eq!(buf[..len], pseudo_random::bytes(len + 16, 77 + i as u64)[..len]);
        }
    }
}
