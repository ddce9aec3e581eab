"""Broker address rewriting end to end: tansu advertises its own address (as brokers do), clients
reach it only through Envoy, and kafka-lens rewrites every broker address in Metadata and
FindCoordinator responses to the Envoy listener configured for that broker. Envoy has two
listeners, as in envoy-configs/per-broker-listeners.yaml: clients bootstrap on the first, and the
rewrite sends them to the second, the listener of the (only) broker. Without the rewrite they would
bootstrap through Envoy and then connect to the broker directly. (KIP-951 NodeEndpoints, which a
single broker never sends, are covered natively in filter/tests/policy.rs with built responses.)"""
from __future__ import annotations

import copy
import gc
import uuid
from pathlib import Path

from clients import wait_until
from harness import Broker, Envoy, free_port


def second_listener(port: int):
    """Adds a listener on `port` identical to the first (same filter chain and cluster), with its
    own tcp_proxy stat prefix so each listener's connections are counted apart."""
    def transform(config: dict) -> dict:
        first = config["static_resources"]["listeners"][0]
        second = copy.deepcopy(first)
        second["name"] = "kafka-broker-listener"
        second["address"]["socket_address"]["port_value"] = port
        for f in second["filter_chains"][0]["filters"]:
            if f["name"] == "envoy.filters.network.tcp_proxy":
                f["typed_config"]["stat_prefix"] = "broker_listener"
        config["static_resources"]["listeners"].append(second)
        return config
    return transform


def test_clients_stay_on_the_proxy_when_broker_addresses_are_rewritten(workdir: Path):
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    broker_port, proxy_port, broker_listener = free_port(), free_port(), free_port()
    broker = Broker(broker_port, broker_port, workdir)  # advertises itself, not the proxy
    config = {"broker_addresses": {"rewrite": [{"broker": f"127.0.0.1:{broker_port}", "advertise": f"127.0.0.1:{broker_listener}"}]}}
    envoy = Envoy(proxy_port, broker_port, workdir, filter_config=config, transform=second_listener(broker_listener))
    try:
        bootstrap = f"127.0.0.1:{proxy_port}"
        admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "addresses-admin"})
        brokers = admin.list_topics(timeout=20).brokers
        assert {(b.host, b.port) for b in brokers.values()} == {("127.0.0.1", broker_listener)}, brokers
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
        # Each worker VM sends its counts at its connections' close and on its tick: wait for both.
        wait_until(lambda: sum(envoy.metrics().by_label("kafka_fetched_records_total", "topic").values()) >= 50, 10,
                   what="fetched records counted")
        m = envoy.metrics()
        # Every produced and fetched record crossed the filter: the clients never left the proxy.
        # (Summed over topic labels: a fetch by topic id is labelled by name once the id is learned
        # from a Metadata response, and `id-<hex>` before.)
        produced = m.by_label("kafka_produced_records_total", "topic")
        fetched = m.by_label("kafka_fetched_records_total", "topic")
        assert sum(produced.values()) == 50 and produced.get(topic) == 50, produced
        assert sum(fetched.values()) == 50, fetched
        assert m.get("kafka_broker_addresses_rewritten_total", api="Metadata") >= 1
        assert m.get("kafka_broker_addresses_rewritten_total", api="FindCoordinator") >= 1
        assert m.get("kafka_broker_address_rewrites_skipped_total") == 0
        # The clients moved to the broker's listener after bootstrapping on the first one.
        assert m.get("envoy_tcp_downstream_cx_total", envoy_tcp_prefix="broker_listener") >= 2
    finally:
        envoy.stop()
        broker.stop()
