//! The streaming structural scan on arbitrary Produce request / Fetch response bodies: never
//! panics, and wherever both the scan and the full decode succeed they find the same topics,
//! partitions and records-field sizes. (They may disagree on success for malformed tagged fields:
//! the generated decoder ignores a known tagged field's declared size, the scan skips by it.)
#![no_main]

use bytes::Bytes;
use kafka_lens_codec::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_lens_codec::scan::{self, Scanned};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (bool, u8, &[u8])| {
    let (fetch, v, body) = input;
    let (key, request, version) = if fetch { (ApiKey::Fetch, false, 4 + i16::from(v % 15)) } else { (ApiKey::Produce, true, 3 + i16::from(v % 11)) };
    let scanned = scan::scan_in_memory(key, version, request, body);
    let mut bytes = Bytes::copy_from_slice(body);
    let full: Option<Vec<(i32, u64)>> = if request {
        match RequestKind::decode(key, &mut bytes, version) {
            Ok(RequestKind::Produce(p)) => Some(p.topic_data.iter().flat_map(|t| t.partition_data.iter().map(|d| (d.index, d.records.as_ref().map_or(0, |r| r.len() as u64)))).collect()),
            _ => None,
        }
    } else {
        match ResponseKind::decode(key, &mut bytes, version) {
            Ok(ResponseKind::Fetch(f)) => Some(f.responses.iter().flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.records.as_ref().map_or(0, |r| r.len() as u64)))).collect()),
            _ => None,
        }
    };
    if let (Some(full), true, Ok(scanned)) = (full, bytes.is_empty(), scanned) {
        let shape: Vec<(i32, u64)> = scanned.topics().iter().flat_map(|t| t.partitions.iter().map(|p| (p.partition, p.records_len))).collect();
        assert_eq!(shape, full);
        let _ = matches!(scanned, Scanned::Produce(_) | Scanned::Fetch(_));
    }
});
