//! Test tokens: the in-process token over a flash file, and a private QEMU token (killed when
//! dropped), behind one trait; plus assertions on typed errors.

use std::fmt::Debug;
use std::path::PathBuf;
use std::time::Duration;

use pkms_lib::inprocess::InProcessToken;
use pkms_lib::launcher::{LaunchOptions, Link, PrivateToken};
use pkms_lib::transport::Transport;
use pkms_lib::{Client, Error};
use pkms_protocol::ErrorCode;
use tempfile::TempDir;

/// A token a suite can connect to and restart.
pub trait TestToken {
    /// `in-process` or `qemu`.
    fn name(&self) -> &'static str;
    /// A new byte link to the token (for clients of one's own, e.g. one that records what it
    /// sends). Drop the previous client first: a token serves one connection at a time.
    fn transport(&mut self) -> Box<dyn Transport>;
    /// A new connected client in an encrypted session ([`in_session`]). Drop the previous
    /// client first.
    fn client(&mut self) -> Client {
        in_session(self.plain_client())
    }
    /// A new connected client with no session: what a host without the token's trust has.
    fn plain_client(&mut self) -> Client {
        Client::connect_boxed(self.transport())
            .unwrap_or_else(|e| panic!("Hello to the {} token: {e}", self.name()))
    }
    /// Stops the token abruptly (as a power cut or SIGKILL would) and starts it again over the
    /// same flash. Drop clients first.
    fn restart(&mut self);
}

/// The client in an encrypted session with the device key the token presents (the suites
/// test the token, not the host's pinning of that key: `pkms_lib::pins` and the CLI tests do).
pub fn in_session(mut client: Client) -> Client {
    let key = client.device_key().unwrap_or_else(|e| panic!("GetDeviceKey: {e}"));
    client.open_session(&key).unwrap_or_else(|e| panic!("OpenSession: {e}"));
    client
}

/// The token core run in this process, its flash in a temporary file.
pub struct InProcess {
    _dir: TempDir,
    path: PathBuf,
}

impl InProcess {
    /// A fresh token with an erased flash.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("flash.bin");
        InProcess { _dir: dir, path }
    }
}

impl Default for InProcess {
    fn default() -> Self {
        Self::new()
    }
}

impl TestToken for InProcess {
    fn name(&self) -> &'static str {
        "in-process"
    }

    fn transport(&mut self) -> Box<dyn Transport> {
        Box::new(InProcessToken::open(&self.path).expect("open the in-process token"))
    }

    /// The in-process token keeps nothing between connections but its flash file, so a new
    /// connection already is a restart (a fresh core mounting the saved flash).
    fn restart(&mut self) {}
}

/// Options for test QEMUs: a short idle timeout, so a QEMU left behind by a crashed test run
/// ends itself within two minutes.
pub fn qemu_options() -> LaunchOptions {
    LaunchOptions { idle_timeout: Duration::from_secs(120), ..LaunchOptions::from_env() }
}

/// A QEMU token that is a child of the test process, over a temporary home; killed (SIGKILL)
/// when dropped, so tests never leave a QEMU behind. Clients reach it over one link.
pub struct Qemu {
    token: Option<PrivateToken>,
    dir: TempDir,
    link: Link,
}

impl Qemu {
    /// Boots a fresh token (erased flash), reached over the packet link. Panics with the
    /// launcher's message if QEMU cannot be started.
    pub fn new() -> Self {
        Self::over(Link::Ethernet)
    }

    /// Boots a fresh token reached over `link`.
    pub fn over(link: Link) -> Self {
        let dir = tempfile::Builder::new().prefix("pkms-qemu").tempdir().expect("temporary directory");
        let opts = LaunchOptions { link, ..qemu_options() };
        let token = PrivateToken::start(dir.path(), &opts).unwrap_or_else(|e| panic!("start QEMU: {e}"));
        Qemu { token: Some(token), dir, link }
    }

    /// The token, to open links of one's own (tests of the link itself).
    pub fn token(&self) -> &PrivateToken {
        self.token.as_ref().expect("QEMU is running")
    }

    /// As [`Qemu::token`], to ask whether QEMU still runs.
    pub fn token_mut(&mut self) -> &mut PrivateToken {
        self.token.as_mut().expect("QEMU is running")
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.token.as_ref().map(|t| t.pid()).unwrap_or(0)
    }

    /// The token home (flash file, socket, log).
    pub fn home(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Default for Qemu {
    fn default() -> Self {
        Self::new()
    }
}

impl TestToken for Qemu {
    fn name(&self) -> &'static str {
        match self.link {
            Link::Ethernet => "qemu",
            Link::Uart => "qemu-uart",
        }
    }

    fn transport(&mut self) -> Box<dyn Transport> {
        let token = self.token.as_ref().expect("QEMU is running");
        Box::new(token.connect(Duration::from_secs(10)).unwrap_or_else(|e| panic!("connect to QEMU: {e}")))
    }

    fn restart(&mut self) {
        drop(self.token.take()); // SIGKILL and wait
        let opts = LaunchOptions { link: self.link, ..qemu_options() };
        let token =
            PrivateToken::start(self.dir.path(), &opts).unwrap_or_else(|e| panic!("restart QEMU: {e}"));
        self.token = Some(token);
    }
}

/// Asserts that `result` is the token error `code`; returns its message.
#[track_caller]
pub fn expect_code<T: Debug>(result: Result<T, Error>, code: ErrorCode) -> String {
    match result {
        Err(Error::Token { code: got, message }) if got == code => message,
        other => panic!("expected the token error {code:?}, got {other:?}"),
    }
}

/// COBS-encodes `payload` and appends the 0x00 delimiter (tests build hand-made frames).
pub fn cobs_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    let mut code_at = 0usize;
    let mut code = 1u8;
    for &b in payload {
        if b == 0 {
            out[code_at] = code;
            code_at = out.len();
            out.push(0);
            code = 1;
        } else {
            out.push(b);
            code += 1;
            if code == 0xFF {
                out[code_at] = code;
                code_at = out.len();
                out.push(0);
                code = 1;
            }
        }
    }
    out[code_at] = code;
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::cobs_frame;

    #[test]
    fn cobs_matches_the_protocol_decoder() {
        for payload in [vec![], vec![0u8], vec![1, 0, 2], vec![7u8; 300], vec![0u8; 3]] {
            let mut frame = cobs_frame(&payload);
            assert_eq!(frame.pop(), Some(0));
            let decoded = pkms_protocol::framing::cobs_decode_in_place(&mut frame).unwrap();
            assert_eq!(decoded, payload.as_slice());
        }
    }
}
