#!/bin/sh
# routines: a producer hands a payload to a consumer (meta.proposer checks,
# given with the X-Smc-Proposer header).
. "$(dirname "$0")/common"
R=/machine/routines/object/job-$RUN
req PUT $R/transition/create '{"producer":"prod-a","consumer":"cons-b"}'
say "only the producer may publish"
req PUT $R/transition/publish '{"payload":{"n":1}}' "X-Smc-Proposer: cons-b"
req PUT "$R/transition/publish?expect_version=1" '{"payload":{"n":1}}' "X-Smc-Proposer: prod-a"
say "only the consumer may consume"
req PUT $R/transition/consume '{"result":"ok"}' "X-Smc-Proposer: prod-a"
req PUT "$R/transition/consume?expect_version=2" '{"result":"ok"}' "X-Smc-Proposer: cons-b"
req GET $R
