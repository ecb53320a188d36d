//! One module per operation family. An operation takes the token state
//! ([`Core`](crate::state::Core)), the response buffers ([`Buffers`]), the key the gate resolved
//! for it (`OpResult<KeyId>`: the error, if the reference did not resolve, is reported where the
//! operation looks the key up, after its own argument checks) and its request struct; it returns
//! a [`Response`](pkms_protocol::Response) borrowing from the buffers, or an error.

pub mod agreement;
pub mod aliases;
pub mod info;
pub mod keys;
pub mod lifecycle;
pub mod mac;
pub mod rotation;
pub mod signing;
pub mod symmetric;
pub mod tags;

use pkms_protocol::limits::{MAX_CIPHERTEXT_BLOB, MAX_MARKER, MAX_PAGE, MAX_PLAINTEXT};

use crate::crypto::blob::AAD_BUF;
use crate::err;
use crate::error::OpResult;
use crate::records::KeyRecord;

/// Response buffers, kept in the token (not on the stack) and wiped after every request.
pub struct Buffers {
    /// What the answer carries: blobs, plaintexts, signatures, public keys, names.
    pub out: [u8; MAX_CIPHERTEXT_BLOB],
    /// A second buffer: ReEncrypt's intermediate plaintext, data keys, a record being read.
    pub work: [u8; MAX_PLAINTEXT],
    /// The record of the key an operation works on ([`crate::state::Core::load`]).
    pub key: KeyRecord,
    /// Associated data (blob header and canonical context).
    pub aad: [u8; AAD_BUF],
    /// Pagination markers.
    pub marker: [u8; MAX_MARKER],
}

impl Buffers {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        Buffers {
            out: [0; MAX_CIPHERTEXT_BLOB],
            work: [0; MAX_PLAINTEXT],
            key: KeyRecord::empty(),
            aad: [0; AAD_BUF],
            marker: [0; MAX_MARKER],
        }
    }

    /// Clears buffers that may have held secrets.
    pub fn wipe(&mut self) {
        self.out.fill(0);
        self.work.fill(0);
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Self::new()
    }
}

/// KMS's `Limit`: 1..=1000 (ValidationException otherwise); pages are clamped to [`MAX_PAGE`].
pub fn page_limit(limit: Option<u16>, max_page: usize) -> OpResult<usize> {
    match limit {
        None => Ok(max_page.min(MAX_PAGE)),
        Some(l) if (1..=1000).contains(&l) => Ok((l as usize).min(max_page).min(MAX_PAGE)),
        Some(l) => Err(err!(Validation, "Limit must be 1..=1000, not {}", l)),
    }
}

/// A day count in `min..=max`, `default` when not given (ValidationException naming `field`
/// otherwise): RotationPeriodInDays, PendingWindowInDays.
pub fn days_in_range(value: Option<u16>, default: u16, min: u16, max: u16, field: &str) -> OpResult<u16> {
    let days = value.unwrap_or(default);
    if !(min..=max).contains(&days) {
        return Err(err!(Validation, "{} must be {}..={}, not {}", field, min, max, days));
    }
    Ok(days)
}

/// Writes a marker string into `buf`; returns it.
pub fn write_marker<'b>(buf: &'b mut [u8; MAX_MARKER], text: &[u8]) -> Option<&'b str> {
    let n = text.len().min(MAX_MARKER);
    buf[..n].copy_from_slice(&text[..n]);
    core::str::from_utf8(&buf[..n]).ok()
}
