//! The body: fixed-size segments, each sealed with AES-256-GCM under a nonce made of the file's
//! nonce prefix, the segment index and a last-segment flag (the STREAM construction of Hoang,
//! Reyhanitabar, Rogaway and Vizár). Reordering, duplicating or dropping segments changes the
//! nonce a segment is opened with, so its tag fails; cutting the file after a full segment
//! leaves no segment sealed as "last", which the reader reports as truncation.
//!
//! Segments are independent, so batches of them are sealed or opened on several threads
//! ([`super::pipeline`]).

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

use super::format::{FileKeys, NONCE_PREFIX_LEN, SEGMENT_TAG_LEN};

/// Seals and opens the segments of one file. Holds the expanded AES key (zeroized on drop).
pub struct SegmentCipher {
    aead: Aes256Gcm,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

/// A segment whose tag did not verify (modified, moved, duplicated, or wrongly flagged last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentAuthFailed;

impl SegmentCipher {
    /// A cipher for the file whose keys are `keys`.
    pub fn new(keys: &FileKeys) -> SegmentCipher {
        SegmentCipher { aead: Aes256Gcm::new((&*keys.segment_key).into()), nonce_prefix: keys.nonce_prefix }
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
    /// `buf` must be at least `len + 16` bytes long.
    pub fn seal(&self, index: u32, last: bool, buf: &mut [u8], len: usize) -> Result<(), SegmentAuthFailed> {
        let nonce = self.nonce(index, last);
        let (data, rest) = buf.split_at_mut(len);
        let tag_out = rest.get_mut(..SEGMENT_TAG_LEN).ok_or(SegmentAuthFailed)?;
        let tag = self
            .aead
            .encrypt_in_place_detached(&Nonce::from(nonce), b"", data)
            .map_err(|_| SegmentAuthFailed)?;
        tag_out.copy_from_slice(&tag);
        Ok(())
    }

    /// Opens a sealed segment held in `buf` (ciphertext ‖ tag) in place. On success the
    /// plaintext is `buf[..returned length]`; on failure `buf` holds no usable plaintext
    /// (aes-gcm checks the tag before decrypting).
    pub fn open(&self, index: u32, last: bool, buf: &mut [u8]) -> Result<usize, SegmentAuthFailed> {
        let len = buf.len().checked_sub(SEGMENT_TAG_LEN).ok_or(SegmentAuthFailed)?;
        let nonce = self.nonce(index, last);
        let (data, tag) = buf.split_at_mut(len);
        let tag: [u8; SEGMENT_TAG_LEN] = (&*tag).try_into().map_err(|_| SegmentAuthFailed)?;
        self.aead
            .decrypt_in_place_detached(&Nonce::from(nonce), b"", data, &Tag::from(tag))
            .map_err(|_| SegmentAuthFailed)?;
        Ok(len)
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
    }
}
