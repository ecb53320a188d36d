//! Uptime from SysTick: one interrupt every [`TICK_MS`] milliseconds, plus the elapsed part of
//! the current tick read from the counter. QEMU drives SysTick from its virtual clock (host time
//! unless `-icount` is given), so this is wall-clock uptime of the emulated board.

use core::cell::Cell;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use critical_section::Mutex;

/// Processor clock of mps2-an386 in QEMU (hw/arm/mps2.c SYSCLK_FRQ), which SysTick counts when
/// its clock source is the core clock.
const CPU_HZ: u32 = 25_000_000;
/// Milliseconds per SysTick interrupt. The tick only wakes an idle token to check its idle
/// timeout ([`uptime_ms`] reads the elapsed part of a tick from the counter, so its resolution is
/// 1 ms whatever the tick), so a slow tick keeps an idle token's host CPU use low
/// (docs/benchmarks.md). At most 670 ms (24-bit counter at 25 MHz).
pub const TICK_MS: u32 = 500;
const CYCLES_PER_TICK: u32 = CPU_HZ / 1000 * TICK_MS;
const CYCLES_PER_MS: u32 = CPU_HZ / 1000;

static TICKS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

/// Starts SysTick. Call once at boot.
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CYCLES_PER_TICK - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Milliseconds since [`start`], monotonic.
pub fn uptime_ms() -> u64 {
    critical_section::with(|cs| {
        let mut ticks = TICKS.borrow(cs).get();
        let mut current = SYST::get_current();
        if SCB::is_pendst_pending() {
            // The counter wrapped and the tick interrupt waits for this critical section to end.
            ticks += 1;
            current = SYST::get_current();
        }
        let elapsed_cycles = (CYCLES_PER_TICK - 1).saturating_sub(current);
        ticks * u64::from(TICK_MS) + u64::from(elapsed_cycles / CYCLES_PER_MS)
    })
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let ticks = TICKS.borrow(cs);
        ticks.set(ticks.get() + 1);
    });
}
