//! A key loaded from the store: its id and its record, together. Operations get one from
//! [`crate::state::Core::load`], check it, use its versions and hand it back to
//! [`crate::state::Core::save`] when they changed it.

use pkms_protocol::{KeyId, KeyState, KeyUsage, KeyVersion};

use crate::err;
use crate::error::OpResult;
use crate::records::{KeyRecord, VersionEntry};

/// A key and its record, as loaded (or as about to be created).
#[derive(Debug, Clone)]
pub struct LoadedKey {
    id: KeyId,
    record: KeyRecord,
}

impl LoadedKey {
    /// A key that is not stored yet (CreateKey); [`crate::state::Core::save`] stores it.
    pub fn new(id: KeyId, record: KeyRecord) -> Self {
        LoadedKey { id, record }
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Its record.
    pub fn record(&self) -> &KeyRecord {
        &self.record
    }

    /// Its record, to change before saving.
    pub fn record_mut(&mut self) -> &mut KeyRecord {
        &mut self.record
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
