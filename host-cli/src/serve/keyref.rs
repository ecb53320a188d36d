//! KeyId inputs as KMS takes them: a key id, a key ARN, an alias name or an alias ARN where KMS
//! accepts any ([`KeyRef::Any`]), only a key id or key ARN where KMS does ([`KeyRef::KeyOnly`]).
//! ARNs must name this endpoint's region and account; what reaches the token is a bare key id
//! or an alias name.

use pkms_lib::model::encoding::ArnScope;

use super::errors::ApiError;

/// Which forms a KeyId field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef {
    /// Key id, key ARN, alias name or alias ARN (Encrypt, DescribeKey, Sign, …).
    Any,
    /// Key id or key ARN only (EnableKey, ScheduleKeyDeletion, TagResource, CreateGrant, …).
    KeyOnly,
}

/// The token's form of `input` (a key id or an alias name), or the error KMS gives.
pub fn resolve(scope: &ArnScope, input: &str, kind: KeyRef) -> Result<String, ApiError> {
    if input.is_empty() || input.len() > 2048 {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{input}' at 'keyId' failed to satisfy constraint: Member must \
             have length between 1 and 2048"
        )));
    }
    let bare = if let Some(rest) = input.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [partition, service, region, account, resource] = parts[..] else {
            return Err(ApiError::new("InvalidArnException", format!("Invalid arn {input}")));
        };
        if partition != "aws" || service != "kms" {
            return Err(ApiError::new("InvalidArnException", format!("Invalid arn {input}")));
        }
        if region != scope.region || account != scope.account_id {
            return Err(ApiError::new(
                "NotFoundException",
                format!(
                    "Key '{input}' does not exist (this endpoint serves {}:{})",
                    scope.region, scope.account_id
                ),
            ));
        }
        if let Some(id) = resource.strip_prefix("key/") {
            id.to_owned()
        } else if resource.starts_with("alias/") {
            resource.to_owned()
        } else {
            return Err(ApiError::new("InvalidArnException", format!("Invalid arn {input}")));
        }
    } else {
        input.to_owned()
    };
    if kind == KeyRef::KeyOnly && bare.starts_with("alias/") {
        return Err(ApiError::new(
            "NotFoundException",
            format!("Invalid keyId {input}: this operation takes a key id or key ARN, not an alias"),
        ));
    }
    Ok(bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> ArnScope {
        ArnScope { region: "us-east-1".into(), account_id: "111122223333".into() }
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
        for bad in
            ["arn:aws:s3:::bucket", "arn:aws:kms:us-east-1", "arn:aws:kms:us-east-1:111122223333:grant/x"]
        {
            assert_eq!(resolve(&s, bad, KeyRef::Any).unwrap_err().kind, "InvalidArnException", "{bad}");
        }
        assert_eq!(resolve(&s, "", KeyRef::Any).unwrap_err().kind, "ValidationException");
    }
}
