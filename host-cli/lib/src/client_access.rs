//! Client methods for authentication, principals, the audit log, key policies and grants
//! (a child module of [`crate::client`], so it shares its private call helpers).

use pkms_protocol::access::{AuditFullMode, Role};
use pkms_protocol::request;
use pkms_protocol::KeyId;

use super::Client;
use crate::error::Result;
use crate::model::{AuditCheckpoint, ContextConstraint, Grant, Principal};

impl Client {
    /// Initialize: `admin` with `pin`, the PUK, and the audit log's full mode.
    pub fn initialize(&mut self, pin: &[u8], puk: &[u8], audit_full: AuditFullMode) -> Result<()> {
        self.call(request::Initialize { pin, puk, audit_full })
    }

    /// Authenticate this connection as `principal`.
    pub fn authenticate(&mut self, principal: &str, pin: &[u8]) -> Result<()> {
        self.call(request::Authenticate { principal, pin })
    }

    /// CreatePrincipal (administrators).
    pub fn create_principal(&mut self, name: &str, pin: &[u8], role: Role) -> Result<()> {
        self.call(request::CreatePrincipal { name, pin, role })
    }

    /// DeletePrincipal (administrators).
    pub fn delete_principal(&mut self, name: &str) -> Result<()> {
        self.call(request::DeletePrincipal { name })
    }

    /// ListPrincipals.
    pub fn list_principals(&mut self) -> Result<Vec<Principal>> {
        self.call(request::ListPrincipals {})
    }

    /// UnblockPin: unlock `principal` with the PUK and set `new_pin`.
    pub fn unblock_pin(&mut self, principal: &str, puk: &[u8], new_pin: &[u8]) -> Result<()> {
        self.call(request::UnblockPin { principal, puk, new_pin })
    }

    /// ChangePin: the logged-in principal's own PIN, from `pin` to `new_pin`.
    pub fn change_pin(&mut self, pin: &[u8], new_pin: &[u8]) -> Result<()> {
        self.call(request::ChangePin { pin, new_pin })
    }

    /// FactoryReset: erases every key, principal and log entry.
    pub fn factory_reset(&mut self) -> Result<()> {
        self.call(request::FactoryReset { confirm: pkms_protocol::access::FACTORY_RESET_CONFIRMATION })
    }

    /// GetAuditCheckpoint.
    pub fn get_audit_checkpoint(&mut self) -> Result<AuditCheckpoint> {
        self.call(request::GetAuditCheckpoint {})
    }

    /// ReadAuditLog: encoded entries from `start_sequence` on (at most `limit`).
    pub fn read_audit_log(&mut self, start_sequence: u64, limit: u16) -> Result<Vec<u8>> {
        self.call(request::ReadAuditLog { start_sequence, limit })
    }

    /// TrimAuditLog: drop entries through `through_sequence` (administrators).
    pub fn trim_audit_log(&mut self, through_sequence: u64) -> Result<()> {
        self.call(request::TrimAuditLog { through_sequence })
    }

    /// GetKeyPolicy: the key id and its compact policy.
    pub fn get_key_policy(&mut self, key_id: &str) -> Result<(KeyId, Vec<u8>)> {
        self.call(request::GetKeyPolicy { key_id })
    }

    /// PutKeyPolicy (compact policy).
    pub fn put_key_policy(&mut self, key_id: &str, policy: &[u8]) -> Result<()> {
        self.call(request::PutKeyPolicy { key_id, policy })
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
        self.call(request::CreateGrant { key_id, grantee, operations, constraint, name })
    }

    /// ListGrants.
    pub fn list_grants(&mut self, key_id: &str) -> Result<Vec<Grant>> {
        self.call(request::ListGrants { key_id })
    }

    /// RetireGrant.
    pub fn retire_grant(&mut self, key_id: &str, grant_id: &str) -> Result<()> {
        self.call(request::RetireGrant { key_id, grant_id })
    }

    /// RevokeGrant.
    pub fn revoke_grant(&mut self, key_id: &str, grant_id: &str) -> Result<()> {
        self.call(request::RevokeGrant { key_id, grant_id })
    }
}
