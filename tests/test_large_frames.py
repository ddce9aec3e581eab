"""Frames far above Envoy's default 1 MiB connection buffer pass through the filter intact: 5 MiB
and 20 MiB Produce requests and a 20 MiB Fetch response."""
from __future__ import annotations

import gc
import hashlib
import os
import time

from clients import wait_until

MiB = 1024 * 1024


def test_5mib_produce_and_20mib_fetch(envoy, tap):
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = f"127.0.0.1:{envoy.listener_port}"
    topic = "e2e-large"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        f.result(30)

    # A 5 MiB record, then a 20 MiB one: a broker returns at least one whole batch per fetch, so the
    # second forces a ~20 MiB Fetch response whatever the broker's own response cap.
    values = [os.urandom(5 * MiB - 1024), os.urandom(20 * MiB - 1024)]
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 21 * MiB, "linger.ms": 0,
                         "batch.size": 21 * MiB, "compression.type": "none"})
    errors = []
    for i, v in enumerate(values):
        producer.produce(topic, value=v, key=b"big-%d" % i, on_delivery=lambda e, m: errors.append(e) if e else None)
        producer.flush(60)  # one Produce request per record
    assert not errors, errors

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "large", "auto.offset.reset": "earliest",
                         "fetch.max.bytes": 25 * MiB, "max.partition.fetch.bytes": 25 * MiB,
                         "receive.message.max.bytes": 30 * MiB})
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < len(values) and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None and msg.error():
            print("consumer error:", msg.error())
        elif msg is not None:
            got.append(msg.value())
    consumer.close()
    del producer, admin  # confluent-kafka handles close their connections when collected
    gc.collect()
    assert [hashlib.sha256(v).digest() for v in got] == [hashlib.sha256(v).digest() for v in values]
    assert tap.largest_request >= 5 * MiB - 1024, "no 5 MiB Produce request crossed the proxy"
    assert tap.largest_response >= 20 * MiB - 4096, f"largest Fetch response only {tap.largest_response} bytes"

    m = envoy.settled_metrics()
    tap_requests, _ = tap.snapshot()
    assert m.by_label("kafka_requests_total", "api") == tap_requests
    assert m.get("kafka_requests_total", api="Produce") == len(values)
    assert m.get("kafka_undecodable_frames_total") == 0
    assert m.get("kafka_connections_closed_by_filter_total") == 0
    assert m.get("kafka_records_total", api="Produce", direction="request") == len(values)
    assert m.get("kafka_records_total", api="Fetch", direction="response") >= len(values)
    assert m.get("kafka_scan_errors_total") == 0
    # The record-carrying frames were never copied into the VM for decoding.
    assert m.get("kafka_bodies_decoded_total", api="Produce", direction="request") == 0
    assert m.get("kafka_bodies_decoded_total", api="Fetch", direction="response") == 0
