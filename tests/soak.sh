#!/usr/bin/env bash
# The long soak (make soak): installs what is missing and builds the module (tests/setup.sh), then
# 1,000,000 records through Envoy + kafka-lens with metrics, a policy and topic rewriting, bounded
# to 5 minutes (tests/soak.py). The test command runs a short one (tests/test_soak.py).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tests/setup.sh
source "$ROOT/tests/setup.sh"
cd "$ROOT/tests"
exec python soak.py --records "${SOAK_RECORDS:-1000000}" --minutes "${SOAK_MINUTES:-5}" "$@"
