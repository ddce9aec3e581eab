"""The processes of an end-to-end benchmark run: Envoy in each variant, the canned responder, the
tansu broker, and what /proc and Envoy's admin say about them.

Process management (process groups, cleanup at exit, port waits) is tests/harness.py's; this
module only adds what the benchmark needs on top: variant configs, CPU and memory readings.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness import ROOT, Broker, Proc, envoy_admin, free_port, wait_envoy_live, wait_port  # tests/harness.py

CONFIGS = ROOT / "envoy-configs"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# V8 reserves each Wasm linear memory with guard regions: an anonymous mapping of several GiB of
# address space (see wasm_linear_memory). Nothing else in Envoy reserves that much.
WASM_MAPPING_MIN_SIZE_KB = 4 * 1024 * 1024
_MAPPING = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+)")
# Markers of a failed Wasm VM in Envoy's log (as tests/conftest.py checks).
VM_FAILURE_MARKERS = ("Function: proxy_on", "wasm trap", "panicked at", "Plugin configured to fail closed")


@dataclass(frozen=True)
class Variant:
    """One way of reaching the upstream: directly, or through Envoy with a config from envoy-configs/."""
    name: str
    config: str | None  # file in envoy-configs/, None for direct
    wasm: Path | None = None  # module the config's Wasm filter loads
    description: str = ""


def variants(kafka_lens_wasm: Path, floor_wasm: Path) -> dict[str, Variant]:
    return {v.name: v for v in [
        Variant("direct", None, None, "client connects to the upstream itself, no proxy"),
        Variant("tcp_proxy", "bench-tcp-proxy.yaml", None, "Envoy tcp_proxy only"),
        Variant("floor", "bench-floor.yaml", floor_wasm, "pass-through proxy-wasm filter that reads nothing"),
        Variant("read_floor", "bench-read-floor.yaml", floor_wasm,
                "the floor filter reading each Kafka frame's first bytes (up to 1 KiB) into the VM, as kafka-lens "
                "does, and nothing else: the least a filter pays that looks at every request and response"),
        # The filter exactly as users run it: the shipped config, whatever it holds today.
        Variant("kafka_lens", "local.yaml", kafka_lens_wasm, "kafka-lens with envoy-configs/local.yaml as shipped (metrics)"),
        Variant("kafka_lens_policy", "bench-policy.yaml", kafka_lens_wasm,
                "kafka-lens with a policy that holds and checks every Produce, refusing none"),
        Variant("kafka_lens_rewrite", "bench-rewrite.yaml", kafka_lens_wasm,
                "kafka-lens renaming the benchmark's topics in both directions"),
        Variant("kafka_lens_full", "bench-full.yaml", kafka_lens_wasm,
                "kafka-lens with metrics + the policy of bench-policy.yaml + the renames of bench-rewrite.yaml"),
        Variant("kafka_lens_translation", "bench-translation.yaml", kafka_lens_wasm,
                "kafka-lens with version translation on (kafka-4.0 preset); its real-client phase also runs a "
                "librdkafka on Produce v1 (broker.version.fallback=0.9.0) whose requests are translated"),
    ]}


def _shape(path: Path) -> dict:
    """What must be equal across variants for the comparison to be about the filter only."""
    cfg = yaml.safe_load(path.read_text())
    listener = cfg["static_resources"]["listeners"][0]
    cluster = cfg["static_resources"]["clusters"][0]
    tcp_proxy = [f["typed_config"] for f in listener["filter_chains"][0]["filters"] if f["name"] == "envoy.filters.network.tcp_proxy"]
    return {"listener_buffer_limit": listener.get("per_connection_buffer_limit_bytes"),
            "cluster_buffer_limit": cluster.get("per_connection_buffer_limit_bytes"),
            "cluster_type": cluster.get("type"), "tcp_proxy": tcp_proxy}


def check_configs_match_local() -> None:
    """Every bench-*.yaml must set up the listener, cluster and tcp_proxy exactly as local.yaml
    does; fails loudly if they drifted apart."""
    local = _shape(CONFIGS / "local.yaml")
    for name in sorted(p.name for p in CONFIGS.glob("bench-*.yaml")):
        ours = _shape(CONFIGS / name)
        if ours != local:
            raise SystemExit(f"envoy-configs/{name} no longer matches local.yaml outside the filter: {ours} != {local}")


def render(variant: Variant, listener_port: int, admin_port: int, upstream_port: int) -> dict:
    """The variant's config with only its ports, module path and failure policy changed."""
    assert variant.config is not None
    config = copy.deepcopy(yaml.safe_load((CONFIGS / variant.config).read_text()))
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    listener = config["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = listener_port
    for f in listener["filter_chains"][0]["filters"]:
        if f["name"] == "envoy.filters.network.wasm":
            f["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = str(variant.wasm)
            # A failed VM must fail the benchmark, not let traffic bypass the filter (which would
            # make it look free). local.yaml ships FAIL_OPEN.
            f["typed_config"]["config"]["failure_policy"] = "FAIL_CLOSED"
    cluster = config["static_resources"]["clusters"][0]
    cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] = upstream_port
    return config


class BenchEnvoy:
    """Envoy running one variant in front of `upstream_port`."""

    def __init__(self, variant: Variant, upstream_port: int, workdir: Path, concurrency: int,
                 listener_port: int | None = None):
        self.variant = variant
        self.listener_port = listener_port or free_port()
        self.admin_port = free_port()
        config = render(variant, self.listener_port, self.admin_port, upstream_port)
        self.config_path = workdir / f"envoy-{variant.name}-{self.listener_port}.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.proc = Proc(f"envoy-{variant.name}", [
            "envoy", "-c", str(self.config_path), "--concurrency", str(concurrency),
            "--disable-hot-restart", "-l", "warn",
        ], workdir / f"envoy-{variant.name}-{self.listener_port}.log")
        wait_envoy_live(self.proc, self.admin_port, self.listener_port)

    @property
    def pid(self) -> int:
        return self.proc.popen.pid

    def admin(self, path: str) -> str:
        return envoy_admin(self.admin_port, path)

    def stat(self, name: str) -> int:
        """A counter or gauge from /stats (plain text `name: value`)."""
        for line in self.admin(f"stats?filter=^{name}$").splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
        return 0

    def memory(self) -> dict:
        """Process RSS, tcmalloc's allocated bytes (admin /memory) and Wasm linear memory."""
        try:
            tcmalloc = json.loads(self.admin("memory"))
        except json.JSONDecodeError:
            tcmalloc = {}
        wasm_rss, wasm_committed, wasm_count = wasm_linear_memory(self.pid)
        return {
            "rss_bytes": status_bytes(self.pid, "VmRSS"),
            "heap_allocated_bytes": int(tcmalloc.get("allocated", 0)),
            "wasm_linear_memory_rss_bytes": wasm_rss,
            "wasm_linear_memory_size_bytes": wasm_committed,
            "wasm_linear_memories": wasm_count,
        }

    def vm_failures(self) -> list[str]:
        log = self.proc.log_path.read_text(errors="replace")
        return [m for m in VM_FAILURE_MARKERS if m in log]

    def stop(self) -> None:
        self.proc.stop()


class Responder:
    """The canned responder (`loadgen respond`)."""

    def __init__(self, loadgen: Path, workdir: Path):
        self.port = free_port()
        self.proc = Proc("responder", [str(loadgen), "respond", "--listen", f"127.0.0.1:{self.port}"],
                         workdir / f"responder-{self.port}.log")
        wait_port(self.port, 10, self.proc)

    @property
    def pid(self) -> int:
        return self.proc.popen.pid

    def stop(self) -> None:
        self.proc.stop()


class Tansu:
    """A tansu broker (memory storage) with the benchmark's topics created and the Fetch topics
    preloaded. In-memory storage keeps every record produced, so `maybe_restart` starts it afresh
    when its memory passes a limit."""

    def __init__(self, loadgen: Path, workdir: Path, advertised_port: int | None = None,
                 preload: dict[str, tuple[str, int]] | None = None, topics: list[str] | None = None,
                 rss_limit: int = 2 << 30):
        self.loadgen = loadgen
        self.workdir = workdir
        self.port = free_port()
        self.advertised_port = advertised_port or self.port
        self.preload = preload or {}
        self.topics = sorted(set((topics or []) + list(self.preload)))
        self.rss_limit = rss_limit
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        self.broker = Broker(self.port, self.advertised_port, self.workdir)
        args = [str(self.loadgen), "setup", "--addr", f"127.0.0.1:{self.port}", "--topics", ",".join(self.topics)]
        for topic, (shape, batches) in self.preload.items():
            args += ["--preload", f"{topic}={shape}:{batches}"]
        subprocess.run(args, check=True, capture_output=True, timeout=120)

    @property
    def pid(self) -> int:
        return self.broker.proc.popen.pid

    def maybe_restart(self) -> bool:
        if (status_bytes(self.pid, "VmRSS") or 0) < self.rss_limit:
            return False
        self.broker.stop()
        self.restarts += 1
        self._start()
        return True

    def stop(self) -> None:
        self.broker.stop()


def status_bytes(pid: int, field: str) -> int | None:
    """A kB field of /proc/<pid>/status, in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def cpu_seconds(pid: int) -> float | None:
    """CPU time of every thread of `pid` (user + system), in seconds, to the nanosecond: the
    process's CPU-time clock (`clock_gettime` on the clock id Linux derives from a pid, as
    `clock_getcpuclockid` does). `/proc/<pid>/stat` counts in ticks of 10 ms, which is 3–4 % of
    the Envoy CPU a real-client run measures; it stays the fallback."""
    try:
        return time.clock_gettime(((~pid) << 3) | 2)  # CPUCLOCK_SCHED of the whole process
    except OSError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def wasm_linear_memory(pid: int) -> tuple[int | None, int | None, int]:
    """Wasm linear memories of the process: (resident bytes, committed bytes, count).

    V8 reserves each linear memory as one PROT_NONE mapping of several GiB (guard regions) and
    makes the memory's current size read-write at its start, which splits the reservation: the
    linear memory is the `rw-p` mapping that ends exactly where a reservation of at least
    WASM_MAPPING_MIN_SIZE_KB starts. Its size is what the module has grown its memory to; its
    Rss what it touched."""
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return None, None, 0
    maps: list[dict] = []
    for line in text.splitlines():
        m = _MAPPING.match(line)
        if m:
            maps.append({"start": int(m[1], 16), "end": int(m[2], 16), "perms": m[3], "rss_kb": 0})
        elif line.startswith("Rss:") and maps:
            maps[-1]["rss_kb"] = int(line.split()[1])
    rss, committed, count = 0, 0, 0
    for prev, cur in zip(maps, maps[1:]):
        reserved = cur["perms"].startswith("---") and (cur["end"] - cur["start"]) >= WASM_MAPPING_MIN_SIZE_KB * 1024
        if reserved and prev["end"] == cur["start"] and prev["perms"].startswith("rw"):
            rss += prev["rss_kb"] * 1024
            committed += prev["end"] - prev["start"]
            count += 1
    return rss, committed, count


def filter_configuration(path: Path) -> str | None:
    """The Wasm filter's JSON configuration in an Envoy config file."""
    cfg = yaml.safe_load(path.read_text())
    for f in cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]:
        if f["name"] == "envoy.filters.network.wasm":
            return f["typed_config"]["config"].get("configuration", {}).get("value")
    return None


def file_digest(path: Path) -> dict:
    """Size and sha256 of a module, so results name exactly the filter build they measured."""
    data = Path(path).read_bytes()
    return {"path": str(path), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def machine_info() -> dict:
    def first(path: str, key: str) -> str | None:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return None

    def output(cmd: list[str]) -> str | None:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip() or None
        except (OSError, subprocess.TimeoutExpired):
            return None

    envoy_version = output(["envoy", "--version"])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": first("/proc/cpuinfo", "model name"),
        "memory_total": first("/proc/meminfo", "MemTotal"),
        "kernel": os.uname().release,
        "envoy_version": envoy_version.splitlines()[-1] if envoy_version else None,
        "tansu": os.environ.get("TANSU"),
        "git_commit": output(["git", "-C", str(ROOT), "rev-parse", "HEAD"]),
        "git_dirty": bool(output(["git", "-C", str(ROOT), "status", "--porcelain"])),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }
