"""Client ids are untrusted: 5,000 distinct ones (with tag separators in them) against a cap of
100 create at most 100 `client_id` label values across both worker VMs, the rest fold into
`__overflow__` and are counted, and the VM heap stays bounded."""
from __future__ import annotations

import socket

import pytest

from clients import wait_until
from protocol_fuzz import recv_exact, request

CAP = 100


@pytest.mark.filter_config({"labels": {"max_client_ids": CAP}})
def test_5000_client_ids_stay_under_the_cap(envoy):
    n = 5000
    per_connection = 250
    for c in range(n // per_connection):
        with socket.create_connection(("127.0.0.1", envoy.listener_port), timeout=10) as s:
            ids = [f"client-{c * per_connection + i};api=x" for i in range(per_connection)]
            s.sendall(b"".join(request(18, 0, i, client_id=cid.encode()) for i, cid in enumerate(ids)))
            got = 0
            buf = b""
            while got < per_connection:
                data = recv_exact(s, 1, timeout=10)
                if not data:
                    break
                buf += data
                while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "big"):
                    buf = buf[4 + int.from_bytes(buf[:4], "big"):]
                    got += 1
            assert got == per_connection
    m = envoy.settled_metrics()
    values = m.by_label("kafka_requests_total", "client_id")
    admitted = [v for v in values if v != "__overflow__"]
    assert len(admitted) == CAP, f"{len(admitted)} client_id values admitted"
    assert all(";" not in v and "=" not in v for v in values), "tag separators must not survive sanitizing"
    assert values["__overflow__"] == n - CAP
    assert m.get("kafka_lens_label_overflow_total", label="client_id") == n - CAP
    assert sum(values.values()) == n
    heap = m.get("kafka_lens_vm_heap_bytes")
    print(f"VM heap after 5,000 client ids: {heap:.0f} bytes (all VMs)")
    assert heap < 2 * 1024 * 1024
