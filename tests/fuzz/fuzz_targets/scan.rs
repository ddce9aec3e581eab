//! The streaming structural scan on arbitrary Produce request / Fetch response bodies: never
//! panics, and on every well-formed body it finds the topics, partitions and records-field sizes
//! the full decode finds. Well-formed means canonical here: the full decode consumes the whole
//! body and re-encodes to the same bytes. On other bodies the two may disagree, even when both
//! succeed: the generated decoder reads a known tagged field by its content and ignores its
//! declared size (as Kafka's own does), the scan skips by the size.
//!
//! With the body's first bytes in hand, wherever they are cut, and the rest passing as the
//! splitter passes it, the scan as the filter runs it (a Produce request read from its first
//! bytes alone when they show all of it, `scan::prefix`) gives exactly what the streaming parser
//! gives, errors included.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_lens_codec::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_lens_codec::scan::{self, BodyScan, Need, ScanError, Scanned};
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

/// Runs `scan`, created over the first `cut` bytes of `body`, to its result as the splitter
/// would: the bytes it asks to read supplied from `body`, those it skips passed.
fn drive(mut scan: BodyScan, body: &[u8], cut: usize) -> Result<Scanned, ScanError> {
    let mut pos = cut.min(body.len());
    loop {
        let remaining = body.len() - pos;
        if remaining == 0 {
            scan.end_of_frame();
        }
        scan.set_frame_left(remaining as u64);
        let k = match scan.need() {
            Need::Done => return scan.take_result().unwrap_or(Err(ScanError::Truncated)),
            Need::Read(n) => {
                let k = n.min(remaining);
                scan.supply(&body[pos..pos + k]);
                k
            }
            Need::Skip(n) => {
                let k = usize::try_from(n).unwrap_or(usize::MAX).min(remaining);
                scan.skipped(k as u64);
                k
            }
        };
        assert!(k > 0, "the scan asked for bytes past the frame's end without ending");
        pos += k;
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
        for cut in (0..=body.len()).step_by(step).chain(last) {
            let head = Bytes::copy_from_slice(&body[..cut]);
            let streaming = drive(BodyScan::new(key, version, request, &head, 0).streaming_only(), body, cut);
            assert_eq!(drive(BodyScan::new(key, version, request, &head, 0), body, cut), streaming, "cut at {cut}");
            if let Some((from_prefix, end)) = scan::prefix::produce_request(&head, body.len() as u64, version) {
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
