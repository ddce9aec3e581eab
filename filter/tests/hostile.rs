//! The per-connection state machine never panics and keeps its invariants on hostile input:
//! arbitrary bytes in both directions, and real recorded traffic with bytes flipped, cut and
//! re-chunked at random. (The same state machine runs in the Wasm VM, where a panic would close
//! every Kafka connection of the Envoy worker.)

#[path = "../../codec/tests/common/trace.rs"]
mod trace;

use std::collections::HashMap;

use kafka_lens_codec::frame::SliceSource;
use kafka_lens_filter::config::Config;
use kafka_lens_filter::connection::{Connection, Limits, Verdict};
use kafka_lens_filter::metrics::Metric;
use proptest::prelude::*;
use trace::Dir;

fn limits() -> Limits {
    // A small frame cap so that hostile sizes hit it often.
    let mut config = Config::default();
    config.max_frame_bytes = 64 * 1024;
    config.max_decode_bytes = 16 * 1024;
    config.max_in_flight = 8;
    Limits::from(&config)
}

/// Feeds chunks, returns the metrics; asserts the invariants that hold for any input.
fn drive(chunks: &[(Dir, Vec<u8>)], chunk_sizes: &[usize]) -> HashMap<Metric, i64> {
    let mut sink: HashMap<Metric, i64> = HashMap::new();
    let mut conn = Connection::new(limits());
    let mut sizes = chunk_sizes.iter().cycle();
    let mut closed = false;
    for (dir, chunk) in chunks {
        let mut pos = 0;
        while pos < chunk.len() {
            let n = (*sizes.next().unwrap_or(&1)).max(1).min(chunk.len() - pos);
            let mut source = SliceSource(&chunk[pos..pos + n]);
            let verdict = match dir {
                Dir::Request => conn.on_request_data(&mut source, n, &mut sink),
                Dir::Response => conn.on_response_data(&mut source, n, &mut sink),
            };
            if let Verdict::Close(_) = verdict {
                closed = true;
            }
            pos += n;
        }
    }
    conn.on_close(&mut sink);
    // Invariants: gauges return to zero; a close is always explained by a counted reason.
    assert_eq!(sink.get(&Metric::InFlightRequests).copied().unwrap_or(0), 0, "in-flight gauge leaked");
    let closes: i64 = sink.iter().filter(|(k, _)| matches!(k, Metric::ConnectionsClosedByFilter { .. })).map(|(_, v)| v).sum();
    assert_eq!(closes > 0, closed, "close verdict and close metric disagree");
    assert!(sink.values().all(|v| *v >= 0), "negative counter: {sink:?}");
    sink
}

fn dir() -> impl Strategy<Value = Dir> {
    prop_oneof![Just(Dir::Request), Just(Dir::Response)]
}

/// Flips the chosen bytes (chunk, byte, new value) and cuts the stream after the chosen chunk.
fn mutate(mut chunks: Vec<(Dir, Vec<u8>)>, flips: Vec<(prop::sample::Index, prop::sample::Index, u8)>, cut: prop::sample::Index) -> Vec<(Dir, Vec<u8>)> {
    for (chunk_at, byte_at, value) in flips {
        let i = chunk_at.index(chunks.len());
        let chunk = &mut chunks[i].1;
        if !chunk.is_empty() {
            let j = byte_at.index(chunk.len());
            chunk[j] = value;
        }
    }
    let keep = cut.index(chunks.len()) + 1;
    chunks.truncate(keep);
    chunks
}

fn sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![3 => 1usize..16, 2 => 16usize..600, 1 => 600usize..100_000], 1..20)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(chunks in prop::collection::vec((dir(), prop::collection::vec(any::<u8>(), 0..300)), 0..12), chunk_sizes in sizes()) {
        drive(&chunks, &chunk_sizes);
    }

    /// Byte streams that start like Kafka (a valid ApiVersions request) so the hostile part is
    /// decoded rather than rejected as non-Kafka.
    #[test]
    fn kafka_prefixed_garbage_never_panics(rest in prop::collection::vec((dir(), prop::collection::vec(any::<u8>(), 0..400)), 0..12), chunk_sizes in sizes()) {
        let mut first = vec![0, 0, 0, 14, 0, 18, 0, 3, 0, 0, 0, 1, 0, 2, b'c', b'l', 0, 0];
        first[3] = (first.len() - 4) as u8;
        let mut chunks = vec![(Dir::Request, first)];
        chunks.extend(rest);
        drive(&chunks, &chunk_sizes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Real traffic with random byte flips, insertions and cuts.
    #[test]
    fn mutated_real_traffic_never_panics(trace_index in any::<prop::sample::Index>(),
                                         flips in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>()), 1..20),
                                         cut in any::<prop::sample::Index>(),
                                         chunk_sizes in sizes()) {
        let traces = trace::load_all();
        let t = &traces[trace_index.index(traces.len())];
        drive(&mutate(t.chunks.clone(), flips, cut), &chunk_sizes);
    }
}

/// A SASL login as clients and brokers send it: SaslHandshake (v0: raw tokens follow; v1:
/// SaslAuthenticate frames), two SCRAM rounds, then a Metadata request and its response.
fn sasl_session(v0: bool) -> Vec<(Dir, Vec<u8>)> {
    use bytes::Bytes;
    use kafka_lens_codec::body::{encode_request, encode_response};
    use kafka_lens_codec::kafka_protocol::messages::*;
    use kafka_lens_codec::kafka_protocol::protocol::StrBytes;

    let version = if v0 { 0 } else { 1 };
    let header = |key: ApiKey, v: i16, id: i32| {
        RequestHeader::default().with_request_api_key(key as i16).with_request_api_version(v).with_correlation_id(id)
    };
    let answer = |id: i32| ResponseHeader::default().with_correlation_id(id);
    let raw = |token: &[u8]| {
        let mut frame = (token.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(token);
        frame
    };
    let mut out = vec![
        (Dir::Request, encode_request(&header(ApiKey::SaslHandshake, version, 1), &RequestKind::SaslHandshake(
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("SCRAM-SHA-256")))).unwrap().to_vec()),
        (Dir::Response, encode_response(&answer(1), &ResponseKind::SaslHandshake(SaslHandshakeResponse::default()), ApiKey::SaslHandshake, version).unwrap().to_vec()),
    ];
    let rounds: [(&[u8], &[u8]); 2] = [(b"n,,n=alice,r=abc", b"r=abcdef,s=c2FsdA==,i=4096"), (b"c=biws,r=abcdef,p=cHJvb2Y=", b"v=c2ln")];
    for (i, (client, server)) in rounds.iter().enumerate() {
        if v0 {
            out.push((Dir::Request, raw(client)));
            out.push((Dir::Response, raw(server)));
        } else {
            let id = 2 + i as i32;
            let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(client));
            out.push((Dir::Request, encode_request(&header(ApiKey::SaslAuthenticate, 2, id), &RequestKind::SaslAuthenticate(request)).unwrap().to_vec()));
            let response = SaslAuthenticateResponse::default().with_auth_bytes(Bytes::copy_from_slice(server));
            out.push((Dir::Response, encode_response(&answer(id), &ResponseKind::SaslAuthenticate(response), ApiKey::SaslAuthenticate, 2).unwrap().to_vec()));
        }
    }
    out.push((Dir::Request, encode_request(&header(ApiKey::Metadata, 12, 9), &RequestKind::Metadata(MetadataRequest::default())).unwrap().to_vec()));
    out.push((Dir::Response, encode_response(&answer(9), &ResponseKind::Metadata(MetadataResponse::default()), ApiKey::Metadata, 12).unwrap().to_vec()));
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// SASL logins (raw v0 tokens and SaslAuthenticate frames) with random byte flips and cuts,
    /// under any chunking: the raw-token state never panics and never leaks in-flight state.
    #[test]
    fn mutated_sasl_logins_never_panic(v0 in any::<bool>(),
                                       flips in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>()), 0..8),
                                       cut in any::<prop::sample::Index>(),
                                       chunk_sizes in sizes()) {
        drive(&mutate(sasl_session(v0), flips, cut), &chunk_sizes);
    }
}

#[test]
fn an_intact_sasl_login_is_followed_in_both_forms() {
    for v0 in [true, false] {
        let sink = drive(&sasl_session(v0), &[7, 300, 1]);
        assert_eq!(sink.get(&Metric::SaslAuthentications { mechanism: "SCRAM-SHA-256", result: "success" }).copied(), Some(1), "v0={v0}");
        let undecodable: i64 = sink.iter().filter(|(k, _)| matches!(k, Metric::UndecodableFrames { .. } | Metric::UnmatchedResponses)).map(|(_, v)| v).sum();
        assert_eq!(undecodable, 0, "v0={v0}: {sink:?}");
    }
}

/// The policy path (requests held until whole, decided, refused or split; responses replaced,
/// merged or narrowed) on the same hostile input, through a stand-in for Envoy's buffers with
/// Envoy's edit semantics: `Continue` forwards the whole buffer, `Pause` keeps it (the next
/// callback sees it again followed by the new bytes), and the only edit is a prefix replacement.
mod policy_path {
    use std::rc::Rc;

    use kafka_lens_filter::config::Config;
    use kafka_lens_filter::connection::{Connection, Limits, Verdict};
    use kafka_lens_filter::metrics::Metric;
    use kafka_lens_filter::policy::Policy;
    use kafka_lens_filter::testing::{EnvoyBuf, MapStore, Side, TestSink};
    use proptest::prelude::*;

    use super::trace::{self, Dir};
    use super::{dir, mutate, sizes};

    /// Rules that refuse in the recorded traffic (its topics start `trace-`; its consumers wait
    /// longer than 100 ms) and a small hold budget, so hostile input reaches every refusal path:
    /// whole refusals, per-topic splits, acks=0 drops, too-large-to-hold drains, audits.
    const REFUSING: &str = r#"{"max_frame_bytes": 65536, "max_decode_bytes": 16384, "max_in_flight": 8,
        "policy": {"hold_budget_bytes": 2048, "rules": [
            {"name": "acks", "match": {"topics": [{"prefix": "trace-"}, {"regex": "[a-z]+-[0-9]+"}]},
             "produce": {"acks": [-1], "compression": ["none", "zstd"], "max_batch_bytes": 4096, "require_idempotence": true}},
            {"name": "no-deletes", "match": {"apis": ["DeleteTopics"]}, "deny": true},
            {"name": "no-kcat-topics", "match": {"topics": [{"exact": "trace-kcat"}]}, "deny": true},
            {"name": "named", "mode": "audit", "client_id": {"required": true, "pattern": "[a-z-]+"}},
            {"name": "create", "create_topics": {"partitions": {"max": 1}, "replication_factor": {"max": 1},
                "name_pattern": "[a-z.]+", "forbidden_configs": {"cleanup.policy": "*"}}},
            {"name": "consumers", "match": {"except": {"client_id": {"exact": "nobody"}}},
             "fetch": {"max_wait_ms": 100, "max_bytes": 1048576}, "max_request_bytes": 60000}
        ]}}"#;

    /// Rules no recorded connection breaks: a topic prefix no trace uses (with the default hold
    /// budget, so no request is too large to inspect).
    const NO_SUCH_TOPIC: &str = r#"{"policy": {"rules": [
            {"name": "payments", "match": {"topics": [{"prefix": "payments."}]}, "deny": true},
            {"name": "payments-acks", "match": {"topics": [{"regex": "payments\\..*"}]}, "produce": {"acks": [-1]}},
            {"name": "fetch", "match": {"topics": [{"exact": "payments.cards"}]}, "fetch": {"max_wait_ms": 1}}
        ]}}"#;

    /// Rules for a client no connection is: nothing is ever held, with a small hold budget.
    const NO_SUCH_CLIENT: &str = r#"{"policy": {"hold_budget_bytes": 1024, "rules": [
            {"name": "nobody", "match": {"client_id": {"exact": "no-such-client"}}, "deny": true},
            {"name": "no-user", "match": {"sasl_user": {"exact": "no-such-user"}}, "produce": {"acks": [-1]}}
        ]}}"#;

    struct Run {
        sink: TestSink,
        requests: Side,
        responses: Side,
        closed: Option<&'static str>,
    }

    /// Delivers the chunks (re-cut to `chunk_sizes`, cycled; `None`: as recorded) until the
    /// filter closes, then closes; asserts the invariants that hold for any input.
    fn run(config: &str, chunks: &[(Dir, Vec<u8>)], chunk_sizes: Option<&[usize]>) -> Run {
        run_knowing(config, chunks, chunk_sizes, MapStore::default())
    }

    /// The same, with shared data (topic ids learned from Metadata) as other connections left it.
    fn run_knowing(config: &str, chunks: &[(Dir, Vec<u8>)], chunk_sizes: Option<&[usize]>, store: MapStore) -> Run {
        let config = Config::parse(config.as_bytes()).expect("config");
        let mut conn = Connection::new(Limits::from(&config)).with_policy(Rc::new(Policy::new(config.policy.clone())));
        let sink = TestSink { store, ..TestSink::default() };
        let mut out = Run { sink, requests: Side::default(), responses: Side::default(), closed: None };
        let mut sizes = chunk_sizes.unwrap_or(&[]).iter().cycle();
        for (dir, chunk) in chunks {
            let side = match dir {
                Dir::Request => &mut out.requests,
                Dir::Response => &mut out.responses,
            };
            let mut pos = 0;
            while pos < chunk.len() && out.closed.is_none() {
                let n = sizes.next().map_or(chunk.len(), |n| (*n).max(1)).min(chunk.len() - pos);
                let sink = &mut out.sink;
                let verdict = match dir {
                    Dir::Request => side.deliver(&chunk[pos..pos + n], |buf, len| conn.on_request_data(buf, len, sink)),
                    Dir::Response => side.deliver(&chunk[pos..pos + n], |buf, len| conn.on_response_data(buf, len, sink)),
                };
                if let Verdict::Close(reason) = verdict {
                    out.closed = Some(reason);
                }
                pos += n;
            }
        }
        conn.on_close(&mut out.sink);
        let metrics = &out.sink.metrics;
        assert_eq!(metrics.get(&Metric::InFlightRequests).copied().unwrap_or(0), 0, "in-flight gauge leaked");
        let closes = out.sink.sum(|m| matches!(m, Metric::ConnectionsClosedByFilter { .. }));
        assert_eq!(closes > 0, out.closed.is_some(), "close verdict {:?} and close metric ({closes}) disagree", out.closed);
        assert!(metrics.values().all(|v| *v >= 0), "negative counter: {metrics:?}");
        out
    }

    /// Whether a stream is a sequence of whole frames.
    fn whole_frames(stream: &[u8]) -> bool {
        let mut rest = stream;
        while !rest.is_empty() {
            let Some(size) = rest.get(..4).map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]])) else { return false };
            let Some(next) = usize::try_from(size).ok().and_then(|n| rest.get(4 + n..)) else { return false };
            rest = next;
        }
        true
    }

    /// Splits a stream of whole frames into its frames.
    fn frames(stream: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut rest = stream;
        while let Some(size) = rest.get(..4).map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]])) {
            let n = 4 + usize::try_from(size).expect("frame size");
            out.push(&rest[..n]);
            rest = &rest[n..];
        }
        assert!(rest.is_empty(), "trailing bytes");
        out
    }

    /// Topic ids as an Envoy that saw every recorded connection knows them: a consumer fetching by
    /// topic id from one broker learned the ids from a Metadata response on another connection,
    /// and a rule with topic matchers cannot clear an id it never saw.
    fn learned() -> MapStore {
        static LEARNED: std::sync::OnceLock<MapStore> = std::sync::OnceLock::new();
        LEARNED
            .get_or_init(|| trace::load_all().iter().fold(MapStore::default(), |store, t| run_knowing("{}", &t.chunks, None, store).sink.store))
            .clone()
    }

    /// The filter forwarded the recorded streams unchanged, but for the broker's ApiVersions
    /// answers, which a policy narrows to the versions the filter decodes (by design: clients
    /// must not pick versions the policy cannot read) and the metric counts.
    fn assert_transparent(r: &Run, at: &str) {
        assert_eq!(r.closed, None, "{at}");
        assert_eq!(r.sink.sum(|m| matches!(m, Metric::PolicyDecisions { .. })), 0, "{at}: {:?}", r.sink.metrics);
        assert!(r.requests.buffer.is_empty() && r.responses.buffer.is_empty(), "{at}: bytes left held");
        assert!(r.requests.forwarded == r.requests.input, "{at}: request stream altered");
        let api_versions: Vec<&[u8]> = frames(&r.requests.input)
            .into_iter()
            .filter(|f| f.get(4..6) == Some(&18i16.to_be_bytes()[..]))
            .filter_map(|f| f.get(8..12))
            .collect();
        let (sent, forwarded) = (frames(&r.responses.input), frames(&r.responses.forwarded));
        assert_eq!(sent.len(), forwarded.len(), "{at}: responses added or lost");
        let mut narrowed = 0;
        for (sent, forwarded) in sent.iter().zip(&forwarded) {
            if sent != forwarded {
                assert!(api_versions.contains(&&sent[4..8]), "{at}: a response other than ApiVersions altered");
                narrowed += 1;
            }
        }
        assert_eq!(narrowed, r.sink.get(&Metric::ApiVersionsNarrowed), "{at}");
    }

    fn any_trace() -> impl Strategy<Value = prop::sample::Index> {
        any::<prop::sample::Index>()
    }

    fn pick(index: prop::sample::Index) -> trace::Trace {
        let mut traces = trace::load_all();
        let i = index.index(traces.len());
        traces.swap_remove(i)
    }

    fn flips() -> impl Strategy<Value = Vec<(prop::sample::Index, prop::sample::Index, u8)>> {
        prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>()), 1..20)
    }

    /// Under rules that never apply, nothing the filter forwards differs from what came in: it
    /// may hold bytes back (a frame not whole yet), never alter them. (Responses may differ
    /// only by a narrowed ApiVersions answer, which the metric counts.)
    fn assert_forwarded_is_a_prefix(r: &Run) {
        assert!(r.requests.input.starts_with(&r.requests.forwarded), "requests altered");
        if r.sink.get(&Metric::ApiVersionsNarrowed) == 0 {
            assert!(r.responses.input.starts_with(&r.responses.forwarded), "responses altered");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Real traffic with bytes flipped and the stream cut, re-chunked at random.
        #[test]
        fn mutated_traffic_under_a_policy_never_panics(trace_index in any_trace(), flips in flips(), cut in any::<prop::sample::Index>(), chunk_sizes in sizes()) {
            let t = pick(trace_index);
            let chunks = mutate(t.chunks.clone(), flips, cut);
            run(REFUSING, &chunks, Some(&chunk_sizes));
            run(NO_SUCH_TOPIC, &chunks, Some(&chunk_sizes));
            assert_forwarded_is_a_prefix(&run(NO_SUCH_CLIENT, &chunks, Some(&chunk_sizes)));
        }

        #[test]
        fn arbitrary_bytes_under_a_policy_never_panic(chunks in prop::collection::vec((dir(), prop::collection::vec(any::<u8>(), 0..300)), 0..12), chunk_sizes in sizes()) {
            run(REFUSING, &chunks, Some(&chunk_sizes));
            assert_forwarded_is_a_prefix(&run(NO_SUCH_CLIENT, &chunks, Some(&chunk_sizes)));
        }

        /// Garbage behind a valid first request, so it is decoded as Kafka rather than passed
        /// through as another protocol.
        #[test]
        fn kafka_prefixed_garbage_under_a_policy_never_panics(rest in prop::collection::vec((dir(), prop::collection::vec(any::<u8>(), 0..400)), 0..12), chunk_sizes in sizes()) {
            let mut first = vec![0, 0, 0, 14, 0, 18, 0, 3, 0, 0, 0, 1, 0, 2, b'c', b'l', 0, 0];
            first[3] = (first.len() - 4) as u8;
            let mut chunks = vec![(Dir::Request, first)];
            chunks.extend(rest);
            run(REFUSING, &chunks, Some(&chunk_sizes));
            assert_forwarded_is_a_prefix(&run(NO_SUCH_CLIENT, &chunks, Some(&chunk_sizes)));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// A policy that refuses nothing is transparent: both streams pass byte for byte (but
        /// for the narrowed ApiVersions answer), nothing stays held, whatever the chunking.
        #[test]
        fn a_policy_refusing_nothing_is_transparent(trace_index in any_trace(), chunk_sizes in sizes()) {
            let t = pick(trace_index);
            let at = t.path.display().to_string();
            assert_transparent(&run_knowing(NO_SUCH_TOPIC, &t.chunks, Some(&chunk_sizes), learned()), &at);
            assert_transparent(&run(NO_SUCH_CLIENT, &t.chunks, Some(&chunk_sizes)), &at);
        }

        /// A policy that refuses: the forwarded streams stay whole frames, nothing stays held,
        /// and the result does not depend on how the streams were cut.
        #[test]
        fn refusals_do_not_depend_on_the_chunking(trace_index in any_trace(), chunk_sizes in sizes()) {
            let t = pick(trace_index);
            let at = t.path.display();
            let reference = run_knowing(REFUSING, &t.chunks, None, learned());
            let r = run_knowing(REFUSING, &t.chunks, Some(&chunk_sizes), learned());
            prop_assert_eq!(r.closed, reference.closed, "{}", at);
            if r.closed.is_none() {
                prop_assert!(r.requests.buffer.is_empty() && r.responses.buffer.is_empty(), "{}: bytes left held", at);
                prop_assert!(whole_frames(&r.requests.forwarded), "{}: forwarded requests are not whole frames", at);
                prop_assert!(whole_frames(&r.responses.forwarded), "{}: forwarded responses are not whole frames", at);
            }
            prop_assert!(r.requests.forwarded == reference.requests.forwarded, "{}: requests differ with the chunking", at);
            prop_assert!(r.responses.forwarded == reference.responses.forwarded, "{}: responses differ with the chunking", at);
        }
    }

    /// The refusing configuration does refuse in the recorded traffic (else the properties above
    /// would not reach the refusal paths), and the recorded traffic passes whole.
    #[test]
    fn the_refusing_policy_refuses_recorded_traffic() {
        let mut refused = 0;
        for t in trace::load_all() {
            let r = run(REFUSING, &t.chunks, None);
            assert_eq!(r.closed, None, "{}", t.path.display());
            refused += r.sink.sum(|m| matches!(m, Metric::PolicyDecisions { action: "refused" | "dropped", .. }));
        }
        assert!(refused > 0, "the hostile policy refuses nothing in the recorded traces");
    }

    /// Every recorded connection, cut one byte at a time: the most pauses and held frames.
    #[test]
    fn recorded_traffic_byte_by_byte() {
        for t in trace::load_all() {
            let at = t.path.display().to_string();
            assert_transparent(&run_knowing(NO_SUCH_TOPIC, &t.chunks, Some(&[1]), learned()), &at);
            assert_transparent(&run(NO_SUCH_CLIENT, &t.chunks, Some(&[1])), &at);
            let reference = run_knowing(REFUSING, &t.chunks, None, learned());
            let r = run_knowing(REFUSING, &t.chunks, Some(&[1]), learned());
            assert!(r.requests.forwarded == reference.requests.forwarded && r.responses.forwarded == reference.responses.forwarded, "{at}");
        }
    }

    /// A request the policy must refuse but cannot answer (here a Metadata request whose body does
    /// not decode, under a rule with topic matchers) closes the connection, counted like every
    /// other close.
    #[test]
    fn an_unanswerable_refusal_counts_its_close() {
        // Metadata v12 (flexible header): api key 3, version 12, correlation id 1, client id "c",
        // no tagged fields; then a body announcing 4 topics and ending.
        let mut frame = vec![0, 0, 0, 0, 0, 3, 0, 12, 0, 0, 0, 1, 0, 1, b'c', 0, 5];
        frame[3] = (frame.len() - 4) as u8;
        let config = Config::parse(NO_SUCH_TOPIC.as_bytes()).expect("config");
        let mut conn = Connection::new(Limits::from(&config)).with_policy(Rc::new(Policy::new(config.policy.clone())));
        let mut sink = TestSink::default();
        let len = frame.len();
        let verdict = conn.on_request_data(&mut EnvoyBuf(&mut frame), len, &mut sink);
        assert_eq!(verdict, Verdict::Close("policy_unanswerable"));
        assert_eq!(sink.get(&Metric::ConnectionsClosedByFilter { reason: "policy_unanswerable" }), 1);
    }
}
