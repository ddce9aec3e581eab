"""A few-second run of the end-to-end benchmark (bench/run.py --smoke): Envoy tcp_proxy and
kafka-lens in front of the canned responder, one connection, Produce and Fetch of 1 KiB records,
plus the memory measurement with a few idle connections. Checks that the whole pipeline (load
generator, responder, Envoy variants, /proc readings, report) works and yields sane numbers; the
numbers themselves are not judged here (bench/run.sh is the benchmark).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness import CACHE, ROOT


def build_loadgen() -> Path:
    """The load generator, debug profile: it shares the test build's artifacts, so it compiles in
    seconds (the release build bench/run.sh uses takes minutes with LTO)."""
    subprocess.run(["cargo", "build", "--quiet", "-p", "kafka-lens-bench", "--bin", "loadgen"], cwd=ROOT, check=True, timeout=600)
    return Path(os.environ.get("CARGO_TARGET_DIR", CACHE / "target")) / "debug" / "loadgen"


def test_bench_smoke(tmp_path: Path):
    loadgen = build_loadgen()
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(tmp_path), "--loadgen", str(loadgen)],
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, f"bench/run.py --smoke failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["failures"] == []
    runs = results["runs"]
    assert {(r["variant"], r["workload"]) for r in runs} == {(v, w) for v in ("tcp_proxy", "kafka_lens") for w in ("produce", "fetch")}
    for r in runs:
        where = f"{r['variant']} {r['workload']}"
        assert r["requests"] > 100, where
        assert r["requests_per_s"] > 0 and r["wire_mb_per_s"] > 0, where
        lat = r["latency_us"]
        assert lat["count"] == r["requests"], where
        assert 0 < lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"], where
        assert r["envoy_cpu_s"] > 0 and r["envoy_cpu_s_per_gb"] > 0 and r["envoy_cpu_s_per_1m_requests"] > 0, where
        assert r["envoy_rss_bytes"] > 10 * 2**20, where
        # The measured CPU cannot exceed what one worker plus the main thread can use.
        assert r["envoy_cpu_utilization"] < 2.5, where

    memory = {m["variant"]: m for m in results["memory"]}
    assert set(memory) == {"tcp_proxy", "kafka_lens"}
    assert memory["tcp_proxy"]["during"]["wasm_linear_memories"] == 0
    lens = memory["kafka_lens"]["during"]
    assert lens["wasm_linear_memories"] >= 2, "one VM per worker plus the main thread's"
    assert lens["wasm_linear_memory_size_bytes"] > 0 and lens["rss_bytes"] > 0

    summary = results["summary"]
    ratios = [row["requests_per_s_ratio"] for row in summary["loadgen"] if row["variant"] == "kafka_lens"]
    assert ratios and all(r and r["median"] > 0 for r in ratios)
    md = (tmp_path / "results.md").read_text()
    assert "## Headline" in md and "| kafka_lens |" in md
