//! The in-process token: the very token core the boards run (`pkms_firmware::Token`), built
//! for the host, over a RAM NOR flash ([`MockFlash`]) that can be persisted to a file, with the
//! operating system's RNG. Bytes go through [`FrameServer`], so framing is the same code as on
//! the boards. Handy for tests and for trying Pocket KMS without QEMU; it protects nothing (the
//! flash file holds the device root key), and says so in GetInfo.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use embedded_storage::nor_flash::{ErrorType, MultiwriteNorFlash, NorFlash, ReadNorFlash};
use pkms_firmware::mock_flash::{MockFlash, MockFlashError};
use pkms_firmware::{Board, BoardInfo, FrameServer, Token, UserPresence};
use pkms_protocol::Platform;
use rand_core::OsRng;

use crate::error::LinkError;
use crate::transport::Transport;

/// Flash size of the in-process token: the same 1 MiB the QEMU board gives its key store.
pub const FLASH_BYTES: usize = 1024 * 1024;

/// The host board of the in-process token.
#[derive(Debug)]
pub struct HostBoard {
    started: Instant,
}

impl Default for HostBoard {
    fn default() -> Self {
        HostBoard { started: Instant::now() }
    }
}

impl Board for HostBoard {
    fn uptime_ms(&mut self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn user_presence(&mut self, _timeout_ms: u32) -> UserPresence {
        UserPresence::Unsupported
    }

    fn info(&self) -> BoardInfo {
        BoardInfo {
            name: "host-in-process",
            platform: Platform::Emulated,
            entropy_source: "host operating system RNG (getrandom), in the host process",
            key_protection: "none: the token runs inside the host process and its flash image \
                             (device root key included) is a plain file or host memory",
        }
    }
}

/// A [`MockFlash`] shared between the token and its owner (who persists it).
#[derive(Clone, Debug)]
pub struct SharedFlash(Arc<Mutex<MockFlash>>);

impl SharedFlash {
    /// Wraps a flash.
    pub fn new(flash: MockFlash) -> Self {
        SharedFlash(Arc::new(Mutex::new(flash)))
    }

    /// Locks the flash (a poisoned lock is taken over: the flash itself is always consistent).
    pub fn lock(&self) -> MutexGuard<'_, MockFlash> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ErrorType for SharedFlash {
    type Error = MockFlashError;
}

impl ReadNorFlash for SharedFlash {
    const READ_SIZE: usize = MockFlash::READ_SIZE;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.lock().read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.lock().capacity()
    }
}

impl NorFlash for SharedFlash {
    const WRITE_SIZE: usize = MockFlash::WRITE_SIZE;
    const ERASE_SIZE: usize = MockFlash::ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.lock().erase(from, to)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.lock().write(offset, bytes)
    }
}

impl MultiwriteNorFlash for SharedFlash {}

/// What the in-process token runs on: its shared RAM flash, the OS RNG, the host board, and the
/// QEMU board's audit log and index (its store is the same size).
#[derive(Debug)]
pub enum HostPlatform {}

const AUDIT_CAPACITY: usize = pkms_firmware::platform::audit_capacity(FLASH_BYTES, MockFlash::ERASE_SIZE);

impl pkms_firmware::Platform for HostPlatform {
    type Flash = SharedFlash;
    type Rng = OsRng;
    type Board = HostBoard;
    type Index = pkms_firmware::store::Index<{ pkms_firmware::platform::index_records(AUDIT_CAPACITY) }>;
    const AUDIT_CAPACITY: usize = AUDIT_CAPACITY;
}

/// The token core type the in-process transport runs.
pub type HostToken = Token<HostPlatform>;

struct Persist {
    path: PathBuf,
    /// Holds an exclusive lock on `<path>.lock` while this token lives, so two in-process
    /// tokens never run over one flash file.
    _lock: File,
    saved: Vec<u8>,
}

/// A transport whose other end is a token core in this process.
pub struct InProcessToken {
    token: Box<HostToken>,
    server: Box<FrameServer>,
    flash: SharedFlash,
    out: VecDeque<u8>,
    persist: Option<Persist>,
}

impl std::fmt::Debug for InProcessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessToken").field("path", &self.persist.as_ref().map(|p| &p.path)).finish()
    }
}

fn io_open(what: &str, path: &Path, e: std::io::Error) -> LinkError {
    LinkError::Open(format!("{what} {}: {e}", path.display()))
}

impl InProcessToken {
    /// A token over an erased flash held only in memory.
    pub fn ephemeral() -> Self {
        Self::with_flash(MockFlash::new(FLASH_BYTES), None)
    }

    /// A token over `flash` (e.g. a snapshot), held only in memory.
    pub fn from_flash(flash: MockFlash) -> Self {
        Self::with_flash(flash, None)
    }

    /// A token whose flash image lives in the file at `path` (created erased if missing) and is
    /// saved after every request that changed it (written to a temporary file, then renamed,
    /// so the file always holds a whole image). Waits for an exclusive lock on `<path>.lock`
    /// held until the token is dropped.
    pub fn open(path: &Path) -> Result<Self, LinkError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_open("directory", dir, e))?;
        }
        let lock_path = with_suffix(path, ".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_open("lock file", &lock_path, e))?;
        lock.lock().map_err(|e| io_open("lock on", &lock_path, e))?;
        let flash = match std::fs::read(path) {
            Ok(bytes) if !bytes.is_empty() => MockFlash::from_bytes(bytes),
            Ok(_) => MockFlash::new(FLASH_BYTES),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MockFlash::new(FLASH_BYTES),
            Err(e) => return Err(io_open("flash image", path, e)),
        };
        let saved = flash.snapshot();
        let mut token = Self::with_flash(flash, None);
        token.persist = Some(Persist { path: path.to_owned(), _lock: lock, saved });
        Ok(token)
    }

    fn with_flash(flash: MockFlash, persist: Option<Persist>) -> Self {
        let flash = SharedFlash::new(flash);
        let token = Box::new(HostToken::new(flash.clone(), OsRng, HostBoard::default()));
        InProcessToken { token, server: Box::new(FrameServer::new()), flash, out: VecDeque::new(), persist }
    }

    /// The token's flash (tests inspect it, snapshot it, or cut power).
    pub fn flash(&self) -> SharedFlash {
        self.flash.clone()
    }

    fn save(&mut self) -> Result<(), LinkError> {
        let Some(p) = self.persist.as_mut() else { return Ok(()) };
        let flash = self.flash.lock();
        if flash.as_bytes() == p.saved.as_slice() {
            return Ok(());
        }
        let tmp = with_suffix(&p.path, ".tmp");
        let mut f = File::create(&tmp).map_err(|e| io_open("temporary flash image", &tmp, e))?;
        f.write_all(flash.as_bytes())?;
        drop(f);
        std::fs::rename(&tmp, &p.path)?;
        p.saved.clear();
        p.saved.extend_from_slice(flash.as_bytes());
        Ok(())
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl Transport for InProcessToken {
    fn send(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        let InProcessToken { token, server, out, .. } = self;
        server.feed(token, bytes, |frame| out.extend(frame));
        self.save()
    }

    /// Answers are produced synchronously by `send`: with none buffered, nothing will come, so
    /// this returns [`LinkError::Timeout`] at once instead of sleeping.
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        if self.out.is_empty() {
            return Err(LinkError::Timeout(timeout));
        }
        let n = buf.len().min(self.out.len());
        for (dst, src) in buf.iter_mut().zip(self.out.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Client;
    use crate::error::Error;
    use pkms_protocol::ErrorCode;

    #[test]
    fn client_talks_to_the_in_process_token() {
        let mut c = Client::connect(InProcessToken::ephemeral()).unwrap();
        let info = c.get_info().unwrap();
        assert_eq!(info.board, "host-in-process");
        assert_eq!(info.platform, Platform::Emulated);
        assert_eq!(c.generate_random(32).unwrap().len(), 32);
        let err = c.generate_random(0).unwrap_err();
        assert!(matches!(err, Error::Token { code: ErrorCode::Validation, .. }), "{err:?}");
    }

    #[test]
    fn garbage_gets_an_error_frame_then_service_resumes() {
        let mut c = Client::connect(InProcessToken::ephemeral()).unwrap();
        c.send_raw(&[0x05, 0x01, 0x00]).unwrap();
        let raw = c.recv_raw(Duration::from_secs(1)).unwrap();
        assert_eq!(raw.id, 0);
        assert_eq!(raw.error.map(|e| e.0), Some(ErrorCode::MalformedFrame));
        assert_eq!(c.generate_random(16).unwrap().len(), 16);
    }

    #[test]
    fn flash_file_is_saved_locked_and_reopened() {
        use crate::model::CreateKeyParams;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/flash.bin");
        let key = {
            let mut c = Client::connect(InProcessToken::open(&path).unwrap()).unwrap();
            c.create_key(&CreateKeyParams::default()).unwrap().key_id
        };
        assert_eq!(std::fs::metadata(&path).unwrap().len(), FLASH_BYTES as u64, "a whole image was saved");

        // While one token holds the file, a second open waits for it.
        let holder = InProcessToken::open(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let t = InProcessToken::open(&path).unwrap();
                tx.send(()).unwrap();
                t
            })
        };
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "the second open waits");
        drop(holder);
        rx.recv_timeout(Duration::from_secs(10)).expect("the second open proceeds once the first is gone");
        let mut c = Client::connect(waiter.join().unwrap()).unwrap();
        assert_eq!(c.list_all_keys().unwrap(), vec![key], "the key survived in the file");
    }
}
