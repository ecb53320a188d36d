//! The library's one error type: it keeps "the link failed" apart from "the token said no".

use pkms_protocol::ErrorCode;

/// Why talking to the token failed at the link level: nothing can be concluded about the
/// operation itself (it may or may not have been carried out).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Reading or writing the transport failed.
    #[error("I/O error talking to the token: {0}")]
    Io(#[from] std::io::Error),
    /// No complete answer arrived in time.
    #[error("the token did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The other end closed the connection.
    #[error("the token closed the connection")]
    Closed,
    /// A frame could not be decoded, or an answer did not fit the request.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The device could not be opened or started.
    #[error("cannot open the token: {0}")]
    Open(String),
}

/// Every failure of a [`crate::client::Client`] call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The link failed (I/O, timeout, framing): retrying or reconnecting may help.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The token answered with a typed error: the request was understood and refused.
    #[error("{code}: {message}")]
    Token {
        /// The stable error code.
        code: ErrorCode,
        /// The token's explanation (may be empty).
        message: String,
    },
    /// The token presented another device key than the one pinned for it: it was reset or
    /// replaced — or someone is in the middle. Nothing was sent to it.
    #[error(transparent)]
    DeviceKeyChanged(Box<DeviceKeyChanged>),
    /// The process was interrupted ([`crate::interrupt`]) while a call waited for its answer:
    /// the operation may or may not have been carried out.
    #[error("interrupted")]
    Interrupted,
    /// The host refused to send the request because an argument cannot be encoded
    /// (e.g. more context pairs or tags than a frame can carry).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl Error {
    /// The token's error code, if the token refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Token { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the link (rather than the token) failed.
    pub fn is_link(&self) -> bool {
        matches!(self, Error::Link(_))
    }
}

/// A token presenting another device key than the one pinned for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the token {token} presents device key {presented}, but {} pins {pinned} for it. If you \
     factory-reset or replaced this token, pin its new key with `pkms pin-device-key` (after \
     checking the fingerprint `pkms info` shows on a trusted host); otherwise do not use it",
    file.display()
)]
pub struct DeviceKeyChanged {
    /// The token's name in the pin file.
    pub token: String,
    /// The pinned key's fingerprint.
    pub pinned: String,
    /// The presented key's fingerprint.
    pub presented: String,
    /// The pin file.
    pub file: std::path::PathBuf,
}

/// Result of a client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Writes an error and every error behind it (its `source()` chain), joined by `": "`: the
/// complete message. The library's own error types, which wrap other errors, render those
/// with it and do not chain them through `source()` themselves, so a reporter that walks the
/// chain never prints a cause twice.
pub(crate) struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            write!(f, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_names_every_cause_once() {
        let io = std::io::Error::other("pipe closed");
        let e = Error::Link(LinkError::Io(io));
        assert_eq!(Chain(&e).to_string(), "I/O error talking to the token: pipe closed: pipe closed");
        let t = Error::Token { code: ErrorCode::NotFound, message: "no key".into() };
        assert_eq!(Chain(&t).to_string(), format!("{}: no key", ErrorCode::NotFound));
    }
}
