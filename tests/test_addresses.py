"""Broker address rewriting end to end: tansu advertises its own address (as brokers do), clients
reach it only through Envoy, and kafka-lens rewrites every broker address in Metadata and
FindCoordinator responses to Envoy's listener. Without the rewrite, clients would bootstrap through
Envoy and then connect to the broker directly; with it, all their traffic crosses the filter.
(KIP-951 NodeEndpoints, which a single broker never sends, are covered natively in
filter/tests/policy.rs with built responses.)"""
from __future__ import annotations

import gc
import uuid
from pathlib import Path

from harness import Broker, Envoy, free_port


def test_clients_stay_on_the_proxy_when_broker_addresses_are_rewritten(workdir: Path):
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    broker_port, proxy_port = free_port(), free_port()
    broker = Broker(broker_port, broker_port, workdir)  # advertises itself, not the proxy
    config = {"broker_addresses": {"rewrite": [{"broker": f"127.0.0.1:{broker_port}", "advertise": f"127.0.0.1:{proxy_port}"}]}}
    envoy = Envoy(proxy_port, broker_port, workdir, filter_config=config)
    try:
        bootstrap = f"127.0.0.1:{proxy_port}"
        admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "addresses-admin"})
        brokers = admin.list_topics(timeout=20).brokers
        assert {(b.host, b.port) for b in brokers.values()} == {("127.0.0.1", proxy_port)}, brokers
        topic = f"addresses-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)

        producer = Producer({"bootstrap.servers": bootstrap, "client.id": "addresses-producer", "linger.ms": 5})
        for i in range(50):
            producer.produce(topic, value=f"v{i}".encode())
        assert producer.flush(30) == 0
        consumer = Consumer({"bootstrap.servers": bootstrap, "client.id": "addresses-consumer", "group.id": "addresses-group",
                             "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        got = []
        for _ in range(200):
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.append(msg.value())
            if len(got) == 50:
                break
        consumer.close()
        del admin, producer, consumer
        gc.collect()
        assert got == [f"v{i}".encode() for i in range(50)]

        m = envoy.settled_metrics()
        # Every produced and fetched record crossed the filter: the clients never left the proxy.
        assert m.get("kafka_produced_records_total", topic=topic) == 50
        assert m.get("kafka_fetched_records_total", topic=topic) == 50
        assert m.get("kafka_broker_addresses_rewritten_total", api="Metadata") >= 1
        assert m.get("kafka_broker_addresses_rewritten_total", api="FindCoordinator") >= 1
        assert m.get("kafka_broker_address_rewrites_skipped_total") == 0
    finally:
        envoy.stop()
        broker.stop()
