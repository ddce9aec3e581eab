"""Per-topic, per-group and per-client metrics that need a live situation: induced errors, lag of
a consumer that is behind, rebalances of a group two consumers share, and the client software
announced in ApiVersions. Real confluent-kafka clients through Envoy + kafka-lens to tansu."""
from __future__ import annotations

import gc
import time

import pytest

from clients import wait_until


def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result(30)


def produce(bootstrap: str, topic: str, n: int, size: int = 100) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "client.id": "metrics-producer", "linger.ms": 5})
    for i in range(n):
        producer.produce(topic, value=bytes(size), key=str(i).encode(), partition=0)
        producer.poll(0)
    assert producer.flush(30) == 0


def test_induced_errors_are_counted_per_api_and_error(envoy):
    """Errors the broker answers in nested fields of decoded responses. (tansu answers a fetch
    past the end of a partition with an empty partition, not OFFSET_OUT_OF_RANGE, so Fetch errors
    are covered by the unit tests of the scan path, not here.)"""
    from confluent_kafka import Consumer, KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = f"127.0.0.1:{envoy.listener_port}"
    create_topic(bootstrap, "metrics-errors")
    produce(bootstrap, "metrics-errors", 10)

    # Creating it again: TOPIC_ALREADY_EXISTS in the CreateTopics response's per-topic field.
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "metrics-admin"})
    with pytest.raises(KafkaException) as raised:
        for f in admin.create_topics([NewTopic("metrics-errors", 1, 1)]).values():
            f.result(30)
    assert raised.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    del admin, raised
    gc.collect()  # destroy the client now: its connection must not outlive the test

    # Metadata for a topic that does not exist (tansu creates none): UNKNOWN_TOPIC_OR_PARTITION in
    # the Metadata response's per-topic error field.
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "metrics-errors", "client.id": "metrics-missing"})
    metadata = probe.list_topics("metrics-no-such-topic", timeout=10)
    probe.close()
    assert metadata.topics["metrics-no-such-topic"].error is not None

    m = envoy.settled_metrics()
    assert m.get("kafka_response_errors_total", api="CreateTopics", error="TOPIC_ALREADY_EXISTS", client_id="metrics-admin") == 1
    assert m.get("kafka_response_errors_total", api="Metadata", error="UNKNOWN_TOPIC_OR_PARTITION", client_id="metrics-missing") >= 1
    assert m.get("kafka_response_errors_total", api="Produce") == 0
    assert m.get("kafka_produced_records_total", topic="metrics-errors", client_id="metrics-producer") == 10


def test_fetch_lag_of_a_consumer_behind_then_caught_up(envoy):
    from confluent_kafka import Consumer, TopicPartition

    bootstrap = f"127.0.0.1:{envoy.listener_port}"
    n = 2000
    create_topic(bootstrap, "metrics-lag")
    produce(bootstrap, "metrics-lag", n, size=1000)

    # Small fetches and almost no prefetch: the consumer stays behind while it is not polled.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "metrics-lag", "client.id": "metrics-lagging",
                         "enable.auto.commit": False, "fetch.max.bytes": 20_000, "message.max.bytes": 20_000, "max.partition.fetch.bytes": 20_000,
                         "queued.min.messages": 1, "queued.max.messages.kbytes": 20})
    consumer.assign([TopicPartition("metrics-lag", 0, 0)])
    consumed = 0
    while consumed < 100:
        msg = consumer.poll(1.0)
        if msg is not None and not msg.error():
            consumed += 1
    lag = lambda: envoy.metrics().get("kafka_fetch_lag_records", topic="metrics-lag", client_id="metrics-lagging")  # noqa: E731
    # The only fetch so far asked from offset 0 (the consumer's queue is full, it fetches no more
    # until polled): lag = high watermark - fetch offset = n.
    wait_until(lambda: lag() == n, 10, what=f"the lag to be {n}")

    while consumed < n:
        msg = consumer.poll(1.0)
        if msg is not None and not msg.error():
            consumed += 1
    # Caught up: the next fetches ask from the end offset, which is the high watermark.
    wait_until(lambda: lag() == 0, 15, what="the lag to reach 0 once everything is consumed")
    assert envoy.metrics().get("kafka_fetched_records_total", topic="metrics-lag", client_id="metrics-lagging") == n
    consumer.close()
    assert envoy.settled_metrics().get("kafka_fetch_lag_records") == 0


def test_rebalances_and_client_software(envoy):
    from confluent_kafka import Consumer, libversion, version

    bootstrap = f"127.0.0.1:{envoy.listener_port}"
    create_topic(bootstrap, "metrics-group", partitions=2)

    def consumer(name: str) -> "Consumer":
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "metrics-group", "client.id": name,
                      "heartbeat.interval.ms": 300, "session.timeout.ms": 10_000})
        c.subscribe(["metrics-group"])
        return c

    def poll_until_assigned(*consumers, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for c in consumers:
                c.poll(0.2)
            if all(c.assignment() for c in consumers):
                return
        raise TimeoutError("consumers not assigned")

    first = consumer("metrics-member-1")
    poll_until_assigned(first)
    rebalances = lambda: envoy.metrics().get("kafka_group_rebalances_total", group="metrics-group")  # noqa: E731
    time.sleep(1.5)  # one flush
    before = rebalances()
    second = consumer("metrics-member-2")
    poll_until_assigned(first, second)
    # The second member joining makes the group rebalance into a new generation, counted once
    # although both members' JoinGroup responses carry it.
    wait_until(lambda: rebalances() > before, 10, what="the rebalance to be counted")
    time.sleep(1.5)
    assert rebalances() == before + 1
    assert envoy.metrics().get("kafka_group_requests_total", group="metrics-group", api="JoinGroup", client_id="metrics-member-2") >= 1

    # librdkafka announces itself in ApiVersions v3: an info gauge per open connection.
    m = envoy.metrics()
    software = [(labels, v) for name, labels, v in m.samples
                if name == "kafka_client_software_connections" and labels.get("client_id") == "metrics-member-1" and v > 0]
    assert software, "no client software for an open connection"
    labels = software[0][0]
    assert labels["client_software_name"] in ("confluent-kafka-python", "librdkafka"), labels
    print("client software:", labels)
    assert libversion()[0] in labels["client_software_version"] or version()[0] in labels["client_software_version"], labels
    second.close()
    first.close()
    assert envoy.settled_metrics().get("kafka_client_software_connections") == 0


@pytest.mark.filter_config({"per_partition_metrics": True})
def test_committed_offsets_per_partition_and_in_flight_peak(envoy):
    """With per-partition metrics on, the committed-offset gauge equals what the broker says the
    group committed, and the per-partition lag gauges add up to the per-topic one."""
    from confluent_kafka import Consumer, TopicPartition

    bootstrap = f"127.0.0.1:{envoy.listener_port}"
    create_topic(bootstrap, "metrics-commits", partitions=2)
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": "metrics-producer", "linger.ms": 5})
    for i in range(30):
        producer.produce("metrics-commits", value=b"x", partition=i % 2)
    assert producer.flush(30) == 0
    del producer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "metrics-commits", "client.id": "metrics-committer",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition("metrics-commits", 0, 0), TopicPartition("metrics-commits", 1, 0)])
    consumed = 0
    while consumed < 30:
        msg = consumer.poll(1.0)
        if msg is not None and not msg.error():
            consumed += 1
            if consumed in (10, 30):
                consumer.commit(asynchronous=False)
    committed = {tp.partition: tp.offset for tp in consumer.committed(
        [TopicPartition("metrics-commits", 0), TopicPartition("metrics-commits", 1)], timeout=10)}
    assert committed == {0: 15, 1: 15}, committed
    gauge = lambda p: envoy.metrics().get("kafka_group_committed_offset", group="metrics-commits", topic="metrics-commits", partition=str(p))  # noqa: E731
    wait_until(lambda: (gauge(0), gauge(1)) == (15, 15), 10, what="the committed-offset gauges to reach 15")
    m = envoy.metrics()
    per_partition = m.by_label("kafka_fetch_lag_partition_records", "partition")
    assert set(per_partition) == {"0", "1"}, per_partition
    assert sum(per_partition.values()) == m.get("kafka_fetch_lag_records", topic="metrics-commits", client_id="metrics-committer")
    consumer.close()
    del consumer
    gc.collect()

    m = envoy.settled_metrics(tick=True)
    # Every connection that spoke Kafka recorded its in-flight peak once, when it closed (each sent
    # at least one request that expects a response, so each peak is at least 1).
    peaks = m.get("kafka_connection_max_in_flight_requests_count")
    assert 0 < peaks <= m.get("kafka_connections_total")
    assert m.get("kafka_connection_max_in_flight_requests_sum") >= peaks


def test_idempotent_retries_are_counted_apart_from_attempts(envoy):
    """The same idempotent batch (producer id, epoch, base sequence) sent twice, as a producer
    retrying after a lost response does: the second counts as retried records, both as attempts."""
    import socket
    import struct

    from kafka.record.default_records import DefaultRecordBatchBuilder
    from raw_kafka import kafka_frame, recv_exact

    bootstrap = f"127.0.0.1:{envoy.listener_port}"
    create_topic(bootstrap, "metrics-retries")
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=4242,
                                        producer_epoch=0, base_sequence=0, batch_size=1 << 20)
    for i in range(5):
        builder.append(i, timestamp=None, key=None, value=f"retry-{i}".encode(), headers=[])
    batch = bytes(builder.build())
    topic = b"metrics-retries"
    body = (struct.pack(">hhi", -1, -1, 30_000) + struct.pack(">ih", 1, len(topic)) + topic
            + struct.pack(">iii", 1, 0, len(batch)) + batch)  # Produce v3: one topic, partition 0
    # One connection, as a producer retrying on the connection it kept: the table that recognises
    # retries is per Envoy worker, and another connection may land on the other worker.
    with socket.create_connection(("127.0.0.1", envoy.listener_port), timeout=10) as s:
        for correlation in (1, 2):
            s.sendall(kafka_frame(0, 3, correlation, b"retrying-producer", body))
            (size,) = struct.unpack(">i", recv_exact(s, 4))
            assert struct.unpack(">i", recv_exact(s, size)[:4])[0] == correlation

    m = envoy.settled_metrics()
    assert m.get("kafka_produce_request_records_total", topic="metrics-retries", client_id="retrying-producer") == 10
    assert m.get("kafka_produce_retried_records_total", topic="metrics-retries", client_id="retrying-producer") == 5
