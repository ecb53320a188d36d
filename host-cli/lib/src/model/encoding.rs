//! How reply fields are written in KMS's JSON: the `#[serde(serialize_with = …)]` helpers of
//! [`crate::model`]. Blobs are standard base64 with padding; key ids, key material ids and KMS
//! enumerations are their display forms (`SYMMETRIC_DEFAULT`, …); the key ids KMS answers as
//! key ARNs ([`key_arn`] fields, ListKeys entries, KeyMetadata's `Arn`, ListAliases' `AliasArn`)
//! are ARNs of the current [`Style`]'s [`ArnScope`].
//!
//! One switch, [`with_style`], chooses the rest: the CLI serialises in [`Style::cli`] (dates as
//! ISO-8601 UTC strings, `2025-11-28T12:34:03+00:00`, aws-cli v2's default timestamp format), the
//! KMS endpoint in [`Style::wire`] (dates as epoch seconds, KMS's wire form). Outside
//! [`with_style`] the style is the CLI's with the default scope ([`ArnScope::default`]).

use std::cell::RefCell;
use std::fmt::Display;

use base64::Engine as _;
use pkms_protocol::{KeyId, Platform};
use serde::ser::Serializer;
use zeroize::Zeroizing;

/// The region ARNs name unless configured otherwise (`--region`, `AWS_REGION`,
/// `AWS_DEFAULT_REGION`).
pub const DEFAULT_REGION: &str = "us-east-1";

/// The account ARNs name unless configured otherwise (`--account-id`): the example account of
/// AWS's documentation, as local-kms uses.
pub const DEFAULT_ACCOUNT_ID: &str = "111122223333";

/// Where ARNs point: the region and account the token serves as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    /// The region, e.g. `us-east-1`.
    pub region: String,
    /// The 12-digit account id.
    pub account_id: String,
}

impl Default for ArnScope {
    /// [`DEFAULT_REGION`] and [`DEFAULT_ACCOUNT_ID`].
    fn default() -> Self {
        ArnScope { region: DEFAULT_REGION.to_owned(), account_id: DEFAULT_ACCOUNT_ID.to_owned() }
    }
}

impl ArnScope {
    /// A scope after checking its parts: a region of letters, digits and `-`, an account id
    /// of 12 digits (the message names what is wrong).
    pub fn new(region: &str, account_id: &str) -> Result<ArnScope, String> {
        if region.is_empty()
            || region.len() > 32
            || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!("region {region:?}: letters, digits and '-' only, e.g. us-east-1"));
        }
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("account id {account_id:?}: 12 digits"));
        }
        Ok(ArnScope { region: region.to_owned(), account_id: account_id.to_owned() })
    }

    /// `arn:aws:kms:REGION:ACCOUNT:` — what every key and alias ARN starts with.
    pub fn prefix(&self) -> String {
        format!("arn:aws:kms:{}:{}:", self.region, self.account_id)
    }

    /// `arn:aws:kms:REGION:ACCOUNT:key/ID`.
    pub fn key_arn(&self, key_id: &KeyId) -> String {
        format!("{}key/{key_id}", self.prefix())
    }

    /// `arn:aws:kms:REGION:ACCOUNT:alias/NAME` for an alias name `alias/NAME`.
    pub fn alias_arn(&self, alias_name: &str) -> String {
        format!("{}{alias_name}", self.prefix())
    }

    /// `arn:aws:iam::ACCOUNT:root`: the account, as KMS names a grant's IssuingAccount.
    pub fn account_arn(&self) -> String {
        format!("arn:aws:iam::{}:root", self.account_id)
    }
}

/// How the reply types serialise (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Style {
    /// Dates as epoch seconds (KMS's wire) instead of ISO-8601 strings (the CLI).
    pub epoch_dates: bool,
    /// The region and account of ARNs.
    pub scope: ArnScope,
}

impl Style {
    /// KMS's wire form, with ARNs in `scope`.
    pub fn wire(scope: ArnScope) -> Style {
        Style { epoch_dates: true, scope }
    }

    /// The CLI's form (aws-cli v2's output), with ARNs in `scope`.
    pub fn cli(scope: ArnScope) -> Style {
        Style { epoch_dates: false, scope }
    }
}

thread_local! {
    static STYLE: RefCell<Style> = RefCell::new(Style::default());
}

/// Runs `f` (which serialises reply types) with `style` on this thread, then restores the
/// previous style (the style is per thread and `f` only serialises).
pub fn with_style<R>(style: &Style, f: impl FnOnce() -> R) -> R {
    let previous = STYLE.with(|s| s.replace(style.clone()));
    let r = f();
    STYLE.with(|s| *s.borrow_mut() = previous);
    r
}

fn epoch_dates() -> bool {
    STYLE.with(|s| s.borrow().epoch_dates)
}

/// The current style's region and account.
pub fn arn_scope() -> ArnScope {
    STYLE.with(|s| s.borrow().scope.clone())
}

/// A key id that KMS answers as a key ARN: the ARN in the current style's scope.
pub fn key_arn<S: Serializer>(key_id: &KeyId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&arn_scope().key_arn(key_id))
}

/// A grant's issuer as KMS's IssuingAccount: the account's root ARN
/// ([`ArnScope::account_arn`]); the issuing principal is in the token's audit log.
pub fn issuing_account<S: Serializer>(_issuer: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&arn_scope().account_arn())
}

/// Formats Unix seconds as ISO-8601 UTC (`2026-11-28T12:34:03+00:00`), as aws-cli v2 prints
/// timestamps by default.
pub fn iso8601(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00", secs / 3600, (secs / 60) % 60, secs % 60)
}

/// Standard base64 with padding, as aws-cli v2 prints and reads blobs.
pub fn base64_text(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A blob (bytes, or a wiped-on-drop plaintext) as base64 text; the text of a plaintext is
/// wiped too once written.
pub fn base64<T: AsRef<[u8]> + ?Sized, S: Serializer>(bytes: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&Zeroizing::new(base64_text(bytes.as_ref())))
}

/// An optional blob as base64 (`None` only reaches here when the field is not skipped).
pub fn opt_base64<T: AsRef<[u8]>, S: Serializer>(bytes: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => base64(b, s),
        None => s.serialize_none(),
    }
}

/// A Unix time as an ISO-8601 UTC string (epoch seconds under [`Style::wire`]).
pub fn date<S: Serializer>(unix: &u64, s: S) -> Result<S::Ok, S::Error> {
    if epoch_dates() {
        return s.serialize_u64(*unix);
    }
    s.serialize_str(&iso8601(*unix))
}

/// An optional Unix time as an ISO-8601 UTC string.
pub fn opt_date<S: Serializer>(unix: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match unix {
        Some(t) => date(t, s),
        None => s.serialize_none(),
    }
}

/// A value by its display form: key ids (UUID), key material ids (hex) and KMS enumerations
/// (their KMS names).
pub fn display<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// An optional value by its display form.
pub fn opt_display<T: Display, S: Serializer>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// A list of values by their display forms.
pub fn display_list<T: Display, S: Serializer>(values: &[T], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(values.iter().map(ToString::to_string))
}

/// A list of key ids as KMS's ListKeys writes it: `[{"KeyId": …, "KeyArn": …}, …]`.
pub fn key_list<S: Serializer>(keys: &[KeyId], s: S) -> Result<S::Ok, S::Error> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry<'a> {
        #[serde(serialize_with = "display")]
        key_id: &'a KeyId,
        key_arn: String,
    }
    let scope = arn_scope();
    s.collect_seq(keys.iter().map(|k| Entry { key_id: k, key_arn: scope.key_arn(k) }))
}

/// `EMULATED` or `HARDWARE`.
pub fn platform<S: Serializer>(platform: &Platform, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match platform {
        Platform::Emulated => "EMULATED",
        Platform::Hardware => "HARDWARE",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso8601_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00+00:00");
        assert_eq!(iso8601(1_764_333_243), "2025-11-28T12:34:03+00:00");
        assert_eq!(iso8601(4_102_444_799), "2099-12-31T23:59:59+00:00");
    }

    #[test]
    fn the_style_chooses_dates_and_the_arns_scope() {
        #[derive(serde::Serialize)]
        struct T {
            #[serde(serialize_with = "date")]
            d: u64,
            #[serde(serialize_with = "key_arn")]
            k: KeyId,
            #[serde(serialize_with = "key_list")]
            l: Vec<KeyId>,
        }
        let t = T { d: 1_764_333_243, k: KeyId([0x11; 16]), l: vec![KeyId([0x11; 16])] };
        let id = KeyId([0x11; 16]).to_string();
        let default_arn = format!("arn:aws:kms:us-east-1:111122223333:key/{id}");
        let cli = serde_json::to_value(&t).unwrap();
        assert_eq!(cli["d"], "2025-11-28T12:34:03+00:00");
        assert_eq!(cli["k"], default_arn.as_str());
        assert_eq!(cli["l"][0]["KeyId"], id.as_str());
        assert_eq!(cli["l"][0]["KeyArn"], default_arn.as_str());
        let scope = ArnScope::new("eu-west-1", "444455556666").unwrap();
        let arn = format!("arn:aws:kms:eu-west-1:444455556666:key/{id}");
        let wire = with_style(&Style::wire(scope.clone()), || serde_json::to_value(&t).unwrap());
        assert_eq!(wire["d"], 1_764_333_243u64);
        assert_eq!(wire["k"], arn.as_str());
        assert_eq!(wire["l"][0]["KeyArn"], arn.as_str());
        let cli_scoped = with_style(&Style::cli(scope), || serde_json::to_value(&t).unwrap());
        assert_eq!(cli_scoped["d"], "2025-11-28T12:34:03+00:00");
        assert_eq!(cli_scoped["k"], arn.as_str());
        // The style ends with with_style.
        assert_eq!(serde_json::to_value(&t).unwrap(), cli);
    }

    #[test]
    fn a_scope_is_a_region_and_a_twelve_digit_account() {
        assert_eq!(ArnScope::new(DEFAULT_REGION, DEFAULT_ACCOUNT_ID).unwrap(), ArnScope::default());
        for (region, account) in [
            ("", "111122223333"),
            ("us east", "111122223333"),
            ("us-east-1", "1111"),
            ("us-east-1", "11112222333x"),
        ] {
            assert!(ArnScope::new(region, account).is_err(), "{region} {account}");
        }
        assert_eq!(ArnScope::default().account_arn(), "arn:aws:iam::111122223333:root");
    }

    #[test]
    fn blobs_are_padded_standard_base64() {
        assert_eq!(base64_text(b"hello"), "aGVsbG8=");
        assert_eq!(base64_text(&[0xfb, 0xff]), "+/8=");
    }
}
