#!/usr/bin/env bash
# The main job on embedded defaults: the cloud analyzer with its embedded broker (TLS), the edge
# agent on a clip, an MQTT subscriber printing the alerts, and a summary. Uses the real models and
# clip when present (scripts/fetch-models.sh, ../shared/samples), else generated ones, and says so.
# Extra arguments go to cascade-demo: --clip FILE, --realtime or --skim
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/fetch-models.sh >/dev/null 2>&1 || echo "[demo] real models not available here; using the generated test models"
cargo build --release --locked -p edge-agent -p cloud-analyzer -p cascade-tests --bins
exec target/release/cascade-demo "$@"
