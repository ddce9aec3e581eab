"""Produce and consume through the proxy with real client libraries, and check what came back.

Records carry their sequence number in a header, so every check (byte-identical, in order per
partition, exactly once) compares against what was sent, not against what the broker echoes.
"""
from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Sent:
    partition: int
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def make_records(n: int, partitions: int, tag: str, seed: int = 7) -> list[Sent]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        value = rng.randbytes(rng.choice((0, 1, 17, 100, 1000, 4000)))
        out.append(Sent(i % partitions, f"key-{i}".encode(), value, (("seq", str(i).encode()), ("src", tag.encode()))))
    return out


def check_received(sent: list[Sent], received: list[tuple[int, int, bytes, bytes, tuple]]) -> None:
    """received: (partition, offset, key, value, headers) in the order the consumer saw them."""
    by_seq = {}
    for partition, offset, key, value, headers in received:
        hdrs = dict(headers)
        seq = int(hdrs["seq"])
        assert seq not in by_seq, f"record {seq} delivered twice"
        by_seq[seq] = (partition, offset, key, value, tuple(headers))
    missing = [i for i in range(len(sent)) if i not in by_seq]
    assert not missing, f"{len(missing)} records missing, first {missing[:5]}"
    for i, s in enumerate(sent):
        partition, _offset, key, value, headers = by_seq[i]
        assert partition == s.partition, f"record {i} on partition {partition}, sent to {s.partition}"
        assert key == s.key, f"record {i} key differs"
        assert value == s.value, f"record {i} value differs ({len(value)} vs {len(s.value)} bytes)"
        assert tuple((k, bytes(v)) for k, v in headers) == s.headers, f"record {i} headers differ"
    # In order per partition: offsets rise with the sequence numbers sent to each partition.
    for p in {s.partition for s in sent}:
        seqs = [i for i, s in enumerate(sent) if s.partition == p]
        offsets = [by_seq[i][1] for i in seqs]
        assert offsets == sorted(offsets), f"partition {p}: records out of order"


def digest(records: list[Sent]) -> str:
    h = hashlib.sha256()
    for r in records:
        h.update(r.key + r.value)
    return h.hexdigest()


def wait_until(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


def create_topic_and_produce(bootstrap: str, topic: str, client_id: str, values: list[bytes], admin_id: str) -> list:
    """Creates `topic` (1 partition) as `admin_id` and produces `values` with confluent-kafka as
    `client_id`; returns the delivery errors (None for each delivered record)."""
    import gc

    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": admin_id})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    del admin
    errors: list = []
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5})
    for value in values:
        producer.produce(topic, value=value, on_delivery=lambda err, _m: errors.append(err))
    assert producer.flush(30) == 0
    del producer
    gc.collect()
    return errors
