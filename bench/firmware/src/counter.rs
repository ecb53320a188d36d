//! Instruction counting with SysTick.
//!
//! Under `qemu-system-arm -icount shift=0` QEMU advances its virtual clock by exactly 1 ns per
//! executed instruction, and SysTick (clock source: core) counts that virtual clock. SysTick is a
//! 24-bit down counter: it runs with reload 0xFF_FFFF and the SysTick interrupt counts the wraps,
//! so [`now`] is a 64-bit monotonic tick count. [`calibrate`] measures how many instructions one
//! tick is (by timing a loop of known length) and [`measure`] reports instructions, minus the
//! cost of the measurement itself. Results are deterministic: the same binary gives the same
//! figures on every run.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;

const RELOAD: u32 = 0x00FF_FFFF;

static WRAPS: AtomicU32 = AtomicU32::new(0);
static OVERHEAD: AtomicU32 = AtomicU32::new(0);
static INSTRUCTIONS_PER_TICK_X1000: AtomicU32 = AtomicU32::new(1000);

/// Starts SysTick from the core clock with the widest reload and its wrap interrupt.
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Ticks since [`start`]; monotonic across counter wraps.
#[inline(never)]
pub fn now() -> u64 {
    cortex_m::interrupt::free(|_| {
        let mut wraps = WRAPS.load(Ordering::Relaxed);
        let mut current = SYST::get_current();
        if SCB::is_pendst_pending() {
            // The counter wrapped and the interrupt waits for this critical section to end.
            wraps += 1;
            current = SYST::get_current();
        }
        (u64::from(wraps) << 24) | u64::from(RELOAD - current)
    })
}

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// A loop of exactly `4 * n + 1` instructions after the set-up (`subs`, `nop`, `nop`, `bne`).
#[inline(never)]
fn known_loop(n: u32) {
    // SAFETY: register-only arithmetic and a local branch; no memory is touched.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, {n}, #1",
            "nop",
            "nop",
            "bne 2b",
            n = inout(reg) n => _,
            options(nomem, nostack),
        );
    }
}

/// Measures the fixed cost of a measurement and how many instructions one tick is; call once
/// after [`start`]. Returns (instructions per tick × 1000, overhead in ticks).
pub fn calibrate() -> (u32, u32) {
    let t0 = now();
    let t1 = now();
    let overhead = (t1 - t0) as u32;
    OVERHEAD.store(overhead, Ordering::Relaxed);
    const N: u32 = 1_000_000;
    let t0 = now();
    known_loop(N);
    let t1 = now();
    let ticks = (t1 - t0).saturating_sub(u64::from(overhead)).max(1);
    let per_tick_x1000 = ((u64::from(4 * N + 1) * 1000 + ticks / 2) / ticks) as u32;
    INSTRUCTIONS_PER_TICK_X1000.store(per_tick_x1000, Ordering::Relaxed);
    (per_tick_x1000, overhead)
}

/// Converts ticks to instructions with the calibrated ratio.
pub fn to_instructions(ticks: u64) -> u64 {
    let ratio = u64::from(INSTRUCTIONS_PER_TICK_X1000.load(Ordering::Relaxed));
    (ticks * ratio + 500) / 1000
}

/// Runs `f` and returns (instructions it took, its result), without the measurement's own cost.
pub fn measure<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let t0 = now();
    let result = core::hint::black_box(f());
    let t1 = now();
    let overhead = u64::from(OVERHEAD.load(Ordering::Relaxed));
    (to_instructions((t1 - t0).saturating_sub(overhead)), result)
}
