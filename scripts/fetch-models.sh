#!/usr/bin/env bash
# Fetches the real pretrained models named by models/*.toml into models/downloads/, checking each
# against the sha256 its manifest pins. A file already present and correct is kept. A model is first
# copied from $CASCADE_MODELS_FROM (default ../shared/models) when it is there, else downloaded from
# the manifest's download_url. Needs internet only for models not found locally.
set -euo pipefail
cd "$(dirname "$0")/.."
from="${CASCADE_MODELS_FROM:-../shared/models}"
mkdir -p models/downloads
status=0
for manifest in models/*.toml; do
  file=$(sed -n 's/^file = "\(.*\)"/\1/p' "$manifest")
  case "$file" in downloads/*) ;; *) continue ;; esac
  sha=$(sed -n 's/^sha256 = "\(.*\)"/\1/p' "$manifest")
  url=$(sed -n 's/^download_url = "\(.*\)"/\1/p' "$manifest")
  dest="models/$file"
  name=$(basename "$file")
  if [ -f "$dest" ] && echo "$sha  $dest" | sha256sum -c --quiet - 2>/dev/null; then
    echo "ok       $dest"; continue
  fi
  if [ -f "$from/$name" ]; then
    cp "$from/$name" "$dest.part"
  elif [ -n "$url" ]; then
    echo "fetch    $url"
    curl -fsSL --retry 3 -o "$dest.part" "$url" || { echo "FAILED   $url" >&2; rm -f "$dest.part"; status=1; continue; }
  else
    echo "missing  $dest: no download_url and not in $from" >&2; status=1; continue
  fi
  if echo "$sha  $dest.part" | sha256sum -c --quiet - 2>/dev/null; then
    mv "$dest.part" "$dest"; echo "ok       $dest"
  else
    echo "BAD SHA  $dest (expected $sha)" >&2; rm -f "$dest.part"; status=1
  fi
done
exit $status
