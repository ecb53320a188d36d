//! Cryptography of the token: key wrapping under the device root key, ciphertext blobs,
//! ECDSA P-256 and HMAC. RustCrypto throughout, except AES-256-GCM's composition and GHASH
//! ([`gcm`], built on the `aes` crate for speed on the Cortex-M4); secrets live in zeroizing types.

pub mod asym;
pub mod blob;
pub mod gcm;
pub mod keccak;
pub mod mac;
pub mod mldsa;
pub mod mlkem;
pub mod shake;
pub mod signing;
pub mod wrap;

pub use wrap::{DeviceKeys, Material};
