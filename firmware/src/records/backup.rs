//! What backups keep on the token: the backup key (sealed under the device root key like key
//! material, with the mark of the last export) and the marker of a restore in progress.

use pkms_protocol::UnixTime;
use serde::{Deserialize, Serialize};

/// The backup key record (singleton).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct BackupKeyRecord {
    /// [`super::FORMAT`].
    pub format: u8,
    /// AES-GCM nonce of the sealing.
    pub nonce: [u8; 12],
    /// The 32-byte backup key encrypted under the device root key.
    pub ciphertext: [u8; 32],
    /// Its AES-GCM tag.
    pub tag: [u8; 16],
    /// The last complete export: the store's record sequence number and the token's time when
    /// it began (`None`: no export since the key was made). Every key record older than that
    /// sequence number, and every live version dated at or before that time, is in it (the
    /// export moved the clock a second past it).
    pub exported: Option<ExportMark>,
}

/// Where the last complete export began.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportMark {
    /// The store's next record sequence number when it began.
    pub sequence: u32,
    /// The token's time when it began.
    pub time: UnixTime,
}

/// Present while a restore is being written (singleton): mount discards every record a restore
/// writes while it is there, so a power cut leaves a fresh token or a complete restore.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestorePendingRecord {
    /// [`super::FORMAT`].
    pub format: u8,
    /// The source token (SHA-256 of its device key).
    pub source: [u8; 32],
    /// The backup time.
    pub time: UnixTime,
}

impl BackupKeyRecord {
    /// A record of a sealed key (`sealed`: ciphertext ‖ tag) with no export yet.
    pub fn new(nonce: [u8; 12], sealed: &[u8; 48]) -> Self {
        let mut ciphertext = [0u8; 32];
        let mut tag = [0u8; 16];
        ciphertext.copy_from_slice(&sealed[..32]);
        tag.copy_from_slice(&sealed[32..]);
        BackupKeyRecord { format: super::FORMAT, nonce, ciphertext, tag, exported: None }
    }

    /// Ciphertext ‖ tag.
    pub fn sealed(&self) -> [u8; 48] {
        let mut s = [0u8; 48];
        s[..32].copy_from_slice(&self.ciphertext);
        s[32..].copy_from_slice(&self.tag);
        s
    }
}
