//! Who may use a key: principals and roles, the compact key-policy and grant format shared by
//! the token (which evaluates it) and the host (which converts it to and from KMS-shaped JSON),
//! and the audit-log entry format with its SHA-256 chain and signed checkpoints.
//!
//! Policies travel and are stored as postcard-encoded [`Policy`] values (at most
//! [`MAX_POLICY_BYTES`]). Actions are bits of a `u64`: each operation declares its [`Action`]s
//! and their bits in [`crate::operations`].

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::context::ContextPair;
pub use crate::operations::{Action, ALL_ACTIONS, GRANT_OPERATIONS};

/// Longest principal name (bytes; `[A-Za-z0-9_.@-]`).
pub const MAX_PRINCIPAL_NAME: usize = 32;
/// Most principals a token holds (the administrator included).
pub const MAX_PRINCIPALS: usize = 16;
/// PIN and PUK length bounds (bytes).
pub const MIN_PIN: usize = 6;
/// See [`MIN_PIN`].
pub const MAX_PIN: usize = 64;
/// Wrong PINs (and wrong PUKs) before a principal (or the PUK) is blocked.
pub const PIN_RETRIES: u8 = 8;
/// Largest encoded policy.
pub const MAX_POLICY_BYTES: usize = 1024;
/// Most statements in a policy.
pub const MAX_STATEMENTS: usize = 8;
/// Most principals named by one statement.
pub const MAX_STATEMENT_PRINCIPALS: usize = 8;
/// Most encryption-context pairs in one condition or grant constraint.
pub const MAX_CONDITION_PAIRS: usize = 8;
/// Most grants on one key.
pub const MAX_GRANTS: usize = 8;
/// Longest grant name.
pub const MAX_GRANT_NAME: usize = 64;
/// Largest encoded grant constraint.
pub const MAX_CONSTRAINT_BYTES: usize = 256;
/// Most audit entries one ReadAuditLog answer carries.
pub const MAX_AUDIT_PAGE: usize = 40;
/// The principal pattern that matches every administrator.
pub const ADMINS: &str = "role/admin";
/// The principal pattern that matches every authenticated principal.
pub const ANYONE: &str = "*";
/// What FactoryReset's `confirm` must say.
pub const FACTORY_RESET_CONFIRMATION: &str = "erase every key on this token";
/// The administrator principal `init` creates.
pub const ADMIN_NAME: &str = "admin";

/// What a principal may do besides what key policies allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Manages principals, reads and trims the audit log, factory-resets; matches `role/admin`.
    Admin,
    /// Uses keys as their policies and grants allow.
    User,
}

/// What the token does when its audit log region is full (chosen at initialisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditFullMode {
    /// Drop the oldest entries behind a signed checkpoint.
    Overwrite,
    /// Refuse operations (AuditLogFull) until the log is exported and trimmed ("force audit").
    Refuse,
}

/// The audit log as the token reports it to a principal who logs in: it follows the frame of
/// a successful Authenticate's answer in a session (see
/// [`crate::framing::decode_response_with_status`]), so that a host can warn before the log is
/// full without asking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLogStatus {
    /// Entries the log holds.
    pub entries: u32,
    /// Most entries it holds (the board's figure).
    pub capacity: u32,
    /// Entries it can still take before it is full: `capacity - entries`, or fewer when the keys
    /// leave it less flash than its capacity.
    pub room: u32,
    /// What the token does once it is full.
    pub when_full: AuditFullMode,
}

/// A principal as ListPrincipals reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalEntry<'a> {
    /// Name.
    pub name: &'a str,
    /// Role.
    pub role: Role,
    /// PIN tries left (0: locked).
    pub pin_retries_left: u8,
}

/// A grant as ListGrants reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantEntry<'a> {
    /// GrantId (32 hex digits).
    pub grant_id: &'a str,
    /// Name (may be empty).
    pub name: &'a str,
    /// GranteePrincipal.
    pub grantee: &'a str,
    /// Who created it.
    pub issuer: &'a str,
    /// Operations, as [`Action`] bits.
    pub operations: u64,
    /// Constraints, if any.
    #[serde(borrow)]
    pub constraint: Option<Condition<'a>>,
    /// CreationDate.
    pub created: u64,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Allows the actions.
    Allow,
    /// Denies them; beats any Allow.
    Deny,
}

/// How a condition compares encryption contexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionKind {
    /// The request's context equals the pairs exactly (EncryptionContextEquals).
    Equals,
    /// The pairs are a subset of the request's context (EncryptionContextSubset; KMS's
    /// `StringEquals` on `kms:EncryptionContext:KEY`).
    Subset,
}

/// A condition on the request's encryption context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition<'a> {
    /// Equals or subset.
    pub kind: ConditionKind,
    /// The pairs.
    #[serde(borrow)]
    pub pairs: heapless::Vec<ContextPair<'a>, MAX_CONDITION_PAIRS>,
}

impl Condition<'_> {
    /// Whether `context` satisfies the condition (order of pairs is irrelevant).
    pub fn matches(&self, context: &[ContextPair<'_>]) -> bool {
        let subset = self.pairs.iter().all(|(k, v)| context.iter().any(|(ck, cv)| ck == k && cv == v));
        match self.kind {
            ConditionKind::Subset => subset,
            ConditionKind::Equals => {
                subset && context.iter().all(|(ck, cv)| self.pairs.iter().any(|(k, v)| ck == k && cv == v))
            }
        }
    }
}

/// One policy statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement<'a> {
    /// Allow or deny.
    pub effect: Effect,
    /// Principal names, [`ADMINS`] or [`ANYONE`] (on the token: principal references, see
    /// the token's `records::PrincipalRef`).
    #[serde(borrow)]
    pub principals: heapless::Vec<&'a str, MAX_STATEMENT_PRINCIPALS>,
    /// [`Action`] bits.
    pub actions: u64,
    /// Optional condition on the encryption context (for CreateGrant: on the grant's
    /// constraint pairs).
    pub condition: Option<Condition<'a>>,
    /// KMS's `kms:GrantOperations` condition (`ForAllValues:StringEquals`): on an Allow
    /// statement that names `kms:CreateGrant`, the statement allows CreateGrant only for grants
    /// whose operations are all among these [`GRANT_OPERATIONS`] bits. Other actions are not
    /// affected. Encoded after the statements (see [`Policy`]), so policies without it keep
    /// their bytes.
    #[serde(skip)]
    pub grant_operations: Option<u64>,
}

/// A key policy.
///
/// Encoding: the postcard sequence of statements; then, only if some statement has a
/// `kms:GrantOperations` limit, one `Option<u64>` per statement (postcard sequence). A policy
/// without limits encodes exactly as before limits existed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy<'a> {
    /// Statements.
    pub statements: heapless::Vec<Statement<'a>, MAX_STATEMENTS>,
}

impl Serialize for Policy<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let limits: heapless::Vec<Option<u64>, MAX_STATEMENTS> =
            self.statements.iter().map(|st| st.grant_operations).collect();
        if limits.iter().all(Option::is_none) {
            self.statements.serialize(s)
        } else {
            (&self.statements, &limits).serialize(s)
        }
    }
}

/// What a policy decides for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An Allow statement matched and no Deny did.
    Allow,
    /// A Deny statement matched.
    Deny,
    /// No statement matched (deny, unless a grant allows).
    NoMatch,
}

impl<'a> Policy<'a> {
    /// Decodes a policy of at most [`MAX_POLICY_BYTES`]; `None` if the bytes are not exactly
    /// one valid policy.
    pub fn decode(bytes: &'a [u8]) -> Option<Policy<'a>> {
        Self::decode_within(bytes, MAX_POLICY_BYTES)
    }

    /// As [`Policy::decode`], with another size limit (the token stores policies with principal
    /// references, which may be longer than the names they replace).
    pub fn decode_within(bytes: &'a [u8], max_bytes: usize) -> Option<Policy<'a>> {
        if bytes.len() > max_bytes {
            return None;
        }
        type Statements<'a> = heapless::Vec<Statement<'a>, MAX_STATEMENTS>;
        let (statements, rest): (Statements<'a>, &[u8]) = postcard::take_from_bytes(bytes).ok()?;
        let mut p = Policy { statements };
        if !rest.is_empty() {
            let (limits, rest): (heapless::Vec<Option<u64>, MAX_STATEMENTS>, &[u8]) =
                postcard::take_from_bytes(rest).ok()?;
            // One limit per statement, and only when there is one (one encoding per policy).
            if !rest.is_empty() || limits.len() != p.statements.len() || limits.iter().all(Option::is_none) {
                return None;
            }
            for (s, l) in p.statements.iter_mut().zip(limits.iter()) {
                s.grant_operations = *l;
            }
        }
        if p.statements.is_empty() {
            return None;
        }
        for s in &p.statements {
            if s.principals.is_empty() || s.actions == 0 || s.actions & !ALL_ACTIONS != 0 {
                return None;
            }
            if let Some(limit) = s.grant_operations {
                let limits_create_grant =
                    s.effect == Effect::Allow && s.actions & Action::CreateGrant.bit() != 0;
                if !limits_create_grant || limit == 0 || limit & !GRANT_OPERATIONS != 0 {
                    return None;
                }
            }
        }
        Some(p)
    }

    /// Evaluates the policy for `principal` with `is_admin`, doing `action` with `context`.
    /// Explicit Deny beats Allow.
    pub fn decide(
        &self,
        principal: &str,
        is_admin: bool,
        action: u64,
        context: &[ContextPair<'_>],
    ) -> Decision {
        self.decide_grant(principal, is_admin, action, context, 0)
    }

    /// As [`Policy::decide`], for a CreateGrant of a grant with `grant_operations`: an Allow
    /// statement with a `kms:GrantOperations` limit matches CreateGrant only when every one of
    /// them is within the limit.
    pub fn decide_grant(
        &self,
        principal: &str,
        is_admin: bool,
        action: u64,
        context: &[ContextPair<'_>],
        grant_operations: u64,
    ) -> Decision {
        let mut allowed = false;
        for s in &self.statements {
            let who =
                s.principals.iter().any(|p| *p == ANYONE || *p == principal || (*p == ADMINS && is_admin));
            let cond = s.condition.as_ref().is_none_or(|c| c.matches(context));
            let within = s.grant_operations.is_none_or(|limit| {
                action & Action::CreateGrant.bit() == 0 || grant_operations & !limit == 0
            });
            if who && s.actions & action != 0 && cond && within {
                match s.effect {
                    Effect::Deny => return Decision::Deny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::NoMatch
        }
    }
}

/// Whether a grant constraint `child` is at least as strict as `parent` (KMS's rule for a grant
/// created under a grant): every encryption context that satisfies `child` satisfies `parent`.
/// No constraint is the loosest; `EncryptionContextSubset` P admits a subset constraint with at
/// least P's pairs, or an equals constraint that holds them; `EncryptionContextEquals` P admits
/// only an equals constraint with exactly P's pairs.
pub fn constraint_within(child: Option<&Condition<'_>>, parent: Option<&Condition<'_>>) -> bool {
    let holds = |a: &Condition<'_>, b: &Condition<'_>| a.pairs.iter().all(|p| b.pairs.contains(p));
    match (parent, child) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(p), Some(c)) => match (p.kind, c.kind) {
            (ConditionKind::Subset, ConditionKind::Subset | ConditionKind::Equals) => holds(p, c),
            (ConditionKind::Equals, ConditionKind::Equals) => holds(p, c) && holds(c, p),
            (ConditionKind::Equals, ConditionKind::Subset) => false,
        },
    }
}

/// Encodes the default policy (administrators, and `creator` if given, may do everything)
/// into `out`; returns its length.
pub fn default_policy(creator: Option<&str>, out: &mut [u8]) -> Option<usize> {
    let mut principals = heapless::Vec::new();
    principals.push(ADMINS).ok()?;
    if let Some(c) = creator {
        principals.push(c).ok()?;
    }
    let mut statements = heapless::Vec::new();
    statements
        .push(Statement {
            effect: Effect::Allow,
            principals,
            actions: ALL_ACTIONS,
            condition: None,
            grant_operations: None,
        })
        .ok()?;
    postcard::to_slice(&Policy { statements }, out).ok().map(|s| s.len())
}

/// The bit of an action name (`kms:Encrypt`, case-sensitive); `kms:*` is every bit.
pub fn action_bits(name: &str) -> Option<u64> {
    if name == "kms:*" {
        return Some(ALL_ACTIONS);
    }
    Action::ALL.iter().find(|a| a.name() == name).map(|a| a.bit())
}

/// Whether a principal name is valid: 1..=32 bytes of `[A-Za-z0-9_.@-]`.
pub fn valid_principal_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PRINCIPAL_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.@-".contains(&b))
}

// ---------------------------------------------------------------------------------------------
// Audit log

/// Bytes of one encoded audit entry.
pub const AUDIT_ENTRY_LEN: usize = 8 + 8 + 2 + 2 + 16 + 4 + 1 + MAX_PRINCIPAL_NAME + 32;

/// One audit-log entry. Encoded as fixed-size big-endian fields (see [`AuditEntry::encode`]);
/// its hash is SHA-256 of that encoding, and each entry carries the hash of the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditEntry {
    /// Sequence number (1 for the first entry ever written).
    pub sequence: u64,
    /// Token wall time (Unix seconds, the high-water mark).
    pub time: u64,
    /// The request's operation: its [`crate::Request`] variant index.
    pub operation: u16,
    /// 0 for success, else 1 + the [`crate::ErrorCode`] index.
    pub result: u16,
    /// The key concerned (all zeros: none).
    pub key_id: [u8; 16],
    /// The key version concerned (0: none or unknown).
    pub key_version: u32,
    /// Principal name length (0: unauthenticated).
    pub principal_len: u8,
    /// Principal name, zero padded.
    pub principal: [u8; MAX_PRINCIPAL_NAME],
    /// Hash of the previous entry (all zeros before the first).
    pub prev_hash: [u8; 32],
}

impl AuditEntry {
    /// The fixed-size encoding.
    pub fn encode(&self) -> [u8; AUDIT_ENTRY_LEN] {
        let mut o = [0u8; AUDIT_ENTRY_LEN];
        o[0..8].copy_from_slice(&self.sequence.to_be_bytes());
        o[8..16].copy_from_slice(&self.time.to_be_bytes());
        o[16..18].copy_from_slice(&self.operation.to_be_bytes());
        o[18..20].copy_from_slice(&self.result.to_be_bytes());
        o[20..36].copy_from_slice(&self.key_id);
        o[36..40].copy_from_slice(&self.key_version.to_be_bytes());
        o[40] = self.principal_len;
        o[41..41 + MAX_PRINCIPAL_NAME].copy_from_slice(&self.principal);
        o[41 + MAX_PRINCIPAL_NAME..].copy_from_slice(&self.prev_hash);
        o
    }

    /// Decodes an entry; `None` if `b` is not [`AUDIT_ENTRY_LEN`] bytes or the name length is
    /// out of range.
    pub fn decode(b: &[u8]) -> Option<AuditEntry> {
        if b.len() != AUDIT_ENTRY_LEN || b[40] as usize > MAX_PRINCIPAL_NAME {
            return None;
        }
        let u64_at = |i: usize| b[i..i + 8].try_into().ok().map(u64::from_be_bytes);
        let mut e = AuditEntry {
            sequence: u64_at(0)?,
            time: u64_at(8)?,
            operation: u16::from_be_bytes([b[16], b[17]]),
            result: u16::from_be_bytes([b[18], b[19]]),
            key_id: [0; 16],
            key_version: u32::from_be_bytes([b[36], b[37], b[38], b[39]]),
            principal_len: b[40],
            principal: [0; MAX_PRINCIPAL_NAME],
            prev_hash: [0; 32],
        };
        e.key_id.copy_from_slice(&b[20..36]);
        e.principal.copy_from_slice(&b[41..41 + MAX_PRINCIPAL_NAME]);
        e.prev_hash.copy_from_slice(&b[41 + MAX_PRINCIPAL_NAME..]);
        Some(e)
    }

    /// SHA-256 of the encoding.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }

    /// The principal name (empty when unauthenticated).
    pub fn principal_name(&self) -> &str {
        let n = (self.principal_len as usize).min(MAX_PRINCIPAL_NAME);
        core::str::from_utf8(&self.principal[..n]).unwrap_or("?")
    }
}

/// What the token does by itself, recorded in an audit entry's `operation` field with a code
/// above every operation index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    /// An automatic rotation (the entry names the key and its new version).
    AutomaticRotation,
    /// A rotation forced by the encryption limit: the key's newest version had made 2^32
    /// AES-GCM encryptions and automatic rotation was on, so the token rotated it before
    /// encrypting (the entry names the key and its new version; the request's own entry follows).
    EncryptionLimitRotation,
    /// A key deleted when its deletion window ended (the entry names the key).
    AutomaticDeletion,
    /// The clock moved forward by more than a day (the entry's time is the new time; the entry
    /// before it carries an earlier one).
    ClockMoved,
    /// Requests with no one logged in that tried a secret and failed (a wrong PIN or PUK, an
    /// unknown principal, a refused factory reset), merged into one entry: its key-id field
    /// holds the counts ([`UnauthenticatedRequests`]).
    UnauthenticatedRequests,
    /// The token was restored from a backup: the first entry of a restored token's log. Its
    /// key-id field holds the first 16 bytes of the source token's id (SHA-256 of its device
    /// key), its key-version field the backup time (Unix seconds, saturated to 32 bits).
    RestoredFromBackup,
}

impl AuditEvent {
    /// Every event.
    pub const ALL: &'static [AuditEvent] = &[
        AuditEvent::AutomaticRotation,
        AuditEvent::AutomaticDeletion,
        AuditEvent::ClockMoved,
        AuditEvent::UnauthenticatedRequests,
        AuditEvent::EncryptionLimitRotation,
        AuditEvent::RestoredFromBackup,
    ];

    /// The `operation` code.
    pub const fn code(self) -> u16 {
        match self {
            AuditEvent::AutomaticRotation => 0xFF01,
            AuditEvent::AutomaticDeletion => 0xFF02,
            AuditEvent::ClockMoved => 0xFF03,
            AuditEvent::EncryptionLimitRotation => 0xFF04,
            AuditEvent::UnauthenticatedRequests => UNAUTHENTICATED_REQUESTS,
            AuditEvent::RestoredFromBackup => 0xFF05,
        }
    }

    /// The event with `code`, if any.
    pub fn from_code(code: u16) -> Option<AuditEvent> {
        Self::ALL.iter().copied().find(|e| e.code() == code)
    }

    /// Its name in exported logs.
    pub const fn name(self) -> &'static str {
        match self {
            AuditEvent::AutomaticRotation => "AutomaticRotation",
            AuditEvent::AutomaticDeletion => "AutomaticDeletion",
            AuditEvent::ClockMoved => "ClockMoved",
            AuditEvent::EncryptionLimitRotation => "EncryptionLimitRotation",
            AuditEvent::UnauthenticatedRequests => "UnauthenticatedRequests",
            AuditEvent::RestoredFromBackup => "RestoredFromBackup",
        }
    }
}

/// The `operation` of an audit entry that counts failed tries of a secret with no one logged in
/// instead of one entry each (no request has this index).
pub const UNAUTHENTICATED_REQUESTS: u16 = u16::MAX;

/// What an [`UNAUTHENTICATED_REQUESTS`] entry counts: the requests with no one logged in that
/// were counted since the previous entry was written, kept in its key-id field as four
/// big-endian `u32`s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnauthenticatedRequests {
    /// Answered without error (Hello, GetInfo, session set-up).
    pub answered: u32,
    /// Failed PIN or PUK checks (Authenticate, UnblockPin answered with an error).
    pub failed_authentications: u32,
    /// Other requests refused (no session, a factory reset refused, …).
    pub refused: u32,
    /// Token time of the first one counted (Unix seconds, saturated to 32 bits).
    pub since: u32,
}

impl UnauthenticatedRequests {
    /// How many requests in all.
    pub fn total(&self) -> u64 {
        u64::from(self.answered) + u64::from(self.failed_authentications) + u64::from(self.refused)
    }

    /// The key-id field of the entry.
    pub fn encode(&self) -> [u8; 16] {
        let mut o = [0u8; 16];
        for (i, v) in
            [self.answered, self.failed_authentications, self.refused, self.since].iter().enumerate()
        {
            o[4 * i..4 * i + 4].copy_from_slice(&v.to_be_bytes());
        }
        o
    }

    /// From the key-id field of the entry.
    pub fn decode(b: &[u8; 16]) -> Self {
        let at = |i: usize| u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        UnauthenticatedRequests {
            answered: at(0),
            failed_authentications: at(1),
            refused: at(2),
            since: at(3),
        }
    }
}

/// The name of an audit entry's `operation` code: an operation or an [`AuditEvent`].
pub fn audit_operation_name(code: u16) -> Option<&'static str> {
    crate::Operation::from_index(code)
        .map(|o| o.name())
        .or_else(|| AuditEvent::from_code(code).map(|e| e.name()))
}

impl AuditEntry {
    /// The counts of an [`UNAUTHENTICATED_REQUESTS`] entry (`None` for an entry of one request).
    pub fn unauthenticated_requests(&self) -> Option<UnauthenticatedRequests> {
        (self.operation == UNAUTHENTICATED_REQUESTS).then(|| UnauthenticatedRequests::decode(&self.key_id))
    }
}

/// The SHA-256 digest a checkpoint signature covers: a domain label, the sequence number and
/// the hash of the entry with that number.
pub fn checkpoint_digest(sequence: u64, hash: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"pkms-audit-checkpoint-v1\0");
    h.update(sequence.to_be_bytes());
    h.update(hash);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn audit_entries_round_trip_and_bad_lengths_are_refused() {
        let mut e = AuditEntry {
            sequence: 7,
            time: 1_750_000_000,
            operation: 6,
            result: 0,
            key_id: [3; 16],
            key_version: 2,
            principal_len: 3,
            principal: [0; MAX_PRINCIPAL_NAME],
            prev_hash: [9; 32],
        };
        e.principal[..3].copy_from_slice(b"bob");
        let b = e.encode();
        assert_eq!(AuditEntry::decode(&b), Some(e));
        assert_eq!(e.principal_name(), "bob");
        assert_eq!(AuditEntry::decode(&b[1..]), None);
        let mut bad = b;
        bad[40] = 33;
        assert_eq!(AuditEntry::decode(&bad), None);
        let mut other = e;
        other.key_version = 3;
        assert_ne!(other.hash(), e.hash());
    }

    #[test]
    fn conditions_and_policy_decisions() {
        let mut pairs = heapless::Vec::new();
        pairs.push(("a", "1")).unwrap();
        let subset = Condition { kind: ConditionKind::Subset, pairs: pairs.clone() };
        let equals = Condition { kind: ConditionKind::Equals, pairs };
        assert!(subset.matches(&[("b", "2"), ("a", "1")]));
        assert!(!subset.matches(&[("a", "2")]));
        assert!(!subset.matches(&[]));
        assert!(equals.matches(&[("a", "1")]));
        assert!(!equals.matches(&[("a", "1"), ("b", "2")]));
        let mut buf = [0u8; 256];
        let n = default_policy(Some("bob"), &mut buf).unwrap();
        let p = Policy::decode(&buf[..n]).unwrap();
        assert_eq!(p.decide("bob", false, Action::Sign.bit(), &[]), Decision::Allow);
        assert_eq!(p.decide("x", true, Action::Sign.bit(), &[]), Decision::Allow);
        assert_eq!(p.decide("carol", false, Action::Sign.bit(), &[]), Decision::NoMatch);
        // Trailing bytes, unknown action bits and empty lists are refused.
        let mut longer = buf[..n].to_vec();
        longer.push(0);
        assert!(Policy::decode(&longer).is_none());
        assert!(Policy::decode(&[]).is_none());
        assert!(Policy::decode(&[
            1, 0, 1, 1, b'x', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0
        ])
        .is_none());
        assert_eq!(action_bits("kms:*"), Some(ALL_ACTIONS));
        assert_eq!(action_bits("kms:Encrypt"), Some(Action::Encrypt.bit()));
        assert_eq!(action_bits("kms:encrypt"), None);
        // A kms:GrantOperations limit is encoded after the statements, only when present.
        let mut p = p.clone();
        let plain = postcard::to_allocvec(&p).unwrap();
        assert_eq!(plain, buf[..n].to_vec());
        p.statements[0].grant_operations = Some(Action::Encrypt.bit() | Action::Decrypt.bit());
        let limited = postcard::to_allocvec(&p).unwrap();
        assert!(limited.len() > plain.len());
        let back = Policy::decode(&limited).unwrap();
        assert_eq!(back, p);
        let create = Action::CreateGrant.bit();
        let enc = Action::Encrypt.bit();
        assert_eq!(back.decide_grant("bob", false, create, &[], enc), Decision::Allow);
        assert_eq!(back.decide_grant("bob", false, create, &[], enc | Action::Sign.bit()), Decision::NoMatch);
        assert_eq!(back.decide_grant("bob", false, Action::Sign.bit(), &[], 0), Decision::Allow);
        // A trailer of no limits, a trailer of the wrong length, a limit on a Deny statement, on
        // a statement without kms:CreateGrant, or naming a non-grant operation: refused.
        let mut none_trailer = plain.clone();
        none_trailer.extend_from_slice(&[1, 0]);
        assert!(Policy::decode(&none_trailer).is_none());
        let mut two = plain.clone();
        two.extend_from_slice(&[2, 1, 1, 0]);
        assert!(Policy::decode(&two).is_none());
        for (effect, actions, limit) in [
            (Effect::Deny, ALL_ACTIONS, enc),
            (Effect::Allow, enc, enc),
            (Effect::Allow, ALL_ACTIONS, Action::PutKeyPolicy.bit()),
            (Effect::Allow, ALL_ACTIONS, 0),
        ] {
            let mut q = p.clone();
            q.statements[0].effect = effect;
            q.statements[0].actions = actions;
            q.statements[0].grant_operations = Some(limit);
            assert!(
                Policy::decode(&postcard::to_allocvec(&q).unwrap()).is_none(),
                "{effect:?} {actions} {limit}"
            );
        }
        assert!(valid_principal_name("alice.b@x-y_z"));
        assert!(
            !valid_principal_name("")
                && !valid_principal_name("a b")
                && !valid_principal_name(&"a".repeat(33))
        );
    }

    #[test]
    fn a_child_constraint_must_be_at_least_as_strict_as_its_parent() {
        fn c<'a>(kind: ConditionKind, pairs: &[(&'a str, &'a str)]) -> Condition<'a> {
            Condition { kind, pairs: pairs.iter().copied().collect() }
        }
        use ConditionKind::{Equals, Subset};
        let a = [("app", "x")];
        let ab = [("app", "x"), ("env", "y")];
        let ba = [("env", "y"), ("app", "x")];
        let other = [("app", "z")];
        // No parent constraint: anything goes; a parent constraint: none is looser.
        assert!(constraint_within(None, None));
        assert!(constraint_within(Some(&c(Subset, &a)), None));
        assert!(!constraint_within(None, Some(&c(Subset, &a))));
        // Subset parent: subset or equals children that hold its pairs.
        assert!(constraint_within(Some(&c(Subset, &a)), Some(&c(Subset, &a))));
        assert!(constraint_within(Some(&c(Subset, &ab)), Some(&c(Subset, &a))));
        assert!(constraint_within(Some(&c(Equals, &ab)), Some(&c(Subset, &a))));
        assert!(!constraint_within(Some(&c(Subset, &other)), Some(&c(Subset, &a))));
        assert!(!constraint_within(Some(&c(Subset, &a)), Some(&c(Subset, &ab))));
        assert!(!constraint_within(Some(&c(Equals, &a)), Some(&c(Subset, &ab))));
        // Equals parent: only the same pairs, as equals.
        assert!(constraint_within(Some(&c(Equals, &ba)), Some(&c(Equals, &ab))));
        assert!(!constraint_within(Some(&c(Equals, &a)), Some(&c(Equals, &ab))));
        assert!(!constraint_within(Some(&c(Equals, &ab)), Some(&c(Equals, &a))));
        assert!(!constraint_within(Some(&c(Subset, &ab)), Some(&c(Equals, &ab))));
    }
}
