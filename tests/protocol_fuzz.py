"""Network protocol fuzz harness: hostile Kafka streams through Envoy + kafka-lens, in both
directions, each with its expected outcome.

Client-side cases are sent through the proxy to an upstream that echoes every byte, so
"pass-through" is checked exactly (what comes back is what crossed the proxy twice); broker-side
cases come from `HostileBroker`, which answers a valid request with a chosen misbehaviour. Users
can run the client-side cases against their own deployment:

    python tests/protocol_fuzz.py HOST:PORT        # prints one line per case; exit 1 on failure

Against a real broker the exact-echo check does not apply; the tool then checks only that each
hostile connection ends as expected and that a canary Kafka request still gets its answer.
"""
from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def request(api_key: int, version: int, corr: int, client_id: bytes | None = b"fuzz", body: bytes = b"",
            flexible_header: bool = False) -> bytes:
    cid = struct.pack(">h", -1) if client_id is None else struct.pack(">h", len(client_id)) + client_id
    header = struct.pack(">hhi", api_key, version, corr) + cid + (b"\x00" if flexible_header else b"")
    return frame(header + body)


API_VERSIONS_V0 = request(18, 0, 1)  # a valid first request: makes the stream Kafka
METADATA_V1_ALL = request(3, 1, 2, body=struct.pack(">i", -1))


@dataclass
class Case:
    name: str
    what: str
    expected: str  # "pass-through" (bytes echoed exactly) or "closed" (the filter closes)
    chunks: list[bytes]
    delay: float = 0.0  # between chunks
    reset_after: bool = False  # RST the connection after sending instead of reading the echo
    metric: str = ""  # what the filter counts, for the README table


def client_cases() -> list[Case]:
    big = 200 * 1024 * 1024
    return [
        Case("truncated-frame", "a frame cut short, then the client closes", "pass-through",
             [API_VERSIONS_V0, request(3, 1, 3, body=struct.pack(">i", -1))[:9]], metric="state freed at close"),
        Case("negative-size", "size prefix -16 after a valid first frame", "closed",
             [API_VERSIONS_V0, struct.pack(">i", -16) + b"x" * 16], metric='closed_by_filter{reason="frame_too_small"}'),
        Case("oversized-size", "size prefix 200 MiB (> 100 MiB cap) after a valid first frame", "closed",
             [API_VERSIONS_V0, struct.pack(">i", big) + b"x" * 64], metric='closed_by_filter{reason="frame_too_large"}'),
        Case("unknown-api-key", "API key 9999", "pass-through",
             [API_VERSIONS_V0, request(9999, 0, 4, body=b"\x00" * 12)], metric='requests_total{api="unknown"}'),
        Case("unknown-api-version", "Metadata v99", "pass-through",
             [API_VERSIONS_V0, request(3, 99, 5, body=b"\x00" * 12)], metric='unknown_version_requests_total{api="Metadata"}'),
        Case("wrong-header-version", "Metadata v12 (flexible) sent with a v1 header", "pass-through",
             [API_VERSIONS_V0, request(3, 12, 6, body=b"\x01\x00\x00\x00")], metric="body_decode_errors_total"),
        Case("non-utf8-client-id", "client id bytes ff fe", "pass-through",
             [API_VERSIONS_V0, request(3, 1, 7, client_id=b"\xff\xfe", body=struct.pack(">i", -1))], metric='undecodable_frames_total{reason="header"}'),
        Case("oversized-string", "topic name claiming 32767 bytes in a 20-byte frame", "pass-through",
             [API_VERSIONS_V0, request(3, 1, 8, body=struct.pack(">ih", 1, 32767) + b"abc")], metric="body_decode_errors_total"),
        Case("absurd-array", "Metadata v1 with 2^31-1 topics", "pass-through",
             [API_VERSIONS_V0, request(3, 1, 9, body=struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 8)], metric="body_decode_errors_total"),
        Case("absurd-compact-array", "Metadata v12 with a 2^32 compact array count", "pass-through",
             [API_VERSIONS_V0, request(3, 12, 10, flexible_header=True, body=b"\xff\xff\xff\xff\x0f\x00\x00")], metric="body_decode_errors_total"),
        Case("produce-garbage-records", "Produce v9 whose records are random bytes", "pass-through",
             [API_VERSIONS_V0, request(0, 9, 11, flexible_header=True, body=b"\x00\xff\xff\x00\x00\x75\x30\x02\x02t\x02\x00\x00\x00\x00\x21" + bytes(range(32)) + b"\x00\x00\x00")],
             metric="records not counted (no complete batch)"),
        Case("slowloris", "a valid request one byte at a time", "pass-through",
             [bytes([b]) for b in API_VERSIONS_V0 + METADATA_V1_ALL], delay=0.002, metric="counted once"),
        Case("reset-mid-frame", "half a frame, then a TCP reset", "pass-through",
             [API_VERSIONS_V0, METADATA_V1_ALL[:7]], reset_after=True, metric="state freed at close"),
    ]


def recv_exact(sock: socket.socket, n: int, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    got = b""
    while len(got) < n:
        try:
            data = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not data:
            break
        got += data
    return got


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def run_client_case(port: int, case: Case, echo: bool) -> tuple[bool, str]:
    """Returns (ok, detail)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        sent = b""
        for c in case.chunks:
            sock.sendall(c)
            sent += c
            if case.delay:
                time.sleep(case.delay)
        if case.reset_after:
            reset(sock)
            return True, "reset sent"
        if case.expected == "closed":
            got = recv_exact(sock, 1 << 30, timeout=5)
            first = len(case.chunks[0])
            # The valid first frame may or may not have been forwarded before the bad one arrived
            # (same read or not); nothing of the bad frame ever is.
            if echo and got not in (b"", sent[:first]):
                return False, f"expected at most the first frame back before the close, got {len(got)} bytes"
            return True, "closed by the proxy"
        if echo:
            got = recv_exact(sock, len(sent))
            return (got == sent, "echoed exactly" if got == sent else f"echo differs: {len(got)}/{len(sent)} bytes")
        return True, "sent"
    finally:
        try:
            sock.close()
        except OSError:
            pass


def canary(port: int) -> bool:
    """A fresh connection still gets an answer to ApiVersions (any upstream that answers)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(API_VERSIONS_V0)
        return len(recv_exact(s, 4, timeout=5)) >= 4


# --- the misbehaving broker -----------------------------------------------------------------------

def _response(corr: int, body: bytes = b"\x00\x00") -> bytes:
    return frame(struct.pack(">i", corr) + body)


#: name -> (what, bytes the broker sends after reading one request with correlation id c)
BROKER_BEHAVIOURS: dict[str, tuple[str, Callable[[int], bytes]]] = {
    "unknown-correlation": ("a response for a correlation id never requested, then the right one",
                            lambda c: _response(c + 1000) + _response(c)),
    "truncated-response": ("half a response, then the broker closes", lambda c: _response(c, b"\x00" * 40)[:20]),
    "oversized-response": ("a response size prefix of 1 GiB", lambda c: struct.pack(">i", 1 << 30) + b"\x00" * 100),
    "negative-response-size": ("a response size prefix of -1", lambda c: struct.pack(">i", -1) + b"\x00" * 20),
    "garbage-response": ("random bytes instead of a response", lambda c: bytes((i * 37 + 11) % 256 for i in range(300))),
    "tiny-response": ("a response too small to hold a correlation id", lambda c: frame(b"\x01\x02")),
    "reset-mid-response": ("half a response, then a TCP reset", lambda c: _response(c, b"\x00" * 40)[:20]),
}


class HostileBroker:
    """Reads one request per connection and answers with the behaviour named by the request's
    client id (`broker:<behaviour>`), then closes."""

    def __init__(self):
        self.port = _free_port()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(64)
        self.sent: dict[str, bytes] = {}
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = recv_exact(conn, 4)
            if len(data) < 4:
                return
            (n,) = struct.unpack_from(">i", data, 0)
            if len(data) < 4 + n:
                data += recv_exact(conn, 4 + n - len(data))
            body = data[4:4 + n]
            _key, _ver, corr, cid_len = struct.unpack_from(">hhih", body, 0)
            cid = body[10:10 + max(cid_len, 0)].decode(errors="replace")
            name = cid.removeprefix("broker:")
            what, make = BROKER_BEHAVIOURS.get(name, ("echo", lambda c: b""))
            out = make(corr)
            self.sent[name] = out
            try:
                conn.sendall(out)
                time.sleep(0.2)
                if name == "reset-mid-response":
                    reset(conn)
            except OSError:
                pass  # the client (or the proxy) may close first: that is the point of some cases

    def stop(self) -> None:
        self._sock.close()


def run_broker_case(port: int, name: str) -> bytes:
    """Sends one valid request asking for `name`; returns everything the client received."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request(18, 0, 77, client_id=f"broker:{name}".encode()))
        return recv_exact(s, 1 << 31, timeout=3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str]) -> int:
    if len(argv) != 2 or ":" not in argv[1]:
        print(__doc__)
        return 2
    host, port = argv[1].rsplit(":", 1)
    if host not in ("127.0.0.1", "localhost"):
        print("this tool only targets deployments on this machine (127.0.0.1)")
        return 2
    failed = 0
    for case in client_cases():
        ok, detail = run_client_case(int(port), case, echo=False)
        alive = canary(int(port))
        failed += not (ok and alive)
        print(f"{'ok  ' if ok and alive else 'FAIL'} {case.name:<24} {case.what} -> {detail}; canary {'answered' if alive else 'FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
