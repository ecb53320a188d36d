//! Pocket KMS token firmware for `qemu-system-arm -M mps2-an386` (Cortex-M4F).
//!
//! * Requests arrive on two links, both always served: the packet link over the LAN9118
//!   Ethernet controller ([`lan9118`], [`packet_link`]), which QEMU joins to a host socket with
//!   `-netdev stream`, and CMSDK UART0 ([`uart`]), which QEMU bridges to another socket. Each
//!   link has its own [`pkms_firmware::FrameServer`] in front of the one token core; the host
//!   uses one link at a time.
//! * Keys live in a NOR-flash emulation over the file-backed PSRAM ([`nor_flash`]).
//! * Entropy comes from a boot seed the launcher has QEMU's loader place in RAM, copied into a
//!   ChaCha20 seed and wiped at once — an emulator-only arrangement, and GetInfo says so
//!   ([`board`], [`entropy`]). Without a seed the token answers Hello and GetInfo and refuses
//!   everything that needs keys or randomness, saying why.
//! * Uptime from SysTick ([`clock`]); logs through defmt over semihosting, sparingly.
//! * After `idle_secs` without a received byte or frame the firmware ends QEMU, so a token kept warm
//!   by the launcher never lingers; faults and panics end QEMU too ([`fault`]). While idle it also
//!   checks every [`WATCH_MS`] that its home is still there (the launcher's `watch=token.flash`,
//!   [`host::watched_file`]) and ends QEMU when it is not: a removed `$PKMS_HOME` leaves no QEMU.
#![no_std]
#![no_main]

mod board;
mod clock;
mod entropy;
mod fault;
mod host;
mod lan9118;
mod nor_flash;
mod packet_link;
mod uart;
mod vectors;

use cortex_m_rt::entry;
use defmt_semihosting as _;
use pkms_firmware::{FrameServer, Platform, Token};
use static_cell::{ConstStaticCell, StaticCell};

use crate::board::QemuBoard;
use crate::entropy::BootRng;
use crate::host::exit_code;
use crate::nor_flash::PsramNor;
use crate::packet_link::PacketLink;

/// What the QEMU token runs on: the PSRAM-backed NOR flash, a ChaCha20 RNG seeded from the boot
/// seed, the mps2-an386 board, and an audit log of half the 1 MiB store (3,696 entries).
enum Qemu {}

const AUDIT_CAPACITY: usize =
    pkms_firmware::platform::audit_capacity(nor_flash::STORE_BYTES, nor_flash::ERASE_SIZE);

impl Platform for Qemu {
    type Flash = PsramNor;
    type Rng = BootRng;
    type Board = QemuBoard;
    type Index = pkms_firmware::store::Index<{ pkms_firmware::platform::index_records(AUDIT_CAPACITY) }>;
    const AUDIT_CAPACITY: usize = AUDIT_CAPACITY;
}

type QemuToken = Token<Qemu>;

/// The UART's frame buffers (two maximum frames, ~25 KB): a static, not on the stack.
static SERVER: ConstStaticCell<FrameServer> = ConstStaticCell::new(FrameServer::new());
/// The token core with its working buffers: a static, not on the stack.
static TOKEN: StaticCell<QemuToken> = StaticCell::new();
/// The packet link's buffers and its own frame server (~60 KB).
static LINK: ConstStaticCell<PacketLink> = ConstStaticCell::new(PacketLink::new());

/// Bytes moved from the receive ring to the frame server per step.
const CHUNK: usize = 512;
/// How often an idle token looks for its watched file (one semihosting open and close).
const WATCH_MS: u64 = 2000;

#[entry]
fn main() -> ! {
    // First of all: the seed leaves RAM before anything else runs.
    let rng = entropy::take_boot_seed();
    let Some(core) = cortex_m::Peripherals::take() else {
        host::exit(exit_code::BOOT);
    };
    clock::start(core.SYST);

    let entropy_missing = rng.missing();
    if let Some(why) = entropy_missing {
        defmt::error!("{=str}", why);
    }
    let idle_ms = u64::from(host::idle_secs()) * 1000;
    let watched = host::watched_file();
    let Some(flash) = PsramNor::take() else {
        host::exit(exit_code::BOOT);
    };
    #[cfg(not(feature = "corrupt-kat"))]
    let answers = pkms_firmware::selftest::KATS;
    #[cfg(feature = "corrupt-kat")]
    let answers = pkms_firmware::selftest::KATS.corrupted(pkms_protocol::SelfTest::Aes256Gcm);
    let token = TOKEN
        .init_with(|| Token::with_self_test_answers(flash, rng, QemuBoard::new(entropy_missing), &answers));
    if let pkms_protocol::SelfTests::Failed(test) = token.self_tests() {
        defmt::error!(
            "power-on self-test {=str} failed: answering only Hello, GetInfo and GetSelfTests",
            test.name()
        );
    }
    let server = SERVER.take();

    uart::init();
    let link = LINK.take();
    let nic = lan9118::init();
    match nic {
        Some(mac) => link.start(mac),
        None => defmt::warn!("no LAN9118 answered: serving the UART only"),
    }
    defmt::info!(
        "pkms token ready: firmware {=str}, idle timeout {=u64} s",
        pkms_firmware::FIRMWARE_VERSION,
        idle_ms / 1000
    );

    let mut chunk = [0u8; CHUNK];
    let mut last_rx_ms = clock::uptime_ms();
    let mut last_watch_ms = last_rx_ms;
    loop {
        let n = uart::take_received(&mut chunk);
        if n > 0 {
            server.feed(token, &chunk[..n], uart::write_all);
            last_rx_ms = clock::uptime_ms();
            continue;
        }
        if nic.is_some() && link.poll(token) {
            last_rx_ms = clock::uptime_ms();
            continue;
        }
        if idle_ms != 0 && clock::uptime_ms().saturating_sub(last_rx_ms) >= idle_ms {
            defmt::info!("idle for {=u64} s: exiting", idle_ms / 1000);
            host::exit(exit_code::IDLE);
        }
        if let Some(file) = &watched {
            let now = clock::uptime_ms();
            if now.saturating_sub(last_watch_ms) >= WATCH_MS {
                last_watch_ms = now;
                if !file.exists() {
                    defmt::info!("the token's home is gone: exiting");
                    host::exit(exit_code::HOME_GONE);
                }
            }
        }
        // Nothing waits: make what the next request would otherwise wait for.
        token.idle();
        sleep_unless(|| {
            uart::has_input() || (nic.is_some() && (lan9118::frames_waiting() || link.has_work()))
        });
    }
}

/// Sleeps in WFI until an interrupt, unless `ready` says input already waits. Interrupts are
/// masked between the look and the WFI, and WFI wakes on a pending interrupt even while masked,
/// so input arriving in between is never slept through. The main loop never busy-polls: that
/// would starve QEMU's I/O thread.
fn sleep_unless(ready: impl Fn() -> bool) {
    cortex_m::interrupt::disable();
    if !ready() {
        cortex_m::asm::wfi();
    }
    // SAFETY: re-enabling interrupts outside any critical section (main loop context).
    unsafe { cortex_m::interrupt::enable() };
}
