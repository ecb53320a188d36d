//! enable-key, disable-key, schedule-key-deletion, cancel-key-deletion.

use clap::Subcommand;
use pkms_lib::model::DeletionCancelled;

use super::Context;

/// Key state commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Make a disabled key usable again.
    #[command(after_help = "Example:\n  pkms enable-key --key-id KEY")]
    EnableKey {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
    },
    /// Make a key refuse every cryptographic operation (DisabledException) until enabled.
    #[command(after_help = "Example:\n  pkms disable-key --key-id KEY")]
    DisableKey {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
    },
    /// Delete a key and all its versions after a waiting period (7-30 days, default 30); it
    /// is unusable meanwhile, and cancel-key-deletion brings it back (disabled).
    #[command(after_help = "Example:\n  pkms schedule-key-deletion --key-id KEY --pending-window-in-days 7")]
    ScheduleKeyDeletion {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
        /// Days before the key is erased.
        #[arg(long)]
        pending_window_in_days: Option<u16>,
    },
    /// Stop a scheduled deletion; the key comes back Disabled.
    #[command(
        after_help = "Example:\n  pkms cancel-key-deletion --key-id KEY && pkms enable-key --key-id KEY"
    )]
    CancelKeyDeletion {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
    },
}

/// Runs a key state command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::EnableKey { key_id } => {
            let key_id = ctx.key(&key_id)?;
            ctx.client()?.enable_key(&key_id)?;
            Ok(())
        }
        Commands::DisableKey { key_id } => {
            let key_id = ctx.key(&key_id)?;
            ctx.client()?.disable_key(&key_id)?;
            Ok(())
        }
        Commands::ScheduleKeyDeletion { key_id, pending_window_in_days } => {
            let key_id = ctx.key(&key_id)?;
            let scheduled = ctx.client()?.schedule_key_deletion(&key_id, pending_window_in_days)?;
            ctx.emit(&scheduled)
        }
        Commands::CancelKeyDeletion { key_id } => {
            let key_id = ctx.key(&key_id)?;
            let key_id = ctx.client()?.cancel_key_deletion(&key_id)?;
            ctx.emit(&DeletionCancelled { key_id })
        }
    }
}
