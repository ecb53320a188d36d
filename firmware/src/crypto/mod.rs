//! Cryptography of the token: key wrapping under the device root key, ciphertext blobs,
//! ECDSA P-256 and HMAC, and [`asym`], the one entry point for every asymmetric key spec
//! (P-256, secp256k1, P-384, Ed25519, ML-DSA, ML-KEM). RustCrypto throughout, except AES-256-GCM's
//! composition and GHASH ([`gcm`], built on the `aes` crate for speed on the Cortex-M4) and the
//! post-quantum schemes (`pkms-pq`, built for seeds and little RAM); secrets live in zeroizing
//! types, and what the hash, HMAC and ECDSA crates leave on the stack is wiped after each call
//! ([`wipe`]).

pub mod asym;
pub mod blob;
pub mod gcm;
pub mod mac;
pub mod signing;
pub mod wipe;
pub mod wrap;

pub use wrap::{DeviceKeys, Material};
