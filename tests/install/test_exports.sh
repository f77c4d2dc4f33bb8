#!/bin/sh
# libsmc.so exports exactly the public API: the functions include/smc/ marks
# SMC_API, the list in cmake/libsmc.map and `nm -D` all name the same set.
#   test_exports.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
lib=$(ls "$build"/libsmc.so.* 2>/dev/null | head -n 1)
[ -n "$lib" ] || { echo "no libsmc.so in $build"; exit 1; }
grep -h '^SMC_API' "$src"/include/smc/*.h | grep -o 'smc_[a-z0-9_]*(' | tr -d '(' | sort -u >"$tmp/headers"
sed -n 's/^ *\(smc_[a-z0-9_]*\);$/\1/p' "$src/cmake/libsmc.map" | sort -u >"$tmp/map"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TtDdBbRrVvWwIi]$/ {print $3}' | sed 's/@.*//' |
  grep -v '^SMC_0$' | sort -u >"$tmp/nm"
rc=0
if ! diff -u "$tmp/headers" "$tmp/map"; then
  echo "cmake/libsmc.map differs from the SMC_API functions of include/smc/ (above)"
  rc=1
fi
if ! diff -u "$tmp/headers" "$tmp/nm"; then
  echo "nm -D $lib differs from the SMC_API functions of include/smc/ (above)"
  rc=1
fi
echo "exports: $(wc -l <"$tmp/nm") symbols, headers declare $(wc -l <"$tmp/headers")"
exit $rc
