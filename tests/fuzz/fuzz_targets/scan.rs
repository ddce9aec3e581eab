//! The streaming structural scan on arbitrary Produce request / Fetch response bodies: never
//! panics, and on every well-formed body it finds the topics, partitions and records-field sizes
//! the full decode finds. Well-formed means canonical here: the full decode consumes the whole
//! body and re-encodes to the same bytes. On other bodies the two may disagree, even when both
//! succeed: the generated decoder reads a known tagged field by its content and ignores its
//! declared size (as Kafka's own does), the scan skips by the size.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_lens_codec::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_lens_codec::scan;
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

fuzz_target!(|input: (bool, u8, &[u8])| {
    let (fetch, v, body) = input;
    let (key, request, version) = if fetch { (ApiKey::Fetch, false, 4 + i16::from(v % 15)) } else { (ApiKey::Produce, true, 3 + i16::from(v % 11)) };
    let scanned = scan::scan_in_memory(key, version, request, &Bytes::copy_from_slice(body), 0);
    if let Some(full) = canonical_shape(key, request, version, body) {
        let scanned = match scanned {
            Ok(scanned) => scanned,
            Err(e) => panic!("the scan refused a well-formed body: {e:?}"),
        };
        let shape: Shape = scanned.topics().iter().flat_map(|t| t.partitions.iter().map(|p| (p.partition, p.records_len))).collect();
        assert_eq!(shape, full);
    }
});
