#!/usr/bin/env bash
# The test command (README, .ci/run): installs whatever is missing, then runs every test.
#   0. the codec's generated code matches its generator
#   1. clippy -D warnings on codec and filter for wasm32-wasip1 (no unwrap/expect/panic/indexing;
#      no panicking proxy-wasm hostcalls outside filter/src/host.rs)
#   2. native Rust tests (codec round trips for every API/version, splitter and filter properties)
#   3. fuzzing: every cargo-fuzz target for 15 s from the committed corpora (tests/fuzz.sh)
#   4. end-to-end tests: real tansu broker, real Envoy with the freshly built module, real clients
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tests/setup.sh
source "$ROOT/tests/setup.sh"
cd "$ROOT"

step "generated code is current (codec/gen/generate.py --check)"
python3 "$ROOT/codec/gen/generate.py" --check

step "clippy: codec and filter, wasm32-wasip1, -D warnings"
cargo clippy --quiet -p kafka-lens-codec -p kafka-lens-filter --target wasm32-wasip1 --lib -- -D warnings

step "cargo test (native)"
cargo test --quiet --workspace

step "fuzz targets, 15 s each (tests/fuzz.sh; long runs: tests/fuzz.sh --seconds 3600)"
"$ROOT/tests/fuzz.sh" --seconds 15

step "cargo build: the pass-through floor module (bench-floor.yaml is validated with it)"
cargo build --quiet --release --target wasm32-wasip1 -p kafka-lens-bench-floor
cp "$CARGO_TARGET_DIR/wasm32-wasip1/release/kafka_lens_bench_floor.wasm" "$ROOT/.run/bench-floor.wasm"

step "end-to-end tests (pytest)"
cd "$ROOT/tests"
python -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning "$@"
