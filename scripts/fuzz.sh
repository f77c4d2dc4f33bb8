#!/usr/bin/env bash
# Builds (clang, -DSMC_FUZZ=ON) and runs every libFuzzer target for a while.
#
#   scripts/fuzz.sh [BUILD_DIR]      (default build-fuzz)
#
# FUZZ_SECONDS per target (default 60); FUZZ_TARGETS="fuzz_fold fuzz_http"
# runs only those; FUZZ_JOBS=N runs N libFuzzer processes per target at once
# (-fork=N: one crash does not end the campaign; default 1, one process).
# Each target starts from its seed corpus tests/fuzz/corpus/<name>/ (read
# only) and keeps what it finds in BUILD_DIR/fuzz-corpus/<name>/, so a later
# run goes on from there. A crash leaves its input under
# BUILD_DIR/fuzz-artifacts/ and makes this script exit non-zero; copy it into
# tests/fuzz/corpus/<name>/ and the ctest fuzz.<name> replays it from then on.
# Every run appends "date target seconds jobs runs status" to
# BUILD_DIR/fuzz-history.tsv (the campaign record docs/reliability.md cites).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build-fuzz}"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
JOBS="${FUZZ_JOBS:-1}"
[[ $SECONDS_EACH =~ ^[1-9][0-9]*$ ]] || {
  echo "fuzz.sh: FUZZ_SECONDS must be a positive integer" >&2
  exit 2
}
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || {
  echo "fuzz.sh: FUZZ_JOBS must be a positive integer" >&2
  exit 2
}

if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz.sh: clang not found; skipping fuzzing (scripts/deps.sh test installs it)"
  exit 0
fi

shopt -s nullglob
targets=("$ROOT"/tests/fuzz/fuzz_*.c)
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "fuzz.sh: no fuzz targets in tests/fuzz"
  exit 0
fi

if [[ -n ${FUZZ_TARGETS:-} ]]; then
  chosen=()
  for t in $FUZZ_TARGETS; do
    [[ -f "$ROOT/tests/fuzz/$t.c" ]] || {
      echo "fuzz.sh: no fuzz target '$t' in tests/fuzz" >&2
      exit 2
    }
    chosen+=("$ROOT/tests/fuzz/$t.c")
  done
  targets=("${chosen[@]}")
fi

CC=clang cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSMC_FUZZ=ON -DSMC_BUILD_TESTS=ON >/dev/null
cmake --build "$BUILD" --target fuzz_targets

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
  par=()
  if ((JOBS > 1)); then
    par=(-fork="$JOBS" -ignore_crashes=0)
  fi
  echo "fuzz.sh: $name for ${SECONDS_EACH}s x $JOBS (log $log)"
  result=ok
  if "$bin" -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=25 -rss_limit_mb=4096 \
    -print_final_stats=1 "${par[@]}" -artifact_prefix="$arts/$name-" "${dirs[@]}" >"$log" 2>&1; then
    :
  else
    result=FAILED
    status=1
  fi
  # one process prints stat::number_of_executed_units; -fork prints "#N ... exec/s"
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  if [[ -z $runs ]]; then
    runs="$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$name" "$SECONDS_EACH" "$JOBS" \
    "${runs:-?}" "$result" >>"$BUILD/fuzz-history.tsv"
  if [[ $result == ok ]]; then
    echo "fuzz.sh: $name ok (${runs:-?} runs)"
  else
    echo "fuzz.sh: $name FAILED; last lines of $log:"
    tail -n 40 "$log"
  fi
done
exit $status
