//! One record per key: metadata, description, tags and every version's wrapped material, all in
//! one record so that every change to a key is atomic. Tags are kept encoded ([`TagList`]).

pub use pkms_protocol::limits::MAX_TAG_BYTES;
use pkms_protocol::limits::{MAX_DESCRIPTION, MAX_TAGS_PER_KEY};
use pkms_protocol::{KeySpec, KeyState, KeyUsage, KeyVersion, RotationType, Tag, UnixTime};
use serde::{Deserialize, Serialize};

use super::FORMAT;

/// Most keys the token holds (bounded by the RAM index).
pub const MAX_KEYS: usize = 1024;
/// Most versions one key holds; rotating further needs RetireKeyVersions first. Bounded so
/// that a key record (metadata, description, tags, versions) always fits in one flash page.
pub const MAX_VERSIONS: usize = 24;
/// Largest key material (HMAC_512: 64 bytes).
pub const MAX_MATERIAL: usize = 64;
/// Wrapped material: ciphertext and the 16-byte AES-GCM tag.
pub const MAX_WRAPPED: usize = MAX_MATERIAL + 16;

/// One version of a key: its material, wrapped under the device root key.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    /// Version number (1 at creation).
    pub version: KeyVersion,
    /// When it was made (RotationDate; creation date for version 1).
    pub created: UnixTime,
    /// How it was made; `None` for the version the key was created with.
    pub rotation: Option<RotationType>,
    /// AES-GCM nonce of the wrapping.
    pub nonce: [u8; 12],
    /// Wrapped material: ciphertext followed by the tag.
    pub wrapped: heapless::Vec<u8, MAX_WRAPPED>,
}

/// A key record: everything about one key, rewritten as a whole on every change so that any
/// change (a rotation, a retirement, a state change) is atomic.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// [`FORMAT`].
    pub format: u8,
    /// KeySpec.
    pub spec: KeySpec,
    /// KeyUsage.
    pub usage: KeyUsage,
    /// KeyState.
    pub state: KeyState,
    /// Sign, GenerateMac, Decrypt and ReEncrypt need a button press.
    pub user_presence: bool,
    /// CreationDate.
    pub created: UnixTime,
    /// DeletionDate when PendingDeletion.
    pub deletion_date: Option<UnixTime>,
    /// PendingWindowInDays when PendingDeletion.
    pub pending_window: Option<u16>,
    /// RotationPeriodInDays when automatic rotation is enabled.
    pub rotation_period: Option<u16>,
    /// The schedule counts from here: when rotation was enabled, or the last automatic rotation.
    pub rotation_base: UnixTime,
    /// Versions below this were retired (their material erased). 1 when none were.
    pub retired_below: KeyVersion,
    /// Description.
    pub description: heapless::String<MAX_DESCRIPTION>,
    /// Tags, encoded by [`TagList`].
    pub tags: heapless::Vec<u8, MAX_TAG_BYTES>,
    /// Versions held, oldest first; never empty for a stored key.
    pub versions: heapless::Vec<VersionEntry, MAX_VERSIONS>,
}

impl KeyRecord {
    /// An empty record (used as scratch space before a load).
    pub const fn empty() -> Self {
        KeyRecord {
            format: FORMAT,
            spec: KeySpec::SymmetricDefault,
            usage: KeyUsage::EncryptDecrypt,
            state: KeyState::Enabled,
            user_presence: false,
            created: 0,
            deletion_date: None,
            pending_window: None,
            rotation_period: None,
            rotation_base: 0,
            retired_below: 1,
            description: heapless::String::new(),
            tags: heapless::Vec::new(),
            versions: heapless::Vec::new(),
        }
    }

    /// The newest version.
    pub fn newest(&self) -> Option<&VersionEntry> {
        self.versions.last()
    }

    /// The version numbered `v`, if still held.
    pub fn version(&self, v: KeyVersion) -> Option<&VersionEntry> {
        self.versions.iter().find(|e| e.version == v)
    }

    /// When automatic rotation is next due, if enabled.
    pub fn next_rotation(&self) -> Option<UnixTime> {
        self.rotation_period.map(|days| {
            self.rotation_base.saturating_add(days as u64 * pkms_protocol::limits::SECONDS_PER_DAY)
        })
    }

    /// The date of the latest on-demand rotation.
    pub fn last_on_demand(&self) -> Option<UnixTime> {
        self.versions.iter().rev().find(|v| v.rotation == Some(RotationType::OnDemand)).map(|v| v.created)
    }

    /// The earliest time the token must act on this key by itself (rotate or delete), if any.
    pub fn due(&self) -> Option<UnixTime> {
        match self.state {
            KeyState::PendingDeletion => self.deletion_date,
            KeyState::Enabled if self.versions.len() < MAX_VERSIONS => self.next_rotation(),
            // A key at its version limit rotates no more; a disabled key waits for EnableKey.
            KeyState::Enabled | KeyState::Disabled => None,
        }
    }
}

/// Tags encoded as `u16be key_len, key, u16be value_len, value` repeated, sorted by key.
pub struct TagList;

impl TagList {
    /// Iterates over encoded tags. Stops at the first malformed entry.
    pub fn iter(bytes: &[u8]) -> impl Iterator<Item = Tag<'_>> {
        let mut rest = bytes;
        core::iter::from_fn(move || {
            let (k, r) = take(rest)?;
            let (v, r) = take(r)?;
            rest = r;
            Some(Tag { tag_key: core::str::from_utf8(k).ok()?, tag_value: core::str::from_utf8(v).ok()? })
        })
    }

    /// Number of tags.
    pub fn count(bytes: &[u8]) -> usize {
        Self::iter(bytes).count()
    }

    /// Rebuilds `out` from `old` with `set` applied (added or replaced) and `remove` removed.
    /// Fails if the result would exceed [`MAX_TAG_BYTES`] or [`MAX_TAGS_PER_KEY`].
    pub fn edit(
        old: &[u8],
        set: &[Tag<'_>],
        remove: &[&str],
        out: &mut heapless::Vec<u8, MAX_TAG_BYTES>,
    ) -> Result<(), TagLimit> {
        out.clear();
        let mut items: heapless::Vec<Tag<'_>, { 2 * MAX_TAGS_PER_KEY }> = heapless::Vec::new();
        for t in Self::iter(old) {
            if remove.contains(&t.tag_key) || set.iter().any(|s| s.tag_key == t.tag_key) {
                continue;
            }
            items.push(t).map_err(|_| TagLimit::Count)?;
        }
        for (i, t) in set.iter().enumerate() {
            // A later duplicate in `set` wins.
            if set[i + 1..].iter().any(|s| s.tag_key == t.tag_key) {
                continue;
            }
            items.push(*t).map_err(|_| TagLimit::Count)?;
        }
        if items.len() > MAX_TAGS_PER_KEY {
            return Err(TagLimit::Count);
        }
        pkms_protocol::small_sort::sort_by(&mut items, |a, b| a.tag_key < b.tag_key);
        for t in &items {
            for part in [t.tag_key.as_bytes(), t.tag_value.as_bytes()] {
                out.extend_from_slice(&(part.len() as u16).to_be_bytes()).map_err(|_| TagLimit::Bytes)?;
                out.extend_from_slice(part).map_err(|_| TagLimit::Bytes)?;
            }
        }
        Ok(())
    }
}

/// Which tag limit was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagLimit {
    /// More than [`MAX_TAGS_PER_KEY`] tags.
    Count,
    /// More than [`MAX_TAG_BYTES`] encoded bytes.
    Bytes,
}

fn take(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    if bytes.len() < 2 {
        return None;
    }
    let n = u16::from_be_bytes([bytes[0], bytes[1]]) as usize;
    let rest = &bytes[2..];
    (rest.len() >= n).then(|| rest.split_at(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::MAX_PAYLOAD;
    use pkms_protocol::limits::{MAX_TAG_KEY, MAX_TAG_VALUE};

    #[test]
    fn the_largest_key_record_fits_in_one_record() {
        let mut r = KeyRecord::empty();
        r.spec = KeySpec::Hmac512;
        r.created = u64::MAX;
        r.deletion_date = Some(u64::MAX);
        r.pending_window = Some(u16::MAX);
        r.rotation_period = Some(u16::MAX);
        r.rotation_base = u64::MAX;
        r.retired_below = u32::MAX;
        for _ in 0..MAX_DESCRIPTION {
            r.description.push('x').unwrap();
        }
        r.tags.resize(MAX_TAG_BYTES, 0xFF).unwrap();
        for _ in 0..MAX_VERSIONS {
            let mut wrapped = heapless::Vec::new();
            wrapped.resize(MAX_WRAPPED, 0xFF).unwrap();
            r.versions
                .push(VersionEntry {
                    version: u32::MAX,
                    created: u64::MAX,
                    rotation: Some(RotationType::OnDemand),
                    nonce: [0xFF; 12],
                    wrapped,
                })
                .unwrap();
        }
        let mut buf = [0u8; 8192];
        let n = postcard::to_slice(&r, &mut buf).unwrap().len();
        assert!(n + 16 <= MAX_PAYLOAD, "largest key record is {n} bytes");
        let back: KeyRecord = postcard::from_bytes(&buf[..n]).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn tags_are_edited_sorted_and_bounded() {
        let mut a = heapless::Vec::new();
        TagList::edit(
            &[],
            &[Tag { tag_key: "b", tag_value: "2" }, Tag { tag_key: "a", tag_value: "1" }],
            &[],
            &mut a,
        )
        .unwrap();
        let got: std::vec::Vec<_> = TagList::iter(&a).map(|t| (t.tag_key, t.tag_value)).collect();
        assert_eq!(got, [("a", "1"), ("b", "2")]);
        let mut b = heapless::Vec::new();
        TagList::edit(&a, &[Tag { tag_key: "a", tag_value: "9" }], &["b"], &mut b).unwrap();
        let got: std::vec::Vec<_> = TagList::iter(&b).map(|t| (t.tag_key, t.tag_value)).collect();
        assert_eq!(got, [("a", "9")]);
        let k = "k".repeat(MAX_TAG_KEY);
        let v = "v".repeat(MAX_TAG_VALUE);
        let keys: std::vec::Vec<std::string::String> =
            (0..3).map(|i| std::format!("{i}{}", &k[1..])).collect();
        let big: std::vec::Vec<Tag<'_>> = keys.iter().map(|k| Tag { tag_key: k, tag_value: &v }).collect();
        let mut c = heapless::Vec::new();
        assert_eq!(TagList::edit(&[], &big, &[], &mut c), Err(TagLimit::Bytes));
        let names: std::vec::Vec<std::string::String> =
            (0..=MAX_TAGS_PER_KEY).map(|i| std::format!("t{i}")).collect();
        let many: std::vec::Vec<Tag<'_>> = names.iter().map(|k| Tag { tag_key: k, tag_value: "" }).collect();
        assert_eq!(TagList::edit(&[], &many, &[], &mut c), Err(TagLimit::Count));
        TagList::edit(&[], &many[..MAX_TAGS_PER_KEY], &[], &mut c).unwrap();
        assert_eq!(TagList::count(&c), MAX_TAGS_PER_KEY, "KMS's 50 short tags fit");
    }
}
