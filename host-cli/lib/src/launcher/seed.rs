//! The boot seed: the token's only entropy. Every start of QEMU gets 32 fresh bytes from the
//! host's RNG in a private file (`token-seed.bin`, mode 0600, in the 0700 home), which QEMU's
//! generic loader reads while it builds the machine and places in guest RAM at
//! [`BOOT_SEED_ADDR`] before the CPU runs (`-device loader,file=…,addr=…,force-raw=on`). The
//! firmware copies the bytes into its RNG seed and wipes them (qemu/src/entropy.rs). The file is
//! removed as soon as the token has answered (by then QEMU has long read it), and whenever a
//! start fails.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

/// Bytes of the seed.
pub const BOOT_SEED_LEN: usize = 32;

/// Where QEMU places the seed in guest RAM: the BOOTSEED region of qemu/memory.x (the last 256
/// bytes of the mps2-an386's SSRAM2&3, outside every section of the firmware image).
pub const BOOT_SEED_ADDR: u32 = 0x203F_FF00;

/// A seed file on disk for one start of QEMU; removed when dropped.
#[derive(Debug)]
pub struct SeedFile {
    path: PathBuf,
}

impl SeedFile {
    /// Writes 32 fresh random bytes to `path` (mode 0600), replacing a file a crashed start may
    /// have left there. The file is created anew, so its mode is always 0600.
    pub fn create(path: &Path) -> io::Result<SeedFile> {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut seed = Zeroizing::new([0u8; BOOT_SEED_LEN]);
        OsRng.try_fill_bytes(seed.as_mut()).map_err(io::Error::other)?;
        let guard = SeedFile { path: path.to_path_buf() };
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        file.write_all(seed.as_ref())?;
        // No fsync: QEMU reads the file through the page cache, and the file is removed as
        // soon as the token answers; forcing it to the disk would only cost time and leave the
        // secret on the medium.
        Ok(guard)
    }
}

impl Drop for SeedFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The `-device` value that has QEMU place the seed file at [`BOOT_SEED_ADDR`]: raw bytes
/// (`force-raw`, so a seed that happens to start like an ELF or U-Boot header is still just
/// bytes), written through the CPU's address space.
pub fn loader_device(path: &Path) -> Vec<u8> {
    let mut arg = b"loader,file=".to_vec();
    arg.extend_from_slice(&super::process::escape_option_value(path.as_os_str()));
    arg.extend_from_slice(format!(",addr={BOOT_SEED_ADDR:#x},force-raw=on").as_bytes());
    arg
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_seed_file_is_private_fresh_and_gone_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token-seed.bin");
        fs::write(&path, b"stale seed a crashed start left behind").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

        let first = SeedFile::create(&path).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let a = fs::read(&path).unwrap();
        assert_eq!(a.len(), BOOT_SEED_LEN);
        assert_ne!(a, [0u8; BOOT_SEED_LEN]);
        drop(first);
        assert!(!path.exists(), "the seed file outlived its start");

        let _second = SeedFile::create(&path).unwrap();
        assert_ne!(fs::read(&path).unwrap(), a, "two starts got the same seed");
    }

    #[test]
    fn the_loader_argument_names_the_file_and_the_address_escaped() {
        let arg = loader_device(Path::new("/home/a,b/token-seed.bin"));
        assert_eq!(arg, b"loader,file=/home/a,,b/token-seed.bin,addr=0x203fff00,force-raw=on".to_vec());
    }
}
