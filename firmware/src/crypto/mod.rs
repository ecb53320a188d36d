//! Cryptography of the token: key wrapping under the device root key, ciphertext blobs,
//! ECDSA P-256 and HMAC. All of it RustCrypto; secrets live in zeroizing types.

pub mod blob;
pub mod mac;
pub mod signing;
pub mod wrap;

pub use wrap::{DeviceKeys, Material};
