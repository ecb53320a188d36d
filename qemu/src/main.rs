//! Pocket KMS token firmware for `qemu-system-arm -M mps2-an386` (Cortex-M4F).
//!
//! * Requests arrive on CMSDK UART0, which QEMU bridges to a host socket ([`uart`]); they go
//!   through the shared [`pkms_firmware::FrameServer`] to the token core and the response
//!   frames go back out the same way.
//! * Keys live in a NOR-flash emulation over the file-backed PSRAM ([`nor_flash`]).
//! * Entropy comes from the host's /dev/urandom through semihosting, seeding ChaCha20 — an
//!   emulator-only arrangement, and GetInfo says so ([`board`], [`host`]).
//! * Uptime from SysTick ([`clock`]); logs through defmt over semihosting, sparingly.
//! * After `idle_secs` without a received byte the firmware ends QEMU, so a token kept warm
//!   by the launcher never lingers; faults and panics end QEMU too ([`fault`]).
#![no_std]
#![no_main]

mod board;
mod clock;
mod fault;
mod host;
mod nor_flash;
mod uart;
mod vectors;

use cortex_m_rt::entry;
use defmt_semihosting as _;
use pkms_firmware::{FrameServer, Platform, Token};
use rand_chacha::ChaCha20Rng;
use static_cell::{ConstStaticCell, StaticCell};

use crate::board::QemuBoard;
use crate::host::exit_code;
use crate::nor_flash::PsramNor;

/// What the QEMU token runs on: the PSRAM-backed NOR flash, a ChaCha20 RNG seeded by the host,
/// and the mps2-an386 board.
enum Qemu {}

impl Platform for Qemu {
    type Flash = PsramNor;
    type Rng = ChaCha20Rng;
    type Board = QemuBoard;
}

type QemuToken = Token<Qemu>;

/// Frame buffers (two maximum frames, ~25 KB): a static, not on the stack.
static SERVER: ConstStaticCell<FrameServer> = ConstStaticCell::new(FrameServer::new());
/// The token core with its working buffers: a static, not on the stack.
static TOKEN: StaticCell<QemuToken> = StaticCell::new();

/// Bytes moved from the receive ring to the frame server per step.
const CHUNK: usize = 512;

#[entry]
fn main() -> ! {
    let Some(core) = cortex_m::Peripherals::take() else {
        host::exit(exit_code::BOOT);
    };
    clock::start(core.SYST);

    let Some(rng) = host::seeded_rng() else {
        defmt::error!("no entropy from the host (semihosting SYS_OPEN /dev/urandom failed)");
        host::exit(exit_code::NO_ENTROPY);
    };
    let idle_ms = u64::from(host::idle_secs()) * 1000;
    let Some(flash) = PsramNor::take() else {
        host::exit(exit_code::BOOT);
    };
    let token = TOKEN.init_with(|| Token::new(flash, rng, QemuBoard));
    let server = SERVER.take();

    uart::init();
    defmt::info!(
        "pkms token ready: firmware {=str}, idle timeout {=u64} s",
        pkms_firmware::FIRMWARE_VERSION,
        idle_ms / 1000
    );

    let mut chunk = [0u8; CHUNK];
    let mut last_rx_ms = clock::uptime_ms();
    loop {
        let n = uart::take_received(&mut chunk);
        if n > 0 {
            server.feed(token, &chunk[..n], uart::write_all);
            last_rx_ms = clock::uptime_ms();
            continue;
        }
        if idle_ms != 0 && clock::uptime_ms().saturating_sub(last_rx_ms) >= idle_ms {
            defmt::info!("idle for {=u64} s: exiting", idle_ms / 1000);
            host::exit(exit_code::IDLE);
        }
        uart::wait_for_input();
    }
}
