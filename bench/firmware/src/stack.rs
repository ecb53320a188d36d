//! Peak stack of one operation, by stack painting: [`measure`] fills the 512 KiB below its own
//! frame with a pattern, runs the operation (counting its instructions as [`counter::measure`]
//! does), then finds the lowest word that no longer holds the pattern. The figure is the depth
//! below the caller's frame, minus what an empty operation shows (the harness's own frames), so
//! it is what the operation itself needs, to within the few dozen bytes by which the generic
//! harness's instantiations differ. A word the operation wrote with exactly the pattern
//! would be missed; with a 32-bit pattern that only understates by the words below it, if ever.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::counter;

const PAINT: u32 = 0xC5C5_C5C5;
const DEPTH: usize = 512 * 1024;

/// Depth an empty operation shows: the harness's own frames.
static BASELINE: AtomicUsize = AtomicUsize::new(0);

#[inline(always)]
fn sp() -> usize {
    let sp: usize;
    // SAFETY: reads the stack pointer register only.
    unsafe { core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// Raw depth of `f` below this frame (harness frames included).
#[inline(never)]
fn raw<T>(f: impl FnOnce() -> T) -> (u64, usize, T) {
    let top = (sp() - 64) & !3;
    let bottom = top - DEPTH;
    // SAFETY: [bottom, top) is RAM below the live stack (mps2-an386 has 4 MiB of RAM and the
    // stack starts at its top); nothing lives there while this frame is the deepest one.
    unsafe {
        let mut p = bottom;
        while p < top {
            core::ptr::write_volatile(p as *mut u32, PAINT);
            p += 4;
        }
    }
    let (instructions, result) = counter::measure(f);
    let mut p = bottom;
    // SAFETY: the same region, read back.
    unsafe {
        while p < top && core::ptr::read_volatile(p as *const u32) == PAINT {
            p += 4;
        }
    }
    (instructions, top - p, result)
}

/// Measures the harness on an empty operation; call once after the counter is calibrated.
pub fn calibrate() -> usize {
    let (_, depth, ()) = raw(|| ());
    BASELINE.store(depth, Ordering::Relaxed);
    depth
}

/// Runs `f`; returns (instructions, peak stack bytes it used, its result).
pub fn measure<T>(f: impl FnOnce() -> T) -> (u64, usize, T) {
    let (instructions, depth, result) = raw(f);
    (instructions, depth.saturating_sub(BASELINE.load(Ordering::Relaxed)), result)
}
