//! The filter's per-connection state machine on real recorded traffic (kafka-python,
//! confluent-kafka, kcat against tansu), in the recorded interleaving of requests and responses,
//! re-chunked at random: the metrics never depend on where Envoy cuts the stream, and they are
//! exact.

#[path = "../../codec/tests/common/trace.rs"]
mod trace;

use std::collections::HashMap;

use kafka_lens_codec::frame::SliceSource;
use kafka_lens_filter::config::Config;
use kafka_lens_filter::connection::{Connection, Limits, Protocol, Verdict};
use kafka_lens_filter::metrics::{Direction, Metric, MetricSink};
use kafka_lens_filter::testing::TestSink;
use proptest::prelude::*;
use trace::{Dir, Trace};

fn replay(t: &Trace, chunk_sizes: &[usize]) -> HashMap<Metric, i64> {
    let mut sink = TestSink::default();
    replay_into(t, chunk_sizes, &mut sink);
    sink.metrics.retain(|_, v| *v != 0);
    sink.metrics
}

/// Replays one connection into `sink`, which may carry shared data from earlier connections.
fn replay_into(t: &Trace, chunk_sizes: &[usize], sink: &mut TestSink) {
    let sink: &mut dyn MetricSink = sink;
    let mut conn = Connection::new(Limits::from(&Config::default()));
    let mut sizes = chunk_sizes.iter().cycle();
    for (dir, chunk) in &t.chunks {
        let mut pos = 0;
        while pos < chunk.len() {
            let n = (*sizes.next().unwrap()).max(1).min(chunk.len() - pos);
            let mut source = SliceSource(&chunk[pos..pos + n]);
            let verdict = match dir {
                Dir::Request => conn.on_request_data(&mut source, n, sink),
                Dir::Response => conn.on_response_data(&mut source, n, sink),
            };
            assert_eq!(verdict, Verdict::Continue);
            pos += n;
        }
    }
    assert_eq!(conn.protocol(), Protocol::Kafka);
    conn.on_close(sink);
}

/// Request frames per API, counted independently of the codec from the raw stream.
fn requests_by_api(t: &Trace) -> HashMap<i16, i64> {
    let stream = t.stream(Dir::Request);
    let mut out = HashMap::new();
    let mut rest = &stream[..];
    while rest.len() >= 6 {
        let size = i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let key = i16::from_be_bytes(rest[4..6].try_into().unwrap());
        *out.entry(key).or_insert(0) += 1;
        rest = &rest[4 + size..];
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn metrics_do_not_depend_on_chunking(chunk_sizes in prop::collection::vec(
        prop_oneof![4 => 1usize..8, 3 => 8usize..300, 1 => 300usize..70_000], 1..30)) {
        for t in trace::load_all() {
            let whole = replay(&t, &[usize::MAX]);
            let chunked = replay(&t, &chunk_sizes);
            prop_assert_eq!(chunked, whole, "{}", t.path.display());
        }
    }
}

#[test]
fn metrics_are_exact_on_real_traffic() {
    let mut produced: HashMap<String, i64> = HashMap::new();
    for t in trace::load_all() {
        let m = replay(&t, &[usize::MAX]);
        let get = |metric: Metric| m.get(&metric).copied().unwrap_or(0);
        for (key, n) in requests_by_api(&t) {
            let api = kafka_lens_codec::api::name_of_raw(key);
            let counted: i64 = m.iter().filter(|(k, _)| matches!(k, Metric::Requests { api: a, .. } if *a == api)).map(|(_, v)| v).sum();
            assert_eq!(counted, n, "{} {api}", t.path.display());
        }
        // Produce requests carry the producer's client id (tests/record_traces.py; kcat's default).
        for (k, _) in &m {
            if let Metric::Requests { api: "Produce", client, .. } = k {
                assert!(["trace-producer", "rdkafka"].contains(&client.client_id.as_str()), "{client}");
            }
        }
        let errors: Vec<_> = m
            .iter()
            .filter(|(k, _)| matches!(k, Metric::BodyDecodeErrors { .. } | Metric::ScanErrors { .. } | Metric::UndecodableFrames { .. } | Metric::UnmatchedResponses))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", t.path.display());
        assert_eq!(get(Metric::InFlightRequests), 0, "gauge released at close");
        let client = t.path.parent().unwrap().file_name().unwrap().to_string_lossy().to_string();
        *produced.entry(client).or_insert(0) += get(Metric::Records { api: "Produce", direction: Direction::Request });
    }
    // Each client produced exactly 200 records (tests/record_traces.py), counted from batch headers.
    for client in ["kafka-python", "confluent-kafka", "kcat"] {
        assert_eq!(produced.get(client), Some(&200), "{client}: {produced:?}");
    }
}


/// Each client's connections replayed in order through one sink, as through one Envoy: shared
/// data (topic ids learned from Metadata) carries over from connection to connection.
#[test]
fn topic_and_group_metrics_are_exact_on_real_traffic() {
    let mut by_client: HashMap<String, TestSink> = HashMap::new();
    for t in trace::load_all() {
        let client = t.path.parent().unwrap().file_name().unwrap().to_string_lossy().to_string();
        replay_into(&t, &[usize::MAX], by_client.entry(client).or_default());
    }
    for (client, sink) in &by_client {
        let topic = format!("trace-{}", client.replace("confluent-kafka", "confluent"));
        let sum = |f: &dyn Fn(&Metric) -> bool| sink.sum(|m| f(m));
        let on_topic = |label: &kafka_lens_filter::labels::Label| label.as_str() == topic;
        // 200 records produced, all acknowledged (tests/record_traces.py), to the client's topic.
        assert_eq!(sum(&|m| matches!(m, Metric::ProduceRequestRecords { topic, .. } if on_topic(topic))), 200, "{client}");
        assert_eq!(sum(&|m| matches!(m, Metric::ProducedRecords { topic, acks: "all", .. } if on_topic(topic))), 200, "{client}");
        assert_eq!(sum(&|m| matches!(m, Metric::ProduceFailedRecords { .. })), 0, "{client}");
        // ... and consumed once each; Fetch v13+ names the topic by id, learned from Metadata.
        assert_eq!(sum(&|m| matches!(m, Metric::FetchedRecords { topic, .. } if on_topic(topic))), 200, "{client}");
        assert_eq!(sum(&|m| matches!(m, Metric::FetchedRecords { .. })), 200, "{client}");
        // The consumer joined its group, synced, committed and left.
        for api in ["JoinGroup", "SyncGroup", "OffsetCommit", "LeaveGroup"] {
            assert!(sum(&|m| matches!(m, Metric::GroupRequests { api: a, group, .. } if *a == api && group.as_str().starts_with("trace-"))) >= 1, "{client} {api}");
        }
        // The only error: the broker asking a new member to rejoin with its id (KIP-394).
        let errors: Vec<_> = sink.metrics.iter().filter(|(m, v)| matches!(m, Metric::ResponseErrors { .. }) && **v != 0).collect();
        assert!(errors.iter().all(|(m, _)| matches!(m, Metric::ResponseErrors { api: "JoinGroup", error: "MEMBER_ID_REQUIRED", .. })), "{client}: {errors:?}");
        // Gauges released when the connections closed.
        assert_eq!(sum(&|m| matches!(m, Metric::FetchLag { .. } | Metric::ClientSoftware { .. } | Metric::InFlightRequests)), 0, "{client}");
    }
    // Clients that announce their software (ApiVersions v3+) were seen doing so.
    let announced = |client: &str| by_client[client].metrics.keys().any(|m| matches!(m, Metric::ClientSoftware { .. }));
    assert!(announced("confluent-kafka") && announced("kcat"));
}

