//! Key policies and grants: get-key-policy, put-key-policy, create-grant, list-grants,
//! retire-grant, revoke-grant; and the conversion of KMS-shaped JSON policies to the token's
//! compact form ([`policy_from_json`]; the other way is [`PolicyDocument::from_compact`]).
//!
//! JSON shape (KMS's, with `Pkms` principals: names, `role/admin` or `*`):
//! `{"Version":"2012-10-17","Statement":[{"Sid":"..","Effect":"Allow","Principal":{"Pkms":["bob"]},
//! "Action":["kms:Encrypt"],"Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:app":"x"}}}]}`.
//! `StringEquals` on `kms:EncryptionContext:KEY` requires those pairs (a subset of the request's
//! context); `pkms:EncryptionContextEquals` (an object of pairs) requires exactly that context
//! (for CreateGrant both are about the new grant's constraint pairs).
//! `"ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", …]}` (KMS's condition key)
//! on an Allow statement naming `kms:CreateGrant` allows only grants whose operations are all
//! among those. A statement holds at most one context condition and one such limit.

use clap::Subcommand;
use pkms_lib::model::{
    ContextConstraint, CreateGrantOutput, GetKeyPolicyOutput, ListGrantsOutput, PolicyDocument,
};
use pkms_protocol::access::ConditionKind;
use serde_json::Value;

use super::{usage, Context};
pub use pkms_lib::model::policy_json::{grant_operation, policy_from_json};

fn parse_constraints(text: &str) -> anyhow::Result<ContextConstraint> {
    let v: Value = serde_json::from_str(text).map_err(|e| usage(format!("--constraints: not JSON: {e}")))?;
    let o = v.as_object().ok_or_else(|| usage("--constraints must be a JSON object"))?;
    let (kind, body) = match (o.get("EncryptionContextEquals"), o.get("EncryptionContextSubset")) {
        (Some(b), None) => (ConditionKind::Equals, b),
        (None, Some(b)) => (ConditionKind::Subset, b),
        _ => {
            return Err(usage("--constraints takes EncryptionContextEquals or EncryptionContextSubset (one)"))
        }
    };
    let body = body.as_object().ok_or_else(|| usage("--constraints: the pairs must be an object"))?;
    let mut pairs = Vec::new();
    for (k, v) in body {
        pairs.push((
            k.clone(),
            v.as_str().ok_or_else(|| usage("--constraints: values are strings"))?.to_owned(),
        ));
    }
    Ok(ContextConstraint { kind, pairs })
}

/// Policy and grant commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Print a key's policy (KMS JSON shape).
    #[command(after_help = "Example:\n  pkms get-key-policy --key-id KEY --query Policy --output text")]
    GetKeyPolicy {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
        /// Only `default` exists (as in KMS).
        #[arg(long, default_value = "default")]
        policy_name: String,
    },
    /// Replace a key's policy. Refused (MalformedPolicyDocumentException) if malformed, or if it
    /// would not let you change it again.
    #[command(after_help = "Example:\n  pkms put-key-policy --key-id KEY --policy file://policy.json")]
    PutKeyPolicy {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
        /// The policy JSON, or file://PATH.
        #[arg(long)]
        policy: String,
        /// Only `default` exists (as in KMS).
        #[arg(long, default_value = "default")]
        policy_name: String,
    },
    /// Let a principal use a key for some operations.
    #[command(
        after_help = "Example:\n  pkms create-grant --key-id KEY --grantee-principal bob --operations Encrypt Decrypt \\\n       --constraints '{\"EncryptionContextSubset\":{\"app\":\"billing\"}}'"
    )]
    CreateGrant {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
        /// The principal the grant is for.
        #[arg(long)]
        grantee_principal: String,
        /// KMS GrantOperation names: Encrypt, Decrypt, GenerateDataKey, Sign, GenerateMac, …
        #[arg(long, num_args = 1.., required = true)]
        operations: Vec<String>,
        /// JSON: {"EncryptionContextEquals":{..}} or {"EncryptionContextSubset":{..}}.
        #[arg(long)]
        constraints: Option<String>,
        /// A name for the grant.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List a key's grants.
    #[command(after_help = "Example:\n  pkms list-grants --key-id KEY")]
    ListGrants {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
    },
    /// Retire a grant (its grantee, its issuer or an administrator), named by key and grant id or
    /// by the GrantToken create-grant printed.
    #[command(
        after_help = "Examples:\n  pkms retire-grant --key-id KEY --grant-id GRANT\n  pkms retire-grant --grant-token TOKEN"
    )]
    RetireGrant {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long, required_unless_present = "grant_token", requires = "grant_id")]
        key_id: Option<String>,
        /// GrantId.
        #[arg(long, required_unless_present = "grant_token", requires = "key_id")]
        grant_id: Option<String>,
        /// The GrantToken create-grant printed (instead of --key-id and --grant-id).
        #[arg(long, conflicts_with_all = ["key_id", "grant_id"])]
        grant_token: Option<String>,
    },
    /// Revoke a grant (needs kms:RevokeGrant on the key).
    #[command(after_help = "Example:\n  pkms revoke-grant --key-id KEY --grant-id GRANT")]
    RevokeGrant {
        /// Key id or key ARN (not an alias, as in KMS).
        #[arg(long)]
        key_id: String,
        /// GrantId.
        #[arg(long)]
        grant_id: String,
    },
}

/// Longest policy document read from a file (the compact form is at most 1 KiB).
const MAX_POLICY_TEXT: usize = 64 * 1024;

/// `file://PATH` (read as UTF-8, at most [`MAX_POLICY_TEXT`] bytes) or the text itself.
fn read_text_arg(arg: &str) -> anyhow::Result<String> {
    match arg.strip_prefix("file://") {
        Some(path) => {
            let bytes = super::args::read_bounded(path, MAX_POLICY_TEXT + 1)
                .map_err(|e| usage(format!("--policy: {e}")))?;
            if bytes.len() > MAX_POLICY_TEXT {
                return Err(usage(format!("--policy: {path} is larger than {MAX_POLICY_TEXT} bytes")));
            }
            String::from_utf8(bytes.to_vec())
                .map_err(|_| usage(format!("--policy: {path} is not UTF-8 text")))
        }
        None => Ok(arg.to_owned()),
    }
}

fn check_policy_name(name: &str) -> anyhow::Result<()> {
    if name != "default" {
        return Err(usage("--policy-name must be default"));
    }
    Ok(())
}

/// Runs a policy or grant command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::GetKeyPolicy { key_id, policy_name } => {
            let key_id = ctx.key(&key_id)?;
            check_policy_name(&policy_name)?;
            let (_, bytes) = ctx.client()?.get_key_policy(&key_id)?;
            let doc = PolicyDocument::from_compact(&bytes)
                .ok_or_else(|| anyhow::anyhow!("the token sent a policy this pkms cannot read"))?;
            let policy = super::json_pretty(&serde_json::to_value(&doc)?);
            ctx.emit(&GetKeyPolicyOutput { policy, policy_name: "default".to_owned() })
        }
        Commands::PutKeyPolicy { key_id, policy, policy_name } => {
            let key_id = ctx.key(&key_id)?;
            check_policy_name(&policy_name)?;
            let text = read_text_arg(&policy)?;
            let compact = policy_from_json(&text)
                .map_err(|m| super::CliError { kind: "MalformedPolicyDocumentException", message: m })?;
            ctx.client()?.put_key_policy(&key_id, &compact)?;
            Ok(())
        }
        Commands::CreateGrant { key_id, grantee_principal, operations, constraints, name } => {
            let key_id = ctx.key(&key_id)?;
            let mut bits = 0;
            for op in &operations {
                bits |= grant_operation(op)
                    .ok_or_else(|| usage(format!("--operations: {op} is not a grant operation")))?;
            }
            let constraint = constraints.as_deref().map(parse_constraints).transpose()?;
            let client = ctx.client()?;
            let id = client.create_grant(&key_id, &grantee_principal, bits, constraint.as_ref(), &name)?;
            // The key id (not an ARN) goes in the grant token; key_id is one already.
            ctx.emit(&CreateGrantOutput::new(&key_id, id))
        }
        Commands::ListGrants { key_id } => {
            let key_id = ctx.key(&key_id)?;
            let client = ctx.client()?;
            let key = client.describe_key(&key_id)?.key_id;
            let grants = client.list_grants(&key_id)?;
            ctx.emit_listing(&ListGrantsOutput::complete(key, grants), "Grants", None)
        }
        Commands::RetireGrant { key_id, grant_id, grant_token } => {
            let (key_id, grant_id) = match (key_id, grant_id, grant_token) {
                (Some(k), Some(g), None) => (ctx.key(&k)?, g),
                (None, None, Some(t)) => {
                    pkms_lib::model::policy::parse_grant_token(&t).ok_or_else(|| super::CliError {
                        kind: "InvalidGrantTokenException",
                        message: "--grant-token: not a grant token create-grant printed".into(),
                    })?
                }
                _ => return Err(usage("give --key-id and --grant-id, or --grant-token")),
            };
            ctx.client()?.retire_grant(&key_id, &grant_id)?;
            Ok(())
        }
        Commands::RevokeGrant { key_id, grant_id } => {
            let key_id = ctx.key(&key_id)?;
            ctx.client()?.revoke_grant(&key_id, &grant_id)?;
            Ok(())
        }
    }
}
