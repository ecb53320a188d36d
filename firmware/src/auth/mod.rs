//! Authentication: initialisation, principals and their PINs, the PUK, sessions, factory
//! reset, and the gate every request passes ([`Guard::admit`]).
//!
//! * Until Initialize, the token is open: every request is admitted and nothing is logged.
//! * A connection is everything after a Hello; the session belongs to it and ends with the next
//!   Hello, or after [`SESSION_IDLE_MS`] without a request.
//! * Once initialised, every request except Hello, GetInfo, Authenticate, UnblockPin,
//!   FactoryReset (which checks its own rights) and Initialize (which then fails) needs an
//!   authenticated session; key operations then pass the key's policy and grants
//!   ([`crate::policy`]); every request is appended to the audit log ([`crate::audit`]) before
//!   its answer leaves the token.
//! * A PIN check first decrements and persists the principal's retry counter, then compares,
//!   then restores the counter on success: a power cut during the check never gains a try.

pub mod pin;
pub mod records;

use embedded_storage::nor_flash::NorFlash;
use pkms_protocol::access::{
    valid_principal_name, AuditFullMode, PrincipalEntry, Role, MAX_PRINCIPALS, MAX_PRINCIPAL_NAME,
    PIN_RETRIES,
};
use pkms_protocol::messages::{Request, Response};
use pkms_protocol::{ErrorCode, KeyId};
use rand_core::{CryptoRng, RngCore};

use crate::audit::Log;
use crate::board::Board;
use crate::crypto::{signing, DeviceKeys};
use crate::err;
use crate::error::{Error, OpResult};
use crate::ops::Buffers;
use crate::records::{DeviceRecord, FORMAT as CORE_FORMAT, KIND_DEVICE, SINGLETON_ID};
use crate::state::Core;
use records::*;

/// A session ends after this long without a request.
pub const SESSION_IDLE_MS: u64 = 5 * 60 * 1000;

/// The authenticated principal of the current connection.
#[derive(Debug, Clone)]
pub struct Session {
    /// Principal name.
    pub name: heapless::String<MAX_PRINCIPAL_NAME>,
    /// Role.
    pub role: Role,
    last_ms: u64,
}

/// Authentication state, the session and the audit log.
pub struct Guard {
    /// Whether Initialize ran (the auth record exists).
    pub initialized: bool,
    /// What the audit log does when full.
    pub audit_full: AuditFullMode,
    /// The session of the current connection.
    pub session: Option<Session>,
    /// The audit log.
    pub log: Log,
}

/// What the gate found out about a request (for its audit entry).
#[derive(Debug, Clone, Copy, Default)]
pub struct Admitted {
    /// The key the request concerns, when it names one that exists.
    pub key_id: Option<KeyId>,
}

/// Whether a request is one of this module's (dispatched by [`dispatch`]).
pub fn handles(request: &Request<'_>) -> bool {
    matches!(
        request,
        Request::Initialize { .. }
            | Request::Authenticate { .. }
            | Request::CreatePrincipal { .. }
            | Request::DeletePrincipal { .. }
            | Request::ListPrincipals
            | Request::UnblockPin { .. }
            | Request::FactoryReset { .. }
            | Request::GetAuditCheckpoint
            | Request::ReadAuditLog { .. }
            | Request::TrimAuditLog { .. }
            | Request::GetKeyPolicy { .. }
            | Request::PutKeyPolicy { .. }
            | Request::CreateGrant { .. }
            | Request::ListGrants { .. }
            | Request::RetireGrant { .. }
            | Request::RevokeGrant { .. }
    )
}

/// Runs one of this module's requests (those for which [`handles`] is true).
pub fn dispatch<'b, F, R, B>(
    core: &'b mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    guard: &'b mut Guard,
    request: &Request<'_>,
) -> OpResult<Response<'b>>
where
    F: NorFlash,
    R: RngCore + CryptoRng,
    B: Board,
{
    use crate::policy;
    match request {
        Request::Initialize { pin, puk, audit_full } => guard.initialize(core, pin, puk, *audit_full),
        Request::Authenticate { principal, pin } => guard.authenticate(core, principal, pin),
        Request::CreatePrincipal { name, pin, role } => guard.create_principal(core, name, pin, *role),
        Request::DeletePrincipal { name } => guard.delete_principal(core, name),
        Request::ListPrincipals => guard.list_principals(core, bufs),
        Request::UnblockPin { principal, puk, new_pin } => guard.unblock(core, principal, puk, new_pin),
        Request::FactoryReset { confirm } => guard.factory_reset(core, confirm),
        Request::GetAuditCheckpoint => guard.checkpoint(core, bufs),
        Request::ReadAuditLog { start_sequence, limit } => {
            guard.log.read(core, bufs, *start_sequence, *limit)
        }
        Request::TrimAuditLog { through_sequence } => guard.trim_log(core, *through_sequence),
        Request::GetKeyPolicy { key_id } => policy::get_key_policy(core, bufs, key_id),
        Request::PutKeyPolicy { key_id, policy } => policy::put_key_policy(core, bufs, guard, key_id, policy),
        Request::CreateGrant { key_id, grantee, operations, constraint, name } => {
            policy::grants::create(core, bufs, guard, key_id, grantee, *operations, constraint.as_ref(), name)
        }
        Request::ListGrants { key_id } => policy::grants::list(core, bufs, key_id),
        Request::RetireGrant { key_id, grant_id } => {
            policy::grants::retire(core, bufs, guard, key_id, grant_id, false)
        }
        Request::RevokeGrant { key_id, grant_id } => {
            policy::grants::retire(core, bufs, guard, key_id, grant_id, true)
        }
        _ => Err(Error::new(ErrorCode::UnsupportedOperation, "not an authentication request")),
    }
}

impl Guard {
    /// Reads the authentication state and the audit log's head from the store.
    pub fn mount<F: NorFlash, R: RngCore + CryptoRng, B: Board>(core: &mut Core<F, R, B>) -> Guard {
        let mut g = Guard {
            initialized: false,
            audit_full: AuditFullMode::Overwrite,
            session: None,
            log: Log::default(),
        };
        if core.keys.is_none() {
            return g;
        }
        if let Ok(Some(a)) = read_auth(core) {
            g.initialized = true;
            g.audit_full = if a.audit_refuse { AuditFullMode::Refuse } else { AuditFullMode::Overwrite };
        } else if core.store.contains(KIND_AUTH, &SINGLETON_ID) {
            // An auth record that cannot be read: stay closed rather than open.
            g.initialized = true;
        }
        g.log = Log::mount(core);
        g
    }

    /// The session's principal name ("" when none).
    pub fn principal(&self) -> &str {
        self.session.as_ref().map(|s| s.name.as_str()).unwrap_or("")
    }

    /// Whether the session is an administrator's.
    pub fn is_admin(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.role == Role::Admin)
    }

    /// The gate: ends idle sessions, resets the session at Hello, and (once initialised)
    /// refuses requests without a session, requests a policy does not allow, and, in
    /// force-audit mode with a full log, anything but reading and trimming the log.
    pub fn admit<F, R, B>(&mut self, core: &mut Core<F, R, B>, request: &Request<'_>) -> OpResult<Admitted>
    where
        F: NorFlash,
        R: RngCore + CryptoRng,
        B: Board,
    {
        let now_ms = core.board.uptime_ms();
        if let Some(s) = &mut self.session {
            if now_ms.saturating_sub(s.last_ms) > SESSION_IDLE_MS {
                self.session = None;
            } else {
                s.last_ms = now_ms;
            }
        }
        if let Request::Hello { .. } = request {
            self.session = None;
            return Ok(Admitted::default());
        }
        if !self.initialized {
            return Ok(Admitted::default());
        }
        let exempt_from_full = matches!(
            request,
            Request::GetInfo
                | Request::Authenticate { .. }
                | Request::GetAuditCheckpoint
                | Request::ReadAuditLog { .. }
                | Request::TrimAuditLog { .. }
                | Request::FactoryReset { .. }
        );
        if !exempt_from_full && self.audit_full == AuditFullMode::Refuse && self.log.is_full(core) {
            return Err(err!(
                AuditLogFull,
                "the audit log is full and this token refuses operations until it is exported and trimmed (pkms audit export --trim)"
            ));
        }
        match request {
            Request::GetInfo
            | Request::Authenticate { .. }
            | Request::UnblockPin { .. }
            | Request::FactoryReset { .. }
            | Request::Initialize { .. } => return Ok(Admitted::default()),
            _ => {}
        }
        let Some(session) = &self.session else {
            return Err(err!(
                AuthenticationFailed,
                "this token is initialised: authenticate first (PKMS_PIN, --pin-file or the PIN prompt)"
            ));
        };
        let (name, role) = (session.name.clone(), session.role);
        crate::policy::authorize(core, &name, role, request)
    }

    fn require_admin(&self) -> OpResult<()> {
        if self.initialized && !self.is_admin() {
            return Err(err!(AccessDenied, "only an administrator may do this"));
        }
        Ok(())
    }

    fn initialize<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
        &mut self,
        core: &mut Core<F, R, B>,
        pin: &[u8],
        puk: &[u8],
        mode: AuditFullMode,
    ) -> OpResult<Response<'static>> {
        core.device()?;
        if self.initialized {
            return Err(err!(
                InvalidState,
                "the token is already initialised (only a factory reset undoes that)"
            ));
        }
        pin::check_length("PIN", pin)?;
        pin::check_length("PUK", puk)?;
        let mut auth = AuthRecord {
            format: FORMAT,
            audit_refuse: mode == AuditFullMode::Refuse,
            puk_salt: [0; 16],
            puk_hash: [0; 32],
            puk_retries: PIN_RETRIES,
            attestation_key: [0; 32],
        };
        core.rng.fill_bytes(&mut auth.puk_salt);
        auth.puk_hash = pin::stretch(puk, &auth.puk_salt);
        signing::generate(&mut core.rng, &mut auth.attestation_key);
        let admin = new_principal(core, pkms_protocol::access::ADMIN_NAME, pin, Role::Admin)?;
        // The principal first, the auth record last: the auth record is the commit point.
        write_principal(core, &admin)?;
        write_auth(core, &auth)?;
        self.initialized = true;
        self.audit_full = mode;
        self.log = Log::mount(core);
        self.session =
            Some(Session { name: admin.name.clone(), role: Role::Admin, last_ms: core.board.uptime_ms() });
        Ok(Response::Done)
    }

    fn authenticate<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
        &mut self,
        core: &mut Core<F, R, B>,
        name: &str,
        secret: &[u8],
    ) -> OpResult<Response<'static>> {
        self.session = None;
        if !self.initialized {
            return Err(err!(InvalidState, "the token is not initialised (open): run pkms init first"));
        }
        let Some(mut p) = read_principal(core, name)? else {
            return Err(err!(AuthenticationFailed, "wrong principal or PIN"));
        };
        if p.retries == 0 {
            return Err(err!(
                PinLocked,
                "principal {} is locked after {} wrong PINs: unblock it with the PUK",
                name,
                PIN_RETRIES
            ));
        }
        // Decrement and persist before checking.
        p.retries -= 1;
        write_principal(core, &p)?;
        if !pin::matches(secret, &p.salt, &p.hash) {
            if p.retries == 0 {
                return Err(err!(
                    PinLocked,
                    "wrong PIN; principal {} is now locked: unblock it with the PUK",
                    name
                ));
            }
            return Err(err!(AuthenticationFailed, "wrong principal or PIN ({} tries left)", p.retries));
        }
        p.retries = PIN_RETRIES;
        write_principal(core, &p)?;
        self.session = Some(Session { name: p.name.clone(), role: p.role, last_ms: core.board.uptime_ms() });
        Ok(Response::Done)
    }

    fn create_principal<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
        &mut self,
        core: &mut Core<F, R, B>,
        name: &str,
        secret: &[u8],
        role: Role,
    ) -> OpResult<Response<'static>> {
        if !self.initialized {
            return Err(err!(InvalidState, "the token is not initialised (open): run pkms init first"));
        }
        self.require_admin()?;
        if core.store.contains(KIND_PRINCIPAL, &principal_id(name)) {
            return Err(err!(AlreadyExists, "principal {} already exists", name));
        }
        if core.store.entries(KIND_PRINCIPAL).len() >= MAX_PRINCIPALS {
            return Err(err!(LimitExceeded, "the token holds at most {} principals", MAX_PRINCIPALS));
        }
        let p = new_principal(core, name, secret, role)?;
        write_principal(core, &p)?;
        Ok(Response::Done)
    }

    fn delete_principal<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
        &mut self,
        core: &mut Core<F, R, B>,
        name: &str,
    ) -> OpResult<Response<'static>> {
        self.require_admin()?;
        let Some(p) = read_principal(core, name)? else {
            return Err(err!(NotFound, "principal {} does not exist", name));
        };
        if p.role == Role::Admin {
            let admins = count_admins(core)?;
            if admins <= 1 {
                return Err(err!(InvalidState, "{} is the last administrator and cannot be removed", name));
            }
        }
        core.store.remove(KIND_PRINCIPAL, &principal_id(name))?;
        if self.principal() == name {
            self.session = None;
        }
        Ok(Response::Done)
    }

    fn list_principals<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
        &mut self,
        core: &mut Core<F, R, B>,
        bufs: &'b mut Buffers,
    ) -> OpResult<Response<'b>> {
        // Names are copied into bufs.a (MAX_PRINCIPALS * MAX_PRINCIPAL_NAME bytes at most).
        let mut meta: heapless::Vec<(usize, usize, Role, u8), MAX_PRINCIPALS> = heapless::Vec::new();
        let mut pos = 0;
        let n = core.store.entries(KIND_PRINCIPAL).len();
        for i in 0..n {
            let Some(id) = core.store.entries(KIND_PRINCIPAL).get(i).map(|e| e.id) else { break };
            let Some(p) = read_principal_by_id(core, &id)? else { continue };
            let len = p.name.len();
            if pos + len > bufs.a.len() {
                break;
            }
            bufs.a[pos..pos + len].copy_from_slice(p.name.as_bytes());
            let _ = meta.push((pos, len, p.role, p.retries));
            pos += len;
        }
        let a: &'b [u8] = &bufs.a[..pos];
        let mut principals = heapless::Vec::new();
        for (start, len, role, retries) in meta {
            let name = core::str::from_utf8(&a[start..start + len]).unwrap_or("?");
            let _ = principals.push(PrincipalEntry { name, role, pin_retries_left: retries });
        }
        Ok(Response::Principals { principals })
    }

    fn unblock<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
        &mut self,
        core: &mut Core<F, R, B>,
        name: &str,
        puk: &[u8],
        new_pin: &[u8],
    ) -> OpResult<Response<'static>> {
        if !self.initialized {
            return Err(err!(InvalidState, "the token is not initialised (open)"));
        }
        pin::check_length("new PIN", new_pin)?;
        let Some(mut auth) = read_auth(core)? else {
            return Err(err!(StorageCorrupted, "the authentication record cannot be read"));
        };
        if auth.puk_retries == 0 {
            return Err(err!(
                PinLocked,
                "the PUK is blocked: only a factory reset (pkms factory-reset) makes the token usable"
            ));
        }
        auth.puk_retries -= 1;
        write_auth(core, &auth)?;
        if !pin::matches(puk, &auth.puk_salt, &auth.puk_hash) {
            if auth.puk_retries == 0 {
                return Err(err!(
                    PinLocked,
                    "wrong PUK; the PUK is now blocked: only a factory reset is left"
                ));
            }
            return Err(err!(AuthenticationFailed, "wrong PUK ({} tries left)", auth.puk_retries));
        }
        auth.puk_retries = PIN_RETRIES;
        write_auth(core, &auth)?;
        let Some(old) = read_principal(core, name)? else {
            return Err(err!(NotFound, "principal {} does not exist", name));
        };
        let p = new_principal(core, name, new_pin, old.role)?;
        write_principal(core, &p)?;
        Ok(Response::Done)
    }

    /// Factory reset: allowed on an open token, to an administrator, or to anyone once the PUK
    /// is blocked. Replaces the device root key first (every stored key is then unreadable: a
    /// crypto-erase in one atomic write), then removes every record, the auth record last.
    fn factory_reset<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
        &mut self,
        core: &mut Core<F, R, B>,
        confirm: &str,
    ) -> OpResult<Response<'static>> {
        core.device()?;
        if confirm != pkms_protocol::access::FACTORY_RESET_CONFIRMATION {
            return Err(err!(Validation, "FactoryReset needs the confirmation text the protocol defines"));
        }
        if self.initialized && !self.is_admin() {
            let blocked = read_auth(core)?.is_none_or(|a| a.puk_retries == 0);
            if !blocked {
                return Err(err!(
                    AccessDenied,
                    "a factory reset needs an administrator's session, or a blocked PUK"
                ));
            }
        }
        let mut dev = DeviceRecord { format: CORE_FORMAT, root_key: [0; 32] };
        core.rng.fill_bytes(&mut dev.root_key);
        let n = postcard::to_slice(&dev, &mut core.io)
            .map_err(|_| Error::new(ErrorCode::Internal, "cannot encode device record"))?
            .len();
        let put = core.store.put(KIND_DEVICE, &SINGLETON_ID, &core.io[..n]);
        core.io[..n].fill(0);
        put?;
        core.keys = Some(DeviceKeys::new(&dev.root_key));
        for kind in [
            crate::records::KIND_KEY,
            crate::records::KIND_ALIAS,
            KIND_ACCESS,
            KIND_AUDIT,
            KIND_AUDIT_BASE,
            KIND_PRINCIPAL,
            KIND_AUTH,
        ] {
            while let Some(id) = core.store.entries(kind).first().map(|e| e.id) {
                core.store.remove(kind, &id)?;
            }
        }
        self.initialized = false;
        self.session = None;
        self.audit_full = AuditFullMode::Overwrite;
        self.log = Log::default();
        Ok(Response::Done)
    }

    fn checkpoint<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
        &mut self,
        core: &mut Core<F, R, B>,
        bufs: &'b mut Buffers,
    ) -> OpResult<Response<'b>> {
        let Some(auth) = read_auth(core)? else {
            return Err(err!(InvalidState, "the token is not initialised: it keeps no audit log"));
        };
        self.log.checkpoint(core, bufs, &auth.attestation_key, self.audit_full)
    }

    fn trim_log<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
        &mut self,
        core: &mut Core<F, R, B>,
        through: u64,
    ) -> OpResult<Response<'static>> {
        self.require_admin()?;
        let Some(auth) = read_auth(core)? else {
            return Err(err!(InvalidState, "the token is not initialised: it keeps no audit log"));
        };
        self.log.trim(core, through, &auth.attestation_key)?;
        Ok(Response::Done)
    }

    /// Appends the audit entry of a request that was answered (once initialised).
    pub fn record<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
        &mut self,
        core: &mut Core<F, R, B>,
        operation: u16,
        result: Result<(), ErrorCode>,
        key_id: Option<KeyId>,
        key_version: u32,
    ) -> OpResult<()> {
        if !self.initialized {
            return Ok(());
        }
        if self.audit_full == AuditFullMode::Refuse && self.log.is_full(core) {
            // Only exempt requests (reading and trimming the log) get here; they go unrecorded.
            return Ok(());
        }
        let principal = match &self.session {
            Some(s) => s.name.clone(),
            None => heapless::String::new(),
        };
        let key = match read_auth(core)? {
            Some(a) if self.audit_full == AuditFullMode::Overwrite => Some(a.attestation_key),
            _ => None,
        };
        self.log.append(core, operation, result, key_id, key_version, &principal, key.as_ref())
    }
}

fn new_principal<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    name: &str,
    secret: &[u8],
    role: Role,
) -> OpResult<PrincipalRecord> {
    if !valid_principal_name(name) {
        return Err(err!(
            Validation,
            "a principal name is 1..={} characters of A-Z a-z 0-9 _ . @ -",
            MAX_PRINCIPAL_NAME
        ));
    }
    pin::check_length("PIN", secret)?;
    let mut p = PrincipalRecord {
        format: FORMAT,
        name: heapless::String::new(),
        role,
        salt: [0; 16],
        hash: [0; 32],
        retries: PIN_RETRIES,
    };
    p.name.push_str(name).map_err(|_| err!(Validation, "principal name too long"))?;
    core.rng.fill_bytes(&mut p.salt);
    p.hash = pin::stretch(secret, &p.salt);
    Ok(p)
}

/// Reads the auth record (`None`: not initialised).
pub fn read_auth<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
) -> OpResult<Option<AuthRecord>> {
    match core.store.get(KIND_AUTH, &SINGLETON_ID, &mut core.io)? {
        Some(n) => {
            let r = postcard::from_bytes::<AuthRecord>(&core.io[..n]);
            core.io[..n].fill(0);
            r.map(Some).map_err(|_| err!(StorageCorrupted, "the authentication record cannot be read"))
        }
        None => Ok(None),
    }
}

fn write_auth<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    a: &AuthRecord,
) -> OpResult<()> {
    let n =
        postcard::to_slice(a, &mut core.io).map_err(|_| err!(Internal, "cannot encode auth record"))?.len();
    let r = core.store.put(KIND_AUTH, &SINGLETON_ID, &core.io[..n]);
    core.io[..n].fill(0);
    Ok(r?)
}

/// Reads principal `name`.
pub fn read_principal<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    name: &str,
) -> OpResult<Option<PrincipalRecord>> {
    if !valid_principal_name(name) {
        return Ok(None);
    }
    Ok(read_principal_by_id(core, &principal_id(name))?.filter(|p| p.name.as_str() == name))
}

fn read_principal_by_id<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    id: &crate::store::RecordId,
) -> OpResult<Option<PrincipalRecord>> {
    match core.store.get(KIND_PRINCIPAL, id, &mut core.io)? {
        Some(n) => {
            let r = postcard::from_bytes::<PrincipalRecord>(&core.io[..n]);
            core.io[..n].fill(0);
            r.map(Some).map_err(|_| err!(StorageCorrupted, "a principal record cannot be read"))
        }
        None => Ok(None),
    }
}

fn write_principal<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    p: &PrincipalRecord,
) -> OpResult<()> {
    let n = postcard::to_slice(p, &mut core.io).map_err(|_| err!(Internal, "cannot encode principal"))?.len();
    let r = core.store.put(KIND_PRINCIPAL, &principal_id(&p.name), &core.io[..n]);
    core.io[..n].fill(0);
    Ok(r?)
}

fn count_admins<F: NorFlash, R: RngCore + CryptoRng, B: Board>(core: &mut Core<F, R, B>) -> OpResult<usize> {
    let mut admins = 0;
    let n = core.store.entries(KIND_PRINCIPAL).len();
    for i in 0..n {
        let Some(id) = core.store.entries(KIND_PRINCIPAL).get(i).map(|e| e.id) else { break };
        if read_principal_by_id(core, &id)?.is_some_and(|p| p.role == Role::Admin) {
            admins += 1;
        }
    }
    Ok(admins)
}
