//! Signing many files in one `pkms sign-file` command through the QEMU token (packet link): the
//! files are hashed on the host and each signature is one token Sign in the command's one
//! session, so the figure is seconds per file of the whole process, token start excluded (the
//! token is warm: the key was just created on it).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::protocol::TempHome;

/// Files per command.
pub const FILES: usize = 100;
/// Bytes per file.
const FILE_BYTES: usize = 4096;

/// One timed command.
pub struct FilesSigning {
    /// Files signed.
    pub files: usize,
    /// Seconds for the whole command.
    pub total_s: f64,
}

impl FilesSigning {
    /// Seconds per file.
    pub fn per_file_s(&self) -> f64 {
        self.total_s / self.files.max(1) as f64
    }
}

/// Times `pkms sign-file --format FORMAT` of `files` files with a new SIGN_VERIFY key of
/// `key_spec`, on a fresh QEMU token; every signature file must be there afterwards
/// (`extension`: `sig`, `minisig`, `asc`).
pub fn sign_files(
    pkms: &Path,
    format: &str,
    key_spec: &str,
    extension: &str,
    files: usize,
) -> Result<FilesSigning, String> {
    let home = TempHome::new(&format!("sign-{format}")).map_err(|e| format!("n/a (temp dir: {e})"))?;
    let run = |args: &[&str]| -> Result<String, String> {
        let out = Command::new(pkms)
            .env("PKMS_HOME", &home.0)
            .env("PKMS_LINK", "ethernet")
            .env_remove("PKMS_DEVICE")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("n/a (pkms: {e})"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!("n/a (pkms {}: {})", args[0], err.lines().next().unwrap_or("failed")));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let json =
        run(&["create-key", "--key-spec", key_spec, "--key-usage", "SIGN_VERIFY", "--output", "json"])?;
    let key_id =
        crate::protocol::json_string_field(&json, "KeyId").ok_or("n/a (create-key printed no KeyId)")?;
    let dir = home.0.join("artifacts");
    std::fs::create_dir_all(&dir).map_err(|e| format!("n/a ({e})"))?;
    let mut paths = Vec::with_capacity(files);
    for i in 0..files {
        let p = dir.join(format!("artifact-{i:03}.bin"));
        std::fs::write(&p, vec![i as u8; FILE_BYTES]).map_err(|e| format!("n/a ({e})"))?;
        paths.push(p.display().to_string());
    }
    let mut args = vec!["sign-file", "--key-id", key_id.as_str(), "--format", format];
    args.extend(paths.iter().map(String::as_str));
    let t = Instant::now();
    run(&args)?;
    let total_s = t.elapsed().as_secs_f64();
    if let Some(missing) = paths.iter().find(|p| !Path::new(&format!("{p}.{extension}")).exists()) {
        return Err(format!("n/a ({missing}.{extension} was not written)"));
    }
    Ok(FilesSigning { files, total_s })
}
