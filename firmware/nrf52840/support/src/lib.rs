//! The hardware-independent half of the nRF52840 token firmware, kept apart so that it runs and is
//! tested on the host:
//!
//! * [`link`]: the USB CDC-ACM packet loop between the USB endpoints and the token core's
//!   [`pkms_firmware::FrameServer`] (sessions, packetising responses, zero-length packets);
//! * [`nvmc_flash`]: the on-chip flash region behind `NorFlash`, with the NVMC's alignment, page
//!   and bit rules checked before the hardware is touched;
//! * [`drbg`]: a ChaCha20 DRBG seeded and reseeded from a hardware TRNG, whose output passes
//!   the SP 800-90B health tests of [`entropy_health`] first;
//! * [`presence`]: the button press (debounced, with a timeout) behind `Board::user_presence`.
//!
//! The board binary (`pkms-nrf52840`) only adapts embassy-nrf peripherals to the small traits
//! defined here.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod drbg;
pub mod entropy_health;
pub mod link;
pub mod nvmc_flash;
pub mod presence;
