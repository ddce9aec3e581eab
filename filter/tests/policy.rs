//! The policy path end to end at the connection level, on an in-memory stand-in for Envoy's
//! buffers with Envoy's exact edit semantics (prefix replace only; `Pause` keeps the bytes and the
//! next callback sees them again followed by the new ones): refused requests are replaced by the
//! placeholder under their correlation id, the broker's answer to it by the refusal, allowed
//! requests and records pass byte for byte, and responses stay in request order however the
//! streams are cut.

use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_lens_codec::body;
use kafka_lens_codec::kafka_protocol::messages::{
    api_versions_response::ApiVersion, create_topics_request::CreatableTopic, metadata_request::MetadataRequestTopic,
    produce_request::{PartitionProduceData, TopicProduceData},
    produce_response::{PartitionProduceResponse, TopicProduceResponse},
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind, TopicName,
};
use kafka_lens_codec::kafka_protocol::protocol::StrBytes;
use kafka_lens_filter::config::Config;
use kafka_lens_filter::connection::{Connection, Limits, Verdict};
use kafka_lens_filter::metrics::Metric;
use kafka_lens_filter::policy::Policy;
use kafka_lens_filter::refuse;
use kafka_lens_filter::testing::{Side, TestSink};
use proptest::prelude::*;

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
}

impl Proxy {
    fn new(config: &str) -> Self {
        let config = Config::parse(config.as_bytes()).expect("config");
        let conn = Connection::new(Limits::from(&config))
            .with_policy(Rc::new(Policy::new(config.policy.clone())))
            .with_broker_addresses(Rc::new(config.broker_addresses.clone()));
        Proxy { conn, sink: TestSink::default(), requests: Side::default(), responses: Side::default(), closed: None }
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
            if let Verdict::Close(reason) = verdict {
                self.closed = Some(reason);
            }
            pos += n;
        }
    }
}

fn header(key: ApiKey, version: i16, correlation_id: i32) -> RequestHeader {
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("shop")))
}

fn request(key: ApiKey, version: i16, correlation_id: i32, body: RequestKind) -> Vec<u8> {
    body::encode_request(&header(key, version, correlation_id), &body).expect("encode").to_vec()
}

fn response(key: ApiKey, version: i16, correlation_id: i32, body: ResponseKind) -> Vec<u8> {
    body::encode_response(&ResponseHeader::default().with_correlation_id(correlation_id), &body, key, version).expect("encode").to_vec()
}

/// A magic-2 record batch of `records` records with `payload` bytes of record data.
fn batch(records: i32, codec: i16, payload: usize, producer_id: i64) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i64(0);
    b.put_i32((49 + payload) as i32);
    b.put_i32(-1);
    b.put_i8(2);
    b.put_u32(0);
    b.put_i16(codec);
    b.put_i32(records - 1);
    b.put_i64(1_700_000_000_000);
    b.put_i64(1_700_000_000_000);
    b.put_i64(producer_id);
    b.put_i16(if producer_id >= 0 { 0 } else { -1 });
    b.put_i32(if producer_id >= 0 { 0 } else { -1 });
    b.put_i32(records);
    b.extend((0..payload).map(|i| (i * 7 + 3) as u8));
    b.freeze()
}

fn produce(correlation_id: i32, acks: i16, topics: &[(&str, Bytes)]) -> Vec<u8> {
    let data = topics
        .iter()
        .map(|(name, records)| {
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records.clone()))])
        })
        .collect();
    request(ApiKey::Produce, 9, correlation_id, RequestKind::Produce(ProduceRequest::default().with_acks(acks).with_timeout_ms(30_000).with_topic_data(data)))
}

fn metadata(correlation_id: i32) -> Vec<u8> {
    let body = MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str("orders"))))]));
    request(ApiKey::Metadata, 12, correlation_id, RequestKind::Metadata(body))
}

fn metadata_response(correlation_id: i32) -> Vec<u8> {
    response(ApiKey::Metadata, 12, correlation_id, ResponseKind::Metadata(MetadataResponse::default().with_cluster_id(Some(StrBytes::from_static_str("c")))))
}

/// The broker's answer to the placeholder: ApiVersions v0.
fn placeholder_answer(correlation_id: i32) -> Vec<u8> {
    let body = ApiVersionsResponse::default().with_api_keys(vec![ApiVersion::default().with_api_key(0).with_min_version(0).with_max_version(11)]);
    response(ApiKey::ApiVersions, 0, correlation_id, ResponseKind::ApiVersions(body))
}

fn produce_response(correlation_id: i32, topics: &[&str]) -> Vec<u8> {
    let topics = topics
        .iter()
        .map(|t| {
            TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_string(t.to_string())))
                .with_partition_responses(vec![PartitionProduceResponse::default().with_index(0).with_base_offset(42)])
        })
        .collect();
    response(ApiKey::Produce, 9, correlation_id, ResponseKind::Produce(ProduceResponse::default().with_responses(topics)))
}

/// Splits a stream into its frames (size prefix included).
fn frames(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = stream;
    while rest.len() >= 4 {
        let n = 4 + i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    assert!(rest.is_empty(), "trailing bytes");
    out
}

fn decode_produce_response(frame: &[u8]) -> (i32, ProduceResponse) {
    let decoded = body::decode_response(&Bytes::copy_from_slice(&frame[4..]), ApiKey::Produce, 9).expect("decodes as Produce v9");
    let ResponseKind::Produce(p) = decoded.body else { panic!() };
    (decoded.header.correlation_id, p)
}

const ACKS_RULE: &str = r#"{"policy": {"rules": [
    {"name": "payments-acks", "match": {"topics": [{"prefix": "payments."}]}, "produce": {"acks": [-1]}}]}}"#;

fn sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![3 => 1usize..16, 2 => 16usize..300, 1 => 300usize..5000], 1..12)
}

/// Pipelined: an allowed request, a refused one, an allowed one; any cut of either stream.
fn pipelined_violation_in_the_middle(config: &str, request_sizes: &[usize], response_sizes: &[usize]) -> Proxy {
    pipelined_after(config, metadata(1), request_sizes, response_sizes)
}

/// The same, behind `first` (correlation id 1, answered by a Metadata response).
fn pipelined_after(config: &str, first: Vec<u8>, request_sizes: &[usize], response_sizes: &[usize]) -> Proxy {
    let mut proxy = Proxy::new(config);
    let bad = produce(2, 1, &[("payments.cards", batch(3, 0, 700, -1))]);
    let stream = [first.clone(), bad, metadata(3)].concat();
    proxy.deliver(Dir::Request, &stream, request_sizes);
    assert!(proxy.requests.buffer.is_empty(), "requests held after the stream ended");
    assert_eq!(proxy.requests.forwarded, [first, refuse::placeholder(2).to_vec(), metadata(3)].concat());
    let answers = [metadata_response(1), placeholder_answer(2), metadata_response(3)].concat();
    proxy.deliver(Dir::Response, &answers, response_sizes);
    assert!(proxy.responses.buffer.is_empty(), "responses held after the stream ended");
    let got = frames(&proxy.responses.forwarded);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], metadata_response(1));
    assert_eq!(got[2], metadata_response(3));
    let (correlation_id, refused) = decode_produce_response(&got[1]);
    assert_eq!(correlation_id, 2);
    let partition = &refused.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 21, "INVALID_REQUIRED_ACKS");
    assert!(partition.error_message.as_ref().unwrap().contains("payments-acks"));
    assert_eq!(proxy.closed, None);
    proxy
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_refusal_keeps_its_place_in_the_response_order(request_sizes in sizes(), response_sizes in sizes()) {
        pipelined_violation_in_the_middle(ACKS_RULE, &request_sizes, &response_sizes);
    }

    #[test]
    fn a_small_hold_budget_moves_held_bytes_into_the_vm_and_keeps_the_stream_whole(request_sizes in sizes(), response_sizes in sizes()) {
        pipelined_after(SMALL_BUDGET, big_unpoliced_request(), &request_sizes, &response_sizes);
    }
}

const SMALL_BUDGET: &str = r#"{"policy": {"hold_budget_bytes": 1024, "rules": [
    {"name": "payments-acks", "match": {"topics": [{"prefix": "payments."}]}, "produce": {"acks": [-1]}}]}}"#;

/// A request no rule concerns, larger than the small hold budget, under correlation id 1. (A
/// Produce that large would be refused unread: the rule needs its body.)
fn big_unpoliced_request() -> Vec<u8> {
    let topics = (0..200).map(|i| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(format!("topic-{i:04}")))))).collect();
    request(ApiKey::Metadata, 12, 1, RequestKind::Metadata(MetadataRequest::default().with_topics(Some(topics))))
}

#[test]
fn held_bytes_move_into_the_vm_when_a_pause_would_exceed_the_budget() {
    // The big allowed request and the start of the refused one arrive together: pausing would keep
    // more than the budget in Envoy's buffer, so the refused one's first bytes move into the VM.
    let first = big_unpoliced_request();
    let proxy = pipelined_after(SMALL_BUDGET, first.clone(), &[first.len() + 100, 7, 50, 5000], &[usize::MAX]);
    assert!(proxy.sink.sum(|m| matches!(m, Metric::FramesHeldInVm { .. })) >= 1);
}

#[test]
fn refusals_are_counted_per_rule_api_client_and_topic() {
    let proxy = pipelined_violation_in_the_middle(ACKS_RULE, &[usize::MAX], &[usize::MAX]);
    let refused = proxy.sink.sum(|m| {
        matches!(m, Metric::PolicyDecisions { rule, action: "refused", api: "Produce", topic, client }
            if rule.as_str() == "payments-acks" && topic.as_str() == "payments.cards" && client.client_id.as_str() == "shop")
    });
    assert_eq!(refused, 1);
}

#[test]
fn allowed_produce_passes_byte_for_byte() {
    let mut proxy = Proxy::new(ACKS_RULE);
    let good = produce(5, -1, &[("payments.cards", batch(10, 4, 3000, 7))]);
    let other = produce(6, 1, &[("orders", batch(2, 0, 100, -1))]);
    let stream = [good, other].concat();
    proxy.deliver(Dir::Request, &stream, &[100, 3, 2000]);
    assert_eq!(proxy.requests.forwarded, stream);
    assert_eq!(proxy.sink.sum(|m| matches!(m, Metric::PolicyDecisions { .. })), 0);
}

#[test]
fn acks_zero_violations_are_dropped_without_an_answer() {
    let mut proxy = Proxy::new(ACKS_RULE);
    let stream = [metadata(1), produce(2, 0, &[("payments.cards", batch(1, 0, 10, -1))]), metadata(3)].concat();
    proxy.deliver(Dir::Request, &stream, &[usize::MAX]);
    assert_eq!(proxy.requests.forwarded, [metadata(1), metadata(3)].concat());
    assert_eq!(proxy.sink.sum(|m| matches!(m, Metric::PolicyDecisions { action: "dropped", .. })), 1);
}

#[test]
fn audit_mode_forwards_and_counts() {
    let config = r#"{"policy": {"rules": [{"name": "acks-audit", "mode": "audit", "produce": {"acks": [-1]}}]}}"#;
    let mut proxy = Proxy::new(config);
    let stream = produce(2, 1, &[("payments.cards", batch(3, 0, 70, -1))]);
    proxy.deliver(Dir::Request, &stream, &[7]);
    assert_eq!(proxy.requests.forwarded, stream);
    assert_eq!(proxy.sink.sum(|m| matches!(m, Metric::PolicyDecisions { action: "audited", .. })), 1);
}

#[test]
fn a_mixed_request_loses_only_the_refused_topics_and_gets_their_errors_merged() {
    let config = r#"{"policy": {"rules": [{"name": "no-payments", "match": {"topics": [{"prefix": "payments."}]}, "deny": true}]}}"#;
    let mut proxy = Proxy::new(config);
    let orders = batch(4, 0, 500, -1);
    let stream = produce(9, -1, &[("payments.cards", batch(3, 0, 300, -1)), ("orders", orders.clone())]);
    proxy.deliver(Dir::Request, &stream, &[50]);
    let forwarded = frames(&proxy.requests.forwarded);
    assert_eq!(forwarded.len(), 1);
    let kept = body::decode_request(&Bytes::copy_from_slice(&forwarded[0][4..])).unwrap();
    let RequestKind::Produce(kept) = kept.body else { panic!() };
    assert_eq!(kept.topic_data.len(), 1);
    assert_eq!(kept.topic_data[0].name.as_str(), "orders");
    assert_eq!(kept.topic_data[0].partition_data[0].records.as_ref(), Some(&orders), "records byte-identical");
    proxy.deliver(Dir::Response, &produce_response(9, &["orders"]), &[11]);
    let (correlation_id, merged) = decode_produce_response(&proxy.responses.forwarded);
    assert_eq!(correlation_id, 9);
    let by_topic: Vec<(String, i16)> = merged.responses.iter().map(|t| (t.name.to_string(), t.partition_responses[0].error_code)).collect();
    assert_eq!(by_topic, vec![("orders".to_string(), 0), ("payments.cards".to_string(), 29)]);
}

#[test]
fn a_request_too_large_to_inspect_is_refused_as_it_passes() {
    let config = r#"{"policy": {"hold_budget_bytes": 4096, "max_inspect_bytes": 8192,
        "rules": [{"name": "compression", "produce": {"compression": ["zstd"]}}]}}"#;
    let mut proxy = Proxy::new(config);
    let big = produce(2, -1, &[("orders", batch(50, 4, 20_000, -1))]);
    let stream = [metadata(1), big, metadata(3)].concat();
    proxy.deliver(Dir::Request, &stream, &[1000, 37]);
    assert_eq!(proxy.requests.forwarded, [metadata(1), refuse::placeholder(2).to_vec(), metadata(3)].concat());
    proxy.deliver(Dir::Response, &[metadata_response(1), placeholder_answer(2), metadata_response(3)].concat(), &[5]);
    let got = frames(&proxy.responses.forwarded);
    let (_, refused) = decode_produce_response(&got[1]);
    assert_eq!(refused.responses[0].partition_responses[0].error_code, 10, "MESSAGE_TOO_LARGE");
}

const COMPRESSION_SMALL_BUDGET: &str = r#"{"policy": {"hold_budget_bytes": 4096,
    "rules": [{"name": "compression", "produce": {"compression": ["zstd"]}}]}}"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Larger than the hold budget (Envoy's buffer would stop reading): held in the VM as its
    /// bytes arrive, inspected whole, forwarded byte for byte or refused.
    #[test]
    fn a_request_larger_than_the_hold_budget_is_held_in_the_vm_and_inspected(request_sizes in sizes()) {
        let allowed = produce(2, -1, &[("orders", batch(50, 4, 20_000, -1))]);
        let refused = produce(3, -1, &[("orders", batch(50, 1, 20_000, -1))]);
        let mut proxy = Proxy::new(COMPRESSION_SMALL_BUDGET);
        let stream = [metadata(1), allowed.clone(), refused, metadata(4)].concat();
        proxy.deliver(Dir::Request, &stream, &request_sizes);
        prop_assert!(proxy.requests.buffer.is_empty());
        prop_assert_eq!(&proxy.requests.forwarded, &[metadata(1), allowed, refuse::placeholder(3).to_vec(), metadata(4)].concat());
        let refusals = proxy.sink.sum(|m| matches!(m, Metric::PolicyDecisions { action: "refused", .. }));
        prop_assert_eq!(refusals, 1);
    }
}

#[test]
fn a_large_request_through_the_vm_is_counted_and_envoys_buffer_stays_small() {
    let mut proxy = Proxy::new(COMPRESSION_SMALL_BUDGET);
    let allowed = produce(2, -1, &[("orders", batch(50, 4, 20_000, -1))]);
    let mut most = 0;
    for chunk in allowed.chunks(1500) {
        proxy.deliver(Dir::Request, chunk, &[usize::MAX]);
        most = most.max(proxy.requests.buffer.len());
    }
    assert_eq!(proxy.requests.forwarded, allowed);
    assert!(most <= 4096 + 1500, "Envoy's buffer held {most} bytes");
    assert!(proxy.sink.sum(|m| matches!(m, Metric::FramesHeldInVm { .. })) >= 1);
}

#[test]
fn create_topics_naming_convention() {
    let config = r#"{"policy": {"rules": [{"name": "naming", "create_topics": {"name_pattern": "[a-z]+\\.[a-z]+", "replication_factor": {"max": 3}}}]}}"#;
    let mut proxy = Proxy::new(config);
    let topics = vec![CreatableTopic::default().with_name(TopicName(StrBytes::from_static_str("Bad_Name"))).with_num_partitions(1).with_replication_factor(1)];
    let stream = request(ApiKey::CreateTopics, 5, 4, RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(topics)));
    proxy.deliver(Dir::Request, &stream, &[9]);
    assert_eq!(proxy.requests.forwarded, refuse::placeholder(4).to_vec());
    proxy.deliver(Dir::Response, &placeholder_answer(4), &[3]);
    let decoded = body::decode_response(&Bytes::copy_from_slice(&proxy.responses.forwarded[4..]), ApiKey::CreateTopics, 5).unwrap();
    let ResponseKind::CreateTopics(created) = decoded.body else { panic!() };
    assert_eq!(created.topics[0].error_code, 17, "INVALID_TOPIC_EXCEPTION");
}

#[test]
fn api_versions_are_narrowed_to_what_the_filter_decodes() {
    let mut proxy = Proxy::new(ACKS_RULE);
    proxy.deliver(Dir::Request, &request(ApiKey::ApiVersions, 3, 1, RequestKind::ApiVersions(ApiVersionsRequest::default())), &[5]);
    let keys = vec![
        ApiVersion::default().with_api_key(0).with_min_version(0).with_max_version(99),
        ApiVersion::default().with_api_key(1).with_min_version(4).with_max_version(12),
        ApiVersion::default().with_api_key(999).with_min_version(0).with_max_version(1),
    ];
    proxy.deliver(Dir::Response, &response(ApiKey::ApiVersions, 3, 1, ResponseKind::ApiVersions(ApiVersionsResponse::default().with_api_keys(keys))), &[6]);
    let decoded = body::decode_response(&Bytes::copy_from_slice(&proxy.responses.forwarded[4..]), ApiKey::ApiVersions, 3).unwrap();
    let ResponseKind::ApiVersions(v) = decoded.body else { panic!() };
    let ranges: Vec<(i16, i16, i16)> = v.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
    // Produce: cut to the codec's range, and to v12 (topics by name) since a topic rule concerns
    // Produce; Fetch kept (no topic rule concerns it); the unknown API removed.
    let produce_min = kafka_lens_codec::api::versions(ApiKey::Produce).min;
    assert_eq!(ranges, vec![(0, produce_min, 12), (1, 4, 12)]);
}

#[test]
fn without_a_policy_nothing_is_held_or_edited() {
    let mut proxy = Proxy::new("{}");
    let stream = [metadata(1), produce(2, 1, &[("payments.cards", batch(3, 0, 700, -1))])].concat();
    proxy.deliver(Dir::Request, &stream, &[13]);
    assert_eq!(proxy.requests.forwarded, stream);
}

fn api_versions_v3(correlation_id: i32, software: &str, version: &str) -> Vec<u8> {
    let body = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_string(software.into()))
        .with_client_software_version(StrBytes::from_string(version.into()));
    request(ApiKey::ApiVersions, 3, correlation_id, RequestKind::ApiVersions(body))
}

#[test]
fn a_client_announcing_old_software_is_refused_after_its_api_versions() {
    let config = r#"{"policy": {"rules": [{"name": "modern-clients",
        "client_software": {"min_versions": {"confluent-kafka-python": "2.0.0"}}}]}}"#;
    for (version, refused) in [("1.9.2", true), ("2.16.0-rdkafka-2.16.0", false), ("10.0", false)] {
        let mut proxy = Proxy::new(config);
        let hello = api_versions_v3(1, "confluent-kafka-python", version);
        proxy.deliver(Dir::Request, &[hello.clone(), metadata(2)].concat(), &[3]);
        let expected = if refused { refuse::placeholder(2).to_vec() } else { metadata(2) };
        assert_eq!(proxy.requests.forwarded, [hello, expected].concat(), "{version}");
    }
}

// --- broker addresses --------------------------------------------------------------------------

const NODE_ENDPOINTS_REWRITE: &str = r#"{"broker_addresses": {"node_endpoints": "rewrite", "rewrite": [
    {"node_id": 2, "advertise": "proxy.example:19094"},
    {"broker": "broker-0.internal:9092", "advertise": "proxy.example:19092"}]}}"#;

#[test]
fn node_endpoints_in_a_produce_response_are_rewritten_and_the_records_pass() {
    use kafka_lens_codec::kafka_protocol::messages::{produce_response::NodeEndpoint, BrokerId};
    let mut proxy = Proxy::new(NODE_ENDPOINTS_REWRITE);
    let stream = produce(1, -1, &[("orders", batch(5, 0, 400, -1))]);
    let v10 = |frame: Vec<u8>| {
        // The same request at v10 (identical body layout to v9).
        let mut f = frame;
        f[7] = 10;
        f
    };
    let request = v10(stream);
    proxy.deliver(Dir::Request, &request, &[17]);
    assert_eq!(proxy.requests.forwarded, request, "requests are not edited");
    let endpoints = vec![
        NodeEndpoint::default().with_node_id(BrokerId(2)).with_host(StrBytes::from_static_str("broker-2.internal")).with_port(9092),
        NodeEndpoint::default().with_node_id(BrokerId(7)).with_host(StrBytes::from_static_str("broker-0.internal")).with_port(9092),
    ];
    let answer = response(ApiKey::Produce, 10, 1, ResponseKind::Produce(ProduceResponse::default().with_node_endpoints(endpoints)));
    proxy.deliver(Dir::Response, &answer, &[5, 300]);
    let decoded = body::decode_response(&Bytes::copy_from_slice(&proxy.responses.forwarded[4..]), ApiKey::Produce, 10).unwrap();
    let ResponseKind::Produce(p) = decoded.body else { panic!() };
    let got: Vec<(i32, String, i32)> = p.node_endpoints.iter().map(|e| (e.node_id.0, e.host.to_string(), e.port)).collect();
    assert_eq!(got, vec![(2, "proxy.example".into(), 19094), (7, "proxy.example".into(), 19092)]);
    assert_eq!(proxy.sink.sum(|m| matches!(m, Metric::AddressesRewritten { api: "Produce" })), 2);
}

#[test]
fn capping_keeps_node_endpoints_out_by_advertising_older_produce_and_fetch() {
    let config = r#"{"broker_addresses": {"rewrite": [{"node_id": 0, "advertise": "proxy:19092"}]}}"#;
    let mut proxy = Proxy::new(config);
    proxy.deliver(Dir::Request, &request(ApiKey::ApiVersions, 3, 1, RequestKind::ApiVersions(ApiVersionsRequest::default())), &[5]);
    let keys = vec![
        ApiVersion::default().with_api_key(0).with_min_version(3).with_max_version(12),
        ApiVersion::default().with_api_key(1).with_min_version(4).with_max_version(17),
        ApiVersion::default().with_api_key(3).with_min_version(0).with_max_version(12),
    ];
    proxy.deliver(Dir::Response, &response(ApiKey::ApiVersions, 3, 1, ResponseKind::ApiVersions(ApiVersionsResponse::default().with_api_keys(keys))), &[9]);
    let decoded = body::decode_response(&Bytes::copy_from_slice(&proxy.responses.forwarded[4..]), ApiKey::ApiVersions, 3).unwrap();
    let ResponseKind::ApiVersions(v) = decoded.body else { panic!() };
    let ranges: Vec<(i16, i16, i16)> = v.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
    assert_eq!(ranges, vec![(0, 3, 9), (1, 4, 15), (3, 0, 12)]);
}

#[test]
fn metadata_brokers_are_advertised_as_the_proxy() {
    use kafka_lens_codec::kafka_protocol::messages::{metadata_response::MetadataResponseBroker, BrokerId};
    let mut proxy = Proxy::new(NODE_ENDPOINTS_REWRITE);
    proxy.deliver(Dir::Request, &metadata(4), &[3]);
    let brokers = vec![
        MetadataResponseBroker::default().with_node_id(BrokerId(0)).with_host(StrBytes::from_static_str("broker-0.internal")).with_port(9092),
        MetadataResponseBroker::default().with_node_id(BrokerId(2)).with_host(StrBytes::from_static_str("broker-2.internal")).with_port(9092),
    ];
    let answer = response(ApiKey::Metadata, 12, 4, ResponseKind::Metadata(MetadataResponse::default().with_brokers(brokers)));
    // Behind another response in the same read, and cut: the rewrite copies what precedes it.
    proxy.deliver(Dir::Request, &metadata(5), &[100]);
    proxy.deliver(Dir::Response, &[answer, metadata_response(5)].concat(), &[7, 1000]);
    let got = frames(&proxy.responses.forwarded);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1], metadata_response(5));
    let decoded = body::decode_response(&Bytes::copy_from_slice(&got[0][4..]), ApiKey::Metadata, 12).unwrap();
    let ResponseKind::Metadata(m) = decoded.body else { panic!() };
    let hosts: Vec<(String, i32)> = m.brokers.iter().map(|b| (b.host.to_string(), b.port)).collect();
    assert_eq!(hosts, vec![("proxy.example".into(), 19092), ("proxy.example".into(), 19094)]);
}
