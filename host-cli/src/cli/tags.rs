//! tag-resource, untag-resource, list-resource-tags.

use clap::Subcommand;
use pkms_lib::model::ListResourceTagsOutput;

use super::args::{merge_tags, parse_tags, TagsArg};
use super::Context;

/// Tag commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Add or replace tags on a key (at most 50 per key, 1024 bytes of tags in all).
    #[command(
        after_help = "Example:\n  pkms tag-resource --key-id KEY --tags TagKey=team,TagValue=infra env=prod"
    )]
    TagResource {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
        /// `TagKey=k,TagValue=v`, `k=v` or JSON; several may follow one --tags.
        #[arg(long, required = true, num_args = 1.., value_parser = parse_tags)]
        tags: Vec<TagsArg>,
    },
    /// Remove tags from a key.
    #[command(after_help = "Example:\n  pkms untag-resource --key-id KEY --tag-keys team env")]
    UntagResource {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
        /// The tag keys to remove.
        #[arg(long, required = true, num_args = 1..)]
        tag_keys: Vec<String>,
    },
    /// List a key's tags.
    #[command(after_help = "Example:\n  pkms list-resource-tags --key-id KEY")]
    ListResourceTags {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
    },
}

/// Runs a tag command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::TagResource { key_id, tags } => {
            let key_id = ctx.key(&key_id)?;
            ctx.client()?.tag_resource(&key_id, &merge_tags(&tags))?;
            Ok(())
        }
        Commands::UntagResource { key_id, tag_keys } => {
            let key_id = ctx.key(&key_id)?;
            ctx.client()?.untag_resource(&key_id, &tag_keys)?;
            Ok(())
        }
        Commands::ListResourceTags { key_id } => {
            let key_id = ctx.key(&key_id)?;
            let tags = ctx.client()?.list_resource_tags(&key_id)?;
            ctx.emit_listing(&ListResourceTagsOutput::complete(tags), "Tags", None)
        }
    }
}
