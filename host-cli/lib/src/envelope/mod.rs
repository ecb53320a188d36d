//! Envelope encryption of files of any size (format: `docs/file-format.md`).
//!
//! One data key per file (or per cache entry, see [`crate::datakey_cache`]) comes from the
//! token's GenerateDataKey; the token keeps the KMS key, the host does the bulk AES-256-GCM.
//! The plaintext data key lives only in zeroizing memory and is never written anywhere.
//!
//! Guarantees of [`Envelope::decrypt`]: nothing reaches the output writer before the header tag
//! and the segment holding it have verified; every kind of tampering (a flipped bit, reordered,
//! duplicated or dropped segments, truncation) ends in an [`EnvelopeError`] naming what failed.
//! Memory does not grow with file size: one batch of segments is held at a time.

pub mod format;
pub mod key_service;
pub mod output;
pub mod pipeline;
pub mod positional;
pub mod segments;

use std::io::{self, Read, Write};

use crate::progress::{NoProgress, Progress};
use rand_core::{OsRng, RngCore};

use crate::datakey_cache::{DataKeyCache, DataKeyError};
use format::{FileKeys, Header, HeaderError, ReadHeaderError, SALT_LEN, SEGMENT_TAG_LEN};
pub use key_service::{
    ContextPairs, DataKey, DigestSignature, KeyService, KeyServiceError, KeyServiceResult, SigningService,
};
use segments::SegmentCipher;

/// Tuning of the bulk work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Plaintext bytes per segment when encrypting (decryption uses the file's own).
    pub segment_size: u32,
    /// Threads sealing/opening batches of segments besides the caller's thread. Streaming
    /// ([`Encryption::run`]), the caller does all the reading and writing; file to file
    /// ([`Encryption::run_file`]), these threads also read and the caller only writes.
    pub threads: usize,
    /// Segments held in memory at once (per batch).
    pub batch_segments: usize,
}

impl Default for Options {
    /// 64 KiB segments, 32 segments per batch, and one AES thread per core beyond the one
    /// doing I/O (at least 1, at most 4): on a 2-core machine one thread reads and writes while
    /// the other seals or opens.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Options {
            segment_size: format::DEFAULT_SEGMENT_SIZE,
            threads: cores.saturating_sub(1).clamp(1, 4),
            batch_segments: 32,
        }
    }
}

/// Most plaintext bytes in one batch of segments. A file's header may ask for segments of up to
/// 8 MiB; batches of them hold fewer segments, so memory stays near `threads + 2` × 2 MiB.
pub const MAX_BATCH_BYTES: usize = 2 << 20;

impl Options {
    /// Segments per batch for segments of `segment_size` plaintext bytes: `batch_segments`,
    /// reduced so that a batch holds at most [`MAX_BATCH_BYTES`] of plaintext, and at least one
    /// segment.
    pub fn batch_for(&self, segment_size: u32) -> usize {
        self.batch_segments.min(MAX_BATCH_BYTES / (segment_size as usize).max(1)).max(1)
    }

    /// How the file-to-file path splits a file of `segment_size` segments: `threads` readers
    /// (the caller writes), batches of [`Self::batch_for`] segments.
    fn split(&self, segment_size: u32) -> positional::Split {
        positional::Split {
            segment_size: segment_size as usize,
            workers: self.threads,
            batch: self.batch_for(segment_size),
        }
    }
}

/// What went wrong; the message says which part of the file failed.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The header is malformed or truncated.
    #[error("header: {0}")]
    Header(#[from] HeaderError),
    /// The header's key id differs from the key its wrapped data key names.
    #[error("header: the header names key {header} but its wrapped data key names key {blob}")]
    KeyIdMismatch {
        /// Key id in the header.
        header: String,
        /// Key id in the wrapped key blob.
        blob: String,
    },
    /// The wrapped data key is not a token ciphertext blob.
    #[error("header: the wrapped data key is not a valid ciphertext blob")]
    BadWrappedKey,
    /// The caller required a key and the file is under another.
    #[error("header: the file is encrypted under key {actual}, not {expected}")]
    WrongKey {
        /// Required key id.
        expected: String,
        /// Key id in the header.
        actual: String,
    },
    /// The caller required a context pair that the file's context lacks.
    #[error("header: the file's encryption context has no pair {key}={value}")]
    ContextMismatch {
        /// Required key.
        key: String,
        /// Required value.
        value: String,
    },
    /// The token would not unwrap the data key.
    #[error("header: the token could not decrypt the file's data key: {0}")]
    Unwrap(DataKeyError),
    /// The header tag failed: some header byte was changed.
    #[error("header: authentication failed (the header was modified)")]
    HeaderTag,
    /// GenerateDataKey failed.
    #[error("could not get a data key from the token: {0}")]
    DataKey(DataKeyError),
    /// A non-final segment failed authentication.
    #[error("segment {index}: authentication failed (the segment was modified, moved or duplicated)")]
    Segment {
        /// Zero-based segment index.
        index: u64,
    },
    /// The final segment failed authentication.
    #[error(
        "segment {index} (the final one, {len} bytes): authentication failed (the file was truncated \
         inside it, or it was modified)"
    )]
    FinalSegment {
        /// Zero-based segment index.
        index: u64,
        /// Its length on disk (ciphertext + tag).
        len: usize,
    },
    /// The file ends without a final segment.
    #[error("truncated: the file ends after {segments} complete segment(s) without its final segment")]
    Truncated {
        /// Complete segments read.
        segments: u64,
    },
    /// The input holds more than 2^32 segments.
    #[error("the input is too large for this segment size (more than 2^32 segments)")]
    TooLarge,
    /// Reading the input failed.
    #[error("reading the input failed: {0}")]
    Read(io::Error),
    /// Writing the output failed.
    #[error("writing the output failed: {0}")]
    Write(io::Error),
}

impl From<ReadHeaderError> for EnvelopeError {
    fn from(e: ReadHeaderError) -> Self {
        match e {
            ReadHeaderError::Header(h) => EnvelopeError::Header(h),
            ReadHeaderError::Io(io) => EnvelopeError::Read(io),
        }
    }
}

/// What an encryption did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptSummary {
    /// The KMS key that wraps the data key.
    pub key_id: String,
    /// Plaintext bytes encrypted.
    pub plaintext_bytes: u64,
    /// Segments written.
    pub segments: u64,
    /// Whether the data key came from the cache.
    pub cached_data_key: bool,
}

/// What a decryption did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptSummary {
    /// The KMS key that wrapped the data key.
    pub key_id: String,
    /// The file's encryption context.
    pub context: Vec<(String, String)>,
    /// Plaintext bytes written.
    pub plaintext_bytes: u64,
    /// Segments read.
    pub segments: u64,
    /// Whether the data key came from the cache.
    pub cached_data_key: bool,
}

/// What a decryption requires of the file, checked before the token is asked anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecryptPolicy {
    /// The file must be under this key (key id or alias; an alias is checked by the token).
    pub key_id: Option<String>,
    /// Each pair must be in the file's encryption context.
    pub required_context: Vec<(String, String)>,
}

/// Encrypts and decrypts streams with data keys from a [`KeyService`].
pub struct Envelope<'a> {
    service: &'a mut dyn KeyService,
    cache: &'a mut DataKeyCache,
    options: Options,
    progress: &'a dyn Progress,
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read + ?Sized>(input: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A file's header, read and parsed but not yet authenticated (that needs the data key).
/// Reading it needs no token, so a caller can read it before connecting.
#[derive(Debug, Clone)]
pub struct PendingHeader {
    header: Header,
    unsigned: Vec<u8>,
    tag: [u8; format::HEADER_TAG_LEN],
}

impl PendingHeader {
    /// Reads and parses a header; refuses malformed ones and a header whose key id is not the
    /// one its wrapped data key names.
    pub fn read<R: Read + ?Sized>(input: &mut R) -> Result<PendingHeader, EnvelopeError> {
        let (header, unsigned, tag) = Header::read_from(input)?;
        let blob = pkms_protocol::blob::parse(&header.wrapped_key).ok_or(EnvelopeError::BadWrappedKey)?;
        if blob.header.key_id != header.key_id {
            return Err(EnvelopeError::KeyIdMismatch {
                header: header.key_id.to_string(),
                blob: blob.header.key_id.to_string(),
            });
        }
        Ok(PendingHeader { header, unsigned, tag })
    }

    /// The key the file says wraps its data key (not yet authenticated).
    pub fn key_id(&self) -> pkms_protocol::KeyId {
        self.header.key_id
    }

    /// The file's encryption context (not yet authenticated).
    pub fn context(&self) -> &[(String, String)] {
        &self.header.context
    }
}

/// An encryption whose data key is in hand: runs without the token.
pub struct Encryption {
    head: Vec<u8>,
    cipher: SegmentCipher,
    options: Options,
    key_id: pkms_protocol::KeyId,
    cached: bool,
}

/// A decryption whose header verified: runs without the token.
pub struct Decryption {
    cipher: SegmentCipher,
    segment_size: u32,
    options: Options,
    key_id: pkms_protocol::KeyId,
    context: Vec<(String, String)>,
    cached: bool,
}

impl<'a> Envelope<'a> {
    /// An envelope over `service`, taking data keys through `cache`.
    pub fn new(
        service: &'a mut dyn KeyService,
        cache: &'a mut DataKeyCache,
        options: Options,
    ) -> Envelope<'a> {
        Envelope { service, cache, options, progress: &NoProgress }
    }

    /// Reports progress (in bytes of plaintext) of [`Envelope::encrypt`] and
    /// [`Envelope::decrypt`] to `progress` from now on (default: [`NoProgress`]).
    pub fn set_progress(&mut self, progress: &'a dyn Progress) {
        self.progress = progress;
    }

    /// Encrypts `input` to `output` under `key_id` with `context`: [`Envelope::start_encrypt`]
    /// then [`Encryption::run`].
    pub fn encrypt<R: Read + ?Sized, W: Write + ?Sized>(
        &mut self,
        key_id: &str,
        context: &ContextPairs,
        input: &mut R,
        size_hint: Option<u64>,
        output: &mut W,
    ) -> Result<EncryptSummary, EnvelopeError> {
        let progress = self.progress;
        self.start_encrypt(key_id, context, size_hint)?.run(input, output, progress)
    }

    /// Gets a data key (GenerateDataKey, or the cache) and prepares the header: the only step
    /// that needs the token. `size_hint` (the input's length, if known) only feeds the
    /// data-key cache's byte limit; the cache needs it exact to honour `max_bytes`.
    pub fn start_encrypt(
        &mut self,
        key_id: &str,
        context: &ContextPairs,
        size_hint: Option<u64>,
    ) -> Result<Encryption, EnvelopeError> {
        // Validate the context before spending a token call on it.
        format::canonical_context(context)?;
        let (data_key, cached) = self
            .cache
            .encryption_key(self.service, key_id, context, size_hint)
            .map_err(EnvelopeError::DataKey)?;
        let wrapping_key_id = pkms_protocol::blob::parse(&data_key.ciphertext_blob)
            .ok_or(EnvelopeError::BadWrappedKey)?
            .header
            .key_id;
        let mut salt = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        let header = Header {
            segment_size: self.options.segment_size,
            salt,
            key_id: wrapping_key_id,
            wrapped_key: data_key.ciphertext_blob.clone(),
            context: context.to_vec(),
        };
        let keys = FileKeys::derive(&data_key.plaintext, &salt);
        drop(data_key);
        let mut head = header.encode_unsigned()?;
        let tag = keys.header_tag(&head);
        head.extend_from_slice(&tag);
        Ok(Encryption {
            head,
            cipher: SegmentCipher::new(&keys),
            options: self.options,
            key_id: wrapping_key_id,
            cached,
        })
    }

    /// Decrypts `input` to `output`: [`PendingHeader::read`], [`Envelope::start_decrypt`], then
    /// [`Decryption::run`].
    pub fn decrypt<R: Read + ?Sized, W: Write + ?Sized>(
        &mut self,
        input: &mut R,
        output: &mut W,
        policy: &DecryptPolicy,
    ) -> Result<DecryptSummary, EnvelopeError> {
        let pending = PendingHeader::read(input)?;
        let progress = self.progress;
        self.start_decrypt(pending, policy)?.run(input, output, progress)
    }

    /// Checks `policy`, unwraps the data key (token Decrypt, or the cache) and verifies the
    /// header tag: the only step that needs the token.
    pub fn start_decrypt(
        &mut self,
        pending: PendingHeader,
        policy: &DecryptPolicy,
    ) -> Result<Decryption, EnvelopeError> {
        let PendingHeader { header, unsigned, tag } = pending;
        if let Some(want) = policy.key_id.as_deref() {
            if let Some(want_id) = pkms_protocol::KeyId::parse(want) {
                if want_id != header.key_id {
                    return Err(EnvelopeError::WrongKey {
                        expected: want.to_owned(),
                        actual: header.key_id.to_string(),
                    });
                }
            }
        }
        for (k, v) in &policy.required_context {
            if !header.context.iter().any(|(hk, hv)| hk == k && hv == v) {
                return Err(EnvelopeError::ContextMismatch { key: k.clone(), value: v.clone() });
            }
        }
        let (data_key, cached) = self
            .cache
            .decryption_key(self.service, &header.wrapped_key, &header.context, policy.key_id.as_deref())
            .map_err(EnvelopeError::Unwrap)?;
        let keys = FileKeys::derive(&data_key, &header.salt);
        drop(data_key);
        if !keys.verify_header_tag(&unsigned, &tag) {
            return Err(EnvelopeError::HeaderTag);
        }
        Ok(Decryption {
            cipher: SegmentCipher::new(&keys),
            segment_size: header.segment_size,
            options: self.options,
            key_id: header.key_id,
            context: header.context,
            cached,
        })
    }
}

impl Encryption {
    /// Writes the header and the sealed segments of `input` to `output`; `progress` advances
    /// by plaintext bytes.
    pub fn run<R: Read + ?Sized, W: Write + ?Sized>(
        self,
        input: &mut R,
        output: &mut W,
        progress: &dyn Progress,
    ) -> Result<EncryptSummary, EnvelopeError> {
        output.write_all(&self.head).map_err(EnvelopeError::Write)?;
        let seg = self.options.segment_size as usize;
        let cipher = &self.cipher;
        let mut total: u64 = 0;
        let mut segments: u64 = 0;
        pipeline::run(
            pipeline::Shape {
                batch_segments: self.options.batch_for(self.options.segment_size),
                slot_size: seg + SEGMENT_TAG_LEN,
                threads: self.options.threads,
            },
            |b| {
                let batch = b.slots.len();
                while b.count < batch && !b.last {
                    let slot = &mut b.slots[b.count];
                    let n = read_full(input, &mut slot.buf[..seg]).map_err(EnvelopeError::Read)?;
                    slot.len = n;
                    b.last = n < seg;
                    b.count += 1;
                }
                if b.base + b.count as u64 > u64::from(u32::MAX) + 1 {
                    return Err(EnvelopeError::TooLarge);
                }
                Ok(())
            },
            // base + i < 2^32 was checked when the batch was filled.
            &|i, s, base, final_slot| {
                cipher.seal((base + i as u64) as u32, i == final_slot, &mut s.buf, s.len).map(|()| s.len)
            },
            |b| {
                let mut bytes = 0u64;
                for (s, r) in b.slots[..b.count].iter().zip(&b.results) {
                    if r.is_err() {
                        return Err(EnvelopeError::Write(io::Error::other("sealing a segment failed")));
                    }
                    output.write_all(&s.buf[..s.len + SEGMENT_TAG_LEN]).map_err(EnvelopeError::Write)?;
                    bytes += s.len as u64;
                }
                total += bytes;
                segments += b.count as u64;
                progress.advance(bytes);
                Ok(())
            },
            || EnvelopeError::Write(io::Error::other("an encryption worker thread failed")),
        )?;
        output.flush().map_err(EnvelopeError::Write)?;
        Ok(EncryptSummary {
            key_id: self.key_id.to_string(),
            plaintext_bytes: total,
            segments,
            cached_data_key: self.cached,
        })
    }
}

impl Encryption {
    /// Encrypts the regular file `input` (its first `len` bytes: its length now) into the
    /// empty regular file `output` with positional I/O: `threads` threads read and seal
    /// batches, the caller writes each at its offset (see [`positional`]). Same format as
    /// [`Self::run`].
    pub fn run_file(
        self,
        input: &std::fs::File,
        len: u64,
        output: &std::fs::File,
        progress: &dyn Progress,
    ) -> Result<EncryptSummary, EnvelopeError> {
        let split = self.options.split(self.options.segment_size);
        let segments = positional::encrypt(&self.cipher, &self.head, input, len, output, split, progress)?;
        Ok(EncryptSummary {
            key_id: self.key_id.to_string(),
            plaintext_bytes: len,
            segments,
            cached_data_key: self.cached,
        })
    }
}

impl Decryption {
    /// Decrypts the body of the regular file `input`, which starts at `body_start` (just after
    /// the header [`PendingHeader::read`] consumed), into the empty regular file `output` with
    /// positional I/O: `threads` threads read and open batches, the caller writes them (see
    /// [`positional`]). Each segment is written only
    /// after it verified; on error the output holds some verified segments and must be
    /// discarded (see [`output::AtomicFile`]).
    pub fn run_file(
        self,
        input: &std::fs::File,
        body_start: u64,
        output: &std::fs::File,
        progress: &dyn Progress,
    ) -> Result<DecryptSummary, EnvelopeError> {
        let input_len = input.metadata().map_err(EnvelopeError::Read)?.len();
        let split = self.options.split(self.segment_size);
        let (plaintext_bytes, segments) =
            positional::decrypt(&self.cipher, input, body_start, input_len, output, split, progress)?;
        Ok(DecryptSummary {
            key_id: self.key_id.to_string(),
            context: self.context,
            plaintext_bytes,
            segments,
            cached_data_key: self.cached,
        })
    }
}

impl Decryption {
    /// Reads the segments that follow the header from `input` and writes each one's plaintext
    /// to `output` only after it verified. On error the output may hold verified segments that
    /// precede the failure; a caller that writes a file must discard it
    /// (see [`output::AtomicFile`]).
    pub fn run<R: Read + ?Sized, W: Write + ?Sized>(
        self,
        input: &mut R,
        output: &mut W,
        progress: &dyn Progress,
    ) -> Result<DecryptSummary, EnvelopeError> {
        let full = self.segment_size as usize + SEGMENT_TAG_LEN;
        let cipher = &self.cipher;
        let mut total: u64 = 0;
        let mut segments: u64 = 0;
        pipeline::run(
            pipeline::Shape {
                batch_segments: self.options.batch_for(self.segment_size),
                slot_size: full,
                threads: self.options.threads,
            },
            |b| {
                let batch = b.slots.len();
                while b.count < batch && !b.last {
                    let slot = &mut b.slots[b.count];
                    let n = read_full(input, &mut slot.buf[..]).map_err(EnvelopeError::Read)?;
                    slot.len = n;
                    b.last = n < full;
                    b.count += 1;
                }
                // A final fragment too short to hold a tag is not a segment: the file was cut.
                if b.last && b.slots[b.count - 1].len < SEGMENT_TAG_LEN {
                    b.truncated = true;
                    b.count -= 1;
                }
                if b.base + b.count as u64 > u64::from(u32::MAX) + 1 {
                    return Err(EnvelopeError::TooLarge);
                }
                Ok(())
            },
            &|i, s, base, final_slot| {
                cipher.open((base + i as u64) as u32, i == final_slot, &mut s.buf[..s.len])
            },
            |b| {
                let final_slot = if b.last && !b.truncated { b.count.checked_sub(1) } else { None };
                let mut bytes = 0u64;
                for (i, (s, r)) in b.slots[..b.count].iter().zip(&b.results).enumerate() {
                    match r {
                        Ok(n) => {
                            output.write_all(&s.buf[..*n]).map_err(EnvelopeError::Write)?;
                            bytes += *n as u64;
                        }
                        Err(_) if Some(i) == final_slot => {
                            return Err(EnvelopeError::FinalSegment { index: b.base + i as u64, len: s.len })
                        }
                        Err(_) => return Err(EnvelopeError::Segment { index: b.base + i as u64 }),
                    }
                }
                total += bytes;
                segments += b.count as u64;
                progress.advance(bytes);
                if b.truncated {
                    return Err(EnvelopeError::Truncated { segments });
                }
                Ok(())
            },
            || EnvelopeError::Read(io::Error::other("a decryption worker thread failed")),
        )?;
        output.flush().map_err(EnvelopeError::Write)?;
        Ok(DecryptSummary {
            key_id: self.key_id.to_string(),
            context: self.context,
            plaintext_bytes: total,
            segments,
            cached_data_key: self.cached,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_shrink_for_large_segments_only() {
        let o = Options { segment_size: format::DEFAULT_SEGMENT_SIZE, threads: 1, batch_segments: 32 };
        assert_eq!(o.batch_for(64 * 1024), 32, "the default batch is exactly 2 MiB");
        assert_eq!(o.batch_for(1024), 32);
        assert_eq!(o.batch_for(256 * 1024), 8);
        assert_eq!(o.batch_for(3 << 20), 1);
        assert_eq!(o.batch_for(format::MAX_SEGMENT_SIZE), 1);
        assert_eq!(Options { batch_segments: 0, ..o }.batch_for(16), 1);
    }
}
