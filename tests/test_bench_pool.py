"""bench/pool.py, which judges the CPU and throughput goals on pooled benchmark runs: the
confidence interval of a median, the three-way verdict on it, and the pairing of repetitions
(each with tcp_proxy's of the same run and repetition, never across runs).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from harness import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import pool  # noqa: E402


def coverage(n: int, rank: int) -> float:
    """P(x(rank) <= median <= x(n+1-rank)) for n independent values of any continuous law."""
    return 1 - 2 * sum(math.comb(n, i) for i in range(rank)) / 2**n


def test_the_interval_is_the_tightest_pair_of_order_statistics_with_95_percent_coverage():
    for n in range(6, 130):
        values = [float(v) for v in range(n, 0, -1)]  # unsorted on purpose
        low, high = pool.median_interval(values)
        rank = int(low)
        assert high == n + 1 - rank, n
        assert coverage(n, rank) >= 0.95, n
        assert coverage(n, rank + 1) < 0.95, n
    # The textbook case: ten values, x(2) and x(9).
    assert pool.median_interval([float(v) for v in range(1, 11)]) == (2.0, 9.0)
    # Five values cannot give 95%: no interval rather than a narrower one.
    assert pool.median_interval([1.0, 2.0, 3.0, 4.0, 5.0]) is None


def test_a_goal_is_met_or_not_only_when_the_whole_interval_says_so():
    below = [1.00 + i / 1000 for i in range(30)]  # 1.000 .. 1.029
    above = [1.20 + i / 1000 for i in range(30)]
    across = [1.00 + i / 100 for i in range(30)]  # 1.00 .. 1.29: the interval is x(10) .. x(21)
    assert pool.verdict(below, 1.15, at_least=False) == "met"
    assert pool.verdict(above, 1.15, at_least=False) == "NOT met"
    assert pool.verdict(across, 1.15, at_least=False).startswith("undecided")
    # A lower bound (throughput): the other way round.
    assert pool.verdict(above, 1.15, at_least=True) == "met"
    assert pool.verdict(below, 1.15, at_least=True) == "NOT met"
    assert pool.verdict(below[:5], 1.15, at_least=False).startswith("undecided")


def run(path: Path, tcp: list[float], lens: list[float]) -> Path:
    """A run's results.json with these CPU-per-GB figures, repetition by repetition."""
    rows = [{"variant": v, "rep": rep, "envoy_cpu_s_per_gb": x, "payload_mb_per_s": 100.0}
            for v, xs in (("tcp_proxy", tcp), ("kafka_lens", lens)) for rep, x in enumerate(xs)]
    path.write_text(json.dumps({"real_client": rows}))
    return path


def test_repetitions_pair_with_tcp_proxy_of_their_own_run(tmp_path: Path):
    first = run(tmp_path / "a.json", [0.4, 0.5], [0.44, 0.55])
    second = run(tmp_path / "b.json", [0.2, 0.8], [0.3, 1.0])
    ratios = pool.pooled_ratios(pool.pooled_reps([first, second]))[("kafka_lens", "envoy_cpu_s_per_gb")]
    assert sorted(round(r, 6) for r in ratios) == [1.1, 1.1, 1.25, 1.5]


def test_the_other_estimators_read_the_same_pairs_and_resist_a_stalled_repetition():
    # kafka-lens at exactly 1.2x tcp_proxy in every repetition, whatever the repetition's level.
    pairs = [(1.2 * b, b) for b in (0.40, 0.42, 0.45, 0.41, 0.50, 0.38, 0.44, 0.43, 0.47, 0.39)]
    for estimator in pool.ESTIMATORS.values():
        assert math.isclose(estimator(pairs), 1.2)
        low, high = pool.bootstrap_interval(pairs, estimator)
        assert math.isclose(low, 1.2) and math.isclose(high, 1.2)
    # One repetition in ten hit by a broker stall (CPU x3): the trimmed ratio moves by under 3%
    # (the stall is cut, only which values are cut changes), the ratio of sums by over 12%.
    stalled = pairs[:-1] + [(3 * 1.2 * 0.39, 0.39)]
    assert abs(pool.trimmed_means_ratio(stalled) - 1.2) < 0.035
    assert pool.sums_ratio(stalled) > 1.35
    # Seeded: the same pool prints the same interval; too few repetitions print none.
    noisy = [(1.2 * b * (1 + (i % 5 - 2) / 20), b) for i, b in enumerate(b for _, b in pairs)]
    assert pool.bootstrap_interval(noisy, pool.sums_ratio) == pool.bootstrap_interval(noisy, pool.sums_ratio)
    assert pool.bootstrap_interval(noisy[:5], pool.sums_ratio) is None


def test_pairs_are_taken_within_a_run_as_the_ratios_are(tmp_path: Path):
    path = run(tmp_path / "run.json", [0.4, 0.5], [0.44, 0.55, 0.9])
    # The third kafka-lens repetition has no tcp_proxy beside it: left out, as from the ratios.
    assert pool.pooled_pairs(pool.pooled_reps([path]), "envoy_cpu_s_per_gb")["kafka_lens"] == [(0.44, 0.4), (0.55, 0.5)]
