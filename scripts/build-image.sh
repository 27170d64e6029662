#!/usr/bin/env bash
# Builds the analyzer's container image here, where no registry can be reached: the `prebuilt`
# stage of deploy/Dockerfile.cloud-analyzer on the local Debian 12 base (scripts/base-image.sh)
# with a cloud-analyzer binary built on this Debian 12 host. With a registry, build from source
# instead: docker build -f deploy/Dockerfile.cloud-analyzer -t cascade/cloud-analyzer .
#
#   scripts/build-image.sh                          # release binary (built when missing)
#   scripts/build-image.sh --binary PATH --tag TAG  # any binary (the tests pass their debug build)
#
# Environment: BASE (default cascade/debian:bookworm; made when missing), CARGO_TARGET_DIR.
# Prints the image's tag on stdout when done.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${BASE:-cascade/debian:bookworm}
TAG=cascade/cloud-analyzer:latest
BINARY=""
log() { printf '[build-image] %s\n' "$*" >&2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BINARY=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    *) log "unknown argument $1 (usage: scripts/build-image.sh [--binary PATH] [--tag TAG])"; exit 2 ;;
  esac
done

docker info >/dev/null 2>&1 || { log "no Docker engine answers here (docker info failed)"; exit 1; }
[ -f .cache/onnxruntime/libonnxruntime.so ] || { log "no .cache/onnxruntime/libonnxruntime.so: run scripts/setup.sh"; exit 1; }
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  [ "$BASE" = cascade/debian:bookworm ] || { log "base image $BASE is not in the engine"; exit 1; }
  scripts/base-image.sh
fi
if [ -z "$BINARY" ]; then
  BINARY=${CARGO_TARGET_DIR:-target}/release/cloud-analyzer
  [ -x "$BINARY" ] || cargo build --release --locked -p cloud-analyzer
fi
[ -x "$BINARY" ] || { log "no binary at $BINARY"; exit 1; }

# The files of target/ the context lets in (.dockerignore); one build at a time stages them.
mkdir -p target/image
exec 9>target/image/.lock
flock 9
# Copies, not links (symlinks, as in a worktree sharing .cache, are not followed out of the context).
cp -L "$BINARY" target/image/cloud-analyzer
cp -L .cache/onnxruntime/libonnxruntime.so target/image/libonnxruntime.so
log "building $TAG from $BINARY on $BASE"
docker build -q -f deploy/Dockerfile.cloud-analyzer --target prebuilt --build-arg BASE="$BASE" \
  --build-arg BINARY=target/image/cloud-analyzer --build-arg ORT=target/image/libonnxruntime.so \
  -t "$TAG" . >&2
echo "$TAG"
