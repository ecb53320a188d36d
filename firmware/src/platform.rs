//! The one seam between the token core and what it runs on.
//!
//! A board names its three parts once, as the associated types of a [`Platform`]:
//!
//! ```text
//! enum Qemu {}
//! impl Platform for Qemu {
//!     type Flash = QemuNorFlash;
//!     type Rng = ChaCha20Rng;
//!     type Board = QemuBoard;
//! }
//! let token = Token::<Qemu>::new(flash, rng, board);
//! ```
//!
//! Code that is generic over its parts (tests, the host's in-process token) can use
//! [`Parts`] instead of declaring a type.

use core::marker::PhantomData;

use embedded_storage::nor_flash::NorFlash;
use rand_core::{CryptoRng, RngCore};

use crate::board::Board;

/// What a token runs on: NOR flash for its store, a cryptographic RNG, and a board (clock,
/// user presence, facts about the platform).
pub trait Platform {
    /// The flash the key store lives in.
    type Flash: NorFlash;
    /// The source of every key, nonce and salt.
    type Rng: RngCore + CryptoRng;
    /// Clock, button and platform facts.
    type Board: Board;
}

/// A [`Platform`] made of any flash `F`, RNG `R` and board `B`.
pub struct Parts<F, R, B>(PhantomData<(F, R, B)>);

impl<F: NorFlash, R: RngCore + CryptoRng, B: Board> Platform for Parts<F, R, B> {
    type Flash = F;
    type Rng = R;
    type Board = B;
}
