#!/usr/bin/env bash
# The whole test suite: format, lints, every firmware build (warnings are errors), the host unit
# tests, the end-to-end suites against the in-process token and the QEMU token, and the CLI tests.
# Does its own set-up (scripts/setup.sh). `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

start=$(date +%s)
logs=$(mktemp -d "${TMPDIR:-/tmp}/pkms-test.XXXXXX")
step() { printf '\n=== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy, warnings are errors (host workspace)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "QEMU token firmware (thumbv7em-none-eabihf), warnings are errors"
(cd qemu && cargo clippy --release --quiet -- -D warnings)

step "nRF52840 token firmware, both layouts, warnings are errors, size report"
scripts/build-nrf52840.sh 2>&1 | tee "$logs/nrf.log"

step "benchmark firmware builds (not run: scripts/bench.sh runs it)"
(cd bench/firmware && cargo clippy --release --quiet -- -D warnings)

step "tests: unit, in-process and QEMU end-to-end, CLI (release build: the crypto is slow in debug)"
set +e +o pipefail
cargo test --workspace --release 2>&1 | tee "$logs/test.log" | grep -E '^(test result|running|error|failures|---- |thread )'
rc=${PIPESTATUS[0]}
set -e -o pipefail
if [ "$rc" -ne 0 ] || grep -qE '^test result: FAILED' "$logs/test.log"; then
  grep -E 'panicked|FAILED|^error' "$logs/test.log" | head -40
  echo "TESTS FAILED (cargo test exit status $rc; full log: $logs/test.log)"
  exit 1
fi
step "the QEMU board's build of the token core (secp256k1 generator table): stack wipe and secp256k1 signing"
cargo test --release -p pkms-firmware --features secp256k1-tables --test stack_wipe 2>&1 | tee -a "$logs/test.log" | grep -E '^(test result|error|---- |thread )'
if grep -qE '^test result: FAILED' "$logs/test.log"; then
  echo "TESTS FAILED (secp256k1-tables; full log: $logs/test.log)"
  exit 1
fi
step "the KMS endpoint against boto3, the aws cli, the AWS Encryption SDK and curl (QEMU token)"
scripts/test-kms-clients.sh

step "fuzz targets build and run (8 s each; scripts/fuzz.sh SECONDS for longer runs)"
scripts/fuzz.sh 8

step "power-cut proofs: cut points exercised (they ran above; shown here with their counts)"
cargo test --release -q -p pkms-firmware -- --nocapture cut 2>&1 | grep -E 'cut points|power-cut points' | sed 's/^\.*//' || true

passed=$(cat "$logs/test.log" "$logs/nrf.log" | grep -oE '^test result: ok\. [0-9]+ passed' | awk '{s+=$4} END {print s+0}')
failed=$(cat "$logs/test.log" "$logs/nrf.log" | grep -oE '^test result: .* [0-9]+ failed' | grep -oE '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')

step "done"
echo "${passed} passed, ${failed} failed"
