//! info, create-key, describe-key, list-keys, update-key-description.

use clap::Subcommand;
use pkms_protocol::{KeySpec, KeyUsage, SelfTests};

use super::args::{kms_value_parser, merge_tags, parse_tags, TagsArg};
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
        /// NextMarker of a previous page.
        #[arg(long, visible_alias = "marker")]
        starting_token: Option<String>,
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
                            return ctx.emit(&InfoOutput {
                                info: &info,
                                self_tests: self_tests_name(failed),
                                device_key_fingerprint: String::new(),
                                session: "None: the token's self-tests failed",
                            });
                        }
                        Ok(SelfTests::Passed) | Err(_) => return Err(refused),
                    }
                }
            };
            let fingerprint = ctx.device_key().map(|k| k.fingerprint()).unwrap_or_default();
            ctx.emit(&InfoOutput {
                info: &info,
                self_tests: self_tests_name(self_tests),
                device_key_fingerprint: fingerprint,
                session: "Encrypted",
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
            ctx.emit(&DescribeKeyOutput { key_metadata })?;
            super::backup::remind(ctx);
            Ok(())
        }
        Commands::DescribeKey { key_id } => {
            let key_id = ctx.key(&key_id)?;
            let key_metadata = ctx.client()?.describe_key(&key_id)?;
            ctx.emit(&DescribeKeyOutput { key_metadata })
        }
        Commands::ListKeys { limit, starting_token } => {
            let client = ctx.client()?;
            let page = if limit.is_some() || starting_token.is_some() {
                let page = client.list_keys(limit, starting_token.as_deref())?;
                KeysPage { next_marker: page.next_marker.filter(|_| page.truncated), ..page }
            } else {
                KeysPage { keys: client.list_all_keys()?, next_marker: None, truncated: false }
            };
            ctx.emit(&page)
        }
        Commands::UpdateKeyDescription { key_id, description } => {
            let key_id = ctx.key(&key_id)?;
            ctx.client()?.update_key_description(&key_id, &description)?;
            Ok(())
        }
    }
}
