"""The Kafka access log: envoy-configs/access-log.yaml's access log, on the shipped config, prints
one line per connection with what kafka-lens saw on it (client id, client software, APIs, topics,
the last error), from the filter state the filter hands to Envoy when the connection ends."""
from __future__ import annotations

import gc
import json
import struct
import time
import uuid
from pathlib import Path

import yaml

from clients import create_topic_and_produce
from conftest import assert_vm_healthy
from harness import ROOT, Envoy
from raw_kafka import exchange, kafka_frame

ACCESS_LOG = ROOT / "envoy-configs" / "access-log.yaml"


def tcp_proxy(config: dict) -> dict:
    filters = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
    return next(f for f in filters if f["name"] == "envoy.filters.network.tcp_proxy")["typed_config"]


def with_shipped_access_log(path: Path):
    """The shipped example's access log, written to `path` instead of stdout."""
    def transform(config: dict) -> dict:
        access_log = tcp_proxy(yaml.safe_load(ACCESS_LOG.read_text()))["access_log"]
        access_log[0]["typed_config"]["path"] = str(path)
        tcp_proxy(config)["access_log"] = access_log
        return config
    return transform


def lines(path: Path, predicate, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []
        found = [l for l in found if predicate(l)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_access_log_names_the_client_its_apis_topics_and_last_error(broker, tap, workdir, proxy_port):
    log_path = workdir / f"access-{uuid.uuid4().hex[:6]}.log"
    envoy = Envoy(proxy_port, tap.port, workdir, transform=with_shipped_access_log(log_path))
    try:
        bootstrap = f"127.0.0.1:{proxy_port}"
        topic = f"access-{uuid.uuid4().hex[:8]}"
        values = [f"v{i}".encode() for i in range(5)]
        assert create_topic_and_produce(bootstrap, topic, "access-producer", values, admin_id="access-admin") == [None] * 5
        # A raw client asks for a topic that does not exist: the broker answers with an error.
        body = struct.pack(">i", 1) + struct.pack(">h", 7) + b"missing"
        # (One request, and its response read before closing: the log line is written at close.)
        exchange(proxy_port, kafka_frame(3, 1, 2, client_id=b"access-raw", body=body))
        gc.collect()

        produced = lines(log_path, lambda l: l["kafka_client_id"] == "access-producer" and "Produce:" in (l["kafka_apis"] or ""))
        assert produced, log_path.read_text() if log_path.exists() else "no access log"
        line = produced[0]
        assert topic in line["kafka_topics"].split(","), line
        assert line["kafka_last_api"] and line["kafka_client_software"], line
        assert line["kafka_identity"] == "client_id:access-producer", line
        assert int(line["bytes_from_client"]) > 0 and line["broker"], line

        raw = lines(log_path, lambda l: l["kafka_client_id"] == "access-raw")
        assert raw and raw[0]["kafka_apis"] == "Metadata:1" and raw[0]["kafka_last_api"] == "Metadata", raw
        assert raw[0]["kafka_last_error"] == "UNKNOWN_TOPIC_OR_PARTITION" and raw[0]["kafka_errors"] == "1", raw
        assert raw[0]["kafka_topics"] == "missing", raw
        assert envoy.metrics().value("kafka_lens_hostcall_failures_total") in (None, 0)
    finally:
        panics = envoy.metrics().value("kafka_lens_panics_total")
        envoy.stop()
        assert_vm_healthy(envoy)
        assert panics == 0
