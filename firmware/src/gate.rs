//! The gate every request passes before it runs: it reads the request's declared
//! [`Gate`](pkms_protocol::Gate) and decides, once, with what the session ([`crate::auth`]) and
//! the key policies ([`crate::policy`]) say:
//!
//! * An open (uninitialised) token admits everything.
//! * On an initialised token, a request in the clear (outside any encrypted session) gets only
//!   the `Plain` operations: Hello, GetInfo, GetDeviceKey and the session handshake.
//! * In force-audit mode a full log refuses every operation its row does not mark `served`.
//! * Inside a session, `Open` operations need no login (Authenticate, UnblockPin, …); the rest
//!   need an authenticated principal, `Admin` ones an administrator, and key operations a
//!   principal that each named key's policy or grants allow.
//!
//! It resolves every key the request names exactly once (aliases, the key a ciphertext names)
//! and hands the results to the operation as [`Admitted`]: a reference that does not resolve is
//! not an error here — the operation reports it where it looks the key up, after checking its
//! own arguments.

use pkms_protocol::access::AuditFullMode;
use pkms_protocol::blob::{self, ParsedBlob};
use pkms_protocol::{Gate, KeyCheck, KeyId, KeyRef, Request};

use crate::audit::Log;
use crate::auth::Auth;
use crate::caller::Caller;
use crate::err;
use crate::error::OpResult;
use crate::key::{Named, Unresolved};
use crate::ops::symmetric::BlobTarget;
use crate::platform::Platform;
use crate::policy::{self, NewGrant};
use crate::records::Kind;
use crate::state::Core;

/// A key the request names, as the gate found it.
#[derive(Debug, Clone, Copy)]
pub enum Target<'r> {
    /// The request names no key (or the gate did not look).
    None,
    /// A key id or alias name, resolved to a key id (or why it could not be).
    Named(Named<'r>),
    /// A ciphertext blob (parsed, if it could be) and the key id given beside it.
    Blob {
        /// The parsed blob.
        blob: Option<ParsedBlob<'r>>,
        /// The resolved key id given with it, if any.
        given: Option<Named<'r>>,
    },
}

/// What the gate hands to the operation: the keys the request names, resolved.
#[derive(Debug, Clone, Copy)]
pub struct Admitted<'r> {
    /// The first key the request names.
    pub first: Target<'r>,
    /// The second (ReEncrypt's destination, UpdateAlias's new target).
    pub second: Target<'r>,
}

impl<'r> Admitted<'r> {
    /// The first named key, resolved.
    // Called by most handlers: one copy in the image rather than one per handler.
    #[inline(never)]
    pub fn key(&self) -> Named<'r> {
        named(&self.first)
    }

    /// The second named key, resolved.
    #[inline(never)]
    pub fn second_key(&self) -> Named<'r> {
        named(&self.second)
    }

    /// The first target as a ciphertext blob.
    #[inline(never)]
    pub fn blob(&self) -> BlobTarget<'r> {
        match &self.first {
            Target::Blob { blob, given } => BlobTarget { blob: *blob, given: *given },
            Target::None | Target::Named(_) => {
                BlobTarget { blob: None, given: Some(Err(Unresolved::Undeclared)) }
            }
        }
    }

    /// The key an audit entry names when the answer does not: the last key resolved.
    pub fn audit_key(&self) -> Option<KeyId> {
        fn of(t: &Target<'_>) -> Option<KeyId> {
            match t {
                Target::None => None,
                Target::Named(r) => r.ok(),
                Target::Blob { blob: Some(b), .. } => Some(b.header.key_id),
                Target::Blob { blob: None, given } => given.and_then(|g| g.ok()),
            }
        }
        of(&self.second).or_else(|| of(&self.first))
    }
}

fn named<'r>(t: &Target<'r>) -> Named<'r> {
    match t {
        Target::Named(r) => *r,
        Target::None | Target::Blob { .. } => Err(Unresolved::Undeclared),
    }
}

fn resolve<'r, P: Platform>(core: &mut Core<P>, key: &KeyRef<'r>) -> Target<'r> {
    match key {
        KeyRef::Named(name) => Target::Named(core.resolve_ref(name)),
        KeyRef::Blob { blob, key_id } => {
            Target::Blob { blob: blob::parse(blob), given: key_id.map(|k| core.resolve_ref(k)) }
        }
    }
}

/// The key a policy check is about, if it names one that can be checked: a resolved name, or a
/// blob's key when that key exists on this token (else the operation answers InvalidCiphertext).
fn checked_key<P: Platform>(core: &Core<P>, t: &Target<'_>) -> Option<KeyId> {
    match t {
        Target::None => None,
        Target::Named(r) => r.as_ref().ok().copied(),
        Target::Blob { blob: Some(b), .. } => {
            core.contains(Kind::Key, &b.header.key_id.0).then_some(b.header.key_id)
        }
        Target::Blob { blob: None, given } => given.as_ref().and_then(|g| g.as_ref().ok().copied()),
    }
}

/// The grant a CreateGrant asks for (what a grant the caller holds must cover).
fn new_grant<'r>(request: &'r Request<'r>) -> Option<NewGrant<'r>> {
    if let Request::CreateGrant(r) = request {
        return Some(NewGrant { operations: r.operations, constraint: r.constraint.as_ref() });
    }
    None
}

/// Decides whether `request` runs. `scratch` holds key policies while they are evaluated.
pub fn admit<'r, P: Platform>(
    core: &mut Core<P>,
    auth: &Auth,
    log: &Log,
    scratch: &mut [u8],
    request: &'r Request<'r>,
) -> OpResult<Admitted<'r>> {
    let gate = request.gate();
    let caller = auth.caller();
    let (first, second) = match gate {
        Gate::Plain | Gate::Open | Gate::Session | Gate::Admin => (None, None),
        Gate::Key(a) => (Some(a), None),
        Gate::Keys(a, b) => (Some(a), Some(b)),
    };
    let admitted = Admitted {
        first: first.map_or(Target::None, |c| resolve(core, &c.key)),
        second: second.map_or(Target::None, |c| resolve(core, &c.key)),
    };
    let authenticated = match caller {
        Caller::Open => return Ok(admitted),
        Caller::Outside if gate == Gate::Plain => return Ok(admitted),
        Caller::Outside => {
            return Err(err!(
                AuthenticationFailed,
                "this token is initialised: only an encrypted session gets past Hello, GetInfo and the session handshake (pkms opens one and asks for the PIN)"
            ))
        }
        Caller::Nobody => false,
        Caller::Principal { .. } => true,
    };
    if !request.operation().served_when_log_full()
        && auth.audit_full() == AuditFullMode::Refuse
        && log.is_full(core)
    {
        return Err(err!(
            AuditLogFull,
            "the audit log is full and this token refuses operations until it is exported and trimmed (pkms audit export --out FILE --trim)"
        ));
    }
    if matches!(gate, Gate::Plain | Gate::Open) {
        return Ok(admitted);
    }
    if !authenticated {
        return Err(err!(
            AuthenticationFailed,
            "this token is initialised: authenticate first (PKMS_PIN, --pin-file or the PIN prompt)"
        ));
    }
    match gate {
        Gate::Plain | Gate::Open | Gate::Session => {}
        Gate::Admin => {
            if !caller.is_admin() {
                return Err(err!(AccessDenied, "only an administrator may do this"));
            }
        }
        Gate::Key(_) | Gate::Keys(_, _) => {
            let new_grant = new_grant(request);
            for (check, target) in [(first, &admitted.first), (second, &admitted.second)] {
                let (Some(KeyCheck { action, context, .. }), Some(id)) = (check, checked_key(core, target))
                else {
                    continue;
                };
                policy::check_key(core, scratch, caller, &id, action, context, new_grant)?;
            }
        }
    }
    Ok(admitted)
}
