//! Backups: the backup key, the streamed export, and the restore onto a fresh token
//! (docs/backup.md has the ceremony, the format and the threat model).
//!
//! * BackupInit makes a 32-byte backup key, seals it under the device root key
//!   ([`BackupKeyRecord`]) and answers it once: the host splits it into SLIP-39 shares.
//! * An export walks the store one chunk per request (RAM: one chunk buffer and a cursor), in
//!   this order: principals, the authentication record, the backup key, keys (every live
//!   version's material in the clear, inside the sealed chunk), encryption counts, policies and
//!   grants, aliases. Audit entries, the clock and the device key stay. Each chunk is
//!   AES-256-GCM under a key derived from the backup key (or, to a peer, from an ECDH with its
//!   device key) and the header ([`pkms_protocol::backup`]).
//! * A restore needs a fresh token (open, no records but the device key and the clock). It
//!   checks the header and derives the chunk key, then writes each chunk's records as it opens
//!   them, after a [`RestorePendingRecord`] marker: the last chunk writes the audit log's first
//!   entry ([`AuditEvent::RestoredFromBackup`]) and removes the marker, the commit point. Any
//!   refusal on the way removes what was written; mount does the same when it finds the
//!   marker (a power cut), so the token is fresh or completely restored, never half.

use hmac::{Hmac, Mac};
use pkms_protocol::access::AuditEvent;
use pkms_protocol::backup::{
    chunk_aad, chunk_nonce, Header, HeaderError, Mode, BACKUP_KEY_LEN, CHUNK_MAX, FORMAT_VERSION, HEADER_LEN,
    KDF_INFO, TAG_LEN,
};
use pkms_protocol::{reply, request, KeyId, Response};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::audit::Log;
use crate::auth::Auth;
use crate::crypto::gcm::Aes256Gcm;
use crate::crypto::signing;
use crate::err;
use crate::error::OpResult;
use crate::key::LoadedKey;
use crate::ops::Buffers;
use crate::platform::Platform;
use crate::records::{
    alias_id, principal_id, AccessRecord, AliasRecord, AuthRecord, BackupKeyRecord, ExportMark, KeyRecord,
    Kind, PrincipalRecord, Record, RecordId, RestorePendingRecord, UsageRecord, FORMAT, MAX_PAYLOAD,
    SINGLETON_ID,
};
use crate::state::Core;

/// The kinds an export carries, in the order it carries them.
const EXPORTED: [Kind; 7] =
    [Kind::Principal, Kind::Auth, Kind::BackupKey, Kind::Key, Kind::Usage, Kind::Access, Kind::Alias];

/// The kinds a fresh token has no record of, and that a restore (or its undoing) writes or removes.
const RESTORED: [Kind; 10] = [
    Kind::Key,
    Kind::Alias,
    Kind::Usage,
    Kind::Principal,
    Kind::Access,
    Kind::Audit,
    Kind::AuditBase,
    Kind::AuditPending,
    Kind::BackupKey,
    Kind::Auth,
];

/// Bytes before each record in a chunk: kind, id, body length (u16 BE).
const ITEM_HEADER: usize = 1 + 16 + 2;

/// A backup or restore in progress (one at a time; it belongs to the session that began it).
#[derive(Default)]
pub struct Transfer {
    state: State,
}

#[derive(Default)]
enum State {
    #[default]
    Idle,
    Export(Export),
    Restore(Restore),
}

struct Export {
    slot: Option<usize>,
    key: Zeroizing<[u8; 32]>,
    index: u32,
    /// Position in [`EXPORTED`] and the last id carried of that kind.
    phase: usize,
    after: Option<RecordId>,
    mark: ExportMark,
}

struct Restore {
    slot: Option<usize>,
    key: Zeroizing<[u8; 32]>,
    index: u32,
    source: [u8; 32],
    time: u64,
    records: u32,
    /// Whether the pending marker is written (something may need undoing).
    started: bool,
}

/// The token's backup status, as GetInfo shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// Live key versions in no export since the backup key was made.
    pub not_backed_up: u32,
    /// Whether there is a backup key.
    pub has_key: bool,
}

/// HKDF-SHA-256 (RFC 5869) giving 32 bytes: `info` is the concatenation of `info`'s parts.
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut extract = <Hmac<Sha256> as Mac>::new_from_slice(salt).unwrap_or_else(|_| unreachable_hmac());
    extract.update(ikm);
    let mut prk = Zeroizing::new([0u8; 32]);
    prk.copy_from_slice(&extract.finalize().into_bytes());
    let mut expand = <Hmac<Sha256> as Mac>::new_from_slice(&prk[..]).unwrap_or_else(|_| unreachable_hmac());
    for part in info {
        expand.update(part);
    }
    expand.update(&[1]);
    let mut okm = Zeroizing::new([0u8; 32]);
    okm.copy_from_slice(&expand.finalize().into_bytes());
    okm
}

fn unreachable_hmac() -> Hmac<Sha256> {
    // HMAC takes keys of any length: this is never reached.
    <Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]).unwrap_or_else(|_| unreachable_hmac())
}

/// The chunk key of a backup with `header`, from its secret (the backup key or an ECDH result).
fn chunk_key(header: &[u8; HEADER_LEN], salt: &[u8; 32], secret: &[u8]) -> Zeroizing<[u8; 32]> {
    let digest: [u8; 32] = Sha256::digest(header).into();
    hkdf_sha256(salt, secret, &[KDF_INFO, &digest])
}

/// SHA-256 of this token's device key (DER SubjectPublicKeyInfo): the token's id in backups.
fn own_id<P: Platform>(core: &mut Core<P>) -> OpResult<[u8; 32]> {
    let spki = core.device()?.identity()?.public_key_spki_der();
    Ok(Sha256::digest(spki).into())
}

fn read_backup_key<P: Platform>(
    core: &mut Core<P>,
) -> OpResult<Option<(BackupKeyRecord, Zeroizing<[u8; 32]>)>> {
    let Some(rec) = core.read::<BackupKeyRecord>(&SINGLETON_ID)? else { return Ok(None) };
    let secret = core.device()?.unseal_backup_key(&rec.nonce, &rec.sealed())?;
    Ok(Some((rec, secret)))
}

/// The live key versions in no export since the backup key was made (all of them when there is
/// none), and whether there is a backup key. A key whose record is older than the last export's
/// mark is in it whole; in a key rewritten since, the versions dated at or before the export's
/// start are (the export moves the clock a second on, so later versions are dated after it).
pub fn status<P: Platform>(core: &mut Core<P>, slot: &mut KeyRecord) -> Status {
    if !core.is_usable() {
        return Status::default();
    }
    let backup = core.read::<BackupKeyRecord>(&SINGLETON_ID).ok().flatten();
    let mark = backup.as_ref().and_then(|b| b.exported);
    let mut count: u32 = 0;
    let n = core.entries(Kind::Key).len();
    for i in 0..n {
        let Some(id) = core.entries(Kind::Key).get(i).map(|e| KeyId(e.id)) else { break };
        if let Some(m) = mark {
            if matches!(core.record_sequence(Kind::Key, &id.0), Ok(Some(seq)) if seq < m.sequence) {
                continue;
            }
        }
        if let Ok(key) = core.load(&id, slot) {
            let fresh =
                key.record().versions.iter().filter(|v| mark.is_none_or(|m| v.created > m.time)).count();
            count = count.saturating_add(fresh as u32);
        }
    }
    Status { not_backed_up: count, has_key: backup.is_some() }
}

/// Refuses a request that would carry the backup key in the clear (possible only on an open
/// token, which admits requests outside a session).
fn in_session(slot: Option<usize>) -> OpResult<()> {
    match slot {
        Some(_) => Ok(()),
        None => {
            Err(err!(Validation, "the backup key travels only inside an encrypted session: open one first"))
        }
    }
}

/// BackupInit.
fn init<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    slot: Option<usize>,
    replace: bool,
) -> OpResult<Response<'b>> {
    in_session(slot)?;
    core.device()?;
    if core.contains(Kind::BackupKey, &SINGLETON_ID) && !replace {
        return Err(err!(
            InvalidState,
            "this token already has a backup key; replacing it (--replace) means backups made so far need the old shares"
        ));
    }
    let mut secret = Zeroizing::new([0u8; BACKUP_KEY_LEN]);
    rand_core::RngCore::fill_bytes(core.rng(), &mut secret[..]);
    let (nonce, sealed) = core.seal_backup_key(&secret)?;
    core.write(&SINGLETON_ID, &BackupKeyRecord::new(nonce, &sealed))?;
    let out = &mut bufs.out[..BACKUP_KEY_LEN];
    out.copy_from_slice(&secret[..]);
    Ok(Response::BackupSecret(reply::BackupSecret { secret: out }))
}

/// BackupExportBegin.
fn export_begin<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    transfer: &mut Transfer,
    slot: Option<usize>,
    peer: Option<&[u8]>,
) -> OpResult<Response<'b>> {
    transfer.state = State::Idle;
    let source = own_id(core)?;
    let mut salt = [0u8; 32];
    rand_core::RngCore::fill_bytes(core.rng(), &mut salt);
    let mut header = Header {
        version: FORMAT_VERSION,
        mode: Mode::BackupKey,
        source,
        time: core.now(),
        salt,
        ephemeral: [0; 65],
        recipient: [0; 32],
    };
    let secret: Zeroizing<[u8; 32]> = match peer {
        None => match read_backup_key(core)? {
            Some((_, secret)) => secret,
            None => {
                return Err(err!(
                InvalidState,
                "this token has no backup key: make one first (pkms backup init), or export to a peer token"
            ))
            }
        },
        Some(der) => {
            let peer_key = pkms_p256::PublicKey::from_spki_der(der).map_err(|_| {
                err!(Validation, "the peer's device key is not a P-256 public key (DER SubjectPublicKeyInfo)")
            })?;
            let recipient: [u8; 32] = Sha256::digest(peer_key.to_spki_der()).into();
            if recipient == source {
                return Err(err!(
                    Validation,
                    "the peer's device key is this token's own: name another token"
                ));
            }
            let ephemeral = pkms_p256::SecretKey::random(core.rng());
            let shared = ephemeral
                .diffie_hellman(&peer_key)
                .map_err(|_| err!(Validation, "no key agreement with the peer's device key"))?;
            header.mode = Mode::Peer;
            header.ephemeral = ephemeral.public_key_sec1_uncompressed();
            header.recipient = recipient;
            shared
        }
    };
    let bytes = header.to_bytes();
    let key = chunk_key(&bytes, &header.salt, &secret[..]);
    // Every version made from now on is dated after the mark's time: the clock moves one second
    // on (and is persisted, so a restart cannot take it back).
    core.vouch_time(header.time.saturating_add(1))?;
    let mark = ExportMark { sequence: core.next_record_sequence(), time: header.time };
    transfer.state = State::Export(Export { slot, key, index: 0, phase: 0, after: None, mark });
    let out = &mut bufs.out[..HEADER_LEN];
    out.copy_from_slice(&bytes);
    Ok(Response::BackupHeader(reply::BackupHeader { header: out }))
}

/// The next record to export after the cursor, moving the cursor's kind on as kinds run out.
fn next_record<P: Platform>(
    core: &Core<P>,
    phase: &mut usize,
    after: &mut Option<RecordId>,
) -> Option<(Kind, RecordId)> {
    while let Some(kind) = EXPORTED.get(*phase) {
        let entries = core.entries(*kind);
        let at = match after {
            Some(a) => entries.partition_point(|e| e.id <= *a),
            None => 0,
        };
        if let Some(e) = entries.get(at) {
            return Some((*kind, e.id));
        }
        *phase += 1;
        *after = None;
    }
    None
}

/// Encodes record `(kind, id)` as it goes into a backup into `out`; its length, or `None` when
/// it does not fit. Keys carry each version's material in the clear (the chunk is sealed).
fn export_record<P: Platform>(
    core: &mut Core<P>,
    work: &mut [u8],
    slot: &mut KeyRecord,
    kind: Kind,
    id: &RecordId,
    out: &mut [u8],
) -> OpResult<Option<usize>> {
    match kind {
        Kind::Key => {
            let key_id = KeyId(*id);
            let encoded = {
                let mut key = core.load(&key_id, slot)?;
                let mut result = Ok(());
                for i in 0..key.record().versions.len() {
                    let version = key.record().versions[i].version;
                    match core.material(&key, version) {
                        Ok(m) => {
                            let e = &mut key.record_mut().versions[i];
                            e.wrapped.clear();
                            let _ = e.wrapped.extend_from_slice(m.as_bytes());
                            e.nonce = [0; 12];
                        }
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                result.map(|()| postcard::to_slice(key.record(), out).ok().map(|s| s.len()))
            };
            for v in slot.versions.iter_mut() {
                v.wrapped.iter_mut().for_each(|b| *b = 0);
            }
            encoded
        }
        Kind::BackupKey => {
            let Some((_, secret)) = read_backup_key(core)? else { return Ok(None) };
            let Some(o) = out.get_mut(..BACKUP_KEY_LEN) else { return Ok(None) };
            o.copy_from_slice(&secret[..]);
            Ok(Some(BACKUP_KEY_LEN))
        }
        Kind::Auth => {
            // The attestation key stays: it is this token's, and the restored token makes its own.
            let Some(mut auth) = core.read::<AuthRecord>(id)? else { return Ok(None) };
            auth.attestation_key.zeroize();
            Ok(auth.encode(out))
        }
        Kind::Principal | Kind::Usage | Kind::Access | Kind::Alias => {
            let n = core.read_raw(kind, id, &mut work[..MAX_PAYLOAD])?.unwrap_or(0);
            let fits = out.get_mut(..n).map(|o| o.copy_from_slice(&work[..n])).is_some();
            work[..n].fill(0);
            Ok(fits.then_some(n))
        }
        Kind::Device
        | Kind::Clock
        | Kind::Audit
        | Kind::AuditBase
        | Kind::AuditPending
        | Kind::RestorePending => Ok(Some(0)),
    }
}

/// BackupExportChunk.
fn export_chunk<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    transfer: &mut Transfer,
    slot: Option<usize>,
) -> OpResult<Response<'b>> {
    let State::Export(ex) = &mut transfer.state else {
        return Err(err!(
            InvalidState,
            "no export in progress in this session: begin one (BackupExportBegin)"
        ));
    };
    if ex.slot != slot {
        return Err(err!(InvalidState, "the export in progress belongs to another session"));
    }
    let Buffers { out, work, key, .. } = bufs;
    let mut pos = 0;
    let mut records = 0u32;
    let last = loop {
        let (mut phase, mut after) = (ex.phase, ex.after);
        let Some((kind, id)) = next_record(core, &mut phase, &mut after) else { break true };
        let (body_at, end) = (pos + ITEM_HEADER, CHUNK_MAX);
        let written = if body_at < end {
            match export_record(core, &mut work[..], key, kind, &id, &mut out[body_at..end]) {
                Ok(w) => w,
                Err(e) => {
                    transfer.state = State::Idle;
                    return Err(e);
                }
            }
        } else {
            None
        };
        match written {
            Some(n) => {
                out[pos] = kind.byte();
                out[pos + 1..pos + 17].copy_from_slice(&id);
                out[pos + 17..pos + 19].copy_from_slice(&(n as u16).to_be_bytes());
                pos = body_at + n;
                records += 1;
                ex.phase = phase;
                ex.after = Some(id);
            }
            None if pos == 0 => {
                transfer.state = State::Idle;
                return Err(err!(Internal, "a record does not fit in a backup chunk"));
            }
            None => break false,
        }
    };
    let index = ex.index;
    let tag = Aes256Gcm::new(&ex.key)
        .encrypt_in_place_detached(&chunk_nonce(index), &chunk_aad(index, last), &mut out[..pos])
        .map_err(|_| err!(Internal, "a backup chunk could not be sealed"))?;
    out[pos..pos + TAG_LEN].copy_from_slice(&tag);
    ex.index = index.checked_add(1).ok_or_else(|| err!(LimitExceeded, "too many chunks"))?;
    if last {
        let mark = ex.mark;
        transfer.state = State::Idle;
        // The export is complete: what it held counts as backed up.
        if let Some(mut rec) = core.read::<BackupKeyRecord>(&SINGLETON_ID)? {
            rec.exported = Some(mark);
            core.write(&SINGLETON_ID, &rec)?;
        }
    }
    Ok(Response::BackupChunk(reply::BackupChunk { sealed: &out[..pos + TAG_LEN], last, records }))
}

/// Whether the token is fresh: open, and no record but the device key and the clock.
fn is_fresh<P: Platform>(core: &Core<P>, auth: &Auth) -> bool {
    !auth.is_initialized() && RESTORED.iter().all(|k| core.entries(*k).is_empty())
}

/// Removes every record a restore writes, the pending marker last: the token is fresh again.
pub fn discard_restore<P: Platform>(core: &mut Core<P>) -> OpResult<()> {
    for kind in RESTORED {
        core.remove_all(kind)?;
    }
    core.remove(Kind::RestorePending, &SINGLETON_ID)?;
    Ok(())
}

/// BackupRestoreBegin.
fn restore_begin<P: Platform>(
    core: &mut Core<P>,
    auth: &Auth,
    transfer: &mut Transfer,
    slot: Option<usize>,
    r: &request::BackupRestoreBegin<'_>,
) -> OpResult<Response<'static>> {
    in_session(slot)?;
    core.device()?;
    // A restore abandoned half-way (its session ended) is undone before another begins.
    if matches!(transfer.state, State::Restore(_)) || core.contains(Kind::RestorePending, &SINGLETON_ID) {
        transfer.state = State::Idle;
        discard_restore(core)?;
    }
    transfer.state = State::Idle;
    if !is_fresh(core, auth) {
        return Err(err!(
            InvalidState,
            "a backup is restored only onto a fresh token (open, no keys); this one holds keys or principals"
        ));
    }
    let header = match Header::parse(r.header) {
        Ok(h) => h,
        Err(HeaderError::NewerVersion(v)) => {
            return Err(err!(
                Validation,
                "the backup has format version {}, newer than this firmware reads ({}): update the firmware",
                v,
                FORMAT_VERSION
            ))
        }
        Err(HeaderError::NotABackup) => return Err(err!(Validation, "this is not a Pocket KMS backup")),
        Err(HeaderError::UnknownMode(m)) => {
            return Err(err!(Validation, "the backup names an unknown mode {}: update the firmware", m))
        }
    };
    let bytes = header.to_bytes();
    let key = match (header.mode, r.secret) {
        (Mode::BackupKey, Some(secret)) if secret.len() == BACKUP_KEY_LEN => {
            chunk_key(&bytes, &header.salt, secret)
        }
        (Mode::BackupKey, Some(_) | None) => {
            return Err(err!(
                Validation,
                "this backup is sealed under a backup key: give its 32 bytes (the shares combined)"
            ))
        }
        (Mode::Peer, Some(_)) => {
            return Err(err!(
                Validation,
                "this backup is wrapped to a token's device key: it takes no shares"
            ))
        }
        (Mode::Peer, None) => {
            let own = own_id(core)?;
            if !bool::from(subtle::ConstantTimeEq::ct_eq(&own[..], &header.recipient[..])) {
                return Err(err!(
                    AccessDenied,
                    "this backup is wrapped to another token's device key, not this token's: only that token can restore it"
                ));
            }
            let ephemeral = pkms_p256::PublicKey::from_sec1_bytes(&header.ephemeral)
                .map_err(|_| err!(Validation, "the backup's ephemeral key is not a P-256 point"))?;
            let shared = core
                .device()?
                .identity()?
                .diffie_hellman(&ephemeral)
                .map_err(|_| err!(Validation, "no key agreement with the backup's ephemeral key"))?;
            chunk_key(&bytes, &header.salt, &shared[..])
        }
    };
    transfer.state = State::Restore(Restore {
        slot,
        key,
        index: 0,
        source: header.source,
        time: header.time,
        records: 0,
        started: false,
    });
    Ok(Response::Done(reply::Done {}))
}

/// Writes one record of a backup: checked (it must decode, its id must match its content),
/// keys re-wrapped under this token's root key, the backup key sealed, the attestation key new.
fn restore_record<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    kind: Kind,
    id: &RecordId,
    body: &[u8],
) -> OpResult<()> {
    let bad = || err!(Validation, "a record in the backup does not decode: the file is damaged");
    match kind {
        Kind::Key => {
            let mut de = postcard::Deserializer::from_bytes(body);
            if serde::Deserialize::deserialize_in_place(&mut de, slot).is_err() || de.finalize().is_err() {
                return Err(bad());
            }
            let key_id = KeyId(*id);
            let wrapped = core.wrap_restored(&key_id, slot);
            if wrapped.is_err() {
                for v in slot.versions.iter_mut() {
                    v.wrapped.iter_mut().for_each(|b| *b = 0);
                }
            }
            wrapped?;
            core.save(&LoadedKey::new(key_id, slot))
        }
        Kind::BackupKey => {
            let secret: &[u8; 32] = body.try_into().map_err(|_| bad())?;
            let (nonce, sealed) = core.seal_backup_key(secret)?;
            core.write(&SINGLETON_ID, &BackupKeyRecord::new(nonce, &sealed))
        }
        Kind::Auth => {
            let mut auth = AuthRecord::decode(body).ok_or_else(bad)?;
            signing::generate(core.rng(), &mut auth.attestation_key);
            core.write(&SINGLETON_ID, &auth)
        }
        Kind::Principal => {
            let p = PrincipalRecord::decode(body).ok_or_else(bad)?;
            if principal_id(&p.name) != *id {
                return Err(bad());
            }
            core.write(id, &p)
        }
        Kind::Usage => core.write(id, &UsageRecord::decode(body).ok_or_else(bad)?),
        Kind::Access => core.write(id, &AccessRecord::decode(body).ok_or_else(bad)?),
        Kind::Alias => {
            let a = AliasRecord::decode(body).ok_or_else(bad)?;
            if alias_id(&a.name) != *id {
                return Err(bad());
            }
            core.write(id, &a)
        }
        Kind::Device
        | Kind::Clock
        | Kind::Audit
        | Kind::AuditBase
        | Kind::AuditPending
        | Kind::RestorePending => Err(err!(
            Validation,
            "the backup holds a kind of record a backup never carries: the file is damaged"
        )),
    }
}

fn kind_of(byte: u8) -> Option<Kind> {
    EXPORTED.iter().copied().find(|k| k.byte() == byte)
}

/// BackupRestoreChunk: opens and writes one chunk; the last one commits.
#[allow(clippy::too_many_arguments)]
fn restore_chunk<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    auth: &mut Auth,
    log: &mut Log,
    transfer: &mut Transfer,
    slot: Option<usize>,
    r: &request::BackupRestoreChunk<'_>,
) -> OpResult<Response<'b>> {
    let State::Restore(rs) = &mut transfer.state else {
        return Err(err!(
            InvalidState,
            "no restore in progress in this session: begin one (BackupRestoreBegin)"
        ));
    };
    if rs.slot != slot {
        return Err(err!(InvalidState, "the restore in progress belongs to another session"));
    }
    let outcome = restore_chunk_inner(core, bufs, rs, r);
    match outcome {
        Ok(false) => {
            let records = rs.records;
            Ok(Response::BackupRestored(reply::BackupRestored { records, complete: false }))
        }
        Ok(true) => {
            let (source, time, records) = (rs.source, rs.time, rs.records);
            transfer.state = State::Idle;
            let committed = commit(core, log, &source, time);
            if let Err(e) = committed {
                let _ = discard_restore(core);
                *log = Log::default();
                return Err(e);
            }
            *auth = Auth::mount(core);
            *log = Log::mount(core);
            Ok(Response::BackupRestored(reply::BackupRestored { records, complete: true }))
        }
        Err(e) => {
            let started = rs.started;
            transfer.state = State::Idle;
            if started {
                let _ = discard_restore(core);
            }
            Err(e)
        }
    }
}

/// Opens chunk `rs.index` and writes its records; whether it was the last.
fn restore_chunk_inner<P: Platform>(
    core: &mut Core<P>,
    bufs: &mut Buffers,
    rs: &mut Restore,
    r: &request::BackupRestoreChunk<'_>,
) -> OpResult<bool> {
    let n = r.sealed.len();
    if !(TAG_LEN..=CHUNK_MAX + TAG_LEN).contains(&n) {
        return Err(err!(
            Validation,
            "a backup chunk is {} bytes; at most {} are possible",
            n,
            CHUNK_MAX + TAG_LEN
        ));
    }
    let text_len = n - TAG_LEN;
    let Buffers { out, key, .. } = bufs;
    out[..n].copy_from_slice(r.sealed);
    let tag: [u8; TAG_LEN] = out[text_len..n].try_into().map_err(|_| err!(Internal, "tag"))?;
    let index = rs.index;
    let opened = Aes256Gcm::new(&rs.key).decrypt_in_place_detached(
        &chunk_nonce(index),
        &chunk_aad(index, r.last),
        &mut out[..text_len],
        &tag,
    );
    if opened.is_err() {
        out[..n].fill(0);
        return Err(if index == 0 {
            err!(
                InvalidCiphertext,
                "the backup does not open: the shares are of another backup key, or the file was changed"
            )
        } else {
            err!(
                InvalidCiphertext,
                "chunk {} of the backup fails its check: the file was changed, cut or reordered",
                index
            )
        });
    }
    rs.index = index.checked_add(1).ok_or_else(|| err!(LimitExceeded, "too many chunks"))?;
    if !rs.started {
        core.write(
            &SINGLETON_ID,
            &RestorePendingRecord { format: FORMAT, source: rs.source, time: rs.time },
        )?;
        rs.started = true;
    }
    let mut pos = 0;
    let mut result = Ok(());
    while pos < text_len {
        let Some(h) = out.get(pos..pos + ITEM_HEADER) else {
            result = Err(err!(Validation, "a backup chunk ends inside a record: the file is damaged"));
            break;
        };
        let mut id = [0u8; 16];
        id.copy_from_slice(&h[1..17]);
        let len = u16::from_be_bytes([h[17], h[18]]) as usize;
        let Some(kind) = kind_of(h[0]) else {
            result = Err(err!(Validation, "the backup holds a record of a kind this firmware does not know"));
            break;
        };
        let body_at = pos + ITEM_HEADER;
        if body_at + len > text_len {
            result = Err(err!(Validation, "a backup chunk ends inside a record: the file is damaged"));
            break;
        }
        if let Err(e) = restore_record(core, key, kind, &id, &out[body_at..body_at + len]) {
            result = Err(e);
            break;
        }
        rs.records += 1;
        pos = body_at + len;
    }
    out[..n].fill(0);
    result.map(|()| r.last)
}

/// The last steps of a restore: the clock, the export mark, the audit log's first entry, then
/// the removal of the pending marker (the commit point).
fn commit<P: Platform>(core: &mut Core<P>, log: &mut Log, source: &[u8; 32], time: u64) -> OpResult<()> {
    core.vouch_time(time.saturating_add(1))?;
    if let Some(mut rec) = core.read::<BackupKeyRecord>(&SINGLETON_ID)? {
        // Everything restored is in the backup it came from.
        rec.exported = Some(ExportMark { sequence: core.next_record_sequence(), time });
        core.write(&SINGLETON_ID, &rec)?;
    }
    *log = Log::default();
    let mut named = [0u8; 16];
    named.copy_from_slice(&source[..16]);
    let when = u32::try_from(time).unwrap_or(u32::MAX);
    log.append(core, AuditEvent::RestoredFromBackup.code(), Ok(()), Some(KeyId(named)), when, "", None)?;
    core.remove(Kind::RestorePending, &SINGLETON_ID)?;
    Ok(())
}

crate::dispatch::handle! {
    request::BackupInit => |r, cx| init(cx.core, cx.bufs, cx.slot, r.replace);
    request::BackupExportBegin<'_> => |r, cx| export_begin(cx.core, cx.bufs, cx.transfer, cx.slot, r.peer_device_key);
    request::BackupExportChunk => |_r, cx| export_chunk(cx.core, cx.bufs, cx.transfer, cx.slot);
    request::BackupRestoreBegin<'_> => |r, cx| restore_begin(cx.core, cx.auth, cx.transfer, cx.slot, r);
    request::BackupRestoreChunk<'_> => |r, cx| restore_chunk(cx.core, cx.bufs, cx.auth, cx.log, cx.transfer, cx.slot, r);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869, test case 1 (the first 32 bytes of its OKM).
    #[test]
    fn hkdf_matches_rfc_5869() {
        let ikm = [0x0b; 22];
        let salt: [u8; 13] = core::array::from_fn(|i| i as u8);
        let info: [u8; 10] = core::array::from_fn(|i| 0xf0 + i as u8);
        let okm = hkdf_sha256(&salt, &ikm, &[&info[..4], &info[4..]]);
        let want = [
            0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a, 0x90, 0x43, 0x4f, 0x64, 0xd0, 0x36, 0x2f, 0x2a,
            0x2d, 0x2d, 0x0a, 0x90, 0xcf, 0x1a, 0x5a, 0x4c, 0x5d, 0xb0, 0x2d, 0x56, 0xec, 0xc4, 0xc5, 0xbf,
        ];
        assert_eq!(*okm, want);
    }
}
