#!/usr/bin/env bash
# The arm64 (aarch64) build on an x86-64 Debian 12 machine with Debian's cross toolchain, then the
# arm64 Debian packages (design/packaging.md, "arm64"). Not part of CI (minutes of release build).
#
#   scripts/cross-arm64.sh [--profile release|debug] [--version V] [--out DIR] [--no-build]
#
#  1. Debian packages gcc-aarch64-linux-gnu, g++-aarch64-linux-gnu, libc6-dev-arm64-cross (and
#     binutils-aarch64-linux-gnu for strip/readelf), installed when missing;
#  2. the Rust target: rustup target add aarch64-unknown-linux-gnu;
#  3. ONNX Runtime for aarch64: libonnxruntime.so from the PyPI wheel onnxruntime==1.31.1
#     manylinux_2_28_aarch64, sha256-pinned (the same pin scripts/setup.sh uses on an aarch64
#     machine), into .cache/onnxruntime-aarch64/;
#  4. cargo build --target aarch64-unknown-linux-gnu -p edge-agent -p cloud-analyzer
#     --features cascade-infer/hailo, linked by aarch64-linux-gnu-gcc;
#  5. scripts/package-deb.sh --arch arm64 (into target/debian/ by default).
# The analyzer's arm64 container: design/packaging.md, "arm64" (the container file belongs to the
# container work; an arm64 image needs an arm64 base root and this binary, or buildx with QEMU).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
PROFILE=release
BUILD=1
PKG_ARGS=()
ORT_VERSION=1.31.1
ORT_SHA=da05378364c44d4407e463982d2bf8d5e4cfea873283757e48beeb41df97b7f3
ORT_DIR=.cache/onnxruntime-aarch64
ORT_LIB=$ORT_DIR/libonnxruntime.so

log() { printf '[cross-arm64] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
. scripts/wheel.sh

while [ $# -gt 0 ]; do
  case "$1" in
    --profile) PROFILE=$2; PKG_ARGS+=(--profile "$2"); shift 2 ;;
    --version|--out) PKG_ARGS+=("$1" "$2"); shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
# One pin for the aarch64 wheel: scripts/setup.sh's.
grep -q "$ORT_SHA" scripts/setup.sh || die "the aarch64 ONNX Runtime pin differs from scripts/setup.sh's"

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
for p in gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx "$TARGET"; then
  log "rustup target add $TARGET"
  rustup target add "$TARGET" || die "rustup could not install the $TARGET standard library (offline?): \
the script stops here; on a machine that reaches static.rust-lang.org run it again"
fi

if [ ! -f "$ORT_LIB" ]; then
  lib_from_wheel onnxruntime "$ORT_VERSION" manylinux_2_28_aarch64 "$ORT_SHA" \
    "onnxruntime/capi/libonnxruntime.so.${ORT_VERSION}" "$ORT_LIB"
  log "ONNX Runtime ${ORT_VERSION} (aarch64) at $ORT_LIB"
fi

if [ "$BUILD" = 1 ]; then
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
  export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
  # bindgen (v4l) parses the target's kernel headers from the cross sysroot.
  export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--sysroot=/usr/aarch64-linux-gnu -I/usr/aarch64-linux-gnu/include"
  export PKG_CONFIG_ALLOW_CROSS=1
  flags=(--target "$TARGET" -p edge-agent -p cloud-analyzer --features cascade-infer/hailo --bins)
  [ "$PROFILE" = release ] && flags+=(--release)
  log "cargo build ${flags[*]}"
  cargo build "${flags[@]}"
fi
for b in edge-agent cloud-analyzer; do
  f=${CARGO_TARGET_DIR:-target}/$TARGET/$PROFILE/$b
  [ -x "$f" ] || die "$f was not built"
  aarch64-linux-gnu-readelf -h "$f" | grep -q AArch64 || die "$f is not an AArch64 binary"
  log "$f: $(aarch64-linux-gnu-readelf -d "$f" | grep NEEDED | sed 's/.*\[\(.*\)\]/\1/' | tr '\n' ' ')"
done
scripts/package-deb.sh --arch arm64 "${PKG_ARGS[@]}"
