//! Real traffic recorded from kafka-python, confluent-kafka and kcat against tansu
//! (`tests/record_traces.py`): the splitter yields the same frames for every chunking of each
//! recorded stream, and every frame decodes, record-batch headers included.

mod common;

use bytes::Bytes;
use common::trace::{self, Dir};
use kafka_lens_codec::body;
use kafka_lens_codec::correlation::{Correlator, InFlight, Match};
use kafka_lens_codec::frame::{ChunkSource, Disposition, FrameEvent, FrameSplitter, SliceSource, SplitterConfig, DEFAULT_MAX_FRAME_SIZE};
use kafka_lens_codec::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_lens_codec::read_ahead::ReadAhead;
use kafka_lens_codec::records::{self, Compression};
use proptest::prelude::*;

fn config(dir: Dir) -> SplitterConfig {
    match dir {
        Dir::Request => SplitterConfig::requests(DEFAULT_MAX_FRAME_SIZE),
        Dir::Response => SplitterConfig::responses(DEFAULT_MAX_FRAME_SIZE),
    }
}

/// Splits `stream` fed in chunks of the given sizes (cycled); captures every third frame. With a
/// `window`, reads go through a [`ReadAhead`] of that size.
fn split(stream: &[u8], dir: Dir, chunk_sizes: &[usize], window: Option<usize>) -> Vec<FrameEvent> {
    let mut splitter = FrameSplitter::new(config(dir));
    let mut events = Vec::new();
    let mut pos = 0;
    let mut sizes = chunk_sizes.iter().cycle();
    while pos < stream.len() {
        let n = (*sizes.next().unwrap()).max(1).min(stream.len() - pos);
        let mut slice = SliceSource(&stream[pos..pos + n]);
        let mut ahead;
        let source: &mut dyn ChunkSource = match window {
            Some(window) => {
                ahead = ReadAhead::new(&mut slice, n, window);
                &mut ahead
            }
            None => &mut slice,
        };
        splitter.push(source, n, |event| {
            let disposition = match &event {
                FrameEvent::Start(start) if start.index % 3 == 0 => Disposition::Capture,
                _ => Disposition::Skip,
            };
            events.push(event);
            disposition
        });
        pos += n;
    }
    assert!(splitter.at_frame_boundary(), "stream ends mid-frame");
    events
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_chunking_yields_the_same_frames(chunk_sizes in prop::collection::vec(
        prop_oneof![4 => 1usize..8, 3 => 8usize..200, 1 => 200usize..70_000], 1..40),
        window in prop::option::of(1usize..2000)) {
        for t in trace::load_all() {
            for dir in [Dir::Request, Dir::Response] {
                let stream = t.stream(dir);
                let whole = split(&stream, dir, &[usize::MAX], None);
                assert_offsets_match_raw_walk(&stream, &whole);
                let chunked = split(&stream, dir, &chunk_sizes, window);
                prop_assert_eq!(&chunked, &whole, "{} {:?}", t.path.display(), dir);
            }
        }
    }
}

/// Every frame start's stream offset is where an independent walk of the size prefixes puts it.
fn assert_offsets_match_raw_walk(stream: &[u8], events: &[FrameEvent]) {
    let mut expected = Vec::new();
    let mut pos = 0usize;
    while pos + 4 <= stream.len() {
        expected.push(pos as u64);
        pos += 4 + i32::from_be_bytes(stream[pos..pos + 4].try_into().unwrap()) as usize;
    }
    let offsets: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            FrameEvent::Start(start) => Some(start.offset),
            _ => None,
        })
        .collect();
    assert_eq!(offsets, expected);
}

fn frames(stream: &[u8], dir: Dir) -> Vec<Bytes> {
    let mut splitter = FrameSplitter::new(config(dir));
    let mut out = Vec::new();
    splitter.push(&mut SliceSource(stream), stream.len(), |event| match event {
        FrameEvent::Complete { body, .. } => {
            out.push(body);
            Disposition::Skip
        }
        FrameEvent::Error(e) => panic!("{e:?}"),
        FrameEvent::Start(_) => Disposition::Capture,
        FrameEvent::Scanned { .. } => Disposition::Skip,
    });
    out
}

#[test]
fn every_recorded_frame_decodes() {
    let mut decoded = 0;
    let mut produced_records = std::collections::BTreeMap::<String, (u64, Vec<Compression>)>::new();
    for t in trace::load_all() {
        let client = t.path.parent().unwrap().file_name().unwrap().to_string_lossy().to_string();
        let mut correlator = Correlator::new(1024);
        for frame in frames(&t.stream(Dir::Request), Dir::Request) {
            let request = body::decode_request(&frame).unwrap_or_else(|e| panic!("{}: {e}", t.path.display()));
            decoded += 1;
            let mut expects_response = true;
            if let RequestKind::Produce(produce) = &request.body {
                expects_response = produce.acks != 0;
                for topic in &produce.topic_data {
                    for partition in &topic.partition_data {
                        let records = partition.records.as_ref().unwrap();
                        let summary = records::summarize(records, i64::MIN);
                        assert_eq!(summary.trailing_bytes, 0);
                        assert_eq!(summary.error, None);
                        let entry = produced_records.entry(client.clone()).or_default();
                        entry.0 += summary.records;
                        entry.1.extend(summary.compression.iter().map(|(c, _)| *c));
                    }
                }
            }
            if expects_response {
                correlator.expect(InFlight {
                    correlation_id: request.header.correlation_id,
                    api_key: request.api_key as i16,
                    api_version: request.header.request_api_version,
                    extra: (),
                });
            }
        }
        for frame in frames(&t.stream(Dir::Response), Dir::Response) {
            let id = i32::from_be_bytes(frame[..4].try_into().unwrap());
            let Match::Found { request, .. } = correlator.answer(id) else { panic!("unmatched response {id}") };
            let key = ApiKey::try_from(request.api_key).unwrap();
            let response = body::decode_response(&frame, key, request.api_version)
                .unwrap_or_else(|e| panic!("{} {key:?} v{}: {e}", t.path.display(), request.api_version));
            if let ResponseKind::Fetch(fetch) = &response.body {
                for topic in &fetch.responses {
                    for partition in &topic.partitions {
                        if let Some(records) = &partition.records {
                            assert_eq!(records::summarize(records, i64::MIN).error, None);
                        }
                    }
                }
            }
            decoded += 1;
        }
    }
    assert!(decoded > 200, "only {decoded} frames");
    // Each client produced 200 records; the batch headers alone count them, without decompressing.
    let expect = |client: &str, codec: Compression| {
        let (records, codecs) = &produced_records[client];
        assert_eq!(*records, 200, "{client}");
        assert!(codecs.iter().all(|c| *c == codec), "{client}: {codecs:?}");
    };
    expect("kafka-python", Compression::Gzip);
    expect("confluent-kafka", Compression::Lz4);
    expect("kcat", Compression::Snappy);
}

/// Counts the reads that reach a slice.
struct Counting<'a> {
    slice: SliceSource<'a>,
    reads: usize,
    bytes: usize,
}

impl ChunkSource for Counting<'_> {
    fn read_into(&mut self, start: usize, len: usize, out: &mut Vec<u8>) -> bool {
        self.reads += 1;
        self.bytes += len;
        self.slice.read_into(start, len, out)
    }
}

/// Reads and bytes read splitting `stream` as one chunk, scanning nothing (headers only).
fn count_reads(stream: &[u8], dir: Dir, window: Option<usize>) -> (usize, usize, usize) {
    let mut counting = Counting { slice: SliceSource(stream), reads: 0, bytes: 0 };
    let mut splitter = FrameSplitter::new(config(dir));
    let mut frames = 0;
    let on_event = |event: FrameEvent| {
        if let FrameEvent::Start(_) = event {
            frames += 1;
        }
        Disposition::Skip
    };
    match window {
        Some(window) => splitter.push(&mut ReadAhead::new(&mut counting, stream.len(), window), stream.len(), on_event),
        None => splitter.push(&mut counting, stream.len(), on_event),
    }
    (frames, counting.reads, counting.bytes)
}

#[test]
fn read_ahead_reads_each_frame_start_at_most_once_and_copies_little_more() {
    let window = kafka_lens_codec::read_ahead::DEFAULT_WINDOW;
    for t in trace::load_all() {
        for dir in [Dir::Request, Dir::Response] {
            let stream = t.stream(dir);
            let (frames, direct_reads, direct_bytes) = count_reads(&stream, dir, None);
            let (_, reads, bytes) = count_reads(&stream, dir, Some(window));
            let name = format!("{} {dir:?}", t.path.display());
            assert_eq!(direct_reads, 2 * frames, "{name}: size, then prefix");
            assert!(reads <= frames, "{name}: {reads} reads for {frames} frames");
            assert!(bytes <= direct_bytes + reads * window, "{name}: {bytes} bytes vs {direct_bytes}");
        }
    }
}
