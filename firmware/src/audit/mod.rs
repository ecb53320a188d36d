//! The audit log: one store record per entry (kind [`Kind::Audit`], id = sequence number), each
//! entry carrying the SHA-256 hash of the one before ([`pkms_protocol::access::AuditEntry`]).
//!
//! Entries live in the same power-cut-safe store as keys, so an append is atomic and wear is
//! spread over the whole flash by the store's page ring. The log holds at most the platform's
//! [`Platform::AUDIT_CAPACITY`] entries (half the store's flash: see [`crate::platform`]), and
//! fewer when the keys leave it less flash than that ([`Log::room`]). When it is full, overwrite
//! mode drops the oldest [`DROP_CHUNK`] entries behind a signed base checkpoint (record
//! [`Kind::AuditBase`]: the sequence number and hash of the last dropped entry and the
//! attestation key's signature over them) before it appends; force-audit mode refuses
//! operations until an administrator trims what was exported (TrimAuditLog, which also leaves a
//! signed base checkpoint). The base record is written before entries are removed, and mount
//! finishes a removal a power cut interrupted.
//!
//! Requests with no one logged in (in the clear, or in a session before Authenticate) get no
//! entry each, unless they succeed at something that changes who is logged in or what the token
//! holds (Initialize, Authenticate, UnblockPin, FactoryReset). The rest are counted in RAM
//! ([`UnauthenticatedRequests`]: answered, failed PIN or PUK checks, refused), and the counts go
//! into one entry ([`UNAUTHENTICATED_REQUESTS`]) written just before the next entry, if anything
//! was refused. So requests from someone without a PIN never push retained entries out, nor fill
//! a log that refuses when full: they add at most one entry per entry of someone who has a PIN.
//! (In force-audit mode the counts wait while fewer than two entries are free.) Each wrong PIN or
//! PUK (or unknown principal) also writes the counts so far to flash ([`PendingCountsRecord`],
//! rewritten in place; the PIN stretch each of those costs bounds how often), so pulling the plug
//! does not hide failed tries; other counts not yet written are lost when the power goes.

use pkms_protocol::access::{
    checkpoint_digest, AuditEntry, AuditEvent, AuditFullMode, AuditLogStatus, UnauthenticatedRequests,
    MAX_AUDIT_PAGE, MAX_PRINCIPAL_NAME, UNAUTHENTICATED_REQUESTS,
};
use pkms_protocol::{reply, ErrorCode, KeyId, KeyVersion, Operation, Response};

use crate::caller::Caller;
use crate::crypto::signing::{self, MAX_DER_SIGNATURE, SPKI_LEN};
use crate::err;
use crate::error::OpResult;
use crate::ops::Buffers;
use crate::platform::{Platform, AUDIT_ENTRY_BYTES};
use crate::records::{
    audit_id, audit_sequence, AuthRecord, BaseRecord, Kind, PendingCountsRecord, FORMAT, SINGLETON_ID,
};
use crate::state::Core;
use crate::store::{record_size, ID_LEN, MAX_PAYLOAD};

/// Entries dropped at once in overwrite mode (one signature per chunk).
pub const DROP_CHUNK: usize = 16;

/// Flash the log leaves free: for the records a drop or a failed PIN writes besides entries (a
/// base checkpoint, written before the entries it covers are removed, and pending counts), and
/// two pages' worth for the keys' own writes when they crowd the store (records do not span
/// pages, so the store's free bytes overstate what fits by up to a record per page).
const RESERVED_BYTES: usize = record_size(ID_LEN + 1 + 10 + 32 + 1 + MAX_DER_SIGNATURE)
    + record_size(ID_LEN + 1 + 10 + 16)
    + 2 * MAX_PAYLOAD;
/// Index places left for the same two records.
const RESERVED_RECORDS: usize = 2;

/// What the log does with an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    /// An entry of its own.
    Entry,
    /// A request with no one logged in, counted ([`UnauthenticatedRequests`]) instead.
    Counted(Count),
    /// Nothing (an open token logs nothing).
    Nothing,
}

/// Which count a request with no one logged in goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Answered: Hello, GetInfo, GetDeviceKey, the handshake, closing a session.
    Answered,
    /// A wrong PIN or PUK, or an unknown principal (Authenticate or UnblockPin in a session
    /// answered AuthenticationFailed: each cost a PIN stretch).
    FailedAuthentication,
    /// Anything else refused: a request that needs a login, anything but the clear requests in
    /// the clear, a locked PIN or PUK, a PUK try before its wait, a refused factory reset.
    Refused,
}

/// What the log does with the answer to `request` from `caller` (as it was when the request
/// arrived) that had `outcome`. Everything a logged-in principal asks gets an entry, and so does
/// a successful Initialize, Authenticate, UnblockPin or FactoryReset (they change who is logged
/// in or what the token holds). The rest of what arrives with no login (in the clear, or in a
/// session before Authenticate) is counted: see the module docs.
pub fn recording(
    caller: Caller<'_>,
    request: &pkms_protocol::Request<'_>,
    outcome: Result<(), ErrorCode>,
) -> Recording {
    use pkms_protocol::{Gate, Request};
    match caller {
        Caller::Open => Recording::Nothing,
        // An export is one entry (its beginning), not one per chunk.
        Caller::Principal { .. } if matches!(request, Request::BackupExportChunk(_)) && outcome.is_ok() => {
            Recording::Nothing
        }
        Caller::Principal { .. } => Recording::Entry,
        // In the clear nothing but Hello, GetInfo, GetDeviceKey and the handshake is served, and
        // no secret is ever checked.
        Caller::Outside => match (request.gate(), outcome) {
            (Gate::Plain, Ok(())) => Recording::Counted(Count::Answered),
            (Gate::Open | Gate::Plain | Gate::Session | Gate::Admin | Gate::Key(_) | Gate::Keys(_, _), _) => {
                Recording::Counted(Count::Refused)
            }
        },
        Caller::Nobody => match (request.gate(), outcome) {
            (Gate::Plain, Ok(())) => Recording::Counted(Count::Answered),
            (Gate::Open, Ok(())) if matches!(request, Request::CloseSession(_)) => {
                Recording::Counted(Count::Answered)
            }
            (Gate::Open, Ok(())) => Recording::Entry,
            (Gate::Open, Err(ErrorCode::AuthenticationFailed))
                if matches!(request, Request::Authenticate(_) | Request::UnblockPin(_)) =>
            {
                Recording::Counted(Count::FailedAuthentication)
            }
            (Gate::Open | Gate::Plain | Gate::Session | Gate::Admin | Gate::Key(_) | Gate::Keys(_, _), _) => {
                Recording::Counted(Count::Refused)
            }
        },
    }
}

/// The log's head, and the requests with no one logged in counted since the last entry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Log {
    /// Sequence number of the newest entry (0: none ever).
    pub head_sequence: u64,
    /// Its hash (zeros: none).
    pub head_hash: [u8; 32],
    /// Requests with no one logged in, not written yet.
    pub unauthenticated: UnauthenticatedRequests,
}

impl Log {
    /// Finds the head; removes entries a cut left behind the base checkpoint.
    pub fn mount<P: Platform>(core: &mut Core<P>) -> Log {
        let mut log = Log::default();
        if !core.is_usable() {
            return log;
        }
        let base = core.read::<BaseRecord>(&SINGLETON_ID).ok().flatten();
        if let Some(b) = &base {
            log.head_sequence = b.sequence;
            log.head_hash = b.hash;
            while let Some(id) = core.entries(Kind::Audit).first().map(|e| e.id) {
                if audit_sequence(&id) > b.sequence || core.remove(Kind::Audit, &id).is_err() {
                    break;
                }
            }
        }
        if let Some(id) = core.entries(Kind::Audit).last().map(|e| e.id) {
            if let Ok(Some(e)) = core.read::<AuditEntry>(&id) {
                log.head_sequence = e.sequence;
                log.head_hash = e.hash();
            }
        }
        // Counts kept before a restart: still to be written, unless their entry already was (a
        // cut after writing it and before removing them).
        if let Ok(Some(p)) = core.read::<PendingCountsRecord>(&SINGLETON_ID) {
            if p.sequence > log.head_sequence {
                log.unauthenticated = UnauthenticatedRequests::decode(&p.counts);
            } else {
                let _ = core.remove(Kind::AuditPending, &SINGLETON_ID);
            }
        }
        log
    }

    /// Entries the log can still take before it is full: what [`Platform::AUDIT_CAPACITY`]
    /// leaves, or fewer when the store's free flash or index places (what the keys leave) hold
    /// fewer, with room for a base checkpoint and pending counts kept aside.
    pub fn room<P: Platform>(&self, core: &Core<P>) -> usize {
        let by_capacity = P::AUDIT_CAPACITY.saturating_sub(core.entries(Kind::Audit).len());
        let by_flash = core.storage_free_bytes().saturating_sub(RESERVED_BYTES) / AUDIT_ENTRY_BYTES;
        let by_index = core.free_records().saturating_sub(RESERVED_RECORDS);
        by_capacity.min(by_flash).min(by_index)
    }

    /// Whether the log is full: it has no room and holds entries to export and trim (a store
    /// the keys filled before the log held anything is the key store's problem, not the log's).
    pub fn is_full<P: Platform>(&self, core: &Core<P>) -> bool {
        self.room(core) == 0 && !core.entries(Kind::Audit).is_empty()
    }

    /// What a principal who logs in is told of the log (the trailer of Authenticate's answer).
    pub fn status<P: Platform>(&self, core: &Core<P>, mode: AuditFullMode) -> AuditLogStatus {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        AuditLogStatus {
            entries: clamp(core.entries(Kind::Audit).len()),
            capacity: clamp(P::AUDIT_CAPACITY),
            room: clamp(self.room(core)),
            when_full: mode,
        }
    }

    /// Appends the entry of a request that was answered, durable when this returns (nothing on
    /// an open token; what [`recording`] says gets an entry). Counts not yet written go first, as
    /// one entry ([`UNAUTHENTICATED_REQUESTS`]). In
    /// overwrite mode a full log first drops its oldest entries behind a checkpoint signed by the
    /// attestation key. In force-audit mode a log that was full when the request was admitted
    /// (`full_when_admitted`: only requests served while it is full get here) and still is
    /// records nothing more; a request admitted into a log with room is always recorded, also
    /// when its own writes took the last of the flash (the append then fails and the answer is
    /// withheld) or an event took the last place.
    #[allow(clippy::too_many_arguments)]
    pub fn record<P: Platform>(
        &mut self,
        core: &mut Core<P>,
        caller: Caller<'_>,
        mode: AuditFullMode,
        full_when_admitted: bool,
        operation: Operation,
        result: Result<(), ErrorCode>,
        key_id: Option<KeyId>,
        key_version: KeyVersion,
    ) -> OpResult<()> {
        if !caller.initialized() {
            return Ok(());
        }
        let drop_key = match mode {
            AuditFullMode::Refuse if full_when_admitted && self.is_full(core) => return Ok(()),
            AuditFullMode::Refuse => None,
            AuditFullMode::Overwrite => core.read::<AuthRecord>(&SINGLETON_ID)?.map(|a| a.attestation_key),
        };
        self.write_counts(core, mode, drop_key.as_ref())?;
        self.append(core, operation.index(), result, key_id, key_version, caller.name(), drop_key.as_ref())
    }

    /// Counts a request with no one logged in ([`Recording::Counted`]). A wrong PIN or PUK also
    /// writes the counts so far to flash, so pulling the plug does not hide failed tries.
    pub fn count<P: Platform>(&mut self, core: &mut Core<P>, count: Count) -> OpResult<()> {
        let c = &mut self.unauthenticated;
        if c.total() == 0 {
            c.since = u32::try_from(core.now()).unwrap_or(u32::MAX);
        }
        let counter = match count {
            Count::Answered => &mut c.answered,
            Count::FailedAuthentication => &mut c.failed_authentications,
            Count::Refused => &mut c.refused,
        };
        *counter = counter.saturating_add(1);
        // Only a failed PIN or PUK check is written at once: each cost a PIN stretch (or a PUK
        // delay), which bounds how often. The other counts ride along.
        if count != Count::FailedAuthentication {
            return Ok(());
        }
        let counts = c.encode();
        let rec = PendingCountsRecord { format: FORMAT, sequence: self.head_sequence + 1, counts };
        core.write(&SINGLETON_ID, &rec)
    }

    /// Writes the counts as one entry before another entry is appended, when something was
    /// refused (answered requests alone ride along with the next refusal). In force-audit mode
    /// only while that leaves room for the entry that follows (else the counts wait for the log
    /// to be trimmed).
    fn write_counts<P: Platform>(
        &mut self,
        core: &mut Core<P>,
        mode: AuditFullMode,
        drop_key: Option<&[u8; 32]>,
    ) -> OpResult<()> {
        let pending = self.unauthenticated;
        if pending.failed_authentications == 0 && pending.refused == 0 {
            return Ok(());
        }
        let room = match mode {
            AuditFullMode::Refuse => self.room(core) >= 2,
            AuditFullMode::Overwrite => true,
        };
        if !room {
            if pending.failed_authentications > 0 {
                // The entry about to be appended takes the sequence number the kept counts
                // were waiting for: move them one further first, so that a restart still
                // finds them unwritten.
                let rec = PendingCountsRecord {
                    format: FORMAT,
                    sequence: self.head_sequence + 2,
                    counts: pending.encode(),
                };
                core.write(&SINGLETON_ID, &rec)?;
            }
            return Ok(());
        }
        let counts = Some(KeyId(pending.encode()));
        self.append(core, UNAUTHENTICATED_REQUESTS, Ok(()), counts, 0, "", drop_key)?;
        self.unauthenticated = UnauthenticatedRequests::default();
        // Written: the copy on flash goes (a cut before this is recognised at mount).
        core.remove(Kind::AuditPending, &SINGLETON_ID)?;
        Ok(())
    }

    /// Appends the entry of something the token did by itself (an automatic rotation or
    /// deletion, a clock move of more than a day), with no principal. In force-audit mode a full
    /// log refuses it: the request that would have made it is refused too.
    pub fn record_event<P: Platform>(
        &mut self,
        core: &mut Core<P>,
        mode: AuditFullMode,
        event: AuditEvent,
        key_id: Option<KeyId>,
        key_version: KeyVersion,
    ) -> OpResult<()> {
        let drop_key = match mode {
            AuditFullMode::Refuse if self.is_full(core) => {
                return Err(err!(
                    AuditLogFull,
                    "the audit log is full and this token refuses operations until it is exported and trimmed (pkms audit export --out FILE --trim)"
                ))
            }
            AuditFullMode::Refuse => None,
            AuditFullMode::Overwrite => core.read::<AuthRecord>(&SINGLETON_ID)?.map(|a| a.attestation_key),
        };
        // In force-audit mode the counts are written only with room for one more entry.
        self.write_counts(core, mode, drop_key.as_ref())?;
        self.append(core, event.code(), Ok(()), key_id, key_version, "", drop_key.as_ref())
    }

    /// Appends an entry, durable when this returns. With `drop_key` (overwrite mode), a full
    /// log first drops its oldest [`DROP_CHUNK`] entries behind a checkpoint signed with that
    /// key.
    #[allow(clippy::too_many_arguments)]
    pub fn append<P: Platform>(
        &mut self,
        core: &mut Core<P>,
        operation: u16,
        result: Result<(), ErrorCode>,
        key_id: Option<KeyId>,
        key_version: u32,
        principal: &str,
        drop_key: Option<&[u8; 32]>,
    ) -> OpResult<()> {
        let mut e = AuditEntry {
            sequence: self.head_sequence + 1,
            time: core.now(),
            operation,
            result: match result {
                Ok(()) => 0,
                Err(code) => {
                    ErrorCode::ALL.iter().position(|c| *c == code).map(|i| i as u16 + 1).unwrap_or(u16::MAX)
                }
            },
            key_id: key_id.map(|k| k.0).unwrap_or([0; 16]),
            key_version,
            principal_len: 0,
            principal: [0; MAX_PRINCIPAL_NAME],
            prev_hash: self.head_hash,
        };
        let n = principal.len().min(MAX_PRINCIPAL_NAME);
        e.principal[..n].copy_from_slice(&principal.as_bytes()[..n]);
        e.principal_len = n as u8;
        if let Some(key) = drop_key {
            if self.is_full(core) {
                let held = core.entries(Kind::Audit);
                let first = held.first().map(|x| audit_sequence(&x.id)).unwrap_or(0);
                let last = held.last().map(|x| audit_sequence(&x.id)).unwrap_or(0);
                self.trim(core, (first + DROP_CHUNK as u64 - 1).min(last), key)?;
            }
        }
        core.write(&audit_id(e.sequence), &e)?;
        self.head_sequence = e.sequence;
        self.head_hash = e.hash();
        Ok(())
    }

    /// Drops entries up to and including `through` behind a signed base checkpoint.
    pub fn trim<P: Platform>(&mut self, core: &mut Core<P>, through: u64, key: &[u8; 32]) -> OpResult<()> {
        drop_through(core, through, key)
    }

    /// GetAuditCheckpoint: the head, signed by the attestation key now.
    pub fn checkpoint<'b, P: Platform>(
        &self,
        core: &mut Core<P>,
        bufs: &'b mut Buffers,
        audit_full: AuditFullMode,
    ) -> OpResult<Response<'b>> {
        let Some(auth) = core.read::<AuthRecord>(&SINGLETON_ID)? else {
            return Err(err!(InvalidState, "the token is not initialised: it keeps no audit log"));
        };
        let key = &auth.attestation_key;
        let first_sequence = core
            .entries(Kind::Audit)
            .first()
            .map(|e| audit_sequence(&e.id))
            .unwrap_or(self.head_sequence + 1);
        let base = core.read::<BaseRecord>(&SINGLETON_ID)?;
        let (head, rest) = bufs.out.split_at_mut(MAX_DER_SIGNATURE);
        let (spki, rest) = rest.split_at_mut(SPKI_LEN);
        let mut sig = [0u8; MAX_DER_SIGNATURE];
        let n = signing::sign(
            core.rng(),
            key,
            &checkpoint_digest(self.head_sequence, &self.head_hash),
            &mut sig,
        )?;
        head[..n].copy_from_slice(&sig[..n]);
        let mut pk = [0u8; SPKI_LEN];
        signing::public_key_der(key, &mut pk)?;
        spki.copy_from_slice(&pk);
        let base_len = match &base {
            Some(b) if first_sequence > 1 => {
                let l = b.signature.len().min(rest.len());
                rest[..l].copy_from_slice(&b.signature[..l]);
                l
            }
            _ => 0,
        };
        Ok(Response::AuditCheckpoint(reply::AuditCheckpoint {
            sequence: self.head_sequence,
            hash: self.head_hash,
            signature: &head[..n],
            first_sequence,
            public_key: spki,
            capacity: u32::try_from(P::AUDIT_CAPACITY).unwrap_or(u32::MAX),
            audit_full,
            base_signature: &rest[..base_len],
        }))
    }

    /// ReadAuditLog: up to `limit` (≤ [`MAX_AUDIT_PAGE`]) encoded entries from `start` on.
    pub fn read<'b, P: Platform>(
        &self,
        core: &mut Core<P>,
        bufs: &'b mut Buffers,
        start: u64,
        limit: u16,
    ) -> OpResult<Response<'b>> {
        let limit = (limit as usize).clamp(1, MAX_AUDIT_PAGE);
        let from = core.entries(Kind::Audit).partition_point(|e| audit_sequence(&e.id) < start);
        let mut pos = 0;
        for i in from..from + limit {
            let Some(id) = core.entries(Kind::Audit).get(i).map(|e| e.id) else { break };
            let Some(e) = core.read::<AuditEntry>(&id)? else { break };
            let bytes = e.encode();
            let n = bytes.len();
            if pos + n > bufs.out.len() {
                return Err(err!(StorageCorrupted, "audit entry {} has a bad length", audit_sequence(&id)));
            }
            bufs.out[pos..pos + n].copy_from_slice(&bytes);
            pos += n;
        }
        Ok(Response::AuditEntries(reply::AuditEntries { entries: &bufs.out[..pos] }))
    }

    /// TrimAuditLog: drops entries up to `through` (after the administrator exported them).
    pub fn trim_request<P: Platform>(
        &mut self,
        core: &mut Core<P>,
        through: u64,
    ) -> OpResult<Response<'static>> {
        let Some(auth) = core.read::<AuthRecord>(&SINGLETON_ID)? else {
            return Err(err!(InvalidState, "the token is not initialised: it keeps no audit log"));
        };
        self.trim(core, through, &auth.attestation_key)?;
        Ok(Response::Done(reply::Done {}))
    }
}

/// Drops the log's entries up to and including `through` behind a base checkpoint signed with
/// `key`: the base is written first, then the entries are removed (mount finishes a removal a
/// power cut interrupted).
fn drop_through<P: Platform>(core: &mut Core<P>, through: u64, key: &[u8; 32]) -> OpResult<()> {
    let Some(last) = core.read::<AuditEntry>(&audit_id(through))? else {
        return Err(err!(Validation, "the audit log holds no entry {} (see GetAuditCheckpoint)", through));
    };
    let hash = last.hash();
    let mut signature = [0u8; MAX_DER_SIGNATURE];
    let len = signing::sign(core.rng(), key, &checkpoint_digest(through, &hash), &mut signature)?;
    let mut base = BaseRecord { format: FORMAT, sequence: through, hash, signature: heapless::Vec::new() };
    base.signature.extend_from_slice(&signature[..len]).map_err(|_| err!(Internal, "signature too long"))?;
    core.write(&SINGLETON_ID, &base)?;
    while let Some(id) = core.entries(Kind::Audit).first().map(|e| e.id) {
        if audit_sequence(&id) > through {
            break;
        }
        core.remove(Kind::Audit, &id)?;
    }
    Ok(())
}

/// Makes room for a record the store refused for want of flash or index places, when the log
/// overwrites: drops its oldest [`DROP_CHUNK`] entries (all it holds, if fewer) behind a signed
/// base checkpoint, so that keys always come before old entries. Whether it dropped any: never
/// with a log that refuses when full (its entries wait for an export), on an open token, or
/// with no entry left.
pub fn give_way<P: Platform>(core: &mut Core<P>) -> OpResult<bool> {
    let Some(auth) = core.read::<AuthRecord>(&SINGLETON_ID)? else { return Ok(false) };
    if auth.audit_refuse {
        return Ok(false);
    }
    let held = core.entries(Kind::Audit);
    let (Some(first), Some(last)) = (held.first(), held.last()) else { return Ok(false) };
    let (first, last) = (audit_sequence(&first.id), audit_sequence(&last.id));
    drop_through(core, (first + DROP_CHUNK as u64 - 1).min(last), &auth.attestation_key)?;
    Ok(true)
}

crate::dispatch::handle! {
    pkms_protocol::request::GetAuditCheckpoint => |_r, cx| cx.log.checkpoint(cx.core, cx.bufs, cx.auth.audit_full());
    pkms_protocol::request::ReadAuditLog => |r, cx| cx.log.read(cx.core, cx.bufs, r.start_sequence, r.limit);
    pkms_protocol::request::TrimAuditLog => |r, cx| cx.log.trim_request(cx.core, r.through_sequence);
}
