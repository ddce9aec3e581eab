"""kcat, the CLI users reach for first, produces and consumes through the filter. It runs with
the librdkafka 2.16 bundled in the confluent-kafka wheel (tests/setup.sh links it): Debian's kcat
with its own librdkafka 2.0.2 cannot complete ApiVersions against tansu (see README)."""
from __future__ import annotations

import os
import subprocess

import pytest

from clients import wait_until


def kcat(*args, stdin: bytes | None = None) -> bytes:
    libdir = os.environ.get("KCAT_LIBDIR")
    if not libdir:
        pytest.fail("KCAT_LIBDIR not set: run the tests through tests/run.sh")
    env = {**os.environ, "LD_LIBRARY_PATH": libdir}
    out = subprocess.run(["kcat", *args], input=stdin, env=env, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return out.stdout


def test_kcat_produce_consume(envoy, tap):
    from kafka.admin import KafkaAdminClient, NewTopic

    bootstrap = f"127.0.0.1:{envoy.listener_port}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic("e2e-kcat", 1, 1)])
    admin.close()

    lines = [f"key{i}:value {i} " + "x" * (i % 50) for i in range(500)]
    kcat("-b", bootstrap, "-P", "-t", "e2e-kcat", "-K", ":", "-X", "client.id=e2e-kcat", stdin="\n".join(lines).encode() + b"\n")
    out = kcat("-b", bootstrap, "-C", "-t", "e2e-kcat", "-o", "beginning", "-e", "-K", ":", "-f", "%k:%s\n")
    assert out.decode().splitlines() == lines

    m = envoy.settled_metrics()
    tap_requests, tap_responses = tap.snapshot()
    assert m.by_label("kafka_requests_total", "api") == tap_requests
    assert m.by_label("kafka_responses_total", "api") == tap_responses
    assert tap_requests["Produce"] > 0 and tap_requests["Fetch"] > 0
    assert m.get("kafka_body_decode_errors_total") == 0
    # Exactly what kcat sent and read back, from the batch headers.
    assert m.get("kafka_produced_records_total", topic="e2e-kcat", client_id="e2e-kcat") == len(lines)
    assert m.get("kafka_fetched_records_total", topic="e2e-kcat") == len(lines)
