//! The audit log's export file and its offline verification: what `pkms audit export` writes
//! and `pkms audit verify` checks, with only the device's public key.
//!
//! Export file (binary, big-endian):
//! ```text
//! "PKMSAUD1"
//! u16 len, device public key (DER SubjectPublicKeyInfo)
//! u64 first_sequence
//! u16 len, base signature (over checkpoint_digest(first_sequence - 1, entry[0].prev_hash); empty when first_sequence = 1)
//! u64 checkpoint sequence, 32-byte checkpoint hash, u16 len, checkpoint signature
//! u32 n, then n entries of AUDIT_ENTRY_LEN bytes (first_sequence .. checkpoint sequence)
//! ```

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::EncodePublicKey;
use pkms_protocol::access::{checkpoint_digest, AuditEntry, AUDIT_ENTRY_LEN};

use crate::client::AuditCheckpoint;

const MAGIC: &[u8; 8] = b"PKMSAUD1";

fn put16(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

/// Writes the export of `cp` and `entries` (encoded) to bytes.
pub fn export_bytes(cp: &AuditCheckpoint, entries: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    put16(&mut out, &cp.public_key);
    out.extend_from_slice(&cp.first_sequence.to_be_bytes());
    put16(&mut out, &cp.base_signature);
    out.extend_from_slice(&cp.sequence.to_be_bytes());
    out.extend_from_slice(&cp.hash);
    put16(&mut out, &cp.signature);
    out.extend_from_slice(&((entries.len() / AUDIT_ENTRY_LEN) as u32).to_be_bytes());
    out.extend_from_slice(entries);
    out
}

/// A parsed export.
#[derive(Debug)]
pub struct Export {
    /// Device public key (DER) the file names.
    pub public_key: Vec<u8>,
    /// Oldest sequence number.
    pub first_sequence: u64,
    /// Signature behind the first entry.
    pub base_signature: Vec<u8>,
    /// Checkpoint sequence number.
    pub sequence: u64,
    /// Checkpoint hash.
    pub hash: [u8; 32],
    /// Checkpoint signature.
    pub signature: Vec<u8>,
    /// Raw entries.
    pub entries: Vec<Vec<u8>>,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
    }
}

/// Parses an export file.
pub fn parse_export(bytes: &[u8]) -> Option<Export> {
    let mut r = Reader(bytes);
    if r.take(8)? != MAGIC {
        return None;
    }
    let n = r.u16()?;
    let public_key = r.take(n)?.to_vec();
    let first_sequence = r.u64()?;
    let n = r.u16()?;
    let base_signature = r.take(n)?.to_vec();
    let sequence = r.u64()?;
    let hash: [u8; 32] = r.take(32)?.try_into().ok()?;
    let n = r.u16()?;
    let signature = r.take(n)?.to_vec();
    let count = u32::from_be_bytes(r.take(4)?.try_into().ok()?) as usize;
    let mut entries = Vec::new();
    for _ in 0..count {
        entries.push(r.take(AUDIT_ENTRY_LEN)?.to_vec());
    }
    if !r.0.is_empty() {
        return None;
    }
    Some(Export { public_key, first_sequence, base_signature, sequence, hash, signature, entries })
}

/// Why an export does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The file is not an export.
    Format,
    /// The file names another device key than the one given.
    WrongKey,
    /// The head checkpoint's signature is bad (the header was altered).
    Checkpoint,
    /// The base checkpoint behind the first entry is bad.
    Base,
    /// Entry `index` (sequence `sequence`) is altered, missing, reordered or inserted.
    Entry {
        /// Position in the file (0-based).
        index: usize,
        /// Its expected sequence number.
        sequence: u64,
    },
}

fn check_sig(key: &VerifyingKey, sequence: u64, hash: &[u8; 32], sig: &[u8]) -> bool {
    Signature::from_der(sig).is_ok_and(|s| key.verify_prehash(&checkpoint_digest(sequence, hash), &s).is_ok())
}

/// Verifies an export with the device key `key`; returns the decoded entries.
pub fn verify_export(e: &Export, key: &VerifyingKey) -> Result<Vec<AuditEntry>, VerifyError> {
    let der = key.to_public_key_der().map_err(|_| VerifyError::Format)?;
    if der.as_bytes() != e.public_key.as_slice() {
        return Err(VerifyError::WrongKey);
    }
    if !check_sig(key, e.sequence, &e.hash, &e.signature) {
        return Err(VerifyError::Checkpoint);
    }
    let n = e.entries.len();
    // The first sequence number is not signed: any value may be in the file, so no sum with it
    // may overflow.
    let end = e.first_sequence.checked_add(n as u64);
    if e.first_sequence == 0 || end.is_none() || end != e.sequence.checked_add(1) {
        // Entries missing or added at the end.
        return Err(VerifyError::Entry {
            index: n.saturating_sub(1),
            sequence: e.first_sequence.saturating_add(n as u64),
        });
    }
    let decoded: Vec<Option<AuditEntry>> = e.entries.iter().map(|b| AuditEntry::decode(b)).collect();
    for (i, d) in decoded.iter().enumerate() {
        if d.is_none_or(|d| d.sequence != e.first_sequence + i as u64) {
            return Err(VerifyError::Entry { index: i, sequence: e.first_sequence + i as u64 });
        }
    }
    let entries: Vec<AuditEntry> = decoded.into_iter().flatten().collect();
    // link(i): what entry i says came before it matches; link(n): the checkpoint's hash.
    let link = |i: usize| -> bool {
        if i == n {
            return entries[n - 1].hash() == e.hash;
        }
        if i == 0 {
            return true;
        }
        entries[i].prev_hash == entries[i - 1].hash()
    };
    if n == 0 {
        return Ok(entries);
    }
    let base_ok = if e.first_sequence == 1 {
        entries[0].prev_hash == [0; 32]
    } else {
        check_sig(key, e.first_sequence - 1, &entries[0].prev_hash, &e.base_signature)
    };
    if let Some(f) = (1..=n).find(|&i| !link(i)) {
        // A changed entry breaks the link after it; a changed prev_hash also the one before.
        let bad = if f < n && !link(f + 1) { f } else { f - 1 };
        return Err(VerifyError::Entry { index: bad, sequence: e.first_sequence + bad as u64 });
    }
    if !base_ok {
        // The chain holds up to the signed head, so entry 0's prev_hash is what was altered,
        // or entries were dropped without the token's signature.
        return Err(if e.first_sequence == 1 {
            VerifyError::Entry { index: 0, sequence: 1 }
        } else {
            VerifyError::Base
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::ecdsa::SigningKey;

    use super::*;

    /// An export whose head checkpoint is genuinely signed but whose (unsigned) first sequence
    /// number is edited to values near the ends of the range is refused, not a panic on
    /// overflow (found by the audit_verify fuzz target's kind of input).
    #[test]
    fn an_edited_first_sequence_number_is_refused_without_overflow() {
        let key = SigningKey::from_slice(&[0x17; 32]).unwrap();
        let entry = AuditEntry {
            sequence: 1000,
            time: 1,
            operation: 1,
            result: 0,
            key_id: [0; 16],
            key_version: 0,
            principal_len: 0,
            principal: [0; pkms_protocol::access::MAX_PRINCIPAL_NAME],
            prev_hash: [3; 32],
        };
        let hash = entry.hash();
        let sig: Signature = key.sign_prehash(&checkpoint_digest(1000, &hash)).unwrap();
        let base: Signature = key.sign_prehash(&checkpoint_digest(999, &[3; 32])).unwrap();
        let mut export = Export {
            public_key: key.verifying_key().to_public_key_der().unwrap().as_bytes().to_vec(),
            first_sequence: 1000,
            base_signature: base.to_der().as_bytes().to_vec(),
            sequence: 1000,
            hash,
            signature: sig.to_der().as_bytes().to_vec(),
            entries: vec![entry.encode().to_vec()],
        };
        assert_eq!(verify_export(&export, key.verifying_key()).unwrap(), vec![entry]);
        for first in [0, 1, 999, 1001, u64::MAX - 1, u64::MAX] {
            export.first_sequence = first;
            assert!(verify_export(&export, key.verifying_key()).is_err(), "first sequence {first}");
        }
    }
}
