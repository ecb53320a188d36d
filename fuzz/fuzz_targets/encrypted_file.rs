//! decrypt-file's format parser (`pkms_lib::envelope`), with a key service that hands out one
//! fixed data key. Two modes, by the first byte:
//! * raw: the rest is an encrypted file as read from disk; decrypting it never panics, and never
//!   succeeds (no input here carries a valid header tag under the fixed key… unless the fuzzer
//!   forges HMAC-SHA-256, which would be the finding);
//! * round trip: a plaintext and segment size from the input are encrypted, then the file is
//!   changed as the input says (flipped bytes, truncation, appended bytes): an unchanged file
//!   decrypts to exactly the plaintext, and any changed one is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pkms_lib::datakey_cache::DataKeyCache;
use pkms_lib::envelope::{
    ContextPairs, DataKey, DecryptPolicy, Envelope, KeyService, KeyServiceResult, Options,
};
use zeroize::Zeroizing;

const KEY_ID: &str = "11111111-1111-1111-1111-111111111111";
const DATA_KEY: [u8; 32] = [0x42; 32];

struct FixedKey;

impl KeyService for FixedKey {
    fn generate_data_key(&mut self, key_id: &str, _context: &ContextPairs) -> KeyServiceResult<DataKey> {
        // A blob of the token's shape (its header names the key), wrapping nothing real.
        let key = pkms_protocol::KeyId::parse(key_id).unwrap_or(pkms_protocol::KeyId([0x11; 16]));
        let header = pkms_protocol::blob::BlobHeader { key_id: key, key_version: 1, nonce: [7; 12] };
        let mut ciphertext_blob = header.to_bytes().to_vec();
        ciphertext_blob.extend_from_slice(&[0xB1; 32 + pkms_protocol::blob::TAG_LEN]);
        Ok(DataKey { plaintext: Zeroizing::new(DATA_KEY), ciphertext_blob, key_id: key.to_string() })
    }
    fn decrypt(
        &mut self,
        _blob: &[u8],
        _context: &ContextPairs,
        _key_id: Option<&str>,
    ) -> KeyServiceResult<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(DATA_KEY.to_vec()))
    }
}

fn options(segment_size: u32) -> Options {
    Options { segment_size, threads: 1, batch_segments: 4 }
}

fn decrypt(file: &[u8]) -> Option<Vec<u8>> {
    let mut service = FixedKey;
    let mut cache = DataKeyCache::disabled();
    let mut envelope = Envelope::new(&mut service, &mut cache, options(64));
    let mut out = Vec::new();
    let mut input = file;
    envelope.decrypt(&mut input, &mut out, &DecryptPolicy::default()).ok().map(|_| out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        assert!(decrypt(rest).is_none(), "a file not made under the key decrypted");
        return;
    }
    // Round trip: [segment size byte][plaintext length: 2 bytes][plaintext][changes…]
    if rest.len() < 3 {
        return;
    }
    let segment_size = 16 + u32::from(rest[0]) * 4;
    let len = (usize::from(rest[1]) << 8 | usize::from(rest[2])).min(rest.len() - 3).min(4096);
    let plaintext = &rest[3..3 + len];
    let changes = &rest[3 + len..];
    let context = vec![("purpose".to_owned(), "fuzz".to_owned())];
    let mut service = FixedKey;
    let mut cache = DataKeyCache::disabled();
    let mut file = Vec::new();
    {
        let mut envelope = Envelope::new(&mut service, &mut cache, options(segment_size));
        let mut input = plaintext;
        envelope
            .encrypt(KEY_ID, &context, &mut input, Some(plaintext.len() as u64), &mut file)
            .expect("encryption with a working key service");
    }
    let mut changed = file.clone();
    for change in changes.chunks(3) {
        match change {
            // Flip bits at a position.
            [0, at, bits] if *bits != 0 => {
                let i = usize::from(*at) * changed.len() / 256;
                if let Some(b) = changed.get_mut(i) {
                    *b ^= *bits;
                }
            }
            // Truncate.
            [1, at, _] => {
                let keep = usize::from(*at) * changed.len() / 256;
                changed.truncate(keep);
            }
            // Append.
            [2, b, _] => changed.push(*b),
            _ => {}
        }
    }
    match decrypt(&changed) {
        Some(out) => {
            assert!(changed == file, "a changed file decrypted");
            assert_eq!(out, plaintext, "the file decrypted to something else");
        }
        None => assert!(changed != file, "an unchanged file did not decrypt"),
    }
});
