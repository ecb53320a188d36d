//! A key loaded from the store: its id and its record, together. Operations get one from
//! [`crate::state::Core::load`], check it, use its versions and hand it back to
//! [`crate::state::Core::save`] when they changed it.

use pkms_protocol::{KeyId, KeyState, KeyUsage, KeyVersion};

use crate::err;
use crate::error::OpResult;
use crate::records::{KeyRecord, VersionEntry};

/// A key reference as the gate resolved it: the key id, or why there is none. Cheap to copy; it
/// becomes an [`crate::error::Error`] only where an operation reports it
/// ([`crate::state::Core::key_id`]).
pub type Named<'r> = Result<KeyId, Unresolved<'r>>;

/// Why a key reference did not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved<'r> {
    /// The key store is unusable.
    Unusable,
    /// `alias/…` that does not exist.
    NoSuchAlias(&'r str),
    /// The alias's record on flash cannot be read.
    UnreadableAlias,
    /// Neither a key id nor an alias name.
    NotAKeyReference(&'r str),
    /// The operation's declaration names no key there (the token's own mistake).
    Undeclared,
}

/// A key and its record, as loaded into a slot (or as about to be created). The record lives
/// in the slot the operation lent ([`crate::ops::Buffers::key`]), so loading copies nothing
/// further; the id and the record cannot be separated.
#[derive(Debug)]
pub struct LoadedKey<'s> {
    id: KeyId,
    record: &'s mut KeyRecord,
}

impl<'s> LoadedKey<'s> {
    /// A key that is not stored yet (CreateKey), its record filled in `slot`;
    /// [`crate::state::Core::save`] stores it.
    pub fn new(id: KeyId, slot: &'s mut KeyRecord) -> Self {
        LoadedKey { id, record: slot }
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Its record.
    pub fn record(&self) -> &KeyRecord {
        self.record
    }

    /// Its record, to change before saving.
    pub fn record_mut(&mut self) -> &mut KeyRecord {
        self.record
    }

    /// The newest version number.
    pub fn newest_version(&self) -> KeyVersion {
        self.record.newest().map(|v| v.version).unwrap_or(0)
    }

    /// The newest version's entry.
    pub fn newest(&self) -> Option<&VersionEntry> {
        self.record.newest()
    }

    /// Refuses cryptographic use of a key that is not Enabled.
    pub fn require_enabled(&self) -> OpResult<()> {
        match self.record.state {
            KeyState::Enabled => Ok(()),
            KeyState::Disabled => Err(err!(Disabled, "key {} is disabled", self.id)),
            KeyState::PendingDeletion => Err(err!(InvalidState, "key {} is pending deletion", self.id)),
        }
    }

    /// Refuses changes to a key pending deletion.
    pub fn require_not_pending(&self) -> OpResult<()> {
        if self.record.state == KeyState::PendingDeletion {
            return Err(err!(InvalidState, "key {} is pending deletion", self.id));
        }
        Ok(())
    }

    /// Refuses an operation the key's usage does not allow.
    pub fn require_usage(&self, usage: KeyUsage, operation: &str) -> OpResult<()> {
        if self.record.usage != usage {
            return Err(err!(
                InvalidKeyUsage,
                "{} needs a {} key; key {} is {} ({})",
                operation,
                usage,
                self.id,
                self.record.usage,
                self.record.spec
            ));
        }
        Ok(())
    }
}
