//! Parsing of aws-cli-style arguments: blobs (`fileb://PATH`, `file://PATH`, base64),
//! encryption contexts (`k=v`, repeatable, or a JSON object), tags (`TagKey=k,TagValue=v`,
//! `k=v`, or JSON) and KMS enumeration names.

use std::collections::BTreeSet;

use base64::Engine as _;
use pkms_lib::model::Tag;
use zeroize::Zeroizing;

/// A blob argument's bytes (wiped on drop: blobs are often plaintexts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob(pub Zeroizing<Vec<u8>>);

impl std::ops::Deref for Blob {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Blob {
    /// The bytes, or a ValidationException when there are more than `limit` (a file is read only
    /// up to `limit + 1` bytes, so the count shown is a lower bound).
    pub fn within(&self, limit: usize, field: &str) -> anyhow::Result<&[u8]> {
        if self.0.len() > limit {
            return Err(super::usage(format!(
                "{field} is more than {limit} bytes ({} read), the most this operation takes",
                self.0.len()
            )));
        }
        Ok(&self.0)
    }
}

/// Reads at most `limit` bytes of the file at `path`.
pub fn read_bounded(path: &str, limit: usize) -> Result<Zeroizing<Vec<u8>>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(limit as u64).read_to_end(&mut bytes).map_err(|e| format!("cannot read {path}: {e}"))?;
    Ok(bytes)
}

/// A clap value parser for a blob argument of at most `limit` bytes ([`parse_blob`]).
pub fn blob_parser(limit: usize) -> impl Fn(&str) -> Result<Blob, String> + Clone + Send + Sync + 'static {
    move |arg: &str| parse_blob(arg, limit)
}

/// Parses a blob argument as aws-cli v2 does (`cli_binary_format=base64`, standard base64 with
/// padding):
/// * `fileb://PATH`: the file's raw bytes;
/// * `file://PATH`: the file's text, which must be base64;
/// * anything else: base64 text.
///
/// A file is read only up to `limit + 1` bytes (its base64 text up to about twice that): enough
/// to tell that it is too large for the operation (see [`Blob::within`]) without reading it all,
/// so `fileb:///dev/zero` fails at once.
pub fn parse_blob(arg: &str, limit: usize) -> Result<Blob, String> {
    if let Some(path) = arg.strip_prefix("fileb://") {
        return read_bounded(path, limit + 1).map(Blob);
    }
    if let Some(path) = arg.strip_prefix("file://") {
        // Base64 takes 4 characters per 3 bytes, plus line ends.
        let text_limit = 2 * limit + 1024;
        let bytes = read_bounded(path, text_limit + 1)?;
        if bytes.len() > text_limit {
            return Err(format!("{path} holds more base64 text than this operation takes ({limit} bytes)"));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| format!("{path} does not hold base64 text (use fileb://{path} for raw bytes)"))?;
        return decode_b64(text)
            .map_err(|_| format!("{path} does not hold base64 text (use fileb://{path} for raw bytes)"));
    }
    decode_b64(arg).map_err(|_| "not valid base64; pass raw bytes from a file with fileb://PATH".to_owned())
}

fn decode_b64(text: &str) -> Result<Blob, base64::DecodeError> {
    let compact: Zeroizing<String> =
        Zeroizing::new(text.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    let bytes = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes())?;
    Ok(Blob(Zeroizing::new(bytes)))
}

/// Some pairs of an encryption context, from one `--encryption-context` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextArg(pub Vec<(String, String)>);

/// Parses one `--encryption-context` argument:
/// * aws-cli shorthand `k1=v1,k2=v2` when every comma-separated part holds a `=`;
/// * else one `key=value` pair, split at the first `=` (the value may hold `=` and `,`);
/// * or a JSON object of strings (`{"k":"v",…}`).
pub fn parse_context(arg: &str) -> Result<ContextArg, String> {
    let trimmed = arg.trim_start();
    if trimmed.starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(trimmed).map_err(|e| format!("not a JSON object: {e}"))?;
        let mut pairs = Vec::with_capacity(map.len());
        for (k, v) in map {
            match v {
                serde_json::Value::String(s) => pairs.push((k, s)),
                other => return Err(format!("the value of {k:?} must be a string, not {other}")),
            }
        }
        return Ok(ContextArg(pairs));
    }
    let one_pair = |part: &str| match part.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err("expected KEY=VALUE (repeat the flag for more pairs) or a JSON object".to_owned()),
    };
    if arg.contains(',') && arg.split(',').all(|part| part.contains('=')) {
        return arg.split(',').map(one_pair).collect::<Result<Vec<_>, _>>().map(ContextArg);
    }
    one_pair(arg).map(|p| ContextArg(vec![p]))
}

/// Joins repeated `--encryption-context` arguments; a key given twice is an error (the order of
/// pairs does not matter to the token).
pub fn merge_context(args: &[ContextArg]) -> Result<Vec<(String, String)>, String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (k, v) in args.iter().flat_map(|a| a.0.iter()) {
        if !seen.insert(k.clone()) {
            return Err(format!("encryption context key {k:?} is given twice"));
        }
        out.push((k.clone(), v.clone()));
    }
    Ok(out)
}

/// Tags from one `--tags` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagsArg(pub Vec<Tag>);

/// Parses one `--tags` argument: aws shorthand `TagKey=k,TagValue=v`, plain `k=v`, or JSON
/// (`[{"TagKey":"k","TagValue":"v"}]`, a single such object, or `{"k":"v"}`).
pub fn parse_tags(arg: &str) -> Result<TagsArg, String> {
    let trimmed = arg.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        let value: serde_json::Value =
            serde_json::from_str(trimmed).map_err(|e| format!("not valid JSON: {e}"))?;
        return tags_from_json(&value).map(TagsArg);
    }
    if let Some(rest) = arg.strip_prefix("TagKey=") {
        let (key, value) = match rest.split_once(",TagValue=") {
            Some((k, v)) => (k, v),
            None => (rest, ""),
        };
        if key.is_empty() {
            return Err("TagKey must not be empty".to_owned());
        }
        return Ok(TagsArg(vec![Tag::new(key, value)]));
    }
    match arg.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok(TagsArg(vec![Tag::new(k, v)])),
        _ => Err("expected TagKey=KEY,TagValue=VALUE or KEY=VALUE".to_owned()),
    }
}

fn tags_from_json(value: &serde_json::Value) -> Result<Vec<Tag>, String> {
    use serde_json::Value;
    let str_field = |o: &serde_json::Map<String, Value>, name: &str| -> Result<Option<String>, String> {
        match o.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("{name} must be a string, not {other}")),
        }
    };
    match value {
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(tags_from_json(item)?);
            }
            Ok(out)
        }
        Value::Object(o) if o.contains_key("TagKey") => {
            let key = str_field(o, "TagKey")?.unwrap_or_default();
            let value = str_field(o, "TagValue")?.unwrap_or_default();
            Ok(vec![Tag::new(key, value)])
        }
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok(Tag::new(k.clone(), s.clone())),
                other => Err(format!("the value of tag {k:?} must be a string, not {other}")),
            })
            .collect(),
        other => Err(format!("expected tags, got {other}")),
    }
}

/// Flattens repeated `--tags` arguments.
pub fn merge_tags(args: &[TagsArg]) -> Vec<Tag> {
    args.iter().flat_map(|a| a.0.iter().cloned()).collect()
}

/// A clap value parser for a KMS enumeration of the protocol crate (exact KMS names; the
/// possible values show in `--help` and in errors).
macro_rules! kms_value_parser {
    ($ty:ty) => {
        clap::builder::TypedValueParser::try_map(
            clap::builder::PossibleValuesParser::new(<$ty>::ALL.iter().map(|v| v.as_str())),
            |s: String| s.parse::<$ty>().map_err(|()| format!("unknown value {s}")),
        )
    };
}
pub(crate) use kms_value_parser;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_from_fileb_is_raw_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        std::fs::write(&p, [0u8, 1, 2, 255]).unwrap();
        let b = parse_blob(&format!("fileb://{}", p.display()), 4).unwrap();
        assert_eq!(&*b, &[0u8, 1, 2, 255]);
        assert_eq!(b.within(4, "Message").unwrap(), &[0u8, 1, 2, 255]);
        // Read up to one byte past the limit, which the operation then refuses.
        let b = parse_blob(&format!("fileb://{}", p.display()), 2).unwrap();
        assert_eq!(&*b, &[0u8, 1, 2]);
        assert!(b.within(2, "Message").is_err());
        let b = parse_blob("fileb:///dev/zero", 4096).unwrap();
        assert_eq!(b.len(), 4097);
    }

    #[test]
    fn blob_from_file_is_base64_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.b64");
        std::fs::write(&p, "aGVs\nbG8=\n").unwrap();
        assert_eq!(&*parse_blob(&format!("file://{}", p.display()), 5).unwrap(), b"hello");
        std::fs::write(&p, "not base64!").unwrap();
        let err = parse_blob(&format!("file://{}", p.display()), 100).unwrap_err();
        assert!(err.contains("fileb://"), "{err}");
    }

    #[test]
    fn blob_inline_is_base64() {
        assert_eq!(&*parse_blob("aGVsbG8=", 5).unwrap(), b"hello");
        let err = parse_blob("hello world", 100).unwrap_err();
        assert!(err.contains("base64") && err.contains("fileb://"), "{err}");
        assert!(parse_blob("fileb:///no/such/file", 100).unwrap_err().contains("/no/such/file"));
        assert!(parse_blob("file:///dev/zero", 100).unwrap_err().contains("more base64 text"));
    }

    #[test]
    fn context_pairs_and_json() {
        assert_eq!(parse_context("app=bar").unwrap().0, vec![("app".to_owned(), "bar".to_owned())]);
        assert_eq!(parse_context("k=a=b,c").unwrap().0, vec![("k".to_owned(), "a=b,c".to_owned())]);
        // aws-cli shorthand.
        assert_eq!(
            parse_context("app=bar,env=test").unwrap().0,
            vec![("app".to_owned(), "bar".to_owned()), ("env".to_owned(), "test".to_owned())]
        );
        assert!(parse_context("a=1,=2").is_err());
        assert_eq!(parse_context("k=").unwrap().0, vec![("k".to_owned(), String::new())]);
        assert!(parse_context("=v").is_err());
        assert!(parse_context("novalue").is_err());
        let j = parse_context(r#"{"a":"1","b":"2"}"#).unwrap().0;
        assert_eq!(j.len(), 2);
        assert!(parse_context(r#"{"a":1}"#).is_err());
    }

    #[test]
    fn merged_context_refuses_duplicate_keys() {
        let a = parse_context("a=1").unwrap();
        let b = parse_context("b=2").unwrap();
        assert_eq!(merge_context(&[a.clone(), b]).unwrap().len(), 2);
        let a2 = parse_context("a=3").unwrap();
        assert!(merge_context(&[a, a2]).unwrap_err().contains("\"a\""));
    }

    #[test]
    fn tags_in_every_form() {
        assert_eq!(parse_tags("TagKey=team,TagValue=infra").unwrap().0, vec![Tag::new("team", "infra")]);
        assert_eq!(parse_tags("team=infra").unwrap().0, vec![Tag::new("team", "infra")]);
        assert_eq!(parse_tags("TagKey=solo").unwrap().0, vec![Tag::new("solo", "")]);
        assert_eq!(
            parse_tags(r#"[{"TagKey":"a","TagValue":"1"},{"TagKey":"b","TagValue":"2"}]"#).unwrap().0,
            vec![Tag::new("a", "1"), Tag::new("b", "2")]
        );
        assert_eq!(parse_tags(r#"{"a":"1"}"#).unwrap().0, vec![Tag::new("a", "1")]);
        assert!(parse_tags("=x").is_err());
        assert!(parse_tags("TagKey=,TagValue=x").is_err());
    }
}

/// The aws cli's pagination flags of list commands (`--starting-token` is the command's own).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Paging {
    /// At most this many items in all; when more remain, the output's NextToken (and
    /// NextMarker) continues the listing with --starting-token.
    #[arg(long, conflicts_with = "limit", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_items: Option<u32>,
    /// Items per request to the token (1-1000; every page is still fetched).
    #[arg(long, conflicts_with = "limit", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub page_size: Option<u16>,
}

/// What [`collect_pages`] gathered: the items, and where the listing continues when
/// `--max-items` stopped it early.
pub struct Collected<T> {
    /// The items, in the token's order.
    pub items: Vec<T>,
    /// The marker that continues the listing (`--starting-token`), if items remain.
    pub next: Option<String>,
}

/// Fetches pages from `start` on with `fetch(limit, marker) -> (items, next marker if
/// truncated)`, `--page-size` items per request, until the listing ends or `--max-items` are
/// gathered (never fetching more than that, so the continuation marker skips nothing).
pub fn collect_pages<T>(
    paging: &Paging,
    start: Option<String>,
    mut fetch: impl FnMut(Option<u16>, Option<&str>) -> anyhow::Result<(Vec<T>, Option<String>)>,
) -> anyhow::Result<Collected<T>> {
    let mut items: Vec<T> = Vec::new();
    let mut marker = start;
    loop {
        let remaining = paging.max_items.map(|m| (m as usize).saturating_sub(items.len()));
        let want = match (paging.page_size, remaining) {
            (Some(p), Some(r)) => Some((p as usize).min(r)),
            (Some(p), None) => Some(p as usize),
            (None, Some(r)) => Some(r.min(pkms_protocol::limits::MAX_PAGE)),
            (None, None) => None,
        };
        let want = want.map(|w| u16::try_from(w.clamp(1, 1000)).unwrap_or(1000));
        let (page, next) = fetch(want, marker.as_deref())?;
        items.extend(page);
        match next {
            None => return Ok(Collected { items, next: None }),
            Some(m) if paging.max_items.is_some_and(|max| items.len() >= max as usize) => {
                return Ok(Collected { items, next: Some(m) })
            }
            Some(m) => marker = Some(m),
        }
    }
}

/// A list command's output with the aws cli's `NextToken` beside KMS's page fields.
#[derive(serde::Serialize)]
pub struct WithNextToken<'a, P: serde::Serialize> {
    /// The page (`Keys`, `NextMarker`, `Truncated`, …).
    #[serde(flatten)]
    pub page: &'a P,
    /// Where `--max-items` stopped the listing (give it to --starting-token).
    #[serde(rename = "NextToken", skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}
