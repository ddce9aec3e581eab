//! OffsetForLeaderEpoch v0–1 (Kafka 0.11–2.0), removed in Kafka 4.0, translated to and from the
//! crate's `OffsetForLeaderEpochRequest` / `OffsetForLeaderEpochResponse` at v2, its minimum.
//!
//! Layouts (Kafka 3.9's message JSON):
//! - request v0 = v1: topics [topic, partitions [partition, leader_epoch]]; v2 adds
//!   `current_leader_epoch` before `leader_epoch` (−1: no fencing, what v0–1 did), v3 `replica_id`
//!   (the crate's default −2, which the spec says a broker assumes for older versions).
//! - response v0: topics [topic, partitions [error_code, partition, end_offset]]; v1 adds
//!   `leader_epoch` before `end_offset` (−1 when a v0 response is read), v2 `throttle_time_ms`.

use crate::legacy::admin::check_version;
use crate::legacy::errors::downgrade_error;
use crate::legacy::wire::{array, string, whole, Res, Writer};
use crate::legacy::LegacyError;
use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use nom::number::complete::{be_i16, be_i32, be_i64};
use std::ops::RangeInclusive;

/// The OffsetForLeaderEpoch versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=1;

/// An old OffsetForLeaderEpoch body → the crate's request: `current_leader_epoch` −1 (no fencing)
/// and `replica_id` at the spec's default for versions without it.
pub fn decode_request(version: i16, body: &[u8]) -> Result<OffsetForLeaderEpochRequest, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    whole(body, "OffsetForLeaderEpoch request", |input| {
        let (input, topics) = array(request_topic)(input)?;
        Ok((input, OffsetForLeaderEpochRequest::default().with_topics(topics)))
    })
}

/// The crate's request → an old OffsetForLeaderEpoch body (for tests and fuzzing). The fields v2+
/// added are ignorable in the spec and dropped, as Kafka's clients do.
pub fn encode_request(version: i16, request: &OffsetForLeaderEpochRequest) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let mut w = Writer::new();
    w.array(&request.topics, |w, topic| {
        w.string(&topic.topic)?;
        w.array(&topic.partitions, |w, partition| {
            w.i32(partition.partition).i32(partition.leader_epoch);
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(w.finish())
}

/// An old OffsetForLeaderEpoch response body → the crate's response (for tests): `leader_epoch` −1
/// for v0, throttle time 0.
pub fn decode_response(version: i16, body: &[u8]) -> Result<OffsetForLeaderEpochResponse, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    whole(body, "OffsetForLeaderEpoch response", |input| {
        let (input, topics) = array(|input| response_topic(version, input))(input)?;
        Ok((input, OffsetForLeaderEpochResponse::default().with_topics(topics)))
    })
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the old
/// layout, error codes mapped to ones the client knows (a fenced or unknown leader epoch becomes
/// NOT_LEADER_FOR_PARTITION). Throttle time, and for v0 the leader epoch, are dropped.
pub fn encode_response(version: i16, response: &OffsetForLeaderEpochResponse) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let mut w = Writer::new();
    w.array(&response.topics, |w, topic| {
        w.string(&topic.topic)?;
        w.array(&topic.partitions, |w, partition| {
            w.i16(downgrade_error(ApiKey::OffsetForLeaderEpoch, version, partition.error_code)).i32(partition.partition);
            if version >= 1 {
                w.i32(partition.leader_epoch);
            }
            w.i64(partition.end_offset);
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(w.finish())
}

fn request_topic(input: &[u8]) -> Res<'_, OffsetForLeaderTopic> {
    let (input, topic) = string(input)?;
    let (input, partitions) = array(|input| {
        let (input, partition) = be_i32(input)?;
        let (input, leader_epoch) = be_i32(input)?;
        Ok((input, OffsetForLeaderPartition::default().with_partition(partition).with_current_leader_epoch(-1).with_leader_epoch(leader_epoch)))
    })(input)?;
    Ok((input, OffsetForLeaderTopic::default().with_topic(topic.into()).with_partitions(partitions)))
}

fn response_topic(version: i16, input: &[u8]) -> Res<'_, OffsetForLeaderTopicResult> {
    let (input, topic) = string(input)?;
    let (input, partitions) = array(|input| {
        let (input, error_code) = be_i16(input)?;
        let (input, partition) = be_i32(input)?;
        let (input, leader_epoch) = if version >= 1 { be_i32(input)? } else { (input, -1) };
        let (input, end_offset) = be_i64(input)?;
        let partition = EpochEndOffset::default()
            .with_error_code(error_code)
            .with_partition(partition)
            .with_leader_epoch(leader_epoch)
            .with_end_offset(end_offset);
        Ok((input, partition))
    })(input)?;
    Ok((input, OffsetForLeaderTopicResult::default().with_topic(topic.into()).with_partitions(partitions)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::testing::{arbitrary_bytes, biased_bytes, cat, name, old_error, round_trip, s, through_crate, topic_name};
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Crate versions checked: the minimum, the first with a replica id, the first flexible one.
    const CRATE_VERSIONS: [i16; 3] = [2, 3, 4];

    #[test]
    fn hand_assembled_requests_decode_field_by_field() {
        let body = cat(&[
            &1i32.to_be_bytes(),                                        // topics count
            &s("orders"), &2i32.to_be_bytes(),                          // topic, partitions count
            &0i32.to_be_bytes(), &5i32.to_be_bytes(),                   // partition, leader_epoch
            &1i32.to_be_bytes(), &0i32.to_be_bytes(),
        ]);
        for version in OLD_VERSIONS {
            let request = decode_request(version, &body).unwrap();
            assert_eq!(request.replica_id.0, -2);
            assert_eq!(request.topics[0].topic, name("orders"));
            let partitions = &request.topics[0].partitions;
            assert_eq!((partitions[0].partition, partitions[0].current_leader_epoch, partitions[0].leader_epoch), (0, -1, 5));
            assert_eq!((partitions[1].partition, partitions[1].current_leader_epoch, partitions[1].leader_epoch), (1, -1, 0));
            assert_eq!(encode_request(version, &request).unwrap(), body, "v{version}");
        }
    }

    #[test]
    fn hand_assembled_responses_decode_field_by_field() {
        let v0 = cat(&[
            &1i32.to_be_bytes(), &s("orders"), &2i32.to_be_bytes(),     // topics, topic, partitions
            &0i16.to_be_bytes(), &0i32.to_be_bytes(), &100i64.to_be_bytes(), // error_code, partition, end_offset
            &6i16.to_be_bytes(), &1i32.to_be_bytes(), &(-1i64).to_be_bytes(),
        ]);
        let v1 = cat(&[
            &1i32.to_be_bytes(), &s("orders"), &2i32.to_be_bytes(),
            &0i16.to_be_bytes(), &0i32.to_be_bytes(), &4i32.to_be_bytes(), &100i64.to_be_bytes(), // ..., leader_epoch, end_offset
            &6i16.to_be_bytes(), &1i32.to_be_bytes(), &(-1i32).to_be_bytes(), &(-1i64).to_be_bytes(),
        ]);
        for (version, body) in [(0, v0), (1, v1)] {
            let response = decode_response(version, &body).unwrap();
            assert_eq!(response.throttle_time_ms, 0);
            assert_eq!(response.topics[0].topic, name("orders"));
            let partitions = &response.topics[0].partitions;
            assert_eq!((partitions[0].error_code, partitions[0].partition, partitions[0].end_offset), (0, 0, 100));
            assert_eq!(partitions[0].leader_epoch, if version >= 1 { 4 } else { -1 });
            assert_eq!(
                (partitions[1].error_code, partitions[1].partition, partitions[1].leader_epoch, partitions[1].end_offset),
                (6, 1, -1, -1)
            );
            assert_eq!(encode_response(version, &response).unwrap(), body, "v{version}");
        }
    }

    #[test]
    fn new_fields_are_dropped_and_new_error_codes_mapped() {
        let partitions = vec![EpochEndOffset::default().with_error_code(74).with_partition(1).with_leader_epoch(9).with_end_offset(50)];
        let response = OffsetForLeaderEpochResponse::default()
            .with_throttle_time_ms(20)
            .with_topics(vec![OffsetForLeaderTopicResult::default().with_topic(name("t")).with_partitions(partitions)]);
        let old = decode_response(0, &encode_response(0, &through_crate(&response, 4)).unwrap()).unwrap();
        let partition = &old.topics[0].partitions[0];
        assert_eq!((partition.error_code, partition.leader_epoch, partition.end_offset), (6, -1, 50));
        assert_eq!(old.throttle_time_ms, 0);
        let fenced = OffsetForLeaderEpochRequest::default().with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(name("t"))
                .with_partitions(vec![OffsetForLeaderPartition::default().with_current_leader_epoch(3)]),
        ]);
        assert_eq!(decode_request(1, &encode_request(1, &fenced).unwrap()).unwrap().topics[0].partitions[0].current_leader_epoch, -1);
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 2, 4] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &OffsetForLeaderEpochRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &OffsetForLeaderEpochResponse::default()).unwrap_err(), refused);
        }
    }

    fn old_request() -> impl Strategy<Value = OffsetForLeaderEpochRequest> {
        let partition = (any::<i32>(), any::<i32>())
            .prop_map(|(p, epoch)| OffsetForLeaderPartition::default().with_partition(p).with_leader_epoch(epoch));
        let topic = (topic_name(), vec(partition, 0..4))
            .prop_map(|(name, partitions)| OffsetForLeaderTopic::default().with_topic(name).with_partitions(partitions));
        vec(topic, 0..4).prop_map(|topics| OffsetForLeaderEpochRequest::default().with_topics(topics))
    }

    fn old_response(version: i16) -> impl Strategy<Value = OffsetForLeaderEpochResponse> {
        let partition = (old_error(ApiKey::OffsetForLeaderEpoch, version), any::<i32>(), any::<i32>(), any::<i64>())
            .prop_map(move |(error, p, epoch, end)| {
                let epoch = if version >= 1 { epoch } else { -1 };
                EpochEndOffset::default().with_error_code(error).with_partition(p).with_leader_epoch(epoch).with_end_offset(end)
            });
        let topic = (topic_name(), vec(partition, 0..4))
            .prop_map(|(name, partitions)| OffsetForLeaderTopicResult::default().with_topic(name).with_partitions(partitions));
        vec(topic, 0..4).prop_map(|topics| OffsetForLeaderEpochResponse::default().with_topics(topics))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn old_requests_survive_upgrade_and_downgrade(version in OLD_VERSIONS, request in old_request()) {
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
