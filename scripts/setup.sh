#!/usr/bin/env bash
# Idempotent set-up for a fresh machine with only the Rust toolchain: adds the firmware target
# (RUSTUP_AUTO_INSTALL=0 here, so rustup will not do it by itself) and installs the system
# packages the token needs. Sourced or run by scripts/demo.sh and scripts/test.sh.
set -euo pipefail

say() { printf '[setup] %s\n' "$*" >&2; }

# The pinned toolchain (rust-toolchain.toml) with the Cortex-M4F target.
rustup target add thumbv7em-none-eabihf >/dev/null 2>&1 || rustup target add thumbv7em-none-eabihf

# System packages: qemu-system-arm runs the QEMU token; gcc-arm-none-eabi assembles the fast
# Cortex-M4 P-256; openssl verifies signatures in the tests and the demo.
need=()
command -v qemu-system-arm >/dev/null 2>&1 || need+=(qemu-system-arm)
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need+=(gcc-arm-none-eabi)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The KMS endpoint's tests: a Python virtual environment (python3-venv) and curl (the demo).
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v gpg >/dev/null 2>&1 || need+=(gnupg)
# The signature-format tests run the real verifiers: ssh-keygen and ssh (openssh-client), a
# loopback sshd (openssh-server), git (gpg.format=ssh), minisign.
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || command -v sshd >/dev/null 2>&1 || need+=(openssh-server)
command -v git >/dev/null 2>&1 || need+=(git)
command -v minisign >/dev/null 2>&1 || need+=(minisign)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${need[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    say "missing: ${need[*]}"
    say "install them first, e.g.: sudo apt-get install ${need[*]}"
    exit 1
  fi
fi

# The Python KMS clients of the endpoint's tests (boto3, the aws cli, the AWS Encryption SDK),
# pinned, in a virtual environment under target/ (PKMS_KMS_CLIENTS_VENV elsewhere). Made once;
# made again only when scripts/kms-clients-requirements.txt changes.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PKMS_KMS_CLIENTS_VENV:-$root/target/kms-clients-venv}"
req="$root/scripts/kms-clients-requirements.txt"
if ! cmp -s "$req" "$venv/.requirements" 2>/dev/null || [ ! -x "$venv/bin/aws" ]; then
  say "making the KMS clients' virtual environment in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$venv/.requirements"
fi

# The SLIP-39 reference implementation (PyPI shamir-mnemonic, pinned) that the backup shares are
# checked against (host-cli/lib/tests/backup_slip39.rs), in target/shamir-venv
# (PKMS_SHAMIR_VENV elsewhere). Made once.
shamir_venv="${PKMS_SHAMIR_VENV:-$root/target/shamir-venv}"
if ! "$shamir_venv/bin/python" -c 'import shamir_mnemonic' >/dev/null 2>&1; then
  say "making the SLIP-39 reference implementation's virtual environment in $shamir_venv"
  python3 -m venv "$shamir_venv"
  "$shamir_venv/bin/pip" install -q --disable-pip-version-check shamir-mnemonic==0.3.0
fi
