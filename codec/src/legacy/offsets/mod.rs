//! Consumer offset APIs whose oldest versions Kafka 4.0 removed: OffsetCommit v0–1, OffsetFetch v0
//! and OffsetForLeaderEpoch v0–1, translated to and from the crate's types at its minimum version.
//! Consumers built against Kafka 0.8–2.0 still send them.

pub mod offset_commit;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
