//! Consumer-group activity: requests per group, and rebalances.
//!
//! Group requests carry the group id; they are counted per group, API and client. A rebalance
//! ends with the coordinator handing every member the group's new generation in its JoinGroup
//! response. The last generation seen per group is kept in proxy-wasm shared data and raised
//! with compare-and-swap, so each generation is counted once however many members, connections
//! and worker VMs see it. A group deleted and re-created restarts at generation 1; that first
//! rebalance is not counted.
//!
//! With `per_partition_metrics` on, committed offsets are a gauge per group, topic and partition:
//! an OffsetCommit request says which offsets a member wants committed, its response which
//! partitions took. The value is *set*, not summed, although every worker VM adds to the same
//! Envoy gauge: the last committed offset is kept in shared data and each VM adds the difference
//! between the new offset and the stored one, under compare-and-swap.

use kafka_lens_codec::kafka_protocol::messages::{JoinGroupResponse, OffsetCommitRequest, OffsetCommitResponse, RequestKind};

use crate::labels::{parse_stored, update_shared, Client, Label};
use crate::metrics::{LabelKind, Metric, MetricSink};
use crate::topics::{self, TopicRef};


/// The group ids a request names, for the group APIs (OffsetFetch v8+ may name several).
pub fn group_ids(request: &RequestKind) -> Vec<&str> {
    match request {
        RequestKind::JoinGroup(r) => vec![r.group_id.0.as_str()],
        RequestKind::SyncGroup(r) => vec![r.group_id.0.as_str()],
        RequestKind::Heartbeat(r) => vec![r.group_id.0.as_str()],
        RequestKind::LeaveGroup(r) => vec![r.group_id.0.as_str()],
        RequestKind::OffsetCommit(r) => vec![r.group_id.0.as_str()],
        RequestKind::OffsetFetch(r) if r.groups.is_empty() => vec![r.group_id.0.as_str()],
        RequestKind::OffsetFetch(r) => r.groups.iter().map(|g| g.group_id.0.as_str()).collect(),
        _ => Vec::new(),
    }
}

/// What a group request's response settles.
#[derive(Debug, Clone)]
pub enum Pending {
    /// A JoinGroup: the group whose generation the response carries.
    Join(Label),
    /// An OffsetCommit: the offsets asked for.
    Commit(PendingCommit),
}

/// The offsets an OffsetCommit request asks to commit, until its response says which took.
#[derive(Debug, Clone)]
pub struct PendingCommit {
    group: Label,
    partitions: Vec<(TopicRef, Label, i32, i64)>,
}

/// Counts a group request; returns what its response settles: a JoinGroup's group, and with
/// `committed_offsets` an OffsetCommit's offsets.
pub fn on_request(request: &RequestKind, api: &'static str, client: &Client, committed_offsets: bool, sink: &mut dyn MetricSink) -> Option<Pending> {
    let mut pending = None;
    for group in group_ids(request) {
        let label = sink.label(LabelKind::Group, Some(group));
        sink.add(Metric::GroupRequests { group: label.clone(), api, client: client.clone() }, 1);
        pending = match request {
            RequestKind::JoinGroup(_) => Some(Pending::Join(label)),
            RequestKind::OffsetCommit(commit) if committed_offsets => Some(Pending::Commit(commit_request(commit, label, sink))),
            _ => pending,
        };
    }
    pending
}

fn commit_request(request: &OffsetCommitRequest, group: Label, sink: &mut dyn MetricSink) -> PendingCommit {
    let mut partitions = Vec::new();
    for topic in &request.topics {
        let topic_ref = TopicRef::new(topic.name.0.as_str(), topic.topic_id.as_bytes());
        let label = topics::label(sink, &topic_ref);
        for p in &topic.partitions {
            partitions.push((topic_ref.clone(), label.clone(), p.partition_index, p.committed_offset));
        }
    }
    PendingCommit { group, partitions }
}

/// Takes an OffsetCommit response: sets the committed-offset gauge of every partition it
/// answered without error.
pub fn on_commit_response(pending: &PendingCommit, response: &OffsetCommitResponse, sink: &mut dyn MetricSink) {
    for topic in &response.topics {
        for p in topic.partitions.iter().filter(|p| p.error_code == 0) {
            let asked = pending.partitions.iter().find(|(topic_ref, _, partition, _)| {
                *partition == p.partition_index && topic_ref.is(topic.name.0.as_str(), topic.topic_id.as_bytes())
            });
            if let Some((_, label, partition, offset)) = asked {
                set_committed(&pending.group, label, *partition, *offset, sink);
            }
        }
    }
}

/// Moves the shared gauge of one partition to `offset`, whichever VM set it last.
fn set_committed(group: &Label, topic: &Label, partition: i32, offset: i64, sink: &mut dyn MetricSink) {
    let Some(store) = sink.shared() else { return };
    let key = format!("kafka-lens/committed/{group}/{topic}/{partition}");
    let replaced = update_shared(store, &key, |raw| Some((offset.to_string().into_bytes(), parse_stored::<i64>(raw).unwrap_or(0))));
    if let Some(stored) = replaced {
        let metric = Metric::CommittedOffset { group: group.clone(), topic: topic.clone(), partition: Label::Owned(partition.to_string().into()) };
        sink.add(metric, offset.saturating_sub(stored));
    }
}

fn key(group: &Label) -> String {
    format!("kafka-lens/group-generation/{group}")
}

/// Takes a JoinGroup response for `group`: counts a rebalance if its generation is newer than
/// any seen before for the group.
pub fn on_join_response(group: &Label, response: &JoinGroupResponse, sink: &mut dyn MetricSink) {
    if response.error_code != 0 || response.generation_id < 0 {
        return;
    }
    let Some(store) = sink.shared() else { return };
    let generation = response.generation_id;
    let newer = update_shared(store, &key(group), |raw| {
        let stored = parse_stored::<i32>(raw);
        if stored.is_some_and(|s| s >= generation) {
            return None;
        }
        // A group seen for the first time counts only from generation 2: generation 1 is its
        // first join, not a rebalance.
        Some((generation.to_string().into_bytes(), stored.is_some() || generation > 1))
    });
    if newer == Some(true) {
        sink.add(Metric::GroupRebalances { group: group.clone() }, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestSink;
    use kafka_lens_codec::kafka_protocol::messages::{GroupId, HeartbeatRequest, JoinGroupRequest};
    use kafka_lens_codec::kafka_protocol::protocol::StrBytes;

    fn join(generation: i32) -> JoinGroupResponse {
        JoinGroupResponse::default().with_generation_id(generation)
    }

    #[test]
    fn requests_count_per_group_and_each_generation_once() {
        let (mut sink, client) = (TestSink::default(), crate::labels::Client::fixed("app", "client_id:app"));
        let group = GroupId(StrBytes::from_static_str("billing"));
        let request = RequestKind::JoinGroup(JoinGroupRequest::default().with_group_id(group.clone()));
        let Some(Pending::Join(label)) = on_request(&request, "JoinGroup", &client, false, &mut sink) else { panic!() };
        let heartbeat = RequestKind::Heartbeat(HeartbeatRequest::default().with_group_id(group));
        assert!(on_request(&heartbeat, "Heartbeat", &client, true, &mut sink).is_none());
        let billing = Label::Owned("billing".into());
        assert_eq!(sink.get(&Metric::GroupRequests { group: billing.clone(), api: "JoinGroup", client: client.clone() }), 1);
        assert_eq!(sink.get(&Metric::GroupRequests { group: billing.clone(), api: "Heartbeat", client: client }), 1);

        let rebalances = Metric::GroupRebalances { group: billing };
        on_join_response(&label, &join(1), &mut sink); // first join
        on_join_response(&label, &join(2), &mut sink); // a second member joins: rebalance
        on_join_response(&label, &join(2), &mut sink); // the other member's copy
        on_join_response(&label, &join(1).with_error_code(79), &mut sink); // MEMBER_ID_REQUIRED
        assert_eq!(sink.get(&rebalances), 1);
        on_join_response(&label, &join(3), &mut sink);
        assert_eq!(sink.get(&rebalances), 2);
    }

    fn commit(group: &'static str, topic: &'static str, offsets: &[(i32, i64)]) -> RequestKind {
        use kafka_lens_codec::kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
        use kafka_lens_codec::kafka_protocol::messages::TopicName;
        let partitions = offsets
            .iter()
            .map(|(p, o)| OffsetCommitRequestPartition::default().with_partition_index(*p).with_committed_offset(*o))
            .collect();
        let topic = OffsetCommitRequestTopic::default().with_name(TopicName(StrBytes::from_static_str(topic))).with_partitions(partitions);
        RequestKind::OffsetCommit(OffsetCommitRequest::default().with_group_id(GroupId(StrBytes::from_static_str(group))).with_topics(vec![topic]))
    }

    fn answer(topic: &'static str, errors: &[(i32, i16)]) -> OffsetCommitResponse {
        use kafka_lens_codec::kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
        use kafka_lens_codec::kafka_protocol::messages::TopicName;
        let partitions = errors.iter().map(|(p, e)| OffsetCommitResponsePartition::default().with_partition_index(*p).with_error_code(*e)).collect();
        OffsetCommitResponse::default()
            .with_topics(vec![OffsetCommitResponseTopic::default().with_name(TopicName(StrBytes::from_static_str(topic))).with_partitions(partitions)])
    }

    #[test]
    fn committed_offsets_are_set_not_summed_across_connections() {
        let (mut sink, client) = (TestSink::default(), crate::labels::Client::fixed("app", "client_id:app"));
        let gauge = |partition: &'static str| Metric::CommittedOffset {
            group: Label::Owned("billing".into()),
            topic: Label::Owned("orders".into()),
            partition: Label::Owned(partition.into()),
        };
        assert!(on_request(&commit("billing", "orders", &[(0, 10)]), "OffsetCommit", &client, false, &mut sink).is_none());
        let Some(Pending::Commit(first)) = on_request(&commit("billing", "orders", &[(0, 10), (1, 7)]), "OffsetCommit", &client, true, &mut sink)
        else {
            panic!()
        };
        on_commit_response(&first, &answer("orders", &[(0, 0), (1, 0)]), &mut sink);
        assert_eq!((sink.get(&gauge("0")), sink.get(&gauge("1"))), (10, 7));
        // Another member (another connection, maybe another VM) commits later offsets; one
        // partition is refused (NOT_COORDINATOR) and keeps its offset.
        let Some(Pending::Commit(second)) = on_request(&commit("billing", "orders", &[(0, 25), (1, 9)]), "OffsetCommit", &client, true, &mut sink)
        else {
            panic!()
        };
        on_commit_response(&second, &answer("orders", &[(0, 0), (1, 16)]), &mut sink);
        assert_eq!((sink.get(&gauge("0")), sink.get(&gauge("1"))), (25, 7));
        // A reset to an earlier offset moves the gauge down.
        let Some(Pending::Commit(reset)) = on_request(&commit("billing", "orders", &[(0, 3)]), "OffsetCommit", &client, true, &mut sink) else {
            panic!()
        };
        on_commit_response(&reset, &answer("orders", &[(0, 0)]), &mut sink);
        assert_eq!(sink.get(&gauge("0")), 3);
    }
}
