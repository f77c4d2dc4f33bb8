#!/usr/bin/env bash
# `make bench`: the cluster benchmarks (bench/run.py does the work; see there
# for the scenarios and the BENCH_* environment).
set -euo pipefail
exec python3 "$(dirname "${BASH_SOURCE[0]}")/run.py" "$@"
