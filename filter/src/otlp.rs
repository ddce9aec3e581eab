//! OpenTelemetry trace export (OTLP) messages, encoded with prost.
//!
//! The filter turns Kafka requests into spans and sends them to an OpenTelemetry collector as an
//! OTLP/gRPC `opentelemetry.proto.collector.trace.v1.TraceService/Export` call through the host's
//! gRPC hostcall, so it needs the request in protobuf wire format and the response's partial-success
//! report back. There is no `protoc` in the build (and a build script would pull a code generator
//! into every build of the Wasm module), so the messages are written out by hand below with
//! `prost::Message` derives. Field numbers and types are those of opentelemetry-proto v1.x
//! (`opentelemetry/proto/collector/trace/v1/trace_service.proto`, `trace/v1/trace.proto`,
//! `common/v1/common.proto`, `resource/v1/resource.proto`); each field cites its number.
//!
//! Only the fields the filter writes or reads are declared. That is wire compatible both ways:
//! a receiver treats a field we never write as its default, and prost skips (drops) the fields of
//! a response it does not know, so a newer collector's extra fields cannot break decoding.

use prost::Message;

/// `ExportTraceServiceRequest` (collector/trace/v1/trace_service.proto): the body of one
/// `TraceService/Export` call.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTraceServiceRequest {
    /// `repeated ResourceSpans resource_spans = 1`: spans grouped by the process that made them.
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

/// `ExportTraceServiceResponse` (collector/trace/v1/trace_service.proto): what the collector
/// answers; only a partial success carries information (a full success is an empty message).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTraceServiceResponse {
    /// `ExportTracePartialSuccess partial_success = 1`: set when some spans were rejected.
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportTracePartialSuccess>,
}

/// `ExportTracePartialSuccess` (collector/trace/v1/trace_service.proto): how many spans the
/// collector dropped and why, so the filter can count and log rejected exports.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTracePartialSuccess {
    /// `int64 rejected_spans = 1`.
    #[prost(int64, tag = "1")]
    pub rejected_spans: i64,
    /// `string error_message = 2`.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// `ResourceSpans` (trace/v1/trace.proto): the spans of one resource (here: one Envoy running the
/// filter), which carries the `service.name` the tracing backend groups by.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceSpans {
    /// `Resource resource = 1`.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// `repeated ScopeSpans scope_spans = 2`.
    #[prost(message, repeated, tag = "2")]
    pub scope_spans: Vec<ScopeSpans>,
    /// `string schema_url = 3`: the semantic-conventions schema the resource attributes follow.
    #[prost(string, tag = "3")]
    pub schema_url: String,
}

/// `Resource` (resource/v1/resource.proto): attributes of the process emitting the spans.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Resource {
    /// `repeated KeyValue attributes = 1`.
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
    /// `uint32 dropped_attributes_count = 2`: attributes left out (e.g. over a limit).
    #[prost(uint32, tag = "2")]
    pub dropped_attributes_count: u32,
}

/// `ScopeSpans` (trace/v1/trace.proto): the spans made by one instrumentation scope (the filter).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScopeSpans {
    /// `InstrumentationScope scope = 1`.
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    /// `repeated Span spans = 2`.
    #[prost(message, repeated, tag = "2")]
    pub spans: Vec<Span>,
    /// `string schema_url = 3`: the semantic-conventions schema the span attributes follow.
    #[prost(string, tag = "3")]
    pub schema_url: String,
}

/// `InstrumentationScope` (common/v1/common.proto): names the code that made the spans, so a
/// backend can tell the filter's spans from the applications' own.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InstrumentationScope {
    /// `string name = 1`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// `string version = 2`.
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `Span` (trace/v1/trace.proto): one Kafka request and its response as seen by the filter.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    /// `bytes trace_id = 1`: 16 bytes; all zeroes is invalid.
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    /// `bytes span_id = 2`: 8 bytes; all zeroes is invalid.
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    /// `string trace_state = 3`: the W3C `tracestate` of the span context.
    #[prost(string, tag = "3")]
    pub trace_state: String,
    /// `bytes parent_span_id = 4`: 8 bytes, empty for a root span.
    #[prost(bytes = "vec", tag = "4")]
    pub parent_span_id: Vec<u8>,
    /// `string name = 5`.
    #[prost(string, tag = "5")]
    pub name: String,
    /// `SpanKind kind = 6`: a [`SpanKind`] as `i32` (protobuf enums are open: unknown values stay).
    #[prost(enumeration = "SpanKind", tag = "6")]
    pub kind: i32,
    /// `fixed64 start_time_unix_nano = 7`.
    #[prost(fixed64, tag = "7")]
    pub start_time_unix_nano: u64,
    /// `fixed64 end_time_unix_nano = 8`.
    #[prost(fixed64, tag = "8")]
    pub end_time_unix_nano: u64,
    /// `repeated KeyValue attributes = 9`.
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    /// `Status status = 15`: absent means unset.
    #[prost(message, optional, tag = "15")]
    pub status: Option<Status>,
}

/// `Span.SpanKind` (trace/v1/trace.proto): the role of the span in the call, which backends use
/// to draw service maps (a Kafka produce is `Producer`, a fetch `Consumer`, other requests `Client`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SpanKind {
    /// `SPAN_KIND_UNSPECIFIED = 0`.
    Unspecified = 0,
    /// `SPAN_KIND_INTERNAL = 1`.
    Internal = 1,
    /// `SPAN_KIND_SERVER = 2`.
    Server = 2,
    /// `SPAN_KIND_CLIENT = 3`.
    Client = 3,
    /// `SPAN_KIND_PRODUCER = 4`.
    Producer = 4,
    /// `SPAN_KIND_CONSUMER = 5`.
    Consumer = 5,
}

/// `Status` (trace/v1/trace.proto): whether the request failed (a Kafka error code in the response).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// `string message = 2` (field 1 is reserved).
    #[prost(string, tag = "2")]
    pub message: String,
    /// `StatusCode code = 3`: a [`StatusCode`] as `i32`.
    #[prost(enumeration = "StatusCode", tag = "3")]
    pub code: i32,
}

/// `Status.StatusCode` (trace/v1/trace.proto).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum StatusCode {
    /// `STATUS_CODE_UNSET = 0`.
    Unset = 0,
    /// `STATUS_CODE_OK = 1`.
    Ok = 1,
    /// `STATUS_CODE_ERROR = 2`.
    Error = 2,
}

/// `KeyValue` (common/v1/common.proto): one attribute of a span or resource.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// `string key = 1`.
    #[prost(string, tag = "1")]
    pub key: String,
    /// `AnyValue value = 2`.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `AnyValue` (common/v1/common.proto): an attribute value; the `oneof value` is [`any_value::Value`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    /// `oneof value { ... }`: fields 1 to 5 (`kvlist_value = 6`, `bytes_value = 7` and
    /// `string_value_strindex = 8` are left out: the filter never writes them).
    #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5")]
    pub value: Option<any_value::Value>,
}

/// The `oneof value` of [`AnyValue`], in its own module as prost's generated code would have it.
pub mod any_value {
    /// `AnyValue.value` (common/v1/common.proto).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// `string string_value = 1`.
        #[prost(string, tag = "1")]
        StringValue(String),
        /// `bool bool_value = 2`.
        #[prost(bool, tag = "2")]
        BoolValue(bool),
        /// `int64 int_value = 3`.
        #[prost(int64, tag = "3")]
        IntValue(i64),
        /// `double double_value = 4`.
        #[prost(double, tag = "4")]
        DoubleValue(f64),
        /// `ArrayValue array_value = 5`.
        #[prost(message, tag = "5")]
        ArrayValue(super::ArrayValue),
    }
}

/// `ArrayValue` (common/v1/common.proto): a list attribute (e.g. the topics of one request).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrayValue {
    /// `repeated AnyValue values = 1`.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

/// The name of the instrumentation scope every exported span is under.
pub const SCOPE_NAME: &str = "kafka-lens";

/// A string attribute: the common case (topic, client id, API name), without spelling out the
/// nested `KeyValue { value: Some(AnyValue { value: Some(..) }) }` at every call site.
pub fn string_attr(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_owned()))
}

/// An integer attribute (partition, error code, byte and record counts).
pub fn int_attr(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

/// A list-of-strings attribute (e.g. all topics a request touches), as an `ArrayValue` of
/// `string_value`s, which is how OpenTelemetry semantic conventions spell string arrays.
pub fn string_array_attr(key: &str, values: &[String]) -> KeyValue {
    let values = values.iter().map(|v| AnyValue { value: Some(any_value::Value::StringValue(v.clone())) }).collect();
    kv(key, any_value::Value::ArrayValue(ArrayValue { values }))
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }) }
}

/// Encodes one `TraceService/Export` request body for `spans`: a single `ResourceSpans` whose
/// resource carries `service.name = service_name` (what backends group and name services by), with
/// a single `ScopeSpans` under the scope [`SCOPE_NAME`] at `scope_version` (the filter's version,
/// so a backend can tell which build made a span).
pub fn encode_export(service_name: &str, scope_version: &str, spans: Vec<Span>) -> Vec<u8> {
    let scope = InstrumentationScope { name: SCOPE_NAME.to_owned(), version: scope_version.to_owned() };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![string_attr("service.name", service_name)], dropped_attributes_count: 0 }),
            scope_spans: vec![ScopeSpans { scope: Some(scope), spans, schema_url: String::new() }],
            schema_url: String::new(),
        }],
    };
    request.encode_to_vec()
}

/// Reads an `ExportTraceServiceResponse` body: `Some((rejected_spans, error_message))`, which is
/// `(0, "")` for a full success (an empty response or one without `partial_success`), or `None`
/// if the bytes are not a valid response, so the caller can count rejected spans and log why.
pub fn decode_partial_success(bytes: &[u8]) -> Option<(i64, String)> {
    let response = ExportTraceServiceResponse::decode(bytes).ok()?;
    let partial = response.partial_success.unwrap_or_default();
    Some((partial.rejected_spans, partial.error_message))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const START: u64 = 1_700_000_000_000_000_000; // 0x17979cfe362a0000
    const END: u64 = 1_700_000_000_250_000_000; // 0x17979cfe4510b280

    fn trace_id() -> Vec<u8> {
        (0x01..=0x10).collect()
    }

    fn span_id() -> Vec<u8> {
        (0xa0..=0xa7).collect()
    }

    /// A span with one field of every kind the filter writes.
    fn full_span() -> Span {
        Span {
            trace_id: trace_id(),
            span_id: span_id(),
            trace_state: "vendor=1".into(),
            parent_span_id: vec![0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7],
            name: "produce orders".into(),
            kind: SpanKind::Producer as i32,
            start_time_unix_nano: START,
            end_time_unix_nano: END,
            attributes: vec![
                string_attr("messaging.system", "kafka"),
                int_attr("messaging.kafka.destination.partition", -1),
                string_array_attr("kafka_lens.topics", &["orders".to_owned(), "payments".to_owned()]),
                KeyValue { key: "b".into(), value: Some(AnyValue { value: Some(any_value::Value::BoolValue(true)) }) },
                KeyValue { key: "d".into(), value: Some(AnyValue { value: Some(any_value::Value::DoubleValue(0.5)) }) },
            ],
            status: Some(Status { message: "NOT_LEADER_OR_FOLLOWER".into(), code: StatusCode::Error as i32 }),
        }
    }

    #[test]
    fn otlp_export_round_trips_through_prost() {
        let bytes = encode_export("kafka-lens-demo", "0.1.0", vec![full_span(), Span::default()]);
        let request = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(request.resource_spans.len(), 1);
        let rs = &request.resource_spans[0];
        assert_eq!(rs.resource.as_ref().unwrap().attributes, vec![string_attr("service.name", "kafka-lens-demo")]);
        assert_eq!(rs.scope_spans.len(), 1);
        let ss = &rs.scope_spans[0];
        assert_eq!(ss.scope, Some(InstrumentationScope { name: "kafka-lens".into(), version: "0.1.0".into() }));
        assert_eq!(ss.spans, vec![full_span(), Span::default()]);
        assert_eq!(ss.spans[0].kind(), SpanKind::Producer);
        assert_eq!(ss.spans[0].status.as_ref().unwrap().code(), StatusCode::Error);
    }

    /// Every span field, in field-number order (prost, like protoc, writes fields by number).
    #[test]
    fn otlp_span_encodes_to_the_wire_format() {
        let span = Span {
            trace_id: trace_id(),
            span_id: span_id(),
            name: "produce".into(),
            kind: SpanKind::Producer as i32,
            start_time_unix_nano: START,
            end_time_unix_nano: END,
            attributes: vec![string_attr("k", "v"), int_attr("n", 300)],
            status: Some(Status { message: "x".into(), code: StatusCode::Error as i32 }),
            ..Span::default()
        };
        // A tag is (field number << 3) | wire type: 0 varint, 1 fixed64, 2 length-delimited.
        let mut want = vec![0x0a, 0x10]; // 1 trace_id, LEN 16
        want.extend(0x01..=0x10);
        want.extend([0x12, 0x08]); // 2 span_id, LEN 8
        want.extend(0xa0..=0xa7);
        // trace_state (3) and parent_span_id (4) are empty: proto3 leaves defaults out.
        want.extend([0x2a, 0x07]); // 5 name, LEN 7
        want.extend(b"produce");
        want.extend([0x30, 0x04]); // 6 kind, varint 4 = SPAN_KIND_PRODUCER
        want.extend([0x39, 0x00, 0x00, 0x2a, 0x36, 0xfe, 0x9c, 0x97, 0x17]); // 7 start, fixed64 little-endian
        want.extend([0x41, 0x80, 0xb2, 0x10, 0x45, 0xfe, 0x9c, 0x97, 0x17]); // 8 end, fixed64 little-endian
        // 9 attributes, LEN 8: KeyValue { 1 key LEN 1 "k", 2 value LEN 3: AnyValue { 1 string_value LEN 1 "v" } }
        want.extend([0x4a, 0x08, 0x0a, 0x01, b'k', 0x12, 0x03, 0x0a, 0x01, b'v']);
        // 9 attributes, LEN 8: KeyValue { 1 key "n", 2 value LEN 3: AnyValue { 3 int_value varint 300 = ac 02 } }
        want.extend([0x4a, 0x08, 0x0a, 0x01, b'n', 0x12, 0x03, 0x18, 0xac, 0x02]);
        // 15 status, LEN 5: Status { 2 message LEN 1 "x", 3 code varint 2 = STATUS_CODE_ERROR }
        want.extend([0x7a, 0x05, 0x12, 0x01, b'x', 0x18, 0x02]);
        assert_eq!(span.encode_to_vec(), want);
    }

    #[test]
    fn otlp_string_array_attr_encodes_to_the_wire_format() {
        let attr = string_array_attr("t", &["a".to_owned(), "b".to_owned()]);
        // KeyValue { 1 key "t", 2 value LEN 12: AnyValue { 5 array_value LEN 10: ArrayValue {
        //   1 values LEN 3: AnyValue { 1 "a" }, 1 values LEN 3: AnyValue { 1 "b" } } } }
        let want = [0x0a, 0x01, b't', 0x12, 0x0c, 0x2a, 0x0a, 0x0a, 0x03, 0x0a, 0x01, b'a', 0x0a, 0x03, 0x0a, 0x01, b'b'];
        assert_eq!(attr.encode_to_vec(), want);
        let empty = string_array_attr("t", &[]);
        // An empty ArrayValue is still written (the oneof is set), as a zero-length message.
        assert_eq!(empty.encode_to_vec(), [0x0a, 0x01, b't', 0x12, 0x02, 0x2a, 0x00]);
    }

    #[test]
    fn otlp_export_envelope_encodes_to_the_wire_format() {
        let mut want = vec![0x0a, 46]; // ExportTraceServiceRequest: 1 resource_spans, LEN 46
        want.extend([0x0a, 23]); // ResourceSpans: 1 resource, LEN 23
        want.extend([0x0a, 21]); // Resource: 1 attributes, LEN 21
        want.extend([0x0a, 12]); // KeyValue: 1 key, LEN 12
        want.extend(b"service.name");
        want.extend([0x12, 5, 0x0a, 3]); // 2 value LEN 5: AnyValue { 1 string_value LEN 3 }
        want.extend(b"svc");
        want.extend([0x12, 19]); // ResourceSpans: 2 scope_spans, LEN 19
        want.extend([0x0a, 17]); // ScopeSpans: 1 scope, LEN 17 (no spans: nothing for field 2)
        want.extend([0x0a, 10]); // InstrumentationScope: 1 name, LEN 10
        want.extend(b"kafka-lens");
        want.extend([0x12, 3]); // 2 version, LEN 3
        want.extend(b"0.1");
        assert_eq!(want.len(), 48);
        assert_eq!(encode_export("svc", "0.1", Vec::new()), want);
    }

    #[test]
    fn otlp_partial_success_decodes() {
        // 1 partial_success LEN 7: { 1 rejected_spans varint 2, 2 error_message LEN 3 "bad" }
        assert_eq!(decode_partial_success(&[0x0a, 0x07, 0x08, 0x02, 0x12, 0x03, b'b', b'a', b'd']), Some((2, "bad".into())));
        // A full success is an empty message, with or without an empty partial_success.
        assert_eq!(decode_partial_success(&[]), Some((0, String::new())));
        assert_eq!(decode_partial_success(&[0x0a, 0x00]), Some((0, String::new())));
        // Fields this subset does not declare are skipped: 2 (unknown) LEN 1, then the real one.
        assert_eq!(decode_partial_success(&[0x12, 0x01, 0xff, 0x0a, 0x02, 0x08, 0x01]), Some((1, String::new())));
        // Truncated length-delimited field, truncated varint, invalid UTF-8, wire type 7: None.
        assert_eq!(decode_partial_success(&[0x0a, 0x05, 0x08]), None);
        assert_eq!(decode_partial_success(&[0x0a, 0x02, 0x08, 0x80]), None);
        assert_eq!(decode_partial_success(&[0x0a, 0x03, 0x12, 0x01, 0xff]), None);
        assert_eq!(decode_partial_success(&[0x0f]), None);
        // What the Python receiver (tests/otlp_receiver.py, opentelemetry-proto) answers for `partial_success = (3, "nope")`.
        assert_eq!(decode_partial_success(&[0x0a, 0x08, 0x08, 0x03, 0x12, 0x04, b'n', b'o', b'p', b'e']), Some((3, "nope".into())));
        let full = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: 7, error_message: "over quota".into() }),
        };
        assert_eq!(decode_partial_success(&full.encode_to_vec()), Some((7, "over quota".into())));
    }

    /// Writes an export request for the cross-check against the Python `opentelemetry-proto`
    /// classes: `cargo test -p kafka-lens-filter otlp_write_export_fixture -- --ignored`, then
    /// `ExportTraceServiceRequest.FromString(open(path, "rb").read())` in Python.
    #[test]
    #[ignore = "writes a file for a manual cross-check with Python"]
    fn otlp_write_export_fixture() {
        let path = std::env::var("KAFKA_LENS_OTLP_FIXTURE").unwrap_or_else(|_| "/tmp/kafka-lens-otlp-export.bin".into());
        let bytes = encode_export("kafka-lens-demo", "0.1.0", vec![full_span(), Span::default()]);
        std::fs::write(&path, bytes).unwrap();
        eprintln!("wrote {path}");
    }
}
