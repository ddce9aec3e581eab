//! Fetch accounting: records and bytes consumers fetch, and their lag, per topic and client.
//!
//! A Fetch request says from which offset each partition is read; its response carries record
//! batches and each partition's high watermark. Fetched records are those of complete batches at
//! offsets at or after the fetch offset (the broker returns the whole batch holding the fetch
//! offset, and may cut the last batch short). Lag is high watermark minus fetch offset.
//!
//! Fetch sessions (KIP-227, Fetch v7+) make requests incremental: a partition whose fetch offset
//! did not change is left out of the request, and one with nothing new is left out of the
//! response. So each connection keeps its session's fetch offsets and lags, updated by what each
//! request and response lists; a full fetch (session epoch 0 or -1) starts over.
//!
//! Fetches from follower brokers (replica id >= 0) are replication, not client traffic: they are
//! not counted here.

use std::collections::HashMap;

use kafka_lens_codec::kafka_protocol::messages::FetchRequest;
use kafka_lens_codec::scan::FetchSummary;

use crate::labels::{Client, Label};
use crate::metrics::{Metric, MetricSink};
use crate::topics::{TopicLabels, TopicRef};

type PartitionKey = (TopicRef, i32);

/// The fetch offsets one Fetch request asked for (the partitions it lists).
#[derive(Debug, Clone, Default)]
pub struct FetchOffsets {
    offsets: Vec<(PartitionKey, i64)>,
}

/// What a connection remembers of its fetch session.
#[derive(Debug, Default)]
pub struct FetchSession {
    /// The session's current fetch offset per partition.
    positions: HashMap<PartitionKey, i64>,
    /// Lag per partition, from the latest response listing it.
    lags: HashMap<PartitionKey, (Label, i64)>,
    /// Lag this connection has added to each lag gauge.
    reported: HashMap<Metric, i64>,
    /// Also report lag per partition (`per_partition_metrics`).
    per_partition: bool,
}

/// Largest number of partitions a session remembers: a client fetching more is not tracked
/// beyond it (its lag for the rest is not reported), so memory per connection stays bounded.
pub const MAX_SESSION_PARTITIONS: usize = 10_000;

impl FetchSession {
    /// A session reporting lag per topic and client, and with `per_partition` per partition too.
    pub fn new(per_partition: bool) -> Self {
        FetchSession { per_partition, ..FetchSession::default() }
    }

    /// Takes a decoded Fetch request: `None` for a replica fetch (not counted), else the offsets
    /// it asks for, to settle its response with.
    pub fn on_request(&mut self, request: &FetchRequest, version: i16) -> Option<FetchOffsets> {
        let replica_id = if version >= 15 { request.replica_state.replica_id.0 } else { request.replica_id.0 };
        if replica_id >= 0 {
            return None;
        }
        if version >= 7 && request.session_epoch <= 0 {
            // A full fetch: a new session (or none) lists every partition it wants.
            self.positions.clear();
        }
        for topic in &request.forgotten_topics_data {
            let topic_ref = TopicRef::new(topic.topic.0.as_str(), topic.topic_id.as_bytes());
            for partition in &topic.partitions {
                let key = (topic_ref.clone(), *partition);
                self.positions.remove(&key);
                self.lags.remove(&key);
            }
        }
        let mut offsets = Vec::new();
        for topic in &request.topics {
            let topic_ref = TopicRef::new(topic.topic.0.as_str(), topic.topic_id.as_bytes());
            for p in &topic.partitions {
                let key = (topic_ref.clone(), p.partition);
                if self.positions.len() < MAX_SESSION_PARTITIONS || self.positions.contains_key(&key) {
                    self.positions.insert(key.clone(), p.fetch_offset);
                }
                offsets.push((key, p.fetch_offset));
            }
        }
        Some(FetchOffsets { offsets })
    }

    /// Counts a scanned Fetch response to a request that asked for `asked`.
    pub fn on_response(
        &mut self,
        asked: &FetchOffsets,
        response: &FetchSummary,
        client: &Client,
        labels: &mut TopicLabels,
        sink: &mut dyn MetricSink,
    ) {
        let mut fetched: HashMap<Label, (u64, u64)> = HashMap::new();
        for topic in &response.topics {
            let topic_ref = match topic.topic_id {
                Some(id) => TopicRef::Id(id),
                None => TopicRef::Name(topic.name.clone()),
            };
            let label = labels.get(sink, &topic_ref);
            for p in &topic.partitions {
                let key = (topic_ref.clone(), p.partition);
                let offset = asked.offsets.iter().find(|(k, _)| *k == key).map(|(_, o)| *o).or_else(|| self.positions.get(&key).copied());
                let Some(offset) = offset else { continue };
                if p.error_code != 0 {
                    continue;
                }
                let entry = fetched.entry(label.clone()).or_default();
                entry.0 = entry.0.saturating_add(p.records_from(offset));
                entry.1 = entry.1.saturating_add(p.records.bytes);
                if p.high_watermark >= 0 && (self.lags.len() < MAX_SESSION_PARTITIONS || self.lags.contains_key(&key)) {
                    self.lags.insert(key, (label.clone(), p.high_watermark.saturating_sub(offset).max(0)));
                }
            }
        }
        for (topic, (records, bytes)) in fetched {
            let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            sink.add(Metric::FetchedRecords { topic: topic.clone(), client: client.clone() }, count(records));
            sink.add(Metric::FetchedBytes { topic, client: client.clone() }, count(bytes));
        }
        self.report_lag(client, sink);
    }

    /// Brings this connection's share of the lag gauges up to date.
    fn report_lag(&mut self, client: &Client, sink: &mut dyn MetricSink) {
        let mut now: HashMap<Metric, i64> = HashMap::new();
        for ((_, partition), (topic, lag)) in &self.lags {
            let sum = now.entry(Metric::FetchLag { topic: topic.clone(), client: client.clone() }).or_default();
            *sum = sum.saturating_add(*lag);
            if self.per_partition {
                let partition = Label::Owned(partition.to_string().into());
                now.insert(Metric::FetchLagPartition { topic: topic.clone(), partition, client: client.clone() }, *lag);
            }
        }
        for (metric, reported) in &self.reported {
            if !now.contains_key(metric) {
                sink.add(metric.clone(), -reported);
            }
        }
        for (metric, lag) in &now {
            let delta = lag.saturating_sub(self.reported.get(metric).copied().unwrap_or(0));
            if delta != 0 {
                sink.add(metric.clone(), delta);
            }
        }
        self.reported = now;
    }

    /// Withdraws this connection's lag from the gauges. Call when the connection ends.
    pub fn on_close(&mut self, sink: &mut dyn MetricSink) {
        for (metric, lag) in self.reported.drain() {
            sink.add(metric, -lag);
        }
        self.lags.clear();
        self.positions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestSink;
    use kafka_lens_codec::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_lens_codec::kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_lens_codec::kafka_protocol::protocol::StrBytes;
    use kafka_lens_codec::records::{BatchHeader, RecordBatchHeader, RecordSetSummary};
    use kafka_lens_codec::scan::{PartitionRecords, TopicRecords};

    fn request(epoch: i32, offsets: &[(i32, i64)]) -> FetchRequest {
        FetchRequest::default().with_replica_id(BrokerId(-1)).with_session_epoch(epoch).with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("orders")))
            .with_partitions(offsets.iter().map(|(p, o)| FetchPartition::default().with_partition(*p).with_fetch_offset(*o)).collect())])
    }

    /// A response for partition 0 with one batch `[base, base + count)` and the high watermark.
    fn response(base: i64, count: i32, high_watermark: i64) -> FetchSummary {
        let header = RecordBatchHeader {
            base_offset: base,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: count,
        };
        let partition = PartitionRecords {
            partition: 0,
            high_watermark,
            records: RecordSetSummary { batches: 1, records: count as u64, bytes: 112, ..Default::default() },
            first_batch: Some(BatchHeader::V2(header)),
            ..Default::default()
        };
        FetchSummary { topics: vec![TopicRecords { name: "orders".into(), topic_id: None, partitions: vec![partition] }], ..Default::default() }
    }

    fn metric(sink: &TestSink, f: fn(Label, Client) -> Metric) -> i64 {
        sink.get(&f(Label::Owned("orders".into()), Client::fixed("app", "client_id:app")))
    }

    #[test]
    fn counts_records_from_the_fetch_offset_and_lag_through_an_incremental_session() {
        let (mut sink, client, mut session) = (TestSink::default(), Client::fixed("app", "client_id:app"), FetchSession::default());
        // Fetch from offset 5; the broker returns the batch 0..10 holding it; 20 records exist.
        let asked = session.on_request(&request(0, &[(0, 5)]), 12).unwrap();
        session.on_response(&asked, &response(0, 10, 20), &client, &mut TopicLabels::default(), &mut sink);
        assert_eq!(metric(&sink, |topic, client| Metric::FetchedRecords { topic, client }), 5);
        assert_eq!(metric(&sink, |topic, client| Metric::FetchedBytes { topic, client }), 112);
        assert_eq!(metric(&sink, |topic, client| Metric::FetchLag { topic, client }), 15);

        // Incremental fetch: the request lists partition 0 at 10; the response lists it again.
        let asked = session.on_request(&request(1, &[(0, 10)]), 12).unwrap();
        session.on_response(&asked, &response(10, 10, 20), &client, &mut TopicLabels::default(), &mut sink);
        assert_eq!(metric(&sink, |topic, client| Metric::FetchedRecords { topic, client }), 15);
        assert_eq!(metric(&sink, |topic, client| Metric::FetchLag { topic, client }), 10);

        // Nothing changed: an empty incremental request; the lag stays as last seen.
        let asked = session.on_request(&request(2, &[]), 12).unwrap();
        session.on_response(&asked, &FetchSummary::default(), &client, &mut TopicLabels::default(), &mut sink);
        assert_eq!(metric(&sink, |topic, client| Metric::FetchLag { topic, client }), 10);

        session.on_close(&mut sink);
        assert_eq!(metric(&sink, |topic, client| Metric::FetchLag { topic, client }), 0);
    }

    #[test]
    fn per_partition_lag_is_opt_in() {
        let client = Client::fixed("app", "client_id:app");
        let partition_lag = Metric::FetchLagPartition { topic: Label::Owned("orders".into()), partition: Label::Owned("0".into()), client: client.clone() };
        for per_partition in [false, true] {
            let (mut sink, mut session) = (TestSink::default(), FetchSession::new(per_partition));
            let asked = session.on_request(&request(0, &[(0, 5)]), 12).unwrap();
            session.on_response(&asked, &response(0, 10, 20), &client, &mut TopicLabels::default(), &mut sink);
            assert_eq!(sink.get(&partition_lag), if per_partition { 15 } else { 0 });
            assert_eq!(sink.metrics.contains_key(&partition_lag), per_partition);
            session.on_close(&mut sink);
            assert_eq!(sink.get(&partition_lag), 0);
        }
    }

    #[test]
    fn replica_fetches_are_not_client_traffic() {
        let mut session = FetchSession::default();
        assert!(session.on_request(&request(0, &[(0, 5)]).with_replica_id(BrokerId(2)), 12).is_none());
    }
}
