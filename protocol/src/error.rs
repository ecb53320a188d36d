//! The one stable error enum on the wire.
//!
//! Names follow KMS's exceptions without the `Exception`/`KMS` affixes
//! (`NotFoundException` → [`ErrorCode::NotFound`], `KMSInvalidStateException` →
//! [`ErrorCode::InvalidState`]). Append new variants at the end only: postcard encodes the index.

use serde::{Deserialize, Serialize};

/// A typed error a token answers with. Stable: never reorder, only append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The key, alias, version or other named resource does not exist (NotFoundException).
    NotFound,
    /// The key is disabled (DisabledException).
    Disabled,
    /// The key's state does not allow the operation, e.g. PendingDeletion (KMSInvalidStateException).
    InvalidState,
    /// Decrypt was given a KeyId that is not the one the blob names (IncorrectKeyException).
    IncorrectKey,
    /// The blob is malformed, was tampered with, or the encryption context does not match
    /// (InvalidCiphertextException).
    InvalidCiphertext,
    /// The key's usage or spec does not allow the operation (InvalidKeyUsageException).
    InvalidKeyUsage,
    /// Verify: the signature is not valid (KMSInvalidSignatureException).
    InvalidSignature,
    /// VerifyMac: the MAC is not valid (KMSInvalidMacException).
    InvalidMac,
    /// The caller is not allowed to perform the operation (AccessDeniedException).
    AccessDenied,
    /// A count or storage limit would be exceeded (LimitExceededException).
    LimitExceeded,
    /// An input value is out of range or malformed (ValidationException).
    Validation,
    /// The alias already exists (AlreadyExistsException).
    AlreadyExists,
    /// The alias name breaks KMS's naming rules (InvalidAliasNameException).
    InvalidAliasName,
    /// A pagination marker is not one this token issued (InvalidMarkerException).
    InvalidMarker,
    /// The operation is not supported for this key or on this token (UnsupportedOperationException).
    UnsupportedOperation,
    /// The key version existed but was retired; its material is erased.
    KeyVersionRetired,
    /// A tag key or value breaks the tag rules (TagException).
    Tag,
    /// The frame could not be decoded (bad COBS, bad postcard, unknown variant).
    MalformedFrame,
    /// The frame exceeded [`crate::limits::MAX_ENCODED_FRAME`].
    FrameTooLarge,
    /// The host speaks another [`crate::PROTOCOL_VERSION`].
    UnsupportedProtocolVersion,
    /// Flash or another token-internal failure (KMSInternalException). The token keeps serving.
    Internal,
    /// Stored state failed an integrity check.
    StorageCorrupted,
    /// The key policy document is malformed (MalformedPolicyDocumentException).
    MalformedPolicyDocument,
    /// The grant id is not valid (InvalidGrantIdException).
    InvalidGrantId,
    /// The key requires a user-presence check this token cannot perform or that timed out.
    UserPresenceRequired,
    /// Authentication is required or the PIN is wrong.
    AuthenticationFailed,
    /// The principal is locked after too many wrong PINs.
    PinLocked,
    /// The audit log is full and the token is in force-audit mode.
    AuditLogFull,
    /// The request conflicts with an operation in progress (ConflictException).
    Conflict,
    /// The session a frame names is not open (closed, expired, or ended because a frame of it
    /// was refused): open a new one.
    SessionEnded,
    /// A power-on self-test failed: the token answers only Hello, GetInfo and GetSelfTests
    /// (which names the test) until it is restarted.
    SelfTestFailed,
}

impl ErrorCode {
    /// Every code, in wire order (for exhaustive tests and docs).
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::NotFound,
        ErrorCode::Disabled,
        ErrorCode::InvalidState,
        ErrorCode::IncorrectKey,
        ErrorCode::InvalidCiphertext,
        ErrorCode::InvalidKeyUsage,
        ErrorCode::InvalidSignature,
        ErrorCode::InvalidMac,
        ErrorCode::AccessDenied,
        ErrorCode::LimitExceeded,
        ErrorCode::Validation,
        ErrorCode::AlreadyExists,
        ErrorCode::InvalidAliasName,
        ErrorCode::InvalidMarker,
        ErrorCode::UnsupportedOperation,
        ErrorCode::KeyVersionRetired,
        ErrorCode::Tag,
        ErrorCode::MalformedFrame,
        ErrorCode::FrameTooLarge,
        ErrorCode::UnsupportedProtocolVersion,
        ErrorCode::Internal,
        ErrorCode::StorageCorrupted,
        ErrorCode::MalformedPolicyDocument,
        ErrorCode::InvalidGrantId,
        ErrorCode::UserPresenceRequired,
        ErrorCode::AuthenticationFailed,
        ErrorCode::PinLocked,
        ErrorCode::AuditLogFull,
        ErrorCode::Conflict,
        ErrorCode::SessionEnded,
        ErrorCode::SelfTestFailed,
    ];

    /// The code's own name: the variant's name (`NotFound`, `KeyVersionRetired`, …), precise
    /// where [`ErrorCode::kms_name`] maps several codes to one KMS exception (the audit log
    /// records it).
    pub const fn name(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "NotFound",
            ErrorCode::Disabled => "Disabled",
            ErrorCode::InvalidState => "InvalidState",
            ErrorCode::IncorrectKey => "IncorrectKey",
            ErrorCode::InvalidCiphertext => "InvalidCiphertext",
            ErrorCode::InvalidKeyUsage => "InvalidKeyUsage",
            ErrorCode::InvalidSignature => "InvalidSignature",
            ErrorCode::InvalidMac => "InvalidMac",
            ErrorCode::AccessDenied => "AccessDenied",
            ErrorCode::LimitExceeded => "LimitExceeded",
            ErrorCode::Validation => "Validation",
            ErrorCode::AlreadyExists => "AlreadyExists",
            ErrorCode::InvalidAliasName => "InvalidAliasName",
            ErrorCode::InvalidMarker => "InvalidMarker",
            ErrorCode::UnsupportedOperation => "UnsupportedOperation",
            ErrorCode::KeyVersionRetired => "KeyVersionRetired",
            ErrorCode::Tag => "Tag",
            ErrorCode::MalformedFrame => "MalformedFrame",
            ErrorCode::FrameTooLarge => "FrameTooLarge",
            ErrorCode::UnsupportedProtocolVersion => "UnsupportedProtocolVersion",
            ErrorCode::Internal => "Internal",
            ErrorCode::StorageCorrupted => "StorageCorrupted",
            ErrorCode::MalformedPolicyDocument => "MalformedPolicyDocument",
            ErrorCode::InvalidGrantId => "InvalidGrantId",
            ErrorCode::UserPresenceRequired => "UserPresenceRequired",
            ErrorCode::AuthenticationFailed => "AuthenticationFailed",
            ErrorCode::PinLocked => "PinLocked",
            ErrorCode::AuditLogFull => "AuditLogFull",
            ErrorCode::Conflict => "Conflict",
            ErrorCode::SessionEnded => "SessionEnded",
            ErrorCode::SelfTestFailed => "SelfTestFailed",
        }
    }

    /// The KMS exception a client sees for this code (`__type` of the CLI's JSON errors and of
    /// the KMS endpoint's answers): the one table of them. Codes KMS has keep their exception's
    /// name; Pocket-KMS-only codes become the exception a KMS client would handle the same way
    /// (docs/protocol.md lists why), and the message says what happened on the token.
    pub const fn kms_name(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "NotFoundException",
            ErrorCode::Disabled => "DisabledException",
            ErrorCode::InvalidState => "KMSInvalidStateException",
            ErrorCode::IncorrectKey => "IncorrectKeyException",
            ErrorCode::InvalidCiphertext => "InvalidCiphertextException",
            ErrorCode::InvalidKeyUsage => "InvalidKeyUsageException",
            ErrorCode::InvalidSignature => "KMSInvalidSignatureException",
            ErrorCode::InvalidMac => "KMSInvalidMacException",
            ErrorCode::AccessDenied => "AccessDeniedException",
            ErrorCode::LimitExceeded => "LimitExceededException",
            ErrorCode::Validation => "ValidationException",
            ErrorCode::AlreadyExists => "AlreadyExistsException",
            ErrorCode::InvalidAliasName => "InvalidAliasNameException",
            ErrorCode::InvalidMarker => "InvalidMarkerException",
            ErrorCode::UnsupportedOperation => "UnsupportedOperationException",
            ErrorCode::Tag => "TagException",
            ErrorCode::MalformedPolicyDocument => "MalformedPolicyDocumentException",
            ErrorCode::InvalidGrantId => "InvalidGrantIdException",
            ErrorCode::Conflict => "ConflictException",
            // A retired version's material is gone: the key is in no state to use it.
            ErrorCode::KeyVersionRetired => "KMSInvalidStateException",
            // Nobody touched the token's button: the key cannot be used now; a client may retry.
            ErrorCode::UserPresenceRequired => "KeyUnavailableException",
            // The login as the principal was refused, or the principal is locked.
            ErrorCode::AuthenticationFailed | ErrorCode::PinLocked => "AccessDeniedException",
            // The token refuses key operations until its audit log is exported: a quota.
            ErrorCode::AuditLogFull => "LimitExceededException",
            // Faults between the host and the token, or inside the token.
            ErrorCode::Internal
            | ErrorCode::StorageCorrupted
            | ErrorCode::MalformedFrame
            | ErrorCode::FrameTooLarge
            | ErrorCode::UnsupportedProtocolVersion
            | ErrorCode::SessionEnded
            | ErrorCode::SelfTestFailed => "KMSInternalException",
        }
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.kms_name())
    }
}
