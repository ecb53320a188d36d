//! The session cache of a QEMU token's home: the encrypted session a `pkms` process leaves for
//! the next one, so a warm call goes on with it instead of running a handshake (two P-256
//! multiplications on the token, most of a warm call's time). docs/security.md ("The session
//! cache") gives the reasoning; in short:
//!
//! * Only for the QEMU token of a home, whose flash file — every key the token holds, in the
//!   clear — already lies in that home. A USB token's sessions are never cached.
//! * Only sessions on an open token, that carried nothing [`may_travel`] refuses (a PIN, a PUK,
//!   a backup, a change of who may use the token), with every request answered, less than
//!   [`MAX_AGE_SECS`] after their handshake ([`crate::connect::park`]); a resumed session is
//!   checked inside itself before use ([`crate::connect::resume_cached`]), and the client opens
//!   a new session before a request [`may_travel`] refuses.
//! * One process at a time: the file is claimed by a rename and removed, then put back, under
//!   the home's lock, which a connection holds; a process that fails or is interrupted leaves
//!   nothing, and the next one runs a handshake.
//! * A record names the token process it was made with (its pid) and the device key its
//!   session was opened with (the SHA-256 of its SubjectPublicKeyInfo): a restarted token, or
//!   another pinned key, gets none.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use pkms_protocol::operations::Gate;
use pkms_protocol::Request;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::session::{DeviceKey, Session, SessionSecrets};

/// The file in a home.
pub const FILE_NAME: &str = "token-session";

/// How long after its handshake a session may still be taken from the cache: a bound on what
/// a copy of the file (a backup, a snapshot) and a recording of the link could read together.
pub const MAX_AGE_SECS: u64 = 10 * 60;

/// Format of the record.
const FORMAT: u8 = 2;

/// The largest record (postcard: varints at their longest).
const MAX_RECORD: usize = 1 + 5 + 32 + 5 + 32 + 32 + 10 + 10 + 10;

/// Whether `request` may travel in a session whose keys have been on disk. Not one that
/// carries a secret the home does not already hold (a PIN, a PUK, a backup's shares or chunks)
/// or that changes who may use the token (after which the session's status would be stale):
/// everything an administrator's or a pre-login gate admits, but CloseSession; and ChangePin,
/// which any session may send. A session that carried one is never cached, and a session from
/// the cache is replaced by a new one before it would carry one ([`crate::Client`]).
pub fn may_travel(request: &Request<'_>) -> bool {
    match request.gate() {
        Gate::Plain | Gate::Session | Gate::Key(_) | Gate::Keys(..) => {
            !matches!(request, Request::ChangePin(_))
        }
        Gate::Open => matches!(request, Request::CloseSession(_)),
        Gate::Admin => false,
    }
}

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
    opened_at: u64,
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

/// The host's clock, in seconds since the epoch (what [`Session::opened_at`] holds).
pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whether a session whose handshake ran at `opened_at` may still be cached or taken: less than
/// [`MAX_AGE_SECS`] ago, and not in the future (a clock set back since).
pub(crate) fn is_fresh(opened_at: u64) -> bool {
    now_secs().checked_sub(opened_at).is_some_and(|age| age < MAX_AGE_SECS)
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

    /// Whether something is cached (for whichever token; a hint: [`SessionCache::take`] decides).
    pub fn is_present(&self) -> bool {
        self.path.symlink_metadata().is_ok()
    }

    /// Takes the cached session. The file is first claimed by renaming it (so no two takers,
    /// and no home where it cannot be removed, ever get one record twice), then read — only a
    /// regular file of this user's, not a link, of a record's size — and removed whatever it
    /// holds. `Some` only for a session left for the token process `token_pid`, opened with
    /// `device`, whose handshake is less than [`MAX_AGE_SECS`] old; its status is unknown
    /// (`None`) until the caller asks the token.
    pub fn take(&self, token_pid: u32, device: &DeviceKey) -> Option<Session> {
        let claimed = self.path.with_extension(format!("taken-{}", std::process::id()));
        fs::rename(&self.path, &claimed).ok()?;
        let bytes = read_own_file(&claimed);
        let _ = fs::remove_file(&claimed);
        let record: Record = postcard::from_bytes(&bytes?).ok()?;
        if record.format != FORMAT
            || record.token_pid != token_pid
            || record.device_key != key_digest(device)
            || !is_fresh(record.opened_at)
        {
            return None;
        }
        let secrets =
            SessionSecrets { id: record.session_id, to_token: record.to_token, to_host: record.to_host };
        let counters = (record.send_counter, record.recv_counter);
        Some(Session::from_disk(secrets, counters, record.opened_at, device.clone()))
    }

    /// Leaves `session` (opened with `device` on the token process `token_pid`) for the next
    /// process: written to a new file of this process's, readable by its owner alone (created
    /// afresh, never through a link), then renamed over the cache, so a reader finds the old
    /// record or the new one.
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
            opened_at: session.opened_at(),
        };
        let mut buf = Zeroizing::new([0u8; MAX_RECORD]);
        let bytes = postcard::to_slice(&record, &mut buf[..])
            .map_err(|e| io::Error::other(format!("encode the session: {e}")))?;
        let tmp = self.path.with_extension(format!("new-{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
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

/// The bytes of `path` if it is a regular file (not followed through a link, not a FIFO: opened
/// without blocking) owned by this user, readable by no one else, of a record's size at most.
fn read_own_file(path: &Path) -> Option<Zeroizing<Vec<u8>>> {
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = fs::OpenOptions::new().read(true).custom_flags(flags.bits() as i32).open(path).ok()?;
    let meta = file.metadata().ok()?;
    let own = meta.uid() == rustix::process::geteuid().as_raw();
    if !meta.file_type().is_file() || !own || meta.mode() & 0o077 != 0 || meta.len() > MAX_RECORD as u64 {
        return None;
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_RECORD));
    file.take(MAX_RECORD as u64).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device_of(seed: u8) -> DeviceKey {
        let secret = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
        use p256::pkcs8::EncodePublicKey;
        DeviceKey::from_spki_der(secret.public_key().to_public_key_der().unwrap().as_bytes()).unwrap()
    }

    fn device() -> DeviceKey {
        device_of(7)
    }

    fn session(opened_at: u64) -> Session {
        Session::from_disk(
            SessionSecrets { id: 9, to_token: [1; 32], to_host: [2; 32] },
            (3, 3),
            opened_at,
            device(),
        )
    }

    #[test]
    fn a_record_is_taken_once_and_only_for_its_token_key_and_age() {
        let home = tempfile::tempdir().unwrap();
        let cache = SessionCache::in_home(home.path());
        let now = now_secs();
        cache.put(5, &device(), &session(now - 1)).unwrap();
        let taken = cache.take(5, &device()).expect("taken");
        let (secrets, send, recv) = taken.secrets();
        assert_eq!((secrets.id, secrets.to_token, secrets.to_host, send, recv), (9, [1; 32], [2; 32], 3, 3));
        assert!(taken.from_disk_with() == Some(&device()) && taken.status().is_none());
        assert!(cache.take(5, &device()).is_none(), "taken once");
        assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0, "nothing left behind");
        // Ten minutes after its handshake a session is no longer taken.
        cache.put(5, &device(), &session(now - 10 * 60)).unwrap();
        assert!(cache.take(5, &device()).is_none());
        cache.put(5, &device(), &session(now - 9 * 60)).unwrap();
        assert!(cache.take(5, &device()).is_some());
        // Opened with another device key: not taken.
        cache.put(5, &device(), &session(now)).unwrap();
        assert!(cache.take(5, &device_of(8)).is_none());
        // From the future (a clock set back since): not taken.
        cache.put(5, &device(), &session(now + 3600)).unwrap();
        assert!(cache.take(5, &device()).is_none());
        // Another token process: not taken, and gone.
        cache.put(5, &device(), &session(now)).unwrap();
        assert!(cache.take(6, &device()).is_none());
        assert!(!cache.is_present());
    }

    /// The largest record (every number at its longest varint) is exactly the size the reader
    /// accepts; one byte more is refused unread.
    #[test]
    fn the_record_size_bound_is_the_largest_record() {
        let record = Record {
            format: FORMAT,
            token_pid: u32::MAX,
            device_key: [0xFF; 32],
            session_id: u32::MAX,
            to_token: [0xFF; 32],
            to_host: [0xFF; 32],
            send_counter: u64::MAX,
            recv_counter: u64::MAX,
            opened_at: u64::MAX,
        };
        let mut buf = [0u8; MAX_RECORD];
        assert_eq!(postcard::to_slice(&record, &mut buf).map(|b| b.len()), Ok(MAX_RECORD));
        let home = tempfile::tempdir().unwrap();
        let cache = SessionCache::in_home(home.path());
        cache.put(5, &device(), &session(now_secs())).unwrap();
        let mut bytes = std::fs::read(cache.path()).unwrap();
        bytes.resize(MAX_RECORD + 1, 0);
        std::fs::write(cache.path(), &bytes).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_own_file(cache.path()).is_none(), "one byte too long");
        bytes.truncate(MAX_RECORD);
        std::fs::write(cache.path(), &bytes).unwrap();
        assert_eq!(read_own_file(cache.path()).map(|b| b.len()), Some(MAX_RECORD));
    }

    #[test]
    fn only_a_private_regular_file_of_this_user_is_read() {
        let home = tempfile::tempdir().unwrap();
        let cache = SessionCache::in_home(home.path());
        let now = now_secs();
        // Readable by others: refused.
        cache.put(5, &device(), &session(now)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(cache.take(5, &device()).is_none());
        // A link to a record: not followed, and the record it points to is left alone.
        let elsewhere = home.path().join("elsewhere");
        SessionCache { path: elsewhere.clone() }.put(5, &device(), &session(now)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, cache.path()).unwrap();
        assert!(cache.take(5, &device()).is_none());
        assert!(elsewhere.exists());
        // A FIFO, even a private one: not waited on, not read.
        let made =
            std::process::Command::new("mkfifo").args(["-m", "600"]).arg(cache.path()).status().unwrap();
        assert!(made.success());
        assert!(read_own_file(cache.path()).is_none());
        assert!(cache.take(5, &device()).is_none());
        assert!(!cache.is_present());
        // Writing never goes through a link either.
        std::os::unix::fs::symlink(
            &elsewhere,
            cache.path().with_extension(format!("new-{}", std::process::id())),
        )
        .unwrap();
        let before = std::fs::read(&elsewhere).unwrap();
        cache.put(5, &device(), &session(now)).unwrap();
        assert_eq!(std::fs::read(&elsewhere).unwrap(), before);
        assert!(cache.take(5, &device()).is_some());
    }

    #[test]
    fn secrets_and_changes_of_who_may_use_the_token_never_travel_in_a_cached_session() {
        use pkms_protocol::request;
        let pin = b"123456".as_slice();
        assert!(may_travel(&request::GetInfo {}.into()));
        assert!(may_travel(&request::CloseSession {}.into()));
        assert!(may_travel(&request::GenerateRandom { number_of_bytes: 4 }.into()));
        assert!(!may_travel(&request::Authenticate { principal: "admin", pin }.into()));
        assert!(!may_travel(&request::ChangePin { pin, new_pin: pin }.into()));
        assert!(!may_travel(
            &request::CreatePrincipal { name: "bob", pin, role: pkms_protocol::access::Role::User }.into()
        ));
        assert!(!may_travel(&request::BackupInit { replace: false }.into()));
    }
}
