//! CreateAlias, UpdateAlias, DeleteAlias and ListAliases, with KMS's naming rules: `alias/`
//! followed by at least one character, 1..=256 characters of `[a-zA-Z0-9:/_-]` (and `.` and `@`,
//! which principal names may hold), and `alias/aws/` reserved. A target must be a key id, not
//! another alias.
//!
//! Who may name what: a user's aliases live under `alias/user/<its name>/`; every other alias
//! name belongs to the administrators (and, on an open token, to anyone). So no user can make an
//! alias that an administrator or another user might take for their own resolve to the user's
//! key: an alias outside `alias/user/` was made by an administrator, and one under
//! `alias/user/bob/` by bob or an administrator. A principal's aliases go when it is deleted.

use pkms_protocol::limits::{MAX_ALIAS_NAME, MAX_ALIAS_PAGE};
use pkms_protocol::{reply, request, AliasListEntry, KeyId, Response};

use super::{page_limit, write_marker, Buffers};
use crate::caller::Caller;
use crate::err;
use crate::error::OpResult;
use crate::key::{LoadedKey, Named};
use crate::platform::Platform;
use crate::records::{alias_id, AliasRecord, KeyRecord, Kind, FORMAT, MAX_ALIASES};
use crate::state::{Core, Short};

/// Checks an alias name against KMS's rules.
pub fn check_name(name: &str) -> OpResult<()> {
    let ok_chars = name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b':' | b'/' | b'_' | b'-' | b'.' | b'@'));
    if !name.starts_with("alias/") || name.len() <= "alias/".len() || name.len() > MAX_ALIAS_NAME || !ok_chars
    {
        return Err(err!(
            InvalidAliasName,
            "alias names are alias/ followed by 1..=250 characters of a-z A-Z 0-9 : / _ - . @ ('{}')",
            Short(name)
        ));
    }
    if name.starts_with("alias/aws/") {
        return Err(err!(InvalidAliasName, "alias names starting alias/aws/ are reserved"));
    }
    Ok(())
}

/// Where users' aliases live: `alias/user/<name>/…`.
pub const USER_ALIASES: &str = "alias/user/";

/// The part of `alias` after `alias/user/<name>/`, if it is one of `name`'s aliases.
fn owned_part<'a>(alias: &'a str, name: &str) -> Option<&'a str> {
    alias.strip_prefix(USER_ALIASES)?.strip_prefix(name)?.strip_prefix('/')
}

/// AccessDenied unless `caller` may create, repoint or delete alias `name`: a user only its own
/// (`alias/user/<its name>/…`), administrators (and anyone on an open token) any.
pub fn check_owner(caller: Caller<'_>, name: &str) -> OpResult<()> {
    let Some((user, _)) = caller.user() else { return Ok(()) };
    if owned_part(name, user).is_some_and(|rest| !rest.is_empty()) {
        return Ok(());
    }
    Err(err!(
        AccessDenied,
        "{} may only name aliases {}{}/…; other alias names are the administrators'",
        user,
        USER_ALIASES,
        user
    ))
}

/// Removes the aliases of user `name` (`alias/user/<name>/…`), when the principal is deleted.
pub fn remove_owned_by<P: Platform>(core: &mut Core<P>, name: &str) -> OpResult<()> {
    let mut i = 0;
    while let Some(aid) = core.entries(Kind::Alias).get(i).map(|e| e.id) {
        let owned = core.read::<AliasRecord>(&aid)?.is_some_and(|a| owned_part(&a.name, name).is_some());
        if !(owned && core.remove(Kind::Alias, &aid)?) {
            i += 1;
        }
    }
    Ok(())
}

/// Loads the key an alias is to name: a key id (not an alias) of a key not pending deletion.
fn target<'s, P: Platform>(
    core: &mut Core<P>,
    slot: &'s mut KeyRecord,
    target_ref: &str,
    resolved: Named<'_>,
) -> OpResult<LoadedKey<'s>> {
    if target_ref.starts_with("alias/") {
        return Err(err!(Validation, "TargetKeyId must be a key id, not an alias"));
    }
    let key = core.load_named(resolved, slot)?;
    key.require_not_pending()?;
    Ok(key)
}

/// CreateAlias.
pub fn create<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    caller: Caller<'_>,
    key: Named<'_>,
    r: &request::CreateAlias<'_>,
) -> OpResult<Response<'static>> {
    let name = r.alias_name;
    check_name(name)?;
    check_owner(caller, name)?;
    let key = target(core, slot, r.target_key_id, key)?;
    if core.read_alias(name)?.is_some() {
        return Err(err!(AlreadyExists, "alias {} already exists", Short(name)));
    }
    if core.entries(Kind::Alias).len() >= MAX_ALIASES {
        return Err(err!(LimitExceeded, "the token holds at most {} aliases", MAX_ALIASES));
    }
    let now = core.now();
    let mut rec = AliasRecord {
        format: FORMAT,
        name: heapless::String::new(),
        target: key.id().0,
        created: now,
        updated: now,
    };
    rec.name.push_str(name).map_err(|_| err!(InvalidAliasName, "alias name too long"))?;
    core.save_alias(&rec)?;
    Ok(Response::Done(reply::Done {}))
}

/// UpdateAlias: points an existing alias at another key of the same key usage.
pub fn update<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    caller: Caller<'_>,
    new_target: Named<'_>,
    r: &request::UpdateAlias<'_>,
) -> OpResult<Response<'static>> {
    let name = r.alias_name;
    check_name(name)?;
    check_owner(caller, name)?;
    let mut rec =
        core.read_alias(name)?.ok_or_else(|| err!(NotFound, "alias {} does not exist", Short(name)))?;
    let old_usage = core.load(&KeyId(rec.target), slot).ok().map(|k| k.record().usage);
    let key = target(core, slot, r.target_key_id, new_target)?;
    if let Some(u) = old_usage {
        if u != key.record().usage {
            return Err(err!(
                Validation,
                "alias {} names a {} key; it can only be moved to another {} key",
                Short(name),
                u,
                u
            ));
        }
    }
    rec.target = key.id().0;
    rec.updated = core.now();
    core.save_alias(&rec)?;
    Ok(Response::Done(reply::Done {}))
}

/// DeleteAlias.
pub fn delete<P: Platform>(
    core: &mut Core<P>,
    caller: Caller<'_>,
    r: &request::DeleteAlias<'_>,
) -> OpResult<Response<'static>> {
    let name = r.alias_name;
    check_name(name)?;
    check_owner(caller, name)?;
    if core.read_alias(name)?.is_none() {
        return Err(err!(NotFound, "alias {} does not exist", Short(name)));
    }
    core.remove(Kind::Alias, &alias_id(name))?;
    Ok(Response::Done(reply::Done {}))
}

/// The smallest alias (by name) above `after`, among aliases of `key` if given.
fn next_alias<P: Platform>(
    core: &mut Core<P>,
    after: Option<&str>,
    key: Option<KeyId>,
) -> OpResult<Option<AliasRecord>> {
    let mut best: Option<AliasRecord> = None;
    let mut i = 0;
    while let Some(e) = core.entries(Kind::Alias).get(i) {
        let aid = e.id;
        i += 1;
        let Some(a) = core.read::<AliasRecord>(&aid)? else { continue };
        if key.is_some_and(|k| k.0 != a.target) || after.is_some_and(|m| a.name.as_str() <= m) {
            continue;
        }
        if best.as_ref().is_none_or(|b| a.name < b.name) {
            best = Some(a);
        }
    }
    Ok(best)
}

/// ListAliases: sorted by name; the marker is the last name of the previous page.
pub fn list<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    r: &request::ListAliases<'_>,
) -> OpResult<Response<'b>> {
    let (key_ref, limit, marker) = (r.key_id, r.limit, r.marker);
    core.device()?;
    let limit = page_limit(limit, MAX_ALIAS_PAGE)?;
    // The marker names the last alias of the previous page by its record id (32 hex digits).
    let mut last: heapless::String<MAX_ALIAS_NAME> = heapless::String::new();
    if let Some(m) = marker {
        let aid =
            KeyId::parse(m).ok_or_else(|| err!(InvalidMarker, "Marker was not issued by ListAliases"))?;
        let a = core
            .read::<AliasRecord>(&aid.0)?
            .ok_or_else(|| err!(InvalidMarker, "Marker names an alias that no longer exists; list again"))?;
        last = a.name;
    }
    let key = match key_ref {
        Some(r) => {
            let id = core.resolve(r)?;
            Some(core.load(&id, &mut bufs.key)?.id())
        }
        None => None,
    };
    // Pick the page: names go into buffer `a`, one after the other.
    struct Item {
        start: usize,
        len: usize,
        target: KeyId,
        created: u64,
        updated: u64,
    }
    let mut items: heapless::Vec<Item, MAX_ALIAS_PAGE> = heapless::Vec::new();
    let mut used = 0usize;
    let mut truncated = false;
    loop {
        let after = if items.is_empty() && marker.is_none() { None } else { Some(last.as_str()) };
        let Some(a) = next_alias(core, after, key)? else { break };
        let n = a.name.len();
        if items.len() == limit || used + n > bufs.out.len() {
            truncated = true;
            break;
        }
        bufs.out[used..used + n].copy_from_slice(a.name.as_bytes());
        let _ = items.push(Item {
            start: used,
            len: n,
            target: KeyId(a.target),
            created: a.created,
            updated: a.updated,
        });
        used += n;
        last = a.name;
    }
    let next_marker = if truncated {
        let id = alias_id(&last);
        let mut hex = [0u8; 32];
        for (i, b) in id.iter().enumerate() {
            hex[2 * i] = b"0123456789abcdef"[(b >> 4) as usize];
            hex[2 * i + 1] = b"0123456789abcdef"[(b & 15) as usize];
        }
        write_marker(&mut bufs.marker, &hex)
    } else {
        None
    };
    let names: &'b [u8] = &bufs.out[..used];
    let mut aliases = heapless::Vec::new();
    for it in &items {
        let name = core::str::from_utf8(&names[it.start..it.start + it.len]).unwrap_or("");
        let _ = aliases.push(AliasListEntry {
            alias_name: name,
            target_key_id: it.target,
            creation_date: it.created,
            last_updated_date: it.updated,
        });
    }
    Ok(Response::Aliases(reply::Aliases { aliases, next_marker, truncated }))
}

crate::dispatch::handle! {
    request::CreateAlias<'_> => |r, cx| create(cx.core, &mut cx.bufs.key, cx.auth.caller(), cx.admitted.key(), r);
    request::UpdateAlias<'_> => |r, cx| update(cx.core, &mut cx.bufs.key, cx.auth.caller(), cx.admitted.second_key(), r);
    request::DeleteAlias<'_> => |r, cx| delete(cx.core, cx.auth.caller(), r);
    request::ListAliases<'_> => |r, cx| list(cx.core, cx.bufs, r);
}
