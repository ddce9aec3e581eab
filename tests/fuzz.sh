#!/usr/bin/env bash
# Runs every fuzz target (tests/fuzz, cargo-fuzz + libFuzzer on the nightly toolchain) for the
# given time each, starting from the committed corpora (copied: the run never edits them).
#   tests/fuzz.sh --seconds 15     short run (part of tests/run.sh)
#   tests/fuzz.sh --seconds 3600   long run
# Prints each target's executions; a crash fails the run and leaves the input under .run/fuzz/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH=15
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH="$2"; shift 2 ;;
    *) echo "usage: $0 [--seconds N]" >&2; exit 2 ;;
  esac
done
CACHE="${KAFKA_LENS_CACHE:-$HOME/.cache/kafka-lens}"
CARGO_FUZZ="$CACHE/cargo-fuzz/bin/cargo-fuzz"
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if [ ! -x "$CARGO_FUZZ" ]; then
  cargo install --locked cargo-fuzz --version 0.13.2 --root "$CACHE/cargo-fuzz"
fi
export CARGO_TARGET_DIR="$CACHE/fuzz-target"
export PATH="$CACHE/cargo-fuzz/bin:$PATH"
cd "$ROOT"
cargo +nightly fuzz build --fuzz-dir tests/fuzz -O
out="$ROOT/.run/fuzz"
mkdir -p "$out"
for target in frame_split request_decode response_decode scan connection name_edit legacy rename; do
  work="$out/$target"
  rm -rf "$work" && mkdir -p "$work/corpus" "$work/artifacts"
  cp tests/fuzz/corpus/"$target"/* "$work/corpus/" 2>/dev/null || true
  if ! cargo +nightly fuzz run --fuzz-dir tests/fuzz -O "$target" "$work/corpus" -- \
      -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/" \
      -print_final_stats=1 >"$work/log" 2>&1; then
    tail -n 40 "$work/log"
    echo "fuzz target $target FAILED: crashing input in $work/artifacts/" >&2
    exit 1
  fi
  runs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$work/log" | grep -Eo '[0-9]+$' || echo '?')"
  printf 'fuzz %-16s %s executions in %ss, no crash\n' "$target" "$runs" "$SECONDS_EACH"
done
