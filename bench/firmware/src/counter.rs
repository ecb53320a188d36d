//! Instruction counting with SysTick.
//!
//! Under `qemu-system-arm -icount shift=0` QEMU advances its virtual clock by exactly 1 ns per
//! executed instruction, and SysTick (clock source: core) counts that virtual clock. SysTick is a
//! 24-bit down counter: it runs with reload 0xFF_FFFF and the SysTick interrupt counts the wraps,
//! so [`now`] is a 64-bit monotonic tick count. [`calibrate`] measures how many instructions one
//! tick is (by timing a loop of known length) and [`measure`] reports instructions, minus the
//! cost of the measurement itself. Results are deterministic: the same binary gives the same
//! figures on every run.
//!
//! One tick is 40 instructions (SysTick runs at mps2-an386's 25 MHz, the virtual clock at one
//! instruction per ns). To count to the instruction rather than to the tick, [`measure`] uses a
//! vernier: a loop whose body is exactly 41 instructions reads the counter once per iteration, so
//! successive reads fall one instruction later within a tick; the iteration whose read sees the
//! tick count jump by 2 instead of 1 read the counter exactly on a tick edge. A measurement starts
//! on such an edge and, after the operation, counts how many 41-instruction iterations pass until
//! the next edge, which pins the end to the instruction. The glue code between the mark and the
//! operation (a few moves) is counted with the operation. [`calibrate`] checks the scheme on a
//! loop of known length and falls back to tick resolution if it does not hold.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;

const RELOAD: u32 = 0x00FF_FFFF;

static WRAPS: AtomicU32 = AtomicU32::new(0);
static OVERHEAD: AtomicU32 = AtomicU32::new(0);
static INSTRUCTIONS_PER_TICK_X1000: AtomicU32 = AtomicU32::new(1000);
/// Whether [`measure`] counts to the instruction (vernier) or to the tick.
static EXACT: AtomicBool = AtomicBool::new(false);
/// Raw vernier result of an empty measurement (subtracted from every exact measurement).
static EXACT_OFFSET: AtomicU32 = AtomicU32::new(0);
/// Set if a vernier loop ran out of iterations (it cannot while SysTick runs).
static VERNIER_FAILED: AtomicBool = AtomicBool::new(false);

const SYST_CVR: usize = 0xE000_E018;
const TICK_INSTRUCTIONS: u64 = 40;
const VERNIER_PERIOD: u64 = 41;

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

/// Reads SysTick's current value in a loop of exactly 41 instructions per iteration until two
/// successive reads differ by 2 ticks, i.e. until a read lands exactly on a tick edge. Returns
/// that read and the number of iterations (at most 41 while SysTick runs; 200 means it gave up).
#[inline(always)]
fn vernier() -> (u32, u32) {
    let value: u32;
    let iterations: u32;
    // SAFETY: reads the SysTick current-value register (always mapped on a Cortex-M) and uses
    // only registers; no stack, no writes.
    unsafe {
        core::arch::asm!(
            "ldr {prev}, [{cvr}]",
            "movs {n}, #0",
            "2:",
            ".rept 32",
            "nop",
            ".endr",
            "adds {n}, {n}, #1",
            "cmp {n}, #200",
            "bhs 3f",
            "ldr {v}, [{cvr}]",
            "subs {d}, {prev}, {v}",
            "lsls {d}, {d}, #8",
            "mov {prev}, {v}",
            "cmp {d}, #0x200",
            "blo 2b",
            "3:",
            cvr = in(reg) SYST_CVR,
            prev = out(reg) _,
            v = out(reg) value,
            d = out(reg) _,
            n = out(reg) iterations,
            options(nostack, readonly),
        );
    }
    (value, iterations)
}

/// Ticks since [`start`] for a counter value read with interrupts masked.
fn ticks_at(current: u32) -> u64 {
    let mut wraps = WRAPS.load(Ordering::Relaxed);
    if SCB::is_pendst_pending() && current > RELOAD / 2 {
        // The counter reloaded before this read and the wrap interrupt is still pending.
        wraps += 1;
    }
    (u64::from(wraps) << 24) | u64::from(RELOAD - current)
}

/// Aligns to a tick edge; returns the tick count there.
#[inline(never)]
fn mark_start() -> u64 {
    cortex_m::interrupt::free(|_| {
        let (value, n) = vernier();
        if n >= 200 {
            VERNIER_FAILED.store(true, Ordering::Relaxed);
        }
        ticks_at(value)
    })
}

/// Finds the next tick edge; returns the tick count there and the iterations it took.
#[inline(never)]
fn mark_end() -> (u64, u32) {
    cortex_m::interrupt::free(|_| {
        let (value, n) = vernier();
        if n >= 200 {
            VERNIER_FAILED.store(true, Ordering::Relaxed);
        }
        (ticks_at(value), n)
    })
}

/// Instructions between the two marks, plus a constant (the marks' own cost).
fn exact_raw<T>(f: impl FnOnce() -> T) -> (i64, T) {
    let t0 = mark_start();
    let result = core::hint::black_box(f());
    let (t1, n) = mark_end();
    let raw = (t1 - t0) as i64 * TICK_INSTRUCTIONS as i64 - i64::from(n) * VERNIER_PERIOD as i64;
    (raw, result)
}

/// [`exact_raw`] of an empty operation. One function for every call: each closure type is its own
/// instantiation of `exact_raw`, whose glue around the marks can differ by a couple of
/// instructions, so comparing two instantiations would fail the self-check for codegen reasons.
#[inline(never)]
fn empty_raw() -> i64 {
    exact_raw(|| ()).0
}

/// [`exact_raw`] of `known_loop(n)`, one instantiation for every `n` (see [`empty_raw`]).
#[inline(never)]
fn loop_raw(n: u32) -> i64 {
    exact_raw(|| known_loop(n)).0
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

    // Instruction-exact counting: calibrate the vernier's constant on an empty operation, then
    // check it on loops of known length (their difference must be exactly 4 × 1,000).
    if u64::from(per_tick_x1000) == TICK_INSTRUCTIONS * 1000 {
        let offset = empty_raw();
        let a = loop_raw(1000);
        let b = loop_raw(2000);
        let again = empty_raw();
        let consistent =
            offset >= 0 && again == offset && b - a == 4000 && !VERNIER_FAILED.load(Ordering::Relaxed);
        if consistent {
            EXACT_OFFSET.store(offset as u32, Ordering::Relaxed);
            EXACT.store(true, Ordering::Relaxed);
        }
    }
    (per_tick_x1000, overhead)
}

/// Whether figures are exact to the instruction (else to the tick).
pub fn is_exact() -> bool {
    EXACT.load(Ordering::Relaxed) && !VERNIER_FAILED.load(Ordering::Relaxed)
}

/// Converts ticks to instructions with the calibrated ratio.
pub fn to_instructions(ticks: u64) -> u64 {
    let ratio = u64::from(INSTRUCTIONS_PER_TICK_X1000.load(Ordering::Relaxed));
    (ticks * ratio + 500) / 1000
}

/// Runs `f` and returns (instructions it took, its result), without the measurement's own cost.
pub fn measure<T>(f: impl FnOnce() -> T) -> (u64, T) {
    if EXACT.load(Ordering::Relaxed) {
        let (raw, result) = exact_raw(f);
        let offset = i64::from(EXACT_OFFSET.load(Ordering::Relaxed));
        return ((raw - offset).max(0) as u64, result);
    }
    let t0 = now();
    let result = core::hint::black_box(f());
    let t1 = now();
    let overhead = u64::from(OVERHEAD.load(Ordering::Relaxed));
    (to_instructions((t1 - t0).saturating_sub(overhead)), result)
}
