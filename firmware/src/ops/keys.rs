//! CreateKey, DescribeKey and ListKeys.

use embedded_storage::nor_flash::NorFlash;
use pkms_protocol::limits::{MAX_DESCRIPTION, MAX_PAGE};
use pkms_protocol::{KeyId, KeyMetadata, KeySpec, KeyState, KeyUsage, Response, Tags};
use rand_core::{CryptoRng, RngCore};

use super::{page_limit, tags::check_tags, write_marker, Buffers, Core};
use crate::board::Board;
use crate::err;
use crate::error::OpResult;
use crate::records::{KeyRecord, TagList, KIND_KEY, MAX_KEYS};

/// KeyMetadata of the loaded key `id`.
pub fn metadata<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &'b Core<F, R, B>,
    id: KeyId,
) -> OpResult<KeyMetadata<'b>> {
    let r = &core.rec;
    let newest = r.newest().ok_or_else(|| err!(StorageCorrupted, "key {} has no versions", id))?;
    let keys = core.device()?;
    Ok(KeyMetadata {
        key_id: id,
        creation_date: r.created,
        enabled: r.state == KeyState::Enabled,
        description: r.description.as_str(),
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

/// CreateKey.
pub fn create_key<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &'b mut Core<F, R, B>,
    key_spec: KeySpec,
    key_usage: Option<KeyUsage>,
    description: &str,
    tags: &Tags<'_>,
    user_presence_required: bool,
) -> OpResult<Response<'b>> {
    core.device()?;
    let usage = key_spec.default_usage();
    if let Some(u) = key_usage {
        if u != usage {
            return Err(err!(
                Validation,
                "KeyUsage {} is not valid for KeySpec {} (use {})",
                u,
                key_spec,
                usage
            ));
        }
    }
    if description.len() > MAX_DESCRIPTION {
        return Err(err!(Validation, "Description is at most {} bytes on this token", MAX_DESCRIPTION));
    }
    check_tags(tags)?;
    if core.store.entries(KIND_KEY).len() >= MAX_KEYS {
        return Err(err!(LimitExceeded, "the token holds at most {} keys", MAX_KEYS));
    }
    let mut id = KeyId::default();
    loop {
        core.rng.fill_bytes(&mut id.0);
        if !core.store.contains(KIND_KEY, &id.0) {
            break;
        }
    }
    let mut rec = KeyRecord::empty();
    rec.spec = key_spec;
    rec.usage = usage;
    rec.user_presence = user_presence_required;
    rec.created = core.now();
    rec.description.push_str(description).map_err(|_| err!(Validation, "Description too long"))?;
    TagList::edit(&[], tags, &[], &mut rec.tags).map_err(super::tags::limit_error)?;
    core.rec = rec;
    core.push_version(&id, None)?;
    core.save(&id)?;
    Ok(Response::KeyMetadata(metadata(core, id)?))
}

/// DescribeKey.
pub fn describe_key<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &'b mut Core<F, R, B>,
    key_ref: &str,
) -> OpResult<Response<'b>> {
    let id = core.load_ref(key_ref)?;
    Ok(Response::KeyMetadata(metadata(core, id)?))
}

/// ListKeys: keys sorted by id; the marker is the last key id of the previous page.
pub fn list_keys<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &'b mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    limit: Option<u16>,
    marker: Option<&str>,
) -> OpResult<Response<'b>> {
    core.device()?;
    let limit = page_limit(limit, MAX_PAGE)?;
    let after = match marker {
        None => None,
        Some(m) => {
            Some(KeyId::parse(m).ok_or_else(|| err!(InvalidMarker, "Marker was not issued by ListKeys"))?)
        }
    };
    let entries = core.store.entries(KIND_KEY);
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
    Ok(Response::Keys { keys, next_marker, truncated })
}
