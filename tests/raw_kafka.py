"""Kafka frames written by hand, for tests that need exactly one frame on the wire: malformed
ones, or requests no client library would send (a Produce to a partition that does not exist)."""
from __future__ import annotations

import socket
import struct


def kafka_frame(api_key: int, version: int, correlation_id: int, client_id: bytes, body: bytes = b"") -> bytes:
    """A request with header v1 (api key, version, correlation id, client id) and `body`."""
    payload = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id + body
    return struct.pack(">i", len(payload)) + payload


def string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack(">h", len(raw)) + raw


def record_batch(values: list[bytes]) -> bytes:
    """A magic-2 record batch of `values` (no key, no headers), built by kafka-python."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=None, key=None, value=value, headers=[])
    return bytes(builder.build())


def produce_v3(correlation_id: int, client_id: bytes, topic: str, partition: int, batch: bytes, acks: int = -1) -> bytes:
    """Produce v3: one batch to one partition."""
    body = struct.pack(">hhi", -1, acks, 5000)  # null transactional id, acks, timeout
    body += struct.pack(">i", 1) + string(topic) + struct.pack(">i", 1) + struct.pack(">i", partition)
    body += struct.pack(">i", len(batch)) + batch
    return kafka_frame(0, 3, correlation_id, client_id, body)


def exchange(port: int, frame: bytes, timeout: float = 10) -> bytes:
    """Sends one request frame and returns the response frame (size prefix excluded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(frame)
        head = recv_exact(s, 4)
        return recv_exact(s, struct.unpack(">i", head)[0])


def recv_exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError(f"closed after {len(out)} of {n} bytes")
        out += chunk
    return out
