"""The network protocol fuzz harness (tests/protocol_fuzz.py) against Envoy + kafka-lens: every
hostile case ends as its table says, other connections keep working, the Wasm VMs never restart,
and the filter's live state returns to its baseline (heap gauge, connections, requests in flight,
Envoy RSS) — measured on a second pass after a warm-up pass."""
from __future__ import annotations

import struct
import time

import pytest

from clients import wait_until
from conftest import assert_vm_healthy
from harness import Envoy
from protocol_fuzz import (API_VERSIONS_V0, BROKER_BEHAVIOURS, HostileBroker, canary, client_cases, recv_exact,
                           request, run_broker_case, run_client_case)


def rss_kib(envoy: Envoy) -> int:
    for line in open(f"/proc/{envoy.proc.popen.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_client_side_hostile_streams(echo_envoy):
    port = echo_envoy.listener_port
    vms = echo_envoy.metrics().get("envoy_wasm_envoy_wasm_runtime_v8_created")
    results = {}
    for rnd in range(2):
        for case in client_cases():
            ok, detail = run_client_case(port, case, echo=True)
            assert ok, f"{case.name}: {detail}"
            assert canary(port), f"after {case.name}: another connection got no answer"
            results[case.name] = detail
        m = echo_envoy.settled_metrics(tick=True)
        if rnd == 0:
            heap0, rss0 = m.get("kafka_lens_vm_heap_bytes"), rss_kib(echo_envoy)
    heap1, rss1 = m.get("kafka_lens_vm_heap_bytes"), rss_kib(echo_envoy)
    print(f"heap after warm-up {heap0:.0f} B, after the measured pass {heap1:.0f} B; Envoy RSS {rss0} -> {rss1} KiB")

    assert heap0 > 0, "heap gauge not reported"
    assert abs(heap1 - heap0) <= 4096, f"filter state did not return to baseline: heap {heap0} -> {heap1} bytes"
    assert rss1 - rss0 < 20 * 1024, f"Envoy RSS grew {rss1 - rss0} KiB over one pass"
    assert m.get("envoy_wasm_envoy_wasm_runtime_v8_created") == vms, "a Wasm VM was re-created"
    assert m.get("kafka_requests_in_flight") == 0
    # Each pass: two closes by the filter (negative and oversized size), counted with their reason.
    assert m.get("kafka_connections_closed_by_filter_total", reason="frame_too_large") == 2
    assert m.get("kafka_connections_closed_by_filter_total", reason="frame_too_small") == 2
    assert m.get("kafka_requests_total", api="unknown") == 2
    assert m.get("kafka_unknown_version_requests_total", api="Metadata") == 2
    assert m.get("kafka_undecodable_frames_total", direction="request", reason="header") == 2
    assert m.get("kafka_body_decode_errors_total", direction="request", api="Metadata") == 2 * 4
    assert m.get("kafka_non_kafka_connections_total") == 0


def test_broker_side_hostile_responses(workdir, proxy_port):
    broker = HostileBroker()
    envoy = Envoy(proxy_port, broker.port, workdir)
    try:
        vms = envoy.metrics().get("envoy_wasm_envoy_wasm_runtime_v8_created")
        for name in BROKER_BEHAVIOURS:
            got = run_broker_case(envoy.listener_port, name)
            if name == "reset-mid-response":
                # A reset propagates to the client, which may lose bytes not yet read: a prefix.
                assert broker.sent[name].startswith(got), f"{name}: the client got bytes the broker never sent"
            else:
                assert got == broker.sent[name], f"{name}: the client must get exactly what the broker sent"
        m = envoy.settled_metrics(tick=True)
        assert m.get("envoy_wasm_envoy_wasm_runtime_v8_created") == vms
        assert m.get("kafka_requests_in_flight") == 0
        assert m.get("kafka_unmatched_responses_total") == 1  # the response for correlation id + 1000
        # Oversized: the 1 GiB prefix, and the garbage (its first bytes read as ~187 MB). Too small:
        # the -1 prefix, and the 2-byte response.
        assert m.get("kafka_undecodable_frames_total", direction="response", reason="frame_too_large") == 2
        assert m.get("kafka_undecodable_frames_total", direction="response", reason="frame_too_small") == 2
        assert m.get("kafka_connections_closed_by_filter_total") == 0, "broker misbehaviour never closes connections"
    finally:
        envoy.stop()
        broker.stop()
        assert_vm_healthy(envoy)


def test_10000_pipelined_requests_and_slowloris_against_the_broker(envoy, tap):
    n = 10_000
    port = envoy.listener_port
    with __import__("socket").create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"".join(request(18, 0, i, client_id=b"pipeline") for i in range(n)))
        got, corrs, buf = 0, [], b""
        deadline = time.monotonic() + 60
        while got < n and time.monotonic() < deadline:
            buf += recv_exact(s, 1, timeout=10)
            while len(buf) >= 8:
                (size,) = struct.unpack_from(">i", buf, 0)
                if len(buf) < 4 + size:
                    break
                corrs.append(struct.unpack_from(">i", buf, 4)[0])
                buf = buf[4 + size:]
                got += 1
    assert corrs == list(range(n)), "responses must come back complete and in request order"

    # One byte at a time.
    with __import__("socket").create_connection(("127.0.0.1", port), timeout=10) as s:
        for b in request(18, 0, 424242, client_id=b"slowloris"):
            s.send(bytes([b]))
            time.sleep(0.002)
        resp = recv_exact(s, 8, timeout=10)
        assert struct.unpack_from(">i", resp, 4)[0] == 424242

    m = envoy.settled_metrics(tick=True)
    tap_requests, tap_responses = tap.snapshot()
    assert m.by_label("kafka_requests_total", "api") == tap_requests == {"ApiVersions": n + 1}
    # With 10,000 requests pipelined past max_in_flight (1024), the oldest entries are forgotten;
    # every response is still either paired or counted as unmatched, and every forgotten request is
    # counted as an overflow.
    paired = m.get("kafka_responses_total", api="ApiVersions")
    unmatched = m.get("kafka_unmatched_responses_total")
    assert paired + unmatched == n + 1
    assert m.get("kafka_in_flight_overflow_total") == unmatched
    assert m.get("kafka_requests_in_flight") == 0
