//! KeyId inputs as KMS takes them, one rule for the CLI and the KMS endpoint: a key id, a key
//! ARN, an alias name or an alias ARN where KMS accepts any ([`KeyRef::Any`]), only a key id or
//! key ARN where KMS does ([`KeyRef::KeyOnly`]; [`KeyRef::of`] says which, by operation). ARNs
//! must name the configured region and account ([`ArnScope`]); what reaches the token is a
//! bare key id or an alias name.

use pkms_lib::model::encoding::ArnScope;

/// Which forms a KeyId field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef {
    /// Key id, key ARN, alias name or alias ARN (Encrypt, DescribeKey, Sign, …).
    Any,
    /// Key id or key ARN only (EnableKey, ScheduleKeyDeletion, TagResource, CreateGrant, …).
    KeyOnly,
}

/// The operations (KMS's names, and the CLI's own in the same form) whose KeyId — CreateAlias's
/// and UpdateAlias's TargetKeyId — takes only a key id or key ARN: KMS's documentation of each
/// says "Specify the key ID or key ARN". Every other operation with a KeyId takes aliases too.
pub const KEY_ONLY: &[&str] = &[
    "CancelKeyDeletion",
    "CreateAlias",
    "CreateGrant",
    "DisableKey",
    "DisableKeyRotation",
    "EnableKey",
    "EnableKeyRotation",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "ListAliases",
    "ListGrants",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListResourceTags",
    "PutKeyPolicy",
    "RetireGrant",
    "RevokeGrant",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateKeyDescription",
    // Pocket KMS's extension, a key-management operation like RotateKeyOnDemand.
    "RetireKeyVersions",
];

impl KeyRef {
    /// What the KeyId of `operation` takes ([`KEY_ONLY`]).
    pub fn of(operation: &str) -> KeyRef {
        if KEY_ONLY.contains(&operation) {
            KeyRef::KeyOnly
        } else {
            KeyRef::Any
        }
    }
}

/// A KeyId refused as KMS refuses it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    /// The KMS exception: `ValidationException`, `InvalidArnException` or `NotFoundException`.
    pub kind: &'static str,
    /// What is wrong.
    pub message: String,
}

fn refused(kind: &'static str, message: String) -> Refused {
    Refused { kind, message }
}

/// The token's form of `input` (a key id or an alias name), or the error KMS gives.
pub fn resolve(scope: &ArnScope, input: &str, kind: KeyRef) -> Result<String, Refused> {
    if input.is_empty() || input.len() > 2048 {
        return Err(refused(
            "ValidationException",
            format!(
                "1 validation error detected: Value '{input}' at 'keyId' failed to satisfy constraint: Member \
                 must have length between 1 and 2048"
            ),
        ));
    }
    let bare = if let Some(rest) = input.strip_prefix("arn:") {
        let invalid = || refused("InvalidArnException", format!("Invalid arn {input}"));
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [partition, service, region, account, resource] = parts[..] else {
            return Err(invalid());
        };
        if partition != "aws" || service != "kms" {
            return Err(invalid());
        }
        if region != scope.region || account != scope.account_id {
            return Err(refused(
                "NotFoundException",
                format!(
                    "Key '{input}' does not exist (this token serves {}:{}; see --region and --account-id)",
                    scope.region, scope.account_id
                ),
            ));
        }
        if let Some(id) = resource.strip_prefix("key/").filter(|id| !id.is_empty()) {
            id.to_owned()
        } else if resource.starts_with("alias/") && resource.len() > "alias/".len() {
            resource.to_owned()
        } else {
            return Err(invalid());
        }
    } else {
        input.to_owned()
    };
    if kind == KeyRef::KeyOnly && bare.starts_with("alias/") {
        return Err(refused(
            "NotFoundException",
            format!("Invalid keyId '{input}': this operation takes a key id or key ARN, not an alias"),
        ));
    }
    Ok(bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> ArnScope {
        ArnScope::default()
    }

    #[test]
    fn every_form_resolves_where_kms_takes_it() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let s = scope();
        assert_eq!(resolve(&s, id, KeyRef::Any).unwrap(), id);
        assert_eq!(
            resolve(&s, &format!("arn:aws:kms:us-east-1:111122223333:key/{id}"), KeyRef::KeyOnly).unwrap(),
            id
        );
        assert_eq!(resolve(&s, "alias/app", KeyRef::Any).unwrap(), "alias/app");
        assert_eq!(
            resolve(&s, "arn:aws:kms:us-east-1:111122223333:alias/app", KeyRef::Any).unwrap(),
            "alias/app"
        );
    }

    #[test]
    fn aliases_are_refused_where_kms_refuses_them() {
        let s = scope();
        assert_eq!(resolve(&s, "alias/app", KeyRef::KeyOnly).unwrap_err().kind, "NotFoundException");
        let arn = "arn:aws:kms:us-east-1:111122223333:alias/app";
        assert_eq!(resolve(&s, arn, KeyRef::KeyOnly).unwrap_err().kind, "NotFoundException");
    }

    #[test]
    fn foreign_and_malformed_arns_are_refused() {
        let s = scope();
        let other_region = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(resolve(&s, other_region, KeyRef::Any).unwrap_err().kind, "NotFoundException");
        for bad in [
            "arn:aws:s3:::bucket",
            "arn:aws:kms:us-east-1",
            "arn:aws:kms:us-east-1:111122223333:grant/x",
            "arn:aws:kms:us-east-1:111122223333:key/",
            "arn:aws:kms:us-east-1:111122223333:alias/",
        ] {
            assert_eq!(resolve(&s, bad, KeyRef::Any).unwrap_err().kind, "InvalidArnException", "{bad}");
        }
        assert_eq!(resolve(&s, "", KeyRef::Any).unwrap_err().kind, "ValidationException");
    }

    #[test]
    fn only_the_cryptographic_operations_and_describe_key_take_aliases() {
        // KMS's documentation: "To specify a KMS key, use its key ID, key ARN, alias name, or
        // alias ARN" for these; "Specify the key ID or key ARN" for every other KeyId.
        for op in [
            "DescribeKey",
            "Encrypt",
            "Decrypt",
            "ReEncrypt",
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
            "Sign",
            "Verify",
            "GetPublicKey",
            "GenerateMac",
            "VerifyMac",
        ] {
            assert_eq!(KeyRef::of(op), KeyRef::Any, "{op}");
        }
        for op in ["EnableKeyRotation", "ScheduleKeyDeletion", "CreateGrant", "ListGrants", "TagResource"] {
            assert_eq!(KeyRef::of(op), KeyRef::KeyOnly, "{op}");
        }
    }
}
