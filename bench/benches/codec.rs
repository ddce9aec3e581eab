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
//!
//! Not benchmarked because not built yet: version translation.

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
        let after_header = produce.frame.slice(info.header_len.unwrap()..);
        g.throughput(Throughput::Bytes(produce_whole.len() as u64));
        g.bench_function(BenchmarkId::new("scan Produce", label), |b| {
            b.iter(|| scan::scan_in_memory(ApiKey::Produce, produce.version, true, black_box(&after_header)).unwrap())
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
    fn read_into(&mut self, start: usize, len: usize, out: &mut Vec<u8>) -> bool {
        for at in start..start + len {
            let byte = if at < self.front.len() { self.front.get(at) } else { self.rest.get(at - self.front.len()) };
            match byte {
                Some(b) => out.push(*b),
                None => return false,
            }
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

criterion_group! {
    name = benches;
    // Short by default: bench/run.sh runs the whole suite in about two minutes on a small machine.
    // Override from the command line (`-- --measurement-time 5`).
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_millis(1500)).sample_size(30);
    targets = frame_split, header_decode, decode_encode, record_batch, inspect, rewrite
}
criterion_main!(benches);
