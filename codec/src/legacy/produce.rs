//! Produce v0–2 (Kafka 0.8–0.10.0), removed in Kafka 4.0, translated to and from the crate's
//! `ProduceRequest` / `ProduceResponse`.
//!
//! The request's layout is that of v3 without `transactional_id`, so it upgrades losslessly (a
//! transactional id of null is what v3 means by "not transactional"); only the records change: the
//! legacy message set (magic 0 for v0–1, magic 1 for v2) becomes one record batch (magic 2), which
//! every broker version the crate generates accepts. The response drops what v3+ added
//! (`log_start_offset`, per-record errors, the error message, the current leader, node endpoints)
//! and maps error codes old clients do not know ([`super::errors`]).
//!
//! The broker must answer at a version that names topics (v3–12): v13 names them by id only, and
//! this layout has no room for ids.

use super::errors::downgrade_error;
use super::message_set;
use super::wire::{array, nullable_bytes, string, whole, Res, Writer};
use super::LegacyError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use nom::number::complete::{be_i16, be_i32, be_i64};
use std::ops::RangeInclusive;

/// The Produce versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=2;

fn check(version: i16) -> Result<(), LegacyError> {
    if OLD_VERSIONS.contains(&version) {
        Ok(())
    } else {
        Err(LegacyError::Unrepresentable("version"))
    }
}

/// An old Produce body → the crate's request, each partition's message set converted to one record
/// batch so the broker can take it at any version the crate generates. Null records stay null, and
/// empty records stay empty (there is nothing to convert). New fields: `transactional_id` null.
pub fn decode_request(version: i16, body: &[u8]) -> Result<ProduceRequest, LegacyError> {
    check(version)?;
    let mut request = whole(body, "Produce request", request)?;
    for partition in request.topic_data.iter_mut().flat_map(|topic| topic.partition_data.iter_mut()) {
        partition.records = match partition.records.take() {
            Some(set) if !set.is_empty() => Some(message_set::message_set_to_batch(&set)?),
            other => other,
        };
    }
    Ok(request)
}

/// The crate's request → an old Produce body, records copied as they are (the caller passes message
/// sets). For tests and fuzzing, which check [`decode_request`] against it; a transactional id has
/// no place in the old layout and is refused.
pub fn encode_request(version: i16, request: &ProduceRequest) -> Result<Vec<u8>, LegacyError> {
    check(version)?;
    if request.transactional_id.is_some() {
        return Err(LegacyError::Unrepresentable("transactional_id"));
    }
    let mut w = Writer::new();
    w.i16(request.acks).i32(request.timeout_ms);
    w.array(&request.topic_data, |w, topic| {
        w.string(&topic.name)?;
        w.array(&topic.partition_data, |w, partition| {
            w.i32(partition.index).nullable_bytes(partition.records.as_deref())?;
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(w.finish())
}

/// An old Produce response body → the crate's response (for tests): `log_append_time_ms` is -1
/// before v2 and `throttle_time_ms` 0 before v1, the values a broker of that time meant.
pub fn decode_response(version: i16, body: &[u8]) -> Result<ProduceResponse, LegacyError> {
    check(version)?;
    whole(body, "Produce response", |input| {
        let (input, responses) = array(topic_response(version))(input)?;
        let (input, throttle_time_ms) = if version >= 1 { be_i32(input)? } else { (input, 0) };
        Ok((input, ProduceResponse::default().with_responses(responses).with_throttle_time_ms(throttle_time_ms)))
    })
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the old
/// layout the client expects, error codes mapped to ones the client knows.
pub fn encode_response(version: i16, response: &ProduceResponse) -> Result<Vec<u8>, LegacyError> {
    check(version)?;
    let mut w = Writer::new();
    w.array(&response.responses, |w, topic| {
        w.string(&topic.name)?;
        w.array(&topic.partition_responses, |w, partition| {
            w.i32(partition.index).i16(downgrade_error(ApiKey::Produce, version, partition.error_code)).i64(partition.base_offset);
            if version >= 2 {
                w.i64(partition.log_append_time_ms);
            }
            Ok(())
        })?;
        Ok(())
    })?;
    if version >= 1 {
        w.i32(response.throttle_time_ms);
    }
    Ok(w.finish())
}

fn request(input: &[u8]) -> Res<'_, ProduceRequest> {
    let (input, acks) = be_i16(input)?;
    let (input, timeout_ms) = be_i32(input)?;
    let (input, topic_data) = array(topic_data)(input)?;
    Ok((input, ProduceRequest::default().with_acks(acks).with_timeout_ms(timeout_ms).with_topic_data(topic_data)))
}

fn topic_data(input: &[u8]) -> Res<'_, TopicProduceData> {
    let (input, name) = string(input)?;
    let (input, partition_data) = array(partition_data)(input)?;
    Ok((input, TopicProduceData::default().with_name(name.into()).with_partition_data(partition_data)))
}

fn partition_data(input: &[u8]) -> Res<'_, PartitionProduceData> {
    let (input, index) = be_i32(input)?;
    let (input, records) = nullable_bytes(input)?;
    Ok((input, PartitionProduceData::default().with_index(index).with_records(records)))
}

fn topic_response<'a>(version: i16) -> impl FnMut(&'a [u8]) -> Res<'a, TopicProduceResponse> {
    move |input: &'a [u8]| {
        let (input, name) = string(input)?;
        let (input, partition_responses) = array(partition_response(version))(input)?;
        Ok((input, TopicProduceResponse::default().with_name(name.into()).with_partition_responses(partition_responses)))
    }
}

fn partition_response<'a>(version: i16) -> impl FnMut(&'a [u8]) -> Res<'a, PartitionProduceResponse> {
    move |input: &'a [u8]| {
        let (input, index) = be_i32(input)?;
        let (input, error_code) = be_i16(input)?;
        let (input, base_offset) = be_i64(input)?;
        let (input, log_append_time_ms) = if version >= 2 { be_i64(input)? } else { (input, -1) };
        let partition = PartitionProduceResponse::default()
            .with_index(index)
            .with_error_code(error_code)
            .with_base_offset(base_offset)
            .with_log_append_time_ms(log_append_time_ms);
        Ok((input, partition))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::testing::{int16, int32, int64, name, s as text, through_crate};
    use bytes::Bytes;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Crate versions the translated messages are checked at: the minimum, the first flexible one
    /// and the last that names topics.
    const CRATE_VERSIONS: [i16; 3] = [3, 9, 12];

    #[test]
    fn hand_assembled_request_decodes_field_by_field_at_every_version() {
        let body = [
            int16(-1),                      // acks
            int32(30_000),                  // timeout_ms
            int32(2),                       // topic_data count
            text("orders"),                 // name
            int32(2),                       // partition_data count
            [int32(0), int32(-1)].concat(), // index 0, null records
            [int32(7), int32(0)].concat(),  // index 7, empty records
            text("x"),                      // name
            int32(0),                       // partition_data count
        ]
        .concat();
        for version in OLD_VERSIONS {
            let request = decode_request(version, &body).unwrap();
            assert_eq!(request.acks, -1);
            assert_eq!(request.timeout_ms, 30_000);
            assert_eq!(request.transactional_id, None);
            assert_eq!(request.topic_data.len(), 2);
            let orders = &request.topic_data[0];
            assert_eq!(orders.name, name("orders"));
            assert_eq!(orders.partition_data.len(), 2);
            assert_eq!(orders.partition_data[0].index, 0);
            assert_eq!(orders.partition_data[0].records, None);
            assert_eq!(orders.partition_data[1].index, 7);
            assert_eq!(orders.partition_data[1].records, Some(Bytes::new()));
            assert_eq!(request.topic_data[1].name, name("x"));
            assert!(request.topic_data[1].partition_data.is_empty());
            assert_eq!(encode_request(version, &request).unwrap(), body, "v{version}");
        }
    }

    #[test]
    fn a_message_set_becomes_one_record_batch() {
        let message = [
            vec![0, 0],     // magic 0, attributes: no compression
            int32(-1),      // null key
            int32(2),       // value length
            b"hi".to_vec(), // value
        ]
        .concat();
        let crc = crc32fast::hash(&message).to_be_bytes().to_vec();
        let set = [int64(0), int32(i32::try_from(4 + message.len()).unwrap()), crc, message].concat(); // offset, size, crc, message
        let body = [
            int16(1),                                 // acks
            int32(1000),                              // timeout_ms
            int32(1),                                 // topic_data count
            text("t"),                                // name
            int32(1),                                 // partition_data count
            int32(3),                                 // index
            int32(i32::try_from(set.len()).unwrap()), // records length
            set.clone(),                              // records
        ]
        .concat();
        for version in OLD_VERSIONS {
            let request = decode_request(version, &body).unwrap();
            let batch = request.topic_data[0].partition_data[0].records.clone().unwrap();
            assert_eq!(Some(&batch), message_set::message_set_to_batch(&set).as_ref().ok());
            assert_eq!(batch.get(16), Some(&2), "magic");
            assert_eq!(batch.get(57..61), Some(&1i32.to_be_bytes()[..]), "records count");
        }
        // A message set with a wrong CRC fails the request as the converter says.
        let mut corrupt = body.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        let corrupt_set = &corrupt[body.len() - set.len()..];
        assert_eq!(decode_request(0, &corrupt).unwrap_err(), message_set::message_set_to_batch(corrupt_set).unwrap_err());
    }

    #[test]
    fn hand_assembled_responses_decode_field_by_field() {
        let head = [
            int32(1),                                 // responses count
            text("orders"),                           // name
            int32(2),                                 // partition_responses count
            [int32(0), int16(0), int64(42)].concat(), // index, error_code, base_offset
        ]
        .concat();
        let failed = [int32(1), int16(6), int64(-1)].concat(); // index, error_code, base_offset
        let v0 = [head.clone(), failed.clone()].concat();
        let v1 = [head.clone(), failed.clone(), int32(250)].concat(); // throttle_time_ms
        let v2 = [head, int64(1_700_000_000_000), failed, int64(-1), int32(250)].concat(); // with log_append_time_ms
        for (version, body) in [(0, v0), (1, v1), (2, v2)] {
            let response = decode_response(version, &body).unwrap();
            assert_eq!(response.throttle_time_ms, if version >= 1 { 250 } else { 0 });
            assert_eq!(response.responses.len(), 1);
            assert_eq!(response.responses[0].name, name("orders"));
            let partitions = &response.responses[0].partition_responses;
            assert_eq!(partitions.len(), 2);
            assert_eq!((partitions[0].index, partitions[0].error_code, partitions[0].base_offset), (0, 0, 42));
            assert_eq!((partitions[1].index, partitions[1].error_code, partitions[1].base_offset), (1, 6, -1));
            assert_eq!(partitions[0].log_append_time_ms, if version >= 2 { 1_700_000_000_000 } else { -1 });
            assert_eq!(partitions[1].log_append_time_ms, -1);
            assert_eq!(encode_response(version, &response).unwrap(), body, "v{version}");
        }
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 3, 13] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &ProduceRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &ProduceResponse::default()).unwrap_err(), refused);
        }
    }

    #[test]
    fn a_transactional_id_has_no_place_in_the_old_layout() {
        let request = ProduceRequest::default().with_transactional_id(Some(StrBytes::from_static_str("tx").into()));
        assert_eq!(encode_request(2, &request), Err(LegacyError::Unrepresentable("transactional_id")));
    }

    #[test]
    fn new_fields_are_dropped_and_new_error_codes_mapped() {
        let partition = PartitionProduceResponse::default()
            .with_index(3)
            .with_error_code(56)
            .with_base_offset(-1)
            .with_log_start_offset(12)
            .with_error_message(Some(StrBytes::from_static_str("disk failed")));
        let response = ProduceResponse::default()
            .with_throttle_time_ms(5)
            .with_responses(vec![TopicProduceResponse::default().with_name(name("t")).with_partition_responses(vec![partition])]);
        let old = decode_response(2, &encode_response(2, &through_crate(&response, 8)).unwrap()).unwrap();
        let partition = &old.responses[0].partition_responses[0];
        assert_eq!((partition.index, partition.error_code, partition.log_start_offset, partition.error_message.clone()), (3, 6, -1, None));
        assert_eq!(old.throttle_time_ms, 5);
    }

    fn topic_name() -> impl Strategy<Value = TopicName> {
        "\\PC{0,12}".prop_map(|text| TopicName(StrBytes::from_string(text)))
    }

    /// Records an old request can carry that need no converter: null or empty.
    fn plain_records() -> impl Strategy<Value = Option<Bytes>> {
        prop_oneof![Just(None), Just(Some(Bytes::new()))]
    }

    fn old_request() -> impl Strategy<Value = ProduceRequest> {
        let partition = (any::<i32>(), plain_records())
            .prop_map(|(index, records)| PartitionProduceData::default().with_index(index).with_records(records));
        let topic = (topic_name(), vec(partition, 0..4))
            .prop_map(|(name, partitions)| TopicProduceData::default().with_name(name).with_partition_data(partitions));
        (any::<i16>(), any::<i32>(), vec(topic, 0..4)).prop_map(|(acks, timeout_ms, topics)| {
            ProduceRequest::default().with_acks(acks).with_timeout_ms(timeout_ms).with_topic_data(topics)
        })
    }

    /// A broker's response with the fields `version` has, and new ones set too (they must be dropped).
    fn response(version: i16) -> impl Strategy<Value = ProduceResponse> {
        let partition =
            (any::<i32>(), any::<i16>(), any::<i64>(), any::<i64>(), any::<i64>()).prop_map(move |(index, error, base, append, start)| {
                PartitionProduceResponse::default()
                    .with_index(index)
                    .with_error_code(error)
                    .with_base_offset(base)
                    .with_log_append_time_ms(if version >= 2 { append } else { -1 })
                    .with_log_start_offset(start)
            });
        let topic = (topic_name(), vec(partition, 0..4))
            .prop_map(|(name, partitions)| TopicProduceResponse::default().with_name(name).with_partition_responses(partitions));
        (vec(topic, 0..4), any::<i32>()).prop_map(move |(topics, throttle)| {
            ProduceResponse::default().with_responses(topics).with_throttle_time_ms(if version >= 1 { throttle } else { 0 })
        })
    }

    /// What an old client sees of `response`: its old fields, error codes mapped.
    fn old_fields(version: i16, response: &ProduceResponse) -> ProduceResponse {
        let mut old = ProduceResponse::default().with_throttle_time_ms(response.throttle_time_ms);
        for topic in &response.responses {
            let partitions = topic.partition_responses.iter().map(|p| {
                PartitionProduceResponse::default()
                    .with_index(p.index)
                    .with_error_code(downgrade_error(ApiKey::Produce, version, p.error_code))
                    .with_base_offset(p.base_offset)
                    .with_log_append_time_ms(p.log_append_time_ms)
            });
            old.responses
                .push(TopicProduceResponse::default().with_name(topic.name.clone()).with_partition_responses(partitions.collect()));
        }
        old
    }

    /// Bytes that parse far: mostly zeros (empty arrays and strings), some ones, some random.
    fn biased_bytes() -> impl Strategy<Value = Vec<u8>> {
        vec(prop_oneof![4 => Just(0u8), 1 => Just(1u8), 3 => any::<u8>()], 0..128)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn old_requests_survive_upgrade_and_downgrade(version in OLD_VERSIONS, request in old_request()) {
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
            (version, response) in OLD_VERSIONS.prop_flat_map(|version| (Just(version), response(version)))
        ) {
            for crate_version in CRATE_VERSIONS {
                let broker = through_crate(&response, crate_version);
                let old = decode_response(version, &encode_response(version, &broker).unwrap()).unwrap();
                prop_assert_eq!(&old, &old_fields(version, &response), "crate v{}", crate_version);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(version in -1i16..4, body in biased_bytes()) {
            let _ = decode_request(version, &body);
            let _ = decode_response(version, &body);
        }

        #[test]
        fn every_truncated_body_is_malformed(version in OLD_VERSIONS, request in old_request()) {
            let bytes = encode_request(version, &request).unwrap();
            for end in 0..bytes.len() {
                prop_assert!(matches!(decode_request(version, &bytes[..end]), Err(LegacyError::Malformed(_))));
            }
        }
    }
}
