//! AlterReplicaLogDirs v0 (Kafka 1.0), removed in Kafka 4.0, translated to and from the crate's
//! `AlterReplicaLogDirsRequest` / `AlterReplicaLogDirsResponse` at v1, its minimum.
//!
//! Kafka 3.9's message JSON gives v0 exactly v1's layout (request: dirs [path, topics [name,
//! partitions]]; response: throttle_time_ms, results [topic_name, partitions [partition_index,
//! error_code]]): v1 changed only when the broker throttles. Both directions go through the crate
//! at v1; only error codes are mapped.

use super::{check_version, decode_same, encode_same};
use crate::legacy::errors::downgrade_error;
use crate::legacy::LegacyError;
use kafka_protocol::messages::{AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, ApiKey};
use std::ops::RangeInclusive;

/// The AlterReplicaLogDirs versions Kafka 4.0 removed and this module translates.
pub const OLD_VERSIONS: RangeInclusive<i16> = 0..=0;

/// The crate's (and Kafka 4.0's) lowest AlterReplicaLogDirs version, whose layout v0 shares.
const CRATE_MIN: i16 = 1;

/// A v0 AlterReplicaLogDirs body → the crate's request (same layout as v1).
pub fn decode_request(version: i16, body: &[u8]) -> Result<AlterReplicaLogDirsRequest, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    decode_same(body, CRATE_MIN, "AlterReplicaLogDirs request")
}

/// The crate's request → a v0 AlterReplicaLogDirs body (for tests and fuzzing).
pub fn encode_request(version: i16, request: &AlterReplicaLogDirsRequest) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    encode_same(request, CRATE_MIN)
}

/// A v0 AlterReplicaLogDirs response body → the crate's response (for tests). Same layout as v1.
pub fn decode_response(version: i16, body: &[u8]) -> Result<AlterReplicaLogDirsResponse, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    decode_same(body, CRATE_MIN, "AlterReplicaLogDirs response")
}

/// The broker's response (decoded by the crate at the version the request was sent with) → the v0
/// layout, error codes mapped to ones the client knows.
pub fn encode_response(version: i16, response: &AlterReplicaLogDirsResponse) -> Result<Vec<u8>, LegacyError> {
    check_version(version, &OLD_VERSIONS)?;
    let mut old = response.clone();
    for partition in old.results.iter_mut().flat_map(|topic| topic.partitions.iter_mut()) {
        partition.error_code = downgrade_error(ApiKey::AlterReplicaLogDirs, version, partition.error_code);
    }
    encode_same(&old, CRATE_MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::testing::{
        arbitrary_bytes, biased_bytes, cat, name, old_error, round_trip, s, str_bytes, text, through_crate, topic_name
    };
    use kafka_protocol::messages::alter_replica_log_dirs_request::{AlterReplicaLogDir, AlterReplicaLogDirTopic};
    use kafka_protocol::messages::alter_replica_log_dirs_response::{AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult};
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Crate versions checked: the minimum and the first flexible one.
    const CRATE_VERSIONS: [i16; 2] = [1, 2];

    #[test]
    fn hand_assembled_request_decodes_field_by_field() {
        let body = cat(&[
            &1i32.to_be_bytes(), &s("/data/2"), &1i32.to_be_bytes(), &s("orders"), &2i32.to_be_bytes(), &0i32.to_be_bytes(),
            &4i32.to_be_bytes(),
        ]);
        let request = decode_request(0, &body).unwrap();
        let dir = &request.dirs[0];
        assert_eq!(dir.path, text("/data/2"));
        assert_eq!((dir.topics[0].name.clone(), dir.topics[0].partitions.clone()), (name("orders"), vec![0, 4]));
        assert_eq!(encode_request(0, &request).unwrap(), body);
    }

    #[test]
    fn hand_assembled_response_decodes_field_by_field() {
        let body = cat(&[
            &0i32.to_be_bytes(), &1i32.to_be_bytes(), &s("orders"), &2i32.to_be_bytes(), &0i32.to_be_bytes(),
            &0i16.to_be_bytes(), &4i32.to_be_bytes(), &57i16.to_be_bytes(),
        ]);
        let response = decode_response(0, &body).unwrap();
        assert_eq!(response.throttle_time_ms, 0);
        let topic = &response.results[0];
        assert_eq!(topic.topic_name, name("orders"));
        assert_eq!((topic.partitions[0].partition_index, topic.partitions[0].error_code), (0, 0));
        assert_eq!((topic.partitions[1].partition_index, topic.partitions[1].error_code), (4, 57));
        assert_eq!(encode_response(0, &response).unwrap(), body);
    }

    #[test]
    fn new_error_codes_are_mapped() {
        let partitions = vec![AlterReplicaLogDirPartitionResult::default().with_partition_index(1).with_error_code(56)];
        let topic = AlterReplicaLogDirTopicResult::default().with_topic_name(name("t")).with_partitions(partitions);
        let response = AlterReplicaLogDirsResponse::default().with_results(vec![topic]);
        let old = decode_response(0, &encode_response(0, &through_crate(&response, 2)).unwrap()).unwrap();
        assert_eq!(old.results[0].partitions[0].error_code, 6);
    }

    #[test]
    fn versions_outside_the_old_range_are_refused() {
        for version in [-1, 1, 2] {
            let refused = LegacyError::Unrepresentable("version");
            assert_eq!(decode_request(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_request(version, &AlterReplicaLogDirsRequest::default()).unwrap_err(), refused);
            assert_eq!(decode_response(version, &[]).unwrap_err(), refused);
            assert_eq!(encode_response(version, &AlterReplicaLogDirsResponse::default()).unwrap_err(), refused);
        }
    }

    fn old_request() -> impl Strategy<Value = AlterReplicaLogDirsRequest> {
        let topic = (topic_name(), vec(any::<i32>(), 0..4))
            .prop_map(|(name, partitions)| AlterReplicaLogDirTopic::default().with_name(name).with_partitions(partitions));
        let dir = (str_bytes(), vec(topic, 0..3)).prop_map(|(path, topics)| AlterReplicaLogDir::default().with_path(path).with_topics(topics));
        vec(dir, 0..3).prop_map(|dirs| AlterReplicaLogDirsRequest::default().with_dirs(dirs))
    }

    fn old_response() -> impl Strategy<Value = AlterReplicaLogDirsResponse> {
        let partition = (any::<i32>(), old_error(ApiKey::AlterReplicaLogDirs, 0))
            .prop_map(|(index, error)| AlterReplicaLogDirPartitionResult::default().with_partition_index(index).with_error_code(error));
        let topic = (topic_name(), vec(partition, 0..4))
            .prop_map(|(name, partitions)| AlterReplicaLogDirTopicResult::default().with_topic_name(name).with_partitions(partitions));
        (any::<i32>(), vec(topic, 0..3))
            .prop_map(|(throttle, results)| AlterReplicaLogDirsResponse::default().with_throttle_time_ms(throttle).with_results(results))
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
