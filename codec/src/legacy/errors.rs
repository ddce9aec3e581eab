//! Error codes an old client can understand.
//!
//! A broker answering at a version the kafka-protocol crate generates may use error codes that did
//! not exist when the client's old version was specified. Old clients map a code they do not know to
//! a generic, non-retriable "unknown server error", so a transient condition (a disk failure on the
//! leader, a leader-epoch race during an election) would fail their produce or fetch for good. Each
//! such code is replaced by the closest one the old version was specified with, chosen so that the
//! client reacts the same way: refresh its metadata and retry.
//!
//! | broker's code             | old client receives          | why                                                   |
//! |---------------------------|------------------------------|-------------------------------------------------------|
//! | 56 KAFKA_STORAGE_ERROR    | 6 NOT_LEADER_OR_FOLLOWER     | Kafka's broker did the same for old Produce and Fetch |
//! | 74 FENCED_LEADER_EPOCH    | 6 NOT_LEADER_OR_FOLLOWER     | leadership moved: the client must refresh metadata    |
//! | 75 UNKNOWN_LEADER_EPOCH   | 6 NOT_LEADER_OR_FOLLOWER     | the broker is behind on leadership: refresh and retry |
//! | 78 OFFSET_NOT_AVAILABLE   | 5 LEADER_NOT_AVAILABLE       | an election is in progress: retry later               |
//! | 100 UNKNOWN_TOPIC_ID      | 3 UNKNOWN_TOPIC_OR_PARTITION | old versions name topics; the topic is what is gone   |
//! | 103 INCONSISTENT_TOPIC_ID | 3 UNKNOWN_TOPIC_OR_PARTITION | the topic was recreated; the one asked for is gone    |
//!
//! Every other code is passed unchanged, in particular 76 UNSUPPORTED_COMPRESSION_TYPE: it is the
//! answer Kafka documented (KIP-110) for a fetch at a version whose message format cannot carry
//! zstd, and nothing closer exists.

use kafka_protocol::messages::ApiKey;

/// No error.
pub const NONE: i16 = 0;
/// The topic or partition does not exist (or the client may not see it).
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// No leader right now (an election is in progress).
pub const LEADER_NOT_AVAILABLE: i16 = 5;
/// The broker is not the partition's leader (named NOT_LEADER_FOR_PARTITION before Kafka 2.6).
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
/// A log directory of the broker failed (Kafka 1.0, KIP-112).
pub const KAFKA_STORAGE_ERROR: i16 = 56;
/// The request's leader epoch is older than the broker's (Kafka 2.1, KIP-320).
pub const FENCED_LEADER_EPOCH: i16 = 74;
/// The request's leader epoch is newer than the broker's (Kafka 2.1, KIP-320).
pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
/// The records use a compression the requested version cannot carry (zstd before Fetch v10).
pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
/// The leader's high watermark is not yet known after an election (Kafka 2.2, KIP-207).
pub const OFFSET_NOT_AVAILABLE: i16 = 78;
/// The topic id is not known to the broker (Kafka 2.8, KIP-516).
pub const UNKNOWN_TOPIC_ID: i16 = 100;
/// The topic id does not match the topic's current id (Kafka 3.1, KIP-516).
pub const INCONSISTENT_TOPIC_ID: i16 = 103;

/// The code to send an old client of `api` at `client_version` in place of the broker's `code`.
///
/// The table of the module documentation applies to every version the kafka-protocol crate no
/// longer generates, the only ones this layer answers: Kafka 4.0 removed the versions of clients
/// older than Kafka 2.1, which predate the table's codes (and a client that happens to know one
/// reacts to its replacement the same way). Versions the crate generates get `code` unchanged: the
/// broker answers those clients itself.
pub fn downgrade_error(api: ApiKey, client_version: i16, code: i16) -> i16 {
    if client_version >= api.valid_versions().min {
        return code;
    }
    match code {
        KAFKA_STORAGE_ERROR | FENCED_LEADER_EPOCH | UNKNOWN_LEADER_EPOCH => NOT_LEADER_OR_FOLLOWER,
        OFFSET_NOT_AVAILABLE => LEADER_NOT_AVAILABLE,
        UNKNOWN_TOPIC_ID | INCONSISTENT_TOPIC_ID => UNKNOWN_TOPIC_OR_PARTITION,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: [(ApiKey, i16); 5] =
        [(ApiKey::Produce, 0), (ApiKey::Produce, 2), (ApiKey::Fetch, 0), (ApiKey::Fetch, 3), (ApiKey::ListOffsets, 0)];
    const NEW_CODES: [i16; 6] =
        [KAFKA_STORAGE_ERROR, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, OFFSET_NOT_AVAILABLE, UNKNOWN_TOPIC_ID, INCONSISTENT_TOPIC_ID];

    #[test]
    fn old_versions_get_codes_they_know() {
        for (api, version) in OLD {
            assert_eq!(downgrade_error(api, version, KAFKA_STORAGE_ERROR), NOT_LEADER_OR_FOLLOWER);
            assert_eq!(downgrade_error(api, version, FENCED_LEADER_EPOCH), NOT_LEADER_OR_FOLLOWER);
            assert_eq!(downgrade_error(api, version, UNKNOWN_LEADER_EPOCH), NOT_LEADER_OR_FOLLOWER);
            assert_eq!(downgrade_error(api, version, OFFSET_NOT_AVAILABLE), LEADER_NOT_AVAILABLE);
            assert_eq!(downgrade_error(api, version, UNKNOWN_TOPIC_ID), UNKNOWN_TOPIC_OR_PARTITION);
            assert_eq!(downgrade_error(api, version, INCONSISTENT_TOPIC_ID), UNKNOWN_TOPIC_OR_PARTITION);
            for kept in [NONE, -1, 1, 3, 5, 6, 7, 10, UNSUPPORTED_COMPRESSION_TYPE, 87, i16::MAX, i16::MIN] {
                assert_eq!(downgrade_error(api, version, kept), kept, "{api:?} v{version} code {kept}");
            }
        }
    }

    #[test]
    fn versions_the_crate_generates_are_untouched() {
        for (api, version) in [(ApiKey::Produce, 3), (ApiKey::Fetch, 4), (ApiKey::Fetch, 17), (ApiKey::ListOffsets, 1)] {
            for code in NEW_CODES {
                assert_eq!(downgrade_error(api, version, code), code);
            }
        }
    }
}
