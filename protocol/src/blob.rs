//! The ciphertext blob that Encrypt, GenerateDataKey and ReEncrypt return.
//!
//! ```text
//! offset size field
//!  0      2   magic "PK"
//!  2      1   format version (1)
//!  3     16   key id
//! 19      4   key version (u32 big-endian)
//! 23     12   AES-GCM nonce (random)
//! 35      n   AES-256-GCM ciphertext
//! 35+n   16   AES-GCM tag
//! ```
//!
//! Associated data = the 35-byte header followed by the canonical encryption context
//! ([`crate::context`]), so the key id, version, nonce and context are all authenticated; a
//! flipped bit anywhere or a different context fails as InvalidCiphertext.

use crate::types::{KeyId, KeyVersion};

/// Blob magic.
pub const MAGIC: [u8; 2] = *b"PK";
/// Blob format version.
pub const FORMAT_VERSION: u8 = 1;
/// Header length (authenticated as associated data).
pub const HEADER_LEN: usize = 35;
/// AES-GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// Bytes a blob adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// The parsed header of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobHeader {
    /// Key the blob was made under.
    pub key_id: KeyId,
    /// Key version the blob was made under.
    pub key_version: KeyVersion,
    /// AES-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
}

impl BlobHeader {
    /// Serialises the header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..2].copy_from_slice(&MAGIC);
        h[2] = FORMAT_VERSION;
        h[3..19].copy_from_slice(&self.key_id.0);
        h[19..23].copy_from_slice(&self.key_version.to_be_bytes());
        h[23..35].copy_from_slice(&self.nonce);
        h
    }
}

/// A blob split into its parts. Nothing here is authenticated yet: the token must verify the
/// tag (with the header and context as associated data) before trusting any of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedBlob<'a> {
    /// The header fields.
    pub header: BlobHeader,
    /// The raw header bytes (associated data, first part).
    pub header_bytes: &'a [u8],
    /// Ciphertext without tag.
    pub ciphertext: &'a [u8],
    /// The 16-byte tag.
    pub tag: &'a [u8],
}

/// Splits a blob. `None` when it is too short, too long, or has the wrong magic or version.
pub fn parse(blob: &[u8]) -> Option<ParsedBlob<'_>> {
    if blob.len() < OVERHEAD || blob.len() > crate::limits::MAX_CIPHERTEXT_BLOB {
        return None;
    }
    if blob[0..2] != MAGIC || blob[2] != FORMAT_VERSION {
        return None;
    }
    let mut key_id = [0u8; 16];
    key_id.copy_from_slice(&blob[3..19]);
    let key_version = u32::from_be_bytes([blob[19], blob[20], blob[21], blob[22]]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&blob[23..35]);
    let tag_start = blob.len() - TAG_LEN;
    Some(ParsedBlob {
        header: BlobHeader { key_id: KeyId(key_id), key_version, nonce },
        header_bytes: &blob[..HEADER_LEN],
        ciphertext: &blob[HEADER_LEN..tag_start],
        tag: &blob[tag_start..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = BlobHeader { key_id: KeyId([7; 16]), key_version: 0x0102_0304, nonce: [9; 12] };
        let mut blob = [0u8; HEADER_LEN + 5 + TAG_LEN];
        blob[..HEADER_LEN].copy_from_slice(&h.to_bytes());
        let p = parse(&blob).unwrap();
        assert_eq!(p.header, h);
        assert_eq!(p.ciphertext.len(), 5);
        assert_eq!(p.tag.len(), TAG_LEN);
    }

    #[test]
    fn short_or_foreign_blobs_are_refused() {
        assert!(parse(&[0u8; OVERHEAD - 1]).is_none());
        let mut blob = [0u8; OVERHEAD];
        assert!(parse(&blob).is_none(), "wrong magic");
        blob[..2].copy_from_slice(&MAGIC);
        blob[2] = FORMAT_VERSION + 1;
        assert!(parse(&blob).is_none(), "wrong version");
        blob[2] = FORMAT_VERSION;
        assert!(parse(&blob).is_some());
    }
}
