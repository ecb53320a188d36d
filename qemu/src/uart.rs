//! CMSDK APB UART0 of mps2-an386 (0x4000_4000), which QEMU bridges to the host (`-serial`).
//!
//! Receiving is interrupt driven: the RX interrupt (IRQ 0 on mps2-an386, QEMU hw/arm/mps2.c:
//! "RX irq number; TX irq is always one greater") moves bytes into a bounded ring, and the main
//! loop sleeps in WFI while the ring is empty, never busy-polling (that would starve QEMU's own
//! I/O thread). When the ring is full the RX interrupt is switched off and the byte stays in the
//! UART, so QEMU stops reading the host socket: back-pressure, no loss. Transmitting writes
//! DATA; while the one-byte TX buffer is full (the host socket is not draining) it sleeps until
//! the TX interrupt (IRQ 1) says the byte left.

use core::cell::RefCell;
use core::ptr::{read_volatile, write_volatile};

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use critical_section::{CriticalSection, Mutex};
use heapless::Deque;

const BASE: usize = 0x4000_4000;
const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const INTSTATUS: usize = 0x0C;
const BAUDDIV: usize = 0x10;

const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_EN: u32 = 1 << 0;
const CTRL_RX_EN: u32 = 1 << 1;
const CTRL_TX_IRQ_EN: u32 = 1 << 2;
const CTRL_RX_IRQ_EN: u32 = 1 << 3;
const INT_TX: u32 = 1 << 0;
const INT_RX: u32 = 1 << 1;
/// W1C bits of INTSTATUS: TX, RX, TX overrun, RX overrun.
const INT_ALL: u32 = 0b1111;
/// QEMU ignores BAUDDIV values below 16 (the hardware minimum); the speed itself does not matter
/// for a socket, so take the fastest legal setting.
const BAUD_DIVISOR: u32 = 16;

/// Bytes the receive ring holds: more than one maximum encoded frame, so a whole request can
/// arrive while the token is still busy with the previous one.
pub const RX_RING_BYTES: usize = 16 * 1024;

/// Device interrupt numbers of UART0 on mps2-an386.
#[derive(Clone, Copy)]
#[repr(u16)]
pub enum Irq {
    /// UART0 receive.
    Uart0Rx = 0,
    /// UART0 transmit.
    Uart0Tx = 1,
}

// SAFETY: the numbers are valid device interrupts of this board (num-irq is 32).
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self as u16
    }
}

struct Rx {
    ring: Deque<u8, RX_RING_BYTES>,
    /// The RX interrupt is off because the ring was full.
    paused: bool,
}

static RX: Mutex<RefCell<Rx>> = Mutex::new(RefCell::new(Rx { ring: Deque::new(), paused: false }));

fn read(offset: usize) -> u32 {
    // SAFETY: BASE + offset is a register of the CMSDK UART0, which only this module touches.
    unsafe { read_volatile((BASE + offset) as *const u32) }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as for `read`.
    unsafe { write_volatile((BASE + offset) as *mut u32, value) }
}

/// Enables the UART (TX, RX, RX interrupt) and unmasks its interrupts. Call once at boot.
pub fn init() {
    write(CTRL, 0);
    write(INTSTATUS, INT_ALL);
    write(BAUDDIV, BAUD_DIVISOR);
    write(CTRL, CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_IRQ_EN);
    // QEMU takes no byte from the host while RX is disabled, and enabling it through CTRL does
    // not make QEMU look at the socket again: bytes a host sent during boot would wait for the
    // next timer to wake QEMU's main loop (up to a SysTick period, 500 ms). Reading DATA (empty:
    // nothing could arrive while RX was off) makes QEMU accept input at once.
    let _ = read(DATA);
    // SAFETY: the handlers for both interrupts are in the vector table (vectors.rs) and only
    // touch state guarded by critical sections.
    unsafe {
        NVIC::unmask(Irq::Uart0Rx);
        NVIC::unmask(Irq::Uart0Tx);
    }
}

/// Moves received bytes from the UART into the ring until the UART is empty or the ring full.
fn drain(cs: CriticalSection<'_>) {
    let mut rx = RX.borrow_ref_mut(cs);
    loop {
        // Clear first, then look: a byte arriving after the look raises the interrupt again.
        write(INTSTATUS, INT_RX);
        if read(STATE) & STATE_RX_FULL == 0 {
            break;
        }
        if rx.ring.is_full() {
            write(CTRL, read(CTRL) & !CTRL_RX_IRQ_EN);
            rx.paused = true;
            break;
        }
        let byte = read(DATA) as u8;
        // Cannot fail: checked not full above.
        let _ = rx.ring.push_back(byte);
    }
}

/// Copies received bytes into `buf`; returns how many (0 if none arrived).
pub fn take_received(buf: &mut [u8]) -> usize {
    critical_section::with(|cs| {
        let mut n = 0;
        let resume = {
            let mut rx = RX.borrow_ref_mut(cs);
            while n < buf.len() {
                match rx.ring.pop_front() {
                    Some(byte) => {
                        buf[n] = byte;
                        n += 1;
                    }
                    None => break,
                }
            }
            let resume = rx.paused && n > 0;
            if resume {
                rx.paused = false;
            }
            resume
        };
        if resume {
            write(CTRL, read(CTRL) | CTRL_RX_IRQ_EN);
            // The byte that waited in the UART raised no new interrupt: fetch it now.
            drain(cs);
        }
        n
    })
}

/// Whether received bytes wait in the ring. Call with interrupts masked before a WFI (see
/// `main`), so a byte arriving after the look still wakes the core.
pub fn has_input() -> bool {
    critical_section::with(|cs| !RX.borrow_ref(cs).ring.is_empty())
}

/// Sends all of `bytes`, sleeping while the UART's transmit buffer is full.
pub fn write_all(bytes: &[u8]) {
    for &byte in bytes {
        while read(STATE) & STATE_TX_FULL != 0 {
            wait_for_tx();
        }
        write(DATA, u32::from(byte));
    }
}

fn wait_for_tx() {
    cortex_m::interrupt::disable();
    write(CTRL, read(CTRL) | CTRL_TX_IRQ_EN);
    if read(STATE) & STATE_TX_FULL != 0 {
        cortex_m::asm::wfi();
    }
    write(CTRL, read(CTRL) & !CTRL_TX_IRQ_EN);
    write(INTSTATUS, INT_TX);
    // SAFETY: re-enabling interrupts outside any critical section (main loop context).
    unsafe { cortex_m::interrupt::enable() };
}

/// UART0 RX interrupt handler (vector table entry 0).
pub extern "C" fn on_rx_interrupt() {
    critical_section::with(drain);
}

/// UART0 TX interrupt handler (vector table entry 1): only acknowledges; `wait_for_tx` woke up.
pub extern "C" fn on_tx_interrupt() {
    write(INTSTATUS, INT_TX);
}
