#!/usr/bin/env bash
# Runs every Pocket KMS benchmark and writes BENCHMARKS.md (see docs/benchmarks.md):
# on-token instruction counts (QEMU -icount), through-the-protocol latency, host throughput vs
# openssl, firmware sizes. Extra arguments go to the runner (e.g. --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v qemu-system-arm >/dev/null || {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y qemu-system-arm
  else
    echo "qemu-system-arm is missing: sudo apt-get install qemu-system-arm" >&2; exit 1
  fi
}
command -v arm-none-eabi-gcc >/dev/null || {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y gcc-arm-none-eabi
  else
    echo "arm-none-eabi-gcc is missing (the P-256 assembly needs it): sudo apt-get install gcc-arm-none-eabi" >&2; exit 1
  fi
}
rustup target add thumbv7em-none-eabihf >/dev/null 2>&1 || true
exec cargo run --release -p xtask -- bench "$@"
