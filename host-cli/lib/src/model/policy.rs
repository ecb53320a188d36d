//! Key policies and grants: GetKeyPolicy, CreateGrant, ListGrants (and PutKeyPolicy,
//! RetireGrant, RevokeGrant, which answer nothing), and the KMS JSON shape of a compact policy
//! ([`PolicyDocument`]).

use pkms_protocol::access::{
    Condition, ConditionKind, Effect, Policy, Statement, ALL_ACTIONS, MAX_CONDITION_PAIRS, MAX_POLICY_BYTES,
    MAX_STATEMENTS, MAX_STATEMENT_PRINCIPALS,
};
use pkms_protocol::{Action, KeyId};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::encoding::date;
use crate::error::{Error, Result};

/// An encryption-context constraint of a grant or policy condition. Serialises as KMS's
/// GrantConstraints: `{"EncryptionContextEquals": {…}}` or `{"EncryptionContextSubset": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextConstraint {
    /// Equals or subset.
    pub kind: ConditionKind,
    /// The pairs.
    pub pairs: Vec<(String, String)>,
}

impl ContextConstraint {
    /// The wire form; fails when there are too many pairs for a frame.
    pub fn wire(&self) -> Result<Condition<'_>> {
        let mut pairs = heapless::Vec::new();
        for (k, v) in &self.pairs {
            pairs.push((k.as_str(), v.as_str())).map_err(|_| {
                Error::InvalidInput(format!("a constraint holds at most {MAX_CONDITION_PAIRS} pairs"))
            })?;
        }
        Ok(Condition { kind: self.kind, pairs })
    }

    /// From the wire form.
    pub fn from_wire(c: &Condition<'_>) -> Self {
        ContextConstraint {
            kind: c.kind,
            pairs: c.pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }
}

impl Serialize for ContextConstraint {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let label = match self.kind {
            ConditionKind::Equals => "EncryptionContextEquals",
            ConditionKind::Subset => "EncryptionContextSubset",
        };
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(label, &PairMap { pairs: &self.pairs, key_prefix: "" })?;
        map.end()
    }
}

/// Pairs as a JSON object, each key prefixed.
struct PairMap<'a, K, V> {
    pairs: &'a [(K, V)],
    key_prefix: &'static str,
}

impl<K: AsRef<str>, V: AsRef<str>> Serialize for PairMap<'_, K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(
            self.pairs.iter().map(|(k, v)| (format!("{}{}", self.key_prefix, k.as_ref()), v.as_ref())),
        )
    }
}

/// A grant as ListGrants reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Grant {
    /// GrantId.
    pub grant_id: String,
    /// Name (left out when the grant has none, as KMS does).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// CreationDate.
    #[serde(rename = "CreationDate", serialize_with = "date")]
    pub created: u64,
    /// GranteePrincipal.
    #[serde(rename = "GranteePrincipal")]
    pub grantee: String,
    /// The principal that created it. Written as KMS's IssuingAccount: the account's ARN
    /// (`arn:aws:iam::ACCOUNT:root`), as KMS writes it; the token's audit log names the principal.
    #[serde(rename = "IssuingAccount", serialize_with = "super::encoding::issuing_account")]
    pub issuer: String,
    /// Operation bits; written as KMS GrantOperation names (`Encrypt`, …).
    #[serde(serialize_with = "grant_operations")]
    pub operations: u64,
    /// Constraints.
    #[serde(rename = "Constraints", skip_serializing_if = "Option::is_none")]
    pub constraint: Option<ContextConstraint>,
}

/// One ListGrants item as KMS writes it: the key's ARN, then the grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrantListEntry {
    /// KeyId (written as the key ARN, as KMS does).
    #[serde(serialize_with = "super::encoding::key_arn")]
    pub key_id: KeyId,
    /// The grant.
    #[serde(flatten)]
    pub grant: Grant,
}

/// ListGrants's answer (every grant at once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListGrantsOutput {
    /// Grants.
    pub grants: Vec<GrantListEntry>,
    /// Truncated: always false.
    pub truncated: bool,
}

impl ListGrantsOutput {
    /// The grants of the key `key_id`, a complete list.
    pub fn complete(key_id: KeyId, grants: Vec<Grant>) -> Self {
        let grants = grants.into_iter().map(|grant| GrantListEntry { key_id, grant }).collect();
        ListGrantsOutput { grants, truncated: false }
    }
}

/// CreateGrant's answer: the grant id and a grant token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateGrantOutput {
    /// GrantId.
    pub grant_id: String,
    /// GrantToken: names the key and the grant ([`grant_token`]).
    pub grant_token: String,
}

impl CreateGrantOutput {
    /// The answer for the grant `grant_id` of the key `key_id` (a key id).
    pub fn new(key_id: &str, grant_id: String) -> Self {
        CreateGrantOutput { grant_token: grant_token(key_id, &grant_id), grant_id }
    }
}

const GRANT_TOKEN_PREFIX: &str = "pkms-grant:";

/// A grant token: base64url of `pkms-grant:KEY_ID:GRANT_ID`. Grants take effect at once on the
/// token, so a token carries no secret; it names the grant so RetireGrant can take it alone.
pub fn grant_token(key_id: &str, grant_id: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{GRANT_TOKEN_PREFIX}{key_id}:{grant_id}"))
}

/// The key id and grant id a [`grant_token`] names; `None` for anything else.
pub fn parse_grant_token(token: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (key, grant) = text.strip_prefix(GRANT_TOKEN_PREFIX)?.split_once(':')?;
    (!key.is_empty() && !grant.is_empty()).then(|| (key.to_owned(), grant.to_owned()))
}

/// GetKeyPolicy's answer as KMS writes it: the policy as JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetKeyPolicyOutput {
    /// Policy: a [`PolicyDocument`] as JSON text.
    pub policy: String,
    /// PolicyName: always `default`.
    pub policy_name: String,
}

/// Action names of a bit set (`kms:*` for all).
pub fn action_names(bits: u64) -> Vec<String> {
    if bits == ALL_ACTIONS {
        return vec!["kms:*".into()];
    }
    (0..64)
        .filter_map(Action::from_bit_index)
        .filter(|a| bits & a.bit() != 0)
        .map(|a| a.name().to_owned())
        .collect()
}

fn grant_operations<S: Serializer>(bits: &u64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(action_names(*bits).iter().map(|n| n.trim_start_matches("kms:")))
}

/// A compact key policy in KMS's JSON shape, with `Pkms` principals:
/// `{"Version": "2012-10-17", "Statement": [{"Effect", "Principal": {"Pkms": […]}, "Action": […],
/// "Resource": "*", "Condition"?}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    /// Version: `2012-10-17`.
    pub version: &'static str,
    /// Statement.
    pub statement: Vec<PolicyStatement>,
}

/// One statement of a [`PolicyDocument`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyStatement {
    /// `Allow` or `Deny`.
    pub effect: &'static str,
    /// Principal: `{"Pkms": [names, role/admin or *]}`.
    pub principal: PolicyPrincipals,
    /// Action: `kms:…` names (`kms:*` for all).
    pub action: Vec<String>,
    /// Resource: `*` (the key the policy is on).
    pub resource: &'static str,
    /// Conditions: on the encryption context, and on the operations of the grants CreateGrant
    /// makes.
    #[serde(skip_serializing_if = "PolicyCondition::is_empty")]
    pub condition: PolicyCondition,
}

/// A statement's conditions as a policy writes them, each an operator of the `Condition`
/// object:
/// * `{"StringEquals": {"kms:EncryptionContext:KEY": …}}`: the pairs are a subset of the
///   request's context, or `{"pkms:EncryptionContextEquals": {…}}`: they are the whole context
///   (for CreateGrant: of the new grant's constraint pairs);
/// * `{"ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", …]}}`: CreateGrant
///   only for grants whose operations are all among these (Allow statements naming
///   `kms:CreateGrant`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyCondition {
    /// The encryption-context condition.
    pub context: Option<ContextConstraint>,
    /// The `kms:GrantOperations` limit ([`pkms_protocol::Action`] bits).
    pub grant_operations: Option<u64>,
}

/// The `Condition` operator of a `kms:GrantOperations` limit.
pub const GRANT_OPERATIONS_OPERATOR: &str = "ForAllValues:StringEquals";
/// The condition key of a `kms:GrantOperations` limit.
pub const GRANT_OPERATIONS_KEY: &str = "kms:GrantOperations";

impl PolicyCondition {
    /// No condition at all.
    pub fn is_empty(&self) -> bool {
        self.context.is_none() && self.grant_operations.is_none()
    }
}

impl Serialize for PolicyCondition {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(c) = &self.context {
            let (operator, key_prefix) = match c.kind {
                ConditionKind::Subset => ("StringEquals", "kms:EncryptionContext:"),
                ConditionKind::Equals => ("pkms:EncryptionContextEquals", ""),
            };
            map.serialize_entry(operator, &PairMap { pairs: &c.pairs, key_prefix })?;
        }
        if let Some(bits) = self.grant_operations {
            let names: Vec<String> =
                action_names(bits).iter().map(|n| n.trim_start_matches("kms:").to_owned()).collect();
            let mut inner = std::collections::BTreeMap::new();
            inner.insert(GRANT_OPERATIONS_KEY, names);
            map.serialize_entry(GRANT_OPERATIONS_OPERATOR, &inner)?;
        }
        map.end()
    }
}

/// The principals of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyPrincipals {
    /// Principal names, `role/admin` or `*` (a principal deleted since the policy named it
    /// shows as `#` and 16 hex digits: it names no one).
    #[serde(rename = "Pkms")]
    pub pkms: Vec<String>,
}

/// The largest compact policy a token sends back (principals it no longer knows appear as
/// 17-byte references).
pub const MAX_RETURNED_POLICY_BYTES: usize =
    MAX_POLICY_BYTES + MAX_STATEMENTS * MAX_STATEMENT_PRINCIPALS * 16;

impl PolicyDocument {
    /// The document of a compact policy; `None` if it does not decode.
    pub fn from_compact(bytes: &[u8]) -> Option<PolicyDocument> {
        let policy = Policy::decode_within(bytes, MAX_RETURNED_POLICY_BYTES)?;
        let statement = policy.statements.iter().map(PolicyStatement::from_wire).collect();
        Some(PolicyDocument { version: "2012-10-17", statement })
    }
}

impl PolicyStatement {
    fn from_wire(s: &Statement<'_>) -> Self {
        PolicyStatement {
            effect: match s.effect {
                Effect::Allow => "Allow",
                Effect::Deny => "Deny",
            },
            principal: PolicyPrincipals { pkms: s.principals.iter().map(|p| (*p).to_owned()).collect() },
            action: action_names(s.actions),
            resource: "*",
            condition: PolicyCondition {
                context: s.condition.as_ref().map(ContextConstraint::from_wire),
                grant_operations: s.grant_operations,
            },
        }
    }
}

impl super::Owned for pkms_protocol::kind::KeyPolicy {
    /// The key id and the compact policy.
    type Output = (pkms_protocol::KeyId, Vec<u8>);
    fn own(r: pkms_protocol::reply::KeyPolicy<'_>) -> Self::Output {
        (r.key_id, r.policy.to_vec())
    }
}

impl super::Owned for pkms_protocol::kind::Grant {
    /// The GrantId.
    type Output = String;
    fn own(r: pkms_protocol::reply::Grant<'_>) -> String {
        r.grant_id.to_owned()
    }
}

impl super::Owned for pkms_protocol::kind::Grants {
    type Output = Vec<Grant>;
    fn own(r: pkms_protocol::reply::Grants<'_>) -> Vec<Grant> {
        r.grants
            .iter()
            .map(|g| Grant {
                grant_id: g.grant_id.to_owned(),
                name: g.name.to_owned(),
                grantee: g.grantee.to_owned(),
                issuer: g.issuer.to_owned(),
                operations: g.operations,
                constraint: g.constraint.as_ref().map(ContextConstraint::from_wire),
                created: g.created,
            })
            .collect()
    }
}
