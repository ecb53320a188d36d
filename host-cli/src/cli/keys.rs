//! info, create-key, describe-key, list-keys, update-key-description.

use clap::Subcommand;
use pkms_protocol::{KeySpec, KeyUsage, SelfTests};

use super::args::{kms_value_parser, merge_tags, parse_tags, TagsArg};
use super::completion::Update;
use super::Context;
use pkms_lib::model::{CreateKeyParams, DescribeKeyOutput, KeysPage};

/// What `pkms info` prints: the token's GetInfo, its power-on self-tests (`Passed` or the name
/// of the test that failed), the fingerprint of its device key (pinned in PKMS_HOME; compare it
/// with what `pkms info` shows on a host you trust), and how this command reached it.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct InfoOutput<'a> {
    #[serde(flatten)]
    info: &'a pkms_lib::model::TokenInfo,
    self_tests: &'static str,
    device_key_fingerprint: String,
    session: &'static str,
    /// Which token answered (`the QEMU token of HOME`, `the USB token with serial number …`).
    token: String,
    /// Entries the audit log holds now.
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_log_entries: Option<u64>,
    /// Entries it holds at most.
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_log_capacity: Option<u32>,
    /// `OVERWRITE` (the oldest entries are dropped when full) or `REFUSE` (operations are refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_log_when_full: Option<&'static str>,
}

/// Entries held by a log whose checkpoint is `c`.
pub fn audit_entries(c: &pkms_lib::model::audit::AuditCheckpoint) -> u64 {
    if c.sequence == 0 || c.sequence < c.first_sequence {
        0
    } else {
        c.sequence - c.first_sequence + 1
    }
}

/// `Passed`, or the failed test's name.
fn self_tests_name(outcome: SelfTests) -> &'static str {
    match outcome {
        SelfTests::Passed => "Passed",
        SelfTests::Failed(test) => test.name(),
    }
}

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
        /// NextMarker (or NextToken) of a previous listing: continue from there.
        #[arg(long, visible_alias = "marker")]
        starting_token: Option<String>,
        #[command(flatten)]
        paging: super::args::Paging,
    },
    /// Set a key's description.
    #[command(
        after_help = "Example:\n  pkms update-key-description --key-id KEY --description 'nightly backups'"
    )]
    UpdateKeyDescription {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
        /// The new description.
        #[arg(long)]
        description: String,
    },
}

/// Runs a key management command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::Info => {
            // GetInfo and GetSelfTests need no PIN.
            let (info, self_tests) = match ctx.raw_client() {
                Ok(client) => (client.get_info()?, client.get_self_tests()?),
                Err(refused) => {
                    // A token whose self-tests failed opens no session: it still answers these
                    // two in the clear, and that is worth showing.
                    let mut c = ctx.connect_unsecured()?;
                    match c.get_self_tests() {
                        Ok(failed @ SelfTests::Failed(_)) => {
                            let info = c.get_info()?;
                            let token = ctx.token_description();
                            return ctx.emit_labelled(&InfoOutput {
                                info: &info,
                                self_tests: self_tests_name(failed),
                                device_key_fingerprint: String::new(),
                                session: "None: the token's self-tests failed",
                                token,
                                audit_log_entries: None,
                                audit_log_capacity: None,
                                audit_log_when_full: None,
                            });
                        }
                        Ok(SelfTests::Passed) | Err(_) => return Err(refused),
                    }
                }
            };
            // The audit log's fill level: an open token keeps no log; an initialised one shows
            // it to a logged-in principal (when a PIN is given; info itself needs none).
            let checkpoint = if !info.initialized {
                None
            } else if ctx.login().given_pin()?.is_some() {
                Some(ctx.client()?.get_audit_checkpoint()?)
            } else {
                None
            };
            let fingerprint = ctx.device_key().map(|k| k.fingerprint()).unwrap_or_default();
            ctx.emit_labelled(&InfoOutput {
                info: &info,
                self_tests: self_tests_name(self_tests),
                device_key_fingerprint: fingerprint,
                session: "Encrypted",
                token: ctx.token_description(),
                audit_log_entries: checkpoint.as_ref().map(audit_entries),
                audit_log_capacity: checkpoint.as_ref().map(|c| c.capacity),
                audit_log_when_full: checkpoint
                    .as_ref()
                    .map(|c| pkms_lib::model::audit::audit_full_name(c.audit_full)),
            })
        }
        Commands::CreateKey { key_spec, key_usage, description, tags, user_presence_required } => {
            let params = CreateKeyParams {
                key_spec,
                key_usage,
                description,
                tags: merge_tags(&tags),
                user_presence_required,
            };
            let key_metadata = ctx.client()?.create_key(&params)?;
            super::completion::record(ctx, Update::Keys(vec![key_metadata.key_id.to_string()]));
            ctx.emit(&DescribeKeyOutput { key_metadata })?;
            super::backup::remind(ctx);
            Ok(())
        }
        Commands::DescribeKey { key_id } => {
            let key_id = ctx.key(&key_id)?;
            let key_metadata = ctx.client()?.describe_key(&key_id)?;
            ctx.emit(&DescribeKeyOutput { key_metadata })
        }
        Commands::ListKeys { limit, starting_token, paging } => {
            let client = ctx.client()?;
            if limit.is_some() {
                let page = client.list_keys(limit, starting_token.as_deref())?;
                super::completion::record(
                    ctx,
                    Update::Keys(page.keys.iter().map(ToString::to_string).collect()),
                );
                return ctx
                    .emit(&KeysPage { next_marker: page.next_marker.filter(|_| page.truncated), ..page });
            }
            let from_start = starting_token.is_none();
            let all = super::args::collect_pages(&paging, starting_token, |l, m| {
                let page = client.list_keys(l, m)?;
                Ok((page.keys, page.next_marker.filter(|_| page.truncated)))
            })?;
            let seen = all.items.iter().map(ToString::to_string).collect();
            super::completion::record(
                ctx,
                if from_start && all.next.is_none() { Update::AllKeys(seen) } else { Update::Keys(seen) },
            );
            let page =
                KeysPage { keys: all.items, truncated: all.next.is_some(), next_marker: all.next.clone() };
            ctx.emit_listing(&page, "Keys", all.next)
        }
        Commands::UpdateKeyDescription { key_id, description } => {
            let key_id = ctx.key(&key_id)?;
            ctx.client()?.update_key_description(&key_id, &description)?;
            Ok(())
        }
    }
}
