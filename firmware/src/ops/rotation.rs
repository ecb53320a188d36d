//! EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand,
//! ListKeyRotations and RetireKeyVersions. Every key kind has versions and rotates, except that
//! a SIGN_VERIFY key is refused, as KMS refuses it (UnsupportedOperationException), unless the
//! key carries the opt-in tag [`ALLOW_SIGNING_KEY_ROTATION_TAG`] = `true`: rotating a signing
//! key makes it sign under a new public key, so every public key handed out stops verifying new
//! signatures. (Scheduled rotation itself is [`Core::run_due`].)

use pkms_protocol::limits::{
    MAX_PAGE, ROTATION_PERIOD_DAYS_DEFAULT, ROTATION_PERIOD_DAYS_MAX, ROTATION_PERIOD_DAYS_MIN,
};
use pkms_protocol::{
    reply, request, KeyMaterialState, KeyUsage, KeyVersion, Response, RotationType, RotationsListEntry,
};

use super::{page_limit, write_marker, Buffers};
use crate::err;
use crate::error::OpResult;
use crate::key::Named;
use crate::platform::Platform;
use crate::records::{KeyRecord, TagList};
use crate::state::Core;

/// The opt-in tag ([`pkms_protocol::ALLOW_SIGNING_KEY_ROTATION_TAG`]): a setting stored with the
/// key, shown by ListResourceTags, set with TagResource (which policies govern as any tag),
/// and the same whether the request comes from `pkms` or from a KMS client through `pkms serve`.
pub use pkms_protocol::ALLOW_SIGNING_KEY_ROTATION_TAG;

/// Refuses to rotate a SIGN_VERIFY key that does not carry the opt-in tag.
fn rotation_allowed(rec: &KeyRecord) -> OpResult<()> {
    match rec.usage {
        KeyUsage::SignVerify => {
            let opted_in = TagList::iter(&rec.tags)
                .any(|t| t.tag_key == ALLOW_SIGNING_KEY_ROTATION_TAG && t.tag_value == "true");
            if opted_in {
                Ok(())
            } else {
                Err(err!(
                    UnsupportedOperation,
                    "a SIGN_VERIFY key does not rotate (as in KMS): its public key would change. Opt in: tag it {}=true",
                    ALLOW_SIGNING_KEY_ROTATION_TAG
                ))
            }
        }
        KeyUsage::EncryptDecrypt
        | KeyUsage::GenerateVerifyMac
        | KeyUsage::KeyAgreement
        | KeyUsage::EncapsulateDecapsulate => Ok(()),
    }
}

/// EnableKeyRotation (RotationPeriodInDays 90..=2560, default 365). The schedule counts from
/// now, or keeps counting from the last automatic rotation when rotation was already enabled.
pub fn enable<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    key: Named<'_>,
    r: &request::EnableKeyRotation<'_>,
) -> OpResult<Response<'static>> {
    let days = super::days_in_range(
        r.rotation_period_in_days,
        ROTATION_PERIOD_DAYS_DEFAULT,
        ROTATION_PERIOD_DAYS_MIN,
        ROTATION_PERIOD_DAYS_MAX,
        "RotationPeriodInDays",
    )?;
    let mut key = core.load_named(key, slot)?;
    key.require_enabled()?;
    rotation_allowed(key.record())?;
    let now = core.now();
    let rec = key.record_mut();
    if rec.rotation_period.is_none() {
        rec.rotation_base = now;
    }
    rec.rotation_period = Some(days);
    core.save(&key)?;
    Ok(Response::Done(reply::Done {}))
}

/// DisableKeyRotation.
pub fn disable<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    key: Named<'_>,
) -> OpResult<Response<'static>> {
    let mut key = core.load_named(key, slot)?;
    key.require_enabled()?;
    if key.record().rotation_period.is_some() {
        key.record_mut().rotation_period = None;
        core.save(&key)?;
    }
    Ok(Response::Done(reply::Done {}))
}

/// GetKeyRotationStatus.
pub fn status<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    key: Named<'_>,
) -> OpResult<Response<'static>> {
    let key = core.load_named(key, slot)?;
    let r = key.record();
    Ok(Response::KeyRotationStatus(reply::KeyRotationStatus {
        key_id: key.id(),
        key_rotation_enabled: r.rotation_period.is_some(),
        rotation_period_in_days: r.rotation_period,
        next_rotation_date: r.next_rotation(),
        on_demand_rotation_start_date: r.last_on_demand(),
    }))
}

/// RotateKeyOnDemand: a new newest version now.
pub fn rotate_on_demand<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    key: Named<'_>,
) -> OpResult<Response<'static>> {
    let mut key = core.load_named(key, slot)?;
    key.require_enabled()?;
    rotation_allowed(key.record())?;
    let key_version = core.rotate(&mut key, RotationType::OnDemand)?;
    let key_material_id = match key.newest() {
        Some(e) => core.device()?.material_id(&key.id(), e),
        None => return Err(err!(Internal, "rotation lost its version")),
    };
    Ok(Response::Rotated(reply::Rotated { key_id: key.id(), key_version, key_material_id }))
}

/// ListKeyRotations: every version still held, oldest first; the marker is a version number.
pub fn list<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    key: Named<'_>,
    r: &request::ListKeyRotations<'_>,
) -> OpResult<Response<'b>> {
    let limit = page_limit(r.limit, MAX_PAGE)?;
    let after: KeyVersion = match r.marker {
        None => 0,
        Some(m) => m.parse().map_err(|_| err!(InvalidMarker, "Marker was not issued by ListKeyRotations"))?,
    };
    let key = core.load_named(key, &mut bufs.key)?;
    let id = key.id();
    let keys = core.device()?;
    let newest = key.newest_version();
    let mut rotations = heapless::Vec::new();
    let mut more = false;
    for v in key.record().versions.iter().filter(|v| v.version > after) {
        if rotations.len() == limit {
            more = true;
            break;
        }
        let _ = rotations.push(RotationsListEntry {
            key_id: id,
            key_material_id: keys.material_id(&id, v),
            key_version: v.version,
            key_material_state: if v.version == newest {
                KeyMaterialState::Current
            } else {
                KeyMaterialState::NonCurrent
            },
            rotation_date: v.created,
            rotation_type: v.rotation,
        });
    }
    let next_marker = match (more, rotations.last()) {
        (true, Some(last)) => {
            let mut digits = [0u8; 10];
            let mut v = last.key_version;
            let mut i = digits.len();
            loop {
                i -= 1;
                digits[i] = b'0' + (v % 10) as u8;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            write_marker(&mut bufs.marker, &digits[i..])
        }
        _ => None,
    };
    Ok(Response::Rotations(reply::Rotations { rotations, next_marker, truncated: more }))
}

/// RetireKeyVersions: erases every version below `below_version` (never the newest). Atomic:
/// the key record without those versions replaces the old one, whose bytes are then zeroed on
/// flash.
pub fn retire<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    key: Named<'_>,
    r: &request::RetireKeyVersions<'_>,
) -> OpResult<Response<'static>> {
    let below = r.below_version;
    let mut key = core.load_named(key, slot)?;
    key.require_not_pending()?;
    let newest = key.newest_version();
    if below > newest {
        return Err(err!(
            Validation,
            "the newest version ({}) can never be retired: below_version must be at most {}",
            newest,
            newest
        ));
    }
    let rec = key.record_mut();
    let before = rec.versions.len();
    rec.versions.retain(|v| v.version >= below);
    let retired = before - rec.versions.len();
    if retired > 0 || below > rec.retired_below {
        rec.retired_below = rec.retired_below.max(below);
        core.save(&key)?;
    }
    let oldest = key.record().versions.first().map(|v| v.version).unwrap_or(newest);
    Ok(Response::Retired(reply::Retired {
        key_id: key.id(),
        retired_count: retired as u32,
        oldest_key_version: oldest,
    }))
}

crate::dispatch::handle! {
    request::EnableKeyRotation<'_> => |r, cx| enable(cx.core, &mut cx.bufs.key, cx.admitted.key(), r);
    request::DisableKeyRotation<'_> => |_r, cx| disable(cx.core, &mut cx.bufs.key, cx.admitted.key());
    request::GetKeyRotationStatus<'_> => |_r, cx| status(cx.core, &mut cx.bufs.key, cx.admitted.key());
    request::RotateKeyOnDemand<'_> => |_r, cx| rotate_on_demand(cx.core, &mut cx.bufs.key, cx.admitted.key());
    request::ListKeyRotations<'_> => |r, cx| list(cx.core, cx.bufs, cx.admitted.key(), r);
    request::RetireKeyVersions<'_> => |r, cx| retire(cx.core, &mut cx.bufs.key, cx.admitted.key(), r);
}
