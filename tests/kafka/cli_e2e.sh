#!/usr/bin/env bash
# End to end through the smc CLI against the real broker: topics create (twice,
# then a mismatch), a worker, machine apply/get/list, propose (committed,
# rejected, pending votes), vote by id (a vote without one is a usage error),
# get, watch.
# Skips (77) when SMC_BOOTSTRAP is unset. Usage: cli_e2e.sh PATH/TO/smc SOURCE_DIR
set -u
SMC="$1"
SRC="$2"
[ -n "${SMC_BOOTSTRAP:-}" ] || { echo "SMC_BOOTSTRAP is not set: skipping"; exit 77; }
P="cli$$-$(date +%s)."
TMP="$(mktemp -d /tmp/smc-cli-e2e-XXXXXX)"
WORKER=""
cleanup() {
  [ -n "$WORKER" ] && kill "$WORKER" 2>/dev/null && wait "$WORKER" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
fails=0
check() { # check NAME WANT GOT
  if [ "$2" != "$3" ]; then echo "FAIL: $1: want $2, got $3"; fails=$((fails + 1)); else echo "ok: $1"; fi
}
run() { "$SMC" "$@" --prefix "$P" >"$TMP/out" 2>"$TMP/err"; echo $?; }

check "topics create" 0 "$(run topics create --partitions 3 --file "$SRC/topics/topics.json")"
grep -q "^created  ${P}proposals (3 partitions)" "$TMP/out" || { echo "FAIL: create output"; fails=$((fails + 1)); }
check "topics create again" 0 "$(run topics create --partitions 3 --file "$SRC/topics/topics.json")"
check "all exist" 6 "$(grep -c '^exists' "$TMP/out")"
check "topics mismatch" 1 "$(run topics create --partitions 4 --file "$SRC/topics/topics.json")"
check "usage error" 2 "$(run topics create --partitions x)"
check "topics describe" 0 "$(run topics describe --partitions 3 --file "$SRC/topics/topics.json")"
check "described ok" 6 "$(grep -c '^ok' "$TMP/out")"
check "describe other N" 1 "$(run topics describe --partitions 4 --file "$SRC/topics/topics.json")"
check "describe other prefix" 1 "$("$SMC" topics describe --prefix "none$$." --file "$SRC/topics/topics.json" >/dev/null 2>&1; echo $?)"

"$SMC" worker --prefix "$P" --node-id cli-e2e --data-dir "$TMP/data" >"$TMP/worker.log" 2>&1 &
WORKER=$!

check "machine apply" 0 "$(run machine apply "$SRC/examples/machines/lock.yaml")"
check "machine apply again" 0 "$(run machine apply "$SRC/examples/machines/lock.yaml")"
check "machine list" 0 "$(run machine list -o text)"
check "listed" 1 "$(grep -c '^lock ' "$TMP/out")"
check "machine get" 0 "$(run machine get lock -o yaml)"
cmp -s "$TMP/out" "$SRC/examples/machines/lock.yaml" || { echo "FAIL: get -o yaml differs"; fails=$((fails + 1)); }
check "machine get missing" 1 "$(run machine get nope)"

# the worker needs a moment to own its partitions: retry the first proposal
for i in $(seq 1 30); do
  rc=$(run propose lock L1 create --wait 2s)
  [ "$rc" = 0 ] && break
done
check "propose create" 0 "$rc"
grep -q '"outcome":"committed"' "$TMP/out" || { echo "FAIL: not committed"; fails=$((fails + 1)); }
check "propose acquire" 0 "$(run propose lock L1 acquire --data '{"owner":"svc-a"}' --expect-version 1)"
check "propose rejected" 1 "$(run propose lock L1 acquire --data '{"owner":"svc-b"}')"
grep -q '"code":"invalid_transition"' "$TMP/out" || { echo "FAIL: no error code"; fails=$((fails + 1)); }
check "bad data" 2 "$(run propose lock L1 release --data '[1]')"
check "get" 0 "$(run get L1)"
grep -q '"state":"held"' "$TMP/out" || { echo "FAIL: get state"; fails=$((fails + 1)); }
check "get missing" 1 "$(run get nope)"

"$SMC" watch L1 --prefix "$P" --count 2 --timeout 20s >"$TMP/watch" 2>&1 &
W=$!
sleep 1.5
run propose lock L1 release --data '{"owner":"svc-a"}' >/dev/null
run propose lock L1 acquire --data '{"owner":"svc-c"}' >/dev/null
wait $W
check "watch" 0 $?
check "watch lines" 2 "$(grep -c '"version":' "$TMP/watch")"

check "apply approval" 0 "$(run machine apply "$SRC/examples/machines/approval.yaml")"
check "request" 0 "$(run propose approval A1 request --data '{"requester":"bob","amount":5}')"
check "approve pending" 4 "$(run propose approval A1 approve --wait 1s)"
grep -q '"status":"pending"' "$TMP/out" || { echo "FAIL: pending JSON"; fails=$((fails + 1)); }
ID="$(sed -n 's/.*"proposal":"\([0-9a-f]*\)".*/\1/p' "$TMP/out")"
grep -q "learn the outcome with --id $ID" "$TMP/err" || { echo "FAIL: pending message"; fails=$((fails + 1)); }
check "vote by id" 0 "$(run vote approval A1 approve --voter node-1 --proposal "$ID")"
"$SMC" propose approval A1 approve --id "$ID" --wait 15s --prefix "$P" >"$TMP/approve" 2>&1 &
A=$!
sleep 1.5
check "vote without an id" 2 "$(run vote approval A1 approve --voter node-2)"
check "vote by id again" 0 "$(run vote approval A1 approve --voter node-2 --proposal "$ID")"
wait $A
check "approved after votes" 0 $?
grep -q '"state":"approved"' "$TMP/approve" || { echo "FAIL: not approved"; fails=$((fails + 1)); }

echo "$fails failure(s)"
[ "$fails" = 0 ]
