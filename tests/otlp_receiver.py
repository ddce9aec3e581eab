"""A small OTLP/gRPC trace receiver for the end-to-end tests and the demo: it serves
`opentelemetry.proto.collector.trace.v1.TraceService/Export` on 127.0.0.1 and keeps every span it
receives as a plain dict, so a test can assert on what kafka-lens exported without running an
OpenTelemetry collector.

    with OtlpReceiver() as otlp:
        ...  # point Envoy's gRPC cluster at 127.0.0.1:{otlp.port}, send Kafka traffic
        produce = otlp.wait_for(lambda spans: [s for s in spans if s["kind"] == "SPAN_KIND_PRODUCER"], timeout=10)

A span dict: {"name", "kind" ("SPAN_KIND_CLIENT", ...), "trace_id", "span_id", "parent_span_id" (hex,
"" if none), "start_ns", "end_ns", "attributes" {key: str | int | bool | float | list | dict | bytes},
"status_code" ("STATUS_CODE_UNSET" / "_OK" / "_ERROR"), "status_message", "resource" {key: value},
"scope" {"name", "version"}}. Enum values the proto does not know stay ints.

As a program (`python tests/otlp_receiver.py --port 4317`) it prints each span as a JSON line.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from concurrent import futures
from typing import Any, Callable

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2


def any_value(v: common_pb2.AnyValue) -> Any:
    """The Python value of an OTLP AnyValue (None when no field of the oneof is set)."""
    which = v.WhichOneof("value")
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return attributes(v.kvlist_value.values)
    return None if which is None else getattr(v, which)


def attributes(kvs) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


def _enum_name(enum, value: int) -> str | int:
    try:
        return enum.Name(value)
    except ValueError:
        return value


def span_dict(span: trace_pb2.Span, resource: dict[str, Any], scope: dict[str, str]) -> dict[str, Any]:
    return {
        "name": span.name,
        "kind": _enum_name(trace_pb2.Span.SpanKind, span.kind),
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "start_ns": span.start_time_unix_nano,
        "end_ns": span.end_time_unix_nano,
        "attributes": attributes(span.attributes),
        "status_code": _enum_name(trace_pb2.Status.StatusCode, span.status.code),
        "status_message": span.status.message,
        "resource": resource,
        "scope": scope,
    }


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: "OtlpReceiver"):
        self.receiver = receiver

    def Export(self, request, context):  # noqa: N802 (the gRPC method name)
        return self.receiver._export(request)


class OtlpReceiver:
    """An in-process OTLP/gRPC trace receiver on 127.0.0.1 (a free port unless `port` is given).

    Thread-safe: gRPC handles calls on its own threads while the test reads `spans()`.
    `partial_success = (rejected, message)` makes every later Export answer with that partial
    success, to test how the exporter handles rejected spans.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", on_span: Callable[[dict], None] | None = None):
        self._cond = threading.Condition()
        self._spans: list[dict[str, Any]] = []
        self._on_span = on_span
        self.export_calls = 0
        self.partial_success: tuple[int, str] | None = None
        # gRPC Python sets SO_REUSEPORT by default, so a second server could share a fixed port
        # silently and steal half the calls; off, and port 0 lets the kernel pick (no race).
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)])
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._server)
        self.host = host
        try:
            self.port = self._server.add_insecure_port(f"{host}:{port}")  # older grpcio: 0 on failure
        except RuntimeError as e:
            raise OSError(f"cannot listen on {host}:{port}: {e}") from e
        if self.port == 0:
            raise OSError(f"cannot listen on {host}:{port}")
        self._server.start()

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def _export(self, request: trace_service_pb2.ExportTraceServiceRequest) -> trace_service_pb2.ExportTraceServiceResponse:
        new = []
        for rs in request.resource_spans:
            resource = attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                scope = {"name": ss.scope.name, "version": ss.scope.version}
                new.extend(span_dict(s, resource, scope) for s in ss.spans)
        with self._cond:
            self.export_calls += 1
            self._spans.extend(new)
            partial = self.partial_success
            self._cond.notify_all()
            if self._on_span is not None:  # under the lock: calls arrive on several threads
                for s in new:
                    self._on_span(s)
        response = trace_service_pb2.ExportTraceServiceResponse()
        if partial is not None:
            response.partial_success.rejected_spans, response.partial_success.error_message = partial
        return response

    def spans(self) -> list[dict[str, Any]]:
        """Every span received so far, oldest first (a copy of the list)."""
        with self._cond:
            return list(self._spans)

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], Any], timeout: float = 10.0) -> Any:
        """Waits until `predicate(spans)` is truthy for the spans received so far and returns its
        value; raises TimeoutError (listing what did arrive) after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate(list(self._spans))
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [(s["name"], s["kind"]) for s in self._spans]
                    raise TimeoutError(f"no matching spans after {timeout}s; {self.export_calls} Export calls, spans: {got}")
                self._cond.wait(left)

    def stop(self, grace: float = 0.5) -> None:
        self._server.stop(grace).wait()

    def __enter__(self) -> "OtlpReceiver":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description="Print the spans of OTLP/gRPC trace exports as JSON lines.")
    ap.add_argument("--port", type=int, default=4317, help="port to listen on (0: any free port; default 4317)")
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()

    def show(span: dict) -> None:
        print(json.dumps(span, default=lambda b: b.hex() if isinstance(b, bytes) else str(b)), flush=True)

    receiver = OtlpReceiver(port=args.port, host=args.host, on_span=show)
    signal.signal(signal.SIGTERM, lambda *_: receiver.stop(grace=0))  # ends wait_for_termination
    print(f"OTLP/gRPC trace receiver on {receiver.endpoint}", file=sys.stderr, flush=True)
    try:
        receiver._server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()
