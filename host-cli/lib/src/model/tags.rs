//! Tags: TagResource, UntagResource (which answer nothing) and ListResourceTags.

use serde::Serialize;

/// One tag, owned: `{"TagKey": …, "TagValue": …}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// TagKey.
    pub tag_key: String,
    /// TagValue.
    pub tag_value: String,
}

impl Tag {
    /// A tag from key and value.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag { tag_key: key.into(), tag_value: value.into() }
    }
}

/// ListResourceTags's answer as KMS writes it (the token returns every tag at once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListResourceTagsOutput {
    /// Tags.
    pub tags: Vec<Tag>,
    /// Truncated: always false.
    pub truncated: bool,
}

impl ListResourceTagsOutput {
    /// The complete list `tags`.
    pub fn complete(tags: Vec<Tag>) -> Self {
        ListResourceTagsOutput { tags, truncated: false }
    }
}

impl super::Owned for pkms_protocol::kind::Tags {
    type Output = Vec<Tag>;
    fn own(r: pkms_protocol::reply::Tags<'_>) -> Vec<Tag> {
        r.tags.iter().map(|t| Tag::new(t.tag_key, t.tag_value)).collect()
    }
}
