//! Old protocol version translation at the connection level, on the in-memory stand-in for Envoy's
//! buffers (prefix replace only; `Pause` keeps the bytes and the next callback sees them again):
//! requests below the broker's minimum reach the broker at the version it accepts, in order and
//! under their correlation ids, and the broker's answers reach the client in the old layout it
//! asked in; what cannot be translated is answered UNSUPPORTED_VERSION in its place in the
//! response order; a malformed old request closes the connection; current versions, and every
//! version with translation off, pass byte for byte; however the streams are cut.

use std::rc::Rc;

use bytes::{BufMut, Bytes};
use kafka_lens_codec::body;
use kafka_lens_codec::kafka_protocol::messages::{
    api_versions_response::ApiVersion,
    fetch_request::{FetchPartition, FetchTopic},
    fetch_response::{FetchableTopicResponse, PartitionData},
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse},
    metadata_request::MetadataRequestTopic,
    metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic},
    produce_request::{PartitionProduceData, TopicProduceData},
    produce_response::{PartitionProduceResponse, TopicProduceResponse},
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
    TopicName,
};
use kafka_lens_codec::kafka_protocol::protocol::StrBytes;
use kafka_lens_codec::legacy::message_set::{self, BatchOptions, BatchRecord, LegacyMessage, PartialTail, RecordHeader};
use kafka_lens_codec::legacy::{fetch, list_offsets, produce};
use kafka_lens_codec::records::Compression;
use kafka_lens_filter::config::Config;
use kafka_lens_filter::connection::{Connection, Limits, Verdict};
use kafka_lens_filter::metrics::Metric;
use kafka_lens_filter::refuse;
use kafka_lens_filter::testing::{Side, TestSink};
use kafka_lens_filter::versions::Translation;

const PRESET: &str = r#"{"version_translation": {"enabled": true, "broker_preset": "kafka-4.0"}}"#;
const CLIENT_ID: &str = "legacy-app";
const TOPIC: &str = "orders";
const UNSUPPORTED_VERSION: i16 = 35;
const PRODUCE_TIMEOUT_MS: i32 = 120_000;

/// Cuts of a stream: whole, byte by byte, small primes, and mixed.
const CHUNKINGS: [&[usize]; 7] = [&[usize::MAX], &[1], &[2], &[3], &[7], &[13], &[5, 7, 11, 13, 2, 31]];

#[derive(Clone, Copy)]
enum Dir {
    Request,
    Response,
}

struct Proxy {
    conn: Connection,
    sink: TestSink,
    requests: Side,
    responses: Side,
    closed: Option<&'static str>,
    /// Callbacks answered `Pause` (a frame held).
    pauses: usize,
    /// The most bytes Envoy's buffer kept at a `Pause`.
    max_paused: usize,
}

impl Proxy {
    fn new(config: &str) -> Self {
        let parsed = Config::parse(config.as_bytes()).expect("config");
        let translation = Rc::new(Translation::new(&parsed.version_translation));
        Self::with_translation(config, translation)
    }

    /// A connection as the filter builds it, sharing `translation` (the VM's broker table).
    fn with_translation(config: &str, translation: Rc<Translation>) -> Self {
        let config = Config::parse(config.as_bytes()).expect("config");
        let conn = Connection::new(Limits::from(&config)).with_translation(translation);
        let (requests, responses) = (Side::default(), Side::default());
        Proxy { conn, sink: TestSink::default(), requests, responses, closed: None, pauses: 0, max_paused: 0 }
    }

    /// Delivers `bytes` in chunks of the given sizes (cycled), as Envoy would.
    fn deliver(&mut self, dir: Dir, bytes: &[u8], sizes: &[usize]) {
        let mut sizes = sizes.iter().cycle();
        let mut pos = 0;
        while pos < bytes.len() && self.closed.is_none() {
            let n = (*sizes.next().unwrap()).max(1).min(bytes.len() - pos);
            let (conn, sink) = (&mut self.conn, &mut self.sink);
            let verdict = match dir {
                Dir::Request => self.requests.deliver(&bytes[pos..pos + n], |buf, len| conn.on_request_data(buf, len, sink)),
                Dir::Response => self.responses.deliver(&bytes[pos..pos + n], |buf, len| conn.on_response_data(buf, len, sink)),
            };
            match verdict {
                Verdict::Close(reason) => self.closed = Some(reason),
                Verdict::Pause => {
                    self.pauses += 1;
                    let kept = match dir {
                        Dir::Request => self.requests.buffer.len(),
                        Dir::Response => self.responses.buffer.len(),
                    };
                    self.max_paused = self.max_paused.max(kept);
                }
                Verdict::Continue => {}
            }
            pos += n;
        }
    }
}

fn name(n: &str) -> TopicName {
    TopicName(StrBytes::from_string(n.to_owned()))
}

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A request frame of an old version: size, request header v1 (api key, version, correlation id,
/// client id), the old body.
fn old_request(key: ApiKey, version: i16, correlation_id: i32, old_body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.put_i32((2 + 2 + 4 + 2 + CLIENT_ID.len() + old_body.len()) as i32);
    frame.put_i16(key as i16);
    frame.put_i16(version);
    frame.put_i32(correlation_id);
    frame.put_i16(CLIENT_ID.len() as i16);
    frame.put_slice(CLIENT_ID.as_bytes());
    frame.put_slice(old_body);
    frame
}

/// A request frame of a version the crate generates.
fn request(key: ApiKey, version: i16, correlation_id: i32, body: RequestKind) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    body::encode_request(&header, &body).expect("encode request").to_vec()
}

/// A response frame of a version the crate generates (the broker's).
fn response(key: ApiKey, version: i16, correlation_id: i32, body: ResponseKind) -> Vec<u8> {
    body::encode_response(&ResponseHeader::default().with_correlation_id(correlation_id), &body, key, version).expect("encode").to_vec()
}

/// Splits a stream into its frames (size prefix included).
fn frames(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = stream;
    while rest.len() >= 4 {
        let n = 4 + i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert!(rest.len() >= n, "a frame cut short");
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    assert!(rest.is_empty(), "trailing bytes");
    out
}

/// A request frame as the broker reads it.
fn decode_request(frame: &[u8]) -> body::Request {
    body::decode_request(&Bytes::copy_from_slice(&frame[4..])).expect("the broker decodes the request")
}

/// An old response frame (header v0): its correlation id and body.
fn old_response(frame: &[u8]) -> (i32, &[u8]) {
    (i32::from_be_bytes(frame[4..8].try_into().unwrap()), &frame[8..])
}

// ---- The client's old requests and the broker's answers. ----

/// The records a Produce v1 sends: (key, value); a null key and a null value among them.
fn produced() -> Vec<(Option<Bytes>, Option<Bytes>)> {
    vec![(Some(bytes("key-0")), Some(bytes("value-0"))), (None, Some(bytes("value-1"))), (Some(bytes("key-2")), None)]
}

/// A Produce v1 (or v0/v2: `magic` must match) with one partition of `produced()` as a gzip message set.
fn old_produce(version: i16, correlation_id: i32, acks: i16) -> Vec<u8> {
    let magic = if version >= 2 { 1 } else { 0 };
    let messages: Vec<LegacyMessage> = produced()
        .into_iter()
        .zip(0i64..)
        .map(|((key, value), offset)| LegacyMessage {
            offset,
            timestamp: (magic == 1).then_some(1_700_000_000_000 + offset),
            log_append_time: false,
            key,
            value,
        })
        .collect();
    let set = message_set::encode_message_set(&messages, magic, Compression::Gzip).unwrap();
    // A timeout past 65535 ms: acks misread from its first bytes would not be 0 by chance.
    let data = vec![TopicProduceData::default()
        .with_name(name(TOPIC))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(set))])];
    let request = ProduceRequest::default().with_acks(acks).with_timeout_ms(PRODUCE_TIMEOUT_MS).with_topic_data(data);
    old_request(ApiKey::Produce, version, correlation_id, &produce::encode_request(version, &request).unwrap())
}

fn metadata_request(version: i16, correlation_id: i32) -> Vec<u8> {
    let body = MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name(TOPIC)))]));
    request(ApiKey::Metadata, version, correlation_id, RequestKind::Metadata(body))
}

fn metadata_response(version: i16, correlation_id: i32) -> Vec<u8> {
    let body = MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(StrBytes::from_static_str("broker-1.internal"))
            .with_port(9092)])
        .with_controller_id(BrokerId(1))
        .with_topics(vec![MetadataResponseTopic::default().with_name(Some(name(TOPIC))).with_partitions(vec![
            MetadataResponsePartition::default()
                .with_partition_index(0)
                .with_leader_id(BrokerId(1))
                .with_replica_nodes(vec![BrokerId(1)])
                .with_isr_nodes(vec![BrokerId(1)]),
        ])]);
    response(ApiKey::Metadata, version, correlation_id, ResponseKind::Metadata(body))
}

fn old_fetch(version: i16, correlation_id: i32) -> Vec<u8> {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_topics(vec![FetchTopic::default().with_topic(name(TOPIC)).with_partitions(vec![FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(10)
            .with_partition_max_bytes(1_048_576)])]);
    old_request(ApiKey::Fetch, version, correlation_id, &fetch::encode_request(version, &request).unwrap())
}

fn old_list_offsets(correlation_id: i32) -> Vec<u8> {
    let request = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
        .with_name(name(TOPIC))
        .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1)])]);
    old_request(ApiKey::ListOffsets, 0, correlation_id, &list_offsets::encode_request(0, &request).unwrap())
}

/// The records the broker's Fetch answer carries: offsets 10–12, one with headers.
fn fetched() -> Vec<BatchRecord> {
    let record = |offset: i64, key: Option<&str>, value: Option<&str>, headers: Vec<RecordHeader>| BatchRecord {
        offset,
        timestamp: 1_700_000_000_000 + offset,
        key: key.map(bytes),
        value: value.map(bytes),
        headers,
    };
    vec![
        record(10, Some("k10"), Some("v10"), Vec::new()),
        record(11, None, Some("v11"), vec![RecordHeader { key: bytes("trace"), value: Some(bytes("abc")) }]),
        record(12, Some("k12"), Some("v12"), Vec::new()),
    ]
}

fn produce_v3_response(correlation_id: i32) -> Vec<u8> {
    let body = ProduceResponse::default().with_throttle_time_ms(7).with_responses(vec![TopicProduceResponse::default()
        .with_name(name(TOPIC))
        .with_partition_responses(vec![PartitionProduceResponse::default()
            .with_index(0)
            .with_error_code(0)
            .with_base_offset(42)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(0)])]);
    response(ApiKey::Produce, 3, correlation_id, ResponseKind::Produce(body))
}

fn fetch_v4_response(correlation_id: i32, compression: Compression) -> Vec<u8> {
    let batch = message_set::encode_record_batch(&fetched(), &BatchOptions { compression, ..BatchOptions::default() }).unwrap();
    let body = FetchResponse::default().with_throttle_time_ms(3).with_responses(vec![FetchableTopicResponse::default()
        .with_topic(name(TOPIC))
        .with_partitions(vec![PartitionData::default()
            .with_partition_index(0)
            .with_error_code(0)
            .with_high_watermark(13)
            .with_last_stable_offset(13)
            .with_aborted_transactions(Some(Vec::new()))
            .with_records(Some(batch))])]);
    response(ApiKey::Fetch, 4, correlation_id, ResponseKind::Fetch(body))
}

fn list_offsets_v1_response(correlation_id: i32) -> Vec<u8> {
    let body = ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
        .with_name(name(TOPIC))
        .with_partitions(vec![ListOffsetsPartitionResponse::default().with_partition_index(0).with_timestamp(-1).with_offset(77)])]);
    response(ApiKey::ListOffsets, 1, correlation_id, ResponseKind::ListOffsets(body))
}

/// The broker's answer to the placeholder: ApiVersions v0.
fn placeholder_answer(correlation_id: i32) -> Vec<u8> {
    let produce = ApiVersion::default().with_api_key(0).with_min_version(3).with_max_version(11);
    let body = ApiVersionsResponse::default().with_api_keys(vec![produce]);
    response(ApiKey::ApiVersions, 0, correlation_id, ResponseKind::ApiVersions(body))
}

// ---- Checks on what the broker and the client receive. ----

fn check_produce_v3(frame: &[u8], correlation_id: i32, acks: i16, magic1_timestamps: bool) {
    let request = decode_request(frame);
    assert_eq!(request.api_key, ApiKey::Produce);
    assert_eq!(request.header.request_api_version, 3, "Produce goes to the broker at v3");
    assert_eq!(request.header.correlation_id, correlation_id);
    assert_eq!(request.header.client_id.as_deref(), Some(CLIENT_ID));
    let RequestKind::Produce(p) = request.body else { panic!("not a Produce") };
    assert_eq!(p.transactional_id, None);
    assert_eq!(p.acks, acks);
    assert_eq!(p.timeout_ms, PRODUCE_TIMEOUT_MS);
    assert_eq!(p.topic_data.len(), 1);
    assert_eq!(p.topic_data[0].name, name(TOPIC));
    assert_eq!(p.topic_data[0].partition_data.len(), 1);
    let partition = &p.topic_data[0].partition_data[0];
    assert_eq!(partition.index, 0);
    let records = partition.records.as_ref().expect("records");
    let batches = message_set::read_record_batches(records).expect("record batches, CRCs valid");
    assert_eq!(batches.len(), 1, "one record batch");
    let batch = &batches[0];
    assert_eq!(batch.header.magic, 2);
    assert_eq!(batch.header.compression(), Compression::Gzip, "the producer's codec is kept");
    assert_eq!(batch.header.record_count, 3);
    assert_eq!(batch.header.producer_id, -1);
    // The batch must span exactly the records field: one batch, nothing after it.
    assert_eq!(records.len(), 12 + batch.header.batch_length as usize);
    let got: Vec<(Option<Bytes>, Option<Bytes>)> = batch.records.iter().map(|r| (r.key.clone(), r.value.clone())).collect();
    assert_eq!(got, produced(), "keys and values in order");
    let offsets: Vec<i64> = batch.records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![0, 1, 2]);
    for (i, record) in batch.records.iter().enumerate() {
        assert!(record.headers.is_empty());
        let expected = if magic1_timestamps { 1_700_000_000_000 + i as i64 } else { message_set::NO_TIMESTAMP };
        assert_eq!(record.timestamp, expected, "record {i}'s timestamp");
    }
}

fn check_fetch_v4(frame: &[u8], correlation_id: i32, max_inspect: u64) {
    let request = decode_request(frame);
    assert_eq!(request.api_key, ApiKey::Fetch);
    assert_eq!(request.header.request_api_version, 4, "Fetch goes to the broker at v4");
    assert_eq!(request.header.correlation_id, correlation_id);
    assert_eq!(request.header.client_id.as_deref(), Some(CLIENT_ID));
    let RequestKind::Fetch(f) = request.body else { panic!("not a Fetch") };
    assert_eq!(f.replica_id, BrokerId(-1));
    assert_eq!(f.max_wait_ms, 500);
    assert_eq!(f.min_bytes, 1);
    assert!(f.max_bytes >= 1 && f.max_bytes as u64 <= max_inspect, "max_bytes {} within the hold limit", f.max_bytes);
    assert_eq!(f.isolation_level, 0, "read uncommitted, as v0 meant");
    assert_eq!(f.topics.len(), 1);
    assert_eq!(f.topics[0].topic, name(TOPIC));
    assert_eq!(f.topics[0].partitions.len(), 1);
    let partition = &f.topics[0].partitions[0];
    assert_eq!((partition.partition, partition.fetch_offset, partition.partition_max_bytes), (0, 10, 1_048_576));
}

fn check_list_offsets_v1(frame: &[u8], correlation_id: i32) {
    let request = decode_request(frame);
    assert_eq!(request.api_key, ApiKey::ListOffsets);
    assert_eq!(request.header.request_api_version, 1, "ListOffsets goes to the broker at v1");
    assert_eq!(request.header.correlation_id, correlation_id);
    let RequestKind::ListOffsets(l) = request.body else { panic!("not a ListOffsets") };
    assert_eq!(l.replica_id, BrokerId(-1));
    assert_eq!(l.topics.len(), 1);
    assert_eq!(l.topics[0].name, name(TOPIC));
    assert_eq!(l.topics[0].partitions.len(), 1);
    assert_eq!((l.topics[0].partitions[0].partition_index, l.topics[0].partitions[0].timestamp), (0, -1));
}

fn check_produce_v1_answer(frame: &[u8], correlation_id: i32) {
    let (id, old) = old_response(frame);
    assert_eq!(id, correlation_id);
    let p = produce::decode_response(1, old).expect("a Produce v1 response");
    assert_eq!(p.throttle_time_ms, 7);
    assert_eq!(p.responses.len(), 1);
    assert_eq!(p.responses[0].name, name(TOPIC));
    let partitions = &p.responses[0].partition_responses;
    assert_eq!(partitions.len(), 1);
    assert_eq!((partitions[0].index, partitions[0].error_code, partitions[0].base_offset), (0, 0, 42));
}

fn check_fetch_v0_answer(frame: &[u8], correlation_id: i32) {
    let (id, old) = old_response(frame);
    assert_eq!(id, correlation_id);
    let f = fetch::decode_response(0, old).expect("a Fetch v0 response");
    assert_eq!(f.responses.len(), 1);
    assert_eq!(f.responses[0].topic, name(TOPIC));
    let partitions = &f.responses[0].partitions;
    assert_eq!(partitions.len(), 1);
    assert_eq!((partitions[0].partition_index, partitions[0].error_code, partitions[0].high_watermark), (0, 0, 13));
    let set = partitions[0].records.as_ref().expect("records");
    let entries = message_set::read_entries(set, PartialTail::Reject).expect("a whole message set, CRCs valid");
    assert!(entries.iter().all(|e| e.header.magic == 0), "a Fetch v0 reads magic 0");
    let messages = message_set::read_message_set(set, PartialTail::Reject).unwrap();
    let got: Vec<(i64, Option<Bytes>, Option<Bytes>)> = messages.iter().map(|m| (m.offset, m.key.clone(), m.value.clone())).collect();
    let expected: Vec<(i64, Option<Bytes>, Option<Bytes>)> = fetched().into_iter().map(|r| (r.offset, r.key, r.value)).collect();
    assert_eq!(got, expected, "offsets, keys and values of the batch");
    assert!(messages.iter().all(|m| m.timestamp.is_none()), "magic 0 has no timestamps");
}

fn check_list_offsets_v0_answer(frame: &[u8], correlation_id: i32) {
    let (id, old) = old_response(frame);
    assert_eq!(id, correlation_id);
    // topics [name, partitions [index, error, old_style_offsets [77]]], byte for byte.
    let mut expected = Vec::new();
    expected.put_i32(1);
    expected.put_i16(TOPIC.len() as i16);
    expected.put_slice(TOPIC.as_bytes());
    expected.put_i32(1);
    expected.put_i32(0);
    expected.put_i16(0);
    expected.put_i32(1);
    expected.put_i64(77);
    assert_eq!(old, &expected[..], "ListOffsets v0 layout with old_style_offsets [77]");
    let l = list_offsets::decode_response(0, old).expect("a ListOffsets v0 response");
    assert_eq!(l.topics[0].partitions[0].offset, 77);
}

// ---- 1. A pipelined stream of old requests. ----

fn pipelined(request_sizes: &[usize], response_sizes: &[usize], compression: Compression) {
    let label = format!("requests cut {request_sizes:?}, responses cut {response_sizes:?}, fetched {compression:?}");
    let mut proxy = Proxy::new(PRESET);
    let max_inspect = Limits::from(&Config::parse(PRESET.as_bytes()).unwrap()).max_inspect;
    let metadata = metadata_request(1, 12);
    let stream = [old_produce(1, 11, -1), metadata.clone(), old_fetch(0, 13), old_list_offsets(14)].concat();
    proxy.deliver(Dir::Request, &stream, request_sizes);
    assert_eq!(proxy.closed, None, "{label}");
    assert!(proxy.requests.buffer.is_empty(), "{label}: requests held after the stream ended");
    let sent = frames(&proxy.requests.forwarded);
    assert_eq!(sent.len(), 4, "{label}: the broker receives four requests");
    check_produce_v3(&sent[0], 11, -1, false);
    assert_eq!(sent[1], metadata, "{label}: Metadata v1 passes byte for byte");
    check_fetch_v4(&sent[2], 13, max_inspect);
    check_list_offsets_v1(&sent[3], 14);
    assert_eq!(proxy.conn.in_flight(), 4, "{label}");

    let metadata_answer = metadata_response(1, 12);
    let answers =
        [produce_v3_response(11), metadata_answer.clone(), fetch_v4_response(13, compression), list_offsets_v1_response(14)].concat();
    proxy.deliver(Dir::Response, &answers, response_sizes);
    assert_eq!(proxy.closed, None, "{label}");
    assert!(proxy.responses.buffer.is_empty(), "{label}: responses held after the stream ended");
    let got = frames(&proxy.responses.forwarded);
    assert_eq!(got.len(), 4, "{label}: the client receives four responses");
    check_produce_v1_answer(&got[0], 11);
    assert_eq!(got[1], metadata_answer, "{label}: Metadata v1 answer passes byte for byte");
    check_fetch_v0_answer(&got[2], 13);
    check_list_offsets_v0_answer(&got[3], 14);
    assert_eq!(proxy.conn.in_flight(), 0, "{label}");

    let sink = &proxy.sink;
    for (api, version) in [("Produce", "1"), ("Fetch", "0"), ("ListOffsets", "0")] {
        assert_eq!(sink.get(&Metric::TranslatedRequests { api, version }), 1, "{label}: {api} v{version} translated");
        assert_eq!(sink.get(&Metric::TranslatedResponses { api }), 1, "{label}: {api} answer translated");
    }
    assert_eq!(sink.sum(|m| matches!(m, Metric::TranslatedRequests { .. })), 3, "{label}: Metadata is not translated");
    assert_eq!(sink.get(&Metric::RecordsDownConverted), 3, "{label}");
    assert_eq!(sink.get(&Metric::RecordHeadersDropped), 1, "{label}");
    assert_eq!(sink.sum(|m| matches!(m, Metric::TranslationFailures { .. })), 0, "{label}");
}

#[test]
fn old_requests_reach_the_broker_translated_and_answers_return_in_the_old_layout_however_the_streams_are_cut() {
    for (i, request_sizes) in CHUNKINGS.iter().enumerate() {
        for (j, response_sizes) in CHUNKINGS.iter().enumerate() {
            let compression = if (i + j) % 2 == 0 { Compression::None } else { Compression::Gzip };
            pipelined(request_sizes, response_sizes, compression);
        }
    }
}

// ---- 2. acks=0. ----

#[test]
fn an_acks_0_produce_v2_is_translated_and_expects_no_answer() {
    for sizes in CHUNKINGS {
        let mut proxy = Proxy::new(PRESET);
        let metadata = metadata_request(1, 22);
        proxy.deliver(Dir::Request, &[old_produce(2, 21, 0), metadata.clone()].concat(), sizes);
        assert_eq!(proxy.closed, None, "{sizes:?}");
        assert!(proxy.requests.buffer.is_empty(), "{sizes:?}: requests held");
        let sent = frames(&proxy.requests.forwarded);
        assert_eq!(sent.len(), 2, "{sizes:?}");
        check_produce_v3(&sent[0], 21, 0, true);
        assert_eq!(sent[1], metadata, "{sizes:?}");
        assert_eq!(proxy.conn.in_flight(), 1, "{sizes:?}: only the Metadata request awaits an answer");
        assert_eq!(proxy.sink.get(&Metric::TranslatedRequests { api: "Produce", version: "2" }), 1, "{sizes:?}");
        let answer = metadata_response(1, 22);
        proxy.deliver(Dir::Response, &answer, sizes);
        assert_eq!(proxy.responses.forwarded, answer, "{sizes:?}");
        assert_eq!(proxy.conn.in_flight(), 0, "{sizes:?}: nothing left in flight");
        assert_eq!(proxy.sink.sum(|m| matches!(m, Metric::UnmatchedResponses)), 0, "{sizes:?}");
    }
}

// ---- 3. UNSUPPORTED_VERSION. ----

/// A broker too old for the crate's Produce versions (learned: Produce 1–2): a Produce v0 cannot
/// be translated (the crate's v3 is above the broker's maximum) and is answered by the filter.
#[test]
fn a_produce_the_broker_cannot_take_even_translated_is_answered_unsupported_version_in_order() {
    let config = r#"{"version_translation": {"enabled": true}}"#;
    for sizes in CHUNKINGS {
        let translation = Rc::new(Translation::new(&Config::parse(config.as_bytes()).unwrap().version_translation));
        let learned = ApiVersionsResponse::default().with_api_keys(vec![
            ApiVersion::default().with_api_key(ApiKey::Produce as i16).with_min_version(1).with_max_version(2),
            ApiVersion::default().with_api_key(ApiKey::Metadata as i16).with_min_version(0).with_max_version(12),
        ]);
        assert!(translation.learn(&learned));
        let mut proxy = Proxy::with_translation(config, translation);
        let (first, last) = (metadata_request(1, 31), metadata_request(1, 33));
        proxy.deliver(Dir::Request, &[first.clone(), old_produce(0, 32, 1), last.clone()].concat(), sizes);
        assert_eq!(proxy.closed, None, "{sizes:?}");
        assert!(proxy.requests.buffer.is_empty(), "{sizes:?}: requests held");
        assert_eq!(
            proxy.requests.forwarded,
            [first, refuse::placeholder(32).to_vec(), last].concat(),
            "{sizes:?}: the broker receives the placeholder (ApiVersions v0, same correlation id) for the Produce v0"
        );
        let (answer_1, answer_3) = (metadata_response(1, 31), metadata_response(1, 33));
        proxy.deliver(Dir::Response, &[answer_1.clone(), placeholder_answer(32), answer_3.clone()].concat(), sizes);
        assert_eq!(proxy.closed, None, "{sizes:?}");
        assert!(proxy.responses.buffer.is_empty(), "{sizes:?}: responses held");
        let got = frames(&proxy.responses.forwarded);
        assert_eq!(got.len(), 3, "{sizes:?}");
        assert_eq!(got[0], answer_1, "{sizes:?}");
        assert_eq!(got[2], answer_3, "{sizes:?}");
        let (id, old) = old_response(&got[1]);
        assert_eq!(id, 32, "{sizes:?}");
        let refused = produce::decode_response(0, old).expect("a Produce v0 response");
        assert_eq!(refused.responses.len(), 1, "{sizes:?}");
        assert_eq!(refused.responses[0].name, name(TOPIC), "{sizes:?}");
        let partitions = &refused.responses[0].partition_responses;
        assert_eq!(partitions.len(), 1, "{sizes:?}");
        assert_eq!((partitions[0].index, partitions[0].error_code), (0, UNSUPPORTED_VERSION), "{sizes:?}");
        assert_eq!(partitions[0].base_offset, -1, "{sizes:?}");
        assert_eq!(proxy.conn.in_flight(), 0, "{sizes:?}");
        assert_eq!(proxy.sink.get(&Metric::UnsupportedVersionAnswers { api: "Produce", version: "0" }), 1, "{sizes:?}");
        assert_eq!(proxy.sink.sum(|m| matches!(m, Metric::TranslatedRequests { .. })), 0, "{sizes:?}");
    }
}

/// A version the crate knows, below a configured minimum (Metadata v1 under `min: 4`): answered
/// by the filter at the client's version, as the broker would refuse it.
#[test]
fn a_known_version_below_the_configured_minimum_is_answered_unsupported_version() {
    let config = r#"{"version_translation": {"enabled": true, "broker_versions": {"Metadata": {"min": 4}}}}"#;
    for sizes in CHUNKINGS {
        let mut proxy = Proxy::new(config);
        let current = metadata_request(4, 43);
        proxy.deliver(Dir::Request, &[metadata_request(1, 42), current.clone()].concat(), sizes);
        assert_eq!(proxy.closed, None, "{sizes:?}");
        assert!(proxy.requests.buffer.is_empty(), "{sizes:?}: requests held");
        assert_eq!(proxy.requests.forwarded, [refuse::placeholder(42).to_vec(), current].concat(), "{sizes:?}");
        let answer = metadata_response(4, 43);
        proxy.deliver(Dir::Response, &[placeholder_answer(42), answer.clone()].concat(), sizes);
        assert_eq!(proxy.closed, None, "{sizes:?}");
        let got = frames(&proxy.responses.forwarded);
        assert_eq!(got.len(), 2, "{sizes:?}");
        assert_eq!(got[1], answer, "{sizes:?}");
        let decoded = body::decode_response(&Bytes::copy_from_slice(&got[0][4..]), ApiKey::Metadata, 1).expect("a Metadata v1 response");
        assert_eq!(decoded.header.correlation_id, 42, "{sizes:?}");
        let ResponseKind::Metadata(m) = decoded.body else { panic!() };
        assert_eq!(m.topics.len(), 1, "{sizes:?}");
        assert_eq!(m.topics[0].name, Some(name(TOPIC)), "{sizes:?}");
        assert_eq!(m.topics[0].error_code, UNSUPPORTED_VERSION, "{sizes:?}");
        assert_eq!(proxy.conn.in_flight(), 0, "{sizes:?}");
        assert_eq!(proxy.sink.get(&Metric::UnsupportedVersionAnswers { api: "Metadata", version: "1" }), 1, "{sizes:?}");
    }
}

// ---- 4. Nothing to translate: byte for byte. ----

/// A record batch of one record with a `len`-byte value.
fn big_batch(offset: i64, len: usize) -> Bytes {
    let value = Bytes::from((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(7)).collect::<Vec<_>>());
    let record = BatchRecord { offset, timestamp: 1_700_000_000_000, key: Some(bytes("big")), value: Some(value), headers: Vec::new() };
    message_set::encode_record_batch(&[record], &BatchOptions::default()).unwrap()
}

/// Produce v9 (100 KB of records) and Fetch v12.
fn current_requests() -> Vec<u8> {
    let data = vec![TopicProduceData::default()
        .with_name(name(TOPIC))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(big_batch(0, 100_000)))])];
    let produce = ProduceRequest::default().with_acks(-1).with_timeout_ms(1000).with_topic_data(data);
    let partition = FetchPartition::default().with_partition(0).with_fetch_offset(10);
    let topic = FetchTopic::default().with_topic(name(TOPIC)).with_partitions(vec![partition]);
    let fetch = FetchRequest::default().with_max_wait_ms(500).with_min_bytes(1).with_max_bytes(50_000_000).with_topics(vec![topic]);
    [request(ApiKey::Produce, 9, 51, RequestKind::Produce(produce)), request(ApiKey::Fetch, 12, 52, RequestKind::Fetch(fetch))].concat()
}

/// Their answers: Produce v9, Fetch v12 with 100 KB of records (one with headers).
fn current_responses() -> Vec<u8> {
    let produced = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
        .with_name(name(TOPIC))
        .with_partition_responses(vec![PartitionProduceResponse::default().with_index(0).with_base_offset(10)])]);
    let records = [message_set::encode_record_batch(&fetched(), &BatchOptions::default()).unwrap(), big_batch(13, 100_000)].concat();
    let partition = PartitionData::default().with_partition_index(0).with_high_watermark(14).with_records(Some(records.into()));
    let fetched = FetchResponse::default()
        .with_responses(vec![FetchableTopicResponse::default().with_topic(name(TOPIC)).with_partitions(vec![partition])]);
    [
        response(ApiKey::Produce, 9, 51, ResponseKind::Produce(produced)),
        response(ApiKey::Fetch, 12, 52, ResponseKind::Fetch(fetched)),
    ]
    .concat()
}

/// A frame's first bytes, kept until the splitter shows its start (size and up to 512 body bytes).
/// With no frame held, a pause keeps at most two of these (a chunk that ends one small frame and
/// starts the next keeps both: `Pause` keeps the whole buffer) and the rest of a chunk: far below
/// the 100 KB frames, which must pass as they arrive.
const FRAME_START_HOLD: usize = 4 + kafka_lens_codec::frame::DEFAULT_PREFIX_LEN;

#[test]
fn current_versions_pass_byte_for_byte_with_translation_on_and_nothing_is_held() {
    let (requests, responses) = (current_requests(), current_responses());
    for sizes in CHUNKINGS {
        let mut proxy = Proxy::new(PRESET);
        proxy.deliver(Dir::Request, &requests, sizes);
        proxy.deliver(Dir::Response, &responses, sizes);
        assert_eq!(proxy.closed, None, "{sizes:?}");
        assert!(proxy.requests.forwarded == requests, "{sizes:?}: requests changed");
        assert!(proxy.responses.forwarded == responses, "{sizes:?}: responses changed");
        assert!(proxy.requests.buffer.is_empty() && proxy.responses.buffer.is_empty(), "{sizes:?}: bytes left held");
        let largest_chunk = sizes.iter().copied().max().unwrap().min(requests.len().max(responses.len()));
        assert!(
            proxy.max_paused < 2 * FRAME_START_HOLD + largest_chunk,
            "{sizes:?}: a current-version frame was held beyond its start ({} bytes kept at a pause)",
            proxy.max_paused
        );
        assert_eq!(proxy.sink.sum(|m| matches!(m, Metric::FramesHeldInVm { .. })), 0, "{sizes:?}");
        assert_eq!(proxy.conn.in_flight(), 0, "{sizes:?}");
        assert_eq!(proxy.sink.sum(|m| matches!(m, Metric::TranslatedRequests { .. } | Metric::TranslatedResponses { .. })), 0);
    }
}

#[test]
fn translation_off_passes_every_version_byte_for_byte() {
    let config = r#"{"version_translation": {"enabled": false, "broker_preset": "kafka-4.0"}}"#;
    let requests = [current_requests(), old_produce(1, 61, -1), old_fetch(0, 62)].concat();
    // Answers in the old layout (as a broker that still speaks them would send): passed as they are.
    let old_produce_answer = {
        let body = produce::encode_response(1, &ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
            .with_name(name(TOPIC))
            .with_partition_responses(vec![PartitionProduceResponse::default().with_index(0).with_base_offset(5)])]))
        .unwrap();
        kafka_lens_codec::legacy::translate::response_frame(61, &body).unwrap().to_vec()
    };
    let old_fetch_answer = {
        let (body, _) = fetch::encode_response(0, &FetchResponse::default()).unwrap();
        kafka_lens_codec::legacy::translate::response_frame(62, &body).unwrap().to_vec()
    };
    let responses = [current_responses(), old_produce_answer, old_fetch_answer].concat();
    for sizes in CHUNKINGS {
        let mut proxy = Proxy::new(config);
        proxy.deliver(Dir::Request, &requests, sizes);
        proxy.deliver(Dir::Response, &responses, sizes);
        assert_eq!(proxy.closed, None, "{sizes:?}");
        assert!(proxy.requests.forwarded == requests, "{sizes:?}: requests changed");
        assert!(proxy.responses.forwarded == responses, "{sizes:?}: responses changed");
        assert_eq!(proxy.pauses, 0, "{sizes:?}: a frame was held");
        assert_eq!(proxy.conn.in_flight(), 0, "{sizes:?}");
        assert_eq!(proxy.sink.sum(|m| matches!(m, Metric::TranslatedRequests { .. } | Metric::UnsupportedVersionAnswers { .. })), 0);
    }
}

// ---- 5. A malformed old request closes the connection. ----

/// `frame` with its last `cut` body bytes removed and its size fixed: a valid frame, a truncated body.
fn truncated(frame: &[u8], cut: usize) -> Vec<u8> {
    let mut out = frame[..frame.len() - cut].to_vec();
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out
}

#[test]
fn a_malformed_old_request_closes_the_connection() {
    let cases: [(&str, Vec<u8>); 4] = [
        ("Produce", truncated(&old_produce(1, 72, -1), 5)),
        ("Produce", truncated(&old_produce(1, 72, -1), 1)),
        ("Fetch", truncated(&old_fetch(0, 72), 3)),
        ("ListOffsets", truncated(&old_list_offsets(72), 4)),
    ];
    for (api, bad) in &cases {
        for sizes in CHUNKINGS {
            let mut proxy = Proxy::new(PRESET);
            let metadata = metadata_request(1, 71);
            proxy.deliver(Dir::Request, &[metadata.clone(), bad.clone(), metadata_request(1, 73)].concat(), sizes);
            assert_eq!(proxy.closed, Some("translation_failed"), "{api} {sizes:?}");
            assert_eq!(
                proxy.sink.get(&Metric::TranslationFailures { api, reason: "malformed" }),
                1,
                "{api} {sizes:?}: kafka_translation_failures_total"
            );
            assert_eq!(proxy.sink.get(&Metric::ConnectionsClosedByFilter { reason: "translation_failed" }), 1, "{api} {sizes:?}");
            assert_eq!(proxy.sink.sum(|m| matches!(m, Metric::TranslatedRequests { .. })), 0, "{api} {sizes:?}");
            // Nothing of the malformed request (nor what follows it) reached the broker.
            assert!(
                metadata.starts_with(&proxy.requests.forwarded),
                "{api} {sizes:?}: the broker received {} bytes, more than the request before the malformed one",
                proxy.requests.forwarded.len()
            );
            // Closed: later callbacks close too.
            let (conn, sink) = (&mut proxy.conn, &mut proxy.sink);
            let verdict = proxy.requests.deliver(&metadata_request(1, 74), |buf, len| conn.on_request_data(buf, len, sink));
            assert!(matches!(verdict, Verdict::Close(_)), "{api} {sizes:?}");
        }
    }
}

// ---- 6. ApiVersions reaches down to what translates. ----

fn broker_versions() -> ApiVersionsResponse {
    let entry = |key: ApiKey, min, max| ApiVersion::default().with_api_key(key as i16).with_min_version(min).with_max_version(max);
    ApiVersionsResponse::default().with_api_keys(vec![
        entry(ApiKey::Produce, 3, 11),
        entry(ApiKey::Fetch, 4, 16),
        entry(ApiKey::ListOffsets, 1, 8),
        entry(ApiKey::Metadata, 0, 12),
        entry(ApiKey::ApiVersions, 0, 4),
    ])
}

#[test]
fn api_versions_advertise_the_old_versions_that_translate() {
    for config in [PRESET, r#"{"version_translation": {"enabled": true}}"#] {
        for sizes in CHUNKINGS {
            let mut proxy = Proxy::new(config);
            let body = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("legacy"))
                .with_client_software_version(StrBytes::from_static_str("0.9"));
            let asked = request(ApiKey::ApiVersions, 3, 81, RequestKind::ApiVersions(body));
            proxy.deliver(Dir::Request, &asked, sizes);
            assert_eq!(proxy.requests.forwarded, asked, "{config} {sizes:?}: the request passes unchanged");
            let answer = response(ApiKey::ApiVersions, 3, 81, ResponseKind::ApiVersions(broker_versions()));
            proxy.deliver(Dir::Response, &answer, sizes);
            assert_eq!(proxy.closed, None, "{config} {sizes:?}");
            assert!(proxy.responses.buffer.is_empty(), "{config} {sizes:?}: response held");
            let got = frames(&proxy.responses.forwarded);
            assert_eq!(got.len(), 1, "{config} {sizes:?}");
            let decoded = body::decode_response(&Bytes::copy_from_slice(&got[0][4..]), ApiKey::ApiVersions, 3).expect("ApiVersions v3");
            assert_eq!(decoded.header.correlation_id, 81);
            let ResponseKind::ApiVersions(v) = decoded.body else { panic!() };
            let ranges: Vec<(i16, i16, i16)> = v.api_keys.iter().map(|e| (e.api_key, e.min_version, e.max_version)).collect();
            assert_eq!(
                ranges,
                vec![
                    (ApiKey::Produce as i16, 0, 11),
                    (ApiKey::Fetch as i16, 0, 16),
                    (ApiKey::ListOffsets as i16, 0, 8),
                    (ApiKey::Metadata as i16, 0, 12),
                    (ApiKey::ApiVersions as i16, 0, 4),
                ],
                "{config} {sizes:?}"
            );
            assert_eq!(v.error_code, 0);
            assert_eq!(proxy.sink.get(&Metric::ApiVersionsExtended), 1, "{config} {sizes:?}");
        }
    }
}

/// The broker's ranges learned from its ApiVersions answer decide the translation of the requests
/// that follow on the same connection (no preset).
#[test]
fn versions_learned_from_the_broker_drive_translation() {
    let config = r#"{"version_translation": {"enabled": true}}"#;
    for sizes in CHUNKINGS {
        let mut proxy = Proxy::new(config);
        let asked = request(ApiKey::ApiVersions, 3, 91, RequestKind::ApiVersions(ApiVersionsRequest::default()));
        proxy.deliver(Dir::Request, &asked, sizes);
        proxy.deliver(Dir::Response, &response(ApiKey::ApiVersions, 3, 91, ResponseKind::ApiVersions(broker_versions())), sizes);
        assert!(proxy.conn.translation_changes().is_some(), "{sizes:?}: learned ranges to publish");
        proxy.deliver(Dir::Request, &old_produce(1, 92, -1), sizes);
        assert_eq!(proxy.closed, None, "{sizes:?}");
        let sent = frames(&proxy.requests.forwarded);
        assert_eq!(sent.len(), 2, "{sizes:?}");
        check_produce_v3(&sent[1], 92, -1, false);
        proxy.deliver(Dir::Response, &produce_v3_response(92), sizes);
        let got = frames(&proxy.responses.forwarded);
        assert_eq!(got.len(), 2, "{sizes:?}");
        check_produce_v1_answer(&got[1], 92);
    }
}

// ---- Frames larger than the hold budget (moved into the VM while held). ----

/// A Produce v1 of 7 × 100 KB magic-0 messages (past the 512 KiB hold budget), and a Fetch v4
/// answer of 6 × 100 KB records: both translated whole however they arrive.
#[test]
fn frames_past_the_hold_budget_are_translated_whole() {
    let value = |i: usize| Bytes::from((0..100_000).map(|j| (j as u8).wrapping_add(i as u8)).collect::<Vec<_>>());
    let messages: Vec<LegacyMessage> = (0..7)
        .map(|i| LegacyMessage {
            offset: i as i64,
            timestamp: None,
            log_append_time: false,
            key: Some(bytes(&format!("k{i}"))),
            value: Some(value(i)),
        })
        .collect();
    let set = message_set::encode_message_set(&messages, 0, Compression::None).unwrap();
    let produce_body = ProduceRequest::default().with_acks(1).with_timeout_ms(1500).with_topic_data(vec![TopicProduceData::default()
        .with_name(name(TOPIC))
        .with_partition_data(vec![PartitionProduceData::default().with_index(3).with_records(Some(set))])]);
    let produce_frame = old_request(ApiKey::Produce, 1, 101, &produce::encode_request(1, &produce_body).unwrap());
    let fetch_frame = old_fetch(1, 102);
    let records: Vec<BatchRecord> = (0..6)
        .map(|i| BatchRecord {
            offset: 500 + i as i64,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(value(i)),
            headers: Vec::new(),
        })
        .collect();
    let batch = message_set::encode_record_batch(&records, &BatchOptions::default()).unwrap();
    let fetch_answer = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(name(TOPIC))
        .with_partitions(vec![PartitionData::default().with_partition_index(0).with_high_watermark(506).with_records(Some(batch))])]);
    let produce_answer = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
        .with_name(name(TOPIC))
        .with_partition_responses(vec![PartitionProduceResponse::default().with_index(3).with_base_offset(900)])]);
    let answers = [
        response(ApiKey::Produce, 3, 101, ResponseKind::Produce(produce_answer)),
        response(ApiKey::Fetch, 4, 102, ResponseKind::Fetch(fetch_answer)),
    ]
    .concat();
    for sizes in [&[usize::MAX][..], &[1], &[4096], &[65_536, 3], &[300_000, 7]] {
        let mut proxy = Proxy::new(PRESET);
        proxy.deliver(Dir::Request, &[produce_frame.clone(), fetch_frame.clone()].concat(), sizes);
        assert_eq!(proxy.closed, None, "{sizes:?}");
        assert!(proxy.requests.buffer.is_empty(), "{sizes:?}: requests held");
        let sent = frames(&proxy.requests.forwarded);
        assert_eq!(sent.len(), 2, "{sizes:?}");
        let request = decode_request(&sent[0]);
        assert_eq!((request.api_key, request.header.request_api_version, request.header.correlation_id), (ApiKey::Produce, 3, 101));
        let RequestKind::Produce(p) = request.body else { panic!() };
        assert_eq!(p.acks, 1);
        let partition = &p.topic_data[0].partition_data[0];
        assert_eq!(partition.index, 3);
        let batches = message_set::read_record_batches(partition.records.as_ref().unwrap()).unwrap();
        assert_eq!(batches.len(), 1, "{sizes:?}");
        let got: Vec<(Option<Bytes>, Option<Bytes>)> = batches[0].records.iter().map(|r| (r.key.clone(), r.value.clone())).collect();
        let expected: Vec<(Option<Bytes>, Option<Bytes>)> = messages.iter().map(|m| (m.key.clone(), m.value.clone())).collect();
        assert!(got == expected, "{sizes:?}: the 7 records reach the broker");
        let fetch_request = decode_request(&sent[1]);
        assert_eq!((fetch_request.api_key, fetch_request.header.request_api_version), (ApiKey::Fetch, 4), "{sizes:?}");

        proxy.deliver(Dir::Response, &answers, sizes);
        assert_eq!(proxy.closed, None, "{sizes:?}");
        assert!(proxy.responses.buffer.is_empty(), "{sizes:?}: responses held");
        let got = frames(&proxy.responses.forwarded);
        assert_eq!(got.len(), 2, "{sizes:?}");
        let (id, old) = old_response(&got[0]);
        assert_eq!(id, 101);
        let produced = produce::decode_response(1, old).unwrap();
        assert_eq!(produced.responses[0].partition_responses[0].base_offset, 900, "{sizes:?}");
        let (id, old) = old_response(&got[1]);
        assert_eq!(id, 102);
        let f = fetch::decode_response(1, old).unwrap();
        let set = f.responses[0].partitions[0].records.as_ref().unwrap();
        let messages = message_set::read_message_set(set, PartialTail::Reject).unwrap();
        let got: Vec<(i64, Option<Bytes>)> = messages.iter().map(|m| (m.offset, m.value.clone())).collect();
        let expected: Vec<(i64, Option<Bytes>)> = records.iter().map(|r| (r.offset, r.value.clone())).collect();
        assert!(got == expected, "{sizes:?}: the 6 records reach the client");
        assert_eq!(proxy.conn.in_flight(), 0, "{sizes:?}");
        if sizes[0] < 500_000 {
            assert!(proxy.sink.sum(|m| matches!(m, Metric::FramesHeldInVm { .. })) >= 2, "{sizes:?}: both held frames moved into the VM");
        }
    }
}
