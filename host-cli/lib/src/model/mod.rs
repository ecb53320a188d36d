//! Owned results of client calls, one module per operation family. Wire responses borrow from
//! the receive buffer; these own their data. Plaintexts and data keys are
//! [`zeroize::Zeroizing`] so they are wiped when dropped.
//!
//! Every reply type serialises with serde to KMS's JSON: PascalCase field names, blobs as
//! base64, key ARNs where KMS answers them, absent optional fields left out, and the fields KMS
//! derives (algorithm lists of a key spec, EncryptionAlgorithm, KeyMetadata's `Arn` and
//! `Origin`…) filled in. Dates and the ARNs' region and account follow the style chosen with
//! [`encoding::with_style`]: `pkms --output json` prints the CLI's style, `pkms serve` answers
//! in KMS's wire style, from the same types.
//!
//! | module | operations |
//! |---|---|
//! | [`keys`] | GetInfo, CreateKey, DescribeKey, ListKeys |
//! | [`symmetric`] | Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext), GenerateRandom |
//! | [`rotation`] | GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations, RetireKeyVersions |
//! | [`signing`] | Sign, Verify, GetPublicKey |
//! | [`agreement`] | DeriveSharedSecret, Encapsulate, Decapsulate, GenerateDataKeyPair(WithoutPlaintext) |
//! | [`mac`] | GenerateMac, VerifyMac |
//! | [`lifecycle`] | ScheduleKeyDeletion, CancelKeyDeletion |
//! | [`aliases`] | ListAliases |
//! | [`tags`] | ListResourceTags |
//! | [`auth`] | ListPrincipals |
//! | [`policy`] | GetKeyPolicy, CreateGrant, ListGrants |
//! | [`audit`] | GetAuditCheckpoint |
//! | [`session`] | GetDeviceKey, OpenSession, session frames |
//! | [`backup`] | BackupInit, BackupExportBegin/Chunk, BackupRestoreBegin/Chunk |
//!
//! Every type is also re-exported here (`pkms_lib::model::KeyMetadata`).

use pkms_protocol::ReplyKind;

/// How the host keeps one kind of answer ([`pkms_protocol::kind`]): implemented once per kind,
/// beside its model type. The client's one generic [`crate::Client::call`] returns `Output`.
pub trait Owned: ReplyKind {
    /// The owned result.
    type Output;
    /// Copies the reply out of the receive buffer.
    fn own(reply: Self::Of<'_>) -> Self::Output;
}

pub mod agreement;
pub mod aliases;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod encoding;
pub mod keys;
pub mod lifecycle;
pub mod mac;
pub mod policy;
pub mod policy_json;
pub mod rotation;
pub mod session;
pub mod signing;
pub mod symmetric;
pub mod tags;

pub use agreement::{DataKeyPairOutput, DecapsulateOutput, EncapsulateOutput, SharedSecretOutput};
pub use aliases::{AliasEntry, AliasesPage};
pub use audit::{AuditCheckpoint, AuditCheckpointOutput};
pub use auth::{ListPrincipalsOutput, Principal};
pub use keys::{CreateKeyParams, DescribeKeyOutput, KeyMetadata, KeysPage, TokenInfo};
pub use lifecycle::{DeletionCancelled, DeletionScheduled};
pub use mac::{MacOutput, VerifyMacOutput};
pub use policy::{
    ContextConstraint, CreateGrantOutput, GetKeyPolicyOutput, Grant, GrantListEntry, ListGrantsOutput,
    PolicyDocument,
};
pub use rotation::{IncludeKeyMaterial, KeyRotationStatus, Retired, Rotated, RotationEntry, RotationsPage};
pub use session::{SealedFrame, SessionOpened};
pub use signing::{PublicKeyOutput, SignOutput, VerifyOutput};
pub use symmetric::{
    DataKey, DataKeySize, DecryptOutput, EncryptOutput, GenerateRandomOutput, ReEncryptOutput,
};
pub use tags::{ListResourceTagsOutput, Tag};

#[cfg(test)]
mod tests;
