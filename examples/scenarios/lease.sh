#!/bin/sh
# lease: acquire, renew, holder checks, and the 30 s inactivity timer.
. "$(dirname "$0")/common"
L=/machine/lease/object/lease-$RUN
say "create and acquire"
req PUT $L/transition/create '{}'
req PUT $L/transition/acquire '{"holder":"svc-a"}'
say "only the holder may renew"
req PUT $L/transition/renew '{"holder":"svc-b"}'
req PUT $L/transition/renew '{"holder":"svc-a"}'
say "nobody renews: after 30 s the cluster fires expire by itself"
req GET "$L/watch?after_version=3&timeout=60s"
req GET $L
