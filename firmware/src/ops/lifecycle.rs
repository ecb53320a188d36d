//! EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion and UpdateKeyDescription.
//!
//! States: Enabled ⇄ Disabled (EnableKey / DisableKey); Enabled or Disabled → PendingDeletion
//! (ScheduleKeyDeletion); PendingDeletion → Disabled (CancelKeyDeletion); PendingDeletion →
//! gone once host time passes DeletionDate ([`Core::run_due`]).

use pkms_protocol::limits::{
    MAX_DESCRIPTION, PENDING_WINDOW_DAYS_DEFAULT, PENDING_WINDOW_DAYS_MAX, PENDING_WINDOW_DAYS_MIN,
};
use pkms_protocol::{reply, request, KeyState, Response};

use crate::err;
use crate::error::OpResult;
use crate::key::Named;
use crate::platform::Platform;
use crate::records::KeyRecord;
use crate::state::{days, Core};

/// Puts a key (not pending deletion) into `state`, saving only if that changes it.
fn set_state<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    key: Named<'_>,
    state: KeyState,
) -> OpResult<Response<'static>> {
    let mut key = core.load_named(key, slot)?;
    key.require_not_pending()?;
    if key.record().state != state {
        key.record_mut().state = state;
        core.save(&key)?;
    }
    Ok(Response::Done(reply::Done {}))
}

/// EnableKey.
pub fn enable<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    key: Named<'_>,
) -> OpResult<Response<'static>> {
    set_state(core, slot, key, KeyState::Enabled)
}

/// DisableKey.
pub fn disable<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    key: Named<'_>,
) -> OpResult<Response<'static>> {
    set_state(core, slot, key, KeyState::Disabled)
}

/// ScheduleKeyDeletion (PendingWindowInDays 7..=30, default 30).
pub fn schedule_deletion<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    key: Named<'_>,
    r: &request::ScheduleKeyDeletion<'_>,
) -> OpResult<Response<'static>> {
    let window = super::days_in_range(
        r.pending_window_in_days,
        PENDING_WINDOW_DAYS_DEFAULT,
        PENDING_WINDOW_DAYS_MIN,
        PENDING_WINDOW_DAYS_MAX,
        "PendingWindowInDays",
    )?;
    let mut key = core.load_named(key, slot)?;
    key.require_not_pending()?;
    let date = core.now().saturating_add(days(window));
    let rec = key.record_mut();
    rec.state = KeyState::PendingDeletion;
    rec.deletion_date = Some(date);
    rec.pending_window = Some(window);
    core.save(&key)?;
    Ok(Response::DeletionScheduled(reply::DeletionScheduled {
        key_id: key.id(),
        deletion_date: date,
        key_state: KeyState::PendingDeletion,
        pending_window_in_days: window,
    }))
}

/// CancelKeyDeletion: back to Disabled.
pub fn cancel_deletion<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    key: Named<'_>,
) -> OpResult<Response<'static>> {
    let mut key = core.load_named(key, slot)?;
    if key.record().state != KeyState::PendingDeletion {
        return Err(err!(InvalidState, "key {} is not pending deletion", key.id()));
    }
    let rec = key.record_mut();
    rec.state = KeyState::Disabled;
    rec.deletion_date = None;
    rec.pending_window = None;
    core.save(&key)?;
    Ok(Response::DeletionCancelled(reply::DeletionCancelled { key_id: key.id() }))
}

/// UpdateKeyDescription.
pub fn update_description<P: Platform>(
    core: &mut Core<P>,
    slot: &mut KeyRecord,
    key: Named<'_>,
    r: &request::UpdateKeyDescription<'_>,
) -> OpResult<Response<'static>> {
    if r.description.len() > MAX_DESCRIPTION {
        return Err(err!(Validation, "Description is at most {} bytes on this token", MAX_DESCRIPTION));
    }
    let mut key = core.load_named(key, slot)?;
    key.require_not_pending()?;
    let rec = key.record_mut();
    rec.description.clear();
    rec.description.push_str(r.description).map_err(|_| err!(Validation, "Description too long"))?;
    core.save(&key)?;
    Ok(Response::Done(reply::Done {}))
}

crate::dispatch::handle! {
    request::EnableKey<'_> => |_r, cx| enable(cx.core, &mut cx.bufs.key, cx.admitted.key());
    request::DisableKey<'_> => |_r, cx| disable(cx.core, &mut cx.bufs.key, cx.admitted.key());
    request::ScheduleKeyDeletion<'_> => |r, cx| schedule_deletion(cx.core, &mut cx.bufs.key, cx.admitted.key(), r);
    request::CancelKeyDeletion<'_> => |_r, cx| cancel_deletion(cx.core, &mut cx.bufs.key, cx.admitted.key());
    request::UpdateKeyDescription<'_> => |r, cx| update_description(cx.core, &mut cx.bufs.key, cx.admitted.key(), r);
}
