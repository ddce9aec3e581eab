"""One request frame on its own connection, for tests that need exactly that frame on the wire
(malformed ones, or requests no client library sends)."""
from __future__ import annotations

import socket
import struct

from protocol_fuzz import request


# A request with header v1 (api key, version, correlation id, client id) and a body.
kafka_frame = request


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
