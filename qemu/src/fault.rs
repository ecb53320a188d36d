//! Panics, HardFaults and stray interrupts end QEMU through semihosting with a non-zero exit
//! code (cortex-m-rt's default HardFault would spin forever and burn a host CPU). Each logs one
//! defmt line first, unless the failure happened while logging (then it exits at once).

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m_rt::{exception, ExceptionFrame};

use crate::host::{self, exit_code};

static FAILING: AtomicBool = AtomicBool::new(false);

/// True the first time; later (a fault while reporting a fault) false.
fn first_failure() -> bool {
    !FAILING.swap(true, Ordering::AcqRel)
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    if first_failure() {
        match info.location() {
            Some(at) => defmt::error!("panic at {=str}:{=u32}", at.file(), at.line()),
            None => defmt::error!("panic"),
        }
    }
    host::exit(exit_code::PANIC)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    if first_failure() {
        defmt::error!("HardFault: pc={=u32:#010x} lr={=u32:#010x}", frame.pc(), frame.lr());
    }
    host::exit(exit_code::HARD_FAULT)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if first_failure() {
        defmt::error!("unexpected interrupt {=i16}", irqn);
    }
    host::exit(exit_code::UNEXPECTED_IRQ)
}
