//! encrypt, decrypt, re-encrypt, generate-data-key, generate-data-key-without-plaintext,
//! generate-random.

use clap::Subcommand;
use pkms_protocol::limits::{MAX_CIPHERTEXT_BLOB, MAX_PLAINTEXT};
use pkms_protocol::DataKeySpec;

use super::args::{blob_parser, kms_value_parser, merge_context, parse_context, Blob, ContextArg};
use super::{usage, Context};
use pkms_lib::model::{DataKeySize, GenerateRandomOutput};

/// Symmetric cryptography commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Encrypt up to 4096 bytes under a key's newest version.
    #[command(after_help = "Examples:\n  pkms encrypt --key-id alias/app --plaintext fileb://secret.txt \
        --encryption-context app=web\n  pkms encrypt --key-id KEY --plaintext aGVsbG8= --query CiphertextBlob --output text\n\n\
        For more than 4096 bytes use envelope encryption: pkms encrypt-file.")]
    Encrypt {
        /// Key id or alias.
        #[arg(long)]
        key_id: String,
        /// The data: fileb://PATH (raw bytes) or base64.
        #[arg(long, value_parser = blob_parser(MAX_PLAINTEXT))]
        plaintext: Blob,
        /// KEY=VALUE (repeatable), k1=v1,k2=v2 or a JSON object: bound to the ciphertext, needed to decrypt.
        #[arg(long, value_parser = parse_context)]
        encryption_context: Vec<ContextArg>,
    },
    /// Decrypt a ciphertext blob (the blob names its key and version).
    #[command(
        after_help = "Example:\n  pkms decrypt --ciphertext-blob fileb://secret.blob --encryption-context app=web \
        \\\n       --query Plaintext --output text | base64 -d"
    )]
    Decrypt {
        /// The blob: fileb://PATH or base64.
        #[arg(long, value_parser = blob_parser(MAX_CIPHERTEXT_BLOB))]
        ciphertext_blob: Blob,
        /// The encryption context given at encryption (pairs in any order).
        #[arg(long, value_parser = parse_context)]
        encryption_context: Vec<ContextArg>,
        /// Refuse unless the blob was made under this key (IncorrectKeyException).
        #[arg(long)]
        key_id: Option<String>,
    },
    /// Decrypt and encrypt again under another key or context, inside the token.
    #[command(
        after_help = "Example:\n  pkms re-encrypt --ciphertext-blob fileb://old.blob --source-encryption-context t=1 \
        \\\n       --destination-key-id alias/new --destination-encryption-context t=2"
    )]
    ReEncrypt {
        /// The blob: fileb://PATH or base64.
        #[arg(long, value_parser = blob_parser(MAX_CIPHERTEXT_BLOB))]
        ciphertext_blob: Blob,
        /// The blob's encryption context.
        #[arg(long, value_parser = parse_context)]
        source_encryption_context: Vec<ContextArg>,
        /// Refuse unless the blob was made under this key.
        #[arg(long)]
        source_key_id: Option<String>,
        /// Key to encrypt under (its newest version).
        #[arg(long)]
        destination_key_id: String,
        /// Encryption context of the new blob.
        #[arg(long, value_parser = parse_context)]
        destination_encryption_context: Vec<ContextArg>,
    },
    /// Make a data key: in plaintext and encrypted under a KMS key.
    #[command(after_help = "Example:\n  pkms generate-data-key --key-id alias/app --key-spec AES_256")]
    GenerateDataKey {
        #[command(flatten)]
        args: DataKeyArgs,
    },
    /// Make a data key, returned only encrypted.
    #[command(
        after_help = "Example:\n  pkms generate-data-key-without-plaintext --key-id alias/app --number-of-bytes 64"
    )]
    GenerateDataKeyWithoutPlaintext {
        #[command(flatten)]
        args: DataKeyArgs,
    },
    /// Random bytes from the token's RNG (1-1024).
    #[command(
        after_help = "Example:\n  pkms generate-random --number-of-bytes 32 --query Plaintext --output text"
    )]
    GenerateRandom {
        /// How many bytes.
        #[arg(long)]
        number_of_bytes: u16,
    },
}

/// Arguments of generate-data-key(-without-plaintext).
#[derive(Debug, clap::Args)]
pub struct DataKeyArgs {
    /// Key id or alias.
    #[arg(long)]
    key_id: String,
    /// AES_256 or AES_128. KMS needs this or --number-of-bytes.
    #[arg(long, value_parser = kms_value_parser!(DataKeySpec), conflicts_with = "number_of_bytes")]
    key_spec: Option<DataKeySpec>,
    /// Length of the data key in bytes (1-1024).
    #[arg(long)]
    number_of_bytes: Option<u16>,
    /// KEY=VALUE (repeatable) or a JSON object.
    #[arg(long, value_parser = parse_context)]
    encryption_context: Vec<ContextArg>,
}

impl DataKeyArgs {
    /// The size asked for; as KMS, neither --key-spec nor --number-of-bytes is a
    /// ValidationException (no silent default).
    fn size(&self) -> anyhow::Result<DataKeySize> {
        match (self.key_spec, self.number_of_bytes) {
            (_, Some(n)) => Ok(DataKeySize::Bytes(n)),
            (Some(s), None) => Ok(DataKeySize::Spec(s)),
            (None, None) => Err(usage(
                "give --key-spec AES_256 (or AES_128) or --number-of-bytes N: KMS needs one of them",
            )),
        }
    }
}

/// Checks the plaintext length before anything is sent.
pub fn check_plaintext_len(len: usize) -> anyhow::Result<()> {
    if len > MAX_PLAINTEXT {
        // A file is read only up to one byte past the limit: `len` is a lower bound.
        return Err(usage(format!(
            "Plaintext is more than {MAX_PLAINTEXT} bytes ({len} read); Encrypt takes at most \
             {MAX_PLAINTEXT} bytes (the KMS limit). For larger data use envelope encryption: `pkms encrypt-file`."
        )));
    }
    if len == 0 {
        return Err(usage("Plaintext is empty; Encrypt takes 1 to 4096 bytes."));
    }
    Ok(())
}

fn context(args: &[ContextArg]) -> anyhow::Result<Vec<(String, String)>> {
    merge_context(args).map_err(usage)
}

/// Borrowed pairs, as the client takes them.
fn pairs(owned: &[(String, String)]) -> Vec<(&str, &str)> {
    owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Runs a symmetric cryptography command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::Encrypt { key_id, plaintext, encryption_context } => {
            check_plaintext_len(plaintext.len())?;
            let ec = context(&encryption_context)?;
            let key_id = ctx.key(&key_id)?;
            let out = ctx.client()?.encrypt(&key_id, &plaintext, &pairs(&ec))?;
            ctx.emit(&out)
        }
        Commands::Decrypt { ciphertext_blob, encryption_context, key_id } => {
            let ec = context(&encryption_context)?;
            let blob = ciphertext_blob.within(MAX_CIPHERTEXT_BLOB, "CiphertextBlob")?;
            let key_id = ctx.key_opt(key_id.as_deref())?;
            let out = ctx.client()?.decrypt(blob, &pairs(&ec), key_id.as_deref())?;
            ctx.emit(&out)
        }
        Commands::ReEncrypt {
            ciphertext_blob,
            source_encryption_context,
            source_key_id,
            destination_key_id,
            destination_encryption_context,
        } => {
            let src = context(&source_encryption_context)?;
            let dst = context(&destination_encryption_context)?;
            let blob = ciphertext_blob.within(MAX_CIPHERTEXT_BLOB, "CiphertextBlob")?;
            let source_key_id = ctx.key_opt(source_key_id.as_deref())?;
            let destination_key_id = ctx.key(&destination_key_id)?;
            let out = ctx.client()?.re_encrypt(
                blob,
                &pairs(&src),
                source_key_id.as_deref(),
                &destination_key_id,
                &pairs(&dst),
            )?;
            ctx.emit(&out)
        }
        Commands::GenerateDataKey { args } => {
            let ec = context(&args.encryption_context)?;
            let size = args.size()?;
            let key_id = ctx.key(&args.key_id)?;
            let out = ctx.client()?.generate_data_key(&key_id, &pairs(&ec), size)?;
            ctx.emit(&out)
        }
        Commands::GenerateDataKeyWithoutPlaintext { args } => {
            let ec = context(&args.encryption_context)?;
            let size = args.size()?;
            let key_id = ctx.key(&args.key_id)?;
            let out = ctx.client()?.generate_data_key_without_plaintext(&key_id, &pairs(&ec), size)?;
            ctx.emit(&out)
        }
        Commands::GenerateRandom { number_of_bytes } => {
            let plaintext = ctx.client()?.generate_random(number_of_bytes)?;
            ctx.emit(&GenerateRandomOutput { plaintext })
        }
    }
}
