"""Soak: several producers and a consumer group through Envoy + kafka-lens for a bounded run.
Every record must arrive once, in order per partition, byte-identical (values are derived from
(producer, sequence), so they are checked without being stored), and the filter's counts must
equal the clients'.

    source tests/setup.sh && python tests/soak.py --records 1000000 --minutes 5     # the long soak
The test suite runs a short one (tests/test_soak.py).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

PARTITIONS = 6


def value_of(producer: int, seq: int) -> bytes:
    seed = hashlib.sha256(f"{producer}:{seq}".encode()).digest()
    length = 10 + (seq * 7919 + producer * 104729) % 1500
    return (seed * (length // 32 + 1))[:length]


@dataclass
class SoakResult:
    produced: int = 0
    consumed: int = 0
    duplicates: int = 0
    corrupt: int = 0
    out_of_order: int = 0
    missing: int = 0
    seconds: float = 0.0
    errors: list = field(default_factory=list)


def produce(bootstrap: str, topic: str, producer_id: int, count: int, result: SoakResult, lock: threading.Lock) -> None:
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "client.id": f"soak-producer-{producer_id}", "acks": "all",
                  "linger.ms": 5, "enable.idempotence": True, "queue.buffering.max.messages": 200_000})
    errors = []
    for seq in range(count):
        while True:
            try:
                p.produce(topic, key=f"{producer_id}:{seq}".encode(), value=value_of(producer_id, seq),
                          partition=seq % PARTITIONS, on_delivery=lambda e, m: errors.append(e) if e else None)
                break
            except BufferError:
                p.poll(0.05)
        if seq % 1000 == 0:
            p.poll(0)
    left = p.flush(120)
    with lock:
        result.produced += count - left - len(errors)
        result.errors += [str(e) for e in errors[:3]]
        if left:
            result.errors.append(f"producer {producer_id}: {left} records not delivered")


def run(bootstrap: str, topic: str, producers: int, records_per_producer: int, consumers: int,
        max_seconds: float) -> SoakResult:
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "soak-admin"})
    for f in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        f.result(30)
    del admin

    result, lock = SoakResult(), threading.Lock()
    expected = producers * records_per_producer
    # last[(partition, producer)] = (offset, seq) of the last record seen there
    last: dict[tuple[int, int], tuple[int, int]] = {}
    seen: set[tuple[int, int]] = set()
    stop = threading.Event()
    members = [Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-group", "client.id": f"soak-consumer-{i}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": True, "auto.commit.interval.ms": 200})
               for i in range(consumers)]
    for c in members:
        c.subscribe([topic])
    # Wait for a stable group before producing, so that no rebalance redelivers records.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(c.assignment() for c in members):
        for c in members:
            c.poll(0.1)
    assert all(c.assignment() for c in members), "consumer group did not settle"

    def consume(c) -> None:
        while not stop.is_set():
            msg = c.poll(0.2)
            if msg is None or msg.error():
                continue
            producer_id, seq = (int(x) for x in msg.key().split(b":"))
            with lock:
                result.consumed += 1
                if (producer_id, seq) in seen:
                    result.duplicates += 1
                    continue
                seen.add((producer_id, seq))
                if msg.value() != value_of(producer_id, seq) or msg.partition() != seq % PARTITIONS:
                    result.corrupt += 1
                prev = last.get((msg.partition(), producer_id))
                if prev is not None and (msg.offset() <= prev[0] or seq <= prev[1]):
                    result.out_of_order += 1
                last[(msg.partition(), producer_id)] = (msg.offset(), seq)

    start = time.monotonic()
    threads = [threading.Thread(target=consume, args=(c,)) for c in members]
    threads += [threading.Thread(target=produce, args=(bootstrap, topic, i, records_per_producer, result, lock))
                for i in range(producers)]
    for t in threads:
        t.start()
    while time.monotonic() - start < max_seconds:
        with lock:
            if len(seen) >= expected:
                break
        time.sleep(0.2)
    time.sleep(1)  # let any duplicate show up
    stop.set()
    for t in threads:
        t.join(60)
    for c in members:
        c.close()
    result.seconds = time.monotonic() - start
    result.missing = expected - len(seen)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000, help="records in all")
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=5)
    args = parser.parse_args()
    from harness import ROOT, Broker, Envoy, free_port
    logs = ROOT / ".run" / f"soak-{time.strftime('%H%M%S')}"
    logs.mkdir(parents=True, exist_ok=True)
    proxy = free_port()
    broker = Broker(free_port(), proxy, logs)
    envoy = Envoy(proxy, broker.port, logs)
    try:
        r = run(f"127.0.0.1:{proxy}", "soak", args.producers, args.records // args.producers, args.consumers, args.minutes * 60)
        m = envoy.metrics()
        counted = m.get("kafka_records_total", api="Produce", direction="request")
        print(f"{r.produced} produced, {r.consumed} consumed in {r.seconds:.0f} s; missing {r.missing}, duplicates "
              f"{r.duplicates}, corrupt {r.corrupt}, out of order {r.out_of_order}; filter counted {counted:.0f} "
              f"produced records; errors {r.errors}")
        ok = r.missing == r.duplicates == r.corrupt == r.out_of_order == 0 and not r.errors and counted == r.produced
        return 0 if ok else 1
    finally:
        envoy.stop()
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
