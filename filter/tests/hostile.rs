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
