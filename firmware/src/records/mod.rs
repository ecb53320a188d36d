//! What the token keeps in its store, and the one registry of record kinds.
//!
//! Every record kind is declared once, in [`Kind`]: its number in the store (bodies are stored
//! under `(kind, 16-byte id)`), whether its bodies hold secrets (the scratch buffer is wiped after
//! they pass through it) and what a factory reset does to it ([`OnReset`]). The match in
//! [`Kind::on_factory_reset`] has no wildcard: a new kind does not compile until it says.
//!
//! Bodies are postcard-encoded (audit entries: their fixed-size encoding); a `format` byte in
//! each allows later changes. Formats are described in `docs/flash-format.md`.

pub mod access;
pub mod audit;
pub mod backup;
pub mod key;
pub mod principal;

use pkms_protocol::access::AuditEntry;
use pkms_protocol::limits::MAX_ALIAS_NAME;
use pkms_protocol::{KeyVersion, UnixTime};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

pub use crate::store::{RecordId, MAX_PAYLOAD};
pub use access::{AccessRecord, GrantRecord, ACCESS_FORMAT};
pub use audit::{audit_id, audit_sequence, BaseRecord, PendingCountsRecord};
pub use backup::{BackupKeyRecord, ExportMark, RestorePendingRecord};
pub use key::{
    KeyRecord, TagLimit, TagList, VersionEntry, MAX_KEYS, MAX_MATERIAL, MAX_TAG_BYTES, MAX_VERSIONS,
    MAX_WRAPPED,
};
pub use principal::{
    principal_id, AuthRecord, PrincipalId, PrincipalRecord, PrincipalRef, AUTH_FORMAT, PRINCIPAL_FORMAT,
    PRINCIPAL_REF_LEN,
};

/// Format byte of every body written by this firmware.
pub const FORMAT: u8 = 1;
/// The id of singleton records (device, clock, authentication, audit base).
pub const SINGLETON_ID: RecordId = [0; 16];
/// Most aliases the token holds.
pub const MAX_ALIASES: usize = 256;

/// What a factory reset does to a kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnReset {
    /// Every record of the kind is removed.
    Erase,
    /// The record is replaced by a fresh one first (the device root key: that single write
    /// crypto-erases every key version at once).
    Replace,
}

/// Every kind of record in the store. The discriminant is the kind byte on flash (0x00 and 0xFF
/// are reserved by the store); never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// The device root key (singleton): [`DeviceRecord`].
    Device = 1,
    /// The wall-time high-water mark (singleton): [`ClockRecord`].
    Clock = 2,
    /// One per key (id: the key id): [`KeyRecord`].
    Key = 3,
    /// One per alias (id: [`alias_id`]): [`AliasRecord`].
    Alias = 4,
    /// How many AES-GCM encryptions a key's newest version has reserved (id: the key id):
    /// [`UsageRecord`].
    Usage = 5,
    /// The authentication state (singleton; present = initialised): [`AuthRecord`].
    Auth = 16,
    /// One per principal (id: [`principal_id`]): [`PrincipalRecord`].
    Principal = 17,
    /// A key's policy and grants (id: the key id): [`AccessRecord`].
    Access = 18,
    /// One per audit entry (id: [`audit_id`]): [`AuditEntry`].
    Audit = 19,
    /// The signed checkpoint behind the oldest audit entry held (singleton): [`BaseRecord`].
    AuditBase = 20,
    /// Counts of requests outside a session not yet written to the audit log (singleton):
    /// [`PendingCountsRecord`].
    AuditPending = 21,
    /// The backup key, sealed, and the mark of the last export (singleton): [`BackupKeyRecord`].
    BackupKey = 22,
    /// A restore is being written (singleton): [`RestorePendingRecord`].
    RestorePending = 23,
}

impl Kind {
    /// Every kind.
    pub const ALL: &'static [Kind] = &[
        Kind::Device,
        Kind::Clock,
        Kind::Key,
        Kind::Alias,
        Kind::Usage,
        Kind::Auth,
        Kind::Principal,
        Kind::Access,
        Kind::Audit,
        Kind::AuditBase,
        Kind::AuditPending,
        Kind::BackupKey,
        Kind::RestorePending,
    ];

    /// The kind byte in the store.
    pub const fn byte(self) -> u8 {
        self as u8
    }

    /// What a factory reset does to records of this kind.
    pub const fn on_factory_reset(self) -> OnReset {
        match self {
            Kind::Device => OnReset::Replace,
            Kind::Clock
            | Kind::Key
            | Kind::Alias
            | Kind::Usage
            | Kind::Auth
            | Kind::Principal
            | Kind::Access
            | Kind::Audit
            | Kind::AuditBase
            | Kind::AuditPending
            | Kind::BackupKey
            | Kind::RestorePending => OnReset::Erase,
        }
    }

    /// Whether bodies of this kind hold secrets in the clear (the root key, PIN verifiers, the
    /// attestation key): the scratch buffer they pass through is wiped at once.
    pub const fn holds_secrets(self) -> bool {
        match self {
            Kind::Device | Kind::Auth | Kind::Principal => true,
            Kind::Clock
            | Kind::Key
            | Kind::Alias
            | Kind::Usage
            | Kind::Access
            | Kind::Audit
            | Kind::AuditBase
            | Kind::AuditPending
            | Kind::BackupKey
            | Kind::RestorePending => false,
        }
    }
}

/// A type stored as records of one [`Kind`]; `'b` is the buffer a decoded value may borrow from.
pub trait Record<'b>: Sized {
    /// Its kind.
    const KIND: Kind;
    /// Encodes into `out`; `None` if it does not fit.
    fn encode(&self, out: &mut [u8]) -> Option<usize>;
    /// Decodes exactly `bytes`; `None` if they are not one valid body.
    fn decode(bytes: &'b [u8]) -> Option<Self>;
}

macro_rules! postcard_records {
    ($($ty:ident $(<$lt:lifetime>)? => $kind:ident;)*) => {$(
        impl<'b> Record<'b> for $ty $(<$lt>)? {
            const KIND: Kind = Kind::$kind;
            fn encode(&self, out: &mut [u8]) -> Option<usize> {
                postcard::to_slice(self, out).ok().map(|s| s.len())
            }
            fn decode(bytes: &'b [u8]) -> Option<Self> {
                postcard::from_bytes(bytes).ok()
            }
        }
    )*};
}

postcard_records! {
    DeviceRecord => Device;
    KeyRecord => Key;
    AliasRecord => Alias;
    UsageRecord => Usage;
    AccessRecord<'b> => Access;
    BaseRecord => AuditBase;
    PendingCountsRecord => AuditPending;
    BackupKeyRecord => BackupKey;
    RestorePendingRecord => RestorePending;
}

impl<'b> Record<'b> for ClockRecord {
    const KIND: Kind = Kind::Clock;
    fn encode(&self, out: &mut [u8]) -> Option<usize> {
        postcard::to_slice(self, out).ok().map(|s| s.len())
    }
    fn decode(bytes: &'b [u8]) -> Option<Self> {
        match bytes.first() {
            Some(&CLOCK_FORMAT) => postcard::from_bytes(bytes).ok(),
            Some(&FORMAT) => postcard::from_bytes::<ClockRecordV1>(bytes).ok().map(|v1| ClockRecord {
                format: v1.format,
                high_water_mark: v1.high_water_mark,
                vouched: v1.high_water_mark,
            }),
            _ => None,
        }
    }
}

impl<'b> Record<'b> for AuditEntry {
    const KIND: Kind = Kind::Audit;
    fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let bytes = AuditEntry::encode(self);
        out.get_mut(..bytes.len())?.copy_from_slice(&bytes);
        Some(bytes.len())
    }
    fn decode(bytes: &'b [u8]) -> Option<Self> {
        AuditEntry::decode(bytes)
    }
}

/// The device record: the root key that wraps every key version.
#[derive(Serialize, Deserialize, Zeroize)]
#[zeroize(drop)]
pub struct DeviceRecord {
    /// [`FORMAT`].
    pub format: u8,
    /// AES-256 device root key.
    pub root_key: [u8; 32],
}

/// Format byte of the clock record since it carries the vouched time.
pub const CLOCK_FORMAT: u8 = 2;

/// The clock record: the wall-time high-water mark and the latest time an administrator vouched
/// for. Format 1 (the mark alone) is still read, as vouched at the mark.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockRecord {
    /// [`CLOCK_FORMAT`].
    pub format: u8,
    /// Latest host time accepted (Unix seconds).
    pub high_water_mark: UnixTime,
    /// Latest time an administrator session, initialisation or an open token vouched for.
    pub vouched: UnixTime,
}

/// The clock record as format 1 wrote it.
#[derive(Deserialize)]
struct ClockRecordV1 {
    format: u8,
    high_water_mark: UnixTime,
}

/// The AES-GCM encryptions a key's newest version may have made: the count reserved ahead of
/// use, in batches of [`crate::state::USAGE_BATCH`] (the token counts each encryption in RAM and
/// writes only when a batch runs out, and after a restart counts from the reserved figure, so
/// the stored figure is never below the true count). A record for an older version means the
/// newest has made none.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageRecord {
    /// [`FORMAT`].
    pub format: u8,
    /// The version counted.
    pub version: KeyVersion,
    /// Encryptions reserved (at most [`crate::state::ENCRYPTION_LIMIT`]).
    pub reserved: u64,
}

/// An alias record.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AliasRecord {
    /// [`FORMAT`].
    pub format: u8,
    /// `alias/…`.
    pub name: heapless::String<MAX_ALIAS_NAME>,
    /// The key it names.
    pub target: [u8; 16],
    /// CreationDate.
    pub created: UnixTime,
    /// LastUpdatedDate.
    pub updated: UnixTime,
}

/// The record id of an alias name.
pub fn alias_id(name: &str) -> RecordId {
    let mut h = Sha256::new();
    h.update(b"pkms-alias\0");
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_disjoint_and_not_reserved() {
        for (i, a) in Kind::ALL.iter().enumerate() {
            assert!(a.byte() != 0x00 && a.byte() != 0xFF, "{a:?} uses a byte the store reserves");
            for b in &Kind::ALL[i + 1..] {
                assert_ne!(a.byte(), b.byte(), "{a:?} and {b:?} share a kind byte");
            }
        }
    }

    #[test]
    fn the_registry_lists_every_kind_once() {
        // Each kind's record type names that kind back.
        assert_eq!(<DeviceRecord as Record<'_>>::KIND, Kind::Device);
        assert_eq!(<ClockRecord as Record<'_>>::KIND, Kind::Clock);
        assert_eq!(<KeyRecord as Record<'_>>::KIND, Kind::Key);
        assert_eq!(<AliasRecord as Record<'_>>::KIND, Kind::Alias);
        assert_eq!(<AuthRecord as Record<'_>>::KIND, Kind::Auth);
        assert_eq!(<PrincipalRecord as Record<'_>>::KIND, Kind::Principal);
        assert_eq!(<AccessRecord<'_> as Record<'_>>::KIND, Kind::Access);
        assert_eq!(<AuditEntry as Record<'_>>::KIND, Kind::Audit);
        assert_eq!(<BaseRecord as Record<'_>>::KIND, Kind::AuditBase);
        assert_eq!(<PendingCountsRecord as Record<'_>>::KIND, Kind::AuditPending);
        assert_eq!(<BackupKeyRecord as Record<'_>>::KIND, Kind::BackupKey);
        assert_eq!(<RestorePendingRecord as Record<'_>>::KIND, Kind::RestorePending);
        for k in Kind::ALL {
            assert_eq!(Kind::ALL.iter().filter(|x| *x == k).count(), 1);
        }
    }
}
