"""kafka-lens metrics under Istio's stats configuration: Envoy runs with the stats settings Istio's
sidecar bootstrap generates (tools/packaging/common/envoy_bootstrap.json in istio/istio: no default
tags, one `(<tag>=\\.=(.*?);\\.;)` rule per `extraStatTags` entry, an inclusion list whose `wasm`
prefix keeps Wasm stats) from the `extraStatTags` shipped in istio/metrics/mesh-config.yaml, and
the filter writes Istio's tag form. The labels must come out as with the shipped Envoy config."""
from __future__ import annotations

import gc
from pathlib import Path

import yaml

from harness import ROOT, Envoy

MESH_CONFIG = ROOT / "istio" / "metrics" / "mesh-config.yaml"


def istio_stats_config(extra_stat_tags: list[str]) -> dict:
    return {
        "use_all_default_tags": False,
        "stats_tags": [{"regex": f"({tag}=\\.=(.*?);\\.;)", "tag_name": tag} for tag in extra_stat_tags],
        "stats_matcher": {"inclusion_list": {"patterns": [
            {"prefix": p} for p in ("reporter=", "cluster_manager", "listener_manager", "server", "cluster.xds-grpc",
                                    "wasm", "component", "istio")]}},
    }


def test_labels_under_istio_stats_config(workdir: Path, proxy_port: int, broker):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    tags = yaml.safe_load(MESH_CONFIG.read_text())["meshConfig"]["defaultConfig"]["extraStatTags"]
    shipped = [rule["tag_name"] for rule in yaml.safe_load((ROOT / "envoy-configs" / "local.yaml").read_text())["stats_config"]["stats_tags"]]
    assert sorted(tags) == sorted(shipped), "istio/metrics/mesh-config.yaml must list every tag the shipped config extracts"

    def transform(config: dict) -> dict:
        histograms = config["stats_config"].get("histogram_bucket_settings")
        config["stats_config"] = istio_stats_config(tags)
        if histograms:
            config["stats_config"]["histogram_bucket_settings"] = histograms
        return config

    envoy = Envoy(proxy_port, broker.port, workdir, filter_config={"tag_format": "istio"}, transform=transform)
    try:
        bootstrap = f"127.0.0.1:{proxy_port}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("istio-stats", 1, 1)])["istio-stats"].result(30)
        producer = Producer({"bootstrap.servers": bootstrap, "client.id": "istio-producer", "linger.ms": 5})
        for i in range(25):
            producer.produce("istio-stats", value=f"record-{i}".encode())
        assert producer.flush(30) == 0
        del producer, admin
        gc.collect()

        m = envoy.settled_metrics()
        assert m.get("kafka_produced_records_total", topic="istio-stats", client_id="istio-producer",
                     identity="client_id:istio-producer", acks="all") == 25
        assert m.get("kafka_requests_total", api="Produce", client_id="istio-producer") >= 1
        assert m.get("kafka_connections_total") >= 1
        # Every tag was extracted: no `tag=.=value;.;` residue left in a metric name (Prometheus
        # would show it as `tag___value___kafka_...`).
        names = {name for name, _, _ in m.samples}
        assert any(n.startswith("kafka_") for n in names)
        assert not [n for n in names if "___" in n or "=" in n], sorted(n for n in names if "___" in n)[:10]
    finally:
        envoy.stop()
