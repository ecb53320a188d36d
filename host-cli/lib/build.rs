//! With the cargo feature `qemu-firmware` (the `pkms` binary turns it on): builds the QEMU
//! token firmware (`qemu/`, a separate workspace for thumbv7em-none-eabihf) and hands the ELF to
//! `src/launcher/firmware.rs` through `OUT_DIR`, so the binary carries the firmware it launches:
//! after `cargo build --release` on a clean clone, nothing else needs to be built or installed
//! (except `qemu-system-arm` itself). Without the feature this script does nothing: no firmware
//! is cross-compiled, and the launcher takes the ELF at run time (`PKMS_QEMU_FIRMWARE`).
//!
//! * The nested build runs `cargo build --release` in `../qemu` with its own target directory
//!   (`<target>/qemu-firmware`) and without the variables the outer build leaks
//!   (RUSTFLAGS, CARGO_BUILD_TARGET, CARGO_TARGET_DIR, jobserver, feature/cfg variables…).
//! * RUSTUP_AUTO_INSTALL=0 machines do not add the target by themselves: if the sysroot has no
//!   thumbv7em-none-eabihf, `rustup target add thumbv7em-none-eabihf` runs first.
//! * `PKMS_QEMU_FIRMWARE=/path/to/elf` skips the nested build and embeds that file instead.
//!
//! Emits `PKMS_QEMU_FIRMWARE_ID` (an FNV-1a hash of the ELF, hex, `src/launcher/fingerprint.rs`):
//! the launcher restarts a running token whose firmware differs from the one it carries.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TARGET: &str = "thumbv7em-none-eabihf";
const ELF_NAME: &str = "pkms-qemu";
/// Name of the ELF in OUT_DIR; `src/launcher/firmware.rs` includes it.
const EMBEDDED_NAME: &str = "pkms-qemu.elf";

mod fingerprint {
    include!("src/launcher/fingerprint.rs");
}
use fingerprint::fnv1a;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var_os("CARGO_FEATURE_QEMU_FIRMWARE").is_none() {
        return;
    }
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("host-cli/lib sits two levels below the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=src/launcher/fingerprint.rs");
    println!("cargo:rerun-if-env-changed=PKMS_QEMU_FIRMWARE");

    let elf = match env::var_os("PKMS_QEMU_FIRMWARE") {
        Some(path) => PathBuf::from(path),
        None => {
            watch_sources(&root);
            build_firmware(&root, &out_dir)
        }
    };
    let bytes =
        fs::read(&elf).unwrap_or_else(|e| panic!("cannot read the QEMU firmware {}: {e}", elf.display()));
    if !bytes.starts_with(b"\x7fELF") {
        panic!("{} is not an ELF file", elf.display());
    }
    fs::write(out_dir.join(EMBEDDED_NAME), &bytes).expect("write the firmware into OUT_DIR");
    println!("cargo:rustc-env=PKMS_QEMU_FIRMWARE_ID={:016x}", fnv1a(&bytes));
}

/// Rebuild when the firmware or anything it is made of changes.
fn watch_sources(root: &Path) {
    let watched = [
        "qemu/src",
        "qemu/Cargo.toml",
        "qemu/build.rs",
        "qemu/memory.x",
        "qemu/device.x",
        "qemu/.cargo/config.toml",
        "firmware/src",
        "firmware/Cargo.toml",
        "firmware/p256-backend/src",
        "firmware/p256-backend/Cargo.toml",
        "protocol/src",
        "protocol/Cargo.toml",
        "rust-toolchain.toml",
    ];
    for path in watched {
        let path = root.join(path);
        // A path that does not exist would make cargo rerun this script on every build.
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

fn build_firmware(root: &Path, out_dir: &Path) -> PathBuf {
    ensure_target_installed();
    let qemu_dir = root.join("qemu");
    let target_dir = outer_target_dir(out_dir).join("qemu-firmware");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // The nested cargo must read qemu/.cargo/config.toml (target, linker scripts): config is
    // found from the working directory, not from --manifest-path.
    cmd.current_dir(&qemu_dir)
        .args(["build", "--release", "--target", TARGET, "--bin", ELF_NAME])
        .arg("--target-dir")
        .arg(&target_dir)
        .stdin(Stdio::null());
    scrub_env(&mut cmd);
    let output = cmd.output().unwrap_or_else(|e| panic!("cannot run cargo for the QEMU firmware: {e}"));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "building the QEMU token firmware (cd qemu && cargo build --release) failed:\n{}",
            tail.join("\n")
        );
    }
    target_dir.join(TARGET).join("release").join(ELF_NAME)
}

/// Removes what the outer build sets for its own compilation and must not steer the nested one.
fn scrub_env(cmd: &mut Command) {
    const NAMED: &[&str] = &[
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_PROFILE_RELEASE_OPT_LEVEL",
        "CARGO_PROFILE_RELEASE_LTO",
        "CARGO_PROFILE_RELEASE_PANIC",
        "TARGET",
        "HOST",
        "OUT_DIR",
        "OPT_LEVEL",
        "PROFILE",
        "DEBUG",
        "NUM_JOBS",
        "RUSTC_LINKER",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ];
    for name in NAMED {
        cmd.env_remove(name);
    }
    for (name, _) in env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if ["CARGO_FEATURE_", "CARGO_CFG_", "CARGO_PKG_", "DEP_"].iter().any(|p| name.starts_with(p)) {
            cmd.env_remove(name);
        }
    }
}

/// The outer target directory: the nearest ancestor of OUT_DIR holding cargo's CACHEDIR.TAG
/// (so debug and release host builds share one firmware build).
fn outer_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out_dir.to_path_buf())
}

/// Adds the firmware target with rustup if the compiler's sysroot lacks it.
fn ensure_target_installed() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(sysroot) = sysroot {
        if sysroot.join("lib/rustlib").join(TARGET).join("lib").is_dir() {
            return;
        }
    }
    let status = Command::new("rustup").args(["target", "add", TARGET]).stdin(Stdio::null()).status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("`rustup target add {TARGET}` failed ({s}); run it by hand, then build again"),
        Err(e) => panic!(
            "the Rust target {TARGET} is missing and rustup could not be run ({e}); \
             install the target for this toolchain, then build again"
        ),
    }
}
