#!/usr/bin/env bash
# The Debian packages (design/packaging.md), from binaries already built, with dpkg-deb:
#   cascade-common          the `cascade` user and /var/lib/cascade (0700), ONNX Runtime in
#                           /usr/lib/cascade/, hardware profiles and model manifests (+ test models)
#                           under /usr/share/cascade/
#   cascade-edge-agent      /usr/bin/edge-agent, /etc/cascade/edge-agent.toml (conffile), its unit
#   cascade-cloud-analyzer  /usr/bin/cloud-analyzer, /etc/cascade/cloud-analyzer.toml, its unit
#
#   scripts/package-deb.sh [--profile release|debug] [--version V] [--arch amd64|arm64]
#                          [--ort FILE] [--bin-dir DIR] [--out DIR]
#
# Binaries come from $CARGO_TARGET_DIR (default target/): {debug,release}/ for amd64,
# aarch64-unknown-linux-gnu/release/ for arm64 (scripts/cross-arm64.sh builds those), or --bin-dir
# DIR; nothing is built here. Default out: target/debian/. ONNX Runtime
# from .cache/onnxruntime/libonnxruntime.so (amd64; scripts/setup.sh) or
# .cache/onnxruntime-aarch64/libonnxruntime.so (arm64; scripts/cross-arm64.sh), or --ort FILE.
# Model weights are not packaged (only the manifests and the tiny generated test models): a model
# artifact installs them, their sha256 checked against the manifest (design/ota.md).
# Depends: computed by dpkg-shlibdeps for native binaries, else the libraries ldd lists, stated.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=release
ARCH=amd64
OUT=target/debian
ORT=""
BIN_DIR=""
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)

log() { printf '[package-deb] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --profile) PROFILE=$2; shift 2 ;;
    --version) VERSION=$2; shift 2 ;;
    --arch) ARCH=$2; shift 2 ;;
    --ort) ORT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --bin-dir) BIN_DIR=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$ARCH" in
  amd64) BIN_DIR=${BIN_DIR:-$TARGET_DIR/$PROFILE}; PROFILE_NAME=x86_64-cpu; STRIP=${STRIP:-strip}
         ORT=${ORT:-.cache/onnxruntime/libonnxruntime.so} ;;
  arm64) BIN_DIR=${BIN_DIR:-$TARGET_DIR/aarch64-unknown-linux-gnu/$PROFILE}; PROFILE_NAME=raspberry-pi-5
         STRIP=${STRIP:-aarch64-linux-gnu-strip}; ORT=${ORT:-.cache/onnxruntime-aarch64/libonnxruntime.so} ;;
  *) die "--arch must be amd64 or arm64, not $ARCH" ;;
esac
case "$PROFILE" in release|debug) ;; *) die "--profile must be release or debug, not $PROFILE" ;; esac
[[ "$VERSION" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "--version $VERSION is not a Debian version"
for f in "$BIN_DIR/edge-agent" "$BIN_DIR/cloud-analyzer"; do
  [ -x "$f" ] || die "$f is missing: build it first (cargo build --bins$([ "$PROFILE" = release ] && echo ' --release'))"
done
[ -f "$ORT" ] || die "ONNX Runtime $ORT is missing (scripts/setup.sh fetches it)"
command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (Debian package dpkg)"
command -v "$STRIP" >/dev/null || die "$STRIP is missing (binutils$([ "$ARCH" = arm64 ] && echo -aarch64-linux-gnu))"

# Release packages are xz-compressed (Debian's default); debug ones (tests) gzip -1, for speed.
if [ "$PROFILE" = release ]; then COMPRESS=(-Zxz); else COMPRESS=(-Zgzip -z1); fi
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/cascade-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$OUT"

# sub FILE FROM TO: replaces one line that must be there (a starter config that changed
# stops the build here rather than ship a config that does not work as written).
sub() {
  grep -qF -- "$2" "$1" || die "$1: the line to adjust is gone: $2"
  FROM=$2 TO=$3 perl -0pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/' "$1"
}

# depends BINARY...: the shared-library dependencies (dpkg-shlibdeps natively, else stated).
depends() {
  if [ "$ARCH" = "$(dpkg --print-architecture)" ] && command -v dpkg-shlibdeps >/dev/null; then
    local d; d=$(mktemp -d "$STAGE/shlibs.XXXX")
    mkdir -p "$d/debian"
    printf 'Source: cascade\n\nPackage: cascade\nArchitecture: any\n' >"$d/debian/control"
    local abs=(); for b in "$@"; do abs+=("$(realpath "$b")"); done
    (cd "$d" && dpkg-shlibdeps -O --warnings=1 "${abs[@]}" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
  else
    # Cross: what bookworm's arm64 libraries provide these binaries (checked with
    # aarch64-linux-gnu-readelf -d: libc, libm, libgcc_s; ONNX Runtime also libstdc++).
    echo "libc6 (>= 2.34), libgcc-s1 (>= 4.2), libstdc++6 (>= 12)"
  fi
}

# control PKG DEPENDS DESCRIPTION...: writes DEBIAN/control of the staged package.
control() {
  local pkg=$1 deps=$2; shift 2
  local size; size=$(du -sk --exclude=DEBIAN "$STAGE/$pkg" | cut -f1)
  cat >"$STAGE/$pkg/DEBIAN/control" <<EOF
Package: $pkg
Version: $VERSION
Architecture: $ARCH
Maintainer: cascade maintainers <cascade@example.net>
Installed-Size: $size
Depends: $deps
Section: video
Priority: optional
Homepage: https://example.net/cascade
Description: $1
EOF
  shift
  for line in "$@"; do printf ' %s\n' "$line" >>"$STAGE/$pkg/DEBIAN/control"; done
}

# docs PKG: copyright and changelog, as Debian wants them.
docs() {
  local d="$STAGE/$1/usr/share/doc/$1"
  install -d -m 0755 "$d"
  cat >"$d/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: cascade
Files: *
Copyright: 2025-2026 cascade contributors
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
 ONNX Runtime (/usr/lib/cascade/libonnxruntime.so) is MIT-licensed (Microsoft).
EOF
  printf '%s (%s) stable; urgency=medium\n\n  * Built by scripts/package-deb.sh.\n\n -- cascade maintainers <cascade@example.net>  %s\n' \
    "$1" "$VERSION" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" |
    gzip -9n >"$d/changelog.gz"
  chmod 0644 "$d/copyright" "$d/changelog.gz"
}

# scripts PKG: the maintainer scripts from deploy/debian/.
scripts() {
  install -d -m 0755 "$STAGE/$1/DEBIAN"
  for s in postinst prerm postrm; do
    [ -f "deploy/debian/$1.$s" ] && install -m 0755 "deploy/debian/$1.$s" "$STAGE/$1/DEBIAN/$s"
  done
  return 0
}

build() {
  local pkg=$1 deb="$OUT/${1}_${VERSION}_${ARCH}.deb"
  find "$STAGE/$pkg" -type d -exec chmod 0755 {} +
  (cd "$STAGE/$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 md5sum >DEBIAN/md5sums)
  chmod 0644 "$STAGE/$pkg/DEBIAN/md5sums"
  dpkg-deb --root-owner-group "${COMPRESS[@]}" --build "$STAGE/$pkg" "$deb" >/dev/null
  log "$deb ($(du -h "$deb" | cut -f1))"
}

# --- cascade-common ---------------------------------------------------------------------------
C="$STAGE/cascade-common"
scripts cascade-common
install -d -m 0755 "$C/usr/lib/cascade" "$C/usr/share/cascade/hardware-profiles" "$C/usr/share/cascade/models/test"
install -m 0644 "$ORT" "$C/usr/lib/cascade/libonnxruntime.so"
"$STRIP" --strip-unneeded --remove-section=.comment "$C/usr/lib/cascade/libonnxruntime.so"
install -m 0644 hardware-profiles/*.toml "$C/usr/share/cascade/hardware-profiles/"
install -m 0644 models/*.toml "$C/usr/share/cascade/models/"
install -m 0644 models/test/* "$C/usr/share/cascade/models/test/"
docs cascade-common
# ONNX Runtime's own build links curl and mbedtls statically (upstream's wheel; not rebuilt here).
install -d -m 0755 "$C/usr/share/lintian/overrides"
printf '%s\n' "cascade-common: embedded-library curl [usr/lib/cascade/libonnxruntime.so]" \
  "cascade-common: embedded-library mbedtls [usr/lib/cascade/libonnxruntime.so]" \
  >"$C/usr/share/lintian/overrides/cascade-common"
chmod 0644 "$C/usr/share/lintian/overrides/cascade-common"
control cascade-common "adduser, $(depends "$ORT")" \
  "cascade: shared files of the edge agent and the cloud analyzer" \
  "The cascade system user and its state folder /var/lib/cascade (0700)," \
  "ONNX Runtime (libonnxruntime.so, loaded at run time), the hardware" \
  "profiles and the model manifests. Model weights are installed separately" \
  "(a model artifact; their sha256 is checked)."
build cascade-common

# --- the two services -------------------------------------------------------------------------
service() {
  local svc=$1 pkg=cascade-$1; shift
  local P="$STAGE/$pkg"
  scripts "$pkg"
  install -d -m 0755 "$P/usr/bin" "$P/etc/cascade" "$P/lib/systemd/system"
  install -m 0755 "$BIN_DIR/$svc" "$P/usr/bin/$svc"
  "$STRIP" --strip-unneeded --remove-section=.comment "$P/usr/bin/$svc"
  install -m 0644 "deploy/$svc.toml" "$P/etc/cascade/$svc.toml"
  install -m 0644 "deploy/systemd/$pkg.service" "$P/lib/systemd/system/$pkg.service"
  echo "/etc/cascade/$svc.toml" >"$P/DEBIAN/conffiles"
  docs "$pkg"
  install -m 0644 README.md "$P/usr/share/doc/$pkg/README.md"
  control "$pkg" "cascade-common (= $VERSION), $(depends "$P/usr/bin/$svc")" "$@"
}

service edge-agent \
  "cascade edge agent: cameras to person crops over MQTT" \
  "Reads cameras (RTSP, V4L2, files), finds motion and people on the device," \
  "and sends person crops to the cloud analyzer over MQTT/TLS from a durable" \
  "offline buffer."
E="$STAGE/cascade-edge-agent/etc/cascade/edge-agent.toml"
sub "$E" '# Starter config for the edge agent. Relative paths are relative to this file.' \
  '# The edge agent'"'"'s config, as packaged (/etc/cascade/edge-agent.toml, a conffile: an upgrade keeps your
# changes). To run: the camera below, the broker and its certificates (/etc/cascade/*.pem), and a
# model (a model artifact installs it in /var/lib/cascade/models/edge/; design/ota.md). Relative
# paths are relative to this file.'
sub "$E" 'profile = "../hardware-profiles/x86_64-cpu.toml"' \
  "profile = \"/usr/share/cascade/hardware-profiles/$PROFILE_NAME.toml\"   # others: /usr/share/cascade/hardware-profiles/"
sub "$E" 'source = { kind = "file", path = "../tests/fixtures/walker.mp4", realtime = false }' \
  'source = { kind = "v4l2", device = "/dev/video0" }'
sub "$E" '# source = { kind = "file", path = "../tests/fixtures/walker.h264", realtime = true, loop = true, fps = 25.0 }' \
  '# source = { kind = "file", path = "/var/lib/cascade/clip.mp4", realtime = true, loop = true }'
sub "$E" 'manifest = "../models/blob-yolov8-int8.toml"   # real model: ../models/yolov8n-int8-static.toml (scripts/fetch-models.sh)' \
  'manifest = "/var/lib/cascade/models/edge/manifest.toml"   # installed by a model artifact; a test model: /usr/share/cascade/models/blob-yolov8-int8.toml'
sub "$E" '# onnxruntime = "/opt/onnxruntime/lib/libonnxruntime.so"   # default: $ORT_DYLIB_PATH, then .cache/onnxruntime/' \
  'onnxruntime = "/usr/lib/cascade/libonnxruntime.so"   # from the package cascade-common'
build cascade-edge-agent

service cloud-analyzer \
  "cascade cloud analyzer: confirms edge crops and raises alerts" \
  "Receives person crops over MQTT, confirms them with an FP32 detector," \
  "stores them (SQLite or PostgreSQL), raises alerts and serves them over an" \
  "HTTP API."
A="$STAGE/cascade-cloud-analyzer/etc/cascade/cloud-analyzer.toml"
sub "$A" '# Starter config for the cloud analyzer. Relative paths are relative to this file.' \
  '# The cloud analyzer'"'"'s config, as packaged (/etc/cascade/cloud-analyzer.toml, a conffile). To run:
# a model (a model artifact installs it in /var/lib/cascade/models/cloud/; design/ota.md).
# Relative paths are relative to this file.'
sub "$A" 'manifest = "../models/blob-yolov8-fp32.toml"   # real FP32 model: ../models/yolov8n-fp32.toml' \
  'manifest = "/var/lib/cascade/models/cloud/manifest.toml"   # installed by a model artifact; a test model: /usr/share/cascade/models/blob-yolov8-fp32.toml'
sub "$A" '# onnxruntime = "/opt/onnxruntime/lib/libonnxruntime.so"   # default: $ORT_DYLIB_PATH, then .cache/onnxruntime/' \
  'onnxruntime = "/usr/lib/cascade/libonnxruntime.so"   # from the package cascade-common'
sub "$A" 'dir = "/var/lib/cascade-cloud"' 'dir = "/var/lib/cascade/cloud-analyzer"'
build cascade-cloud-analyzer
