"""Records real client/broker exchanges as trace files for the native replay tests
(codec/tests/data/traces/<client>/connNNN.trace): kafka-python, confluent-kafka and kcat each
create a topic, produce records with keys and headers, consume them in a group and commit,
against tansu through the recording tap (the broker advertises the tap, so every connection is
recorded).

    source tests/setup.sh && python tests/record_traces.py
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Broker, free_port  # noqa: E402
from kafka_tap import KafkaTap  # noqa: E402

OUT = ROOT / "codec" / "tests" / "data" / "traces"
RECORDS = 200


def kafka_python(bootstrap: str) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="trace-admin")
    admin.create_topics([NewTopic("trace-kafka-python", 2, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="trace-producer", compression_type="gzip")
    for i in range(RECORDS):
        producer.send("trace-kafka-python", key=b"k%d" % i, value=b"value-%d" % i * 3, headers=[("seq", b"%d" % i)])
    producer.flush()
    producer.close()
    consumer = KafkaConsumer("trace-kafka-python", bootstrap_servers=bootstrap, group_id="trace-group",
                             client_id="trace-consumer", auto_offset_reset="earliest", consumer_timeout_ms=4000,
                             enable_auto_commit=False, heartbeat_interval_ms=300)
    assert sum(1 for _ in consumer) == RECORDS
    consumer.commit()
    consumer.close()


def confluent_kafka(bootstrap: str) -> None:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "trace-admin"})
    for f in admin.create_topics([NewTopic("trace-confluent", 2, 1)]).values():
        f.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": "trace-producer", "compression.type": "lz4"})
    for i in range(RECORDS):
        producer.produce("trace-confluent", key=b"k%d" % i, value=b"value-%d" % i * 3, headers=[("seq", b"%d" % i)])
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "trace-group", "client.id": "trace-consumer",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["trace-confluent"])
    got, deadline = 0, time.monotonic() + 30
    while got < RECORDS and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        got += msg is not None and not msg.error()
    assert got == RECORDS
    consumer.commit(asynchronous=False)
    consumer.close()
    del producer, admin


def kcat(bootstrap: str) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic("trace-kcat", 1, 1)])
    admin.close()
    env = {**os.environ, "LD_LIBRARY_PATH": os.environ["KCAT_LIBDIR"]}
    lines = "\n".join(f"k{i}:v{i}" for i in range(RECORDS)).encode() + b"\n"
    subprocess.run(["kcat", "-b", bootstrap, "-P", "-t", "trace-kcat", "-K", ":", "-z", "snappy"], input=lines, env=env, check=True, timeout=60)
    out = subprocess.run(["kcat", "-b", bootstrap, "-G", "trace-kcat-group", "-X", "auto.offset.reset=earliest", "-e", "trace-kcat"],
                         env=env, check=True, capture_output=True, timeout=60).stdout
    assert len(out.splitlines()) == RECORDS


def main() -> None:
    import gc
    # Old-protocol traces (old-*) come from tests/record_old_traces.py: kept.
    for d in OUT.glob("*") if OUT.exists() else []:
        if d.is_dir() and not d.name.startswith("old-"):
            shutil.rmtree(d)
    logs = Path(tempfile.mkdtemp())
    tap_port = free_port()
    broker = Broker(free_port(), tap_port, logs)
    try:
        for name, run in (("kafka-python", kafka_python), ("confluent-kafka", confluent_kafka), ("kcat", kcat)):
            tap = KafkaTap(broker.port, record_dir=OUT / name, port=tap_port)
            run(f"127.0.0.1:{tap_port}")
            gc.collect()
            time.sleep(1.5)
            tap.stop()
            print(name, sorted(tap.snapshot()[0].items()))
    finally:
        broker.stop()
    total = sum(f.stat().st_size for f in OUT.rglob("*.trace"))
    print(f"traces in {OUT}: {len(list(OUT.rglob('*.trace')))} files, {total} bytes")


if __name__ == "__main__":
    main()
