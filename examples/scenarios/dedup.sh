#!/bin/sh
# dedup: a message id can be received once; only its consumer acks it.
. "$(dirname "$0")/common"
M=/machine/dedup/object/msg-$RUN
say "a delivery names the version it applies to: 0, the message is new"
req PUT "$M/transition/receive?expect_version=0" '{"topic":"orders","consumer":"billing"}'
say "the same delivery again is the same proposal: its decision again"
req PUT "$M/transition/receive?expect_version=0" '{"topic":"orders","consumer":"billing"}'
say "another consumer's receive of the same message is refused"
req PUT $M/transition/receive '{"topic":"orders","consumer":"shipping"}'
say "only the receiving consumer acks"
req PUT $M/transition/ack '{"consumer":"shipping"}'
req PUT $M/transition/ack '{"consumer":"billing"}'
req GET $M
