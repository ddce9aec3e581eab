//! ListOffsets v0 (Kafka 0.8–0.10.0, "Offsets"), removed in Kafka 4.0, translated to and from the
//! crate's `ListOffsetsRequest` / `ListOffsetsResponse`.
//!
//! v0 asked for up to `max_num_offsets` offsets before a timestamp and got a list back; v1 (KIP-79)
//! answers exactly one offset per partition, with its timestamp. The translation keeps the
//! timestamp (-1 latest, -2 earliest, or a time) and loses `max_num_offsets`: every client asked
//! for one offset in practice (the Java consumer, librdkafka, kafka-python, sarama all send 1), and
//! the list v1 answers with has that one. Two differences remain for a time query: v0 answered by
//! log segment (the base offset of the last segment modified before the time), v1 answers the first
//! offset whose record timestamp is at or after it, which is what a client asking "offset at time
//! T" wants anyway.

use super::errors::downgrade_error;
use super::wire::{array, string, whole, Res, Writer};
use super::LegacyError;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};
use nom::number::complete::{be_i16, be_i32, be_i64};
use std::ops::RangeInclusive;

/// The ListOffsets versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=0;

/// What [`encode_request`] writes for `max_num_offsets`, which the crate's type has no field for:
/// one offset, what v1+ answers and what every client asked for.
const MAX_NUM_OFFSETS: i32 = 1;

fn check(version: i16) -> Result<(), LegacyError> {
    if OLD_VERSIONS.contains(&version) {
        Ok(())
    } else {
        Err(LegacyError::Unrepresentable("version"))
    }
}

/// An old ListOffsets body → the crate's request. `max_num_offsets` is read and dropped (see the
/// module documentation). New fields: `isolation_level` 0 (read uncommitted, what v0 meant: the
/// log end offset, not the last stable offset), per partition `current_leader_epoch` -1 (not
/// checked), `timeout_ms` the crate's default (v10+ only).
pub fn decode_request(version: i16, body: &[u8]) -> Result<ListOffsetsRequest, LegacyError> {
    check(version)?;
    whole(body, "ListOffsets request", |input| {
        let (input, replica_id) = be_i32(input)?;
        let (input, topics) = array(topic)(input)?;
        Ok((input, ListOffsetsRequest::default().with_replica_id(replica_id.into()).with_isolation_level(0).with_topics(topics)))
    })
}

/// The crate's request → an old ListOffsets body (for tests and fuzzing), `max_num_offsets` written
/// as 1 (the value is not kept; see the module documentation).
pub fn encode_request(version: i16, request: &ListOffsetsRequest) -> Result<Vec<u8>, LegacyError> {
    check(version)?;
    let mut w = Writer::new();
    w.i32(request.replica_id.0);
    w.array(&request.topics, |w, topic| {
        w.string(&topic.name)?;
        w.array(&topic.partitions, |w, partition| {
            w.i32(partition.partition_index).i64(partition.timestamp).i32(MAX_NUM_OFFSETS);
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(w.finish())
}

/// An old ListOffsets response body → the crate's response (for tests): `offset` is the first of
/// the old-style offsets, -1 if there is none; `timestamp` -1 (v0 has none).
pub fn decode_response(version: i16, body: &[u8]) -> Result<ListOffsetsResponse, LegacyError> {
    check(version)?;
    whole(body, "ListOffsets response", |input| {
        let (input, topics) = array(topic_response)(input)?;
        Ok((input, ListOffsetsResponse::default().with_topics(topics)))
    })
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the old
/// layout: the offset becomes a list of one offset, or an empty list when the partition has an
/// error or the broker found no offset (-1), as a v0 broker answered; error codes mapped to ones
/// the client knows. Timestamps, leader epochs and the throttle time have no place and are dropped.
pub fn encode_response(version: i16, response: &ListOffsetsResponse) -> Result<Vec<u8>, LegacyError> {
    check(version)?;
    let mut w = Writer::new();
    w.array(&response.topics, |w, topic| {
        w.string(&topic.name)?;
        w.array(&topic.partitions, |w, partition| {
            w.i32(partition.partition_index).i16(downgrade_error(ApiKey::ListOffsets, version, partition.error_code));
            if partition.error_code == 0 && partition.offset >= 0 {
                w.count(1)?.i64(partition.offset);
            } else {
                w.count(0)?;
            }
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(w.finish())
}

fn topic(input: &[u8]) -> Res<'_, ListOffsetsTopic> {
    let (input, name) = string(input)?;
    let (input, partitions) = array(partition)(input)?;
    Ok((input, ListOffsetsTopic::default().with_name(name.into()).with_partitions(partitions)))
}

fn partition(input: &[u8]) -> Res<'_, ListOffsetsPartition> {
    let (input, partition_index) = be_i32(input)?;
    let (input, timestamp) = be_i64(input)?;
    let (input, _max_num_offsets) = be_i32(input)?;
    let partition =
        ListOffsetsPartition::default().with_partition_index(partition_index).with_current_leader_epoch(-1).with_timestamp(timestamp);
    Ok((input, partition))
}

fn topic_response(input: &[u8]) -> Res<'_, ListOffsetsTopicResponse> {
    let (input, name) = string(input)?;
    let (input, partitions) = array(partition_response)(input)?;
    Ok((input, ListOffsetsTopicResponse::default().with_name(name.into()).with_partitions(partitions)))
}

fn partition_response(input: &[u8]) -> Res<'_, ListOffsetsPartitionResponse> {
    let (input, partition_index) = be_i32(input)?;
    let (input, error_code) = be_i16(input)?;
    let (input, offsets) = array(be_i64)(input)?;
    let partition = ListOffsetsPartitionResponse::default()
        .with_partition_index(partition_index)
        .with_error_code(error_code)
        .with_timestamp(-1)
        .with_offset(offsets.first().copied().unwrap_or(-1));
    Ok((input, partition))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::testing::{int16, int32, int64, name, s as text, through_crate};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Crate versions the translated messages are checked at: the minimum, the first with leader
    /// epochs, the first flexible one and the newest.
    const CRATE_VERSIONS: [i16; 4] = [1, 4, 6, 10];

    #[test]
    fn hand_assembled_request_decodes_field_by_field() {
        let body = [
            int32(-1),                                               // replica_id
            int32(1),                                                // topics count
            text("orders"),                                          // name
            int32(3),                                                // partitions count
            [int32(0), int64(-1), int32(1)].concat(),                // partition_index, timestamp (latest), max_num_offsets
            [int32(1), int64(-2), int32(1)].concat(),                // partition_index, timestamp (earliest), max_num_offsets
            [int32(2), int64(1_700_000_000_000), int32(1)].concat(), // partition_index, timestamp (a time), max_num_offsets
        ]
        .concat();
        let request = decode_request(0, &body).unwrap();
        assert_eq!((request.replica_id.0, request.isolation_level), (-1, 0));
        assert_eq!(request.topics.len(), 1);
        assert_eq!(request.topics[0].name, name("orders"));
        let seen: Vec<_> = request.topics[0].partitions.iter().map(|p| (p.partition_index, p.timestamp, p.current_leader_epoch)).collect();
        assert_eq!(seen, vec![(0, -1, -1), (1, -2, -1), (2, 1_700_000_000_000, -1)]);
        assert_eq!(encode_request(0, &request).unwrap(), body);
    }

    #[test]
    fn max_num_offsets_is_read_and_written_as_one() {
        let body = |max: i32| [int32(-1), int32(1), text("t"), int32(1), int32(0), int64(-1), int32(max)].concat();
        let request = decode_request(0, &body(500)).unwrap();
        assert_eq!(request, decode_request(0, &body(1)).unwrap());
        assert_eq!(encode_request(0, &request).unwrap(), body(MAX_NUM_OFFSETS));
    }

    #[test]
    fn hand_assembled_response_decodes_field_by_field() {
        let body = [
            int32(1),                                           // topics count
            text("orders"),                                     // name
            int32(2),                                           // partitions count
            [int32(0), int16(0), int32(1), int64(42)].concat(), // partition_index, error_code, old_style_offsets [42]
            [int32(1), int16(3), int32(0)].concat(),            // partition_index, error_code, old_style_offsets []
        ]
        .concat();
        let response = decode_response(0, &body).unwrap();
        assert_eq!(response.throttle_time_ms, 0);
        assert_eq!(response.topics.len(), 1);
        assert_eq!(response.topics[0].name, name("orders"));
        let seen: Vec<_> = response.topics[0].partitions.iter().map(|p| (p.partition_index, p.error_code, p.offset, p.timestamp)).collect();
        assert_eq!(seen, vec![(0, 0, 42, -1), (1, 3, -1, -1)]);
        assert_eq!(encode_response(0, &response).unwrap(), body);
    }

    #[test]
    fn several_old_style_offsets_read_as_the_first() {
        let body = [int32(1), text("t"), int32(1), int32(0), int16(0), int32(2), int64(9), int64(4)].concat();
        assert_eq!(decode_response(0, &body).unwrap().topics[0].partitions[0].offset, 9);
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 1, 10] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &ListOffsetsRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &ListOffsetsResponse::default()).unwrap_err(), refused);
        }
    }

    #[test]
    fn errors_and_missing_offsets_give_no_offsets_and_new_codes_are_mapped() {
        let partitions = vec![
            ListOffsetsPartitionResponse::default().with_partition_index(0).with_offset(-1).with_timestamp(5),
            ListOffsetsPartitionResponse::default().with_partition_index(1).with_error_code(78).with_offset(10),
            ListOffsetsPartitionResponse::default().with_partition_index(2).with_offset(0).with_leader_epoch(7),
        ];
        let response = ListOffsetsResponse::default()
            .with_throttle_time_ms(9)
            .with_topics(vec![ListOffsetsTopicResponse::default().with_name(name("t")).with_partitions(partitions)]);
        let encoded = encode_response(0, &through_crate(&response, 4)).unwrap(); // throttle time from v2, leader epoch from v4
        let expected = [
            int32(1),                                // topics count
            text("t"),                               // name
            int32(3),                                // partitions count
            [int32(0), int16(0), int32(0)].concat(), // no offset found: no offsets
            [int32(1), int16(5), int32(0)].concat(), // OFFSET_NOT_AVAILABLE → LEADER_NOT_AVAILABLE, no offsets
            [int32(2), int16(0), int32(1), int64(0)].concat(),
        ]
        .concat();
        assert_eq!(encoded, expected);
    }

    fn topic_name() -> impl Strategy<Value = TopicName> {
        "\\PC{0,12}".prop_map(|text| TopicName(StrBytes::from_string(text)))
    }

    /// A request with what v0 can express, new fields as [`decode_request`] sets them.
    fn old_request() -> impl Strategy<Value = ListOffsetsRequest> {
        let timestamp = prop_oneof![Just(-1i64), Just(-2i64), any::<i64>()];
        let partition = (any::<i32>(), timestamp)
            .prop_map(|(index, timestamp)| ListOffsetsPartition::default().with_partition_index(index).with_timestamp(timestamp));
        let topic = (topic_name(), vec(partition, 0..4))
            .prop_map(|(name, partitions)| ListOffsetsTopic::default().with_name(name).with_partitions(partitions));
        (any::<i32>(), vec(topic, 0..4))
            .prop_map(|(replica, topics)| ListOffsetsRequest::default().with_replica_id(replica.into()).with_topics(topics))
    }

    /// A broker's response, new fields set too (they must be dropped); errors mostly 0 so offsets
    /// get through.
    fn response() -> impl Strategy<Value = ListOffsetsResponse> {
        let error = prop_oneof![3 => Just(0i16), 1 => any::<i16>()];
        let offset = prop_oneof![Just(-1i64), 0i64..i64::MAX, any::<i64>()];
        let partition = (any::<i32>(), error, offset, any::<i64>(), any::<i32>()).prop_map(|(index, error, offset, timestamp, epoch)| {
            ListOffsetsPartitionResponse::default()
                .with_partition_index(index)
                .with_error_code(error)
                .with_offset(offset)
                .with_timestamp(timestamp)
                .with_leader_epoch(epoch)
        });
        let topic = (topic_name(), vec(partition, 0..4))
            .prop_map(|(name, partitions)| ListOffsetsTopicResponse::default().with_name(name).with_partitions(partitions));
        (any::<i32>(), vec(topic, 0..4))
            .prop_map(|(throttle, topics)| ListOffsetsResponse::default().with_throttle_time_ms(throttle).with_topics(topics))
    }

    /// What an old client sees of `response`: an offset only with no error, error codes mapped.
    fn old_fields(response: &ListOffsetsResponse) -> ListOffsetsResponse {
        let topics = response.topics.iter().map(|topic| {
            let partitions = topic.partitions.iter().map(|p| {
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(downgrade_error(ApiKey::ListOffsets, 0, p.error_code))
                    .with_offset(if p.error_code == 0 && p.offset >= 0 { p.offset } else { -1 })
            });
            ListOffsetsTopicResponse::default().with_name(topic.name.clone()).with_partitions(partitions.collect())
        });
        ListOffsetsResponse::default().with_topics(topics.collect())
    }

    /// Bytes that parse far: mostly zeros (empty arrays and strings), some ones, some random.
    fn biased_bytes() -> impl Strategy<Value = Vec<u8>> {
        vec(prop_oneof![4 => Just(0u8), 1 => Just(1u8), 3 => any::<u8>()], 0..128)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn old_requests_survive_upgrade_and_downgrade(request in old_request()) {
            let bytes = encode_request(0, &request).unwrap();
            let decoded = decode_request(0, &bytes).unwrap();
            prop_assert_eq!(&decoded, &request);
            for crate_version in CRATE_VERSIONS {
                let downgraded = encode_request(0, &through_crate(&decoded, crate_version)).unwrap();
                prop_assert_eq!(&downgraded, &bytes, "crate v{}", crate_version);
            }
        }

        #[test]
        fn broker_responses_reach_old_clients_with_their_fields(response in response()) {
            for crate_version in CRATE_VERSIONS {
                // The crate refuses to encode a throttle time before v2 and a leader epoch before v4.
                let mut response = response.clone();
                if crate_version < 2 {
                    response.throttle_time_ms = 0;
                }
                if crate_version < 4 {
                    response.topics.iter_mut().flat_map(|topic| topic.partitions.iter_mut()).for_each(|p| p.leader_epoch = -1);
                }
                let old = decode_response(0, &encode_response(0, &through_crate(&response, crate_version)).unwrap()).unwrap();
                prop_assert_eq!(&old, &old_fields(&response), "crate v{}", crate_version);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(version in -1i16..2, body in biased_bytes()) {
            let _ = decode_request(version, &body);
            let _ = decode_response(version, &body);
        }

        #[test]
        fn every_truncated_body_is_malformed(request in old_request()) {
            let bytes = encode_request(0, &request).unwrap();
            for end in 0..bytes.len() {
                prop_assert!(matches!(decode_request(0, &bytes[..end]), Err(LegacyError::Malformed(_))));
            }
        }
    }
}
