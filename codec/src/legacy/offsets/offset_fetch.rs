//! OffsetFetch v0 (Kafka 0.8.1), removed in Kafka 4.0, translated to and from the crate's
//! `OffsetFetchRequest` / `OffsetFetchResponse` at v1, its minimum.
//!
//! Kafka 3.9's `OffsetFetchRequest.json` and `OffsetFetchResponse.json` give v0 exactly the layout
//! of v1 (request: group_id, topics [name, partition_indexes]; response: topics [name, partitions
//! [partition_index, committed_offset, metadata, error_code]]), so both directions go through the
//! crate at v1. The versions differ in where the broker looked: v0 read offsets from ZooKeeper, v1
//! from Kafka's offsets topic. A Kafka 4.0 cluster has no ZooKeeper, and OffsetCommit v0 (the
//! only writer of ZooKeeper offsets) is translated to a commit into the offsets topic
//! ([`super::offset_commit`]), so reading from there is what a v0 client finds its commits in.
//!
//! v0–1 have no top-level error (v2 added it): a group-level error must reach the old client
//! through its partitions, as Kafka's brokers did for v0–1.

use crate::legacy::admin::{check_version, decode_same, encode_same};
use crate::legacy::errors::downgrade_error;
use crate::legacy::LegacyError;
use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic};
use kafka_protocol::messages::{ApiKey, OffsetFetchRequest, OffsetFetchResponse};
use std::ops::RangeInclusive;

/// The OffsetFetch versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=0;

/// The crate's (and Kafka 4.0's) lowest OffsetFetch version, whose layout v0 shares.
const CRATE_MIN: i16 = 1;

/// The offset Kafka answers for a partition without one (or with an error).
const INVALID_OFFSET: i64 = -1;

/// An old OffsetFetch body → the crate's request (same layout as v1). A null topic array is
/// refused: v0–1 have no "all topics" (v2 introduced null for it), and Kafka's parser refused it.
pub fn decode_request(version: i16, body: &[u8]) -> Result<OffsetFetchRequest, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let request: OffsetFetchRequest = decode_same(body, CRATE_MIN, "OffsetFetch request")?;
    if request.topics.is_none() {
        return Err(LegacyError::Malformed("OffsetFetch request: null topics before v2"));
    }
    Ok(request)
}

/// The crate's request → an old OffsetFetch body (for tests and fuzzing). "All topics" (null),
/// several groups (v8+) and `require_stable` (v7+) have no place in v0 and are refused.
pub fn encode_request(version: i16, request: &OffsetFetchRequest) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    if request.topics.is_none() {
        return Err(LegacyError::Unrepresentable("OffsetFetch all topics"));
    }
    if !request.groups.is_empty() {
        return Err(LegacyError::Unrepresentable("OffsetFetch groups"));
    }
    if request.require_stable {
        return Err(LegacyError::Unrepresentable("OffsetFetch require_stable"));
    }
    encode_same(request, CRATE_MIN)
}

/// An old OffsetFetch response body → the crate's response (for tests). Same layout as v1.
pub fn decode_response(version: i16, body: &[u8]) -> Result<OffsetFetchResponse, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    decode_same(body, CRATE_MIN, "OffsetFetch response")
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the v0
/// layout, error codes mapped to ones the client knows. A v8+ answer for one group is read from
/// that group. A top-level error (v2+) moves into every partition whose own code is 0, with
/// offset −1, as Kafka's brokers answered v0–1; with no partition to carry it the answer is
/// refused rather than shown as "nothing committed" (the client would reset its position).
/// Throttle time and leader epochs are dropped.
pub fn encode_response(version: i16, response: &OffsetFetchResponse) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let (mut topics, top_error) = match response.groups.as_slice() {
        [] => (response.topics.clone(), response.error_code),
        [group] if response.topics.is_empty() => (from_group(group)?, group.error_code),
        _ => return Err(LegacyError::Unrepresentable("OffsetFetch answer for several groups")),
    };
    let mut carried = top_error == 0;
    for partition in topics.iter_mut().flat_map(|topic| topic.partitions.iter_mut()) {
        if top_error != 0 && partition.error_code == 0 {
            partition.error_code = top_error;
            partition.committed_offset = INVALID_OFFSET;
        }
        carried = true;
        partition.error_code = downgrade_error(ApiKey::OffsetFetch, version, partition.error_code);
    }
    if !carried {
        return Err(LegacyError::Unrepresentable("OffsetFetch group error without partitions"));
    }
    encode_same(&OffsetFetchResponse::default().with_topics(topics), CRATE_MIN)
}

/// The topics of a v8+ group answer in the v0–7 shape; they must be named (v10+ may use ids only).
fn from_group(group: &OffsetFetchResponseGroup) -> Result<Vec<OffsetFetchResponseTopic>, LegacyError> {
    group
        .topics
        .iter()
        .map(|topic| {
            if topic.name.is_empty() && !topic.topic_id.is_nil() {
                return Err(LegacyError::Unrepresentable("OffsetFetch topic id without a name"));
            }
            let partitions = topic.partitions.iter().map(|p| {
                OffsetFetchResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_committed_offset(p.committed_offset)
                    .with_metadata(p.metadata.clone())
                    .with_error_code(p.error_code)
            });
            Ok(OffsetFetchResponseTopic::default().with_name(topic.name.clone()).with_partitions(partitions.collect()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::testing::{
        arbitrary_bytes, biased_bytes, cat, name, nullable_str_bytes, old_error, round_trip, s, str_bytes, text, through_crate, topic_name
    };
    use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopic};
    use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponsePartitions, OffsetFetchResponseTopics};
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Crate versions checked: the minimum, the first with a top-level error, the first flexible one.
    const CRATE_VERSIONS: [i16; 3] = [1, 2, 6];

    #[test]
    fn hand_assembled_request_decodes_field_by_field() {
        let body = cat(&[
            &s("group"),                                                // group_id
            &2i32.to_be_bytes(),                                        // topics count
            &s("orders"), &2i32.to_be_bytes(), &0i32.to_be_bytes(), &5i32.to_be_bytes(), // name, partition_indexes
            &s("t"), &0i32.to_be_bytes(),
        ]);
        let request = decode_request(0, &body).unwrap();
        assert_eq!(request.group_id.0, text("group"));
        let topics = request.topics.as_ref().unwrap();
        assert_eq!(topics.len(), 2);
        assert_eq!(topics[0].name, name("orders"));
        assert_eq!(topics[0].partition_indexes, vec![0, 5]);
        assert_eq!(topics[1].name, name("t"));
        assert!(topics[1].partition_indexes.is_empty());
        assert!(!request.require_stable);
        assert_eq!(encode_request(0, &request).unwrap(), body);
    }

    #[test]
    fn a_null_topic_array_is_malformed_before_v2() {
        let body = cat(&[&s("group"), &(-1i32).to_be_bytes()]);
        assert!(matches!(decode_request(0, &body), Err(LegacyError::Malformed(_))));
        assert_eq!(
            encode_request(0, &OffsetFetchRequest::default().with_topics(None)),
            Err(LegacyError::Unrepresentable("OffsetFetch all topics"))
        );
        let groups = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()]);
        assert_eq!(encode_request(0, &groups), Err(LegacyError::Unrepresentable("OffsetFetch groups")));
    }

    #[test]
    fn hand_assembled_response_decodes_field_by_field() {
        let body = cat(&[
            &1i32.to_be_bytes(),                                        // topics count
            &s("orders"), &2i32.to_be_bytes(),                          // name, partitions count
            &0i32.to_be_bytes(), &42i64.to_be_bytes(), &s("m"), &0i16.to_be_bytes(), // index, offset, metadata, error
            &1i32.to_be_bytes(), &(-1i64).to_be_bytes(), &(-1i16).to_be_bytes(), &16i16.to_be_bytes(), // null metadata, NOT_COORDINATOR
        ]);
        let response = decode_response(0, &body).unwrap();
        assert_eq!((response.throttle_time_ms, response.error_code), (0, 0));
        assert_eq!(response.topics[0].name, name("orders"));
        let partitions = &response.topics[0].partitions;
        assert_eq!(
            (partitions[0].partition_index, partitions[0].committed_offset, partitions[0].metadata.clone(), partitions[0].error_code),
            (0, 42, Some(text("m")), 0)
        );
        assert_eq!(
            (partitions[1].partition_index, partitions[1].committed_offset, partitions[1].metadata.clone(), partitions[1].error_code),
            (1, -1, None, 16)
        );
        assert_eq!(encode_response(0, &response).unwrap(), body);
    }

    fn partition(index: i32, offset: i64, error: i16) -> OffsetFetchResponsePartition {
        OffsetFetchResponsePartition::default().with_partition_index(index).with_committed_offset(offset).with_error_code(error)
    }

    #[test]
    fn a_top_level_error_reaches_the_partitions() {
        let topic = OffsetFetchResponseTopic::default().with_name(name("t")).with_partitions(vec![partition(0, 10, 0), partition(1, -1, 3)]);
        let response = OffsetFetchResponse::default().with_error_code(14).with_topics(vec![topic]);
        let old = decode_response(0, &encode_response(0, &through_crate(&response, 2)).unwrap()).unwrap();
        let partitions = &old.topics[0].partitions;
        assert_eq!((partitions[0].committed_offset, partitions[0].error_code), (-1, 14));
        assert_eq!(partitions[1].error_code, 3);
        let empty = OffsetFetchResponse::default().with_error_code(16);
        assert_eq!(encode_response(0, &empty), Err(LegacyError::Unrepresentable("OffsetFetch group error without partitions")));
    }

    #[test]
    fn a_group_answer_is_read_from_its_group() {
        let group_partition = OffsetFetchResponsePartitions::default().with_partition_index(2).with_committed_offset(7).with_error_code(74);
        let partitions = vec![group_partition.with_metadata(Some(text("x")))];
        let group = OffsetFetchResponseGroup::default()
            .with_group_id(text("g").into())
            .with_topics(vec![OffsetFetchResponseTopics::default().with_name(name("t")).with_partitions(partitions)]);
        let response = through_crate(&OffsetFetchResponse::default().with_groups(vec![group.clone()]), 8);
        let old = decode_response(0, &encode_response(0, &response).unwrap()).unwrap();
        assert_eq!(old.topics[0].name, name("t"));
        assert_eq!(old.topics[0].partitions, vec![partition(2, 7, 6).with_metadata(Some(text("x")))]);
        let two = OffsetFetchResponse::default().with_groups(vec![group.clone(), group]);
        assert_eq!(encode_response(0, &two), Err(LegacyError::Unrepresentable("OffsetFetch answer for several groups")));
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 1, 9] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &OffsetFetchRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &OffsetFetchResponse::default()).unwrap_err(), refused);
        }
    }

    fn old_request() -> impl Strategy<Value = OffsetFetchRequest> {
        let topic = (topic_name(), vec(any::<i32>(), 0..4))
            .prop_map(|(name, indexes)| OffsetFetchRequestTopic::default().with_name(name).with_partition_indexes(indexes));
        (str_bytes(), vec(topic, 0..4))
            .prop_map(|(group, topics)| OffsetFetchRequest::default().with_group_id(group.into()).with_topics(Some(topics)))
    }

    fn old_response() -> impl Strategy<Value = OffsetFetchResponse> {
        let partition = (any::<i32>(), any::<i64>(), nullable_str_bytes(), old_error(ApiKey::OffsetFetch, 0))
            .prop_map(|(index, offset, metadata, error)| partition(index, offset, error).with_metadata(metadata));
        let topic = (topic_name(), vec(partition, 0..4))
            .prop_map(|(name, partitions)| OffsetFetchResponseTopic::default().with_name(name).with_partitions(partitions));
        vec(topic, 0..4).prop_map(|topics| OffsetFetchResponse::default().with_topics(topics))
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
