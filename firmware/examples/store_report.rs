//! Flash budget and wear of the key store, measured through the token's own interface on the
//! RAM mock flash:
//!
//! * flash bytes per key (one version) and per extra key version, for every key spec;
//! * how many keys × versions fit in the 1 MiB the QEMU board reserves and the 128 KiB of the
//!   nRF52840 board, on an open token (no audit log) and on an initialised one whose audit log
//!   holds its board's capacity (half the store);
//! * the erase count of the most-erased page after 10,000 rotations;
//! * the RAM the token struct takes on each board, and the time to mount a full store.
//!
//! Run: `cargo run -p pkms-firmware --example store_report --features std --release`
//! (a benchmark that prints numbers; it asserts nothing about speed).

use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::DecodePublicKey;
use pkms_firmware::mock_flash::MockFlash;
use pkms_firmware::platform::{audit_capacity, index_records};
use pkms_firmware::{Platform, TestBoard, Token};
use pkms_protocol::access::AuditFullMode;
use pkms_protocol::messages::{Request, RequestFrame, Response};
use pkms_protocol::session::host::{Handshake, HostSession};
use pkms_protocol::{KeyId, KeySpec, Tags};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// A board's store on the mock flash: its size, its audit log and its RAM index.
trait Board: Platform<Flash = MockFlash, Rng = ChaCha20Rng, Board = TestBoard> {
    const BYTES: usize;
    const NAME: &'static str;
}

/// The QEMU board's store (1 MiB) and audit log, on the mock flash.
enum Qemu {}
impl Board for Qemu {
    const BYTES: usize = QEMU_BYTES;
    const NAME: &'static str = "the QEMU board's store (1 MiB)";
}
const QEMU_BYTES: usize = 1 << 20;
const QEMU_AUDIT: usize = audit_capacity(QEMU_BYTES, MockFlash::ERASE_SIZE);
impl Platform for Qemu {
    type Flash = MockFlash;
    type Rng = ChaCha20Rng;
    type Board = TestBoard;
    type Index = pkms_firmware::store::Index<{ index_records(QEMU_AUDIT) }>;
    const AUDIT_CAPACITY: usize = QEMU_AUDIT;
}

/// The nRF52840 board's store (128 KiB) and audit log, on the mock flash.
enum Nrf {}
impl Board for Nrf {
    const BYTES: usize = NRF_BYTES;
    const NAME: &'static str = "the nRF52840 board's store (128 KiB)";
}
const NRF_BYTES: usize = 128 << 10;
const NRF_AUDIT: usize = audit_capacity(NRF_BYTES, MockFlash::ERASE_SIZE);
impl Platform for Nrf {
    type Flash = MockFlash;
    type Rng = ChaCha20Rng;
    type Board = TestBoard;
    type Index = pkms_firmware::store::Index<{ index_records(NRF_AUDIT) }>;
    const AUDIT_CAPACITY: usize = NRF_AUDIT;
}

/// A host talking to a token of platform `P`: in the clear, or (initialised) in a session.
struct Client<P: Board> {
    token: Token<P>,
    out: Vec<u8>,
    req: Vec<u8>,
    session: Option<(HostSession, u64)>,
}

enum Answer {
    Key(KeyId),
    Free(u32),
    Done,
    Refused,
}

const PIN: &[u8] = b"24681357";

impl<P: Board> Client<P> {
    fn new() -> Self {
        Client {
            token: Token::new(MockFlash::new(P::BYTES), ChaCha20Rng::seed_from_u64(7), TestBoard::new()),
            out: vec![0; pkms_protocol::limits::MAX_ENCODED_FRAME],
            req: vec![0; pkms_protocol::limits::MAX_FRAME],
            session: None,
        }
    }

    /// An initialised token in an administrator's session, its audit log (in `mode`) full.
    fn initialised(mode: AuditFullMode) -> Self {
        let mut c = Self::new();
        let spki = match c.exchange(Request::GetDeviceKey(pkms_protocol::request::GetDeviceKey {})) {
            Ok(Response::DeviceKey(pkms_protocol::reply::DeviceKey { public_key })) => public_key.to_vec(),
            _ => panic!("GetDeviceKey"),
        };
        let device = p256::PublicKey::from_public_key_der(&spki).expect("device key");
        let mut sec1 = [0u8; 65];
        sec1.copy_from_slice(device.to_encoded_point(false).as_bytes());
        let handshake = Handshake::start(&sec1, &mut ChaCha20Rng::seed_from_u64(9)).expect("handshake");
        let (ephemeral, payload) = (handshake.ephemeral, handshake.payload.clone());
        let (id, token_ephemeral, token_payload) =
            match c.exchange(Request::OpenSession(pkms_protocol::request::OpenSession {
                ephemeral: &ephemeral,
                payload: &payload,
            })) {
                Ok(Response::SessionOpened(o)) => (o.session_id, o.ephemeral.to_vec(), o.payload.to_vec()),
                _ => panic!("OpenSession"),
            };
        let keys = handshake.finish(id, &token_ephemeral, &token_payload).expect("handshake verifies");
        c.session = Some((keys, 0));
        let init = Request::Initialize(pkms_protocol::request::Initialize {
            pin: PIN,
            puk: b"store-report-puk",
            audit_full: mode,
        });
        assert!(matches!(c.call(init), Answer::Done));
        for _ in 0..P::AUDIT_CAPACITY {
            c.call(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 1 }));
        }
        c
    }

    /// Sends `request` (sealed when in a session); the decoded answer's result.
    fn exchange(&mut self, request: Request<'_>) -> Result<Response<'_>, ()> {
        let frame = RequestFrame { id: 1, now: Some(1_750_000_000), request };
        let mut n = postcard::to_slice(&frame, &mut self.req).expect("encode").len();
        if let Some((keys, counter)) = &mut self.session {
            let mut sealed = self.req[..n].to_vec();
            let tag = keys.seal_at(*counter, &mut sealed);
            sealed.extend_from_slice(&tag);
            let outer = RequestFrame {
                id: 1,
                now: None,
                request: Request::SessionFrame(pkms_protocol::request::SessionFrame {
                    session_id: keys.id(),
                    counter: *counter,
                    sealed: &sealed,
                }),
            };
            *counter += 1;
            n = postcard::to_slice(&outer, &mut self.req).expect("encode").len();
        }
        let m = self.token.handle_payload(&mut self.req[..n], &mut self.out);
        let payload = pkms_protocol::framing::cobs_decode_in_place(&mut self.out[..m - 1]).expect("cobs");
        let plen = payload.len();
        let Some((keys, _)) = &self.session else {
            return pkms_protocol::framing::decode_response(&self.out[..plen])
                .expect("decode")
                .result
                .map_err(|_| ());
        };
        let (counter, sealed) =
            match pkms_protocol::framing::decode_response(&self.out[..plen]).expect("decode").result {
                Ok(Response::SessionFrame(f)) => (f.counter, f.sealed.to_vec()),
                _ => return Err(()),
            };
        let (text, tag) = sealed.split_at(sealed.len() - 16);
        let mut text = text.to_vec();
        keys.open_at(counter, &mut text, tag).expect("the answer opens");
        self.out[..text.len()].copy_from_slice(&text);
        pkms_protocol::framing::decode_response(&self.out[..text.len()])
            .expect("decode")
            .result
            .map_err(|_| ())
    }

    fn call(&mut self, request: Request<'_>) -> Answer {
        match self.exchange(request) {
            Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata: meta })) => {
                Answer::Key(meta.key_id)
            }
            Ok(Response::Info(pkms_protocol::reply::Info { info })) => Answer::Free(info.storage_free_bytes),
            Ok(_) => Answer::Done,
            Err(()) => Answer::Refused,
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
        let mut c = Client::<Qemu>::new();
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

/// SYMMETRIC_DEFAULT keys of `versions` versions that fit in `c`'s store.
fn fill<P: Board>(mut c: Client<P>, versions: u32) -> u32 {
    let mut keys = 0u32;
    'fill: while let Some(k) = c.create(KeySpec::SymmetricDefault) {
        for _ in 1..versions {
            if !c.rotate(&k) {
                break 'fill;
            }
        }
        keys += 1;
    }
    keys
}

fn capacity<P: Board>() {
    println!(
        "Capacity of {} (1024 keys at most): open token / initialised, its {}-entry audit log full and \
         overwriting (the log gives way to keys):",
        P::NAME,
        P::AUDIT_CAPACITY
    );
    for versions in [1u32, 2, 5, 10, 24] {
        let open = fill(Client::<P>::new(), versions);
        let overwrite = fill(Client::<P>::initialised(AuditFullMode::Overwrite), versions);
        println!(
            "  SYMMETRIC_DEFAULT keys with {versions:>2} versions: {open:>5} keys = {:>6} key versions / {overwrite:>5} keys",
            open * versions
        );
    }
}

fn wear<P: Board>(label: &str) {
    let mut c = Client::<P>::new();
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

/// Wear of a full overwriting log on `P`'s store with 20 keys: erases per page per 10,000
/// appended entries (each pkms call appends three).
fn log_wear<P: Board>(label: &str) {
    let mut c = Client::<P>::initialised(AuditFullMode::Overwrite);
    for _ in 0..20 {
        c.create(KeySpec::SymmetricDefault);
    }
    let before: Vec<u32> = c.token.flash().erase_counts().to_vec();
    let written = c.token.flash().bytes_written();
    for _ in 0..10_000 {
        c.call(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 1 }));
    }
    let after = c.token.flash().erase_counts();
    let erases: u32 = after.iter().zip(&before).map(|(a, b)| a - b).sum();
    println!(
        "Wear of a full audit log on {label} ({} entries, 20 keys): 10,000 more entries erase {:.1} pages each \
         on average and write {:.1} MB",
        P::AUDIT_CAPACITY,
        erases as f64 / after.len() as f64,
        (c.token.flash().bytes_written() - written) as f64 / 1e6
    );
}

/// Lookup speed with 1,000 keys (host CPU; the RAM index makes lookups a binary search), the
/// time to mount such a store and one whose audit log is full, and the RAM the token struct
/// takes on each board.
fn lookups() {
    let mut c = Client::<Qemu>::new();
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
    let token = Token::<Qemu>::new(flash, ChaCha20Rng::seed_from_u64(8), TestBoard::new());
    let mount = t.elapsed();
    drop(token);
    let full = Client::<Qemu>::initialised(AuditFullMode::Overwrite).token.into_flash();
    let t = std::time::Instant::now();
    let token = Token::<Qemu>::new(full, ChaCha20Rng::seed_from_u64(8), TestBoard::new());
    let mount_full = t.elapsed();
    drop(token);
    println!(
        "With {} keys: Encrypt with a random key takes {:?} on this host; mounting the store takes {:?} \
         ({:?} with a full {}-entry audit log)",
        keys.len(),
        per_op,
        mount,
        mount_full,
        QEMU_AUDIT
    );
    println!(
        "The Token struct (index, buffers) takes {} KiB of RAM on the QEMU board (an index of {} records), \
         {} KiB on the nRF52840 ({} records); {} bytes per record",
        std::mem::size_of::<Token<Qemu>>() / 1024,
        index_records(QEMU_AUDIT),
        std::mem::size_of::<Token<Nrf>>() / 1024,
        index_records(NRF_AUDIT),
        pkms_firmware::store::INDEX_BYTES_PER_RECORD
    );
}

fn main() {
    lookups();
    per_key_and_version();
    capacity::<Qemu>();
    capacity::<Nrf>();
    wear::<Qemu>("1 MiB");
    wear::<Nrf>("128 KiB");
    log_wear::<Qemu>("1 MiB");
    log_wear::<Nrf>("128 KiB");
}
