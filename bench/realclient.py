"""Produce 1 KiB records with librdkafka (confluent-kafka) and measure what it costs the proxy:
one run of the "real client" benchmark, printed as JSON.

Runs as its own process (bench/run.py starts it) so the producer's CPU is not the orchestrator's.
The measured interval starts after a warm-up (connection, metadata, first batches) and ends when
every record is acknowledged; Envoy's CPU time and byte counters are read at both ends.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Producer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # procs imports the test harness
sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import cpu_seconds  # noqa: E402


def envoy_bytes(admin_port: int | None) -> int | None:
    """Bytes Envoy's tcp_proxy received from and sent to clients (both directions)."""
    if admin_port is None:
        return None
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/stats?filter=^tcp\\.kafka\\.downstream_cx_[rt]x_bytes_total$",
                                timeout=5) as r:
        text = r.read().decode()
    return sum(int(line.split(": ")[1]) for line in text.splitlines() if ": " in line)


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, max(0, int(q * len(sorted_values) + 0.999999) - 1))]


class Stats:
    """librdkafka's statistics (statistics.interval.ms): how many requests it sent, so CPU per
    request and the average request size can be told apart from CPU per byte. librdkafka sizes its
    batches to the pipeline's speed, so bytes per request differ between runs and variants."""

    def __init__(self) -> None:
        self.latest: dict | None = None
        self.seen = 0

    def callback(self, raw: str) -> None:
        self.latest = json.loads(raw)
        self.seen += 1

    def fresh(self, producer: Producer, timeout: float = 2.0) -> dict | None:
        """The next statistics report (emitted on the interval timer, delivered by poll)."""
        seen = self.seen
        deadline = time.monotonic() + timeout
        while self.seen == seen and time.monotonic() < deadline:
            producer.poll(0.05)
        return self.latest if self.seen != seen else None

    @staticmethod
    def produce_requests(report: dict | None) -> tuple[int, int] | None:
        """(requests sent, bytes sent) to the brokers so far."""
        if not report:
            return None
        brokers = [b for b in report.get("brokers", {}).values() if b.get("nodeid", -1) >= 0]
        return sum(b.get("tx", 0) for b in brokers), sum(b.get("txbytes", 0) for b in brokers)


def produce(producer: Producer, topic: str, count: int, value: bytes, latencies: list[float] | None, errors: list[str]) -> None:
    def delivered(err, msg) -> None:
        if err is not None:
            errors.append(str(err))
        elif latencies is not None:
            latencies.append(msg.latency())

    for _ in range(count):
        while True:
            try:
                producer.produce(topic, value, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.001)
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining:
        errors.append(f"{remaining} records not delivered within 60 s")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True, help="127.0.0.1:PORT")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--warmup-messages", type=int, default=5_000)
    ap.add_argument("--envoy-pid", type=int)
    ap.add_argument("--envoy-admin-port", type=int)
    ap.add_argument("--broker-pid", type=int)
    ap.add_argument("--broker-version-fallback", help="an old client: librdkafka without ApiVersions, on the protocol "
                    "versions of this broker release (0.9.0: Produce v1 with magic-0 message sets; from 0.10 on librdkafka asks "
                    "ApiVersions anyway); only a proxy "
                    "with version translation can carry it to a Kafka 4.0-era broker")
    args = ap.parse_args()
    if not args.bootstrap.startswith("127.0.0.1:"):
        raise SystemExit("the benchmarks only send traffic to 127.0.0.1")

    # librdkafka's defaults (acks=all, linger.ms=5, batch.size 1 MB, no compression), as a user
    # who changes nothing runs it; only the client id is ours.
    stats = Stats()
    config = {"bootstrap.servers": args.bootstrap, "client.id": "kafka-lens-bench-rdkafka",
              "statistics.interval.ms": 200, "stats_cb": stats.callback}
    if args.broker_version_fallback:
        config.update({"api.version.request": False, "broker.version.fallback": args.broker_version_fallback})
    producer = Producer(config)
    value = bytes(i % 251 for i in range(args.size))
    errors: list[str] = []
    produce(producer, args.topic, args.warmup_messages, value, None, errors)

    sent0 = Stats.produce_requests(stats.fresh(producer))
    latencies: list[float] = []
    cpu0 = cpu_seconds(args.envoy_pid) if args.envoy_pid else None
    broker0 = cpu_seconds(args.broker_pid) if args.broker_pid else None
    bytes0 = envoy_bytes(args.envoy_admin_port)
    self0 = time.process_time()
    t0 = time.monotonic()
    produce(producer, args.topic, args.messages, value, latencies, errors)
    seconds = time.monotonic() - t0
    self1 = time.process_time()
    cpu1 = cpu_seconds(args.envoy_pid) if args.envoy_pid else None
    broker1 = cpu_seconds(args.broker_pid) if args.broker_pid else None
    bytes1 = envoy_bytes(args.envoy_admin_port)
    sent1 = Stats.produce_requests(stats.fresh(producer))
    requests = None if sent0 is None or sent1 is None else sent1[0] - sent0[0]

    latencies.sort()
    payload = args.messages * args.size
    wire = None if bytes0 is None or bytes1 is None else bytes1 - bytes0
    envoy_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    print(json.dumps({
        "client": "confluent-kafka (librdkafka)",
        "broker_version_fallback": args.broker_version_fallback,
        "messages": args.messages,
        "record_bytes": args.size,
        "seconds": seconds,
        "messages_per_s": args.messages / seconds,
        "payload_mb_per_s": payload / seconds / 1e6,
        "envoy_wire_bytes": wire,
        "envoy_cpu_s": envoy_cpu,
        "envoy_cpu_s_per_gb": None if envoy_cpu is None or not wire else envoy_cpu / (wire / 1e9),
        "envoy_cpu_s_per_gb_payload": None if envoy_cpu is None else envoy_cpu / (payload / 1e9),
        # Requests librdkafka sent in the measured interval (statistics at both ends, taken within
        # 200 ms of them: a few requests of slack).
        "requests": requests,
        "records_per_request": None if not requests else args.messages / requests,
        "envoy_cpu_us_per_request": None if envoy_cpu is None or not requests else envoy_cpu / requests * 1e6,
        "broker_cpu_s": None if broker0 is None or broker1 is None else broker1 - broker0,
        "client_cpu_s": self1 - self0,
        # Time from produce() to acknowledgement: includes librdkafka's batching (linger) and
        # queueing behind earlier records, so it reflects the client's pipeline more than the proxy.
        "delivery_latency_ms": {
            "p50": None if not latencies else percentile(latencies, 0.5) * 1000,
            "p99": None if not latencies else percentile(latencies, 0.99) * 1000,
        },
        "errors": errors[:5],
        "error_count": len(errors),
    }))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
