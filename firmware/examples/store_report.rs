//! Flash budget and wear of the key store, measured through the token's own interface on the
//! RAM mock flash:
//!
//! * flash bytes per key (one version) and per extra key version, for every key spec;
//! * how many keys × versions fit in the 1 MiB the QEMU board reserves and the 128 KiB of the
//!   nRF52840 board;
//! * the erase count of the most-erased page after 10,000 rotations.
//!
//! Run: `cargo run -p pkms-firmware --example store_report --features std --release`
//! (a benchmark that prints numbers; it asserts nothing about speed).

use pkms_firmware::mock_flash::MockFlash;
use pkms_firmware::{TestBoard, Token};
use pkms_protocol::messages::{Request, RequestFrame, Response};
use pkms_protocol::{KeyId, KeySpec, Tags};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

struct Client {
    token: Token<pkms_firmware::Parts<MockFlash, ChaCha20Rng, TestBoard>>,
    out: Vec<u8>,
    req: Vec<u8>,
}

enum Answer {
    Key(KeyId),
    Free(u32),
    Done,
    Refused,
}

impl Client {
    fn new(bytes: usize) -> Self {
        Client {
            token: Token::new(MockFlash::new(bytes), ChaCha20Rng::seed_from_u64(7), TestBoard::new()),
            out: vec![0; pkms_protocol::limits::MAX_ENCODED_FRAME],
            req: vec![0; pkms_protocol::limits::MAX_FRAME],
        }
    }

    fn call(&mut self, request: Request<'_>) -> Answer {
        let frame = RequestFrame { id: 1, now: Some(1_750_000_000), request };
        let n = postcard::to_slice(&frame, &mut self.req).expect("encode").len();
        let m = self.token.handle_payload(&mut self.req[..n], &mut self.out);
        let payload = pkms_protocol::framing::cobs_decode_in_place(&mut self.out[..m - 1]).expect("cobs");
        match pkms_protocol::framing::decode_response(payload).expect("decode").result {
            Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata: meta })) => {
                Answer::Key(meta.key_id)
            }
            Ok(Response::Info(pkms_protocol::reply::Info { info })) => Answer::Free(info.storage_free_bytes),
            Ok(_) => Answer::Done,
            Err(_) => Answer::Refused,
        }
    }

    fn create(&mut self, spec: KeySpec) -> Option<KeyId> {
        match self.call(Request::CreateKey(pkms_protocol::request::CreateKey {
            key_spec: spec,
            key_usage: None,
            description: "",
            tags: Tags::new(),
            user_presence_required: false,
        })) {
            Answer::Key(id) => Some(id),
            _ => None,
        }
    }

    fn rotate(&mut self, key: &KeyId) -> bool {
        let text = key.to_string();
        matches!(
            self.call(Request::RotateKeyOnDemand(pkms_protocol::request::RotateKeyOnDemand {
                key_id: &text
            })),
            Answer::Done
        )
    }

    fn retire(&mut self, key: &KeyId, below: u32) {
        let text = key.to_string();
        self.call(Request::RetireKeyVersions(pkms_protocol::request::RetireKeyVersions {
            key_id: &text,
            below_version: below,
        }));
    }

    fn free(&mut self) -> u32 {
        match self.call(Request::GetInfo(pkms_protocol::request::GetInfo {})) {
            Answer::Free(f) => f,
            _ => 0,
        }
    }
}

fn per_key_and_version() {
    println!("Flash bytes per key (1 version) and per extra version (record headers included):");
    for &spec in KeySpec::ALL {
        let mut c = Client::new(1 << 20);
        let f0 = c.free();
        let keys: Vec<KeyId> = (0..10).filter_map(|_| c.create(spec)).collect();
        let f1 = c.free();
        for k in &keys {
            c.rotate(k);
        }
        let f2 = c.free();
        println!(
            "  {:<21} {:>5} bytes per key, {:>4} bytes per extra version",
            spec.as_str(),
            (f0 - f1) / 10,
            (f1 - f2) / 10
        );
    }
}

fn capacity(bytes: usize, label: &str) {
    println!("Capacity of {label} ({} KiB; {} keys at most, the RAM index bound):", bytes / 1024, 1024);
    for versions in [1u32, 2, 5, 10, 24] {
        let mut c = Client::new(bytes);
        let mut keys = 0u32;
        'fill: while let Some(k) = c.create(KeySpec::SymmetricDefault) {
            for _ in 1..versions {
                if !c.rotate(&k) {
                    break 'fill;
                }
            }
            keys += 1;
        }
        println!(
            "  SYMMETRIC_DEFAULT keys with {versions:>2} versions: {keys:>5} keys = {:>6} key versions",
            keys * versions
        );
    }
}

fn wear(bytes: usize, label: &str) {
    let mut c = Client::new(bytes);
    let keys: Vec<KeyId> = (0..20).filter_map(|_| c.create(KeySpec::SymmetricDefault)).collect();
    let mut version = vec![1u32; keys.len()];
    let mut failed = 0;
    for i in 0..10_000 {
        let k = i % keys.len();
        if c.rotate(&keys[k]) {
            version[k] += 1;
        } else {
            failed += 1;
        }
        // Keep the newest 4 versions, as a user re-encrypting old data would.
        if version[k].is_multiple_of(8) {
            c.retire(&keys[k], version[k] - 3);
        }
    }
    let flash = c.token.into_flash();
    let counts = flash.erase_counts();
    let max = counts.iter().max().copied().unwrap_or(0);
    let min = counts.iter().min().copied().unwrap_or(0);
    let mean = counts.iter().map(|&c| c as f64).sum::<f64>() / counts.len() as f64;
    println!(
        "Wear on {label} after 10,000 rotations of 20 keys (newest 4 versions kept): most-erased page {max} erases, \
         least {min}, mean {mean:.1}; {:.1} MB written; {failed} rotations refused",
        flash.bytes_written() as f64 / 1e6
    );
}

/// Lookup speed with 1,000 keys (host CPU; the RAM index makes lookups a binary search), the
/// time to mount such a store, and the RAM the token struct takes.
fn lookups() {
    let mut c = Client::new(1 << 20);
    let keys: Vec<KeyId> = (0..1000).filter_map(|_| c.create(KeySpec::SymmetricDefault)).collect();
    let t = std::time::Instant::now();
    let rounds = 5000;
    for i in 0..rounds {
        let text = keys[(i * 7919) % keys.len()].to_string();
        c.call(Request::Encrypt(pkms_protocol::request::Encrypt {
            key_id: &text,
            plaintext: b"lookup",
            encryption_context: Default::default(),
        }));
    }
    let per_op = t.elapsed() / rounds as u32;
    let flash = c.token.into_flash();
    let t = std::time::Instant::now();
    let token = Token::<pkms_firmware::Parts<MockFlash, ChaCha20Rng, TestBoard>>::new(
        flash,
        ChaCha20Rng::seed_from_u64(8),
        TestBoard::new(),
    );
    let mount = t.elapsed();
    println!(
        "With {} keys: Encrypt with a random key takes {:?} on this host; mounting the store takes {:?}; \
         the Token struct (index, buffers) takes {} KiB of RAM",
        keys.len(),
        per_op,
        mount,
        std::mem::size_of_val(&token) / 1024
    );
}

fn main() {
    lookups();
    per_key_and_version();
    capacity(1 << 20, "the QEMU board's store (1 MiB)");
    capacity(128 << 10, "the nRF52840 board's store (128 KiB)");
    wear(1 << 20, "1 MiB");
    wear(128 << 10, "128 KiB");
}
