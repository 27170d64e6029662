#!/usr/bin/env bash
# The project's test command (README; .ci/run calls exactly this). Idempotent set-up first, then
# formatting, lints, and every test: unit, property, SIGKILL, real ONNX Runtime, real Mosquitto/TLS,
# end to end. Ends with one line: "tests: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
# Features no default build has, built and tested everywhere below (one feature set for clippy,
# build and test, so nothing is compiled twice): the Hailo backend (its library cannot be had
# here; its tests need none).
features=(--features cascade-infer/hailo)
cargo clippy --workspace --all-targets --locked "${features[@]}" -- -D warnings
# The crate rule: the cloud container builds neither the edge agent nor its decoder or buffer.
if cargo tree -p cloud-analyzer --locked --prefix none | grep -E '^(edge-agent|openh264|redb) '; then
  echo "cloud-analyzer depends on edge-only crates (above): see ARCHITECTURE.md, the dependency rule" >&2
  exit 1
fi
# The fuzz targets (not in the workspace) still compile against the crates they fuzz.
cargo check --manifest-path fuzz/Cargo.toml --bins
# The end-to-end tests run the binaries as processes: build them all first.
cargo build --workspace --bins --locked "${features[@]}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --lib --bins --tests "${features[@]}" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
