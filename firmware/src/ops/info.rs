//! Hello, GetInfo and GenerateRandom.

use embedded_storage::nor_flash::NorFlash;
use pkms_protocol::limits::MAX_RANDOM_BYTES;
use pkms_protocol::{Response, TokenInfo, PROTOCOL_VERSION};
use rand_core::{CryptoRng, RngCore};

use super::{Buffers, Core};
use crate::board::Board;
use crate::err;
use crate::error::OpResult;
use crate::records::KIND_KEY;
use crate::FIRMWARE_VERSION;

/// Hello: the protocol versions must be equal.
pub fn hello(protocol_version: u16) -> OpResult<Response<'static>> {
    if protocol_version != PROTOCOL_VERSION {
        return Err(err!(
            UnsupportedProtocolVersion,
            "host speaks protocol {}, this token speaks {}; update the host or the firmware",
            protocol_version,
            PROTOCOL_VERSION
        ));
    }
    Ok(Response::Hello { protocol_version: PROTOCOL_VERSION, firmware_version: FIRMWARE_VERSION })
}

/// GetInfo: works even when the store is unusable.
pub fn get_info<F: NorFlash, R: RngCore + CryptoRng, B: Board>(
    core: &Core<F, R, B>,
) -> OpResult<Response<'static>> {
    let info = core.board.info();
    let usable = core.keys.is_some();
    Ok(Response::Info(TokenInfo {
        firmware_version: FIRMWARE_VERSION,
        protocol_version: PROTOCOL_VERSION,
        board: info.name,
        platform: info.platform,
        entropy_source: info.entropy_source,
        key_protection: info.key_protection,
        storage_total_bytes: core.store.total_bytes() as u32,
        storage_free_bytes: if usable { core.store.free_bytes() as u32 } else { 0 },
        key_count: core.store.entries(KIND_KEY).len() as u32,
        time_high_water_mark: core.clock.now,
        initialized: core.store.contains(crate::auth::records::KIND_AUTH, &crate::records::SINGLETON_ID),
    }))
}

/// GenerateRandom: 1..=1024 bytes.
pub fn generate_random<'b, F, R: RngCore + CryptoRng, B>(
    core: &mut Core<F, R, B>,
    bufs: &'b mut Buffers,
    number_of_bytes: u16,
) -> OpResult<Response<'b>> {
    let n = number_of_bytes as usize;
    if n == 0 || n > MAX_RANDOM_BYTES {
        return Err(err!(Validation, "NumberOfBytes must be 1..={}, not {}", MAX_RANDOM_BYTES, n));
    }
    core.rng.fill_bytes(&mut bufs.a[..n]);
    Ok(Response::Random { plaintext: &bufs.a[..n] })
}
