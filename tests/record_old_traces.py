"""Records real clients speaking the old protocol versions Kafka 4.0 removed (KIP-896) as trace files
for the native legacy replay test (codec/tests/legacy_replay.rs): codec/tests/data/traces/old-*/
connNNN.trace, in the format of tests/record_traces.py, against tansu directly through the recording
tap (no Envoy, so the frames are exactly what the old clients and the broker sent).

- old-librdkafka-0.9: confluent-kafka with `api.version.request=false` and
  `broker.version.fallback=0.9.0` (no ApiVersions; Produce v1 with message format v0, Fetch v1,
  ListOffsets v0), one producer per codec (gzip, snappy, lz4).
- old-kafka-python-0.9 / old-kafka-python-0.10: kafka-python with `api_version=(0, 9)` (Produce v1,
  format v0, Fetch v1) and `(0, 10, 0)` (Produce v2, format v1 with timestamps, Fetch v2), gzip.

tansu (0.6) only half speaks these versions, which shapes what each client does here:
- it refuses every old-format Produce (message sets, magic 0/1) with UNKNOWN_PRODUCER_ID, so the
  old producers' requests are recorded but nothing they send is stored;
- its ListOffsets v0 answer is malformed (librdkafka: "Protocol read buffer underflow", kafka-python:
  "Unable to decode response"), so a consumer of a group without committed offsets dies there;
- it answers Fetch v0-3 with record batches (magic 2) where a Kafka broker down-converted to the
  reader's magic; both old clients read them anyway.
So each topic is seeded (not recorded) by a current producer with the same records, and a
current consumer commits offset 0 for one group. Recorded per client: the old producers (their
requests, tansu's refusals), an old consumer in a fresh group (until it fails at ListOffsets v0)
and an old consumer in the committed group (OffsetFetch gives it offset 0: it fetches everything).

Keys are sometimes null; values are short, so the traces stay small.

    source tests/setup.sh && python tests/record_old_traces.py
"""
from __future__ import annotations

import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Broker, free_port  # noqa: E402
from kafka_tap import KafkaTap  # noqa: E402

OUT = ROOT / "codec" / "tests" / "data" / "traces"
RECORDS = 30
# Timestamps the producers set (kept by magic 1 and 2), in the past so none can be the broker's own.
BASE_TS = 1_700_000_000_000
LIBRDKAFKA_CODECS = ["gzip", "snappy", "lz4"]


def key(i: int) -> bytes | None:
    return None if i % 4 == 0 else b"k%d" % i


def value(tag: str, i: int) -> bytes:
    return f"{tag}-{i}-".encode() * (1 + i % 3)


class Client:
    """One old client: its trace directory, topic and partitions, its records (codec, partition, key,
    value, timestamp), and how it produces and consumes (subclasses)."""

    def __init__(self, name: str, topic: str, partitions: int):
        self.name, self.topic, self.partitions = name, topic, partitions

    def records(self) -> list[tuple[str, int, bytes | None, bytes, int]]:
        raise NotImplementedError

    def group(self, committed: bool) -> str:
        return f"{self.topic}-{'committed' if committed else 'fresh'}"


def seed(bootstrap: str, client: Client) -> None:
    """Not recorded: creates the topic, writes the client's records with a current producer (tansu
    refuses the old producers' message sets) and commits offset 0 for the committed group."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "old-trace-admin"})
    admin.create_topics([NewTopic(client.topic, client.partitions, 1)])[client.topic].result(30)
    del admin
    by_codec: dict[str, list] = {}
    for codec, partition, k, v, ts in client.records():
        by_codec.setdefault(codec, []).append((partition, k, v, ts))
    for codec, records in by_codec.items():
        producer = Producer({"bootstrap.servers": bootstrap, "client.id": "old-trace-seed", "compression.codec": codec,
                             "linger.ms": 20})
        for partition, k, v, ts in records:
            producer.produce(client.topic, key=k, value=v, partition=partition, timestamp=ts)
        assert producer.flush(30) == 0
        del producer
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": client.group(True), "client.id": "old-trace-seed"})
    consumer.commit(offsets=[TopicPartition(client.topic, p, 0) for p in range(client.partitions)], asynchronous=False)
    consumer.close()
    del consumer
    gc.collect()


class OldLibrdkafka(Client):
    def __init__(self):
        super().__init__("old-librdkafka-0.9", "old-trace-librdkafka", 2)
        # log_level 2: quiet the deprecation warnings and the one error line per failed ListOffsets v0.
        self.conf = {"api.version.request": False, "broker.version.fallback": "0.9.0", "log_level": 2}

    def records(self):
        per_codec = RECORDS // len(LIBRDKAFKA_CODECS)
        return [(codec, i % 2, key(i), value(codec, i), BASE_TS + i)
                for n, codec in enumerate(LIBRDKAFKA_CODECS) for i in range(n * per_codec, (n + 1) * per_codec)]

    def produce(self, bootstrap: str) -> None:
        from confluent_kafka import Producer
        errors = []
        for codec in LIBRDKAFKA_CODECS:
            producer = Producer({"bootstrap.servers": bootstrap, **self.conf, "client.id": f"old-producer-{codec}",
                                 "compression.codec": codec, "linger.ms": 20, "message.send.max.retries": 0})
            for c, partition, k, v, _ in self.records():
                if c == codec:
                    producer.produce(self.topic, key=k, value=v, partition=partition,
                                     on_delivery=lambda err, _m: errors.append(err and err.str()))
            assert producer.flush(30) == 0
            del producer
            gc.collect()
        print(f"  produced: {errors.count(None)} delivered, refused: {sorted(set(e for e in errors if e))}")

    def consume(self, bootstrap: str, committed: bool) -> list:
        from confluent_kafka import Consumer
        consumer = Consumer({"bootstrap.servers": bootstrap, **self.conf, "client.id": "old-consumer",
                             "group.id": self.group(committed), "auto.offset.reset": "earliest",
                             "enable.auto.commit": False, "session.timeout.ms": 6000})
        consumer.subscribe([self.topic])
        got, errors = [], set()
        deadline = time.monotonic() + (20 if committed else 4)
        while len(got) < RECORDS and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                errors.add(msg.error().str())
            else:
                got.append((msg.partition(), msg.key(), msg.value()))
        if got:
            consumer.commit(asynchronous=False)
        consumer.close()
        del consumer
        gc.collect()
        if errors:
            print(f"  consumer errors: {sorted(errors)[:3]}")
        return sorted(got, key=lambda r: (r[0], r[1] or b"", r[2]))

    def expected(self) -> list:
        return sorted(((p, k, v) for _, p, k, v, _ in self.records()), key=lambda r: (r[0], r[1] or b"", r[2]))


class OldKafkaPython(Client):
    def __init__(self, api_version: tuple[int, ...]):
        tag = ".".join(map(str, api_version[:2]))
        super().__init__(f"old-kafka-python-{tag}", f"old-trace-kafka-python-{tag.replace('.', '')}", 1)
        self.api_version = api_version
        self.tag = tag

    def records(self):
        return [("gzip", 0, key(i), value(self.tag, i), BASE_TS + i) for i in range(RECORDS)]

    def produce(self, bootstrap: str) -> None:
        from kafka import KafkaProducer
        timestamps = self.api_version >= (0, 10)
        producer = KafkaProducer(bootstrap_servers=bootstrap, api_version=self.api_version, client_id=f"old-producer-{self.tag}",
                                 compression_type="gzip", linger_ms=10, retries=0)
        futures = [producer.send(self.topic, key=k, value=v, timestamp_ms=ts if timestamps else None)
                   for _, _, k, v, ts in self.records()]
        producer.flush(30)
        errors = []
        for f in futures:
            try:
                f.get(10)
                errors.append(None)
            except Exception as e:  # tansu refuses old message sets
                errors.append(type(e).__name__)
        producer.close()
        print(f"  produced: {errors.count(None)} delivered, refused: {sorted(set(e for e in errors if e))}")

    def consume(self, bootstrap: str, committed: bool) -> list:
        from kafka import KafkaConsumer
        consumer = KafkaConsumer(self.topic, bootstrap_servers=bootstrap, api_version=self.api_version,
                                 client_id=f"old-consumer-{self.tag}", group_id=self.group(committed),
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 consumer_timeout_ms=8000 if committed else 3000, heartbeat_interval_ms=300)
        got = []
        try:
            for msg in consumer:
                got.append((msg.key, msg.value, msg.timestamp))
                if len(got) == RECORDS:
                    break
            if got:
                consumer.commit()
        except Exception as e:  # keep whatever was recorded
            print(f"  consumer failed: {e!r}")
        finally:
            consumer.close()
        return got

    def expected(self) -> list:
        return [(k, v, ts) for _, _, k, v, ts in self.records()]


CLIENTS = (OldLibrdkafka(), OldKafkaPython((0, 9)), OldKafkaPython((0, 10, 0)))


def main() -> None:
    for client in CLIENTS:
        if (OUT / client.name).exists():
            shutil.rmtree(OUT / client.name)
    logs = Path(tempfile.mkdtemp())
    tap_port = free_port()
    broker = Broker(free_port(), tap_port, logs)
    try:
        for client in CLIENTS:
            print(client.name)
            bootstrap = f"127.0.0.1:{tap_port}"
            # The broker advertises the tap's port, so seeding goes through a tap too, one that
            # records nothing.
            tap = KafkaTap(broker.port, port=tap_port)
            seed(bootstrap, client)
            time.sleep(0.5)
            tap.stop()
            tap = KafkaTap(broker.port, record_dir=OUT / client.name, port=tap_port)
            client.produce(bootstrap)
            fresh = client.consume(bootstrap, committed=False)
            print(f"  fresh group: {len(fresh)} records")
            got = client.consume(bootstrap, committed=True)
            print(f"  committed group: {len(got)} records")
            assert got == client.expected(), got[:3]
            gc.collect()
            time.sleep(1.5)
            tap.stop()
            with tap.lock:
                versions = sorted(tap.request_versions.items())
            print(" ", versions)
    finally:
        broker.stop()
    files = [f for client in CLIENTS for f in (OUT / client.name).rglob("*.trace")]
    total = sum(f.stat().st_size for f in files)
    print(f"old-version traces: {len(files)} files, {total} bytes")


if __name__ == "__main__":
    main()
