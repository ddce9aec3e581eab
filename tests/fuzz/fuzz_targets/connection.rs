//! The filter's per-connection state machine driven by arbitrary interleaved request and response
//! chunks: never panics, gauges return to zero at close, every close has its counted reason. Each
//! input runs twice: observing only (read-only buffers), and under a policy whose rules hold,
//! refuse, split and rewrite frames, with topic renames, a tenant prefix and old-version
//! translation (Kafka 4.0 minimums), on buffers with Envoy's edit semantics (prefix replace only;
//! a paused buffer is seen again, followed by the new bytes).
#![no_main]

use std::collections::HashMap;
use std::rc::Rc;

use kafka_lens_codec::frame::SliceSource;
use kafka_lens_filter::config::Config;
use kafka_lens_filter::connection::{Connection, Limits, Verdict};
use kafka_lens_filter::metrics::Metric;
use kafka_lens_filter::policy::Policy;
use kafka_lens_filter::rewrite::TopicRewrite;
use kafka_lens_filter::testing::Side;
use kafka_lens_filter::versions::Translation;
use libfuzzer_sys::fuzz_target;

const POLICY: &str = r#"{"max_frame_bytes": 65536, "max_in_flight": 8, "policy": {"hold_budget_bytes": 2048, "rules": [
    {"name": "acks", "match": {"topics": [{"prefix": "a"}]}, "produce": {"acks": [-1], "compression": ["none", "zstd"]}},
    {"name": "deny", "match": {"apis": ["DeleteTopics", "Metadata"], "client_id": {"regex": "x.*"}}, "deny": true},
    {"name": "names", "create_topics": {"name_pattern": "[a-z.]+", "partitions": {"max": 4}}},
    {"name": "fetch", "mode": "audit", "fetch": {"max_bytes": 1000}}]},
    "topic_rewrite": {"renames": {"a": "b", "c": "a.x"}, "tenants": [{"name": "t", "prefix": "t.", "match": {"client_id": {"prefix": "t"}}}]},
    "version_translation": {"enabled": true, "broker_preset": "kafka-4.0", "broker_versions": {"Metadata": {"min": 2}}}}"#;

fn check(conn: &mut Connection, mut sink: HashMap<Metric, i64>, closed: bool) {
    conn.on_close(&mut sink);
    assert_eq!(sink.get(&Metric::InFlightRequests).copied().unwrap_or(0), 0);
    let closes: i64 = sink.iter().filter(|(k, _)| matches!(k, Metric::ConnectionsClosedByFilter { .. })).map(|(_, v)| v).sum();
    assert_eq!(closes > 0, closed);
}

fuzz_target!(|chunks: Vec<(bool, &[u8])>| {
    let mut config = Config::default();
    config.max_frame_bytes = 64 * 1024;
    config.max_in_flight = 8;
    let mut conn = Connection::new(Limits::from(&config));
    let mut sink: HashMap<Metric, i64> = HashMap::new();
    let mut closed = false;
    for (is_request, chunk) in &chunks {
        let mut source = SliceSource(chunk);
        let verdict = if *is_request {
            conn.on_request_data(&mut source, chunk.len(), &mut sink)
        } else {
            conn.on_response_data(&mut source, chunk.len(), &mut sink)
        };
        closed |= matches!(verdict, Verdict::Close(_));
    }
    check(&mut conn, sink, closed);

    let Ok(config) = Config::parse(POLICY.as_bytes()) else { return };
    let mut conn = Connection::new(Limits::from(&config))
        .with_policy(Rc::new(Policy::new(config.policy.clone())))
        .with_topic_rewrite(Rc::new(TopicRewrite::new(&config.topic_rewrite)))
        .with_translation(Rc::new(Translation::new(&config.version_translation)));
    let mut sink: HashMap<Metric, i64> = HashMap::new();
    let (mut requests, mut responses) = (Side::default(), Side::default());
    let mut closed = false;
    for (is_request, chunk) in &chunks {
        let verdict = if *is_request {
            requests.deliver(chunk, |buf, len| conn.on_request_data(buf, len, &mut sink))
        } else {
            responses.deliver(chunk, |buf, len| conn.on_response_data(buf, len, &mut sink))
        };
        closed |= matches!(verdict, Verdict::Close(_));
    }
    check(&mut conn, sink, closed);
});
