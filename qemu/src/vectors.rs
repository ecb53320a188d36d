//! The device interrupt vector table (`__INTERRUPTS`, placed by cortex-m-rt's link.x after the
//! core exceptions). mps2-an386 has 32 device interrupts (QEMU hw/arm/mps2.c `num-irq`); only
//! UART0's two and the LAN9118's are used, every other one goes to `DefaultHandler` (which exits
//! QEMU).

use crate::{lan9118, uart};

/// One vector table entry.
#[repr(C)]
pub union Vector {
    handler: unsafe extern "C" fn(),
    reserved: usize,
}

extern "C" {
    fn DefaultHandler();
}

const DEVICE_IRQS: usize = 32;

#[link_section = ".vector_table.interrupts"]
#[no_mangle]
#[used]
static __INTERRUPTS: [Vector; DEVICE_IRQS] = {
    let mut table = [Vector { handler: DefaultHandler }; DEVICE_IRQS];
    table[uart::Irq::Uart0Rx as usize] = Vector { handler: uart::on_rx_interrupt };
    table[uart::Irq::Uart0Tx as usize] = Vector { handler: uart::on_tx_interrupt };
    table[lan9118::IRQ_NUMBER as usize] = Vector { handler: lan9118::on_interrupt };
    table
};

impl Clone for Vector {
    fn clone(&self) -> Self {
        *self
    }
}
impl Copy for Vector {}
