"""Bad input through the filter: streams that are not Kafka pass through byte-for-byte and are
counted; an oversized frame on a Kafka connection closes that connection only; a hostcall Envoy
refuses leaves the VM and every connection alive."""
from __future__ import annotations

import os
import socket
import ssl
import struct
import time

import pytest

from clients import wait_until
from raw_kafka import kafka_frame


def roundtrip(port: int, chunks: list[bytes], pause: float = 0.05) -> bytes:
    """Sends chunks on one connection and returns everything that came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        expected = sum(len(c) for c in chunks)
        for c in chunks:
            s.sendall(c)
            time.sleep(pause)
        got = b""
        while len(got) < expected:
            data = s.recv(65536)
            if not data:
                break
            got += data
        return got


def tls_client_hello() -> bytes:
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="kafka.example")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert hello[:2] == b"\x16\x03"
    return hello


@pytest.mark.parametrize("kind,first", [
    ("tls", "hello"),
    ("http", b"GET /health HTTP/1.1\r\nHost: kafka\r\n\r\n"),
    ("http", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ("unknown", struct.pack(">i", 12) + b"\x7f\x7f\x00\x01garbage!"),  # plausible size, no such API
    ("unknown", b"\xff\xff\xff\xf0" + os.urandom(64)),  # negative size
    ("unknown", struct.pack(">i", 3) + b"abc"),  # too small for a header
])
def test_non_kafka_streams_pass_through_untouched(echo_envoy, kind, first):
    first = tls_client_hello() if first == "hello" else first
    rest = [os.urandom(5000), struct.pack(">i", 0x7fffffff) + os.urandom(100)]  # later bytes are never framed
    sent = [first, *rest]
    assert roundtrip(echo_envoy.listener_port, sent) == b"".join(sent)

    m = echo_envoy.settled_metrics()
    assert m.by_label("kafka_non_kafka_connections_total", "kind") == {kind: 1}
    assert m.get("kafka_connections_closed_by_filter_total") == 0
    assert m.get("kafka_requests_total") == 0


def test_oversized_frame_after_kafka_start_closes_only_that_connection(echo_envoy):
    port = echo_envoy.listener_port
    api_versions = kafka_frame(18, 0, 1, b"bad-client")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as bad, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as good:
        bad.sendall(api_versions)
        assert bad.recv(65536) == api_versions  # echoed: the connection is Kafka and alive
        bad.sendall(struct.pack(">i", 200 * 1024 * 1024) + b"\x00\x00\x00\x00")  # 200 MiB > 100 MiB cap
        bad.settimeout(5)
        rest = b""
        while True:
            data = bad.recv(65536)
            if not data:
                break  # closed by the filter
            rest += data
        assert rest == b"", "nothing of the oversized frame may be forwarded"

        # Another connection of the same worker VMs is unaffected.
        frame = kafka_frame(3, 1, 5, b"good-client", struct.pack(">i", 0))
        good.sendall(frame)
        assert good.recv(65536) == frame

    m = echo_envoy.settled_metrics()
    assert m.get("kafka_connections_closed_by_filter_total", reason="frame_too_large") == 1
    assert m.get("kafka_undecodable_frames_total", direction="request", reason="frame_too_large") == 1
    assert m.get("kafka_requests_total", api="ApiVersions") == 1
    assert m.get("kafka_requests_total", api="Metadata") == 1
    assert "exceeds max_frame_bytes" in echo_envoy.log_text()


@pytest.mark.filter_config({"diagnostics": {"probe_refused_hostcall": True}})
def test_refused_hostcall_leaves_vm_alive(envoy, tap):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    vms_before = envoy.metrics().get("envoy_wasm_envoy_wasm_runtime_v8_created")
    bootstrap = f"127.0.0.1:{envoy.listener_port}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic("e2e-probe", 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(100):
        producer.send("e2e-probe", value=b"v%d" % i)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer("e2e-probe", bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000)
    values = [r.value for r in consumer]
    consumer.close()
    assert values == [b"v%d" % i for i in range(100)]

    m = envoy.settled_metrics()
    refused = m.get("kafka_lens_hostcall_failures_total", call="set_buffer_probe")
    assert refused >= m.get("kafka_connections_total") > 0, "Envoy must have refused the probe on every connection"
    assert m.get("envoy_wasm_envoy_wasm_runtime_v8_created") == vms_before, "a Wasm VM was re-created"
    tap_requests, _ = tap.snapshot()
    assert m.by_label("kafka_requests_total", "api") == tap_requests
