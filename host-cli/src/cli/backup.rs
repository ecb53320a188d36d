//! `pkms backup`: the backup key and its SLIP-39 shares, exports (under the backup key or to a
//! peer token's device key) and restores onto a fresh token. The file format and the streaming
//! live in [`pkms_lib::backup`]; docs/backup.md has the ceremony.

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use pkms_lib::backup::{self, slip39, BackupFile};
use pkms_lib::model::encoding::iso8601;
use pkms_protocol::backup::Mode;
use pkms_protocol::request;
use serde::Serialize;
use zeroize::Zeroizing;

use super::output::{pem, OutputFormat};
use super::{usage, Context};

/// Backup commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Make the token's backup key and print it once as N SLIP-39 shares (33 words each), any
    /// M of which recover it (administrators). Keep each share in a different place.
    #[command(
        after_help = "Examples:\n  pkms backup init --shares 5 --threshold 3 --shares-out /media/usb/shares\n  \
        pkms backup init --shares 3 --threshold 2 --replace"
    )]
    Init {
        /// How many shares (2..=16).
        #[arg(long)]
        shares: u8,
        /// How many shares recover the key (2..=shares).
        #[arg(long)]
        threshold: u8,
        /// Write share-1.txt … share-N.txt here (created 0600; the directory must not exist or
        /// be empty) instead of printing the shares.
        #[arg(long)]
        shares_out: Option<PathBuf>,
        /// Replace an existing backup key (backups made so far then need the old shares).
        #[arg(long)]
        replace: bool,
    },
    /// Export every key, version, alias, tag, policy, grant and principal to a file, sealed
    /// under the backup key, or wrapped to one other token's device key (administrators).
    #[command(after_help = "Examples:\n  pkms backup export --out token.pkbak\n  \
        pkms backup export --to-peer spare.pem --out spare.pkbak --peer-fingerprint SHA256:...")]
    Export {
        /// The backup file (written 0600; it appears only when complete).
        #[arg(long)]
        out: PathBuf,
        /// Wrap the backup to this token's device key (PEM, from `pkms backup device-key
        /// --output pem` on that token): only that token can restore it, no shares involved.
        #[arg(long)]
        to_peer: Option<PathBuf>,
        /// The peer key's fingerprint as `pkms backup device-key` showed it on that token
        /// (instead of confirming it at the prompt).
        #[arg(long, requires = "to_peer")]
        peer_fingerprint: Option<String>,
    },
    /// Restore a backup onto a fresh token (open, never initialised): with M share files (or
    /// the shares typed at the prompt, one at a time), or with none for a backup wrapped to this
    /// token.
    #[command(
        after_help = "Examples:\n  pkms backup restore --in token.pkbak --share-file s1.txt --share-file s3.txt --share-file s5.txt\n  \
        pkms backup restore --in spare.pkbak"
    )]
    Restore {
        /// The backup file.
        #[arg(long = "in")]
        input: PathBuf,
        /// A file holding one share (repeat for each).
        #[arg(long)]
        share_file: Vec<PathBuf>,
    },
    /// This token's device key, for another token to wrap a backup to (`--output pem`).
    #[command(after_help = "Example:\n  pkms backup device-key --output pem > spare.pem")]
    DeviceKey,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InitOutput {
    shares: u8,
    threshold: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    share_files: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mnemonics: Option<Vec<String>>,
    replaced: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ExportOutput {
    out: String,
    mode: &'static str,
    source_token: String,
    backup_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_fingerprint: Option<String>,
    chunks: u32,
    records: u32,
    bytes: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RestoreOutput {
    restored: bool,
    records: u32,
    source_token: String,
    backup_time: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeviceKeyOutput {
    public_key: String,
    fingerprint: String,
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::BackupKey => "BACKUP_KEY",
        Mode::Peer => "PEER",
    }
}

/// Runs a backup command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::Init { shares, threshold, shares_out, replace } => {
            init(ctx, shares, threshold, shares_out, replace)
        }
        Commands::Export { out, to_peer, peer_fingerprint } => export(ctx, &out, to_peer, peer_fingerprint),
        Commands::Restore { input, share_file } => restore(ctx, &input, &share_file),
        Commands::DeviceKey => {
            ctx.raw_client()?;
            let key = ctx.device_key().ok_or_else(|| anyhow::anyhow!("no device key"))?.clone();
            if ctx.output == OutputFormat::Pem {
                return ctx.emit_raw(&pem("PUBLIC KEY", key.spki_der()));
            }
            use base64::Engine;
            ctx.emit(&DeviceKeyOutput {
                public_key: base64::engine::general_purpose::STANDARD.encode(key.spki_der()),
                fingerprint: key.fingerprint(),
            })
        }
    }
}

/// Makes the share files empty (0600, new) before the token makes the key, so that a directory
/// that cannot take them is found before anything changes.
fn prepare_share_files(dir: &Path, n: u8) -> anyhow::Result<Vec<(PathBuf, fs::File)>> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(usage(format!("--shares-out {}: the directory is not empty", dir.display())));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b = fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(dir).map_err(|e| usage(format!("--shares-out {}: {e}", dir.display())))?;
        }
        Err(e) => return Err(usage(format!("--shares-out {}: {e}", dir.display()))),
    }
    (1..=n)
        .map(|i| {
            let path = dir.join(format!("share-{i}.txt"));
            let mut o = fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            let f = o.open(&path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
            Ok((path, f))
        })
        .collect()
}

fn init(
    ctx: &mut Context,
    shares: u8,
    threshold: u8,
    shares_out: Option<PathBuf>,
    replace: bool,
) -> anyhow::Result<()> {
    if !(2..=slip39::MAX_SHARES).contains(&shares) || !(2..=shares).contains(&threshold) {
        return Err(usage("--shares and --threshold need 2 <= threshold <= shares <= 16"));
    }
    let files = match &shares_out {
        Some(dir) => Some(prepare_share_files(dir, shares)?),
        None => None,
    };
    let secret = ctx.client()?.call(request::BackupInit { replace })?;
    let mnemonics = slip39::split(&secret, threshold, shares, &mut rand_core::OsRng)?;
    drop(secret);
    if replace && !ctx.quiet {
        eprintln!("The backup key was replaced: backups made before need the old shares to restore.");
    }
    let output = match files {
        Some(files) => {
            let mut names = Vec::new();
            for ((path, mut f), m) in files.into_iter().zip(&mnemonics) {
                let text = Zeroizing::new(format!("{m}\n"));
                f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| {
                    anyhow::anyhow!(
                        "{}: {e} (the backup key was made: run init again with --replace)",
                        path.display()
                    )
                })?;
                names.push(path.display().to_string());
            }
            InitOutput { shares, threshold, share_files: Some(names), mnemonics: None, replaced: replace }
        }
        None => {
            InitOutput { shares, threshold, share_files: None, mnemonics: Some(mnemonics), replaced: replace }
        }
    };
    ctx.emit(&output)
}

/// Reads a peer's device key (PEM SubjectPublicKeyInfo, P-256); its DER form.
fn read_peer_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = fs::read_to_string(path).map_err(|e| usage(format!("--to-peer {}: {e}", path.display())))?;
    let key = p256::PublicKey::from_public_key_pem(text.trim())
        .map_err(|_| usage(format!("--to-peer {}: not a P-256 public key in PEM", path.display())))?;
    Ok(key.to_public_key_der().map_err(|e| anyhow::anyhow!("{e}"))?.as_bytes().to_vec())
}

/// Shows the peer key's fingerprint and has it confirmed: by `--peer-fingerprint`, or at the
/// prompt on a terminal. Without a terminal it is only shown (on stderr).
fn confirm_peer(fingerprint: &str, given: Option<&str>) -> anyhow::Result<()> {
    if let Some(g) = given {
        if g.trim() != fingerprint {
            return Err(usage(format!(
                "the peer key's fingerprint is {fingerprint}, not {g}: this is not the token you named"
            )));
        }
        return Ok(());
    }
    eprintln!("The backup will be wrapped to the token whose device key is {fingerprint}.");
    eprintln!("Compare it with `pkms backup device-key` on that token: only it can restore the backup.");
    if !std::io::stdin().is_terminal() {
        return Ok(());
    }
    eprint!("Is that the right token? Type yes to go on: ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    if line.trim() != "yes" {
        return Err(usage("not confirmed: nothing was exported"));
    }
    Ok(())
}

fn export(
    ctx: &mut Context,
    out: &Path,
    to_peer: Option<PathBuf>,
    given: Option<String>,
) -> anyhow::Result<()> {
    let peer = match &to_peer {
        Some(p) => {
            let der = read_peer_key(p)?;
            let fp = backup::fingerprint(&der);
            confirm_peer(&fp, given.as_deref())?;
            Some((der, fp))
        }
        None => None,
    };
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".pkms-backup")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(&dir)
        .map_err(|e| usage(format!("--out {}: {e}", out.display())))?;
    let client = ctx.client()?;
    let mut writer = std::io::BufWriter::new(tmp.as_file_mut());
    let summary = backup::export(client, peer.as_ref().map(|(d, _)| d.as_slice()), &mut writer)?;
    writer.flush()?;
    drop(writer);
    tmp.as_file().sync_all()?;
    tmp.persist(out).map_err(|e| usage(format!("--out {}: {e}", out.display())))?;
    let file = BackupFile::read(fs::File::open(out)?)?;
    ctx.emit(&ExportOutput {
        out: out.display().to_string(),
        mode: mode_name(file.mode()),
        source_token: backup::token_id(&file.parsed.source),
        backup_time: iso8601(file.parsed.time),
        peer_fingerprint: peer.map(|(_, fp)| fp),
        chunks: summary.chunks,
        records: summary.records,
        bytes: summary.bytes,
    })
}

/// Reads the shares: from the files given (a share that fails its checksum is named), else at
/// the terminal one at a time until the threshold the first share names is reached.
fn read_shares(files: &[PathBuf]) -> anyhow::Result<Vec<slip39::Share>> {
    let mut shares = Vec::new();
    if !files.is_empty() {
        for f in files {
            let text = Zeroizing::new(
                fs::read_to_string(f).map_err(|e| usage(format!("--share-file {}: {e}", f.display())))?,
            );
            let share = slip39::Share::parse(text.trim())
                .map_err(|e| usage(format!("share {}: {e}", f.display())))?;
            shares.push(share);
        }
        return Ok(shares);
    }
    if !std::io::stdin().is_terminal() {
        return Err(usage(
            "this backup needs its shares: give --share-file for each (or type them at a terminal)",
        ));
    }
    let mut needed = 1usize;
    while shares.len() < needed {
        let n = shares.len() + 1;
        let typed = rpassword::prompt_password(format!("Share {n} (33 words): "))?;
        let typed = Zeroizing::new(typed);
        match slip39::Share::parse(typed.trim()) {
            Ok(s) => {
                needed = s.threshold as usize;
                shares.push(s);
            }
            Err(e) => eprintln!("share {n}: {e}; type it again"),
        }
    }
    Ok(shares)
}

fn restore(ctx: &mut Context, input: &Path, share_files: &[PathBuf]) -> anyhow::Result<()> {
    let file = BackupFile::read(
        fs::File::open(input).map_err(|e| usage(format!("--in {}: {e}", input.display())))?,
    )?;
    let secret = match file.mode() {
        Mode::BackupKey => {
            let shares = read_shares(share_files)?;
            Some(slip39::combine_shares(&shares).map_err(|e| usage(format!("the shares given: {e}")))?)
        }
        Mode::Peer => {
            if !share_files.is_empty() {
                return Err(usage("this backup is wrapped to a token's device key: it takes no shares"));
            }
            None
        }
    };
    // A fresh token needs no login; on an initialised one the token refuses (an administrator
    // learns that it is not fresh, anyone else that it is not theirs to do).
    let initialized = ctx.raw_client()?.get_info()?.initialized;
    let client = if initialized { ctx.client()? } else { ctx.raw_client()? };
    let records = backup::restore(client, &file, secret.as_ref().map(|s| s.as_slice()))?;
    ctx.emit(&RestoreOutput {
        restored: true,
        records,
        source_token: backup::token_id(&file.parsed.source),
        backup_time: iso8601(file.parsed.time),
    })
}

/// After a key change: one line on stderr when the token has a backup key and key versions are
/// in no backup.
pub fn remind(ctx: &mut Context) {
    if ctx.quiet {
        return;
    }
    let Ok(client) = ctx.client() else { return };
    if let Ok(info) = client.get_info() {
        if info.backup_key && info.key_versions_not_backed_up > 0 {
            eprintln!(
                "Reminder: {} key version(s) are in no backup yet: `pkms backup export --out FILE`",
                info.key_versions_not_backed_up
            );
        }
    }
}
