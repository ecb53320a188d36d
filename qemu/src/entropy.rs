//! The boot seed: 32 random bytes the launcher has QEMU's generic loader place in RAM before the
//! CPU runs (`-device loader,file=SEED,addr=0x203fff00,force-raw=on`, a region memory.x keeps
//! out of every section). The firmware copies them into a ChaCha20 seed and wipes them at once.
//! Emulator only: the host made the seed and can read guest RAM.
//!
//! QEMU keeps a loader image aimed at RAM and writes it again at every system reset, so a reset
//! would hand the firmware the same seed again — the same ChaCha20 stream, repeated nonces. The
//! launcher runs QEMU with `-no-reboot` (a reset ends QEMU; the next call starts a new one with a
//! new seed). Against a QEMU started without it, the firmware leaves a mark of the seed it used
//! next to the seed (a one-way function of it: ChaCha20 output on a stream the RNG never uses);
//! a reset leaves that mark alone, a new QEMU starts with zeroed RAM, and a seed whose mark is
//! already there is refused.

use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{compiler_fence, Ordering};

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use zeroize::Zeroize;

use crate::host::{self, exit_code};

/// Bytes of the seed the launcher gives.
pub const SEED_LEN: usize = 32;

/// The ChaCha20 stream the mark is drawn from; the RNG uses stream 0.
const MARK_STREAM: u64 = 0x7573_6564_5f73_6565; // "used_see"

/// Why there is no entropy: QEMU placed nothing (or zeros) in the region.
pub const NO_SEED: &str =
    "no entropy: QEMU placed no boot seed (pkms passes one through -device loader); keys and \
                           random numbers are refused";
/// Why there is no entropy: the seed in the region is one this QEMU already used.
pub const SEED_REUSED: &str =
    "no entropy: this boot seed was used before (a system reset placed it again); keys and \
                               random numbers are refused";

/// The boot seed region as memory.x lays it out (256 bytes; the rest is unused).
#[repr(C)]
struct Region {
    /// Where QEMU's loader puts the seed; zeroed by the firmware once read.
    seed: [u8; SEED_LEN],
    /// The mark of the last seed used since QEMU started (zero in a new QEMU).
    used_mark: [u8; SEED_LEN],
}

extern "C" {
    /// Defined in memory.x: the start of the BOOTSEED region, outside every section.
    static mut _boot_seed_region: Region;
}

/// The token's RNG: ChaCha20 seeded from the boot seed, or no RNG at all when there was none.
pub struct BootRng {
    /// Seeded from a fresh boot seed; never drawn from while `missing` is set.
    rng: ChaCha20Rng,
    /// Why there is no usable seed: the board reports it ([`crate::board::QemuBoard`]) and the
    /// token core draws nothing. Drawing anyway ends QEMU with [`exit_code::NO_ENTROPY`] rather
    /// than hand out predictable bytes.
    missing: Option<&'static str>,
}

impl BootRng {
    fn without_entropy(why: &'static str) -> Self {
        BootRng { rng: ChaCha20Rng::from_seed([0; SEED_LEN]), missing: Some(why) }
    }

    /// Why there is no entropy, if there is none.
    pub fn missing(&self) -> Option<&'static str> {
        self.missing
    }

    fn seeded(&mut self) -> &mut ChaCha20Rng {
        if let Some(why) = self.missing {
            defmt::error!("randomness drawn without entropy ({=str}): exiting", why);
            host::exit(exit_code::NO_ENTROPY)
        }
        &mut self.rng
    }
}

impl RngCore for BootRng {
    fn next_u32(&mut self) -> u32 {
        self.seeded().next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.seeded().next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.seeded().fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.seeded().try_fill_bytes(dest)
    }
}

impl CryptoRng for BootRng {}

/// Takes the boot seed out of RAM: reads it, wipes it at once, and seeds ChaCha20 from it unless
/// it is all zeros (no seed placed) or carries the mark of a seed already used. Call once, at
/// boot, before anything else touches the region.
pub fn take_boot_seed() -> BootRng {
    let region = addr_of_mut!(_boot_seed_region);
    // SAFETY: the region is reserved in memory.x outside every section, so nothing else in the
    // program refers to it; this runs once, single-threaded, before interrupts are served. Volatile
    // accesses: QEMU, not the program, wrote the seed.
    let mut seed: [u8; SEED_LEN] = unsafe { addr_of!((*region).seed).read_volatile() };
    unsafe { addr_of_mut!((*region).seed).write_volatile([0; SEED_LEN]) };
    compiler_fence(Ordering::SeqCst);

    if seed == [0; SEED_LEN] {
        return BootRng::without_entropy(NO_SEED);
    }
    let mut mark = [0u8; SEED_LEN];
    let mut marker = ChaCha20Rng::from_seed(seed);
    marker.set_stream(MARK_STREAM);
    marker.fill_bytes(&mut mark);
    let rng = ChaCha20Rng::from_seed(seed);
    seed.zeroize();
    // SAFETY: as above.
    let used: [u8; SEED_LEN] = unsafe { addr_of!((*region).used_mark).read_volatile() };
    if used == mark {
        mark.zeroize();
        return BootRng::without_entropy(SEED_REUSED);
    }
    unsafe { addr_of_mut!((*region).used_mark).write_volatile(mark) };
    mark.zeroize();
    BootRng { rng, missing: None }
}
