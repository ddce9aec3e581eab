"""An independent witness on the wire: a TCP relay between Envoy and the broker that frames the
Kafka stream itself and counts requests and responses per API key.

The filter's counters are checked against this count, which is made by different code (Python,
no shared logic with the Rust codec) from the bytes Envoy actually forwarded. The tap forwards
every byte unchanged; it can also record each connection as a trace file (test data for the codec and filter).
"""
from __future__ import annotations

import asyncio
import collections
import struct
import threading
from pathlib import Path

from harness import free_port

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
    10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
    15: "DescribeGroups", 16: "ListGroups", 17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics",
    20: "DeleteTopics", 21: "DeleteRecords", 22: "InitProducerId", 23: "OffsetForLeaderEpoch",
    24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit",
    29: "DescribeAcls", 30: "CreateAcls", 31: "DeleteAcls", 32: "DescribeConfigs", 33: "AlterConfigs",
    35: "DescribeLogDirs", 36: "SaslAuthenticate", 37: "CreatePartitions", 42: "DeleteGroups",
    44: "IncrementalAlterConfigs", 47: "OffsetDelete", 60: "DescribeCluster", 61: "DescribeProducers",
    68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe", 71: "GetTelemetrySubscriptions",
    72: "PushTelemetry", 75: "DescribeTopicPartitions",
}


def api_name(key: int) -> str:
    return API_NAMES.get(key, f"api{key}")


class KafkaTap:
    def __init__(self, upstream_port: int, record_dir: Path | None = None, port: int | None = None):
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.record_dir = record_dir
        # Seconds to hold every chunk of broker responses: makes the broker slow for latency tests.
        self.response_delay = 0.0
        self.lock = threading.Lock()
        self.requests: collections.Counter[str] = collections.Counter()
        # (api name, version) of every request relayed: what versions reached the broker.
        self.request_versions: collections.Counter[tuple[str, int]] = collections.Counter()
        # Every whole request and response frame relayed (size prefix excluded), when asked.
        self.keep_frames = False
        self.request_frames: list[bytes] = []
        self.response_frames: list[bytes] = []
        self.responses: collections.Counter[str] = collections.Counter()
        self.request_bytes = 0
        self.response_bytes = 0
        self.largest_request = 0
        self.largest_response = 0
        self.connections = 0
        self._conn_seq = 0
        self._transports: set = set()
        self.resets = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True))
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        def _close():
            self._server.close()
            self._loop.stop()
        self._loop.call_soon_threadsafe(_close)
        self._thread.join(5)

    def reset_all(self) -> int:
        """Aborts every relayed connection at once (a TCP reset toward Envoy and the broker), as a
        network fault would; returns how many connections were cut."""
        done = threading.Event()
        cut = []

        def _abort():
            for t in list(self._transports):
                t.abort()
            cut.append(len(self._transports) // 2)
            self._transports.clear()
            done.set()
        self._loop.call_soon_threadsafe(_abort)
        done.wait(5)
        self.resets += cut[0] if cut else 0
        return cut[0] if cut else 0

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.request_versions.clear()
            self.responses.clear()
            self.request_frames.clear()
            self.response_frames.clear()
            self.request_bytes = self.response_bytes = 0

    def snapshot(self) -> tuple[dict, dict]:
        with self.lock:
            return dict(self.requests), dict(self.responses)

    def in_flight(self) -> int:
        with self.lock:
            return sum(self.requests.values()) - sum(self.responses.values())

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.close()
            return
        with self.lock:
            self.connections += 1
            self._conn_seq += 1
            seq = self._conn_seq
        transports = (client_w.transport, broker_w.transport)
        self._transports.update(transports)
        pending: dict[int, int] = {}  # correlation id -> api key
        trace = None
        if self.record_dir is not None:
            self.record_dir.mkdir(parents=True, exist_ok=True)
            trace = open(self.record_dir / f"conn{seq:03d}.trace", "wb")
        await asyncio.gather(
            self._pump(client_r, broker_w, pending, True, trace),
            self._pump(broker_r, client_w, pending, False, trace),
            return_exceptions=True,
        )
        if trace:
            trace.close()
        self._transports.difference_update(transports)

    async def _pump(self, reader, writer, pending, is_request, record) -> None:
        buf = bytearray()
        try:
            while True:
                data = await reader.read(1 << 20)
                if not data:
                    break
                if not is_request and self.response_delay:
                    await asyncio.sleep(self.response_delay)  # a slow broker
                writer.write(data)
                if record:
                    # Trace format: direction (0 request, 1 response), u32 length, bytes; chunks
                    # in the order the tap relayed them. Read by codec/filter replay tests.
                    record.write(struct.pack(">BI", 0 if is_request else 1, len(data)) + data)
                buf += data
                self._account(buf, pending, is_request, len(data))
                await writer.drain()
        finally:
            try:
                writer.close()
            except Exception:
                pass

    def _account(self, buf: bytearray, pending: dict, is_request: bool, n: int) -> None:
        with self.lock:
            if is_request:
                self.request_bytes += n
            else:
                self.response_bytes += n
            while len(buf) >= 4:
                (size,) = struct.unpack_from(">i", buf, 0)
                if size < 0 or len(buf) < 4 + size:
                    break
                frame = bytes(buf[4:4 + size])
                del buf[:4 + size]
                if is_request:
                    self.largest_request = max(self.largest_request, size)
                else:
                    self.largest_response = max(self.largest_response, size)
                if self.keep_frames:
                    (self.request_frames if is_request else self.response_frames).append(frame)
                if is_request and len(frame) >= 8:
                    key, version, corr = struct.unpack_from(">hhi", frame, 0)
                    self.requests[api_name(key)] += 1
                    self.request_versions[(api_name(key), version)] += 1
                    pending[corr] = key
                elif not is_request and len(frame) >= 4:
                    (corr,) = struct.unpack_from(">i", frame, 0)
                    key = pending.pop(corr, None)
                    self.responses[api_name(key) if key is not None else "unmatched"] += 1
