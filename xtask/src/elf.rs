//! Flash and RAM use of a 32-bit little-endian ELF from its section headers, counted as
//! ../shared/acceptance/elfsize.py counts them: flash = allocated PROGBITS sections (code,
//! read-only data, and .data's initial values); RAM = allocated writable sections (.data, .bss,
//! .uninit; stack reservations are not sections and are excluded).

/// (flash bytes, RAM bytes), or why the file is not a usable ELF.
pub fn sizes(data: &[u8]) -> Result<(u64, u64), String> {
    if data.len() < 0x34 || &data[..4] != b"\x7fELF" || data[4] != 1 || data[5] != 1 {
        return Err("not a 32-bit little-endian ELF".into());
    }
    let u16_at = |at: usize| data.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |at: usize| data.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let bad = || "truncated ELF".to_string();
    let shoff = u32_at(0x20).ok_or_else(bad)? as usize;
    let shentsize = u16_at(0x2e).ok_or_else(bad)? as usize;
    let shnum = u16_at(0x30).ok_or_else(bad)? as usize;
    const SHF_WRITE: u32 = 1;
    const SHF_ALLOC: u32 = 2;
    const SHT_PROGBITS: u32 = 1;
    let (mut flash, mut ram) = (0u64, 0u64);
    for i in 0..shnum {
        let base = shoff + i * shentsize;
        let typ = u32_at(base + 4).ok_or_else(bad)?;
        let flags = u32_at(base + 8).ok_or_else(bad)?;
        let size = u64::from(u32_at(base + 20).ok_or_else(bad)?);
        if flags & SHF_ALLOC == 0 || size == 0 {
            continue;
        }
        if typ == SHT_PROGBITS {
            flash += size;
        }
        if flags & SHF_WRITE != 0 {
            ram += size;
        }
    }
    Ok((flash, ram))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(typ: u32, flags: u32, size: u32) -> [u8; 40] {
        let mut s = [0u8; 40];
        s[4..8].copy_from_slice(&typ.to_le_bytes());
        s[8..12].copy_from_slice(&flags.to_le_bytes());
        s[20..24].copy_from_slice(&size.to_le_bytes());
        s
    }

    #[test]
    fn counts_progbits_as_flash_and_writable_as_ram() {
        let mut elf = vec![0u8; 0x34];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 1;
        elf[5] = 1;
        elf[0x20..0x24].copy_from_slice(&0x34u32.to_le_bytes());
        elf[0x2e..0x30].copy_from_slice(&40u16.to_le_bytes());
        elf[0x30..0x32].copy_from_slice(&5u16.to_le_bytes());
        elf.extend_from_slice(&section(0, 0, 0)); // null
        elf.extend_from_slice(&section(1, 2, 1000)); // .text: flash
        elf.extend_from_slice(&section(1, 3, 100)); // .data: flash and RAM
        elf.extend_from_slice(&section(8, 3, 500)); // .bss: RAM
        elf.extend_from_slice(&section(1, 0, 7777)); // .debug: neither
        assert_eq!(sizes(&elf), Ok((1100, 600)));
    }

    #[test]
    fn refuses_non_elf_and_truncated_input() {
        assert!(sizes(b"hello").is_err());
        let mut elf = vec![0u8; 0x34];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 1;
        elf[5] = 1;
        elf[0x20..0x24].copy_from_slice(&0x34u32.to_le_bytes());
        elf[0x2e..0x30].copy_from_slice(&40u16.to_le_bytes());
        elf[0x30..0x32].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(sizes(&elf), Err("truncated ELF".into()));
    }
}
