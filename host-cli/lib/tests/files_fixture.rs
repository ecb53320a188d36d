//! Format compatibility: a file written by an earlier `pkms` must still decrypt.
//!
//! `tests/fixtures/v1-seg16k.pkms` was written by the envelope code of commit 2cf2c04, whose
//! segments were sealed by RustCrypto `aes-gcm` 0.10, through `Envelope::encrypt` with the test
//! fake token (`files_support::FakeToken`), 16 KiB segments, one thread and context
//! `format=v1, purpose=fixture`. Its plaintext is `v1-seg16k.plain` (= `files_support::data(40_000,
//! 0x5eed)`: two full segments and a 7232-byte final one) and the data key the fake token
//! generated for it is `v1-seg16k.datakey.hex`. The fake's KMS key was random and is gone, so this
//! test's key service hands out the recorded data key instead of unwrapping the blob.

mod files_support;

use files_support::{data, SYM_KEY};
use pkms_lib::datakey_cache::DataKeyCache;
use pkms_lib::envelope::format::SEGMENT_TAG_LEN;
use pkms_lib::envelope::{
    ContextPairs, DataKey, DecryptPolicy, Envelope, EnvelopeError, KeyService, KeyServiceError,
    KeyServiceResult, Options,
};
use pkms_protocol::ErrorCode;
use zeroize::Zeroizing;

const FILE: &[u8] = include_bytes!("fixtures/v1-seg16k.pkms");
const PLAIN: &[u8] = include_bytes!("fixtures/v1-seg16k.plain");
const DATA_KEY_HEX: &str = include_str!("fixtures/v1-seg16k.datakey.hex");

fn context() -> Vec<(String, String)> {
    vec![("format".into(), "v1".into()), ("purpose".into(), "fixture".into())]
}

fn data_key() -> [u8; 32] {
    let hex = DATA_KEY_HEX.trim();
    assert_eq!(hex.len(), 64);
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    k
}

/// Unwraps only for the fixture's key and context, returning the recorded data key (or `key`).
struct Recorded {
    key: [u8; 32],
    unwraps: usize,
}

impl KeyService for Recorded {
    fn generate_data_key(&mut self, _: &str, _: &ContextPairs) -> KeyServiceResult<DataKey> {
        panic!("the fixture test only decrypts")
    }
    fn decrypt(
        &mut self,
        blob: &[u8],
        ctx: &ContextPairs,
        _: Option<&str>,
    ) -> KeyServiceResult<Zeroizing<Vec<u8>>> {
        let refused = |message: &str| {
            KeyServiceError::Client(pkms_lib::Error::Token {
                code: ErrorCode::InvalidCiphertext,
                message: message.to_owned(),
            })
        };
        let parsed = pkms_protocol::blob::parse(blob).ok_or_else(|| refused("not a blob"))?;
        if parsed.header.key_id.to_string() != SYM_KEY || *ctx != context()[..] {
            return Err(refused("not the fixture's key and context"));
        }
        self.unwraps += 1;
        Ok(Zeroizing::new(self.key.to_vec()))
    }
}

fn decrypt(
    file: &[u8],
    key: [u8; 32],
    threads: usize,
    batch: usize,
) -> (Result<u64, EnvelopeError>, Vec<u8>) {
    let mut svc = Recorded { key, unwraps: 0 };
    let mut cache = DataKeyCache::disabled();
    let mut out = Vec::new();
    // The segment size comes from the file; this one only shapes the options.
    let opts = Options { segment_size: 64 * 1024, threads, batch_segments: batch };
    let r = Envelope::new(&mut svc, &mut cache, opts).decrypt(
        &mut &file[..],
        &mut out,
        &DecryptPolicy::default(),
    );
    let r = r.map(|s| {
        assert_eq!(s.key_id, SYM_KEY);
        assert_eq!(s.context, context());
        assert_eq!(svc.unwraps, 1);
        s.segments
    });
    (r, out)
}

#[test]
fn the_fixture_is_what_it_says() {
    assert_eq!(PLAIN, &data(40_000, 0x5eed)[..]);
    // Header ‖ 2 × (16384 + 16) ‖ (7232 + 16).
    assert_eq!(&FILE[..4], b"PKMF");
    assert_eq!(u32::from_be_bytes([FILE[6], FILE[7], FILE[8], FILE[9]]), 16384);
    let body = 2 * (16384 + SEGMENT_TAG_LEN) + 7232 + SEGMENT_TAG_LEN;
    assert!(FILE.len() > body);
}

#[test]
fn a_file_written_by_the_aes_gcm_crate_decrypts() {
    for (threads, batch) in [(1, 1), (1, 32), (2, 2), (3, 1)] {
        let (r, out) = decrypt(FILE, data_key(), threads, batch);
        assert_eq!(r.unwrap(), 3, "threads {threads} batch {batch}");
        assert!(out == PLAIN, "threads {threads} batch {batch}: plaintext differs");
    }
}

#[test]
fn the_fixture_still_detects_tampering_and_a_wrong_key() {
    let mut wrong = data_key();
    wrong[0] ^= 1;
    let (r, out) = decrypt(FILE, wrong, 1, 4);
    assert!(matches!(r, Err(EnvelopeError::HeaderTag)), "{r:?}");
    assert!(out.is_empty());

    let n = FILE.len();
    for (pos, what) in [(n - 17, "segment 2 (the final one"), (n - 7248 - 17, "segment 1:")] {
        let mut file = FILE.to_vec();
        file[pos] ^= 0x01;
        let (r, out) = decrypt(&file, data_key(), 2, 1);
        let msg = r.unwrap_err().to_string();
        assert!(msg.starts_with(what), "{msg}");
        // Only the segments before the failing one were released, and they are the fixture's.
        let released = if what.starts_with("segment 2") { 2 * 16384 } else { 16384 };
        assert_eq!(out, PLAIN[..released]);
    }

    let (r, _) = decrypt(&FILE[..n - 7248], data_key(), 1, 4);
    assert!(matches!(r, Err(EnvelopeError::Truncated { segments: 2 })), "{r:?}");
}
