#!/usr/bin/env bash
# The benchmark (`make bench`): builds what it needs, runs the codec micro-benchmarks and the
# end-to-end comparison (direct / Envoy tcp_proxy / pass-through Wasm / kafka-lens), and writes
# bench/results/{results.json,results.md,chart.png}. Not part of the test suite (that runs
# tests/test_bench_smoke.py, a few-second version).
#
#   bench/run.sh                      # everything, ~15 minutes on a 2-core machine once built
#   bench/run.sh --reps 5             # extra options go to bench/run.py (see --help)
#   BENCH_MICRO=0 bench/run.sh        # skip the criterion micro-benchmarks
#
# Run it on a machine as quiet as you can make it: every number is CPU time or latency.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tests/setup.sh
source "$ROOT/tests/setup.sh"
cd "$ROOT"

MATPLOTLIB_VERSION=3.10.7
if ! "$VENV/bin/python" -c "import matplotlib, sys; sys.exit(matplotlib.__version__ != '$MATPLOTLIB_VERSION')" 2>/dev/null; then
  step "pip install matplotlib==$MATPLOTLIB_VERSION (charts)"
  "$VENV/bin/pip" install -q "matplotlib==$MATPLOTLIB_VERSION"
fi

step "cargo build: load generator (release) and the pass-through floor filter (wasm32-wasip1)"
cargo build --quiet --release -p kafka-lens-bench --bin loadgen
cargo build --quiet --release --target wasm32-wasip1 -p kafka-lens-bench-floor
cp "$CARGO_TARGET_DIR/wasm32-wasip1/release/kafka_lens_bench_floor.wasm" "$ROOT/.run/bench-floor.wasm"

for config in envoy-configs/bench-*.yaml; do
  envoy --mode validate -l error -c "$config" >/dev/null 2>&1 || envoy --mode validate -c "$config"
done

if [ "${BENCH_MICRO:-1}" != 0 ]; then
  step "codec micro-benchmarks (criterion)"
  rm -rf "$CARGO_TARGET_DIR/criterion"
  cargo bench --quiet -p kafka-lens-bench --features criterion --bench codec -- --noplot \
    > "$ROOT/.run/bench-criterion.log" 2>&1 || { tail -n 30 "$ROOT/.run/bench-criterion.log"; exit 1; }
  grep -E '^[a-z_]+/|time:' "$ROOT/.run/bench-criterion.log" | paste - - | sed -E 's/ +/ /g' | head -n 80
fi

step "end-to-end benchmark"
python "$ROOT/bench/run.py" --loadgen "$CARGO_TARGET_DIR/release/loadgen" --criterion-dir "$CARGO_TARGET_DIR/criterion" "$@"
