//! Pocket KMS host library (`pkms_lib`): the typed [`client::Client`], the byte
//! [`transport`]s (unix socket and TCP to QEMU, serial device, in-process token), device
//! selection ([`connect`]), the QEMU [`launcher`], envelope encryption of files
//! ([`envelope`]), file signing ([`filesign`]), the audit log's export file ([`audit`]) and USB
//! token discovery ([`usb`]). The `pkms` command line is a separate crate built on this one.
//!
//! * Every operation goes through one generic [`Client::call`]: give it a request struct of
//!   [`pkms_protocol::request`] and it returns that operation's reply as an owned [`model`] type
//!   (the pairing is declared once, in the protocol's operation table). The per-operation methods
//!   (`client.encrypt(…)`) are conveniences that build the request from host types.
//! * Replies are owned [`model`] types, one module per operation family; each serialises with
//!   serde to KMS's JSON (what `pkms --output json` prints).
//! * Errors are typed: [`Error`] for client calls (the link failed, or the token refused with an
//!   [`pkms_protocol::ErrorCode`]), and enums of their own for envelope encryption
//!   ([`envelope::EnvelopeError`]), data keys ([`datakey_cache::DataKeyError`]), key services
//!   ([`envelope::KeyServiceError`]), file signing ([`filesign::FileSignError`]) and the launcher
//!   ([`launcher::LaunchError`]). Their messages are complete (a wrapped cause is part of the
//!   message); `client_error()` gives the client error behind a key-service, data-key or
//!   file-signing error.
//! * Long file operations report progress to a [`progress::Progress`] callback.
//! * Cargo feature `qemu-firmware` (off by default; the `pkms` binary turns it on): embed the QEMU
//!   token firmware, cross-compiled from `qemu/` by the build script. Without it nothing is
//!   cross-compiled and the [`launcher`] boots the ELF named by `PKMS_QEMU_FIRMWARE` or
//!   [`launcher::LaunchOptions::firmware`].
//!
//! ```
//! use pkms_lib::inprocess::InProcessToken;
//! use pkms_lib::model::CreateKeyParams;
//! use pkms_lib::{Client, Error};
//! use pkms_protocol::ErrorCode;
//!
//! // The token core run in this process; `connect::open_default(home)` would start QEMU.
//! let mut client = Client::connect(InProcessToken::ephemeral())?;
//! let key = client.create_key(&CreateKeyParams::default())?.key_id.to_string();
//! let blob = client.encrypt(&key, b"attack at dawn", &[("app", "demo")])?.ciphertext_blob;
//! let plain = client.decrypt(&blob, &[("app", "demo")], None)?.plaintext;
//! assert_eq!(plain.as_slice(), b"attack at dawn");
//! // Any operation, by its request struct; the reply type follows from the request:
//! let info: pkms_lib::model::TokenInfo = client.call(pkms_protocol::request::GetInfo {})?;
//! assert_eq!(info.key_count, 1);
//! // The token said no (a typed error), as opposed to the link failing:
//! match client.decrypt(&blob, &[("app", "other")], None) {
//!     Err(Error::Token { code: ErrorCode::InvalidCiphertext, .. }) => {}
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), pkms_lib::Error>(())
//! ```
#![forbid(unsafe_code)]

pub mod audit;
pub mod backup;
pub mod client;
pub mod connect;
pub mod datakey_cache;
pub mod envelope;
pub mod error;
pub mod filesign;
pub mod inprocess;
pub mod interrupt;
pub mod launcher;
pub mod model;
pub mod packet_link;
pub mod pins;
pub mod progress;
pub mod session;
pub mod session_cache;
pub mod sigformat;
pub mod transport;
pub mod usb;

pub use client::Client;
pub use error::{Error, LinkError, Result};
