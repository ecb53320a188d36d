//! Backups through the QEMU token: the export and the restore of a token holding 100 key
//! versions (25 keys of 4 versions), each timed end to end over the packet link (every chunk a
//! round trip in a session), and the token RAM an export needs.

use std::time::Instant;

use pkms_lib::backup::{self, BackupFile};
use pkms_lib::launcher::{LaunchOptions, Link};
use pkms_lib::model::CreateKeyParams;
use pkms_lib::{connect, Client};
use pkms_protocol::request;

/// What was measured.
pub struct BackupFigures {
    /// Key versions the token held.
    pub versions: usize,
    /// Seconds for the export, per 100 key versions.
    pub export_s: f64,
    /// Seconds for the restore onto a fresh token, per 100 key versions.
    pub restore_s: f64,
    /// Chunks and file bytes.
    pub chunks: u32,
    pub bytes: u64,
}

const KEYS: usize = 25;
const VERSIONS: usize = 4;

fn session(home: &std::path::Path) -> Result<Client, String> {
    let opts = LaunchOptions { link: Link::Ethernet, ..LaunchOptions::from_env() };
    let mut client = connect::open_qemu_with(home, &opts).map_err(|e| format!("n/a (QEMU token: {e})"))?;
    let key = client.device_key().map_err(|e| format!("n/a ({e})"))?;
    client.open_session(&key).map_err(|e| format!("n/a ({e})"))?;
    Ok(client)
}

/// Fills a token (open: no PIN needed), exports it, restores it on a second fresh token.
pub fn run(source: &std::path::Path, target: &std::path::Path) -> Result<BackupFigures, String> {
    let e = |e: pkms_lib::Error| format!("n/a (error: {e})");
    let mut a = session(source)?;
    for _ in 0..KEYS {
        let params = CreateKeyParams { description: "bench".into(), ..CreateKeyParams::default() };
        let id = a.create_key(&params).map_err(e)?.key_id.to_string();
        for _ in 1..VERSIONS {
            a.rotate_key_on_demand(&id).map_err(e)?;
        }
    }
    let secret = a.call(request::BackupInit { replace: false }).map_err(e)?;
    let mut file = Vec::new();
    let t = Instant::now();
    let summary = backup::export(&mut a, None, &mut file).map_err(e)?;
    let export = t.elapsed().as_secs_f64();
    let parsed = BackupFile::parse(&file).map_err(e)?;
    let mut b = session(target)?;
    let t = Instant::now();
    backup::restore(&mut b, &parsed, Some(&secret)).map_err(e)?;
    let restore = t.elapsed().as_secs_f64();
    let versions = KEYS * VERSIONS;
    let info = b.get_info().map_err(e)?;
    if info.key_count as usize != KEYS {
        return Err(format!("n/a (the restored token holds {} keys, not {KEYS})", info.key_count));
    }
    let per100 = 100.0 / versions as f64;
    Ok(BackupFigures {
        versions,
        export_s: export * per100,
        restore_s: restore * per100,
        chunks: summary.chunks,
        bytes: summary.bytes,
    })
}

/// [`run`] on two temporary homes (their tokens stopped and removed afterwards).
pub fn measure() -> Result<BackupFigures, String> {
    use crate::protocol::TempHome;
    match (TempHome::new("backup-a"), TempHome::new("backup-b")) {
        (Ok(a), Ok(b)) => run(&a.0, &b.0),
        (Err(e), _) | (_, Err(e)) => Err(format!("n/a (temp dir: {e})")),
    }
}

/// The token RAM an export needs, in bytes: the state it keeps between requests, and the
/// buffers of the token it works in (the response buffer that holds the chunk, the key slot, the
/// work buffer one record body passes through), which every request already has.
pub fn export_ram() -> (usize, usize) {
    let state = std::mem::size_of::<pkms_firmware::backup::Transfer>();
    let buffers = pkms_protocol::backup::CHUNK_MAX
        + pkms_protocol::backup::TAG_LEN
        + std::mem::size_of::<pkms_firmware::records::KeyRecord>()
        + pkms_firmware::records::MAX_PAYLOAD;
    (state, buffers)
}
