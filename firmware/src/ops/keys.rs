//! CreateKey, DescribeKey and ListKeys.

use pkms_protocol::limits::{MAX_DESCRIPTION, MAX_PAGE};
use pkms_protocol::{reply, request, KeyId, KeyMetadata, KeyState, KeyUsage, Response};
use rand_core::RngCore;

use super::{page_limit, tags::check_tags, write_marker, Buffers};
use crate::caller::Caller;
use crate::err;
use crate::error::OpResult;
use crate::key::{LoadedKey, Named};
use crate::platform::Platform;
use crate::records::{KeyRecord, Kind, TagList, MAX_KEYS};
use crate::state::Core;

/// KeyMetadata of `key`; its description is copied into `out`.
pub fn metadata<'b, P: Platform>(
    core: &Core<P>,
    key: &LoadedKey,
    out: &'b mut [u8],
) -> OpResult<KeyMetadata<'b>> {
    let id = key.id();
    let r = key.record();
    let newest = key.newest().ok_or_else(|| err!(StorageCorrupted, "key {} has no versions", id))?;
    let keys = core.device()?;
    let d = r.description.as_bytes();
    let out = &mut out[..d.len()];
    out.copy_from_slice(d);
    Ok(KeyMetadata {
        key_id: id,
        creation_date: r.created,
        enabled: r.state == KeyState::Enabled,
        description: core::str::from_utf8(out).unwrap_or(""),
        key_usage: r.usage,
        key_state: r.state,
        key_spec: r.spec,
        deletion_date: r.deletion_date,
        pending_deletion_window_in_days: r.pending_window,
        current_key_material_id: keys.material_id(&id, newest),
        current_key_version: newest.version,
        oldest_key_version: r.versions.first().map(|v| v.version).unwrap_or(newest.version),
        key_rotation_enabled: r.rotation_period.is_some(),
        rotation_period_in_days: r.rotation_period,
        next_rotation_date: r.next_rotation(),
        user_presence_required: r.user_presence,
    })
}

/// Shows a list of key usages as `A or B`.
struct UsageList(&'static [KeyUsage]);

impl core::fmt::Display for UsageList {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, u) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            f.write_str(u.as_str())?;
        }
        Ok(())
    }
}

/// CreateKey. A key a user (not an administrator) creates gets a key policy naming its creator.
pub fn create_key<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    caller: Caller<'_>,
    r: &request::CreateKey<'_>,
) -> OpResult<Response<'b>> {
    core.device()?;
    let usage = r.key_usage.unwrap_or(r.key_spec.default_usage());
    if !r.key_spec.allows(usage) {
        return Err(err!(
            Validation,
            "KeyUsage {} is not valid for KeySpec {} (use {})",
            usage,
            r.key_spec,
            UsageList(r.key_spec.allowed_usages())
        ));
    }
    if r.description.len() > MAX_DESCRIPTION {
        return Err(err!(Validation, "Description is at most {} bytes on this token", MAX_DESCRIPTION));
    }
    check_tags(&r.tags)?;
    if core.entries(Kind::Key).len() >= MAX_KEYS {
        return Err(err!(LimitExceeded, "the token holds at most {} keys", MAX_KEYS));
    }
    let mut id = KeyId::default();
    loop {
        core.rng().fill_bytes(&mut id.0);
        if !core.contains(Kind::Key, &id.0) {
            break;
        }
    }
    let rec = &mut bufs.key;
    *rec = KeyRecord::empty();
    rec.spec = r.key_spec;
    rec.usage = usage;
    rec.user_presence = r.user_presence_required;
    rec.created = core.now();
    rec.description.push_str(r.description).map_err(|_| err!(Validation, "Description too long"))?;
    TagList::edit(&[], &r.tags, &[], &mut rec.tags).map_err(super::tags::limit_error)?;
    let mut key = LoadedKey::new(id, rec);
    core.push_version(&mut key, None)?;
    core.save(&key)?;
    if let Some((_, creator)) = caller.user() {
        crate::policy::record_creator(core, &mut bufs.work, &id, creator.reference().as_str())?;
    }
    Ok(Response::KeyMetadata(reply::KeyMetadata { key_metadata: metadata(core, &key, &mut bufs.out)? }))
}

/// DescribeKey.
pub fn describe_key<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
) -> OpResult<Response<'b>> {
    let key = core.load_named(key, &mut bufs.key)?;
    Ok(Response::KeyMetadata(reply::KeyMetadata { key_metadata: metadata(core, &key, &mut bufs.out)? }))
}

/// ListKeys: keys sorted by id; the marker is the last key id of the previous page.
pub fn list_keys<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    r: &request::ListKeys<'_>,
) -> OpResult<Response<'b>> {
    core.device()?;
    let limit = page_limit(r.limit, MAX_PAGE)?;
    let after = match r.marker {
        None => None,
        Some(m) => {
            Some(KeyId::parse(m).ok_or_else(|| err!(InvalidMarker, "Marker was not issued by ListKeys"))?)
        }
    };
    let entries = core.entries(Kind::Key);
    let start = match after {
        None => 0,
        Some(a) => entries.partition_point(|e| e.id <= a.0),
    };
    let mut keys = heapless::Vec::new();
    for e in entries[start..].iter().take(limit) {
        let _ = keys.push(KeyId(e.id));
    }
    let truncated = start + keys.len() < entries.len();
    let next_marker = match (truncated, keys.last()) {
        (true, Some(last)) => {
            let mut hex = [0u8; 32];
            for (i, b) in last.0.iter().enumerate() {
                hex[2 * i] = b"0123456789abcdef"[(b >> 4) as usize];
                hex[2 * i + 1] = b"0123456789abcdef"[(b & 15) as usize];
            }
            write_marker(&mut bufs.marker, &hex)
        }
        _ => None,
    };
    Ok(Response::Keys(reply::Keys { keys, next_marker, truncated }))
}

crate::dispatch::handle! {
    request::CreateKey<'_> => |r, cx| create_key(cx.core, cx.bufs, cx.auth.caller(), r);
    request::DescribeKey<'_> => |_r, cx| describe_key(cx.core, cx.bufs, cx.admitted.key());
    request::ListKeys<'_> => |r, cx| list_keys(cx.core, cx.bufs, r);
}
