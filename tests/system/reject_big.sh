#!/bin/sh
# Vote hook used by the system tests: rejects proposals whose data carries
# amount 99999, accepts everything else. The proposal JSON comes on stdin.
if grep -q '"amount":99999'; then
  echo "amount too large for this voter"
  exit 1
fi
exit 0
