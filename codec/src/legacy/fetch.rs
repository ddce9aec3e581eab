//! Fetch v0–3 (Kafka 0.8–0.10.1), removed in Kafka 4.0, translated to and from the crate's
//! `FetchRequest` / `FetchResponse`.
//!
//! The request upgrades to v4's fields at the values that mean "what an old client got": no
//! response size limit before v3, read uncommitted, no fetch session, no leader epoch. The response
//! keeps what the old layout has (throttle time from v1, per partition the error code, the high
//! watermark and the records) and drops the rest: last stable offset, log start offset, aborted
//! transactions (old clients read uncommitted, so they never need them), preferred read replica,
//! diverging epoch, current leader, snapshot id, session id, node endpoints. Records are
//! down-converted from record batches to a message set of the magic the version reads (0 for v0–1,
//! 1 for v2–3), as Kafka's own broker did for these versions.
//!
//! The broker must answer at a version that names topics (v4–12): v13+ names them by id only, and
//! this layout has no room for ids.

use super::errors::{downgrade_error, UNSUPPORTED_COMPRESSION_TYPE};
use super::message_set::{self, DownConversion};
use super::wire::{array, nullable_bytes, string, whole, Res, Writer};
use super::LegacyError;
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse};
use nom::number::complete::{be_i16, be_i32, be_i64};
use std::ops::RangeInclusive;

/// The Fetch versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=3;

/// What [`encode_response`] did to the records, for the filter's metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FetchDownConversion {
    /// Records converted, headers dropped and control records skipped, summed over partitions.
    pub stats: DownConversion,
    /// Partitions answered UNSUPPORTED_COMPRESSION_TYPE (zstd records, which no message set of magic
    /// 0 or 1 can carry) instead of their records: an old consumer cannot read them, and this is the
    /// error KIP-110 specified for it.
    pub unsupported_compression: u32,
}

fn check(version: i16) -> Result<(), LegacyError> {
    if OLD_VERSIONS.contains(&version) {
        Ok(())
    } else {
        Err(LegacyError::Unrepresentable("version"))
    }
}

/// The magic of the message sets a client of `version` reads: 1 (timestamps) from v2, KIP-32.
fn magic(version: i16) -> i8 {
    if version >= 2 {
        1
    } else {
        0
    }
}

/// An old Fetch body → the crate's request. New fields take the values that mean what the old
/// version meant: `max_bytes` i32::MAX before v3 (no response limit), `isolation_level` 0 (read
/// uncommitted: the old message formats have no transactions), `session_id` 0 and `session_epoch`
/// -1 (a full fetch that opens no session), per partition `current_leader_epoch` -1 (not checked),
/// `log_start_offset` -1 (a consumer's value) and `last_fetched_epoch` -1. `replica_id` is kept in
/// both places the crate has for it (the plain field up to v14, `replica_state` from v15) so any
/// version encodes it.
pub fn decode_request(version: i16, body: &[u8]) -> Result<FetchRequest, LegacyError> {
    check(version)?;
    whole(body, "Fetch request", |input| {
        let (input, replica_id) = be_i32(input)?;
        let (input, max_wait_ms) = be_i32(input)?;
        let (input, min_bytes) = be_i32(input)?;
        let (input, max_bytes) = if version >= 3 { be_i32(input)? } else { (input, i32::MAX) };
        let (input, topics) = array(topic)(input)?;
        let request = FetchRequest::default()
            .with_replica_id(replica_id.into())
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(min_bytes)
            .with_replica_state(ReplicaState::default().with_replica_id(replica_id.into()))
            .with_max_bytes(max_bytes)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics);
        Ok((input, request))
    })
}

/// The crate's request → an old Fetch body (for tests and fuzzing). Before v3 `max_bytes` has no
/// place and is dropped. The replica id is the plain field, or `replica_state`'s when the plain one
/// is unset (a request decoded at v15+).
pub fn encode_request(version: i16, request: &FetchRequest) -> Result<Vec<u8>, LegacyError> {
    check(version)?;
    let replica_id = if request.replica_id.0 == -1 { request.replica_state.replica_id } else { request.replica_id };
    let mut w = Writer::new();
    w.i32(replica_id.0).i32(request.max_wait_ms).i32(request.min_bytes);
    if version >= 3 {
        w.i32(request.max_bytes);
    }
    w.array(&request.topics, |w, topic| {
        w.string(&topic.topic)?;
        w.array(&topic.partitions, |w, partition| {
            w.i32(partition.partition).i64(partition.fetch_offset).i32(partition.partition_max_bytes);
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(w.finish())
}

/// An old Fetch response body → the crate's response (for tests): records copied as they are (a
/// message set), `throttle_time_ms` 0 before v1, every other field at the crate's default.
pub fn decode_response(version: i16, body: &[u8]) -> Result<FetchResponse, LegacyError> {
    check(version)?;
    whole(body, "Fetch response", |input| {
        let (input, throttle_time_ms) = if version >= 1 { be_i32(input)? } else { (input, 0) };
        let (input, responses) = array(topic_response)(input)?;
        Ok((input, FetchResponse::default().with_throttle_time_ms(throttle_time_ms).with_responses(responses)))
    })
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the old
/// layout the client expects, with what the conversion did.
///
/// Each partition's record batches become a message set of the version's magic; null records stay
/// null, empty ones empty. Records the old format cannot carry (zstd: the converter answers
/// [`LegacyError::Unrepresentable`]) are replaced by no records and the partition's error becomes
/// UNSUPPORTED_COMPRESSION_TYPE, so the consumer fails on that partition instead of reading
/// garbage; any other conversion error fails the whole response. A non-zero top-level error code
/// (v7+, fetch-session errors) has no place in the old layout and is put on every partition; then
/// every code is mapped to one the client knows ([`super::errors`]).
pub fn encode_response(version: i16, response: &FetchResponse) -> Result<(Vec<u8>, FetchDownConversion), LegacyError> {
    check(version)?;
    let magic = magic(version);
    let mut done = FetchDownConversion::default();
    let mut w = Writer::new();
    if version >= 1 {
        w.i32(response.throttle_time_ms);
    }
    w.array(&response.responses, |w, topic| {
        w.string(&topic.topic)?;
        w.array(&topic.partitions, |w, partition| {
            let mut error_code = if response.error_code != 0 { response.error_code } else { partition.error_code };
            let records = match partition.records.as_ref() {
                Some(records) if !records.is_empty() => match message_set::batches_to_message_set(records, magic) {
                    Ok((set, stats)) => {
                        add(&mut done.stats, stats);
                        Some(set)
                    }
                    Err(LegacyError::Unrepresentable(_)) => {
                        done.unsupported_compression = done.unsupported_compression.saturating_add(1);
                        error_code = UNSUPPORTED_COMPRESSION_TYPE;
                        Some(Bytes::new())
                    }
                    Err(error) => return Err(error),
                },
                other => other.cloned(),
            };
            w.i32(partition.partition_index).i16(downgrade_error(ApiKey::Fetch, version, error_code)).i64(partition.high_watermark);
            w.nullable_bytes(records.as_deref())?;
            Ok(())
        })?;
        Ok(())
    })?;
    Ok((w.finish(), done))
}

fn add(total: &mut DownConversion, more: DownConversion) {
    total.records = total.records.saturating_add(more.records);
    total.headers_dropped = total.headers_dropped.saturating_add(more.headers_dropped);
    total.control_skipped = total.control_skipped.saturating_add(more.control_skipped);
}

fn topic(input: &[u8]) -> Res<'_, FetchTopic> {
    let (input, name) = string(input)?;
    let (input, partitions) = array(partition)(input)?;
    Ok((input, FetchTopic::default().with_topic(name.into()).with_partitions(partitions)))
}

fn partition(input: &[u8]) -> Res<'_, FetchPartition> {
    let (input, index) = be_i32(input)?;
    let (input, fetch_offset) = be_i64(input)?;
    let (input, partition_max_bytes) = be_i32(input)?;
    let partition = FetchPartition::default()
        .with_partition(index)
        .with_current_leader_epoch(-1)
        .with_fetch_offset(fetch_offset)
        .with_last_fetched_epoch(-1)
        .with_log_start_offset(-1)
        .with_partition_max_bytes(partition_max_bytes);
    Ok((input, partition))
}

fn topic_response(input: &[u8]) -> Res<'_, FetchableTopicResponse> {
    let (input, name) = string(input)?;
    let (input, partitions) = array(partition_response)(input)?;
    Ok((input, FetchableTopicResponse::default().with_topic(name.into()).with_partitions(partitions)))
}

fn partition_response(input: &[u8]) -> Res<'_, PartitionData> {
    let (input, partition_index) = be_i32(input)?;
    let (input, error_code) = be_i16(input)?;
    let (input, high_watermark) = be_i64(input)?;
    let (input, records) = nullable_bytes(input)?;
    let partition = PartitionData::default()
        .with_partition_index(partition_index)
        .with_error_code(error_code)
        .with_high_watermark(high_watermark)
        .with_records(records);
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

    /// Crate versions the translated messages are checked at: the minimum and the last that names
    /// topics (also the first flexible one).
    const CRATE_VERSIONS: [i16; 2] = [4, 12];

    /// A well-formed record batch (magic 2, correct CRC) whose attributes say zstd; its payload is a
    /// zstd frame header only, which no converter gets to read: magic 0/1 cannot carry zstd at all.
    fn zstd_batch() -> Bytes {
        let after_crc = [
            int16(4),                           // attributes: compression 4 (zstd)
            int32(0),                           // last_offset_delta
            int64(0),                           // base_timestamp
            int64(0),                           // max_timestamp
            int64(-1),                          // producer_id
            int16(-1),                          // producer_epoch
            int32(-1),                          // base_sequence
            int32(1),                           // records count
            vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0], // compressed records: a zstd magic number
        ]
        .concat();
        let batch_length = i32::try_from(4 + 1 + 4 + after_crc.len()).unwrap();
        let crc = crc32c::crc32c(&after_crc).to_be_bytes().to_vec();
        // base_offset, batch_length, partition_leader_epoch, magic, crc, the rest
        Bytes::from([int64(0), int32(batch_length), int32(0), vec![2], crc, after_crc].concat())
    }

    #[test]
    fn hand_assembled_requests_decode_field_by_field() {
        let head = [int32(-1), int32(500), int32(1)].concat(); // replica_id, max_wait_ms, min_bytes
        let topics = [
            int32(1),                                          // topics count
            text("orders"),                                    // topic
            int32(2),                                          // partitions count
            [int32(0), int64(100), int32(1_048_576)].concat(), // partition, fetch_offset, partition_max_bytes
            [int32(5), int64(-2), int32(0)].concat(),          // partition, fetch_offset, partition_max_bytes
        ]
        .concat();
        let old = [head.clone(), topics.clone()].concat();
        let v3 = [head, int32(52_428_800), topics.clone()].concat(); // max_bytes
        for (version, body) in [(0, &old), (1, &old), (2, &old), (3, &v3)] {
            let request = decode_request(version, body).unwrap();
            assert_eq!((request.replica_id.0, request.replica_state.replica_id.0), (-1, -1));
            assert_eq!((request.max_wait_ms, request.min_bytes), (500, 1));
            assert_eq!(request.max_bytes, if version >= 3 { 52_428_800 } else { i32::MAX });
            assert_eq!((request.isolation_level, request.session_id, request.session_epoch), (0, 0, -1));
            assert!(request.forgotten_topics_data.is_empty());
            assert_eq!(request.topics.len(), 1);
            assert_eq!(request.topics[0].topic, name("orders"));
            let partitions = &request.topics[0].partitions;
            assert_eq!(partitions.len(), 2);
            assert_eq!((partitions[0].partition, partitions[0].fetch_offset, partitions[0].partition_max_bytes), (0, 100, 1_048_576));
            assert_eq!((partitions[1].partition, partitions[1].fetch_offset, partitions[1].partition_max_bytes), (5, -2, 0));
            for partition in partitions {
                assert_eq!((partition.current_leader_epoch, partition.last_fetched_epoch, partition.log_start_offset), (-1, -1, -1));
            }
            assert_eq!(&encode_request(version, &request).unwrap(), body, "v{version}");
        }
        // A replica's own id is kept wherever the crate encodes it.
        let replica = [int32(3), int32(500), int32(1), topics].concat();
        let request = decode_request(0, &replica).unwrap();
        assert_eq!((request.replica_id.0, request.replica_state.replica_id.0), (3, 3));
    }

    #[test]
    fn hand_assembled_responses_decode_field_by_field() {
        let topics = [
            int32(1),                                             // responses count
            text("orders"),                                       // topic
            int32(2),                                             // partitions count
            [int32(0), int16(0), int64(900), int32(-1)].concat(), // partition_index, error_code, high_watermark, null records
            [int32(1), int16(1), int64(-1), int32(0)].concat(),   // partition_index, error_code, high_watermark, empty records
        ]
        .concat();
        let v0 = topics.clone();
        let v1 = [int32(100), topics].concat(); // throttle_time_ms first
        for (version, body) in [(0, &v0), (1, &v1), (2, &v1), (3, &v1)] {
            let response = decode_response(version, body).unwrap();
            assert_eq!(response.throttle_time_ms, if version >= 1 { 100 } else { 0 });
            assert_eq!(response.error_code, 0);
            assert_eq!(response.responses.len(), 1);
            assert_eq!(response.responses[0].topic, name("orders"));
            let partitions = &response.responses[0].partitions;
            assert_eq!(partitions.len(), 2);
            assert_eq!((partitions[0].partition_index, partitions[0].error_code, partitions[0].high_watermark), (0, 0, 900));
            assert_eq!(partitions[0].records, None);
            assert_eq!((partitions[1].partition_index, partitions[1].error_code, partitions[1].high_watermark), (1, 1, -1));
            assert_eq!(partitions[1].records, Some(Bytes::new()));
            let (encoded, done) = encode_response(version, &response).unwrap();
            assert_eq!(&encoded, body, "v{version}");
            assert_eq!(done, FetchDownConversion::default());
        }
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 4, 12] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &FetchRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &FetchResponse::default()).unwrap_err(), refused);
        }
    }

    #[test]
    fn zstd_records_become_unsupported_compression_and_no_records() {
        let partitions = vec![
            PartitionData::default().with_partition_index(0).with_high_watermark(10).with_records(Some(zstd_batch())),
            PartitionData::default().with_partition_index(1).with_high_watermark(20).with_records(None),
            PartitionData::default().with_partition_index(2).with_high_watermark(30).with_records(Some(Bytes::new())),
        ];
        let response = FetchResponse::default()
            .with_responses(vec![FetchableTopicResponse::default().with_topic(name("t")).with_partitions(partitions)]);
        for version in OLD_VERSIONS {
            let (encoded, done) = encode_response(version, &through_crate(&response, 4)).unwrap();
            assert_eq!(done.unsupported_compression, 1);
            assert_eq!(done.stats, DownConversion::default());
            let old = decode_response(version, &encoded).unwrap();
            let partitions = &old.responses[0].partitions;
            let seen: Vec<_> = partitions.iter().map(|p| (p.partition_index, p.error_code, p.high_watermark, p.records.clone())).collect();
            assert_eq!(seen, vec![(0, 76, 10, Some(Bytes::new())), (1, 0, 20, None), (2, 0, 30, Some(Bytes::new()))]);
        }
    }

    /// An uncompressed record batch holding one record (key null, value "hi", no headers).
    fn plain_batch() -> Bytes {
        let record = vec![0x10, 0, 0, 0, 0x01, 0x04, b'h', b'i', 0]; // length 8, attributes, deltas, key -1, value 2, "hi", 0 headers
        let after_crc = [
            int16(0),     // attributes: no compression
            int32(0),     // last_offset_delta
            int64(1_000), // base_timestamp
            int64(1_000), // max_timestamp
            int64(-1),    // producer_id
            int16(-1),    // producer_epoch
            int32(-1),    // base_sequence
            int32(1),     // records count
            record,
        ]
        .concat();
        let batch_length = i32::try_from(4 + 1 + 4 + after_crc.len()).unwrap();
        let crc = crc32c::crc32c(&after_crc).to_be_bytes().to_vec();
        Bytes::from([int64(5), int32(batch_length), int32(0), vec![2], crc, after_crc].concat())
    }

    #[test]
    fn record_batches_become_message_sets_of_the_version_s_magic() {
        let partition = PartitionData::default().with_partition_index(0).with_high_watermark(6).with_records(Some(plain_batch()));
        let response = FetchResponse::default()
            .with_responses(vec![FetchableTopicResponse::default().with_topic(name("t")).with_partitions(vec![partition])]);
        for version in OLD_VERSIONS {
            let (encoded, done) = encode_response(version, &through_crate(&response, 4)).unwrap();
            assert_eq!((done.stats.records, done.unsupported_compression), (1, 0));
            let old = decode_response(version, &encoded).unwrap();
            let set = old.responses[0].partitions[0].records.clone().unwrap();
            assert_eq!(Some(&set), message_set::batches_to_message_set(&plain_batch(), magic(version)).ok().map(|(set, _)| set).as_ref());
            assert_eq!(set.get(..8), Some(&5i64.to_be_bytes()[..]), "offset");
            assert_eq!(set.get(16), Some(&u8::from(version >= 2)), "magic");
            assert_eq!(old.responses[0].partitions[0].error_code, 0);
        }
        // A corrupt batch fails the response: the converter's error is passed on.
        let mut corrupt = plain_batch().to_vec();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        let partition = PartitionData::default().with_records(Some(Bytes::from(corrupt.clone())));
        let response = FetchResponse::default()
            .with_responses(vec![FetchableTopicResponse::default().with_topic(name("t")).with_partitions(vec![partition])]);
        assert_eq!(encode_response(1, &response).unwrap_err(), message_set::batches_to_message_set(&corrupt, 0).unwrap_err());
    }

    #[test]
    fn a_top_level_error_lands_on_every_partition() {
        let partitions = vec![
            PartitionData::default().with_partition_index(0).with_records(None),
            PartitionData::default().with_partition_index(1).with_error_code(1).with_records(None),
        ];
        let topic = FetchableTopicResponse::default().with_topic(name("t")).with_partitions(partitions);
        for (top, expected) in [(70, 70), (56, 6)] {
            let response = FetchResponse::default().with_error_code(top).with_session_id(9).with_responses(vec![topic.clone()]);
            let old = decode_response(3, &encode_response(3, &through_crate(&response, 7)).unwrap().0).unwrap();
            assert_eq!(old.responses[0].partitions.iter().map(|p| p.error_code).collect::<Vec<_>>(), vec![expected, expected]);
            assert_eq!((old.error_code, old.session_id), (0, 0));
        }
    }

    #[test]
    fn new_partition_fields_are_dropped_and_new_error_codes_mapped() {
        let partition = PartitionData::default()
            .with_partition_index(4)
            .with_error_code(74)
            .with_high_watermark(77)
            .with_last_stable_offset(70)
            .with_log_start_offset(3)
            .with_preferred_read_replica(2.into())
            .with_records(None);
        let response = FetchResponse::default()
            .with_responses(vec![FetchableTopicResponse::default().with_topic(name("t")).with_partitions(vec![partition])]);
        let old = decode_response(2, &encode_response(2, &through_crate(&response, 11)).unwrap().0).unwrap();
        let expected = PartitionData::default().with_partition_index(4).with_error_code(6).with_high_watermark(77).with_records(None);
        assert_eq!(old.responses[0].partitions, vec![expected]);
    }

    fn topic_name() -> impl Strategy<Value = TopicName> {
        "\\PC{0,12}".prop_map(|text| TopicName(StrBytes::from_string(text)))
    }

    /// Records that need no converter: null or empty.
    fn plain_records() -> impl Strategy<Value = Option<Bytes>> {
        prop_oneof![Just(None), Just(Some(Bytes::new()))]
    }

    /// A request with what `version` can express, new fields as [`decode_request`] sets them.
    fn old_request(version: i16) -> impl Strategy<Value = FetchRequest> {
        let partition = (any::<i32>(), any::<i64>(), any::<i32>()).prop_map(|(index, offset, max_bytes)| {
            FetchPartition::default().with_partition(index).with_fetch_offset(offset).with_partition_max_bytes(max_bytes)
        });
        let topic = (topic_name(), vec(partition, 0..4))
            .prop_map(|(name, partitions)| FetchTopic::default().with_topic(name).with_partitions(partitions));
        (any::<i32>(), any::<i32>(), any::<i32>(), any::<i32>(), vec(topic, 0..4)).prop_map(move |(replica, wait, min, max, topics)| {
            FetchRequest::default()
                .with_replica_id(replica.into())
                .with_replica_state(ReplicaState::default().with_replica_id(replica.into()))
                .with_max_wait_ms(wait)
                .with_min_bytes(min)
                .with_max_bytes(if version >= 3 { max } else { i32::MAX })
                .with_topics(topics)
        })
    }

    /// A broker's response with the fields `version` has, and new ones set too (they must be dropped).
    fn response(version: i16) -> impl Strategy<Value = FetchResponse> {
        let partition = (any::<i32>(), any::<i16>(), any::<i64>(), any::<i64>(), any::<i64>(), plain_records()).prop_map(
            |(index, error, high_watermark, last_stable, log_start, records)| {
                PartitionData::default()
                    .with_partition_index(index)
                    .with_error_code(error)
                    .with_high_watermark(high_watermark)
                    .with_last_stable_offset(last_stable)
                    .with_log_start_offset(log_start)
                    .with_records(records)
            },
        );
        let topic = (topic_name(), vec(partition, 0..4))
            .prop_map(|(name, partitions)| FetchableTopicResponse::default().with_topic(name).with_partitions(partitions));
        (any::<i32>(), vec(topic, 0..4)).prop_map(move |(throttle, topics)| {
            FetchResponse::default().with_throttle_time_ms(if version >= 1 { throttle } else { 0 }).with_responses(topics)
        })
    }

    /// What an old client sees of `response`: its old fields, error codes mapped.
    fn old_fields(version: i16, response: &FetchResponse) -> FetchResponse {
        let topics = response.responses.iter().map(|topic| {
            let partitions = topic.partitions.iter().map(|p| {
                PartitionData::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(downgrade_error(ApiKey::Fetch, version, p.error_code))
                    .with_high_watermark(p.high_watermark)
                    .with_records(p.records.clone())
            });
            FetchableTopicResponse::default().with_topic(topic.topic.clone()).with_partitions(partitions.collect())
        });
        FetchResponse::default().with_throttle_time_ms(response.throttle_time_ms).with_responses(topics.collect())
    }

    /// Bytes that parse far: mostly zeros (empty arrays and strings), some ones, some random.
    fn biased_bytes() -> impl Strategy<Value = Vec<u8>> {
        vec(prop_oneof![4 => Just(0u8), 1 => Just(1u8), 3 => any::<u8>()], 0..128)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn old_requests_survive_upgrade_and_downgrade((version, request) in OLD_VERSIONS.prop_flat_map(|v| (Just(v), old_request(v)))) {
            let bytes = encode_request(version, &request).unwrap();
            let decoded = decode_request(version, &bytes).unwrap();
            prop_assert_eq!(&decoded, &request);
            for crate_version in CRATE_VERSIONS {
                let downgraded = encode_request(version, &through_crate(&decoded, crate_version)).unwrap();
                prop_assert_eq!(&downgraded, &bytes, "crate v{}", crate_version);
            }
        }

        #[test]
        fn broker_responses_reach_old_clients_with_their_fields(
            (version, response) in OLD_VERSIONS.prop_flat_map(|v| (Just(v), response(v)))
        ) {
            for crate_version in CRATE_VERSIONS {
                let (encoded, done) = encode_response(version, &through_crate(&response, crate_version)).unwrap();
                prop_assert_eq!(done, FetchDownConversion::default());
                prop_assert_eq!(&decode_response(version, &encoded).unwrap(), &old_fields(version, &response), "crate v{}", crate_version);
            }
        }

        /// Whatever the converter makes of a partition's records (a message set, zstd refused, an
        /// error), the response carries it as specified.
        #[test]
        fn records_go_through_the_converter(version in OLD_VERSIONS, records in vec(any::<u8>(), 1..64)) {
            let records = Bytes::from(records);
            let partition = PartitionData::default().with_partition_index(1).with_records(Some(records.clone()));
            let topic = FetchableTopicResponse::default().with_topic(name("t")).with_partitions(vec![partition]);
            let result = encode_response(version, &FetchResponse::default().with_responses(vec![topic]));
            match message_set::batches_to_message_set(&records, magic(version)) {
                Ok((set, stats)) => {
                    let (encoded, done) = result.unwrap();
                    prop_assert_eq!(done, FetchDownConversion { stats, unsupported_compression: 0 });
                    prop_assert_eq!(decode_response(version, &encoded).unwrap().responses[0].partitions[0].records.clone(), Some(set));
                }
                Err(LegacyError::Unrepresentable(_)) => {
                    let (encoded, done) = result.unwrap();
                    prop_assert_eq!(done.unsupported_compression, 1);
                    let old = decode_response(version, &encoded).unwrap();
                    let partition = &old.responses[0].partitions[0];
                    prop_assert_eq!((partition.error_code, partition.records.clone()), (76, Some(Bytes::new())));
                }
                Err(error) => prop_assert_eq!(result.unwrap_err(), error),
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(version in -1i16..5, body in biased_bytes()) {
            let _ = decode_request(version, &body);
            let _ = decode_response(version, &body);
        }

        #[test]
        fn every_truncated_body_is_malformed((version, request) in OLD_VERSIONS.prop_flat_map(|v| (Just(v), old_request(v)))) {
            let bytes = encode_request(version, &request).unwrap();
            for end in 0..bytes.len() {
                prop_assert!(matches!(decode_request(version, &bytes[..end]), Err(LegacyError::Malformed(_))));
            }
        }
    }
}
