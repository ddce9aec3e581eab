"""OpenTelemetry spans end to end: kafka-lens in Envoy exports one span per sampled Kafka request
over OTLP/gRPC (through an Envoy cluster) to a receiver in the test; with the receiver gone, Kafka
traffic is unaffected and the lost spans are counted."""
from __future__ import annotations

import gc
import uuid

from clients import create_topic_and_produce, wait_until
from otlp_receiver import OtlpReceiver

OPERATION_API = {"send": "Produce", "poll": "Fetch", "commit": "OffsetCommit"}


def with_collector(port: int):
    def transform(config: dict) -> dict:
        config["static_resources"]["clusters"].append({
            "name": "otel-collector", "connect_timeout": "1s", "type": "STATIC",
            "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}}},
            "load_assignment": {"cluster_name": "otel-collector", "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
        })
        return config
    return transform


def api_of(span: dict) -> str:
    op = span["attributes"]["messaging.operation.name"]
    return OPERATION_API.get(op, op)


def test_every_request_becomes_a_span_with_messaging_attributes(broker, tap, workdir, proxy_port):
    from confluent_kafka import Producer
    from kafka import KafkaConsumer

    from conftest import assert_vm_healthy
    from harness import Envoy

    receiver = OtlpReceiver()
    config = {"tracing": {"collector_cluster": "otel-collector", "sample_per_million": 1_000_000, "service_name": "kafka-lens-e2e"}}
    envoy = Envoy(proxy_port, tap.port, workdir, filter_config=config, transform=with_collector(receiver.port))
    try:
        bootstrap = f"127.0.0.1:{proxy_port}"
        topic = f"traced-{uuid.uuid4().hex[:8]}"
        values = [f"v{i}".encode() for i in range(10)]
        assert create_topic_and_produce(bootstrap, topic, "trace-producer", values, admin_id="trace-admin") == [None] * 10
        consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, client_id="trace-consumer", group_id=f"g-{topic}",
                                 auto_offset_reset="earliest", consumer_timeout_ms=10000)
        got = [m for _, m in zip(range(10), consumer)]
        consumer.close()
        assert len(got) == 10
        gc.collect()

        m = envoy.settled_metrics()
        responses = m.by_label("kafka_responses_total", "api")
        # One span per answered request, exported within a few ticks.
        spans = receiver.wait_for(lambda s: s if len(s) >= sum(responses.values()) else None, timeout=20)
        by_api: dict[str, int] = {}
        for s in spans:
            by_api[api_of(s)] = by_api.get(api_of(s), 0) + 1
        assert by_api == responses, (by_api, responses)

        produce = [s for s in spans if api_of(s) == "Produce"]
        assert produce and all(s["kind"] == "SPAN_KIND_PRODUCER" for s in produce)
        for s in produce:
            a = s["attributes"]
            assert a["messaging.system"] == "kafka" and a["messaging.destination.name"] == topic, a
            assert a["messaging.client.id"] == "trace-producer" and a["network.peer.address"] == "127.0.0.1", a
            assert s["name"] == f"send {topic}" and s["resource"]["service.name"] == "kafka-lens-e2e"
        assert sum(s["attributes"]["messaging.batch.message_count"] for s in produce) == 10
        fetched = [s for s in spans if api_of(s) == "Fetch" and s["attributes"].get("messaging.client.id") == "trace-consumer"]
        assert sum(s["attributes"].get("messaging.batch.message_count", 0) for s in fetched) >= 10
        commits = [s for s in spans if s["attributes"].get("messaging.consumer.group.name") == f"g-{topic}"]
        assert commits, "no span names the consumer group"
        # Durations: the same clock readings as the latency histogram.
        assert all(s["end_ns"] >= s["start_ns"] > 0 for s in spans)
        # (Histograms reach /stats/prometheus at Envoy's stats flush.)
        wait_until(lambda: envoy.metrics().by_label("kafka_request_latency_microseconds_count", "api") == by_api, 20,
                   what="latency histogram counts equal to the spans per API")
        # Span durations are the histogram's samples: their sum matches its sum (Envoy's histogram
        # sum is approximate: within 10 %, and a microsecond per sample of rounding).
        span_us = sum((s["end_ns"] - s["start_ns"]) / 1000 for s in spans)
        histogram_us = envoy.metrics().get("kafka_request_latency_microseconds_sum")
        assert abs(span_us - histogram_us) <= 0.1 * histogram_us + len(spans), (span_us, histogram_us)
        assert all(s["attributes"]["messaging.destination.partition.id"] == "0" for s in produce)
        # The collector's answers are counted (the VM's counts reach Envoy on its next tick).
        wait_until(lambda: envoy.metrics().get("kafka_lens_spans_exported_total") == len(spans), 20, what="spans counted as exported")

        # The collector goes away: Kafka traffic carries on, the spans are counted as dropped.
        receiver.stop()
        producer = Producer({"bootstrap.servers": bootstrap, "client.id": "trace-producer-2", "linger.ms": 5})
        errors = []
        for i in range(5):
            producer.produce(topic, value=f"late{i}".encode(), on_delivery=lambda err, _m: errors.append(err))
        assert producer.flush(30) == 0 and errors == [None] * 5
        del producer
        gc.collect()
        wait_until(lambda: (envoy.metrics().value("kafka_lens_spans_dropped_total", reason="export_failed") or 0) > 0,
                   30, what="spans counted as dropped")
        assert len(receiver.spans()) == len(spans)
    finally:
        receiver.stop()
        panics = envoy.metrics().value("kafka_lens_panics_total")
        envoy.stop()
        assert_vm_healthy(envoy)
        assert panics == 0


def test_an_unknown_collector_cluster_drops_spans_and_never_traps_the_vm(broker, tap, workdir, proxy_port):
    """Envoy refuses a gRPC call to a cluster it does not have; the SDK's wrapper panicked on that
    (the vendored proxy-wasm returns the status): spans are counted as dropped, Kafka works."""
    from conftest import assert_vm_healthy
    from harness import Envoy

    config = {"tracing": {"collector_cluster": "no-such-cluster", "sample_per_million": 1_000_000}}
    envoy = Envoy(proxy_port, tap.port, workdir, filter_config=config)
    try:
        bootstrap = f"127.0.0.1:{proxy_port}"
        topic = f"untraced-{uuid.uuid4().hex[:8]}"
        values = [f"v{i}".encode() for i in range(3)]
        assert create_topic_and_produce(bootstrap, topic, "trace-lost", values, admin_id="trace-lost-admin") == [None] * 3
        wait_until(lambda: (envoy.metrics().value("kafka_lens_spans_dropped_total", reason="export_failed") or 0) > 0,
                   20, what="spans counted as dropped")
        assert envoy.metrics().get("kafka_lens_hostcall_failures_total", call="dispatch_grpc_call") > 0
    finally:
        panics = envoy.metrics().value("kafka_lens_panics_total")
        envoy.stop()
        assert_vm_healthy(envoy)
        assert panics == 0
