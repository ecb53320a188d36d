//! The firmware image QEMU boots, and its extraction into `$PKMS_HOME`, where QEMU loads it
//! from.
//!
//! Where the image comes from, first match wins:
//! 1. [`super::LaunchOptions::firmware`], a path to an ELF; [`super::LaunchOptions::from_env`]
//!    fills it from the environment variable [`ENV_FIRMWARE`] (`PKMS_QEMU_FIRMWARE`);
//! 2. the image embedded in this build, with the cargo feature `qemu-firmware` (which the `pkms`
//!    binary turns on): `host-cli/lib/build.rs` builds `qemu/` and includes the ELF;
//! 3. none: starting a token fails with [`super::LaunchError::NoFirmware`], which says what to
//!    set.

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::Path;

use super::LaunchError;

mod fingerprint {
    include!("fingerprint.rs");
}

/// Environment variable naming the firmware ELF to boot (it overrides the embedded image). At
/// build time, with the feature `qemu-firmware`, the same variable names the ELF to embed
/// instead of building `qemu/`.
pub const ENV_FIRMWARE: &str = "PKMS_QEMU_FIRMWARE";

/// The firmware ELF embedded in this build (feature `qemu-firmware`).
#[cfg(feature = "qemu-firmware")]
pub static EMBEDDED: Option<&[u8]> = Some(include_bytes!(concat!(env!("OUT_DIR"), "/pkms-qemu.elf")));
/// No firmware is embedded in this build (the feature `qemu-firmware` is off).
#[cfg(not(feature = "qemu-firmware"))]
pub static EMBEDDED: Option<&[u8]> = None;

/// The fingerprint of [`EMBEDDED`], computed by build.rs.
#[cfg(feature = "qemu-firmware")]
const EMBEDDED_ID: &str = env!("PKMS_QEMU_FIRMWARE_ID");
#[cfg(not(feature = "qemu-firmware"))]
const EMBEDDED_ID: &str = "";

/// A firmware image with its fingerprint. The fingerprint is recorded in the pid file: a
/// running token whose fingerprint differs was started from another image and is restarted.
#[derive(Debug, Clone)]
pub struct Image {
    bytes: Cow<'static, [u8]>,
    id: String,
}

impl Image {
    /// The image embedded in this build, if any.
    pub fn embedded() -> Option<Image> {
        EMBEDDED.map(|bytes| Image { bytes: Cow::Borrowed(bytes), id: EMBEDDED_ID.to_owned() })
    }

    /// Reads an ELF file.
    pub fn load(path: &Path) -> Result<Image, LaunchError> {
        let bytes = fs::read(path)
            .map_err(|e| LaunchError::io(format!("read the firmware {}", path.display()), e))?;
        if !bytes.starts_with(b"\x7fELF") {
            return Err(LaunchError::NotElf(path.to_path_buf()));
        }
        let id = format!("{:016x}", fingerprint::fnv1a(&bytes));
        Ok(Image { bytes: Cow::Owned(bytes), id })
    }

    /// The image named by `path` if given, else the embedded one (see the module docs).
    pub fn resolve(path: Option<&Path>) -> Result<Image, LaunchError> {
        match path {
            Some(p) => Image::load(p),
            None => Image::embedded().ok_or(LaunchError::NoFirmware),
        }
    }

    /// The ELF bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Its fingerprint (FNV-1a, 16 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Writes the image to `path` unless the file already holds exactly these bytes. Written to
    /// a temporary file and renamed, so QEMU never reads a half-written image.
    pub fn extract(&self, path: &Path) -> io::Result<()> {
        if holds(path, self.bytes()) {
            return Ok(());
        }
        let tmp = path.with_extension(format!("elf.tmp-{}", std::process::id()));
        fs::write(&tmp, self.bytes())?;
        fs::rename(&tmp, path).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    }
}

/// Whether the file at `path` holds exactly `bytes`: its size first, then its contents a chunk
/// at a time (a cold start compares the 4 MiB image without reading it into a new buffer).
fn holds(path: &Path, bytes: &[u8]) -> bool {
    use std::io::Read;
    let Ok(mut file) = fs::File::open(path) else { return false };
    if file.metadata().map(|m| m.len()).ok() != u64::try_from(bytes.len()).ok() {
        return false;
    }
    let mut chunk = vec![0u8; 256 * 1024];
    let mut expected = bytes;
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return expected.is_empty(),
            Ok(n) => match (chunk.get(..n), expected.get(..n)) {
                (Some(got), Some(want)) if got == want => expected = &expected[n..],
                _ => return false,
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_file_holding_exactly_the_image_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fw.elf");
        let image: Vec<u8> = (0..600_000u32).map(|i| (i * 7 + i / 300) as u8).collect();
        assert!(!holds(&path, &image), "a missing file");
        fs::write(&path, &image).unwrap();
        assert!(holds(&path, &image));
        let mut late = image.clone();
        *late.last_mut().unwrap() ^= 1;
        assert!(!holds(&path, &late), "a difference in the last chunk");
        let mut early = image.clone();
        early[3] ^= 1;
        assert!(!holds(&path, &early), "a difference in the first chunk");
        assert!(!holds(&path, &image[..image.len() - 1]), "a longer file");
        assert!(!holds(&path, &[image.clone(), std::vec![0]].concat()), "a shorter file");
        let img = Image { bytes: Cow::Owned(late.clone()), id: String::new() };
        img.extract(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), late, "a different file is replaced");
    }

    #[test]
    fn an_image_named_at_run_time_is_read_and_fingerprinted() {
        let dir = tempfile::tempdir().unwrap();
        let elf = dir.path().join("fw.elf");
        fs::write(&elf, b"\x7fELF and the rest").unwrap();
        let image = Image::resolve(Some(&elf)).unwrap();
        assert_eq!(image.bytes(), b"\x7fELF and the rest");
        assert_eq!(image.id(), format!("{:016x}", fingerprint::fnv1a(b"\x7fELF and the rest")));
        let copy = dir.path().join("home.elf");
        image.extract(&copy).unwrap();
        assert_eq!(fs::read(&copy).unwrap(), image.bytes());
    }

    #[test]
    fn a_file_that_is_not_an_elf_or_missing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.txt");
        fs::write(&text, b"hello").unwrap();
        assert!(matches!(Image::resolve(Some(&text)), Err(LaunchError::NotElf(_))));
        let missing = Image::resolve(Some(&dir.path().join("nope.elf"))).unwrap_err();
        assert!(missing.to_string().contains("nope.elf"), "{missing}");
    }

    #[cfg(feature = "qemu-firmware")]
    #[test]
    fn without_a_path_the_embedded_image_is_used() {
        let image = Image::resolve(None).unwrap();
        assert!(image.bytes().starts_with(b"\x7fELF"));
        assert_eq!(image.id(), format!("{:016x}", fingerprint::fnv1a(image.bytes())));
    }

    #[cfg(not(feature = "qemu-firmware"))]
    #[test]
    fn without_a_path_or_an_embedded_image_the_error_says_what_to_set() {
        let e = Image::resolve(None).unwrap_err();
        assert!(matches!(e, LaunchError::NoFirmware));
        assert!(e.to_string().contains(ENV_FIRMWARE), "{e}");
    }
}
