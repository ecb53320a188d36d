//! Hello, GetInfo, GetSelfTests and GenerateRandom.

use pkms_protocol::limits::MAX_RANDOM_BYTES;
use pkms_protocol::{reply, request, ErrorCode, Response, TokenInfo, PROTOCOL_VERSION};
use rand_core::RngCore;

use super::Buffers;
use crate::board::Board;
use crate::err;
use crate::error::{Error, OpResult};
use crate::platform::Platform;
use crate::records::Kind;
use crate::state::Core;
use crate::FIRMWARE_VERSION;

/// Hello: the protocol versions must be equal.
pub fn hello(r: &request::Hello) -> OpResult<Response<'static>> {
    if r.protocol_version != PROTOCOL_VERSION {
        return Err(err!(
            UnsupportedProtocolVersion,
            "host speaks protocol {}, this token speaks {}; update the host or the firmware",
            r.protocol_version,
            PROTOCOL_VERSION
        ));
    }
    Ok(Response::Hello(reply::Hello {
        protocol_version: PROTOCOL_VERSION,
        firmware_version: FIRMWARE_VERSION,
    }))
}

/// GetInfo: works even when the store is unusable. `backup` is the backup status
/// ([`crate::backup::status`]; the default in the error state).
pub fn get_info<P: Platform>(
    core: &Core<P>,
    initialized: bool,
    backup: crate::backup::Status,
) -> OpResult<Response<'static>> {
    let info = core.board_ref().info();
    let usable = core.is_usable();
    Ok(Response::Info(reply::Info {
        info: TokenInfo {
            firmware_version: FIRMWARE_VERSION,
            protocol_version: PROTOCOL_VERSION,
            board: info.name,
            platform: info.platform,
            entropy_source: info.entropy_source,
            key_protection: info.key_protection,
            storage_total_bytes: core.storage_total_bytes() as u32,
            storage_free_bytes: if usable { core.storage_free_bytes() as u32 } else { 0 },
            key_count: core.entries(Kind::Key).len() as u32,
            time_high_water_mark: core.now(),
            initialized,
            key_versions_not_backed_up: backup.not_backed_up,
            backup_key: backup.has_key,
        },
    }))
}

/// GetSelfTests: this boot's power-on self-tests.
pub fn get_self_tests<P: Platform>(core: &Core<P>) -> OpResult<Response<'static>> {
    Ok(Response::SelfTestReport(reply::SelfTestReport { outcome: core.self_tests() }))
}

/// GenerateRandom: 1..=1024 bytes.
pub fn generate_random<'b, P: Platform>(
    core: &mut Core<P>,
    bufs: &'b mut Buffers,
    r: &request::GenerateRandom,
) -> OpResult<Response<'b>> {
    let n = r.number_of_bytes as usize;
    if n == 0 || n > MAX_RANDOM_BYTES {
        return Err(err!(Validation, "NumberOfBytes must be 1..={}, not {}", MAX_RANDOM_BYTES, n));
    }
    if let Some(why) = core.board_ref().entropy_missing() {
        return Err(Error::new(ErrorCode::Internal, why));
    }
    core.rng().fill_bytes(&mut bufs.out[..n]);
    Ok(Response::Random(reply::Random { plaintext: &bufs.out[..n] }))
}

crate::dispatch::handle! {
    request::Hello => |r, _cx| hello(r);
    request::GetInfo => |_r, cx| {
        let backup = crate::backup::status(cx.core, &mut cx.bufs.key);
        get_info(cx.core, cx.auth.is_initialized(), backup)
    };
    request::GetSelfTests => |_r, cx| get_self_tests(cx.core);
    request::GenerateRandom => |r, cx| generate_random(cx.core, cx.bufs, r);
}
