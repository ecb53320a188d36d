#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer, nightly): builds every target in fuzz/, runs
# each for SECONDS (default 10) from its committed seeds (fuzz/corpus/TARGET) plus what earlier
# runs found (target/fuzz-corpus/TARGET), and prints one line per target: executions and
# crashes. Crash inputs go to target/fuzz-artifacts/TARGET/ (reproduce one with
# `cargo +nightly fuzz run TARGET FILE`). Exit status 1 if any target crashed.
# Installs the nightly toolchain and cargo-fuzz if they are missing. See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

mkdir -p target
if ! cargo +nightly fuzz build >target/fuzz-build.log 2>&1; then
  tail -30 target/fuzz-build.log
  echo "building the fuzz targets failed (target/fuzz-build.log)"
  exit 1
fi
status=0
for t in $(cargo +nightly fuzz list); do
  work="target/fuzz-corpus/$t"
  artifacts="target/fuzz-artifacts/$t"
  mkdir -p "$work" "$artifacts"
  before=$(find "$artifacts" -type f | wc -l)
  log="$artifacts/last-run.log"
  set +e
  cargo +nightly fuzz run "$t" "$work" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  set -e
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  crashes=$(( $(find "$artifacts" -type f ! -name last-run.log | wc -l) - before + 0 ))
  [ "$crashes" -lt 0 ] && crashes=0
  if grep -q 'Test unit written' "$log" && [ "$crashes" -eq 0 ]; then crashes=1; fi
  printf '%-18s %10s executions in %s s, %s crashes\n' "$t" "${execs:-0}" "$seconds" "$crashes"
  if [ "$crashes" -ne 0 ]; then
    status=1
    grep -E 'panicked|Test unit written|SUMMARY' "$log" | head -5 | sed 's/^/    /'
  fi
done
exit "$status"
