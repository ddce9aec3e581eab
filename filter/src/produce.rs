//! Produce accounting: what a Produce request carries, settled by the broker's answer.
//!
//! The request's structural scan gives records, batch bytes and compression per topic and
//! partition, counted at once as attempts (`kafka_produce_request_*`, retries included). The
//! records count as produced only when the response answers their partition without error;
//! otherwise they count as failed, per error. With `acks=0` there is no response: the records
//! count as produced at once, labelled `acks="0"` (sent, unacknowledged).

use kafka_lens_codec::generated::response_errors::error_name;
use kafka_lens_codec::kafka_protocol::messages::ProduceResponse;
use kafka_lens_codec::records::BatchHeader;
use kafka_lens_codec::scan::ProduceSummary;

use crate::labels::{Client, Label};
use crate::metrics::{Metric, MetricSink};
use crate::topics::{TopicLabels, TopicRef};

/// Records of one partition of a Produce request awaiting its response.
#[derive(Debug, Clone)]
struct PendingPartition {
    topic: TopicRef,
    label: Label,
    partition: i32,
    records: u64,
    bytes: u64,
}

/// A Produce request awaiting its response.
#[derive(Debug, Clone)]
pub struct PendingProduce {
    acks: &'static str,
    partitions: Vec<PendingPartition>,
}

/// The `acks` label: `0`, `1`, `all` (-1), or `other`.
pub fn acks_label(acks: i16) -> &'static str {
    match acks {
        0 => "0",
        1 => "1",
        -1 => "all",
        _ => "other",
    }
}

fn count(by: u64) -> i64 {
    i64::try_from(by).unwrap_or(i64::MAX)
}

/// Counts a scanned Produce request's attempts; returns what its response settles (`None` for
/// `acks=0`, already counted as produced).
pub fn on_request(summary: &ProduceSummary, client: &Client, labels: &mut TopicLabels, sink: &mut dyn MetricSink) -> Option<PendingProduce> {
    let acks = acks_label(summary.acks);
    let mut partitions = Vec::new();
    for topic in &summary.topics {
        let topic_ref = match topic.topic_id {
            Some(id) => TopicRef::Id(id),
            None => TopicRef::Name(topic.name.clone()),
        };
        let label = labels.get(sink, &topic_ref);
        let (mut records, mut bytes, mut retried) = (0u64, 0u64, 0u64);
        for p in &topic.partitions {
            if let (Some(BatchHeader::V2(batch)), Some(sequences)) = (&p.first_batch, sink.producer_sequences()) {
                if sequences.is_retry(batch.producer_id, batch.producer_epoch, &topic_ref, p.partition, batch.base_sequence) {
                    retried = retried.saturating_add(p.records.records);
                }
            }
            records = records.saturating_add(p.records.records);
            bytes = bytes.saturating_add(p.records.bytes);
            for (codec, batches) in &p.records.compression {
                let metric = Metric::ProduceRequestBatches {
                    topic: label.clone(),
                    client: client.clone(),
                    compression: codec.as_str(),
                    acks,
                };
                sink.add(metric, i64::from(*batches));
            }
            partitions.push(PendingPartition {
                topic: topic_ref.clone(),
                label: label.clone(),
                partition: p.partition,
                records: p.records.records,
                bytes: p.records.bytes,
            });
        }
        sink.add(Metric::ProduceRequestRecords { topic: label.clone(), client: client.clone() }, count(records));
        if retried > 0 {
            sink.add(Metric::ProduceRetriedRecords { topic: label.clone(), client: client.clone() }, count(retried));
        }
        if summary.acks == 0 {
            sink.add(Metric::ProducedRecords { topic: label.clone(), client: client.clone(), acks }, count(records));
            sink.add(Metric::ProducedBytes { topic: label, client: client.clone(), acks }, count(bytes));
        }
    }
    (summary.acks != 0).then_some(PendingProduce { acks, partitions })
}

/// Settles a Produce request with its decoded response: per partition, produced or failed.
pub fn on_response(pending: &PendingProduce, response: &ProduceResponse, client: &Client, sink: &mut dyn MetricSink) {
    for topic in &pending.partitions {
        let answer = response.responses.iter().find(|t| topic.topic.is(t.name.0.as_str(), t.topic_id.as_bytes()));
        let error = answer
            .and_then(|t| t.partition_responses.iter().find(|p| p.index == topic.partition))
            .map(|p| p.error_code);
        match error {
            Some(0) => {
                let (topic_label, acks) = (topic.label.clone(), pending.acks);
                sink.add(Metric::ProducedRecords { topic: topic_label.clone(), client: client.clone(), acks }, count(topic.records));
                sink.add(Metric::ProducedBytes { topic: topic_label, client: client.clone(), acks }, count(topic.bytes));
            }
            Some(code) => {
                let metric = Metric::ProduceFailedRecords { topic: topic.label.clone(), client: client.clone(), error: error_name(code) };
                sink.add(metric, count(topic.records));
            }
            None => {
                // The broker did not answer this partition (a malformed response): neither.
                log::debug!("produce response without partition {} of {:?}", topic.partition, topic.topic);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestSink;
    use kafka_lens_codec::kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
    use kafka_lens_codec::kafka_protocol::messages::TopicName;
    use kafka_lens_codec::kafka_protocol::protocol::StrBytes;
    use kafka_lens_codec::records::{Compression, RecordSetSummary};
    use kafka_lens_codec::scan::{PartitionRecords, TopicRecords};

    fn summary(acks: i16) -> ProduceSummary {
        let partition = |partition, records, bytes| PartitionRecords {
            partition,
            records: RecordSetSummary { batches: 1, records, bytes, compression: vec![(Compression::Zstd, 1)], ..Default::default() },
            ..Default::default()
        };
        ProduceSummary {
            acks,
            topics: vec![TopicRecords { name: "orders".into(), topic_id: None, partitions: vec![partition(0, 10, 500), partition(1, 5, 300)] }],
            ..Default::default()
        }
    }

    fn response(errors: [i16; 2]) -> ProduceResponse {
        ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
            .with_name(TopicName(StrBytes::from_static_str("orders")))
            .with_partition_responses(vec![
                PartitionProduceResponse::default().with_index(0).with_error_code(errors[0]),
                PartitionProduceResponse::default().with_index(1).with_error_code(errors[1]),
            ])])
    }

    fn topic() -> Label {
        Label::Owned("orders".into())
    }

    #[test]
    fn records_count_as_produced_only_where_the_broker_acknowledged_them() {
        let (mut sink, client) = (TestSink::default(), crate::labels::Client::fixed("shop", "client_id:shop"));
        let pending = on_request(&summary(-1), &client, &mut TopicLabels::default(), &mut sink).unwrap();
        assert_eq!(sink.get(&Metric::ProduceRequestRecords { topic: topic(), client: client.clone() }), 15);
        let batches = Metric::ProduceRequestBatches { topic: topic(), client: client.clone(), compression: "zstd", acks: "all" };
        assert_eq!(sink.get(&batches), 2);
        assert_eq!(sink.sum(|m| matches!(m, Metric::ProducedRecords { .. })), 0, "nothing acknowledged yet");

        on_response(&pending, &response([0, 6]), &client, &mut sink);
        assert_eq!(sink.get(&Metric::ProducedRecords { topic: topic(), client: client.clone(), acks: "all" }), 10);
        assert_eq!(sink.get(&Metric::ProducedBytes { topic: topic(), client: client.clone(), acks: "all" }), 500);
        let failed = Metric::ProduceFailedRecords { topic: topic(), client: client, error: "NOT_LEADER_OR_FOLLOWER" };
        assert_eq!(sink.get(&failed), 5);
    }

    #[test]
    fn acks_zero_counts_at_once_as_unacknowledged() {
        let (mut sink, client) = (TestSink::default(), crate::labels::Client::fixed("shop", "client_id:shop"));
        assert!(on_request(&summary(0), &client, &mut TopicLabels::default(), &mut sink).is_none());
        assert_eq!(sink.get(&Metric::ProducedRecords { topic: topic(), client: client.clone(), acks: "0" }), 15);
        assert_eq!(sink.get(&Metric::ProducedBytes { topic: topic(), client: client, acks: "0" }), 800);
    }

    fn idempotent(producer_id: i64, base_sequence: i32, records: u64) -> ProduceSummary {
        use kafka_lens_codec::records::RecordBatchHeader;
        let batch = RecordBatchHeader {
            base_offset: 0,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records as i32 - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: 0,
            base_sequence,
            record_count: records as i32,
        };
        let partition = PartitionRecords {
            partition: 0,
            records: RecordSetSummary { batches: 1, records, bytes: 100, ..Default::default() },
            first_batch: Some(BatchHeader::V2(batch)),
            ..Default::default()
        };
        ProduceSummary { acks: -1, topics: vec![TopicRecords { name: "orders".into(), topic_id: None, partitions: vec![partition] }], ..Default::default() }
    }

    #[test]
    fn an_idempotent_batch_sent_again_counts_as_retried() {
        let (mut sink, client) = (TestSink::default(), crate::labels::Client::fixed("shop", "client_id:shop"));
        let retried = Metric::ProduceRetriedRecords { topic: topic(), client: client.clone() };
        on_request(&idempotent(42, 0, 10), &client, &mut TopicLabels::default(), &mut sink);
        on_request(&idempotent(42, 10, 4), &client, &mut TopicLabels::default(), &mut sink);
        assert_eq!(sink.get(&retried), 0);
        on_request(&idempotent(42, 10, 4), &client, &mut TopicLabels::default(), &mut sink); // re-sent
        assert_eq!(sink.get(&retried), 4);
        assert_eq!(sink.get(&Metric::ProduceRequestRecords { topic: topic(), client: client.clone() }), 18, "attempts include the retry");
        on_request(&idempotent(-1, -1, 3), &client, &mut TopicLabels::default(), &mut sink);
        on_request(&idempotent(-1, -1, 3), &client, &mut TopicLabels::default(), &mut sink); // not idempotent: unknowable
        assert_eq!(sink.get(&retried), 4);
    }
}
