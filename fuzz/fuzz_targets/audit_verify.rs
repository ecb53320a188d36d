//! The audit-log verifier (`pkms audit verify`: `pkms_lib::audit`). Two modes, by the first byte:
//! * raw: the rest is an export file; parsing and verifying it (with the key it names) never
//!   panics;
//! * signed: the input describes a log (first sequence number, entries) that the target chains
//!   and signs as the token would, with a fixed device key, then changes as the input says; the
//!   untouched export verifies and gives back its entries, and every changed one is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use pkms_lib::audit::{parse_export, verify_export};
use pkms_protocol::access::{checkpoint_digest, AuditEntry, MAX_PRINCIPAL_NAME};

fn device_key() -> SigningKey {
    SigningKey::from_slice(&[0x17; 32]).expect("a valid scalar")
}

fn sign(key: &SigningKey, sequence: u64, hash: &[u8; 32]) -> Vec<u8> {
    let s: Signature = key.sign_prehash(&checkpoint_digest(sequence, hash)).expect("signs");
    s.to_der().as_bytes().to_vec()
}

fn put16(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

fn verify(bytes: &[u8]) -> Option<Vec<AuditEntry>> {
    let export = parse_export(bytes)?;
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(&export.public_key).ok()?;
    verify_export(&export, &key).ok()
}

use p256::pkcs8::DecodePublicKey;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        let _ = verify(rest);
        return;
    }
    // [first sequence: 8 bytes][entry count][per entry: time, operation, principal byte]…[changes]
    if rest.len() < 9 {
        return;
    }
    // A log a token can write: its head's successor fits in 64 bits (the verifier refuses an
    // export whose sequence numbers would reach past u64::MAX, signed or not).
    let first = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes")).clamp(1, u64::MAX - 8);
    let n = usize::from(rest[8] % 8);
    let mut at = 9;
    let key = device_key();
    let mut entries = Vec::new();
    let mut prev = [0u8; 32];
    if first > 1 {
        prev = [0xAB; 32];
    }
    let base_hash = prev;
    for i in 0..n {
        let Some(sequence) = first.checked_add(i as u64) else { return };
        let b = rest.get(at..at + 3).unwrap_or(&[0, 0, 0]);
        at += 3;
        let mut principal = [0u8; MAX_PRINCIPAL_NAME];
        principal[0] = b'a' + b[2] % 26;
        let e = AuditEntry {
            sequence,
            time: 1_750_000_000 + u64::from(b[0]),
            operation: u16::from(b[1]),
            result: 0,
            key_id: [b[2]; 16],
            key_version: 1,
            principal_len: 1,
            principal,
            prev_hash: prev,
        };
        prev = e.hash();
        entries.push(e);
    }
    let Some(last) = entries.last() else { return };
    let head = last.sequence;
    let mut file = Vec::new();
    file.extend_from_slice(b"PKMSAUD1");
    put16(&mut file, key.verifying_key().to_public_key_der().expect("DER").as_bytes());
    file.extend_from_slice(&first.to_be_bytes());
    put16(&mut file, &if first > 1 { sign(&key, first - 1, &base_hash) } else { Vec::new() });
    file.extend_from_slice(&head.to_be_bytes());
    file.extend_from_slice(&prev);
    put16(&mut file, &sign(&key, head, &prev));
    file.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in &entries {
        file.extend_from_slice(&e.encode());
    }
    let mut changed = file.clone();
    for change in rest.get(at..).unwrap_or(&[]).chunks(3) {
        match change {
            [0, pos, bits] if *bits != 0 => {
                let i = usize::from(*pos) * changed.len() / 256;
                if let Some(b) = changed.get_mut(i) {
                    *b ^= *bits;
                }
            }
            [1, pos, _] => changed.truncate(usize::from(*pos) * changed.len() / 256),
            [2, b, _] => changed.push(*b),
            _ => {}
        }
    }
    match verify(&changed) {
        Some(got) => {
            assert!(changed == file, "a changed export verified");
            assert_eq!(got, entries);
        }
        None => assert!(changed != file, "a sound export did not verify"),
    }
});
