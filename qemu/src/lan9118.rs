//! The SMSC LAN9118 Ethernet controller of mps2-an386 (0x4020_0000, IRQ 13), as QEMU 7.2 models
//! it: 32-bit registers, a receive data FIFO of 10,560 bytes with a status FIFO beside it, and a
//! transmit FIFO that QEMU sends from as soon as a frame's last word is written. QEMU joins the
//! NIC to the host (`-netdev stream,...`); [`crate::packet_link`] speaks the link over it.
//!
//! The driver is polled by the main loop. The interrupt only wakes the core from WFI: the
//! handler acknowledges it, and the main loop takes frames while the status FIFO says some
//! wait. Only what the model implements is touched (an unimplemented register makes QEMU
//! abort), and nothing here waits without bound.

use core::ptr::{read_volatile, write_volatile};
use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;

const BASE: usize = 0x4020_0000;
/// Receive data FIFO port (reads pop one word).
const RX_DATA_FIFO: usize = 0x00;
/// Transmit data FIFO port (writes push one word).
const TX_DATA_FIFO: usize = 0x20;
/// Receive status FIFO port (reads pop one frame's status).
const RX_STATUS_FIFO: usize = 0x40;
/// Transmit status FIFO port.
const TX_STATUS_FIFO: usize = 0x48;
const IRQ_CFG: usize = 0x54;
const INT_STS: usize = 0x58;
const INT_EN: usize = 0x5C;
const BYTE_TEST: usize = 0x64;
const TX_CFG: usize = 0x70;
const HW_CFG: usize = 0x74;
const RX_FIFO_INF: usize = 0x7C;
const TX_FIFO_INF: usize = 0x80;
const MAC_CSR_CMD: usize = 0xA4;
const MAC_CSR_DATA: usize = 0xA8;

/// What BYTE_TEST reads on a LAN9118 in 32-bit mode.
const BYTE_TEST_VALUE: u32 = 0x8765_4321;
/// HW_CFG soft reset; reads 1 until the reset is over.
const HW_CFG_SRST: u32 = 1 << 0;
/// IRQ_CFG: interrupt output enabled, active high, push-pull (QEMU inverts the line otherwise).
const IRQ_CFG_ENABLE_HIGH: u32 = (1 << 8) | (1 << 4) | (1 << 0);
/// INT_STS / INT_EN: the receive status FIFO holds more frames than FIFO_INT's level (0).
const INT_RSFL: u32 = 1 << 3;
/// TX_CFG: transmitter on; the transmit status FIFO may overrun (its entries are not needed).
const TX_CFG_ON_SAO: u32 = (1 << 1) | (1 << 2);
/// MAC_CSR_CMD: busy (start), read.
const CSR_BUSY: u32 = 1 << 31;
const CSR_READ: u32 = 1 << 30;
/// MAC CSR registers.
const MAC_CR: u32 = 1;
const MAC_ADDRH: u32 = 2;
const MAC_ADDRL: u32 = 3;
/// MAC_CR: receiver and transmitter on, full duplex. Promiscuous mode (set at reset) is
/// cleared, so the NIC takes frames for its own address and broadcasts only.
const MAC_CR_RUN: u32 = (1 << 2) | (1 << 3) | (1 << 20);
/// RX status: frame length (CRC included) in bits 16..29; error summary in bit 15.
const RX_STATUS_ERROR: u32 = 1 << 15;
/// TX command A: first and last segment; B: the frame length (the tag is unused).
const TX_CMD_A_FIRST_LAST: u32 = (1 << 13) | (1 << 12);
/// Bytes of the CRC the NIC appends to a received frame.
const CRC_LEN: usize = 4;
/// How often to look at a register that should change at once before giving up.
const POLL_LIMIT: u32 = 10_000;

/// The largest frame [`transmit`] takes (11-bit length fields, less the CRC).
pub const MAX_TX_FRAME: usize = 2044;

/// The NIC's device interrupt on mps2-an386 (QEMU hw/arm/mps2.c).
#[derive(Clone, Copy)]
pub struct Irq;

/// The interrupt number of [`Irq`].
pub const IRQ_NUMBER: u16 = 13;

// SAFETY: 13 is a valid device interrupt of this board (num-irq is 32).
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        IRQ_NUMBER
    }
}

fn read(offset: usize) -> u32 {
    // SAFETY: BASE + offset is a register of the LAN9118, which only this module touches.
    unsafe { read_volatile((BASE + offset) as *const u32) }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as for `read`.
    unsafe { write_volatile((BASE + offset) as *mut u32, value) }
}

/// Reads a MAC CSR register through MAC_CSR_CMD / MAC_CSR_DATA.
fn mac_read(register: u32) -> Option<u32> {
    write(MAC_CSR_CMD, CSR_BUSY | CSR_READ | register);
    wait_not_busy()?;
    Some(read(MAC_CSR_DATA))
}

fn mac_write(register: u32, value: u32) -> Option<()> {
    write(MAC_CSR_DATA, value);
    write(MAC_CSR_CMD, CSR_BUSY | register);
    wait_not_busy()
}

fn wait_not_busy() -> Option<()> {
    (0..POLL_LIMIT).any(|_| read(MAC_CSR_CMD) & CSR_BUSY == 0).then_some(())
}

/// Resets the NIC, reads its address, clears promiscuous mode, turns the receiver and
/// transmitter on and unmasks its interrupt. `None` if there is no LAN9118 (BYTE_TEST does not
/// read back) or it does not come out of reset.
pub fn init() -> Option<[u8; 6]> {
    if read(BYTE_TEST) != BYTE_TEST_VALUE {
        return None;
    }
    write(HW_CFG, HW_CFG_SRST);
    if !(0..POLL_LIMIT).any(|_| read(HW_CFG) & HW_CFG_SRST == 0) {
        return None;
    }
    let low = mac_read(MAC_ADDRL)?.to_le_bytes();
    let high = mac_read(MAC_ADDRH)?.to_le_bytes();
    let mac = [low[0], low[1], low[2], low[3], high[0], high[1]];
    write(INT_STS, u32::MAX);
    write(INT_EN, INT_RSFL);
    write(IRQ_CFG, IRQ_CFG_ENABLE_HIGH);
    write(TX_CFG, TX_CFG_ON_SAO);
    mac_write(MAC_CR, MAC_CR_RUN)?;
    // SAFETY: the handler is in the vector table (vectors.rs) and touches only INT_STS.
    unsafe { NVIC::unmask(Irq) };
    Some(mac)
}

/// Whether received frames wait in the FIFO.
pub fn frames_waiting() -> bool {
    (read(RX_FIFO_INF) >> 16) & 0xFF != 0
}

/// One received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The frame's length without the CRC. Bytes beyond the buffer given were read and
    /// dropped, so this may exceed what was copied.
    pub len: usize,
    /// The NIC flagged the frame as bad (error summary bit).
    pub error: bool,
}

/// Takes the next frame out of the FIFO into `buf` (as much as fits); `None` if none waits.
/// The whole frame always leaves the FIFO.
pub fn receive(buf: &mut [u8]) -> Option<Received> {
    if !frames_waiting() {
        return None;
    }
    let status = read(RX_STATUS_FIFO);
    let with_crc = ((status >> 16) & 0x3FFF) as usize;
    let len = with_crc.saturating_sub(CRC_LEN);
    let keep = len.min(buf.len());
    for word_index in 0..with_crc.div_ceil(4) {
        let word = read(RX_DATA_FIFO).to_le_bytes();
        let at = word_index * 4;
        if at < keep {
            let n = (keep - at).min(4);
            buf[at..at + n].copy_from_slice(&word[..n]);
        }
    }
    Some(Received { len, error: status & RX_STATUS_ERROR != 0 })
}

/// Sends one frame (at most [`MAX_TX_FRAME`] bytes; QEMU sends it when its last word is
/// written). Returns false, sending nothing, if the frame is too long or the transmit FIFO
/// never has room.
pub fn transmit(frame: &[u8]) -> bool {
    let len = frame.len();
    if len == 0 || len > MAX_TX_FRAME {
        return false;
    }
    let needed = (len.div_ceil(4) + 2) * 4;
    if !(0..POLL_LIMIT).any(|_| (read(TX_FIFO_INF) & 0xFFFF) as usize >= needed) {
        return false;
    }
    write(TX_DATA_FIFO, TX_CMD_A_FIRST_LAST | len as u32);
    write(TX_DATA_FIFO, len as u32);
    let mut words = frame.chunks_exact(4);
    for word in &mut words {
        write(TX_DATA_FIFO, u32::from_le_bytes([word[0], word[1], word[2], word[3]]));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 4];
        last[..rest.len()].copy_from_slice(rest);
        write(TX_DATA_FIFO, u32::from_le_bytes(last));
    }
    // The status entries are not needed; keep their FIFO from filling up.
    for _ in 0..4 {
        if (read(TX_FIFO_INF) >> 16) & 0xFF == 0 {
            break;
        }
        let _ = read(TX_STATUS_FIFO);
    }
    true
}

/// LAN9118 interrupt handler (vector table entry 13): acknowledges every cause, which lowers
/// the line; the main loop, woken from WFI, looks at the FIFOs itself.
pub extern "C" fn on_interrupt() {
    write(INT_STS, read(INT_STS));
}
