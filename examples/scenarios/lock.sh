#!/bin/sh
# lock: create, acquire, fencing with expect_version, owner-only release, retire.
. "$(dirname "$0")/common"
L=/machine/lock/object/lock-$RUN
say "create a free lock"
req PUT $L/transition/create '{}'
say "svc-a acquires: version 2 is its fencing token"
req PUT $L/transition/acquire '{"owner":"svc-a"}'
say "svc-b cannot acquire a held lock"
req PUT "$L/transition/acquire?expect_version=2" '{"owner":"svc-b"}'
say "only the owner may release"
req PUT $L/transition/release '{"owner":"svc-b"}'
say "a stale token is fenced off"
req PUT "$L/transition/release?expect_version=1" '{"owner":"svc-a"}'
say "the owner releases with its token"
req PUT "$L/transition/release?expect_version=2" '{"owner":"svc-a"}'
say "a bad owner name fails validation"
req PUT $L/transition/acquire '{"owner":"Not A Service"}'
say "retire needs a reason (dfsm: the when clause tells acquire and retire apart)"
req PUT $L/transition/retire '{"reason":"decommissioned"}'
say "a retired lock is final"
req PUT $L/transition/acquire '{"owner":"svc-c"}'
req GET $L
