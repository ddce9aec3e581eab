//! The streaming structural scan on arbitrary Produce request / Fetch response bodies: never
//! panics, and on every well-formed body it finds the topics, partitions and records-field sizes
//! the full decode finds. Well-formed means canonical here: the full decode consumes the whole
//! body and re-encodes to the same bytes. On other bodies the two may disagree, even when both
//! succeed: the generated decoder reads a known tagged field by its content and ignores its
//! declared size (as Kafka's own does), the scan skips by the size.
//!
//! Through the real frame splitter, with the body's first bytes in hand wherever they are cut and
//! the frame arriving in any chunking, the scan as the filter runs it (a Produce request read from
//! its first bytes alone when they show all of it, `scan::prefix`) gives exactly what the
//! streaming parser gives, errors included.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_lens_codec::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_lens_codec::frame::{Disposition, FrameEvent, FrameSplitter, SliceSource, SplitterConfig};
use kafka_lens_codec::scan::{self, BodyScan, ScanError, Scanned};
use libfuzzer_sys::fuzz_target;

/// Per partition: (index, size of the records field).
type Shape = Vec<(i32, u64)>;

/// What the full decode finds in `body`, where `body` is canonical.
fn canonical_shape(key: ApiKey, request: bool, version: i16, body: &[u8]) -> Option<Shape> {
    let mut bytes = Bytes::copy_from_slice(body);
    let mut encoded = BytesMut::new();
    let shape = if request {
        let kind = RequestKind::decode(key, &mut bytes, version).ok()?;
        kind.encode(&mut encoded, version).ok()?;
        let RequestKind::Produce(p) = kind else { return None };
        p.topic_data.iter().flat_map(|t| t.partition_data.iter().map(|d| (d.index, d.records.as_ref().map_or(0, |r| r.len() as u64)))).collect()
    } else {
        let kind = ResponseKind::decode(key, &mut bytes, version).ok()?;
        kind.encode(&mut encoded, version).ok()?;
        let ResponseKind::Fetch(f) = kind else { return None };
        f.responses.iter().flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.records.as_ref().map_or(0, |r| r.len() as u64)))).collect()
    };
    (bytes.is_empty() && encoded[..] == *body).then_some(shape)
}

/// The scan the filter runs on a frame holding `body` (no header), through the real splitter: it
/// reads the frame's first `cut` body bytes as the prefix the scan starts from, and the frame
/// arrives in `chunk`-byte pieces. `streaming_only` keeps the scan from reading a Produce request
/// from its first bytes.
fn split_and_scan(key: ApiKey, version: i16, request: bool, body: &[u8], cut: usize, chunk: usize, streaming_only: bool) -> Result<Scanned, ScanError> {
    let config = SplitterConfig { max_frame_size: u32::MAX, min_frame_size: 0, prefix_len: cut };
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    let mut splitter = FrameSplitter::new(config);
    let mut result = None;
    for piece in frame.chunks(chunk.max(1)) {
        splitter.push(&mut SliceSource(piece), piece.len(), |event| match event {
            FrameEvent::Start(start) => {
                let scan = BodyScan::new(key, version, request, &start.prefix, 0);
                Disposition::Scan(Box::new(if streaming_only { scan.streaming_only() } else { scan }))
            }
            FrameEvent::Scanned { result: scanned, .. } => {
                assert!(result.replace(scanned).is_none(), "one frame, one result");
                Disposition::Skip
            }
            other => panic!("unexpected event {other:?}"),
        });
    }
    match result {
        Some(result) => result,
        None => panic!("the frame passed without its scan's result (cut at {cut}, {chunk}-byte chunks)"),
    }
}

fuzz_target!(|input: (bool, u8, &[u8])| {
    let (fetch, v, body) = input;
    let (key, request, version) = if fetch { (ApiKey::Fetch, false, 4 + i16::from(v % 15)) } else { (ApiKey::Produce, true, 3 + i16::from(v % 11)) };
    let whole = Bytes::copy_from_slice(body);
    let scanned = scan::scan_in_memory(key, version, request, &whole, 0);
    let streaming = scan::finish_in_memory(scan::BodyScan::new(key, version, request, &whole, 0).streaming_only());
    assert_eq!(scanned, streaming);
    if !fetch {
        // Eight cuts spread over the body, and the last bytes (where the closing tagged fields
        // are skipped unread when not in hand).
        let step = (body.len() / 8).max(1);
        let last = (body.len().saturating_sub(3)..=body.len()).filter(|c| c % step != 0);
        // Fed in one piece to the streaming parser, in small pieces (1 to 24 bytes) to the scan
        // as the filter runs it: chunking and the first-bytes reading change nothing.
        let small = usize::from(v / 11) + 1;
        for cut in (0..=body.len()).step_by(step).chain(last) {
            let streaming = split_and_scan(key, version, request, body, cut, body.len() + 4, true);
            assert_eq!(split_and_scan(key, version, request, body, cut, small, false), streaming, "cut at {cut}");
            let head = &body[..cut];
            if let Some((from_prefix, end)) = scan::prefix::produce_request(head, body.len() as u64, version) {
                assert!(end <= body.len() as u64);
                assert_eq!(Ok(from_prefix), streaming, "cut at {cut}");
            }
        }
    }
    if let Some(full) = canonical_shape(key, request, version, body) {
        let scanned = match scanned {
            Ok(scanned) => scanned,
            Err(e) => panic!("the scan refused a well-formed body: {e:?}"),
        };
        let shape: Shape = scanned.topics().iter().flat_map(|t| t.partitions.iter().map(|p| (p.partition, p.records_len))).collect();
        assert_eq!(shape, full);
    }
});
