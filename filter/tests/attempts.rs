//! When a producer's records count as attempts (`kafka_produce_request_records_total`): as soon as
//! the request's structure has been read, at the frame's start, not when its last byte passes. A
//! connection that closes in the middle of a 1 MiB Produce request (the client gave up, the
//! sidecar drained) still counts its records as attempted and the request as unanswered, and
//! counts nothing as produced; one that closes before the structure arrived counts no records.
//! The frames are built by kafka-protocol's own encoders, independently of the codec under test.

use bytes::{Bytes, BytesMut};
use kafka_lens_codec::body;
use kafka_lens_codec::kafka_protocol::messages::{
    produce_request::{PartitionProduceData, TopicProduceData},
    produce_response::{PartitionProduceResponse, TopicProduceResponse},
    ApiKey, ProduceRequest, ProduceResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind, TopicName,
};
use kafka_lens_codec::kafka_protocol::protocol::StrBytes;
use kafka_lens_codec::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID, NO_SEQUENCE,
};
use kafka_lens_filter::config::Config;
use kafka_lens_filter::connection::{Connection, Limits, Verdict};
use kafka_lens_filter::metrics::{Direction, Metric};
use kafka_lens_filter::testing::{Side, TestSink};

const RECORDS: i32 = 10;
const RECORD_BYTES: usize = 100 * 1024;

/// One uncompressed batch of [`RECORDS`] records of [`RECORD_BYTES`] bytes each, as a
/// non-idempotent producer writes it.
fn batch() -> Bytes {
    let records: Vec<Record> = (0..RECORDS)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            // Counting up from -1 keeps every record in one batch (the encoder starts a new one
            // wherever offset - sequence changes).
            sequence: NO_SEQUENCE.wrapping_add(i),
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(vec![i as u8; RECORD_BYTES])),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None }).expect("batch");
    buf.freeze()
}

fn produce_request(correlation_id: i32) -> Vec<u8> {
    let partition = PartitionProduceData::default().with_index(0).with_records(Some(batch()));
    let topic = TopicProduceData::default().with_name(TopicName(StrBytes::from_static_str("orders"))).with_partition_data(vec![partition]);
    let body = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![topic]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(9)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("shop")));
    body::encode_request(&header, &RequestKind::Produce(body)).expect("request").to_vec()
}

fn produce_response(correlation_id: i32) -> Vec<u8> {
    let partition = PartitionProduceResponse::default().with_index(0).with_base_offset(42);
    let topic = TopicProduceResponse::default().with_name(TopicName(StrBytes::from_static_str("orders"))).with_partition_responses(vec![partition]);
    let body = ResponseKind::Produce(ProduceResponse::default().with_responses(vec![topic]));
    body::encode_response(&ResponseHeader::default().with_correlation_id(correlation_id), &body, ApiKey::Produce, 9).expect("response").to_vec()
}

/// A connection that sees `request` in chunks of `chunks` bytes, then `response` whole (if any),
/// then closes; returns its metrics.
fn connection(request: &[u8], chunks: &[usize], response: Option<&[u8]>) -> TestSink {
    let mut conn = Connection::new(Limits::from(&Config::default()));
    let (mut sink, mut requests, mut responses) = (TestSink::default(), Side::default(), Side::default());
    let mut pos = 0;
    for n in chunks {
        let chunk = &request[pos..pos + n];
        assert_eq!(requests.deliver(chunk, |buf, len| conn.on_request_data(buf, len, &mut sink)), Verdict::Continue);
        pos += n;
    }
    if let Some(response) = response {
        assert_eq!(responses.deliver(response, |buf, len| conn.on_response_data(buf, len, &mut sink)), Verdict::Continue);
    }
    conn.on_close(&mut sink);
    sink
}

fn attempted(sink: &TestSink) -> i64 {
    sink.sum(|m| matches!(m, Metric::ProduceRequestRecords { topic, .. } if topic.to_string() == "orders"))
}

fn produced(sink: &TestSink) -> i64 {
    sink.sum(|m| matches!(m, Metric::ProducedRecords { .. }))
}

#[test]
fn records_count_as_attempts_once_the_frame_start_is_read_even_if_the_connection_closes_mid_frame() {
    let request = produce_request(7);
    assert!(request.len() > RECORDS as usize * RECORD_BYTES, "a 1 MiB request: {} bytes", request.len());
    // Cut after its first 600 bytes, half way, one byte before its end; Envoy's reads of up to
    // 128 KiB (eight 16 KiB slices) in between.
    for cut in [600, request.len() / 2, request.len() - 1] {
        let mut chunks = vec![600.min(cut)];
        let mut left = cut - chunks[0];
        while left > 0 {
            let n = left.min(128 * 1024);
            chunks.push(n);
            left -= n;
        }
        let sink = connection(&request, &chunks, None);
        assert_eq!(attempted(&sink), i64::from(RECORDS), "cut at {cut}");
        assert_eq!(sink.get(&Metric::Records { api: "Produce", direction: Direction::Request }), i64::from(RECORDS), "cut at {cut}");
        assert_eq!(sink.get(&Metric::UnansweredRequests), 1, "cut at {cut}");
        assert_eq!(produced(&sink), 0, "cut at {cut}: nothing was acknowledged");
    }
}

#[test]
fn a_connection_closed_before_the_structure_arrived_counts_no_records() {
    let request = produce_request(7);
    // The size, the header and the body up to the topic's name: no batch header yet.
    let sink = connection(&request, &[40], None);
    assert_eq!(attempted(&sink), 0);
    assert_eq!(sink.get(&Metric::Records { api: "Produce", direction: Direction::Request }), 0);
    assert_eq!(produced(&sink), 0);
}

#[test]
fn an_answered_request_counts_the_same_attempts_and_its_records_as_produced() {
    let request = produce_request(7);
    let sink = connection(&request, &[600, request.len() - 600], Some(&produce_response(7)));
    assert_eq!(attempted(&sink), i64::from(RECORDS));
    assert_eq!(produced(&sink), i64::from(RECORDS));
    assert_eq!(sink.get(&Metric::UnansweredRequests), 0);
}
