"""Old protocol version translation end to end: clients pinned to old Kafka versions (librdkafka with
`api.version.request=false` and an old `broker.version.fallback`, kafka-python with an old
`api_version`) produce and consume through Envoy + kafka-lens, configured to treat tansu as a Kafka
4.0 broker (the versions KIP-896 removed). The tap between Envoy and the broker sees every request
that reaches it: none may be below Kafka 4.0's minimums, and every record must arrive intact."""
from __future__ import annotations

import gc
import struct
import time
import uuid

import pytest

from raw_kafka import exchange

RUN = uuid.uuid4().hex[:6]
TRANSLATE = {"version_translation": {"enabled": True, "broker_preset": "kafka-4.0"}}

# Kafka 4.0's lowest accepted request versions (KIP-896); every other API starts at 0.
KAFKA_4_MINIMUMS = {
    "Produce": 3, "Fetch": 4, "ListOffsets": 1, "OffsetCommit": 2, "OffsetFetch": 1, "OffsetForLeaderEpoch": 2,
    "CreateTopics": 2, "DeleteTopics": 1, "DescribeConfigs": 1, "DescribeAcls": 1, "CreateAcls": 1, "DeleteAcls": 1,
}


def below_minimums(tap) -> dict:
    """Requests that reached the broker below Kafka 4.0's minimums (must be none)."""
    with tap.lock:
        seen = dict(tap.request_versions)
    return {k: n for k, n in seen.items() if k[1] < KAFKA_4_MINIMUMS.get(k[0], 0)}


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "translation-admin"})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    del admin
    gc.collect()


def old_librdkafka(fallback: str) -> dict:
    return {"api.version.request": False, "broker.version.fallback": fallback}


def produce_librdkafka(bootstrap: str, topic: str, conf: dict, records: list[tuple[int, bytes | None, bytes, int]]) -> None:
    """Produces (partition, key, value, timestamp ms) records; every delivery must succeed."""
    from confluent_kafka import Producer
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "message.send.max.retries": 0, **conf})
    for partition, key, value, ts in records:
        producer.produce(topic, key=key, value=value, partition=partition, timestamp=ts,
                         on_delivery=lambda err, _m: errors.append(err))
    assert producer.flush(30) == 0
    del producer
    gc.collect()
    assert errors == [None] * len(records), [e for e in errors if e is not None][:3]


def consume_librdkafka(bootstrap: str, topic: str, conf: dict, expected: int, group: str) -> list:
    """Consumes `expected` records in a group from the earliest offset and commits; returns
    (partition, key, value, timestamp) tuples."""
    from confluent_kafka import Consumer
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, **conf})
    received = []
    try:
        consumer.subscribe([topic])
        deadline = time.time() + 60
        while len(received) < expected and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            received.append((msg.partition(), msg.key(), msg.value(), msg.timestamp()[1]))
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return received


def records_for(tag: str, n: int, partitions: int) -> list[tuple[int, bytes | None, bytes, int]]:
    base = int(time.time() * 1000) - 60_000
    out = []
    for i in range(n):
        key = None if i % 7 == 0 else f"{tag}-k{i}".encode()
        value = b"" if i % 11 == 0 else (f"{tag}-v{i}-".encode() + bytes(range(256)) * (1 + i % 3))
        out.append((i % partitions, key, value, base + i))
    return out


@pytest.mark.filter_config(TRANSLATE)
@pytest.mark.parametrize("fallback", ["0.9.0", "0.10.0"])
def test_librdkafka_with_an_old_protocol_produces_and_consumes_every_record_intact(envoy, broker, tap, proxy_port, fallback):
    """0.9.0: no ApiVersions, Produce v1 / Fetch v1 / ListOffsets v0 with message format v0, all
    translated. 0.10.0: librdkafka asks ApiVersions (any fallback >= 0.10 does) and is offered what
    the filter can serve; it picks current versions and nothing needs translating."""
    bootstrap = f"127.0.0.1:{proxy_port}"
    topic = f"old-{fallback.replace('.', '')}-{RUN}"
    create_topic(bootstrap, topic, 2)
    tap.reset()
    sent = []
    for codec in ["none", "gzip", "snappy", "lz4"]:
        records = records_for(f"{fallback}-{codec}", 40, 2)
        produce_librdkafka(bootstrap, topic, {**old_librdkafka(fallback), "compression.codec": codec,
                                              "client.id": f"old-producer-{codec}"}, records)
        sent += records
    received = consume_librdkafka(bootstrap, topic, {**old_librdkafka(fallback), "client.id": "old-consumer"},
                                  len(sent), f"old-group-{fallback}-{RUN}")
    key = lambda r: (r[0], r[1] or b"", r[2])  # noqa: E731
    assert sorted(map(key, received)) == sorted(map(key, sent))
    assert below_minimums(tap) == {}
    m = envoy.settled_metrics()
    translated = m.by_label("kafka_translated_requests_total", "api")
    if fallback == "0.9.0":
        assert translated.get("Produce", 0) >= 4, translated
        assert translated.get("Fetch", 0) >= 1, translated
        assert m.get("kafka_translated_responses_total", api="Fetch") >= 1
        assert m.get("kafka_translation_records_down_converted_total") >= len(sent)
    else:
        assert translated == {}
        with tap.lock:
            assert any(api == "ApiVersions" for api, _ in tap.request_versions), tap.request_versions
        # Current versions carry the producer's timestamps.
        assert sorted((r[1] or b"", r[3]) for r in received) == sorted((r[1] or b"", r[3]) for r in sent)
    assert m.get("kafka_connections_closed_by_filter_total", reason="translation_failed") == 0


@pytest.mark.filter_config(TRANSLATE)
def test_librdkafka_0_9_consumes_although_the_brokers_own_list_offsets_v0_is_broken(envoy, broker, tap, proxy_port):
    """tansu answers ListOffsets v0 in a layout librdkafka cannot read (it fails every consume
    with "Protocol read buffer underflow for ListOffsets v0" when connected directly); through
    the filter the request goes as v1 and the answer comes back as a correct v0."""
    bootstrap = f"127.0.0.1:{proxy_port}"
    topic = f"old-listoffsets-{RUN}"
    create_topic(bootstrap, topic, 1)
    records = records_for("lo", 25, 1)
    produce_librdkafka(bootstrap, topic, {**old_librdkafka("0.9.0"), "client.id": "lo-producer"}, records)
    tap.reset()
    # A new group without offsets: the consumer asks ListOffsets for the earliest offset.
    received = consume_librdkafka(bootstrap, topic, {**old_librdkafka("0.9.0"), "client.id": "lo-consumer"},
                                  len(records), f"lo-group-{RUN}")
    assert [(r[1], r[2]) for r in received] == [(r[1], r[2]) for r in records]
    with tap.lock:
        versions = dict(tap.request_versions)
    assert versions.get(("ListOffsets", 1), 0) >= 1, versions
    assert ("ListOffsets", 0) not in versions
    assert envoy.settled_metrics().get("kafka_translated_requests_total", api="ListOffsets", version="0") >= 1


@pytest.mark.filter_config(TRANSLATE)
@pytest.mark.parametrize("api_version,compression", [((0, 9), "gzip"), ((0, 10, 0), None), ((0, 10, 0), "gzip")])
def test_kafka_python_pinned_to_an_old_version_produces_and_consumes_through_translation(envoy, broker, tap, proxy_port,
                                                                                         api_version, compression):
    """kafka-python with `api_version` set never asks ApiVersions: (0, 9) speaks Produce v1 / Fetch v1
    with message format v0, (0, 10, 0) Produce v2 / Fetch v2 with format v1 (timestamps)."""
    from kafka import KafkaConsumer, KafkaProducer
    bootstrap = f"127.0.0.1:{proxy_port}"
    tag = "".join(map(str, api_version)) + (compression or "none")
    topic = f"old-kp-{tag}-{RUN}"
    create_topic(bootstrap, topic, 1)
    tap.reset()
    base = int(time.time() * 1000) - 30_000
    sent = [(f"k{i}".encode(), f"value-{i}-".encode() * (i % 5 + 1), base + i) for i in range(60)]
    producer = KafkaProducer(bootstrap_servers=bootstrap, api_version=api_version, client_id="kp-old-producer",
                             compression_type=compression, linger_ms=10)
    futures = [producer.send(topic, key=k, value=v, timestamp_ms=ts if api_version >= (0, 10) else None) for k, v, ts in sent]
    producer.flush(30)
    for f in futures:
        f.get(10)
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, api_version=api_version, client_id="kp-old-consumer",
                             group_id=f"kp-old-{tag}-{RUN}", auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=20000)
    received = []
    for msg in consumer:
        received.append((msg.key, msg.value, msg.timestamp))
        if len(received) == len(sent):
            break
    consumer.commit()
    consumer.close()
    assert [(k, v) for k, v, _ in received] == [(k, v) for k, v, _ in sent]
    if api_version >= (0, 10):
        assert [ts for _, _, ts in received] == [ts for _, _, ts in sent]
    assert below_minimums(tap) == {}
    translated = envoy.settled_metrics().by_label("kafka_translated_requests_total", "api")
    assert translated.get("Produce", 0) >= 1 and translated.get("Fetch", 0) >= 1, translated


@pytest.mark.filter_config(TRANSLATE)
def test_current_clients_in_the_same_run_are_untouched_byte_for_byte(envoy, broker, tap, proxy_port):
    """A current client's requests reach the broker exactly as sent, and the broker's answers
    reach it exactly as sent: a Produce frame recorded from confluent-kafka is replayed on a raw
    connection and compared on both sides of the filter."""
    from confluent_kafka import Producer
    bootstrap = f"127.0.0.1:{proxy_port}"
    topic = f"current-{RUN}"
    create_topic(bootstrap, topic, 1)
    tap.keep_frames = True
    tap.reset()
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": "current-producer", "linger.ms": 5})
    for i in range(20):
        producer.produce(topic, key=f"c{i}".encode(), value=f"current-{i}".encode())
    assert producer.flush(30) == 0
    del producer
    gc.collect()
    with tap.lock:
        produce_frames = [f for f in tap.request_frames if struct.unpack_from(">h", f, 0)[0] == 0]
        versions = dict(tap.request_versions)
    assert produce_frames
    assert all(v >= KAFKA_4_MINIMUMS.get(api, 0) for (api, v) in versions)
    frame = produce_frames[0]
    tap.reset()
    response = exchange(proxy_port, struct.pack(">i", len(frame)) + frame)
    with tap.lock:
        assert tap.request_frames == [frame]
        assert tap.response_frames == [response]
    m = envoy.settled_metrics()
    assert m.get("kafka_translated_requests_total") == 0


@pytest.mark.filter_config(TRANSLATE)
def test_kcat_with_fallback_0_9_produces_and_consumes_through_translation(envoy, broker, tap, proxy_port):
    from test_kcat import kcat
    bootstrap = f"127.0.0.1:{proxy_port}"
    topic = f"old-kcat-{RUN}"
    create_topic(bootstrap, topic, 1)
    tap.reset()
    old = ["-X", "api.version.request=false", "-X", "broker.version.fallback=0.9.0"]
    lines = [f"kcat-{i}:" + "x" * (i * 7 % 300) for i in range(50)]
    kcat("-P", "-b", bootstrap, "-t", topic, "-z", "snappy", *old, stdin="\n".join(lines).encode() + b"\n")
    out = kcat("-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-c", str(len(lines)), *old)
    assert out.decode().splitlines() == lines
    assert below_minimums(tap) == {}
    translated = envoy.settled_metrics().by_label("kafka_translated_requests_total", "api")
    assert translated.get("Produce", 0) >= 1 and translated.get("Fetch", 0) >= 1 and translated.get("ListOffsets", 0) >= 1


def produce_v0_body(topic: bytes, value: bytes) -> bytes:
    """Produce v0: acks 1, timeout, one topic, partition 0, a one-message set (magic 0)."""
    import zlib
    message = struct.pack(">bb", 0, 0) + struct.pack(">i", -1) + struct.pack(">i", len(value)) + value
    message = struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF) + message
    mset = struct.pack(">qi", 0, len(message)) + message
    return (struct.pack(">hi", 1, 5000) + struct.pack(">i", 1) + struct.pack(">h", len(topic)) + topic
            + struct.pack(">i", 1) + struct.pack(">ii", 0, len(mset)) + mset)


@pytest.mark.filter_config({"version_translation": {"enabled": True, "broker_preset": "kafka-4.0",
                                                    "broker_versions": {"Metadata": {"min": 4}, "Produce": {"max": 2}}}})
def test_versions_the_filter_cannot_translate_are_answered_unsupported_version_and_never_reach_the_broker(envoy, broker, tap, proxy_port):
    """A broker whose Produce stops at v2 cannot take a translation (the codec's lowest is v3), and a
    Metadata v1 is below the configured minimum v4 with no translation for it: both are answered
    UNSUPPORTED_VERSION (35) in the client's own version, and the broker sees neither."""
    from raw_kafka import kafka_frame
    tap.reset()
    # Metadata v1 answered: brokers (0), controller id, topics [error 35, "orders", internal, partitions []].
    response = exchange(proxy_port, kafka_frame(3, 1, 41, body=struct.pack(">i", 1) + struct.pack(">h", 6) + b"orders"))
    assert struct.unpack_from(">i", response, 0)[0] == 41
    assert struct.unpack_from(">i", response, 4)[0] == 0  # no brokers
    at = 4 + 4 + 4  # correlation id, brokers count, controller id
    assert struct.unpack_from(">i", response, at)[0] == 1
    assert struct.unpack_from(">h", response, at + 4)[0] == 35
    # Produce v0 answered in the v0 layout: [topic [partition, error 35, base offset]].
    response = exchange(proxy_port, kafka_frame(0, 0, 42, body=produce_v0_body(b"orders", b"v")))
    corr, topics, name_len = struct.unpack_from(">iih", response, 0)
    assert (corr, topics, response[10:10 + name_len]) == (42, 1, b"orders")
    partitions, partition, error = struct.unpack_from(">iih", response, 10 + name_len)
    assert (partitions, partition, error) == (1, 0, 35)
    assert len(response) == 10 + name_len + 4 + 4 + 2 + 8  # nothing after the v0 layout
    with tap.lock:
        versions = dict(tap.request_versions)
    assert ("Metadata", 1) not in versions and not any(api == "Produce" for api, _ in versions), versions
    m = envoy.settled_metrics()
    assert m.get("kafka_unsupported_version_answers_total", api="Metadata", version="1") == 1
    assert m.get("kafka_unsupported_version_answers_total", api="Produce", version="0") == 1


@pytest.mark.filter_config(TRANSLATE)
def test_a_malformed_old_request_closes_the_connection_and_is_counted(envoy, broker, tap, proxy_port):
    from raw_kafka import kafka_frame
    tap.reset()
    body = produce_v0_body(b"orders", b"v")[:-7]  # the message set cut short inside a whole frame
    with pytest.raises((ConnectionError, OSError)):
        exchange(proxy_port, kafka_frame(0, 0, 43, body=body))
    m = envoy.settled_metrics()
    assert m.get("kafka_translation_failures_total", api="Produce", reason="malformed") == 1
    assert m.get("kafka_connections_closed_by_filter_total", reason="translation_failed") == 1
    with tap.lock:
        assert not any(api == "Produce" for api, _ in tap.request_versions)
