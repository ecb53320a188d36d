//! What authentication keeps: the token-wide authentication record (its presence means
//! "initialised") and one record per principal.
//!
//! Each principal carries a random [`PrincipalId`]; key policies and grants name principals by
//! it ([`PrincipalRef`]), not by name, so a principal deleted and created again under the same
//! name inherits nothing of the old one. Records written before principals had ids (format 1)
//! still decode; the token gives them ids when it mounts (`auth::migrate`).

use pkms_protocol::access::{Role, MAX_PRINCIPAL_NAME, PIN_RETRIES};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use super::{Kind, Record, RecordId};

/// Format byte of principal records that carry a [`PrincipalId`].
pub const PRINCIPAL_FORMAT: u8 = 2;
/// Format byte of authentication records that count failed PUK tries.
pub const AUTH_FORMAT: u8 = 2;

/// A principal's random id (never all zeros: that value is [`PrincipalId::NONE`]).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrincipalId(pub [u8; 8]);

impl PrincipalId {
    /// No principal: what a name that named no principal becomes when old records are migrated.
    /// Never assigned, so it matches no one.
    pub const NONE: PrincipalId = PrincipalId([0; 8]);

    /// A fresh random id (not [`PrincipalId::NONE`]).
    pub fn random<R: RngCore>(rng: &mut R) -> PrincipalId {
        loop {
            let mut id = [0u8; 8];
            rng.fill_bytes(&mut id);
            if id != [0; 8] {
                return PrincipalId(id);
            }
        }
    }

    /// How key policies and grants name this principal.
    pub fn reference(&self) -> PrincipalRef {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut r = [0u8; PRINCIPAL_REF_LEN];
        r[0] = b'#';
        for (i, b) in self.0.iter().enumerate() {
            r[1 + 2 * i] = HEX[(b >> 4) as usize];
            r[2 + 2 * i] = HEX[(b & 15) as usize];
        }
        PrincipalRef(r)
    }
}

/// Bytes of a [`PrincipalRef`].
pub const PRINCIPAL_REF_LEN: usize = 17;

/// A principal as stored key policies and grants name it: `#` and its id in 16 hex digits.
/// `#` cannot occur in a principal name, nor in `role/admin` or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrincipalRef([u8; PRINCIPAL_REF_LEN]);

impl PrincipalRef {
    /// The reference as text.
    pub fn as_str(&self) -> &str {
        // Only '#' and hex digits are ever written.
        core::str::from_utf8(&self.0).unwrap_or("#")
    }

    /// Whether `s` has the form of a reference (`#` and 16 lowercase hex digits).
    pub fn is_reference(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == PRINCIPAL_REF_LEN
            && b[0] == b'#'
            && b[1..].iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    }
}

/// The token-wide authentication state.
#[derive(Serialize, Deserialize, Zeroize)]
#[zeroize(drop)]
pub struct AuthRecord {
    /// [`AUTH_FORMAT`].
    pub format: u8,
    /// 0: overwrite the oldest audit entries; 1: refuse operations when the log is full.
    pub audit_refuse: bool,
    /// PUK salt.
    pub puk_salt: [u8; 16],
    /// PBKDF2-HMAC-SHA256 of the PUK.
    pub puk_hash: [u8; 32],
    /// Wrong PUKs left before only a factory reset helps (spent only by tries that name an
    /// existing principal).
    pub puk_retries: u8,
    /// Device attestation key (P-256 scalar) that signs audit checkpoints.
    pub attestation_key: [u8; 32],
    /// Failed UnblockPin tries since the last one that succeeded, for any principal name
    /// (existing or not): what the delay before the next try grows with.
    pub puk_failures: u8,
}

/// The authentication record as format 1 wrote it (no failure count).
#[derive(Deserialize, Zeroize)]
#[zeroize(drop)]
struct AuthRecordV1 {
    format: u8,
    audit_refuse: bool,
    puk_salt: [u8; 16],
    puk_hash: [u8; 32],
    puk_retries: u8,
    attestation_key: [u8; 32],
}

impl<'b> Record<'b> for AuthRecord {
    const KIND: Kind = Kind::Auth;
    fn encode(&self, out: &mut [u8]) -> Option<usize> {
        postcard::to_slice(self, out).ok().map(|s| s.len())
    }
    fn decode(bytes: &'b [u8]) -> Option<Self> {
        match bytes.first() {
            Some(&AUTH_FORMAT) => exact(bytes),
            Some(1) => {
                let v1: AuthRecordV1 = exact(bytes)?;
                Some(AuthRecord {
                    format: AUTH_FORMAT,
                    audit_refuse: v1.audit_refuse,
                    puk_salt: v1.puk_salt,
                    puk_hash: v1.puk_hash,
                    puk_retries: v1.puk_retries,
                    attestation_key: v1.attestation_key,
                    // Format 1 counted only spent tries; they are the failures since the last
                    // success.
                    puk_failures: PIN_RETRIES.saturating_sub(v1.puk_retries),
                })
            }
            _ => None,
        }
    }
}

/// A principal.
#[derive(Serialize, Deserialize, Zeroize, Clone)]
#[zeroize(drop)]
pub struct PrincipalRecord {
    /// [`PRINCIPAL_FORMAT`] (1: read from a record written before principals had ids; its
    /// `id` is [`PrincipalId::NONE`] until the mount migrates it).
    pub format: u8,
    /// Name.
    pub name: heapless::String<MAX_PRINCIPAL_NAME>,
    /// Admin or user.
    #[zeroize(skip)]
    pub role: Role,
    /// PIN salt.
    pub salt: [u8; 16],
    /// PBKDF2-HMAC-SHA256 of the PIN.
    pub hash: [u8; 32],
    /// Wrong PINs left (0: locked).
    pub retries: u8,
    /// The random id policies and grants name.
    #[zeroize(skip)]
    pub id: PrincipalId,
}

/// A principal as format 1 wrote it (no id).
#[derive(Deserialize, Zeroize)]
#[zeroize(drop)]
struct PrincipalRecordV1 {
    format: u8,
    name: heapless::String<MAX_PRINCIPAL_NAME>,
    #[zeroize(skip)]
    role: Role,
    salt: [u8; 16],
    hash: [u8; 32],
    retries: u8,
}

impl<'b> Record<'b> for PrincipalRecord {
    const KIND: Kind = Kind::Principal;
    fn encode(&self, out: &mut [u8]) -> Option<usize> {
        postcard::to_slice(self, out).ok().map(|s| s.len())
    }
    fn decode(bytes: &'b [u8]) -> Option<Self> {
        match bytes.first() {
            Some(&PRINCIPAL_FORMAT) => exact(bytes),
            Some(1) => {
                let v1: PrincipalRecordV1 = exact(bytes)?;
                Some(PrincipalRecord {
                    format: 1,
                    name: v1.name.clone(),
                    role: v1.role,
                    salt: v1.salt,
                    hash: v1.hash,
                    retries: v1.retries,
                    id: PrincipalId::NONE,
                })
            }
            _ => None,
        }
    }
}

/// Decodes exactly `bytes` (trailing bytes are refused).
fn exact<'b, T: Deserialize<'b>>(bytes: &'b [u8]) -> Option<T> {
    match postcard::take_from_bytes(bytes) {
        Ok((v, [])) => Some(v),
        Ok(_) | Err(_) => None,
    }
}

/// The store id of principal `name`.
pub fn principal_id(name: &str) -> RecordId {
    let mut h = Sha256::new();
    h.update(b"pkms-principal\0");
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_hash_and_hex_and_never_principal_names() {
        let r = PrincipalId([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]).reference();
        assert_eq!(r.as_str(), "#0123456789abcdef");
        assert!(PrincipalRef::is_reference(r.as_str()));
        assert!(!PrincipalRef::is_reference("#0123456789abcdeF"));
        assert!(!PrincipalRef::is_reference("#0123456789abcde"));
        assert!(!PrincipalRef::is_reference("00123456789abcdef"));
        assert!(!pkms_protocol::access::valid_principal_name(r.as_str()));
        use rand_chacha::rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        assert_ne!(PrincipalId::random(&mut rng), PrincipalId::NONE);
    }

    #[test]
    fn records_of_the_first_format_still_decode() {
        #[derive(Serialize)]
        struct V1<'a> {
            format: u8,
            name: &'a str,
            role: Role,
            salt: [u8; 16],
            hash: [u8; 32],
            retries: u8,
        }
        let mut buf = [0u8; 128];
        let n = postcard::to_slice(
            &V1 { format: 1, name: "bob", role: Role::User, salt: [1; 16], hash: [2; 32], retries: 5 },
            &mut buf,
        )
        .unwrap()
        .len();
        let p = PrincipalRecord::decode(&buf[..n]).unwrap();
        assert_eq!((p.format, p.name.as_str(), p.role, p.retries), (1, "bob", Role::User, 5));
        assert_eq!((p.salt, p.hash, p.id), ([1; 16], [2; 32], PrincipalId::NONE));
        assert!(PrincipalRecord::decode(&buf[..n - 1]).is_none());
        let mut longer = buf[..n + 1].to_vec();
        longer[n] = 0;
        assert!(PrincipalRecord::decode(&longer).is_none());
        buf[0] = 3;
        assert!(PrincipalRecord::decode(&buf[..n]).is_none());

        #[derive(Serialize)]
        struct AuthV1 {
            format: u8,
            audit_refuse: bool,
            puk_salt: [u8; 16],
            puk_hash: [u8; 32],
            puk_retries: u8,
            attestation_key: [u8; 32],
        }
        let n = postcard::to_slice(
            &AuthV1 {
                format: 1,
                audit_refuse: true,
                puk_salt: [3; 16],
                puk_hash: [4; 32],
                puk_retries: 5,
                attestation_key: [6; 32],
            },
            &mut buf,
        )
        .unwrap()
        .len();
        let a = AuthRecord::decode(&buf[..n]).unwrap();
        assert_eq!((a.format, a.audit_refuse, a.puk_retries, a.puk_failures), (AUTH_FORMAT, true, 5, 3));
        assert_eq!((a.puk_salt, a.puk_hash, a.attestation_key), ([3; 16], [4; 32], [6; 32]));
    }
}
