"""Real clients through Envoy + kafka-lens + the real broker: every record arrives byte-identical,
in order per partition, exactly once, and the filter's per-API counters equal what an independent
tap on the wire counted."""
from __future__ import annotations

import time

import pytest

from clients import check_received, make_records, wait_until

N_RECORDS = 10_000
PARTITIONS = 3
GROUP_APIS = ["ApiVersions", "Metadata", "Produce", "Fetch", "FindCoordinator", "JoinGroup", "SyncGroup",
              "OffsetCommit", "OffsetFetch", "Heartbeat"]


def run_kafka_python(bootstrap: str, topic: str, group: str):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="e2e-kafka-python-admin")
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()

    sent = make_records(N_RECORDS, PARTITIONS, "kafka-python")
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="e2e-kafka-python-producer", acks="all", linger_ms=5)
    futures = [producer.send(topic, key=r.key, value=r.value, headers=list(r.headers), partition=r.partition) for r in sent]
    producer.flush()
    for f in futures:
        f.get(timeout=30)
    producer.close()

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, client_id="e2e-kafka-python-consumer",
        auto_offset_reset="earliest", enable_auto_commit=False,
        heartbeat_interval_ms=300, session_timeout_ms=10_000,
    )
    consumer.subscribe([topic])
    received = []
    deadline = time.monotonic() + 120
    while len(received) < N_RECORDS and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=1000).items():
            for r in records:
                received.append((tp.partition, r.offset, r.key, r.value, tuple((k, bytes(v)) for k, v in r.headers)))
    consumer.commit()
    time.sleep(1.5)  # let the group heartbeat through the proxy
    committed = {p: consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    consumer.close()
    return sent, received, committed


def run_confluent_kafka(bootstrap: str, topic: str, group: str):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "e2e-confluent-admin"})
    for f in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        f.result(30)

    sent = make_records(N_RECORDS, PARTITIONS, "confluent-kafka")
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": "e2e-confluent-producer", "acks": "all",
                         "linger.ms": 5, "enable.idempotence": False})
    for r in sent:
        while True:
            try:
                producer.produce(topic, value=r.value, key=r.key, partition=r.partition, headers=list(r.headers),
                                 on_delivery=lambda err, msg: errors.append(err) if err else None)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not errors, errors[:3]

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": "e2e-confluent-consumer",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "heartbeat.interval.ms": 300, "session.timeout.ms": 10_000})
    consumer.subscribe([topic])
    received = []
    deadline = time.monotonic() + 120
    while len(received) < N_RECORDS and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        received.append((msg.partition(), msg.offset(), msg.key(), msg.value(), tuple(msg.headers() or ())))
    consumer.commit(asynchronous=False)
    time.sleep(1.5)
    committed = {tp.partition: tp.offset for tp in consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], 30)}
    consumer.close()
    return sent, received, committed


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_produce_consume_group_through_filter(client, envoy, tap):
    bootstrap = f"127.0.0.1:{envoy.listener_port}"
    topic, group = f"e2e-{client}", f"group-{client}"
    run = run_kafka_python if client == "kafka-python" else run_confluent_kafka
    sent, received, committed = run(bootstrap, topic, group)

    check_received(sent, received)
    expected_end = {p: sum(1 for r in sent if r.partition == p) for p in range(PARTITIONS)}
    assert committed == expected_end, "committed offsets must be the end of each partition"

    # Settle: every client connection closed (a client may close with a long-poll Fetch still
    # unanswered), then the filter must have counted exactly what the tap saw on the wire.
    envoy.settled_metrics()
    tap_requests, tap_responses = tap.snapshot()

    def counters_match():
        m = envoy.metrics()
        return m.by_label("kafka_requests_total", "api") == tap_requests and \
            m.by_label("kafka_responses_total", "api") == tap_responses

    try:
        wait_until(counters_match, 10, what="filter counters to equal the tap's")
    finally:
        m = envoy.metrics()
        print("tap requests:", tap_requests)
        print("filter requests:", m.by_label("kafka_requests_total", "api"))
    for api in GROUP_APIS:
        assert tap_requests.get(api, 0) > 0, f"{client} sent no {api} request: the test lost its point"

    # The codec decoded every structural frame real clients and the broker exchanged.
    assert m.get("kafka_body_decode_errors_total") == 0
    assert m.get("kafka_undecodable_frames_total") == 0
    assert m.get("kafka_unmatched_responses_total") == 0
    assert m.get("kafka_bodies_decoded_total", direction="response", api="Metadata") == tap_responses["Metadata"]
    assert m.get("kafka_non_kafka_connections_total") == 0
    assert m.get("kafka_connections_closed_by_filter_total") == 0
    # Records counted from batch headers streamed through the VM (payloads never read): exactly
    # what was produced; fetches return whole batches, so at least what was consumed.
    assert m.get("kafka_scan_errors_total") == 0
    assert m.get("kafka_records_total", api="Produce", direction="request") == N_RECORDS
    assert m.get("kafka_records_total", api="Fetch", direction="response") >= N_RECORDS

    # Per client: every Produce request came from the producer's client id, every JoinGroup from
    # the consumer's; bytes are the tap's byte counts; one latency sample per paired response.
    producer_id = "e2e-kafka-python-producer" if client == "kafka-python" else "e2e-confluent-producer"
    consumer_id = "e2e-kafka-python-consumer" if client == "kafka-python" else "e2e-confluent-consumer"
    assert m.get("kafka_requests_total", api="Produce", client_id=producer_id) == tap_requests["Produce"]
    assert m.get("kafka_requests_total", api="JoinGroup", client_id=consumer_id) == tap_requests["JoinGroup"]
    assert m.get("kafka_request_bytes_total") == tap.request_bytes
    assert m.get("kafka_response_bytes_total") <= tap.response_bytes
    wait_until(lambda: envoy.metrics().get("kafka_request_latency_microseconds_count", api="Produce") == tap_responses["Produce"],
               10, what="one latency sample per Produce response")
    wait_until(lambda: envoy.metrics().get("kafka_request_latency_microseconds_count") == sum(tap_responses.values()),
               10, what="one latency sample per paired response (histograms publish at each 1 s flush)")

    # Per topic: produced = what the broker acknowledged (every send was confirmed above), once;
    # fetched = records at or after each fetch offset, i.e. exactly what the consumer read.
    assert m.get("kafka_produce_request_records_total", topic=topic, client_id=producer_id) == N_RECORDS
    assert m.get("kafka_produced_records_total", topic=topic, client_id=producer_id, acks="all") == N_RECORDS
    assert m.get("kafka_produced_records_total") == N_RECORDS
    assert m.get("kafka_produce_failed_records_total") == 0
    assert m.get("kafka_fetched_records_total", topic=topic, client_id=consumer_id) == N_RECORDS
    payload = sum(len(r.key) + len(r.value) for r in sent)
    assert payload < m.get("kafka_produced_bytes_total", topic=topic, client_id=producer_id) < tap.request_bytes
    assert payload < m.get("kafka_fetched_bytes_total", topic=topic, client_id=consumer_id) < tap.response_bytes
    assert m.get("kafka_produce_request_batches_total", topic=topic, compression="none", acks="all") == \
        m.get("kafka_produce_request_batches_total") > 0
    # Group requests carry the group; errors are only the rejoin the broker asks of new members.
    for api in ["JoinGroup", "SyncGroup", "OffsetCommit", "Heartbeat"]:
        assert m.get("kafka_group_requests_total", group=group, api=api, client_id=consumer_id) == tap_requests[api], api
    assert set(m.by_label("kafka_response_errors_total", "error")) <= {"MEMBER_ID_REQUIRED", "UNKNOWN_TOPIC_OR_PARTITION"}, \
        m.by_label("kafka_response_errors_total", "error")
    # Gauges of closed connections are released.
    assert m.get("kafka_fetch_lag_records") == 0
    assert m.get("kafka_client_software_connections") == 0

    # Nothing left in flight; what was never answered is counted as such.
    assert m.get("kafka_requests_in_flight") == 0
    unanswered = sum(tap_requests.values()) - sum(tap_responses.values())
    assert m.get("kafka_unanswered_requests_total") == unanswered
