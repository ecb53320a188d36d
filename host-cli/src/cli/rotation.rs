//! enable-key-rotation, disable-key-rotation, get-key-rotation-status, rotate-key-on-demand,
//! list-key-rotations, retire-key-versions.

use clap::Subcommand;

use super::args::kms_value_parser;
use super::Context;
use pkms_lib::model::{IncludeKeyMaterial, RotationsPage, Tag};
use pkms_protocol::{KeyUsage, ALLOW_SIGNING_KEY_ROTATION_TAG};

/// Rotation commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Rotate a key automatically every N days (90-2560, default 365). The token has no clock:
    /// due rotations happen when a request brings the host's time past the due date.
    #[command(
        after_help = "Examples:\n  pkms enable-key-rotation --key-id KEY --rotation-period-in-days 90\n  \
        pkms enable-key-rotation --key-id SIGNING_KEY --allow-signing-key-rotation\n\n\
        A SIGN_VERIFY key is refused (UnsupportedOperationException, as in KMS) unless\n\
        --allow-signing-key-rotation is given: each rotation changes its public key."
    )]
    EnableKeyRotation {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
        /// Days between rotations.
        #[arg(long)]
        rotation_period_in_days: Option<u16>,
        /// Let a SIGN_VERIFY key rotate although every rotation changes its public key (public
        /// keys already handed out stop verifying new signatures). Tags the key
        /// pkms:AllowSigningKeyRotation=true, the setting the token checks.
        #[arg(long)]
        allow_signing_key_rotation: bool,
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
    #[command(after_help = "Examples:\n  pkms rotate-key-on-demand --key-id KEY\n  \
        pkms rotate-key-on-demand --key-id SIGNING_KEY --allow-signing-key-rotation")]
    RotateKeyOnDemand {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
        /// Let a SIGN_VERIFY key rotate although its public key changes (see
        /// enable-key-rotation).
        #[arg(long)]
        allow_signing_key_rotation: bool,
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
        /// NextMarker (or NextToken) of a previous listing: continue from there.
        #[arg(long, visible_alias = "marker")]
        starting_token: Option<String>,
        #[command(flatten)]
        paging: super::args::Paging,
    },
    /// Beyond KMS: erase every version below N (after re-encrypting their data with
    /// re-encrypt); blobs of those versions can no longer be decrypted, and the flash is
    /// reclaimed.
    #[command(after_help = "Example:\n  pkms retire-key-versions --key-id KEY --below-version 3 --yes\n\n\
        Without --yes, pkms lists the versions it would erase and asks on the terminal; with no\n\
        terminal it refuses (exit 252) and erases nothing.")]
    RetireKeyVersions {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
        /// Versions below this one are erased (the newest can never be).
        #[arg(long)]
        below_version: u32,
        /// Confirm: the material of those versions is erased for good.
        #[arg(long)]
        yes: bool,
    },
}

/// `--allow-signing-key-rotation`: on a SIGN_VERIFY key, sets the tag the token checks
/// ([`ALLOW_SIGNING_KEY_ROTATION_TAG`]) and says what it means; other keys rotate anyway.
fn opt_in(ctx: &mut Context, key_id: &str) -> anyhow::Result<()> {
    let client = ctx.client()?;
    if client.describe_key(key_id)?.key_usage != KeyUsage::SignVerify {
        return Ok(());
    }
    let tag = Tag { tag_key: ALLOW_SIGNING_KEY_ROTATION_TAG.to_owned(), tag_value: "true".to_owned() };
    client.tag_resource(key_id, &[tag])?;
    if !ctx.quiet {
        eprintln!(
            "Signing key {key_id} may now rotate (tag {ALLOW_SIGNING_KEY_ROTATION_TAG}=true): after a rotation \
             it signs under a new public key; publish it (`pkms get-public-key --key-id {key_id} --output pem`)."
        );
    }
    Ok(())
}

/// Runs a rotation command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::EnableKeyRotation { key_id, rotation_period_in_days, allow_signing_key_rotation } => {
            let key_id = ctx.key(&key_id)?;
            if allow_signing_key_rotation {
                opt_in(ctx, &key_id)?;
            }
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
        Commands::RotateKeyOnDemand { key_id, allow_signing_key_rotation } => {
            let key_id = ctx.key(&key_id)?;
            if allow_signing_key_rotation {
                opt_in(ctx, &key_id)?;
            }
            let rotated = ctx.client()?.rotate_key_on_demand(&key_id)?;
            ctx.emit(&rotated)?;
            super::backup::remind(ctx);
            Ok(())
        }
        Commands::ListKeyRotations { key_id, include_key_material, limit, starting_token, paging } => {
            let key_id = ctx.key(&key_id)?;
            let client = ctx.client()?;
            if limit.is_some() {
                let page = client.list_key_rotations(&key_id, limit, starting_token.as_deref())?;
                let page = RotationsPage { next_marker: page.next_marker.filter(|_| page.truncated), ..page };
                return ctx.emit(&page.including(include_key_material));
            }
            let all = super::args::collect_pages(&paging, starting_token, |l, m| {
                let page = client.list_key_rotations(&key_id, l, m)?;
                let next = page.next_marker.clone().filter(|_| page.truncated);
                Ok((page.including(include_key_material).rotations, next))
            })?;
            let page = RotationsPage {
                rotations: all.items,
                truncated: all.next.is_some(),
                next_marker: all.next.clone(),
            };
            ctx.emit_listing(&page, "Rotations", all.next)
        }
        Commands::RetireKeyVersions { key_id, below_version, yes } => {
            let key_id = ctx.key(&key_id)?;
            let what = format!(
                "retire-key-versions erases the key material of every version of {key_id} below {below_version}: \
                 data encrypted (or signatures made) under those versions can never be decrypted \
                 (or verified on the token) again"
            );
            if !yes {
                use std::io::IsTerminal;
                if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
                    return Err(super::usage(format!("{what}. Add --yes to confirm.")));
                }
                let doomed: Vec<String> = ctx
                    .client()?
                    .list_all_key_rotations(&key_id)?
                    .iter()
                    .filter(|r| r.key_version < below_version)
                    .map(|r| format!("version {} ({})", r.key_version, r.key_material_id))
                    .collect();
                if doomed.is_empty() {
                    eprintln!("No version of {key_id} is below {below_version}: nothing to erase.");
                } else {
                    eprintln!("{what}.\nTo be erased: {}.", doomed.join(", "));
                    eprint!("Type yes to erase them: ");
                    let mut answer = String::new();
                    std::io::stdin().read_line(&mut answer)?;
                    if answer.trim() != "yes" {
                        return Err(super::usage("retire-key-versions: not confirmed, nothing erased"));
                    }
                }
            }
            let retired = ctx.client()?.retire_key_versions(&key_id, below_version)?;
            ctx.emit(&retired)
        }
    }
}
