# Sourced by scripts/setup.sh and scripts/cross-arm64.sh (which define `log`).
#
# lib_from_wheel PACKAGE VERSION PLATFORM SHA256 MEMBER OUT: downloads one pinned cp311 wheel from
# PyPI (only its C library is used, so the local Python version does not matter), checks its
# sha256 and extracts MEMBER to OUT.
lib_from_wheel() {
  local pkg=$1 ver=$2 plat=$3 sha=$4 member=$5 out=$6
  local dir; dir=$(dirname "$out")
  local wheel="${pkg//-/_}-${ver}-cp311-cp311-${plat}.whl"
  mkdir -p "$dir"
  if [ ! -f "$dir/$wheel" ]; then
    log "fetching $wheel from PyPI"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
      --platform "$plat" "${pkg}==${ver}" -d "$dir"
  fi
  echo "$sha  $dir/$wheel" | sha256sum -c --quiet - || { log "sha256 mismatch for $wheel"; rm -f "$dir/$wheel"; exit 1; }
  python3 - "$dir/$wheel" "$member" "$out" <<'PY'
import sys, zipfile, shutil
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out + ".tmp", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  mv "$out.tmp" "$out"
  rm -f "$dir/$wheel"
}
