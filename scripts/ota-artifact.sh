#!/usr/bin/env bash
# Mender artifacts for the update module deploy/ota/mender/cascade-deb (design/ota.md), written by
# mender-artifact (Debian package mender-artifact; `apt-get install mender-artifact`).
#
#   scripts/ota-artifact.sh deb   --name NAME --device-type TYPE --out FILE.mender DEB...
#       payload type cascade-deb: the .debs (scripts/package-deb.sh), installed together.
#   scripts/ota-artifact.sh model --name NAME --device-type TYPE --out FILE.mender \
#                                 [--slot edge|cloud] MANIFEST.toml
#       payload type cascade-model: the manifest (its `file`s rewritten to sit beside it), every
#       model file it names (checked against their sha256 here, and again on the device), `slot`.
#
# The command it runs, for a pipeline of your own:
#   mender-artifact write module-image -T cascade-deb -n NAME -t TYPE -o OUT -f a.deb -f b.deb
# Sign artifacts for a fleet with `mender-artifact sign -k private.key FILE.mender` (the devices
# then verify with ArtifactVerifyKey in mender.conf).
set -euo pipefail

log() { printf '[ota-artifact] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# -ge 1 ] || die "usage: $0 deb|model --name NAME --device-type TYPE --out FILE ... (see its header)"
KIND=$1; shift
NAME="" TYPE="" OUT="" SLOT=edge
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --name) NAME=$2; shift 2 ;;
    --device-type) TYPE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --slot) SLOT=$2; shift 2 ;;
    -*) die "unknown option $1" ;;
    *) args+=("$1"); shift ;;
  esac
done
[ -n "$NAME" ] && [ -n "$TYPE" ] && [ -n "$OUT" ] || die "--name, --device-type and --out are needed"
[ ${#args[@]} -gt 0 ] || die "no input files"
command -v mender-artifact >/dev/null || die "mender-artifact is missing (apt-get install mender-artifact)"

files=()
case "$KIND" in
  deb)
    work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
    for deb in "${args[@]}"; do
      [ -f "$deb" ] || die "$deb: no such file"
      pkg=$(dpkg-deb -f "$deb" Package)
      case "$pkg" in cascade-*) ;; *) die "$deb is not a cascade package" ;; esac
      # Payload names allow only letters, digits and ".,_-": a version's "~" or "+" becomes "-".
      name=$(basename "$deb" | sed 's/[^A-Za-z0-9.,_-]/-/g')
      cp "$deb" "$work/$name"
      files+=(-f "$work/$name")
    done
    TYPE_NAME=cascade-deb
    ;;
  model)
    [ ${#args[@]} -eq 1 ] || die "model: one manifest"
    manifest=${args[0]}
    [ -f "$manifest" ] || die "$manifest: no such file"
    case "$SLOT" in edge|cloud) ;; *) die "--slot must be edge or cloud" ;; esac
    dir=$(cd "$(dirname "$manifest")" && pwd)
    work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
    # Model files beside the manifest: `file = "downloads/x.onnx"` becomes `file = "x.onnx"`.
    sed -E 's|^(file *= *")([^"]*/)?([^"/]+")|\1\3|' "$manifest" >"$work/manifest.toml"
    echo "$SLOT" >"$work/slot"
    files+=(-f "$work/manifest.toml" -f "$work/slot")
    while read -r sum file; do
      src="$dir/$file"
      [ -f "$src" ] || die "$manifest names $file: missing (scripts/fetch-models.sh)"
      echo "$sum  $src" | sha256sum --check --quiet --strict - || die "$src does not match its manifest's sha256"
      cp "$src" "$work/$(basename "$file")"
      files+=(-f "$work/$(basename "$file")")
    done < <(awk -F'"' '/^file *=/ { f = $2 } /^sha256 *=/ { if (f != "") { print $2, f; f = "" } }' "$manifest")
    TYPE_NAME=cascade-model
    ;;
  *) die "the kind is deb or model, not $KIND" ;;
esac

mender-artifact write module-image -T "$TYPE_NAME" -n "$NAME" -t "$TYPE" -o "$OUT" "${files[@]}" >/dev/null
log "$OUT ($TYPE_NAME, $(du -h "$OUT" | cut -f1)): install with \`mender install $OUT\` or a Mender deployment"
