#!/usr/bin/env bash
# The main job on embedded defaults: a real Mosquitto over TLS, the edge agent on a clip (the real
# clip and INT8 model when present, else the generated ones), and what a subscriber received.
# Extra arguments go to cascade-demo: --clip FILE --manifest MODEL.toml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/fetch-models.sh >/dev/null 2>&1 || echo "[demo] real models not available here; using the generated test model"
cargo build --release --locked -p edge-agent -p cascade-tests --bins
exec target/release/cascade-demo "$@"
