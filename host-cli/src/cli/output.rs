//! Printing results as aws-cli does: `--output json` (the KMS JSON form of the library's reply
//! types, [`pkms_lib::model`]: PascalCase field names, blobs in base64, dates as ISO-8601 UTC
//! strings like aws-cli v2's default `cli_timestamp_format`), `--output text` (bare values,
//! tab-separated), `--query` (a small JMESPath subset), and errors (`{"__type": …, "message": …}`
//! on stderr).

use serde_json::Value;

/// `--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// JSON with KMS field names (default).
    Json,
    /// Bare values, tab-separated, one record per line.
    Text,
    /// PEM (get-public-key only).
    Pem,
    /// An OpenSSH authorized_keys line (get-public-key of P-256 and Ed25519 signing keys).
    Ssh,
    /// A minisign public key (get-public-key of Ed25519 signing keys).
    Minisign,
}

/// Applies a `--query` expression: dotted field names, `[N]` indexes and `[]` projections
/// (`KeyMetadata.KeyId`, `Keys[0].KeyId`, `Keys[].KeyId`, `Rotations[-1].KeyMaterialId`).
/// A missing field yields `null`, as JMESPath does.
pub fn query(value: &Value, expr: &str) -> Result<Value, String> {
    let mut tokens = Vec::new();
    for part in expr.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            tokens.push(Step::Field(name.to_owned()));
        } else if rest.is_empty() {
            return Err(format!("empty field name in query {expr:?}"));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']').ok_or_else(|| format!("unclosed [ in query {expr:?}"))?;
            let idx = &inner[..close];
            if idx.is_empty() || idx == "*" {
                tokens.push(Step::Project);
            } else {
                let n: i64 = idx.parse().map_err(|_| format!("bad index [{idx}] in query {expr:?}"))?;
                tokens.push(Step::Index(n));
            }
            rest = &inner[close + 1..];
        }
        if !rest.is_empty() {
            return Err(format!("unexpected {rest:?} in query {expr:?}"));
        }
    }
    Ok(apply(value, &tokens))
}

enum Step {
    Field(String),
    Index(i64),
    Project,
}

fn apply(value: &Value, steps: &[Step]) -> Value {
    let Some((first, rest)) = steps.split_first() else { return value.clone() };
    match first {
        Step::Field(name) => match value.get(name) {
            Some(v) => apply(v, rest),
            None => Value::Null,
        },
        Step::Index(i) => match value.as_array() {
            Some(a) => {
                let len = a.len() as i64;
                let at = if *i < 0 { len + i } else { *i };
                match usize::try_from(at).ok().and_then(|at| a.get(at)) {
                    Some(v) => apply(v, rest),
                    None => Value::Null,
                }
            }
            None => Value::Null,
        },
        Step::Project => match value.as_array() {
            Some(a) => Value::Array(a.iter().map(|v| apply(v, rest)).filter(|v| !v.is_null()).collect()),
            None => Value::Null,
        },
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("None".to_owned()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Renders a value as aws-cli's text output does, simplified: the scalar fields of an object
/// on one tab-separated line (in field order), then each nested object or list; a list of
/// scalars on one line; a bare scalar alone (`True`/`False`/`None` as aws-cli prints them).
/// A list page's `"Truncated": false` is left out (aws-cli's text output of a complete listing
/// carries no pagination fields either), so `list-keys --output text` prints just the keys;
/// a truncated page still prints `True` and its `NextMarker` first.
pub fn text(value: &Value) -> String {
    let mut lines = Vec::new();
    match value {
        Value::Object(map) if map.get("Truncated") == Some(&Value::Bool(false)) => {
            let mut page = map.clone();
            page.remove("Truncated");
            render_text(&Value::Object(page), &mut lines);
        }
        _ => render_text(value, &mut lines),
    }
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

fn render_text(value: &Value, lines: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let scalars: Vec<String> = map.values().filter_map(scalar_text).collect();
            if !scalars.is_empty() {
                lines.push(scalars.join("\t"));
            }
            for v in map.values() {
                if v.is_object() || v.is_array() {
                    render_text(v, lines);
                }
            }
        }
        Value::Array(items) => {
            if items.iter().all(|v| !v.is_object() && !v.is_array()) {
                if !items.is_empty() {
                    lines.push(items.iter().filter_map(scalar_text).collect::<Vec<_>>().join("\t"));
                }
            } else {
                for v in items {
                    render_text(v, lines);
                }
            }
        }
        scalar => lines.extend(scalar_text(scalar)),
    }
}

/// PEM-encodes DER bytes under `label` (64-character lines).
pub fn pem(label: &str, der: &[u8]) -> String {
    let b = pkms_lib::model::encoding::base64_text(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_paths() {
        let v = json!({"KeyMetadata": {"KeyId": "k1"}, "Keys": [{"KeyId": "a"}, {"KeyId": "b"}]});
        assert_eq!(query(&v, "KeyMetadata.KeyId").unwrap(), json!("k1"));
        assert_eq!(query(&v, "Keys[1].KeyId").unwrap(), json!("b"));
        assert_eq!(query(&v, "Keys[-1].KeyId").unwrap(), json!("b"));
        assert_eq!(query(&v, "Keys[].KeyId").unwrap(), json!(["a", "b"]));
        assert_eq!(query(&v, "Nope.KeyId").unwrap(), Value::Null);
        assert!(query(&v, "Keys[x]").is_err());
        assert!(query(&v, "Keys[0").is_err());
    }

    #[test]
    fn text_prints_bare_values() {
        assert_eq!(text(&json!({"CiphertextBlob": "QUJD", "KeyId": "k"})), "QUJD\tk\n");
        assert_eq!(text(&json!("QUJD")), "QUJD\n");
        assert_eq!(text(&json!(true)), "True\n");
        let v = json!({"Keys": [{"KeyId": "a"}, {"KeyId": "b"}], "Truncated": false});
        assert_eq!(text(&v), "a\nb\n", "a complete listing prints only its items");
        let v = json!({"Keys": [{"KeyId": "a"}], "NextMarker": "m", "Truncated": true});
        assert_eq!(text(&v), "m\tTrue\na\n", "a truncated page says so and gives its marker");
        assert_eq!(text(&json!(["a", "b"])), "a\tb\n");
        assert_eq!(text(&json!({})), "");
    }

    #[test]
    fn pem_wraps_at_64() {
        let p = pem("PUBLIC KEY", &[7u8; 91]);
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END PUBLIC KEY-----"));
    }
}
