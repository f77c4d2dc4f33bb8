#!/usr/bin/env bash
# Installs the Debian 12 packages smc needs, only those that are missing, and
# (for `build`) builds the pinned librdkafka smc links against.
#
#   scripts/deps.sh [build] [test] [lint] [bench]    (no argument: build test lint)
#
# bench: what `make bench-lock` needs beyond build and test: etcd, the peer it
# compares smc's REST API with. Its client, bench/lockbench, also needs Go >= 1.26
# (its go.mod), newer than Debian 12's golang packages, so it is not installed here.
#
# The test group's chromium is the headless browser of tests/system/test_console.py
# (the web console, driven over the DevTools protocol on a pipe: no PyPI module).
#
# The test group also pip-installs the PyPI modules of TEST_PY_MODULES that do
# not import (schemathesis, openapi-spec-validator) into the python3 on PATH.
#
# Idempotent: checks each package with dpkg -s, says what it installs, and runs
# apt-get update only when something is missing. Needs root (or sudo) only then.
#
# librdkafka: Debian 12 ships 2.0.2; `build` also builds librdkafka
# $RDKAFKA_VERSION (the copy vendored in the rdkafka-sys crate of crates.io,
# checked against a pinned sha256) with its own CMake into
# .cache/librdkafka/$RDKAFKA_VERSION, once: later runs find it and skip the
# step (38 s on 2 idle cores, 2.5 minutes on 2 busy ones). CMakeLists.txt
# links that one when it exists (with an rpath, so build/smc needs no
# LD_LIBRARY_PATH) and Debian's otherwise. SMC_RDKAFKA=system skips the build
# and makes CMake use Debian's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RDKAFKA_VERSION=2.12.1
RDKAFKA_CRATE=rdkafka-sys-4.10.0+$RDKAFKA_VERSION
RDKAFKA_URL="https://static.crates.io/crates/rdkafka-sys/$RDKAFKA_CRATE.crate"
RDKAFKA_SHA256=e234cf318915c1059d4921ef7f75616b5219b10b46e9f3a511a15eb4b56a3f77
RDKAFKA_CACHE="$ROOT/.cache/librdkafka"
RDKAFKA_PREFIX="$RDKAFKA_CACHE/$RDKAFKA_VERSION"
# What its CMake needs: a C++ compiler (its project() enables CXX), OpenSSL
# (TLS, SASL SCRAM and OAUTHBEARER), cyrus-sasl (GSSAPI), libcurl (OAUTHBEARER
# OIDC; its CMake build does not compile without it), zstd, lz4, zlib: the
# features of Debian's build.
RDKAFKA_PKGS=(g++ curl ca-certificates libssl-dev libsasl2-dev libcurl4-openssl-dev libzstd-dev liblz4-dev
  zlib1g-dev)

BUILD_PKGS=(cmake ninja-build pkg-config gcc make librdkafka-dev libjansson-dev libyaml-dev
  libpcre2-dev librocksdb-dev libssl-dev libmicrohttpd-dev libcmocka-dev)
TEST_PKGS=(openjdk-17-jre-headless ca-certificates ca-certificates-java maven python3 python3-pytest
  python3-pip clang libclang-rt-dev graphviz curl prometheus groff-base man-db zsh chromium gdb)
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
build_rdkafka=0
for g in "${groups[@]}"; do
  case "$g" in
  build)
    want+=("${BUILD_PKGS[@]}")
    if [[ ${SMC_RDKAFKA:-} != system ]]; then
      want+=("${RDKAFKA_PKGS[@]}")
      build_rdkafka=1
    fi
    ;;
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

# librdkafka $RDKAFKA_VERSION into $RDKAFKA_PREFIX, unless the stamp of a
# finished build of this very crate is there. Everything happens in
# $RDKAFKA_CACHE; a failed or interrupted build leaves no stamp and is redone.
build_rdkafka() {
  local stamp="$RDKAFKA_PREFIX/.smc-stamp"
  local want_stamp="$RDKAFKA_CRATE $RDKAFKA_SHA256"
  if [[ -f $stamp && $(cat "$stamp") == "$want_stamp" ]]; then
    echo "deps.sh: librdkafka $RDKAFKA_VERSION already built in ${RDKAFKA_PREFIX#"$ROOT"/}"
    return 0
  fi
  local t0=$SECONDS crate="$RDKAFKA_CACHE/$RDKAFKA_CRATE.crate"
  local src="$RDKAFKA_CACHE/src-$RDKAFKA_VERSION" bld="$RDKAFKA_CACHE/build-$RDKAFKA_VERSION"
  mkdir -p "$RDKAFKA_CACHE"
  if [[ ! -f $crate ]] || ! echo "$RDKAFKA_SHA256  $crate" | sha256sum -c --quiet - >/dev/null 2>&1; then
    echo "deps.sh: downloading $RDKAFKA_URL"
    curl -fsSL --retry 3 -o "$crate.part" "$RDKAFKA_URL"
    mv "$crate.part" "$crate"
  fi
  if ! echo "$RDKAFKA_SHA256  $crate" | sha256sum -c --quiet -; then
    echo "deps.sh: $crate does not match the pinned sha256 $RDKAFKA_SHA256" >&2
    rm -f "$crate"
    exit 1
  fi
  echo "deps.sh: building librdkafka $RDKAFKA_VERSION into ${RDKAFKA_PREFIX#"$ROOT"/} (once)"
  rm -rf "$src" "$bld" "$RDKAFKA_PREFIX"
  mkdir -p "$src"
  tar -xzf "$crate" -C "$src" --strip-components=2 "$RDKAFKA_CRATE/librdkafka"
  # -O2 -g without -DNDEBUG: the flags of upstream's own build (asserts on).
  cmake -S "$src" -B "$bld" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g" -DCMAKE_INSTALL_PREFIX="$RDKAFKA_PREFIX" \
    -DCMAKE_INSTALL_LIBDIR=lib -DRDKAFKA_BUILD_STATIC=OFF -DRDKAFKA_BUILD_EXAMPLES=OFF \
    -DRDKAFKA_BUILD_TESTS=OFF -DWITH_SSL=ON -DWITH_SASL=ON -DWITH_ZSTD=ON -DWITH_ZLIB=ON \
    -DENABLE_LZ4_EXT=ON -DWITH_CURL=ON >"$RDKAFKA_CACHE/cmake-$RDKAFKA_VERSION.log" 2>&1 || {
    cat "$RDKAFKA_CACHE/cmake-$RDKAFKA_VERSION.log" >&2
    exit 1
  }
  # Only the C library: librdkafka++ is not used.
  cmake --build "$bld" -j "${JOBS:-$(nproc)}" --target rdkafka >"$RDKAFKA_CACHE/build-$RDKAFKA_VERSION.log" 2>&1 || {
    tail -n 50 "$RDKAFKA_CACHE/build-$RDKAFKA_VERSION.log" >&2
    exit 1
  }
  cmake --install "$bld/src" >/dev/null
  test -f "$RDKAFKA_PREFIX/include/librdkafka/rdkafka_mock.h"
  echo "$want_stamp" >"$stamp"
  rm -rf "$src" "$bld"
  echo "deps.sh: librdkafka $RDKAFKA_VERSION built in $((SECONDS - t0)) s"
}

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "deps.sh: all ${#want[@]} packages present (${groups[*]})"
else
  echo "deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "deps.sh: installed ${#missing[@]} package(s)"
fi
install_pip
if [[ $build_rdkafka == 1 ]]; then
  build_rdkafka
fi
