#!/usr/bin/env bash
# Builds (clang, -DSMC_FUZZ=ON) and runs every libFuzzer target for a while.
#
#   scripts/fuzz.sh [BUILD_DIR]      (default build-fuzz)
#
# FUZZ_SECONDS per target (default 60). Each target starts from its seed corpus
# tests/fuzz/corpus/<name>/ (read only) and keeps what it finds in
# BUILD_DIR/fuzz-corpus/<name>/. A crash leaves its input under
# BUILD_DIR/fuzz-artifacts/ and makes this script exit non-zero.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build-fuzz}"
SECONDS_EACH="${FUZZ_SECONDS:-60}"

if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz.sh: clang not found; skipping fuzzing (scripts/deps.sh test installs it)"
  exit 0
fi

CC=clang cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSMC_FUZZ=ON -DSMC_BUILD_TESTS=ON >/dev/null
cmake --build "$BUILD" --target fuzz_targets

shopt -s nullglob
targets=("$ROOT"/tests/fuzz/fuzz_*.c)
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "fuzz.sh: no fuzz targets in tests/fuzz"
  exit 0
fi

status=0
for src in "${targets[@]}"; do
  name="$(basename "$src" .c)"
  bin="$BUILD/tests/fuzz/$name"
  work="$BUILD/fuzz-corpus/$name"
  arts="$BUILD/fuzz-artifacts"
  mkdir -p "$work" "$arts"
  dirs=("$work")
  if [[ -d "$ROOT/tests/fuzz/corpus/$name" ]]; then
    dirs+=("$ROOT/tests/fuzz/corpus/$name")
  fi
  log="$BUILD/fuzz-$name.log"
  echo "fuzz.sh: $name for ${SECONDS_EACH}s (log $log)"
  if "$bin" -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=25 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$arts/$name-" "${dirs[@]}" >"$log" 2>&1; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    echo "fuzz.sh: $name ok (${runs:-?} runs)"
  else
    status=1
    echo "fuzz.sh: $name FAILED; last lines of $log:"
    tail -n 40 "$log"
  fi
done
exit $status
