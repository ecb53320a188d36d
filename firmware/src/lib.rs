//! Pocket KMS token core: a pure state machine, `Token::handle_payload(request) -> response`,
//! over one [`Platform`] seam with three parts: NOR flash
//! ([`embedded_storage::nor_flash::NorFlash`]), a cryptographic RNG ([`rand_core::RngCore`] +
//! [`rand_core::CryptoRng`]) and a [`Board`] (clock, user presence, facts about the platform).
//! The same core runs in host tests, in the QEMU firmware and on the USB token.
//!
//! Boards feed received bytes to a [`serve::FrameServer`], which frames them, calls the token
//! and hands back encoded response frames.
//!
//! Inside, per request ([`token`]): the [`gate`] decides (with [`auth`]'s session and
//! [`policy`]'s key policies and grants), [`dispatch`] runs the operation (one module per
//! family in [`ops`], plus the handlers of [`auth`], [`policy`] and [`audit`]), and [`audit`]
//! records it. [`state`] holds what operations share (the typed record layer, the clock, key
//! loading and saving as a [`key::LoadedKey`], scheduled work); [`records`] declares every kind
//! of record once; [`store`] is the power-cut-safe NOR-flash record store (format:
//! `docs/flash-format.md`); [`crypto`] wraps key material and implements the blob format,
//! ECDSA P-256 and HMAC. [`mock_flash`] (tests and `std`) is a RAM NOR flash with power-cut
//! injection.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
// Every match over an enum names its variants (tests aside): a new variant is a compile error
// wherever it needs handling, never a silent `_` arm.
#![cfg_attr(not(test), warn(clippy::wildcard_enum_match_arm))]
// Operations return `Result<_, Error>` where `Error` carries its message inline (no heap on
// no_std): 176 bytes, moved only on the error path.
#![allow(clippy::result_large_err)]

pub mod audit;
pub mod auth;
pub mod backup;
pub mod board;
pub mod caller;
pub mod crypto;
pub mod dispatch;
pub mod error;
pub mod gate;
pub mod key;
#[cfg(any(test, feature = "std"))]
pub mod mock_flash;
pub mod ops;
pub mod platform;
pub mod policy;
pub mod records;
pub mod selftest;
pub mod serve;
pub mod session;
pub mod state;
pub mod store;
pub mod token;

pub use board::{Board, BoardInfo, TestBoard, UserPresence};
pub use platform::{Parts, Platform};
pub use serve::FrameServer;
pub use token::Token;

/// Firmware version reported by Hello and GetInfo.
pub const FIRMWARE_VERSION: &str = env!("CARGO_PKG_VERSION");
