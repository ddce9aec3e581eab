//! How the filter answers a request itself.
//!
//! A proxy-wasm network filter cannot write toward the client from the request path, and a request
//! with nothing else in flight has no response to ride on. So a refused request is replaced, under
//! the same correlation id, by a request every broker answers at once and without side effects
//! (ApiVersions v0, allowed even before SASL authentication); the broker's answer to it is then
//! replaced by the refusal on the response path. The refusal therefore takes exactly the refused
//! request's place in the response order.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_lens_codec::body::{self, BodyError};
use kafka_lens_codec::kafka_protocol::messages::{
    produce_request::{PartitionProduceData, TopicProduceData},
    ApiKey, ProduceRequest, RequestKind, ResponseHeader, ResponseKind, TopicName,
};
use kafka_lens_codec::kafka_protocol::protocol::StrBytes;
use kafka_lens_codec::kafka_protocol::messages::TransactionalId;
use kafka_lens_codec::scan::ProduceSummary;

/// The request that takes a refused request's place: ApiVersions v0 (request header v1, null
/// client id, empty body) under `correlation_id`. 14 bytes.
pub fn placeholder(correlation_id: i32) -> Bytes {
    let mut out = BytesMut::with_capacity(14);
    out.put_i32(10);
    out.put_i16(ApiKey::ApiVersions as i16);
    out.put_i16(0);
    out.put_i32(correlation_id);
    out.put_i16(-1);
    out.freeze()
}

/// A response frame (size prefix included) to `key` at `version` under `correlation_id`.
pub fn response_frame(correlation_id: i32, key: ApiKey, version: i16, body: &ResponseKind) -> Result<Bytes, BodyError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    body::encode_response(&header, body, key, version)
}

/// A Produce request naming the topics and partitions of a scanned one, records left out: what
/// a refusal mirrors.
pub fn produce_request_of(summary: &ProduceSummary) -> RequestKind {
    let topics = summary
        .topics
        .iter()
        .map(|t| {
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(t.name.clone())))
                .with_topic_id(kafka_lens_codec::uuid::Uuid::from_bytes(t.topic_id.unwrap_or_default()))
                .with_partition_data(t.partitions.iter().map(|p| PartitionProduceData::default().with_index(p.partition)).collect())
        })
        .collect();
    RequestKind::Produce(
        ProduceRequest::default()
            .with_transactional_id(summary.transactional_id.clone().map(|id| TransactionalId(StrBytes::from_string(id))))
            .with_acks(summary.acks)
            .with_timeout_ms(summary.timeout_ms)
            .with_topic_data(topics),
    )
}
