//! Output that appears only when complete: a temporary file in the destination's directory,
//! renamed over the destination on [`AtomicFile::commit`] and removed if dropped uncommitted.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file being written that becomes visible at `dest` only on [`AtomicFile::commit`].
pub struct AtomicFile {
    temp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file (mode 0600 on Unix) beside `dest`.
    pub fn create(dest: &Path) -> io::Result<AtomicFile> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp =
            tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".partial").tempfile_in(dir)?;
        // Unbuffered: the envelope writes whole segments, a buffer would only add a copy.
        Ok(AtomicFile { temp, dest: dest.to_path_buf() })
    }

    /// Flushes and renames the file to its destination (replacing what was there). The rename
    /// is atomic; like gpg and age, no fsync is forced (durability is the file system's).
    pub fn commit(self) -> io::Result<()> {
        self.temp.persist(&self.dest).map_err(|e| e.error)?;
        Ok(())
    }

    /// The underlying file (for size queries in tests and tools).
    pub fn file(&self) -> &File {
        self.temp.as_file()
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.temp.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.temp.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_only_after_commit_and_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"hello").unwrap();
        assert!(!dest.exists());
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");

        let mut g = AtomicFile::create(&dest).unwrap();
        g.write_all(b"partial").unwrap();
        drop(g);
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello", "old content kept");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temporary file removed");
    }
}
