//! Topic renames and tenant prefixes at the connection level, on the in-memory stand-in for
//! Envoy's buffers (prefix replace only, `Pause` keeps the bytes): the broker receives exactly the
//! requests the client would have sent with the broker's names, records byte for byte; the client
//! receives exactly the broker's responses with its own names and without other tenants' topics;
//! however the streams are cut.

use std::rc::Rc;

use bytes::Bytes;
use kafka_lens_codec::body;
use kafka_lens_codec::kafka_protocol::messages::{
    fetch_request::FetchTopic,
    fetch_response::{FetchableTopicResponse, PartitionData},
    metadata_request::MetadataRequestTopic,
    metadata_response::MetadataResponseTopic,
    produce_request::{PartitionProduceData, TopicProduceData},
    produce_response::{PartitionProduceResponse, TopicProduceResponse},
    ApiKey, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader, RequestKind,
    ResponseHeader, ResponseKind, TopicName,
};
use kafka_lens_codec::kafka_protocol::protocol::StrBytes;
use kafka_lens_filter::config::Config;
use kafka_lens_filter::connection::{Connection, Limits, Verdict};
use kafka_lens_filter::metrics::{Direction, Metric};
use kafka_lens_filter::rewrite::TopicRewrite;
use kafka_lens_filter::testing::{Side, TestSink};

/// Renames and tenants; `align_records` off, so the broker gets byte for byte what the client
/// would have sent with the broker's names (padding is checked on its own below).
const CONFIG: &str = r#"{"topic_rewrite": {"renames": {"orders": "orders.v2"}, "align_records": false,
    "tenants": [{"name": "a", "prefix": "team-a.", "match": {"client_id": {"prefix": "team-a"}}},
                {"name": "b", "prefix": "team-b.", "match": {"client_id": {"prefix": "team-b"}}}]}}"#;

fn name(n: &str) -> TopicName {
    TopicName(StrBytes::from_string(n.to_owned()))
}

fn records(len: usize, seed: u8) -> Bytes {
    Bytes::from((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<_>>())
}

fn request(key: ApiKey, version: i16, id: i32, body: RequestKind) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(id)
        .with_client_id(Some(StrBytes::from_static_str("team-a-shop")));
    body::encode_request(&header, &body).unwrap().to_vec()
}

fn response(key: ApiKey, version: i16, id: i32, body: ResponseKind) -> Vec<u8> {
    body::encode_response(&ResponseHeader::default().with_correlation_id(id), &body, key, version).unwrap().to_vec()
}

/// The client's requests, written with topic names `t(client name)`.
fn requests(t: &dyn Fn(&str) -> String) -> Vec<u8> {
    let produce = |id, topics: &[(&str, usize)]| {
        let data = topics
            .iter()
            .map(|(n, len)| {
                TopicProduceData::default()
                    .with_name(name(&t(n)))
                    .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records(*len, *len as u8)))])
            })
            .collect();
        request(
            ApiKey::Produce,
            9,
            id,
            RequestKind::Produce(ProduceRequest::default().with_acks(-1).with_timeout_ms(1000).with_topic_data(data)),
        )
    };
    let metadata = MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name(&t("orders"))))]));
    let fetch = FetchRequest::default().with_topics(vec![FetchTopic::default().with_topic(name(&t("orders")))]);
    [
        request(ApiKey::Metadata, 12, 1, RequestKind::Metadata(metadata)),
        produce(2, &[("orders", 100_000)]),
        produce(3, &[("payments", 3_000), ("orders", 5_000)]),
        request(ApiKey::Fetch, 12, 4, RequestKind::Fetch(fetch)),
    ]
    .concat()
}

/// The broker's responses, with topic names `t(broker name)`; `others` adds topics of nobody's
/// or another tenant's to the metadata listing.
fn responses(t: &dyn Fn(&str) -> String, others: bool) -> Vec<u8> {
    let mut listed = vec![MetadataResponseTopic::default().with_name(Some(name(&t("team-a.orders.v2"))))];
    if others {
        listed.push(MetadataResponseTopic::default().with_name(Some(name("team-b.orders.v2"))));
        listed.push(MetadataResponseTopic::default().with_name(Some(name("orders"))));
    }
    let produced = |id, topics: &[&str]| {
        let topics = topics
            .iter()
            .map(|n| {
                TopicProduceResponse::default().with_name(name(&t(n))).with_partition_responses(vec![PartitionProduceResponse::default()])
            })
            .collect();
        response(ApiKey::Produce, 9, id, ResponseKind::Produce(ProduceResponse::default().with_responses(topics)))
    };
    let fetched = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(name(&t("team-a.orders.v2")))
        .with_partitions(vec![PartitionData::default().with_records(Some(records(70_000, 9)))])]);
    [
        response(ApiKey::Metadata, 12, 1, ResponseKind::Metadata(MetadataResponse::default().with_topics(listed))),
        produced(2, &["team-a.orders.v2"]),
        produced(3, &["team-a.payments", "team-a.orders.v2"]),
        response(ApiKey::Fetch, 12, 4, ResponseKind::Fetch(fetched)),
    ]
    .concat()
}

fn broker_name(client: &str) -> String {
    format!("team-a.{}", if client == "orders" { "orders.v2" } else { client })
}

fn client_name(broker: &str) -> String {
    let stripped = broker.strip_prefix("team-a.").unwrap_or(broker);
    if stripped == "orders.v2" {
        "orders".into()
    } else {
        stripped.into()
    }
}

fn run(sizes: &[usize]) -> (Side, Side, TestSink, Option<&'static str>) {
    run_with(CONFIG, sizes)
}

fn run_with(config: &str, sizes: &[usize]) -> (Side, Side, TestSink, Option<&'static str>) {
    let config = Config::parse(config.as_bytes()).unwrap();
    let mut conn = Connection::new(Limits::from(&config)).with_topic_rewrite(Rc::new(TopicRewrite::new(&config.topic_rewrite)));
    let mut sink = TestSink::default();
    let (mut to_broker, mut to_client) = (Side::default(), Side::default());
    let mut closed = None;
    for (dir, bytes) in [(0, requests(&|n| n.to_owned())), (1, responses(&|n| n.to_owned(), true))] {
        let mut pos = 0;
        let mut cycle = sizes.iter().cycle();
        while pos < bytes.len() && closed.is_none() {
            let n = (*cycle.next().unwrap()).max(1).min(bytes.len() - pos);
            let chunk = &bytes[pos..pos + n];
            let verdict = if dir == 0 {
                to_broker.deliver(chunk, |buf, len| conn.on_request_data(buf, len, &mut sink))
            } else {
                to_client.deliver(chunk, |buf, len| conn.on_response_data(buf, len, &mut sink))
            };
            if let Verdict::Close(reason) = verdict {
                closed = Some(reason);
            }
            pos += n;
        }
    }
    (to_broker, to_client, sink, closed)
}

#[test]
fn names_are_mapped_both_ways_and_records_pass_unchanged_however_the_stream_is_cut() {
    let expected_requests = requests(&broker_name);
    let expected_responses = responses(&client_name, false);
    for sizes in [&[usize::MAX][..], &[1], &[7, 13, 512], &[4096], &[65_536, 3]] {
        let (to_broker, to_client, sink, closed) = run(sizes);
        assert_eq!(closed, None, "{sizes:?}");
        assert!(to_broker.forwarded == expected_requests, "{sizes:?}: requests differ from the broker-named ones");
        assert!(to_client.forwarded == expected_responses, "{sizes:?}: responses differ from the client-named ones");
        assert!(to_broker.buffer.is_empty() && to_client.buffer.is_empty(), "{sizes:?}: bytes left held");
        // Metadata, both Produce, Fetch requests; Metadata, both Produce, Fetch responses.
        assert_eq!(sink.get(&Metric::TopicRewrites { api: "Produce", direction: Direction::Request }), 2, "{sizes:?}");
        assert_eq!(sink.get(&Metric::TopicRewrites { api: "Fetch", direction: Direction::Response }), 1, "{sizes:?}");
        assert_eq!(sink.get(&Metric::TopicRewriteHidden { api: "Metadata", direction: Direction::Response }), 2, "{sizes:?}");
    }
}

#[test]
fn a_single_topic_produce_is_renamed_at_its_start_without_holding_its_records() {
    // Chunks of 4 KiB: the 100 KB Produce passes chunk by chunk instead of being held.
    let (to_broker, _, sink, _) = run(&[4096]);
    assert_eq!(to_broker.forwarded, requests(&broker_name));
    assert_eq!(sink.sum(|m| matches!(m, Metric::FramesHeldInVm { .. })), 0);
}

/// The frames of a stream, size prefix included.
fn frames(mut stream: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while stream.len() >= 4 {
        let len = 4 + u32::from_be_bytes(stream[..4].try_into().unwrap()) as usize;
        out.push(&stream[..len]);
        stream = &stream[len..];
    }
    assert!(stream.is_empty());
    out
}

#[test]
fn renamed_produce_requests_are_padded_to_whole_cache_lines() {
    let config = CONFIG.replace(r#""align_records": false"#, r#""align_records": true"#);
    let (expected_requests, client_requests) = (requests(&broker_name), requests(&|n| n.to_owned()));
    for sizes in [&[usize::MAX][..], &[1], &[7, 13, 512], &[4096]] {
        let (to_broker, to_client, _, closed) = run_with(&config, sizes);
        assert_eq!(closed, None, "{sizes:?}");
        assert!(to_client.forwarded == responses(&client_name, false), "{sizes:?}: responses are not padded");
        let (sent, expected) = (frames(&to_broker.forwarded), frames(&expected_requests));
        assert_eq!(sent.len(), expected.len());
        for ((sent, expected), client) in sent.into_iter().zip(expected).zip(frames(&client_requests)) {
            let sent_request = body::decode_request(&Bytes::copy_from_slice(&sent[4..])).unwrap();
            let expected_request = body::decode_request(&Bytes::copy_from_slice(&expected[4..])).unwrap();
            assert_eq!(sent_request.body, expected_request.body, "{sizes:?}: same request, records byte for byte");
            if sent_request.header.request_api_key != ApiKey::Produce as i16 {
                assert_eq!(sent, expected, "{sizes:?}: only Produce is padded");
                continue;
            }
            assert_ne!(sent.len(), expected.len(), "{sizes:?}: the rename changed the size, so padding was added");
            assert_eq!((sent.len() as i64 - client.len() as i64).rem_euclid(64), 0, "{sizes:?}: size changed by whole cache lines");
            let tags = &sent_request.header.unknown_tagged_fields;
            assert_eq!(tags.keys().copied().collect::<Vec<_>>(), [0x4B4C], "{sizes:?}");
            assert_eq!(sent_request.header.with_unknown_tagged_fields(Default::default()), expected_request.header);
        }
    }
}

#[test]
fn produce_by_topic_id_passes_unchanged_under_renames_alone() {
    let config = Config::parse(br#"{"topic_rewrite": {"renames": {"orders": "orders.v2"}}}"#).unwrap();
    let mut conn = Connection::new(Limits::from(&config)).with_topic_rewrite(Rc::new(TopicRewrite::new(&config.topic_rewrite)));
    let mut sink = TestSink::default();
    let data = vec![TopicProduceData::default()
        .with_topic_id("00000000000000000000000000000007".parse().unwrap())
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records(5_000, 1)))])];
    let frame = request(ApiKey::Produce, 13, 1, RequestKind::Produce(ProduceRequest::default().with_acks(-1).with_topic_data(data)));
    let mut to_broker = Side::default();
    assert_eq!(to_broker.deliver(&frame, |buf, len| conn.on_request_data(buf, len, &mut sink)), Verdict::Continue);
    assert_eq!(to_broker.forwarded, frame);
    assert_eq!(sink.sum(|m| matches!(m, Metric::TopicRewriteFailures { .. })), 0);
}
