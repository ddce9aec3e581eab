//! OffsetCommit v0–1 (Kafka 0.8.1–0.8.2), removed in Kafka 4.0, translated to and from the crate's
//! `OffsetCommitRequest` / `OffsetCommitResponse` at v2, its minimum.
//!
//! Request layouts (Kafka 3.9's `OffsetCommitRequest.json`):
//! - v0: group_id, topics [name, partitions [partition_index, committed_offset, committed_metadata]]
//! - v1: group_id, generation_id, member_id, topics [name, partitions [partition_index,
//!   committed_offset, commit_timestamp, committed_metadata]]
//! - v2: v1 without commit_timestamp, with retention_time_ms after member_id.
//!
//! Upgrade: v0 has no group membership, so generation −1 and member id "" — what a broker takes for
//! a simple (standalone) commit, which is what v0 was. v1's per-partition `commit_timestamp` has no
//! place in v2 and is dropped: the offset is then stamped "now", which is what −1 (the value clients
//! send) meant; an explicit timestamp only moved the offset's expiry. `retention_time_ms` is −1,
//! the broker's default retention, as for any v0–1 commit.
//!
//! v0 commits went to ZooKeeper, v1+ to Kafka's offsets topic. A Kafka 4.0 cluster has no
//! ZooKeeper; the translated commit lands in the offsets topic, where a translated OffsetFetch v0
//! ([`super::offset_fetch`]) reads it back.
//!
//! Responses of v0, v1 and v2 share one layout (topics [name, partitions [partition_index,
//! error_code]]; throttle time arrives in v3), so responses go through the crate at v2.

use crate::legacy::admin::{check_version, decode_same, encode_same};
use crate::legacy::errors::downgrade_error;
use crate::legacy::wire::{array, nullable_string, string, whole, Res, Writer};
use crate::legacy::LegacyError;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::protocol::StrBytes;
use nom::number::complete::{be_i32, be_i64};
use std::ops::RangeInclusive;

/// The OffsetCommit versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=1;

/// The crate's (and Kafka 4.0's) lowest OffsetCommit version, whose response layout v0–1 share.
const CRATE_MIN: i16 = 2;

/// The commit timestamp written for v1: −1, "stamp it when the broker appends it", the only thing
/// v2+ can mean.
const COMMIT_TIMESTAMP_NOW: i64 = -1;

/// An old OffsetCommit body → the crate's request (new fields at their protocol defaults; v1's
/// commit timestamps dropped, see the module documentation).
pub fn decode_request(version: i16, body: &[u8]) -> Result<OffsetCommitRequest, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    whole(body, "OffsetCommit request", |input| request(version, input))
}

/// The crate's request → an old OffsetCommit body (for tests and fuzzing, which check
/// [`decode_request`] against it). As Kafka's own clients do, fields the spec marks ignorable are
/// dropped when the old version lacks them (membership for v0, retention, leader epochs); a group
/// instance id or a topic id cannot be dropped without changing the commit and is refused.
pub fn encode_request(version: i16, request: &OffsetCommitRequest) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    if request.group_instance_id.is_some() {
        return Err(LegacyError::Unrepresentable("OffsetCommit group_instance_id"));
    }
    let mut w = Writer::new();
    w.string(&request.group_id)?;
    if version >= 1 {
        w.i32(request.generation_id_or_member_epoch).string(&request.member_id)?;
    }
    w.array(&request.topics, |w, topic| {
        if !topic.topic_id.is_nil() {
            return Err(LegacyError::Unrepresentable("OffsetCommit topic_id"));
        }
        w.string(&topic.name)?;
        w.array(&topic.partitions, |w, partition| {
            w.i32(partition.partition_index).i64(partition.committed_offset);
            if version >= 1 {
                w.i64(COMMIT_TIMESTAMP_NOW);
            }
            w.nullable_string(partition.committed_metadata.as_deref())?;
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(w.finish())
}

/// An old OffsetCommit response body → the crate's response (for tests). Same layout as v2.
pub fn decode_response(version: i16, body: &[u8]) -> Result<OffsetCommitResponse, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    decode_same(body, CRATE_MIN, "OffsetCommit response")
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the old
/// layout, error codes mapped to ones the client knows. Throttle time (v3+) is dropped; the answer
/// must name its topics (v10+ answers by topic id only, which this layout cannot carry).
pub fn encode_response(version: i16, response: &OffsetCommitResponse) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let mut old = response.clone();
    old.throttle_time_ms = 0;
    for topic in &mut old.topics {
        if !topic.topic_id.is_nil() && topic.name.is_empty() {
            return Err(LegacyError::Unrepresentable("OffsetCommit topic id without a name"));
        }
        topic.topic_id = uuid::Uuid::nil();
        for partition in &mut topic.partitions {
            partition.error_code = downgrade_error(ApiKey::OffsetCommit, version, partition.error_code);
        }
    }
    encode_same(&old, CRATE_MIN)
}

fn request(version: i16, input: &[u8]) -> Res<'_, OffsetCommitRequest> {
    let (input, group_id) = string(input)?;
    let (input, generation_id, member_id) = if version >= 1 {
        let (input, generation_id) = be_i32(input)?;
        let (input, member_id) = string(input)?;
        (input, generation_id, member_id)
    } else {
        (input, -1, StrBytes::default())
    };
    let (input, topics) = array(|input| topic(version, input))(input)?;
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id.into())
        .with_generation_id_or_member_epoch(generation_id)
        .with_member_id(member_id)
        .with_retention_time_ms(-1)
        .with_topics(topics);
    Ok((input, request))
}

fn topic(version: i16, input: &[u8]) -> Res<'_, OffsetCommitRequestTopic> {
    let (input, name) = string(input)?;
    let (input, partitions) = array(|input| partition(version, input))(input)?;
    Ok((input, OffsetCommitRequestTopic::default().with_name(name.into()).with_partitions(partitions)))
}

fn partition(version: i16, input: &[u8]) -> Res<'_, OffsetCommitRequestPartition> {
    let (input, partition_index) = be_i32(input)?;
    let (input, committed_offset) = be_i64(input)?;
    // v1's commit timestamp: dropped (module documentation).
    let (input, _commit_timestamp) = if version >= 1 { be_i64(input)? } else { (input, COMMIT_TIMESTAMP_NOW) };
    let (input, committed_metadata) = nullable_string(input)?;
    let partition = OffsetCommitRequestPartition::default()
        .with_partition_index(partition_index)
        .with_committed_offset(committed_offset)
        .with_committed_leader_epoch(-1)
        .with_committed_metadata(committed_metadata);
    Ok((input, partition))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::testing::{
        arbitrary_bytes, biased_bytes, cat, name, nullable_str_bytes, old_error, round_trip, s, str_bytes, text, through_crate,
        topic_name,
    };
    use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Crate versions checked: the minimum, the first with throttle time, the first flexible one.
    const CRATE_VERSIONS: [i16; 3] = [2, 3, 8];

    #[test]
    fn hand_assembled_v0_request_decodes_field_by_field() {
        let body = cat(&[
            &s("group"),                                                // group_id
            &1i32.to_be_bytes(),                                        // topics count
            &s("orders"),                                               // name
            &2i32.to_be_bytes(),                                        // partitions count
            &0i32.to_be_bytes(), &42i64.to_be_bytes(), &s("meta"),      // partition_index, committed_offset, metadata
            &3i32.to_be_bytes(), &7i64.to_be_bytes(), &(-1i16).to_be_bytes(), // null metadata
        ]);
        let request = decode_request(0, &body).unwrap();
        assert_eq!(request.group_id.0, text("group"));
        assert_eq!(request.generation_id_or_member_epoch, -1);
        assert_eq!(request.member_id, text(""));
        assert_eq!(request.retention_time_ms, -1);
        assert_eq!(request.group_instance_id, None);
        assert_eq!(request.topics.len(), 1);
        assert_eq!(request.topics[0].name, name("orders"));
        let partitions = &request.topics[0].partitions;
        assert_eq!((partitions[0].partition_index, partitions[0].committed_offset), (0, 42));
        assert_eq!(partitions[0].committed_metadata, Some(text("meta")));
        assert_eq!(partitions[0].committed_leader_epoch, -1);
        assert_eq!((partitions[1].partition_index, partitions[1].committed_offset, partitions[1].committed_metadata.clone()), (3, 7, None));
        assert_eq!(encode_request(0, &request).unwrap(), body);
    }

    #[test]
    fn hand_assembled_v1_request_decodes_field_by_field() {
        let body = cat(&[
            &s("group"), &5i32.to_be_bytes(), &s("consumer-1"),         // group_id, generation_id, member_id
            &1i32.to_be_bytes(), &s("orders"), &1i32.to_be_bytes(),     // topics, name, partitions
            &2i32.to_be_bytes(), &9i64.to_be_bytes(), &(-1i64).to_be_bytes(), &s(""), // index, offset, commit_timestamp, metadata
        ]);
        let request = decode_request(1, &body).unwrap();
        assert_eq!(request.group_id.0, text("group"));
        assert_eq!(request.generation_id_or_member_epoch, 5);
        assert_eq!(request.member_id, text("consumer-1"));
        assert_eq!(request.retention_time_ms, -1);
        let partition = &request.topics[0].partitions[0];
        assert_eq!((partition.partition_index, partition.committed_offset, partition.committed_metadata.clone()), (2, 9, Some(text(""))));
        assert_eq!(encode_request(1, &request).unwrap(), body);
    }

    #[test]
    fn an_explicit_commit_timestamp_is_dropped() {
        let body = cat(&[
            &s("g"), &1i32.to_be_bytes(), &s("m"), &1i32.to_be_bytes(), &s("t"), &1i32.to_be_bytes(), &0i32.to_be_bytes(),
            &1i64.to_be_bytes(), &1_600_000_000_000i64.to_be_bytes(), &s(""),
        ]);
        let request = decode_request(1, &body).unwrap();
        let reencoded = encode_request(1, &request).unwrap();
        assert_eq!(reencoded.len(), body.len());
        assert_eq!(decode_request(1, &reencoded).unwrap(), request);
        assert!(reencoded.windows(8).any(|w| w == (-1i64).to_be_bytes()));
    }

    #[test]
    fn hand_assembled_responses_decode_field_by_field() {
        let body = cat(&[
            &2i32.to_be_bytes(),                                        // topics count
            &s("orders"), &2i32.to_be_bytes(),                          // name, partitions count
            &0i32.to_be_bytes(), &0i16.to_be_bytes(),                   // partition_index, error_code
            &1i32.to_be_bytes(), &25i16.to_be_bytes(),                  // UNKNOWN_MEMBER_ID
            &s("t"), &0i32.to_be_bytes(),
        ]);
        for version in OLD_VERSIONS {
            let response = decode_response(version, &body).unwrap();
            assert_eq!(response.throttle_time_ms, 0);
            assert_eq!(response.topics.len(), 2);
            assert_eq!(response.topics[0].name, name("orders"));
            let partitions = &response.topics[0].partitions;
            assert_eq!((partitions[0].partition_index, partitions[0].error_code), (0, 0));
            assert_eq!((partitions[1].partition_index, partitions[1].error_code), (1, 25));
            assert_eq!(response.topics[1].name, name("t"));
            assert!(response.topics[1].partitions.is_empty());
            assert_eq!(encode_response(version, &response).unwrap(), body, "v{version}");
        }
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 2, 9] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &OffsetCommitRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &OffsetCommitResponse::default()).unwrap_err(), refused);
        }
    }

    #[test]
    fn what_the_old_layout_cannot_carry() {
        let with_instance = OffsetCommitRequest::default().with_group_instance_id(Some(text("i")));
        assert_eq!(encode_request(1, &with_instance), Err(LegacyError::Unrepresentable("OffsetCommit group_instance_id")));
        // Ignorable fields are dropped, as Kafka's clients do: v0 loses membership, both lose retention.
        let member = OffsetCommitRequest::default().with_generation_id_or_member_epoch(3).with_member_id(text("m")).with_retention_time_ms(1000);
        let v0 = decode_request(0, &encode_request(0, &member).unwrap()).unwrap();
        assert_eq!((v0.generation_id_or_member_epoch, v0.member_id.clone(), v0.retention_time_ms), (-1, text(""), -1));
        let v1 = decode_request(1, &encode_request(1, &member).unwrap()).unwrap();
        assert_eq!((v1.generation_id_or_member_epoch, v1.member_id.clone(), v1.retention_time_ms), (3, text("m"), -1));
    }

    #[test]
    fn new_fields_are_dropped_and_new_error_codes_mapped() {
        let partitions = vec![OffsetCommitResponsePartition::default().with_partition_index(4).with_error_code(100)];
        let response = OffsetCommitResponse::default()
            .with_throttle_time_ms(30)
            .with_topics(vec![OffsetCommitResponseTopic::default().with_name(name("t")).with_partitions(partitions)]);
        let old = decode_response(0, &encode_response(0, &through_crate(&response, 8)).unwrap()).unwrap();
        assert_eq!(old.throttle_time_ms, 0);
        assert_eq!(old.topics[0].partitions[0].error_code, 3);
    }

    fn old_request(version: i16) -> impl Strategy<Value = OffsetCommitRequest> {
        let partition = (any::<i32>(), any::<i64>(), nullable_str_bytes()).prop_map(|(index, offset, metadata)| {
            OffsetCommitRequestPartition::default().with_partition_index(index).with_committed_offset(offset).with_committed_metadata(metadata)
        });
        let topic = (topic_name(), vec(partition, 0..4))
            .prop_map(|(name, partitions)| OffsetCommitRequestTopic::default().with_name(name).with_partitions(partitions));
        (str_bytes(), any::<i32>(), str_bytes(), vec(topic, 0..4)).prop_map(move |(group, generation, member, topics)| {
            let request = OffsetCommitRequest::default().with_group_id(group.into()).with_topics(topics);
            if version >= 1 {
                request.with_generation_id_or_member_epoch(generation).with_member_id(member)
            } else {
                request
            }
        })
    }

    fn old_response(version: i16) -> impl Strategy<Value = OffsetCommitResponse> {
        let partition = (any::<i32>(), old_error(ApiKey::OffsetCommit, version))
            .prop_map(|(index, error)| OffsetCommitResponsePartition::default().with_partition_index(index).with_error_code(error));
        let topic = (topic_name(), vec(partition, 0..4))
            .prop_map(|(name, partitions)| OffsetCommitResponseTopic::default().with_name(name).with_partitions(partitions));
        vec(topic, 0..4).prop_map(|topics| OffsetCommitResponse::default().with_topics(topics))
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
