#!/bin/sh
# The runner of `cargo run` in qemu/ (.cargo/config.toml): boots the firmware ELF given as the
# first argument under QEMU with a throw-away flash and a fresh boot seed, as the launcher does
# (host-cli/lib/src/launcher/seed.rs): 32 bytes from /dev/urandom that QEMU's generic loader places
# at 0x203fff00 (the BOOTSEED region of memory.x). The seed never has a name while QEMU runs: the
# file is opened as fd 3 and unlinked at once, and QEMU reads it through /dev/fd/3. -no-reboot: a
# guest reset ends QEMU rather than booting again over the same seed.
set -eu
elf=$1
shift
umask 077
seed=$(mktemp)
head -c 32 /dev/urandom >"$seed"
exec 3<"$seed"
rm -f "$seed"
exec qemu-system-arm -M mps2-an386 -nographic -monitor none \
    -device loader,file=/dev/fd/3,addr=0x203fff00,force-raw=on -no-reboot \
    -semihosting-config enable=on,target=native -kernel "$elf" "$@"
