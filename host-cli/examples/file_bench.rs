//! File throughput benchmark: encrypt-file, decrypt-file and sign-file hashing on a large file,
//! each beside OpenSSL measured in the same run, plus the token round trips' share.
//!
//! ```text
//! cargo run --release -p pkms --example file_bench            # 1 GiB, private QEMU token
//! PKMS_BENCH_BYTES=64M cargo run --release -p pkms --example file_bench
//! PKMS_DEVICE=unix:/path/to/qemu.sock cargo run --release -p pkms --example file_bench
//! ```
//!
//! `PKMS_BENCH_SEGMENT=256K` and `PKMS_BENCH_BATCH=8` override the segment size and the segments
//! per batch (defaults: the CLI's), for tuning.
//!
//! `PKMS_BENCH_STREAM_BYTES=10G` also pipes a generated 10 GiB stream through encryption and
//! decryption in this process (no disk) and prints the peak resident memory, which does not grow
//! with the stream's size.
//!
//! Numbers only: it never fails for slowness. The file lives on tmpfs (`/dev/shm`, or in
//! `PKMS_BENCH_DIR`), so "file" numbers include reading and writing through the kernel, as the
//! CLI does; "memory" numbers are the AES-256-GCM work alone, comparable with `openssl speed`.

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use pkms_lib::connect::{self, DeviceSpec};
use pkms_lib::datakey_cache::DataKeyCache;
use pkms_lib::envelope::format::FileKeys;
use pkms_lib::envelope::output::AtomicFile;
use pkms_lib::envelope::pipeline;
use pkms_lib::envelope::segments::SegmentCipher;
use pkms_lib::envelope::{
    ContextPairs, DataKey, DecryptPolicy, DigestSignature, Envelope, KeyService, KeyServiceResult, Options,
    PendingHeader, SigningService,
};
use pkms_lib::filesign;
use pkms_lib::launcher::{LaunchOptions, PrivateToken};
use pkms_lib::model::CreateKeyParams;
use pkms_lib::progress::NoProgress;
use pkms_lib::Client;
use pkms_protocol::{KeySpec, KeyUsage};
use zeroize::Zeroizing;

/// Wraps a key service and adds up the time spent in token calls.
struct Timed<'a> {
    inner: &'a mut Client,
    spent: Duration,
    calls: u32,
}

impl Timed<'_> {
    fn time<T>(&mut self, f: impl FnOnce(&mut Client) -> T) -> T {
        let t = Instant::now();
        let r = f(self.inner);
        self.spent += t.elapsed();
        self.calls += 1;
        r
    }
}

impl KeyService for Timed<'_> {
    fn generate_data_key(&mut self, key_id: &str, context: &ContextPairs) -> KeyServiceResult<DataKey> {
        self.time(|s| KeyService::generate_data_key(s, key_id, context))
    }
    fn decrypt(
        &mut self,
        blob: &[u8],
        context: &ContextPairs,
        key_id: Option<&str>,
    ) -> KeyServiceResult<Zeroizing<Vec<u8>>> {
        self.time(|s| KeyService::decrypt(s, blob, context, key_id))
    }
}

impl SigningService for Timed<'_> {
    fn sign_digest(&mut self, key_id: &str, digest: &[u8; 32]) -> KeyServiceResult<DigestSignature> {
        self.time(|s| SigningService::sign_digest(s, key_id, digest))
    }
    fn verify_digest(
        &mut self,
        key_id: &str,
        digest: &[u8; 32],
        der: &[u8],
        v: Option<u32>,
    ) -> KeyServiceResult<bool> {
        self.time(|s| SigningService::verify_digest(s, key_id, digest, der, v))
    }
    fn get_public_key(&mut self, key_id: &str, v: Option<u32>) -> KeyServiceResult<Vec<u8>> {
        self.time(|s| SigningService::get_public_key(s, key_id, v))
    }
}

fn parse_size(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (num, mul) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    Ok(num.parse::<u64>().context("PKMS_BENCH_BYTES: a number with optional K/M/G")? * mul)
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// `openssl speed -evp aes-256-gcm` (or another algorithm) at 16 KiB blocks, MB/s.
fn openssl_speed(args: &[&str]) -> anyhow::Result<f64> {
    let out = Command::new("openssl")
        .arg("speed")
        .args(["-seconds", "3", "-bytes", "16384"])
        .args(args)
        .output()
        .context("running openssl speed")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with('k'))
        .context("no result line from openssl speed")?;
    let k: f64 = last.split_whitespace().last().unwrap_or("").trim_end_matches('k').parse()?;
    Ok(k * 1000.0 / 1e6)
}

/// `openssl dgst -sha256 FILE`, MB/s.
fn openssl_dgst(path: &Path, bytes: u64) -> anyhow::Result<f64> {
    let t = Instant::now();
    let out = Command::new("openssl").args(["dgst", "-sha256"]).arg(path).output()?;
    if !out.status.success() {
        bail!("openssl dgst failed");
    }
    Ok(mbps(bytes, t.elapsed()))
}

fn write_test_file(path: &Path, bytes: u64) -> anyhow::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x243f_6a88_85a3_08d3;
    let mut left = bytes;
    while left > 0 {
        for c in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        w.write_all(&block[..n])?;
        left -= n as u64;
    }
    w.flush()?;
    Ok(())
}

/// The I/O floor of a file command on this file system, with no cryptography: the best of
/// `runs` times to (a) write `bytes` to a new file in 2 MiB writes (what the output side of
/// encrypt-file must do at least) and (b) copy `src` to a new file as `cp` does. Returns MB/s.
fn io_floors(src: &Path, dir: &Path, bytes: u64, runs: usize) -> anyhow::Result<(f64, f64)> {
    let dest = dir.join("floor.out");
    let block = vec![0x5au8; 2 << 20];
    let mut write = Duration::MAX;
    let mut cp = Duration::MAX;
    for _ in 0..runs {
        let _ = std::fs::remove_file(&dest);
        let start = Instant::now();
        let mut f = File::create(&dest)?;
        let mut left = bytes;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            f.write_all(&block[..n])?;
            left -= n as u64;
        }
        drop(f);
        write = write.min(start.elapsed());
        std::fs::remove_file(&dest)?;
        let start = Instant::now();
        let status = Command::new("cp").arg(src).arg(&dest).status()?;
        if !status.success() {
            bail!("cp failed");
        }
        cp = cp.min(start.elapsed());
        std::fs::remove_file(&dest)?;
    }
    Ok((mbps(bytes, write), mbps(bytes, cp)))
}

/// One core's AES-256-GCM rates on one segment buffer that stays in cache, as `openssl speed`
/// measures: each of `bytes / segment` segments is sealed, then opened back, each call timed
/// on its own. Returns (seal MB/s, open MB/s).
fn core_rates(bytes: u64, segment: usize) -> (f64, f64) {
    let cipher = SegmentCipher::new(&FileKeys::derive(&[7u8; 32], &[1u8; 32]));
    let mut buf = vec![0x5au8; segment + 16];
    let count = (bytes / segment as u64).max(1);
    let (mut sealing, mut opening) = (Duration::ZERO, Duration::ZERO);
    for i in 0..count {
        let index = i as u32;
        let t = Instant::now();
        let sealed = cipher.seal(index, false, &mut buf, segment);
        sealing += t.elapsed();
        let t = Instant::now();
        let opened = cipher.open(index, false, &mut buf);
        opening += t.elapsed();
        if sealed.is_err() || opened != Ok(segment) {
            return (0.0, 0.0);
        }
    }
    (mbps(count * segment as u64, sealing), mbps(count * segment as u64, opening))
}

/// Sealing `bytes` in memory with the segments and batches of `opts`, through the same pipeline
/// as the CLI but without I/O, MB/s.
fn memory_seal(bytes: u64, opts: Options) -> f64 {
    let cipher = SegmentCipher::new(&FileKeys::derive(&[7u8; 32], &[1u8; 32]));
    let seg = opts.segment_size as usize;
    let per_batch = opts.batch_segments.max(1);
    let batches = (bytes / (per_batch * seg) as u64).max(1);
    let mut filled = 0u64;
    let t = Instant::now();
    let r: Result<(), ()> = pipeline::run(
        pipeline::Shape { batch_segments: per_batch, slot_size: seg + 16, threads: opts.threads },
        |b| {
            for s in &mut b.slots {
                s.len = seg;
            }
            b.count = per_batch;
            filled += 1;
            b.last = filled == batches;
            Ok(())
        },
        &|i, s, base, _| cipher.seal((base + i as u64) as u32, false, &mut s.buf, s.len).map(|()| s.len),
        |b| if b.results.iter().all(Result::is_ok) { Ok(()) } else { Err(()) },
        || (),
    );
    let elapsed = t.elapsed();
    if r.is_err() {
        return 0.0;
    }
    mbps(batches * (per_batch * seg) as u64, elapsed)
}

/// Options for the file runs: the CLI's defaults, with `PKMS_BENCH_SEGMENT` (bytes, K/M) and
/// `PKMS_BENCH_BATCH` (segments per batch) overriding the segment size and batch, for tuning.
fn bench_options() -> anyhow::Result<Options> {
    let mut o = Options::default();
    if let Ok(s) = std::env::var("PKMS_BENCH_SEGMENT") {
        o.segment_size = u32::try_from(parse_size(&s)?).context("PKMS_BENCH_SEGMENT too large")?;
    }
    if let Ok(b) = std::env::var("PKMS_BENCH_BATCH") {
        o.batch_segments = b.parse().context("PKMS_BENCH_BATCH: a number of segments")?;
    }
    Ok(o)
}

/// Peak resident set size of this process (VmHWM), in MiB.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib >> 10)
}

/// A generated stream of `left` bytes.
struct Generated {
    left: u64,
    x: u64,
}

impl std::io::Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for b in &mut buf[..n] {
            self.x = self.x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (self.x >> 56) as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// One end of an in-process pipe made of a bounded channel of chunks.
struct PipeWriter(std::sync::mpsc::SyncSender<Vec<u8>>);
struct PipeReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.send(buf.to_vec()).map_err(|_| std::io::Error::other("pipe closed"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Counts what is written.
struct Counter(u64);
impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encrypts a generated stream into a pipe and decrypts it on the other side, both with the
/// same data key source; returns the plaintext bytes that came out.
fn stream_round_trip(
    client: &mut pkms_lib::Client,
    key: &str,
    bytes: u64,
) -> anyhow::Result<(u64, Duration)> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(64);
    // The data key is made here, and the decrypting side gets it through a cache-like stub.
    let data_key = client.generate_data_key(
        key,
        &[] as &[(&str, &str)],
        pkms_lib::model::DataKeySize::Spec(pkms_protocol::DataKeySpec::Aes256),
    )?;
    let plain = data_key.plaintext.clone().context("no plaintext data key")?;
    let mut fixed = [0u8; 32];
    fixed.copy_from_slice(&plain);
    let key_id = data_key.key_id.to_string();
    let blob = data_key.ciphertext_blob.clone();
    let key = key.to_owned();
    let start = Instant::now();
    let producer = std::thread::spawn(move || -> anyhow::Result<()> {
        let mut svc = Fixed { key: Zeroizing::new(fixed), blob, key_id };
        let mut cache = DataKeyCache::disabled();
        let mut env = Envelope::new(&mut svc, &mut cache, Options { threads: 1, ..Options::default() });
        env.encrypt(&key, &[], &mut Generated { left: bytes, x: 1 }, Some(bytes), &mut PipeWriter(tx))?;
        Ok(())
    });
    let mut svc = Fixed { key: Zeroizing::new(fixed), blob: Vec::new(), key_id: String::new() };
    let mut cache = DataKeyCache::disabled();
    let mut out = Counter(0);
    let mut env = Envelope::new(&mut svc, &mut cache, Options { threads: 1, ..Options::default() });
    env.decrypt(&mut PipeReader { rx, chunk: Vec::new(), pos: 0 }, &mut out, &DecryptPolicy::default())?;
    producer.join().map_err(|_| anyhow::anyhow!("encrypting thread panicked"))??;
    Ok((out.0, start.elapsed()))
}

/// A key service that hands out one fixed data key (for the in-memory stream test only).
struct Fixed {
    key: Zeroizing<[u8; 32]>,
    blob: Vec<u8>,
    key_id: String,
}

impl KeyService for Fixed {
    fn generate_data_key(&mut self, _: &str, _: &ContextPairs) -> KeyServiceResult<DataKey> {
        Ok(DataKey {
            plaintext: self.key.clone(),
            ciphertext_blob: self.blob.clone(),
            key_id: self.key_id.clone(),
        })
    }
    fn decrypt(
        &mut self,
        _: &[u8],
        _: &ContextPairs,
        _: Option<&str>,
    ) -> KeyServiceResult<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(self.key.to_vec()))
    }
}

fn main() -> anyhow::Result<()> {
    let bytes = parse_size(&std::env::var("PKMS_BENCH_BYTES").unwrap_or_else(|_| "1G".into()))?;
    // The token: PKMS_DEVICE if set; else a private QEMU token (the realistic round trip);
    // else, when QEMU cannot start, the in-process token.
    let qemu_dir = tempfile::tempdir()?;
    let mut _qemu = None;
    let mut client = match std::env::var("PKMS_DEVICE") {
        Ok(d) if !d.is_empty() => {
            let spec: DeviceSpec = d.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            println!("file benchmark: {} MiB, token {spec:?}", bytes >> 20);
            connect::open(&spec)?
        }
        _ => match PrivateToken::start(qemu_dir.path(), &LaunchOptions::from_env()) {
            Ok(token) => {
                let link = token.connect(Duration::from_secs(10))?;
                println!(
                    "file benchmark: {} MiB, token: QEMU (mps2-an386) over its {} link",
                    bytes >> 20,
                    token.link()
                );
                _qemu = Some(token);
                Client::connect(link)?
            }
            Err(e) => {
                println!("file benchmark: {} MiB, token: in-process (QEMU unavailable: {e})", bytes >> 20);
                connect::open(&DeviceSpec::InProcess(None))?
            }
        },
    };
    let sym = client.create_key(&CreateKeyParams::default())?.key_id.to_string();
    let signer = client
        .create_key(&CreateKeyParams {
            key_spec: KeySpec::EccNistP256,
            key_usage: Some(KeyUsage::SignVerify),
            ..Default::default()
        })?
        .key_id
        .to_string();

    // tmpfs when there is one (PKMS_BENCH_DIR overrides): measures the CLI, not the disk.
    let base = std::env::var_os("PKMS_BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    });
    let dir = tempfile::tempdir_in(&base)?;
    println!("files in {}", base.display());
    let plain = dir.path().join("plain.bin");
    let enc = dir.path().join("plain.bin.pkms");
    let dec = dir.path().join("plain.out");
    write_test_file(&plain, bytes)?;

    println!("\nopenssl (same machine, same run):");
    let ossl_gcm = openssl_speed(&["-evp", "aes-256-gcm"])?;
    println!("  openssl speed -evp aes-256-gcm (16 KiB, 1 core) {ossl_gcm:>8.0} MB/s");
    let ossl_sha = openssl_speed(&["sha256"])?;
    println!("  openssl speed sha256 (16 KiB, 1 core)           {ossl_sha:>8.0} MB/s");
    let ossl_dgst = (0..3)
        .map(|_| openssl_dgst(&plain, bytes))
        .collect::<anyhow::Result<Vec<f64>>>()?
        .into_iter()
        .fold(0.0, f64::max);
    println!("  openssl dgst -sha256 FILE (best of 3)           {ossl_dgst:>8.0} MB/s");

    let base_opts = bench_options()?;
    let threads = base_opts.threads.max(2);
    println!(
        "\nAES-256-GCM segments in memory (ring 0.17, AES-NI/VAES + CLMUL; {} KiB segments, {} per batch):",
        base_opts.segment_size >> 10,
        base_opts.batch_segments
    );
    let (seal, open) = core_rates(bytes.min(1 << 30), base_opts.segment_size as usize);
    println!(
        "  one core, one buffer  seal {seal:>6.0} MB/s {:.2}x openssl   open {open:>6.0} MB/s {:.2}x openssl",
        seal / ossl_gcm,
        open / ossl_gcm
    );
    for t in [1, threads] {
        let rate = memory_seal(bytes.min(1 << 30), Options { threads: t, ..base_opts });
        println!("  pipeline, {t} worker(s) seal {rate:>6.0} MB/s {:.2}x openssl", rate / ossl_gcm);
    }

    let runs: usize = std::env::var("PKMS_BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3).max(1);
    let (floor_write, floor_cp) = io_floors(&plain, dir.path(), bytes, runs)?;
    println!("\nI/O floor on this file system, no cryptography (best of {runs}):");
    println!(
        "  write {} MiB to a new file (2 MiB writes) {floor_write:>8.0} MB/s   {:.2}x openssl",
        bytes >> 20,
        floor_write / ossl_gcm
    );
    println!(
        "  cp the file to a new file                {floor_cp:>8.0} MB/s   {:.2}x openssl",
        floor_cp / ossl_gcm
    );
    println!("\nfiles (page cache, as the CLI does it; best of {runs} runs, the machine may be shared):");
    // Files go through positional I/O (what the CLI does when both ends are regular files);
    // the streaming pipeline (what pipes and stdin/stdout get) is shown for comparison.
    for (positional, t) in [(true, 1), (true, threads), (false, 1), (false, threads)] {
        let opts = Options { threads: t, ..base_opts };
        let mut cache = DataKeyCache::disabled();
        // (elapsed, token time, token calls) of the fastest run of each direction.
        let mut best_e = (Duration::MAX, Duration::ZERO, 0);
        let mut best_d = (Duration::MAX, Duration::ZERO, 0);
        for _ in 0..runs {
            // Into a new file each time: freeing the previous output's pages is not part of it.
            let _ = std::fs::remove_file(&enc);
            let mut timed = Timed { inner: &mut client, spent: Duration::ZERO, calls: 0 };
            let start = Instant::now();
            {
                let mut env = Envelope::new(&mut timed, &mut cache, opts);
                let mut input = File::open(&plain)?;
                let mut out = AtomicFile::create(&enc)?;
                let context = [("bench".into(), "1".into())];
                if positional {
                    let e = env.start_encrypt(&sym, &context, Some(bytes))?;
                    e.run_file(&input, bytes, out.file(), &NoProgress)?;
                } else {
                    env.encrypt(&sym, &context, &mut input, Some(bytes), &mut out)?;
                }
                out.commit()?;
            }
            let e = start.elapsed();
            if e < best_e.0 {
                best_e = (e, timed.spent, timed.calls);
            }
            let _ = std::fs::remove_file(&dec);
            let mut timed = Timed { inner: &mut client, spent: Duration::ZERO, calls: 0 };
            let start = Instant::now();
            {
                let mut env = Envelope::new(&mut timed, &mut cache, opts);
                let mut input = File::open(&enc)?;
                let mut out = AtomicFile::create(&dec)?;
                if positional {
                    let pending = PendingHeader::read(&mut input)?;
                    let body_start = input.stream_position()?;
                    let d = env.start_decrypt(pending, &DecryptPolicy::default())?;
                    d.run_file(&input, body_start, out.file(), &NoProgress)?;
                } else {
                    env.decrypt(&mut input, &mut out, &DecryptPolicy::default())?;
                }
                out.commit()?;
            }
            let d = start.elapsed();
            if d < best_d.0 {
                best_d = (d, timed.spent, timed.calls);
            }
        }
        for (what, (el, token, calls)) in [("encrypt-file", best_e), ("decrypt-file", best_d)] {
            println!(
                "  {what:<12} {:<28} {:>8.0} MB/s   {:.2}x openssl   {:.2}x the write floor   token: {calls} call, {:.2} ms = {:.4}% of {:.2} s",
                if positional {
                    format!("positional, {t} read+AES + 1 write")
                } else {
                    format!("streaming, 1 I/O + {t} AES")
                },
                mbps(bytes, el),
                mbps(bytes, el) / ossl_gcm,
                mbps(bytes, el) / floor_write,
                token.as_secs_f64() * 1e3,
                100.0 * token.as_secs_f64() / el.as_secs_f64(),
                el.as_secs_f64()
            );
        }
    }
    // The same commands writing to a consumer instead of a new file (`pkms encrypt-file FILE -`
    // into a pipe, e.g. an upload): the output side costs the kernel nearly nothing, so these
    // show what the file commands do when page-cache writes do not bound them.
    println!(
        "  to a consumer (stdout into /dev/null, as the CLI does it: the streaming path, 1 MiB writes):"
    );
    let opts = Options { threads: base_opts.threads, ..base_opts };
    let mut cache = DataKeyCache::disabled();
    let mut best_e = Duration::MAX;
    let mut best_d = Duration::MAX;
    for _ in 0..runs {
        let start = Instant::now();
        {
            let mut env = Envelope::new(&mut client, &mut cache, opts);
            let mut input = File::open(&plain)?;
            let mut out = BufWriter::with_capacity(1 << 20, File::create("/dev/null")?);
            env.encrypt(&sym, &[("bench".into(), "1".into())], &mut input, Some(bytes), &mut out)?;
            out.flush()?;
        }
        best_e = best_e.min(start.elapsed());
        let start = Instant::now();
        {
            let mut env = Envelope::new(&mut client, &mut cache, opts);
            let mut input = File::open(&enc)?;
            let mut out = BufWriter::with_capacity(1 << 20, File::create("/dev/null")?);
            let s = env.decrypt(&mut input, &mut out, &DecryptPolicy::default())?;
            out.flush()?;
            if s.plaintext_bytes != bytes {
                bail!("decrypted size differs");
            }
        }
        best_d = best_d.min(start.elapsed());
    }
    for (what, el) in [("encrypt-file", best_e), ("decrypt-file", best_d)] {
        println!(
            "  {what:<12} {:<28} {:>8.0} MB/s   {:.2}x openssl   (token call included)",
            format!("file -> stdout, 1 I/O + {} AES", opts.threads),
            mbps(bytes, el),
            mbps(bytes, el) / ossl_gcm
        );
    }
    if std::fs::metadata(&dec)?.len() != bytes {
        bail!("decrypted size differs");
    }

    let mut h = Duration::MAX;
    let mut digest = [0u8; 32];
    for _ in 0..runs {
        let start = Instant::now();
        digest = filesign::sha256_file(&plain, &NoProgress)?;
        h = h.min(start.elapsed());
    }
    let mut timed = Timed { inner: &mut client, spent: Duration::ZERO, calls: 0 };
    let sig = filesign::sign_digest(&mut timed, &signer, &digest)?;
    let total = h + timed.spent;
    println!(
        "  sign-file hashing (best of runs)        {:>8.0} MB/s   {:.2}x openssl dgst, {:.2}x openssl speed sha256   Sign: {:.2} ms = {:.4}% of {:.2} s",
        mbps(bytes, h),
        mbps(bytes, h) / ossl_dgst,
        mbps(bytes, h) / ossl_sha,
        timed.spent.as_secs_f64() * 1e3,
        100.0 * timed.spent.as_secs_f64() / total.as_secs_f64(),
        total.as_secs_f64()
    );
    let spki = client.get_public_key(&signer, None)?.public_key;
    let vk = filesign::parse_public_key(&spki)?;
    if !filesign::verify_offline(&vk, &digest, &sig.der) {
        bail!("the signature did not verify");
    }
    drop(dir);
    if let Some(rss) = peak_rss_mib() {
        println!(
            "
peak resident memory so far: {rss} MiB"
        );
    }

    let stream = parse_size(&std::env::var("PKMS_BENCH_STREAM_BYTES").unwrap_or_else(|_| "0".into()))?;
    if stream > 0 {
        let (n, t) = stream_round_trip(&mut client, &sym, stream)?;
        if n != stream {
            bail!("stream round trip returned {n} bytes, expected {stream}");
        }
        println!(
            "stream round trip of {} MiB (encrypt → pipe → decrypt, one thread each): {:.0} MB/s, peak resident memory {} MiB",
            stream >> 20,
            mbps(stream, t),
            peak_rss_mib().unwrap_or(0)
        );
    }
    Ok(())
}
