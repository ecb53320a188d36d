//! `pkms audit`: export the token's audit log with a signed checkpoint, verify an export
//! offline with the device's public key, show the signed head.
//!
//! Export file (binary, big-endian):
//! ```text
//! "PKMSAUD1"
//! u16 len, device public key (DER SubjectPublicKeyInfo)
//! u64 first_sequence
//! u16 len, base signature (over checkpoint_digest(first_sequence - 1, entry[0].prev_hash); empty when first_sequence = 1)
//! u64 checkpoint sequence, 32-byte checkpoint hash, u16 len, checkpoint signature
//! u32 n, then n entries of AUDIT_ENTRY_LEN bytes (first_sequence .. checkpoint sequence)
//! ```

use std::path::{Path, PathBuf};

use clap::Subcommand;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use pkms_protocol::access::{checkpoint_digest, AuditEntry, AUDIT_ENTRY_LEN, MAX_AUDIT_PAGE};
use pkms_protocol::ErrorCode;
use serde_json::json;

use super::output::iso8601;
use super::{usage, CliError, Context};
use crate::client::AuditCheckpoint;

const MAGIC: &[u8; 8] = b"PKMSAUD1";

/// Audit commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Write the audit log and a signed checkpoint to a file (administrators).
    #[command(after_help = "Example:\n  pkms audit export --out log.pkaudit --public-key-out device.pem")]
    Export {
        /// The export file.
        #[arg(long)]
        out: PathBuf,
        /// Also write the device attestation public key (PEM) here.
        #[arg(long)]
        public_key_out: Option<PathBuf>,
        /// Then drop the exported entries from the token (frees a full log in refuse mode).
        #[arg(long)]
        trim: bool,
    },
    /// Check an export offline: the chain of hashes and the signatures, with only the device's
    /// public key. Reports the first bad entry.
    #[command(after_help = "Example:\n  pkms audit verify log.pkaudit --public-key device.pem")]
    Verify {
        /// The export file.
        file: PathBuf,
        /// The device attestation public key (PEM), obtained from the token beforehand.
        #[arg(long)]
        public_key: PathBuf,
        /// Also print every entry.
        #[arg(long)]
        entries: bool,
    },
    /// Print the signed head of the log and the device public key.
    #[command(after_help = "Example:\n  pkms audit checkpoint --query PublicKey --output text > device.pem")]
    Checkpoint,
}

fn put16(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

fn pem_of(der: &[u8]) -> anyhow::Result<String> {
    let key = VerifyingKey::from_public_key_der(der)
        .map_err(|_| anyhow::anyhow!("the token sent an invalid public key"))?;
    Ok(key.to_public_key_pem(LineEnding::LF)?)
}

/// Writes the export of `cp` and `entries` (encoded) to bytes.
pub fn export_bytes(cp: &AuditCheckpoint, entries: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    put16(&mut out, &cp.public_key);
    out.extend_from_slice(&cp.first_sequence.to_be_bytes());
    put16(&mut out, &cp.base_signature);
    out.extend_from_slice(&cp.sequence.to_be_bytes());
    out.extend_from_slice(&cp.hash);
    put16(&mut out, &cp.signature);
    out.extend_from_slice(&((entries.len() / AUDIT_ENTRY_LEN) as u32).to_be_bytes());
    out.extend_from_slice(entries);
    out
}

/// A parsed export.
#[derive(Debug)]
pub struct Export {
    /// Device public key (DER) the file names.
    pub public_key: Vec<u8>,
    /// Oldest sequence number.
    pub first_sequence: u64,
    /// Signature behind the first entry.
    pub base_signature: Vec<u8>,
    /// Checkpoint sequence number.
    pub sequence: u64,
    /// Checkpoint hash.
    pub hash: [u8; 32],
    /// Checkpoint signature.
    pub signature: Vec<u8>,
    /// Raw entries.
    pub entries: Vec<Vec<u8>>,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
    }
}

/// Parses an export file.
pub fn parse_export(bytes: &[u8]) -> Option<Export> {
    let mut r = Reader(bytes);
    if r.take(8)? != MAGIC {
        return None;
    }
    let n = r.u16()?;
    let public_key = r.take(n)?.to_vec();
    let first_sequence = r.u64()?;
    let n = r.u16()?;
    let base_signature = r.take(n)?.to_vec();
    let sequence = r.u64()?;
    let hash: [u8; 32] = r.take(32)?.try_into().ok()?;
    let n = r.u16()?;
    let signature = r.take(n)?.to_vec();
    let count = u32::from_be_bytes(r.take(4)?.try_into().ok()?) as usize;
    let mut entries = Vec::new();
    for _ in 0..count {
        entries.push(r.take(AUDIT_ENTRY_LEN)?.to_vec());
    }
    if !r.0.is_empty() {
        return None;
    }
    Some(Export { public_key, first_sequence, base_signature, sequence, hash, signature, entries })
}

/// Why an export does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The file is not an export.
    Format,
    /// The file names another device key than the one given.
    WrongKey,
    /// The head checkpoint's signature is bad (the header was altered).
    Checkpoint,
    /// The base checkpoint behind the first entry is bad.
    Base,
    /// Entry `index` (sequence `sequence`) is altered, missing, reordered or inserted.
    Entry {
        /// Position in the file (0-based).
        index: usize,
        /// Its expected sequence number.
        sequence: u64,
    },
}

fn check_sig(key: &VerifyingKey, sequence: u64, hash: &[u8; 32], sig: &[u8]) -> bool {
    Signature::from_der(sig).is_ok_and(|s| key.verify_prehash(&checkpoint_digest(sequence, hash), &s).is_ok())
}

/// Verifies an export with the device key `key`; returns the decoded entries.
pub fn verify_export(e: &Export, key: &VerifyingKey) -> Result<Vec<AuditEntry>, VerifyError> {
    let der = key.to_public_key_der().map_err(|_| VerifyError::Format)?;
    if der.as_bytes() != e.public_key.as_slice() {
        return Err(VerifyError::WrongKey);
    }
    if !check_sig(key, e.sequence, &e.hash, &e.signature) {
        return Err(VerifyError::Checkpoint);
    }
    let n = e.entries.len();
    if e.first_sequence.checked_add(n as u64) != e.sequence.checked_add(1) {
        // Entries missing or added at the end.
        return Err(VerifyError::Entry { index: n.saturating_sub(1), sequence: e.first_sequence + n as u64 });
    }
    let decoded: Vec<Option<AuditEntry>> = e.entries.iter().map(|b| AuditEntry::decode(b)).collect();
    for (i, d) in decoded.iter().enumerate() {
        if d.is_none_or(|d| d.sequence != e.first_sequence + i as u64) {
            return Err(VerifyError::Entry { index: i, sequence: e.first_sequence + i as u64 });
        }
    }
    let entries: Vec<AuditEntry> = decoded.into_iter().flatten().collect();
    // link(i): what entry i says came before it matches; link(n): the checkpoint's hash.
    let link = |i: usize| -> bool {
        if i == n {
            return entries[n - 1].hash() == e.hash;
        }
        if i == 0 {
            return true;
        }
        entries[i].prev_hash == entries[i - 1].hash()
    };
    if n == 0 {
        return Ok(entries);
    }
    let base_ok = if e.first_sequence == 1 {
        entries[0].prev_hash == [0; 32]
    } else {
        check_sig(key, e.first_sequence - 1, &entries[0].prev_hash, &e.base_signature)
    };
    if let Some(f) = (1..=n).find(|&i| !link(i)) {
        // A changed entry breaks the link after it; a changed prev_hash also the one before.
        let bad = if f < n && !link(f + 1) { f } else { f - 1 };
        return Err(VerifyError::Entry { index: bad, sequence: e.first_sequence + bad as u64 });
    }
    if !base_ok {
        // The chain holds up to the signed head, so entry 0's prev_hash is what was altered,
        // or entries were dropped without the token's signature.
        return Err(if e.first_sequence == 1 {
            VerifyError::Entry { index: 0, sequence: 1 }
        } else {
            VerifyError::Base
        });
    }
    Ok(entries)
}

fn entry_json(e: &AuditEntry) -> serde_json::Value {
    let op = pkms_protocol::Operation::from_index(e.operation).map_or("Unknown", |o| o.name());
    let result = match e.result {
        0 => "OK".to_owned(),
        r => ErrorCode::ALL
            .get(r as usize - 1)
            .map(|c| c.kms_name().to_owned())
            .unwrap_or_else(|| format!("error {r}")),
    };
    let key = if e.key_id == [0; 16] {
        serde_json::Value::Null
    } else {
        json!(pkms_protocol::KeyId(e.key_id).to_string())
    };
    json!({
        "Sequence": e.sequence,
        "Time": iso8601(e.time),
        "Principal": e.principal_name(),
        "Operation": op,
        "KeyId": key,
        "KeyVersion": e.key_version,
        "Result": result,
    })
}

fn read_pem_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("--public-key: cannot read {}: {e}", path.display())))?;
    VerifyingKey::from_public_key_pem(&text).map_err(|_| usage("--public-key: not a P-256 public key in PEM"))
}

/// Runs an audit command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::Export { out, public_key_out, trim } => {
            let client = ctx.client()?;
            let cp = client.get_audit_checkpoint()?;
            let mut entries = Vec::new();
            let mut next = cp.first_sequence;
            while next <= cp.sequence {
                let page = client.read_audit_log(next, MAX_AUDIT_PAGE as u16)?;
                if page.is_empty() {
                    break;
                }
                for chunk in page.chunks(AUDIT_ENTRY_LEN) {
                    let Some(e) = AuditEntry::decode(chunk) else { continue };
                    if e.sequence >= next && e.sequence <= cp.sequence {
                        entries.extend_from_slice(chunk);
                        next = e.sequence + 1;
                    }
                }
            }
            std::fs::write(&out, export_bytes(&cp, &entries))
                .map_err(|e| usage(format!("--out: cannot write {}: {e}", out.display())))?;
            if let Some(p) = public_key_out {
                std::fs::write(&p, pem_of(&cp.public_key)?)
                    .map_err(|e| usage(format!("--public-key-out: cannot write {}: {e}", p.display())))?;
            }
            if trim && cp.sequence >= cp.first_sequence {
                ctx.client()?.trim_audit_log(cp.sequence)?;
            }
            ctx.emit(json!({
                "File": out.display().to_string(),
                "FirstSequence": cp.first_sequence,
                "LastSequence": cp.sequence,
                "Entries": entries.len() / AUDIT_ENTRY_LEN,
                "Trimmed": trim,
            }))
        }
        Commands::Verify { file, public_key, entries } => {
            let key = read_pem_key(&public_key)?;
            let bytes =
                std::fs::read(&file).map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
            let bad = |message: String| -> anyhow::Error {
                CliError { kind: "AuditVerificationFailed", message }.into()
            };
            let export = parse_export(&bytes).ok_or_else(|| {
                bad(format!("{} is not a pkms audit export (or is truncated)", file.display()))
            })?;
            match verify_export(&export, &key) {
                Ok(list) => {
                    let mut out = json!({
                        "Valid": true,
                        "FirstSequence": export.first_sequence,
                        "LastSequence": export.sequence,
                        "Entries": list.len(),
                    });
                    if entries {
                        out["Log"] = json!(list.iter().map(entry_json).collect::<Vec<_>>());
                    }
                    ctx.emit(out)
                }
                Err(VerifyError::Entry { index, sequence }) => Err(bad(format!(
                    "entry {index} (sequence {sequence}) is altered, missing or out of order: the hash chain breaks there"
                ))),
                Err(VerifyError::Checkpoint) => Err(bad("the checkpoint signature does not verify with this public key".into())),
                Err(VerifyError::Base) => Err(bad("the signed checkpoint behind the first entry does not verify".into())),
                Err(VerifyError::WrongKey) => Err(bad("the export was made by another device key than --public-key".into())),
                Err(VerifyError::Format) => Err(bad("the public key cannot be encoded".into())),
            }
        }
        Commands::Checkpoint => {
            let cp = ctx.client()?.get_audit_checkpoint()?;
            let hex: String = cp.hash.iter().map(|b| format!("{b:02x}")).collect();
            ctx.emit(json!({
                "Sequence": cp.sequence,
                "Hash": hex,
                "FirstSequence": cp.first_sequence,
                "Capacity": cp.capacity,
                "AuditFull": format!("{:?}", cp.audit_full).to_uppercase(),
                "Signature": super::args::b64(&cp.signature),
                "PublicKey": pem_of(&cp.public_key)?,
            }))
        }
    }
}
