#!/usr/bin/env python3
"""Pools the real-client repetitions of several benchmark runs: each repetition's paired ratio to
tcp_proxy (CPU per GB, throughput), then per variant the median and quartiles over every
repetition of every run with a 95% confidence interval of the median, and the CPU and throughput
goals checked on those intervals (met, not met, or undecided while the interval holds the limit).
For CPU per GB it also gives two estimators that use every repetition's size, not only its rank
(the ratio of 20%-trimmed means and the ratio of sums, with bootstrap intervals), to show how much
the verdict owes to the choice of the median.

One run's median moves with how busy the shared host was during it (on this machine, by as much
as the goals' margins); pooling runs taken at different times of the same code says more than
any one of them. Only runs of the same code belong together.

    python bench/pool.py bench/results/results.json bench/results/runs/*.json
"""
from __future__ import annotations

import json
import math
import random
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from report import BASELINE, GOAL_CPU_RATIO, GOAL_FULL_CPU_RATIO, GOAL_THROUGHPUT_RATIO, VARIANTS, paired_ratios, paired_values, table

METRICS = {"envoy_cpu_s_per_gb": "Envoy CPU per GB", "payload_mb_per_s": "throughput"}


def pooled_reps(paths: list[Path]) -> dict[str, dict[tuple[int, int], dict]]:
    """variant -> (run, repetition) -> that repetition's measurement, over every run."""
    # A repetition is (run, rep): repetitions pair with tcp_proxy's of the same run only.
    reps: dict[str, dict[tuple[int, int], dict]] = defaultdict(dict)
    for index, path in enumerate(paths):
        for run in json.loads(path.read_text()).get("real_client", []):
            if not run.get("error_count"):  # failed runs are not in real_client; runs with lost records are left out too
                reps[run["variant"]][(index, run["rep"])] = run
    return reps


def pooled_ratios(reps: dict[str, dict[tuple[int, int], dict]]) -> dict[tuple[str, str], list[float]]:
    """(variant, metric) -> the ratio to tcp_proxy of every repetition of every run."""
    base = reps.get(BASELINE, {})
    return {(variant, metric): paired_ratios(runs, base, metric) for variant, runs in reps.items() for metric in METRICS}


def pooled_pairs(reps: dict[str, dict[tuple[int, int], dict]], metric: str) -> dict[str, list[tuple[float, float]]]:
    """variant -> (its `metric`, tcp_proxy's in the same run and repetition) for every repetition
    both have: what estimators other than the median of the paired ratios start from."""
    base = reps.get(BASELINE, {})
    return {variant: paired_values(runs, base, metric) for variant, runs in reps.items()}


TRIM = 0.2
RESAMPLES = 2000


def trimmed_mean(values: list[float], trim: float = TRIM) -> float:
    """The mean without the lowest and highest `trim` of the values: robust to the broker stalls
    that multiply a few repetitions' CPU (bench/README.md), with most of the mean's efficiency."""
    ordered = sorted(values)
    cut = int(len(ordered) * trim)
    return statistics.fmean(ordered[cut:len(ordered) - cut])


def trimmed_means_ratio(pairs: list[tuple[float, float]]) -> float:
    return trimmed_mean([x for x, _ in pairs]) / trimmed_mean([b for _, b in pairs])


def sums_ratio(pairs: list[tuple[float, float]]) -> float:
    return sum(x for x, _ in pairs) / sum(b for _, b in pairs)


ESTIMATORS = {f"ratio of {TRIM:.0%}-trimmed means": trimmed_means_ratio, "ratio of sums": sums_ratio}


def bootstrap_interval(pairs: list[tuple[float, float]], estimator, resamples: int = RESAMPLES,
                       seed: int = 1) -> tuple[float, float] | None:
    """A 95% percentile-bootstrap interval of `estimator`, resampling whole repetitions (each pair
    stays together). Seeded, so a pool always prints the same interval; None below 6 pairs."""
    n = len(pairs)
    if n < 6:
        return None
    rng = random.Random(seed)
    stats = sorted(estimator([pairs[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples))
    return stats[int(0.025 * resamples)], stats[int(0.975 * resamples) - 1]


def estimator_cell(pairs: list[tuple[float, float]], estimator) -> str:
    interval = bootstrap_interval(pairs, estimator)
    return "–" if interval is None else f"{estimator(pairs):.3f} ({interval[0]:.3f}–{interval[1]:.3f})"


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
    reps = pooled_reps(paths)
    pooled = pooled_ratios(reps)
    variants = sorted({v for v, _ in pooled}, key=lambda v: VARIANTS.index(v) if v in VARIANTS else len(VARIANTS))
    rows = [[v] + [summary(pooled.get((v, m), [])) for m in METRICS] for v in variants if v != BASELINE]
    print(f"Real-client repetitions of {len(paths)} runs, paired ratio to {BASELINE}: median [quartiles]\n")
    print(table(["variant"] + [f"{name} ÷ {BASELINE}" for name in METRICS.values()], rows))
    print("\n95% confidence intervals of the medians (distribution-free, from the order statistics):\n")
    intervals = [[v] + [interval_cell(pooled.get((v, m), [])) for m in METRICS] for v in variants if v != BASELINE]
    print(table(["variant"] + [f"{name} ÷ {BASELINE}" for name in METRICS.values()], intervals))
    cpu = "envoy_cpu_s_per_gb"
    pairs = pooled_pairs(reps, cpu)
    print(f"\n{METRICS[cpu]} ÷ {BASELINE} by other estimators over the same repetitions (95% bootstrap intervals, "
          f"{RESAMPLES:,} resamples of the repetitions):\n")
    rows = [[v] + [estimator_cell(pairs.get(v, []), e) for e in ESTIMATORS.values()] for v in variants if v != BASELINE]
    print(table(["variant"] + list(ESTIMATORS), rows))
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
