//! Key policies as JSON, KMS-shaped (`{"Statement": [{"Effect", "Principal": {"Pkms": [names]},
//! "Action", "Condition"?}]}`), to the compact form the token stores ([`policy_from_json`]; the
//! other way is [`super::PolicyDocument::from_compact`]). `pkms put-key-policy` uses it; the
//! `key_policy` fuzz target checks that whatever it accepts, the token's decoder accepts too.

use pkms_protocol::access::{
    action_bits, Condition, ConditionKind, Effect, Policy, Statement, ALL_ACTIONS, GRANT_OPERATIONS,
    MAX_POLICY_BYTES,
};
use pkms_protocol::Action;
use serde_json::Value;

use super::policy::{GRANT_OPERATIONS_KEY, GRANT_OPERATIONS_OPERATOR};

/// A statement with owned strings: effect, principals, action bits, context condition,
/// `kms:GrantOperations` limit.
type OwnedStatement = (Effect, Vec<String>, u64, Option<(ConditionKind, Vec<(String, String)>)>, Option<u64>);

/// Converts a KMS-shaped JSON policy to the compact form; the error says what is wrong.
pub fn policy_from_json(text: &str) -> Result<Vec<u8>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let statements = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => return Err("the policy needs a Statement list".into()),
    };
    // Strings borrowed by the compact form live here.
    let mut owned: Vec<OwnedStatement> = Vec::new();
    for (i, s) in statements.iter().enumerate() {
        let effect = match s.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => return Err(format!("statement {i}: Effect must be Allow or Deny")),
        };
        let principals = match s.get("Principal") {
            Some(Value::String(s)) if s == "*" => vec!["*".to_owned()],
            Some(Value::Object(o)) => match o.get("Pkms") {
                Some(Value::String(p)) => vec![p.clone()],
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_owned).ok_or(format!("statement {i}: principals are strings"))
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(format!("statement {i}: Principal must be {{\"Pkms\": [names]}} or \"*\"")),
            },
            _ => return Err(format!("statement {i}: Principal must be {{\"Pkms\": [names]}} or \"*\"")),
        };
        let actions: Vec<String> = match s.get("Action") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            _ => return Err(format!("statement {i}: Action must be a string or a list")),
        };
        let mut bits = 0u64;
        for a in &actions {
            bits |= action_bits(a).ok_or(format!("statement {i}: unknown action {a}"))?;
        }
        let (condition, grant_operations) = match s.get("Condition") {
            None => (None, None),
            Some(Value::Object(c)) => parse_condition(i, c)?,
            Some(_) => return Err(format!("statement {i}: Condition must be an object")),
        };
        if grant_operations.is_some() && (effect != Effect::Allow || bits & Action::CreateGrant.bit() == 0) {
            return Err(format!(
                "statement {i}: a kms:GrantOperations condition belongs on an Allow statement naming kms:CreateGrant"
            ));
        }
        owned.push((effect, principals, bits, condition, grant_operations));
    }
    let mut policy = Policy { statements: heapless::Vec::new() };
    for (effect, principals, actions, condition, grant_operations) in &owned {
        let mut ps = heapless::Vec::new();
        for p in principals {
            ps.push(p.as_str()).map_err(|_| "too many principals in one statement".to_owned())?;
        }
        let condition = match condition {
            None => None,
            Some((kind, pairs)) => {
                let mut c = Condition { kind: *kind, pairs: heapless::Vec::new() };
                for (k, v) in pairs {
                    c.pairs
                        .push((k.as_str(), v.as_str()))
                        .map_err(|_| "too many condition pairs".to_owned())?;
                }
                Some(c)
            }
        };
        policy
            .statements
            .push(Statement {
                effect: *effect,
                principals: ps,
                actions: *actions,
                condition,
                grant_operations: *grant_operations,
            })
            .map_err(|_| "too many statements".to_owned())?;
    }
    let mut buf = vec![0u8; MAX_POLICY_BYTES];
    let n = postcard::to_slice(&policy, &mut buf)
        .map_err(|_| format!("the policy exceeds {MAX_POLICY_BYTES} bytes"))?
        .len();
    buf.truncate(n);
    if Policy::decode(&buf).is_none() {
        return Err("the policy has an empty statement list, principal list or action list".into());
    }
    Ok(buf)
}

/// A statement's context condition and `kms:GrantOperations` limit, from its `Condition` object.
#[allow(clippy::type_complexity)]
fn parse_condition(
    i: usize,
    c: &serde_json::Map<String, Value>,
) -> Result<(Option<(ConditionKind, Vec<(String, String)>)>, Option<u64>), String> {
    let mut context = None;
    let mut grant_operations = None;
    if c.is_empty() {
        return Err(format!("statement {i}: empty Condition"));
    }
    for (op, body) in c {
        let body = body.as_object().ok_or(format!("statement {i}: condition body must be an object"))?;
        let string = |v: &Value| {
            v.as_str().map(str::to_owned).ok_or(format!("statement {i}: condition values are strings"))
        };
        match op.as_str() {
            "StringEquals" | "pkms:EncryptionContextEquals" if context.is_some() => {
                return Err(format!("statement {i}: one encryption-context condition per statement"))
            }
            "StringEquals" => {
                let mut pairs = Vec::new();
                for (k, v) in body {
                    let key = k.strip_prefix("kms:EncryptionContext:").ok_or(format!(
                        "statement {i}: StringEquals takes kms:EncryptionContext:KEY keys (kms:GrantOperations goes under {GRANT_OPERATIONS_OPERATOR})"
                    ))?;
                    pairs.push((key.to_owned(), string(v)?));
                }
                context = Some((ConditionKind::Subset, pairs));
            }
            "pkms:EncryptionContextEquals" => {
                let mut pairs = Vec::new();
                for (k, v) in body {
                    pairs.push((k.clone(), string(v)?));
                }
                context = Some((ConditionKind::Equals, pairs));
            }
            GRANT_OPERATIONS_OPERATOR => {
                let names = match (body.len(), body.get(GRANT_OPERATIONS_KEY)) {
                    (1, Some(Value::String(n))) => vec![n.clone()],
                    (1, Some(Value::Array(a))) => a.iter().map(string).collect::<Result<Vec<_>, _>>()?,
                    _ => {
                        return Err(format!(
                            "statement {i}: {GRANT_OPERATIONS_OPERATOR} takes only {GRANT_OPERATIONS_KEY}: [grant operations]"
                        ))
                    }
                };
                let mut bits = 0;
                for n in &names {
                    bits |=
                        grant_operation(n).ok_or(format!("statement {i}: {n} is not a grant operation"))?;
                }
                if bits == 0 {
                    return Err(format!("statement {i}: {GRANT_OPERATIONS_KEY} names no operation"));
                }
                grant_operations = Some(bits);
            }
            other => return Err(format!("statement {i}: unsupported condition operator {other}")),
        }
    }
    Ok((context, grant_operations))
}

/// A KMS GrantOperation name (`Encrypt`, `Decrypt`, …) to its bit.
pub fn grant_operation(name: &str) -> Option<u64> {
    action_bits(&format!("kms:{name}")).filter(|b| b & !GRANT_OPERATIONS == 0 && *b != ALL_ACTIONS)
}
