//! Firmware image size (flash, RAM) of every board, from the release ELF's section headers.

use std::path::Path;

use crate::firmware::{cargo_build_release_args, TARGET};

/// One board's figure.
pub struct BoardSize {
    pub board: &'static str,
    pub result: Result<(u64, u64), String>,
}

/// (board name, directory, ELF name, extra cargo arguments).
const BOARDS: &[(&str, &str, &str, &[&str])] = &[
    ("QEMU mps2-an386 (qemu/)", "qemu", "pkms-qemu", &[]),
    ("nRF52840-DK (firmware/nrf52840/)", "firmware/nrf52840", "pkms-nrf52840", &[]),
];

pub fn run(root: &Path) -> Vec<BoardSize> {
    BOARDS
        .iter()
        .map(|&(board, dir, elf, extra)| {
            let dir = root.join(dir);
            let result = if !dir.join("Cargo.toml").exists() {
                Err("n/a (board not in the repository yet)".to_string())
            } else {
                eprintln!("[bench]   building {board}");
                let mut args = vec!["build", "--release", "--target", TARGET];
                args.extend_from_slice(extra);
                cargo_build_release_args(&dir, &args)
                    .map_err(|e| format!("n/a (build failed: {e})"))
                    .and_then(|()| {
                        let path = dir.join("target").join(TARGET).join("release").join(elf);
                        let data =
                            std::fs::read(&path).map_err(|e| format!("n/a ({}: {e})", path.display()))?;
                        crate::elf::sizes(&data)
                    })
            };
            BoardSize { board, result }
        })
        .collect()
}
