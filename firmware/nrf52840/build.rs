//! Selects the memory layout of the chosen board (cargo feature `dk`, the default, or `dongle`):
//! copies `memory-<board>.x` to `$OUT_DIR/memory.x` for cortex-m-rt's `link.x`, and writes
//! `$OUT_DIR/layout.rs` with the key store's address and length read from the same file, so the
//! linker and the firmware can never disagree about where the key store is.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let dk = env::var_os("CARGO_FEATURE_DK").is_some();
    let dongle = env::var_os("CARGO_FEATURE_DONGLE").is_some();
    let board = match (dk, dongle) {
        (true, true) => panic!("choose one board: features `dk` and `dongle` are exclusive (use --no-default-features --features dongle)"),
        (true, false) => "dk",
        (false, true) => "dongle",
        (false, false) => panic!("choose a board: feature `dk` (default) or `dongle`"),
    };
    let source = format!("memory-{board}.x");
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-changed=build.rs");
    let text = fs::read_to_string(&source).unwrap_or_else(|e| panic!("{source}: {e}"));
    let (origin, length) =
        region(&text, "KEYSTORE").unwrap_or_else(|| panic!("{source}: no KEYSTORE region"));
    assert!(
        origin % 4096 == 0 && length % 4096 == 0 && length > 0,
        "{source}: KEYSTORE must be whole 4 KiB pages"
    );

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    fs::write(out.join("memory.x"), &text).expect("write memory.x");
    fs::write(
        out.join("layout.rs"),
        format!(
            "/// Board selected at build time.\npub const BOARD: &str = \"nrf52840-{board}\";\n\
             /// Absolute address of the key store's first byte ({source}).\npub const KEYSTORE_START: u32 = {origin:#010x};\n\
             /// Length of the key store in bytes ({source}).\npub const KEYSTORE_LEN: u32 = {length:#010x};\n"
        ),
    )
    .expect("write layout.rs");

    // Link arguments only for the firmware target (RUSTFLAGS from the environment would replace
    // rustflags set in .cargo/config.toml, so they live here).
    if env::var("TARGET").is_ok_and(|t| t.starts_with("thumb")) {
        println!("cargo:rustc-link-search={}", out.display());
        println!("cargo:rustc-link-arg-bins=--nmagic");
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
    }
}

/// Finds `NAME : ORIGIN = 0x..., LENGTH = 0x...` in a MEMORY block.
fn region(text: &str, name: &str) -> Option<(u32, u32)> {
    let line = text.lines().find(|l| l.trim_start().starts_with(name) && l.contains("ORIGIN"))?;
    let number = |key: &str| -> Option<u32> {
        let rest = &line[line.find(key)? + key.len()..];
        let rest = rest.trim_start().strip_prefix('=')?.trim_start();
        let hex: String = rest.strip_prefix("0x")?.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        u32::from_str_radix(&hex, 16).ok()
    };
    Some((number("ORIGIN")?, number("LENGTH")?))
}
