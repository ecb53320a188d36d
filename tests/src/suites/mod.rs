//! The suites, one module per operation family. Each `pub fn` takes a fresh
//! [`crate::harness::TestToken`] and panics on the first wrong answer.

mod attacker;
mod auth;
mod frames;
mod lifecycle;
mod rotation;
mod signing;
mod symmetric;

pub use attacker::*;
pub use auth::*;
pub use frames::*;
pub use lifecycle::*;
pub use rotation::*;
pub use signing::*;
pub use symmetric::*;
