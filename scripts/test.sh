#!/usr/bin/env bash
# The project's test command (README; .ci/run calls exactly this). Idempotent set-up first, then
# formatting, lints, and every test: unit, property, SIGKILL, real ONNX Runtime, real Mosquitto/TLS.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests run the binaries as processes: build them all first.
cargo build --workspace --bins --locked
cargo test --workspace --locked
