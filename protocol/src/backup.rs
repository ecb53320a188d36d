//! The backup file's authenticated header and the rules both ends share (docs/backup.md).
//!
//! ```text
//! offset size field
//!   0     8   magic "PKMSBAK\0"
//!   8     2   format version (u16 big-endian): 1
//!  10     1   mode: 1 = sealed under the backup key, 2 = wrapped to one peer token's device key
//!  11    32   source token: SHA-256 of its device key (DER SubjectPublicKeyInfo)
//!  43     8   backup time (Unix seconds, u64 big-endian, the source token's clock)
//!  51    32   salt (random, per export)
//!  83    65   peer mode: the ephemeral P-256 public key (SEC1 uncompressed); zeros otherwise
//! 148    32   peer mode: SHA-256 of the recipient's device key (DER SPKI); zeros otherwise
//! 180         end
//! ```
//!
//! The chunk key is HKDF-SHA-256(salt, secret, "pkms backup v1" ‖ SHA-256(header)), where the
//! secret is the backup key (mode 1) or the ECDH shared secret (mode 2): a header altered in any
//! bit gives another key, so its first chunk fails. Chunk `i` is AES-256-GCM with the nonce
//! `0⁸ ‖ i (u32 BE)` and the associated data `i (u32 BE) ‖ last (1 byte)`: chunks cannot be
//! reordered, dropped or cut short without a tag failing or the last chunk missing.
//!
//! The file: the header, then every chunk as `length (u32 BE) ‖ last (1 byte) ‖ sealed bytes`.

/// File magic.
pub const MAGIC: [u8; 8] = *b"PKMSBAK\0";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 180;
/// Most plaintext bytes in one chunk (a chunk is sealed into `CHUNK_MAX + TAG_LEN` bytes).
pub const CHUNK_MAX: usize = 4096;
/// AES-GCM tag bytes of each chunk.
pub const TAG_LEN: usize = 16;
/// Bytes of the backup key (and of the secret the SLIP-39 shares carry).
pub const BACKUP_KEY_LEN: usize = 32;
/// The HKDF info prefix.
pub const KDF_INFO: &[u8] = b"pkms backup v1";

/// Who can open a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Anyone holding the backup key (its SLIP-39 shares).
    BackupKey,
    /// Only the token whose device key the header names.
    Peer,
}

impl Mode {
    /// The mode byte.
    pub const fn byte(self) -> u8 {
        match self {
            Mode::BackupKey => 1,
            Mode::Peer => 2,
        }
    }
}

/// A parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Its format version.
    pub version: u16,
    /// Who can open it.
    pub mode: Mode,
    /// SHA-256 of the source token's device key.
    pub source: [u8; 32],
    /// When the backup was made (source token time).
    pub time: u64,
    /// The per-export salt.
    pub salt: [u8; 32],
    /// Peer mode: the ephemeral public key.
    pub ephemeral: [u8; 65],
    /// Peer mode: SHA-256 of the recipient's device key.
    pub recipient: [u8; 32],
}

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Too short, or not a backup file.
    NotABackup,
    /// Written by newer software (its version).
    NewerVersion(u16),
    /// An unknown mode byte.
    UnknownMode(u8),
}

impl Header {
    /// Encodes the header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&self.version.to_be_bytes());
        h[10] = self.mode.byte();
        h[11..43].copy_from_slice(&self.source);
        h[43..51].copy_from_slice(&self.time.to_be_bytes());
        h[51..83].copy_from_slice(&self.salt);
        h[83..148].copy_from_slice(&self.ephemeral);
        h[148..180].copy_from_slice(&self.recipient);
        h
    }

    /// Parses the first [`HEADER_LEN`] bytes of `bytes`. The version is checked before anything
    /// else after the magic, so a newer file is named as such.
    pub fn parse(bytes: &[u8]) -> Result<Header, HeaderError> {
        let h: &[u8; HEADER_LEN] =
            bytes.get(..HEADER_LEN).and_then(|b| b.try_into().ok()).ok_or(HeaderError::NotABackup)?;
        if h[0..8] != MAGIC {
            return Err(HeaderError::NotABackup);
        }
        let version = u16::from_be_bytes([h[8], h[9]]);
        if version > FORMAT_VERSION {
            return Err(HeaderError::NewerVersion(version));
        }
        if version == 0 {
            return Err(HeaderError::NotABackup);
        }
        let mode = match h[10] {
            1 => Mode::BackupKey,
            2 => Mode::Peer,
            other => return Err(HeaderError::UnknownMode(other)),
        };
        let mut header = Header {
            version,
            mode,
            source: [0; 32],
            time: 0,
            salt: [0; 32],
            ephemeral: [0; 65],
            recipient: [0; 32],
        };
        header.source.copy_from_slice(&h[11..43]);
        let mut t = [0u8; 8];
        t.copy_from_slice(&h[43..51]);
        header.time = u64::from_be_bytes(t);
        header.salt.copy_from_slice(&h[51..83]);
        header.ephemeral.copy_from_slice(&h[83..148]);
        header.recipient.copy_from_slice(&h[148..180]);
        Ok(header)
    }
}

/// The AES-GCM nonce of chunk `index`.
pub fn chunk_nonce(index: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[8..].copy_from_slice(&index.to_be_bytes());
    n
}

/// The associated data of chunk `index`.
pub fn chunk_aad(index: u32, last: bool) -> [u8; 5] {
    let mut a = [0u8; 5];
    a[..4].copy_from_slice(&index.to_be_bytes());
    a[4] = last as u8;
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_a_newer_version_is_named() {
        let h = Header {
            version: FORMAT_VERSION,
            mode: Mode::Peer,
            source: [1; 32],
            time: 1_700_000_000,
            salt: [2; 32],
            ephemeral: [4; 65],
            recipient: [3; 32],
        };
        let b = h.to_bytes();
        assert_eq!(Header::parse(&b), Ok(h));
        let mut newer = b;
        newer[9] = 2;
        assert_eq!(Header::parse(&newer), Err(HeaderError::NewerVersion(2)));
        let mut bad = b;
        bad[0] ^= 1;
        assert_eq!(Header::parse(&bad), Err(HeaderError::NotABackup));
        assert_eq!(Header::parse(&b[..HEADER_LEN - 1]), Err(HeaderError::NotABackup));
        let mut mode = b;
        mode[10] = 9;
        assert_eq!(Header::parse(&mode), Err(HeaderError::UnknownMode(9)));
    }
}
