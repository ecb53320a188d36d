//! Choosing and opening a token: `--device` / `PKMS_DEVICE`; else the one Pocket KMS USB token
//! plugged in; else the QEMU token of `$PKMS_HOME` started through [`crate::launcher`].
//!
//! Device strings:
//! * `unix:PATH` — a unix socket (QEMU's serial chardev);
//! * `ethernet:PATH` — QEMU's netdev socket (`-netdev stream`), spoken as the packet link;
//! * `tcp:HOST:PORT` — a TCP socket (QEMU with `nodelay=on`);
//! * `serial:PATH` or a path under `/dev/` — a serial device (the USB token's CDC-ACM port);
//! * `inprocess:PATH` — the token core run inside this process, its flash kept in the file PATH
//!   (`inprocess:` alone keeps it in memory only).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::client::{Client, HELLO_TIMEOUT};
use crate::error::{Error, LinkError, Result};
use crate::inprocess::InProcessToken;
use crate::launcher::{self, LaunchOptions};
use crate::packet_link::PacketTransport;
use crate::pins::{PinStore, Pinned};
use crate::session::{DeviceKey, Handshake};
use crate::session_cache::{self, SessionCache};
use crate::transport::{SerialTransport, StreamTransport};
use crate::usb::{self, DefaultToken};

/// Where the token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// A unix socket.
    Unix(PathBuf),
    /// QEMU's netdev socket (the packet link).
    Ethernet(PathBuf),
    /// `HOST:PORT`.
    Tcp(String),
    /// A serial device path.
    Serial(String),
    /// The in-process token; `None` keeps its flash in memory only.
    InProcess(Option<PathBuf>),
    /// The QEMU token of a home (`qemu:HOME`), or of `$PKMS_HOME` (`qemu`), started if needed,
    /// whatever USB token is plugged in.
    Qemu(Option<PathBuf>),
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            return non_empty(p, s).map(|p| DeviceSpec::Unix(p.into()));
        }
        if let Some(p) = s.strip_prefix("ethernet:") {
            return non_empty(p, s).map(|p| DeviceSpec::Ethernet(p.into()));
        }
        if let Some(a) = s.strip_prefix("tcp:") {
            return match a.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                    Ok(DeviceSpec::Tcp(a.to_owned()))
                }
                _ => Err(format!("{s:?}: expected tcp:HOST:PORT")),
            };
        }
        if let Some(p) = s.strip_prefix("serial:") {
            return non_empty(p, s).map(|p| DeviceSpec::Serial(p.to_owned()));
        }
        if let Some(p) = s.strip_prefix("inprocess:") {
            return Ok(DeviceSpec::InProcess((!p.is_empty()).then(|| PathBuf::from(p))));
        }
        if s.starts_with("/dev/") {
            return Ok(DeviceSpec::Serial(s.to_owned()));
        }
        if s == "qemu" {
            return Ok(DeviceSpec::Qemu(None));
        }
        if let Some(p) = s.strip_prefix("qemu:") {
            return non_empty(p, s).map(|p| DeviceSpec::Qemu(Some(p.into())));
        }
        Err(format!(
            "{s:?} is not a device: use qemu (the QEMU token of $PKMS_HOME), qemu:HOME, unix:PATH, \
             ethernet:PATH, tcp:HOST:PORT, a serial device such as /dev/ttyACM0, or inprocess:PATH"
        ))
    }
}

fn non_empty<'a>(p: &'a str, whole: &str) -> std::result::Result<&'a str, String> {
    if p.is_empty() {
        Err(format!("{whole:?}: the path is missing"))
    } else {
        Ok(p)
    }
}

/// Opens `spec` and connects a client (Hello exchanged); `qemu` is the QEMU token of
/// [`default_home`], tuned by the environment ([`LaunchOptions::from_env`]).
pub fn open(spec: &DeviceSpec) -> Result<Client> {
    match spec {
        DeviceSpec::Qemu(Some(home)) => open_qemu(home),
        DeviceSpec::Qemu(None) => open_qemu(&default_home()),
        DeviceSpec::Unix(p) => Client::connect(StreamTransport::connect_unix(p)?),
        DeviceSpec::Ethernet(p) => Client::connect(PacketTransport::connect_unix(p, HELLO_TIMEOUT)?),
        DeviceSpec::Tcp(a) => Client::connect(StreamTransport::connect_tcp(a)?),
        DeviceSpec::Serial(p) => Client::connect(SerialTransport::open(p)?),
        DeviceSpec::InProcess(None) => Client::connect(InProcessToken::ephemeral()),
        DeviceSpec::InProcess(Some(p)) => Client::connect(InProcessToken::open(p)?),
    }
}

/// `$PKMS_HOME`, else the user's data directory + `pkms` (e.g. `~/.local/share/pkms`).
pub fn default_home() -> PathBuf {
    if let Some(h) = std::env::var_os("PKMS_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    dirs::data_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local/share")))
        .unwrap_or_else(std::env::temp_dir)
        .join("pkms")
}

/// Makes sure `home` (`$PKMS_HOME`) is private before anything in it is used: creates it, mode
/// 0700, when it does not exist; refuses one that its group or other users may write to (whoever
/// can write there can replace the QEMU token's flash and socket, or the device key pinned
/// there), saying how to fix it.
pub fn prepare_home(home: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let shown = home.display();
    match std::fs::metadata(home) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(home)
            .map_err(|e| Error::InvalidInput(format!("PKMS_HOME {shown} cannot be created: {e}"))),
        Err(e) => Err(Error::InvalidInput(format!("PKMS_HOME {shown} cannot be read: {e}"))),
        Ok(m) if !m.is_dir() => Err(Error::InvalidInput(format!("PKMS_HOME {shown} is not a directory"))),
        Ok(m) => {
            let mode = m.permissions().mode() & 0o7777;
            let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
                (false, false) => return Ok(()),
                (true, false) => "its group",
                (false, true) => "every user",
                (true, true) => "its group and every user",
            };
            Err(Error::InvalidInput(format!(
                "PKMS_HOME {shown} (mode {mode:o}) can be written by {who}, who could replace the token's \
                 state there: make it private with `chmod 700 {shown}` (or point PKMS_HOME elsewhere)"
            )))
        }
    }
}

/// Connects to the token `spec` names, else the default one ([`open_default_with`]); a QEMU
/// token (`qemu`, or none given) is the one of `home` (`qemu:HOME`: of HOME), started with `opts`.
pub fn open_with(spec: Option<&DeviceSpec>, home: &Path, opts: &LaunchOptions) -> Result<Client> {
    match spec {
        None => open_default_with(home, opts),
        Some(DeviceSpec::Qemu(None)) => open_qemu_with(home, opts),
        Some(DeviceSpec::Qemu(Some(h))) => open_qemu_with(h, opts),
        Some(other) => open(other),
    }
}

/// Whether `PKMS_HOME` is set (and not empty): then the QEMU token of that home is the default
/// token, whatever USB token is plugged in (`--device` still chooses another).
pub fn home_is_explicit() -> bool {
    std::env::var_os("PKMS_HOME").is_some_and(|h| !h.is_empty())
}

/// Which token `spec` (else the default choice) is, in words: `the QEMU token of HOME`, `the USB
/// token SERIAL at PORT`, `the token at unix:PATH`, …, for `info`, `--debug` and
/// `factory-reset`.
pub fn describe(spec: Option<&DeviceSpec>, home: &Path) -> String {
    let usb = |port: &Path| {
        let serial = usb::list_tokens().into_iter().find(|t| t.port == port).and_then(|t| t.serial);
        match serial {
            Some(s) => format!("the USB token with serial number {s} at {}", port.display()),
            None => format!("the token at {}", port.display()),
        }
    };
    match spec {
        None => match usb::choose_default(&usb::list_tokens()) {
            DefaultToken::One(port) => usb(&port),
            DefaultToken::Several(_) | DefaultToken::None => format!("the QEMU token of {}", home.display()),
        },
        Some(DeviceSpec::Qemu(None)) => format!("the QEMU token of {}", home.display()),
        Some(DeviceSpec::Qemu(Some(h))) => format!("the QEMU token of {}", h.display()),
        Some(DeviceSpec::Serial(p)) => usb(Path::new(p)),
        Some(DeviceSpec::Unix(p)) => format!("the token at unix:{}", p.display()),
        Some(DeviceSpec::Ethernet(p)) => format!("the token at ethernet:{}", p.display()),
        Some(DeviceSpec::Tcp(a)) => format!("the token at tcp:{a}"),
        Some(DeviceSpec::InProcess(Some(p))) => format!("the in-process token of {}", p.display()),
        Some(DeviceSpec::InProcess(None)) => "the in-process token (in memory)".to_owned(),
    }
}

/// Connects to the default token: a Pocket KMS USB token if exactly one is plugged in
/// ([`crate::usb`]); an error naming them if several are (choose one with `--device`); else the
/// QEMU token whose state lives in `home`, started if needed.
pub fn open_default(home: &Path) -> Result<Client> {
    open_default_with(home, &LaunchOptions::from_env())
}

/// As [`open_default`], starting or reaching a QEMU token with `opts` (its link, idle timeout).
pub fn open_default_with(home: &Path, opts: &LaunchOptions) -> Result<Client> {
    match usb::choose_default(&usb::list_tokens()) {
        DefaultToken::One(port) => open(&DeviceSpec::Serial(port.to_string_lossy().into_owned())),
        DefaultToken::Several(ports) => {
            let names: Vec<String> = ports.iter().map(|p| p.display().to_string()).collect();
            Err(LinkError::Open(format!(
                "{} Pocket KMS tokens are plugged in ({}): choose one with --device PATH (`pkms devices` lists them)",
                names.len(),
                names.join(", ")
            ))
            .into())
        }
        DefaultToken::None => open_qemu_with(home, opts),
    }
}

/// Connects to the QEMU token whose state lives in `home`, starting it if needed
/// ([`crate::launcher::connect`]; `PKMS_QEMU`, `PKMS_IDLE_SECS` and `PKMS_LINK` tune it). The
/// returned client holds the home's lock until dropped, so processes sharing a home take turns.
pub fn open_qemu(home: &Path) -> Result<Client> {
    open_qemu_with(home, &LaunchOptions::from_env())
}

/// As [`open_qemu`], with `opts`.
pub fn open_qemu_with(home: &Path, opts: &LaunchOptions) -> Result<Client> {
    prepare_home(home)?;
    let conn = launcher::connect(home, opts)?;
    let pid = conn.pid();
    // The launcher's liveness probe has just exchanged Hello on this connection.
    let mut client = match conn.hello().map(|(protocol, firmware)| (protocol, firmware.to_owned())) {
        Some((protocol, firmware)) => Client::connect_after_hello(Box::new(conn), protocol, &firmware),
        None => Client::connect(conn),
    }?;
    client.set_qemu_token_pid(pid);
    Ok(client)
}

/// The name a token's device key is pinned under in PKMS_HOME ([`crate::pins`]): `qemu` for
/// the home's QEMU token, `usb:SERIAL` for a USB token that reports its serial number, else the
/// device string. `None` for the in-memory in-process token, which has a new device key every
/// run.
pub fn pin_name(spec: Option<&DeviceSpec>) -> Option<String> {
    let usb_serial = |port: &Path| {
        usb::list_tokens()
            .into_iter()
            .find(|t| t.port == port)
            .and_then(|t| t.serial)
            .map(|s| format!("usb:{s}"))
    };
    match spec {
        None => match usb::choose_default(&usb::list_tokens()) {
            DefaultToken::One(port) => {
                Some(usb_serial(&port).unwrap_or_else(|| format!("serial:{}", port.display())))
            }
            DefaultToken::Several(_) | DefaultToken::None => Some("qemu".to_owned()),
        },
        Some(DeviceSpec::Unix(p)) => Some(format!("unix:{}", p.display())),
        Some(DeviceSpec::Ethernet(p)) => Some(format!("ethernet:{}", p.display())),
        Some(DeviceSpec::Tcp(a)) => Some(format!("tcp:{a}")),
        Some(DeviceSpec::Serial(p)) => {
            Some(usb_serial(Path::new(p)).unwrap_or_else(|| format!("serial:{p}")))
        }
        Some(DeviceSpec::InProcess(Some(p))) => {
            Some(format!("inprocess:{}", std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()).display()))
        }
        Some(DeviceSpec::InProcess(None)) => None,
        Some(DeviceSpec::Qemu(_)) => Some("qemu".to_owned()),
    }
}

/// What [`secure`] found out about the token.
#[derive(Debug, Clone)]
pub struct Secured {
    /// The token's device key (the session's static key).
    pub device_key: DeviceKey,
    /// Whether the key was pinned just now (first use), rather than already known.
    pub first_use: bool,
}

/// Message 1 of a session handshake with the device key pinned for a token, being made on
/// another thread ([`prepare_handshake`]) while the link to the token comes up.
#[derive(Debug)]
pub struct PreparedHandshake {
    pinned: DeviceKey,
    message: std::thread::JoinHandle<Result<Handshake>>,
}

/// Starts making message 1 of the handshake with the key pinned for `name` in `home`, if one
/// is (two P-256 multiplications, done meanwhile on another thread); [`secure_prepared`] uses
/// it. `None` without a pin (or `name`).
pub fn prepare_handshake(home: &Path, name: Option<&str>) -> Result<Option<PreparedHandshake>> {
    let pinned = match name {
        Some(name) => PinStore::in_home(home).get(name)?,
        None => None,
    };
    Ok(pinned.map(|pinned| {
        let key = pinned.clone();
        PreparedHandshake { pinned, message: std::thread::spawn(move || crate::session::start(&key, true)) }
    }))
}

/// Opens an encrypted session on `client` with the token's device key checked against the key
/// pinned for `name` in `home` (`None` keeps no pin). With a pin, the handshake is run with the
/// pinned key directly: only the holder of that key can complete it, so nothing more needs
/// asking; should the token refuse it, its device key is asked for and a different one is
/// [`crate::Error::DeviceKeyChanged`]. Without a pin, the token's device key is asked for and
/// pinned (first use), then the handshake runs with it. A token presenting another key than
/// the pinned one gets nothing sent to it but a handshake it cannot answer.
pub fn secure(client: &mut Client, home: &Path, name: Option<&str>) -> Result<Secured> {
    let prepared = match name {
        Some(name) => PinStore::in_home(home).get(name)?.map(|pinned| (pinned, None)),
        None => None,
    };
    secure_with(client, home, name, prepared)
}

/// As [`secure`], with message 1 from [`prepare_handshake`] (made for the same `home` and
/// `name`).
pub fn secure_prepared(
    client: &mut Client,
    home: &Path,
    name: Option<&str>,
    prepared: Option<PreparedHandshake>,
) -> Result<Secured> {
    let prepared = match prepared {
        Some(PreparedHandshake { pinned, message }) => {
            let message = message.join().map_err(|_| {
                Error::Link(LinkError::Protocol("making the session handshake failed".to_owned()))
            })??;
            Some((pinned, Some(message)))
        }
        None => None,
    };
    secure_with(client, home, name, prepared)
}

fn secure_with(
    client: &mut Client,
    home: &Path,
    name: Option<&str>,
    pinned: Option<(DeviceKey, Option<Handshake>)>,
) -> Result<Secured> {
    let pins = PinStore::in_home(home);
    if let (Some(name), Some((pinned, message))) = (name, pinned) {
        let opened = match message {
            Some(message) => client.open_session_with(&pinned, message),
            None => client.open_session(&pinned),
        };
        return match opened {
            Ok(()) => Ok(Secured { device_key: pinned, first_use: false }),
            Err(refused) => {
                // Refused by the token (one without the pinned key cannot open message 1), or
                // an answer that does not verify: if the token presents another key, that is
                // what to report.
                if matches!(refused, Error::Token { .. } | Error::Link(LinkError::Protocol(_))) {
                    if let Ok(presented) = client.device_key() {
                        pins.check(name, &presented)?;
                    }
                }
                Err(refused)
            }
        };
    }
    let device_key = client.device_key()?;
    let first_use = match name {
        Some(name) => pins.check(name, &device_key)? == Pinned::New,
        None => false,
    };
    client.open_session(&device_key)?;
    Ok(Secured { device_key, first_use })
}

/// Goes on with the session the last process left in `home`'s session cache
/// ([`crate::session_cache`]) instead of opening one: only when `client` reaches the QEMU token
/// of `home` (the process the session was left for) and the session was opened with the key
/// pinned there as `name`. The session is checked inside itself with GetInfo before anything
/// else is sent in it: kept only if the token answers and is still open (the status is then
/// known, as after a handshake that asked); an initialised token's session is closed, and one
/// the token no longer knows (restarted, expired, ended) is dropped. `None` in all those cases,
/// and without a cache: the caller then opens a session ([`secure`]).
pub fn resume_cached(client: &mut Client, home: &Path, name: Option<&str>) -> Result<Option<Secured>> {
    let cache = SessionCache::in_home(home);
    let (Some(pid), Some(name)) = (client.qemu_token_pid(), name) else {
        return Ok(None);
    };
    if !cache.is_present() || client.in_session() {
        return Ok(None);
    }
    let Some(pinned) = PinStore::in_home(home).get(name)? else {
        cache.clear();
        return Ok(None);
    };
    let Some(session) = cache.take(pid, &pinned) else {
        return Ok(None);
    };
    // Before a request that may not travel in it, the client opens a new session instead.
    client.put_session(session);
    match client.get_info() {
        Ok(info) if !info.initialized => {
            // Known now as a handshake that asked would have told it.
            let status = pkms_protocol::session::SessionStatus { initialized: false };
            if let Some(session) = client.take_session() {
                client.put_session(session.knowing_status(status));
            }
            Ok(Some(Secured { device_key: pinned, first_use: false }))
        }
        Ok(_) => {
            // Initialised since: logins never travel in a session that was on disk.
            client.close_session()?;
            Ok(None)
        }
        Err(Error::Token { .. } | Error::Link(LinkError::Protocol(_))) => {
            // The token refused it (and so ended it, if it knew it): nothing to close.
            drop(client.take_session());
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Leaves `client`'s open session in `home`'s session cache for the next process, instead of
/// closing it: only a session with the QEMU token of `home`, opened with `device`, on a token
/// that was open when the session was opened or resumed, and with every request sent in it
/// answered (its two counters equal: the token answers each request in a session with one
/// sealed frame), so the next process goes on from the counters both ends expect; that carried
/// no request [`session_cache::may_travel`] refuses; and less than
/// [`session_cache::MAX_AGE_SECS`] after its handshake. The caller must know that no one
/// logged in to it. Returns whether it did; otherwise the session stays open on `client`
/// (closed when it drops).
pub fn park(client: &mut Client, home: &Path, device: &DeviceKey) -> bool {
    let Some(pid) = client.qemu_token_pid() else {
        return false;
    };
    if client.session_status().is_none_or(|s| s.initialized) {
        return false;
    }
    let Some(session) = client.take_session() else {
        return false;
    };
    let (_, sent, answered) = session.secrets();
    if sent != answered || session.carried_secret() || !session_cache::is_fresh(session.opened_at()) {
        client.put_session(session);
        return false;
    }
    match SessionCache::in_home(home).put(pid, device, &session) {
        Ok(()) => true,
        Err(_) => {
            client.put_session(session);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_strings_parse() {
        assert_eq!("unix:/tmp/s".parse(), Ok(DeviceSpec::Unix("/tmp/s".into())));
        assert_eq!("ethernet:/tmp/n".parse(), Ok(DeviceSpec::Ethernet("/tmp/n".into())));
        assert!("ethernet:".parse::<DeviceSpec>().is_err());
        assert_eq!("tcp:127.0.0.1:4444".parse(), Ok(DeviceSpec::Tcp("127.0.0.1:4444".into())));
        assert_eq!("/dev/ttyACM0".parse(), Ok(DeviceSpec::Serial("/dev/ttyACM0".into())));
        assert_eq!("serial:/dev/pts/3".parse(), Ok(DeviceSpec::Serial("/dev/pts/3".into())));
        assert_eq!("inprocess:/tmp/f".parse(), Ok(DeviceSpec::InProcess(Some("/tmp/f".into()))));
        assert_eq!("inprocess:".parse(), Ok(DeviceSpec::InProcess(None)));
        assert_eq!("qemu".parse(), Ok(DeviceSpec::Qemu(None)));
        assert_eq!("qemu:/tmp/h".parse(), Ok(DeviceSpec::Qemu(Some("/tmp/h".into()))));
        assert!("qemu:".parse::<DeviceSpec>().is_err());
        assert!("tcp:localhost".parse::<DeviceSpec>().is_err());
        assert!("tcp::80".parse::<DeviceSpec>().is_err());
        assert!("unix:".parse::<DeviceSpec>().is_err());
        assert!("COM3".parse::<DeviceSpec>().unwrap_err().contains("unix:PATH"));
    }

    use std::sync::{Arc, Mutex};

    use pkms_protocol::framing::{self, Feed, FrameAccumulator};

    use crate::transport::Transport;

    /// What a [`Recorder`] saw: the operation of each frame sent (a sealed request shows as
    /// SessionFrame), and each read.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Seen {
        Sent(&'static str),
        Read,
    }

    /// A transport to the in-process token that records what goes through it.
    struct Recorder {
        token: InProcessToken,
        log: Arc<Mutex<Vec<Seen>>>,
        acc: Box<FrameAccumulator>,
    }

    impl Recorder {
        fn new(token: InProcessToken) -> (Recorder, Arc<Mutex<Vec<Seen>>>) {
            let log = Arc::new(Mutex::new(Vec::new()));
            (Recorder { token, log: Arc::clone(&log), acc: Box::new(FrameAccumulator::new()) }, log)
        }
    }

    impl Transport for Recorder {
        fn send(&mut self, bytes: &[u8]) -> std::result::Result<(), LinkError> {
            let mut rest = bytes;
            while !rest.is_empty() {
                match self.acc.push(rest) {
                    Feed::Frame(payload, used) => {
                        let op = framing::decode_request(payload).map(|f| f.request.operation().name());
                        self.log.lock().unwrap().push(Seen::Sent(op.unwrap_or("undecodable")));
                        rest = &rest[used..];
                    }
                    Feed::Overflow(used) | Feed::Malformed(used) => rest = &rest[used..],
                    Feed::NeedMore => break,
                }
            }
            self.token.send(bytes)
        }

        fn recv(
            &mut self,
            buf: &mut [u8],
            timeout: std::time::Duration,
        ) -> std::result::Result<usize, LinkError> {
            self.log.lock().unwrap().push(Seen::Read);
            self.token.recv(buf, timeout)
        }
    }

    fn sent(log: &Mutex<Vec<Seen>>) -> Vec<&'static str> {
        log.lock()
            .unwrap()
            .iter()
            .filter_map(|s| match s {
                Seen::Sent(op) => Some(*op),
                Seen::Read => None,
            })
            .collect()
    }

    /// A client of `token` (Hello exchanged), and what it sends from then on.
    fn recorded(token: InProcessToken) -> (Client, Arc<Mutex<Vec<Seen>>>) {
        let (recorder, log) = Recorder::new(token);
        let client = Client::connect(recorder).unwrap();
        log.lock().unwrap().clear();
        (client, log)
    }

    #[test]
    fn a_pinned_token_is_reached_without_asking_its_key_and_says_whether_it_is_initialised() {
        let home = tempfile::tempdir().unwrap();
        let flash = crate::inprocess::InProcessToken::ephemeral();
        let (mut first, log) = recorded(flash);
        let secured = secure(&mut first, home.path(), Some("qemu")).unwrap();
        assert!(secured.first_use, "nothing was pinned yet");
        assert_eq!(sent(&log), ["GetDeviceKey", "OpenSession"], "first use: the key is asked, then pinned");
        assert_eq!(PinStore::in_home(home.path()).get("qemu").unwrap().as_ref(), Some(&secured.device_key));
        assert_eq!(
            first.session_status(),
            Some(pkms_protocol::session::SessionStatus { initialized: false }),
            "the handshake says the in-memory token is open"
        );
        // Known now: the handshake runs with the pinned key directly, made beforehand.
        first.close_session().unwrap();
        log.lock().unwrap().clear();
        let prepared = prepare_handshake(home.path(), Some("qemu")).unwrap();
        assert!(prepared.is_some(), "a pin means a prepared handshake");
        let again = secure_prepared(&mut first, home.path(), Some("qemu"), prepared).unwrap();
        assert!(!again.first_use);
        assert_eq!(again.device_key, secured.device_key);
        assert_eq!(sent(&log), ["OpenSession"], "no GetDeviceKey for a pinned token");
        assert!(first.in_session());
        log.lock().unwrap().clear();
        let again = secure(&mut first, home.path(), Some("qemu")).unwrap();
        assert_eq!(again.device_key, secured.device_key);
        assert_eq!(sent(&log), ["SessionFrame", "OpenSession"], "the open session is closed first");
        // No pin kept: the key is asked every time.
        log.lock().unwrap().clear();
        first.close_session().unwrap();
        log.lock().unwrap().clear();
        assert!(prepare_handshake(home.path(), None).unwrap().is_none());
        assert!(!secure_prepared(&mut first, home.path(), None, None).unwrap().first_use);
        assert_eq!(sent(&log), ["GetDeviceKey", "OpenSession"]);
    }

    #[test]
    fn a_token_without_the_pinned_key_is_reported_as_changed_and_gets_no_session() {
        let home = tempfile::tempdir().unwrap();
        let other = {
            let (mut c, _) = recorded(crate::inprocess::InProcessToken::ephemeral());
            c.device_key().unwrap()
        };
        PinStore::in_home(home.path()).replace("qemu", &other).unwrap();
        let (mut client, log) = recorded(crate::inprocess::InProcessToken::ephemeral());
        let presented = client.device_key().unwrap();
        log.lock().unwrap().clear();
        for prepared in [false, true] {
            let result = if prepared {
                let p = prepare_handshake(home.path(), Some("qemu")).unwrap();
                secure_prepared(&mut client, home.path(), Some("qemu"), p)
            } else {
                secure(&mut client, home.path(), Some("qemu"))
            };
            match result {
                Err(Error::DeviceKeyChanged(changed)) => {
                    assert_eq!(changed.pinned, other.fingerprint());
                    assert_eq!(changed.presented, presented.fingerprint());
                }
                other => panic!("{other:?}"),
            }
            assert!(!client.in_session());
            // The refused handshake, then the key asked to say what changed; nothing else.
            assert_eq!(sent(&log), ["OpenSession", "GetDeviceKey"]);
            log.lock().unwrap().clear();
        }
        assert_eq!(PinStore::in_home(home.path()).get("qemu").unwrap(), Some(other), "the pin is kept");
    }

    /// Writes a record as the cache does (a file of this user's, mode 0600).
    fn put_back(path: &Path, bytes: &[u8]) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(path);
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
        f.write_all(bytes).unwrap();
    }

    /// A session left in the cache by one call serves the next without a handshake, checked
    /// inside itself first; only for the token process it was left for, and never once the
    /// token no longer knows it or is initialised (then the caller opens a new one).
    #[test]
    fn a_parked_session_serves_the_next_call_without_a_handshake() {
        let home = tempfile::tempdir().unwrap();
        let cache = SessionCache::in_home(home.path());
        let (mut client, log) = recorded(crate::inprocess::InProcessToken::ephemeral());
        let secured = secure(&mut client, home.path(), Some("qemu")).unwrap();
        // Not a QEMU token of a home: nothing is cached, nothing resumed.
        assert!(!park(&mut client, home.path(), &secured.device_key));
        assert!(client.in_session() && !cache.is_present());
        client.set_qemu_token_pid(41);
        // A request sealed and not yet answered: not left (the next process would read the
        // answer meant for it as its own).
        let mut session = client.take_session().unwrap();
        session.seal(&mut vec![1, 2, 3]);
        client.put_session(session);
        assert!(!park(&mut client, home.path(), &secured.device_key));
        assert!(client.in_session() && !cache.is_present());
        drop(client.take_session());
        secure(&mut client, home.path(), Some("qemu")).unwrap();
        assert!(park(&mut client, home.path(), &secured.device_key));
        assert!(!client.in_session(), "the session left the client: it is not closed on drop");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cache.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by its owner alone");
        let parked = std::fs::read(cache.path()).unwrap();

        // A client already in a session takes nothing.
        secure(&mut client, home.path(), Some("qemu")).unwrap();
        log.lock().unwrap().clear();
        assert!(resume_cached(&mut client, home.path(), Some("qemu")).unwrap().is_none());
        assert!(sent(&log).is_empty() && cache.is_present());
        client.close_session().unwrap();

        // The next call: GetInfo inside the parked session, then its requests; no handshake.
        log.lock().unwrap().clear();
        let resumed = resume_cached(&mut client, home.path(), Some("qemu")).unwrap().expect("resumed");
        assert_eq!(resumed.device_key, secured.device_key);
        assert!(!resumed.first_use);
        assert!(!cache.is_present(), "a session serves one call at a time");
        assert_eq!(
            client.session_status(),
            Some(pkms_protocol::session::SessionStatus { initialized: false })
        );
        assert_eq!(client.generate_random(8).unwrap().len(), 8);
        assert_eq!(sent(&log), ["SessionFrame", "SessionFrame"], "GetInfo and the request, sealed");
        assert!(park(&mut client, home.path(), &secured.device_key));
        let first_record = parked;
        let parked = std::fs::read(cache.path()).unwrap();

        // Left for another token process (a restarted QEMU): dropped unused.
        client.set_qemu_token_pid(42);
        log.lock().unwrap().clear();
        assert!(resume_cached(&mut client, home.path(), Some("qemu")).unwrap().is_none());
        assert!(sent(&log).is_empty() && !cache.is_present());
        // Under another pin name (nothing pinned): dropped unused.
        client.set_qemu_token_pid(41);
        put_back(cache.path(), &parked);
        assert!(resume_cached(&mut client, home.path(), Some("usb:7")).unwrap().is_none());
        assert!(sent(&log).is_empty() && !cache.is_present());
        // Not a record: dropped.
        put_back(cache.path(), b"not a session");
        assert!(resume_cached(&mut client, home.path(), Some("qemu")).unwrap().is_none());
        assert!(sent(&log).is_empty() && !cache.is_present());
        // An earlier record of the session (its counters used since): the token refuses the
        // check as a replay and ends the session.
        put_back(cache.path(), &first_record);
        assert!(resume_cached(&mut client, home.path(), Some("qemu")).unwrap().is_none());
        assert_eq!(sent(&log), ["SessionFrame"], "only the check");
        put_back(cache.path(), &parked);
        log.lock().unwrap().clear();
        assert!(
            resume_cached(&mut client, home.path(), Some("qemu")).unwrap().is_none(),
            "ended by the replay"
        );
        assert!(!client.in_session() && !cache.is_present());
        secure(&mut client, home.path(), Some("qemu")).unwrap();
        assert!(park(&mut client, home.path(), &secured.device_key));
        let parked = std::fs::read(cache.path()).unwrap();
        log.lock().unwrap().clear();

        // A session the token has ended (here closed by the call that resumed it; the same
        // holds after an expiry or a restart): the check inside it fails, nothing else is sent
        // in it, and a new session opens as usual.
        put_back(cache.path(), &parked);
        assert!(resume_cached(&mut client, home.path(), Some("qemu")).unwrap().is_some());
        client.close_session().unwrap();
        put_back(cache.path(), &parked);
        log.lock().unwrap().clear();
        assert!(resume_cached(&mut client, home.path(), Some("qemu")).unwrap().is_none());
        assert_eq!(sent(&log), ["SessionFrame"], "only the check");
        assert!(!client.in_session() && !cache.is_present());
        secure(&mut client, home.path(), Some("qemu")).unwrap();
        assert_eq!(client.generate_random(4).unwrap().len(), 4);

        // In a session from the cache, a request that may not travel in it (here ChangePin, with
        // PINs in it) goes in a new session opened first, which is never left either.
        assert!(park(&mut client, home.path(), &secured.device_key));
        assert!(resume_cached(&mut client, home.path(), Some("qemu")).unwrap().is_some());
        log.lock().unwrap().clear();
        let refused = client.change_pin(b"123456", b"654321");
        assert!(matches!(refused, Err(Error::Token { .. })), "an open token has no PIN: {refused:?}");
        assert_eq!(
            sent(&log),
            ["SessionFrame", "OpenSession", "SessionFrame"],
            "CloseSession, a handshake, ChangePin"
        );
        assert!(!park(&mut client, home.path(), &secured.device_key), "it carried PINs");
        assert!(client.in_session() && !cache.is_present());
        client.close_session().unwrap();

        // A token initialised (in another session) since the session was left: the session
        // is closed unused (a login never travels in a session that was on disk).
        secure(&mut client, home.path(), Some("qemu")).unwrap();
        assert!(park(&mut client, home.path(), &secured.device_key));
        secure(&mut client, home.path(), Some("qemu")).unwrap();
        client.initialize(b"123456", b"12345678", pkms_protocol::access::AuditFullMode::Overwrite).unwrap();
        assert!(!park(&mut client, home.path(), &secured.device_key), "Initialize carried a PIN");
        client.close_session().unwrap();
        log.lock().unwrap().clear();
        assert!(resume_cached(&mut client, home.path(), Some("qemu")).unwrap().is_none());
        assert_eq!(sent(&log), ["SessionFrame", "SessionFrame"], "the check, then CloseSession");
        assert!(!client.in_session() && !cache.is_present());
        // A session opened on an initialised token is never left.
        secure(&mut client, home.path(), Some("qemu")).unwrap();
        assert!(!park(&mut client, home.path(), &secured.device_key));
        assert!(client.in_session() && !cache.is_present());
    }

    /// A token from before message 1's flags: it refuses an OpenSession payload that is not
    /// a bare 16-byte tag, as such firmware did.
    struct OldToken(InProcessToken, Vec<u8>);

    impl Transport for OldToken {
        fn send(&mut self, bytes: &[u8]) -> std::result::Result<(), LinkError> {
            use pkms_protocol::messages::{Request, ResponseFrame, WireError};
            let mut acc = FrameAccumulator::new();
            if let Feed::Frame(payload, _) = acc.push(bytes) {
                if let Ok(frame) = framing::decode_request(payload) {
                    if let Request::OpenSession(r) = frame.request {
                        if r.payload.len() != 16 {
                            let refusal = ResponseFrame {
                                id: frame.id,
                                result: Err(WireError {
                                    code: pkms_protocol::ErrorCode::Validation,
                                    message: "OpenSession's payload must be a 16-byte tag",
                                }),
                            };
                            let mut out = vec![0u8; 256];
                            let n = framing::encode(&refusal, &mut out).unwrap();
                            self.1.extend_from_slice(&out[..n]);
                            return Ok(());
                        }
                    }
                }
            }
            self.0.send(bytes)
        }

        fn recv(
            &mut self,
            buf: &mut [u8],
            timeout: std::time::Duration,
        ) -> std::result::Result<usize, LinkError> {
            if self.1.is_empty() {
                return self.0.recv(buf, timeout);
            }
            let n = self.1.len().min(buf.len());
            buf[..n].copy_from_slice(&self.1[..n]);
            self.1.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn a_token_older_than_the_status_flag_gets_a_plain_handshake() {
        let home = tempfile::tempdir().unwrap();
        let mut client = Client::connect(OldToken(InProcessToken::ephemeral(), Vec::new())).unwrap();
        let secured = secure(&mut client, home.path(), Some("usb:old")).unwrap();
        assert!(client.in_session(), "opened again without the flags byte");
        assert_eq!(client.session_status(), None, "such a token says nothing: ask GetInfo");
        assert!(!client.get_info().unwrap().initialized);
        // With the key pinned, the same.
        client.close_session().unwrap();
        let again = secure(&mut client, home.path(), Some("usb:old")).unwrap();
        assert_eq!(again.device_key, secured.device_key);
        assert!(client.in_session());
    }

    #[test]
    fn a_dropped_client_sends_close_session_and_does_not_wait_for_the_answer() {
        let home = tempfile::tempdir().unwrap();
        let (mut client, log) = recorded(crate::inprocess::InProcessToken::ephemeral());
        secure(&mut client, home.path(), None).unwrap();
        log.lock().unwrap().clear();
        drop(client);
        assert_eq!(*log.lock().unwrap(), [Seen::Sent("SessionFrame")], "sent, and nothing read after it");
    }

    #[test]
    fn a_client_after_the_probe_hello_sends_no_hello_of_its_own() {
        let (recorder, log) = Recorder::new(crate::inprocess::InProcessToken::ephemeral());
        let mut client =
            Client::connect_after_hello(Box::new(recorder), pkms_protocol::PROTOCOL_VERSION, "1.2.3")
                .unwrap();
        assert_eq!(client.firmware_version(), "1.2.3");
        client.device_key().unwrap();
        assert_eq!(sent(&log), ["GetDeviceKey"], "the first frame is the first request");
        let (recorder, _) = Recorder::new(crate::inprocess::InProcessToken::ephemeral());
        match Client::connect_after_hello(Box::new(recorder), pkms_protocol::PROTOCOL_VERSION + 1, "9") {
            Err(Error::Token { code, .. }) => {
                assert_eq!(code, pkms_protocol::ErrorCode::UnsupportedProtocolVersion)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_home_is_created_private_and_a_writable_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("a/b/home");
        prepare_home(&home).unwrap();
        assert_eq!(std::fs::metadata(&home).unwrap().permissions().mode() & 0o777, 0o700);
        for (mode, ok) in [(0o700, true), (0o755, true), (0o770, false), (0o707, false), (0o777, false)] {
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(mode)).unwrap();
            match prepare_home(&home) {
                Ok(()) => assert!(ok, "{mode:o} accepted"),
                Err(Error::InvalidInput(m)) => {
                    assert!(!ok, "{mode:o} refused: {m}");
                    assert!(m.contains("chmod 700"), "{m}");
                }
                Err(e) => panic!("{e}"),
            }
        }
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        assert!(prepare_home(&file).is_err());
    }
}
