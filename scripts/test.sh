#!/usr/bin/env bash
# The whole test run behind `make test` and .ci/run:
#   1. install missing build and test packages (scripts/deps.sh build test);
#   2. sanitizer build in build-asan/ (ASan+UBSan, -Werror) and release build in build/;
#   3. start a fresh Kafka broker (scripts/kafka.sh) on TEST_KAFKA_PORT or KAFKA_PORT
#      (default 19092), in the background while step 2 runs, with a second
#      SASL_PLAINTEXT/PLAIN listener on KAFKA_SASL_PORT (default KAFKA_PORT + 2;
#      user smc, password smc-secret) for tests/system/test_sasl.py;
#   4. ctest in build-asan: tests without the kafka/system labels in parallel,
#      then the kafka/system ones one at a time (they share the broker and may
#      restart it), with SMC_BOOTSTRAP and SMC_BIN (build/smc) exported;
#   5. every libFuzzer target for FUZZ_SECONDS (default 20) when clang exists;
#   6. stop the broker it started, even on failure (and the three brokers
#      test_brokers3.py runs on SMC_KAFKA3_PORT, default 24092, if left over).
# Exit status: 0 only when every step passed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export KAFKA_PORT="${TEST_KAFKA_PORT:-${KAFKA_PORT:-19092}}"
export KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-$((KAFKA_PORT + 2))}"
export FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
JOBS="${JOBS:-$(nproc)}"
t_start=$SECONDS

step() { echo "=== test.sh [$((SECONDS - t_start))s]: $*"; }

step "dependencies"
scripts/deps.sh build test

# Kafka starts in the background while the builds run (the JVM mostly waits).
started_kafka=0
kafka_job=""
kafka_log="$ROOT/.cache/kafka/start-$KAFKA_PORT.log"
cleanup() {
  if [[ -n $kafka_job ]]; then
    wait "$kafka_job" 2>/dev/null || true
  fi
  if [[ $started_kafka == 1 ]]; then
    step "stopping Kafka"
    scripts/kafka.sh stop || true
  fi
  # tests/system/test_brokers3.py stops its three brokers itself; a test run
  # killed from outside (ctest's timeout) may leave them running
  env -u KAFKA_SASL_PORT KAFKA_BROKERS=3 KAFKA_PORT="${SMC_KAFKA3_PORT:-24092}" \
    scripts/kafka.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

mkdir -p "$(dirname "$kafka_log")"
if scripts/kafka.sh status >/dev/null 2>&1; then
  step "Kafka already running on $KAFKA_PORT; using it"
else
  step "starting Kafka on $KAFKA_PORT in the background (log $kafka_log)"
  started_kafka=1
  KAFKA_FRESH=1 scripts/kafka.sh start >"$kafka_log" 2>&1 &
  kafka_job=$!
fi

step "sanitizer build (build-asan)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSMC_SANITIZE=address,undefined -DSMC_WERROR=ON -DSMC_BUILD_TESTS=ON >/dev/null
cmake --build build-asan -j "$JOBS"

step "release build of smc (build)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$JOBS" --target smc

if [[ -n $kafka_job ]]; then
  step "waiting for Kafka"
  if ! wait "$kafka_job"; then
    kafka_job=""
    cat "$kafka_log"
    echo "test.sh: Kafka did not start" >&2
    exit 1
  fi
  kafka_job=""
  tail -n 1 "$kafka_log"
fi
export SMC_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
# A broker started elsewhere may lack the SASL listener: test_sasl then skips.
if scripts/kafka.sh status 2>/dev/null | grep -q "sasl 127.0.0.1:$KAFKA_SASL_PORT"; then
  export SMC_SASL_BOOTSTRAP="127.0.0.1:$KAFKA_SASL_PORT"
else
  echo "test.sh: no SASL listener on $KAFKA_SASL_PORT; test_sasl will skip"
fi
export SMC_BIN="$ROOT/build/smc"
export SMC_KAFKA_SCRIPT="$ROOT/scripts/kafka.sh"

status=0
step "ctest: tests without kafka/system labels"
(cd build-asan && ctest --output-on-failure -j "$JOBS" -LE 'kafka|system') || status=1
step "ctest: kafka/system tests (serial, broker $SMC_BOOTSTRAP)"
if (cd build-asan && ctest -N -L 'kafka|system' | grep -q 'Total Tests: [1-9]'); then
  (cd build-asan && ctest --output-on-failure -L 'kafka|system') || status=1
else
  echo "no kafka/system tests registered"
fi

if command -v clang >/dev/null 2>&1; then
  step "fuzzing each target for ${FUZZ_SECONDS}s"
  scripts/fuzz.sh "$ROOT/build-fuzz" || status=1
else
  step "clang not found: fuzzing skipped"
fi

step "done in $((SECONDS - t_start))s: $([[ $status == 0 ]] && echo PASSED || echo FAILED)"
exit $status
