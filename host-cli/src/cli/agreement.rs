//! derive-shared-secret, encapsulate, decapsulate, generate-data-key-pair,
//! generate-data-key-pair-without-plaintext.

use clap::Subcommand;
use pkms_protocol::limits::{MAX_CIPHERTEXT_BLOB, MAX_PEER_PUBLIC_KEY};
use pkms_protocol::{DataKeyPairSpec, EncapsulationAlgorithm, KeyAgreementAlgorithm};

use super::args::{blob_parser, kms_value_parser, merge_context, parse_context, Blob, ContextArg};
use super::{usage, Context};

/// Key agreement, key encapsulation and data key pair commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// ECDH between the newest version of a KEY_AGREEMENT key (ECC_NIST_P256, ECC_SECG_P256K1,
    /// ECC_NIST_P384) and a peer's public key (DER SubjectPublicKeyInfo on the same curve).
    #[command(
        after_help = "Example:\n  pkms derive-shared-secret --key-id alias/agree --key-agreement-algorithm ECDH \
        --public-key fileb://peer.der \\\n       --query SharedSecret --output text | base64 -d > secret.bin"
    )]
    DeriveSharedSecret {
        /// Key id or alias.
        #[arg(long)]
        key_id: String,
        /// ECDH.
        #[arg(long, default_value = "ECDH", value_parser = kms_value_parser!(KeyAgreementAlgorithm))]
        key_agreement_algorithm: KeyAgreementAlgorithm,
        /// The peer's DER SubjectPublicKeyInfo: fileb://PATH or base64.
        #[arg(long, value_parser = blob_parser(MAX_PEER_PUBLIC_KEY))]
        public_key: Blob,
    },
    /// A fresh shared secret and its ML-KEM ciphertext under an ML_KEM_* key's newest version.
    #[command(
        after_help = "Example:\n  pkms encapsulate --key-id alias/kem --encapsulation-algorithm ML_KEM"
    )]
    Encapsulate {
        /// Key id or alias.
        #[arg(long)]
        key_id: String,
        /// ML_KEM.
        #[arg(long, default_value = "ML_KEM", value_parser = kms_value_parser!(EncapsulationAlgorithm))]
        encapsulation_algorithm: EncapsulationAlgorithm,
    },
    /// The shared secret of an ML-KEM ciphertext (a ciphertext not made for the key gives
    /// ML-KEM's implicit-rejection secret, not an error).
    #[command(
        after_help = "Example:\n  pkms decapsulate --key-id alias/kem --encapsulation-algorithm ML_KEM \
        --shared-secret-ciphertext-blob fileb://ct.bin"
    )]
    Decapsulate {
        /// Key id or alias.
        #[arg(long)]
        key_id: String,
        /// ML_KEM.
        #[arg(long, default_value = "ML_KEM", value_parser = kms_value_parser!(EncapsulationAlgorithm))]
        encapsulation_algorithm: EncapsulationAlgorithm,
        /// The ciphertext: fileb://PATH or base64.
        #[arg(long, value_parser = blob_parser(MAX_CIPHERTEXT_BLOB))]
        shared_secret_ciphertext_blob: Blob,
        /// Key version to decapsulate with (default: newest).
        #[arg(long)]
        key_version: Option<u32>,
    },
    /// A fresh key pair: the PKCS#8 private key in plaintext and encrypted under a symmetric
    /// key, and the public key (DER SubjectPublicKeyInfo).
    #[command(
        after_help = "Example:\n  pkms generate-data-key-pair --key-id alias/app --key-pair-spec ECC_NIST_P256 \
        --encryption-context app=web"
    )]
    GenerateDataKeyPair {
        #[command(flatten)]
        args: DataKeyPairArgs,
    },
    /// As generate-data-key-pair, with the private key returned only encrypted.
    #[command(after_help = "Example:\n  pkms generate-data-key-pair-without-plaintext --key-id alias/app \
        --key-pair-spec ECC_NIST_EDWARDS25519")]
    GenerateDataKeyPairWithoutPlaintext {
        #[command(flatten)]
        args: DataKeyPairArgs,
    },
}

/// Arguments of generate-data-key-pair(-without-plaintext).
#[derive(Debug, clap::Args)]
pub struct DataKeyPairArgs {
    /// Key id or alias of a SYMMETRIC_DEFAULT key.
    #[arg(long)]
    key_id: String,
    /// ECC_NIST_P256, ECC_NIST_P384, ECC_SECG_P256K1, ECC_NIST_EDWARDS25519, ML_KEM_512/768/1024.
    #[arg(long, value_parser = kms_value_parser!(DataKeyPairSpec))]
    key_pair_spec: DataKeyPairSpec,
    /// KEY=VALUE (repeatable) or a JSON object.
    #[arg(long, value_parser = parse_context)]
    encryption_context: Vec<ContextArg>,
}

fn data_key_pair(args: DataKeyPairArgs, with_plaintext: bool, ctx: &mut Context) -> anyhow::Result<()> {
    let ec = merge_context(&args.encryption_context).map_err(usage)?;
    let pairs: Vec<(&str, &str)> = ec.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let key_id = ctx.key(&args.key_id)?;
    let out = ctx.client()?.generate_data_key_pair(&key_id, &pairs, args.key_pair_spec, with_plaintext)?;
    ctx.emit(&out)
}

/// Runs a key agreement, encapsulation or data key pair command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::DeriveSharedSecret { key_id, key_agreement_algorithm, public_key } => {
            let key_id = ctx.key(&key_id)?;
            let public_key = public_key.within(MAX_PEER_PUBLIC_KEY, "PublicKey")?;
            let out = ctx.client()?.derive_shared_secret(&key_id, key_agreement_algorithm, public_key)?;
            ctx.emit(&out)
        }
        Commands::Encapsulate { key_id, encapsulation_algorithm } => {
            let key_id = ctx.key(&key_id)?;
            let out = ctx.client()?.encapsulate(&key_id, encapsulation_algorithm)?;
            ctx.emit(&out)
        }
        Commands::Decapsulate {
            key_id,
            encapsulation_algorithm,
            shared_secret_ciphertext_blob,
            key_version,
        } => {
            let key_id = ctx.key(&key_id)?;
            let ct =
                shared_secret_ciphertext_blob.within(MAX_CIPHERTEXT_BLOB, "SharedSecretCiphertextBlob")?;
            let out = ctx.client()?.decapsulate(&key_id, ct, encapsulation_algorithm, key_version)?;
            ctx.emit(&out)
        }
        Commands::GenerateDataKeyPair { args } => data_key_pair(args, true, ctx),
        Commands::GenerateDataKeyPairWithoutPlaintext { args } => data_key_pair(args, false, ctx),
    }
}
