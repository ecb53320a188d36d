//! Pocket KMS on-token benchmarks for `qemu-system-arm -M mps2-an386 -icount shift=0`.
//!
//! Counts instructions with SysTick (see [`counter`]) for the P-256 backends, AES-256-GCM,
//! HMAC-SHA256, the asymmetric key specs (with their peak stack, see [`stack`] and [`keyspecs`])
//! and token operations through the real core, cross-checks the two P-256 backends
//! and the token's AES-256-GCM against RustCrypto's `aes-gcm` (which sealed earlier data), prints
//! one record per line over semihosting (see [`report`]) and exits through semihosting: 0 when
//! every correctness check passed, 1 otherwise. Everything is seeded with a fixed seed, so
//! every figure repeats exactly from run to run.
#![no_std]
#![no_main]

mod counter;
mod crypto;
mod keyspecs;
/// The QEMU token's own NOR flash over the board's PSRAM: the bench runs on the same board.
#[path = "../../../qemu/src/nor_flash.rs"]
#[allow(dead_code)]
mod nor_flash;
mod report;
mod stack;
mod token;

use cortex_m_rt::{entry, exception, ExceptionFrame};

#[entry]
fn main() -> ! {
    let Some(peripherals) = cortex_m::Peripherals::take() else { semihosting::process::exit(3) };
    counter::start(peripherals.SYST);
    let (per_tick_x1000, overhead) = counter::calibrate();
    report::info("instructions_per_tick_x1000", format_args!("{per_tick_x1000}"));
    report::info("measurement_overhead_ticks", format_args!("{overhead}"));
    report::info("stack_harness_bytes", format_args!("{}", stack::calibrate()));
    report::info("exact_to_the_instruction", format_args!("{}", counter::is_exact()));
    report::info("p256_active_backend", format_args!("{}", pkms_p256::Backend::ACTIVE.name()));

    let mut ok = crypto::p256_cross_check();
    ok &= crypto::aes_gcm_cross_check();
    crypto::p256();
    crypto::aes_gcm();
    crypto::aes_gcm_parts();
    crypto::hmac_sha256();
    ok &= keyspecs::run();
    ok &= token::run();
    report::info("exact_to_the_instruction_at_end", format_args!("{}", counter::is_exact()));
    semihosting::println!("DONE");
    semihosting::process::exit(if ok { 0 } else { 1 })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    semihosting::eprintln!("PANIC {info}");
    semihosting::process::exit(101)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    semihosting::eprintln!("HARDFAULT pc={:#010x} lr={:#010x}", frame.pc(), frame.lr());
    semihosting::process::exit(102)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    semihosting::eprintln!("UNEXPECTED IRQ {irqn}");
    semihosting::process::exit(103)
}
