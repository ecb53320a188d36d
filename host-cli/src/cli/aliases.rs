//! create-alias, update-alias, delete-alias, list-aliases.

use clap::Subcommand;
use pkms_lib::model::AliasesPage;

use super::completion::{self, Update};
use super::Context;

/// Alias commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Give a key a friendly name (`alias/…`); the --key-id of encrypt, decrypt, sign, describe-key
    /// and the other cryptographic commands accepts it (as in KMS).
    #[command(after_help = "Example:\n  pkms create-alias --alias-name alias/backup --target-key-id KEY")]
    CreateAlias {
        /// `alias/` followed by letters, digits, `/_-:` (not `alias/aws/…`).
        #[arg(long)]
        alias_name: String,
        /// The key id or key ARN (not an alias).
        #[arg(long)]
        target_key_id: String,
    },
    /// Point an alias at another key.
    #[command(after_help = "Example:\n  pkms update-alias --alias-name alias/backup --target-key-id NEWKEY")]
    UpdateAlias {
        /// The alias.
        #[arg(long)]
        alias_name: String,
        /// The new key id or key ARN (not an alias).
        #[arg(long)]
        target_key_id: String,
    },
    /// Delete an alias (the key stays).
    #[command(after_help = "Example:\n  pkms delete-alias --alias-name alias/backup")]
    DeleteAlias {
        /// The alias.
        #[arg(long)]
        alias_name: String,
    },
    /// List aliases (all of them, or of one key), all pages unless --limit asks for one.
    #[command(
        after_help = "Examples:\n  pkms list-aliases\n  pkms list-aliases --key-id KEY --query 'Aliases[].AliasName'"
    )]
    ListAliases {
        /// Only the aliases of this key (key id or key ARN).
        #[arg(long)]
        key_id: Option<String>,
        /// One page of at most this many aliases.
        #[arg(long)]
        limit: Option<u16>,
        /// NextMarker (or NextToken) of a previous listing: continue from there.
        #[arg(long, visible_alias = "marker")]
        starting_token: Option<String>,
        #[command(flatten)]
        paging: super::args::Paging,
    },
}

/// Runs an alias command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::CreateAlias { alias_name, target_key_id } => {
            let target_key_id = ctx.key(&target_key_id)?;
            ctx.client()?.create_alias(&alias_name, &target_key_id)?;
            completion::record(ctx, Update::Aliases(vec![alias_name]));
            Ok(())
        }
        Commands::UpdateAlias { alias_name, target_key_id } => {
            let target_key_id = ctx.key(&target_key_id)?;
            ctx.client()?.update_alias(&alias_name, &target_key_id)?;
            Ok(())
        }
        Commands::DeleteAlias { alias_name } => {
            ctx.client()?.delete_alias(&alias_name)?;
            completion::record(ctx, Update::RemoveAlias(alias_name));
            Ok(())
        }
        Commands::ListAliases { key_id, limit, starting_token, paging } => {
            let key_id = ctx.key_opt(key_id.as_deref())?;
            let client = ctx.client()?;
            if limit.is_some() {
                let page = client.list_aliases(key_id.as_deref(), limit, starting_token.as_deref())?;
                completion::record(
                    ctx,
                    Update::Aliases(page.aliases.iter().map(|a| a.alias_name.clone()).collect()),
                );
                return ctx
                    .emit(&AliasesPage { next_marker: page.next_marker.filter(|_| page.truncated), ..page });
            }
            let complete = starting_token.is_none() && key_id.is_none();
            let all = super::args::collect_pages(&paging, starting_token, |l, m| {
                let page = client.list_aliases(key_id.as_deref(), l, m)?;
                Ok((page.aliases, page.next_marker.filter(|_| page.truncated)))
            })?;
            let seen = all.items.iter().map(|a| a.alias_name.clone()).collect();
            completion::record(
                ctx,
                if complete && all.next.is_none() { Update::AllAliases(seen) } else { Update::Aliases(seen) },
            );
            let page = AliasesPage {
                aliases: all.items,
                truncated: all.next.is_some(),
                next_marker: all.next.clone(),
            };
            ctx.emit_listing(&page, "Aliases", all.next)
        }
    }
}
