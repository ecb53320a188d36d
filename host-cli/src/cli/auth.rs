//! Authentication: how every command logs in ([`login`]), and init, principals, unblock-pin
//! and factory-reset.
//!
//! The PIN comes from `PKMS_PIN`, `--pin-file`, or a prompt on a terminal (never echoed); the
//! principal from `--principal` / `PKMS_PRINCIPAL` (default `admin`). The PUK comes from
//! `PKMS_PUK`, `--puk-file` or a prompt, never from the command line (`--puk` is refused: it
//! would show in `ps`). On an open
//! (uninitialised) token every command warns on stderr that anyone holding the token can use
//! its keys.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use pkms_lib::model::audit::audit_full_name;
use pkms_lib::model::ListPrincipalsOutput;
use pkms_protocol::access::{AuditFullMode, Role, ADMIN_NAME};
use pkms_protocol::ErrorCode;
use serde::Serialize;
use zeroize::{Zeroize, Zeroizing};

use super::{usage, Context};
use pkms_lib::client::Client;
use pkms_lib::error::Error;

/// How to log in: from the global options and the environment.
#[derive(Debug, Clone, Default)]
pub struct Login {
    /// `--principal` / `PKMS_PRINCIPAL`.
    pub principal: Option<String>,
    /// `--pin-file`.
    pub pin_file: Option<PathBuf>,
}

impl Login {
    /// The principal name (default `admin`).
    pub fn principal(&self) -> &str {
        self.principal.as_deref().filter(|p| !p.is_empty()).unwrap_or(ADMIN_NAME)
    }

    /// The PIN from `PKMS_PIN` or `--pin-file`, if given (no prompt).
    pub fn given_pin(&self) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
        if let Ok(p) = std::env::var("PKMS_PIN") {
            if !p.is_empty() {
                return Ok(Some(Zeroizing::new(p.into_bytes())));
            }
        }
        match &self.pin_file {
            Some(f) => Ok(Some(read_secret_file(f, "--pin-file")?)),
            None => Ok(None),
        }
    }
}

/// Longest secret file read: a PIN or PUK is at most 64 bytes, so this is ample.
const MAX_SECRET_FILE: usize = 4096;

/// Reads a secret from a file (the first line, without its line end; at most
/// [`MAX_SECRET_FILE`] bytes are read).
pub fn read_secret_file(path: &Path, what: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let shown = path.display().to_string();
    let text =
        super::args::read_bounded(&shown, MAX_SECRET_FILE).map_err(|e| usage(format!("{what}: {e}")))?;
    let line = text.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Zeroizing::new(line.to_vec()))
}

/// Asks on the terminal (not echoed). With no terminal, a usage error (exit 252, as for every
/// missing argument) naming `how` (the variable or flag that gives it instead).
pub fn prompt(label: &str, how: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if !std::io::stdin().is_terminal() {
        return Err(usage(format!("{label} needed and no terminal to ask on: {how}")));
    }
    let s = rpassword::prompt_password(format!("{label}: "))?;
    Ok(Zeroizing::new(s.into_bytes()))
}

/// Where a PIN comes from when there is no terminal to ask on.
const PIN_HOW: &str = "set PKMS_PIN or give --pin-file";

const OPEN_WARNING: &str =
    "warning: this token is not initialised (open): anyone holding it can use its keys. \
                            Run `pkms init` to protect it with a PIN. (Shown once a day per PKMS_HOME; -q hides it.)";

/// Whether the token turned out to be open (not initialised) when logging in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// Logged in as the principal.
    LoggedIn,
    /// The token is open: nothing to log in to.
    Open,
}

/// Logs the fresh connection in: a token the session says is open needs nothing; else with a
/// given PIN, authenticates; otherwise finds out whether the token is initialised (from the
/// session's handshake, else GetInfo) and, if it is, prompts on the terminal (or fails without
/// one).
pub fn login(client: &mut Client, login: &Login) -> anyhow::Result<Opened> {
    let given = login.given_pin()?;
    // A token the session says is open has no PIN to check: none is sent to it (a resumed
    // session's keys have been on disk, see pkms_lib::session_cache).
    if client.session_status().is_some_and(|s| !s.initialized) {
        return Ok(Opened::Open);
    }
    if let Some(pin) = given {
        return match client.authenticate(login.principal(), &pin) {
            Err(Error::Token { code: ErrorCode::InvalidState, .. }) => Ok(Opened::Open),
            r => {
                r?;
                Ok(Opened::LoggedIn)
            }
        };
    }
    let initialized = match client.session_status() {
        Some(status) => status.initialized,
        None => client.get_info()?.initialized,
    };
    if !initialized {
        return Ok(Opened::Open);
    }
    let pin = prompt(&format!("PIN for {}", login.principal()), PIN_HOW)?;
    client.authenticate(login.principal(), &pin)?;
    Ok(Opened::LoggedIn)
}

/// Warns that the token is open, unless `quiet`, and at most once a day per `home` (a stamp
/// file in it holds the day it was last shown).
pub fn warn_open(home: &Path, quiet: bool) {
    if quiet {
        return;
    }
    let day = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
        .to_string();
    let stamp = home.join("open-token-warning");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == day) {
        return;
    }
    eprintln!("{OPEN_WARNING}");
    let _ = std::fs::write(&stamp, day);
}

/// `--audit-full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFull {
    /// Drop the oldest entries behind a signed checkpoint.
    Overwrite,
    /// Refuse operations until the log is exported and trimmed.
    Refuse,
}

/// `--role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Manages principals and the audit log.
    Admin,
    /// Uses keys as policies and grants allow.
    User,
}

/// Authentication commands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Initialise an open token: creates the administrator `admin` with the PIN (PKMS_PIN,
    /// --pin-file or a prompt) and sets the PUK (recovery secret: PKMS_PUK or --puk-file;
    /// printed once when pkms makes it).
    #[command(after_help = "Examples:\n  PKMS_PIN=246810 pkms init --audit-full overwrite\n  \
        PKMS_PIN=246810 pkms -q init --puk-out puk.txt     # the generated PUK goes to puk.txt (0600)")]
    Init {
        /// A file holding the PUK (else PKMS_PUK; else a random one, printed once).
        #[arg(long)]
        puk_file: Option<PathBuf>,
        /// Write the generated PUK to this file (created mode 0600, written before the token is
        /// initialised) instead of printing it. Needed with -q or --query, which would hide it.
        #[arg(long, value_name = "FILE", conflicts_with = "puk_file")]
        puk_out: Option<PathBuf>,
        /// Not accepted: a PUK on the command line shows in `ps` (use PKMS_PUK or --puk-file).
        #[arg(long, hide = true, num_args = 0..=1)]
        puk: Option<Option<String>>,
        /// What the audit log does when full.
        #[arg(long, value_enum, default_value = "overwrite")]
        audit_full: AuditFull,
    },
    /// Create a principal (administrators). Its PIN comes from PKMS_NEW_PIN, --new-pin-file or a prompt.
    #[command(after_help = "Example:\n  PKMS_NEW_PIN=135790 pkms create-principal --name bob --role user")]
    CreatePrincipal {
        /// Name (1-32 characters of A-Z a-z 0-9 _ . @ -).
        #[arg(long)]
        name: String,
        /// Role.
        #[arg(long, value_enum, default_value = "user")]
        role: RoleArg,
        /// A file holding the new principal's PIN.
        #[arg(long)]
        new_pin_file: Option<PathBuf>,
    },
    /// Remove a principal (administrators; the last administrator stays).
    #[command(after_help = "Example:\n  pkms delete-principal --name bob")]
    DeletePrincipal {
        /// Name.
        #[arg(long)]
        name: String,
    },
    /// List principals, their roles and PIN tries left.
    #[command(after_help = "Example:\n  pkms list-principals")]
    ListPrincipals,
    /// Unlock a principal locked by wrong PINs, with the PUK; sets a new PIN (PKMS_NEW_PIN,
    /// --new-pin-file or a prompt).
    #[command(after_help = "Example:\n  PKMS_PUK=... PKMS_NEW_PIN=112233 pkms unblock-pin --for admin")]
    UnblockPin {
        /// Principal to unlock (default: --principal / admin).
        #[arg(long = "for")]
        target: Option<String>,
        /// A file holding the PUK (else PKMS_PUK, else a prompt on the terminal).
        #[arg(long)]
        puk_file: Option<PathBuf>,
        /// Not accepted: a PUK on the command line shows in `ps` (use PKMS_PUK or --puk-file).
        #[arg(long, hide = true, num_args = 0..=1)]
        puk: Option<Option<String>>,
        /// A file holding the new PIN.
        #[arg(long)]
        new_pin_file: Option<PathBuf>,
    },
    /// Change your own PIN: the current one (PKMS_PIN, --pin-file or a prompt) and the new one
    /// (PKMS_NEW_PIN, --new-pin-file or a prompt, asked twice), for the principal of
    /// --principal / PKMS_PRINCIPAL (default admin). A wrong current PIN spends a try.
    #[command(
        after_help = "Examples:\n  pkms change-pin\n  PKMS_PIN=246810 PKMS_NEW_PIN=13579135 pkms change-pin --principal bob"
    )]
    ChangePin {
        /// A file holding the new PIN.
        #[arg(long)]
        new_pin_file: Option<PathBuf>,
    },
    /// Erase every key, principal and audit entry; the token is open again. Needs an
    /// administrator's PIN; without one, a blocked PUK and a press of the USB token's button.
    #[command(after_help = "Example:\n  pkms factory-reset --yes")]
    FactoryReset {
        /// Confirm: every key is destroyed.
        #[arg(long)]
        yes: bool,
    },
}

/// Refuses a PUK given on the command line, naming the ways that keep it out of `ps`.
fn no_puk_argument(puk: &Option<Option<String>>) -> anyhow::Result<()> {
    if puk.is_some() {
        return Err(usage(
            "--puk is not accepted: a PUK on the command line shows in `ps` and in shell history. \
             Give it in the environment variable PKMS_PUK, in a file with --puk-file PATH, or at the \
             prompt (unblock-pin asks on the terminal)",
        ));
    }
    Ok(())
}

/// The PUK from PKMS_PUK or `--puk-file`, if given.
fn given_puk(file: &Option<PathBuf>) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
    if let Ok(p) = std::env::var("PKMS_PUK") {
        if !p.is_empty() {
            return Ok(Some(Zeroizing::new(p.into_bytes())));
        }
    }
    match file {
        Some(f) => Ok(Some(read_secret_file(f, "--puk-file")?)),
        None => Ok(None),
    }
}

fn new_pin(file: &Option<PathBuf>) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if let Ok(p) = std::env::var("PKMS_NEW_PIN") {
        if !p.is_empty() {
            return Ok(Zeroizing::new(p.into_bytes()));
        }
    }
    match file {
        Some(f) => read_secret_file(f, "--new-pin-file"),
        None => confirmed_prompt("New PIN", "set PKMS_NEW_PIN or give --new-pin-file"),
    }
}

/// Asks twice on the terminal; the answers must match. With no terminal, a usage error naming
/// `how` (the variable or flag that gives it instead): nothing was sent.
fn confirmed_prompt(label: &str, how: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if !std::io::stdin().is_terminal() {
        return Err(usage(format!("{label} needed and no terminal to ask on: {how}")));
    }
    let first = prompt(label, how)?;
    let again = prompt(&format!("{label} again"), how)?;
    if first != again {
        return Err(usage("the two PINs differ"));
    }
    Ok(first)
}

/// A random PUK from the host's RNG (the token is not asked: it may refuse unauthenticated
/// requests).
fn random_puk() -> Zeroizing<Vec<u8>> {
    use rand_core::RngCore;
    let mut bytes = Zeroizing::new([0u8; 10]);
    rand_core::OsRng.fill_bytes(&mut bytes[..]);
    // 16 characters of an unambiguous alphabet (80 bits).
    const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut acc: u128 = 0;
    for b in bytes.iter() {
        acc = acc << 8 | *b as u128;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(16));
    for _ in 0..16 {
        out.push(ALPHABET[(acc & 31) as usize]);
        acc >>= 5;
    }
    acc.zeroize();
    out
}

/// What `pkms init` reports: the administrator, the audit log's full mode and, when `pkms`
/// generated it, the PUK (shown this once).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InitOutput<'a> {
    principal: &'static str,
    audit_full: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    puk: Option<&'a str>,
    /// Where the generated PUK was written (`--puk-out`).
    #[serde(skip_serializing_if = "Option::is_none")]
    puk_file: Option<String>,
    /// The public key (PEM) that signs the token's audit log: `pkms audit verify --public-key`
    /// checks exports against it (`pkms audit public-key` prints it again).
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_public_key: Option<String>,
}

/// Writes a generated PUK to `path`, mode 0600 (only its owner may read it).
fn write_puk(path: &Path, puk: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let shown = path.display();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| usage(format!("--puk-out {shown}: {e}")))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| f.write_all(puk))
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .map_err(|e| usage(format!("--puk-out {shown}: {e}")))?;
    Ok(())
}

/// Runs an authentication command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::Init { puk_file, puk_out, puk, audit_full } => {
            no_puk_argument(&puk)?;
            let (puk, generated) = match given_puk(&puk_file)? {
                Some(p) => (p, false),
                None => (random_puk(), true),
            };
            let hidden = ctx.quiet || ctx.query.is_some();
            if generated && hidden && puk_out.is_none() {
                return Err(usage(
                    "init generates a PUK that is shown only once, and -q / --query would hide it: \
                     add --puk-out FILE to have it written to FILE (mode 0600), or give your own PUK \
                     with PKMS_PUK or --puk-file",
                ));
            }
            if puk_out.is_some() && !generated {
                return Err(usage(
                    "--puk-out writes a generated PUK; with PKMS_PUK or --puk-file you already have it",
                ));
            }
            let pin = match ctx.login().given_pin()? {
                Some(p) => p,
                None => confirmed_prompt("New administrator PIN", "set PKMS_PIN or give --pin-file")?,
            };
            // The PUK is on disk before the token takes it: it cannot be lost in between.
            if let Some(path) = &puk_out {
                write_puk(path, &puk)?;
            }
            let mode = match audit_full {
                AuditFull::Overwrite => AuditFullMode::Overwrite,
                AuditFull::Refuse => AuditFullMode::Refuse,
            };
            let done = ctx.raw_client().and_then(|c| Ok(c.initialize(&pin, &puk, mode)?));
            if let Err(e) = done {
                if let Some(path) = &puk_out {
                    let _ = std::fs::remove_file(path);
                }
                return Err(e);
            }
            let puk_text = Zeroizing::new(String::from_utf8_lossy(&puk).into_owned());
            if generated && puk_out.is_none() {
                eprintln!(
                    "Write the PUK down now: it is shown only once and unlocks a PIN locked by wrong tries."
                );
            }
            // The key that signs the audit log, for `pkms audit verify` (made by Initialize).
            let audit_public_key = match ctx.raw_client().and_then(|c| {
                c.authenticate(ADMIN_NAME, &pin)?;
                Ok(c.get_audit_checkpoint()?)
            }) {
                Ok(cp) => Some(pkms_lib::model::audit::public_key_pem(&cp.public_key)?),
                Err(e) => {
                    eprintln!("warning: the audit log's public key could not be read ({e:#}): `pkms audit public-key` prints it");
                    None
                }
            };
            ctx.emit(&InitOutput {
                principal: ADMIN_NAME,
                audit_full: audit_full_name(mode),
                puk: (generated && puk_out.is_none()).then_some(puk_text.as_str()),
                puk_file: puk_out.map(|p| p.display().to_string()),
                audit_public_key,
            })
        }
        Commands::CreatePrincipal { name, role, new_pin_file } => {
            let pin = new_pin(&new_pin_file)?;
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::User => Role::User,
            };
            ctx.client()?.create_principal(&name, &pin, role)?;
            Ok(())
        }
        Commands::DeletePrincipal { name } => {
            ctx.client()?.delete_principal(&name)?;
            Ok(())
        }
        Commands::ListPrincipals => {
            let principals = ctx.client()?.list_principals()?;
            ctx.emit(&ListPrincipalsOutput { principals })
        }
        Commands::UnblockPin { target, puk_file, puk, new_pin_file } => {
            no_puk_argument(&puk)?;
            let target = target.unwrap_or_else(|| ctx.login().principal().to_owned());
            let puk = match given_puk(&puk_file)? {
                Some(p) => p,
                None => prompt("PUK", "set PKMS_PUK or give --puk-file")?,
            };
            let pin = new_pin(&new_pin_file)?;
            ctx.raw_client()?.unblock_pin(&target, &puk, &pin)?;
            Ok(())
        }
        Commands::ChangePin { new_pin_file } => {
            let principal = ctx.login().principal().to_owned();
            let pin = match ctx.login().given_pin()? {
                Some(p) => p,
                None => prompt(&format!("Current PIN for {principal}"), PIN_HOW)?,
            };
            let new = new_pin(&new_pin_file)?;
            let client = ctx.raw_client()?;
            client.authenticate(&principal, &pin)?;
            client.change_pin(&pin, &new)?;
            if !ctx.quiet {
                eprintln!("The PIN of {principal} was changed.");
            }
            Ok(())
        }
        Commands::FactoryReset { yes } => {
            let token = ctx.token_description();
            if !yes {
                return Err(usage(format!(
                    "factory-reset destroys every key on {token}: add --yes to confirm (--device chooses another token)"
                )));
            }
            if !ctx.quiet {
                eprintln!("Erasing {token}.");
            }
            let login = ctx.login().clone();
            let quiet = ctx.quiet;
            let client = ctx.raw_client()?;
            if let Some(pin) = login.given_pin()? {
                // An administrator's session, if the PIN works; without one the token wants a
                // blocked PUK and a press of its button.
                let _ = client.authenticate(login.principal(), &pin);
            } else if !quiet {
                eprintln!("No PIN given: a USB token whose PUK is blocked resets only when its button is pressed now.");
            }
            client.factory_reset()?;
            super::completion::record(ctx, super::completion::Update::Forget);
            // The token has a new device key (and ended the session): pin it, since this host
            // just reset it through a session with the old one.
            ctx.disconnect();
            let name = ctx.pin_name();
            let key = ctx.connect_unsecured()?.device_key()?;
            if let Some(name) = name {
                pkms_lib::pins::PinStore::in_home(ctx.home()).replace(&name, &key)?;
            }
            ctx.disconnect();
            eprintln!("The token was reset; its new device key {} is pinned.", key.fingerprint());
            Ok(())
        }
    }
}
