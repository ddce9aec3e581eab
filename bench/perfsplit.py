#!/usr/bin/env python3
"""Splits Envoy's CPU per Produce request of the real-client runs by where it goes: the kernel
(socket copies, syscalls), Envoy's own code (with V8's runtime, which is linked into it), the
Wasm module's compiled code (V8's JIT) and libc.

    bench/run.sh --phases real --variants tcp_proxy,read_floor,kafka_lens --perf-dir /tmp/perf --out /tmp/b
    bench/perfsplit.py /tmp/b/results.json /tmp/perf

Each repetition's perf samples are shared out in proportion over the CPU microseconds per request
it measured (`envoy_cpu_us_per_request`), so its parts add up to its total; a part's figure is
the median over repetitions (medians need not add up). The system calls `perf stat` counted
beside each profile are given per request too. Envoy's binary is stripped, so the split goes no
finer than by binary; `bench/v8/` names the module's own functions.
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

PARTS = ("kernel", "envoy", "wasm", "libc", "other")
LINE = re.compile(r"^\s+[\d.]+%\s+(\d+)\s+(.*\S)\s*$")


def part_of(dso: str) -> str:
    if dso.startswith("[kernel"):
        return "kernel"
    if dso.startswith("[JIT]"):
        return "wasm"
    if dso == "envoy":
        return "envoy"
    if dso.startswith("libc"):
        return "libc"
    return "other"


def samples_by_part(profile: Path) -> dict[str, int]:
    out = subprocess.run(["perf", "report", "-i", str(profile), "--stdio", "-n", "--sort", "dso"],
                         capture_output=True, text=True, check=True).stdout
    parts: dict[str, int] = collections.Counter()
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            parts[part_of(m.group(2))] += int(m.group(1))
    return parts


def syscall_counts(stat: Path) -> dict[str, int]:
    """`perf stat -x ,` output: count,unit,event,..."""
    counts = {}
    for line in stat.read_text().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].isdigit() and fields[2].startswith("syscalls:sys_enter_"):
            counts[fields[2].removeprefix("syscalls:sys_enter_")] = int(fields[0])
    return counts


def split(results: dict, perf_dir: Path) -> dict[str, dict[str, float]]:
    """Per variant, the median µs per request of each part and of the whole, the median system
    calls per request, and how many repetitions had a profile (`reps`). The system-call counts
    cover the client's whole run, its warm-up too (about 1% more requests than the measured ones
    they are divided by)."""
    per_variant: dict[str, dict[str, list[float]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for run in results.get("real_client", []):
        us = run.get("envoy_cpu_us_per_request")
        profile = perf_dir / f"{run['variant']}-{run['rep']}.data"
        if us is None or not profile.exists():
            continue
        parts = samples_by_part(profile)
        total = sum(parts.values())
        if total == 0:
            continue
        row = per_variant[run["variant"]]
        for part in PARTS:
            row[part].append(us * parts.get(part, 0) / total)
        row["total"].append(us)
        stat = profile.with_suffix(".stat")
        requests = run.get("requests")
        if stat.exists() and requests:
            for call, count in syscall_counts(stat).items():
                row[call].append(count / requests)
    return {v: {key: statistics.median(values) for key, values in row.items()} | {"reps": len(row["total"])}
            for v, row in per_variant.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path, help="results.json of a run with --perf-dir")
    ap.add_argument("perf_dir", type=Path)
    args = ap.parse_args(argv)
    table = split(json.loads(args.results.read_text()), args.perf_dir)
    if not table:
        print("no real-client run has a profile in", args.perf_dir, file=sys.stderr)
        return 1
    calls = sorted({key for row in table.values() for key in row} - set(PARTS) - {"total", "reps"})
    print("| variant | reps | " + " | ".join(PARTS) + " | total | " + " | ".join(calls) + " |")
    print("|---|---|" + "---|" * (len(PARTS) + 1 + len(calls)))
    for variant, row in table.items():
        cells = " | ".join(f"{row.get(p, 0):.0f}" for p in PARTS)
        counts = " | ".join(f"{row[c]:.1f}" if c in row else "–" for c in calls)
        print(f"| {variant} | {row['reps']} | {cells} | {row['total']:.0f} | {counts} |")
    print("\nµs of Envoy CPU per Produce request by where it runs, then system calls per request (medians over")
    print("repetitions; perf sampling adds its own cost to every variant).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
