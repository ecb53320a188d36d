//! The session cache of a QEMU token's home: the encrypted session a `pkms` process leaves for
//! the next one, so a warm call goes on with it instead of running a handshake (two P-256
//! multiplications on the token, most of a warm call's time). docs/security.md ("The session
//! cache") gives the reasoning; in short:
//!
//! * Only for the QEMU token of a home, whose flash file — every key the token holds, in the
//!   clear — already lies in that home: the session's keys beside it expose nothing its reader
//!   does not already have. A USB token's sessions are never cached.
//! * Only sessions on an open token that no one logged in to: the caller ([`crate::connect::park`])
//!   checks; a resumed session is checked again inside it ([`crate::connect::resume_cached`]).
//! * One process at a time: the file is taken (read and removed) and put back under the home's
//!   lock, which a connection holds; a process that fails or is interrupted leaves nothing, and
//!   the next one runs a handshake.
//! * A record names the token process it was made with (its pid) and the device key its
//!   session was opened with (the SHA-256 of its SubjectPublicKeyInfo): a restarted token, or
//!   another pinned key, gets none.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::session::{DeviceKey, Session, SessionSecrets};

/// The file in a home.
pub const FILE_NAME: &str = "token-session";

/// Format of the record.
const FORMAT: u8 = 1;

/// The largest record (postcard: varints at their longest).
const MAX_RECORD: usize = 1 + 5 + 32 + 5 + 32 + 32 + 10 + 10;

/// One cached session (postcard).
#[derive(Serialize, Deserialize)]
struct Record {
    format: u8,
    token_pid: u32,
    device_key: [u8; 32],
    session_id: u32,
    to_token: [u8; 32],
    to_host: [u8; 32],
    send_counter: u64,
    recv_counter: u64,
}

impl Drop for Record {
    fn drop(&mut self) {
        self.to_token.zeroize();
        self.to_host.zeroize();
    }
}

fn key_digest(device: &DeviceKey) -> [u8; 32] {
    Sha256::digest(device.spki_der()).into()
}

/// The session cache of one home.
pub struct SessionCache {
    path: PathBuf,
}

impl SessionCache {
    /// The cache in `home`.
    pub fn in_home(home: &Path) -> SessionCache {
        SessionCache { path: home.join(FILE_NAME) }
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a session is cached (for whichever token).
    pub fn is_present(&self) -> bool {
        self.path.exists()
    }

    /// Takes the cached session: the file is removed whatever it holds (a session serves one
    /// process at a time; one that does not parse is of no use). `Some` only for a session
    /// left for the token process `token_pid` opened with `device`; its status is unknown
    /// (`None`) until the caller asks the token.
    pub fn take(&self, token_pid: u32, device: &DeviceKey) -> Option<Session> {
        let bytes = Zeroizing::new(fs::read(&self.path).ok()?);
        if bytes.len() > MAX_RECORD {
            self.clear();
            return None;
        }
        self.clear();
        let record: Record = postcard::from_bytes(&bytes).ok()?;
        if record.format != FORMAT || record.token_pid != token_pid || record.device_key != key_digest(device)
        {
            return None;
        }
        let secrets =
            SessionSecrets { id: record.session_id, to_token: record.to_token, to_host: record.to_host };
        Some(Session::resume(secrets, record.send_counter, record.recv_counter, None))
    }

    /// Leaves `session` (opened with `device` on the token process `token_pid`) for the next
    /// process: written to a temporary file readable by its owner alone, then renamed over the
    /// cache, so a reader finds the old record or the new one.
    pub fn put(&self, token_pid: u32, device: &DeviceKey, session: &Session) -> io::Result<()> {
        let (secrets, send_counter, recv_counter) = session.secrets();
        let record = Record {
            format: FORMAT,
            token_pid,
            device_key: key_digest(device),
            session_id: secrets.id,
            to_token: secrets.to_token,
            to_host: secrets.to_host,
            send_counter,
            recv_counter,
        };
        let mut buf = Zeroizing::new([0u8; MAX_RECORD]);
        let bytes = postcard::to_slice(&record, &mut buf[..])
            .map_err(|e| io::Error::other(format!("encode the session: {e}")))?;
        let tmp = self.path.with_extension("tmp");
        let written = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(bytes))
            .and_then(|()| fs::rename(&tmp, &self.path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// Forgets the cached session, if any.
    pub fn clear(&self) {
        let _ = fs::remove_file(&self.path);
    }
}
