#!/usr/bin/env bash
# The Debian base image the project's containers and package tests start from, made here because
# no registry can be reached: a minimal Debian 12 (bookworm) root built by debootstrap from Debian's
# own packages, imported into the local Docker engine as cascade/debian:bookworm.
#
#   scripts/base-image.sh            # builds it once; does nothing when the image is there
#   scripts/base-image.sh --force    # builds it again
#
# The root is kept as .cache/base/debian-bookworm.tar.zst (ignored by git) so a pruned engine gets it
# back in seconds. A user with a registry needs none of this: deploy/Dockerfile.cloud-analyzer takes
# `--build-arg BASE=debian:bookworm-slim` (see its header).
#
# Environment: MIRROR (default http://deb.debian.org/debian), IMAGE (default cascade/debian:bookworm).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-cascade/debian:bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
TARBALL=.cache/base/debian-$SUITE.tar.zst
# What every image built on it needs: certificates for TLS to brokers, and nothing else.
INCLUDE=ca-certificates

log() { printf '[base-image] %s\n' "$*" >&2; }

force=0
[ "${1:-}" = "--force" ] && force=1

if ! docker info >/dev/null 2>&1; then
  log "no Docker engine answers here (docker info failed): nothing built"
  exit 1
fi
if [ "$force" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ "$force" = 1 ] || [ ! -s "$TARBALL" ]; then
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap and zstd (Debian packages)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends debootstrap zstd >/dev/null
  fi
  root=$(mktemp -d /tmp/cascade-base.XXXXXX)
  trap '$SUDO rm -rf "$root"' EXIT
  log "debootstrap $SUITE (minbase + $INCLUDE) from $MIRROR (a few minutes)"
  $SUDO debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$MIRROR" >/tmp/cascade-debootstrap.log 2>&1 ||
    { log "debootstrap failed; its log: /tmp/cascade-debootstrap.log"; tail -5 /tmp/cascade-debootstrap.log >&2; exit 1; }
  # Smaller and reproducible-ish: no package lists, caches or logs in the image.
  $SUDO rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/log/* "$root"/tmp/*
  # apt inside the image uses the same mirror the root came from.
  printf 'deb %s %s main\n' "$MIRROR" "$SUITE" | $SUDO tee "$root/etc/apt/sources.list" >/dev/null
  mkdir -p "$(dirname "$TARBALL")"
  $SUDO tar --numeric-owner -C "$root" -c . | zstd -q -T0 -f -o "$TARBALL"
fi
log "importing $TARBALL as $IMAGE"
zstd -q -d -c "$TARBALL" | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
log "$IMAGE ready ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
