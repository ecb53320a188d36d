//! The `pkms` command line: aws-cli conventions (`pkms encrypt --key-id … --plaintext
//! fileb://…`), one module per operation family. Each family exposes a
//! `#[derive(clap::Subcommand)] pub enum Commands`, flattened into [`Command`], and
//! `pub fn run(cmd, ctx: &mut Context) -> anyhow::Result<()>`.

use std::io::Write;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use pkms_protocol::ErrorCode;
use serde::Serialize;
use serde_json::Value;

use pkms_lib::client::Client;
use pkms_lib::connect::{self, DeviceSpec};
use pkms_lib::datakey_cache::DataKeyError;
use pkms_lib::envelope::KeyServiceError;
use pkms_lib::error::Error;
use pkms_lib::filesign::FileSignError;
use pkms_lib::launcher::{LaunchOptions, Link};
use pkms_lib::model::encoding::{with_style, ArnScope, Style, DEFAULT_ACCOUNT_ID, DEFAULT_REGION};

use crate::keyref::{self, KeyRef};

#[cfg(test)]
mod advice;
pub mod args;
pub mod output;

pub mod agreement;
pub mod aliases;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod completion;
pub mod crypto;
pub mod devices;
pub mod files;
pub mod keys;
pub mod lifecycle;
pub mod mac;
pub mod openpgp;
pub mod pinning;
pub mod policy;
pub mod rotation;
pub mod sigfiles;
pub mod signing;
pub mod ssh_agent;
pub mod tags;
pub mod token;

pub use output::OutputFormat;

const MAIN_EXAMPLES: &str = "\
Examples:
  pkms create-key --description 'backup key'
  pkms encrypt --key-id KEY --plaintext fileb://secret.txt --encryption-context app=backup \\
       --query CiphertextBlob --output text
  pkms decrypt --ciphertext-blob fileb://secret.blob --encryption-context app=backup

Which token answers (`pkms info` says, in Token): --device (or PKMS_DEVICE) if given; else, when
PKMS_HOME is set, the QEMU token of $PKMS_HOME; else the one Pocket KMS USB token plugged in;
else the QEMU token of the user's data directory (e.g. ~/.local/share/pkms). `--device qemu`
forces the QEMU token. pkms starts a QEMU token when needed and reaches it over its packet link
(--link uart: its serial line). `pkms token status|start|stop` manages it.";

/// Pocket KMS: an AWS-KMS-style key service on a USB token (or its QEMU emulation).
#[derive(Debug, Parser)]
#[command(
    name = "pkms",
    version,
    about = "Pocket KMS: an AWS-KMS-style key service on a USB token (or its QEMU emulation)",
    after_help = MAIN_EXAMPLES
)]
pub struct Cli {
    /// The options every subcommand takes.
    #[command(flatten)]
    pub globals: Globals,
    /// The operation.
    #[command(subcommand)]
    pub command: Command,
}

/// The options every subcommand takes (all `global`): defined apart from [`Cli`] so that a
/// call's command line can be parsed against them and its one subcommand alone
/// ([`command_for`]).
#[derive(Debug, clap::Args)]
pub struct Globals {
    /// Output format: json (KMS field names), text (tab-separated, in the aws cli's column
    /// order), table (boxed, as the aws cli draws it), or for get-public-key pem, ssh (an authorized_keys line) or minisign (a
    /// minisign public key).
    #[arg(long, global = true, value_enum, default_value = "json")]
    pub output: OutputFormat,
    /// The token: qemu (the QEMU token of $PKMS_HOME, even with a USB token plugged in),
    /// qemu:HOME, a serial device (/dev/ttyACM0), unix:PATH, ethernet:PATH, tcp:HOST:PORT or
    /// inprocess:PATH. Default: the QEMU token of $PKMS_HOME when PKMS_HOME is set; else the one
    /// USB token plugged in; else the QEMU token of the user's data directory. An empty
    /// PKMS_DEVICE counts as unset.
    #[arg(long, global = true, env = "PKMS_DEVICE")]
    pub device: Option<String>,
    /// Print each request sent to the token, its answer, and which token answered, on stderr.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for the aws cli's sake; pkms never pages its output.
    #[arg(long, global = true)]
    pub no_cli_pager: bool,
    /// The link to the QEMU token: ethernet (the packet link over its LAN9118, default) or uart
    /// (its serial line).
    #[arg(long, global = true, env = "PKMS_LINK", value_parser = parse_link)]
    pub link: Option<Link>,
    /// Print nothing on success (errors still go to stderr; the exit status tells the result).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Print only part of the result, a JMESPath expression (`KeyMetadata.KeyId`,
    /// `Keys[].KeyId`, `length(Keys)`); checked before anything is sent (exit 252 if invalid).
    #[arg(long, global = true)]
    pub query: Option<String>,
    /// The principal to log in as, on an initialised token (default: admin).
    #[arg(long, global = true, env = "PKMS_PRINCIPAL")]
    pub principal: Option<String>,
    /// A file holding the PIN (else PKMS_PIN, else a prompt on a terminal).
    #[arg(long, global = true)]
    pub pin_file: Option<PathBuf>,
    /// The region in key and alias ARNs, printed and accepted (else AWS_REGION, else
    /// AWS_DEFAULT_REGION, else us-east-1). `pkms serve` refuses requests signed for another.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// The account id in key and alias ARNs (else PKMS_ACCOUNT_ID, else 111122223333, the
    /// example account of AWS's documentation).
    #[arg(long, global = true, env = "PKMS_ACCOUNT_ID")]
    pub account_id: Option<String>,
}

/// Every subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Keys: info, create-key, describe-key, list-keys, update-key-description.
    #[command(flatten)]
    Keys(keys::Commands),
    /// Symmetric cryptography.
    #[command(flatten)]
    Crypto(crypto::Commands),
    /// Rotation.
    #[command(flatten)]
    Rotation(rotation::Commands),
    /// Signing.
    #[command(flatten)]
    Signing(signing::Commands),
    /// Key agreement, key encapsulation, data key pairs.
    #[command(flatten)]
    Agreement(agreement::Commands),
    /// HMAC.
    #[command(flatten)]
    Mac(mac::Commands),
    /// Key states.
    #[command(flatten)]
    Lifecycle(lifecycle::Commands),
    /// Aliases.
    #[command(flatten)]
    Aliases(aliases::Commands),
    /// Tags.
    #[command(flatten)]
    Tags(tags::Commands),
    /// Files: encrypt-file, decrypt-file, sign-file, verify-file, sign-manifest.
    #[command(flatten)]
    Files(files::Commands),
    /// USB tokens: devices.
    #[command(flatten)]
    Devices(devices::Commands),
    /// Authentication: init, principals, unblock-pin, factory-reset.
    #[command(flatten)]
    Auth(auth::Commands),
    /// Key policies and grants.
    #[command(flatten)]
    Policy(policy::Commands),
    /// The QEMU token of $PKMS_HOME: start, stop, status.
    #[command(
        subcommand,
        after_help = "Examples:\n  pkms token status\n  pkms token start\n  pkms token stop"
    )]
    Token(token::Commands),
    /// OpenPGP: export a token key's certificate (`sign-file --format openpgp` signs for gpg).
    #[command(
        subcommand,
        after_help = "Example:\n  pkms openpgp export --key-id alias/release --user-id \"Release <release@example.com>\" > release.asc"
    )]
    Openpgp(openpgp::Commands),
    /// Device key pinning: pin-device-key.
    #[command(flatten)]
    Pinning(pinning::Commands),
    /// The token's audit log: export, verify, checkpoint.
    #[command(
        subcommand,
        after_help = "Example:\n  pkms audit export --out log.pkaudit --public-key-out device.pem"
    )]
    Audit(audit::Commands),
    /// Backups: init (the backup key as SLIP-39 shares), export, restore, device-key.
    #[command(
        subcommand,
        after_help = "Examples:\n  pkms backup init --shares 5 --threshold 3 --shares-out shares\n  \
        pkms backup export --out token.pkbak\n  pkms backup restore --in token.pkbak --share-file shares/share-1.txt ..."
    )]
    Backup(backup::Commands),
    /// Serve KMS's own wire protocol (JSON 1.1 over HTTP, SigV4) in front of the token, for
    /// boto3, the aws cli, the AWS SDKs and the AWS Encryption SDK (AWS_ENDPOINT_URL_KMS).
    #[command(
        after_help = "Examples:\n  pkms serve --listen 127.0.0.1:4599\n  export AWS_ENDPOINT_URL_KMS=http://127.0.0.1:4599\n  aws kms create-key"
    )]
    Serve(crate::serve::ServeArgs),
    /// Serve token signing keys to ssh, ssh-keygen and git over the SSH agent protocol.
    #[command(
        after_help = "Examples:\n  pkms ssh-agent --key-id alias/ssh --key-id alias/git --socket ~/.pkms-agent.sock &\n  \
        export SSH_AUTH_SOCK=~/.pkms-agent.sock\n  ssh-add -L"
    )]
    SshAgent(ssh_agent::SshAgentArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Example:\n  pkms completions bash > /etc/bash_completion.d/pkms")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// What every command gets: a lazily connected client, and how to print.
pub struct Context {
    /// `--output`.
    pub output: OutputFormat,
    /// Whether `--output` was given on the command line (not just its default).
    pub output_given: bool,
    /// `--quiet`.
    pub quiet: bool,
    /// `--query`.
    pub query: Option<String>,
    device: Option<DeviceSpec>,
    link: Option<Link>,
    home: PathBuf,
    client: Option<Client>,
    device_key: Option<pkms_lib::session::DeviceKey>,
    logged_in: bool,
    /// The session may be left in the home's session cache when the command is done
    /// ([`Context::park`]): it came through [`Context::client`] on an open token, no one
    /// logged in to it.
    parkable: bool,
    login: auth::Login,
    scope: ArnScope,
    operation: String,
    debug: bool,
}

impl Context {
    /// A context; nothing is connected until [`Context::client`] is called.
    pub fn new(output: OutputFormat, quiet: bool, query: Option<String>, device: Option<DeviceSpec>) -> Self {
        Context {
            output,
            output_given: false,
            quiet,
            query,
            device,
            link: None,
            home: connect::default_home(),
            client: None,
            device_key: None,
            logged_in: false,
            parkable: false,
            login: auth::Login::default(),
            scope: ArnScope::default(),
            operation: String::new(),
            debug: false,
        }
    }

    /// `--debug`: requests, answers and the token used are printed on stderr.
    pub fn set_debug(&mut self, debug: bool) {
        self.debug = debug;
        pkms_lib::client::set_debug(debug);
    }

    /// Sets `$PKMS_HOME` (`--device qemu:HOME` names another home).
    pub fn set_home(&mut self, home: PathBuf) {
        self.home = home;
    }

    /// Which token the commands reach, in words ([`connect::describe`]).
    pub fn token_description(&self) -> String {
        connect::describe(self.device.as_ref(), &self.home)
    }

    /// Sets the region and account of ARNs (`--region`, `--account-id`).
    pub fn set_scope(&mut self, scope: ArnScope) {
        self.scope = scope;
    }

    /// The region and account of ARNs.
    pub fn scope(&self) -> &ArnScope {
        &self.scope
    }

    /// Sets the operation being run (KMS's name, e.g. `EnableKeyRotation`), which decides what
    /// its key ids take ([`KeyRef::of`]).
    pub fn set_operation(&mut self, operation: &str) {
        self.operation = operation.to_owned();
    }

    /// A `--key-id` (`--target-key-id`, …) as the token takes it: a key id, key ARN, alias name or
    /// alias ARN where KMS takes any of them, only a key id or key ARN where KMS does; ARNs of
    /// this region and account only ([`keyref::resolve`]). Refused as KMS refuses it.
    pub fn key(&self, input: &str) -> anyhow::Result<String> {
        Ok(keyref::resolve(&self.scope, input, KeyRef::of(&self.operation))?)
    }

    /// [`Context::key`] of an optional key id.
    pub fn key_opt(&self, input: Option<&str>) -> anyhow::Result<Option<String>> {
        input.map(|k| self.key(k)).transpose()
    }

    /// `$PKMS_HOME` (or the default home).
    pub fn home(&self) -> &std::path::Path {
        &self.home
    }

    /// Sets the link to the QEMU token (`--link`).
    pub fn set_link(&mut self, link: Option<Link>) {
        self.link = link;
    }

    /// How the QEMU token is started and reached: the environment's settings (PKMS_QEMU,
    /// PKMS_IDLE_SECS, PKMS_LINK, PKMS_QEMU_FIRMWARE), `--link` over them.
    pub fn launch_options(&self) -> LaunchOptions {
        let mut opts = LaunchOptions::from_env();
        if let Some(link) = self.link {
            opts.link = link;
        }
        opts
    }

    /// How commands log in (`--principal`, `--pin-file`, PKMS_PIN).
    pub fn login(&self) -> &auth::Login {
        &self.login
    }

    /// Sets how commands log in.
    pub fn set_login(&mut self, login: auth::Login) {
        self.login = login;
    }

    /// The connected client, logged in (see [`auth::login`]) on first use.
    pub fn client(&mut self) -> anyhow::Result<&mut Client> {
        if self.client.is_none() {
            self.connect(true)?;
        }
        if !self.logged_in {
            let login = self.login.clone();
            let client = self.client.as_mut().ok_or_else(|| anyhow::anyhow!("no client"))?;
            match auth::login(client, &login)? {
                auth::Opened::Open => {
                    self.parkable = true;
                    auth::warn_open(&self.home, self.quiet);
                }
                auth::Opened::LoggedIn => {
                    if let Some(status) = client.audit_log_status() {
                        audit::warn_when_filling(&status);
                    }
                }
            }
            self.logged_in = true;
        }
        self.client.as_mut().ok_or_else(|| anyhow::anyhow!("no client"))
    }

    /// The connected client, in an encrypted session with the token whose device key is
    /// pinned in PKMS_HOME ([`connect::secure`]), not logged in (init, unblock-pin,
    /// factory-reset, info).
    pub fn raw_client(&mut self) -> anyhow::Result<&mut Client> {
        if self.client.is_none() {
            self.connect(false)?;
        }
        self.client.as_mut().ok_or_else(|| anyhow::anyhow!("no client"))
    }

    /// Connects, in an encrypted session with the token whose device key is pinned in
    /// PKMS_HOME: with `resume`, the session the last process left in the QEMU token's session
    /// cache if there is one ([`connect::resume_cached`]), else a new one.
    fn connect(&mut self, resume: bool) -> anyhow::Result<()> {
        self.logged_in = false;
        self.parkable = false;
        let name = self.pin_name();
        connect::prepare_home(&self.home)?;
        let cached = resume && pkms_lib::session_cache::SessionCache::in_home(&self.home).is_present();
        // Message 1 of a handshake with the pinned key is made while the link comes up, unless
        // a cached session will likely spare the handshake.
        let prepared = match cached {
            true => None,
            false => connect::prepare_handshake(&self.home, name.as_deref())?,
        };
        let mut c = self.connect_unsecured()?;
        let resumed = match cached {
            true => connect::resume_cached(&mut c, &self.home, name.as_deref())?,
            false => None,
        };
        let secured = match (resumed, prepared) {
            (Some(secured), _) => secured,
            (None, Some(prepared)) => {
                connect::secure_prepared(&mut c, &self.home, name.as_deref(), Some(prepared))?
            }
            (None, None) => connect::secure(&mut c, &self.home, name.as_deref())?,
        };
        self.client = Some(c);
        if secured.first_use {
            eprintln!(
                "First connection to this token: pinned its device key {} in {}",
                secured.device_key.fingerprint(),
                pkms_lib::pins::PinStore::in_home(&self.home).path().display()
            );
        }
        self.device_key = Some(secured.device_key);
        Ok(())
    }

    /// Leaves the session in the QEMU token's session cache for the next `pkms` call
    /// ([`connect::park`]) when it may be: it came through [`Context::client`] on an open token
    /// and no one logged in to it (the library checks the rest). Call between requests; the
    /// connection is dropped either way (the next [`Context::client`] connects again), and a
    /// session not left is closed with it.
    fn park(&mut self) {
        if let (true, Some(client), Some(key)) =
            (self.parkable, self.client.as_mut(), self.device_key.as_ref())
        {
            connect::park(client, &self.home, key);
        }
        self.client = None;
        self.logged_in = false;
        self.parkable = false;
    }

    /// A connection with no session (only to read the device key of a token that changed it).
    pub fn connect_unsecured(&mut self) -> anyhow::Result<Client> {
        connect::prepare_home(&self.home)?;
        if self.debug {
            eprintln!("debug: token: {}", self.token_description());
        }
        Ok(connect::open_with(self.device.as_ref(), &self.home, &self.launch_options())?)
    }

    /// `--device` / PKMS_DEVICE, if given.
    pub fn device_spec(&self) -> Option<&DeviceSpec> {
        self.device.as_ref()
    }

    /// The name the token's device key is pinned under ([`connect::pin_name`]).
    pub fn pin_name(&self) -> Option<String> {
        connect::pin_name(self.device.as_ref())
    }

    /// The device key of the token the session was opened with.
    pub fn device_key(&self) -> Option<&pkms_lib::session::DeviceKey> {
        self.device_key.as_ref()
    }

    /// Closes the connection (releasing the token, and the QEMU home's lock, for other
    /// processes); the next [`Context::client`] call connects again. encrypt-file/decrypt-file
    /// call it once they hold their data key, so `pkms encrypt-file - - | pkms decrypt-file - -`
    /// does not deadlock on the lock.
    pub fn disconnect(&mut self) {
        self.park();
    }

    /// Prints a reply in the chosen format, from its KMS JSON form (nothing with `--quiet`).
    pub fn emit<T: Serialize + ?Sized>(&self, reply: &T) -> anyhow::Result<()> {
        if self.quiet {
            return Ok(());
        }
        let value = with_style(&Style::cli(self.scope.clone()), || serde_json::to_value(reply))?;
        let value = match &self.query {
            Some(q) => output::query(&value, q).map_err(usage)?,
            None => value,
        };
        let text = match self.output {
            OutputFormat::Json => json_pretty(&value) + "\n",
            OutputFormat::Text => output::text(&value),
            OutputFormat::Table => output::table(&self.operation, &value),
            OutputFormat::Pem => return Err(usage("--output pem applies to get-public-key only")),
            OutputFormat::Ssh | OutputFormat::Minisign => {
                return Err(usage("--output ssh and --output minisign apply to get-public-key only"))
            }
        };
        write_stdout(text.as_bytes())
    }

    /// What a command that writes its result to a file prints about it (`sign-file`,
    /// `sign-manifest`): `record` in the chosen format when `--output` or `--query` asks for
    /// it; otherwise stdout stays empty, as scripts that read a signature from it expect, and
    /// `note` (one line) goes to stderr, unless `--quiet`.
    pub fn emit_record<T: Serialize + ?Sized>(&self, record: &T, note: &str) -> anyhow::Result<()> {
        if self.output_given || self.query.is_some() {
            return self.emit(record);
        }
        if !self.quiet {
            eprintln!("{note}");
        }
        Ok(())
    }

    /// Prints a paginated listing (list-keys, list-aliases, list-key-rotations without
    /// `--limit`): as [`Context::emit`] with the aws cli's `NextToken` beside KMS's page fields,
    /// except that `--output text` prints the aws cli's paginated text ([`output::text_listing`]:
    /// the `result_key` items, then `NEXTTOKEN<TAB>token` when `--max-items` stopped early).
    pub fn emit_listing<P: Serialize>(
        &self,
        page: &P,
        result_key: &str,
        next_token: Option<String>,
    ) -> anyhow::Result<()> {
        if self.quiet {
            return Ok(());
        }
        if self.output != OutputFormat::Text {
            return self.emit(&args::WithNextToken { page, next_token });
        }
        let value = with_style(&Style::cli(self.scope.clone()), || serde_json::to_value(page))?;
        let items = value.get(result_key).cloned().unwrap_or_else(|| Value::Array(Vec::new()));
        let query = self.query.as_deref().map(output::Query::parse).transpose().map_err(usage)?;
        let text =
            output::text_listing(result_key, &items, next_token.as_deref(), query.as_ref()).map_err(usage)?;
        write_stdout(text.as_bytes())
    }

    /// As [`Context::emit`], except that `--output text` (without `--query`) prints one
    /// `Name<TAB>value` line per field instead of one unlabelled line (`pkms info`).
    pub fn emit_labelled<T: Serialize + ?Sized>(&self, reply: &T) -> anyhow::Result<()> {
        if self.quiet || self.output != OutputFormat::Text || self.query.is_some() {
            return self.emit(reply);
        }
        let value = with_style(&Style::cli(self.scope.clone()), || serde_json::to_value(reply))?;
        let mut text = String::new();
        if let Value::Object(map) = &value {
            for (k, v) in map {
                let shown = output::text(v);
                text.push_str(&format!("{k}\t{}\n", shown.trim_end_matches('\n').replace('\n', " ")));
            }
        }
        write_stdout(text.as_bytes())
    }

    /// Writes raw text to stdout (nothing with `--quiet`).
    pub fn emit_raw(&self, text: &str) -> anyhow::Result<()> {
        if self.quiet {
            return Ok(());
        }
        write_stdout(text.as_bytes())
    }
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // `pkms … | head` closing the pipe is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// JSON with 4-space indentation, as aws-cli prints it.
pub fn json_pretty(value: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    match serde::Serialize::serialize(value, &mut ser) {
        Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => value.to_string(),
    }
}

/// An error as aws-cli prints it with `--output json`: `{"__type": …, "message": …}`.
#[derive(Serialize)]
struct ErrorOutput<'a> {
    #[serde(rename = "__type")]
    kind: &'a str,
    message: &'a str,
}

/// An error found by the CLI itself (bad argument values), with a KMS-style type.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// `__type`, e.g. ValidationException.
    pub kind: &'static str,
    /// What went wrong and what to do.
    pub message: String,
}

/// A refusal with a KMS exception, found on the host or passed on from the token inside
/// another error: a verification that failed on the host (an offline signature check, a signed
/// manifest whose files differ), reported as KMS reports a failed Verify / VerifyMac; a token
/// refusal inside a file command. Exit 254.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// The KMS exception: `KMSInvalidSignatureException`, `KMSInvalidMacException`, …
    pub kind: &'static str,
    /// What was refused.
    pub message: String,
}

/// A signature (or a signed manifest's files) that does not verify: exit 254,
/// `KMSInvalidSignatureException`.
pub fn invalid_signature(message: impl Into<String>) -> anyhow::Error {
    Refusal { kind: "KMSInvalidSignatureException", message: message.into() }.into()
}

/// Exit statuses, one per outcome (docs/cli.md has the table).
pub mod exit {
    /// An argument value was refused before anything was sent.
    pub const INVALID_ARGUMENT: i32 = 252;
    /// A local file or the local environment failed (cannot read, write or create a file).
    pub const LOCAL: i32 = 253;
    /// The token (or a verification on the host) answered no.
    pub const REFUSED: i32 = 254;
    /// The token could not be reached, or presented another device key than the pinned one.
    pub const UNREACHABLE: i32 = 255;
    /// Interrupted (Ctrl-C).
    pub const INTERRUPTED: i32 = 130;
}

/// A ValidationException raised before anything is sent.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    CliError { kind: "ValidationException", message: message.into() }.into()
}

/// What to do next after a token error.
fn hint(code: ErrorCode, operation: &str, message: &str) -> Option<&'static str> {
    Some(match code {
        ErrorCode::NotFound => "Check the key id or alias: `pkms list-keys` and `pkms list-aliases` show them.",
        ErrorCode::Disabled => "The key is disabled: `pkms enable-key --key-id KEY` makes it usable again.",
        ErrorCode::InvalidState => {
            "`pkms describe-key` shows the key's state; a key pending deletion comes back with \
             `pkms cancel-key-deletion` then `pkms enable-key`."
        }
        ErrorCode::InvalidCiphertext => {
            "The blob was altered or truncated, or --encryption-context differs from the one given \
             at encryption (the same pairs are needed, in any order)."
        }
        ErrorCode::IncorrectKey => "The blob was made under another key: leave out --key-id, or name the blob's key.",
        ErrorCode::InvalidKeyUsage => {
            "`pkms describe-key` shows the key's KeySpec and KeyUsage; this operation needs a key of another kind."
        }
        ErrorCode::InvalidSignature => "The signature does not match this message and key version.",
        ErrorCode::InvalidMac => "The MAC does not match this message and key version.",
        ErrorCode::LimitExceeded if message.contains("tags") => {
            "`pkms list-resource-tags` shows the key's tags; remove some with `pkms untag-resource` \
             before adding others."
        }
        ErrorCode::LimitExceeded => {
            "The token's store is full: retire old versions (`pkms retire-key-versions`) or delete \
             unused keys (`pkms schedule-key-deletion`)."
        }
        ErrorCode::KeyVersionRetired => {
            "Blobs of a retired version cannot be decrypted any more; `pkms list-key-rotations \
             --include-key-material ALL_KEY_MATERIAL` shows the versions still held."
        }
        ErrorCode::Validation if operation == "Encrypt" && message.contains("4096") => {
            "For more than 4096 bytes use envelope encryption: `pkms encrypt-file`."
        }
        ErrorCode::UnsupportedProtocolVersion => "Update pkms or the token firmware so both speak the same protocol.",
        ErrorCode::UserPresenceRequired => {
            "On a hardware token, touch its button when it blinks; emulated tokens cannot confirm \
             presence, so keys created with --user-presence-required decrypt and sign only on hardware."
        }
        ErrorCode::AuthenticationFailed if operation == "UnblockPin" => {
            "Check the PUK (PKMS_PUK, --puk-file or the prompt) and the principal (--for NAME)."
        }
        ErrorCode::AuthenticationFailed if operation == "ChangePin" => {
            "Give the current PIN with PKMS_PIN, --pin-file or at the prompt; the new one with PKMS_NEW_PIN or --new-pin-file."
        }
        ErrorCode::AuthenticationFailed => {
            "Give the PIN with PKMS_PIN, --pin-file or at the prompt (and --principal / PKMS_PRINCIPAL for another principal than admin)."
        }
        ErrorCode::PinLocked => "Unlock the principal with the PUK: `pkms unblock-pin --for NAME`; a blocked PUK leaves only `pkms factory-reset`.",
        ErrorCode::AccessDenied if operation == "FactoryReset" => {
            "factory-reset needs an administrator's session (PKMS_PIN, with --principal NAME of an administrator); \
             without one, only a token whose PUK is blocked resets, with a press of its button."
        }
        ErrorCode::AccessDenied if message.contains("administrator") => {
            "Run it as an administrator: --principal NAME (or PKMS_PRINCIPAL) of an administrator, with its PIN \
             (`pkms list-principals` shows the roles)."
        }
        ErrorCode::AccessDenied => "The key's policy and grants do not allow this: `pkms get-key-policy` and `pkms list-grants` show them.",
        ErrorCode::UnsupportedOperation if operation == "EnableKeyRotation" || operation == "RotateKeyOnDemand" => {
            if message.contains("SIGN_VERIFY") {
                "Rotating a signing key changes its public key: signatures made after it no longer verify \
                 with the public keys handed out before. To rotate anyway, add --allow-signing-key-rotation."
            } else {
                return None;
            }
        }
        ErrorCode::InvalidAliasName => {
            "Alias names start with `alias/`, use only letters, digits, `/_-:`, and may not start with `alias/aws/`."
        }
        // The explanation (pkms_lib::error::explanation) already says what to do, or KMS's
        // name says it all.
        ErrorCode::Validation
        | ErrorCode::AuditLogFull
        | ErrorCode::AlreadyExists
        | ErrorCode::InvalidMarker
        | ErrorCode::UnsupportedOperation
        | ErrorCode::Tag
        | ErrorCode::MalformedFrame
        | ErrorCode::FrameTooLarge
        | ErrorCode::Internal
        | ErrorCode::StorageCorrupted
        | ErrorCode::MalformedPolicyDocument
        | ErrorCode::InvalidGrantId
        | ErrorCode::Conflict
        | ErrorCode::SessionEnded
        | ErrorCode::SelfTestFailed => return None,
    })
}

/// The principal this run logs in as (for hints that name it).
static LOGIN_PRINCIPAL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

const LINK_HINT: &str =
    "Is the token reachable? Check --device / PKMS_DEVICE; with neither, pkms starts the \
                         QEMU token of $PKMS_HOME (qemu-system-arm must be installed; `pkms token \
                         status` shows it).";

/// `--link` / PKMS_LINK (an empty PKMS_LINK counts as unset: the default).
fn parse_link(s: &str) -> Result<Link, String> {
    if s.trim().is_empty() {
        return Ok(Link::default());
    }
    s.parse()
}

/// `encrypt-file` → `EncryptFile`.
fn operation_name(subcommand: &str) -> String {
    subcommand
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The client's error behind `err`: a client call's own, or one a key-service operation (data
/// keys, file signing) passed on.
fn client_error(err: &anyhow::Error) -> Option<&Error> {
    if let Some(e) = err.downcast_ref::<Error>() {
        return Some(e);
    }
    if let Some(e) = err.downcast_ref::<KeyServiceError>() {
        return e.client_error();
    }
    if let Some(e) = err.downcast_ref::<DataKeyError>() {
        return e.client_error();
    }
    err.downcast_ref::<FileSignError>().and_then(FileSignError::client_error)
}

/// Prints an error to stderr (JSON with `--output json`, aws-cli's sentence otherwise) and
/// returns the exit status ([`exit`]): 252 bad arguments, 253 a local file or the environment,
/// 254 the token refused (or a signature did not verify), 255 the token could not be reached
/// (or its device key changed), 130 interrupted.
pub fn report_error(err: &anyhow::Error, output: OutputFormat, operation: &str) -> i32 {
    let (kind, mut message, status) = if let Some(e) = client_error(err) {
        match e {
            Error::Token { code, message } => {
                let mut m = pkms_lib::error::token_message(*code, message);
                // A locked PIN: name the principal (a bare `pkms unblock-pin` would reset another's).
                let h = if matches!(code, ErrorCode::PinLocked) {
                    Some(format!(
                        "Unlock it with the PUK: `pkms unblock-pin --for {}`; a blocked PUK leaves only `pkms factory-reset`.",
                        LOGIN_PRINCIPAL.get().map_or(pkms_protocol::access::ADMIN_NAME, String::as_str)
                    ))
                } else {
                    hint(*code, operation, message).map(str::to_owned)
                };
                if let Some(h) = h {
                    if !m.is_empty() {
                        m.push_str(". ");
                    }
                    m.push_str(&h);
                }
                (code.kms_name().to_owned(), m, exit::REFUSED)
            }
            Error::Link(l) => ("ConnectionError".to_owned(), format!("{l}. {LINK_HINT}"), exit::UNREACHABLE),
            Error::DeviceKeyChanged(c) => ("DeviceKeyChanged".to_owned(), c.to_string(), exit::UNREACHABLE),
            Error::Interrupted => {
                ("Interrupted".to_owned(), "interrupted (Ctrl-C)".to_owned(), exit::INTERRUPTED)
            }
            Error::InvalidInput(m) => ("ValidationException".to_owned(), m.clone(), exit::INVALID_ARGUMENT),
        }
    } else if let Some(c) = err.downcast_ref::<CliError>() {
        (c.kind.to_owned(), c.message.clone(), exit::INVALID_ARGUMENT)
    } else if let Some(v) = err.downcast_ref::<Refusal>() {
        (v.kind.to_owned(), v.message.clone(), exit::REFUSED)
    } else if let Some(r) = err.downcast_ref::<keyref::Refused>() {
        // KMS itself refuses these key ids (aws kms exits 254); an empty or overlong one is a
        // parameter error (252).
        let status = if r.kind == "ValidationException" { exit::INVALID_ARGUMENT } else { exit::REFUSED };
        (r.kind.to_owned(), r.message.clone(), status)
    } else {
        // Everything else happened here, not on the token: a file that cannot be read or
        // written, a malformed signature or public key file, an unusable environment.
        ("LocalError".to_owned(), String::new(), exit::LOCAL)
    };
    if message.is_empty() {
        message = format!("{err:#}");
    }
    let text = match output {
        OutputFormat::Json => json_pretty(
            &serde_json::to_value(ErrorOutput { kind: &kind, message: &message }).unwrap_or_default(),
        ),
        OutputFormat::Text
        | OutputFormat::Table
        | OutputFormat::Pem
        | OutputFormat::Ssh
        | OutputFormat::Minisign => {
            format!("An error occurred ({kind}) when calling the {operation} operation: {message}")
        }
    };
    let _ = writeln!(std::io::stderr(), "{text}");
    status
}

/// The region and account of ARNs: `--region`, else `AWS_REGION`, else `AWS_DEFAULT_REGION`
/// (as the aws cli reads them), else [`DEFAULT_REGION`]; `--account-id` (or `PKMS_ACCOUNT_ID`),
/// else [`DEFAULT_ACCOUNT_ID`]. Empty values count as unset.
pub fn arn_scope(region: Option<String>, account_id: Option<String>) -> anyhow::Result<ArnScope> {
    let set = |v: Option<String>| v.filter(|v| !v.is_empty());
    let env = |name: &str| set(std::env::var(name).ok());
    let region = set(region).or_else(|| env("AWS_REGION")).or_else(|| env("AWS_DEFAULT_REGION"));
    let region = region.unwrap_or_else(|| DEFAULT_REGION.to_owned());
    let account_id = set(account_id).unwrap_or_else(|| DEFAULT_ACCOUNT_ID.to_owned());
    ArnScope::new(&region, &account_id).map_err(|m| usage(format!("--region / --account-id: {m}")))
}

/// The token `--device` / PKMS_DEVICE selects (an explicitly set PKMS_HOME: its QEMU token),
/// and the home `--device qemu:HOME` names instead of PKMS_HOME.
pub fn select_token(device: Option<String>) -> anyhow::Result<(Option<DeviceSpec>, Option<PathBuf>)> {
    let device = match device.filter(|d| !d.is_empty()) {
        Some(d) => Some(d.parse::<DeviceSpec>().map_err(|m| usage(format!("--device / PKMS_DEVICE: {m}")))?),
        // An explicitly set PKMS_HOME means its QEMU token, not whatever USB token is plugged in.
        None if connect::home_is_explicit() => Some(DeviceSpec::Qemu(None)),
        None => None,
    };
    Ok(match device {
        Some(DeviceSpec::Qemu(Some(home))) => (Some(DeviceSpec::Qemu(None)), Some(home)),
        other => (other, None),
    })
}

/// Runs one parsed command line; `operation` is its KMS-style name (`EnableKeyRotation`).
/// `output_given`: `--output` was on the command line ([`Context::output_given`]).
pub fn run(cli: Cli, operation: &str, output_given: bool) -> anyhow::Result<()> {
    // A query is checked before anything is sent, so a refused one never leaves a command half
    // done (a key created, its id lost).
    if let Some(q) = &cli.globals.query {
        output::Query::parse(q).map_err(usage)?;
    }
    let (device, home) = select_token(cli.globals.device)?;
    let mut ctx = Context::new(cli.globals.output, cli.globals.quiet, cli.globals.query, device);
    ctx.output_given = output_given;
    if let Some(home) = home {
        ctx.set_home(home);
    }
    ctx.set_debug(cli.globals.debug);
    ctx.set_link(cli.globals.link);
    let login = auth::Login { principal: cli.globals.principal, pin_file: cli.globals.pin_file };
    let _ = LOGIN_PRINCIPAL.set(login.principal().to_owned());
    ctx.set_login(login);
    ctx.set_scope(arn_scope(cli.globals.region, cli.globals.account_id)?);
    ctx.set_operation(operation);
    let result = match cli.command {
        Command::Keys(c) => keys::run(c, &mut ctx),
        Command::Crypto(c) => crypto::run(c, &mut ctx),
        Command::Rotation(c) => rotation::run(c, &mut ctx),
        Command::Signing(c) => signing::run(c, &mut ctx),
        Command::Agreement(c) => agreement::run(c, &mut ctx),
        Command::Mac(c) => mac::run(c, &mut ctx),
        Command::Lifecycle(c) => lifecycle::run(c, &mut ctx),
        Command::Aliases(c) => aliases::run(c, &mut ctx),
        Command::Tags(c) => tags::run(c, &mut ctx),
        Command::Devices(c) => devices::run(c, &mut ctx),
        Command::Files(c) => files::run(c, &mut ctx),
        Command::Auth(c) => auth::run(c, &mut ctx),
        Command::Policy(c) => policy::run(c, &mut ctx),
        Command::Audit(c) => audit::run(c, &mut ctx),
        Command::Backup(c) => backup::run(c, &mut ctx),
        Command::Token(c) => token::run(c, &mut ctx),
        Command::Pinning(c) => pinning::run(c, &mut ctx),
        Command::Openpgp(c) => openpgp::run(c, &mut ctx),
        Command::Serve(a) => crate::serve::run(a, &mut ctx),
        Command::SshAgent(a) => ssh_agent::run(a, &mut ctx),
        Command::Completions { shell } => ctx.emit_raw(&completion::script(shell)),
    };
    // Done and every request answered: the next call may go on with this session.
    if result.is_ok() {
        ctx.park();
    }
    result
}

/// The command line's definition, trimmed to what parsing `args` needs. Building the whole
/// tree (every subcommand's arguments, and clap copying each global option into each of the
/// 80-odd subcommands) costs a warm `pkms` call more time than the rest of its host-side work;
/// so when the first positional argument names a subcommand of one of the flattened groups (as
/// every call that reaches the token does), parsing gets that subcommand alone under the same
/// top level (name, version, the [`Globals`]), and only its group's definitions are built.
/// Anything else — no subcommand, a name that is not one (clap suggests the nearest), `help`,
/// `--`, the subcommands with their own subcommands — gets the whole tree.
fn command_for(args: &[std::ffi::OsString]) -> clap::Command {
    let top = <Globals as clap::Args>::augment_args(clap::Command::new("pkms"));
    let Some(sub) = invoked_subcommand(&top, args).and_then(|name| subcommand_alone(&name)) else {
        return Cli::command();
    };
    top.version(env!("CARGO_PKG_VERSION")).subcommand_required(true).subcommand(sub)
}

/// The flattened groups of [`Command`]: whether a group has a subcommand, and how to build
/// the group's subcommands. A group missing here still parses (through the whole tree); the
/// test `every_group_subcommand_is_built_alone_exactly_as_in_the_whole_tree` says so.
type Group = (fn(&str) -> bool, fn(clap::Command) -> clap::Command);
const GROUPS: [Group; 14] = [
    (keys::Commands::has_subcommand, keys::Commands::augment_subcommands),
    (crypto::Commands::has_subcommand, crypto::Commands::augment_subcommands),
    (rotation::Commands::has_subcommand, rotation::Commands::augment_subcommands),
    (signing::Commands::has_subcommand, signing::Commands::augment_subcommands),
    (agreement::Commands::has_subcommand, agreement::Commands::augment_subcommands),
    (mac::Commands::has_subcommand, mac::Commands::augment_subcommands),
    (lifecycle::Commands::has_subcommand, lifecycle::Commands::augment_subcommands),
    (aliases::Commands::has_subcommand, aliases::Commands::augment_subcommands),
    (tags::Commands::has_subcommand, tags::Commands::augment_subcommands),
    (files::Commands::has_subcommand, files::Commands::augment_subcommands),
    (devices::Commands::has_subcommand, devices::Commands::augment_subcommands),
    (auth::Commands::has_subcommand, auth::Commands::augment_subcommands),
    (policy::Commands::has_subcommand, policy::Commands::augment_subcommands),
    (pinning::Commands::has_subcommand, pinning::Commands::augment_subcommands),
];

/// The subcommand `name` (or alias) of a flattened group, built with its group alone; `None`
/// for a name no group has.
fn subcommand_alone(name: &str) -> Option<clap::Command> {
    let (_, augment) = GROUPS.iter().find(|(has, _)| has(name))?;
    let group = augment(clap::Command::new("pkms"));
    let sub = group.get_subcommands().find(|s| names(s, name)).cloned();
    // Not dropped: freeing the group's allocations one by one would only delay the exit.
    std::mem::forget(group);
    sub
}

/// Whether `sub` is called `name` (or has it as an alias).
fn names(sub: &clap::Command, name: &str) -> bool {
    sub.get_name() == name || sub.get_all_aliases().any(|a| a == name)
}

/// The subcommand `args` (with the program name first) invoke: their first positional argument,
/// skipping the options of `top` and the values of those that take one. `None` whenever that
/// is not certain: `--`, an option `top` does not know, a cluster of short options that take
/// values, or no such positional argument.
fn invoked_subcommand(top: &clap::Command, args: &[std::ffi::OsString]) -> Option<String> {
    let takes_value = |arg: &clap::Arg| arg.get_action().takes_values();
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        let arg = arg.to_str()?;
        if arg == "--" {
            return None;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (long, inline_value) = match long.split_once('=') {
                Some((l, _)) => (l, true),
                None => (long, false),
            };
            let option = top.get_arguments().find(|a| a.get_long() == Some(long))?;
            if takes_value(option) && !inline_value {
                rest.next()?;
            }
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            for c in shorts.chars() {
                let option = top.get_arguments().find(|a| a.get_short() == Some(c))?;
                if takes_value(option) {
                    return None;
                }
            }
        } else {
            return Some(arg.to_owned());
        }
    }
    None
}

/// The `pkms` binary: parses the arguments, runs, prints errors; returns the exit status.
pub fn main() -> i32 {
    // Ctrl-C: calls to the token stop, the command fails and the client closes its session on
    // the way out; a second Ctrl-C ends the process at once.
    let _ = ctrlc::set_handler(|| {
        if pkms_lib::interrupt::request() {
            std::process::exit(130);
        }
    });
    // The completion scripts' hook, kept out of clap (and so out of help and completions).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == completion::COMMAND) {
        return completion::main(&args[2..]);
    }
    let mut command = command_for(&args);
    let matches = command.try_get_matches_from_mut(args).unwrap_or_else(|e| e.exit());
    // Not dropped either (see `command_for`).
    std::mem::forget(command);
    let operation = operation_name(matches.subcommand_name().unwrap_or("pkms"));
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let output = cli.globals.output;
    let on_command_line =
        |m: &clap::ArgMatches| m.value_source("output") == Some(clap::parser::ValueSource::CommandLine);
    let output_given =
        on_command_line(&matches) || matches.subcommand().is_some_and(|(_, m)| on_command_line(m));
    match run(cli, &operation, output_given) {
        Ok(()) => 0,
        Err(e) => report_error(&e, output, &operation),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// What `args` parse to with the trimmed definition and with the whole one.
    fn both_ways(args: &[&str]) -> (String, String) {
        let args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        let parse = |mut command: clap::Command| match command.try_get_matches_from_mut(args.clone()) {
            Ok(m) => format!("{:?}", Cli::from_arg_matches(&m).map_err(|e| e.kind())),
            Err(e) => format!("error {:?}: {}", e.kind(), e.render()),
        };
        (parse(command_for(&args)), parse(Cli::command()))
    }

    #[test]
    fn the_trimmed_command_line_parses_exactly_as_the_whole_one() {
        for args in [
            &["pkms", "encrypt", "--key-id", "k", "--plaintext", "fileb://x"][..],
            &["pkms", "--output", "text", "generate-data-key", "--key-id", "k", "--key-spec", "AES_256"],
            &[
                "pkms",
                "--output=text",
                "-q",
                "encrypt",
                "--key-id",
                "k",
                "--plaintext",
                "fileb://x",
                "--debug",
            ],
            &["pkms", "--query", "encrypt", "describe-key", "--key-id", "k"],
            &["pkms", "-q", "--device", "qemu", "token", "status"],
            &["pkms", "encrypt", "--key-id", "k", "--no-such-option"],
            &["pkms", "encrypt", "--key-id"],
            &["pkms", "encrypt", "--key-id", "k", "--plaintext", "fileb://x", "--output", "yaml"],
            &["pkms", "describe-key"],
            &["pkms", "encrypt", "--help"],
            &["pkms", "--output", "text", "generate-data-key", "-h"],
            &["pkms", "token", "status", "--help"],
            &["pkms", "encrypt", "--key-id", "k", "--plaintext", "fileb://x", "--output", "text", "extra"],
            &["pkms", "--help"],
            &["pkms", "encryp"],
            &["pkms", "--", "encrypt"],
            &["pkms"],
        ] {
            let (trimmed, whole) = both_ways(args);
            assert_eq!(trimmed, whole, "{args:?}");
        }
    }

    #[test]
    fn only_a_named_group_subcommand_trims_the_tree() {
        let os = |a: &[&str]| a.iter().map(Into::into).collect::<Vec<std::ffi::OsString>>();
        let command = Cli::command();
        let top = <Globals as clap::Args>::augment_args(clap::Command::new("pkms"));
        let first = |a: &[&str]| invoked_subcommand(&top, &os(a));
        assert_eq!(first(&["pkms", "--output", "text", "encrypt"]).as_deref(), Some("encrypt"));
        assert_eq!(first(&["pkms", "--output=text", "-q", "list-keys"]).as_deref(), Some("list-keys"));
        assert_eq!(
            first(&["pkms", "--debug", "encrypt"]).as_deref(),
            Some("encrypt"),
            "a flag takes no value"
        );
        assert_eq!(first(&["pkms", "--query", "encrypt"]), None, "a value is not a subcommand");
        assert_eq!(first(&["pkms", "--", "encrypt"]), None);
        assert_eq!(first(&["pkms", "--unknown", "encrypt"]), None);
        assert_eq!(first(&["pkms"]), None);
        // A first positional argument that no group has gets the whole tree.
        for name in ["encryp", "help", "token", "serve", "completions"] {
            assert!(subcommand_alone(name).is_none(), "{name}");
            let whole = command_for(&os(&["pkms", name]));
            assert_eq!(whole.get_subcommands().count(), command.get_subcommands().count(), "{name}");
        }
        let cut = command_for(&os(&["pkms", "--output", "text", "encrypt"]));
        let subs: Vec<&str> = cut.get_subcommands().map(|s| s.get_name()).collect();
        assert_eq!(subs, ["encrypt"], "only the named subcommand is built");
        let globals =
            |c: &clap::Command| c.get_arguments().map(|a| a.get_id().to_string()).collect::<Vec<_>>();
        assert_eq!(globals(&cut), globals(&command), "the same top-level options");
        assert_eq!(cut.get_version(), command.get_version());
        assert_eq!(cut.get_name(), command.get_name());
    }

    /// Every subcommand of a flattened group, built with its group alone, is the one the whole
    /// tree has: its help (every option, default and text) and its version read the same. The
    /// subcommands no group has are exactly those [`Command`] defines itself.
    #[test]
    fn every_group_subcommand_is_built_alone_exactly_as_in_the_whole_tree() {
        let mut not_in_a_group = Vec::new();
        for sub in Cli::command().get_subcommands() {
            let name = sub.get_name();
            if subcommand_alone(name).is_none() {
                not_in_a_group.push(name.to_owned());
                continue;
            }
            for alias in std::iter::once(name).chain(sub.get_all_aliases()) {
                assert_eq!(subcommand_alone(alias).map(|s| s.get_name().to_owned()).as_deref(), Some(name));
                for ask in ["--help", "--version"] {
                    let (trimmed, whole) = both_ways(&["pkms", alias, ask]);
                    assert_eq!(trimmed, whole, "pkms {alias} {ask}");
                }
            }
        }
        assert_eq!(
            not_in_a_group,
            ["token", "openpgp", "audit", "backup", "serve", "ssh-agent", "completions"],
            "a new flattened group belongs in GROUPS"
        );
    }

    #[test]
    fn operation_names_are_pascal_case() {
        assert_eq!(operation_name("encrypt"), "Encrypt");
        assert_eq!(operation_name("generate-data-key-without-plaintext"), "GenerateDataKeyWithoutPlaintext");
    }

    #[test]
    fn every_subcommand_shows_an_example_in_help() {
        for sub in Cli::command().get_subcommands() {
            let after = sub.get_after_help().map(|s| s.to_string()).unwrap_or_default();
            assert!(after.contains("pkms "), "{} has no example", sub.get_name());
        }
    }

    #[test]
    fn too_many_tags_advice_is_about_tags() {
        let h = hint(ErrorCode::LimitExceeded, "TagResource", "a key holds at most 50 tags on this token")
            .unwrap();
        assert!(h.contains("untag-resource") && !h.contains("retire"), "{h}");
        let full = hint(ErrorCode::LimitExceeded, "CreateKey", "the store is full").unwrap();
        assert!(full.contains("retire-key-versions"));
    }

    #[test]
    fn too_long_plaintext_hint_names_envelope_encryption() {
        let h = hint(ErrorCode::Validation, "Encrypt", "Plaintext must be 1..=4096 bytes").unwrap();
        assert!(h.contains("encrypt-file"));
        assert!(hint(ErrorCode::Validation, "Decrypt", "x").is_none());
    }
}
