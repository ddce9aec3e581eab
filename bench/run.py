#!/usr/bin/env python3
"""End-to-end benchmark of kafka-lens: the same load, in the same run, on the same machine,
through each variant (direct, Envoy tcp_proxy, pass-through Wasm floor filter, the same filter
reading each frame start (read floor), kafka-lens as
shipped, with policy + topic rewrite, with version translation), and
against two upstreams (a canned responder that answers at once, and the tansu broker).

Phases (each optional):
  grid      loadgen: Produce and Fetch x record shapes x connection counts, closed loop
  moderate  loadgen at a fixed moderate request rate: the latency a proxy adds
  memory    idle Kafka connections held open: Envoy and Wasm memory per connection
  real      librdkafka (confluent-kafka) producing 1 KiB records through Envoy to tansu (and,
            through the translation variant, an old librdkafka on Produce v1)

Every case runs `--reps` times; within a repetition the variants run back to back in rotating
order, so slow drift of a noisy machine spreads over all variants. bench/report.py turns the raw
runs into medians, spreads and ratios to tcp_proxy. `bench/run.sh` is the full run; `--smoke` is
the few-second version the test suite runs.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(BENCH))

import procs  # noqa: E402
import report  # noqa: E402
from harness import free_port  # noqa: E402

CACHE = Path(os.environ.get("KAFKA_LENS_CACHE", Path.home() / ".cache" / "kafka-lens"))
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", CACHE / "target"))
SHAPES = ["100B", "1KiB", "64KiB"]
PRODUCE_TOPIC = "bench-produce"
REAL_TOPIC = "bench-real"
# What envoy-configs/bench-rewrite.yaml renames those two to on the broker.
RENAMED_TOPICS = [f"{PRODUCE_TOPIC}.renamed", f"{REAL_TOPIC}.renamed"]
# The variant whose real-client phase also runs an old client, and the broker release that client
# speaks: librdkafka's 0.9.0 fallback sends Produce v1 with magic-0 message sets and never asks
# ApiVersions (a fallback of 0.10 or later makes librdkafka ask anyway).
TRANSLATION_VARIANT = "kafka_lens_translation"
LEGACY_FALLBACK = "0.9.0"
# Samples per second of `--perf-dir` profiles, and the system calls counted beside them.
PERF_HZ = 2000
PERF_SYSCALLS = [f"syscalls:sys_enter_{call}" for call in ("readv", "writev", "epoll_wait", "epoll_ctl")]


def fetch_topic(shape: str) -> str:
    return f"bench-fetch-{shape}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=BENCH / "results", help="where results.json/.md/.png go")
    ap.add_argument("--loadgen", type=Path, default=TARGET / "release" / "loadgen")
    ap.add_argument("--kafka-lens-wasm", type=Path, default=Path(os.environ.get("KAFKA_LENS_WASM", ROOT / ".run" / "kafka-lens.wasm")))
    ap.add_argument("--floor-wasm", type=Path, default=ROOT / ".run" / "bench-floor.wasm")
    ap.add_argument("--criterion-dir", type=Path, default=TARGET / "criterion", help="criterion estimates to include")
    ap.add_argument("--phases", default="grid,moderate,memory,real")
    ap.add_argument("--variants", default="direct,tcp_proxy,floor,read_floor,kafka_lens,kafka_lens_full,kafka_lens_translation",
                    help="also kafka_lens_policy, kafka_lens_rewrite (bench/procs.py lists them)")
    ap.add_argument("--targets", default="responder,broker")
    ap.add_argument("--workloads", default="produce,fetch")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--connections", default="1,16,128")
    ap.add_argument("--window", type=int, default=4, help="requests in flight per connection")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=0.25, help="seconds before measuring, per case")
    ap.add_argument("--duration", type=float, default=1.0, help="measured seconds per case")
    ap.add_argument("--moderate-rate", type=float, default=2000, help="requests/s of the moderate-load latency case")
    ap.add_argument("--moderate-connections", type=int, default=16)
    ap.add_argument("--moderate-duration", type=float, default=3.0)
    ap.add_argument("--memory-connections", type=int, default=256)
    ap.add_argument("--real-messages", type=int, default=600_000)
    ap.add_argument("--perf-dir", type=Path, help="record Envoy with perf during each real-client run into this folder "
                    "(adds a few percent of CPU to every variant; bench/perfsplit.py splits the profiles)")
    ap.add_argument("--real-reps", type=int, default=7, help="repetitions of the real-client run (the goal case)")
    ap.add_argument("--build", action="append", default=[], metavar="NAME=MODULE.wasm",
                    help="another build of kafka-lens as variant NAME, with local.yaml as kafka_lens has it (an A/B of "
                    "two builds in one run: add NAME to --variants); repeatable")
    ap.add_argument("--concurrency", type=int, default=1, help="Envoy worker threads")
    ap.add_argument("--smoke", action="store_true", help="a few seconds: 1 rep, tcp_proxy vs kafka_lens, responder only")
    args = ap.parse_args(argv)
    if args.smoke:
        args.phases, args.variants, args.targets = "grid,memory", "tcp_proxy,kafka_lens", "responder"
        args.workloads, args.shapes, args.connections = "produce,fetch", "1KiB", "1"
        args.reps, args.warmup, args.duration, args.memory_connections = 1, 0.2, 0.6, 16
    return args


def split(s: str) -> list[str]:
    return [x for x in s.split(",") if x]


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.workdir = ROOT / ".run" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.variants = procs.variants(args.kafka_lens_wasm, args.floor_wasm)
        for build in args.build:
            name, sep, module = build.partition("=")
            if not sep or not name or name in self.variants:
                raise SystemExit(f"--build {build!r}: expected NAME=MODULE.wasm with a NAME no variant has")
            self.variants[name] = procs.Variant(name, "local.yaml", Path(module).resolve(),
                                                f"kafka-lens built as {module}, with envoy-configs/local.yaml (A/B)")
        self.order = [v for v in split(args.variants) if v in self.variants]
        unknown = set(split(args.variants)) - set(self.variants)
        if unknown:
            raise SystemExit(f"unknown variants {unknown}; known: {list(self.variants)}")
        self.phases = set(split(args.phases))
        self.targets = split(args.targets)
        self.results: dict = {"runs": [], "memory": [], "real_client": [], "failures": []}
        self.upstreams: dict[str, object] = {}
        self.envoys: dict[tuple[str, str], procs.BenchEnvoy] = {}
        # The broker advertises the listener the real-client Envoys bind, so librdkafka, which
        # follows Metadata, stays on the proxy under test.
        self.real_port = free_port()

    # --- setup ---------------------------------------------------------------------------------
    def check_inputs(self) -> None:
        needed = [self.args.loadgen]
        needed += [v.wasm for v in self.variants.values() if v.name in self.order and v.wasm is not None]
        missing = [str(p) for p in needed if not Path(p).exists()]
        if missing:
            raise SystemExit(f"missing {missing}: run bench/run.sh (it builds them)")
        if self.args.perf_dir is not None and shutil.which("perf") is None:
            raise SystemExit("--perf-dir needs perf (Debian: linux-perf), which is not on PATH")
        procs.check_configs_match_local()

    def start_upstreams(self) -> None:
        if "responder" in self.targets or "memory" in self.phases:
            self.upstreams["responder"] = procs.Responder(self.args.loadgen, self.workdir)
        if "broker" in self.targets or "real" in self.phases:
            preload = {fetch_topic(s): (s, 8) for s in split(self.args.shapes)} if "fetch" in split(self.args.workloads) else {}
            self.upstreams["broker"] = procs.Tansu(self.args.loadgen, self.workdir, advertised_port=self.real_port,
                                                   preload=preload, topics=[PRODUCE_TOPIC, REAL_TOPIC] + RENAMED_TOPICS)

    def envoy(self, target: str, variant: str) -> procs.BenchEnvoy:
        key = (target, variant)
        if key not in self.envoys:
            upstream = self.upstreams[target]
            self.envoys[key] = procs.BenchEnvoy(self.variants[variant], upstream.port, self.workdir, self.args.concurrency)
        return self.envoys[key]

    def rotated(self, rep: int) -> list[str]:
        k = rep % len(self.order)
        return self.order[k:] + self.order[:k]

    # --- loadgen cases -------------------------------------------------------------------------
    def cases(self) -> list[dict]:
        out = []
        if "grid" in self.phases:
            for target in self.targets:
                for workload in split(self.args.workloads):
                    for shape in split(self.args.shapes):
                        for conns in [int(c) for c in split(self.args.connections)]:
                            out.append({"phase": "grid", "target": target, "workload": workload, "shape": shape,
                                        "connections": conns, "window": self.args.window, "rate": None,
                                        "warmup_s": self.args.warmup, "duration_s": self.args.duration})
        if "moderate" in self.phases:
            for target in self.targets:
                out.append({"phase": "moderate", "target": target, "workload": "produce", "shape": "1KiB",
                            "connections": self.args.moderate_connections, "window": self.args.window,
                            "rate": self.args.moderate_rate, "warmup_s": 0.5, "duration_s": self.args.moderate_duration})
        return out

    def run_case(self, case: dict, variant: str, rep: int) -> None:
        upstream = self.upstreams[case["target"]]
        envoy = None if variant == "direct" else self.envoy(case["target"], variant)
        port = upstream.port if envoy is None else envoy.listener_port
        topic = PRODUCE_TOPIC if case["workload"] == "produce" else fetch_topic(case["shape"])
        cmd = [str(self.args.loadgen), "run", "--addr", f"127.0.0.1:{port}", "--workload", case["workload"],
               "--shape", case["shape"], "--topic", topic, "--connections", str(case["connections"]),
               "--window", str(case["window"]), "--warmup", str(case["warmup_s"]), "--duration", str(case["duration_s"]),
               "--clock-ticks", str(procs.CLOCK_TICKS), "--watch", f"upstream={upstream.pid}"]
        if envoy is not None:
            cmd += ["--watch", f"envoy={envoy.pid}"]
        if case["rate"]:
            cmd += ["--rate", str(case["rate"])]
        record = {**case, "variant": variant, "rep": rep}
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=case["warmup_s"] + case["duration_s"] + 120)
        lines = p.stdout.strip().splitlines()
        if p.returncode != 0 or not lines:
            record["error"] = (p.stderr.strip() or p.stdout.strip())[-2000:]
            self.results["failures"].append(record)
            print(f"  FAILED {variant}: {record['error'][-300:]}", flush=True)
            return
        data = json.loads(lines[-1])
        record.update({k: data[k] for k in ("requests", "requests_per_s", "bytes_out", "bytes_in", "wire_mb_per_s",
                                            "payload_mb_per_s", "measured_s", "latency_us", "schedule_lag_us",
                                            "loadgen_cpu_s")})
        record["upstream_cpu_s"] = data["cpu"]["upstream"]["cpu_s"]
        if envoy is not None:
            cpu = data["cpu"]["envoy"]["cpu_s"]
            gb = (data["bytes_out"] + data["bytes_in"]) / 1e9
            record["envoy_cpu_s"] = cpu
            record["envoy_cpu_s_per_gb"] = cpu / gb if gb else None
            record["envoy_cpu_s_per_1m_requests"] = cpu / (data["requests"] / 1e6) if data["requests"] else None
            record["envoy_cpu_utilization"] = cpu / data["measured_s"]
            record["envoy_rss_bytes"] = procs.status_bytes(envoy.pid, "VmRSS")
        self.results["runs"].append(record)
        lat = data["latency_us"]
        print(f"  {variant:10s} {data['requests_per_s']:9.0f} req/s {data['wire_mb_per_s']:8.1f} MB/s "
              f"p50 {lat['p50']:8.0f} p99 {lat['p99']:8.0f} us  envoy cpu {record.get('envoy_cpu_s', '-')}", flush=True)

    def run_loadgen_phases(self) -> None:
        cases = self.cases()
        for i, case in enumerate(cases):
            label = f"[{i + 1}/{len(cases)}] {case['phase']} {case['target']} {case['workload']} {case['shape']} x{case['connections']}"
            print(label + (f" @ {case['rate']:.0f}/s" if case["rate"] else ""), flush=True)
            for rep in range(self.args.reps):
                for variant in self.rotated(rep):
                    self.run_case(case, variant, rep)
                broker = self.upstreams.get("broker")
                if case["target"] == "broker" and isinstance(broker, procs.Tansu) and broker.maybe_restart():
                    print("  (tansu restarted: in-memory storage passed its memory limit)", flush=True)

    # --- memory --------------------------------------------------------------------------------
    def run_memory(self) -> None:
        n = self.args.memory_connections
        responder = self.upstreams["responder"]
        print(f"memory: {n} idle connections per Envoy variant", flush=True)
        for rep in range(self.args.reps):
            for variant in [v for v in self.rotated(rep) if v != "direct"]:
                envoy = procs.BenchEnvoy(self.variants[variant], responder.port, self.workdir, self.args.concurrency)
                hold = None
                try:
                    time.sleep(0.5)
                    before = envoy.memory()
                    hold = subprocess.Popen([str(self.args.loadgen), "hold", "--addr", f"127.0.0.1:{envoy.listener_port}",
                                             "--connections", str(n), "--shape", "1KiB", "--topic", "bench-memory",
                                             "--hold", "60"], stdout=subprocess.PIPE, text=True, start_new_session=True)
                    line = hold.stdout.readline() if hold.stdout else ""
                    if not line.startswith('{"held"'):
                        raise RuntimeError(f"hold did not open its connections: {line!r}")
                    time.sleep(0.5)
                    during = envoy.memory()
                    record = {"variant": variant, "rep": rep, "connections": n, "before": before, "during": during,
                              "per_connection": {k: (during[k] - before[k]) / n for k in before
                                                 if isinstance(before[k], int) and isinstance(during[k], int)
                                                 and k != "wasm_linear_memories"}}
                    self.results["memory"].append(record)
                    pc = record["per_connection"]
                    print(f"  {variant:10s} rss {before['rss_bytes'] / 2**20:6.1f} MiB idle, "
                          f"{pc['rss_bytes'] / 1024:6.1f} KiB/conn rss, {pc['heap_allocated_bytes'] / 1024:6.1f} KiB/conn heap, "
                          f"{pc.get('wasm_linear_memory_rss_bytes', 0) / 1024:6.1f} KiB/conn wasm", flush=True)
                except Exception as e:  # noqa: BLE001 - one failed measurement is reported, not fatal
                    self.results["failures"].append({"phase": "memory", "variant": variant, "rep": rep, "error": str(e)})
                    print(f"  FAILED {variant}: {e}", flush=True)
                finally:
                    if hold is not None:
                        hold.kill()
                        hold.wait()
                    self.check_vm(envoy)
                    envoy.stop()

    # --- real client ---------------------------------------------------------------------------
    def run_real(self) -> None:
        broker = self.upstreams["broker"]
        direct_broker = None
        if "direct" in self.order:
            # librdkafka follows Metadata, and the main broker advertises the proxy's port: going
            # direct needs a broker that advertises itself (same binary and storage, own process).
            direct_broker = procs.Tansu(self.args.loadgen, self.workdir, topics=[REAL_TOPIC])
        print(f"real client: librdkafka producing {self.args.real_messages} x 1 KiB records to tansu", flush=True)
        try:
            for rep in range(self.args.real_reps):
                for variant in self.rotated(rep):
                    self.real_once(variant, rep, broker, direct_broker)
                    if variant == TRANSLATION_VARIANT:
                        # What translation is for: a client on versions the broker removed, same Envoy.
                        self.real_once(variant, rep, broker, direct_broker, fallback=LEGACY_FALLBACK)
                    for b in (broker, direct_broker):
                        if b is not None:
                            b.maybe_restart()
        finally:
            if direct_broker is not None:
                direct_broker.stop()

    def real_once(self, variant: str, rep: int, broker: procs.Tansu, direct_broker: procs.Tansu | None,
                  fallback: str | None = None) -> None:
        """One real-client run through `variant`; with `fallback`, an old librdkafka (no
        ApiVersions, the protocol of that broker release), recorded as `<variant>_legacy`."""
        envoy = None
        cmd = [sys.executable, str(BENCH / "realclient.py"), "--topic", REAL_TOPIC, "--messages", str(self.args.real_messages)]
        if fallback:
            cmd += ["--broker-version-fallback", fallback]
        if variant == "direct":
            assert direct_broker is not None
            cmd += ["--bootstrap", f"127.0.0.1:{direct_broker.port}", "--broker-pid", str(direct_broker.pid)]
        else:
            envoy = procs.BenchEnvoy(self.variants[variant], broker.port, self.workdir, self.args.concurrency,
                                     listener_port=self.real_port)
            cmd += ["--bootstrap", f"127.0.0.1:{self.real_port}", "--envoy-pid", str(envoy.pid),
                    "--envoy-admin-port", str(envoy.admin_port), "--broker-pid", str(broker.pid)]
        record = {"variant": f"{variant}_legacy" if fallback else variant, "rep": rep}
        perf = None
        if envoy is not None and self.args.perf_dir is not None:
            # Where Envoy's CPU goes (kernel, Envoy, the Wasm module's code): bench/perfsplit.py.
            self.args.perf_dir.mkdir(parents=True, exist_ok=True)
            perf_out = self.args.perf_dir / f"{record['variant']}-{rep}.data"
            stat_out = perf_out.with_suffix(".stat")
            perf = [subprocess.Popen(["perf", "record", "-q", "-F", str(PERF_HZ), "-o", str(perf_out), "-p", str(envoy.pid)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                    subprocess.Popen(["perf", "stat", "-x", ",", "-o", str(stat_out), "-e", ",".join(PERF_SYSCALLS), "-p", str(envoy.pid)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            lines = p.stdout.strip().splitlines()
            if p.returncode != 0 or not lines:
                record["error"] = (p.stderr.strip() or p.stdout.strip())[-2000:]
                self.results["failures"].append({"phase": "real", **record})
                print(f"  FAILED {variant}: {record['error'][-300:]}", flush=True)
                return
            record.update(json.loads(lines[-1]))
            self.results["real_client"].append(record)
            print(f"  {record['variant']:10s} {record['payload_mb_per_s']:7.1f} MB/s  envoy {record['envoy_cpu_s_per_gb'] or 0:.3f} s/GB", flush=True)
        finally:
            for profiler in perf or []:
                profiler.send_signal(signal.SIGINT)  # perf writes its file and exits
                profiler.wait(timeout=60)
            if envoy is not None:
                self.check_vm(envoy)
                envoy.stop()

    # --- bookkeeping ---------------------------------------------------------------------------
    def check_vm(self, envoy: procs.BenchEnvoy) -> None:
        failures = envoy.vm_failures()
        if failures:
            self.results["failures"].append({"phase": "vm", "variant": envoy.variant.name, "error": f"Wasm VM failure {failures}; log {envoy.proc.log_path}"})

    def stop_envoys(self) -> None:
        for envoy in self.envoys.values():
            self.check_vm(envoy)
            envoy.stop()
        self.envoys.clear()

    def stop(self) -> None:
        self.stop_envoys()
        for upstream in self.upstreams.values():
            upstream.stop()

    def run(self) -> dict:
        self.check_inputs()
        started = time.time()
        meta = procs.machine_info()
        meta["modules"] = {v.name: procs.file_digest(v.wasm) for v in self.variants.values() if v.wasm and v.name in self.order}
        meta["kafka_lens_configuration"] = procs.filter_configuration(procs.CONFIGS / "local.yaml")
        try:
            self.start_upstreams()
            self.run_loadgen_phases()
            # The loadgen phases' Envoys idle from here on: stopped, so they do not wake up
            # (stats flushes, timers, each Wasm VM's tick) during the CPU measurements that follow.
            self.stop_envoys()
            if "memory" in self.phases:
                self.run_memory()
            if "real" in self.phases:
                responder = self.upstreams.pop("responder", None)
                if responder is not None:
                    responder.stop()
                self.run_real()
        finally:
            self.stop()
        meta["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
        meta["wall_seconds"] = round(time.time() - started, 1)
        broker = self.upstreams.get("broker")
        meta["tansu_restarts"] = broker.restarts if isinstance(broker, procs.Tansu) else 0
        self.results["meta"] = meta
        self.results["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.args).items()}
        self.results["variants"] = {v: self.variants[v].description for v in self.order}
        return self.results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = Bench(args).run()
    results["micro"] = report.load_criterion(args.criterion_dir) if not args.smoke else {}
    args.out.mkdir(parents=True, exist_ok=True)
    summary = report.write(results, args.out)
    print(summary)
    return 1 if results["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
