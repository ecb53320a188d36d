//! The raw on-chip flash: embassy-nrf's NVMC driver at absolute addresses, under the rule
//! checking of [`pkms_nrf52840_support::nvmc_flash::NvmcRegion`].

use embassy_nrf::nvmc::{Nvmc, PAGE_SIZE};
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use pkms_nrf52840_support::nvmc_flash::RawNvmc;

/// The NVMC peripheral. Its own errors can only report rule violations that `NvmcRegion` has
/// already excluded; any real failure shows up in `NvmcRegion`'s read-back as a `Verify` error.
pub struct OnChipFlash(Nvmc<'static>);

impl OnChipFlash {
    /// Takes the NVMC.
    pub fn new(nvmc: Nvmc<'static>) -> Self {
        OnChipFlash(nvmc)
    }
}

impl RawNvmc for OnChipFlash {
    fn read(&mut self, address: u32, buf: &mut [u8]) {
        if self.0.read(address, buf).is_err() {
            buf.fill(0);
        }
    }

    fn write_words(&mut self, address: u32, data: &[u8]) {
        let _ = NorFlash::write(&mut self.0, address, data);
    }

    fn erase_page(&mut self, address: u32) {
        let _ = NorFlash::erase(&mut self.0, address, address + PAGE_SIZE as u32);
    }
}
