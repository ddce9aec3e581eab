//! CreateTopics v0–1 (Kafka 0.10.1–0.10.2), removed in Kafka 4.0, translated to and from the
//! crate's `CreateTopicsRequest` / `CreateTopicsResponse` at v2, its minimum.
//!
//! Layouts (Kafka 3.9's message JSON):
//! - request v0: topics [name, num_partitions, replication_factor, assignments [partition_index,
//!   broker_ids], configs [name, value]], timeout_ms; v1 adds `validate_only` (false for v0: v0
//!   always creates). v1's layout is v2's (v2 changed only the response), so v1 requests go through
//!   the crate at v2.
//! - response v0: topics [name, error_code]; v1 adds `error_message` per topic; v2 puts
//!   `throttle_time_ms` first.

use super::{check_version, decode_same, encode_same};
use crate::legacy::errors::downgrade_error;
use crate::legacy::wire::{array, nullable_string, string, whole, Res, Writer};
use crate::legacy::LegacyError;
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse};
use nom::number::complete::{be_i16, be_i32};
use std::ops::RangeInclusive;

/// The CreateTopics versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=1;

/// The crate's (and Kafka 4.0's) lowest CreateTopics version; v1 requests share its layout.
const CRATE_MIN: i16 = 2;

/// An old CreateTopics body → the crate's request (`validate_only` false for v0).
pub fn decode_request(version: i16, body: &[u8]) -> Result<CreateTopicsRequest, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    if version >= 1 {
        return decode_same(body, CRATE_MIN, "CreateTopics request");
    }
    whole(body, "CreateTopics request", |input| {
        let (input, topics) = array(topic)(input)?;
        let (input, timeout_ms) = be_i32(input)?;
        Ok((input, CreateTopicsRequest::default().with_topics(topics).with_timeout_ms(timeout_ms).with_validate_only(false)))
    })
}

/// The crate's request → an old CreateTopics body (for tests and fuzzing). A validate-only request
/// cannot be sent as v0, which would create the topics: refused.
pub fn encode_request(version: i16, request: &CreateTopicsRequest) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    if version >= 1 {
        return encode_same(request, CRATE_MIN);
    }
    if request.validate_only {
        return Err(LegacyError::Unrepresentable("CreateTopics validate_only"));
    }
    let mut w = Writer::new();
    w.array(&request.topics, |w, topic| {
        w.string(&topic.name)?.i32(topic.num_partitions).i16(topic.replication_factor);
        w.array(&topic.assignments, |w, assignment| {
            w.i32(assignment.partition_index).array(&assignment.broker_ids, |w, broker| {
                w.i32(broker.0);
                Ok(())
            })?;
            Ok(())
        })?;
        w.array(&topic.configs, |w, config| {
            w.string(&config.name)?.nullable_string(config.value.as_deref())?;
            Ok(())
        })?;
        Ok(())
    })?;
    w.i32(request.timeout_ms);
    Ok(w.finish())
}

/// An old CreateTopics response body → the crate's response (for tests): no error message for v0,
/// throttle time 0.
pub fn decode_response(version: i16, body: &[u8]) -> Result<CreateTopicsResponse, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    whole(body, "CreateTopics response", |input| {
        let (input, topics) = array(|input| topic_result(version, input))(input)?;
        Ok((input, CreateTopicsResponse::default().with_topics(topics)))
    })
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the old
/// layout, error codes mapped to ones the client knows. What v2+ added (throttle time, topic id,
/// the created topic's partitions, replication factor and configs) is dropped, and for v0 the error
/// message too.
pub fn encode_response(version: i16, response: &CreateTopicsResponse) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let mut w = Writer::new();
    w.array(&response.topics, |w, topic| {
        w.string(&topic.name)?.i16(downgrade_error(ApiKey::CreateTopics, version, topic.error_code));
        if version >= 1 {
            w.nullable_string(topic.error_message.as_deref())?;
        }
        Ok(())
    })?;
    Ok(w.finish())
}

fn topic(input: &[u8]) -> Res<'_, CreatableTopic> {
    let (input, name) = string(input)?;
    let (input, num_partitions) = be_i32(input)?;
    let (input, replication_factor) = be_i16(input)?;
    let (input, assignments) = array(|input| {
        let (input, partition_index) = be_i32(input)?;
        let (input, broker_ids) = array(be_i32)(input)?;
        let broker_ids = broker_ids.into_iter().map(BrokerId).collect();
        Ok((input, CreatableReplicaAssignment::default().with_partition_index(partition_index).with_broker_ids(broker_ids)))
    })(input)?;
    let (input, configs) = array(|input| {
        let (input, name) = string(input)?;
        let (input, value) = nullable_string(input)?;
        Ok((input, CreatableTopicConfig::default().with_name(name).with_value(value)))
    })(input)?;
    let topic = CreatableTopic::default()
        .with_name(name.into())
        .with_num_partitions(num_partitions)
        .with_replication_factor(replication_factor)
        .with_assignments(assignments)
        .with_configs(configs);
    Ok((input, topic))
}

fn topic_result(version: i16, input: &[u8]) -> Res<'_, CreatableTopicResult> {
    let (input, name) = string(input)?;
    let (input, error_code) = be_i16(input)?;
    let (input, error_message) = if version >= 1 { nullable_string(input)? } else { (input, None) };
    Ok((input, CreatableTopicResult::default().with_name(name.into()).with_error_code(error_code).with_error_message(error_message)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::testing::{
        arbitrary_bytes, biased_bytes, cat, name, nullable_str_bytes, old_error, round_trip, s, str_bytes, text, through_crate, topic_name
    };
    use kafka_protocol::messages::create_topics_response::CreatableTopicConfigs;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Crate versions checked: the minimum, the next two (v4 relaxed only the semantics).
    const CRATE_VERSIONS: [i16; 3] = [2, 3, 4];

    fn v0_topics() -> Vec<u8> {
        cat(&[
            &1i32.to_be_bytes(),                                        // topics count
            &s("orders"), &(-1i32).to_be_bytes(), &(-1i16).to_be_bytes(), // name, num_partitions, replication_factor
            &2i32.to_be_bytes(),                                        // assignments count
            &0i32.to_be_bytes(), &2i32.to_be_bytes(), &1i32.to_be_bytes(), &2i32.to_be_bytes(), // partition 0 on brokers 1, 2
            &1i32.to_be_bytes(), &0i32.to_be_bytes(),                   // partition 1, no brokers
            &2i32.to_be_bytes(),                                        // configs count
            &s("cleanup.policy"), &s("compact"),
            &s("retention.ms"), &(-1i16).to_be_bytes(),                 // null value
        ])
    }

    #[test]
    fn hand_assembled_requests_decode_field_by_field() {
        let v0 = cat(&[&v0_topics(), &30_000i32.to_be_bytes()]);
        let v1 = cat(&[&v0_topics(), &30_000i32.to_be_bytes(), &[1]]);
        for (version, body) in [(0, v0), (1, v1)] {
            let request = decode_request(version, &body).unwrap();
            assert_eq!(request.timeout_ms, 30_000);
            assert_eq!(request.validate_only, version >= 1);
            let topic = &request.topics[0];
            assert_eq!((topic.name.clone(), topic.num_partitions, topic.replication_factor), (name("orders"), -1, -1));
            assert_eq!(topic.assignments.len(), 2);
            assert_eq!(topic.assignments[0].partition_index, 0);
            assert_eq!(topic.assignments[0].broker_ids, vec![BrokerId(1), BrokerId(2)]);
            assert_eq!((topic.assignments[1].partition_index, topic.assignments[1].broker_ids.len()), (1, 0));
            assert_eq!((topic.configs[0].name.clone(), topic.configs[0].value.clone()), (text("cleanup.policy"), Some(text("compact"))));
            assert_eq!((topic.configs[1].name.clone(), topic.configs[1].value.clone()), (text("retention.ms"), None));
            assert_eq!(encode_request(version, &request).unwrap(), body, "v{version}");
        }
    }

    #[test]
    fn hand_assembled_responses_decode_field_by_field() {
        let v0 = cat(&[&2i32.to_be_bytes(), &s("orders"), &0i16.to_be_bytes(), &s("dup"), &36i16.to_be_bytes()]);
        let v1 = cat(&[
            &2i32.to_be_bytes(), &s("orders"), &0i16.to_be_bytes(), &(-1i16).to_be_bytes(), &s("dup"), &36i16.to_be_bytes(),
            &s("exists"),
        ]);
        for (version, body) in [(0, v0), (1, v1)] {
            let response = decode_response(version, &body).unwrap();
            assert_eq!(response.throttle_time_ms, 0);
            assert_eq!(
                (response.topics[0].name.clone(), response.topics[0].error_code, response.topics[0].error_message.clone()),
                (name("orders"), 0, None)
            );
            assert_eq!((response.topics[1].name.clone(), response.topics[1].error_code), (name("dup"), 36));
            assert_eq!(response.topics[1].error_message, if version >= 1 { Some(text("exists")) } else { None });
            assert_eq!(encode_response(version, &response).unwrap(), body, "v{version}");
        }
    }

    #[test]
    fn validate_only_has_no_place_in_v0() {
        let request = CreateTopicsRequest::default().with_validate_only(true);
        assert_eq!(encode_request(0, &request), Err(LegacyError::Unrepresentable("CreateTopics validate_only")));
        assert!(encode_request(1, &request).is_ok());
    }

    #[test]
    fn new_fields_are_dropped_and_new_error_codes_mapped() {
        let configs = vec![CreatableTopicConfigs::default().with_name(text("a")).with_value(Some(text("b")))];
        let topic = CreatableTopicResult::default()
            .with_name(name("t"))
            .with_topic_id(uuid::Uuid::from_u128(7))
            .with_error_code(0)
            .with_error_message(Some(text("m")))
            .with_num_partitions(3)
            .with_replication_factor(2)
            .with_configs(Some(configs));
        let response = CreateTopicsResponse::default().with_throttle_time_ms(9).with_topics(vec![topic]);
        for version in OLD_VERSIONS {
            let old = decode_response(version, &encode_response(version, &through_crate(&response, 7)).unwrap()).unwrap();
            let expected = CreatableTopicResult::default()
                .with_name(name("t"))
                .with_error_message(if version >= 1 { Some(text("m")) } else { None });
            assert_eq!(old, CreateTopicsResponse::default().with_topics(vec![expected]));
        }
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 2, 7] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &CreateTopicsRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &CreateTopicsResponse::default()).unwrap_err(), refused);
        }
    }

    fn old_request(version: i16) -> impl Strategy<Value = CreateTopicsRequest> {
        let assignment = (any::<i32>(), vec(any::<i32>(), 0..4))
            .prop_map(|(index, brokers)| {
                CreatableReplicaAssignment::default().with_partition_index(index).with_broker_ids(brokers.into_iter().map(BrokerId).collect())
            });
        let config = (str_bytes(), nullable_str_bytes())
            .prop_map(|(name, value)| CreatableTopicConfig::default().with_name(name).with_value(value));
        let topic = (topic_name(), any::<i32>(), any::<i16>(), vec(assignment, 0..3), vec(config, 0..3))
            .prop_map(|(name, partitions, replication, assignments, configs)| {
                CreatableTopic::default()
                    .with_name(name)
                    .with_num_partitions(partitions)
                    .with_replication_factor(replication)
                    .with_assignments(assignments)
                    .with_configs(configs)
            });
        (vec(topic, 0..3), any::<i32>(), any::<bool>()).prop_map(move |(topics, timeout, validate_only)| {
            CreateTopicsRequest::default().with_topics(topics).with_timeout_ms(timeout).with_validate_only(version >= 1 && validate_only)
        })
    }

    fn old_response(version: i16) -> impl Strategy<Value = CreateTopicsResponse> {
        let topic = (topic_name(), old_error(ApiKey::CreateTopics, version), nullable_str_bytes()).prop_map(move |(name, error, message)| {
            CreatableTopicResult::default().with_name(name).with_error_code(error).with_error_message(if version >= 1 { message } else { None })
        });
        vec(topic, 0..4).prop_map(|topics| CreateTopicsResponse::default().with_topics(topics))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn old_requests_survive_upgrade_and_downgrade((version, request) in OLD_VERSIONS.prop_flat_map(|v| (Just(v), old_request(v)))) {
            round_trip(version, &request, encode_request, decode_request, &CRATE_VERSIONS)?;
        }

        #[test]
        fn old_responses_survive_upgrade_and_downgrade((version, response) in OLD_VERSIONS.prop_flat_map(|v| (Just(v), old_response(v)))) {
            round_trip(version, &response, encode_response, decode_response, &CRATE_VERSIONS)?;
        }

        #[test]
        fn arbitrary_bytes_never_panic(version in -1i16..3, body in biased_bytes()) {
            arbitrary_bytes(version, &body, encode_request, decode_request)?;
            arbitrary_bytes(version, &body, encode_response, decode_response)?;
        }
    }
}
