//! decode(encode(x)) == x for every API and version the kafka-protocol crate generates, requests
//! and responses, on generated values: each message type's default, and every value that random
//! byte strings decode to (which must then re-encode to the bytes they came from).

use bytes::{Bytes, BytesMut};
use kafka_lens_codec::body;
use kafka_lens_codec::for_every_api;
use kafka_lens_codec::kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_lens_codec::kafka_protocol::protocol::StrBytes;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

macro_rules! defaults {
    ($($name:ident),* $(,)?) => {
        fn every_api_default() -> Vec<(ApiKey, RequestKind, ResponseKind)> {
            vec![$((ApiKey::$name, RequestKind::$name(Default::default()), ResponseKind::$name(Default::default()))),*]
        }
    };
}
for_every_api!(defaults);

fn versions(key: ApiKey) -> impl Iterator<Item = i16> {
    let r = kafka_lens_codec::api::versions(key);
    r.min..=r.max
}

fn request_header(key: ApiKey, version: i16) -> RequestHeader {
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(0x0102_0304)
        .with_client_id(Some(StrBytes::from_static_str("roundtrip")))
}

#[test]
fn every_api_lists_every_api_key() {
    let listed: Vec<ApiKey> = every_api_default().into_iter().map(|(k, _, _)| k).collect();
    let all: Vec<ApiKey> = ApiKey::iter().collect();
    assert_eq!(listed, all, "for_every_api! must name every ApiKey the crate generates");
}

#[test]
fn defaults_round_trip_at_every_version() {
    let mut checked = 0;
    for (key, request, response) in every_api_default() {
        for version in versions(key) {
            let header = request_header(key, version);
            let frame = body::encode_request(&header, &request).unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
            let decoded = body::decode_request(&frame.slice(4..)).unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
            assert_eq!(decoded.body, request, "{key:?} v{version} request");
            assert_eq!(decoded.header, header, "{key:?} v{version} request header");

            let rheader = ResponseHeader::default().with_correlation_id(7);
            let frame = body::encode_response(&rheader, &response, key, version).unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
            let decoded = body::decode_response(&frame.slice(4..), key, version).unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
            assert_eq!(decoded.body, response, "{key:?} v{version} response");
            checked += 2;
        }
    }
    assert!(checked > 500, "only {checked} message versions checked");
}

/// Bytes that decode often: mostly zeros and ones (empty arrays, empty compact strings), some
/// random bytes for values.
fn biased_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![6 => Just(0u8), 2 => Just(1u8), 2 => any::<u8>()], 0..96)
}

#[test]
fn decoded_random_values_round_trip() {
    let mut runner = TestRunner::new(Config { cases: 1, ..Config::default() });
    let mut decoded_pairs = 0usize;
    let mut total_pairs = 0usize;
    for (key, _, _) in every_api_default() {
        for version in versions(key) {
            total_pairs += 2;
            let mut request_ok = false;
            let mut response_ok = false;
            for _ in 0..60 {
                let input = biased_bytes().new_tree(&mut runner).unwrap().current();
                request_ok |= check_request(key, version, &input);
                response_ok |= check_response(key, version, &input);
            }
            decoded_pairs += usize::from(request_ok) + usize::from(response_ok);
        }
    }
    println!("random values decoded and round-tripped for {decoded_pairs} of {total_pairs} message versions");
    assert!(decoded_pairs * 2 > total_pairs, "too few message versions covered: {decoded_pairs}/{total_pairs}");
}

fn check_request(key: ApiKey, version: i16, input: &[u8]) -> bool {
    let mut bytes = Bytes::copy_from_slice(input);
    let Ok(value) = RequestKind::decode(key, &mut bytes, version) else { return false };
    let mut out = BytesMut::new();
    value.encode(&mut out, version).unwrap_or_else(|e| panic!("{key:?} v{version} re-encode: {e}"));
    // Values compare, not bytes: random input may hold non-minimal varints that re-encode shorter.
    let mut again = out.freeze();
    assert_eq!(RequestKind::decode(key, &mut again, version).unwrap(), value, "{key:?} v{version} request");
    true
}

fn check_response(key: ApiKey, version: i16, input: &[u8]) -> bool {
    let mut bytes = Bytes::copy_from_slice(input);
    let Ok(value) = ResponseKind::decode(key, &mut bytes, version) else { return false };
    let mut out = BytesMut::new();
    value.encode(&mut out, version).unwrap_or_else(|e| panic!("{key:?} v{version} re-encode: {e}"));
    // Values compare, not bytes: random input may hold non-minimal varints that re-encode shorter.
    let mut again = out.clone().freeze();
    let again_value = ResponseKind::decode(key, &mut again, version).unwrap_or_else(|e| panic!("{key:?} v{version} re-decode: {e:#}\n{out:?}\n{input:?}"));
    assert_eq!(again_value, value, "{key:?} v{version} response");
    true
}

/// 0.18.0 as released pre-allocates from untrusted counts and aborts; the vendored copy must
/// return an error instead (see codec/vendor/kafka-protocol/KAFKA-LENS-PATCH.md).
#[test]
fn hostile_array_lengths_are_errors_not_aborts() {
    // Metadata v0 claiming 54 million topics in 5 bytes (the reproducer from upstream #152).
    let mut body = Bytes::from_static(&[0x03, 0x3c, 0x0c, 0x00, 0xb6]);
    assert!(RequestKind::decode(ApiKey::Metadata, &mut body, 0).is_err());
    // A flexible version with a compact array length of 2^31.
    let mut body = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x08, 0x00]);
    assert!(RequestKind::decode(ApiKey::Metadata, &mut body, 12).is_err());
    // Every API and version, requests and responses, with an i32::MAX or huge varint count up front.
    for (key, _, _) in every_api_default() {
        for version in versions(key) {
            for prefix in [&[0x7f, 0xff, 0xff, 0xff][..], &[0xff, 0xff, 0xff, 0xff, 0x0f][..]] {
                for filler in 0..8usize {
                    let mut input = vec![0u8; filler];
                    input.extend_from_slice(prefix);
                    input.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
                    let _ = RequestKind::decode(key, &mut Bytes::from(input.clone()), version);
                    let _ = ResponseKind::decode(key, &mut Bytes::from(input), version);
                }
            }
        }
    }
}

/// tansu sends Fetch's top-level `NodeEndpoints` (tag 0, v16+) at v12. Clients skip it; released
/// kafka-protocol 0.18.0 refuses the whole response. The vendored copy skips the field.
#[test]
fn known_tag_outside_its_versions_is_skipped_not_refused() {
    use kafka_lens_codec::kafka_protocol::messages::FetchResponse;
    use kafka_lens_codec::kafka_protocol::protocol::{Decodable, Encodable};
    let value = FetchResponse::default().with_session_id(77);
    let mut encoded = BytesMut::new();
    value.encode(&mut encoded, 12).unwrap();
    assert_eq!(encoded.last(), Some(&0), "no tagged fields at the end");
    let mut with_tag = encoded[..encoded.len() - 1].to_vec();
    with_tag.extend_from_slice(&[1, 0, 1, 1]); // one tagged field: tag 0, size 1, empty compact array
    let decoded = FetchResponse::decode(&mut Bytes::from(with_tag), 12).expect("tag skipped, not refused");
    assert_eq!(decoded, value);
}

/// Found by the request_decode fuzz target: 0.18.0 keyed unknown tagged fields by `tag as i32`, so
/// tag 0xFFFF_FFFF became -1, was counted on encode but never written, and the re-encoded frame
/// was corrupt. The vendored copy refuses tags above i32::MAX.
#[test]
fn tag_numbers_above_i32_max_are_refused() {
    use kafka_lens_codec::kafka_protocol::messages::CreateTopicsRequest;
    use kafka_lens_codec::kafka_protocol::protocol::{Decodable, Encodable};
    let mut encoded = BytesMut::new();
    CreateTopicsRequest::default().encode(&mut encoded, 7).unwrap();
    assert_eq!(encoded.last(), Some(&0), "no tagged fields at the end");
    let mut bad = encoded[..encoded.len() - 1].to_vec();
    bad.extend_from_slice(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0]); // tag 2^32-1, size 0
    let err = CreateTopicsRequest::decode(&mut Bytes::from(bad), 7).unwrap_err();
    assert!(format!("{err:#}").contains("out of range"), "{err:#}");
}
