//! DescribeLogDirs v0 (Kafka 1.0), removed in Kafka 4.0, translated to and from the crate's
//! `DescribeLogDirsRequest` / `DescribeLogDirsResponse` at v1, its minimum.
//!
//! Kafka 3.9's message JSON gives v0 exactly v1's layout (request: topics [topic, partitions],
//! null for every topic; response: throttle_time_ms, results [error_code, log_dir, topics [name,
//! partitions [partition_index, partition_size, offset_lag, is_future_key]]]): v1 changed only
//! when the broker throttles. Both directions go through the crate at v1.
//!
//! Downgrading drops what v3–4 added: the top-level error code (a broker refusing the cluster
//! permission answers v0–2 with no results and this code, so the v0 client sees no results, as it
//! did from its own brokers) and each directory's total and usable bytes.

use super::{check_version, decode_same, encode_same};
use crate::legacy::errors::downgrade_error;
use crate::legacy::LegacyError;
use kafka_protocol::messages::{ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse};
use std::ops::RangeInclusive;

/// The DescribeLogDirs versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=0;

/// The crate's (and Kafka 4.0's) lowest DescribeLogDirs version, whose layout v0 shares.
const CRATE_MIN: i16 = 1;

/// A v0 DescribeLogDirs body → the crate's request (same layout as v1).
pub fn decode_request(version: i16, body: &[u8]) -> Result<DescribeLogDirsRequest, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    decode_same(body, CRATE_MIN, "DescribeLogDirs request")
}

/// The crate's request → a v0 DescribeLogDirs body (for tests and fuzzing).
pub fn encode_request(version: i16, request: &DescribeLogDirsRequest) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    encode_same(request, CRATE_MIN)
}

/// A v0 DescribeLogDirs response body → the crate's response (for tests). Same layout as v1.
pub fn decode_response(version: i16, body: &[u8]) -> Result<DescribeLogDirsResponse, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    decode_same(body, CRATE_MIN, "DescribeLogDirs response")
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the v0
/// layout, each directory's error code mapped to one the client knows; the top-level error code
/// and the volume sizes are dropped (module documentation).
pub fn encode_response(version: i16, response: &DescribeLogDirsResponse) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let mut old = response.clone().with_error_code(0);
    for result in &mut old.results {
        result.error_code = downgrade_error(ApiKey::DescribeLogDirs, version, result.error_code);
        result.total_bytes = -1;
        result.usable_bytes = -1;
    }
    encode_same(&old, CRATE_MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::testing::{
        arbitrary_bytes, biased_bytes, cat, name, old_error, round_trip, s, str_bytes, text, through_crate, topic_name
    };
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use kafka_protocol::messages::describe_log_dirs_response::{DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic};
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Crate versions checked: the minimum and the first flexible one.
    const CRATE_VERSIONS: [i16; 2] = [1, 2];

    #[test]
    fn hand_assembled_requests_decode_field_by_field() {
        let body = cat(&[&1i32.to_be_bytes(), &s("orders"), &2i32.to_be_bytes(), &0i32.to_be_bytes(), &1i32.to_be_bytes()]);
        let request = decode_request(0, &body).unwrap();
        let topics = request.topics.as_ref().unwrap();
        assert_eq!((topics[0].topic.clone(), topics[0].partitions.clone()), (name("orders"), vec![0, 1]));
        assert_eq!(encode_request(0, &request).unwrap(), body);
        let every = (-1i32).to_be_bytes();
        assert_eq!(decode_request(0, &every).unwrap().topics, None);
        assert_eq!(encode_request(0, &decode_request(0, &every).unwrap()).unwrap(), every);
    }

    #[test]
    fn hand_assembled_response_decodes_field_by_field() {
        let body = cat(&[
            &0i32.to_be_bytes(), &1i32.to_be_bytes(),                   // throttle_time_ms, results count
            &0i16.to_be_bytes(), &s("/var/kafka"), &1i32.to_be_bytes(), // error_code, log_dir, topics count
            &s("orders"), &1i32.to_be_bytes(),                          // name, partitions count
            &3i32.to_be_bytes(), &1024i64.to_be_bytes(), &0i64.to_be_bytes(), &[1], // index, size, lag, is_future_key
        ]);
        let response = decode_response(0, &body).unwrap();
        assert_eq!((response.throttle_time_ms, response.error_code), (0, 0));
        let result = &response.results[0];
        assert_eq!((result.error_code, result.log_dir.clone()), (0, text("/var/kafka")));
        assert_eq!(result.topics[0].name, name("orders"));
        let partition = &result.topics[0].partitions[0];
        assert_eq!((partition.partition_index, partition.partition_size, partition.offset_lag, partition.is_future_key), (3, 1024, 0, true));
        assert_eq!(encode_response(0, &response).unwrap(), body);
    }

    #[test]
    fn new_fields_are_dropped_and_new_error_codes_mapped() {
        let result = DescribeLogDirsResult::default().with_log_dir(text("/d")).with_error_code(56).with_total_bytes(10).with_usable_bytes(5);
        let response = DescribeLogDirsResponse::default().with_error_code(31).with_results(vec![result]);
        let old = decode_response(0, &encode_response(0, &through_crate(&response, 4)).unwrap()).unwrap();
        assert_eq!(
            old,
            DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default().with_log_dir(text("/d")).with_error_code(6)])
        );
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 1, 4] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &DescribeLogDirsRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &DescribeLogDirsResponse::default()).unwrap_err(), refused);
        }
    }

    fn old_request() -> impl Strategy<Value = DescribeLogDirsRequest> {
        let topic = (topic_name(), vec(any::<i32>(), 0..4))
            .prop_map(|(name, partitions)| DescribableLogDirTopic::default().with_topic(name).with_partitions(partitions));
        prop::option::of(vec(topic, 0..4)).prop_map(|topics| DescribeLogDirsRequest::default().with_topics(topics))
    }

    fn old_response() -> impl Strategy<Value = DescribeLogDirsResponse> {
        let partition = (any::<i32>(), any::<i64>(), any::<i64>(), any::<bool>()).prop_map(|(index, size, lag, future)| {
            DescribeLogDirsPartition::default()
                .with_partition_index(index)
                .with_partition_size(size)
                .with_offset_lag(lag)
                .with_is_future_key(future)
        });
        let topic = (topic_name(), vec(partition, 0..3))
            .prop_map(|(name, partitions)| DescribeLogDirsTopic::default().with_name(name).with_partitions(partitions));
        let result = (old_error(ApiKey::DescribeLogDirs, 0), str_bytes(), vec(topic, 0..3))
            .prop_map(|(error, dir, topics)| DescribeLogDirsResult::default().with_error_code(error).with_log_dir(dir).with_topics(topics));
        (any::<i32>(), vec(result, 0..3))
            .prop_map(|(throttle, results)| DescribeLogDirsResponse::default().with_throttle_time_ms(throttle).with_results(results))
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
