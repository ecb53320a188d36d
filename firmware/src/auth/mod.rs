//! Authentication: initialisation, principals and their PINs, the PUK, the session, and factory
//! reset. This module keeps who is logged in ([`Auth`]) and answers its own requests; it does
//! not decide who may use a key (that is [`crate::policy`], asked by [`crate::gate`]) and does
//! not write the audit log (that is [`crate::audit`], called by the token after each request).
//!
//! * Until Initialize, the token is open: every request is admitted and nothing is logged.
//! * A connection is everything after a Hello; the session belongs to it and ends with the next
//!   Hello, or after [`SESSION_IDLE_MS`] without a request.
//! * A PIN check first decrements and persists the principal's retry counter, then compares,
//!   then restores the counter on success: a power cut during the check never gains a try.

pub mod pin;

use pkms_protocol::access::{
    valid_principal_name, AuditFullMode, PrincipalEntry, Role, ADMIN_NAME, FACTORY_RESET_CONFIRMATION,
    MAX_PRINCIPALS, MAX_PRINCIPAL_NAME, PIN_RETRIES,
};
use pkms_protocol::{reply, request, Response, SelfTests};
use rand_core::RngCore;

use crate::caller::Caller;
use crate::crypto::signing;
use crate::err;
use crate::error::OpResult;
use crate::ops::Buffers;
use crate::platform::Platform;
use crate::records::{
    principal_id, AuthRecord, Kind, OnReset, PrincipalRecord, RecordId, FORMAT, SINGLETON_ID,
};
use crate::state::Core;

/// Who authenticated in a session (kept in the session table, [`crate::session`]).
#[derive(Debug, Clone)]
pub struct Login {
    name: heapless::String<MAX_PRINCIPAL_NAME>,
    role: Role,
}

impl Login {
    /// The principal's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its role.
    pub fn role(&self) -> Role {
        self.role
    }
}

/// Whether the token is initialised and what its audit log does when full; during a request,
/// whether it arrived inside a session and who logged in there.
#[derive(Debug)]
pub struct Auth {
    initialized: bool,
    audit_full: AuditFullMode,
    in_session: bool,
    session: Option<Login>,
}

impl Auth {
    /// Reads the authentication state from the store.
    pub fn mount<P: Platform>(core: &mut Core<P>) -> Auth {
        let mut auth = Auth {
            initialized: false,
            audit_full: AuditFullMode::Overwrite,
            in_session: false,
            session: None,
        };
        // After a failed self-test the store is sound and GetInfo still says whether the token
        // is initialised.
        if !core.is_usable() && core.self_tests() == SelfTests::Passed {
            return auth;
        }
        match core.read::<AuthRecord>(&SINGLETON_ID) {
            Ok(Some(a)) => {
                auth.initialized = true;
                auth.audit_full =
                    if a.audit_refuse { AuditFullMode::Refuse } else { AuditFullMode::Overwrite };
            }
            // An auth record that cannot be read: stay closed rather than open.
            Err(_) => auth.initialized = true,
            Ok(None) => {}
        }
        auth
    }

    /// Whether Initialize ran (the auth record exists).
    pub fn is_initialized(&self) -> bool {
        self.initialized
    }

    /// What the audit log does when full.
    pub fn audit_full(&self) -> AuditFullMode {
        self.audit_full
    }

    /// Who is asking, as of now.
    pub fn caller(&self) -> Caller<'_> {
        match (&self.session, self.initialized, self.in_session) {
            (_, false, _) => Caller::Open,
            (_, true, false) => Caller::Outside,
            (None, true, true) => Caller::Nobody,
            (Some(s), true, true) => Caller::Principal { name: s.name.as_str(), role: s.role },
        }
    }

    /// Starts a request: inside a session (with its login, if any) or in the clear.
    pub fn enter(&mut self, in_session: bool, login: Option<Login>) {
        self.in_session = in_session;
        self.session = login;
    }

    /// Ends a request: the session's login as the request left it (Authenticate sets it,
    /// DeletePrincipal of oneself clears it).
    pub fn leave(&mut self) -> Option<Login> {
        self.in_session = false;
        self.session.take()
    }

    fn require_admin(&self) -> OpResult<()> {
        if self.initialized && !self.caller().is_admin() {
            return Err(err!(AccessDenied, "only an administrator may do this"));
        }
        Ok(())
    }

    fn begin_session(&mut self, name: &str, role: Role) {
        let mut n = heapless::String::new();
        // Principal names are at most MAX_PRINCIPAL_NAME bytes (checked when they are made).
        let _ = n.push_str(name);
        self.session = Some(Login { name: n, role });
    }

    /// Initialize: the administrator, the PUK, the attestation key; this connection is then the
    /// administrator's session.
    pub fn initialize<P: Platform>(
        &mut self,
        core: &mut Core<P>,
        r: &request::Initialize<'_>,
    ) -> OpResult<Response<'static>> {
        core.device()?;
        if self.initialized {
            return Err(err!(
                InvalidState,
                "the token is already initialised (only a factory reset undoes that)"
            ));
        }
        pin::check_length("PIN", r.pin)?;
        pin::check_length("PUK", r.puk)?;
        let mut auth = AuthRecord {
            format: FORMAT,
            audit_refuse: r.audit_full == AuditFullMode::Refuse,
            puk_salt: [0; 16],
            puk_hash: [0; 32],
            puk_retries: PIN_RETRIES,
            attestation_key: [0; 32],
        };
        core.rng().fill_bytes(&mut auth.puk_salt);
        auth.puk_hash = pin::stretch(r.puk, &auth.puk_salt);
        signing::generate(core.rng(), &mut auth.attestation_key);
        let admin = new_principal(core, ADMIN_NAME, r.pin, Role::Admin)?;
        // The principal first, the auth record last: the auth record is the commit point.
        write_principal(core, &admin)?;
        core.write(&SINGLETON_ID, &auth)?;
        self.initialized = true;
        self.audit_full = r.audit_full;
        self.begin_session(ADMIN_NAME, Role::Admin);
        Ok(Response::Done(reply::Done {}))
    }

    /// Authenticate: checks the PIN and makes this connection the principal's session.
    pub fn authenticate<P: Platform>(
        &mut self,
        core: &mut Core<P>,
        r: &request::Authenticate<'_>,
    ) -> OpResult<Response<'static>> {
        self.session = None;
        if !self.initialized {
            return Err(err!(InvalidState, "the token is not initialised (open): run pkms init first"));
        }
        let name = r.principal;
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
        if !pin::matches(r.pin, &p.salt, &p.hash) {
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
        self.begin_session(&p.name, p.role);
        Ok(Response::Done(reply::Done {}))
    }

    /// CreatePrincipal (administrators).
    pub fn create_principal<P: Platform>(
        &mut self,
        core: &mut Core<P>,
        r: &request::CreatePrincipal<'_>,
    ) -> OpResult<Response<'static>> {
        if !self.initialized {
            return Err(err!(InvalidState, "the token is not initialised (open): run pkms init first"));
        }
        self.require_admin()?;
        if core.contains(Kind::Principal, &principal_id(r.name)) {
            return Err(err!(AlreadyExists, "principal {} already exists", r.name));
        }
        if core.entries(Kind::Principal).len() >= MAX_PRINCIPALS {
            return Err(err!(LimitExceeded, "the token holds at most {} principals", MAX_PRINCIPALS));
        }
        let p = new_principal(core, r.name, r.pin, r.role)?;
        write_principal(core, &p)?;
        Ok(Response::Done(reply::Done {}))
    }

    /// DeletePrincipal (administrators); the last administrator stays.
    pub fn delete_principal<P: Platform>(
        &mut self,
        core: &mut Core<P>,
        r: &request::DeletePrincipal<'_>,
    ) -> OpResult<Response<'static>> {
        self.require_admin()?;
        let name = r.name;
        let Some(p) = read_principal(core, name)? else {
            return Err(err!(NotFound, "principal {} does not exist", name));
        };
        if p.role == Role::Admin && count_admins(core)? <= 1 {
            return Err(err!(InvalidState, "{} is the last administrator and cannot be removed", name));
        }
        core.remove(Kind::Principal, &principal_id(name))?;
        if self.caller().name() == name {
            self.session = None;
        }
        Ok(Response::Done(reply::Done {}))
    }

    /// UnblockPin: a new PIN for a principal, with the PUK.
    pub fn unblock<P: Platform>(
        &mut self,
        core: &mut Core<P>,
        r: &request::UnblockPin<'_>,
    ) -> OpResult<Response<'static>> {
        if !self.initialized {
            return Err(err!(InvalidState, "the token is not initialised (open)"));
        }
        pin::check_length("new PIN", r.new_pin)?;
        let Some(mut auth) = core.read::<AuthRecord>(&SINGLETON_ID)? else {
            return Err(err!(StorageCorrupted, "the authentication record cannot be read"));
        };
        if auth.puk_retries == 0 {
            return Err(err!(
                PinLocked,
                "the PUK is blocked: only a factory reset (pkms factory-reset) makes the token usable"
            ));
        }
        auth.puk_retries -= 1;
        core.write(&SINGLETON_ID, &auth)?;
        if !pin::matches(r.puk, &auth.puk_salt, &auth.puk_hash) {
            if auth.puk_retries == 0 {
                return Err(err!(
                    PinLocked,
                    "wrong PUK; the PUK is now blocked: only a factory reset is left"
                ));
            }
            return Err(err!(AuthenticationFailed, "wrong PUK ({} tries left)", auth.puk_retries));
        }
        auth.puk_retries = PIN_RETRIES;
        core.write(&SINGLETON_ID, &auth)?;
        let Some(old) = read_principal(core, r.principal)? else {
            return Err(err!(NotFound, "principal {} does not exist", r.principal));
        };
        let p = new_principal(core, r.principal, r.new_pin, old.role)?;
        write_principal(core, &p)?;
        Ok(Response::Done(reply::Done {}))
    }

    /// Factory reset: allowed on an open token, to an administrator, or to anyone once the PUK
    /// is blocked. Replaces the device root key first (every stored key is then unreadable: a
    /// crypto-erase in one atomic write), then removes every record of every kind the registry
    /// says a reset erases, the authentication record last.
    pub fn factory_reset<P: Platform>(
        &mut self,
        core: &mut Core<P>,
        r: &request::FactoryReset<'_>,
    ) -> OpResult<Response<'static>> {
        core.device()?;
        if r.confirm != FACTORY_RESET_CONFIRMATION {
            return Err(err!(Validation, "FactoryReset needs the confirmation text the protocol defines"));
        }
        if self.initialized && !self.caller().is_admin() {
            let blocked = core.read::<AuthRecord>(&SINGLETON_ID)?.is_none_or(|a| a.puk_retries == 0);
            if !blocked {
                return Err(err!(
                    AccessDenied,
                    "a factory reset needs an administrator's session, or a blocked PUK"
                ));
            }
        }
        erase_for_factory_reset(core)?;
        self.initialized = false;
        self.session = None;
        self.audit_full = AuditFullMode::Overwrite;
        Ok(Response::Done(reply::Done {}))
    }
}

/// What a factory reset does to the store, kind by kind as [`Kind::on_factory_reset`] says: the
/// device key is replaced first, then every erased kind is removed, the authentication record
/// (whose presence means "initialised") last.
pub fn erase_for_factory_reset<P: Platform>(core: &mut Core<P>) -> OpResult<()> {
    for kind in Kind::ALL {
        match kind.on_factory_reset() {
            OnReset::Replace => core.replace_device_key()?,
            OnReset::Erase => {}
        }
    }
    for kind in Kind::ALL.iter().filter(|k| **k != Kind::Auth) {
        match kind.on_factory_reset() {
            OnReset::Erase => core.remove_all(*kind)?,
            OnReset::Replace => {}
        }
    }
    core.remove_all(Kind::Auth)?;
    core.forget_time();
    Ok(())
}

/// ListPrincipals.
pub fn list_principals<'b, P: Platform>(core: &mut Core<P>, bufs: &'b mut Buffers) -> OpResult<Response<'b>> {
    // Names are copied into bufs.out (MAX_PRINCIPALS * MAX_PRINCIPAL_NAME bytes at most).
    let mut meta: heapless::Vec<(usize, usize, Role, u8), MAX_PRINCIPALS> = heapless::Vec::new();
    let mut pos = 0;
    let n = core.entries(Kind::Principal).len();
    for i in 0..n {
        let Some(id) = core.entries(Kind::Principal).get(i).map(|e| e.id) else { break };
        let Some(p) = core.read::<PrincipalRecord>(&id)? else { continue };
        let len = p.name.len();
        if pos + len > bufs.out.len() {
            break;
        }
        bufs.out[pos..pos + len].copy_from_slice(p.name.as_bytes());
        let _ = meta.push((pos, len, p.role, p.retries));
        pos += len;
    }
    let names: &'b [u8] = &bufs.out[..pos];
    let mut principals = heapless::Vec::new();
    for (start, len, role, retries) in meta {
        let name = core::str::from_utf8(&names[start..start + len]).unwrap_or("?");
        let _ = principals.push(PrincipalEntry { name, role, pin_retries_left: retries });
    }
    Ok(Response::Principals(reply::Principals { principals }))
}

fn new_principal<P: Platform>(
    core: &mut Core<P>,
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
    core.rng().fill_bytes(&mut p.salt);
    p.hash = pin::stretch(secret, &p.salt);
    Ok(p)
}

/// Reads principal `name`.
pub fn read_principal<P: Platform>(core: &mut Core<P>, name: &str) -> OpResult<Option<PrincipalRecord>> {
    if !valid_principal_name(name) {
        return Ok(None);
    }
    Ok(core.read::<PrincipalRecord>(&principal_id(name))?.filter(|p| p.name.as_str() == name))
}

fn write_principal<P: Platform>(core: &mut Core<P>, p: &PrincipalRecord) -> OpResult<()> {
    let id: RecordId = principal_id(&p.name);
    core.write(&id, p)
}

fn count_admins<P: Platform>(core: &mut Core<P>) -> OpResult<usize> {
    let mut admins = 0;
    let n = core.entries(Kind::Principal).len();
    for i in 0..n {
        let Some(id) = core.entries(Kind::Principal).get(i).map(|e| e.id) else { break };
        if core.read::<PrincipalRecord>(&id)?.is_some_and(|p| p.role == Role::Admin) {
            admins += 1;
        }
    }
    Ok(admins)
}

crate::dispatch::handle! {
    request::Initialize<'_> => |r, cx| {
        let answer = cx.auth.initialize(cx.core, r)?;
        *cx.log = crate::audit::Log::mount(cx.core);
        Ok(answer)
    };
    request::Authenticate<'_> => |r, cx| cx.auth.authenticate(cx.core, r);
    request::CreatePrincipal<'_> => |r, cx| cx.auth.create_principal(cx.core, r);
    request::DeletePrincipal<'_> => |r, cx| cx.auth.delete_principal(cx.core, r);
    request::ListPrincipals => |_r, cx| list_principals(cx.core, cx.bufs);
    request::UnblockPin<'_> => |r, cx| cx.auth.unblock(cx.core, r);
    request::FactoryReset<'_> => |r, cx| {
        let answer = cx.auth.factory_reset(cx.core, r)?;
        *cx.log = crate::audit::Log::default();
        Ok(answer)
    };
}
