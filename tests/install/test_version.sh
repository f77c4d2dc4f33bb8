#!/bin/sh
# One version everywhere: `smc --version`, the pkg-config file and the newest
# released entry of CHANGELOG.md must all name CMake's project(VERSION).
#   test_version.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1 src=$2
bin=$("$build/smc" --version | sed -n 's/^smc //p')
pc=$(sed -n 's/^Version: //p' "$build/smc.pc")
# The first "## [x.y.z]" heading; "## [Unreleased]" does not count.
log=$(sed -n 's/^## \[\([0-9][0-9.]*[0-9]\)\].*/\1/p' "$src/CHANGELOG.md" | head -n 1)
echo "smc --version: $bin; smc.pc: $pc; CHANGELOG.md: $log"
[ -n "$bin" ] || { echo "smc --version printed no version"; exit 1; }
[ "$bin" = "$pc" ] || { echo "smc --version and smc.pc differ"; exit 1; }
[ "$bin" = "$log" ] || { echo "smc --version and the newest CHANGELOG.md entry differ"; exit 1; }
