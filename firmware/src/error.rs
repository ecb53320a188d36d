//! The error operations return: a wire [`ErrorCode`] and a message for people.

use core::fmt::{self, Write};

use pkms_protocol::limits::MAX_ERROR_MESSAGE;
use pkms_protocol::ErrorCode;

use crate::store::StoreError;

/// An operation's failure. The message is cut at [`MAX_ERROR_MESSAGE`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: heapless::String<MAX_ERROR_MESSAGE>,
}

/// Result of an operation.
pub type OpResult<T> = Result<T, Error>;

struct Truncating<'a>(&'a mut heapless::String<MAX_ERROR_MESSAGE>);

impl Write for Truncating<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.0.push(c).is_err() {
                break;
            }
        }
        Ok(())
    }
}

impl Error {
    /// An error with a fixed message.
    pub fn new(code: ErrorCode, message: &str) -> Self {
        Self::format(code, format_args!("{message}"))
    }

    /// An error with a formatted message.
    pub fn format(code: ErrorCode, args: fmt::Arguments<'_>) -> Self {
        let mut message = heapless::String::new();
        let _ = Truncating(&mut message).write_fmt(args);
        Error { code, message }
    }
}

/// `err!(Code, "format", args…)` builds an [`Error`].
#[macro_export]
macro_rules! err {
    ($code:ident, $($arg:tt)*) => {
        $crate::error::Error::format(pkms_protocol::ErrorCode::$code, format_args!($($arg)*))
    };
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full => Error::new(
                ErrorCode::LimitExceeded,
                "the token's key store is full; retire old key versions or delete keys (or, on a token whose audit log refuses when full, export and trim it: pkms audit export --out FILE --trim)",
            ),
            StoreError::TooLarge => {
                Error::new(ErrorCode::LimitExceeded, "the record is too large for the key store")
            }
            StoreError::Flash => Error::new(ErrorCode::Internal, "the flash refused a read or write"),
            StoreError::Corrupted => Error::new(
                ErrorCode::StorageCorrupted,
                "the key store on this token's flash failed an integrity check",
            ),
        }
    }
}
