//! Aliases: ListAliases (and CreateAlias, UpdateAlias, DeleteAlias, which answer nothing).

use pkms_protocol::{KeyId, UnixTime};
use serde::Serialize;

use super::encoding::{arn_scope, date, display};

/// One ListAliases item (KMS's AliasListEntry), owned. Serialises with `AliasArn` beside the
/// name (in the current [`super::encoding::Style`]'s scope); `TargetKeyId` is the bare key id, as
/// KMS writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasEntry {
    /// AliasName.
    pub alias_name: String,
    /// TargetKeyId.
    pub target_key_id: KeyId,
    /// CreationDate.
    pub creation_date: UnixTime,
    /// LastUpdatedDate.
    pub last_updated_date: UnixTime,
}

/// AliasListEntry as KMS writes it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AliasEntryJson<'a> {
    alias_name: &'a str,
    alias_arn: String,
    #[serde(serialize_with = "display")]
    target_key_id: &'a KeyId,
    #[serde(serialize_with = "date")]
    creation_date: UnixTime,
    #[serde(serialize_with = "date")]
    last_updated_date: UnixTime,
}

impl Serialize for AliasEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let AliasEntry { alias_name, target_key_id, creation_date, last_updated_date } = self;
        AliasEntryJson {
            alias_name,
            alias_arn: arn_scope().alias_arn(alias_name),
            target_key_id,
            creation_date: *creation_date,
            last_updated_date: *last_updated_date,
        }
        .serialize(s)
    }
}

/// One page of ListAliases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasesPage {
    /// Aliases.
    pub aliases: Vec<AliasEntry>,
    /// NextMarker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    /// Truncated.
    pub truncated: bool,
}

impl super::Owned for pkms_protocol::kind::Aliases {
    type Output = AliasesPage;
    fn own(r: pkms_protocol::reply::Aliases<'_>) -> AliasesPage {
        AliasesPage {
            aliases: r
                .aliases
                .iter()
                .map(|a| AliasEntry {
                    alias_name: a.alias_name.to_owned(),
                    target_key_id: a.target_key_id,
                    creation_date: a.creation_date,
                    last_updated_date: a.last_updated_date,
                })
                .collect(),
            next_marker: r.next_marker.map(str::to_owned),
            truncated: r.truncated,
        }
    }
}
