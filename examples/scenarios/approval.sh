#!/bin/sh
# approval: 2 of node-1, node-2, node-3 must accept (run smc dev --voters 0 so
# that only these votes count).
. "$(dirname "$0")/common"
A=/machine/approval/object/req-a-$RUN
B=/machine/approval/object/req-b-$RUN
say "a request"
req PUT $A/transition/request '{"requester":"alice","amount":250}'
say "an amount out of range is refused"
req PUT $B/transition/request '{"requester":"bob","amount":0}'
say "nothing to vote on yet"
req PATCH $A/transition/approve '{"voter":"node-1","accept":true}'
say "approve waits for votes"
req PUT "$A/transition/approve?wait=300ms" '{}'
P=$(field proposal)
say "two accepts reach the quorum"
req PATCH $A/transition/approve '{"voter":"node-1","accept":true,"reason":"budget ok"}'
req PATCH $A/transition/approve '{"voter":"node-2","accept":true}'
until_state $A approved
req GET $A
say "the proposal's outcome"
req GET /proposal/$P
say "two rejects make the quorum unreachable"
req PUT $B/transition/request '{"requester":"bob","amount":99}'
req PUT "$B/transition/approve?wait=300ms" '{}'
P=$(field proposal)
req PATCH $B/transition/approve '{"voter":"node-1","accept":false,"reason":"no"}'
req PATCH $B/transition/approve '{"voter":"node-3","accept":false,"reason":"no"}'
until_decided $P
say "re-sending the same proposal id answers its decision (marked duplicate)"
req PUT "$B/transition/approve?wait=10s" '{}' "Idempotency-Key: $P"
say "the requester may withdraw"
req PUT $B/transition/withdraw '{}' "X-Smc-Proposer: bob"
