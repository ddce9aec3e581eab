#!/usr/bin/env bash
# The demo command (README): installs whatever is missing, starts the tansu broker and Envoy with
# kafka-lens (envoy-configs/local.yaml), runs a sample producer and consumer through it with kcat,
# and prints where to see the metrics. Interactive: runs until Ctrl-C. Without a terminal (or with
# --exit): stops after the sample run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tests/setup.sh
source "$ROOT/tests/setup.sh"
exec python "$ROOT/tests/demo.py" "$@"
