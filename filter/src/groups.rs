//! Consumer-group activity: requests per group, and rebalances.
//!
//! Group requests carry the group id; they are counted per group, API and client. A rebalance
//! ends with the coordinator handing every member the group's new generation in its JoinGroup
//! response. The last generation seen per group is kept in proxy-wasm shared data and raised
//! with compare-and-swap, so each generation is counted once however many members, connections
//! and worker VMs see it. A group deleted and re-created restarts at generation 1; that first
//! rebalance is not counted.

use kafka_lens_codec::kafka_protocol::messages::{JoinGroupResponse, RequestKind};

use crate::labels::{Label, StoreError};
use crate::metrics::{LabelKind, Metric, MetricSink};

/// Attempts at raising a group's stored generation before giving up on counting it.
const CAS_ATTEMPTS: usize = 8;

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

/// Counts a group request; returns the group's label when the response matters (JoinGroup).
pub fn on_request(request: &RequestKind, api: &'static str, client_id: &Label, sink: &mut dyn MetricSink) -> Option<Label> {
    let mut joined = None;
    for group in group_ids(request) {
        let label = sink.label(LabelKind::Group, Some(group));
        sink.add(Metric::GroupRequests { group: label.clone(), api, client_id: client_id.clone() }, 1);
        if matches!(request, RequestKind::JoinGroup(_)) {
            joined = Some(label);
        }
    }
    joined
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
    let key = key(group);
    let generation = response.generation_id;
    let mut newer = false;
    for _ in 0..CAS_ATTEMPTS {
        let (stored, cas) = match store.get(&key) {
            Ok(Some((raw, cas))) => (std::str::from_utf8(&raw).ok().and_then(|s| s.parse::<i32>().ok()), cas),
            Ok(None) => (None, 0),
            Err(_) => return,
        };
        if stored.is_some_and(|s| s >= generation) {
            return;
        }
        match store.set(&key, generation.to_string().as_bytes(), cas) {
            Ok(()) => {
                // A group seen for the first time counts only from generation 2: generation 1 is
                // its first join, not a rebalance.
                newer = stored.is_some() || generation > 1;
                break;
            }
            Err(StoreError::CasMismatch) => continue,
            Err(StoreError::Failed) => return,
        }
    }
    if newer {
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
        let (mut sink, client) = (TestSink::default(), Label::Static("app"));
        let group = GroupId(StrBytes::from_static_str("billing"));
        let request = RequestKind::JoinGroup(JoinGroupRequest::default().with_group_id(group.clone()));
        let label = on_request(&request, "JoinGroup", &client, &mut sink).unwrap();
        let heartbeat = RequestKind::Heartbeat(HeartbeatRequest::default().with_group_id(group));
        assert!(on_request(&heartbeat, "Heartbeat", &client, &mut sink).is_none());
        let billing = Label::Owned("billing".into());
        assert_eq!(sink.get(&Metric::GroupRequests { group: billing.clone(), api: "JoinGroup", client_id: client.clone() }), 1);
        assert_eq!(sink.get(&Metric::GroupRequests { group: billing.clone(), api: "Heartbeat", client_id: client }), 1);

        let rebalances = Metric::GroupRebalances { group: billing };
        on_join_response(&label, &join(1), &mut sink); // first join
        on_join_response(&label, &join(2), &mut sink); // a second member joins: rebalance
        on_join_response(&label, &join(2), &mut sink); // the other member's copy
        on_join_response(&label, &join(1).with_error_code(79), &mut sink); // MEMBER_ID_REQUIRED
        assert_eq!(sink.get(&rebalances), 1);
        on_join_response(&label, &join(3), &mut sink);
        assert_eq!(sink.get(&rebalances), 2);
    }
}
