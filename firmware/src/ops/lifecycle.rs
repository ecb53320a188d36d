//! EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion and UpdateKeyDescription.
//!
//! States: Enabled ⇄ Disabled (EnableKey / DisableKey); Enabled or Disabled → PendingDeletion
//! (ScheduleKeyDeletion); PendingDeletion → Disabled (CancelKeyDeletion); PendingDeletion →
//! gone once host time passes DeletionDate ([`Core::run_due`]).

use embedded_storage::nor_flash::NorFlash;
use pkms_protocol::limits::{
    MAX_DESCRIPTION, PENDING_WINDOW_DAYS_DEFAULT, PENDING_WINDOW_DAYS_MAX, PENDING_WINDOW_DAYS_MIN,
};
use pkms_protocol::{KeyState, Response};
use rand_core::{CryptoRng, RngCore};

use super::Core;
use crate::board::Board;
use crate::err;
use crate::error::OpResult;
use crate::state::days;

/// EnableKey.
pub fn enable<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    key_ref: &str,
) -> OpResult<Response<'b>> {
    let id = core.load_ref(key_ref)?;
    core.require_not_pending(&id)?;
    if core.rec.state != KeyState::Enabled {
        core.rec.state = KeyState::Enabled;
        core.save(&id)?;
    }
    Ok(Response::Done)
}

/// DisableKey.
pub fn disable<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    key_ref: &str,
) -> OpResult<Response<'b>> {
    let id = core.load_ref(key_ref)?;
    core.require_not_pending(&id)?;
    if core.rec.state != KeyState::Disabled {
        core.rec.state = KeyState::Disabled;
        core.save(&id)?;
    }
    Ok(Response::Done)
}

/// ScheduleKeyDeletion (PendingWindowInDays 7..=30, default 30).
pub fn schedule_deletion<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    key_ref: &str,
    window: Option<u16>,
) -> OpResult<Response<'b>> {
    let window = super::days_in_range(
        window,
        PENDING_WINDOW_DAYS_DEFAULT,
        PENDING_WINDOW_DAYS_MIN,
        PENDING_WINDOW_DAYS_MAX,
        "PendingWindowInDays",
    )?;
    let id = core.load_ref(key_ref)?;
    core.require_not_pending(&id)?;
    let date = core.now().saturating_add(days(window));
    core.rec.state = KeyState::PendingDeletion;
    core.rec.deletion_date = Some(date);
    core.rec.pending_window = Some(window);
    core.save(&id)?;
    Ok(Response::DeletionScheduled {
        key_id: id,
        deletion_date: date,
        key_state: KeyState::PendingDeletion,
        pending_window_in_days: window,
    })
}

/// CancelKeyDeletion: back to Disabled.
pub fn cancel_deletion<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    key_ref: &str,
) -> OpResult<Response<'b>> {
    let id = core.load_ref(key_ref)?;
    if core.rec.state != KeyState::PendingDeletion {
        return Err(err!(InvalidState, "key {} is not pending deletion", id));
    }
    core.rec.state = KeyState::Disabled;
    core.rec.deletion_date = None;
    core.rec.pending_window = None;
    core.save(&id)?;
    Ok(Response::DeletionCancelled { key_id: id })
}

/// UpdateKeyDescription.
pub fn update_description<'b, F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &mut Core<F, R, B>,
    key_ref: &str,
    description: &str,
) -> OpResult<Response<'b>> {
    if description.len() > MAX_DESCRIPTION {
        return Err(err!(Validation, "Description is at most {} bytes on this token", MAX_DESCRIPTION));
    }
    let id = core.load_ref(key_ref)?;
    core.require_not_pending(&id)?;
    core.rec.description.clear();
    core.rec.description.push_str(description).map_err(|_| err!(Validation, "Description too long"))?;
    core.save(&id)?;
    Ok(Response::Done)
}
