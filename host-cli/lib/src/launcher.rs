//! Starts and reaches the QEMU token of a `$PKMS_HOME`.
//!
//! The token is the firmware in `qemu/` running under `qemu-system-arm -M mps2-an386`; its keys
//! live in a 16 MiB flash file. It is reached over one of two links ([`Link`]), both always
//! served: the packet link, raw Ethernet frames through its LAN9118 that QEMU joins to a unix
//! socket ([`crate::packet_link`], the default), or UART0, bridged to another unix socket. The
//! firmware image is carried inside this build (cargo feature `qemu-firmware`,
//! [`firmware::EMBEDDED`]) or named at run time ([`LaunchOptions::firmware`],
//! `PKMS_QEMU_FIRMWARE`; see [`firmware`]), and is extracted into the home.
//!
//! State in the home directory ([`TokenPaths`]):
//!
//! | file                 | what                                                            |
//! |----------------------|-----------------------------------------------------------------|
//! | `token.flash`        | the emulated NOR flash: every key. Created erased (0xFF), 16 MiB |
//! | `token-net.sock`     | QEMU's netdev socket: the LAN9118, the packet link              |
//! | `token.sock`         | QEMU's UART0 socket: the serial link                            |
//! | `token.pid`          | `PID FIRMWARE_ID STARTED_MS` of the running QEMU                |
//! | `token.lock`         | flock held by whoever talks to the token                        |
//! | `token.log`          | QEMU's stdout/stderr: its messages and the firmware's defmt log |
//! | `token-firmware.elf` | the firmware image QEMU boots                                   |
//! | `token-seed.bin`     | the boot seed (0600), only while a QEMU starts ([`BOOT_SEED_ADDR`]) |
//!
//! [`connect`] returns a [`TokenConnection`] that holds an exclusive lock on `token.lock` for
//! its whole life: many `pkms` processes on one home take turns, and two QEMUs never run over
//! one flash file. The QEMU stays running after the connection is dropped (kept warm, so the
//! next call skips the boot) and ends itself after [`LaunchOptions::idle_timeout`] without a
//! request. [`status`] and [`stop`] serve `pkms token status` and `pkms token stop`. Tests use
//! [`PrivateToken`] (killed when dropped) and [`kill_token`].
//!
//! Every start of QEMU gets a fresh boot seed, the token's only entropy, which QEMU's loader
//! places in guest RAM; the file is removed once the token has answered. QEMU runs with
//! `-no-reboot`: a system reset of the guest ends QEMU instead of booting it again over the same
//! seed (QEMU would place the very same bytes again), and the next connection starts a new QEMU
//! with a new seed.
//!
//! The defmt log in `token.log` is binary; decode it with
//! `defmt-print -e "$PKMS_HOME/token-firmware.elf" < "$PKMS_HOME/token.log"`.

pub mod firmware;
mod probe;
mod process;
mod qemu;
mod seed;

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::str::FromStr;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use rustix::fs::{flock, FlockOperation};

use crate::error::LinkError;
use crate::packet_link::PacketTransport;
use crate::transport::{StreamTransport, Transport};

pub use process::PidFile;
pub use qemu::Mode;
pub use seed::{BOOT_SEED_ADDR, BOOT_SEED_LEN};

/// Size of the flash file: the PSRAM of mps2-an386, which QEMU requires to be exactly 16 MiB.
pub const FLASH_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Environment variable naming the QEMU program (default `qemu-system-arm` on `PATH`).
pub const ENV_QEMU: &str = "PKMS_QEMU";
/// Environment variable giving the idle timeout in seconds (default 300; 0 = never).
pub const ENV_IDLE_SECS: &str = "PKMS_IDLE_SECS";
/// Environment variable choosing the link to the token: `ethernet` (default) or `uart`.
pub const ENV_LINK: &str = "PKMS_LINK";

/// The link to the QEMU token. Every QEMU token serves both; a connection uses one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Link {
    /// The packet link: raw Ethernet frames through the board's LAN9118 (`token-net.sock`).
    #[default]
    Ethernet,
    /// UART0, the serial link the USB token's byte stream shares (`token.sock`).
    Uart,
}

impl Link {
    /// Both links, the default first.
    pub const ALL: [Link; 2] = [Link::Ethernet, Link::Uart];

    /// The name `--link` and `PKMS_LINK` take.
    pub const fn name(self) -> &'static str {
        match self {
            Link::Ethernet => "ethernet",
            Link::Uart => "uart",
        }
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Link {
    type Err = String;

    fn from_str(s: &str) -> Result<Link, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ethernet" => Ok(Link::Ethernet),
            "uart" => Ok(Link::Uart),
            other => Err(format!("{other:?} is not a link: use ethernet (the packet link, default) or uart")),
        }
    }
}
/// Longest unix socket path the kernel accepts (sun_path, without the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Why the token could not be started or reached.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// `qemu-system-arm` is not installed (or not where [`LaunchOptions::qemu`] says).
    #[error(
        "{program} was not found: the QEMU token needs it. Install it with \
         `apt-get install qemu-system-arm` (as root, or with sudo), or set {ENV_QEMU} to its path",
        program = .program.display()
    )]
    QemuMissing {
        /// The program looked for.
        program: PathBuf,
    },
    /// A file operation in the home directory failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The flash file exists but is not 16 MiB: it is left alone (it may hold keys).
    #[error("{} is {size} bytes, not {FLASH_FILE_BYTES}: not a Pocket KMS flash file; move it away", .path.display())]
    BadFlashFile {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The home directory's path is too long for a unix socket.
    #[error("{} is too long for a unix socket ({MAX_SOCKET_PATH} bytes at most): use a shorter PKMS_HOME", .0.display())]
    SocketPathTooLong(PathBuf),
    /// No firmware image: this build embeds none and none was named.
    #[error(
        "no QEMU token firmware: this build of pkms_lib embeds none (cargo feature `qemu-firmware`); \
         set {ENV_FIRMWARE} to the firmware ELF (built by `cd qemu && cargo build --release`) or \
         give LaunchOptions::firmware",
        ENV_FIRMWARE = firmware::ENV_FIRMWARE
    )]
    NoFirmware,
    /// The firmware file named is not an ELF image.
    #[error("{} is not an ELF file (the QEMU token firmware is the ELF `qemu/` builds)", .0.display())]
    NotElf(PathBuf),
    /// QEMU ended before the token answered.
    #[error("QEMU exited ({status}) before the token answered; its log ({log}) ends with:\n{tail}")]
    QemuExited {
        /// QEMU's exit status.
        status: String,
        /// The log file.
        log: PathBuf,
        /// The last text lines of the log.
        tail: String,
    },
    /// The token did not answer Hello in time.
    #[error("the token did not answer within {waited:?} ({reason}); its log ({log}) ends with:\n{tail}")]
    NotReady {
        /// How long we waited.
        waited: Duration,
        /// The last failure.
        reason: String,
        /// The log file.
        log: PathBuf,
        /// The last text lines of the log.
        tail: String,
    },
}

impl LaunchError {
    fn io(what: impl Into<String>, source: io::Error) -> Self {
        LaunchError::Io { what: what.into(), source }
    }
}

impl From<LaunchError> for LinkError {
    fn from(e: LaunchError) -> Self {
        LinkError::Open(e.to_string())
    }
}

impl From<LaunchError> for crate::error::Error {
    fn from(e: LaunchError) -> Self {
        crate::error::Error::Link(e.into())
    }
}

/// How to start the token.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// The QEMU program: a name looked up on `PATH` or a path. Default `qemu-system-arm`.
    pub qemu: PathBuf,
    /// The firmware ends QEMU after this long without a received byte (whole seconds; zero
    /// means never). Default 300 s.
    pub idle_timeout: Duration,
    /// How long a cold start may take, from spawning QEMU to the answer to Hello. Default 30 s.
    pub start_timeout: Duration,
    /// How long a running token may take to answer Hello before it is deemed hung and
    /// restarted. Generous: the first exchange on a new connection can stall about a second.
    /// Default 10 s.
    pub hello_timeout: Duration,
    /// The firmware ELF to boot. `None` (the default): the image embedded in this build
    /// (feature `qemu-firmware`); without one, starting fails with [`LaunchError::NoFirmware`].
    pub firmware: Option<PathBuf>,
    /// The link to use. Default [`Link::Ethernet`].
    pub link: Link,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        LaunchOptions {
            qemu: PathBuf::from("qemu-system-arm"),
            idle_timeout: Duration::from_secs(300),
            start_timeout: Duration::from_secs(30),
            hello_timeout: Duration::from_secs(10),
            firmware: None,
            link: Link::Ethernet,
        }
    }
}

impl LaunchOptions {
    /// The defaults, with [`ENV_QEMU`], [`ENV_IDLE_SECS`], [`ENV_LINK`] and
    /// [`firmware::ENV_FIRMWARE`] applied when set (an unparsable value is ignored).
    pub fn from_env() -> Self {
        let mut opts = LaunchOptions::default();
        if let Some(qemu) = std::env::var_os(ENV_QEMU).filter(|v| !v.is_empty()) {
            opts.qemu = qemu.into();
        }
        if let Some(elf) = std::env::var_os(firmware::ENV_FIRMWARE).filter(|v| !v.is_empty()) {
            opts.firmware = Some(elf.into());
        }
        if let Some(secs) = std::env::var(ENV_IDLE_SECS).ok().and_then(|v| v.trim().parse().ok()) {
            opts.idle_timeout = Duration::from_secs(secs);
        }
        if let Some(link) = std::env::var(ENV_LINK).ok().and_then(|v| v.parse().ok()) {
            opts.link = link;
        }
        opts
    }
}

/// The files of a token home (see the module docs).
#[derive(Debug, Clone)]
pub struct TokenPaths {
    /// The home directory itself.
    pub home: PathBuf,
    /// `token.flash`.
    pub flash: PathBuf,
    /// `token.sock`: UART0.
    pub socket: PathBuf,
    /// `token-net.sock`: the LAN9118's netdev.
    pub net_socket: PathBuf,
    /// `token.pid`.
    pub pid_file: PathBuf,
    /// `token.lock`.
    pub lock: PathBuf,
    /// `token.log`.
    pub log: PathBuf,
    /// `token-firmware.elf`.
    pub firmware: PathBuf,
    /// `token-seed.bin`: the boot seed, present only while a QEMU starts.
    pub seed: PathBuf,
}

impl TokenPaths {
    /// The paths under `home`, made absolute (QEMU runs with the home as working directory
    /// and the paths are matched against its command line).
    pub fn new(home: &Path) -> Self {
        let home = std::path::absolute(home).unwrap_or_else(|_| home.to_path_buf());
        TokenPaths {
            flash: home.join("token.flash"),
            socket: home.join("token.sock"),
            net_socket: home.join("token-net.sock"),
            pid_file: home.join("token.pid"),
            lock: home.join("token.lock"),
            log: home.join("token.log"),
            firmware: home.join("token-firmware.elf"),
            seed: home.join("token-seed.bin"),
            home,
        }
    }

    /// The socket of `link`.
    pub fn socket_of(&self, link: Link) -> &Path {
        match link {
            Link::Ethernet => &self.net_socket,
            Link::Uart => &self.socket,
        }
    }
}

/// A handshaken link to a QEMU token: a [`Transport`] over one of its sockets.
pub enum TokenLink {
    /// The packet link.
    Ethernet(PacketTransport<UnixStream>),
    /// UART0.
    Uart(StreamTransport<UnixStream>),
}

impl TokenLink {
    /// Which link this is.
    pub fn link(&self) -> Link {
        match self {
            TokenLink::Ethernet(_) => Link::Ethernet,
            TokenLink::Uart(_) => Link::Uart,
        }
    }
}

impl fmt::Debug for TokenLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenLink::Ethernet(t) => f.debug_tuple("Ethernet").field(t).finish(),
            TokenLink::Uart(_) => f.write_str("Uart"),
        }
    }
}

impl Transport for TokenLink {
    fn send(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        match self {
            TokenLink::Ethernet(t) => t.send(bytes),
            TokenLink::Uart(t) => t.send(bytes),
        }
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        match self {
            TokenLink::Ethernet(t) => t.recv(buf, timeout),
            TokenLink::Uart(t) => t.recv(buf, timeout),
        }
    }
}

/// A live, handshaken connection to the token of a home. Holds the home's lock until dropped:
/// nobody else talks to this token meanwhile. It is a [`Transport`] (COBS frames,
/// [`pkms_protocol::framing`]) over the link [`LaunchOptions::link`] chose.
#[derive(Debug)]
pub struct TokenConnection {
    link: TokenLink,
    pid: u32,
    started: bool,
    hello: HelloAnswer,
    _lock: File,
}

/// The token's answer to the launcher's Hello: its protocol and firmware versions, `None` if it
/// refused the Hello.
type HelloAnswer = Option<(u16, String)>;

impl TokenConnection {
    /// The link this connection uses.
    pub fn link(&self) -> Link {
        self.link.link()
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether this connection booted the token (a cold start) rather than finding it running.
    pub fn started(&self) -> bool {
        self.started
    }

    /// The firmware version the token reported to the launcher's Hello (empty if it refused it).
    pub fn firmware_version(&self) -> &str {
        self.hello.as_ref().map_or("", |(_, firmware)| firmware)
    }

    /// The token's answer to the launcher's Hello on this connection, sent just before it was
    /// handed out: its protocol and firmware versions, `None` if it refused the Hello. A client
    /// may take it instead of asking again ([`crate::Client::connect_after_hello`]).
    pub fn hello(&self) -> Option<(u16, &str)> {
        self.hello.as_ref().map(|(protocol, firmware)| (*protocol, firmware.as_str()))
    }
}

impl Transport for TokenConnection {
    fn send(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        self.link.send(bytes)
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        self.link.recv(buf, timeout)
    }
}

/// Connects to the token of `home`, starting it if needed.
///
/// 1. Creates `home` (mode 0700) and takes an exclusive flock on `token.lock`, waiting for any
///    other holder; the lock lives in the returned connection.
/// 2. If the pid file names a live QEMU over this home's flash, started from the firmware
///    image the options select (see [`firmware`]), connects to the socket of
///    [`LaunchOptions::link`] and exchanges Hello within [`LaunchOptions::hello_timeout`]
///    (warm path).
/// 3. Otherwise (or if that fails) kills every QEMU over this flash file, creates the flash
///    file if missing (16 MiB of 0xFF), extracts the firmware, starts a detached QEMU and waits
///    up to [`LaunchOptions::start_timeout`] for its answer to Hello (cold path).
///
/// The connection has no read timeout set. Fails with [`LaunchError::QemuMissing`] (saying how
/// to install it) when `qemu-system-arm` cannot be found, and with [`LaunchError::NoFirmware`]
/// when there is no firmware image to boot.
pub fn connect(home: &Path, opts: &LaunchOptions) -> Result<TokenConnection, LaunchError> {
    let image = firmware::Image::resolve(opts.firmware.as_deref())?;
    let paths = TokenPaths::new(home);
    prepare_home(&paths)?;
    let lock = lock_home(&paths)?;

    if let Some(record) = process::read_pid_file(&paths.pid_file) {
        if record.firmware_id == image.id() && process::is_token_process(record.pid, &paths.flash) {
            if let Ok((link, hello)) = connect_link(&paths, opts.link, opts.hello_timeout) {
                return Ok(TokenConnection { link, pid: record.pid, started: false, hello, _lock: lock });
            }
        }
    }

    stop_all(&paths);
    let (child, seed) = start(&paths, &image, opts, Mode::Detached)?;
    let pid = child.id();
    let record = PidFile { pid, firmware_id: image.id().to_owned(), started: Some(SystemTime::now()) };
    process::write_pid_file(&paths.pid_file, &record)
        .map_err(|e| LaunchError::io(format!("write {}", paths.pid_file.display()), e))?;
    let (child, link, hello) = wait_ready(&paths, child, seed, opts)?;
    // Reap QEMU when it ends (idle timeout) while this process still runs; once this process
    // exits, QEMU is re-parented and lives on.
    thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    Ok(TokenConnection { link, pid, started: true, hello, _lock: lock })
}

/// The arguments (after the program name) the launcher starts the QEMU of `home` with: the
/// machine over the flash file, the firmware, both links, the boot seed's loader device
/// (`-device loader,file=HOME/token-seed.bin,addr=…`, a file present only while a start is under
/// way), `-no-reboot` and the semihosting configuration. For diagnostics and tests.
pub fn qemu_arguments(home: &Path, opts: &LaunchOptions) -> Vec<std::ffi::OsString> {
    qemu::arguments(&TokenPaths::new(home), opts)
}

/// Kills every QEMU running over the flash file of `home` (SIGKILL, then waits until they are
/// gone) and removes the pid file and sockets. Returns how many were killed. Takes no lock, so
/// it may be called while a [`TokenConnection`] to that home is open (that connection then
/// reads end-of-stream). The flash file is untouched.
pub fn kill_token(home: &Path) -> usize {
    let paths = TokenPaths::new(home);
    let killed = stop_all(&paths);
    let _ = fs::remove_file(&paths.pid_file);
    let _ = fs::remove_file(&paths.socket);
    let _ = fs::remove_file(&paths.net_socket);
    killed
}

/// Stops the token of `home` between requests: takes the home's lock first (waiting for a
/// connection in use to end, so no request is cut short), then does what [`kill_token`] does.
/// Returns how many QEMUs were stopped (0 when none ran, or the home does not exist). The flash
/// file is untouched; every update on it is atomic, so even a request cut short would leave it
/// consistent.
pub fn stop(home: &Path) -> Result<usize, LaunchError> {
    let paths = TokenPaths::new(home);
    if !paths.home.is_dir() {
        return Ok(0);
    }
    let _lock = lock_home(&paths)?;
    Ok(kill_token(home))
}

/// What [`status`] finds about the token of a home.
#[derive(Debug, Clone)]
pub struct TokenStatus {
    /// QEMU's process id.
    pub pid: u32,
    /// When the launcher started it (from the pid file; `None` for a QEMU it did not start).
    pub started: Option<SystemTime>,
    /// The idle timeout it was started with (from its command line; zero means never).
    pub idle_timeout: Option<Duration>,
    /// The links its command line gives it.
    pub links: Vec<Link>,
    /// Whether it runs the firmware image the options select (otherwise the next connection
    /// restarts it).
    pub current_firmware: bool,
    /// The home's files.
    pub paths: TokenPaths,
}

impl TokenStatus {
    /// How long it has been running, if known.
    pub fn uptime(&self) -> Option<Duration> {
        self.started.and_then(|t| SystemTime::now().duration_since(t).ok())
    }
}

/// The running token of `home`, if any, found the way [`connect`] finds it (the pid file, then
/// any QEMU over the home's flash file), its firmware compared with the image `opts` select.
/// Takes no lock and starts nothing.
pub fn status(home: &Path, opts: &LaunchOptions) -> Option<TokenStatus> {
    let paths = TokenPaths::new(home);
    let record =
        process::read_pid_file(&paths.pid_file).filter(|r| process::is_token_process(r.pid, &paths.flash));
    let image_id = firmware::Image::resolve(opts.firmware.as_deref()).map(|i| i.id().to_owned()).ok();
    let (pid, started, current_firmware) = match record {
        Some(r) => (r.pid, r.started, image_id.as_deref() == Some(r.firmware_id.as_str())),
        None => (process::find_token_processes(&paths.flash).into_iter().next()?, None, false),
    };
    let cmdline = process::command_line(pid);
    let idle_timeout = cmdline.iter().find_map(|arg| qemu::idle_secs_in(arg)).map(Duration::from_secs);
    let links =
        Link::ALL.into_iter().filter(|&link| cmdline.iter().any(|arg| qemu::serves(arg, link))).collect();
    Some(TokenStatus { pid, started, idle_timeout, links, current_firmware, paths })
}

/// A token run in the foreground for tests: a child QEMU of this process over `dir`'s flash
/// file, killed with SIGKILL when the handle is dropped. Holds `dir`'s lock while it lives, so
/// do not also call [`connect`] on the same directory from this process (it would wait for the
/// lock forever). Writes no pid file. Should this process die without dropping the handle, the
/// firmware still ends QEMU after [`LaunchOptions::idle_timeout`].
#[derive(Debug)]
pub struct PrivateToken {
    child: Child,
    paths: TokenPaths,
    link: Link,
    boot_time: Duration,
    _lock: File,
}

impl PrivateToken {
    /// Starts the token over `dir` (created if needed; its flash file is kept, so starting
    /// again over the same directory is a restart) and waits until it answers Hello over
    /// [`LaunchOptions::link`], the link [`PrivateToken::connect`] then uses.
    pub fn start(dir: &Path, opts: &LaunchOptions) -> Result<Self, LaunchError> {
        let image = firmware::Image::resolve(opts.firmware.as_deref())?;
        let paths = TokenPaths::new(dir);
        prepare_home(&paths)?;
        let lock = lock_home(&paths)?;
        stop_all(&paths);
        let started = Instant::now();
        let (child, seed) = start(&paths, &image, opts, Mode::Foreground)?;
        let (child, link, _) = wait_ready(&paths, child, seed, opts)?;
        drop(link);
        Ok(PrivateToken { child, paths, link: opts.link, boot_time: started.elapsed(), _lock: lock })
    }

    /// A new connection to the token over its link, handshaken (Hello) within `timeout`. The
    /// token serves one connection at a time: drop the previous one first.
    pub fn connect(&self, timeout: Duration) -> Result<TokenLink, LinkError> {
        self.connect_over(self.link, timeout)
    }

    /// As [`PrivateToken::connect`], over `link`.
    pub fn connect_over(&self, link: Link, timeout: Duration) -> Result<TokenLink, LinkError> {
        connect_link(&self.paths, link, timeout).map(|(link, _)| link)
    }

    /// The link [`PrivateToken::connect`] uses.
    pub fn link(&self) -> Link {
        self.link
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The files of the token.
    pub fn paths(&self) -> &TokenPaths {
        &self.paths
    }

    /// Time from spawning QEMU to the answer to the first Hello.
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }

    /// Whether QEMU is still running (it ends itself on idle timeout, panic or fault).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// QEMU's exit status once it has ended (0 after the idle timeout; the firmware's codes for
    /// a panic, fault or missing entropy otherwise), `None` while it runs.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for PrivateToken {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.paths.socket);
        let _ = fs::remove_file(&self.paths.net_socket);
    }
}

/// Creates the home (0700) if missing and checks the socket path fits.
fn prepare_home(paths: &TokenPaths) -> Result<(), LaunchError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&paths.home)
        .map_err(|e| LaunchError::io(format!("create {}", paths.home.display()), e))?;
    for socket in [&paths.socket, &paths.net_socket] {
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(LaunchError::SocketPathTooLong(socket.clone()));
        }
    }
    Ok(())
}

/// Opens `token.lock` and takes an exclusive flock on it, waiting as long as another holds it.
fn lock_home(paths: &TokenPaths) -> Result<File, LaunchError> {
    let what = || format!("lock {}", paths.lock.display());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&paths.lock)
        .map_err(|e| LaunchError::io(what(), e))?;
    loop {
        match flock(&file, FlockOperation::LockExclusive) {
            Ok(()) => return Ok(file),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(LaunchError::io(what(), e.into())),
        }
    }
}

/// Kills the pid file's QEMU and any other QEMU over this flash file; returns how many.
fn stop_all(paths: &TokenPaths) -> usize {
    let mut pids = process::find_token_processes(&paths.flash);
    if let Some(record) = process::read_pid_file(&paths.pid_file) {
        if !pids.contains(&record.pid) {
            pids.push(record.pid);
        }
    }
    // The token's sessions end with it: so does the session a process left for the next.
    crate::session_cache::SessionCache::in_home(&paths.home).clear();
    pids.into_iter().filter(|&pid| process::kill_token_process(pid, &paths.flash)).count()
}

/// Makes sure the flash file and firmware image exist, writes a fresh boot seed, then spawns
/// QEMU. The seed file goes when the returned guard is dropped (at once if the spawn fails).
fn start(
    paths: &TokenPaths,
    image: &firmware::Image,
    opts: &LaunchOptions,
    mode: Mode,
) -> Result<(Child, seed::SeedFile), LaunchError> {
    ensure_flash_file(&paths.flash)?;
    image
        .extract(&paths.firmware)
        .map_err(|e| LaunchError::io(format!("write {}", paths.firmware.display()), e))?;
    let seed = seed::SeedFile::create(&paths.seed)
        .map_err(|e| LaunchError::io(format!("write the boot seed {}", paths.seed.display()), e))?;
    let child = qemu::spawn(paths, opts, mode)?;
    Ok((child, seed))
}

/// Creates a blank (erased: all 0xFF) 16 MiB flash file if there is none, via a temporary file
/// and a rename so a crash never leaves a short one; refuses a file of another size.
fn ensure_flash_file(path: &Path) -> Result<(), LaunchError> {
    match fs::metadata(path) {
        Ok(meta) if meta.len() == FLASH_FILE_BYTES => return Ok(()),
        Ok(meta) => return Err(LaunchError::BadFlashFile { path: path.to_path_buf(), size: meta.len() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(LaunchError::io(format!("stat {}", path.display()), e)),
    }
    let tmp = path.with_extension(format!("flash.tmp-{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        let erased = vec![0xFFu8; 1 << 20];
        for _ in 0..FLASH_FILE_BYTES / erased.len() as u64 {
            file.write_all(&erased)?;
        }
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        LaunchError::io(format!("create {}", path.display()), e)
    })
}

/// Connects to the socket of `link` and runs the Hello probe within `timeout` (for the packet
/// link, SYNC first).
fn connect_link(
    paths: &TokenPaths,
    link: Link,
    timeout: Duration,
) -> Result<(TokenLink, HelloAnswer), LinkError> {
    let deadline = Instant::now() + timeout;
    let stream = UnixStream::connect(paths.socket_of(link))?;
    let mut link = match link {
        Link::Ethernet => TokenLink::Ethernet(PacketTransport::open(stream, timeout)?),
        Link::Uart => TokenLink::Uart(StreamTransport::new(stream)),
    };
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let hello = probe::hello(&mut link, left)?;
    Ok((link, hello))
}

/// How often a cold start looks for the new QEMU's socket (it appears some 20–40 ms after the
/// spawn; a connect attempt is one cheap system call).
const SOCKET_POLL: Duration = Duration::from_micros(500);

/// Waits until the new QEMU's socket accepts and the token answers Hello over
/// [`LaunchOptions::link`] within [`LaunchOptions::start_timeout`]. On failure the child is
/// killed, so nothing is left running. The boot seed file is removed on every way out: QEMU
/// reads it while it builds the machine, before the CPU runs, so a token that answers has long
/// had it (QEMU's sockets appear earlier, so their appearing would not prove it).
fn wait_ready(
    paths: &TokenPaths,
    mut child: Child,
    seed: seed::SeedFile,
    opts: &LaunchOptions,
) -> Result<(Child, TokenLink, HelloAnswer), LaunchError> {
    let _seed = seed;
    let started = Instant::now();
    let deadline = started + opts.start_timeout;
    let mut reason = String::from("the socket never appeared");
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(LaunchError::QemuExited {
                status: status.to_string(),
                log: paths.log.clone(),
                tail: qemu::log_tail(&paths.log),
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(LaunchError::NotReady {
                waited: started.elapsed(),
                reason,
                log: paths.log.clone(),
                tail: qemu::log_tail(&paths.log),
            });
        }
        match connect_link(paths, opts.link, left) {
            Ok((link, hello)) => return Ok((child, link, hello)),
            Err(LinkError::Io(e))
                if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) =>
            {
                thread::sleep(SOCKET_POLL);
            }
            Err(e) => reason = e.to_string(),
        }
    }
}
