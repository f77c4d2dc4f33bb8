#!/bin/sh
# session: hits counted per touch, logout ends it (the 20 min expiry is not
# waited for here).
. "$(dirname "$0")/common"
S=/machine/session/object/sess-$RUN
req PUT $S/transition/start '{"visitor":"bob"}'
req PUT $S/transition/start '{"visitor":"v-0123abcd"}'
req PUT $S/transition/touch '{}'
say "a session cannot change visitor"
req PUT $S/transition/touch '{"visitor":"v-ffffffff"}'
req PUT $S/transition/touch '{"visitor":"v-0123abcd"}'
req PUT $S/transition/logout '{"logout":true}'
req PUT $S/transition/touch '{}' "Idempotency-Key: late-$RUN"
req GET $S
