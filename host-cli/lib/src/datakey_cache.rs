//! Data-key caching, off by default, modelled on the AWS Encryption SDK's caching CMM.
//!
//! Encrypting many small files costs one GenerateDataKey (a token round trip) per file. With a
//! cache, a data key is reused for further files under the same KMS key and encryption context
//! until one of the limits is reached:
//!
//! * `max_age` — an entry older than this is never used again (required to enable caching);
//! * `max_messages` — at most this many files are encrypted under one data key;
//! * `max_bytes` — at most this many plaintext bytes are encrypted under one data key.
//!
//! As in the SDK, a file whose size is not known in advance (stdin) bypasses the cache, and a
//! file larger than `max_bytes` gets a fresh data key that is not cached. Every file still gets
//! its own HKDF salt, so per-file segment keys differ even when the data key is shared.
//! Decryption caches unwrapped data keys by (wrapped key, context, key id) for `max_age`, so
//! decrypting files that share a data key costs one token Decrypt.
//!
//! The cache lives in this process only; entries are zeroized when evicted or dropped.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::envelope::format::{canonical_context, HeaderError};
use crate::envelope::key_service::{ContextPairs, DataKey, KeyService, KeyServiceError};

/// Why no data key could be had.
#[derive(Debug, thiserror::Error)]
pub enum DataKeyError {
    /// The key service failed (GenerateDataKey or Decrypt).
    #[error(transparent)]
    Service(#[from] KeyServiceError),
    /// The encryption context cannot be encoded (see [`canonical_context`]).
    #[error(transparent)]
    Context(#[from] HeaderError),
    /// The unwrapped data key is not 32 bytes long.
    #[error("the unwrapped data key is {0} bytes, expected 32")]
    UnwrappedKeyLength(usize),
}

impl DataKeyError {
    /// The client's error (the token's refusal or the link failure), if that is what failed.
    pub fn client_error(&self) -> Option<&crate::error::Error> {
        match self {
            DataKeyError::Service(e) => e.client_error(),
            DataKeyError::Context(_) | DataKeyError::UnwrappedKeyLength(_) => None,
        }
    }
}

/// When a cached data key may be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Entries older than this are not used.
    pub max_age: Duration,
    /// Files per data key (≥ 1).
    pub max_messages: u64,
    /// Plaintext bytes per data key.
    pub max_bytes: u64,
}

impl CacheLimits {
    /// The SDK's defaults for the limits it does not require: 2^32 messages, 2^63-1 bytes.
    pub fn with_max_age(max_age: Duration) -> CacheLimits {
        CacheLimits { max_age, max_messages: 1 << 32, max_bytes: i64::MAX as u64 }
    }
}

/// Counters of what the cache did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// GenerateDataKey calls made.
    pub generated: u64,
    /// Token Decrypt calls made.
    pub unwrapped: u64,
    /// Encryptions served from the cache.
    pub encrypt_hits: u64,
    /// Decryptions served from the cache.
    pub decrypt_hits: u64,
}

struct EncryptEntry {
    key: DataKey,
    created: Instant,
    messages: u64,
    bytes: u64,
}

/// Encryption entries are keyed by (key id as given, canonical context).
type EncryptSlot = (String, Vec<u8>);
/// Decryption entries are keyed by (wrapped key, canonical context, required key id).
type DecryptSlot = (Vec<u8>, Vec<u8>, Option<String>);

struct DecryptEntry {
    key: Zeroizing<[u8; 32]>,
    created: Instant,
}

/// Where data keys come from: the token, through the cache if one is enabled.
pub struct DataKeyCache {
    limits: Option<CacheLimits>,
    encrypt: HashMap<EncryptSlot, EncryptEntry>,
    decrypt: HashMap<DecryptSlot, DecryptEntry>,
    stats: CacheStats,
}

impl Default for DataKeyCache {
    fn default() -> Self {
        DataKeyCache::disabled()
    }
}

impl DataKeyCache {
    /// No caching: every file gets its own GenerateDataKey / Decrypt.
    pub fn disabled() -> DataKeyCache {
        DataKeyCache {
            limits: None,
            encrypt: HashMap::new(),
            decrypt: HashMap::new(),
            stats: CacheStats::default(),
        }
    }

    /// Caching with these limits. `max_messages` of 0 is treated as 1 (no reuse).
    pub fn new(limits: CacheLimits) -> DataKeyCache {
        let limits = CacheLimits { max_messages: limits.max_messages.max(1), ..limits };
        DataKeyCache { limits: Some(limits), ..DataKeyCache::disabled() }
    }

    /// The limits, if caching is on.
    pub fn limits(&self) -> Option<CacheLimits> {
        self.limits
    }

    /// What the cache did so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// A data key to encrypt `plaintext_len` bytes (None: unknown) under `key_id` with
    /// `context`. Returns the key and whether it came from the cache.
    pub fn encryption_key(
        &mut self,
        service: &mut dyn KeyService,
        key_id: &str,
        context: &ContextPairs,
        plaintext_len: Option<u64>,
    ) -> Result<(DataKey, bool), DataKeyError> {
        let (limits, len) = match (self.limits, plaintext_len) {
            (Some(l), Some(len)) => (l, len),
            _ => {
                self.stats.generated += 1;
                return Ok((service.generate_data_key(key_id, context)?, false));
            }
        };
        let slot = (key_id.to_owned(), canonical_context(context)?);
        if let Some(e) = self.encrypt.get_mut(&slot) {
            let fresh = e.created.elapsed() < limits.max_age;
            let fits = e.messages < limits.max_messages
                && e.bytes.checked_add(len).is_some_and(|b| b <= limits.max_bytes);
            if fresh && fits {
                e.messages += 1;
                e.bytes += len;
                self.stats.encrypt_hits += 1;
                return Ok((e.key.clone(), true));
            }
            // Used up or expired: evict (zeroizes the key).
            self.encrypt.remove(&slot);
        }
        let key = service.generate_data_key(key_id, context)?;
        self.stats.generated += 1;
        if len <= limits.max_bytes && !limits.max_age.is_zero() {
            self.encrypt.insert(
                slot,
                EncryptEntry { key: key.clone(), created: Instant::now(), messages: 1, bytes: len },
            );
        }
        Ok((key, false))
    }

    /// The plaintext of a wrapped data key (exactly 32 bytes, else an error). Returns the key
    /// and whether it came from the cache.
    pub fn decryption_key(
        &mut self,
        service: &mut dyn KeyService,
        wrapped: &[u8],
        context: &ContextPairs,
        key_id: Option<&str>,
    ) -> Result<(Zeroizing<[u8; 32]>, bool), DataKeyError> {
        let slot = match self.limits {
            Some(_) => Some((wrapped.to_vec(), canonical_context(context)?, key_id.map(str::to_owned))),
            None => None,
        };
        if let (Some(limits), Some(slot)) = (self.limits, slot.as_ref()) {
            if let Some(e) = self.decrypt.get(slot) {
                if e.created.elapsed() < limits.max_age {
                    self.stats.decrypt_hits += 1;
                    return Ok((e.key.clone(), true));
                }
                self.decrypt.remove(slot);
            }
        }
        let plain = service.decrypt(wrapped, context, key_id)?;
        self.stats.unwrapped += 1;
        let mut key = Zeroizing::new([0u8; 32]);
        if plain.len() != key.len() {
            return Err(DataKeyError::UnwrappedKeyLength(plain.len()));
        }
        key.copy_from_slice(&plain);
        if let Some(slot) = slot {
            self.decrypt.insert(slot, DecryptEntry { key: key.clone(), created: Instant::now() });
        }
        Ok((key, false))
    }
}
