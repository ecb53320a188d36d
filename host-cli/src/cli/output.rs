//! Printing results as aws-cli does: `--output json` (the KMS JSON form of the library's reply
//! types, [`pkms_lib::model`]: PascalCase field names, blobs in base64, dates as ISO-8601 UTC
//! strings like aws-cli v2's default `cli_timestamp_format`), `--output text` (the aws cli's
//! tab-separated columns, [`text`]), `--query` (JMESPath), and errors (`{"__type": …, "message": …}`
//! on stderr).

use serde_json::Value;

/// `--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// JSON with KMS field names (default).
    Json,
    /// The aws cli's text output: tab-separated values, fields in name order, nested records
    /// on lines titled with their field name (KEYS, KEYMETADATA).
    Text,
    /// Boxed tables, as the aws cli draws them: one section per object or list, titled with
    /// the operation or the field name.
    Table,
    /// PEM (get-public-key only).
    Pem,
    /// An OpenSSH authorized_keys line (get-public-key of P-256 and Ed25519 signing keys).
    Ssh,
    /// A minisign public key (get-public-key of Ed25519 signing keys).
    Minisign,
}

/// A `--query` expression, parsed (JMESPath, by the `jmespath` crate: the language the aws cli's
/// `--query` takes) and checked before anything is sent: a syntax error or a function JMESPath
/// does not have is refused then, so a refused query never leaves a command half done.
pub struct Query {
    expr: jmespath::Expression<'static>,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Query({:?})", self.expr.as_str())
    }
}

impl Query {
    /// Parses `expr`; the error says what is wrong and where.
    pub fn parse(expr: &str) -> Result<Query, String> {
        let compiled = jmespath::compile(expr).map_err(|e| {
            format!("--query {expr:?} is not a JMESPath expression: {}", e.to_string().trim_end())
        })?;
        check_functions(compiled.as_ast(), expr)?;
        Ok(Query { expr: compiled })
    }

    /// Applies the expression to a command's JSON output. A missing field yields `null`, as in
    /// JMESPath. Objects keep the output's field order (and a multi-select hash its own order),
    /// as the aws cli prints them.
    pub fn apply(&self, value: &Value) -> Result<Value, String> {
        let found = self.expr.search(value).map_err(|e| format!("--query {:?}: {e}", self.expr.as_str()))?;
        let result =
            serde_json::to_value(&*found).map_err(|e| format!("--query {:?}: {e}", self.expr.as_str()))?;
        let mut rank = std::collections::HashMap::new();
        hash_keys(self.expr.as_ast(), &mut rank);
        field_order(value, &mut rank);
        Ok(reorder(result, &rank))
    }
}

/// Applies a `--query` expression (see [`Query`]).
pub fn query(value: &Value, expr: &str) -> Result<Value, String> {
    Query::parse(expr)?.apply(value)
}

/// Refuses a call of a function JMESPath does not define (the crate would only find out while
/// evaluating, after the command ran).
fn check_functions(ast: &jmespath::ast::Ast, expr: &str) -> Result<(), String> {
    use jmespath::ast::Ast;
    let mut stack = vec![ast];
    while let Some(node) = stack.pop() {
        match node {
            Ast::Function { name, args, .. } => {
                if jmespath::DEFAULT_RUNTIME.get_function(name).is_none() {
                    return Err(format!("--query {expr:?}: JMESPath has no function {name}()"));
                }
                stack.extend(args.iter());
            }
            Ast::Comparison { lhs, rhs, .. }
            | Ast::Projection { lhs, rhs, .. }
            | Ast::And { lhs, rhs, .. }
            | Ast::Or { lhs, rhs, .. }
            | Ast::Subexpr { lhs, rhs, .. } => stack.extend([&**lhs, &**rhs]),
            Ast::Condition { predicate, then, .. } => stack.extend([&**predicate, &**then]),
            Ast::Expref { ast, .. } => stack.push(ast),
            Ast::Flatten { node, .. } | Ast::Not { node, .. } | Ast::ObjectValues { node, .. } => {
                stack.push(node)
            }
            Ast::MultiList { elements, .. } => stack.extend(elements.iter()),
            Ast::MultiHash { elements, .. } => stack.extend(elements.iter().map(|kv| &kv.value)),
            Ast::Identity { .. }
            | Ast::Field { .. }
            | Ast::Index { .. }
            | Ast::Literal { .. }
            | Ast::Slice { .. } => {}
        }
    }
    Ok(())
}

/// The keys of the expression's multi-select hashes, in the order written.
fn hash_keys(ast: &jmespath::ast::Ast, rank: &mut std::collections::HashMap<String, usize>) {
    use jmespath::ast::Ast;
    match ast {
        Ast::MultiHash { elements, .. } => {
            for kv in elements {
                let next = rank.len();
                rank.entry(kv.key.clone()).or_insert(next);
                hash_keys(&kv.value, rank);
            }
        }
        Ast::Function { args, .. } => args.iter().for_each(|a| hash_keys(a, rank)),
        Ast::Comparison { lhs, rhs, .. }
        | Ast::Projection { lhs, rhs, .. }
        | Ast::And { lhs, rhs, .. }
        | Ast::Or { lhs, rhs, .. }
        | Ast::Subexpr { lhs, rhs, .. } => {
            hash_keys(lhs, rank);
            hash_keys(rhs, rank);
        }
        Ast::Condition { predicate, then, .. } => {
            hash_keys(predicate, rank);
            hash_keys(then, rank);
        }
        Ast::Expref { ast, .. } => hash_keys(ast, rank),
        Ast::Flatten { node, .. } | Ast::Not { node, .. } | Ast::ObjectValues { node, .. } => {
            hash_keys(node, rank)
        }
        Ast::MultiList { elements, .. } => elements.iter().for_each(|a| hash_keys(a, rank)),
        Ast::Identity { .. }
        | Ast::Field { .. }
        | Ast::Index { .. }
        | Ast::Literal { .. }
        | Ast::Slice { .. } => {}
    }
}

/// Every field name of `value`, in the order met (depth first).
fn field_order(value: &Value, rank: &mut std::collections::HashMap<String, usize>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let next = rank.len();
                rank.entry(k.clone()).or_insert(next);
                field_order(v, rank);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| field_order(v, rank)),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// `value` with every object's fields in `rank` order (the crate's objects are sorted by name).
fn reorder(value: Value, rank: &std::collections::HashMap<String, usize>) -> Value {
    match value {
        Value::Object(map) => {
            let mut fields: Vec<(String, Value)> = map.into_iter().collect();
            fields.sort_by_key(|(k, _)| rank.get(k).copied().unwrap_or(usize::MAX));
            Value::Object(fields.into_iter().map(|(k, v)| (k, reorder(v, rank))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|v| reorder(v, rank)).collect()),
        other => other,
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

/// Renders a value as the aws cli's `--output text` does (its `awscli/text.py`), so `read`
/// lines ported from `aws kms` get the same columns:
/// * an object prints its scalar fields on one tab-separated line, **sorted by field name**,
///   then each nested object or list, also in field-name order, under its field name;
/// * a nested object's (or list item's) line starts with that field name in capitals
///   (`KEYMETADATA`, `KEYS`, `ENCRYPTIONALGORITHMS`);
/// * a list of objects prints one line per item, with the sorted union of every item's scalar
///   field names as columns (an item lacking one leaves the column empty);
/// * a list of scalars under a field name prints one `NAME<TAB>value` line per value; a bare
///   list of scalars (a `--query` result) prints them on one line; a bare scalar prints alone;
/// * `True`/`False`/`None` as Python prints them; an empty list or object prints nothing.
///
/// A paginated listing prints only its items and then `NEXTTOKEN<TAB>token` (see
/// [`text_listing`]).
pub fn text(value: &Value) -> String {
    let mut out = String::new();
    text_into(value, None, None, &mut out);
    out
}

/// `--output text` of a paginated listing (list-keys, list-aliases, list-key-rotations), as
/// the aws cli prints one: the result key alone (`{"Keys": [...]}`; KMS's `Truncated` and
/// `NextMarker` are the paginator's business, not output), `--query` applied to it, then, when
/// `--max-items` stopped the listing, `{"NextToken": {"NextToken": token}}` (with `--query`
/// applied too; a null result prints nothing), i.e. the line `NEXTTOKEN<TAB>token`.
pub fn text_listing(
    result_key: &str,
    items: &Value,
    next_token: Option<&str>,
    query: Option<&Query>,
) -> Result<String, String> {
    let mut page = serde_json::Map::new();
    page.insert(result_key.to_owned(), items.clone());
    let page = Value::Object(page);
    let mut out = match query {
        Some(q) => text(&q.apply(&page)?),
        None => text(&page),
    };
    if let Some(token) = next_token {
        let record = serde_json::json!({"NextToken": {"NextToken": token}});
        let record = match query {
            Some(q) => q.apply(&record)?,
            None => record,
        };
        if !record.is_null() {
            out.push_str(&text(&record));
        }
    }
    Ok(out)
}

/// A scalar as the aws cli's text output writes it (Python's `str()`); objects and lists
/// standing where a scalar column is (a field scalar in one list item, nested in another) as
/// compact JSON.
fn text_scalar(v: &Value) -> String {
    scalar_text(v).unwrap_or_else(|| v.to_string())
}

fn text_into(value: &Value, identifier: Option<&str>, columns: Option<&[&str]>, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            let mut line: Vec<String> = Vec::new();
            let mut nested: Vec<(&str, &Value)> = Vec::new();
            match columns {
                None => {
                    for (k, v) in fields {
                        if is_scalar(v) {
                            line.push(text_scalar(v));
                        } else {
                            nested.push((k, v));
                        }
                    }
                }
                Some(cols) => {
                    line.extend(cols.iter().map(|c| map.get(*c).map(text_scalar).unwrap_or_default()));
                    nested.extend(
                        fields
                            .into_iter()
                            .filter(|(k, _)| !cols.contains(&k.as_str()))
                            .map(|(k, v)| (k.as_str(), v)),
                    );
                }
            }
            if !line.is_empty() {
                if let Some(id) = identifier {
                    line.insert(0, id.to_uppercase());
                }
                out.push_str(&line.join("\t"));
                out.push('\n');
            }
            for (k, v) in nested {
                text_into(v, Some(k), None, out);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            let mut cols: Vec<&str> = Vec::new();
            for item in items {
                if let Value::Object(map) = item {
                    for (k, v) in map {
                        if is_scalar(v) && !cols.contains(&k.as_str()) {
                            cols.push(k);
                        }
                    }
                }
            }
            cols.sort_unstable();
            for item in items {
                text_into(item, identifier, Some(&cols), out);
            }
        }
        Value::Array(items) => {
            let (scalars, lists): (Vec<&Value>, Vec<&Value>) = items.iter().partition(|v| is_scalar(v));
            if !scalars.is_empty() {
                match identifier {
                    Some(id) => {
                        for v in &scalars {
                            out.push_str(&format!("{}\t{}\n", id.to_uppercase(), text_scalar(v)));
                        }
                    }
                    None => {
                        out.push_str(&scalars.iter().map(|v| text_scalar(v)).collect::<Vec<_>>().join("\t"));
                        out.push('\n');
                    }
                }
            }
            for v in lists {
                text_into(v, identifier, None, out);
            }
        }
        scalar => {
            out.push_str(&text_scalar(scalar));
            out.push('\n');
        }
    }
}

/// One box of `--output table`: a title, then either key/value rows (an object) or a header
/// and one row per item (a list), then the boxes of nested objects and lists.
struct Section {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    children: Vec<Section>,
}

fn cell(v: &Value) -> String {
    scalar_text(v).unwrap_or_default()
}

fn is_scalar(v: &Value) -> bool {
    !v.is_object() && !v.is_array()
}

fn section(title: &str, value: &Value) -> Section {
    let mut s =
        Section { title: title.to_owned(), headers: Vec::new(), rows: Vec::new(), children: Vec::new() };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if is_scalar(v) {
                    s.rows.push(vec![k.clone(), cell(v)]);
                } else {
                    s.children.push(section(k, v));
                }
            }
        }
        Value::Array(items) if items.iter().all(is_scalar) => {
            s.rows.extend(items.iter().map(|v| vec![cell(v)]));
        }
        Value::Array(items) => {
            for item in items {
                if let Value::Object(map) = item {
                    for (k, v) in map {
                        if is_scalar(v) && !s.headers.contains(k) {
                            s.headers.push(k.clone());
                        }
                    }
                }
            }
            for item in items {
                match item {
                    Value::Object(map) => {
                        if !s.headers.is_empty() {
                            s.rows.push(
                                s.headers.iter().map(|h| map.get(h).map(cell).unwrap_or_default()).collect(),
                            );
                        }
                        for (k, v) in map {
                            if !is_scalar(v) {
                                s.children.push(section(k, v));
                            }
                        }
                    }
                    Value::Array(_) => s.children.push(section(title, item)),
                    scalar => s.rows.push(vec![cell(scalar)]),
                }
            }
        }
        scalar => s.rows.push(vec![cell(scalar)]),
    }
    s
}

fn columns(s: &Section) -> Vec<usize> {
    let n = s.rows.iter().map(Vec::len).chain([s.headers.len()]).max().unwrap_or(0);
    let mut widths = vec![0usize; n];
    for row in s.rows.iter().chain([&s.headers]) {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count() + 4);
        }
    }
    widths
}

/// The width the widest box of the tree needs, nesting included.
fn needed(s: &Section, depth: usize) -> usize {
    let cols = columns(s);
    let body = cols.iter().sum::<usize>() + cols.len().saturating_sub(1) + 2;
    let own = body.max(s.title.chars().count() + 4) + 2 * depth;
    s.children.iter().map(|c| needed(c, depth + 1)).fold(own, usize::max)
}

fn centered(text: &str, width: usize) -> String {
    let len = text.chars().count();
    let left = width.saturating_sub(len) / 2;
    format!("{}{}{}", " ".repeat(left), text, " ".repeat(width.saturating_sub(len + left)))
}

fn draw(s: &Section, depth: usize, width: usize, out: &mut Vec<String>) {
    let (pre, post) = ("|".repeat(depth), "|".repeat(depth));
    let inner = width - 2 * depth;
    if depth == 0 {
        out.push("-".repeat(width));
    }
    out.push(format!("{pre}|{}|{post}", centered(&s.title, inner - 2)));
    let mut cols = columns(s);
    if !cols.is_empty() {
        let used = cols.iter().sum::<usize>() + cols.len() - 1;
        if let Some(last) = cols.last_mut() {
            *last += (inner - 2).saturating_sub(used);
        }
        let rule =
            format!("{pre}+{}+{post}", cols.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("+"));
        out.push(rule.clone());
        if !s.headers.is_empty() {
            let cells: Vec<String> = s.headers.iter().zip(&cols).map(|(h, w)| centered(h, *w)).collect();
            out.push(format!("{pre}|{}|{post}", cells.join("|")));
            out.push(rule.clone());
        }
        for row in &s.rows {
            let cells: Vec<String> = cols
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let c = row.get(i).map(String::as_str).unwrap_or("");
                    format!("  {c}{}", " ".repeat(w.saturating_sub(c.chars().count() + 2)))
                })
                .collect();
            out.push(format!("{pre}|{}|{post}", cells.join("|")));
        }
        out.push(rule);
    } else {
        out.push(format!("{pre}+{}+{post}", "-".repeat(inner - 2)));
    }
    for c in &s.children {
        draw(c, depth + 1, width, out);
    }
}

/// Renders a value as the aws cli's `--output table` does: a box titled with the operation
/// (`ListKeys`), an object's scalar fields as name/value rows, a list of objects as a header and
/// one row per item, nested objects and lists as boxes inside, titled with their field name.
pub fn table(operation: &str, value: &Value) -> String {
    if value.as_object().is_some_and(|m| m.is_empty()) || value.is_null() {
        return String::new();
    }
    let s = section(operation, value);
    let width = needed(&s, 0);
    let mut out = Vec::new();
    draw(&s, 0, width, &mut out);
    out.join("\n") + "\n"
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
        assert!(query(&v, "Keys[0").is_err());
        assert_eq!(query(&v, "KeyMetadata.[KeyId]").unwrap(), json!(["k1"]));
        assert_eq!(query(&v, "KeyMetadata.{a: KeyId}").unwrap(), json!({"a": "k1"}));
        assert_eq!(query(&v, "length(Keys)").unwrap(), json!(2));
        assert_eq!(query(&v, "Keys[?KeyId=='b'].KeyId | [0]").unwrap(), json!("b"));
    }

    #[test]
    fn query_is_refused_before_use() {
        for bad in ["Keys[", "KeyMetadata.{a KeyId}", "nosuchfunction(Keys)", "length(", "`{bad`", ""] {
            assert!(Query::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Query::parse("nosuchfunction(Keys)").unwrap_err().contains("nosuchfunction"));
    }

    #[test]
    fn query_keeps_field_order() {
        let v = json!({"KeyMetadata": {"KeyId": "k", "Arn": "a", "Enabled": true}});
        let out = query(&v, "KeyMetadata").unwrap();
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["KeyId", "Arn", "Enabled"]);
        let out = query(&v, "KeyMetadata.{Z: KeyId, A: Arn}").unwrap();
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["Z", "A"]);
    }

    #[test]
    fn text_follows_the_aws_cli_column_order() {
        // Scalars sorted by field name, whatever the JSON order.
        let v = json!({"KeyId": "k", "CiphertextBlob": "QUJD", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"});
        assert_eq!(text(&v), "QUJD\tSYMMETRIC_DEFAULT\tk\n");
        assert_eq!(text(&json!("QUJD")), "QUJD\n");
        assert_eq!(text(&json!(true)), "True\n");
        assert_eq!(text(&json!(null)), "None\n");
        assert_eq!(text(&json!(["a", "b"])), "a\tb\n", "a bare list of scalars: one line");
        assert_eq!(text(&json!({})), "");
        assert_eq!(text(&json!({"Keys": []})), "");
        // A nested object: its line starts with its field name in capitals; its own nested
        // lists follow, one NAME<TAB>value line per scalar.
        let v = json!({"KeyMetadata": {"KeyId": "k", "Enabled": true, "Arn": "a",
            "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"], "Description": ""}});
        assert_eq!(text(&v), "KEYMETADATA\ta\t\tTrue\tk\nENCRYPTIONALGORITHMS\tSYMMETRIC_DEFAULT\n");
        // A list of objects: the sorted union of scalar fields as columns, empty where missing.
        let v = json!({"Aliases": [{"AliasName": "alias/a", "TargetKeyId": "k", "AliasArn": "arn-a"},
            {"AliasName": "alias/b", "AliasArn": "arn-b"}]});
        assert_eq!(text(&v), "ALIASES\tarn-a\talias/a\tk\nALIASES\tarn-b\talias/b\t\n");
        // Scalars first, then nested values in field-name order.
        let v = json!({"Z": {"B": 1}, "A": [{"C": 2}], "M": 3});
        assert_eq!(text(&v), "3\nA\t2\nZ\t1\n");
        // Tags: lists of objects nested in an item come after its line.
        let v = json!({"Keys": [{"KeyId": "k", "Tags": [{"TagKey": "t", "TagValue": "v"}]}]});
        assert_eq!(text(&v), "KEYS\tk\nTAGS\tt\tv\n");
    }

    #[test]
    fn text_of_a_listing_prints_its_items_and_next_token() {
        let keys = json!([{"KeyId": "a", "KeyArn": "arn-a"}, {"KeyId": "b", "KeyArn": "arn-b"}]);
        assert_eq!(text_listing("Keys", &keys, None, None).unwrap(), "KEYS\tarn-a\ta\nKEYS\tarn-b\tb\n");
        assert_eq!(
            text_listing("Keys", &keys, Some("tok"), None).unwrap(),
            "KEYS\tarn-a\ta\nKEYS\tarn-b\tb\nNEXTTOKEN\ttok\n"
        );
        let q = Query::parse("Keys[].KeyId").unwrap();
        assert_eq!(text_listing("Keys", &keys, Some("tok"), Some(&q)).unwrap(), "a\tb\n");
        let q = Query::parse("NextToken.NextToken").unwrap();
        assert_eq!(text_listing("Keys", &keys, Some("tok"), Some(&q)).unwrap(), "None\ntok\n");
    }

    #[test]
    fn table_draws_boxes() {
        let v = json!({"Keys": [{"KeyId": "a", "KeyArn": "arn-a"}, {"KeyId": "b", "KeyArn": "arn-b"}], "Truncated": false});
        let t = table("ListKeys", &v);
        let lines: Vec<&str> = t.lines().collect();
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "ragged table:\n{t}");
        assert!(lines[1].contains("ListKeys"), "{t}");
        assert!(t.contains("KeyId") && t.contains("KeyArn") && t.contains("arn-b"), "{t}");
        assert!(t.contains("||") && t.contains("Keys"), "lists are nested boxes: {t}");
        let row = lines.iter().find(|l| l.contains("arn-a")).unwrap();
        assert!(row.contains("  a "), "one row per key: {row}");
        assert!(t.contains("Truncated") && t.contains("False"), "{t}");
        assert_eq!(table("EnableKey", &json!({})), "");
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
