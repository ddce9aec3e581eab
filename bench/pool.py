#!/usr/bin/env python3
"""Pools the real-client repetitions of several benchmark runs: each repetition's paired ratio to
tcp_proxy (CPU per GB, throughput), then per variant the median and quartiles over every
repetition of every run with a 95% confidence interval of the median, and the CPU and throughput
goals checked on those intervals (met, not met, or undecided while the interval holds the limit).

One run's median moves with how busy the shared host was during it (on this machine, by as much
as the goals' margins); pooling runs taken at different times of the same code says more than
any one of them. Only runs of the same code belong together.

    python bench/pool.py bench/results/results.json bench/results/runs/*.json
"""
from __future__ import annotations

import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from report import BASELINE, GOAL_CPU_RATIO, GOAL_FULL_CPU_RATIO, GOAL_THROUGHPUT_RATIO, VARIANTS, paired_ratios, table

METRICS = {"envoy_cpu_s_per_gb": "Envoy CPU per GB", "payload_mb_per_s": "throughput"}


def pooled_ratios(paths: list[Path]) -> dict[tuple[str, str], list[float]]:
    """(variant, metric) -> the ratio to tcp_proxy of every repetition of every run."""
    # A repetition is (run, rep): repetitions pair with tcp_proxy's of the same run only.
    reps: dict[str, dict[tuple[int, int], dict]] = defaultdict(dict)
    for index, path in enumerate(paths):
        for run in json.loads(path.read_text()).get("real_client", []):
            if not run.get("error_count"):  # failed runs are not in real_client; runs with lost records are left out too
                reps[run["variant"]][(index, run["rep"])] = run
    base = reps.get(BASELINE, {})
    return {(variant, metric): paired_ratios(runs, base, metric) for variant, runs in reps.items() for metric in METRICS}


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free confidence interval for the median: the order statistics x(l) and
    x(n+1-l) with l the largest rank for which Binomial(n, 1/2) < l has probability at most
    (1 - confidence) / 2. Exact for any distribution of the repetitions; None below 6 values (too
    few for a 95% interval)."""
    ordered = sorted(values)
    n = len(ordered)
    tail = (1 - confidence) / 2
    rank, below = 0, 0.0
    while rank < n and below + math.comb(n, rank) / 2**n <= tail:
        below += math.comb(n, rank) / 2**n
        rank += 1
    if rank == 0:
        return None
    return ordered[rank - 1], ordered[n - rank]


def verdict(values: list[float], limit: float, at_least: bool) -> str:
    """Met when the whole interval is on the goal's side of the limit, not met when all of it is
    on the other side, and undecided when the interval holds the limit."""
    interval = median_interval(values)
    if interval is None:
        return "undecided (too few repetitions)"
    low, high = interval
    good, bad = (low >= limit, high < limit) if at_least else (high <= limit, low > limit)
    return "met" if good else "NOT met" if bad else "undecided: the interval holds the limit"


def summary(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f} (n=1)" if values else "–"
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{median:.3f} [{q1:.3f}–{q3:.3f}] (n={len(values)})"


def interval_cell(values: list[float]) -> str:
    interval = median_interval(values)
    return "–" if interval is None else f"{interval[0]:.3f}–{interval[1]:.3f}"


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv]
    if not paths or any(a.startswith("-") for a in argv):
        print(__doc__)
        return 2
    pooled = pooled_ratios(paths)
    variants = sorted({v for v, _ in pooled}, key=lambda v: VARIANTS.index(v) if v in VARIANTS else len(VARIANTS))
    rows = [[v] + [summary(pooled.get((v, m), [])) for m in METRICS] for v in variants if v != BASELINE]
    print(f"Real-client repetitions of {len(paths)} runs, paired ratio to {BASELINE}: median [quartiles]\n")
    print(table(["variant"] + [f"{name} ÷ {BASELINE}" for name in METRICS.values()], rows))
    print("\n95% confidence intervals of the medians (distribution-free, from the order statistics):\n")
    intervals = [[v] + [interval_cell(pooled.get((v, m), [])) for m in METRICS] for v in variants if v != BASELINE]
    print(table(["variant"] + [f"{name} ÷ {BASELINE}" for name in METRICS.values()], intervals))
    goals = [("kafka_lens", "envoy_cpu_s_per_gb", GOAL_CPU_RATIO, False), ("kafka_lens_full", "envoy_cpu_s_per_gb", GOAL_FULL_CPU_RATIO, False),
             ("kafka_lens", "payload_mb_per_s", GOAL_THROUGHPUT_RATIO, True)]
    print()
    for variant, metric, limit, at_least in goals:
        values = pooled.get((variant, metric))
        if values:
            print(f"{variant} {METRICS[metric]} {'≥' if at_least else '≤'} {limit}× {BASELINE}: pooled median "
                  f"{statistics.median(values):.3f}, 95% interval {interval_cell(values)}: {verdict(values, limit, at_least)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
