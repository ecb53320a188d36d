//! Pocket KMS USB token firmware for the nRF52840 (nRF52840-DK or nRF52840 Dongle).
//!
//! Two priorities:
//!
//! * an interrupt-mode embassy executor (EGU0/SWI0, priority 6) runs the USB stack and the USB
//!   side of the packet loop, so enumeration and control requests are answered even while the
//!   token is busy;
//! * thread mode runs the token core itself ([`serve_forever`]), which may block: P-256 and AES
//!   work, flash erases, waiting up to a timeout for the button. It sleeps with `wfe` while idle.
//!
//! The key store is the flash window `KEYSTORE` of `memory-<board>.x`; randomness is a ChaCha20
//! DRBG over the TRNG, whose output passes the SP 800-90B health tests first; the clock is
//! embassy-time on RTC1. See docs/hardware.md.
#![no_std]
#![no_main]

mod board;
mod flash;
mod layout;
mod usb;

use core::panic::PanicInfo;

use cortex_m_rt::entry;
use embassy_executor::InterruptExecutor;
use embassy_nrf::config::{Config, HfclkSource};
use embassy_nrf::gpio::{Input, Level, Output, OutputDrive, Pull};
use embassy_nrf::interrupt::{self, InterruptExt, Priority};
use embassy_nrf::nvmc::Nvmc;
use embassy_nrf::rng::Rng;
use embassy_nrf::{interrupt as irq_attr, mode::Blocking};
use pkms_firmware::{FrameServer, Platform, Token};
use pkms_protocol::SelfTest;
use pkms_nrf52840_support::drbg::Drbg;
use pkms_nrf52840_support::link::{serve_forever, Link, TokenSide};
use pkms_nrf52840_support::nvmc_flash::NvmcRegion;
use static_cell::{ConstStaticCell, StaticCell};

use crate::board::NrfBoard;
use crate::flash::OnChipFlash;

type KeyStoreFlash = NvmcRegion<OnChipFlash>;
type TokenRng = Drbg<Rng<'static, Blocking>>;

/// The channels between the USB executor and the token.
static LINK: Link = Link::new();
/// Runs the USB stack above thread mode.
static USB_EXECUTOR: InterruptExecutor = InterruptExecutor::new();
/// The frame server's two frame-sized buffers (about 25 KB), zero-initialised in .bss.
static SERVER: ConstStaticCell<FrameServer> = ConstStaticCell::new(FrameServer::new());
/// The token core, built in place.
/// What the USB token runs on: the key-store region of the on-chip flash, the DRBG seeded from
/// the TRNG, and the nRF52840 board.
enum Nrf {}

/// The audit log: half the 128 KiB key store (432 entries).
const AUDIT_CAPACITY: usize =
    pkms_firmware::platform::audit_capacity(layout::KEYSTORE_LEN as usize, embassy_nrf::nvmc::PAGE_SIZE);

impl Platform for Nrf {
    type Flash = KeyStoreFlash;
    type Rng = TokenRng;
    type Board = NrfBoard;
    type Index = pkms_firmware::store::Index<{ pkms_firmware::platform::index_records(AUDIT_CAPACITY) }>;
    const AUDIT_CAPACITY: usize = AUDIT_CAPACITY;
}

static TOKEN: StaticCell<Token<Nrf>> = StaticCell::new();

#[irq_attr]
#[allow(non_snake_case)]
unsafe fn EGU0_SWI0() {
    // SAFETY: the executor is started on this interrupt before it is enabled, and this handler is
    // the only caller of `on_interrupt`.
    unsafe { USB_EXECUTOR.on_interrupt() }
}

#[entry]
fn main() -> ! {
    let mut config = Config::default();
    // USB needs the 32 MHz crystal.
    config.hfclk_source = HfclkSource::ExternalXtal;
    // The Dongle runs its GPIOs (and LED) from REG0, 1.8 V out of the factory; Nordic's own
    // dongle code sets 3.0 V in UICR.REGOUT0. A no-op when the bootloader already did.
    #[cfg(feature = "dongle")]
    {
        config.dcdc.reg0_voltage = Some(embassy_nrf::config::Reg0Voltage::_3V0);
    }
    if cfg!(feature = "approtect") {
        // Writes UICR.APPROTECT = Enabled once (then resets): the debug port is closed.
        config.debug = embassy_nrf::config::Debug::Disallowed;
    }
    let p = embassy_nrf::init(config);

    // USB first, so the host sees the device while the key store mounts.
    let serial = usb::serial_number();
    interrupt::EGU0_SWI0.set_priority(Priority::P6);
    let spawner = USB_EXECUTOR.start(interrupt::EGU0_SWI0);
    spawner.spawn(usb::usb_task(p.USBD, serial, &LINK).expect("the USB task is spawned once"));

    #[cfg(not(feature = "dongle"))]
    let (button, led) =
        (Input::new(p.P0_11, Pull::Up), Output::new(p.P0_13, Level::High, OutputDrive::Standard));
    #[cfg(feature = "dongle")]
    let (button, led) =
        (Input::new(p.P1_06, Pull::Up), Output::new(p.P0_06, Level::High, OutputDrive::Standard));

    let flash =
        NvmcRegion::new(OnChipFlash::new(Nvmc::new(p.NVMC)), layout::KEYSTORE_START, layout::KEYSTORE_LEN)
            .expect("build.rs checked the key store is whole pages");
    let trng = Rng::new_blocking(p.RNG);
    trng.set_bias_correction(true);
    // SP 800-90B start-up tests on the TRNG: a failure is the core's error state (only Hello,
    // GetInfo and GetSelfTests answer, naming the DRBG), and the unseeded generator is never
    // drawn from.
    let rng = Drbg::start(trng);
    let board = NrfBoard::new(button, led, &LINK);

    let token = TOKEN.init_with(|| match rng.health() {
        Ok(()) => Token::new(flash, rng, board),
        Err(_) => Token::in_error_state(flash, rng, board, SelfTest::Drbg),
    });
    let mut side = TokenSide::new(SERVER.take());
    serve_forever(&LINK, &mut side, token, cortex_m::asm::wfe)
}

/// A panic resets the chip: the token restarts with its key store intact and the host sees a
/// disconnect, rather than a device that hangs.
#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}
