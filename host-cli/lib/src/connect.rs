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
use crate::session::DeviceKey;
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
    Client::connect(conn)
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

/// Opens an encrypted session on `client`: asks the token's device key, checks it against the
/// key pinned for `name` in `home` (pinning it on first use; `None` keeps no pin), and runs the
/// handshake with it. A token presenting another key than the pinned one gets nothing sent to
/// it: [`crate::Error::DeviceKeyChanged`].
pub fn secure(client: &mut Client, home: &Path, name: Option<&str>) -> Result<Secured> {
    let device_key = client.device_key()?;
    let first_use = match name {
        Some(name) => PinStore::in_home(home).check(name, &device_key)? == Pinned::New,
        None => false,
    };
    client.open_session(&device_key)?;
    Ok(Secured { device_key, first_use })
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
