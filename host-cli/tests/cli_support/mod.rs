//! Helpers of the `cli_*` tests: run the built `pkms` binary with a private `PKMS_HOME` (and
//! optionally a device), parse its JSON, and make sure no QEMU outlives a test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod flows;

use base64::Engine as _;
use serde_json::Value;

/// A private environment for `pkms` runs. Dropping it kills any QEMU started for its home.
pub struct Env {
    dir: tempfile::TempDir,
    device: Option<String>,
    link: Option<&'static str>,
}

impl Env {
    /// Runs use the default device: the QEMU token of a private `PKMS_HOME`.
    pub fn qemu() -> Self {
        let dir = tempfile::Builder::new().prefix("pkms-cli").tempdir().expect("temporary directory");
        Env { dir, device: None, link: None }
    }

    /// As [`Env::qemu`], reaching the token over `link` (`PKMS_LINK`: `ethernet` or `uart`).
    pub fn qemu_over(link: &'static str) -> Self {
        let mut env = Self::qemu();
        env.link = Some(link);
        env
    }

    /// Runs use the in-process token, its flash in a file of the private directory.
    pub fn in_process() -> Self {
        let dir = tempfile::Builder::new().prefix("pkms-cli").tempdir().expect("temporary directory");
        let device = format!("inprocess:{}", dir.path().join("flash.bin").display());
        Env { dir, device: Some(device), link: None }
    }

    /// The private `PKMS_HOME`.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A path for test files.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a test file and returns `fileb://PATH`.
    pub fn fileb(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.file(name);
        std::fs::write(&p, bytes).expect("write test file");
        format!("fileb://{}", p.display())
    }

    /// A `pkms` command with this environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pkms"));
        // An empty fake sysfs: a USB token plugged into this machine is not picked by default.
        cmd.args(args)
            .env("PKMS_HOME", self.home())
            .env("PKMS_IDLE_SECS", "60")
            .env("PKMS_USB_SYSFS", self.dir.path().join("no-usb"))
            .env_remove("PKMS_DEVICE")
            .env_remove("PKMS_LINK")
            // ARNs name the default region and account unless a test says otherwise.
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("PKMS_ACCOUNT_ID");
        if let Some(link) = self.link {
            cmd.env("PKMS_LINK", link);
        }
        if let Some(d) = &self.device {
            cmd.env("PKMS_DEVICE", d);
        }
        cmd
    }

    /// Runs `pkms ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run pkms")
    }

    /// Runs `pkms ARGS`, asserts success, parses stdout as JSON.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(out.status.success(), "pkms {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("pkms {args:?}: stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
        })
    }

    /// Runs `pkms ARGS`, asserts failure with `status`, returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str], status: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(status), "pkms {args:?}: stderr {stderr}");
        stderr
    }
}

impl Drop for Env {
    /// Stops the home's token with `pkms token stop`; should that fail, kills it anyway, so no
    /// test leaves a QEMU behind.
    fn drop(&mut self) {
        if self.device.is_none() && Path::new(&self.home()).exists() {
            let stopped = self.run(&["token", "stop"]).status.success();
            if pkms_lib::launcher::kill_token(&self.home()) > 0 || !stopped {
                eprintln!("`pkms token stop` left a QEMU running for {}", self.home().display());
            }
        }
    }
}

/// A string field of a JSON value, by dotted path.
#[track_caller]
pub fn field(v: &Value, path: &str) -> String {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur.get(part).unwrap_or_else(|| panic!("no {path} in {v}"));
    }
    match cur {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The key ARN the CLI prints for `key_id` with the default region and account.
pub fn key_arn(key_id: &str) -> String {
    format!("arn:aws:kms:us-east-1:111122223333:key/{key_id}")
}

/// Decodes base64.
pub fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s.trim()).expect("base64")
}

/// The `__type` of the JSON error printed on stderr (after any warning lines, such as the one
/// an uninitialised token gets).
#[track_caller]
pub fn error_type(stderr: &str) -> String {
    let start = if stderr.starts_with('{') { 0 } else { stderr.find("\n{").map_or(0, |i| i + 1) };
    let v: Value = serde_json::from_str(&stderr[start..])
        .unwrap_or_else(|e| panic!("stderr is not a JSON error ({e}): {stderr}"));
    field(&v, "__type")
}

/// Lays out a fake sysfs (as `PKMS_USB_SYSFS` expects) with one Pocket KMS token per name; the
/// device nodes are plain files, so opening one fails with its path in the message.
pub fn fake_usb_tokens(root: &std::path::Path, names: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        let bus = format!("1-{}", i + 1);
        let usb_device = root.join("sys/devices/pci0000:00/0000:00:14.0/usb1").join(&bus);
        let interface = usb_device.join(format!("{bus}:1.0"));
        std::fs::create_dir_all(interface.join("tty").join(name)).unwrap();
        for (k, v) in
            [("idVendor", "1209"), ("idProduct", "0001"), ("product", "Pocket KMS"), ("serial", "X")]
        {
            std::fs::write(usb_device.join(k), format!("{v}\n")).unwrap();
        }
        let class = root.join("sys/class/tty").join(name);
        std::fs::create_dir_all(&class).unwrap();
        std::os::unix::fs::symlink(&interface, class.join("device")).unwrap();
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::write(root.join("dev").join(name), b"").unwrap();
    }
}
