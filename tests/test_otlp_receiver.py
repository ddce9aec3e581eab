"""The OTLP/gRPC trace receiver (otlp_receiver.py) on its own: a real gRPC client exports spans
built with the opentelemetry-proto classes, and the receiver reports them as plain dicts. No
broker, no Envoy; runs in about a second.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from otlp_receiver import OtlpReceiver

HERE = Path(__file__).resolve().parent


def kv(key: str, **value) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(**value))


def request(name: str, service: str = "kafka-lens-test") -> trace_service_pb2.ExportTraceServiceRequest:
    span = trace_pb2.Span(
        trace_id=bytes(range(1, 17)), span_id=bytes(range(0xa0, 0xa8)), parent_span_id=b"", name=name,
        kind=trace_pb2.Span.SPAN_KIND_PRODUCER, start_time_unix_nano=1_700_000_000_000_000_000,
        end_time_unix_nano=1_700_000_000_250_000_000,
        attributes=[
            kv("messaging.system", string_value="kafka"),
            kv("messaging.kafka.destination.partition", int_value=3),
            kv("retry", bool_value=True),
            kv("ratio", double_value=0.5),
            kv("topics", array_value=common_pb2.ArrayValue(values=[common_pb2.AnyValue(string_value=t) for t in ("a", "b")])),
        ],
        status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message="NOT_LEADER_OR_FOLLOWER"),
    )
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
        resource=resource_pb2.Resource(attributes=[kv("service.name", string_value=service)]),
        scope_spans=[trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name="kafka-lens", version="0.1.0"), spans=[span])],
    )])


@pytest.fixture
def receiver():
    with OtlpReceiver() as r:
        yield r


def export(port: int, req) -> trace_service_pb2.ExportTraceServiceResponse:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return trace_service_pb2_grpc.TraceServiceStub(channel).Export(req, timeout=5)


def test_receiver_records_exported_spans(receiver: OtlpReceiver):
    response = export(receiver.port, request("produce orders"))
    assert not response.HasField("partial_success")
    [span] = receiver.wait_for(lambda spans: spans, timeout=5)
    assert span == {
        "name": "produce orders", "kind": "SPAN_KIND_PRODUCER",
        "trace_id": "0102030405060708090a0b0c0d0e0f10", "span_id": "a0a1a2a3a4a5a6a7", "parent_span_id": "",
        "start_ns": 1_700_000_000_000_000_000, "end_ns": 1_700_000_000_250_000_000,
        "attributes": {"messaging.system": "kafka", "messaging.kafka.destination.partition": 3, "retry": True, "ratio": 0.5,
                       "topics": ["a", "b"]},
        "status_code": "STATUS_CODE_ERROR", "status_message": "NOT_LEADER_OR_FOLLOWER",
        "resource": {"service.name": "kafka-lens-test"}, "scope": {"name": "kafka-lens", "version": "0.1.0"},
    }
    assert receiver.export_calls == 1


def test_receiver_concurrent_exports_and_partial_success(receiver: OtlpReceiver):
    receiver.partial_success = (2, "over quota")
    responses = []
    threads = [threading.Thread(target=lambda i=i: responses.append(export(receiver.port, request(f"s{i}")))) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    receiver.wait_for(lambda spans: len(spans) == 8, timeout=5)
    assert sorted(s["name"] for s in receiver.spans()) == [f"s{i}" for i in range(8)]
    assert receiver.export_calls == 8
    assert [(r.partial_success.rejected_spans, r.partial_success.error_message) for r in responses] == [(2, "over quota")] * 8
    with pytest.raises(TimeoutError, match="8 Export calls"):
        receiver.wait_for(lambda spans: len(spans) > 8, timeout=0.2)


def test_receiver_main_prints_json_lines():
    with subprocess.Popen([sys.executable, str(HERE / "otlp_receiver.py"), "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            banner = proc.stderr.readline()
            assert "OTLP/gRPC trace receiver on 127.0.0.1:" in banner, banner
            port = int(banner.rsplit(":", 1)[1])
            export(port, request("fetch orders"))
            line = json.loads(proc.stdout.readline())
            assert (line["name"], line["kind"], line["attributes"]["topics"]) == ("fetch orders", "SPAN_KIND_PRODUCER", ["a", "b"])
        finally:
            proc.terminate()
            proc.wait(timeout=5)
