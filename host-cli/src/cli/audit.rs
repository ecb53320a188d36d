//! `pkms audit`: export the token's audit log with a signed checkpoint, verify an export
//! offline with the device's public key, show the signed head. The export file format and its
//! verification live in [`pkms_lib::audit`].

use std::path::{Path, PathBuf};

use clap::Subcommand;
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey;
use pkms_lib::audit::{export_bytes, parse_export, verify_export, VerifyError};
use pkms_lib::model::audit::{public_key_pem, AuditCheckpointOutput};
use pkms_lib::model::encoding::iso8601;
use pkms_protocol::access::{AuditEntry, AuditFullMode, AuditLogStatus, AUDIT_ENTRY_LEN, MAX_AUDIT_PAGE};
use pkms_protocol::ErrorCode;
use serde::Serialize;

use super::{usage, Context};

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
    /// Print the public key (PEM) that signs the audit log, which `pkms audit verify
    /// --public-key` checks exports against (any logged-in principal). Keep it from a time you
    /// trusted the token; `pkms init` prints it too.
    #[command(name = "public-key", after_help = "Example:\n  pkms audit public-key > device.pem")]
    PublicKey {
        /// Write it to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// How full the audit log may get (in percent of what it can hold) before every call warns.
pub const WARN_PERCENT: u64 = 80;

/// The warning a call prints on stderr when the token's audit log (as the answer to its login
/// described it) is more than [`WARN_PERCENT`] full: one line naming the fill level, what
/// happens when it is full and the command that empties it; `None` below that. `-q` does not
/// hide it: it is the only sign before an overwriting log starts dropping entries or a refusing
/// one stops a script's operations.
pub fn fill_warning(status: &AuditLogStatus) -> Option<String> {
    let held = u64::from(status.entries);
    // What it holds once full: its capacity, or less when the keys leave it less flash.
    let full_at = held + u64::from(status.room);
    if full_at == 0 || held * 100 <= full_at * WARN_PERCENT {
        return None;
    }
    let then = match status.when_full {
        AuditFullMode::Overwrite => "each new entry then drops the oldest ones (behind a signed checkpoint)",
        AuditFullMode::Refuse => "the token then refuses operations until it is exported and trimmed",
    };
    let short = if full_at < u64::from(status.capacity) {
        format!(" (the keys leave it room for {full_at} of its {})", status.capacity)
    } else {
        String::new()
    };
    Some(format!(
        "warning: the token's audit log is {}% full: {held} of {full_at} entries{short}; {then}. \
         An administrator exports and trims it with `pkms audit export --out FILE --trim`.",
        held * 100 / full_at
    ))
}

/// Prints [`fill_warning`], if any, on stderr.
pub fn warn_when_filling(status: &AuditLogStatus) {
    if let Some(w) = fill_warning(status) {
        eprintln!("{w}");
    }
}

/// One decoded log entry, as `pkms audit verify --entries` lists it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LogEntry {
    sequence: u64,
    /// ISO-8601 UTC.
    time: String,
    principal: String,
    operation: &'static str,
    /// `null` for an operation on no key.
    key_id: Option<String>,
    key_version: u32,
    /// `OK` or the token's error code (`NotFound`, `KeyVersionRetired`, …: its own name, more
    /// precise than the KMS exception a client was shown).
    result: String,
    /// For `UnauthenticatedRequests`: the requests answered outside a session since the entry
    /// before, counted instead of logged one by one.
    #[serde(skip_serializing_if = "Option::is_none")]
    counts: Option<Counts>,
}

/// What an `UnauthenticatedRequests` entry counts.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Counts {
    answered: u32,
    failed_authentications: u32,
    refused: u32,
    /// ISO-8601 UTC: when the first of them came.
    since: String,
}

impl LogEntry {
    fn new(e: &AuditEntry) -> Self {
        let result = match e.result {
            0 => "OK".to_owned(),
            r => ErrorCode::ALL
                .get(r as usize - 1)
                .map(|c| c.name().to_owned())
                .unwrap_or_else(|| format!("error {r}")),
        };
        if let Some(c) = e.unauthenticated_requests() {
            return LogEntry {
                sequence: e.sequence,
                time: iso8601(e.time),
                principal: String::new(),
                operation: "UnauthenticatedRequests",
                key_id: None,
                key_version: 0,
                result,
                counts: Some(Counts {
                    answered: c.answered,
                    failed_authentications: c.failed_authentications,
                    refused: c.refused,
                    since: iso8601(u64::from(c.since)),
                }),
            };
        }
        LogEntry {
            sequence: e.sequence,
            time: iso8601(e.time),
            principal: e.principal_name().to_owned(),
            operation: pkms_protocol::access::audit_operation_name(e.operation).unwrap_or("Unknown"),
            key_id: (e.key_id != [0; 16]).then(|| pkms_protocol::KeyId(e.key_id).to_string()),
            key_version: e.key_version,
            result,
            counts: None,
        }
    }
}

/// What `pkms audit export` reports.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ExportOutput {
    file: String,
    first_sequence: u64,
    last_sequence: u64,
    entries: usize,
    trimmed: bool,
}

/// What `pkms audit verify` reports on success.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct VerifyOutput {
    valid: bool,
    first_sequence: u64,
    last_sequence: u64,
    entries: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<Vec<LogEntry>>,
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
                std::fs::write(&p, public_key_pem(&cp.public_key)?)
                    .map_err(|e| usage(format!("--public-key-out: cannot write {}: {e}", p.display())))?;
            }
            if trim && cp.sequence >= cp.first_sequence {
                ctx.client()?.trim_audit_log(cp.sequence)?;
            }
            ctx.emit(&ExportOutput {
                file: out.display().to_string(),
                first_sequence: cp.first_sequence,
                last_sequence: cp.sequence,
                entries: entries.len() / AUDIT_ENTRY_LEN,
                trimmed: trim,
            })
        }
        Commands::Verify { file, public_key, entries } => {
            let key = read_pem_key(&public_key)?;
            let bytes =
                std::fs::read(&file).map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
            let bad = |message: String| -> anyhow::Error {
                // As every failed verification: KMSInvalidSignatureException, exit 254.
                super::Refusal { kind: "KMSInvalidSignatureException", message }.into()
            };
            let export = parse_export(&bytes).ok_or_else(|| {
                bad(format!("{} is not a pkms audit export (or is truncated)", file.display()))
            })?;
            match verify_export(&export, &key) {
                Ok(list) => ctx.emit(&VerifyOutput {
                    valid: true,
                    first_sequence: export.first_sequence,
                    last_sequence: export.sequence,
                    entries: list.len(),
                    log: entries.then(|| list.iter().map(LogEntry::new).collect()),
                }),
                Err(VerifyError::Entry { index, sequence }) => Err(bad(format!(
                    "entry {index} (sequence {sequence}) is altered, missing or out of order: the hash chain breaks there"
                ))),
                Err(VerifyError::Checkpoint) => Err(bad("the checkpoint signature does not verify with this public key".into())),
                Err(VerifyError::Base) => Err(bad("the signed checkpoint behind the first entry does not verify".into())),
                Err(VerifyError::WrongKey) => Err(bad("the export was made by another device key than --public-key".into())),
                Err(VerifyError::Format) => Err(bad("the public key cannot be encoded".into())),
            }
        }
        Commands::PublicKey { out } => {
            let cp = ctx.client()?.get_audit_checkpoint()?;
            let pem = public_key_pem(&cp.public_key)?;
            match out {
                Some(p) => std::fs::write(&p, pem)
                    .map_err(|e| usage(format!("--out: cannot write {}: {e}", p.display()))),
                None => ctx.emit_raw(&pem),
            }
        }
        Commands::Checkpoint => {
            let cp = ctx.client()?.get_audit_checkpoint()?;
            ctx.emit(&AuditCheckpointOutput::new(&cp)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(entries: u32, room: u32, when_full: AuditFullMode) -> AuditLogStatus {
        AuditLogStatus { entries, capacity: 1000, room, when_full }
    }

    #[test]
    fn the_fill_warning_starts_above_80_percent_of_what_the_log_can_hold() {
        for mode in [AuditFullMode::Overwrite, AuditFullMode::Refuse] {
            assert_eq!(fill_warning(&status(0, 1000, mode)), None);
            assert_eq!(fill_warning(&status(800, 200, mode)), None, "80 % is not above 80 %");
            let w = fill_warning(&status(801, 199, mode)).expect("80.1 % warns");
            assert!(w.starts_with("warning: the token's audit log is 80% full: 801 of 1000 entries;"), "{w}");
            assert!(w.contains("`pkms audit export --out FILE --trim`") && !w.contains('\n'), "{w}");
            let full = fill_warning(&status(1000, 0, mode)).unwrap();
            assert!(full.contains("100% full: 1000 of 1000 entries;"), "{full}");
            // Keys that leave the log less flash: the fill level counts what it can hold.
            let short = fill_warning(&status(500, 100, mode)).unwrap();
            assert!(
                short.contains("83% full: 500 of 600 entries (the keys leave it room for 600 of its 1000)"),
                "{short}"
            );
            assert_eq!(fill_warning(&status(0, 0, mode)), None);
        }
        let overwrite = fill_warning(&status(900, 100, AuditFullMode::Overwrite)).unwrap();
        assert!(overwrite.contains("drops the oldest"), "{overwrite}");
        let refuse = fill_warning(&status(900, 100, AuditFullMode::Refuse)).unwrap();
        assert!(refuse.contains("refuses operations until it is exported and trimmed"), "{refuse}");
    }

}
