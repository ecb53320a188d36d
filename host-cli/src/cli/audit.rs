//! `pkms audit`: export the token's audit log with a signed checkpoint, verify an export
//! offline with the device's public key, show the signed head. The export file format and its
//! verification live in [`pkms_lib::audit`].

use std::path::{Path, PathBuf};

use clap::Subcommand;
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use pkms_lib::audit::{export_bytes, parse_export, verify_export, VerifyError};
use pkms_protocol::access::{AuditEntry, AUDIT_ENTRY_LEN, MAX_AUDIT_PAGE};
use pkms_protocol::ErrorCode;
use serde_json::json;

use super::output::iso8601;
use super::{usage, CliError, Context};

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

fn pem_of(der: &[u8]) -> anyhow::Result<String> {
    let key = VerifyingKey::from_public_key_der(der)
        .map_err(|_| anyhow::anyhow!("the token sent an invalid public key"))?;
    Ok(key.to_public_key_pem(LineEnding::LF)?)
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
