//! The audit log: one store record per entry (kind [`KIND_AUDIT`], id = sequence number), each
//! entry carrying the SHA-256 hash of the one before ([`pkms_protocol::access::AuditEntry`]).
//!
//! Entries live in the same power-cut-safe store as keys, so an append is atomic and wear is
//! spread over the whole flash by the store's page ring. The log holds at most [`CAPACITY`]
//! entries. When it is full, overwrite mode drops the oldest [`DROP_CHUNK`] entries behind a
//! signed base checkpoint (record [`KIND_AUDIT_BASE`]: the sequence number and hash of the last
//! dropped entry and the attestation key's signature over them); force-audit mode refuses
//! operations until an administrator trims what was exported (TrimAuditLog, which also leaves a
//! signed base checkpoint). The base record is written before entries are removed, and mount
//! finishes a removal a power cut interrupted.

use embedded_storage::nor_flash::NorFlash;
use pkms_protocol::access::{
    checkpoint_digest, AuditEntry, AuditFullMode, AUDIT_ENTRY_LEN, MAX_AUDIT_PAGE, MAX_PRINCIPAL_NAME,
};
use pkms_protocol::messages::Response;
use pkms_protocol::{ErrorCode, KeyId};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::auth::records::{audit_id, audit_sequence, FORMAT, KIND_AUDIT, KIND_AUDIT_BASE};
use crate::board::Board;
use crate::crypto::signing::{self, MAX_DER_SIGNATURE, SPKI_LEN};
use crate::err;
use crate::error::OpResult;
use crate::ops::Buffers;
use crate::records::SINGLETON_ID;
use crate::state::Core;

/// Most entries the log holds (each takes a 156-byte record: 40 KiB in all).
pub const CAPACITY: usize = 256;
/// Entries dropped at once in overwrite mode (one signature per chunk).
pub const DROP_CHUNK: usize = 16;

/// The signed checkpoint behind the oldest held entry.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct BaseRecord {
    /// [`FORMAT`].
    pub format: u8,
    /// Sequence number of the last dropped entry.
    pub sequence: u64,
    /// Its hash.
    pub hash: [u8; 32],
    /// Signature over [`checkpoint_digest`]`(sequence, hash)`.
    pub signature: heapless::Vec<u8, MAX_DER_SIGNATURE>,
}

/// The log's head.
#[derive(Debug, Clone, Copy, Default)]
pub struct Log {
    /// Sequence number of the newest entry (0: none ever).
    pub head_sequence: u64,
    /// Its hash (zeros: none).
    pub head_hash: [u8; 32],
}

impl Log {
    /// Finds the head; removes entries a cut left behind the base checkpoint.
    pub fn mount<F: NorFlash, R: RngCore + CryptoRng, B: Board>(core: &mut Core<F, R, B>) -> Log {
        let mut log = Log::default();
        let base = read_base(core).ok().flatten();
        if let Some(b) = &base {
            log.head_sequence = b.sequence;
            log.head_hash = b.hash;
            while let Some(id) = core.store.entries(KIND_AUDIT).first().map(|e| e.id) {
                if audit_sequence(&id) > b.sequence || core.store.remove(KIND_AUDIT, &id).is_err() {
                    break;
                }
            }
        }
        if let Some(id) = core.store.entries(KIND_AUDIT).last().map(|e| e.id) {
            if let Ok(Some(e)) = read_entry(core, &id) {
                log.head_sequence = e.sequence;
                log.head_hash = e.hash();
            }
        }
        log
    }

    /// Whether the log holds [`CAPACITY`] entries.
    pub fn is_full<F: NorFlash, R, B>(&self, core: &Core<F, R, B>) -> bool {
        core.store.entries(KIND_AUDIT).len() >= CAPACITY
    }

    /// Appends an entry, durable when this returns. With `drop_key` (overwrite mode), a full
    /// log drops its oldest entries behind a checkpoint signed with that key.
    #[allow(clippy::too_many_arguments)]
    pub fn append<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
        &mut self,
        core: &mut Core<F, R, B>,
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
        let bytes = e.encode();
        core.store.put(KIND_AUDIT, &audit_id(e.sequence), &bytes)?;
        self.head_sequence = e.sequence;
        self.head_hash = e.hash();
        if let Some(key) = drop_key {
            if core.store.entries(KIND_AUDIT).len() > CAPACITY {
                let first =
                    core.store.entries(KIND_AUDIT).first().map(|x| audit_sequence(&x.id)).unwrap_or(0);
                self.trim(core, first + DROP_CHUNK as u64 - 1, key)?;
            }
        }
        Ok(())
    }

    /// Drops entries up to and including `through` behind a signed base checkpoint.
    pub fn trim<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
        &mut self,
        core: &mut Core<F, R, B>,
        through: u64,
        key: &[u8; 32],
    ) -> OpResult<()> {
        let Some(last) = read_entry(core, &audit_id(through))? else {
            return Err(err!(
                Validation,
                "the audit log holds no entry {} (see GetAuditCheckpoint)",
                through
            ));
        };
        let hash = last.hash();
        let mut signature = [0u8; MAX_DER_SIGNATURE];
        let len = signing::sign(&mut core.rng, key, &checkpoint_digest(through, &hash), &mut signature)?;
        let mut base =
            BaseRecord { format: FORMAT, sequence: through, hash, signature: heapless::Vec::new() };
        base.signature
            .extend_from_slice(&signature[..len])
            .map_err(|_| err!(Internal, "signature too long"))?;
        let n = postcard::to_slice(&base, &mut core.io)
            .map_err(|_| err!(Internal, "cannot encode checkpoint"))?
            .len();
        core.store.put(KIND_AUDIT_BASE, &SINGLETON_ID, &core.io[..n])?;
        while let Some(id) = core.store.entries(KIND_AUDIT).first().map(|e| e.id) {
            if audit_sequence(&id) > through {
                break;
            }
            core.store.remove(KIND_AUDIT, &id)?;
        }
        Ok(())
    }

    /// The head checkpoint, signed with `key` now.
    pub fn checkpoint<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
        &self,
        core: &mut Core<F, R, B>,
        bufs: &'b mut Buffers,
        key: &[u8; 32],
        audit_full: AuditFullMode,
    ) -> OpResult<Response<'b>> {
        let first_sequence = core
            .store
            .entries(KIND_AUDIT)
            .first()
            .map(|e| audit_sequence(&e.id))
            .unwrap_or(self.head_sequence + 1);
        let base = read_base(core)?;
        let (head, rest) = bufs.a.split_at_mut(MAX_DER_SIGNATURE);
        let (spki, rest) = rest.split_at_mut(SPKI_LEN);
        let mut sig = [0u8; MAX_DER_SIGNATURE];
        let n = signing::sign(
            &mut core.rng,
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
        Ok(Response::AuditCheckpoint {
            sequence: self.head_sequence,
            hash: self.head_hash,
            signature: &head[..n],
            first_sequence,
            public_key: spki,
            capacity: CAPACITY as u32,
            audit_full,
            base_signature: &rest[..base_len],
        })
    }

    /// Up to `limit` (≤ [`MAX_AUDIT_PAGE`]) encoded entries from `start` on.
    pub fn read<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
        &self,
        core: &mut Core<F, R, B>,
        bufs: &'b mut Buffers,
        start: u64,
        limit: u16,
    ) -> OpResult<Response<'b>> {
        let limit = (limit as usize).clamp(1, MAX_AUDIT_PAGE);
        let from = core.store.entries(KIND_AUDIT).partition_point(|e| audit_sequence(&e.id) < start);
        let mut pos = 0;
        for i in from..from + limit {
            let Some(id) = core.store.entries(KIND_AUDIT).get(i).map(|e| e.id) else { break };
            let Some(n) = core.store.get(KIND_AUDIT, &id, &mut core.io)? else { break };
            if n != AUDIT_ENTRY_LEN || pos + n > bufs.a.len() {
                return Err(err!(StorageCorrupted, "audit entry {} has a bad length", audit_sequence(&id)));
            }
            bufs.a[pos..pos + n].copy_from_slice(&core.io[..n]);
            pos += n;
        }
        Ok(Response::AuditEntries { entries: &bufs.a[..pos] })
    }
}

fn read_entry<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    id: &crate::store::RecordId,
) -> OpResult<Option<AuditEntry>> {
    match core.store.get(KIND_AUDIT, id, &mut core.io)? {
        Some(n) => AuditEntry::decode(&core.io[..n])
            .map(Some)
            .ok_or_else(|| err!(StorageCorrupted, "an audit entry cannot be read")),
        None => Ok(None),
    }
}

fn read_base<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
) -> OpResult<Option<BaseRecord>> {
    match core.store.get(KIND_AUDIT_BASE, &SINGLETON_ID, &mut core.io)? {
        Some(n) => postcard::from_bytes(&core.io[..n])
            .map(Some)
            .map_err(|_| err!(StorageCorrupted, "the audit checkpoint record cannot be read")),
        None => Ok(None),
    }
}
