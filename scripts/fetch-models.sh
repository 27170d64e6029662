#!/usr/bin/env bash
# Fetches the real pretrained models named by models/*.toml into models/downloads/, checking each
# against the sha256 its manifest pins (a manifest's `[[sizes]]` name more files, one per input
# side, each with its own sha256). A file already present and correct is kept. A model is first
# copied from $CASCADE_MODELS_FROM (default ../shared/models) when it is there, else downloaded from
# the manifest's download_url. Needs internet only for models not found locally.
set -euo pipefail
cd "$(dirname "$0")/.."
from="${CASCADE_MODELS_FROM:-../shared/models}"
mkdir -p models/downloads
status=0

# fetch DEST SHA URL: one model file into place, checked.
fetch() {
  local dest=$1 sha=$2 url=$3 name
  name=$(basename "$dest")
  if [ -f "$dest" ] && echo "$sha  $dest" | sha256sum -c --quiet - 2>/dev/null; then
    echo "ok       $dest"; return 0
  fi
  if [ -f "$from/$name" ]; then
    cp "$from/$name" "$dest.part"
  elif [ -n "$url" ]; then
    echo "fetch    $url"
    curl -fsSL --retry 3 -o "$dest.part" "$url" || { echo "FAILED   $url" >&2; rm -f "$dest.part"; return 1; }
  else
    echo "missing  $dest: no download_url and not in $from" >&2; return 1
  fi
  if echo "$sha  $dest.part" | sha256sum -c --quiet - 2>/dev/null; then
    mv "$dest.part" "$dest"; echo "ok       $dest"
  else
    echo "BAD SHA  $dest (expected $sha)" >&2; rm -f "$dest.part"; return 1
  fi
}

for manifest in models/*.toml; do
  # Every `file` (the main one and each size's) in order, each followed by its `sha256`.
  mapfile -t files < <(sed -n 's/^file = "\(.*\)"/\1/p' "$manifest")
  mapfile -t shas < <(sed -n 's/^sha256 = "\(.*\)"/\1/p' "$manifest")
  url=$(sed -n 's/^download_url = "\(.*\)"/\1/p' "$manifest")
  if [ "${#files[@]}" -ne "${#shas[@]}" ]; then
    echo "BAD      $manifest: ${#files[@]} files but ${#shas[@]} sha256 lines" >&2; status=1; continue
  fi
  for i in "${!files[@]}"; do
    case "${files[$i]}" in downloads/*) ;; *) continue ;; esac
    # download_url names the main file only.
    [ "$i" -eq 0 ] || url=""
    fetch "models/${files[$i]}" "${shas[$i]}" "$url" || status=1
  done
done
exit $status
