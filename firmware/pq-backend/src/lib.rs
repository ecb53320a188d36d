//! Post-quantum keys for Pocket KMS, held as seeds and used without a heap:
//!
//! * [`mldsa`]: ML-DSA-44/65/87 (FIPS 204) key generation from ξ, signing (hedged or
//!   deterministic, raw message or external μ) and verification, with the matrix sampled per
//!   entry or kept in a lent buffer.
//! * [`mlkem`]: ML-KEM-512/768/1024 (FIPS 203) encapsulation key, encapsulation and
//!   decapsulation from the seed d ‖ z, with constant-time implicit rejection.
//! * [`shake`] and [`keccak`]: SHAKE128/256 and SHA3-256/512 on a bit-interleaved Keccak-f[1600]
//!   for 32-bit cores.
//!
//! A crate of its own so that a size-optimised board (the nRF52840 builds at opt-level "z") can
//! still build this at full speed: at "z" ML-DSA is several times slower and needs much more
//! stack (docs/benchmarks.md, "The asymmetric key specs"). Every output is checked in tests against the RustCrypto `ml-dsa` and
//! `ml-kem` crates, and (through the firmware's `crypto::asym` tests) python `cryptography`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod keccak;
pub mod mldsa;
pub mod mlkem;
pub mod shake;
