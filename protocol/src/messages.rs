//! The request and response enums and the frames that carry them.
//!
//! Every request is wrapped in a [`RequestFrame`] carrying a request id (echoed in the
//! [`ResponseFrame`], so a host can discard stale replies) and the host's wall time (the token has
//! no battery clock; it keeps a persisted high-water mark and never runs time backwards).
//!
//! The requests and replies themselves are declared, one row per operation, in
//! [`crate::operations`]. Key arguments (`key_id`) are strings: a key id in UUID form or an alias
//! name (`alias/…`). Field names follow KMS in snake case; the CLI prints them in KMS's PascalCase.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
pub use crate::operations::{Request, Response};
use crate::types::UnixTime;

/// A request as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFrame<'a> {
    /// Chosen by the host; echoed in the response. 0 is reserved for errors about frames the
    /// token could not decode.
    pub id: u32,
    /// Host wall time (Unix seconds), if the host knows it. The token takes
    /// `max(high_water_mark, now)`.
    pub now: Option<UnixTime>,
    /// The operation.
    #[serde(borrow)]
    pub request: Request<'a>,
}

/// A response as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseFrame<'a> {
    /// The id of the request this answers; 0 when the request could not be decoded.
    pub id: u32,
    /// The answer or a typed error.
    #[serde(borrow)]
    pub result: Result<Response<'a>, WireError<'a>>,
}

/// A typed error with a human-readable message (at most
/// [`crate::limits::MAX_ERROR_MESSAGE`] bytes; may be empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError<'a> {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: &'a str,
}
