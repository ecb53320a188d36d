//! Pocket KMS host library (`pkms_lib`): the typed [`client::Client`], the byte
//! [`transport`]s (unix socket and TCP to QEMU, serial device, in-process token), device
//! selection ([`connect`]) and the `pkms` CLI ([`cli`]).
#![forbid(unsafe_code)]

pub mod client;
pub mod datakey_cache;
pub mod envelope;
pub mod error;
pub mod filesign;
pub mod inprocess;
pub mod launcher;
pub mod model;
pub mod transport;
pub mod usb;

pub use client::Client;
pub use error::{Error, LinkError, Result};
pub mod cli;
pub mod connect;
