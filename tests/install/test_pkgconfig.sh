#!/bin/sh
# Installs the build into a temporary prefix, then compiles and runs a program
# against it using only `pkg-config --cflags --libs smc`.
#   test_pkgconfig.sh BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS]
set -eu
build=$1 src=$2 extra=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp" >/dev/null
pc=$(find "$tmp" -name smc.pc | head -n 1)
[ -n "$pc" ] || { echo "smc.pc was not installed"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --define-variable=prefix="$tmp" --cflags --libs smc)
echo "pkg-config: $flags"
# shellcheck disable=SC2086
cc $extra "$src/tests/install/embed.c" $flags -o "$tmp/embed"
LD_LIBRARY_PATH=$libdir "$tmp/embed"
