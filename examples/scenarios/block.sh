#!/bin/sh
# block: a hash chain; every block names the current one and hashes correctly.
. "$(dirname "$0")/common"
B=/machine/block/object/chain-$RUN
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
G=$(sha genesis)
say "genesis: the hash must be sha256(payload)"
req PUT $B/transition/genesis '{"payload":"genesis","currentBlock":"0000000000000000000000000000000000000000000000000000000000000000"}'
req PUT $B/transition/genesis "{\"payload\":\"genesis\",\"currentBlock\":\"$G\"}"
H1=$(sha "${G}one")
say "append links to the current block"
req PUT $B/transition/append "{\"payload\":\"one\",\"previousBlock\":\"$G\",\"currentBlock\":\"$H1\"}"
say "a block that links to an older one is refused"
H2=$(sha "${G}two")
req PUT $B/transition/append "{\"payload\":\"two\",\"previousBlock\":\"$G\",\"currentBlock\":\"$H2\"}"
say "a wrong hash is refused"
req PUT $B/transition/append "{\"payload\":\"two\",\"previousBlock\":\"$H1\",\"currentBlock\":\"$H1\"}"
H2=$(sha "${H1}two")
req PUT $B/transition/append "{\"payload\":\"two\",\"previousBlock\":\"$H1\",\"currentBlock\":\"$H2\"}"
req GET $B
