#!/bin/sh
# ordering: sequence numbers grow by exactly one (dfsm).
. "$(dirname "$0")/common"
S=/machine/ordering/object/stream-$RUN
req PUT $S/transition/start '{"seq":1}'
req PUT $S/transition/start '{"seq":0}'
req PUT $S/transition/next '{"seq":1}'
say "a gap is refused"
req PUT $S/transition/next '{"seq":3}'
say "a repeat is refused"
req PUT $S/transition/next '{"seq":1}' "Idempotency-Key: repeat-$RUN"
req PUT $S/transition/next '{"seq":2}'
req PUT $S/transition/close '{"close":true}'
req GET $S
