#!/usr/bin/env bash
# One-time, idempotent set-up for a fresh Debian/Ubuntu machine (also called by demo.sh and test.sh).
#  - system packages: nasm (openh264 SIMD), libclang-dev (bindgen for v4l), mosquitto (test suite),
#    pkg-config, postgresql (the replica tests' server), python3-pip (to fetch the ONNX Runtime wheel),
#    GStreamer's RTSP server for the tests, chromium (the gallery's browser test);
#  - ONNX Runtime: libonnxruntime.so from the PyPI wheel onnxruntime==1.31.1 (matched to ort 2.0.0-rc.15),
#    checked against a pinned sha256 and unpacked into .cache/onnxruntime/ (ignored by git);
#  - LiteRT: libLiteRt.so from the PyPI wheel ai-edge-litert==2.1.4 (the C API cascade-infer's
#    `litert` backend binds; 2.3.0 is ABI-incompatible), sha256-pinned, into .cache/litert/;
#  - cascade/debian:bookworm, when a Docker engine answers: the local base image of the container and
#    package tests (scripts/base-image.sh: debootstrap from Debian's packages, no registry needed);
#  - promtool (Debian `prometheus`), and docker-compose where a Docker engine answers without compose;
#  - .venv-k8s/ (ignored by git): scripts/requirements-k8s.txt (pinned, from PyPI) for the manifests' test;
#  - .venv-quant/ (ignored by git): Python >= 3.11 venv with scripts/requirements-quantize.txt (pinned,
#    from PyPI) for scripts/quantize.py and its test; made again only when that file changes.
#  - .venv-mlserver/ (ignored by git): MLServer with ONNX Runtime from scripts/requirements-mlserver.txt
#    (pinned, PyPI), the real KServe v2 inference server of tests/tests/kserve.rs; made again only
#    when that file changes.
# Nothing else is downloaded, and nothing is downloaded at build time.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=1.31.1
CACHE=.cache/onnxruntime
LIB="$CACHE/libonnxruntime.so"

log() { printf '[setup] %s\n' "$*" >&2; }

need_pkgs=()
command -v nasm >/dev/null || need_pkgs+=(nasm)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_pkgs+=(mosquitto)
command -v pkg-config >/dev/null || need_pkgs+=(pkg-config)
# PostgreSQL's server programs for the replica tests (the harness runs initdb/pg_ctl in a temp dir).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql)
# libclang.so itself: libclang-cpp.so (installed with other LLVM tools) does not serve bindgen.
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need_pkgs+=(libclang-dev)
python3 -m pip --version >/dev/null 2>&1 || need_pkgs+=(python3-pip)
# The tests' real RTSP server (tests/rtsp/server.py): GStreamer's rtsp-server through Debian's python3.
/usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' >/dev/null 2>&1 ||
  need_pkgs+=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)
command -v python3 >/dev/null || need_pkgs+=(python3)
# The alert gallery's browser test (tests/tests/gallery.rs): Debian's headless-capable Chromium.
command -v chromium >/dev/null || need_pkgs+=(chromium)
# promtool (Debian's prometheus package) for the alerting rules' checks (tests/tests/dashboards.rs).
command -v promtool >/dev/null || need_pkgs+=(prometheus)
# Compose v1 (Debian's docker-compose) for the compose test, where a Docker engine answers and
# neither `docker compose` nor `docker-compose` works yet.
if command -v docker >/dev/null && docker info >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1 &&
  ! command -v docker-compose >/dev/null; then
  need_pkgs+=(docker-compose)
fi
# Python >= 3.11 for .venv-quant (numpy 2.4 and onnxruntime 1.31 need it), with venv/ensurepip.
QUANT_PY=""
for c in python3.11 python3.12 python3.13 python3; do
  if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    QUANT_PY=$(command -v "$c"); break
  fi
done
if [ -n "$QUANT_PY" ] && ! "$QUANT_PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need_pkgs+=("$(basename "$QUANT_PY")-venv")
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_pkgs[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# lib_from_wheel: one C library out of a pinned PyPI wheel (scripts/wheel.sh).
. scripts/wheel.sh

if [ ! -f "$LIB" ]; then
  case "$(uname -m)" in
    x86_64) sha=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f ;;
    aarch64) sha=da05378364c44d4407e463982d2bf8d5e4cfea873283757e48beeb41df97b7f3 ;;
    *) log "no pinned ONNX Runtime wheel for $(uname -m)"; exit 1 ;;
  esac
  lib_from_wheel onnxruntime "$ORT_VERSION" "manylinux_2_28_$(uname -m)" "$sha" \
    "onnxruntime/capi/libonnxruntime.so.${ORT_VERSION}" "$LIB"
  log "ONNX Runtime ${ORT_VERSION} ready at $LIB"
fi

# LiteRT (TFLite models): libLiteRt.so from the ai-edge-litert wheel.
LITERT_VERSION=2.1.4
LITERT_LIB=.cache/litert/libLiteRt.so
if [ ! -f "$LITERT_LIB" ]; then
  case "$(uname -m)" in
    x86_64) sha=1bed8ccd8dfc4f2ec388bc79cb90920c261a244995ce378d396fb8967b7db640 ;;
    aarch64) sha=f2f07d27211a6b64ed374733bcbdd78dcf0cdc70de5c5f7d0ce7f198d4890a23 ;;
    *) sha="" ;;
  esac
  if [ -n "$sha" ]; then
    lib_from_wheel ai-edge-litert "$LITERT_VERSION" "manylinux_2_27_$(uname -m)" "$sha" \
      ai_edge_litert/libLiteRt.so "$LITERT_LIB"
    log "LiteRT ${LITERT_VERSION} ready at $LITERT_LIB"
  else
    log "no pinned ai-edge-litert wheel for $(uname -m) (the LiteRT backend will be unavailable)"
  fi
fi

# python_venv DIR REQUIREMENTS BIN WHAT: a venv at DIR with the pinned REQUIREMENTS (from PyPI),
# made with Python >= 3.11 and made again only when that file changes (its sha256 is kept in DIR).
python_venv() {
  local venv=$1 req=$2 bin=$3 what=$4
  local want; want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -x "$venv/bin/$bin" ] && [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" = "$want" ]; then
    return
  fi
  [ -n "$QUANT_PY" ] || { log "no Python >= 3.11 for $venv ($what); install python3.11"; exit 1; }
  log "creating $venv with $QUANT_PY from $req ($what)"
  rm -rf "$venv"
  "$QUANT_PY" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  echo "$want" >"$venv/.requirements.sha256"
  log "$venv ready"
}
# scripts/quantize.py (tests/tests/quantize.rs runs the script with it).
python_venv .venv-quant scripts/requirements-quantize.txt python "scripts/quantize.py"
# The KServe v2 inference server of tests/tests/kserve.rs and the cloud benchmark (MLServer).
python_venv .venv-mlserver scripts/requirements-mlserver.txt mlserver "MLServer"
# kubernetes-validate (Kubernetes' schemas, offline) for tests/tests/k8s.rs.
python_venv .venv-k8s scripts/requirements-k8s.txt kubernetes-validate "kubernetes-validate"

# The containers' and package tests' base image (they skip, saying so, without a Docker engine).
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  scripts/base-image.sh
else
  log "no Docker engine here: the container and package tests will skip"
fi
