//! Aliases: ListAliases (and CreateAlias, UpdateAlias, DeleteAlias, which answer nothing).

use pkms_protocol::{KeyId, UnixTime};
use serde::Serialize;

use super::encoding::{date, display};

/// One ListAliases item (KMS's AliasListEntry), owned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasEntry {
    /// AliasName.
    pub alias_name: String,
    /// TargetKeyId.
    #[serde(serialize_with = "display")]
    pub target_key_id: KeyId,
    /// CreationDate.
    #[serde(serialize_with = "date")]
    pub creation_date: UnixTime,
    /// LastUpdatedDate.
    #[serde(serialize_with = "date")]
    pub last_updated_date: UnixTime,
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
