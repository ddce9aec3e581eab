"""Topic renames and per-tenant prefixes end to end: real clients (confluent-kafka / librdkafka and
kafka-python) through Envoy + kafka-lens to tansu. Clients use their own names; the broker stores
the mapped ones; each tenant sees only its own topics and groups; records arrive byte for byte."""
from __future__ import annotations

import gc
import struct
import uuid

import pytest

from raw_kafka import exchange

RUN = uuid.uuid4().hex[:6]
ORDERS = f"orders-{RUN}"
RENAMED = f"{ORDERS}.v2"
PREFIX_A, PREFIX_B = f"team-a-{RUN}.", f"team-b-{RUN}."

RENAMES = {"topic_rewrite": {"renames": {ORDERS: RENAMED}}}
TENANTS = {"topic_rewrite": {"tenants": [
    {"name": "team-a", "prefix": PREFIX_A, "match": {"client_id": {"prefix": "team-a"}}},
    {"name": "team-b", "prefix": PREFIX_B, "match": {"client_id": {"prefix": "team-b"}}},
]}}


def broker_topics(port: int) -> set[str]:
    """Every topic the broker stores, asked directly (not through Envoy): Metadata v0, all topics."""
    body = struct.pack(">hhih", 3, 0, 77, -1) + struct.pack(">i", 0)
    resp = exchange(port, struct.pack(">i", len(body)) + body)
    at = 4  # correlation id

    def i32():
        nonlocal at
        at += 4
        return struct.unpack_from(">i", resp, at - 4)[0]

    def string():
        nonlocal at
        n = struct.unpack_from(">h", resp, at)[0]
        at += 2 + max(n, 0)
        return resp[at - max(n, 0):at].decode()

    for _ in range(i32()):  # brokers: node id, host, port
        i32(), string(), i32()
    names = set()
    for _ in range(i32()):
        at += 2  # error code
        names.add(string())
        for _ in range(i32()):  # partitions: error, id, leader, replicas, isr
            at += 2 + 4 + 4
            for _ in range(2):  # replicas, isr: an array of node ids each
                count = i32()
                at += 4 * count
    return names


def create(bootstrap: str, client_id: str, topic: str) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()


def python_consume(bootstrap: str, client_id: str, topic: str, n: int, group: str | None = None) -> list:
    from kafka import KafkaConsumer
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, client_id=client_id, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=15000)
    got = []
    for msg in consumer:
        got.append(msg)
        if len(got) == n:
            break
    if group:
        consumer.commit()
    consumer.close()
    return got


def confluent_consume(bootstrap: str, client_id: str, topic: str, n: int) -> list:
    from confluent_kafka import Consumer
    consumer = Consumer({"bootstrap.servers": bootstrap, "client.id": client_id, "group.id": f"{client_id}-{RUN}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got = []
    try:
        while len(got) < n:
            msg = consumer.poll(15)
            assert msg is not None, f"only {len(got)} of {n} records within 15 s"
            assert msg.error() is None, msg.error()
            got.append(msg)
    finally:
        consumer.close()
    return got


def padding_of(frame: bytes) -> bytes | None:
    """The padding tagged field (tag 19276) in a request header v2, or None if the header has no
    tagged field. `frame` is a request without its size prefix."""
    (client_id_len,) = struct.unpack_from(">h", frame, 8)
    at = 10 + max(client_id_len, 0)
    if frame[at] == 0:
        return None
    assert frame[at] == 1 and frame[at + 1:at + 4] == bytes([0xCC, 0x96, 0x01]), frame[:at + 8].hex()
    size = frame[at + 4]
    return frame[at + 5:at + 5 + size]


@pytest.mark.filter_config(RENAMES)
def test_a_renamed_topic_is_produced_and_consumed_under_its_old_name(envoy, broker, tap):
    from confluent_kafka import Producer
    bootstrap = f"127.0.0.1:{envoy.listener_port}"
    create(bootstrap, "rename-admin", ORDERS)
    stored = broker_topics(broker.port)
    assert RENAMED in stored and ORDERS not in stored
    tap.keep_frames = True

    values = [uuid.uuid4().bytes * (i + 1) for i in range(20)]
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": "rename-confluent", "linger.ms": 5})
    errors = []
    for v in values:
        producer.produce(ORDERS, value=v, on_delivery=lambda err, _m: errors.append(err))
    assert producer.flush(30) == 0 and errors == [None] * 20
    del producer
    gc.collect()
    # The broker got every Produce (librdkafka sends v9+) padded by `align_records`: the rename
    # adds 3 bytes, so each carries a tagged field (tag and size: 4 bytes, then zeros) making the
    # change a multiple of 64.
    with tap.lock:
        produced = [f for f in tap.request_frames if struct.unpack_from(">hh", f) >= (0, 9) and f[:2] == b"\0\0"]
        tap.keep_frames = False
    assert produced
    for frame in produced:
        padding = padding_of(frame)
        assert padding is not None and set(padding) <= {0} and (len(padding) + 4 + 3) % 64 == 0, padding

    py = python_consume(bootstrap, "rename-kafka-python", ORDERS, 20)
    assert [m.value for m in py] == values and {m.topic for m in py} == {ORDERS}
    rd = confluent_consume(bootstrap, "rename-librdkafka", ORDERS, 20)
    assert [m.value() for m in rd] == values and {m.topic() for m in rd} == {ORDERS}

    m = envoy.settled_metrics()
    # Metrics name the topic as the broker stores it.
    assert m.get("kafka_produced_records_total", topic=RENAMED, client_id="rename-confluent") == 20
    assert m.get("kafka_produced_records_total", topic=ORDERS, client_id="rename-confluent") == 0
    assert m.get("kafka_topic_rewrites_total", api="Produce", direction="request") > 0
    assert m.get("kafka_topic_rewrites_total", api="Metadata", direction="response") > 0
    assert m.value("kafka_topic_rewrite_failures_total") in (None, 0)


@pytest.mark.filter_config(TENANTS)
def test_two_tenants_share_one_cluster_without_seeing_each_other(envoy, broker):
    from confluent_kafka import TopicPartition as CTP
    from kafka import KafkaProducer, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    bootstrap = f"127.0.0.1:{envoy.listener_port}"
    for team in ("team-a", "team-b"):
        create(bootstrap, f"{team}-admin", "orders")
    stored = broker_topics(broker.port)
    assert {PREFIX_A + "orders", PREFIX_B + "orders"} <= stored

    sent = {}
    for team, n in (("team-a", 10), ("team-b", 5)):
        producer = KafkaProducer(bootstrap_servers=bootstrap, client_id=f"{team}-producer")
        sent[team] = [f"{team}-{i}-".encode() + uuid.uuid4().bytes for i in range(n)]
        for v in sent[team]:
            producer.send("orders", v)
        producer.flush(30)
        producer.close(5)

    for team, n in (("team-a", 10), ("team-b", 5)):
        got = python_consume(bootstrap, f"{team}-consumer", "orders", n, group="billing")
        assert [m.value for m in got] == sent[team] and {m.topic for m in got} == {"orders"}

    for team, other in (("team-a", PREFIX_B), ("team-b", PREFIX_A)):
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=f"{team}-admin")
        try:
            topics = set(admin.list_topics())
            assert topics == {"orders"}, topics
            groups = {g["group_id"] for g in admin.list_groups()}
            assert groups == {"billing"}, groups
            configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "orders")])
            assert "orders" in repr(configs) and other not in repr(configs) and "team-" not in repr(configs), configs
        finally:
            admin.close()

        # The group's offsets are found again after reconnecting.
        from kafka import KafkaConsumer
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id=f"{team}-consumer", group_id="billing",
                                 enable_auto_commit=False)
        assert consumer.committed(TopicPartition("orders", 0)) == (10 if team == "team-a" else 5)
        consumer.close()

    # A client of no tenant sees the broker's names, and team-a's records there byte for byte.
    stored_a = confluent_consume(bootstrap, "platform-admin", PREFIX_A + "orders", 10)
    assert [m.value() for m in stored_a] == sent["team-a"]
    assert all(isinstance(m.partition(), int) for m in stored_a) and CTP

    m = envoy.settled_metrics()
    assert m.get("kafka_topic_rewrite_hidden_total", api="Metadata", direction="response") > 0
    assert m.value("kafka_topic_rewrite_failures_total") in (None, 0)
    assert m.get("kafka_produced_records_total", topic=PREFIX_A + "orders") == 10
