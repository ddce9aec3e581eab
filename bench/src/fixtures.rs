//! Sample frames for the codec micro-benchmarks: one request and response per API the filter
//! meets on a typical connection, sized like a small production cluster's (a few brokers, tens of
//! partitions), all encoded by the kafka-protocol crate.

use anyhow::{anyhow, Result};
use bytes::Bytes;
use kafka_lens_codec::body;
use kafka_lens_codec::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_lens_codec::kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_lens_codec::kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_lens_codec::kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_lens_codec::kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_lens_codec::kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, GroupId, HeartbeatRequest, HeartbeatResponse, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetCommitResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind, TopicName,
};
use kafka_lens_codec::kafka_protocol::protocol::StrBytes;

use crate::shape::Shape;
use crate::wire;

/// One encoded frame (size prefix stripped, as the codec's decoders take it) and what it is.
#[derive(Debug, Clone)]
pub struct Sample {
    /// `Metadata request v12` and so on: the benchmark's name.
    pub name: String,
    pub key: ApiKey,
    pub version: i16,
    pub is_request: bool,
    pub frame: Bytes,
}

const TOPICS: usize = 10;
const PARTITIONS: i32 = 6;
const BROKERS: i32 = 3;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn topic(i: usize) -> TopicName {
    TopicName(s(&format!("orders-{i}")))
}

/// Strips the 4-byte size prefix of a whole frame.
pub fn body_of(frame: &[u8]) -> Bytes {
    Bytes::copy_from_slice(frame.get(4..).unwrap_or_default())
}

fn request(key: ApiKey, version: i16, body: RequestKind) -> Result<Sample> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(s("bench-client")));
    let frame = body::encode_request(&header, &body).map_err(|e| anyhow!("{e}"))?;
    Ok(Sample { name: format!("{key:?} request v{version}"), key, version, is_request: true, frame: body_of(&frame) })
}

fn response(key: ApiKey, version: i16, body: ResponseKind) -> Result<Sample> {
    let header = ResponseHeader::default().with_correlation_id(7);
    let frame = body::encode_response(&header, &body, key, version).map_err(|e| anyhow!("{e}"))?;
    Ok(Sample { name: format!("{key:?} response v{version}"), key, version, is_request: false, frame: body_of(&frame) })
}

/// A Produce request (v9) carrying one batch of `shape`.
pub fn produce(shape: Shape) -> Result<Sample> {
    let batch = wire::record_batch(shape)?;
    request(ApiKey::Produce, wire::PRODUCE_VERSION, wire::produce_request("orders-0", 0, batch, 1))
}

/// A Fetch response (v12) carrying one batch of `shape`.
pub fn fetch_response(shape: Shape) -> Result<Sample> {
    let batch = wire::record_batch(shape)?;
    let fetch = wire::fetch_request("orders-0", 0, 0, 1 << 20);
    let RequestKind::Fetch(fetch) = fetch else { return Err(anyhow!("not a fetch request")) };
    response(ApiKey::Fetch, wire::FETCH_VERSION, wire::fetch_response_for(&fetch, &batch))
}

/// The Fetch request (v12) a consumer sends for one partition.
pub fn fetch_request() -> Result<Sample> {
    request(ApiKey::Fetch, wire::FETCH_VERSION, wire::fetch_request("orders-0", 0, 0, 1 << 20))
}

fn metadata_request() -> Result<Sample> {
    let topics = (0..3).map(|i| MetadataRequestTopic::default().with_name(Some(topic(i)))).collect();
    request(ApiKey::Metadata, 12, RequestKind::Metadata(MetadataRequest::default().with_topics(Some(topics))))
}

fn metadata_response() -> Result<Sample> {
    let brokers = (1..=BROKERS)
        .map(|id| MetadataResponseBroker::default().with_node_id(BrokerId(id)).with_host(s(&format!("broker-{id}.kafka.svc"))).with_port(9092))
        .collect();
    let topics = (0..TOPICS)
        .map(|t| {
            let partitions = (0..PARTITIONS)
                .map(|p| {
                    let replicas: Vec<BrokerId> = (0..BROKERS).map(|r| BrokerId((p + r) % BROKERS + 1)).collect();
                    MetadataResponsePartition::default()
                        .with_partition_index(p)
                        .with_leader_id(BrokerId(p % BROKERS + 1))
                        .with_leader_epoch(3)
                        .with_replica_nodes(replicas.clone())
                        .with_isr_nodes(replicas)
                })
                .collect();
            MetadataResponseTopic::default().with_name(Some(topic(t))).with_partitions(partitions)
        })
        .collect();
    let body = MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(s("bench-cluster")))
        .with_controller_id(BrokerId(1))
        .with_topics(topics);
    response(ApiKey::Metadata, 12, ResponseKind::Metadata(body))
}

fn offset_commit_request() -> Result<Sample> {
    let topics = (0..TOPICS)
        .map(|t| {
            let partitions = (0..PARTITIONS)
                .map(|p| {
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(p)
                        .with_committed_offset(1_000_000 + i64::from(p))
                        .with_committed_leader_epoch(3)
                        .with_committed_metadata(Some(s("")))
                })
                .collect();
            OffsetCommitRequestTopic::default().with_name(topic(t)).with_partitions(partitions)
        })
        .collect();
    let body = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("billing")))
        .with_generation_id_or_member_epoch(5)
        .with_member_id(s("bench-client-5f1c2a"))
        .with_topics(topics);
    request(ApiKey::OffsetCommit, 8, RequestKind::OffsetCommit(body))
}

fn offset_commit_response() -> Result<Sample> {
    let topics = (0..TOPICS)
        .map(|t| {
            let partitions = (0..PARTITIONS).map(|p| OffsetCommitResponsePartition::default().with_partition_index(p)).collect();
            OffsetCommitResponseTopic::default().with_name(topic(t)).with_partitions(partitions)
        })
        .collect();
    response(ApiKey::OffsetCommit, 8, ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics)))
}

fn api_versions_response() -> Result<Sample> {
    let keys = ApiKey::iter()
        .map(|key| {
            let range = key.valid_versions();
            ApiVersion::default().with_api_key(key as i16).with_min_version(range.min).with_max_version(range.max)
        })
        .collect();
    response(ApiKey::ApiVersions, 3, ResponseKind::ApiVersions(ApiVersionsResponse::default().with_api_keys(keys)))
}

fn heartbeat_request() -> Result<Sample> {
    let body = HeartbeatRequest::default().with_group_id(GroupId(s("billing"))).with_generation_id(5).with_member_id(s("bench-client-5f1c2a"));
    request(ApiKey::Heartbeat, 4, RequestKind::Heartbeat(body))
}

fn heartbeat_response() -> Result<Sample> {
    response(ApiKey::Heartbeat, 4, ResponseKind::Heartbeat(HeartbeatResponse::default()))
}

/// One request and response per API of a typical client session, for the decode and encode
/// benchmarks. Produce and Fetch carry 1 KiB of records.
pub fn api_samples() -> Result<Vec<Sample>> {
    Ok(vec![
        produce(Shape::KIB)?,
        fetch_request()?,
        fetch_response(Shape::KIB)?,
        metadata_request()?,
        metadata_response()?,
        offset_commit_request()?,
        offset_commit_response()?,
        api_versions_response()?,
        heartbeat_request()?,
        heartbeat_response()?,
    ])
}

/// `count` copies of a request frame back to back, size prefixes included: a pipelined stream.
pub fn pipelined(sample: &Sample, count: usize) -> Vec<u8> {
    let len = u32::try_from(sample.frame.len()).unwrap_or(u32::MAX).to_be_bytes();
    let mut out = Vec::with_capacity(count * (sample.frame.len() + 4));
    for _ in 0..count {
        out.extend_from_slice(&len);
        out.extend_from_slice(&sample.frame);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_decodes_back() {
        for sample in api_samples().expect("samples") {
            if sample.is_request {
                let decoded = body::decode_request(&sample.frame).expect(&sample.name);
                assert_eq!(decoded.api_key, sample.key);
            } else {
                body::decode_response(&sample.frame, sample.key, sample.version).expect(&sample.name);
            }
        }
    }
}
