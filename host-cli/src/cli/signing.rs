//! sign, verify, get-public-key.

use clap::Subcommand;
use pkms_protocol::{MessageType, SigningAlgorithm};

use super::args::{blob_parser, kms_value_parser, Blob};
use super::output::{pem, OutputFormat};
use super::sigfiles::{print_public_key, Kind};
use super::Context;
use pkms_protocol::limits::{MAX_MESSAGE, MAX_SIGNATURE};

/// Signing commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Sign a message (RAW, up to 4096 bytes), its digest (DIGEST) or ML-DSA's μ (EXTERNAL_MU)
    /// with the newest version of a SIGN_VERIFY key: ECDSA_SHA_256 (ECC_NIST_P256,
    /// ECC_SECG_P256K1), ECDSA_SHA_384 (ECC_NIST_P384), ED25519_SHA_512 / ED25519_PH_SHA_512
    /// (ECC_NIST_EDWARDS25519), ML_DSA_SHAKE_256 (ML_DSA_44/65/87). ECDSA signatures are DER
    /// (low-S).
    #[command(after_help = "Example:\n  pkms sign --key-id alias/release --message fileb://artifact.tar \
        --message-type RAW \\\n       --signing-algorithm ECDSA_SHA_256 --query Signature --output text | base64 -d > sig.der\n  \
        openssl dgst -sha256 -verify pub.pem -signature sig.der artifact.tar")]
    Sign {
        /// Key id or alias.
        #[arg(long)]
        key_id: String,
        /// fileb://PATH or base64.
        #[arg(long, value_parser = blob_parser(MAX_MESSAGE))]
        message: Blob,
        /// RAW (the token hashes), DIGEST (the algorithm's digest) or EXTERNAL_MU (ML-DSA).
        #[arg(long, default_value = "RAW", value_parser = kms_value_parser!(MessageType))]
        message_type: MessageType,
        /// Signing algorithm.
        #[arg(long, default_value = "ECDSA_SHA_256", value_parser = kms_value_parser!(SigningAlgorithm))]
        signing_algorithm: SigningAlgorithm,
    },
    /// Verify a signature on the token; an invalid signature exits non-zero
    /// (KMSInvalidSignatureException).
    #[command(after_help = "Example:\n  pkms verify --key-id alias/release --message fileb://artifact.tar \
        --signature fileb://sig.der \\\n       --signing-algorithm ECDSA_SHA_256")]
    Verify {
        /// Key id or alias.
        #[arg(long)]
        key_id: String,
        /// fileb://PATH or base64.
        #[arg(long, value_parser = blob_parser(MAX_MESSAGE))]
        message: Blob,
        /// RAW, DIGEST or EXTERNAL_MU.
        #[arg(long, default_value = "RAW", value_parser = kms_value_parser!(MessageType))]
        message_type: MessageType,
        /// The signature: fileb://PATH or base64.
        #[arg(long, value_parser = blob_parser(MAX_SIGNATURE))]
        signature: Blob,
        /// Signing algorithm.
        #[arg(long, default_value = "ECDSA_SHA_256", value_parser = kms_value_parser!(SigningAlgorithm))]
        signing_algorithm: SigningAlgorithm,
        /// Key version to verify with (default: newest).
        #[arg(long)]
        key_version: Option<u32>,
    },
    /// The DER SubjectPublicKeyInfo of an asymmetric key (`--output pem` for PEM, `--output ssh`
    /// for an authorized_keys line, `--output minisign` for a minisign public key).
    #[command(
        after_help = "Examples:\n  pkms get-public-key --key-id alias/release --output pem > pub.pem\n  \
        pkms get-public-key --key-id alias/release --key-version 1\n  \
        pkms get-public-key --key-id alias/ssh --output ssh >> ~/.ssh/authorized_keys\n  \
        pkms get-public-key --key-id alias/ed --output minisign > release.pub"
    )]
    GetPublicKey {
        /// Key id or alias.
        #[arg(long)]
        key_id: String,
        /// Key version (default: newest).
        #[arg(long)]
        key_version: Option<u32>,
    },
}

/// Runs a signing command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::Sign { key_id, message, message_type, signing_algorithm } => {
            let key_id = ctx.key(&key_id)?;
            let message = message.within(MAX_MESSAGE, "Message")?;
            let out = ctx.client()?.sign(&key_id, message, message_type, signing_algorithm)?;
            ctx.emit(&out)
        }
        Commands::Verify { key_id, message, message_type, signature, signing_algorithm, key_version } => {
            let key_id = ctx.key(&key_id)?;
            let message = message.within(MAX_MESSAGE, "Message")?;
            let signature = signature.within(MAX_SIGNATURE, "Signature")?;
            let out = ctx.client()?.verify(
                &key_id,
                message,
                message_type,
                signature,
                signing_algorithm,
                key_version,
            )?;
            ctx.emit(&out)
        }
        Commands::GetPublicKey { key_id, key_version } => {
            let key_id = ctx.key(&key_id)?;
            match ctx.output {
                OutputFormat::Ssh => return print_public_key(ctx, &key_id, key_version, Kind::Ssh),
                OutputFormat::Minisign => return print_public_key(ctx, &key_id, key_version, Kind::Minisign),
                OutputFormat::Json | OutputFormat::Text | OutputFormat::Table | OutputFormat::Pem => {}
            }
            let out = ctx.client()?.get_public_key(&key_id, key_version)?;
            if ctx.output == OutputFormat::Pem {
                return ctx.emit_raw(&pem("PUBLIC KEY", &out.public_key));
            }
            ctx.emit(&out)
        }
    }
}
