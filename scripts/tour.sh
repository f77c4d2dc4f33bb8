#!/bin/sh
# A narrated tour of smc's REST API (curl only, no jq).
#
#   scripts/tour.sh                 tour a running gateway at $SMC_URL
#                                   (default http://127.0.0.1:8080)
#   scripts/tour.sh --dev BIN       start `BIN dev --examples --voters 1` first,
#                                   tour it, then keep it running (Ctrl-C stops);
#                                   with DEMO_EXIT=1 stop it after the tour.
#
# The tour needs the example machines (lock, approval, lease) registered, as
# `smc dev --examples` does. It exits non-zero when an answer is not the one
# it narrates. With an smc binary (--dev BIN, or $SMC_BIN, or smc on PATH)
# it also shows `smc status` and `smc history` against the cluster's Kafka
# (the bootstrap GET /info reports).
set -u
SMC_URL=${SMC_URL:-http://127.0.0.1:8080}
DEV_PID=
RUN=$(date +%s)-$$
SMC=${SMC_BIN:-$(command -v smc 2>/dev/null || true)}

if [ "${1:-}" = "--dev" ]; then
  BIN=${2:?usage: tour.sh --dev PATH_TO_SMC}
  SMC=$BIN
  ADDR=${SMC_URL#http://}
  "$BIN" dev --examples --voters 1 --http "$ADDR" &
  DEV_PID=$!
  trap 'kill -TERM $DEV_PID 2>/dev/null; wait $DEV_PID' INT TERM
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }

# call METHOD PATH [BODY]: prints the request and the answer; sets $STATUS and $BODY.
call() {
  m=$1 p=$2
  printf '\n   $ curl -X %s %s%s' "$m" "$SMC_URL" "$p"
  if [ $# -ge 3 ]; then
    printf " -d '%s'\n" "$3"
    out=$(curl -s -X "$m" -H 'Content-Type: application/json' --data-binary "$3" -w '\n%{http_code}' "$SMC_URL$p")
  else
    printf '\n'
    out=$(curl -s -X "$m" -w '\n%{http_code}' "$SMC_URL$p")
  fi
  STATUS=$(printf '%s\n' "$out" | tail -n 1)
  BODY=$(printf '%s\n' "$out" | sed '$d')
  printf '   -> %s %s\n' "$STATUS" "$BODY"
}

FAILED=0
expect() {
  if [ "$STATUS" != "$1" ]; then
    printf '   !! expected HTTP %s, got %s\n' "$1" "$STATUS"
    FAILED=1
  fi
}
field() { printf '%s' "$BODY" | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" | head -n 1; }
# cli ARGS...: runs smc against the cluster's Kafka when a binary is at hand.
cli() {
  [ -n "$SMC" ] && [ -n "${BOOT:-}" ] || return 0
  printf '\n   $ smc %s\n' "$*"
  "$SMC" "$@" --bootstrap "$BOOT" 2>&1 | sed 's/^/   /'
}

i=0
until curl -sf "$SMC_URL/readyz" >/dev/null 2>&1; do
  i=$((i + 1))
  if [ $i -gt 120 ]; then
    echo "tour: no ready gateway at $SMC_URL" >&2
    [ -n "$DEV_PID" ] && kill -TERM $DEV_PID
    exit 3
  fi
  sleep 0.5
done

say "The cluster"
call GET /info
BOOT=$(field bootstrap)
call GET /machine
expect 200
note "The node table: every worker heartbeats its roles, address, partitions and lag."
call GET /nodes
expect 200
cli status -o table

LOCK=lock-tour-$RUN
say "A versioned lock: create, acquire, conflicts, release"
note "Every object is created by a create transition (from: null)."
call PUT "/machine/lock/object/$LOCK/transition/create" '{}'
expect 200
note "svc-a acquires it: version 2, and the fencing token is that version."
call PUT "/machine/lock/object/$LOCK/transition/acquire" '{"owner":"svc-a"}'
expect 200
TOKEN=$(field version)
note "svc-b tries too: acquire is not allowed from held -> 422 invalid_transition."
call PUT "/machine/lock/object/$LOCK/transition/acquire?expect_version=$TOKEN" '{"owner":"svc-b"}'
expect 422
note "svc-b tries to release svc-a's lock: the rule says only the owner -> 422 validation_failed."
call PUT "/machine/lock/object/$LOCK/transition/release" '{"owner":"svc-b"}'
expect 422
note "A client holding a stale token (version 1) is fenced off -> 409 version_conflict."
call PUT "/machine/lock/object/$LOCK/transition/release?expect_version=1" '{"owner":"svc-a"}'
expect 409
note "The owner releases with its token (ack=confirmed: answered once the confirmation is"
note "committed to smc.confirmations, so a Kafka reader such as smc history sees it at once)."
call PUT "/machine/lock/object/$LOCK/transition/release?expect_version=$TOKEN&ack=confirmed" '{"owner":"svc-a"}'
expect 200
note "A linearizable read goes through the log:"
call GET "/machine/lock/object/$LOCK"
expect 200
note "Its history: every committed version with its proposal, transition, votes and time."
call GET "/machine/lock/object/$LOCK/history"
expect 200
cli history "$LOCK" -o table

REQ=req-tour-$RUN
say "A vote: approval needs 2 of node-1, node-2, node-3"
call PUT "/machine/approval/object/$REQ/transition/request" '{"requester":"alice","amount":250}'
expect 200
note "Propose approve and wait 1 s: node-1's voter accepts by itself, one more vote is needed -> 202."
call PUT "/machine/approval/object/$REQ/transition/approve?wait=1s" '{}'
if [ "$STATUS" = 202 ]; then
  PROP=$(field proposal)
  note "Cast node-2's vote (PATCH on the same path):"
  call PATCH "/machine/approval/object/$REQ/transition/approve" '{"voter":"node-2","accept":true,"reason":"looks fine"}'
  expect 202
  note "The proposal's outcome, as this gateway saw it:"
  n=0
  while :; do
    call GET "/proposal/$PROP"
    case "$BODY" in *'"status":"committed"'*) break ;; esac
    n=$((n + 1)); [ $n -ge 20 ] && break
    sleep 0.3
  done
  expect 200
else
  expect 200
  note "(every node voted at once: the proposal committed within the wait)"
fi
call GET "/machine/approval/object/$REQ"
case "$BODY" in *'"state":"approved"'*) ;; *) echo "   !! expected state approved"; FAILED=1 ;; esac

LEASE=lease-tour-$RUN
say "A timer: a lease expires after 30 s without a change"
call PUT "/machine/lease/object/$LEASE/transition/create" '{}'
call PUT "/machine/lease/object/$LEASE/transition/acquire" '{"holder":"svc-a"}'
expect 200
V=$(field version)
note "Long-poll for the next version (the cluster fires 'expire' by itself):"
call GET "/machine/lease/object/$LEASE/watch?after_version=$V&timeout=45s"
expect 200
case "$BODY" in *'"state":"available"'*) note "expired: the lease is available again" ;;
  *) echo "   !! expected the lease to be available"; FAILED=1 ;; esac

say "Metrics (excerpt)"
curl -s "$SMC_URL/metrics" | grep -E '^smc_http_requests_total' | head -n 5 | sed 's/^/   /'

if [ $FAILED = 0 ]; then say "Tour complete"; else say "Tour finished with unexpected answers"; fi

if [ -n "$DEV_PID" ]; then
  if [ "${DEMO_EXIT:-0}" = 1 ]; then
    kill -TERM $DEV_PID
    wait $DEV_PID
  else
    note "smc dev keeps running at $SMC_URL; Ctrl-C stops it."
    wait $DEV_PID
  fi
fi
exit $FAILED
