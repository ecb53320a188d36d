#!/usr/bin/env bash
# Builds the nRF52840 USB token firmware for both board layouts with warnings as errors, and prints
# a size report: flash and RAM used against the chip's 1 MiB flash and 256 KiB RAM (the budget is
# 60% of each). Then lints the board crate and its support crate (clippy, -D warnings) and runs the
# support crate's host tests (the USB packet loop, NVMC rules, DRBG, button). Exits non-zero if a
# build, lint or test fails or a layout exceeds the budget.
#
#   scripts/build-nrf52840.sh                 # DK and Dongle, lints, host tests
#   scripts/build-nrf52840.sh dk              # one layout
#   NRF_SKIP_TESTS=1 scripts/build-nrf52840.sh   # builds and size report only
#
# The ELFs are copied to firmware/nrf52840/target/pkms-nrf52840-<board>.elf (and .hex when
# arm-none-eabi-objcopy is installed) for flashing; see docs/hardware.md.
set -euo pipefail

root="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
fw="$root/firmware/nrf52840"
target=thumbv7em-none-eabihf
flash_total=$((1024 * 1024))
ram_total=$((256 * 1024))
budget_pct=60
if [ $# -eq 0 ]; then boards=(dk dongle); else boards=("$@"); fi

rustup target add "$target" >/dev/null 2>&1 || rustup target add "$target"

# Flash: allocated sections with contents (.vector_table, .text, .rodata, .data's load image).
# RAM: allocated writable sections (.data, .bss, .uninit). Same rules as the acceptance check.
elf_size() {
  python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
assert data[:4] == b'\x7fELF' and data[4] == 1, 'not a 32-bit ELF'
shoff, = struct.unpack_from('<I', data, 0x20)
shentsize, shnum, _ = struct.unpack_from('<HHH', data, 0x2e)
flash = ram = 0
for i in range(shnum):
    _, typ, flags, _, _, size, *_ = struct.unpack_from('<IIIIIIIIII', data, shoff + i * shentsize)
    if not flags & 2 or size == 0:
        continue
    if typ == 1:
        flash += size
    if flags & 1:
        ram += size
print(flash, ram)
PY
}

status=0
printf '%-8s %10s %7s %10s %7s\n' board flash "%" ram "%"
for board in "${boards[@]}"; do
  case "$board" in
    dk) features=() ;;
    dongle) features=(--no-default-features --features dongle) ;;
    *) echo "unknown board '$board' (dk or dongle)" >&2; exit 2 ;;
  esac
  if ! (cd "$fw" && RUSTFLAGS="-D warnings" cargo build -q --release --target "$target" "${features[@]}"); then
    echo "FAILED: nRF52840 firmware ($board) does not build warning-free" >&2
    exit 1
  fi
  elf="$fw/target/pkms-nrf52840-$board.elf"
  cp "$fw/target/$target/release/pkms-nrf52840" "$elf"
  if command -v arm-none-eabi-objcopy >/dev/null; then
    arm-none-eabi-objcopy -O ihex "$elf" "${elf%.elf}.hex"
  fi
  read -r flash ram < <(elf_size "$elf")
  printf '%-8s %10d %6.1f%% %10d %6.1f%%\n' "$board" "$flash" "$(python3 -c "print(100*$flash/$flash_total)")" \
    "$ram" "$(python3 -c "print(100*$ram/$ram_total)")"
  if [ "$flash" -gt $((flash_total * budget_pct / 100)) ] || [ "$ram" -gt $((ram_total * budget_pct / 100)) ]; then
    echo "FAILED: $board exceeds ${budget_pct}% of flash or RAM" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] || exit "$status"

if [ -z "${NRF_SKIP_TESTS:-}" ]; then
  echo "clippy (board crate for the target, support crate with its tests), warnings are errors"
  (cd "$fw" && cargo clippy -q --release --target "$target" -- -D warnings)
  (cd "$fw" && cargo clippy -q -p pkms-nrf52840-support --all-targets -- -D warnings)
  echo "host tests of the hardware-independent half (pkms-nrf52840-support)"
  (cd "$fw" && cargo test -q -p pkms-nrf52840-support 2>&1 | grep -E '^test result|panicked|FAILED|^error' ; exit "${PIPESTATUS[0]}")
fi
