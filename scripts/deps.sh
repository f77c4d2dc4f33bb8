#!/usr/bin/env bash
# Installs the Debian 12 packages smc needs, only those that are missing.
#
#   scripts/deps.sh [build] [test] [lint] [bench]    (no argument: build test lint)
#
# bench: what `make bench-lock` needs beyond build and test: etcd, the peer it
# compares smc's REST API with. Its client, bench/lockbench, also needs Go >= 1.26
# (its go.mod), newer than Debian 12's golang packages, so it is not installed here.
#
# The test group also pip-installs the PyPI modules of TEST_PY_MODULES that do
# not import (schemathesis, openapi-spec-validator) into the python3 on PATH.
#
# Idempotent: checks each package with dpkg -s, says what it installs, and runs
# apt-get update only when something is missing. Needs root (or sudo) only then.
set -euo pipefail

BUILD_PKGS=(cmake ninja-build pkg-config gcc make librdkafka-dev libjansson-dev libyaml-dev
  libpcre2-dev librocksdb-dev libssl-dev libmicrohttpd-dev libcmocka-dev)
TEST_PKGS=(openjdk-17-jre-headless ca-certificates ca-certificates-java maven python3 python3-pytest
  python3-pip clang libclang-rt-dev graphviz curl prometheus groff-base man-db zsh)
# Python modules of the tests that Debian 12 does not package (or too old):
# installed from PyPI with the python3 the tests run with.
TEST_PY_MODULES=(schemathesis:schemathesis openapi_spec_validator:openapi-spec-validator)
LINT_PKGS=(clang-format cppcheck)
BENCH_PKGS=(etcd-server)

groups=("$@")
if [[ ${#groups[@]} -eq 0 ]]; then
  groups=(build test lint)
fi

want=()
for g in "${groups[@]}"; do
  case "$g" in
  build) want+=("${BUILD_PKGS[@]}") ;;
  test) want+=("${TEST_PKGS[@]}") ;;
  lint) want+=("${LINT_PKGS[@]}") ;;
  bench) want+=("${BENCH_PKGS[@]}") ;;
  *)
    echo "usage: $0 [build] [test] [lint] [bench]" >&2
    exit 2
    ;;
  esac
done

# pip_missing: the PyPI packages of the test group whose module does not import.
pip_missing=()
for g in "${groups[@]}"; do
  [[ $g == test ]] || continue
  for m in "${TEST_PY_MODULES[@]}"; do
    if ! python3 -c "import ${m%%:*}" >/dev/null 2>&1; then
      pip_missing+=("${m#*:}")
    fi
  done
done

install_pip() {
  [[ ${#pip_missing[@]} -eq 0 ]] && return 0
  echo "deps.sh: pip installing ${pip_missing[*]}"
  local extra=()
  # Debian's python3 is externally managed (PEP 668); the tests need these
  # modules in that interpreter, so they go beside the Debian packages.
  if python3 -c 'import sys, sysconfig, os; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
    extra=(--break-system-packages)
  fi
  "${SUDO[@]}" python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    "${extra[@]}" "${pip_missing[@]}"
}

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

SUDO=()
if [[ $(id -u) -ne 0 && (${#missing[@]} -gt 0 || ${#pip_missing[@]} -gt 0) ]]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "deps.sh: missing ${missing[*]} ${pip_missing[*]}; run as root or install sudo" >&2
    exit 1
  }
  SUDO=(sudo)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "deps.sh: all ${#want[@]} packages present (${groups[*]})"
  install_pip
  exit 0
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps.sh: installed ${#missing[@]} package(s)"
install_pip
