//! The token's state ([`Core`]) and what every operation shares: the typed record layer over the
//! store, the wall-time high-water mark, resolving key ids and aliases, loading and saving keys
//! ([`LoadedKey`]), key versions and their material, the button, and the work the token does by
//! itself when host time passes a rotation or deletion date.
//!
//! Fields are private: operations go through these methods, so that record bodies always pass
//! through one scratch buffer (wiped after secrets), dates never exceed the persisted clock, and
//! each key's due time is refreshed whenever it is saved.

use pkms_protocol::limits::SECONDS_PER_DAY;
use pkms_protocol::{
    ErrorCode, KeyId, KeyMaterialId, KeySpec, KeyVersion, RotationType, SelfTest, SelfTests, UnixTime,
};
use rand_core::RngCore;

use crate::board::{Board, UserPresence};
use crate::crypto::asym::{self, AsymSpec};
use crate::crypto::wipe::wiped_to;
use crate::crypto::wrap::material_len;
use crate::crypto::{signing, DeviceKeys, Material};
use crate::err;
use crate::error::{Error, OpResult};
use crate::key::{LoadedKey, Named, Unresolved};
use crate::platform::Platform;
use crate::records::*;
use crate::store::{Entry, Health, RecordIndex, Store, StoreError};

/// How long the token waits for a button press on keys that require presence.
pub const PRESENCE_TIMEOUT_MS: u32 = 30_000;
/// The high-water mark is written to flash when it has advanced this far since the last write
/// (or sooner, whenever a date derived from it is stored).
pub const CLOCK_PERSIST_INTERVAL: UnixTime = 3600;

/// The most AES-GCM encryptions one key version makes: with random 96-bit nonces, NIST SP
/// 800-38D allows 2^32 per key.
pub const ENCRYPTION_LIMIT: u64 = 1 << 32;
/// Encryptions reserved on flash at a time ([`UsageRecord`]): one write per batch, and at most
/// one batch lost (counted but unused) per restart.
pub const USAGE_BATCH: u64 = 4096;
/// Keys whose encryption counts are held in RAM at once (the one used longest ago is dropped,
/// losing the rest of its batch).
const USAGE_SLOTS: usize = 8;

/// A key's newest version's encryptions this boot: `used` of `reserved`.
#[derive(Debug, Clone, Copy)]
struct Usage {
    key: KeyId,
    version: KeyVersion,
    used: u64,
    reserved: u64,
}

/// The most scheduled rotations and deletions one request performs (the rest wait for the next).
pub const MAX_DUE_PER_REQUEST: usize = 8;

/// Something the token did by itself because host time passed a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueEvent {
    /// Automatic rotation made this version.
    Rotated(KeyId, KeyVersion),
    /// The key's deletion window ended: it is gone.
    Deleted(KeyId),
}

/// The latest wall time the token accepts: 9999-12-31T23:59:59Z. Later times are refused
/// (ValidationException), so no date the token computes can overflow into "always due".
pub const MAX_UNIX_TIME: UnixTime = 253_402_300_799;
/// How far past the last vouched time (plus the token's own powered-on time since) a host with a
/// user's session may move the clock.
pub const USER_CLOCK_SLACK: UnixTime = 24 * 3600;

/// Who is telling the token the time, and so how far it may move the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeAuthority {
    /// Nobody the token trusts (a request in the clear, or a session nobody logged in to): the
    /// clock does not move.
    Ignore,
    /// A user's session: forward, up to the last vouched time plus the token's powered-on time
    /// since plus [`USER_CLOCK_SLACK`].
    Bounded,
    /// An administrator's session, initialisation, or an open token: forward, and the time
    /// becomes the vouched time.
    Vouch,
}

/// Wall time as the token knows it.
#[derive(Debug, Clone, Copy, Default)]
struct Clock {
    /// High-water mark of host-supplied time (never decreases).
    now: UnixTime,
    /// The value last written to flash.
    persisted: UnixTime,
    /// The latest time an administrator (or initialisation, or an open token) vouched for.
    vouched: UnixTime,
    /// `vouched` as last written to flash.
    vouched_persisted: UnixTime,
    /// The uptime (ms) at which `vouched` was set, when that was during this boot.
    vouched_at_ms: Option<u64>,
}

/// The token's state over a [`Platform`].
pub struct Core<P: Platform> {
    store: Store<P::Flash, P::Index>,
    rng: P::Rng,
    board: P::Board,
    /// Device keys; `None` when the store is unusable (see `broken`).
    device: Option<DeviceKeys>,
    /// The device key's public half (uncompressed SEC1), computed on first use.
    device_public: Option<[u8; 65]>,
    /// Why key operations cannot work, when they cannot.
    broken: Option<Error>,
    /// This boot's power-on self-tests.
    self_tests: SelfTests,
    clock: Clock,
    /// Encryption counts of recently used keys, most recent last.
    usage: heapless::Vec<Usage, USAGE_SLOTS>,
    /// The rotation the encryption limit forced during the current request, for its audit entry.
    limit_rotation: Option<(KeyId, KeyVersion)>,
    /// Every record body passes through here on its way to and from the store.
    record_buf: [u8; MAX_PAYLOAD],
}

/// The store keeps a per-record `due` value in RAM; for keys it is when the token must next act
/// on them (0: never).
fn due_value(t: Option<UnixTime>) -> u32 {
    match t {
        None => 0,
        Some(t) => t.clamp(1, u32::MAX as u64) as u32,
    }
}

impl<P: Platform> Core<P> {
    /// Mounts the store (formatting an erased flash). Never panics: an unusable store leaves the
    /// device keys absent and [`Core::device`] saying why. `self_tests` is the outcome of this
    /// boot's power-on self-tests ([`crate::selftest`]): after a failure the store is mounted
    /// (GetInfo reports on it) but no device key is read or made and nothing is cleaned up.
    pub fn mount(
        flash: P::Flash,
        rng: P::Rng,
        board: P::Board,
        slot: &mut KeyRecord,
        self_tests: SelfTests,
    ) -> Self {
        const {
            assert!(
                <P::Index as RecordIndex>::CAPACITY >= crate::platform::index_records(P::AUDIT_CAPACITY),
                "the platform's index is too small for its audit log (see platform::index_records)"
            )
        };
        let store = Store::mount(flash);
        let mut core = Core {
            store,
            rng,
            board,
            device: None,
            device_public: None,
            broken: None,
            self_tests,
            clock: Clock::default(),
            usage: heapless::Vec::new(),
            limit_rotation: None,
            record_buf: [0; MAX_PAYLOAD],
        };
        match self_tests {
            SelfTests::Passed => {}
            SelfTests::Failed(test) => {
                core.broken = Some(self_test_failure(test));
                return core;
            }
        }
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
        if let Some(why) = core.board.entropy_missing() {
            // No device key is made or opened from an RNG that may be predictable.
            core.broken = Some(Error::new(ErrorCode::Internal, why));
            return core;
        }
        if let Err(e) = core.open_device() {
            core.broken = Some(e);
            return core;
        }
        // A restore a power cut interrupted: back to the fresh token it started from.
        if core.contains(Kind::RestorePending, &SINGLETON_ID) {
            let _ = crate::backup::discard_restore(&mut core);
        }
        if let Ok(Some(c)) = core.read::<ClockRecord>(&SINGLETON_ID) {
            core.clock = Clock {
                now: c.high_water_mark,
                persisted: c.high_water_mark,
                vouched: c.vouched,
                vouched_persisted: c.vouched,
                vouched_at_ms: None,
            };
        }
        core.cleanup_and_index(slot);
        core
    }

    fn open_device(&mut self) -> OpResult<()> {
        match self.read::<DeviceRecord>(&SINGLETON_ID) {
            Ok(Some(dev)) => {
                self.device = Some(DeviceKeys::new(&dev.root_key));
                Ok(())
            }
            Ok(None) if self.store.is_empty() => {
                // A new (or never completely formatted) token: make the device root key.
                self.replace_device_key()
            }
            Ok(None) => Err(Error::new(
                ErrorCode::StorageCorrupted,
                "the key store has keys but no device root key; key operations are refused",
            )),
            Err(e) if e.code == ErrorCode::StorageCorrupted => {
                Err(Error::new(ErrorCode::StorageCorrupted, "the device record cannot be read"))
            }
            Err(e) => Err(e),
        }
    }

    /// Makes a new device root key and stores it: every key version wrapped under the old one
    /// becomes unreadable in that one atomic write (factory reset's crypto-erase).
    pub fn replace_device_key(&mut self) -> OpResult<()> {
        let mut dev = DeviceRecord { format: FORMAT, root_key: [0; 32] };
        self.rng.fill_bytes(&mut dev.root_key);
        self.write(&SINGLETON_ID, &dev)?;
        self.device = Some(DeviceKeys::new(&dev.root_key));
        self.device_public = None;
        Ok(())
    }

    /// The device key's public half (65 bytes, uncompressed SEC1): the static key of session
    /// handshakes.
    pub fn device_public_key(&mut self) -> OpResult<[u8; 65]> {
        if let Some(p) = self.device_public {
            return Ok(p);
        }
        let p = self.device()?.identity()?.public_key_sec1_uncompressed();
        self.device_public = Some(p);
        Ok(p)
    }

    /// Computes when each key needs attention and drops aliases whose key is gone (a cut
    /// during a key deletion can leave them).
    fn cleanup_and_index(&mut self, slot: &mut KeyRecord) {
        let n = self.entries(Kind::Key).len();
        for i in 0..n {
            let Some(e) = self.entries(Kind::Key).get(i) else { break };
            let id = KeyId(e.id);
            if let Ok(key) = self.load(&id, slot) {
                let due = due_value(key.record().due());
                self.store.set_due(Kind::Key.byte(), &id.0, due);
            }
        }
        let mut i = 0;
        while let Some(e) = self.entries(Kind::Alias).get(i) {
            let aid = e.id;
            match self.read::<AliasRecord>(&aid) {
                Ok(Some(a)) if !self.contains(Kind::Key, &a.target) => {
                    let _ = self.remove(Kind::Alias, &aid);
                }
                _ => i += 1,
            }
        }
        // Encryption counts whose key is gone (a cut during a key deletion).
        let mut i = 0;
        while let Some(id) = self.entries(Kind::Usage).get(i).map(|e| e.id) {
            if self.contains(Kind::Key, &id) || self.remove(Kind::Usage, &id).is_err() {
                i += 1;
            }
        }
    }

    /// Counts one AES-GCM encryption under `key`'s newest version, reserving a new batch on
    /// flash when this boot's runs out. Refuses (LimitExceeded) once the version has made
    /// [`ENCRYPTION_LIMIT`]; a key with automatic rotation on is rotated first instead (noted for
    /// the audit log: [`Core::take_limit_rotation`]), and the encryption counted under its new
    /// version.
    pub fn count_encryption(&mut self, key: &mut LoadedKey<'_>) -> OpResult<()> {
        match self.try_count(key) {
            Err(e) if e.code == ErrorCode::LimitExceeded && key.record().rotation_period.is_some() => {
                let version = self.rotate(key, RotationType::Automatic)?;
                self.limit_rotation = Some((key.id(), version));
                self.try_count(key)
            }
            other => other,
        }
    }

    /// The rotation [`Core::count_encryption`] made during this request, if it made one (taken:
    /// the next call returns `None`).
    pub fn take_limit_rotation(&mut self) -> Option<(KeyId, KeyVersion)> {
        self.limit_rotation.take()
    }

    fn try_count(&mut self, key: &LoadedKey<'_>) -> OpResult<()> {
        let (id, version) = (key.id(), key.newest_version());
        let at = match self.usage.iter().position(|u| u.key == id && u.version == version) {
            Some(at) => at,
            None => {
                // From flash: a batch reserved in an earlier boot counts as used.
                let reserved = match self.read::<UsageRecord>(&id.0)? {
                    Some(r) if r.version == version => r.reserved.min(ENCRYPTION_LIMIT),
                    Some(_) | None => 0,
                };
                self.usage.retain(|u| u.key != id);
                if self.usage.is_full() {
                    self.usage.remove(0);
                }
                let _ = self.usage.push(Usage { key: id, version, used: reserved, reserved });
                self.usage.len() - 1
            }
        };
        let mut u = self.usage[at];
        if u.used >= u.reserved {
            if u.reserved >= ENCRYPTION_LIMIT {
                return Err(err!(
                    LimitExceeded,
                    "version {} of this key has made 2^32 encryptions, the most AES-GCM with random nonces allows: rotate the key (RotateKeyOnDemand) to encrypt again; decryption still works",
                    version
                ));
            }
            let reserved = (u.reserved + USAGE_BATCH).min(ENCRYPTION_LIMIT);
            self.write(&id.0, &UsageRecord { format: FORMAT, version, reserved })?;
            u.reserved = reserved;
        }
        u.used += 1;
        // Most recently used last.
        self.usage.remove(at);
        let _ = self.usage.push(u);
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // The parts

    /// The device keys, or why key operations are refused.
    pub fn device(&self) -> OpResult<&DeviceKeys> {
        match (&self.device, &self.broken) {
            (Some(k), _) => Ok(k),
            (None, Some(e)) => Err(e.clone()),
            (None, None) => Err(Error::new(ErrorCode::Internal, "device keys unavailable")),
        }
    }

    /// Why key operations are refused, if they are.
    pub fn broken(&self) -> Option<&Error> {
        self.broken.as_ref()
    }

    /// This boot's power-on self-tests.
    pub fn self_tests(&self) -> SelfTests {
        self.self_tests
    }

    /// Enters the error state of a failed DRBG self-test if the RNG reports that its entropy
    /// source failed a health test since boot (a failed reseed: `try_fill_bytes` refuses, as
    /// rand_core asks of a generator that can fail). The token asks before every request while
    /// its keys are usable; the device keys are dropped (wiped) at once, and from then on only
    /// Hello, GetInfo and GetSelfTests answer, until the next boot's self-tests pass. Returns
    /// whether the token entered the error state now.
    pub fn check_entropy(&mut self) -> bool {
        if self.self_tests != SelfTests::Passed
            || self.device.is_none()
            || self.rng.try_fill_bytes(&mut []).is_ok()
        {
            return false;
        }
        self.self_tests = SelfTests::Failed(SelfTest::Drbg);
        self.broken = Some(self_test_failure(SelfTest::Drbg));
        self.device = None;
        self.device_public = None;
        true
    }

    /// Whether the store is usable (the device keys are loaded).
    pub fn is_usable(&self) -> bool {
        self.device.is_some()
    }

    /// The RNG.
    pub fn rng(&mut self) -> &mut P::Rng {
        &mut self.rng
    }

    /// The board.
    pub fn board(&mut self) -> &mut P::Board {
        &mut self.board
    }

    /// The board, to read its facts.
    pub fn board_ref(&self) -> &P::Board {
        &self.board
    }

    /// The flash, e.g. for tests that inspect it.
    pub fn flash(&self) -> &P::Flash {
        self.store.flash()
    }

    /// The flash, e.g. for tests that cut its power.
    pub fn flash_mut(&mut self) -> &mut P::Flash {
        self.store.flash_mut()
    }

    /// Gives the flash back.
    pub fn into_flash(self) -> P::Flash {
        self.store.into_flash()
    }

    /// Flash bytes the store may use.
    pub fn storage_total_bytes(&self) -> usize {
        self.store.total_bytes()
    }

    /// Flash bytes still free (approximate: reclaimable space counts as free).
    pub fn storage_free_bytes(&self) -> usize {
        self.store.free_bytes()
    }

    /// Records the store's RAM index can still take.
    pub fn free_records(&self) -> usize {
        self.store.free_records()
    }

    // -----------------------------------------------------------------------------------------
    // Typed records

    /// The live records of one kind, sorted by id.
    pub fn entries(&self, kind: Kind) -> &[Entry] {
        self.store.entries(kind.byte())
    }

    /// Whether a record exists.
    pub fn contains(&self, kind: Kind, id: &RecordId) -> bool {
        self.store.contains(kind.byte(), id)
    }

    /// Reads record `id` of `R`'s kind (a type that owns its data).
    pub fn read<R: for<'b> Record<'b>>(&mut self, id: &RecordId) -> OpResult<Option<R>> {
        let Core { store, record_buf, .. } = self;
        let Some(n) = store.get(R::KIND.byte(), id, record_buf)? else { return Ok(None) };
        let rec = R::decode(&record_buf[..n]);
        if R::KIND.holds_secrets() {
            record_buf[..n].fill(0);
        }
        rec.map(Some).ok_or_else(|| unreadable(R::KIND))
    }

    /// Reads record `id` of `R`'s kind into `buf`, for a type that borrows from it.
    pub fn read_into<'b, R: Record<'b>>(&mut self, id: &RecordId, buf: &'b mut [u8]) -> OpResult<Option<R>> {
        let Some(n) = self.store.get(R::KIND.byte(), id, buf)? else { return Ok(None) };
        let buf: &'b [u8] = buf;
        R::decode(&buf[..n]).map(Some).ok_or_else(|| unreadable(R::KIND))
    }

    /// Writes record `id` of `R`'s kind (atomically: the old body stays until the new one is
    /// complete).
    /// When the store has no room for it and the audit log overwrites, the log's oldest entries
    /// give way ([`crate::audit::give_way`]), a chunk at a time, until it fits or the log is
    /// empty: keys always come before old entries.
    pub fn write<'b, R: Record<'b>>(&mut self, id: &RecordId, rec: &R) -> OpResult<()> {
        loop {
            let Core { store, record_buf, .. } = self;
            let Some(n) = rec.encode(record_buf) else {
                return Err(Error::new(ErrorCode::LimitExceeded, too_large(R::KIND)));
            };
            let put = store.put(R::KIND.byte(), id, &record_buf[..n]);
            if R::KIND.holds_secrets() {
                record_buf[..n].fill(0);
            }
            match put {
                // The base checkpoint is what a drop writes: it never drops more.
                Err(StoreError::Full) if R::KIND != Kind::AuditBase => {
                    if !crate::audit::give_way(self)? {
                        return Err(StoreError::Full.into());
                    }
                }
                other => return other.map_err(Error::from),
            }
        }
    }

    /// Removes a record; whether there was one.
    pub fn remove(&mut self, kind: Kind, id: &RecordId) -> OpResult<bool> {
        Ok(self.store.remove(kind.byte(), id)?)
    }

    /// Reads the body of record `(kind, id)` as stored into `out` (at least
    /// [`MAX_PAYLOAD`] bytes), for a backup that carries it as it is; its length, if it exists.
    pub fn read_raw(&mut self, kind: Kind, id: &RecordId, out: &mut [u8]) -> OpResult<Option<usize>> {
        Ok(self.store.get(kind.byte(), id, out)?)
    }

    /// The store's sequence number of record `(kind, id)`: larger for records written later.
    pub fn record_sequence(&mut self, kind: Kind, id: &RecordId) -> OpResult<Option<u32>> {
        Ok(self.store.sequence_of(kind.byte(), id)?)
    }

    /// The sequence number the next record written will get.
    pub fn next_record_sequence(&self) -> u32 {
        self.store.next_sequence()
    }

    /// Seals a backup key under the device root key (see [`DeviceKeys::seal_backup_key`]).
    pub fn seal_backup_key(&mut self, secret: &[u8; 32]) -> OpResult<([u8; 12], [u8; 48])> {
        let keys = self.device.as_ref().ok_or_else(|| Error::new(ErrorCode::Internal, "no device keys"))?;
        keys.seal_backup_key(&mut self.rng, secret)
    }

    /// Wraps the plain material a restored key record carries in each version's `wrapped`
    /// field under this token's device root key. Refuses (Validation) a record whose material
    /// does not have its key spec's length, or that holds no version.
    pub fn wrap_restored(&mut self, id: &KeyId, rec: &mut KeyRecord) -> OpResult<()> {
        let keys = self.device.as_ref().ok_or_else(|| Error::new(ErrorCode::Internal, "no device keys"))?;
        let spec = rec.spec;
        let n = material_len(spec);
        if rec.versions.is_empty() {
            return Err(err!(Validation, "a key in the backup has no versions"));
        }
        for entry in rec.versions.iter_mut() {
            if entry.wrapped.len() != n {
                return Err(err!(Validation, "a key version in the backup has material of the wrong length"));
            }
            let mut m = Material::zeroed(n);
            m.bytes_mut().copy_from_slice(&entry.wrapped);
            entry.wrapped.iter_mut().for_each(|b| *b = 0);
            keys.wrap(&mut self.rng, id, spec, &m, entry)?;
        }
        Ok(())
    }

    /// Sets the clock to at least `t`, as an administrator vouching for it (a restore brings
    /// records dated up to the backup time), and persists it.
    pub fn vouch_time(&mut self, t: UnixTime) -> OpResult<()> {
        let uptime = self.board.uptime_ms();
        self.observe_time(Some(t), TimeAuthority::Vouch, uptime);
        self.persist_time()
    }

    /// The store itself, for tests that plant records of any kind.
    #[cfg(test)]
    pub(crate) fn store_mut(&mut self) -> &mut Store<P::Flash, P::Index> {
        &mut self.store
    }

    /// Removes every record of `kind`.
    pub fn remove_all(&mut self, kind: Kind) -> OpResult<()> {
        while let Some(id) = self.entries(kind).first().map(|e| e.id) {
            self.remove(kind, &id)?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Time

    /// Takes note of host time as `authority` allows (see [`TimeAuthority`]): the high-water mark
    /// only moves forward. Returns the move `(from, to)` when it exceeded a day (the token audits
    /// such moves). The mark is written to flash when it (or the vouched time) moved
    /// [`CLOCK_PERSIST_INTERVAL`] past the stored value.
    pub fn observe_time(
        &mut self,
        now: Option<UnixTime>,
        authority: TimeAuthority,
        uptime_ms: u64,
    ) -> Option<(UnixTime, UnixTime)> {
        let before = self.clock.now;
        if let Some(t) = now.filter(|t| *t <= MAX_UNIX_TIME) {
            let accepted = match authority {
                TimeAuthority::Ignore => None,
                TimeAuthority::Bounded => {
                    let powered = match self.clock.vouched_at_ms {
                        Some(at) => uptime_ms.saturating_sub(at),
                        None => uptime_ms,
                    } / 1000;
                    Some(t.min(self.clock.vouched + powered + USER_CLOCK_SLACK))
                }
                TimeAuthority::Vouch => {
                    self.clock.vouched = t;
                    self.clock.vouched_at_ms = Some(uptime_ms);
                    Some(t)
                }
            };
            if let Some(t) = accepted.filter(|t| *t > self.clock.now) {
                self.clock.now = t;
            }
        }
        if self.device.is_some()
            && (self.clock.now >= self.clock.persisted + CLOCK_PERSIST_INTERVAL
                || self.clock.vouched >= self.clock.vouched_persisted + CLOCK_PERSIST_INTERVAL)
        {
            let _ = self.persist_time();
        }
        (self.clock.now - before > USER_CLOCK_SLACK).then_some((before, self.clock.now))
    }

    /// Writes the high-water mark and the vouched time if either advanced since the last write.
    pub fn persist_time(&mut self) -> OpResult<()> {
        if self.clock.now <= self.clock.persisted && self.clock.vouched <= self.clock.vouched_persisted {
            return Ok(());
        }
        let rec = ClockRecord {
            format: CLOCK_FORMAT,
            high_water_mark: self.clock.now,
            vouched: self.clock.vouched,
        };
        self.write(&SINGLETON_ID, &rec)?;
        self.clock.persisted = self.clock.now;
        self.clock.vouched_persisted = self.clock.vouched;
        Ok(())
    }

    /// Forgets the time (factory reset): the clock starts again from the next vouched time.
    pub fn forget_time(&mut self) {
        self.clock = Clock::default();
    }

    /// Current wall time (the high-water mark).
    pub fn now(&self) -> UnixTime {
        self.clock.now
    }

    // -----------------------------------------------------------------------------------------
    // Keys

    /// Resolves a key id (UUID or 32 hex digits) or an alias name (`alias/…`) to a key id.
    /// The key itself is not looked up.
    pub fn resolve_ref<'r>(&mut self, key_ref: &'r str) -> Named<'r> {
        if self.device.is_none() {
            return Err(Unresolved::Unusable);
        }
        if key_ref.starts_with("alias/") {
            return match self.read_alias(key_ref) {
                Ok(Some(a)) => Ok(KeyId(a.target)),
                Ok(None) => Err(Unresolved::NoSuchAlias(key_ref)),
                Err(_) => Err(Unresolved::UnreadableAlias),
            };
        }
        KeyId::parse(key_ref).ok_or(Unresolved::NotAKeyReference(key_ref))
    }

    /// As [`Core::resolve_ref`], with the error an operation reports.
    pub fn resolve(&mut self, key_ref: &str) -> OpResult<KeyId> {
        let named = self.resolve_ref(key_ref);
        self.key_id(named)
    }

    /// The key id a resolved reference names, or the error that says why there is none.
    pub fn key_id(&self, named: Named<'_>) -> OpResult<KeyId> {
        match named {
            Ok(id) => Ok(id),
            Err(Unresolved::Unusable) => {
                Err(self.device().err().unwrap_or_else(|| err!(Internal, "device keys unavailable")))
            }
            Err(Unresolved::UnreadableAlias) => Err(unreadable(Kind::Alias)),
            Err(Unresolved::NoSuchAlias(name)) => Err(err!(NotFound, "alias {} does not exist", Short(name))),
            Err(Unresolved::NotAKeyReference(r)) => {
                Err(err!(NotFound, "'{}' is neither a key id nor an alias name (alias/...)", Short(r)))
            }
            Err(Unresolved::Undeclared) => Err(err!(Internal, "the operation's declaration names no key")),
        }
    }

    /// Loads the key a resolved reference names.
    pub fn load_named<'s>(&mut self, named: Named<'_>, slot: &'s mut KeyRecord) -> OpResult<LoadedKey<'s>> {
        let id = self.key_id(named)?;
        self.load(&id, slot)
    }

    /// Loads key `id` into `slot`; NotFound if there is none.
    pub fn load<'s>(&mut self, id: &KeyId, slot: &'s mut KeyRecord) -> OpResult<LoadedKey<'s>> {
        self.device()?;
        let Core { store, record_buf, .. } = self;
        match store.get(Kind::Key.byte(), &id.0, record_buf)? {
            Some(n) => {
                // Decoded in place into the slot: a key record is kilobytes, so it is not built on
                // the stack and moved.
                let mut de = postcard::Deserializer::from_bytes(&record_buf[..n]);
                if serde::Deserialize::deserialize_in_place(&mut de, slot).is_err() || de.finalize().is_err()
                {
                    return Err(err!(StorageCorrupted, "the record of key {} cannot be read", id));
                }
                if slot.versions.is_empty() {
                    return Err(err!(StorageCorrupted, "key {} has no versions", id));
                }
                Ok(LoadedKey::new(*id, slot))
            }
            None => Err(err!(NotFound, "key {} does not exist", id)),
        }
    }

    /// Saves a key (atomically) and refreshes its due time.
    pub fn save(&mut self, key: &LoadedKey<'_>) -> OpResult<()> {
        self.device()?;
        // Dates in the record never exceed the stored high-water mark.
        self.persist_time()?;
        let id = key.id();
        if !self.contains(Kind::Key, &id.0) && self.entries(Kind::Key).len() >= MAX_KEYS {
            return Err(err!(LimitExceeded, "the token holds at most {} keys", MAX_KEYS));
        }
        self.write(&id.0, key.record())?;
        self.store.set_due(Kind::Key.byte(), &id.0, due_value(key.record().due()));
        Ok(())
    }

    /// Asks for a button press if the key requires it.
    pub fn require_presence(&mut self, key: &LoadedKey<'_>) -> OpResult<()> {
        if !key.record().user_presence {
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

    /// Unwraps version `version` of `key`. A retired version is KeyVersionRetired; one that
    /// never existed is NotFound.
    pub fn material(&self, key: &LoadedKey<'_>, version: KeyVersion) -> OpResult<Material> {
        let keys = self.device()?;
        let id = key.id();
        let rec = key.record();
        match rec.version(version) {
            Some(entry) => keys.unwrap(&id, rec.spec, entry),
            None if version >= 1 && version < rec.retired_below => Err(err!(
                KeyVersionRetired,
                "version {} of key {} was retired: its material is erased, so data under it cannot be used",
                version,
                id
            )),
            None => Err(err!(NotFound, "key {} has no version {}", id, version)),
        }
    }

    /// The KeyMaterialId of version `version` of `key` (zeros if it is not held).
    pub fn material_id(&self, key: &LoadedKey<'_>, version: KeyVersion) -> OpResult<KeyMaterialId> {
        Ok(match key.record().version(version) {
            Some(e) => self.device()?.material_id(&key.id(), e),
            None => KeyMaterialId::default(),
        })
    }

    /// Makes fresh material for `spec`.
    pub fn generate_material(&mut self, spec: KeySpec) -> OpResult<Material> {
        let mut m = Material::zeroed(material_len(spec));
        match spec {
            KeySpec::EccNistP256 => signing::generate(&mut self.rng, m.bytes_mut()),
            KeySpec::SymmetricDefault | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
                self.rng.fill_bytes(m.bytes_mut())
            }
            KeySpec::EccSecgP256k1
            | KeySpec::EccNistP384
            | KeySpec::EccNistEdwards25519
            | KeySpec::MlDsa44
            | KeySpec::MlDsa65
            | KeySpec::MlDsa87
            | KeySpec::MlKem512
            | KeySpec::MlKem768
            | KeySpec::MlKem1024 => {
                let asym = AsymSpec::of(spec)
                    .ok_or_else(|| Error::new(ErrorCode::Internal, "not an asymmetric spec"))?;
                let rng = &mut self.rng;
                wiped_to(asym.stack_depth(), || asym::generate(asym, rng, m.bytes_mut()))?;
            }
        }
        Ok(m)
    }

    /// Appends a new version with fresh material to `key` (not saved yet).
    pub fn push_version(
        &mut self,
        key: &mut LoadedKey<'_>,
        rotation: Option<RotationType>,
    ) -> OpResult<KeyVersion> {
        let id = key.id();
        if key.record().versions.len() >= MAX_VERSIONS {
            return Err(err!(
                LimitExceeded,
                "key {} holds {} versions, the most a key can; retire old versions first",
                id,
                MAX_VERSIONS
            ));
        }
        let version =
            key.newest_version().checked_add(1).ok_or_else(|| err!(LimitExceeded, "version overflow"))?;
        let spec = key.record().spec;
        let material = self.generate_material(spec)?;
        let now = self.now();
        let keys = self.device.as_ref().ok_or_else(|| Error::new(ErrorCode::Internal, "no device keys"))?;
        let mut entry =
            VersionEntry { version, created: now, rotation, nonce: [0; 12], wrapped: heapless::Vec::new() };
        keys.wrap(&mut self.rng, &id, spec, &material, &mut entry)?;
        key.record_mut().versions.push(entry).map_err(|_| err!(LimitExceeded, "too many versions"))?;
        Ok(version)
    }

    /// Rotates `key` and saves it.
    pub fn rotate(&mut self, key: &mut LoadedKey<'_>, kind: RotationType) -> OpResult<KeyVersion> {
        let v = self.push_version(key, Some(kind))?;
        match kind {
            RotationType::Automatic => key.record_mut().rotation_base = self.now(),
            RotationType::OnDemand => {}
        }
        self.save(key)?;
        Ok(v)
    }

    /// Deletes key `id`, its versions (crypto-erase: the record is zeroed on flash) and its
    /// aliases. Removing the key record is the commit point.
    pub fn delete_key(&mut self, id: &KeyId) -> OpResult<()> {
        self.remove(Kind::Key, &id.0)?;
        self.usage.retain(|u| u.key != *id);
        self.remove(Kind::Usage, &id.0)?;
        let mut i = 0;
        while let Some(e) = self.entries(Kind::Alias).get(i) {
            let aid = e.id;
            match self.read::<AliasRecord>(&aid)? {
                Some(a) if a.target == id.0 => {
                    self.remove(Kind::Alias, &aid)?;
                }
                _ => i += 1,
            }
        }
        Ok(())
    }

    /// Performs rotations and deletions whose date host time has passed (`slot` holds each key
    /// while it is worked on), and notes each in `done` (the token audits them). Stops when
    /// `done` is full: the rest are done at the next request.
    pub fn run_due(&mut self, slot: &mut KeyRecord, done: &mut heapless::Vec<DueEvent, MAX_DUE_PER_REQUEST>) {
        if self.device.is_none() {
            return;
        }
        let now = self.now();
        let limit = self.entries(Kind::Key).len() + 1;
        for _ in 0..limit {
            if done.is_full() {
                return;
            }
            let Some(id) = self
                .entries(Kind::Key)
                .iter()
                .find(|e| e.due != 0 && (e.due as u64) <= now)
                .map(|e| KeyId(e.id))
            else {
                return;
            };
            match self.run_due_key(&id, now, slot) {
                Ok(Some(event)) => {
                    let _ = done.push(event);
                }
                Ok(None) => {}
                Err(_) => {
                    // Try again an hour later rather than on every request.
                    let retry = due_value(Some(now + CLOCK_PERSIST_INTERVAL));
                    self.store.set_due(Kind::Key.byte(), &id.0, retry);
                }
            }
        }
    }

    fn run_due_key(&mut self, id: &KeyId, now: UnixTime, slot: &mut KeyRecord) -> OpResult<Option<DueEvent>> {
        let mut key = self.load(id, slot)?;
        let rec = key.record();
        match rec.state {
            pkms_protocol::KeyState::PendingDeletion if rec.deletion_date.is_some_and(|d| d <= now) => {
                self.delete_key(id)?;
                Ok(Some(DueEvent::Deleted(*id)))
            }
            pkms_protocol::KeyState::Enabled if rec.next_rotation().is_some_and(|d| d <= now) => {
                let version = self.rotate(&mut key, RotationType::Automatic)?;
                Ok(Some(DueEvent::Rotated(*id, version)))
            }
            pkms_protocol::KeyState::PendingDeletion
            | pkms_protocol::KeyState::Enabled
            | pkms_protocol::KeyState::Disabled => {
                self.store.set_due(Kind::Key.byte(), &id.0, due_value(rec.due()));
                Ok(None)
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Aliases

    /// Reads alias `name`, if it exists.
    pub fn read_alias(&mut self, name: &str) -> OpResult<Option<AliasRecord>> {
        let rec = self.read::<AliasRecord>(&alias_id(name))?;
        Ok(rec.filter(|a| a.name.as_str() == name))
    }

    /// Saves an alias record.
    pub fn save_alias(&mut self, rec: &AliasRecord) -> OpResult<()> {
        self.persist_time()?;
        self.write(&alias_id(&rec.name), rec)
    }
}

fn too_large(kind: Kind) -> &'static str {
    match kind {
        Kind::Key => "the key record does not fit in the store",
        Kind::Access => "the key's policy and grants do not fit in one record",
        Kind::Device
        | Kind::Clock
        | Kind::Alias
        | Kind::Usage
        | Kind::Auth
        | Kind::Principal
        | Kind::Audit
        | Kind::AuditBase
        | Kind::AuditPending
        | Kind::BackupKey
        | Kind::RestorePending => "the record does not fit in the key store",
    }
}

fn unreadable(kind: Kind) -> Error {
    match kind {
        Kind::Device => Error::new(ErrorCode::StorageCorrupted, "the device record cannot be read"),
        Kind::Clock => Error::new(ErrorCode::StorageCorrupted, "the clock record cannot be read"),
        Kind::Key => Error::new(ErrorCode::StorageCorrupted, "a key record cannot be read"),
        Kind::Alias => Error::new(ErrorCode::StorageCorrupted, "an alias record cannot be read"),
        Kind::Usage => Error::new(ErrorCode::StorageCorrupted, "a key's encryption count cannot be read"),
        Kind::Auth => Error::new(ErrorCode::StorageCorrupted, "the authentication record cannot be read"),
        Kind::Principal => Error::new(ErrorCode::StorageCorrupted, "a principal record cannot be read"),
        Kind::Access => Error::new(ErrorCode::StorageCorrupted, "a key's access record cannot be read"),
        Kind::Audit => Error::new(ErrorCode::StorageCorrupted, "an audit entry cannot be read"),
        Kind::AuditBase => {
            Error::new(ErrorCode::StorageCorrupted, "the audit checkpoint record cannot be read")
        }
        Kind::AuditPending => {
            Error::new(ErrorCode::StorageCorrupted, "the record of uncounted audit requests cannot be read")
        }
        Kind::BackupKey => Error::new(ErrorCode::StorageCorrupted, "the backup key record cannot be read"),
        Kind::RestorePending => {
            Error::new(ErrorCode::StorageCorrupted, "the record of a restore in progress cannot be read")
        }
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

/// Why a token whose self-test `test` failed refuses key operations.
fn self_test_failure(test: SelfTest) -> Error {
    Error::format(
        ErrorCode::SelfTestFailed,
        format_args!(
            "the self-test {} failed: this token answers only Hello, GetInfo and GetSelfTests until it restarts",
            test.name()
        ),
    )
}
