//! The token's state ([`Core`]) and the helpers every operation shares: mounting and formatting the store,
//! the wall-time high-water mark, resolving key ids and aliases, loading and saving key records,
//! state / usage / presence checks, key versions, and the work the token does by itself when
//! host time passes a rotation or deletion date.

use pkms_protocol::limits::SECONDS_PER_DAY;
use pkms_protocol::{ErrorCode, KeyId, KeySpec, KeyState, KeyUsage, KeyVersion, RotationType, UnixTime};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use embedded_storage::nor_flash::NorFlash;

use crate::board::{Board, UserPresence};
use crate::crypto::wrap::material_len;
use crate::crypto::{signing, DeviceKeys, Material};
use crate::err;
use crate::error::{Error, OpResult};
use crate::records::*;
use crate::store::{Health, RecordId, Store, MAX_PAYLOAD};

/// How long the token waits for a button press on keys that require presence.
pub const PRESENCE_TIMEOUT_MS: u32 = 30_000;
/// The high-water mark is written to flash when it has advanced this far since the last write
/// (or sooner, whenever a date derived from it is stored).
pub const CLOCK_PERSIST_INTERVAL: UnixTime = 3600;

/// Wall time as the token knows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    /// High-water mark of host-supplied time (never decreases).
    pub now: UnixTime,
    /// The value last written to flash.
    pub persisted: UnixTime,
}

/// The token's state.
pub struct Core<F, R, B> {
    /// The record store.
    pub store: Store<F>,
    /// Randomness.
    pub rng: R,
    /// The board.
    pub board: B,
    /// Device keys; `None` when the store is unusable (see `broken`).
    pub keys: Option<DeviceKeys>,
    /// Why key operations cannot work, when they cannot.
    pub broken: Option<Error>,
    /// Wall time.
    pub clock: Clock,
    /// Scratch: the key record loaded last.
    pub rec: KeyRecord,
    /// Scratch: record encoding.
    pub io: [u8; MAX_PAYLOAD],
}

fn due_aux(t: Option<UnixTime>) -> u32 {
    match t {
        None => 0,
        Some(t) => t.clamp(1, u32::MAX as u64) as u32,
    }
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

impl<F: NorFlash, R: RngCore + CryptoRng, B: Board> Core<F, R, B> {
    /// Mounts the store (formatting an erased flash). Never panics: an unusable store leaves
    /// `keys` empty and `broken` saying why.
    pub fn mount(flash: F, rng: R, board: B) -> Self {
        let store = Store::mount(flash);
        let mut core = Core {
            store,
            rng,
            board,
            keys: None,
            broken: None,
            clock: Clock::default(),
            rec: KeyRecord::empty(),
            io: [0; MAX_PAYLOAD],
        };
        match core.store.health() {
            Health::Ok => {}
            Health::Corrupted => {
                core.broken = Some(Error::new(
                    ErrorCode::StorageCorrupted,
                    "the flash does not hold a valid Pocket KMS key store; key operations are refused",
                ));
                return core;
            }
            Health::Unsupported => {
                core.broken = Some(Error::new(
                    ErrorCode::Internal,
                    "this flash geometry is not supported (needs 4+ pages of 1-4 KiB, write size <= 4)",
                ));
                return core;
            }
        }
        if let Err(e) = core.open_device() {
            core.broken = Some(e);
            return core;
        }
        // Clock.
        if let Ok(Some(n)) = core.store.get(KIND_CLOCK, &SINGLETON_ID, &mut core.io) {
            if let Ok(c) = postcard::from_bytes::<ClockRecord>(&core.io[..n]) {
                core.clock = Clock { now: c.high_water_mark, persisted: c.high_water_mark };
            }
        }
        core.cleanup_and_index();
        core
    }

    fn open_device(&mut self) -> OpResult<()> {
        match self.store.get(KIND_DEVICE, &SINGLETON_ID, &mut self.io)? {
            Some(n) => {
                let dev: Result<DeviceRecord, _> = postcard::from_bytes(&self.io[..n]);
                self.io[..n].fill(0);
                let dev = dev.map_err(|_| {
                    Error::new(ErrorCode::StorageCorrupted, "the device record cannot be read")
                })?;
                self.keys = Some(DeviceKeys::new(&dev.root_key));
                Ok(())
            }
            None if self.store.is_empty() => {
                // A new (or never completely formatted) token: make the device root key.
                let mut dev = DeviceRecord { format: FORMAT, root_key: [0; 32] };
                self.rng.fill_bytes(&mut dev.root_key);
                let n = postcard::to_slice(&dev, &mut self.io)
                    .map_err(|_| Error::new(ErrorCode::Internal, "cannot encode device record"))?
                    .len();
                self.store.put(KIND_DEVICE, &SINGLETON_ID, &self.io[..n])?;
                self.io[..n].fill(0);
                self.keys = Some(DeviceKeys::new(&dev.root_key));
                Ok(())
            }
            None => Err(Error::new(
                ErrorCode::StorageCorrupted,
                "the key store has keys but no device root key; key operations are refused",
            )),
        }
    }

    /// Computes when each key needs attention and drops aliases whose key is gone (a cut
    /// during a key deletion can leave them).
    fn cleanup_and_index(&mut self) {
        let n = self.store.entries(KIND_KEY).len();
        for i in 0..n {
            let Some(e) = self.store.entries(KIND_KEY).get(i) else { break };
            let id = KeyId(e.id);
            if self.load(&id).is_ok() {
                let aux = due_aux(self.rec.due());
                self.store.set_aux(KIND_KEY, &id.0, aux);
            }
        }
        let mut i = 0;
        while let Some(e) = self.store.entries(KIND_ALIAS).get(i) {
            let aid = e.id;
            match self.read_alias_by_id(&aid) {
                Ok(Some(a)) if !self.store.contains(KIND_KEY, &a.target) => {
                    let _ = self.store.remove(KIND_ALIAS, &aid);
                }
                _ => i += 1,
            }
        }
    }

    /// The device keys, or why key operations are refused.
    pub fn device(&self) -> OpResult<&DeviceKeys> {
        match (&self.keys, &self.broken) {
            (Some(k), _) => Ok(k),
            (None, Some(e)) => Err(e.clone()),
            (None, None) => Err(Error::new(ErrorCode::Internal, "device keys unavailable")),
        }
    }

    /// Takes note of host time: the high-water mark only moves forward. It is written to flash
    /// when it moved [`CLOCK_PERSIST_INTERVAL`] past the stored value.
    pub fn observe_time(&mut self, now: Option<UnixTime>) {
        if let Some(t) = now {
            if t > self.clock.now {
                self.clock.now = t;
            }
        }
        if self.keys.is_some()
            && self.clock.now >= self.clock.persisted.saturating_add(CLOCK_PERSIST_INTERVAL)
        {
            let _ = self.persist_time();
        }
    }

    /// Writes the high-water mark if it advanced since the last write.
    pub fn persist_time(&mut self) -> OpResult<()> {
        if self.clock.now <= self.clock.persisted {
            return Ok(());
        }
        let rec = ClockRecord { format: FORMAT, high_water_mark: self.clock.now };
        let n = postcard::to_slice(&rec, &mut self.io)
            .map_err(|_| Error::new(ErrorCode::Internal, "cannot encode clock"))?
            .len();
        self.store.put(KIND_CLOCK, &SINGLETON_ID, &self.io[..n])?;
        self.clock.persisted = self.clock.now;
        Ok(())
    }

    /// Current wall time (the high-water mark).
    pub fn now(&self) -> UnixTime {
        self.clock.now
    }

    /// Resolves a key id (UUID or 32 hex digits) or an alias name (`alias/…`) to a key id.
    /// The key itself is not looked up.
    pub fn resolve(&mut self, key_ref: &str) -> OpResult<KeyId> {
        self.device()?;
        if key_ref.starts_with("alias/") {
            return match self.read_alias(key_ref)? {
                Some(a) => Ok(KeyId(a.target)),
                None => Err(err!(NotFound, "alias {} does not exist", Short(key_ref))),
            };
        }
        KeyId::parse(key_ref).ok_or_else(|| {
            err!(NotFound, "'{}' is neither a key id nor an alias name (alias/...)", Short(key_ref))
        })
    }

    /// Resolves and loads a key into `self.rec`.
    pub fn load_ref(&mut self, key_ref: &str) -> OpResult<KeyId> {
        let id = self.resolve(key_ref)?;
        self.load(&id)?;
        Ok(id)
    }

    /// Loads key `id` into `self.rec`; NotFound if there is none.
    pub fn load(&mut self, id: &KeyId) -> OpResult<()> {
        self.device()?;
        match self.store.get(KIND_KEY, &id.0, &mut self.io)? {
            Some(n) => {
                self.rec = postcard::from_bytes(&self.io[..n])
                    .map_err(|_| err!(StorageCorrupted, "the record of key {} cannot be read", id))?;
                if self.rec.versions.is_empty() {
                    return Err(err!(StorageCorrupted, "key {} has no versions", id));
                }
                Ok(())
            }
            None => Err(err!(NotFound, "key {} does not exist", id)),
        }
    }

    /// Saves `self.rec` as key `id` (atomically) and refreshes its due time.
    pub fn save(&mut self, id: &KeyId) -> OpResult<()> {
        self.device()?;
        // Dates in the record never exceed the stored high-water mark.
        self.persist_time()?;
        let n = postcard::to_slice(&self.rec, &mut self.io)
            .map_err(|_| Error::new(ErrorCode::LimitExceeded, "the key record does not fit in the store"))?
            .len();
        if !self.store.contains(KIND_KEY, &id.0) && self.store.entries(KIND_KEY).len() >= MAX_KEYS {
            return Err(err!(LimitExceeded, "the token holds at most {} keys", MAX_KEYS));
        }
        self.store.put(KIND_KEY, &id.0, &self.io[..n])?;
        let aux = due_aux(self.rec.due());
        self.store.set_aux(KIND_KEY, &id.0, aux);
        Ok(())
    }

    /// Refuses cryptographic use of a key that is not Enabled.
    pub fn require_enabled(&self, id: &KeyId) -> OpResult<()> {
        match self.rec.state {
            KeyState::Enabled => Ok(()),
            KeyState::Disabled => Err(err!(Disabled, "key {} is disabled", id)),
            KeyState::PendingDeletion => Err(err!(InvalidState, "key {} is pending deletion", id)),
        }
    }

    /// Refuses changes to a key pending deletion.
    pub fn require_not_pending(&self, id: &KeyId) -> OpResult<()> {
        if self.rec.state == KeyState::PendingDeletion {
            return Err(err!(InvalidState, "key {} is pending deletion", id));
        }
        Ok(())
    }

    /// Refuses an operation the key's usage does not allow.
    pub fn require_usage(&self, id: &KeyId, usage: KeyUsage, operation: &str) -> OpResult<()> {
        if self.rec.usage != usage {
            return Err(err!(
                InvalidKeyUsage,
                "{} needs a {} key; key {} is {} ({})",
                operation,
                usage,
                id,
                self.rec.usage,
                self.rec.spec
            ));
        }
        Ok(())
    }

    /// Asks for a button press if the loaded key requires it.
    pub fn require_presence(&mut self) -> OpResult<()> {
        if !self.rec.user_presence {
            return Ok(());
        }
        match self.board.user_presence(PRESENCE_TIMEOUT_MS) {
            UserPresence::Confirmed => Ok(()),
            UserPresence::TimedOut => Err(err!(
                UserPresenceRequired,
                "this key needs a button press on the token; nobody pressed the button within {} s",
                PRESENCE_TIMEOUT_MS / 1000
            )),
            UserPresence::Unsupported => Err(err!(
                UserPresenceRequired,
                "this key needs a button press, and this board ({}) has no button",
                self.board.info().name
            )),
        }
    }

    /// Unwraps version `version` of the loaded key `id`. A retired version is
    /// KeyVersionRetired; one that never existed is NotFound.
    pub fn material(&self, id: &KeyId, version: KeyVersion) -> OpResult<Material> {
        let keys = self.device()?;
        match self.rec.version(version) {
            Some(entry) => keys.unwrap(id, self.rec.spec, entry),
            None if version >= 1 && version < self.rec.retired_below => Err(err!(
                KeyVersionRetired,
                "version {} of key {} was retired: its material is erased, so data under it cannot be used",
                version,
                id
            )),
            None => Err(err!(NotFound, "key {} has no version {}", id, version)),
        }
    }

    /// The newest version number of the loaded key.
    pub fn newest_version(&self) -> KeyVersion {
        self.rec.newest().map(|v| v.version).unwrap_or(0)
    }

    /// Makes fresh material for `spec`.
    pub fn generate_material(&mut self, spec: KeySpec) -> Material {
        let mut m = Material::zeroed(material_len(spec));
        match spec {
            KeySpec::EccNistP256 => signing::generate(&mut self.rng, m.bytes_mut()),
            _ => self.rng.fill_bytes(m.bytes_mut()),
        }
        m
    }

    /// Appends a new version with fresh material to the loaded key (not saved yet).
    pub fn push_version(&mut self, id: &KeyId, rotation: Option<RotationType>) -> OpResult<KeyVersion> {
        if self.rec.versions.len() >= MAX_VERSIONS {
            return Err(err!(
                LimitExceeded,
                "key {} holds {} versions, the most a key can; retire old versions first",
                id,
                MAX_VERSIONS
            ));
        }
        let version =
            self.newest_version().checked_add(1).ok_or_else(|| err!(LimitExceeded, "version overflow"))?;
        let material = self.generate_material(self.rec.spec);
        let now = self.now();
        let spec = self.rec.spec;
        let keys = self.keys.as_ref().ok_or_else(|| Error::new(ErrorCode::Internal, "no device keys"))?;
        let mut entry =
            VersionEntry { version, created: now, rotation, nonce: [0; 12], wrapped: heapless::Vec::new() };
        keys.wrap(&mut self.rng, id, spec, &material, &mut entry)?;
        self.rec.versions.push(entry).map_err(|_| err!(LimitExceeded, "too many versions"))?;
        Ok(version)
    }

    /// Rotates key `id` (already loaded) and saves it.
    pub fn rotate(&mut self, id: &KeyId, kind: RotationType) -> OpResult<KeyVersion> {
        let v = self.push_version(id, Some(kind))?;
        if kind == RotationType::Automatic {
            self.rec.rotation_base = self.now();
        }
        self.save(id)?;
        Ok(v)
    }

    /// Deletes key `id`, its versions (crypto-erase: the record is zeroed on flash) and its
    /// aliases. Removing the key record is the commit point.
    pub fn delete_key(&mut self, id: &KeyId) -> OpResult<()> {
        self.store.remove(KIND_KEY, &id.0)?;
        let mut i = 0;
        while let Some(e) = self.store.entries(KIND_ALIAS).get(i) {
            let aid = e.id;
            match self.read_alias_by_id(&aid)? {
                Some(a) if a.target == id.0 => {
                    self.store.remove(KIND_ALIAS, &aid)?;
                }
                _ => i += 1,
            }
        }
        Ok(())
    }

    /// Performs rotations and deletions whose date host time has passed.
    pub fn run_due(&mut self) {
        if self.keys.is_none() {
            return;
        }
        let now = self.now();
        let limit = self.store.entries(KIND_KEY).len() + 1;
        for _ in 0..limit {
            let Some(id) = self
                .store
                .entries(KIND_KEY)
                .iter()
                .find(|e| e.aux != 0 && (e.aux as u64) <= now)
                .map(|e| KeyId(e.id))
            else {
                return;
            };
            if self.run_due_key(&id, now).is_err() {
                // Try again an hour later rather than on every request.
                let retry = due_aux(Some(now.saturating_add(CLOCK_PERSIST_INTERVAL)));
                self.store.set_aux(KIND_KEY, &id.0, retry);
            }
        }
    }

    fn run_due_key(&mut self, id: &KeyId, now: UnixTime) -> OpResult<()> {
        self.load(id)?;
        match self.rec.state {
            KeyState::PendingDeletion if self.rec.deletion_date.is_some_and(|d| d <= now) => {
                self.delete_key(id)
            }
            KeyState::Enabled if self.rec.next_rotation().is_some_and(|d| d <= now) => {
                self.rotate(id, RotationType::Automatic).map(|_| ())
            }
            _ => {
                let aux = due_aux(self.rec.due());
                self.store.set_aux(KIND_KEY, &id.0, aux);
                Ok(())
            }
        }
    }

    /// Reads alias `name`, if it exists.
    pub fn read_alias(&mut self, name: &str) -> OpResult<Option<AliasRecord>> {
        let rec = self.read_alias_by_id(&alias_id(name))?;
        Ok(rec.filter(|a| a.name.as_str() == name))
    }

    /// Reads the alias record with store id `aid`.
    pub fn read_alias_by_id(&mut self, aid: &RecordId) -> OpResult<Option<AliasRecord>> {
        match self.store.get(KIND_ALIAS, aid, &mut self.io)? {
            Some(n) => {
                Ok(Some(postcard::from_bytes(&self.io[..n]).map_err(|_| {
                    Error::new(ErrorCode::StorageCorrupted, "an alias record cannot be read")
                })?))
            }
            None => Ok(None),
        }
    }

    /// Saves an alias record.
    pub fn save_alias(&mut self, rec: &AliasRecord) -> OpResult<()> {
        self.persist_time()?;
        let n = postcard::to_slice(rec, &mut self.io)
            .map_err(|_| Error::new(ErrorCode::Internal, "cannot encode alias"))?
            .len();
        self.store.put(KIND_ALIAS, &alias_id(&rec.name), &self.io[..n])?;
        Ok(())
    }
}

/// Days to seconds.
pub const fn days(d: u16) -> UnixTime {
    d as UnixTime * SECONDS_PER_DAY
}

/// Shows at most 64 bytes of a caller-supplied string in a message.
pub struct Short<'a>(pub &'a str);

impl core::fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.0;
        if s.len() <= 64 {
            return f.write_str(s);
        }
        let mut end = 64;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        write!(f, "{}...", &s[..end])
    }
}
