#!/usr/bin/env bash
# Installs the Debian 12 packages smc needs, only those that are missing.
#
#   scripts/deps.sh [build] [test] [lint] [bench]    (no argument: build test lint)
#
# bench: what `make bench-lock` needs beyond build and test: etcd, the peer it
# compares smc's REST API with. Its client, bench/lockbench, also needs Go >= 1.26
# (its go.mod), newer than Debian 12's golang packages, so it is not installed here.
#
# Idempotent: checks each package with dpkg -s, says what it installs, and runs
# apt-get update only when something is missing. Needs root (or sudo) only then.
set -euo pipefail

BUILD_PKGS=(cmake ninja-build pkg-config gcc make librdkafka-dev libjansson-dev libyaml-dev
  libpcre2-dev librocksdb-dev libssl-dev libmicrohttpd-dev libcmocka-dev)
TEST_PKGS=(openjdk-17-jre-headless ca-certificates ca-certificates-java maven python3 python3-pytest
  clang libclang-rt-dev graphviz curl)
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

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "deps.sh: all ${#want[@]} packages present (${groups[*]})"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "deps.sh: missing ${missing[*]}; run as root or install sudo" >&2
    exit 1
  }
  SUDO=(sudo)
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps.sh: installed ${#missing[@]} package(s)"
