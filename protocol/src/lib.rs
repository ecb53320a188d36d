//! Pocket KMS wire protocol — the single source of truth shared by the firmware and the host.
//!
//! * [`operations`]: one declaration per operation — its request and reply structs, the
//!   [`Request`] and [`Response`] enums, its stable index and name, its policy actions and what
//!   the token checks before running it.
//! * [`messages`]: [`RequestFrame`] / [`ResponseFrame`], which carry a request id and the host's
//!   wall time around a [`Request`] or a [`Response`].
//! * [`error`]: the one stable error enum ([`ErrorCode`]) with KMS-like names.
//! * [`types`]: key ids, key specs, usages, states, metadata records.
//! * [`context`]: the canonical, unambiguous encoding of an encryption context.
//! * [`backup`]: the backup file's authenticated header and chunk rules.
//! * [`blob`]: the ciphertext blob format (header names key id and key version; the whole header
//!   is authenticated).
//! * [`framing`]: COBS framing (0x00 delimits frames) and a streaming frame accumulator.
//! * [`link`]: the packet link that carries those frames in raw Ethernet frames (QEMU token).
//!
//! Postcard encodes enum variants by index: variants and fields are only ever *appended*, never
//! reordered or removed, so old hosts and tokens keep understanding each other; a breaking change
//! bumps [`PROTOCOL_VERSION`].
#![no_std]
#![forbid(unsafe_code)]
// Every match over an enum names its variants (tests aside): a new variant is a compile error
// wherever it needs handling, never a silent `_` arm.
#![cfg_attr(not(test), warn(clippy::wildcard_enum_match_arm))]

#[cfg(feature = "std")]
extern crate std;

pub mod access;
pub mod backup;
pub mod blob;
pub mod context;
pub mod error;
pub mod framing;
pub mod limits;
pub mod link;
pub mod messages;
pub mod operations;
pub mod session;
pub mod small_sort;
pub mod types;

pub use error::ErrorCode;
pub use messages::{RequestFrame, ResponseFrame, WireError};
pub use operations::{
    kind, reply, request, Action, Call, FromResponse, Gate, KeyCheck, KeyRef, Operation, ReplyKind, Request,
    Response,
};
pub use types::*;

/// Protocol version exchanged at connect ([`Request::Hello`]). A token refuses a host whose
/// version differs with [`ErrorCode::UnsupportedProtocolVersion`].
pub const PROTOCOL_VERSION: u16 = 1;
