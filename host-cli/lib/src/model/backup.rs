//! Backups: BackupInit, the export's header and chunks, a restore's progress.

use zeroize::Zeroizing;

/// One sealed chunk of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupChunk {
    /// Ciphertext and tag.
    pub sealed: Vec<u8>,
    /// Whether it is the last.
    pub last: bool,
    /// Records it carries.
    pub records: u32,
}

/// What a restored chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupRestored {
    /// Records written so far.
    pub records: u32,
    /// Whether the restore is complete.
    pub complete: bool,
}

impl super::Owned for pkms_protocol::kind::BackupSecret {
    /// The 32-byte backup key.
    type Output = Zeroizing<Vec<u8>>;
    fn own(r: pkms_protocol::reply::BackupSecret<'_>) -> Self::Output {
        Zeroizing::new(r.secret.to_vec())
    }
}

impl super::Owned for pkms_protocol::kind::BackupHeader {
    /// The header bytes.
    type Output = Vec<u8>;
    fn own(r: pkms_protocol::reply::BackupHeader<'_>) -> Vec<u8> {
        r.header.to_vec()
    }
}

impl super::Owned for pkms_protocol::kind::BackupChunk {
    type Output = BackupChunk;
    fn own(r: pkms_protocol::reply::BackupChunk<'_>) -> BackupChunk {
        BackupChunk { sealed: r.sealed.to_vec(), last: r.last, records: r.records }
    }
}

impl super::Owned for pkms_protocol::kind::BackupRestored {
    type Output = BackupRestored;
    fn own(r: pkms_protocol::reply::BackupRestored) -> BackupRestored {
        BackupRestored { records: r.records, complete: r.complete }
    }
}
