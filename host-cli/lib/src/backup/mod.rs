//! Backups on the host side: the backup file, the streamed export and restore through a
//! [`Client`], and the SLIP-39 shares of the backup key ([`slip39`]). The host only carries
//! sealed bytes: the chunks are opened by the token alone (docs/backup.md).
//!
//! The file: the token's 180-byte header ([`pkms_protocol::backup::Header`]), then each chunk as
//! `length (u32 BE) ‖ last (1 byte) ‖ sealed bytes`.

pub mod slip39;

use std::io::{Read, Write};

use pkms_protocol::backup::{Header, HeaderError, Mode, CHUNK_MAX, FORMAT_VERSION, HEADER_LEN, TAG_LEN};
use pkms_protocol::request;
use sha2::{Digest, Sha256};

use crate::client::Client;
use crate::error::{Error, Result};

/// A backup file read into memory (sealed: nothing in it is readable without the backup key or
/// the recipient token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    /// The header bytes.
    pub header: Vec<u8>,
    /// The parsed header.
    pub parsed: Header,
    /// Each sealed chunk and whether the file marks it last.
    pub chunks: Vec<(Vec<u8>, bool)>,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSummary {
    /// Chunks.
    pub chunks: u32,
    /// Records (keys, principals, aliases, …).
    pub records: u32,
    /// File bytes.
    pub bytes: u64,
}

/// The token id a header names, as the host shows device keys: `SHA256:` and base64.
pub fn token_id(hash: &[u8; 32]) -> String {
    use base64::Engine;
    format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash))
}

/// The fingerprint of a device key (DER SPKI), as [`token_id`] shows it.
pub fn fingerprint(spki_der: &[u8]) -> String {
    token_id(&Sha256::digest(spki_der).into())
}

/// Streams an export from the token into `out`: the header, then chunk after chunk as the
/// token seals them (the token never holds more than one chunk). `peer`: the recipient token's
/// device key (DER SPKI) for peer mode.
pub fn export<W: Write>(client: &mut Client, peer: Option<&[u8]>, out: &mut W) -> Result<ExportSummary> {
    let header = client.call(request::BackupExportBegin { peer_device_key: peer })?;
    out.write_all(&header).map_err(io)?;
    let mut summary = ExportSummary { chunks: 0, records: 0, bytes: header.len() as u64 };
    loop {
        let chunk = client.call(request::BackupExportChunk {})?;
        let len =
            u32::try_from(chunk.sealed.len()).map_err(|_| Error::InvalidInput("chunk too large".into()))?;
        out.write_all(&len.to_be_bytes()).map_err(io)?;
        out.write_all(&[chunk.last as u8]).map_err(io)?;
        out.write_all(&chunk.sealed).map_err(io)?;
        summary.chunks += 1;
        summary.records += chunk.records;
        summary.bytes += 5 + chunk.sealed.len() as u64;
        if chunk.last {
            return Ok(summary);
        }
    }
}

fn io(e: std::io::Error) -> Error {
    Error::InvalidInput(format!("cannot write the backup: {e}"))
}

impl BackupFile {
    /// Reads and frames a backup file (nothing is opened: that is the token's job). Refuses a
    /// file that is not a backup, a newer format version, or chunks that are not framed right.
    pub fn read<R: Read>(mut input: R) -> Result<BackupFile> {
        let mut bytes = Vec::new();
        input
            .read_to_end(&mut bytes)
            .map_err(|e| Error::InvalidInput(format!("cannot read the backup: {e}")))?;
        Self::parse(&bytes)
    }

    /// As [`BackupFile::read`], from bytes.
    pub fn parse(bytes: &[u8]) -> Result<BackupFile> {
        let parsed = Header::parse(bytes).map_err(|e| {
            Error::InvalidInput(match e {
                HeaderError::NotABackup => "this is not a Pocket KMS backup file".to_owned(),
                HeaderError::NewerVersion(v) => format!(
                    "the backup has format version {v}, newer than this pkms reads ({FORMAT_VERSION}): update pkms and the token firmware"
                ),
                HeaderError::UnknownMode(m) => format!("the backup names an unknown mode {m}"),
            })
        })?;
        let mut chunks = Vec::new();
        let mut at = HEADER_LEN;
        let damaged =
            |why: &str| Error::InvalidInput(format!("the backup file is damaged or cut short: {why}"));
        while at < bytes.len() {
            let Some(h) = bytes.get(at..at + 5) else { return Err(damaged("a chunk header is cut")) };
            let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
            if !(TAG_LEN..=CHUNK_MAX + TAG_LEN).contains(&len) || h[4] > 1 {
                return Err(damaged("a chunk header is not valid"));
            }
            let Some(sealed) = bytes.get(at + 5..at + 5 + len) else { return Err(damaged("a chunk is cut")) };
            if chunks.last().is_some_and(|(_, last)| *last) {
                return Err(damaged("there are chunks after the last one"));
            }
            chunks.push((sealed.to_vec(), h[4] == 1));
            at += 5 + len;
        }
        if !chunks.last().is_some_and(|(_, last)| *last) {
            return Err(damaged("the last chunk is missing"));
        }
        Ok(BackupFile { header: bytes[..HEADER_LEN].to_vec(), parsed, chunks })
    }

    /// Who can open it.
    pub fn mode(&self) -> Mode {
        self.parsed.mode
    }
}

/// Restores `file` onto the token of `client` (which must be fresh): `secret` is the backup key
/// for a file sealed under one, `None` for a file wrapped to this token's device key. Returns
/// the number of records restored.
pub fn restore(client: &mut Client, file: &BackupFile, secret: Option<&[u8]>) -> Result<u32> {
    client.call(request::BackupRestoreBegin { header: &file.header, secret })?;
    for (sealed, last) in &file.chunks {
        let r = client.call(request::BackupRestoreChunk { sealed, last: *last })?;
        if r.complete {
            return Ok(r.records);
        }
    }
    Err(Error::InvalidInput("the backup ended before its last chunk".into()))
}
