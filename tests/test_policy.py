"""Request validation end to end: real clients through Envoy + kafka-lens to tansu, with policies
that refuse what they must. A refused request never reaches the broker (the tap between Envoy and
tansu sees only the ApiVersions placeholder in its place), the client reads the error the rule
names, audit mode forwards and counts, and a pipelined connection gets every response in order."""
from __future__ import annotations

import gc
import socket
import struct
import uuid

import pytest

from raw_kafka import exchange, kafka_frame, recv_exact

PAYMENTS_ACKS = {"policy": {"rules": [
    {"name": "payments-acks", "match": {"topics": [{"prefix": "payments."}]}, "produce": {"acks": [-1]}},
]}}

ADMIN_GUARD = {"policy": {"rules": [
    {"name": "no-deletes", "match": {"apis": ["DeleteTopics", "DeleteRecords", "AlterConfigs"],
                                     "except": {"client_id": {"exact": "platform-admin"}}}, "deny": True},
    {"name": "topic-naming", "create_topics": {"name_pattern": "[a-z]+\\.[a-z0-9-]+", "partitions": {"max": 12}}},
]}}

INVALID_REQUIRED_ACKS = 21
TOPIC_AUTHORIZATION_FAILED = 29
INVALID_TOPIC_EXCEPTION = 17


def create_topic(bootstrap: str, topic: str, client_id: str = "policy-admin") -> None:
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": client_id})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    del admin
    gc.collect()


def string(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def records_in(port: int, topic: str) -> list[bytes]:
    """Every record value of partition 0, consumed from the broker (bootstrapped on the broker's own
    port; its advertised address is the proxy's, so fetches cross Envoy, which only observes them)."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "group.id": f"check-{uuid.uuid4().hex[:6]}",
                         "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = []
    try:
        while True:
            msg = consumer.poll(10)
            assert msg is not None, "no end of partition within 10 s"
            if msg.error():
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                return values
            values.append(msg.value())
    finally:
        consumer.close()


def produce_requests_reaching_broker(tap) -> int:
    requests, _ = tap.snapshot()
    return requests.get("Produce", 0)


def confluent_produce(bootstrap: str, topic: str, acks: str, n: int, client_id: str) -> list:
    """Produces `n` records; returns the delivery errors."""
    from confluent_kafka import Producer
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "acks": acks, "linger.ms": 5,
                         "message.send.max.retries": 0})
    for i in range(n):
        producer.produce(topic, value=f"r{i}".encode(), on_delivery=lambda err, _m: errors.append(err))
    assert producer.flush(30) == 0
    del producer
    gc.collect()
    return errors


@pytest.fixture
def payments_topic(envoy, tap) -> tuple[str, str]:
    """A new `payments.*` topic made through the proxy; the tap counts from here on."""
    bootstrap = f"127.0.0.1:{envoy.listener_port}"
    topic = f"payments.{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic)
    tap.reset()
    return bootstrap, topic


@pytest.mark.filter_config(PAYMENTS_ACKS)
def test_acks_violations_fail_in_the_delivery_callback_and_never_reach_the_broker(envoy, broker, tap, payments_topic):
    from confluent_kafka import KafkaError
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as PyKafkaError

    bootstrap, topic = payments_topic

    # confluent-kafka (librdkafka), acks=1: every record fails with the policy's error.
    errors = confluent_produce(bootstrap, topic, "1", 20, "policy-confluent")
    assert len(errors) == 20 and all(e is not None and e.code() == KafkaError.INVALID_REQUIRED_ACKS for e in errors), errors

    # kafka-python, acks=1: the future fails with error 21.
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="policy-kafka-python", acks=1, retries=0)
    with pytest.raises(PyKafkaError) as failure:
        producer.send(topic, b"refused").get(timeout=30)
    assert getattr(failure.value, "errno", None) == INVALID_REQUIRED_ACKS, repr(failure.value)
    producer.close(5)

    # Nothing reached the broker: no Produce crossed the tap, the partition is empty.
    assert produce_requests_reaching_broker(tap) == 0
    assert records_in(broker.port, topic) == []

    # The same clients with acks=all pass, and only their records are there.
    assert confluent_produce(bootstrap, topic, "all", 7, "policy-confluent") == [None] * 7
    assert records_in(broker.port, topic) == [f"r{i}".encode() for i in range(7)]

    m = envoy.settled_metrics()
    refused = m.get("kafka_policy_decisions_total", rule="payments-acks", action="refused", api="Produce", topic=topic)
    refused_requests = m.get("kafka_responses_total", api="Produce", client_id="policy-confluent") \
        + m.get("kafka_responses_total", api="Produce", client_id="policy-kafka-python") - 1  # the acks=all one
    assert refused == refused_requests and refused >= 2, (refused, refused_requests)
    # One error field per refused request (one partition each), counted like a broker's errors.
    assert m.get("kafka_response_errors_total", api="Produce", error="INVALID_REQUIRED_ACKS") == refused
    assert "kafka-lens policy rule 'payments-acks' (acks)" in envoy.log_text()


@pytest.mark.filter_config(ADMIN_GUARD)
def test_denied_delete_topics_fails_with_an_authorization_error_and_the_topic_stays(envoy, broker):
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    bootstrap = f"127.0.0.1:{envoy.listener_port}"
    topic = f"keep.{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic)
    ops = AdminClient({"bootstrap.servers": bootstrap, "client.id": "ops-tool"})
    with pytest.raises(KafkaException) as failure:
        ops.delete_topics([topic])[topic].result(30)
    assert failure.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, failure.value
    assert records_in(broker.port, topic) == []  # the topic is still there

    # The named admin client is spared.
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "platform-admin"})
    admin.delete_topics([topic])[topic].result(30)
    del ops, admin
    gc.collect()
    m = envoy.settled_metrics()
    assert m.get("kafka_policy_decisions_total", rule="no-deletes", action="refused", api="DeleteTopics", client_id="ops-tool") == 1
    assert m.get("kafka_policy_decisions_total", client_id="platform-admin") == 0


@pytest.mark.filter_config(ADMIN_GUARD)
def test_create_topics_with_a_bad_name_fails_and_a_good_one_is_created(envoy, broker):
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = f"127.0.0.1:{envoy.listener_port}"
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "policy-creator"})
    bad, good = "Bad_Topic_Name", f"orders.{uuid.uuid4().hex[:8]}"
    futures = admin.create_topics([NewTopic(bad, 1, 1), NewTopic(good, 1, 1)])
    with pytest.raises(KafkaException) as failure:
        futures[bad].result(30)
    assert failure.value.args[0].code() == KafkaError.TOPIC_EXCEPTION, failure.value
    assert "topic-naming" in failure.value.args[0].str()
    futures[good].result(30)  # the other topic of the same request was created
    too_many = f"orders.{uuid.uuid4().hex[:8]}"
    with pytest.raises(KafkaException) as failure:
        admin.create_topics([NewTopic(too_many, 50, 1)])[too_many].result(30)
    assert failure.value.args[0].code() == KafkaError.INVALID_PARTITIONS, failure.value
    del admin
    gc.collect()
    assert records_in(broker.port, good) == []
    m = envoy.settled_metrics()
    assert m.get("kafka_policy_decisions_total", rule="topic-naming", action="refused", topic=bad) == 1
    assert m.get("kafka_policy_split_requests_total", api="CreateTopics") == 1


@pytest.mark.filter_config({"policy": {"rules": [
    {"name": "acks-audit", "mode": "audit", "match": {"topics": [{"prefix": "payments."}]}, "produce": {"acks": [-1]}}]}})
def test_audit_mode_forwards_and_counts(envoy, broker, payments_topic):
    bootstrap, topic = payments_topic
    assert confluent_produce(bootstrap, topic, "1", 15, "policy-audited") == [None] * 15
    assert records_in(broker.port, topic) == [f"r{i}".encode() for i in range(15)]
    m = envoy.settled_metrics()
    produce_requests = m.get("kafka_requests_total", api="Produce", client_id="policy-audited")
    assert m.get("kafka_policy_decisions_total", rule="acks-audit", action="audited", topic=topic) == produce_requests > 0
    assert m.get("kafka_policy_decisions_total", action="refused") == 0


def produce_v3(correlation_id: int, topic: str, acks: int) -> bytes:
    """A Produce v3 request for partition 0 with one record batch of one record."""
    from kafka.record.default_records import DefaultRecordBatchBuilder
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    builder.append(0, timestamp=None, key=None, value=f"raw-{correlation_id}".encode(), headers=[])
    batch = bytes(builder.build())
    body = (struct.pack(">hhi", -1, acks, 30_000) + struct.pack(">i", 1) + string(topic)
            + struct.pack(">iii", 1, 0, len(batch)) + batch)
    return kafka_frame(0, 3, correlation_id, b"policy-raw", body)


@pytest.mark.filter_config(PAYMENTS_ACKS)
def test_pipelined_connection_with_a_violation_in_the_middle_gets_every_response_in_order(envoy, broker, tap, payments_topic):
    _, topic = payments_topic
    metadata = lambda cid: kafka_frame(3, 1, cid, b"policy-raw", struct.pack(">i", 1) + string(topic))
    with socket.create_connection(("127.0.0.1", envoy.listener_port), timeout=10) as s:
        # One write: Metadata, a Produce with acks=1 (refused), a Produce with acks=-1, Metadata.
        s.sendall(metadata(1) + produce_v3(2, topic, 1) + produce_v3(3, topic, -1) + metadata(4))
        replies = []
        for _ in range(4):
            size = struct.unpack(">i", recv_exact(s, 4))[0]
            replies.append(recv_exact(s, size))
        # Alone on the connection, nothing else in flight: the refusal still comes back.
        s.sendall(produce_v3(5, topic, 1))
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        alone = recv_exact(s, size)
    assert [struct.unpack(">i", r[:4])[0] for r in replies] == [1, 2, 3, 4]

    def produce_error(reply: bytes) -> int:
        # Produce v3 response: correlation id, [topic, [partition, error, base offset, log append time]], throttle
        name_len = struct.unpack(">h", reply[8:10])[0]
        at = 10 + name_len + 4 + 4
        return struct.unpack(">h", reply[at:at + 2])[0]

    assert produce_error(replies[1]) == INVALID_REQUIRED_ACKS
    assert produce_error(replies[2]) == 0
    assert struct.unpack(">i", alone[:4])[0] == 5 and produce_error(alone) == INVALID_REQUIRED_ACKS
    assert records_in(broker.port, topic) == [b"raw-3"]  # only the acks=-1 record
    requests, _ = tap.snapshot()
    assert requests.get("Produce", 0) == 1 and requests.get("ApiVersions", 0) >= 2, requests


@pytest.mark.filter_config(PAYMENTS_ACKS)
def test_requests_larger_than_the_hold_budget_are_inspected_and_pass_whole(envoy, broker, tap, payments_topic):
    """librdkafka's Produce requests reach ~1 MB (message.max.bytes), above the 512 KiB the filter
    may keep in Envoy's buffer: such a request is held in the VM until whole, checked, and
    forwarded byte for byte (the benchmark found them refused before this path existed)."""
    from confluent_kafka import Producer
    bootstrap, topic = payments_topic
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": "policy-bulk", "acks": "all",
                         "linger.ms": 200, "batch.size": 1_000_000, "message.send.max.retries": 0})
    errors = []
    values = [(b"%06d" % i) * 170 for i in range(6000)]  # ~1 KiB each, ~6 MB in all
    for v in values:
        producer.produce(topic, value=v, on_delivery=lambda err, _m: errors.append(err))
        producer.poll(0)
    assert producer.flush(60) == 0
    del producer
    gc.collect()
    assert errors == [None] * len(values)
    assert records_in(broker.port, topic) == values
    assert tap.largest_request > 512 * 1024, tap.largest_request  # the case this test is about
    # Whether such a request arrived in one read or was held (in the VM) depends on Envoy's reads;
    # filter/tests/policy.rs drives both paths deterministically.
    assert envoy.settled_metrics().get("kafka_policy_decisions_total") == 0
