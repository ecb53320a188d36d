//! The QEMU token firmware carried inside this binary (built by host-cli/lib/build.rs from
//! ../qemu) and its extraction into `$PKMS_HOME`, where QEMU loads it from.

use std::fs;
use std::io;
use std::path::Path;

/// The firmware ELF for `qemu-system-arm -M mps2-an386`.
pub static ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pkms-qemu.elf"));

/// A fingerprint of [`ELF`] (FNV-1a, hex). Recorded in the pid file: a running token whose
/// fingerprint differs was started from another build and is restarted.
pub const ID: &str = env!("PKMS_QEMU_FIRMWARE_ID");

/// Writes [`ELF`] to `path` unless the file already holds exactly these bytes. Written to a
/// temporary file and renamed, so QEMU never reads a half-written image.
pub fn extract(path: &Path) -> io::Result<()> {
    if fs::read(path).map(|existing| existing == ELF).unwrap_or(false) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("elf.tmp-{}", std::process::id()));
    fs::write(&tmp, ELF)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}
