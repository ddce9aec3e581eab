//! Kafka frames for the benchmarks, encoded with the kafka-protocol crate (through the codec's
//! `body::encode_*`), so every byte the load generator and the responder exchange is real Kafka
//! that the filter and a broker parse like any client's.
//!
//! Frames are built once and re-sent with only the correlation id patched in place
//! ([`set_request_correlation_id`], [`set_response_correlation_id`]): the load generator's own
//! cost per request stays a few stores and one `write`.

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Bytes, BytesMut};
use kafka_lens_codec::api;
use kafka_lens_codec::body;
use kafka_lens_codec::kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_lens_codec::kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_lens_codec::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_lens_codec::kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_lens_codec::kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_lens_codec::kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_lens_codec::kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, CreateTopicsRequest, FetchRequest, FetchResponse,
    ProduceRequest, ProduceResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind, TopicName,
};
use kafka_lens_codec::kafka_protocol::protocol::StrBytes;
use kafka_lens_codec::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType, NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
};

use crate::shape::Shape;

/// Produce v9: the first flexible version, still naming topics (v13 names them by id, which would
/// need a Metadata round trip). librdkafka 2.x uses v7–v9.
pub const PRODUCE_VERSION: i16 = 9;
/// Fetch v12: flexible, topics by name (v13+ uses topic ids).
pub const FETCH_VERSION: i16 = 12;
/// ApiVersions v3: what current clients send first.
pub const API_VERSIONS_VERSION: i16 = 3;
/// CreateTopics: the newest version the broker supports, up to this.
pub const CREATE_TOPICS_MAX_VERSION: i16 = 7;

/// Client id prefix of every request the load generator sends.
pub const CLIENT_ID: &str = "kafka-lens-bench";

/// A whole frame, size prefix included.
pub type Frame = Vec<u8>;

/// The client id that tells the responder which record shape to answer Fetch requests with:
/// `kafka-lens-bench/<workload>/<shape>`. Client ids are free-form in Kafka; real brokers ignore it.
pub fn client_id(workload: &str, shape: Shape) -> String {
    format!("{CLIENT_ID}/{workload}/{}x{}", shape.records, shape.record_bytes)
}

/// The shape named by a [`client_id`], if any.
pub fn shape_from_client_id(client_id: &str) -> Option<Shape> {
    client_id.rsplit('/').next()?.parse().ok()
}

/// One magic-2 record batch of `shape`, uncompressed, as a non-idempotent producer writes it.
pub fn record_batch(shape: Shape) -> Result<Bytes> {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0);
    let records: Vec<Record> = (0..shape.records)
        .map(|i| {
            // A varying value, so nothing downstream can shortcut on repeated bytes.
            let value: Vec<u8> = (0..shape.record_bytes).map(|b| ((b + i) % 251) as u8).collect();
            let offset = i64::try_from(i).unwrap_or(0);
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
                producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
                timestamp_type: TimestampType::Creation,
                offset,
                // The encoder starts a new batch wherever `offset - sequence` changes and writes
                // the first record's sequence as the batch's: counting up from -1 keeps all
                // records in one batch with base sequence -1 (no idempotent producer).
                sequence: NO_SEQUENCE.wrapping_add(offset as i32),
                timestamp,
                key: None,
                value: Some(Bytes::from(value)),
                headers: Default::default(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None })
        .context("encoding a record batch")?;
    Ok(buf.freeze())
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// A whole request frame with correlation id 0.
pub fn request_frame(key: ApiKey, version: i16, client_id: &str, body: &RequestKind) -> Result<Frame> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(0)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    body::encode_request(&header, body).map(|b| b.to_vec()).map_err(|e| anyhow!("{key:?} v{version}: {e}"))
}

/// A whole response frame answering `correlation_id`.
pub fn response_frame(key: ApiKey, version: i16, correlation_id: i32, body: &ResponseKind) -> Result<Frame> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    body::encode_response(&header, body, key, version).map(|b| b.to_vec()).map_err(|e| anyhow!("{key:?} v{version}: {e}"))
}

/// Sets the correlation id of a whole request frame (bytes 8..12: after size, key, version).
pub fn set_request_correlation_id(frame: &mut [u8], id: i32) {
    if let Some(slot) = frame.get_mut(8..12) {
        slot.copy_from_slice(&id.to_be_bytes());
    }
}

/// Sets the correlation id of a whole response frame (bytes 4..8: right after the size).
pub fn set_response_correlation_id(frame: &mut [u8], id: i32) {
    if let Some(slot) = frame.get_mut(4..8) {
        slot.copy_from_slice(&id.to_be_bytes());
    }
}

/// Produce of one batch to one partition.
pub fn produce_request(topic: &str, partition: i32, batch: Bytes, acks: i16) -> RequestKind {
    let data = TopicProduceData::default()
        .with_name(topic_name(topic))
        .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(batch))]);
    RequestKind::Produce(ProduceRequest::default().with_acks(acks).with_timeout_ms(30_000).with_topic_data(vec![data]))
}

/// Fetch from one partition at `offset`, answering at once (`max_wait_ms` 0) with at most
/// `max_bytes` from the partition (a broker still returns a first batch larger than that).
pub fn fetch_request(topic: &str, partition: i32, offset: i64, max_bytes: i32) -> RequestKind {
    let partition = FetchPartition::default()
        .with_partition(partition)
        .with_fetch_offset(offset)
        .with_current_leader_epoch(-1)
        .with_last_fetched_epoch(-1)
        .with_log_start_offset(-1)
        .with_partition_max_bytes(max_bytes);
    let topic = FetchTopic::default().with_topic(topic_name(topic)).with_partitions(vec![partition]);
    RequestKind::Fetch(
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![topic]),
    )
}

/// The ApiVersions request current clients open a connection with.
pub fn api_versions_request() -> RequestKind {
    RequestKind::ApiVersions(
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("kafka-lens-bench"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION"))),
    )
}

/// CreateTopics for single-partition, single-replica topics.
pub fn create_topics_request(topics: &[String]) -> RequestKind {
    let topics = topics
        .iter()
        .map(|t| CreatableTopic::default().with_name(topic_name(t)).with_num_partitions(1).with_replication_factor(1))
        .collect();
    RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(topics).with_timeout_ms(30_000))
}

/// The response a broker gives a successful Produce: every partition of the request, no error.
pub fn produce_response_for(request: &ProduceRequest) -> ResponseKind {
    let responses = request
        .topic_data
        .iter()
        .map(|t| {
            let partitions = t
                .partition_data
                .iter()
                .map(|p| PartitionProduceResponse::default().with_index(p.index).with_base_offset(0).with_log_append_time_ms(-1))
                .collect();
            TopicProduceResponse::default().with_name(t.name.clone()).with_partition_responses(partitions)
        })
        .collect();
    ResponseKind::Produce(ProduceResponse::default().with_responses(responses))
}

/// A Fetch response carrying `batch` for every partition of the request.
pub fn fetch_response_for(request: &FetchRequest, batch: &Bytes) -> ResponseKind {
    let responses = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_high_watermark(1)
                        .with_last_stable_offset(1)
                        .with_log_start_offset(0)
                        .with_preferred_read_replica(BrokerId(-1))
                        .with_records(Some(batch.clone()))
                })
                .collect();
            FetchableTopicResponse::default().with_topic(t.topic.clone()).with_partitions(partitions)
        })
        .collect();
    ResponseKind::Fetch(FetchResponse::default().with_responses(responses))
}

/// The responder's ApiVersions answer: the APIs it serves, at every version the codec knows.
pub fn api_versions_response() -> ResponseKind {
    let api_keys = [ApiKey::Produce, ApiKey::Fetch, ApiKey::ApiVersions]
        .into_iter()
        .map(|key| {
            let range = api::versions(key);
            ApiVersion::default().with_api_key(key as i16).with_min_version(range.min).with_max_version(range.max)
        })
        .collect();
    ResponseKind::ApiVersions(ApiVersionsResponse::default().with_api_keys(api_keys))
}

/// The highest version of `key` at most `cap` that both the broker (from its ApiVersions
/// response) and the codec support.
pub fn negotiate(broker: &ApiVersionsResponse, key: ApiKey, cap: i16) -> Result<i16> {
    let ours = api::versions(key);
    let theirs = broker
        .api_keys
        .iter()
        .find(|v| v.api_key == key as i16)
        .ok_or_else(|| anyhow!("the broker does not offer {key:?}"))?;
    let version = cap.min(ours.max).min(theirs.max_version);
    if version < ours.min.max(theirs.min_version) {
        bail!("no common {key:?} version: broker {}..={}, codec {}..={}", theirs.min_version, theirs.max_version, ours.min, ours.max);
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_lens_codec::records;

    #[test]
    fn record_batches_have_the_shape_asked_for() {
        for shape in [Shape::SMALL, Shape::KIB, Shape::BATCH_64K] {
            let batch = record_batch(shape).expect("batch");
            let summary = records::summarize(&batch, i64::MIN);
            assert_eq!((summary.batches, summary.records), (1, shape.records as u64));
            assert!(batch.len() > shape.payload_bytes());
            assert!(batch.len() < shape.payload_bytes() + 61 + 16 * shape.records);
        }
    }

    #[test]
    fn correlation_ids_are_patched_where_the_codec_reads_them() {
        let batch = record_batch(Shape::KIB).expect("batch");
        let mut frame = request_frame(ApiKey::Produce, PRODUCE_VERSION, CLIENT_ID, &produce_request("t", 0, batch, 1)).expect("frame");
        set_request_correlation_id(&mut frame, 4242);
        let decoded = body::decode_request(&Bytes::from(frame[4..].to_vec())).expect("decodes");
        assert_eq!(decoded.header.correlation_id, 4242);

        let mut response = response_frame(ApiKey::Produce, PRODUCE_VERSION, 0, &produce_response_for(&ProduceRequest::default())).expect("frame");
        set_response_correlation_id(&mut response, -7);
        let decoded = body::decode_response(&Bytes::from(response[4..].to_vec()), ApiKey::Produce, PRODUCE_VERSION).expect("decodes");
        assert_eq!(decoded.header.correlation_id, -7);
    }

    #[test]
    fn client_ids_carry_the_shape() {
        assert_eq!(shape_from_client_id(&client_id("fetch", Shape::BATCH_64K)), Some(Shape::BATCH_64K));
        assert_eq!(shape_from_client_id("rdkafka"), None);
    }
}
