//! info, create-key, describe-key, list-keys, update-key-description.

use clap::Subcommand;
use pkms_protocol::{KeySpec, KeyUsage, Platform};
use serde_json::Value;

use super::args::{kms_value_parser, merge_tags, parse_tags, TagsArg};
use super::output::{date, Obj};
use super::Context;
use pkms_lib::model::{CreateKeyParams, KeyMetadata};

/// Key management commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Show the token: firmware and protocol version, board, emulated or hardware, storage.
    #[command(after_help = "Example:\n  pkms info\n  pkms info --output text")]
    Info,
    /// Create a key on the token (its id is generated there).
    #[command(after_help = "Examples:\n  pkms create-key --description 'backups'\n  \
        pkms create-key --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY\n  \
        pkms create-key --key-spec HMAC_256 --tags TagKey=team,TagValue=infra")]
    CreateKey {
        /// KeySpec.
        #[arg(long, default_value = "SYMMETRIC_DEFAULT", value_parser = kms_value_parser!(KeySpec))]
        key_spec: KeySpec,
        /// KeyUsage (default: the only usage the spec allows).
        #[arg(long, value_parser = kms_value_parser!(KeyUsage))]
        key_usage: Option<KeyUsage>,
        /// Description (up to 256 bytes).
        #[arg(long, default_value = "")]
        description: String,
        /// Tags: `TagKey=k,TagValue=v`, `k=v` or JSON; repeatable.
        #[arg(long, num_args = 1.., value_parser = parse_tags)]
        tags: Vec<TagsArg>,
        /// Beyond KMS: Sign and Decrypt need a button press on the token.
        #[arg(long)]
        user_presence_required: bool,
    },
    /// Show a key's metadata.
    #[command(after_help = "Example:\n  pkms describe-key --key-id alias/backup")]
    DescribeKey {
        /// Key id or alias.
        #[arg(long)]
        key_id: String,
    },
    /// List keys (all of them, unless --limit asks for one page).
    #[command(
        after_help = "Examples:\n  pkms list-keys\n  pkms list-keys --query 'Keys[].KeyId' --output text\n  \
        pkms list-keys --limit 10 --starting-token MARKER"
    )]
    ListKeys {
        /// Return one page of at most this many keys (with NextMarker if there are more).
        #[arg(long)]
        limit: Option<u16>,
        /// NextMarker of a previous page.
        #[arg(long, visible_alias = "marker")]
        starting_token: Option<String>,
    },
    /// Set a key's description.
    #[command(
        after_help = "Example:\n  pkms update-key-description --key-id KEY --description 'nightly backups'"
    )]
    UpdateKeyDescription {
        /// Key id or alias.
        #[arg(long)]
        key_id: String,
        /// The new description.
        #[arg(long)]
        description: String,
    },
}

/// The algorithms a key spec supports, as KMS lists them in KeyMetadata.
pub fn algorithms(spec: KeySpec) -> (&'static str, Vec<&'static str>) {
    match spec {
        KeySpec::SymmetricDefault => ("EncryptionAlgorithms", vec!["SYMMETRIC_DEFAULT"]),
        KeySpec::EccNistP256 => ("SigningAlgorithms", vec!["ECDSA_SHA_256"]),
        KeySpec::Hmac256 => ("MacAlgorithms", vec!["HMAC_SHA_256"]),
        KeySpec::Hmac384 => ("MacAlgorithms", vec!["HMAC_SHA_384"]),
        KeySpec::Hmac512 => ("MacAlgorithms", vec!["HMAC_SHA_512"]),
    }
}

/// KeyMetadata as KMS prints it, plus Pocket KMS's version and rotation fields.
pub fn metadata_json(m: &KeyMetadata) -> Value {
    let (alg_field, algs) = algorithms(m.key_spec);
    Obj::new()
        .field("KeyId", m.key_id.to_string())
        .field("CreationDate", date(m.creation_date))
        .field("Enabled", m.enabled)
        .field("Description", m.description.clone())
        .field("KeyUsage", m.key_usage.as_str())
        .field("KeyState", m.key_state.as_str())
        .opt("DeletionDate", m.deletion_date.map(date))
        .field("KeySpec", m.key_spec.as_str())
        .field(alg_field, algs)
        .opt("PendingDeletionWindowInDays", m.pending_deletion_window_in_days)
        .field("CurrentKeyMaterialId", m.current_key_material_id.to_string())
        .field("CurrentKeyVersion", m.current_key_version)
        .field("OldestKeyVersion", m.oldest_key_version)
        .field("KeyRotationEnabled", m.key_rotation_enabled)
        .opt("RotationPeriodInDays", m.rotation_period_in_days)
        .opt("NextRotationDate", m.next_rotation_date.map(date))
        .field("UserPresenceRequired", m.user_presence_required)
        .build()
}

/// Runs a key management command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::Info => {
            let info = ctx.raw_client()?.get_info()?; // GetInfo needs no PIN
            let v = Obj::new()
                .field("FirmwareVersion", info.firmware_version)
                .field("ProtocolVersion", info.protocol_version)
                .field("Board", info.board)
                .field(
                    "Platform",
                    match info.platform {
                        Platform::Emulated => "EMULATED",
                        Platform::Hardware => "HARDWARE",
                    },
                )
                .field("EntropySource", info.entropy_source)
                .field("KeyProtection", info.key_protection)
                .field("StorageTotalBytes", info.storage_total_bytes)
                .field("StorageFreeBytes", info.storage_free_bytes)
                .field("KeyCount", info.key_count)
                .field("TimeHighWaterMark", date(info.time_high_water_mark))
                .field("Initialized", info.initialized)
                .build();
            ctx.emit(v)
        }
        Commands::CreateKey { key_spec, key_usage, description, tags, user_presence_required } => {
            let params = CreateKeyParams {
                key_spec,
                key_usage,
                description,
                tags: merge_tags(&tags),
                user_presence_required,
            };
            let m = ctx.client()?.create_key(&params)?;
            ctx.emit(Obj::new().field("KeyMetadata", metadata_json(&m)).build())
        }
        Commands::DescribeKey { key_id } => {
            let m = ctx.client()?.describe_key(&key_id)?;
            ctx.emit(Obj::new().field("KeyMetadata", metadata_json(&m)).build())
        }
        Commands::ListKeys { limit, starting_token } => {
            let client = ctx.client()?;
            let (keys, next_marker, truncated) = if limit.is_some() || starting_token.is_some() {
                let page = client.list_keys(limit, starting_token.as_deref())?;
                (page.keys, page.next_marker, page.truncated)
            } else {
                (client.list_all_keys()?, None, false)
            };
            let keys: Vec<Value> =
                keys.iter().map(|k| Obj::new().field("KeyId", k.to_string()).build()).collect();
            ctx.emit(
                Obj::new()
                    .field("Keys", keys)
                    .opt("NextMarker", next_marker.filter(|_| truncated))
                    .field("Truncated", truncated)
                    .build(),
            )
        }
        Commands::UpdateKeyDescription { key_id, description } => {
            ctx.client()?.update_key_description(&key_id, &description)?;
            Ok(())
        }
    }
}
