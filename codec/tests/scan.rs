//! The streaming scan agrees with the full decode on real traffic under any chunking, reads only
//! structural bytes (never record payloads), and survives any input.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::trace::{self, Dir};
use kafka_lens_codec::correlation::{Correlator, InFlight, Match};
use kafka_lens_codec::frame::{ChunkSource, Disposition, FrameEvent, FrameSplitter, SliceSource, SplitterConfig, DEFAULT_MAX_FRAME_SIZE};
use kafka_lens_codec::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_lens_codec::scan::{self, BodyScan, Scanned};
use kafka_lens_codec::{body, header, records};
use proptest::prelude::*;

/// What the full decode says a frame carries: (topic, partition, records, batches, records_len).
type Shape = Vec<(String, i32, u64, u32, u64)>;

fn shape_of_scan(s: &Scanned) -> Shape {
    s.topics()
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.clone(), p.partition, p.records.records, p.records.batches, p.records_len)))
        .collect()
}

fn shape_of_records(topic: &str, partition: i32, records: Option<&Bytes>) -> (String, i32, u64, u32, u64) {
    let (n, batches, len) = records.map_or((0, 0, 0), |r| {
        let s = records::summarize(r, i64::MIN);
        (s.records, s.batches, r.len() as u64)
    });
    (topic.to_string(), partition, n, batches, len)
}

/// Counts the bytes a splitter actually reads from the source.
struct Counting<'a> {
    inner: SliceSource<'a>,
    read: usize,
}

impl ChunkSource for Counting<'_> {
    fn read_into(&mut self, start: usize, len: usize, out: &mut Vec<u8>) -> bool {
        self.read += len;
        self.inner.read_into(start, len, out)
    }
}

/// Runs the splitter over `stream` in chunks, scanning Produce requests (requests) or Fetch
/// responses (with `versions` giving each response's API and version). Returns the scans in frame
/// order and the bytes read.
fn scan_stream(stream: &[u8], dir: Dir, chunk_sizes: &[usize], versions: &[(ApiKey, i16)]) -> (Vec<(u64, Scanned)>, usize) {
    scan_stream_with(stream, dir, chunk_sizes, versions, false)
}

/// [`scan_stream`], by the streaming parser alone when `streaming_only` (no Produce request read
/// from its first bytes).
fn scan_stream_with(stream: &[u8], dir: Dir, chunk_sizes: &[usize], versions: &[(ApiKey, i16)], streaming_only: bool) -> (Vec<(u64, Scanned)>, usize) {
    let config = match dir {
        Dir::Request => SplitterConfig::requests(DEFAULT_MAX_FRAME_SIZE),
        Dir::Response => SplitterConfig::responses(DEFAULT_MAX_FRAME_SIZE),
    };
    let mut splitter = FrameSplitter::new(config);
    let mut out = Vec::new();
    let mut read = 0;
    let mut pos = 0;
    let mut sizes = chunk_sizes.iter().cycle();
    while pos < stream.len() {
        let n = (*sizes.next().unwrap()).max(1).min(stream.len() - pos);
        let mut source = Counting { inner: SliceSource(&stream[pos..pos + n]), read: 0 };
        splitter.push(&mut source, n, |event| match event {
            FrameEvent::Start(start) => {
                let prefix = &start.prefix;
                match dir {
                    Dir::Request => {
                        let info = header::decode_request_header(prefix, start.is_whole()).unwrap();
                        match (info.id.api_key, info.header_len) {
                            (0, Some(h)) => {
                                let scan = BodyScan::new(ApiKey::Produce, info.id.api_version, true, prefix, h);
                                Disposition::Scan(Box::new(if streaming_only { scan.streaming_only() } else { scan }))
                            }
                            _ => Disposition::Skip,
                        }
                    }
                    Dir::Response => match versions.get(start.index as usize) {
                        Some(&(ApiKey::Fetch, v)) => {
                            let (_, h) = header::decode_response_header(prefix, ApiKey::Fetch, v).unwrap();
                            Disposition::Scan(Box::new(BodyScan::new(ApiKey::Fetch, v, false, prefix, h)))
                        }
                        _ => Disposition::Skip,
                    },
                }
            }
            FrameEvent::Scanned { index, result } => {
                out.push((index, result.unwrap_or_else(|e| panic!("frame {index}: {e:?}"))));
                Disposition::Skip
            }
            FrameEvent::Error(e) => panic!("{e:?}"),
            FrameEvent::Complete { .. } => Disposition::Skip,
        });
        read += source.read;
        pos += n;
    }
    (out, read)
}

/// Full decode of every frame in a trace: Produce shapes by request index, Fetch shapes by
/// response index, and each response's (api, version).
fn full_decode(t: &trace::Trace) -> (Vec<(u64, Shape)>, Vec<(u64, Shape)>, Vec<(ApiKey, i16)>) {
    let frames = |dir: Dir| {
        let stream = t.stream(dir);
        let mut out = Vec::new();
        let config = if dir == Dir::Request { SplitterConfig::requests(DEFAULT_MAX_FRAME_SIZE) } else { SplitterConfig::responses(DEFAULT_MAX_FRAME_SIZE) };
        FrameSplitter::new(config).push(&mut SliceSource(&stream), stream.len(), |e| match e {
            FrameEvent::Complete { body, .. } => {
                out.push(body);
                Disposition::Skip
            }
            _ => Disposition::Capture,
        });
        out
    };
    let mut produce = Vec::new();
    let mut correlator = Correlator::new(4096);
    for (i, frame) in frames(Dir::Request).into_iter().enumerate() {
        let r = body::decode_request(&frame).unwrap();
        let mut acks = 1;
        if let RequestKind::Produce(p) = &r.body {
            acks = p.acks;
            produce.push((i as u64, p.topic_data.iter().flat_map(|t| t.partition_data.iter().map(|pd| shape_of_records(t.name.as_str(), pd.index, pd.records.as_ref()))).collect()));
        }
        if acks != 0 {
            correlator.expect(InFlight { correlation_id: r.header.correlation_id, api_key: r.api_key as i16, api_version: r.header.request_api_version, extra: () });
        }
    }
    let mut fetch = Vec::new();
    let mut versions = Vec::new();
    for (i, frame) in frames(Dir::Response).into_iter().enumerate() {
        let id = i32::from_be_bytes(frame[..4].try_into().unwrap());
        let Match::Found { request, .. } = correlator.answer(id) else { panic!("unmatched") };
        let key = ApiKey::try_from(request.api_key).unwrap();
        versions.push((key, request.api_version));
        if let ResponseKind::Fetch(f) = body::decode_response(&frame, key, request.api_version).unwrap().body {
            fetch.push((i as u64, f.responses.iter().flat_map(|t| t.partitions.iter().map(|p| shape_of_records(t.topic.as_str(), p.partition_index, p.records.as_ref()))).collect()));
        }
    }
    (produce, fetch, versions)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn streaming_scan_matches_full_decode_on_real_traffic(chunk_sizes in prop::collection::vec(
        prop_oneof![4 => 1usize..8, 3 => 8usize..300, 1 => 300usize..70_000], 1..30)) {
        let mut produce_frames = 0;
        let mut fetch_frames = 0;
        for t in trace::load_all() {
            let (produce, fetch, versions) = full_decode(&t);
            let (scanned, _) = scan_stream(&t.stream(Dir::Request), Dir::Request, &chunk_sizes, &versions);
            let scanned: Vec<(u64, Shape)> = scanned.iter().map(|(i, s)| (*i, shape_of_scan(s))).collect();
            prop_assert_eq!(&scanned, &produce, "{}", t.path.display());
            let (scanned, _) = scan_stream(&t.stream(Dir::Response), Dir::Response, &chunk_sizes, &versions);
            let scanned: Vec<(u64, Shape)> = scanned.iter().map(|(i, s)| (*i, shape_of_scan(s))).collect();
            prop_assert_eq!(&scanned, &fetch, "{}", t.path.display());
            produce_frames += produce.len();
            fetch_frames += fetch.len();
        }
        prop_assert!(produce_frames >= 4 && fetch_frames >= 10, "{} produce, {} fetch", produce_frames, fetch_frames);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Reading a Produce request from its first bytes, where they show all of it, gives exactly
    /// what the streaming parser gives, under any chunking, on real traffic and on large frames.
    #[test]
    fn produce_from_the_first_bytes_agrees_with_the_streaming_parser(chunk_sizes in prop::collection::vec(
        prop_oneof![4 => 1usize..8, 3 => 8usize..300, 1 => 300usize..70_000], 1..30)) {
        let mut streams: Vec<Vec<u8>> = trace::load_all().iter().map(|t| t.stream(Dir::Request)).collect();
        streams.extend([(1, 1024), (1, 1 << 20), (16, 64 * 1024), (3, 100), (1000, 100)].map(|(b, n)| produce_frame(b, n)));
        for stream in &streams {
            let (shortcut, _) = scan_stream_with(stream, Dir::Request, &chunk_sizes, &[], false);
            let (streaming, _) = scan_stream_with(stream, Dir::Request, &chunk_sizes, &[], true);
            prop_assert_eq!(shortcut, streaming);
        }
    }
}

#[test]
fn the_first_bytes_show_a_producers_request_but_not_one_with_later_batches() {
    let body = |frame: &[u8]| {
        let frame = Bytes::copy_from_slice(&frame[4..]);
        let h = header::decode_request_header(&frame, false).unwrap().header_len.unwrap();
        frame.slice(h..)
    };
    // One batch of 1 MiB: everything but its records is in the first 512 bytes.
    let one = body(&produce_frame(1, 1 << 20));
    let (scanned, end) = scan::prefix::produce_request(&one[..512], one.len() as u64, 9).expect("read from the first bytes");
    assert_eq!(end, one.len() as u64);
    assert_eq!(scanned.total_records(), 10);
    // Three small batches in hand: read too.
    let small = body(&produce_frame(3, 100));
    assert!(scan::prefix::produce_request(&small, small.len() as u64, 9).is_some());
    // A second batch header 64 KiB in: left to the streaming parser.
    let many = body(&produce_frame(16, 64 * 1024));
    assert_eq!(scan::prefix::produce_request(&many[..512], many.len() as u64, 9), None);
    // A frame shorter than its structure claims: refused, for the streaming parser to report.
    assert_eq!(scan::prefix::produce_request(&one[..512], one.len() as u64 - 10, 9), None);
}

/// A Produce v9 request frame (size prefix included) with one partition holding `batches`
/// batches of `body_len` opaque bytes each.
fn produce_frame(batches: usize, body_len: usize) -> Vec<u8> {
    let mut records = BytesMut::new();
    for i in 0..batches {
        records.put_i64(0);
        records.put_i32((49 + body_len) as i32);
        records.put_i32(0);
        records.put_i8(2);
        records.put_u32(0);
        records.put_i16(0);
        records.put_i32(9);
        records.put_i64(1);
        records.put_i64(1);
        records.put_i64(-1);
        records.put_i16(-1);
        records.put_i32(-1);
        records.put_i32(10);
        records.put_bytes(i as u8, body_len);
    }
    let mut b = BytesMut::new();
    b.put_i16(0); // Produce
    b.put_i16(9);
    b.put_i32(42);
    b.put_i16(4);
    b.put_slice(b"bulk");
    b.put_u8(0); // header tags
    b.put_u8(0); // transactional id: null
    b.put_i16(-1); // acks
    b.put_i32(30_000);
    b.put_u8(2); // one topic
    b.put_u8(7);
    b.put_slice(b"orders");
    b.put_u8(2); // one partition
    b.put_i32(3);
    let len = records.len() as u32 + 1;
    let mut v = len;
    while v >= 0x80 {
        b.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
    b.put_slice(&records);
    b.put_u8(0); // partition tags
    b.put_u8(0); // topic tags
    b.put_u8(0); // request tags
    let mut frame = (b.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&b);
    frame
}

#[test]
fn a_producers_request_is_scanned_at_its_start_and_the_next_frame_is_still_found() {
    // A 1 MiB batch, then three small ones, in three chunks: the first 600 bytes, the rest of the
    // first frame, the second frame.
    let first = produce_frame(1, 1 << 20);
    let stream = [first.clone(), produce_frame(3, 100)].concat();
    let records = |scans: Vec<(u64, Scanned)>| scans.iter().map(|(index, s)| (*index, s.total_records())).collect::<Vec<_>>();
    // Read from its first bytes, the first request is counted in the chunk that holds its start;
    // the streaming parser waits for its last byte.
    let head = &stream[..600];
    assert_eq!(records(scan_stream_with(head, Dir::Request, &[600], &[], false).0), vec![(0, 10)]);
    assert_eq!(records(scan_stream_with(head, Dir::Request, &[600], &[], true).0), vec![]);
    let whole_first = &stream[..first.len()];
    assert_eq!(records(scan_stream_with(whole_first, Dir::Request, &[600, first.len() - 600], &[], true).0), vec![(0, 10)]);
    // The rest of the first frame is skipped, and the next frame is found.
    let chunks = [600, first.len() - 600, stream.len() - first.len()];
    for streaming_only in [false, true] {
        assert_eq!(records(scan_stream_with(&stream, Dir::Request, &chunks, &[], streaming_only).0), vec![(0, 10), (1, 30)]);
    }
}

#[test]
fn scan_reads_only_structure_whatever_the_payload_size() {
    for (batches, body_len) in [(1, 1024), (1, 1 << 20), (16, 64 * 1024), (1000, 100)] {
        let frame = produce_frame(batches, body_len);
        for chunk in [frame.len(), 1500, 64 * 1024, 7] {
            let (scans, read) = scan_stream(&frame, Dir::Request, &[chunk], &[]);
            assert_eq!(scans.len(), 1);
            let Scanned::Produce(p) = &scans[0].1 else { panic!() };
            assert_eq!(p.acks, -1);
            assert_eq!(p.topics[0].name, "orders");
            assert_eq!(p.topics[0].partitions[0].partition, 3);
            assert_eq!(p.topics[0].partitions[0].records.records, 10 * batches as u64);
            assert_eq!(p.topics[0].partitions[0].records.batches, batches as u32);
            // Size prefix + the 512-byte prefix + 61 header bytes per batch beyond the prefix.
            let bound = 4 + 512 + 61 * batches;
            assert!(read <= bound, "{batches}x{body_len} in chunks of {chunk}: read {read} of {} bytes", frame.len());
        }
    }
}

proptest! {
    #[test]
    fn scan_survives_any_input(body in prop::collection::vec(any::<u8>(), 0..400), version in 3i16..=13, fetch in any::<bool>()) {
        let (key, request) = if fetch { (ApiKey::Fetch, false) } else { (ApiKey::Produce, true) };
        let version = if fetch { version + 5 } else { version };
        let _ = scan::scan_in_memory(key, version, request, &Bytes::from(body), 0);
    }
}

/// Runs the splitter over `frame` cut at `cut`, scanning it as a Produce request; returns the
/// scan result and the stream ranges read from the source.
fn scan_cut(frame: &[u8], cut: usize) -> (Result<Scanned, scan::ScanError>, Vec<(usize, usize)>) {
    struct Ranges<'a> {
        inner: SliceSource<'a>,
        base: usize,
        ranges: &'a mut Vec<(usize, usize)>,
    }
    impl ChunkSource for Ranges<'_> {
        fn read_into(&mut self, start: usize, len: usize, out: &mut Vec<u8>) -> bool {
            self.ranges.push((self.base + start, self.base + start + len));
            self.inner.read_into(start, len, out)
        }
    }
    let mut splitter = FrameSplitter::new(SplitterConfig::requests(DEFAULT_MAX_FRAME_SIZE));
    let mut ranges = Vec::new();
    let mut result = None;
    for (base, chunk) in [(0, &frame[..cut]), (cut, &frame[cut..])] {
        let mut source = Ranges { inner: SliceSource(chunk), base, ranges: &mut ranges };
        splitter.push(&mut source, chunk.len(), |event| match event {
            FrameEvent::Start(start) => {
                let info = header::decode_request_header(&start.prefix, start.is_whole()).unwrap();
                let h = info.header_len.unwrap();
                Disposition::Scan(Box::new(BodyScan::new(ApiKey::Produce, info.id.api_version, true, &start.prefix, h)))
            }
            FrameEvent::Scanned { result: r, .. } => {
                result = Some(r);
                Disposition::Skip
            }
            _ => Disposition::Skip,
        });
    }
    (result.expect("a scan result"), ranges)
}

#[test]
fn closing_tagged_fields_are_skipped_not_read() {
    // A frame whose end is the end of a chunk (the usual case for a client writing one request
    // at a time): its last partition's, topic's and body's empty tag sections are 3 bytes, and
    // reading them would take a read from Envoy's buffer of its own.
    let frame = produce_frame(2, 64 * 1024);
    let tail = frame.len() - 3;
    for cut in [frame.len() - 3, frame.len() - 1, frame.len() - 200, 600, frame.len()] {
        let (result, ranges) = scan_cut(&frame, cut);
        let Scanned::Produce(p) = result.unwrap() else { panic!() };
        assert_eq!(p.topics[0].partitions[0].records.records, 20, "cut at {cut}");
        assert!(ranges.iter().all(|&(_, end)| end <= tail), "cut at {cut}: read {ranges:?}, the tags start at {tail}");
    }
}

#[test]
fn closing_tagged_fields_in_hand_are_still_checked() {
    // A count of one tagged field with nothing after it: truncated. Where the scan already holds
    // the bytes (a small frame, read whole with its prefix) it checks them as before...
    let mut frame = produce_frame(1, 16);
    *frame.last_mut().unwrap() = 1;
    let (result, _) = scan_cut(&frame, frame.len());
    assert_eq!(result, Err(scan::ScanError::Truncated));
    // ...where they would take a read of their own, a frame malformed only there passes the
    // scan (the broker refuses it).
    let mut frame = produce_frame(1, 4096);
    *frame.last_mut().unwrap() = 1;
    let (result, ranges) = scan_cut(&frame, frame.len() - 3);
    assert!(result.is_ok(), "{result:?}");
    assert!(ranges.iter().all(|&(_, end)| end <= frame.len() - 3));
}

/// A Produce v3 request frame (size prefix excluded) with one partition (5) holding `records`,
/// encoded by kafka-protocol, and its header's length.
fn produce_v3(records: Bytes) -> (Bytes, usize) {
    use kafka_lens_codec::kafka_protocol::messages::{produce_request, ProduceRequest, RequestHeader, TopicName};
    use kafka_lens_codec::kafka_protocol::protocol::StrBytes;
    let topic = produce_request::TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str("orders")))
        .with_partition_data(vec![produce_request::PartitionProduceData::default().with_index(5).with_records(Some(records))]);
    let request = ProduceRequest::default().with_acks(1).with_timeout_ms(30_000).with_topic_data(vec![topic]);
    let request_header = RequestHeader::default().with_request_api_key(ApiKey::Produce as i16).with_request_api_version(3).with_correlation_id(1);
    let frame = body::encode_request(&request_header, &RequestKind::Produce(request)).unwrap().slice(4..);
    let header_len = header::decode_request_header(&frame, true).unwrap().header_len.unwrap();
    (frame, header_len)
}

#[test]
fn legacy_message_sets_and_v2_batches_scan_to_the_same_counts() {
    use kafka_lens_codec::legacy::message_set::{encode_message_set, LegacyMessage};
    let messages: Vec<LegacyMessage> = (0..3)
        .map(|i| LegacyMessage { offset: i, timestamp: Some(1_000 + i), log_append_time: false, key: None, value: Some(Bytes::from(vec![b'v'; 100])) })
        .collect();
    for magic in [0, 1] {
        let set = encode_message_set(&messages, magic, records::Compression::None).unwrap();
        let (frame, header_len) = produce_v3(set.clone());
        let Scanned::Produce(p) = scan::scan_in_memory(ApiKey::Produce, 3, true, &frame, header_len).unwrap() else { panic!() };
        let partition = &p.topics[0].partitions[0];
        assert_eq!((partition.partition, partition.records.records, partition.records.batches), (5, 3, 3), "magic {magic}");
        assert_eq!(partition.records.bytes, set.len() as u64, "magic {magic}");
        assert_eq!(partition.last_offset, Some(2), "magic {magic}");
    }
    // Three v2 batches of ten records each, headers assembled without an allocation.
    let frame = produce_frame(3, 40);
    let body = Bytes::copy_from_slice(frame.get(4..).unwrap());
    let Scanned::Produce(p) = scan::scan_in_memory(ApiKey::Produce, 9, true, &body, 2 + 2 + 4 + 2 + 4 + 1).unwrap() else { panic!() };
    let partition = &p.topics[0].partitions[0];
    assert_eq!((partition.records.records, partition.records.batches), (30, 3));
    assert_eq!(partition.records.error, None);
}
