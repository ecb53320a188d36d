//! Client methods for authentication, principals, the audit log, key policies and grants
//! (a child module of [`crate::client`], so it shares its private call helpers).

use pkms_protocol::access::{AuditFullMode, Role};
use pkms_protocol::messages::{Request, Response};
use pkms_protocol::KeyId;

use super::Client;
use crate::error::Result;
use crate::model::{AuditCheckpoint, ContextConstraint, Grant, Principal};

impl Client {
    /// Initialize: `admin` with `pin`, the PUK, and the audit log's full mode.
    pub fn initialize(&mut self, pin: &[u8], puk: &[u8], audit_full: AuditFullMode) -> Result<()> {
        self.done(
            Request::Initialize(pkms_protocol::request::Initialize { pin, puk, audit_full }),
            "Initialize",
        )
    }

    /// Authenticate this connection as `principal`.
    pub fn authenticate(&mut self, principal: &str, pin: &[u8]) -> Result<()> {
        self.done(
            Request::Authenticate(pkms_protocol::request::Authenticate { principal, pin }),
            "Authenticate",
        )
    }

    /// CreatePrincipal (administrators).
    pub fn create_principal(&mut self, name: &str, pin: &[u8], role: Role) -> Result<()> {
        self.done(
            Request::CreatePrincipal(pkms_protocol::request::CreatePrincipal { name, pin, role }),
            "CreatePrincipal",
        )
    }

    /// DeletePrincipal (administrators).
    pub fn delete_principal(&mut self, name: &str) -> Result<()> {
        self.done(
            Request::DeletePrincipal(pkms_protocol::request::DeletePrincipal { name }),
            "DeletePrincipal",
        )
    }

    /// ListPrincipals.
    pub fn list_principals(&mut self) -> Result<Vec<Principal>> {
        self.call(
            Request::ListPrincipals(pkms_protocol::request::ListPrincipals {}),
            |r| match r {
                Response::Principals(pkms_protocol::reply::Principals { principals }) => Some(
                    principals
                        .iter()
                        .map(|p| Principal {
                            name: p.name.to_owned(),
                            role: p.role,
                            pin_retries_left: p.pin_retries_left,
                        })
                        .collect(),
                ),
                _ => None,
            },
            "ListPrincipals",
        )
    }

    /// UnblockPin: unlock `principal` with the PUK and set `new_pin`.
    pub fn unblock_pin(&mut self, principal: &str, puk: &[u8], new_pin: &[u8]) -> Result<()> {
        self.done(
            Request::UnblockPin(pkms_protocol::request::UnblockPin { principal, puk, new_pin }),
            "UnblockPin",
        )
    }

    /// FactoryReset: erases every key, principal and log entry.
    pub fn factory_reset(&mut self) -> Result<()> {
        self.done(
            Request::FactoryReset(pkms_protocol::request::FactoryReset {
                confirm: pkms_protocol::access::FACTORY_RESET_CONFIRMATION,
            }),
            "FactoryReset",
        )
    }

    /// GetAuditCheckpoint.
    pub fn get_audit_checkpoint(&mut self) -> Result<AuditCheckpoint> {
        self.call(
            Request::GetAuditCheckpoint(pkms_protocol::request::GetAuditCheckpoint {}),
            |r| match r {
                Response::AuditCheckpoint(pkms_protocol::reply::AuditCheckpoint {
                    sequence,
                    hash,
                    signature,
                    first_sequence,
                    public_key,
                    capacity,
                    audit_full,
                    base_signature,
                }) => Some(AuditCheckpoint {
                    sequence,
                    hash,
                    signature: signature.to_vec(),
                    first_sequence,
                    public_key: public_key.to_vec(),
                    capacity,
                    audit_full,
                    base_signature: base_signature.to_vec(),
                }),
                _ => None,
            },
            "GetAuditCheckpoint",
        )
    }

    /// ReadAuditLog: encoded entries from `start_sequence` on (at most `limit`).
    pub fn read_audit_log(&mut self, start_sequence: u64, limit: u16) -> Result<Vec<u8>> {
        self.call(
            Request::ReadAuditLog(pkms_protocol::request::ReadAuditLog { start_sequence, limit }),
            |r| match r {
                Response::AuditEntries(pkms_protocol::reply::AuditEntries { entries }) => {
                    Some(entries.to_vec())
                }
                _ => None,
            },
            "ReadAuditLog",
        )
    }

    /// TrimAuditLog: drop entries through `through_sequence` (administrators).
    pub fn trim_audit_log(&mut self, through_sequence: u64) -> Result<()> {
        self.done(
            Request::TrimAuditLog(pkms_protocol::request::TrimAuditLog { through_sequence }),
            "TrimAuditLog",
        )
    }

    /// GetKeyPolicy: the key id and its compact policy.
    pub fn get_key_policy(&mut self, key_id: &str) -> Result<(KeyId, Vec<u8>)> {
        self.call(
            Request::GetKeyPolicy(pkms_protocol::request::GetKeyPolicy { key_id }),
            |r| match r {
                Response::KeyPolicy(pkms_protocol::reply::KeyPolicy { key_id, policy }) => {
                    Some((key_id, policy.to_vec()))
                }
                _ => None,
            },
            "GetKeyPolicy",
        )
    }

    /// PutKeyPolicy (compact policy).
    pub fn put_key_policy(&mut self, key_id: &str, policy: &[u8]) -> Result<()> {
        self.done(
            Request::PutKeyPolicy(pkms_protocol::request::PutKeyPolicy { key_id, policy }),
            "PutKeyPolicy",
        )
    }

    /// CreateGrant; returns the GrantId.
    pub fn create_grant(
        &mut self,
        key_id: &str,
        grantee: &str,
        operations: u64,
        constraint: Option<&ContextConstraint>,
        name: &str,
    ) -> Result<String> {
        let constraint = constraint.map(|c| c.wire()).transpose()?;
        self.call(
            Request::CreateGrant(pkms_protocol::request::CreateGrant {
                key_id,
                grantee,
                operations,
                constraint,
                name,
            }),
            |r| match r {
                Response::Grant(pkms_protocol::reply::Grant { grant_id }) => Some(grant_id.to_owned()),
                _ => None,
            },
            "CreateGrant",
        )
    }

    /// ListGrants.
    pub fn list_grants(&mut self, key_id: &str) -> Result<Vec<Grant>> {
        self.call(
            Request::ListGrants(pkms_protocol::request::ListGrants { key_id }),
            |r| match r {
                Response::Grants(pkms_protocol::reply::Grants { grants }) => Some(
                    grants
                        .iter()
                        .map(|g| Grant {
                            grant_id: g.grant_id.to_owned(),
                            name: g.name.to_owned(),
                            grantee: g.grantee.to_owned(),
                            issuer: g.issuer.to_owned(),
                            operations: g.operations,
                            constraint: g.constraint.as_ref().map(ContextConstraint::from_wire),
                            created: g.created,
                        })
                        .collect(),
                ),
                _ => None,
            },
            "ListGrants",
        )
    }

    /// RetireGrant.
    pub fn retire_grant(&mut self, key_id: &str, grant_id: &str) -> Result<()> {
        self.done(
            Request::RetireGrant(pkms_protocol::request::RetireGrant { key_id, grant_id }),
            "RetireGrant",
        )
    }

    /// RevokeGrant.
    pub fn revoke_grant(&mut self, key_id: &str, grant_id: &str) -> Result<()> {
        self.done(
            Request::RevokeGrant(pkms_protocol::request::RevokeGrant { key_id, grant_id }),
            "RevokeGrant",
        )
    }
}
