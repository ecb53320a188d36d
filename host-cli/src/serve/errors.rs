//! Errors as KMS answers them: an exception name (`__type`), a message, an HTTP status. The
//! token's error codes (some of which KMS lacks) take the KMS exception of
//! [`ErrorCode::kms_name`] (the table in docs/protocol.md), as the CLI's errors do.

use pkms_lib::error::{token_message, Error, LinkError};
use pkms_protocol::ErrorCode;
use serde::Serialize;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The exception name, e.g. `NotFoundException`.
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
    /// The HTTP status: 400 unless [`status_of`] says otherwise.
    pub status: u16,
    /// The link to the token failed (the token pool drops it and reconnects).
    pub link_failed: bool,
    /// The token ended the session (the token pool opens another).
    pub session_ended: bool,
}

/// The JSON body of an error: `{"__type": …, "message": …}`.
#[derive(Serialize)]
pub struct ErrorBody<'a> {
    /// The exception name.
    #[serde(rename = "__type")]
    pub kind: &'a str,
    /// The message.
    pub message: &'a str,
}

impl ApiError {
    /// An error of `kind` with its usual status ([`status_of`]).
    pub fn new(kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            status: status_of(kind),
            link_failed: false,
            session_ended: false,
        }
    }

    /// ValidationException.
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new("ValidationException", message)
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&ErrorBody { kind: self.kind, message: &self.message }).unwrap_or_default()
    }
}

/// The HTTP status KMS answers an exception with: 500 for its internal errors and an
/// unavailable key, 503 for a dependency (here: the token) that did not answer in time, 400 for
/// the rest (client errors, throttling included).
pub fn status_of(kind: &str) -> u16 {
    match kind {
        "KMSInternalException" | "KeyUnavailableException" => 500,
        "DependencyTimeoutException" => 503,
        _ => 400,
    }
}

impl From<crate::keyref::Refused> for ApiError {
    fn from(r: crate::keyref::Refused) -> ApiError {
        ApiError::new(r.kind, r.message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let link_failed = e.is_link();
        let session_ended = e.code() == Some(ErrorCode::SessionEnded);
        let mut api = match e {
            Error::Token { code, message } => ApiError::new(code.kms_name(), token_message(code, &message)),
            Error::InvalidInput(m) => ApiError::validation(m),
            Error::Link(LinkError::Timeout(t)) => ApiError::new(
                "DependencyTimeoutException",
                format!("the token did not answer within {} s", t.as_secs()),
            ),
            Error::Link(l) => {
                ApiError::new("DependencyTimeoutException", format!("the token is unreachable: {l}"))
            }
            Error::DeviceKeyChanged(c) => ApiError::new("KMSInternalException", c.to_string()),
            Error::Interrupted => ApiError::new("KMSInternalException", "the server is shutting down"),
        };
        api.link_failed = link_failed;
        api.session_ended = session_ended;
        api
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pocket_kms_only_codes_become_kms_exceptions() {
        let e =
            ApiError::from(Error::Token { code: ErrorCode::KeyVersionRetired, message: "version 1".into() });
        assert_eq!(e.kind, "KMSInvalidStateException");
        assert!(e.message.contains("retired") && e.message.contains("version 1"), "{}", e.message);
        assert_eq!(e.status, 400);
        let e = ApiError::from(Error::Token { code: ErrorCode::StorageCorrupted, message: String::new() });
        assert_eq!((e.kind, e.status), ("KMSInternalException", 500));
        let e = ApiError::from(Error::Link(LinkError::Timeout(std::time::Duration::from_secs(3))));
        assert_eq!((e.kind, e.status), ("DependencyTimeoutException", 503));
    }

    #[test]
    fn error_bodies_are_kms_json() {
        let body = ApiError::new("NotFoundException", "no such key").body();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["__type"], "NotFoundException");
        assert_eq!(v["message"], "no such key");
    }
}
