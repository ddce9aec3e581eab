"""A short soak in the test suite (the long one: `python tests/soak.py --records 1000000 --minutes 5`):
4 producers, a 2-member consumer group, 120,000 records through Envoy + kafka-lens."""
from __future__ import annotations

import pytest

from clients import wait_until
from soak import run


def soak_and_check(envoy, tap, topic: str, producers: int):
    """Runs a soak of 30,000 records per producer and 2 consumers; checks every record arrived once,
    in order, intact, and that the filter counted what the tap saw. Returns the result and metrics."""
    r = run(f"127.0.0.1:{envoy.listener_port}", topic, producers=producers, records_per_producer=30_000, consumers=2,
            max_seconds=240)
    print(f"{r.produced} produced, {r.consumed} consumed in {r.seconds:.1f} s")
    assert not r.errors, r.errors
    assert r.produced == producers * 30_000
    assert (r.missing, r.duplicates, r.corrupt, r.out_of_order) == (0, 0, 0, 0)
    m = envoy.settled_metrics()
    tap_requests, tap_responses = tap.snapshot()
    assert m.by_label("kafka_requests_total", "api") == tap_requests
    assert m.by_label("kafka_responses_total", "api") == tap_responses
    return r, m


def test_short_soak(envoy, tap):
    r, m = soak_and_check(envoy, tap, "soak-short", producers=4)
    assert m.get("kafka_records_total", api="Produce", direction="request") == r.produced
    assert m.get("kafka_records_total", api="Fetch", direction="response") >= r.produced
    assert m.get("kafka_body_decode_errors_total") == m.get("kafka_scan_errors_total") == 0


SOAK_TENANT = "soak-tenant."
POLICY_AND_REWRITE = {
    "topic_rewrite": {"tenants": [{"name": "soak", "prefix": SOAK_TENANT, "match": {"client_id": {"prefix": "soak-"}}}]},
    "policy": {"rules": [
        {"name": "soak-produce", "match": {"topics": [{"prefix": SOAK_TENANT}]},
         "produce": {"acks": [-1], "compression": ["none", "lz4", "zstd", "snappy", "gzip"]}},
        {"name": "soak-no-deletes", "match": {"apis": ["DeleteTopics"]}, "deny": True},
    ]},
}


@pytest.mark.filter_config(POLICY_AND_REWRITE)
def test_short_soak_through_policy_and_tenant_prefix(envoy, tap, broker):
    """The same soak with a policy checking every Produce and a tenant prefix on every topic and
    group: every Produce is renamed in place and checked, every Fetch response renamed back."""
    r, m = soak_and_check(envoy, tap, "soak-tenant-run", producers=2)
    # Metrics name the broker's topic; nothing was refused, nothing failed to rename.
    assert m.get("kafka_produced_records_total", topic=SOAK_TENANT + "soak-tenant-run") == r.produced
    assert m.value("kafka_policy_decisions_total") in (None, 0)
    assert m.value("kafka_topic_rewrite_failures_total") in (None, 0)
    assert m.get("kafka_topic_rewrites_total", api="Produce", direction="request") > 0
    assert m.get("kafka_topic_rewrites_total", api="Fetch", direction="response") > 0
