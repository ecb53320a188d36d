//! EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand,
//! ListKeyRotations and RetireKeyVersions. Every key kind has versions and rotates.
//! (Scheduled rotation itself is [`Core::run_due`].)

use embedded_storage::nor_flash::NorFlash;
use pkms_protocol::limits::{
    MAX_PAGE, ROTATION_PERIOD_DAYS_DEFAULT, ROTATION_PERIOD_DAYS_MAX, ROTATION_PERIOD_DAYS_MIN,
};
use pkms_protocol::{KeyMaterialState, KeyVersion, Response, RotationType, RotationsListEntry};
use rand_core::{CryptoRng, RngCore};

use super::{page_limit, write_marker, Buffers, Core};
use crate::board::Board;
use crate::err;
use crate::error::OpResult;

/// EnableKeyRotation (RotationPeriodInDays 90..=2560, default 365). The schedule counts from
/// now, or keeps counting from the last automatic rotation when rotation was already enabled.
pub fn enable<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    key_ref: &str,
    period: Option<u16>,
) -> OpResult<Response<'b>> {
    let days = super::days_in_range(
        period,
        ROTATION_PERIOD_DAYS_DEFAULT,
        ROTATION_PERIOD_DAYS_MIN,
        ROTATION_PERIOD_DAYS_MAX,
        "RotationPeriodInDays",
    )?;
    let id = core.load_ref(key_ref)?;
    core.require_enabled(&id)?;
    if core.rec.rotation_period.is_none() {
        core.rec.rotation_base = core.now();
    }
    core.rec.rotation_period = Some(days);
    core.save(&id)?;
    Ok(Response::Done)
}

/// DisableKeyRotation.
pub fn disable<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    key_ref: &str,
) -> OpResult<Response<'b>> {
    let id = core.load_ref(key_ref)?;
    core.require_enabled(&id)?;
    if core.rec.rotation_period.is_some() {
        core.rec.rotation_period = None;
        core.save(&id)?;
    }
    Ok(Response::Done)
}

/// GetKeyRotationStatus.
pub fn status<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    key_ref: &str,
) -> OpResult<Response<'b>> {
    let id = core.load_ref(key_ref)?;
    let r = &core.rec;
    Ok(Response::KeyRotationStatus {
        key_id: id,
        key_rotation_enabled: r.rotation_period.is_some(),
        rotation_period_in_days: r.rotation_period,
        next_rotation_date: r.next_rotation(),
        on_demand_rotation_start_date: r.last_on_demand(),
    })
}

/// RotateKeyOnDemand: a new newest version now.
pub fn rotate_on_demand<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    key_ref: &str,
) -> OpResult<Response<'b>> {
    let id = core.load_ref(key_ref)?;
    core.require_enabled(&id)?;
    let key_version = core.rotate(&id, RotationType::OnDemand)?;
    let key_material_id = match core.rec.newest() {
        Some(e) => core.device()?.material_id(&id, e),
        None => return Err(err!(Internal, "rotation lost its version")),
    };
    Ok(Response::Rotated { key_id: id, key_version, key_material_id })
}

/// ListKeyRotations: every version still held, oldest first; the marker is a version number.
pub fn list<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    key_ref: &str,
    limit: Option<u16>,
    marker: Option<&str>,
) -> OpResult<Response<'b>> {
    let limit = page_limit(limit, MAX_PAGE)?;
    let after: KeyVersion = match marker {
        None => 0,
        Some(m) => m.parse().map_err(|_| err!(InvalidMarker, "Marker was not issued by ListKeyRotations"))?,
    };
    let id = core.load_ref(key_ref)?;
    let keys = core.device()?;
    let newest = core.newest_version();
    let mut rotations = heapless::Vec::new();
    let mut more = false;
    for v in core.rec.versions.iter().filter(|v| v.version > after) {
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
    Ok(Response::Rotations { rotations, next_marker, truncated: more })
}

/// RetireKeyVersions: erases every version below `below` (never the newest). Atomic: the key
/// record without those versions replaces the old one, whose bytes are then zeroed on flash.
pub fn retire<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    key_ref: &str,
    below: KeyVersion,
) -> OpResult<Response<'b>> {
    let id = core.load_ref(key_ref)?;
    core.require_not_pending(&id)?;
    let newest = core.newest_version();
    if below > newest {
        return Err(err!(
            Validation,
            "the newest version ({}) can never be retired: below_version must be at most {}",
            newest,
            newest
        ));
    }
    let before = core.rec.versions.len();
    core.rec.versions.retain(|v| v.version >= below);
    let retired = before - core.rec.versions.len();
    if retired > 0 || below > core.rec.retired_below {
        core.rec.retired_below = core.rec.retired_below.max(below);
        core.save(&id)?;
    }
    let oldest = core.rec.versions.first().map(|v| v.version).unwrap_or(newest);
    Ok(Response::Retired { key_id: id, retired_count: retired as u32, oldest_key_version: oldest })
}
