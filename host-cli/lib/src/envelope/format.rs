//! The encrypted file header and the per-file key schedule (see `docs/file-format.md`).
//!
//! ```text
//! offset    size  field
//!  0          4   magic "PKMF"
//!  4          1   format version (1)
//!  5          1   suite (1 = HKDF-SHA256, AES-256-GCM STREAM segments, HMAC-SHA256 header tag)
//!  6          4   segment size S (u32 big-endian): plaintext bytes of every segment but the last
//! 10         32   salt (random, per file)
//! 42         16   key id of the KMS key that wraps the data key
//! 58          2   n = wrapped data key length (u16 big-endian, 1..=6144)
//! 60          n   wrapped data key (a token ciphertext blob)
//! 60+n        2   m = canonical encryption context length (u16 big-endian, 2..=2048)
//! 62+n        m   encryption context, canonical encoding (pkms_protocol::context)
//! 62+n+m     32   header tag = HMAC-SHA256(K_header, bytes 0 .. 62+n+m)
//! ```
//!
//! Keys: `PRK = HKDF-Extract(salt, data_key)`; `K_header = HKDF-Expand(PRK, "pkms-file/v1 header", 64)`;
//! `K_segment = HKDF-Expand(PRK, "pkms-file/v1 segment", 32)`;
//! `nonce_prefix = HKDF-Expand(PRK, "pkms-file/v1 nonce", 7)`.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use pkms_protocol::context::encode_canonical;
use pkms_protocol::limits::{MAX_CIPHERTEXT_BLOB, MAX_CONTEXT_BYTES, MAX_CONTEXT_PAIRS};
use pkms_protocol::KeyId;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::key_service::ContextPairs;

/// File magic.
pub const MAGIC: [u8; 4] = *b"PKMF";
/// Format version written and accepted.
pub const FORMAT_VERSION: u8 = 1;
/// The one suite of version 1.
pub const SUITE_HKDF_AES256GCM_STREAM: u8 = 1;
/// Length of the fixed part of the header (up to the wrapped key length).
pub const FIXED_LEN: usize = 60;
/// Salt length.
pub const SALT_LEN: usize = 32;
/// Header tag length.
pub const HEADER_TAG_LEN: usize = 32;
/// Length of the nonce prefix; nonce = prefix(7) ‖ u32be index ‖ last flag (1).
pub const NONCE_PREFIX_LEN: usize = 7;
/// AES-GCM tag length, appended to each segment.
pub const SEGMENT_TAG_LEN: usize = 16;
/// Default segment size (64 KiB; larger sizes measured no faster with `ring`, see docs/file-format.md).
pub const DEFAULT_SEGMENT_SIZE: u32 = 64 * 1024;
/// Smallest segment size a reader accepts.
pub const MIN_SEGMENT_SIZE: u32 = 16;
/// Largest segment size a reader accepts (bounds the memory a hostile header can demand).
pub const MAX_SEGMENT_SIZE: u32 = 8 * 1024 * 1024;

const INFO_HEADER: &[u8] = b"pkms-file/v1 header";
const INFO_SEGMENT: &[u8] = b"pkms-file/v1 segment";
const INFO_NONCE: &[u8] = b"pkms-file/v1 nonce";

/// Why a header is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The input ends inside the header.
    #[error("the file ends inside the header (truncated or not a pkms file)")]
    Truncated,
    /// The magic is not "PKMF".
    #[error("not a pkms encrypted file (bad magic)")]
    BadMagic,
    /// Unknown version or suite.
    #[error("unsupported format version {version} / suite {suite}")]
    Unsupported {
        /// Format version byte.
        version: u8,
        /// Suite byte.
        suite: u8,
    },
    /// A length or value is out of range, or the context encoding is not canonical.
    #[error("malformed header: {0}")]
    Malformed(&'static str),
}

/// The parsed (not yet authenticated) fields of a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Plaintext bytes per full segment.
    pub segment_size: u32,
    /// Per-file random salt.
    pub salt: [u8; SALT_LEN],
    /// The wrapping key.
    pub key_id: KeyId,
    /// Wrapped data key (token ciphertext blob).
    pub wrapped_key: Vec<u8>,
    /// The encryption context pairs, sorted by key.
    pub context: Vec<(String, String)>,
}

/// Canonical encoding of `pairs` (sorted, unique, non-empty keys).
pub fn canonical_context(pairs: &ContextPairs) -> Result<Vec<u8>, HeaderError> {
    if pairs.len() > MAX_CONTEXT_PAIRS {
        return Err(HeaderError::Malformed("too many encryption context pairs"));
    }
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut buf = vec![0u8; MAX_CONTEXT_BYTES];
    let n = encode_canonical(&refs, &mut buf).map_err(|e| match e {
        pkms_protocol::context::ContextError::DuplicateKey => {
            HeaderError::Malformed("duplicate encryption context key")
        }
        pkms_protocol::context::ContextError::EmptyKey => {
            HeaderError::Malformed("empty encryption context key")
        }
        pkms_protocol::context::ContextError::TooLarge => {
            HeaderError::Malformed("encryption context too large")
        }
    })?;
    buf.truncate(n);
    Ok(buf)
}

/// Decodes a canonical context encoding; refuses anything that is not exactly canonical.
pub fn decode_context(bytes: &[u8]) -> Result<Vec<(String, String)>, HeaderError> {
    const BAD: HeaderError = HeaderError::Malformed("encryption context is not canonically encoded");
    let mut pos = 0usize;
    let take = |pos: &mut usize, n: usize| -> Result<&[u8], HeaderError> {
        let end = pos.checked_add(n).ok_or(BAD)?;
        let s = bytes.get(*pos..end).ok_or(BAD)?;
        *pos = end;
        Ok(s)
    };
    let u16_at = |pos: &mut usize| -> Result<usize, HeaderError> {
        let b = take(pos, 2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    };
    let count = u16_at(&mut pos)?;
    if count > MAX_CONTEXT_PAIRS {
        return Err(BAD);
    }
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let kl = u16_at(&mut pos)?;
        let k = std::str::from_utf8(take(&mut pos, kl)?).map_err(|_| BAD)?.to_owned();
        let vl = u16_at(&mut pos)?;
        let v = std::str::from_utf8(take(&mut pos, vl)?).map_err(|_| BAD)?.to_owned();
        pairs.push((k, v));
    }
    if pos != bytes.len() {
        return Err(BAD);
    }
    // Canonical means: re-encoding gives the same bytes (sorted, unique, non-empty keys).
    if canonical_context(&pairs).map_err(|_| BAD)? != bytes {
        return Err(BAD);
    }
    Ok(pairs)
}

impl Header {
    /// Serialises the header without its tag (the bytes the tag authenticates).
    pub fn encode_unsigned(&self) -> Result<Vec<u8>, HeaderError> {
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&self.segment_size) {
            return Err(HeaderError::Malformed("segment size out of range"));
        }
        if self.wrapped_key.is_empty() || self.wrapped_key.len() > MAX_CIPHERTEXT_BLOB {
            return Err(HeaderError::Malformed("wrapped data key length out of range"));
        }
        let ctx = canonical_context(&self.context)?;
        let mut out = Vec::with_capacity(FIXED_LEN + self.wrapped_key.len() + 2 + ctx.len() + HEADER_TAG_LEN);
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        out.push(SUITE_HKDF_AES256GCM_STREAM);
        out.extend_from_slice(&self.segment_size.to_be_bytes());
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.key_id.0);
        out.extend_from_slice(&(self.wrapped_key.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.wrapped_key);
        out.extend_from_slice(&(ctx.len() as u16).to_be_bytes());
        out.extend_from_slice(&ctx);
        Ok(out)
    }

    /// Reads a header from `input`: returns the fields, the authenticated bytes and the tag.
    /// Reads exactly the header's bytes and never allocates more than the format's limits.
    pub fn read_from<R: std::io::Read + ?Sized>(
        input: &mut R,
    ) -> Result<(Header, Vec<u8>, [u8; HEADER_TAG_LEN]), ReadHeaderError> {
        let mut raw = vec![0u8; FIXED_LEN];
        read_exact_or(input, &mut raw)?;
        if raw[0..4] != MAGIC {
            return Err(HeaderError::BadMagic.into());
        }
        if raw[4] != FORMAT_VERSION || raw[5] != SUITE_HKDF_AES256GCM_STREAM {
            return Err(HeaderError::Unsupported { version: raw[4], suite: raw[5] }.into());
        }
        let segment_size = u32::from_be_bytes([raw[6], raw[7], raw[8], raw[9]]);
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
            return Err(HeaderError::Malformed("segment size out of range").into());
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&raw[10..42]);
        let mut key_id = [0u8; 16];
        key_id.copy_from_slice(&raw[42..58]);
        let n = u16::from_be_bytes([raw[58], raw[59]]) as usize;
        if n == 0 || n > MAX_CIPHERTEXT_BLOB {
            return Err(HeaderError::Malformed("wrapped data key length out of range").into());
        }
        let start = raw.len();
        raw.resize(start + n + 2, 0);
        read_exact_or(input, &mut raw[start..])?;
        let wrapped_key = raw[start..start + n].to_vec();
        let m = u16::from_be_bytes([raw[start + n], raw[start + n + 1]]) as usize;
        if !(2..=MAX_CONTEXT_BYTES).contains(&m) {
            return Err(HeaderError::Malformed("encryption context length out of range").into());
        }
        let start = raw.len();
        raw.resize(start + m, 0);
        read_exact_or(input, &mut raw[start..])?;
        let context = decode_context(&raw[start..])?;
        let mut tag = [0u8; HEADER_TAG_LEN];
        read_exact_or(input, &mut tag)?;
        Ok((Header { segment_size, salt, key_id: KeyId(key_id), wrapped_key, context }, raw, tag))
    }
}

/// A header could not be read: I/O failed or the header is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ReadHeaderError {
    /// The header is malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// Reading failed.
    #[error("reading the header failed: {0}")]
    Io(#[from] std::io::Error),
}

fn read_exact_or<R: std::io::Read + ?Sized>(input: &mut R, buf: &mut [u8]) -> Result<(), ReadHeaderError> {
    match input.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(HeaderError::Truncated.into()),
        Err(e) => Err(e.into()),
    }
}

/// The keys of one file, derived from the data key and the file's salt. Wiped on drop.
pub struct FileKeys {
    /// HMAC-SHA256 key for the header tag (one SHA-256 block).
    pub header_key: Zeroizing<[u8; 64]>,
    /// AES-256-GCM key for the segments.
    pub segment_key: Zeroizing<[u8; 32]>,
    /// Nonce prefix of the segments.
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

impl FileKeys {
    /// Derives the file keys: HKDF-SHA256 with `salt`, input key material `data_key`.
    pub fn derive(data_key: &[u8; 32], salt: &[u8; SALT_LEN]) -> FileKeys {
        let hk = Hkdf::<Sha256>::new(Some(salt), data_key);
        let mut header_key = Zeroizing::new([0u8; 64]);
        let mut segment_key = Zeroizing::new([0u8; 32]);
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        // Expanding at most 255 × 32 bytes cannot fail; these are 32 and 7.
        let ok = hk.expand(INFO_HEADER, &mut header_key[..]).is_ok()
            && hk.expand(INFO_SEGMENT, &mut segment_key[..]).is_ok()
            && hk.expand(INFO_NONCE, &mut nonce_prefix).is_ok();
        debug_assert!(ok);
        FileKeys { header_key, segment_key, nonce_prefix }
    }

    fn header_mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as hmac::digest::KeyInit>::new(&(*self.header_key).into())
    }

    /// The tag of the header bytes `unsigned`.
    pub fn header_tag(&self, unsigned: &[u8]) -> [u8; HEADER_TAG_LEN] {
        let mut mac = self.header_mac();
        mac.update(unsigned);
        mac.finalize().into_bytes().into()
    }

    /// Checks a header tag in constant time.
    pub fn verify_header_tag(&self, unsigned: &[u8], tag: &[u8; HEADER_TAG_LEN]) -> bool {
        let mut mac = self.header_mac();
        mac.update(unsigned);
        mac.verify_slice(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            segment_size: DEFAULT_SEGMENT_SIZE,
            salt: [5; 32],
            key_id: KeyId([1; 16]),
            wrapped_key: vec![9; 80],
            context: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
        }
    }

    #[test]
    fn header_round_trips_with_sorted_context() {
        let h = sample();
        let mut bytes = h.encode_unsigned().unwrap();
        bytes.extend_from_slice(&[7u8; 32]);
        let (parsed, unsigned, tag) = Header::read_from(&mut &bytes[..]).unwrap();
        assert_eq!(unsigned, h.encode_unsigned().unwrap());
        assert_eq!(tag, [7u8; 32]);
        assert_eq!(
            parsed.context,
            vec![("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())]
        );
        assert_eq!(parsed.wrapped_key, h.wrapped_key);
        assert_eq!(parsed.segment_size, h.segment_size);
    }

    #[test]
    fn bad_headers_are_refused() {
        let mut bytes = sample().encode_unsigned().unwrap();
        bytes.extend_from_slice(&[0u8; 32]);
        for cut in [0, 3, 59, 70, bytes.len() - 1] {
            assert!(matches!(
                Header::read_from(&mut &bytes[..cut]),
                Err(ReadHeaderError::Header(HeaderError::Truncated))
            ));
        }
        let mut b = bytes.clone();
        b[0] ^= 1;
        assert!(matches!(
            Header::read_from(&mut &b[..]),
            Err(ReadHeaderError::Header(HeaderError::BadMagic))
        ));
        let mut b = bytes.clone();
        b[4] = 2;
        assert!(matches!(
            Header::read_from(&mut &b[..]),
            Err(ReadHeaderError::Header(HeaderError::Unsupported { version: 2, .. }))
        ));
        let mut b = bytes.clone();
        b[6..10].copy_from_slice(&(MAX_SEGMENT_SIZE + 1).to_be_bytes());
        assert!(matches!(
            Header::read_from(&mut &b[..]),
            Err(ReadHeaderError::Header(HeaderError::Malformed(_)))
        ));
    }

    #[test]
    fn non_canonical_context_is_refused() {
        // Two pairs out of order: a valid encoding but not the canonical one.
        let bytes = [0, 2, 0, 1, b'b', 0, 0, 0, 1, b'a', 0, 0];
        assert!(decode_context(&bytes).is_err());
        let ok = [0, 2, 0, 1, b'a', 0, 0, 0, 1, b'b', 0, 0];
        assert_eq!(decode_context(&ok).unwrap().len(), 2);
        assert!(decode_context(&ok[..11]).is_err());
        assert_eq!(decode_context(&[0, 0]).unwrap(), vec![]);
    }

    #[test]
    fn keys_depend_on_salt_and_data_key() {
        let a = FileKeys::derive(&[1; 32], &[2; 32]);
        let b = FileKeys::derive(&[1; 32], &[3; 32]);
        let c = FileKeys::derive(&[4; 32], &[2; 32]);
        assert_ne!(*a.segment_key, *b.segment_key);
        assert_ne!(*a.segment_key, *c.segment_key);
        assert_ne!(a.segment_key[..], a.header_key[..32]);
        let tag = a.header_tag(b"hello");
        assert!(a.verify_header_tag(b"hello", &tag));
        assert!(!a.verify_header_tag(b"hellp", &tag));
        assert!(!b.verify_header_tag(b"hello", &tag));
    }
}
