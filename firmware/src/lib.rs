//! Pocket KMS token core: a pure state machine, `Token::handle_payload(request) -> response`,
//! over three seams: NOR flash ([`embedded_storage::nor_flash::NorFlash`]), a cryptographic RNG
//! ([`rand_core::RngCore`] + [`rand_core::CryptoRng`]) and a [`Board`] (clock, user presence,
//! facts about the platform). The same core runs in host tests, in the QEMU firmware and on the
//! USB token.
//!
//! Boards feed received bytes to a [`serve::FrameServer`], which frames them, calls the token
//! and hands back encoded response frames.
//!
//! Inside: [`token`] dispatches each request to one module per operation family in [`ops`];
//! [`state`] holds what they share (clock, key loading and saving, checks, scheduled work);
//! [`store`] is the power-cut-safe NOR-flash record store (format: `docs/flash-format.md`);
//! [`records`] is what is stored; [`crypto`] wraps key material and implements the blob
//! format, ECDSA P-256 and HMAC. [`mock_flash`] (tests and `std`) is a RAM NOR flash with
//! power-cut injection.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
// Operations return `Result<_, Error>` where `Error` carries its message inline (no heap on
// no_std): 176 bytes, moved only on the error path.
#![allow(clippy::result_large_err)]

pub mod audit;
pub mod auth;
pub mod board;
pub mod crypto;
pub mod error;
#[cfg(any(test, feature = "std"))]
pub mod mock_flash;
pub mod ops;
pub mod policy;
pub mod records;
pub mod serve;
pub mod state;
pub mod store;
pub mod token;

pub use board::{Board, BoardInfo, UserPresence};
pub use serve::FrameServer;
pub use token::Token;

/// Firmware version reported by Hello and GetInfo.
pub const FIRMWARE_VERSION: &str = env!("CARGO_PKG_VERSION");
