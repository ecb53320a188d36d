//! The audit log: one store record per entry (kind [`Kind::Audit`], id = sequence number), each
//! entry carrying the SHA-256 hash of the one before ([`pkms_protocol::access::AuditEntry`]).
//!
//! Entries live in the same power-cut-safe store as keys, so an append is atomic and wear is
//! spread over the whole flash by the store's page ring. The log holds at most [`CAPACITY`]
//! entries. When it is full, overwrite mode drops the oldest [`DROP_CHUNK`] entries behind a
//! signed base checkpoint (record [`Kind::AuditBase`]: the sequence number and hash of the last
//! dropped entry and the attestation key's signature over them); force-audit mode refuses
//! operations until an administrator trims what was exported (TrimAuditLog, which also leaves a
//! signed base checkpoint). The base record is written before entries are removed, and mount
//! finishes a removal a power cut interrupted.
//!
//! Requests answered outside a session (Hello, GetInfo, session set-up, failed authentication,
//! anything refused for want of a session) get no entry each: they are counted in RAM
//! ([`UnauthenticatedRequests`]), and the counts go into one entry
//! ([`UNAUTHENTICATED_REQUESTS`]) written just before the next entry of a request made in a
//! session. So requests from someone without a PIN never push retained entries out, nor fill a
//! log that refuses when full: they add at most one entry per entry of a principal's own. (In
//! force-audit mode the counts wait while fewer than two entries are free.) Each wrong PIN or
//! PUK (or unknown principal) also writes the counts so far to flash ([`PendingCountsRecord`],
//! rewritten in place; the PIN stretch each of those costs bounds how often), so pulling the
//! plug does not hide failed tries; other counts not yet written are lost when the power goes. A
//! successful UnblockPin (which needs the PUK) changes a principal's PIN and gets an entry of
//! its own.

use pkms_protocol::access::{
    checkpoint_digest, AuditEntry, AuditFullMode, UnauthenticatedRequests, MAX_AUDIT_PAGE,
    MAX_PRINCIPAL_NAME, UNAUTHENTICATED_REQUESTS,
};
use pkms_protocol::{reply, ErrorCode, KeyId, KeyVersion, Operation, Response};

use crate::caller::Caller;
use crate::crypto::signing::{self, MAX_DER_SIGNATURE, SPKI_LEN};
use crate::err;
use crate::error::OpResult;
use crate::ops::Buffers;
use crate::platform::Platform;
use crate::records::{
    audit_id, audit_sequence, AuthRecord, BaseRecord, Kind, PendingCountsRecord, FORMAT, SINGLETON_ID,
};
use crate::state::Core;

/// Most entries the log holds (each takes a 156-byte record: 40 KiB in all).
pub const CAPACITY: usize = 256;
/// Entries dropped at once in overwrite mode (one signature per chunk).
pub const DROP_CHUNK: usize = 16;

/// The log's head, and the requests counted outside a session since the last entry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Log {
    /// Sequence number of the newest entry (0: none ever).
    pub head_sequence: u64,
    /// Its hash (zeros: none).
    pub head_hash: [u8; 32],
    /// Requests answered outside a session, not written yet.
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

    /// Whether the log holds [`CAPACITY`] entries.
    pub fn is_full<P: Platform>(&self, core: &Core<P>) -> bool {
        core.entries(Kind::Audit).len() >= CAPACITY
    }

    /// Appends the entry of a request that was answered, durable when this returns (nothing on
    /// an open token). A request outside a session is counted instead (see the module docs); the
    /// counts are written first, as one entry, before the entry of a request in a session. In
    /// overwrite mode a full log first drops its oldest entries behind a checkpoint signed by the
    /// attestation key; in force-audit mode a full log records nothing more (only requests
    /// served while it is full get here).
    #[allow(clippy::too_many_arguments)]
    pub fn record<P: Platform>(
        &mut self,
        core: &mut Core<P>,
        caller: Caller<'_>,
        mode: AuditFullMode,
        operation: Operation,
        result: Result<(), ErrorCode>,
        key_id: Option<KeyId>,
        key_version: KeyVersion,
    ) -> OpResult<()> {
        match caller {
            Caller::Open => return Ok(()),
            // A PIN reset with the PUK changes what the token holds: it gets its own entry.
            Caller::Nobody if operation == Operation::UnblockPin && result.is_ok() => {}
            Caller::Nobody => return self.count(core, operation, result),
            Caller::Principal { .. } => {}
        }
        let drop_key = match mode {
            AuditFullMode::Refuse if self.is_full(core) => return Ok(()),
            AuditFullMode::Refuse => None,
            AuditFullMode::Overwrite => core.read::<AuthRecord>(&SINGLETON_ID)?.map(|a| a.attestation_key),
        };
        let pending = self.unauthenticated;
        let room = match mode {
            AuditFullMode::Refuse => core.entries(Kind::Audit).len() + 2 <= CAPACITY,
            AuditFullMode::Overwrite => true,
        };
        if pending.total() > 0 && room {
            let counts = Some(KeyId(pending.encode()));
            self.append(core, UNAUTHENTICATED_REQUESTS, Ok(()), counts, 0, "", drop_key.as_ref())?;
            self.unauthenticated = UnauthenticatedRequests::default();
            // Written: the copy on flash goes (a cut before this is recognised at mount).
            core.remove(Kind::AuditPending, &SINGLETON_ID)?;
        }
        self.append(core, operation.index(), result, key_id, key_version, caller.name(), drop_key.as_ref())
    }

    /// Counts a request answered outside a session; a wrong PIN or PUK also writes the counts
    /// so far to flash.
    fn count<P: Platform>(
        &mut self,
        core: &mut Core<P>,
        operation: Operation,
        result: Result<(), ErrorCode>,
    ) -> OpResult<()> {
        let c = &mut self.unauthenticated;
        if c.total() == 0 {
            c.since = u32::try_from(core.now()).unwrap_or(u32::MAX);
        }
        let authentication = matches!(operation, Operation::Authenticate | Operation::UnblockPin);
        let counter = match (result, authentication) {
            (Ok(()), _) => &mut c.answered,
            (Err(_), true) => &mut c.failed_authentications,
            (Err(_), false) => &mut c.refused,
        };
        *counter = counter.saturating_add(1);
        // Only a wrong PIN or PUK (or an unknown principal) is written at once: each cost a PIN
        // stretch, which bounds how often. Refusals that cost nothing (a locked principal, a
        // PUK try too early) and the other counts ride along.
        if !(authentication && result == Err(ErrorCode::AuthenticationFailed)) {
            return Ok(());
        }
        let counts = c.encode();
        let rec = PendingCountsRecord { format: FORMAT, sequence: self.head_sequence + 1, counts };
        core.write(&SINGLETON_ID, &rec)
    }

    /// Appends an entry, durable when this returns. With `drop_key` (overwrite mode), a full
    /// log drops its oldest entries behind a checkpoint signed with that key.
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
        core.write(&audit_id(e.sequence), &e)?;
        self.head_sequence = e.sequence;
        self.head_hash = e.hash();
        if let Some(key) = drop_key {
            if core.entries(Kind::Audit).len() > CAPACITY {
                let first = core.entries(Kind::Audit).first().map(|x| audit_sequence(&x.id)).unwrap_or(0);
                self.trim(core, first + DROP_CHUNK as u64 - 1, key)?;
            }
        }
        Ok(())
    }

    /// Drops entries up to and including `through` behind a signed base checkpoint.
    pub fn trim<P: Platform>(&mut self, core: &mut Core<P>, through: u64, key: &[u8; 32]) -> OpResult<()> {
        let Some(last) = core.read::<AuditEntry>(&audit_id(through))? else {
            return Err(err!(
                Validation,
                "the audit log holds no entry {} (see GetAuditCheckpoint)",
                through
            ));
        };
        let hash = last.hash();
        let mut signature = [0u8; MAX_DER_SIGNATURE];
        let len = signing::sign(core.rng(), key, &checkpoint_digest(through, &hash), &mut signature)?;
        let mut base =
            BaseRecord { format: FORMAT, sequence: through, hash, signature: heapless::Vec::new() };
        base.signature
            .extend_from_slice(&signature[..len])
            .map_err(|_| err!(Internal, "signature too long"))?;
        core.write(&SINGLETON_ID, &base)?;
        while let Some(id) = core.entries(Kind::Audit).first().map(|e| e.id) {
            if audit_sequence(&id) > through {
                break;
            }
            core.remove(Kind::Audit, &id)?;
        }
        Ok(())
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
            capacity: CAPACITY as u32,
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

crate::dispatch::handle! {
    pkms_protocol::request::GetAuditCheckpoint => |_r, cx| cx.log.checkpoint(cx.core, cx.bufs, cx.auth.audit_full());
    pkms_protocol::request::ReadAuditLog => |r, cx| cx.log.read(cx.core, cx.bufs, r.start_sequence, r.limit);
    pkms_protocol::request::TrimAuditLog => |r, cx| cx.log.trim_request(cx.core, r.through_sequence);
}
