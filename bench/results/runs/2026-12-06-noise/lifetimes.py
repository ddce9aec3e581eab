#!/usr/bin/env python3
"""Where the real-client benchmark's noise lives: per Envoy process or per measurement.

Starts one Envoy at a time (tcp_proxy and kafka_lens alternately, the modules bench/run.sh built
into .run/), runs the real-client measurement (bench/realclient.py, 600,000 x 1 KiB records)
several times through each, then stops it; prints each measurement and, per variant, the spread
inside one Envoy's life against the spread of the lives' medians. Uses bench/procs.py as
bench/run.py does (same broker, same Envoy configurations).

    python bench/results/runs/2026-12-06-noise/lifetimes.py 12 5 out.json   # 12 lives x 5 runs, ~4 min
    python bench/results/runs/2026-12-06-noise/lifetimes.py --report lifetimes.json
"""
from __future__ import annotations

import json
import os
import statistics as st
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(BENCH))
VARIANTS = ["tcp_proxy", "kafka_lens"]


def measure(lives: int, runs: int) -> list[dict]:
    import procs  # noqa: E402  (bench/procs.py)
    from harness import free_port  # noqa: E402  (tests/harness.py)

    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/kafka-lens/target"))
    work = ROOT / ".run" / "bench-lifetimes"
    work.mkdir(parents=True, exist_ok=True)
    variants = procs.variants(ROOT / ".run/kafka-lens.wasm", ROOT / ".run/bench-floor.wasm")
    port = free_port()
    broker = procs.Tansu(target / "release/loadgen", work, advertised_port=port, topics=["bench-real"])
    out = []
    try:
        for life in range(lives):
            name = VARIANTS[life % 2]
            envoy = procs.BenchEnvoy(variants[name], broker.port, work, 1, listener_port=port)
            try:
                for k in range(runs):
                    cmd = [sys.executable, str(BENCH / "realclient.py"), "--topic", "bench-real", "--messages", "600000",
                           "--bootstrap", f"127.0.0.1:{port}", "--envoy-pid", str(envoy.pid),
                           "--envoy-admin-port", str(envoy.admin_port), "--broker-pid", str(broker.pid)]
                    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
                    r = json.loads(p.stdout.strip().splitlines()[-1])
                    out.append({"life": life, "variant": name, "k": k, "cpu_gb": r["envoy_cpu_s_per_gb"], "mbs": r["payload_mb_per_s"]})
                    print(life, name, k, round(r["envoy_cpu_s_per_gb"], 3), round(r["payload_mb_per_s"]), flush=True)
                    broker.maybe_restart()
            finally:
                envoy.stop()
    finally:
        broker.stop()
    return out


def sd(values) -> str:
    values = list(values)
    return f"{st.stdev(values):.3f}" if len(values) > 1 else "–"


def report(out: list[dict]) -> None:
    medians = {}
    for v in VARIANTS:
        xs = [x for x in out if x["variant"] == v]
        lives = sorted({x["life"] for x in xs})
        per_life = [[x["cpu_gb"] for x in xs if x["life"] == life] for life in lives]
        values = [x["cpu_gb"] for x in xs]
        later = [value for p in per_life for value in p[1:]]
        medians[v] = (st.median(values), st.mean(values))
        print(f"{v}: {len(values)} runs in {len(lives)} Envoys; CPU s/GB median {st.median(values):.3f}, sd {sd(values)}; "
              f"sd inside one Envoy {st.mean(st.pstdev(p) for p in per_life):.3f}; sd of the Envoys' medians "
              f"{sd(st.median(p) for p in per_life)}; first run in an Envoy {st.median(p[0] for p in per_life):.3f}, "
              f"later ones {st.median(later) if later else float('nan'):.3f}")
    (km, kmean), (tm, tmean) = medians["kafka_lens"], medians["tcp_proxy"]
    print(f"kafka_lens / tcp_proxy: {km / tm:.3f} (medians), {kmean / tmean:.3f} (means)")


def main() -> int:
    if sys.argv[1:2] == ["--report"]:
        report(json.loads(Path(sys.argv[2]).read_text()))
        return 0
    lives, runs, path = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    out = measure(lives, runs)
    path.write_text(json.dumps(out))
    report(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
