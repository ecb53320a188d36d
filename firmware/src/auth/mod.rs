//! Authentication: initialisation, principals and their PINs, the PUK, the session, and factory
//! reset. This module keeps who is logged in ([`Auth`]) and answers its own requests; it does
//! not decide who may use a key (that is [`crate::policy`], asked by [`crate::gate`]) and does
//! not write the audit log (that is [`crate::audit`], called by the token after each request).
//!
//! * Until Initialize, the token is open: every request is admitted and nothing is logged.
//! * A login belongs to one encrypted session ([`crate::session`]) and ends with it.
//! * A PIN check first decrements and persists the principal's retry counter, then compares,
//!   then restores the counter on success: a power cut during the check never gains a try.
//! * An unknown principal and a wrong PIN get the same answer after the same work (the PIN is
//!   stretched against a dummy salt); so do an unknown principal and a wrong PUK, except that a
//!   PUK try is spent only for a principal that exists.
//! * Failed PUK tries make the token wait, on its own clock ([`Board::uptime_ms`]), before it
//!   accepts the next one ([`puk_delay_ms`]); the wait restarts at boot.
//! * Each principal has a random id ([`PrincipalId`]); key policies and grants name that, so a
//!   principal deleted and created again under the same name inherits nothing.

pub mod pin;

use pkms_protocol::access::{
    valid_principal_name, AuditFullMode, PrincipalEntry, Role, ADMIN_NAME, FACTORY_RESET_CONFIRMATION,
    MAX_PRINCIPALS, MAX_PRINCIPAL_NAME, PIN_RETRIES,
};
use pkms_protocol::{reply, request, Response, SelfTests};
use rand_core::RngCore;

use crate::board::{Board, UserPresence};
use crate::caller::Caller;
use crate::crypto::signing;
use crate::err;
use crate::error::OpResult;
use crate::ops::Buffers;
use crate::platform::Platform;
use crate::records::{
    principal_id, AuthRecord, Kind, OnReset, PrincipalId, PrincipalRecord, RecordId, AUTH_FORMAT,
    PRINCIPAL_FORMAT, SINGLETON_ID,
};
use crate::state::{Core, PRESENCE_TIMEOUT_MS};

/// The wait after the second failed PUK try in a row; each further failure doubles it, up to
/// [`PUK_DELAY_MAX_MS`].
pub const PUK_DELAY_BASE_MS: u64 = 60 * 1000;
/// The longest wait between PUK tries.
pub const PUK_DELAY_MAX_MS: u64 = 64 * 60 * 1000;

/// How long the token waits, after `failures` failed UnblockPin tries in a row (for any
/// principal name, existing or not), before it accepts the next: none after the first (a typo
/// costs nothing), then one minute, doubling with each failure up to 64 minutes. Blocking the
/// PUK (8 spent tries) takes more than two hours.
pub const fn puk_delay_ms(failures: u8) -> u64 {
    match failures {
        0 | 1 => 0,
        // 2 → 1 min, 3 → 2 min, … 8 and more → 64 min (PUK_DELAY_BASE_MS << 6 == PUK_DELAY_MAX_MS).
        2..=8 => PUK_DELAY_BASE_MS << (failures - 2),
        _ => PUK_DELAY_MAX_MS,
    }
}

const _: () = assert!(PUK_DELAY_BASE_MS << 6 == PUK_DELAY_MAX_MS);

/// Who authenticated in a session (kept in the session table, [`crate::session`]).
#[derive(Debug, Clone)]
pub struct Login {
    name: heapless::String<MAX_PRINCIPAL_NAME>,
    role: Role,
    id: PrincipalId,
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
/// whether it arrived inside a session and who logged in there; when the next PUK try is
/// accepted.
#[derive(Debug)]
pub struct Auth {
    initialized: bool,
    audit_full: AuditFullMode,
    in_session: bool,
    session: Option<Login>,
    /// Board uptime before which UnblockPin is refused.
    puk_not_before_ms: u64,
}

impl Auth {
    /// Reads the authentication state from the store, giving principals written before
    /// principals had ids their ids first ([`migrate_principals`]).
    pub fn mount<P: Platform>(core: &mut Core<P>) -> Auth {
        let mut auth = Auth {
            initialized: false,
            audit_full: AuditFullMode::Overwrite,
            in_session: false,
            session: None,
            puk_not_before_ms: 0,
        };
        // After a failed self-test the store is sound and GetInfo still says whether the token
        // is initialised.
        if !core.is_usable() && core.self_tests() == SelfTests::Passed {
            return auth;
        }
        // Migration writes: not in the error state a failed self-test leaves.
        if core.is_usable() {
            migrate_principals(core);
        }
        match core.read::<AuthRecord>(&SINGLETON_ID) {
            Ok(Some(a)) => {
                auth.initialized = true;
                auth.audit_full =
                    if a.audit_refuse { AuditFullMode::Refuse } else { AuditFullMode::Overwrite };
                // A restart does not shorten the wait: it starts again from boot.
                let failures = a.puk_failures;
                auth.puk_not_before_ms = core.board().uptime_ms().saturating_add(puk_delay_ms(failures));
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
            (Some(s), true, true) => Caller::Principal { name: s.name.as_str(), role: s.role, id: s.id },
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

    fn begin_session(&mut self, name: &str, role: Role, id: PrincipalId) {
        let mut n = heapless::String::new();
        // Principal names are at most MAX_PRINCIPAL_NAME bytes (checked when they are made).
        let _ = n.push_str(name);
        self.session = Some(Login { name: n, role, id });
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
            format: AUTH_FORMAT,
            audit_refuse: r.audit_full == AuditFullMode::Refuse,
            puk_salt: [0; 16],
            puk_hash: [0; 32],
            puk_retries: PIN_RETRIES,
            attestation_key: [0; 32],
            puk_failures: 0,
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
        self.puk_not_before_ms = 0;
        self.begin_session(ADMIN_NAME, Role::Admin, admin.id);
        Ok(Response::Done(reply::Done {}))
    }

    /// Authenticate: checks the PIN and makes this connection the principal's session. An
    /// unknown principal gets the answer a wrong PIN gets, after a PIN stretch of its own.
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
            pin::stretch_for_nothing(r.pin);
            return Err(wrong_pin());
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
            return Err(wrong_pin());
        }
        p.retries = PIN_RETRIES;
        write_principal(core, &p)?;
        self.begin_session(&p.name, p.role, p.id);
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

    /// DeletePrincipal (administrators); the last administrator stays. Its aliases and the
    /// grants naming it as grantee go with it.
    pub fn delete_principal<P: Platform>(
        &mut self,
        core: &mut Core<P>,
        work: &mut [u8],
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
        // Its aliases and grants first, the principal last: a cut in between leaves the
        // principal, and the deletion can be repeated.
        crate::ops::aliases::remove_owned_by(core, name)?;
        crate::policy::grants::retire_grants_of(core, work, p.id.reference().as_str())?;
        core.remove(Kind::Principal, &principal_id(name))?;
        if self.caller().reference() == Some(p.id.reference()) {
            self.session = None;
        }
        Ok(Response::Done(reply::Done {}))
    }

    /// UnblockPin: a new PIN for a principal, with the PUK. Refused (LimitExceeded) until the
    /// wait after failed tries has passed ([`puk_delay_ms`]). A try is spent only when the
    /// principal exists, but every try counts towards the wait, writes the authentication record
    /// and stretches the PUK, and a wrong PUK and an unknown principal get the same answer.
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
                "the PUK is blocked: only a factory reset (an administrator's, or with a press of the token's button) makes the token usable"
            ));
        }
        let now_ms = core.board().uptime_ms();
        if now_ms < self.puk_not_before_ms {
            return Err(err!(
                LimitExceeded,
                "wrong PUKs make the token wait: the next PUK try is accepted in {} s",
                (self.puk_not_before_ms - now_ms).div_ceil(1000)
            ));
        }
        let target = read_principal(core, r.principal)?;
        // Count the failure and spend the try before checking (a cut never gains a try).
        auth.puk_failures = auth.puk_failures.saturating_add(1);
        if target.is_some() {
            auth.puk_retries -= 1;
        }
        core.write(&SINGLETON_ID, &auth)?;
        let right = pin::matches(r.puk, &auth.puk_salt, &auth.puk_hash);
        let Some(old) = target.filter(|_| right) else {
            let wait = puk_delay_ms(auth.puk_failures);
            self.puk_not_before_ms = now_ms.saturating_add(wait);
            if auth.puk_retries == 0 {
                return Err(err!(
                    PinLocked,
                    "wrong PUK; the PUK is now blocked: only a factory reset is left"
                ));
            }
            if wait > 0 {
                return Err(err!(
                    AuthenticationFailed,
                    "wrong principal or PUK (the next PUK try is accepted in {} s)",
                    wait / 1000
                ));
            }
            return Err(err!(AuthenticationFailed, "wrong principal or PUK"));
        };
        auth.puk_retries = PIN_RETRIES;
        auth.puk_failures = 0;
        core.write(&SINGLETON_ID, &auth)?;
        self.puk_not_before_ms = 0;
        // The same principal (its id, hence its keys, grants and policy statements) with a new
        // PIN and a full retry counter.
        let mut p = new_principal(core, r.principal, r.new_pin, old.role)?;
        p.id = old.id;
        write_principal(core, &p)?;
        Ok(Response::Done(reply::Done {}))
    }

    /// ChangePin: the logged-in principal's own PIN, given its current one (compared in
    /// constant time after the PIN stretch, as Authenticate compares). A wrong current PIN
    /// spends a try, persisted before the check, and the last one locks the principal and ends
    /// the session; the right one restores the tries. The principal keeps its id (its keys,
    /// grants and policy statements) and role.
    pub fn change_pin<P: Platform>(
        &mut self,
        core: &mut Core<P>,
        r: &request::ChangePin<'_>,
    ) -> OpResult<Response<'static>> {
        if !self.initialized {
            return Err(err!(InvalidState, "the token is not initialised (open): it has no PINs"));
        }
        let Some(login) = self.session.as_ref() else {
            return Err(err!(
                AuthenticationFailed,
                "log in first: ChangePin changes the logged-in principal's PIN"
            ));
        };
        let (name, id) = (login.name.clone(), login.id);
        pin::check_length("new PIN", r.new_pin)?;
        let Some(mut p) = read_principal(core, &name)?.filter(|p| p.id == id) else {
            self.session = None;
            return Err(err!(NotFound, "principal {} no longer exists", name.as_str()));
        };
        if p.retries == 0 {
            return Err(err!(PinLocked, "principal {} is locked: unblock it with the PUK", name.as_str()));
        }
        p.retries -= 1;
        write_principal(core, &p)?;
        if !pin::matches(r.pin, &p.salt, &p.hash) {
            if p.retries == 0 {
                self.session = None;
                return Err(err!(
                    PinLocked,
                    "wrong current PIN; principal {} is now locked: unblock it with the PUK",
                    name.as_str()
                ));
            }
            return Err(err!(AuthenticationFailed, "wrong current PIN"));
        }
        let mut new = new_principal(core, &name, r.new_pin, p.role)?;
        new.id = p.id;
        write_principal(core, &new)?;
        Ok(Response::Done(reply::Done {}))
    }

    /// Factory reset: allowed on an open token and to an administrator's session; without one,
    /// only when the PUK is blocked (no administrator can be recovered) *and* someone presses
    /// the token's button ([`Board::user_presence`]) — a host alone can never wipe an
    /// initialised token. Replaces the device root key first (every stored key is then
    /// unreadable: a crypto-erase in one atomic write), then removes every record of every kind
    /// the registry says a reset erases, the authentication record last.
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
                    "a factory reset needs an administrator's session (or a blocked PUK and a press of the token's button)"
                ));
            }
            match core.board().user_presence(PRESENCE_TIMEOUT_MS) {
                UserPresence::Confirmed => {}
                UserPresence::TimedOut => {
                    return Err(err!(
                        AccessDenied,
                        "the PUK is blocked, but nobody pressed the token's button: no factory reset"
                    ))
                }
                UserPresence::Unsupported => {
                    return Err(err!(
                        AccessDenied,
                        "this token has no button to confirm a factory reset: only an administrator's session can reset it"
                    ))
                }
            }
        }
        erase_for_factory_reset(core)?;
        self.initialized = false;
        self.session = None;
        self.audit_full = AuditFullMode::Overwrite;
        self.puk_not_before_ms = 0;
        Ok(Response::Done(reply::Done {}))
    }
}

fn wrong_pin() -> crate::error::Error {
    err!(AuthenticationFailed, "wrong principal or PIN")
}

/// Gives each principal written before principals had ids (format 1) a random id, one atomic
/// write per principal; a principal that has one is left alone, so a cut anywhere leaves
/// principals the next mount finishes. Runs at mount, before any request.
pub fn migrate_principals<P: Platform>(core: &mut Core<P>) {
    let mut i = 0;
    while let Some(id) = core.entries(Kind::Principal).get(i).map(|e| e.id) {
        i += 1;
        let Ok(Some(mut p)) = core.read::<PrincipalRecord>(&id) else { continue };
        if p.format == PRINCIPAL_FORMAT {
            continue;
        }
        p.format = PRINCIPAL_FORMAT;
        p.id = PrincipalId::random(core.rng());
        let _ = core.write(&id, &p);
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
        format: PRINCIPAL_FORMAT,
        name: heapless::String::new(),
        role,
        salt: [0; 16],
        hash: [0; 32],
        retries: PIN_RETRIES,
        id: PrincipalId::random(core.rng()),
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
    request::DeletePrincipal<'_> => |r, cx| cx.auth.delete_principal(cx.core, &mut cx.bufs.work, r);
    request::ListPrincipals => |_r, cx| list_principals(cx.core, cx.bufs);
    request::UnblockPin<'_> => |r, cx| cx.auth.unblock(cx.core, r);
    request::ChangePin<'_> => |r, cx| cx.auth.change_pin(cx.core, r);
    request::FactoryReset<'_> => |r, cx| {
        let answer = cx.auth.factory_reset(cx.core, r)?;
        *cx.log = crate::audit::Log::default();
        Ok(answer)
    };
}
