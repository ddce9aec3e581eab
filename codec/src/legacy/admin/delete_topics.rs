//! DeleteTopics v0 (Kafka 0.10.1), removed in Kafka 4.0, translated to and from the crate's
//! `DeleteTopicsRequest` / `DeleteTopicsResponse` at v1, its minimum.
//!
//! Kafka 3.9's `DeleteTopicsRequest.json` gives requests v0–3 one layout (topic_names [string],
//! timeout_ms), so v0 requests go through the crate at v1. The response differs: v0 is responses
//! [name, error_code], and v1 puts `throttle_time_ms` first, so responses are written here.

use super::{check_version, decode_same, encode_same};
use crate::legacy::errors::downgrade_error;
use crate::legacy::wire::{array, string, whole, Writer};
use crate::legacy::LegacyError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse};
use nom::number::complete::be_i16;
use std::ops::RangeInclusive;

/// The DeleteTopics versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=0;

/// The crate's (and Kafka 4.0's) lowest DeleteTopics version, whose request layout v0 shares.
const CRATE_MIN: i16 = 1;

/// An old DeleteTopics body → the crate's request (same layout as v1).
pub fn decode_request(version: i16, body: &[u8]) -> Result<DeleteTopicsRequest, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    decode_same(body, CRATE_MIN, "DeleteTopics request")
}

/// The crate's request → a v0 DeleteTopics body (for tests and fuzzing). Topics named by id (v6+)
/// have no place in v0 and are refused.
pub fn encode_request(version: i16, request: &DeleteTopicsRequest) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    if !request.topics.is_empty() {
        return Err(LegacyError::Unrepresentable("DeleteTopics topics by id"));
    }
    encode_same(request, CRATE_MIN)
}

/// A v0 DeleteTopics response body → the crate's response (for tests): throttle time 0.
pub fn decode_response(version: i16, body: &[u8]) -> Result<DeleteTopicsResponse, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    whole(body, "DeleteTopics response", |input| {
        let (input, responses) = array(|input| {
            let (input, name) = string(input)?;
            let (input, error_code) = be_i16(input)?;
            Ok((input, DeletableTopicResult::default().with_name(Some(name.into())).with_error_code(error_code)))
        })(input)?;
        Ok((input, DeleteTopicsResponse::default().with_responses(responses)))
    })
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the v0
/// layout, error codes mapped to ones the client knows. Throttle time, topic ids and error messages
/// (v1+, v6+, v5+) are dropped; a result without a name (v6+, by id) cannot be written.
pub fn encode_response(version: i16, response: &DeleteTopicsResponse) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let mut w = Writer::new();
    w.array(&response.responses, |w, topic| {
        let name = topic.name.as_ref().ok_or(LegacyError::Unrepresentable("DeleteTopics result without a topic name"))?;
        w.string(name)?.i16(downgrade_error(ApiKey::DeleteTopics, version, topic.error_code));
        Ok(())
    })?;
    Ok(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::testing::{arbitrary_bytes, biased_bytes, cat, name, old_error, round_trip, s, text, through_crate, topic_name};
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Crate versions checked: the minimum and the next two (same request layout).
    const CRATE_VERSIONS: [i16; 3] = [1, 2, 3];

    #[test]
    fn hand_assembled_request_decodes_field_by_field() {
        let body = cat(&[&2i32.to_be_bytes(), &s("orders"), &s("t"), &5_000i32.to_be_bytes()]);
        let request = decode_request(0, &body).unwrap();
        assert_eq!(request.topic_names, vec![name("orders"), name("t")]);
        assert!(request.topics.is_empty());
        assert_eq!(request.timeout_ms, 5_000);
        assert_eq!(encode_request(0, &request).unwrap(), body);
    }

    #[test]
    fn hand_assembled_response_decodes_field_by_field() {
        let body = cat(&[&2i32.to_be_bytes(), &s("orders"), &0i16.to_be_bytes(), &s("t"), &3i16.to_be_bytes()]);
        let response = decode_response(0, &body).unwrap();
        assert_eq!(response.throttle_time_ms, 0);
        assert_eq!((response.responses[0].name.clone(), response.responses[0].error_code), (Some(name("orders")), 0));
        assert_eq!((response.responses[1].name.clone(), response.responses[1].error_code), (Some(name("t")), 3));
        assert_eq!(encode_response(0, &response).unwrap(), body);
    }

    #[test]
    fn what_v0_cannot_carry() {
        let by_id = DeleteTopicsRequest::default().with_topics(vec![DeleteTopicState::default().with_topic_id(uuid::Uuid::from_u128(1))]);
        assert_eq!(encode_request(0, &by_id), Err(LegacyError::Unrepresentable("DeleteTopics topics by id")));
        let unnamed = DeleteTopicsResponse::default().with_responses(vec![DeletableTopicResult::default().with_name(None)]);
        assert_eq!(encode_response(0, &unnamed), Err(LegacyError::Unrepresentable("DeleteTopics result without a topic name")));
        let result = DeletableTopicResult::default().with_name(Some(name("t"))).with_error_code(100).with_error_message(Some(text("gone")));
        let response = DeleteTopicsResponse::default().with_throttle_time_ms(4).with_responses(vec![result]);
        let old = decode_response(0, &encode_response(0, &through_crate(&response, 5)).unwrap()).unwrap();
        assert_eq!(
            old,
            DeleteTopicsResponse::default().with_responses(vec![DeletableTopicResult::default().with_name(Some(name("t"))).with_error_code(3)])
        );
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 1, 6] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &DeleteTopicsRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &DeleteTopicsResponse::default()).unwrap_err(), refused);
        }
    }

    fn old_request() -> impl Strategy<Value = DeleteTopicsRequest> {
        (vec(topic_name(), 0..4), any::<i32>())
            .prop_map(|(names, timeout)| DeleteTopicsRequest::default().with_topic_names(names).with_timeout_ms(timeout))
    }

    fn old_response() -> impl Strategy<Value = DeleteTopicsResponse> {
        let topic = (topic_name(), old_error(ApiKey::DeleteTopics, 0))
            .prop_map(|(name, error)| DeletableTopicResult::default().with_name(Some(name)).with_error_code(error));
        vec(topic, 0..4).prop_map(|topics| DeleteTopicsResponse::default().with_responses(topics))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn old_requests_survive_upgrade_and_downgrade(request in old_request()) {
            round_trip(0, &request, encode_request, decode_request, &CRATE_VERSIONS)?;
        }

        #[test]
        fn old_responses_survive_upgrade_and_downgrade(response in old_response()) {
            round_trip(0, &response, encode_response, decode_response, &CRATE_VERSIONS)?;
        }

        #[test]
        fn arbitrary_bytes_never_panic(version in -1i16..2, body in biased_bytes()) {
            arbitrary_bytes(version, &body, encode_request, decode_request)?;
            arbitrary_bytes(version, &body, encode_response, decode_response)?;
        }
    }
}
