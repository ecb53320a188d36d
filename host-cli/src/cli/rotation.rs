//! enable-key-rotation, disable-key-rotation, get-key-rotation-status, rotate-key-on-demand,
//! list-key-rotations, retire-key-versions.

use clap::Subcommand;

use super::args::kms_value_parser;
use super::Context;
use pkms_lib::model::{IncludeKeyMaterial, RotationsPage};

/// Rotation commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Rotate a key automatically every N days (90-2560, default 365). The token has no clock:
    /// due rotations happen when a request brings the host's time past the due date.
    #[command(after_help = "Example:\n  pkms enable-key-rotation --key-id KEY --rotation-period-in-days 90")]
    EnableKeyRotation {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
        /// Days between rotations.
        #[arg(long)]
        rotation_period_in_days: Option<u16>,
    },
    /// Stop automatic rotation.
    #[command(after_help = "Example:\n  pkms disable-key-rotation --key-id KEY")]
    DisableKeyRotation {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
    },
    /// Show whether automatic rotation is on, its period and the next rotation date.
    #[command(after_help = "Example:\n  pkms get-key-rotation-status --key-id KEY")]
    GetKeyRotationStatus {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
    },
    /// Add a new key version now; older versions keep decrypting.
    #[command(after_help = "Example:\n  pkms rotate-key-on-demand --key-id KEY")]
    RotateKeyOnDemand {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
    },
    /// List a key's rotations (oldest first): the versions rotations made, and with
    /// --include-key-material ALL_KEY_MATERIAL the one the key was created with too; all pages
    /// unless --limit asks for one.
    #[command(
        after_help = "Examples:\n  pkms list-key-rotations --key-id KEY --query 'Rotations[].KeyVersion'\n  \
        pkms list-key-rotations --key-id KEY --include-key-material ALL_KEY_MATERIAL"
    )]
    ListKeyRotations {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
        /// ROTATIONS_ONLY (default, as in KMS): leave out the original key material;
        /// ALL_KEY_MATERIAL: list it too.
        #[arg(long, default_value = "ROTATIONS_ONLY", value_parser = kms_value_parser!(IncludeKeyMaterial))]
        include_key_material: IncludeKeyMaterial,
        /// One page of at most this many versions.
        #[arg(long)]
        limit: Option<u16>,
        /// NextMarker of a previous page.
        #[arg(long, visible_alias = "marker")]
        starting_token: Option<String>,
    },
    /// Beyond KMS: erase every version below N (after re-encrypting their data with
    /// re-encrypt); blobs of those versions can no longer be decrypted, and the flash is
    /// reclaimed.
    #[command(after_help = "Example:\n  pkms retire-key-versions --key-id KEY --below-version 3")]
    RetireKeyVersions {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
        /// Versions below this one are erased (the newest can never be).
        #[arg(long)]
        below_version: u32,
    },
}

/// Runs a rotation command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::EnableKeyRotation { key_id, rotation_period_in_days } => {
            let key_id = ctx.key(&key_id)?;
            ctx.client()?.enable_key_rotation(&key_id, rotation_period_in_days)?;
            Ok(())
        }
        Commands::DisableKeyRotation { key_id } => {
            let key_id = ctx.key(&key_id)?;
            ctx.client()?.disable_key_rotation(&key_id)?;
            Ok(())
        }
        Commands::GetKeyRotationStatus { key_id } => {
            let key_id = ctx.key(&key_id)?;
            let status = ctx.client()?.get_key_rotation_status(&key_id)?;
            ctx.emit(&status)
        }
        Commands::RotateKeyOnDemand { key_id } => {
            let key_id = ctx.key(&key_id)?;
            let rotated = ctx.client()?.rotate_key_on_demand(&key_id)?;
            ctx.emit(&rotated)?;
            super::backup::remind(ctx);
            Ok(())
        }
        Commands::ListKeyRotations { key_id, include_key_material, limit, starting_token } => {
            let key_id = ctx.key(&key_id)?;
            let client = ctx.client()?;
            let page = if limit.is_some() || starting_token.is_some() {
                let page = client.list_key_rotations(&key_id, limit, starting_token.as_deref())?;
                RotationsPage { next_marker: page.next_marker.filter(|_| page.truncated), ..page }
            } else {
                RotationsPage {
                    rotations: client.list_all_key_rotations(&key_id)?,
                    next_marker: None,
                    truncated: false,
                }
            };
            ctx.emit(&page.including(include_key_material))
        }
        Commands::RetireKeyVersions { key_id, below_version } => {
            let key_id = ctx.key(&key_id)?;
            let retired = ctx.client()?.retire_key_versions(&key_id, below_version)?;
            ctx.emit(&retired)
        }
    }
}
