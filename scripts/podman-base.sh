#!/usr/bin/env bash
# Build the base images docker/Dockerfile starts FROM (debian:12 and
# debian:12-slim) from Debian's own package mirrors, for hosts that reach
# deb.debian.org but not Docker Hub: mmdebstrap writes a bookworm root file
# system into a tarball, `podman import` makes it an image, tagged under
# both names (the runtime stage then carries apt's lists and a few MB more
# than the real -slim image; nothing else differs for smc).
#
#   scripts/podman-base.sh            build unless docker.io/library/debian:12 exists
#   PODMAN_BASE_FORCE=1 scripts/podman-base.sh   build again
set -euo pipefail

IMAGE=docker.io/library/debian
say() { echo "podman-base.sh: $*" >&2; }

command -v podman >/dev/null || { say "podman not found (apt-get install podman)"; exit 1; }
if [[ "${PODMAN_BASE_FORCE:-0}" != 1 ]] && podman image exists "$IMAGE:12"; then
  say "$IMAGE:12 exists"
  exit 0
fi
command -v mmdebstrap >/dev/null || { say "mmdebstrap not found (apt-get install mmdebstrap)"; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
say "mmdebstrap bookworm into $tmp/rootfs.tar"
mmdebstrap --variant=apt --include=ca-certificates bookworm "$tmp/rootfs.tar" >"$tmp/log" 2>&1 || {
  tail -n 20 "$tmp/log" >&2
  exit 1
}
podman import "$tmp/rootfs.tar" "$IMAGE:12" >/dev/null
podman tag "$IMAGE:12" "$IMAGE:12-slim"
say "imported $IMAGE:12 and $IMAGE:12-slim"
