//! encrypt-file, decrypt-file (envelope encryption of files of any size), sign-file,
//! verify-file and sign-manifest (offline artifact signing).
//!
//! Status notes go to stderr (and only when it is a terminal); stdout carries data only when
//! `-` asks for it, and verify-file's verdict.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::args::{merge_context, parse_context, ContextArg};
use super::{usage, Context};
use pkms_lib::datakey_cache::{CacheLimits, DataKeyCache};
use pkms_lib::envelope::output::AtomicFile;
use pkms_lib::envelope::{
    DecryptPolicy, Envelope, EnvelopeError, KeyService, Options, PendingHeader, SigningService,
};
use pkms_lib::filesign::{self, EntryCheck, Manifest, SignatureEnvelope};
use pkms_lib::progress::{NoProgress, Progress};

/// File extension of encrypted files in `--out-dir` mode.
const EXT: &str = "pkms";

/// File commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Encrypt files of any size: one data key from the token per file (GenerateDataKey),
    /// AES-256-GCM on the host in authenticated 64 KiB segments (format: docs/file-format.md).
    #[command(after_help = "Examples:\n  \
        pkms encrypt-file --key-id alias/backup --encryption-context host=db1 dump.sql dump.sql.pkms\n  \
        tar c photos | pkms encrypt-file --key-id alias/backup - - > photos.tar.pkms\n  \
        pkms encrypt-file --key-id alias/backup --out-dir enc/ --cache-max-age 300 --cache-max-messages 100 docs/\n\n\
        IN and OUT may be `-` (stdin / stdout). With --out-dir, every input (directories recursively)\n\
        becomes DIR/<name>.pkms. Decrypt with `pkms decrypt-file`.")]
    EncryptFile(EncryptFileArgs),
    /// Decrypt files made by encrypt-file. Output appears only when every segment verified; a
    /// failed check removes the partial output and names what failed.
    #[command(after_help = "Examples:\n  \
        pkms decrypt-file dump.sql.pkms dump.sql\n  \
        pkms decrypt-file --encryption-context host=db1 - - < dump.sql.pkms | psql\n  \
        pkms decrypt-file --out-dir plain/ enc/*.pkms")]
    DecryptFile(DecryptFileArgs),
    /// Sign files: hashed on the host, signed on the token in one session. Default: a DER
    /// ECDSA_SHA_256 signature in FILE.sig that openssl verifies; --format ssh writes an SSHSIG
    /// (ssh-keygen -Y verify), --format minisign FILE.minisig (minisign -V), --format openpgp
    /// FILE.asc (gpg --verify; files and directories).
    #[command(after_help = "Examples:\n  \
        pkms sign-file --key-id alias/release app.tar.gz            # writes app.tar.gz.sig\n  \
        pkms get-public-key --key-id alias/release --output pem > release.pem\n  \
        openssl dgst -sha256 -verify release.pem -signature app.tar.gz.sig app.tar.gz\n  \
        pkms sign-file --key-id alias/release --format json --out app.sig.json app.tar.gz\n  \
        pkms sign-file --key-id alias/release --format ssh dist/*.tar.gz   # SSHSIG, namespace \"file\"\n  \
        pkms sign-file --key-id alias/ed-release --format minisign app.tar.gz\n  \
        pkms sign-file --key-id alias/release --format openpgp target/staging/   # FILE.asc for gpg --verify")]
    SignFile(SignFileArgs),
    /// Verify a file's signature: offline with --public-key (no token needed), or on the token
    /// with --key-id. A signed manifest also has each listed file checked.
    #[command(after_help = "Examples:\n  \
        pkms verify-file --public-key release.pem --signature app.tar.gz.sig app.tar.gz\n  \
        pkms verify-file --key-id alias/release app.tar.gz          # signature: app.tar.gz.sig\n  \
        pkms verify-file --public-key release.pem SHA256SUMS        # and every file it lists\n  \
        pkms verify-file --public-key release.pub app.tar.gz        # SSHSIG or minisign: an ssh or minisign key")]
    VerifyFile(VerifyFileArgs),
    /// Sign many files with one token operation: writes a SHA256SUMS-style manifest
    /// (`<sha256>  <path>` lines, `sha256sum -c` reads it) and a signature of it.
    #[command(after_help = "Examples:\n  \
        pkms sign-manifest --key-id alias/release --out dist/SHA256SUMS dist/\n  \
        openssl dgst -sha256 -verify release.pem -signature dist/SHA256SUMS.sig dist/SHA256SUMS \
        && (cd dist && sha256sum -c SHA256SUMS)\n  \
        pkms verify-file --public-key release.pem dist/SHA256SUMS")]
    SignManifest(SignManifestArgs),
}

/// Data-key caching flags (off unless --cache-max-age is given).
#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// Reuse a data key for further files for at most this many seconds (turns caching on;
    /// the cache lives in this process only).
    #[arg(long, value_name = "SECONDS")]
    pub cache_max_age: Option<f64>,
    /// Files per cached data key (default 2^32).
    #[arg(long, value_name = "N", requires = "cache_max_age")]
    pub cache_max_messages: Option<u64>,
    /// Plaintext bytes per cached data key (default 2^63-1).
    #[arg(long, value_name = "BYTES", requires = "cache_max_age")]
    pub cache_max_bytes: Option<u64>,
}

/// encrypt-file's arguments.
#[derive(Debug, Args)]
pub struct EncryptFileArgs {
    /// Key id or alias of a SYMMETRIC_DEFAULT key.
    #[arg(long)]
    pub key_id: String,
    /// KEY=VALUE (repeatable) or a JSON object: stored in the header, bound to the data key.
    #[arg(long, value_parser = parse_context)]
    pub encryption_context: Vec<ContextArg>,
    /// Write DIR/<name>.pkms for every input instead of IN OUT.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// IN OUT (`-` for stdin / stdout), or with --out-dir the inputs (files or directories).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Plaintext bytes per segment.
    #[arg(long, default_value_t = pkms_lib::envelope::format::DEFAULT_SEGMENT_SIZE, hide_short_help = true)]
    pub segment_size: u32,
    /// Threads reading and sealing/opening segments, besides the one writing the output (which
    /// also does the reading for pipes and stdin) (default: cores - 1, 1 ..= 4).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// decrypt-file's arguments.
#[derive(Debug, Args)]
pub struct DecryptFileArgs {
    /// Refuse files not encrypted under this key.
    #[arg(long)]
    pub key_id: Option<String>,
    /// KEY=VALUE pairs the file's encryption context must contain (checked before decrypting).
    #[arg(long, value_parser = parse_context)]
    pub encryption_context: Vec<ContextArg>,
    /// Write DIR/<name without .pkms> for every input instead of IN OUT.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// IN OUT (`-` for stdin / stdout), or with --out-dir the inputs.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Threads reading and sealing/opening segments, besides the one writing the output (which
    /// also does the reading for pipes and stdin) (default: cores - 1, 1 ..= 4).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Reuse an unwrapped data key for further files that share it, for at most this many
    /// seconds (files encrypted with --cache-max-age share data keys).
    #[arg(long, value_name = "SECONDS")]
    pub cache_max_age: Option<f64>,
}

/// Signature file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignatureFormat {
    /// Raw DER ECDSA signature (what `openssl dgst -verify -signature` reads).
    Der,
    /// JSON envelope: KeyId, KeyVersion, SigningAlgorithm, Digest, Signature (base64 DER).
    Json,
    /// Armored SSHSIG (FILE.sig) that `ssh-keygen -Y verify` checks (P-256 or Ed25519 keys).
    Ssh,
    /// minisign's prehashed signature (FILE.minisig) that `minisign -V` checks (Ed25519 keys).
    Minisign,
    /// OpenPGP detached armored signature, FILE.asc (`gpg --verify`; the certificate is
    /// `pkms openpgp export`'s); ECC_NIST_P256 or ECC_NIST_EDWARDS25519 keys.
    Openpgp,
}

/// sign-file's arguments.
#[derive(Debug, Args)]
pub struct SignFileArgs {
    /// Key id or alias of a SIGN_VERIFY key: ECC_NIST_P256 (der, json, ssh, openpgp) or
    /// ECC_NIST_EDWARDS25519 (ssh, minisign, openpgp).
    #[arg(long)]
    pub key_id: String,
    /// Where to write the signature (`-`: stdout; one FILE only). Default: FILE.sig
    /// (FILE.minisig for minisign; stdout when FILE is `-`).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Signature format.
    #[arg(long, value_enum, default_value = "der")]
    pub format: SignatureFormat,
    /// The SSHSIG namespace (--format ssh; default `file`, as ssh-keygen's -n).
    #[arg(long)]
    pub namespace: Option<String>,
    /// The files to sign (`-`: stdin), all in one token session. openpgp: directories too
    /// (every file in them).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// verify-file's arguments.
#[derive(Debug, Args)]
pub struct VerifyFileArgs {
    /// Public key, PEM or DER SubjectPublicKeyInfo (an OpenPGP certificate for OpenPGP
    /// signatures): verify offline, without a token.
    #[arg(long, value_name = "PATH", conflicts_with = "key_id")]
    pub public_key: Option<PathBuf>,
    /// Verify on the token with this key instead.
    #[arg(long)]
    pub key_id: Option<String>,
    /// With --key-id: the key version that signed (default: the envelope's, else every version
    /// the token holds is tried, newest first, and the output's KeyVersion names the one that
    /// verified).
    #[arg(long, requires = "key_id")]
    pub key_version: Option<u32>,
    /// The signature: DER, base64 DER, a JSON envelope, an SSHSIG, a minisign or an OpenPGP
    /// signature. Default: FILE.sig (else FILE.minisig, else FILE.asc).
    #[arg(long, value_name = "PATH")]
    pub signature: Option<PathBuf>,
    /// The namespace an SSHSIG must be for (default `file`).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Do not check the files a signed manifest lists.
    #[arg(long)]
    pub signature_only: bool,
    /// The signed file.
    pub file: PathBuf,
}

/// sign-manifest's arguments.
#[derive(Debug, Args)]
pub struct SignManifestArgs {
    /// Key id or alias of an ECC_NIST_P256 SIGN_VERIFY key.
    #[arg(long)]
    pub key_id: String,
    /// The manifest to write; its paths are relative to its directory.
    #[arg(long, value_name = "PATH", default_value = "SHA256SUMS")]
    pub out: PathBuf,
    /// Where to write the manifest's signature. Default: MANIFEST.sig.
    #[arg(long, value_name = "PATH")]
    pub signature: Option<PathBuf>,
    /// Signature format (der or json).
    #[arg(long, value_enum, default_value = "der")]
    pub format: SignatureFormat,
    /// Files to list (directories: every file in them, recursively).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs a file command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::EncryptFile(a) => encrypt_files(a, ctx),
        Commands::DecryptFile(a) => decrypt_files(a, ctx),
        Commands::SignFile(a) => sign_file(a, ctx),
        Commands::VerifyFile(a) => verify_file(a, ctx),
        Commands::SignManifest(a) => sign_manifest(a, ctx),
    }
}

fn is_dash(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// A byte progress bar on stderr, fed by the library's [`Progress`] reports.
struct Bar(ProgressBar);

impl std::ops::Deref for Bar {
    type Target = ProgressBar;
    fn deref(&self) -> &ProgressBar {
        &self.0
    }
}

impl Progress for Bar {
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

/// A byte progress bar on stderr; hidden with --quiet or when stderr is not a terminal.
fn progress_bar(ctx: &Context, total: Option<u64>) -> Bar {
    if ctx.quiet || !io::stderr().is_terminal() {
        return Bar(ProgressBar::hidden());
    }
    let bar = match total {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let style = match total {
        Some(_) => ProgressStyle::with_template(
            "{msg:20!} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        ),
        None => ProgressStyle::with_template("{msg:20!} {spinner} {bytes} {binary_bytes_per_sec}"),
    };
    if let Ok(style) = style {
        bar.set_style(style.progress_chars("=> "));
    }
    Bar(bar)
}

fn options(threads: Option<usize>, segment_size: Option<u32>) -> anyhow::Result<Options> {
    let mut o = Options::default();
    if let Some(t) = threads {
        if t == 0 {
            return Err(usage("--threads must be at least 1"));
        }
        o.threads = t;
    }
    if let Some(s) = segment_size {
        use pkms_lib::envelope::format::{MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&s) {
            return Err(usage(format!("--segment-size must be {MIN_SEGMENT_SIZE}..={MAX_SEGMENT_SIZE}")));
        }
        o.segment_size = s;
    }
    Ok(o)
}

fn max_age(seconds: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| usage("--cache-max-age must be a non-negative number of seconds"))
}

fn cache_from(args: &CacheArgs) -> anyhow::Result<DataKeyCache> {
    let Some(age) = args.cache_max_age else { return Ok(DataKeyCache::disabled()) };
    let mut limits = CacheLimits::with_max_age(max_age(age)?);
    if let Some(m) = args.cache_max_messages {
        if m == 0 {
            return Err(usage("--cache-max-messages must be at least 1"));
        }
        limits.max_messages = m;
    }
    if let Some(b) = args.cache_max_bytes {
        limits.max_bytes = b;
    }
    Ok(DataKeyCache::new(limits))
}

/// Every regular file under `path` (itself if a file), with its path relative to `path`
/// (its file name for a file). Directory symlinks are not followed.
fn walk(path: &Path) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
    if meta.is_file() {
        let name = path
            .file_name()
            .map(PathBuf::from)
            .with_context(|| format!("{} has no file name", path.display()))?;
        return Ok(vec![(path.to_path_buf(), name)]);
    }
    if !meta.is_dir() {
        bail!("{} is neither a file nor a directory", path.display());
    }
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = path.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot list {}", dir.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries.into_iter().rev() {
            let child_rel = rel.join(e.file_name());
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(child_rel);
            } else if ft.is_file() || (ft.is_symlink() && e.path().is_file()) {
                out.push((e.path(), child_rel));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// (input, output) pairs for IN OUT or --out-dir mode; `rename` maps an input's relative path
/// to its output's.
fn plan(
    paths: &[PathBuf],
    out_dir: Option<&Path>,
    rename: impl Fn(&Path) -> PathBuf,
) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    match out_dir {
        None => match paths {
            [input, _] if input.is_dir() => Err(usage(format!(
                "{} is a directory: give --out-dir DIR to process every file in it",
                input.display()
            ))),
            [input, output] => Ok(vec![(input.clone(), output.clone())]),
            _ => Err(usage(
                "give IN and OUT (`-` for stdin / stdout), or --out-dir DIR and one or more inputs",
            )),
        },
        Some(dir) => {
            let mut jobs = Vec::new();
            let mut seen = std::collections::BTreeSet::new();
            for p in paths {
                if is_dash(p) {
                    return Err(usage("`-` (stdin) cannot be used with --out-dir"));
                }
                for (input, rel) in walk(p)? {
                    let out = dir.join(rename(&rel));
                    if !seen.insert(out.clone()) {
                        return Err(usage(format!("two inputs would both be written to {}", out.display())));
                    }
                    jobs.push((input, out));
                }
            }
            if jobs.is_empty() {
                return Err(usage("no files to process"));
            }
            Ok(jobs)
        }
    }
}

/// An input: stdin, or a file (with its length when it is a regular file).
enum Input {
    Stdin(io::StdinLock<'static>),
    File(File, Option<u64>),
}

impl Input {
    /// The length of a regular file input, if that is what it is.
    fn size(&self) -> Option<u64> {
        match self {
            Input::File(_, len) => *len,
            Input::Stdin(_) => None,
        }
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Stdin(r) => r.read(buf),
            Input::File(f, _) => f.read(buf),
        }
    }
}

/// Opens an input (`-`: stdin) with its size if it is a regular file.
fn open_input(path: &Path) -> anyhow::Result<Input> {
    if is_dash(path) {
        return Ok(Input::Stdin(io::stdin().lock()));
    }
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    Ok(Input::File(f, len))
}

/// Where output goes: stdout, or a file that appears only on success.
enum Sink {
    Stdout(BufWriter<io::StdoutLock<'static>>),
    File(AtomicFile),
}

impl Sink {
    fn open(path: &Path) -> anyhow::Result<Sink> {
        if is_dash(path) {
            return Ok(Sink::Stdout(BufWriter::with_capacity(1 << 20, io::stdout().lock())));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        Ok(Sink::File(AtomicFile::create(path).with_context(|| format!("cannot write {}", path.display()))?))
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(w) => w,
            Sink::File(f) => f,
        }
    }

    fn commit(self, path: &Path) -> anyhow::Result<()> {
        match self {
            Sink::Stdout(mut w) => w.flush().context("writing to stdout failed"),
            Sink::File(f) => f.commit().with_context(|| format!("cannot write {}", path.display())),
        }
    }
}

/// Turns an envelope error into the CLI's: token refusals of GenerateDataKey keep their typed
/// error (for the hint and exit status), the rest say which part of which file failed.
fn envelope_error(e: EnvelopeError, input: &Path) -> anyhow::Error {
    match e {
        EnvelopeError::DataKey(inner) => inner.into(),
        other => {
            // The token refused to unwrap the data key: its exception and exit status (254),
            // with the message saying which file.
            let mut refused = None;
            if let EnvelopeError::Unwrap(inner) = &other {
                if let Some(pkms_lib::error::Error::Token { code, .. }) = inner.client_error() {
                    refused = Some(code.kms_name());
                }
            }
            let message = format!("{}: {other}", input.display());
            match refused {
                Some(kind) => super::Refusal { kind, message }.into(),
                None => anyhow::anyhow!(message),
            }
        }
    }
}

fn encrypt_files(mut a: EncryptFileArgs, ctx: &mut Context) -> anyhow::Result<()> {
    a.key_id = ctx.key(&a.key_id)?;
    let context = merge_context(&a.encryption_context).map_err(usage)?;
    let jobs = plan(&a.paths, a.out_dir.as_deref(), |rel| {
        let mut name = rel.as_os_str().to_owned();
        name.push(".");
        name.push(EXT);
        PathBuf::from(name)
    })?;
    let opts = options(a.threads, Some(a.segment_size))?;
    let mut cache = cache_from(&a.cache)?;
    let total: Option<u64> = jobs.iter().map(|(i, _)| std::fs::metadata(i).ok().map(|m| m.len())).sum();
    let bar = progress_bar(ctx, total.filter(|_| !jobs.iter().any(|(i, _)| is_dash(i))));
    let quiet_note = ctx.quiet;
    let mut done = Vec::new();
    for (input, output) in &jobs {
        bar.set_message(input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let mut reader = open_input(input)?;
        let size = reader.size();
        let service: &mut dyn KeyService = ctx.client()?;
        let encryption = Envelope::new(service, &mut cache, opts)
            .start_encrypt(&a.key_id, &context, size)
            .map_err(|e| envelope_error(e, input))?;
        if jobs.len() == 1 {
            // The data key is in hand: free the token for other processes (a pipe into
            // `pkms decrypt-file` waits for it).
            ctx.disconnect();
        }
        let mut sink = Sink::open(output)?;
        // File to file: positional I/O on several threads; otherwise the streaming pipeline.
        let summary = match (&reader, &sink) {
            (Input::File(f, Some(len)), Sink::File(out)) => encryption.run_file(f, *len, out.file(), &bar),
            _ => encryption.run(&mut reader, sink.writer(), &bar),
        }
        .map_err(|e| envelope_error(e, input))?;
        sink.commit(output)?;
        done.push((output.clone(), summary));
    }
    bar.finish_and_clear();
    if !quiet_note && io::stderr().is_terminal() {
        for (output, s) in &done {
            if !is_dash(output) {
                eprintln!(
                    "encrypted {} bytes to {} under {}{}",
                    s.plaintext_bytes,
                    output.display(),
                    s.key_id,
                    if s.cached_data_key { " (cached data key)" } else { "" }
                );
            }
        }
        let st = cache.stats();
        if cache.limits().is_some() {
            eprintln!("data keys: {} generated, {} reused from the cache", st.generated, st.encrypt_hits);
        }
    }
    Ok(())
}

fn decrypt_files(mut a: DecryptFileArgs, ctx: &mut Context) -> anyhow::Result<()> {
    a.key_id = ctx.key_opt(a.key_id.as_deref())?;
    let policy = DecryptPolicy {
        key_id: a.key_id.clone(),
        required_context: merge_context(&a.encryption_context).map_err(usage)?,
    };
    let jobs = plan(&a.paths, a.out_dir.as_deref(), |rel| match rel.extension() {
        Some(ext) if ext == EXT => rel.with_extension(""),
        _ => {
            let mut name = rel.as_os_str().to_owned();
            name.push(".decrypted");
            PathBuf::from(name)
        }
    })?;
    let opts = options(a.threads, None)?;
    let mut cache = match a.cache_max_age {
        Some(age) => DataKeyCache::new(CacheLimits::with_max_age(max_age(age)?)),
        None => DataKeyCache::disabled(),
    };
    let total: Option<u64> = jobs.iter().map(|(i, _)| std::fs::metadata(i).ok().map(|m| m.len())).sum();
    let bar = progress_bar(ctx, total.filter(|_| !jobs.iter().any(|(i, _)| is_dash(i))));
    let show = !ctx.quiet && io::stderr().is_terminal();
    let single = jobs.len() == 1;
    let mut failures = Vec::new();
    for (input, output) in &jobs {
        bar.set_message(input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let result = (|| -> anyhow::Result<u64> {
            let mut reader = open_input(input)?;
            // The header is read before connecting: a pipe from `pkms encrypt-file` holds the
            // token until it has its data key and writes the header.
            let pending = PendingHeader::read(&mut reader).map_err(|e| envelope_error(e, input))?;
            let service: &mut dyn KeyService = ctx.client()?;
            let decryption = Envelope::new(service, &mut cache, opts)
                .start_decrypt(pending, &policy)
                .map_err(|e| envelope_error(e, input))?;
            if single {
                ctx.disconnect();
            }
            let mut sink = Sink::open(output)?;
            // On error the sink is dropped uncommitted: a partial file output is removed.
            // File to file: positional I/O on several threads; otherwise the streaming pipeline.
            let s = match (&mut reader, &sink) {
                (Input::File(f, Some(_)), Sink::File(out)) => {
                    let body_start =
                        f.stream_position().with_context(|| format!("cannot read {}", input.display()))?;
                    decryption.run_file(f, body_start, out.file(), &bar)
                }
                _ => decryption.run(&mut reader, sink.writer(), &bar),
            }
            .map_err(|e| envelope_error(e, input))?;
            sink.commit(output)?;
            Ok(s.plaintext_bytes)
        })();
        match result {
            Ok(n) if show && !is_dash(output) => {
                bar.println(format!("decrypted {n} bytes to {}", output.display()))
            }
            Ok(_) => {}
            Err(e) if jobs.len() == 1 => {
                bar.finish_and_clear();
                return Err(e);
            }
            Err(e) => {
                bar.suspend(|| eprintln!("{e:#}"));
                failures.push(input.clone());
            }
        }
    }
    bar.finish_and_clear();
    if !failures.is_empty() {
        bail!(
            "{} of {} files failed to decrypt (their outputs were not written)",
            failures.len(),
            jobs.len()
        );
    }
    Ok(())
}

/// Writes a signature or a manifest: published artefacts, so mode 0644 (readable by everyone
/// who verifies; encrypted files stay 0600).
pub(super) fn write_output(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut sink = Sink::open(path)?;
    if let Sink::File(f) = &sink {
        f.file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    sink.writer().write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    sink.commit(path)
}

fn signature_bytes(
    sig: &pkms_lib::envelope::DigestSignature,
    digest: &[u8; 32],
    format: SignatureFormat,
) -> anyhow::Result<Vec<u8>> {
    match format {
        SignatureFormat::Der => Ok(sig.der.clone()),
        SignatureFormat::Json => {
            let env = SignatureEnvelope::new(sig, digest);
            let mut text = super::json_pretty(&serde_json::to_value(&env).unwrap_or_default());
            text.push('\n');
            Ok(text.into_bytes())
        }
        SignatureFormat::Openpgp => Err(usage(
            "sign-manifest writes der, json, ssh or minisign signatures (sign-file --format openpgp signs files for gpg)",
        )),
        SignatureFormat::Ssh | SignatureFormat::Minisign => {
            Err(anyhow::anyhow!("{format:?} signatures are not made from a SHA-256 digest"))
        }
    }
}

/// The format of [`sigfiles`](super::sigfiles) a signature format is, if it is one.
fn sigfile_kind(format: SignatureFormat) -> Option<super::sigfiles::Kind> {
    match format {
        SignatureFormat::Ssh => Some(super::sigfiles::Kind::Ssh),
        SignatureFormat::Minisign => Some(super::sigfiles::Kind::Minisign),
        SignatureFormat::Der | SignatureFormat::Json | SignatureFormat::Openpgp => None,
    }
}

fn with_sig_suffix(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

fn sign_file(mut a: SignFileArgs, ctx: &mut Context) -> anyhow::Result<()> {
    if a.format == SignatureFormat::Openpgp {
        if a.namespace.is_some() {
            return Err(usage("--namespace applies to --format ssh only"));
        }
        return super::openpgp::sign_files(&a.key_id, &a.files, a.out.as_deref(), ctx);
    }
    a.key_id = ctx.key(&a.key_id)?;
    if let Some(kind) = sigfile_kind(a.format) {
        return super::sigfiles::sign_files(
            ctx,
            &a.key_id,
            kind,
            a.namespace.as_deref(),
            &a.files,
            a.out.as_deref(),
        );
    }
    if a.namespace.is_some() {
        return Err(usage("--namespace applies to --format ssh only"));
    }
    let [file] = &a.files[..] else {
        return Err(usage("--format der and json sign one FILE (sign-manifest signs many at once)"));
    };
    let out = match &a.out {
        Some(p) => p.clone(),
        None if is_dash(file) => PathBuf::from("-"),
        None => with_sig_suffix(file),
    };
    let mut reader = open_input(file)?;
    let bar = progress_bar(ctx, reader.size());
    bar.set_message("sha256");
    let digest = filesign::sha256_reader(&mut reader, &bar)
        .with_context(|| format!("cannot read {}", file.display()))?;
    bar.finish_and_clear();
    let sig = filesign::sign_digest(ctx.client()?, &a.key_id, &digest)?;
    write_output(&out, &signature_bytes(&sig, &digest, a.format)?)?;
    if is_dash(&out) {
        // The signature itself is on stdout.
        return Ok(());
    }
    // A DER signature names neither key nor version: the output does, for the record.
    let signed = SignFileOutput {
        key_id: format!("{}key/{}", ctx.scope().prefix(), sig.key_id),
        key_version: sig.key_version,
        signing_algorithm: filesign::SIGNING_ALGORITHM,
        signature_file: out.display().to_string(),
    };
    ctx.emit_record(&signed, &signed.note())
}

/// What `sign-file --format der|json` prints with `--output` (else [`SignFileOutput::note`] on
/// stderr): the key and version that signed (a DER signature does not name them; keep this
/// output, or `verify-file --key-id` finds the version), and where the signature went.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SignFileOutput {
    /// The key ARN, as KMS's Sign names the key.
    key_id: String,
    key_version: u32,
    signing_algorithm: &'static str,
    signature_file: String,
}

impl SignFileOutput {
    /// The one line on stderr that names key, version and signature when `--output` is not given.
    fn note(&self) -> String {
        format!(
            "Signed by {} version {} ({}): {}",
            self.key_id, self.key_version, self.signing_algorithm, self.signature_file
        )
    }
}

fn verify_file(mut a: VerifyFileArgs, ctx: &mut Context) -> anyhow::Result<()> {
    if let Some(verdict) = super::openpgp::verify_file(&a, ctx) {
        return verdict;
    }
    a.key_id = ctx.key_opt(a.key_id.as_deref())?;
    let sig_path = a.signature.clone().unwrap_or_else(|| {
        let sig = with_sig_suffix(&a.file);
        let minisig = super::sigfiles::default_signature(&a.file, super::sigfiles::Kind::Minisign);
        if !sig.exists() && minisig.exists() {
            minisig
        } else {
            sig
        }
    });
    let sig_bytes = std::fs::read(&sig_path)
        .with_context(|| format!("cannot read the signature {}", sig_path.display()))?;
    if let Some(kind) = super::sigfiles::detect(&sig_bytes) {
        let request = super::sigfiles::VerifyRequest {
            signature: (&sig_bytes, &sig_path),
            file: &a.file,
            public_key: a.public_key.as_deref(),
            key_id: a.key_id.as_deref(),
            key_version: a.key_version,
            namespace: a.namespace.as_deref(),
            check_manifest: !a.signature_only,
        };
        return super::sigfiles::verify_file(ctx, kind, request);
    }
    if a.namespace.is_some() {
        return Err(usage("--namespace applies to SSH signatures only"));
    }
    let sig = filesign::parse_signature(&sig_bytes).with_context(|| format!("{}", sig_path.display()))?;
    let public_key = match &a.public_key {
        Some(p) => {
            let bytes =
                std::fs::read(p).with_context(|| format!("cannot read the public key {}", p.display()))?;
            Some(filesign::parse_public_key(&bytes).with_context(|| format!("{}", p.display()))?)
        }
        None => None,
    };
    if public_key.is_none() && a.key_id.is_none() && sig.envelope.is_none() {
        return Err(usage(
            "give --public-key PUB.pem to verify offline, or --key-id KEY to verify on the token",
        ));
    }
    let size = std::fs::metadata(&a.file).ok().map(|m| m.len());
    let bar = progress_bar(ctx, size);
    bar.set_message("sha256");
    let digest = filesign::sha256_file(&a.file, &bar)?;
    bar.finish_and_clear();
    if let Some(signed) = sig.signed_digest()? {
        if signed != digest {
            return Err(super::invalid_signature(format!(
                "Verification failure: {} has SHA-256 {}, but the signature envelope signed {}",
                a.file.display(),
                filesign::hex(&digest),
                filesign::hex(&signed)
            )));
        }
    }
    let (verified_by, key_desc, key_arn) = match (&public_key, &a.key_id) {
        (Some(vk), _) => (
            filesign::verify_offline(vk, &digest, &sig.der).then_some(None),
            "the public key".to_owned(),
            None,
        ),
        (None, key) => {
            let (key_id, version) = match (key, &sig.envelope) {
                (Some(k), env) => (k.clone(), a.key_version.or(env.as_ref().map(|e| e.key_version))),
                (None, Some(env)) => (env.key_id.clone(), Some(env.key_version)),
                (None, None) => return Err(usage("give --public-key or --key-id")),
            };
            // The key as KMS's Verify names it (its ARN), whatever form --key-id took.
            let id = ctx.client()?.describe_key(&key_id)?.key_id;
            let found = match version {
                Some(v) => {
                    ctx.client()?.verify_digest(&key_id, &digest, &sig.der, Some(v))?.then_some(Some(v))
                }
                None => verify_any_version(ctx, &key_id, &digest, &sig.der)?,
            };
            (found, format!("key {key_id}"), Some(ctx.scope().key_arn(&id)))
        }
    };
    let Some(verified_version) = verified_by else {
        let tried = if a.key_id.is_some() && a.key_version.is_none() && sig.envelope.is_none() {
            " (every version the token still holds was tried)"
        } else {
            ""
        };
        return Err(super::invalid_signature(format!(
            "Verification failure: the signature {} does not match {} under {key_desc}{tried}: the file changed, or another key signed it",
            sig_path.display(),
            a.file.display()
        )));
    };
    let mut result = VerifyFileOutput {
        signature_valid: true,
        signing_algorithm: filesign::SIGNING_ALGORITHM,
        digest: filesign::hex(&digest),
        key_id: key_arn
            .or_else(|| sig.envelope.as_ref().map(|e| format!("{}key/{}", ctx.scope().prefix(), e.key_id))),
        key_version: verified_version.or(sig.envelope.as_ref().map(|e| e.key_version)),
        files_valid: None,
        changed_files: None,
        files: None,
    };
    // A signed manifest: check what it lists.
    let mut failed = 0usize;
    if !a.signature_only && size.is_some_and(|s| s <= 64 << 20) {
        let text = std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
        if let Some(manifest) = Manifest::parse(&text) {
            let base = a.file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let bar = progress_bar(ctx, None);
            let mut files = Vec::new();
            for (path, check) in manifest.check(base, &bar) {
                let status = match check {
                    EntryCheck::Ok => "OK".to_owned(),
                    EntryCheck::Mismatch => {
                        failed += 1;
                        "FAILED".to_owned()
                    }
                    EntryCheck::Unreadable(e) => {
                        failed += 1;
                        format!("FAILED open or read: {e:#}")
                    }
                };
                files.push(FileStatus { path, status });
            }
            bar.finish_and_clear();
            let changed: Vec<String> =
                files.iter().filter(|f| f.status != "OK").map(|f| f.path.clone()).collect();
            result.files_valid = Some(changed.is_empty());
            result.changed_files = Some(changed);
            result.files = Some(files);
        }
    }
    ctx.emit(&result)?;
    if let Some(changed) = result.changed_files.as_ref().filter(|c| !c.is_empty()) {
        return Err(super::invalid_signature(format!(
            "the manifest's signature is valid, but {failed} listed file(s) are missing or changed: {}",
            changed.join(", ")
        )));
    }
    Ok(())
}

/// verify-file --key-id without a version: tries every version the token holds, newest first;
/// the one that verified, if any.
fn verify_any_version(
    ctx: &mut Context,
    key_id: &str,
    digest: &[u8; 32],
    der: &[u8],
) -> anyhow::Result<Option<Option<u32>>> {
    let client = ctx.client()?;
    let id = client.describe_key(key_id)?.key_id.to_string();
    let mut versions: Vec<u32> = client.list_all_key_rotations(&id)?.iter().map(|r| r.key_version).collect();
    versions.sort_unstable_by(|a, b| b.cmp(a));
    for v in versions {
        if client.verify_digest(key_id, digest, der, Some(v))? {
            return Ok(Some(Some(v)));
        }
    }
    Ok(None)
}

/// What `verify-file` reports when the signature is valid.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct VerifyFileOutput {
    signature_valid: bool,
    signing_algorithm: &'static str,
    /// SHA-256 of the file, lower-case hex.
    digest: String,
    /// The signing key's ARN: the key verified on (`--key-id`) or the envelope's. Absent for a
    /// DER signature checked offline (neither the signature nor a public key names a key).
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    /// The key version that verified (`--key-id`: the one named, else the first of every held
    /// version that did) or the envelope's.
    #[serde(skip_serializing_if = "Option::is_none")]
    key_version: Option<u32>,
    /// For a signed manifest: whether every listed file matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    files_valid: Option<bool>,
    /// For a signed manifest: the listed files that are missing or changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    changed_files: Option<Vec<String>>,
    /// For a signed manifest, each listed file's check.
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<FileStatus>>,
}

/// One file a signed manifest lists: `OK` or why not.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct FileStatus {
    path: String,
    status: String,
}

fn sign_manifest(mut a: SignManifestArgs, ctx: &mut Context) -> anyhow::Result<()> {
    if a.format == SignatureFormat::Openpgp {
        return Err(usage(
            "sign-manifest writes der, json, ssh or minisign signatures (sign-file --format openpgp signs files for gpg)",
        ));
    }
    a.key_id = ctx.key(&a.key_id)?;
    let sig_path = a.signature.clone().unwrap_or_else(|| with_sig_suffix(&a.out));
    if is_dash(&a.out) {
        return Err(usage("--out must name a file: the manifest's paths are relative to its directory"));
    }
    let base = a.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let skip: Vec<PathBuf> =
        [&a.out, &sig_path].iter().filter_map(|p| std::fs::canonicalize(p).ok()).collect();
    let mut files = Vec::new();
    for p in &a.files {
        for (f, _) in walk(p)? {
            if !skip.contains(&std::fs::canonicalize(&f).unwrap_or_default()) {
                files.push(f);
            }
        }
    }
    if files.is_empty() {
        return Err(usage("no files to list"));
    }
    let total: u64 = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let bar = progress_bar(ctx, Some(total));
    bar.set_message("sha256");
    let manifest = Manifest::build(&files, &base, &bar)?;
    bar.finish_and_clear();
    let text = manifest.to_text();
    if let Some(kind) = sigfile_kind(a.format) {
        // One SSHSIG or minisign signature over the manifest.
        write_output(&a.out, text.as_bytes())?;
        let sig_path = match (&a.signature, kind) {
            (Some(p), _) => p.clone(),
            (None, k) => super::sigfiles::default_signature(&a.out, k),
        };
        return super::sigfiles::sign_files(ctx, &a.key_id, kind, None, &[a.out.clone()], Some(&sig_path));
    }
    let digest = filesign::sha256_reader(&mut text.as_bytes(), &NoProgress)?;
    let sig = filesign::sign_digest(ctx.client()?, &a.key_id, &digest)?;
    write_output(&a.out, text.as_bytes())?;
    write_output(&sig_path, &signature_bytes(&sig, &digest, a.format)?)?;
    let signed = SignManifestOutput {
        manifest: a.out.display().to_string(),
        file_count: manifest.entries.len(),
        signed: SignFileOutput {
            key_id: format!("{}key/{}", ctx.scope().prefix(), sig.key_id),
            key_version: sig.key_version,
            signing_algorithm: filesign::SIGNING_ALGORITHM,
            signature_file: sig_path.display().to_string(),
        },
    };
    let note = format!("{} ({} files): {}", signed.signed.note(), signed.file_count, signed.manifest);
    ctx.emit_record(&signed, &note)
}

/// What `sign-manifest --format der|json` prints: the manifest, how many files it lists, and
/// the key and version that signed it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SignManifestOutput {
    manifest: String,
    file_count: usize,
    #[serde(flatten)]
    signed: SignFileOutput,
}
