#!/bin/sh
# tally: one vote per voter, counted in the data.
. "$(dirname "$0")/common"
T=/machine/tally/object/tally-$RUN
req PUT $T/transition/create '{"question":"lunch at noon?"}'
req PUT $T/transition/vote '{"voter":"ann"}'
req PUT $T/transition/vote '{"voter":"ben"}'
say "ann cannot vote twice"
req PUT $T/transition/vote '{"voter":"ann"}' "Idempotency-Key: second-ann-$RUN"
req PUT $T/transition/close '{}'
req PUT $T/transition/vote '{"voter":"cat"}'
req GET $T
