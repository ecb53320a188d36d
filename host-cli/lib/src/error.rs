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
    /// Displayed as KMS reports it: the KMS exception ([`ErrorCode::kms_name`]), then
    /// [`token_message`].
    #[error("{code}: {}", token_message(*.code, .message))]
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

/// What a token error says to someone who knows only KMS's exceptions: for the codes KMS lacks
/// (which [`ErrorCode::kms_name`] reports as a KMS exception) the words that name what happened
/// on the token; `None` for the codes KMS has.
pub fn explanation(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::KeyVersionRetired => Some("key version retired (its material was erased)"),
        ErrorCode::UserPresenceRequired => {
            Some("user presence required: touch the token's button (emulated tokens cannot confirm presence)")
        }
        ErrorCode::AuditLogFull => {
            Some("the token's audit log is full: export and trim it (pkms audit export --out FILE --trim)")
        }
        ErrorCode::AuthenticationFailed => Some("the token refused the login (wrong or missing PIN)"),
        ErrorCode::PinLocked => Some("the principal's PIN is locked on the token"),
        ErrorCode::StorageCorrupted => Some("the token's storage is corrupted"),
        ErrorCode::SelfTestFailed => {
            Some("a power-on self-test of the token failed: it serves nothing until it restarts sound")
        }
        ErrorCode::MalformedFrame => Some("the token could not decode the request"),
        ErrorCode::FrameTooLarge => Some("the request is too large for the token's frames"),
        ErrorCode::UnsupportedProtocolVersion => Some("the token speaks another protocol version"),
        ErrorCode::SessionEnded => Some("the token ended the session"),
        ErrorCode::NotFound
        | ErrorCode::Disabled
        | ErrorCode::InvalidState
        | ErrorCode::IncorrectKey
        | ErrorCode::InvalidCiphertext
        | ErrorCode::InvalidKeyUsage
        | ErrorCode::InvalidSignature
        | ErrorCode::InvalidMac
        | ErrorCode::AccessDenied
        | ErrorCode::LimitExceeded
        | ErrorCode::Validation
        | ErrorCode::AlreadyExists
        | ErrorCode::InvalidAliasName
        | ErrorCode::InvalidMarker
        | ErrorCode::UnsupportedOperation
        | ErrorCode::Tag
        | ErrorCode::Internal
        | ErrorCode::MalformedPolicyDocument
        | ErrorCode::InvalidGrantId
        | ErrorCode::Conflict => None,
    }
}

/// A token error's message as the CLI and the KMS endpoint report it: the token's own words,
/// after the [`explanation`] of a code KMS lacks.
pub fn token_message(code: ErrorCode, message: &str) -> String {
    match explanation(code) {
        Some(x) if message.is_empty() => x.to_owned(),
        Some(x) => format!("{x}: {message}"),
        None => message.to_owned(),
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
        assert_eq!(Chain(&t).to_string(), "NotFoundException: no key");
    }

    #[test]
    fn codes_kms_lacks_read_as_kms_exceptions_that_say_what_happened() {
        let t = Error::Token { code: ErrorCode::KeyVersionRetired, message: "version 1".into() };
        assert_eq!(
            t.to_string(),
            "KMSInvalidStateException: key version retired (its material was erased): version 1"
        );
        for code in ErrorCode::ALL {
            let kms_has_it =
                code.kms_name().trim_end_matches("Exception").trim_start_matches("KMS") == code.name();
            assert_eq!(explanation(*code).is_none(), kms_has_it, "{code:?}");
        }
    }
}
