//! AWS Signature Version 4 verification of incoming requests.
//!
//! The canonical request is rebuilt from the request as received (method, path, query, the
//! headers the client lists in `SignedHeaders`, the SHA-256 of the body as received), the
//! string to sign from it, and the signature with `aws-sigv4`'s signing-key derivation and
//! HMAC; the two signatures are compared in constant time. Checked before that: the
//! credential scope (date of the request, the endpoint's region, service `kms`,
//! `aws4_request`), the request time within [`MAX_SKEW`] of the server clock, `host` among
//! the signed headers, and `x-amz-content-sha256` (when sent) equal to the body's hash.
//!
//! Failures carry the exception AWS answers with: `MissingAuthenticationTokenException` (no
//! signature), `IncompleteSignatureException` (a malformed one), `UnrecognizedClientException`
//! (an unknown access key), `InvalidSignatureException` (a wrong signature, an expired
//! request, a wrong region or service in the scope).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::errors::ApiError;

/// How far the request's time may be from the server's, either way (AWS allows 5 minutes).
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// What a request says about itself, as far as signing is concerned.
pub struct SignedRequest<'a> {
    /// `POST`.
    pub method: &'a str,
    /// The path, e.g. `/`.
    pub path: &'a str,
    /// The raw query string (without `?`), if any.
    pub query: Option<&'a str>,
    /// Every header (name, value); names in any case.
    pub headers: Vec<(String, &'a [u8])>,
    /// The body as received.
    pub body: &'a [u8],
}

impl SignedRequest<'_> {
    fn header_values(&self, lower_name: &str) -> Vec<&[u8]> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(lower_name)).map(|(_, v)| *v).collect()
    }

    fn header(&self, lower_name: &str) -> Option<&str> {
        self.header_values(lower_name).first().and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// The parts of the `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id.
    pub access_key_id: String,
    /// `YYYYMMDD` of the scope.
    pub date: String,
    /// The scope's region.
    pub region: String,
    /// The scope's service.
    pub service: String,
    /// The signed header names, lower case, as listed.
    pub signed_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
}

fn incomplete(message: impl Into<String>) -> ApiError {
    ApiError::new("IncompleteSignatureException", message)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidSignatureException", message)
}

/// Parses `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=a;b, Signature=HEX`.
pub fn parse_authorization(value: &str) -> Result<Authorization, ApiError> {
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| incomplete("Authorization header requires the AWS4-HMAC-SHA256 algorithm"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential =
        credential.ok_or_else(|| incomplete("Authorization header requires 'Credential' parameter"))?;
    let signed =
        signed.ok_or_else(|| incomplete("Authorization header requires 'SignedHeaders' parameter"))?;
    let signature =
        signature.ok_or_else(|| incomplete("Authorization header requires 'Signature' parameter"))?;
    let parts: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = parts[..] else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if terminator != "aws4_request" {
        return Err(invalid(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    if akid.is_empty() || date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete(format!("Credential is malformed: '{credential}'")));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(incomplete("Signature must be 64 hexadecimal characters"));
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_ascii_lowercase).collect();
    if signed_headers.iter().any(String::is_empty) {
        return Err(incomplete("SignedHeaders is malformed"));
    }
    Ok(Authorization {
        access_key_id: akid.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

/// `YYYYMMDDTHHMMSSZ` → Unix seconds.
pub fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + se).ok()
}

/// What verification needs to know.
pub struct Expectation<'a> {
    /// The endpoint's region.
    pub region: &'a str,
    /// The server's clock.
    pub now: SystemTime,
}

/// A request whose signature format, scope and time are right; its signature is checked by
/// [`Checked::verify`] once the secret of [`Checked::access_key_id`] is known.
pub struct Checked {
    auth: Authorization,
    string_to_sign: String,
    time: SystemTime,
}

impl Checked {
    /// The access key id the request names.
    pub fn access_key_id(&self) -> &str {
        &self.auth.access_key_id
    }

    /// Checks the signature with `secret`.
    pub fn verify(&self, secret: &str) -> Result<(), ApiError> {
        let key = aws_sigv4::sign::v4::generate_signing_key(
            secret,
            self.time,
            &self.auth.region,
            &self.auth.service,
        );
        let expected = aws_sigv4::sign::v4::calculate_signature(key, self.string_to_sign.as_bytes());
        if bool::from(expected.as_bytes().ct_eq(self.auth.signature.as_bytes())) {
            Ok(())
        } else {
            Err(invalid(
                "The request signature we calculated does not match the signature you provided. Check your AWS \
                 Secret Access Key and signing method. Consult the service documentation for details.",
            ))
        }
    }
}

/// Checks everything but the secret: the signature's presence and form, the scope, the time,
/// the body hash; builds the string to sign.
pub fn check(req: &SignedRequest<'_>, want: &Expectation<'_>) -> Result<Checked, ApiError> {
    let Some(value) = req.header("authorization") else {
        return Err(ApiError::new("MissingAuthenticationTokenException", "Missing Authentication Token"));
    };
    let auth = parse_authorization(value)?;
    let amz_date = req.header("x-amz-date").ok_or_else(|| {
        incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header")
    })?;
    let unix = parse_amz_date(amz_date)
        .ok_or_else(|| incomplete(format!("X-Amz-Date is malformed: '{amz_date}'")))?;
    if !amz_date.starts_with(&auth.date) {
        return Err(invalid(format!("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'", auth.date, &amz_date[..8])));
    }
    if auth.service != "kms" {
        return Err(invalid(format!(
            "Credential should be scoped to correct service: 'kms'. (not '{}')",
            auth.service
        )));
    }
    if auth.region != want.region {
        return Err(invalid(format!(
            "Credential should be scoped to a valid region, not '{}'. This endpoint serves '{}'.",
            auth.region, want.region
        )));
    }
    let time = UNIX_EPOCH + Duration::from_secs(unix);
    let now = want.now;
    let skew = now.duration_since(time).or_else(|_| time.duration_since(now)).unwrap_or_default();
    if skew > MAX_SKEW {
        let now_text = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        return Err(invalid(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
            amz_basic(now_text.saturating_sub(MAX_SKEW.as_secs())),
            amz_basic(now_text)
        ))
        .or_not_yet_current(time > now, amz_date, now_text));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(invalid("'Host' must be a 'SignedHeader' in the AWS Authorization."));
    }
    let body_hash = hex::encode(Sha256::digest(req.body));
    if let Some(claimed) = req.header("x-amz-content-sha256") {
        if !claimed.eq_ignore_ascii_case(&body_hash) {
            return Err(ApiError::new(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
    }
    let canonical = canonical_request(req, &auth.signed_headers, &body_hash)?;
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}/{}/{}/aws4_request\n{}",
        auth.date,
        auth.region,
        auth.service,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    Ok(Checked { auth, string_to_sign, time })
}

trait NotYetCurrent {
    fn or_not_yet_current(self, future: bool, amz_date: &str, now: u64) -> Self;
}

impl NotYetCurrent for ApiError {
    fn or_not_yet_current(self, future: bool, amz_date: &str, now: u64) -> Self {
        if !future {
            return self;
        }
        invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
            amz_basic(now + MAX_SKEW.as_secs()),
            amz_basic(now)
        ))
    }
}

/// Unix seconds as `YYYYMMDDTHHMMSSZ`.
pub fn amz_basic(unix: u64) -> String {
    let iso = pkms_lib::model::encoding::iso8601(unix); // 2025-11-28T12:34:03+00:00
    let digits: String = iso[..19].chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    format!("{digits}Z")
}

/// The canonical request of SigV4: method, URI-encoded path, sorted query, the signed headers
/// (values trimmed, inner runs of spaces folded, repeated headers joined by commas), the signed
/// header list, the payload hash.
fn canonical_request(
    req: &SignedRequest<'_>,
    signed: &[String],
    body_hash: &str,
) -> Result<String, ApiError> {
    let mut out = String::new();
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&canonical_path(req.path));
    out.push('\n');
    out.push_str(&canonical_query(req.query.unwrap_or("")));
    out.push('\n');
    for name in signed {
        let values = req.header_values(name);
        if values.is_empty() {
            return Err(invalid(format!("The signed header '{name}' is not in the request.")));
        }
        let mut joined = Vec::new();
        for v in values {
            let text =
                std::str::from_utf8(v).map_err(|_| invalid(format!("The header '{name}' is not text")))?;
            joined.push(text.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&joined.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed.join(";"));
    out.push('\n');
    out.push_str(body_hash);
    Ok(out)
}

fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or(""), 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    uri_encode(&percent_decode(path), true)
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&percent_decode(k), false), uri_encode(&percent_decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example (IAM ListUsers, "Create a canonical request for Signature
    /// Version 4"): the same canonical request, string to sign and signature.
    #[test]
    fn the_documented_example_signature_verifies() {
        let req = SignedRequest {
            method: "GET",
            path: "/",
            query: Some("Action=ListUsers&Version=2010-05-08"),
            headers: vec![
                ("Host".into(), b"iam.amazonaws.com".as_slice()),
                ("Content-Type".into(), b"application/x-www-form-urlencoded; charset=utf-8".as_slice()),
                ("X-Amz-Date".into(), b"20150830T123600Z".as_slice()),
                (
                    "Authorization".into(),
                    b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                      SignedHeaders=content-type;host;x-amz-date, \
                      Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
                        .as_slice(),
                ),
            ],
            body: b"",
        };
        let auth = parse_authorization(req.header("authorization").unwrap()).unwrap();
        let canonical =
            canonical_request(&req, &auth.signed_headers, &hex::encode(Sha256::digest(b""))).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(canonical.as_bytes())),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let time = UNIX_EPOCH + Duration::from_secs(parse_amz_date("20150830T123600Z").unwrap());
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let checked = Checked { auth, string_to_sign, time };
        checked.verify("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY").unwrap();
        assert_eq!(checked.verify("another secret").unwrap_err().kind, "InvalidSignatureException");
    }

    #[test]
    fn amz_dates_parse_and_format() {
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(amz_basic(1_440_938_160), "20150830T123600Z");
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        for bad in ["", "20150830123600Z", "20151330T123600Z", "2015083OT123600Z", "20150830T123600"] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn malformed_authorization_headers_are_incomplete_signatures() {
        for bad in [
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/kms, SignedHeaders=host, Signature=00",
            "Basic abc",
            "AWS4-HMAC-SHA256 SignedHeaders=host",
        ] {
            assert_eq!(parse_authorization(bad).unwrap_err().kind, "IncompleteSignatureException", "{bad}");
        }
    }

    #[test]
    fn query_and_path_are_canonical() {
        assert_eq!(canonical_query("b=2&a=1&a%20b=x y"), "a=1&a%20b=x%20y&b=2");
        assert_eq!(canonical_path("/a b/"), "/a%20b/");
        assert_eq!(canonical_path(""), "/");
    }
}
