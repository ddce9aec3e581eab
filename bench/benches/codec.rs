//! Codec and filter micro-benchmarks (native, criterion). Run with
//! `cargo bench -p kafka-lens-bench --features criterion` (bench/run.sh does, and collects the
//! estimates into bench/results/).
//!
//! Groups:
//! * `frame_split`: the frame splitter over pipelined small frames and over one large Produce.
//! * `header_decode`: request header decode from a frame's first bytes, per API.
//! * `decode` / `encode`: full body decode and encode through kafka-protocol, per API.
//! * `record_batch`: batch-header parsing and walking a record set by headers.
//! * `inspect`: what the filter does per Produce request / Fetch response, with 1 KiB vs 1 MiB of
//!   records: the payload-independence check (the filter must not touch record bytes).
//!
//! * `rewrite`: renaming a Produce request's topics under a tenant prefix, 1 KiB vs 1 MiB of
//!   records: the in-place edit alone, and the filter's round trip (Produce and its response) on a
//!   buffer with Envoy's edit semantics, with and without the tenant prefix.
//! * `translation`: old protocol version translation. Current-version traffic (Produce v9 and
//!   Fetch v12, 1 KiB vs 1 MiB of records) through a connection with translation off and on (the
//!   `kafka-4.0` preset); a Produce v2 of 100 × 1 KiB records in a magic-1 message set (none and
//!   gzip) upgraded to v3, and a Fetch v4 response with a 1 MiB batch downgraded to v2 (magic 1):
//!   the record conversion alone, the codec path, and the filter's round trip. Its own short
//!   settings (10 samples, 2 s each): about 50 s. Results: `bench/results/translation/`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing, clippy::unreachable)]

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_lens_bench::fixtures::{self, Sample};
use kafka_lens_bench::shape::Shape;
use kafka_lens_codec::frame::{Disposition, FrameEvent, FrameSplitter, SliceSource, SplitterConfig, DEFAULT_MAX_FRAME_SIZE};
use kafka_lens_codec::kafka_protocol::messages::ApiKey;
use kafka_lens_codec::{body, header, records, scan};
use kafka_lens_filter::config::Config;
use kafka_lens_filter::connection::{Connection, Limits};
use kafka_lens_codec::kafka_protocol::messages::RequestKind;
use kafka_lens_codec::name_edit;
use kafka_lens_codec::rename::{self, Mapped, Renamer};
use kafka_lens_filter::metrics::{Metric, MetricSink};
use kafka_lens_filter::rewrite::TopicRewrite;
use kafka_lens_codec::frame::ChunkSource;
use kafka_lens_filter::flow::StreamBuffer;
use std::collections::HashMap;
use std::rc::Rc;
use kafka_lens_codec::kafka_protocol::messages::{RequestHeader, ResponseKind};
use kafka_lens_codec::kafka_protocol::protocol::StrBytes;
use kafka_lens_codec::legacy::{self, translate};
use kafka_lens_codec::legacy::message_set::{self, LegacyMessage, PartialTail};
use kafka_lens_codec::records::Compression;
use kafka_lens_filter::connection::Verdict;
use kafka_lens_filter::versions::Translation;
use kafka_lens_bench::wire;

/// 1 KiB and 1 MiB of records in one batch (1 and 1024 records of 1 KiB).
const SMALL: Shape = Shape { record_bytes: 1024, records: 1 };
const LARGE: Shape = Shape { record_bytes: 1024, records: 1024 };

/// Discards metrics: the native benchmarks measure the codec and the connection state machine;
/// in Envoy each count is a hostcall, which the end-to-end benchmark includes.
struct NullSink;

impl MetricSink for NullSink {
    fn add(&mut self, metric: Metric, by: i64) {
        black_box((metric, by));
    }

    fn record(&mut self, metric: Metric, value: u64) {
        black_box((metric, value));
    }
}

fn with_prefix(frame: &Bytes) -> Vec<u8> {
    let mut out = (frame.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(frame);
    out
}

fn split_all(stream: &[u8], config: SplitterConfig) -> u64 {
    let mut splitter = FrameSplitter::new(config);
    let mut frames = 0u64;
    splitter.push(&mut SliceSource(stream), stream.len(), |event| {
        if let FrameEvent::Start(start) = event {
            frames += 1;
            black_box(&start.prefix);
        }
        Disposition::Skip
    });
    frames
}

fn frame_split(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_split");
    let requests = SplitterConfig::requests(DEFAULT_MAX_FRAME_SIZE);
    let heartbeat = fixtures::api_samples().unwrap().into_iter().find(|s| s.key == ApiKey::Heartbeat && s.is_request).unwrap();
    let stream = fixtures::pipelined(&heartbeat, 1000);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000 pipelined Heartbeat requests", |b| b.iter(|| split_all(black_box(&stream), requests)));
    for (name, shape) in [("Produce 1KiB", SMALL), ("Produce 1MiB", LARGE)] {
        let frame = with_prefix(&fixtures::produce(shape).unwrap().frame);
        g.throughput(Throughput::Bytes(frame.len() as u64));
        g.bench_function(name, |b| b.iter(|| split_all(black_box(&frame), requests)));
    }
    g.finish();
}

fn header_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("header_decode");
    for sample in fixtures::api_samples().unwrap().into_iter().filter(|s| s.is_request) {
        let prefix = sample.frame.slice(..sample.frame.len().min(512));
        let whole = prefix.len() == sample.frame.len();
        g.bench_function(sample.name.clone(), |b| b.iter(|| header::decode_request_header(black_box(&prefix), whole).unwrap()));
    }
    g.finish();
}

fn decode_one(sample: &Sample) {
    if sample.is_request {
        black_box(body::decode_request(&sample.frame).unwrap());
    } else {
        black_box(body::decode_response(&sample.frame, sample.key, sample.version).unwrap());
    }
}

fn decode_encode(c: &mut Criterion) {
    let samples = fixtures::api_samples().unwrap();
    let mut g = c.benchmark_group("decode");
    for sample in &samples {
        g.throughput(Throughput::Bytes(sample.frame.len() as u64));
        g.bench_function(sample.name.clone(), |b| b.iter(|| decode_one(black_box(sample))));
    }
    g.finish();

    let mut g = c.benchmark_group("encode");
    for sample in &samples {
        g.throughput(Throughput::Bytes(sample.frame.len() as u64));
        if sample.is_request {
            let decoded = body::decode_request(&sample.frame).unwrap();
            g.bench_function(sample.name.clone(), |b| b.iter(|| body::encode_request(black_box(&decoded.header), black_box(&decoded.body)).unwrap()));
        } else {
            let decoded = body::decode_response(&sample.frame, sample.key, sample.version).unwrap();
            g.bench_function(sample.name.clone(), |b| {
                b.iter(|| body::encode_response(black_box(&decoded.header), black_box(&decoded.body), sample.key, sample.version).unwrap())
            });
        }
    }
    g.finish();
}

fn record_batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("record_batch");
    let batch = kafka_lens_bench::wire::record_batch(SMALL).unwrap();
    g.bench_function("parse one batch header", |b| b.iter(|| records::parse_batch_header(black_box(&batch)).unwrap()));
    let set: Vec<u8> = (0..16).flat_map(|_| batch.iter().copied()).collect();
    g.throughput(Throughput::Elements(16));
    g.bench_function("walk 16 batches by headers", |b| b.iter(|| records::summarize(black_box(&set), i64::MIN)));
    g.finish();
}

/// A connection that has seen `request`, so `response` matches a request in flight; both whole
/// frames with size prefixes. Runs request then response, in `chunk`-byte chunks.
fn filter_round_trip(request: &[u8], response: &[u8], chunk: usize) {
    let mut conn = Connection::new(Limits::from(&Config::default()));
    let mut sink = NullSink;
    for part in request.chunks(chunk) {
        black_box(conn.on_request_data(&mut SliceSource(part), part.len(), &mut sink));
    }
    for part in response.chunks(chunk) {
        black_box(conn.on_response_data(&mut SliceSource(part), part.len(), &mut sink));
    }
}

fn inspect(c: &mut Criterion) {
    let mut g = c.benchmark_group("inspect");
    let produce_response = {
        let samples = fixtures::api_samples().unwrap();
        let req = samples.iter().find(|s| s.key == ApiKey::Produce).unwrap();
        let decoded = body::decode_request(&req.frame).unwrap();
        let kafka_lens_codec::kafka_protocol::messages::RequestKind::Produce(p) = &decoded.body else { unreachable!() };
        kafka_lens_bench::wire::response_frame(ApiKey::Produce, req.version, 7, &kafka_lens_bench::wire::produce_response_for(p)).unwrap()
    };
    let fetch_request = with_prefix(&fixtures::fetch_request().unwrap().frame);
    for (label, shape) in [("1KiB", SMALL), ("1MiB", LARGE)] {
        let produce = fixtures::produce(shape).unwrap();
        let produce_whole = with_prefix(&produce.frame);
        let info = header::decode_request_header(&produce.frame, true).unwrap();
        let header_len = info.header_len.unwrap();
        g.throughput(Throughput::Bytes(produce_whole.len() as u64));
        g.bench_function(BenchmarkId::new("scan Produce", label), |b| {
            b.iter(|| scan::scan_in_memory(ApiKey::Produce, produce.version, true, black_box(&produce.frame), header_len).unwrap())
        });
        g.bench_function(BenchmarkId::new("full decode Produce", label), |b| b.iter(|| body::decode_request(black_box(&produce.frame)).unwrap()));
        g.bench_function(BenchmarkId::new("filter Produce+response", label), |b| {
            b.iter(|| filter_round_trip(black_box(&produce_whole), &produce_response, usize::MAX))
        });
        g.bench_function(BenchmarkId::new("filter Produce+response, 16KiB chunks", label), |b| {
            b.iter(|| filter_round_trip(black_box(&produce_whole), &produce_response, 16 * 1024))
        });
        let fetch = with_prefix(&fixtures::fetch_response(shape).unwrap().frame);
        g.throughput(Throughput::Bytes(fetch.len() as u64));
        g.bench_function(BenchmarkId::new("filter Fetch+response", label), |b| {
            b.iter(|| filter_round_trip(&fetch_request, black_box(&fetch), usize::MAX))
        });
    }
    g.finish();
}

/// One callback's buffer as Envoy keeps it: a chain of slices, so a prefix replacement drops the
/// replaced bytes and prepends the new ones without moving the rest (a `Vec` would move it all,
/// which Envoy does not).
struct ChainBuf<'a> {
    front: Vec<u8>,
    rest: &'a [u8],
}

impl ChunkSource for ChainBuf<'_> {
    /// Copies slices, as Envoy's `get_buffer` does (a byte-at-a-time loop would add milliseconds
    /// of harness to the groups that read whole 1 MiB frames back).
    fn read_into(&mut self, start: usize, len: usize, out: &mut Vec<u8>) -> bool {
        let front = self.front.len();
        let Some(end) = start.checked_add(len).filter(|end| *end <= front + self.rest.len()) else { return false };
        if start < front {
            out.extend_from_slice(&self.front[start..end.min(front)]);
        }
        if end > front {
            out.extend_from_slice(&self.rest[start.max(front) - front..end - front]);
        }
        true
    }
}

impl StreamBuffer for ChainBuf<'_> {
    fn replace_prefix(&mut self, len: usize, data: &[u8]) -> bool {
        // Benchmarked edits start in `rest` (nothing was prepended before them).
        if !self.front.is_empty() || len > self.rest.len() {
            return false;
        }
        self.rest = &self.rest[len..];
        self.front = data.to_vec();
        true
    }
}

/// A Produce request and the response to it, each delivered whole in one callback on Envoy-like
/// buffers (prefix edits applied); `rewrite` is the filter's `topic_rewrite` (or none).
fn edited_round_trip(rewrite: &std::rc::Rc<TopicRewrite>, request: &[u8], response: &[u8]) {
    let mut conn = Connection::new(Limits::from(&Config::default())).with_topic_rewrite(std::rc::Rc::clone(rewrite));
    let mut sink = NullSink;
    let mut buf = ChainBuf { front: Vec::new(), rest: request };
    black_box(conn.on_request_data(&mut buf, request.len(), &mut sink));
    black_box(buf.front.len());
    let mut buf = ChainBuf { front: Vec::new(), rest: response };
    black_box(conn.on_response_data(&mut buf, response.len(), &mut sink));
}

fn rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("rewrite");
    let config = Config::parse(br#"{"topic_rewrite": {"tenants": [{"name": "a", "prefix": "tenant-a."}]}}"#).unwrap();
    let tenant = std::rc::Rc::new(TopicRewrite::new(&config.topic_rewrite));
    let renamer = Renamer::new(&std::collections::HashMap::new(), Some("tenant-a.".into()));
    let none = std::rc::Rc::new(TopicRewrite::default());
    for (label, shape) in [("1KiB", SMALL), ("1MiB", LARGE)] {
        let produce = fixtures::produce(shape).unwrap();
        let whole = with_prefix(&produce.frame);
        let info = header::decode_request_header(&produce.frame, true).unwrap();
        let header_len = info.header_len.unwrap();
        let first = &whole[..(4 + 512).min(whole.len())];
        let body_len = produce.frame.len() as u32;
        g.throughput(Throughput::Bytes(whole.len() as u64));
        g.bench_function(BenchmarkId::new("name_edit Produce from its first 512 bytes", label), |b| {
            b.iter(|| {
                let mut rename = |kind, name: &str| match renamer.to_broker(kind, name) {
                    Mapped::Renamed(n) => Some(n),
                    _ => None,
                };
                name_edit::produce_request(black_box(first), body_len, header_len, produce.version, &mut rename).unwrap().unwrap()
            })
        });
        // The broker's answer names the broker's topic.
        let mut renamed = body::decode_request(&produce.frame).unwrap();
        rename::request_to_broker(&mut renamed.body, &renamer);
        let RequestKind::Produce(p) = &renamed.body else { unreachable!() };
        let response = kafka_lens_bench::wire::response_frame(ApiKey::Produce, produce.version, 7, &kafka_lens_bench::wire::produce_response_for(p)).unwrap();
        g.bench_function(BenchmarkId::new("filter Produce+response, tenant prefix", label), |b| {
            b.iter(|| edited_round_trip(&tenant, black_box(&whole), &response))
        });
        g.bench_function(BenchmarkId::new("filter Produce+response, no rewrite", label), |b| {
            b.iter(|| edited_round_trip(&none, black_box(&whole), &response))
        });
    }
    g.finish();
}

/// A connection's configuration: its limits and its broker version table (shared by every
/// connection of a VM, as the root context shares it).
struct Configured {
    limits: Limits,
    translation: Rc<Translation>,
}

impl Configured {
    fn parse(json: &str) -> Self {
        let config = Config::parse(json.as_bytes()).unwrap();
        Configured { limits: Limits::from(&config), translation: Rc::new(Translation::new(&config.version_translation)) }
    }

    fn connection(&self) -> Connection {
        Connection::new(self.limits).with_translation(Rc::clone(&self.translation))
    }
}

/// A request and its response, each whole in one callback on Envoy-like buffers, through a new
/// connection: the verdicts and the buffers as they were left (what went on to the other side).
fn exchange<'a>(setup: &Configured, request: &'a [u8], response: &'a [u8], sink: &mut dyn MetricSink) -> [(Verdict, ChainBuf<'a>); 2] {
    let mut conn = setup.connection();
    let mut up = ChainBuf { front: Vec::new(), rest: request };
    let sent = conn.on_request_data(&mut up, request.len(), sink);
    let mut down = ChainBuf { front: Vec::new(), rest: response };
    let answered = conn.on_response_data(&mut down, response.len(), sink);
    [(sent, up), (answered, down)]
}

/// What an [`exchange`] forwarded each way, checked to be forwarded (`Continue`), not paused or closed.
fn forwarded(setup: &Configured, request: &[u8], response: &[u8]) -> (Vec<u8>, Vec<u8>, HashMap<Metric, i64>) {
    let mut sink = HashMap::new();
    let [(sent, up), (answered, down)] = exchange(setup, request, response, &mut sink);
    assert_eq!((sent, answered), (Verdict::Continue, Verdict::Continue), "{sink:?}");
    let join = |b: &ChainBuf<'_>| [b.front.as_slice(), b.rest].concat();
    (join(&up), join(&down), sink)
}

fn translated(sink: &HashMap<Metric, i64>, api: &'static str, version: &'static str) -> bool {
    sink.get(&Metric::TranslatedRequests { api, version }) == Some(&1) && sink.get(&Metric::TranslatedResponses { api }) == Some(&1)
}

/// A whole old-version request frame: size prefix, request header v1 (correlation id 7), `body`.
fn old_request_frame(key: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
    let client_id = b"bench-client";
    let mut frame = Vec::with_capacity(body.len() + 32);
    frame.extend_from_slice(&((10 + client_id.len() + body.len()) as u32).to_be_bytes());
    frame.extend_from_slice(&(key as i16).to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&7i32.to_be_bytes());
    frame.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    frame.extend_from_slice(client_id);
    frame.extend_from_slice(body);
    frame
}

/// A current-version request frame (correlation id 7) with its size prefix.
fn request_frame(key: ApiKey, version: i16, body: &RequestKind) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("bench-client")));
    body::encode_request(&header, body).unwrap().to_vec()
}

/// `count` magic-1 messages of `bytes`-byte values: pseudo-random hex digits, so gzip has real
/// work to do (about 2:1; the repeating pattern of `wire::record_batch` compresses ~100:1).
fn legacy_messages(count: usize, bytes: usize) -> Vec<LegacyMessage> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..count)
        .map(|i| {
            let value: Vec<u8> = (0..bytes)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    b"0123456789abcdef"[(state >> 60) as usize]
                })
                .collect();
            let offset = i as i64;
            LegacyMessage { offset, timestamp: Some(1_700_000_000_000 + offset), log_append_time: false, key: None, value: Some(value.into()) }
        })
        .collect()
}

/// Translation off vs on (`kafka-4.0` preset) for current-version traffic, and the cost of what
/// it translates: a Produce v2 (magic-1 message set) upgraded to v3, a Fetch v4 response with a
/// 1 MiB batch downgraded to Fetch v2 (magic 1). Short: about 40 s on a 2-core machine.
fn translation(c: &mut Criterion) {
    let mut g = c.benchmark_group("translation");
    g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    let off = Configured::parse("{}");
    let on = Configured::parse(r#"{"version_translation": {"enabled": true, "broker_preset": "kafka-4.0"}}"#);

    // 1. Clients on supported versions: Produce v9 and Fetch v12 as the `inspect` group builds them.
    let fetch_request = with_prefix(&fixtures::fetch_request().unwrap().frame);
    for (label, shape) in [("1KiB", SMALL), ("1MiB", LARGE)] {
        let produce = fixtures::produce(shape).unwrap();
        let produce_whole = with_prefix(&produce.frame);
        let decoded = body::decode_request(&produce.frame).unwrap();
        let RequestKind::Produce(p) = &decoded.body else { unreachable!() };
        let produce_response = wire::response_frame(ApiKey::Produce, produce.version, 7, &wire::produce_response_for(p)).unwrap();
        let fetch = with_prefix(&fixtures::fetch_response(shape).unwrap().frame);
        for (name, request, response) in [("Produce v9", &produce_whole, &produce_response), ("Fetch v12", &fetch_request, &fetch)] {
            // Passed through untouched, with the same metrics, either way.
            let (a, b) = (forwarded(&off, request, response), forwarded(&on, request, response));
            assert!(a.0 == *request && a.1 == *response && b.0 == *request && b.1 == *response && a.2 == b.2, "{name} {label}");
            g.throughput(Throughput::Bytes((request.len() + response.len()) as u64));
            for (setting, setup) in [("translation off", &off), ("translation on (kafka-4.0)", &on)] {
                g.bench_function(BenchmarkId::new(format!("{name}+response, {setting}"), label), |b| {
                    b.iter(|| black_box(exchange(setup, black_box(request), response, &mut NullSink)))
                });
            }
        }
    }

    // 2a. Produce v2: 100 records of 1 KiB in a magic-1 message set, to a Kafka 4.0 broker (v3).
    let messages = legacy_messages(100, 1024);
    let payload = Throughput::Bytes(100 * 1024);
    for (label, codec) in [("none", Compression::None), ("gzip", Compression::Gzip)] {
        let set = message_set::encode_message_set(&messages, 1, codec).unwrap();
        let RequestKind::Produce(old) = wire::produce_request("orders-0", 0, set.clone(), 1) else { unreachable!() };
        let frame = old_request_frame(ApiKey::Produce, 2, &legacy::produce::encode_request(2, &old).unwrap());
        let body_bytes = Bytes::copy_from_slice(&frame[4..]);
        let upgrade = || {
            let (header, header_len) = translate::request_header(&body_bytes).unwrap();
            let kind = translate::upgrade(ApiKey::Produce, 2, &body_bytes[header_len..]).unwrap();
            body::encode_request(&header.with_request_api_version(3), &kind).unwrap()
        };
        let upgraded = body::decode_request(&upgrade().slice(4..)).unwrap();
        let RequestKind::Produce(p) = &upgraded.body else { unreachable!() };
        let response = wire::response_frame(ApiKey::Produce, 3, 7, &wire::produce_response_for(p)).unwrap();
        // The filter sends the broker what the codec builds, and answers the client in v2.
        let (to_broker, to_client, sink) = forwarded(&on, &frame, &response);
        assert!(translated(&sink, "Produce", "2"), "{sink:?}");
        assert_eq!(to_broker, upgrade().to_vec());
        let batch = p.topic_data[0].partition_data[0].records.clone().unwrap();
        assert_eq!(message_set::read_record_batches(&batch).unwrap()[0].records.len(), 100);
        assert_eq!(legacy::produce::decode_response(2, &to_client[8..]).unwrap().responses.len(), 1);

        g.throughput(payload.clone());
        g.bench_function(BenchmarkId::new("Produce v2 100x1KiB: message_set_to_batch", label), |b| {
            b.iter(|| message_set::message_set_to_batch(black_box(&set)).unwrap())
        });
        g.bench_function(BenchmarkId::new("Produce v2 100x1KiB: codec upgrade+encode v3", label), |b| b.iter(&upgrade));
        g.bench_function(BenchmarkId::new("Produce v2 100x1KiB: filter Produce+response, translated", label), |b| {
            b.iter(|| black_box(exchange(&on, black_box(&frame), &response, &mut NullSink)))
        });
        if codec == Compression::None {
            // The same records from a current client (Produce v9, one batch): what translation adds.
            let current = request_frame(ApiKey::Produce, 9, &wire::produce_request("orders-0", 0, batch, 1));
            let response = wire::response_frame(ApiKey::Produce, 9, 7, &wire::produce_response_for(p)).unwrap();
            let (to_broker, _, sink) = forwarded(&on, &current, &response);
            assert!(to_broker == current && !translated(&sink, "Produce", "9"));
            g.bench_function(BenchmarkId::new("Produce v9 100x1KiB: filter Produce+response, current client", label), |b| {
                b.iter(|| black_box(exchange(&on, black_box(&current), &response, &mut NullSink)))
            });
        }
    }

    // 2b. Fetch v2 (magic 1) from a Kafka 4.0 broker, answered at v4 with one 1 MiB record batch.
    let batch = wire::record_batch(LARGE).unwrap();
    let RequestKind::Fetch(fetch) = wire::fetch_request("orders-0", 0, 0, 1 << 20) else { unreachable!() };
    let request = old_request_frame(ApiKey::Fetch, 2, &legacy::fetch::encode_request(2, &fetch).unwrap());
    let mut answer = wire::fetch_response_for(&fetch, &batch);
    if let ResponseKind::Fetch(r) = &mut answer {
        // v4 has no log start offset (v5+): the crate refuses a non-default value.
        r.responses.iter_mut().flat_map(|t| t.partitions.iter_mut()).for_each(|p| p.log_start_offset = -1);
    }
    let response = wire::response_frame(ApiKey::Fetch, 4, 7, &answer).unwrap();
    let response_body = Bytes::copy_from_slice(&response[4..]);
    let downgrade = || {
        let decoded = body::decode_response(&response_body, ApiKey::Fetch, 4).unwrap();
        translate::downgrade(2, &decoded.body).unwrap()
    };
    let down = downgrade();
    assert_eq!((down.records.records, down.unsupported_compression), (1024, 0));
    let (to_broker, to_client, sink) = forwarded(&on, &request, &response);
    assert!(translated(&sink, "Fetch", "2"), "{sink:?}");
    assert_eq!(body::decode_request(&Bytes::copy_from_slice(&to_broker[4..])).unwrap().header.request_api_version, 4);
    assert_eq!(to_client[8..], down.body[..]);
    let old = legacy::fetch::decode_response(2, &to_client[8..]).unwrap();
    let set = old.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(message_set::read_message_set(&set, PartialTail::Reject).unwrap().len(), 1024);

    g.throughput(Throughput::Bytes(LARGE.payload_bytes() as u64));
    g.bench_function(BenchmarkId::new("Fetch v4 to v2 1MiB: batches_to_message_set", "magic 1"), |b| {
        b.iter(|| message_set::batches_to_message_set(black_box(&batch), 1).unwrap())
    });
    g.bench_function(BenchmarkId::new("Fetch v4 to v2 1MiB: codec decode v4+downgrade", "magic 1"), |b| b.iter(&downgrade));
    g.bench_function(BenchmarkId::new("Fetch v2 1MiB: filter Fetch+response, translated", "magic 1"), |b| {
        b.iter(|| black_box(exchange(&on, black_box(&request), &response, &mut NullSink)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    // Short by default: bench/run.sh runs the whole suite in about three minutes on a small machine
    // (`translation` sets its own, shorter, sample count).
    // Override from the command line (`-- --measurement-time 5`).
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_millis(1500)).sample_size(30);
    targets = frame_split, header_decode, decode_encode, record_batch, inspect, rewrite, translation
}
criterion_main!(benches);
