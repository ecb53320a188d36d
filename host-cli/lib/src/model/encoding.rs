//! How reply fields are written in KMS's JSON: the `#[serde(serialize_with = …)]` helpers of
//! [`crate::model`]. Blobs are standard base64 with padding; dates are ISO-8601 UTC strings
//! (`2025-11-28T12:34:03+00:00`, aws-cli v2's default timestamp format); key ids, key material
//! ids and KMS enumerations are their display forms (`SYMMETRIC_DEFAULT`, …).
//!
//! That is the CLI's form. The KMS endpoint writes the same types in KMS's wire form: it
//! serialises inside [`with_style`] with [`Style::wire`], and then dates are epoch seconds
//! (numbers) and the key ids KMS answers as key ARNs ([`key_arn`] fields, ListKeys entries) are
//! ARNs of the style's region and account.

use std::cell::RefCell;
use std::fmt::Display;

use base64::Engine as _;
use pkms_protocol::{KeyId, Platform};
use serde::ser::{SerializeMap, Serializer};
use zeroize::Zeroizing;

/// Where ARNs point: the region and account a KMS endpoint serves as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    /// The region, e.g. `us-east-1`.
    pub region: String,
    /// The 12-digit account id.
    pub account_id: String,
}

impl ArnScope {
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
}

/// How the reply types serialise (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Style {
    /// Dates as epoch seconds (KMS's wire) instead of ISO-8601 strings (the CLI).
    pub epoch_dates: bool,
    /// Key ids as key ARNs where KMS answers ARNs; `None`: bare key ids.
    pub arns: Option<ArnScope>,
}

impl Style {
    /// KMS's wire form, with ARNs in `scope`.
    pub fn wire(scope: ArnScope) -> Style {
        Style { epoch_dates: true, arns: Some(scope) }
    }
}

thread_local! {
    static STYLE: RefCell<Style> = RefCell::new(Style::default());
}

/// Runs `f` (which serialises reply types) with `style` on this thread, then restores the
/// previous style (also when `f` panics is not needed: the style is per thread and `f` only
/// serialises).
pub fn with_style<R>(style: &Style, f: impl FnOnce() -> R) -> R {
    let previous = STYLE.with(|s| s.replace(style.clone()));
    let r = f();
    STYLE.with(|s| *s.borrow_mut() = previous);
    r
}

fn epoch_dates() -> bool {
    STYLE.with(|s| s.borrow().epoch_dates)
}

fn arn_scope() -> Option<ArnScope> {
    STYLE.with(|s| s.borrow().arns.clone())
}

/// A key id that KMS answers as a key ARN: the ARN under a [`Style`] with an [`ArnScope`],
/// else the bare id.
pub fn key_arn<S: Serializer>(key_id: &KeyId, s: S) -> Result<S::Ok, S::Error> {
    match arn_scope() {
        Some(scope) => s.serialize_str(&scope.key_arn(key_id)),
        None => s.collect_str(key_id),
    }
}

/// A grant's issuer: the principal's name, or under a [`Style`] with an [`ArnScope`] the
/// account's root ARN, as KMS's IssuingAccount.
pub fn issuing_account<S: Serializer>(issuer: &str, s: S) -> Result<S::Ok, S::Error> {
    match arn_scope() {
        Some(scope) => s.serialize_str(&format!("arn:aws:iam::{}:root", scope.account_id)),
        None => s.serialize_str(issuer),
    }
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

/// A list of key ids as KMS's ListKeys writes it: `[{"KeyId": …}, …]`, with `KeyArn` beside
/// each id under a [`Style`] with an [`ArnScope`].
pub fn key_list<S: Serializer>(keys: &[KeyId], s: S) -> Result<S::Ok, S::Error> {
    struct Entry<'a>(&'a KeyId, Option<&'a ArnScope>);
    impl serde::Serialize for Entry<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(None)?;
            map.serialize_entry("KeyId", &self.0.to_string())?;
            if let Some(scope) = self.1 {
                map.serialize_entry("KeyArn", &scope.key_arn(self.0))?;
            }
            map.end()
        }
    }
    let scope = arn_scope();
    s.collect_seq(keys.iter().map(|k| Entry(k, scope.as_ref())))
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
    fn the_wire_style_writes_epoch_dates_and_key_arns() {
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
        let cli = serde_json::to_value(&t).unwrap();
        assert_eq!(cli["d"], "2025-11-28T12:34:03+00:00");
        assert_eq!(cli["k"], id.as_str());
        assert!(cli["l"][0].get("KeyArn").is_none());
        let scope = ArnScope { region: "eu-west-1".into(), account_id: "111122223333".into() };
        let wire = with_style(&Style::wire(scope), || serde_json::to_value(&t).unwrap());
        assert_eq!(wire["d"], 1_764_333_243u64);
        let arn = format!("arn:aws:kms:eu-west-1:111122223333:key/{id}");
        assert_eq!(wire["k"], arn.as_str());
        assert_eq!(wire["l"][0]["KeyArn"], arn.as_str());
        // The style ends with with_style.
        assert_eq!(serde_json::to_value(&t).unwrap(), cli);
    }

    #[test]
    fn blobs_are_padded_standard_base64() {
        assert_eq!(base64_text(b"hello"), "aGVsbG8=");
        assert_eq!(base64_text(&[0xfb, 0xff]), "+/8=");
    }
}
