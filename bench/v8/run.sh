#!/usr/bin/env bash
# Times the kafka-lens module's own code under V8 (node), warm and with cold caches (see host.cjs),
# after counting its heap allocations per round trip natively (bench/examples/allocs.rs).
#   bench/v8/run.sh [module.wasm ...]      # default: the module built from this tree
#   PERF=1 bench/v8/run.sh                 # also a perf profile with the module's function names
#   FOOTPRINT=1 bench/v8/run.sh            # also the code and data one round trip touches (footprint.py)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
out="$ROOT/.run/v8"
mkdir -p "$out"
cargo build --quiet --release -p kafka-lens-bench --bin v8frames
"$CARGO_TARGET_DIR/release/v8frames" "$out"
# Heap allocations per round trip of the connection logic over the same frames, natively.
cargo run --quiet --release -p kafka-lens-bench --example allocs "$out"
modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
  cargo build --quiet --release --target wasm32-wasip1 -p kafka-lens-filter
  modules=("$CARGO_TARGET_DIR/wasm32-wasip1/release/kafka_lens_filter.wasm")
fi
for module in "${modules[@]}"; do
  module="$(realpath "$module")"
  node --no-liftoff "$ROOT/bench/v8/host.cjs" "$module" "$out" 40000 0 2>/dev/null | grep "^{"
  node --no-liftoff "$ROOT/bench/v8/host.cjs" "$module" "$out" 12000 4194304 2>/dev/null | grep "^{"
  # 16 MiB between callbacks (past L2, much of L3 and the TLBs): about what Envoy's callbacks see.
  node --no-liftoff "$ROOT/bench/v8/host.cjs" "$module" "$out" 4000 16777216 2>/dev/null | grep "^{"
  if [ "${PERF:-0}" = 1 ]; then
    # From $out: node leaves its V8 log (isolate-*.log) in the working directory.
    (cd "$out" && perf record -q -F 10000 -g -o "$out/perf.data" node --no-liftoff --perf-basic-prof "$ROOT/bench/v8/host.cjs" "$module" "$out" 60000 0 >/dev/null 2>&1)
    perf report -i "$out/perf.data" --no-children --sort sym -g none 2>/dev/null | grep -- '-turbofan' | head -40
  fi
  if [ "${FOOTPRINT:-0}" = 1 ]; then
    python3 "$ROOT/bench/v8/footprint.py" "$module" "$out"
  fi
done
