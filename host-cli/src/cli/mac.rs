//! generate-mac, verify-mac.

use clap::Subcommand;
use pkms_protocol::MacAlgorithm;

use super::args::{blob_parser, kms_value_parser, Blob};
use super::Context;
use pkms_protocol::limits::{MAX_MAC, MAX_MESSAGE};

/// HMAC commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// HMAC a message (up to 4096 bytes) with the newest version of an HMAC key.
    #[command(
        after_help = "Example:\n  pkms generate-mac --key-id alias/hmac --message fileb://msg --mac-algorithm HMAC_SHA_256"
    )]
    GenerateMac {
        /// Key id or alias.
        #[arg(long)]
        key_id: String,
        /// fileb://PATH or base64.
        #[arg(long, value_parser = blob_parser(MAX_MESSAGE))]
        message: Blob,
        /// HMAC_SHA_256, HMAC_SHA_384 or HMAC_SHA_512 (must match the key spec).
        #[arg(long, value_parser = kms_value_parser!(MacAlgorithm))]
        mac_algorithm: MacAlgorithm,
    },
    /// Check a MAC on the token (constant-time); a wrong MAC exits non-zero
    /// (KMSInvalidMacException).
    #[command(after_help = "Example:\n  pkms verify-mac --key-id alias/hmac --message fileb://msg \
        --mac-algorithm HMAC_SHA_256 --mac fileb://msg.mac")]
    VerifyMac {
        /// Key id or alias.
        #[arg(long)]
        key_id: String,
        /// fileb://PATH or base64.
        #[arg(long, value_parser = blob_parser(MAX_MESSAGE))]
        message: Blob,
        /// The MAC algorithm.
        #[arg(long, value_parser = kms_value_parser!(MacAlgorithm))]
        mac_algorithm: MacAlgorithm,
        /// The MAC: fileb://PATH or base64.
        #[arg(long, value_parser = blob_parser(MAX_MAC))]
        mac: Blob,
        /// Key version to verify with (default: newest).
        #[arg(long)]
        key_version: Option<u32>,
    },
}

/// Runs an HMAC command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::GenerateMac { key_id, message, mac_algorithm } => {
            let key_id = ctx.key(&key_id)?;
            let message = message.within(MAX_MESSAGE, "Message")?;
            let out = ctx.client()?.generate_mac(&key_id, message, mac_algorithm)?;
            ctx.emit(&out)
        }
        Commands::VerifyMac { key_id, message, mac_algorithm, mac, key_version } => {
            let key_id = ctx.key(&key_id)?;
            let message = message.within(MAX_MESSAGE, "Message")?;
            let mac = mac.within(MAX_MAC, "Mac")?;
            let out = ctx.client()?.verify_mac(&key_id, message, mac_algorithm, mac, key_version)?;
            ctx.emit(&out)
        }
    }
}
