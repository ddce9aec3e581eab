"""The Grafana dashboard and the alert rules in istio/, proven against a real Prometheus (Debian's
`prometheus` package) scraping a real Envoy with kafka-lens in front of the real broker.

The test makes real clients produce, consume, rebalance and fall behind, induces each alert's
condition (errors, a slow broker, growing lag, undecodable frames, a client-id flood), then:
every alert rule must fire (`/api/v1/alerts`), and every PromQL expression of the dashboard, with
its template variables filled in, must be valid and return data. The rule file is loaded with
`for` set to 0s and its range windows cut to 2m, so the conditions fire in seconds; the
expressions are otherwise the shipped ones.
"""
from __future__ import annotations

import gc
import json
import re
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from clients import wait_until
from harness import ROOT, Proc, free_port, wait_port
from raw_kafka import exchange, kafka_frame, recv_exact

ALERTS = ROOT / "istio" / "prometheus" / "kafka-lens-alerts.yaml"
DASHBOARD = ROOT / "istio" / "grafana" / "kafka-lens-dashboard.json"
SCHEMAS = ROOT.parent / "shared" / "schemas"
# tansu acknowledges every Produce, even to partitions and topics that do not exist, so a failed
# produce cannot be induced against it: this series stays empty in the test (unit tests cover it).
NO_DATA_WITH_TANSU = {"kafka_produce_failed_records_total"}


def test_alert_rules_pass_promtool():
    p = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    rules = sum(len(g["rules"]) for g in yaml.safe_load(ALERTS.read_text())["groups"])
    assert f"SUCCESS: {rules} rules found" in p.stdout and rules == 6, p.stdout


def test_dashboard_matches_the_grafana_schema():
    import jsonschema

    schema_path = SCHEMAS / "grafana" / "dashboard.jsonschema.json"
    if not schema_path.exists():
        pytest.skip(f"{schema_path} not present")
    schema = json.loads(schema_path.read_text())
    dashboard = json.loads(DASHBOARD.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(dashboard), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


class Prometheus:
    def __init__(self, workdir: Path, scrape_port: int, rules: Path):
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": "envoy", "metrics_path": "/stats/prometheus",
                                "static_configs": [{"targets": [f"127.0.0.1:{scrape_port}"]}]}],
        }))
        self.proc = Proc("prometheus", ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                         workdir / "prometheus.log")
        wait_port(self.port, 30, self.proc)
        wait_until(lambda: self._get("/-/ready", raw=True) is not None, 30, what="Prometheus ready")

    def _get(self, path: str, raw: bool = False):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                body = r.read().decode()
        except OSError:
            return None
        return body if raw else json.loads(body)

    def query(self, expr: str) -> dict:
        return self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr})) or {"status": "unreachable"}

    def label_values(self, label: str, metric: str) -> list[str]:
        answer = self._get(f"/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": metric})) or {}
        return answer.get("data", [])

    def firing(self) -> set[str]:
        alerts = (self._get("/api/v1/alerts") or {}).get("data", {}).get("alerts", [])
        return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}

    def stop(self) -> None:
        self.proc.stop()


def shortened_rules(path: Path) -> Path:
    """The shipped rules with `for: 0s` and range windows of 2m, so they fire within seconds."""
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["expr"] = re.sub(r"\[(5m|10m|15m)\]", "[2m]", rule["expr"])
            rule["for"] = "0s"
    path.write_text(yaml.safe_dump(rules))
    return path


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    fill = {"$client_id": ".*", "$identity": ".*", "$topic": ".*", "$group": ".*", "$__rate_interval": "1m"}
    out = []
    for e in exprs:
        for k, v in fill.items():
            e = e.replace(k, v)
        assert "$" not in e, f"unfilled variable in {e}"
        out.append(e)
    return out


def induce_errors_and_bad_frames(port: int, admin) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    # TOPIC_ALREADY_EXISTS in every CreateTopics answer: an error ratio of 1 for that API.
    for _ in range(5):
        for f in admin.create_topics([NewTopic("prom-traffic", 2, 1)]).values():
            with pytest.raises(KafkaException):
                f.result(30)
    # An old client's Produce v0, translated for the broker (the translation panel).
    from test_translation import produce_v0_body
    answer = exchange(port, kafka_frame(0, 0, 9, b"prom-old", produce_v0_body(b"prom-traffic", b"old")))
    assert struct.unpack_from(">h", answer, len(answer) - 10)[0] == 0  # v0: ... error code, base offset
    # Requests a policy rule refuses: Metadata from a client the rule denies everything.
    for i in range(3):
        exchange(port, kafka_frame(3, 1, i, b"prom-violator", struct.pack(">i", -1)))
    # Frames the filter cannot decode, each after a good ApiVersions on its own connection (the
    # broker may close it).
    bad = [
        kafka_frame(3, 1, 1, b"prom-bad", b"\x00\x00\x00\x05"),  # Metadata v1 body cut short: body decode error
        kafka_frame(0, 3, 2, b"prom-bad", struct.pack(">hhii", -1, -1, 5000, -5)),  # Produce, negative topic count: scan error
        struct_frame(struct.pack(">hhih", 3, 12, 3, 0x7fff)),  # header v2, client id past the frame end: header error
        struct.pack(">i", 200 << 20) + b"\x00" * 8,  # a 200 MiB request: the filter closes the connection
    ]
    for frame in bad:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(kafka_frame(18, 0, 0, b"prom-bad"))
            head = recv_exact(s, 4)
            recv_exact(s, struct.unpack(">i", head)[0])
            s.sendall(frame)
            s.settimeout(1)
            try:
                s.recv(65536)
            except OSError:
                pass


def struct_frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


@pytest.mark.filter_config({"labels": {"max_client_ids": 30}, "version_translation": {"enabled": True, "broker_preset": "kafka-4.0"},
                            "policy": {"rules": [
    {"name": "prom-violator-denied", "match": {"client_id": {"exact": "prom-violator"}}, "deny": True}]}})
def test_dashboard_queries_return_data_and_every_alert_fires(envoy, tap, workdir, tmp_path):
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    prometheus = Prometheus(tmp_path, envoy.admin_port, shortened_rules(tmp_path / "rules.yaml"))
    bootstrap = f"127.0.0.1:{envoy.listener_port}"
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "prom-admin"})
    for f in admin.create_topics([NewTopic("prom-traffic", 2, 1), NewTopic("prom-lag", 1, 1)]).values():
        f.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": "prom-producer", "linger.ms": 5, "compression.type": "lz4"})
    consumers = []
    try:
        for i in range(2000):
            producer.produce("prom-traffic", value=b"v" * 200, key=str(i).encode())
            producer.poll(0)
        assert producer.flush(30) == 0

        # One member, then a second: the group rebalances into a new generation.
        for name in ("prom-member-1", "prom-member-2"):
            c = Consumer({"bootstrap.servers": bootstrap, "group.id": "prom-group", "client.id": name,
                          "auto.offset.reset": "earliest", "heartbeat.interval.ms": 300, "session.timeout.ms": 10_000})
            c.subscribe(["prom-traffic"])
            consumers.append(c)
            deadline = time.monotonic() + 60
            while not all(c.assignment() for c in consumers) and time.monotonic() < deadline:
                for member in consumers:
                    member.poll(0.2)
        deadline = time.monotonic() + 5  # both consume for a while (fetches, commits, heartbeats)
        while time.monotonic() < deadline:
            for c in consumers:
                c.poll(0.1)

        # A consumer that falls further behind while the producer goes on.
        lagging = Consumer({"bootstrap.servers": bootstrap, "group.id": "prom-lag", "client.id": "prom-lagging",
                            "auto.offset.reset": "earliest", "fetch.max.bytes": 20_000, "message.max.bytes": 20_000,
                            "max.partition.fetch.bytes": 20_000, "queued.min.messages": 1, "queued.max.messages.kbytes": 20})
        lagging.subscribe(["prom-lag"])
        consumers.append(lagging)
        # Each round the producer adds 2,500 records and the consumer reads about 1,000 (a batch
        # or so per fetch): the lag it shows grows round by round.
        read = 0
        for round_ in range(1, 5):
            for i in range(2500):
                producer.produce("prom-lag", value=b"x" * 1000, partition=0)
                producer.poll(0)
            producer.flush(30)
            deadline = time.monotonic() + 10
            while read < 1000 * round_ and time.monotonic() < deadline:
                msg = lagging.poll(0.2)
                read += msg is not None and not msg.error()
            time.sleep(1.5)

        # Errors keep coming: two rounds a few scrapes apart (a series is born at its first
        # increment, and rate() sees increases only after that).
        induce_errors_and_bad_frames(envoy.listener_port, admin)
        time.sleep(2.5)
        induce_errors_and_bad_frames(envoy.listener_port, admin)

        # A flood of client ids beyond the cap of 30.
        for i in range(40):
            exchange(envoy.listener_port, kafka_frame(18, 0, i, f"prom-flood-{i}".encode()))

        # A slow broker: ApiVersions answered after 1.2 s, several at once.
        tap.response_delay = 1.2
        threads = [threading.Thread(target=exchange, args=(envoy.listener_port, kafka_frame(18, 0, i, b"prom-slow"))) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        tap.response_delay = 0.0

        expected = {rule["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for rule in g["rules"]}
        try:
            wait_until(lambda: prometheus.firing() >= expected, 90, interval=1, what=f"alerts {sorted(expected)} to fire")
        finally:
            print("firing:", sorted(prometheus.firing()))
            for expr in ("kafka_fetch_lag_records", "delta(kafka_fetch_lag_records[2m])", "kafka_undecodable_frames_total",
                         "kafka_body_decode_errors_total", "kafka_scan_errors_total"):
                print(expr, [(r["metric"], r["value"][1]) for r in prometheus.query(expr).get("data", {}).get("result", [])])

        # Every dashboard expression is valid PromQL and has data; so have the template variables.
        problems = []
        for expr in dashboard_queries():
            answer = prometheus.query(expr)
            if answer.get("status") != "success":
                problems.append(f"invalid: {expr}: {answer.get('error')}")
            elif not answer["data"]["result"] and not any(m in expr for m in NO_DATA_WITH_TANSU):
                problems.append(f"no data: {expr}")
        assert not problems, "\n".join(problems)
        variables = json.loads(DASHBOARD.read_text())["templating"]["list"]
        for v in variables:
            m = re.fullmatch(r"label_values\((\w+), (\w+)\)", v.get("definition", ""))
            if m:
                assert prometheus.label_values(m.group(2), m.group(1)), f"variable {v['name']} has no values"
        assert "prom-group" in prometheus.label_values("group", "kafka_group_rebalances_total")
    finally:
        for c in consumers:
            c.close()
        # librdkafka clients live until collected and would reconnect to the next test's Envoy
        # (every test's Envoy listens on the same port): destroy them now.
        del producer, admin
        gc.collect()
        prometheus.stop()
