#!/usr/bin/env bash
# The KMS endpoint benchmark: one boto3 client and workload (Encrypt 32 B, Decrypt,
# GenerateDataKey, Sign) against `pkms serve` on the in-process token, `pkms serve` on the QEMU
# token and moto_server (moto[server] 5.2.5), in one run; then the endpoint's own overhead over a
# direct library call (the endpoint_overhead example). Prints Markdown; scripts/bench.sh puts it
# in BENCHMARKS.md. Makes its own pinned virtual environment (target/kms-bench-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${PKMS_BENCH_KMS_REQUESTS:-400}
venv="$PWD/target/kms-bench-venv"
req="$PWD/scripts/kms-bench-requirements.txt"
if ! cmp -s "$req" "$venv/.requirements" 2>/dev/null || [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  cp "$req" "$venv/.requirements"
fi
cargo build -q --release --bin pkms --example endpoint_overhead -p pkms >&2
pkms="$PWD/target/release/pkms"
work=$(mktemp -d "${TMPDIR:-/tmp}/pkms-kms-bench.XXXXXX")
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PKMS_HOME="$work/qemu-home" "$pkms" token stop >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 240); do
    python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null && return 0
    sleep 0.25
  done
  echo "nothing listens on port $1" >&2; return 1
}
p_in=$(free_port)
PKMS_HOME="$work/in-home" "$pkms" serve --region us-east-1 --device "inprocess:$work/in.flash" --listen "127.0.0.1:$p_in" >/dev/null 2>&1 &
pids+=($!)
p_qemu=$(free_port)
PKMS_HOME="$work/qemu-home" PKMS_IDLE_SECS=120 "$pkms" serve --region us-east-1 --listen "127.0.0.1:$p_qemu" >/dev/null 2>&1 &
pids+=($!)
p_moto=$(free_port)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$p_moto" >/dev/null 2>&1 &
pids+=($!)
for p in "$p_in" "$p_qemu" "$p_moto"; do wait_port "$p"; done
"$venv/bin/python" scripts/bench-kms-endpoint.py "$n" \
  "pkms serve (in-process token)=http://127.0.0.1:$p_in" \
  "pkms serve (QEMU token)=http://127.0.0.1:$p_qemu" \
  "moto_server 5.2.5=http://127.0.0.1:$p_moto"
echo
echo "The endpoint's own cost (the endpoint_overhead example, Rust aws-sdk-kms):"
echo
target/release/examples/endpoint_overhead
