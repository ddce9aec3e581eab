//! OpenTelemetry spans for Kafka requests: the `tracing` configuration, which request/response
//! pairs become spans (sampling), what a span says (OpenTelemetry messaging semantic conventions),
//! and the bounded queue the root context exports from (see `context.rs`, `otlp.rs`).
//!
//! A connection drafts a span per request only when tracing is on; the draft gathers what the
//! request and its response show as they pass (topics, group, records, bytes, error) and becomes a
//! span when the response is read, if sampled: by ratio, always on an error, always above a
//! latency threshold. Spans wait in a queue of bounded size shared by the VM's connections; the
//! root context sends them in batches on its tick. A full queue drops and counts, so a slow or
//! absent collector never holds Kafka traffic or grows memory.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use serde::Deserialize;

use crate::otlp::{self, KeyValue, Span, SpanKind, Status, StatusCode};

/// `tracing` in the filter configuration; off unless `collector_cluster` is set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// The Envoy cluster of the OTLP/gRPC collector (HTTP/2). Empty: no spans.
    pub collector_cluster: String,
    /// Requests sampled by chance, per million (1,000,000: every request).
    pub sample_per_million: u32,
    /// Sample every request whose response carries an error code.
    pub sample_errors: bool,
    /// Sample every request slower than this (milliseconds; 0: off).
    pub sample_slower_than_ms: u64,
    /// `service.name` of the spans' resource.
    pub service_name: String,
    /// Spans waiting for export per Wasm VM; beyond, new spans are dropped and counted.
    pub max_queued_spans: usize,
    /// Spans per export call.
    pub max_batch_spans: usize,
    /// Export call timeout.
    pub export_timeout_ms: u64,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            collector_cluster: String::new(),
            sample_per_million: 10_000,
            sample_errors: true,
            sample_slower_than_ms: 0,
            service_name: "kafka-lens".into(),
            max_queued_spans: 2048,
            max_batch_spans: 512,
            export_timeout_ms: 5000,
        }
    }
}

impl TracingConfig {
    pub fn is_enabled(&self) -> bool {
        !self.collector_cluster.is_empty()
    }

    /// Errors are `(field path, message)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let fail = |f: &str, m: String| Err((format!("tracing.{f}"), m));
        if self.sample_per_million > 1_000_000 {
            return fail("sample_per_million", format!("must be at most 1000000, got {}", self.sample_per_million));
        }
        if !(1..=100_000).contains(&self.max_queued_spans) {
            return fail("max_queued_spans", format!("must be between 1 and 100000, got {}", self.max_queued_spans));
        }
        if !(1..=self.max_queued_spans).contains(&self.max_batch_spans) {
            return fail("max_batch_spans", format!("must be between 1 and max_queued_spans, got {}", self.max_batch_spans));
        }
        if !(1..=60_000).contains(&self.export_timeout_ms) {
            return fail("export_timeout_ms", format!("must be between 1 and 60000, got {}", self.export_timeout_ms));
        }
        if self.service_name.is_empty() {
            return fail("service_name", "must not be empty".into());
        }
        Ok(())
    }
}

/// What a request and its response show, until the span is decided.
#[derive(Debug, Clone, Default)]
pub struct SpanDraft {
    pub api: &'static str,
    pub api_key: i16,
    pub version: i16,
    pub client_id: Option<String>,
    pub peer: Option<String>,
    pub start_nanos: u64,
    pub end_nanos: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub topics: Vec<String>,
    pub group: Option<String>,
    pub records: Option<u64>,
    /// Partitions the request named (Produce, Fetch); one becomes `messaging.destination.partition.id`.
    pub partitions: Vec<i32>,
    pub error: Option<&'static str>,
    /// Chosen by the ratio when the request was read.
    pub sampled: bool,
}

/// The spans of a VM waiting for export, bounded.
#[derive(Debug, Default)]
pub struct SpanQueue {
    spans: VecDeque<Span>,
    capacity: usize,
    /// Spans dropped because the queue was full, not yet counted in the metrics.
    pub dropped: u64,
    /// Pseudo-random state for sampling and ids (xorshift64*).
    state: u64,
}

/// The queue as the VM's contexts share it.
pub type SharedSpans = Rc<RefCell<SpanQueue>>;

impl SpanQueue {
    pub fn new(capacity: usize, seed: u64) -> Self {
        SpanQueue { spans: VecDeque::new(), capacity, dropped: 0, state: seed | 1 }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A sampling decision with probability `per_million` / 1,000,000.
    pub fn chance(&mut self, per_million: u32) -> bool {
        per_million >= 1_000_000 || self.next() % 1_000_000 < u64::from(per_million)
    }

    pub fn push(&mut self, span: Span) {
        if self.spans.len() >= self.capacity {
            self.dropped += 1;
        } else {
            self.spans.push_back(span);
        }
    }

    /// Up to `max` spans for one export.
    pub fn take_batch(&mut self, max: usize) -> Vec<Span> {
        let n = max.min(self.spans.len());
        self.spans.drain(..n).collect()
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// The operation of an API in the messaging conventions: (name, type, span kind).
fn operation(api: &'static str) -> (&'static str, Option<&'static str>, SpanKind) {
    match api {
        "Produce" => ("send", Some("send"), SpanKind::Producer),
        "Fetch" => ("poll", Some("receive"), SpanKind::Consumer),
        "OffsetCommit" | "TxnOffsetCommit" => ("commit", Some("settle"), SpanKind::Client),
        _ => (api, None, SpanKind::Client),
    }
}

/// Queues the span of a finished draft if it is sampled; returns whether it was.
pub fn finish(draft: SpanDraft, config: &TracingConfig, queue: &mut SpanQueue) -> bool {
    let slow = config.sample_slower_than_ms > 0 && draft.end_nanos.saturating_sub(draft.start_nanos) >= config.sample_slower_than_ms * 1_000_000;
    if !(draft.sampled || (config.sample_errors && draft.error.is_some()) || slow) {
        return false;
    }
    let (op_name, op_type, kind) = operation(draft.api);
    let mut attributes: Vec<KeyValue> = vec![
        otlp::string_attr("messaging.system", "kafka"),
        otlp::string_attr("messaging.operation.name", op_name),
        otlp::int_attr("kafka.api_key", i64::from(draft.api_key)),
        otlp::int_attr("kafka.api_version", i64::from(draft.version)),
        otlp::int_attr("kafka.request.bytes", draft.request_bytes as i64),
        otlp::int_attr("kafka.response.bytes", draft.response_bytes as i64),
    ];
    if let Some(t) = op_type {
        attributes.push(otlp::string_attr("messaging.operation.type", t));
    }
    if let Some(id) = &draft.client_id {
        attributes.push(otlp::string_attr("messaging.client.id", id));
    }
    if let [topic] = draft.topics.as_slice() {
        attributes.push(otlp::string_attr("messaging.destination.name", topic));
    } else if !draft.topics.is_empty() {
        attributes.push(otlp::string_array_attr("messaging.kafka.destination.names", &draft.topics));
    }
    if let Some(group) = &draft.group {
        attributes.push(otlp::string_attr("messaging.consumer.group.name", group));
    }
    if let [partition] = draft.partitions.as_slice() {
        attributes.push(otlp::string_attr("messaging.destination.partition.id", &partition.to_string()));
    }
    if let Some(records) = draft.records {
        attributes.push(otlp::int_attr("messaging.batch.message_count", records as i64));
    }
    if let Some(peer) = &draft.peer {
        if let Some((address, port)) = peer.rsplit_once(':') {
            attributes.push(otlp::string_attr("network.peer.address", address.trim_start_matches('[').trim_end_matches(']')));
            if let Ok(port) = port.parse::<i64>() {
                attributes.push(otlp::int_attr("network.peer.port", port));
            }
        }
    }
    if let Some(error) = draft.error {
        attributes.push(otlp::string_attr("error.type", error));
    }
    let name = match draft.topics.as_slice() {
        [topic] => format!("{op_name} {topic}"),
        _ => op_name.to_owned(),
    };
    let trace_id = [queue.next().to_le_bytes(), queue.next().to_le_bytes()].concat();
    let span_id = queue.next().to_le_bytes().to_vec();
    let status = Status {
        message: draft.error.map(str::to_owned).unwrap_or_default(),
        code: if draft.error.is_some() { StatusCode::Error as i32 } else { StatusCode::Unset as i32 },
    };
    queue.push(Span {
        trace_id,
        span_id,
        name,
        kind: kind as i32,
        start_time_unix_nano: draft.start_nanos,
        end_time_unix_nano: draft.end_nanos.max(draft.start_nanos),
        attributes,
        status: Some(status),
        ..Span::default()
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> SpanDraft {
        SpanDraft {
            api: "Produce",
            api_key: 0,
            version: 9,
            client_id: Some("shop".into()),
            peer: Some("10.0.0.7:51234".into()),
            start_nanos: 1_000,
            end_nanos: 3_000_000,
            request_bytes: 1200,
            response_bytes: 60,
            topics: vec!["orders".into()],
            records: Some(10),
            partitions: vec![3],
            ..SpanDraft::default()
        }
    }

    #[test]
    fn sampling_by_ratio_error_and_latency() {
        let mut queue = SpanQueue::new(10, 7);
        let config = TracingConfig { collector_cluster: "otel".into(), sample_per_million: 0, sample_slower_than_ms: 2, ..TracingConfig::default() };
        // Not chosen, no error, under 2 ms... 3 ms: slow.
        assert!(finish(draft(), &config, &mut queue));
        let quick = SpanDraft { end_nanos: 1_000_000, ..draft() };
        assert!(!finish(quick.clone(), &config, &mut queue));
        assert!(finish(SpanDraft { error: Some("NOT_LEADER_OR_FOLLOWER"), ..quick.clone() }, &config, &mut queue));
        assert!(finish(SpanDraft { sampled: true, ..quick }, &config, &mut queue));
        assert_eq!(queue.len(), 3);
        let spans = queue.take_batch(2);
        assert_eq!(spans.len(), 2);
        let span = &spans[0];
        assert_eq!(span.name, "send orders");
        assert_eq!(span.kind, SpanKind::Producer as i32);
        assert_eq!((span.trace_id.len(), span.span_id.len()), (16, 8));
        let keys: Vec<&str> = span.attributes.iter().map(|a| a.key.as_str()).collect();
        for key in [
            "messaging.system",
            "messaging.destination.name",
            "messaging.destination.partition.id",
            "messaging.client.id",
            "messaging.batch.message_count",
            "network.peer.address",
        ] {
            assert!(keys.contains(&key), "{key} in {keys:?}");
        }
        assert_eq!(spans[1].status.as_ref().map(|s| s.code), Some(StatusCode::Error as i32));
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let mut queue = SpanQueue::new(2, 1);
        let config = TracingConfig { collector_cluster: "otel".into(), sample_per_million: 1_000_000, ..TracingConfig::default() };
        for _ in 0..5 {
            finish(SpanDraft { sampled: true, ..draft() }, &config, &mut queue);
        }
        assert_eq!((queue.len(), queue.dropped), (2, 3));
    }

    #[test]
    fn chance_follows_the_ratio() {
        let mut queue = SpanQueue::new(1, 42);
        let hits = (0..100_000).filter(|_| queue.chance(250_000)).count();
        assert!((23_000..27_000).contains(&hits), "{hits}");
        assert!(queue.chance(1_000_000));
        assert!(!queue.chance(0));
    }
}
