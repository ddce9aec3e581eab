//! Responses the filter sends itself when it refuses a request (a policy violation), shaped as a
//! broker's own refusal so clients handle them with their ordinary error paths.
//!
//! Modelled on Kafka's `AbstractRequest.getErrorResponse` for each request type: a response to the
//! request's API at the request's version, every entry the request named (topics, partitions,
//! groups, resources, ...) answered in request order with the refusal's error code, the message in
//! every error-message field the version has, and the "unknown" values (offset -1, node -1) a
//! broker puts beside an error. Where Kafka answers only with a request-level error although the
//! version has per-entry error fields, the entries carry the code too, so a client reading either
//! level sees the refusal. Throttle times are 0.
//!
//! Topic-keyed requests can also be refused in part: [`split_topics`] separates the refused topics,
//! the kept part goes to the broker, and [`merge_topic_results`] appends the refusal of the rest
//! to the broker's answer.

use std::collections::BTreeSet;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// The topic id of entries that name their topic by name.
const NO_ID: [u8; 16] = [0; 16];

/// Whether the filter can answer this API itself: [`error_response`] builds a refusal for every
/// API listed here and for no other. SASL and ApiVersions are not listed: the filter never refuses
/// them (a client must be able to authenticate and negotiate to see any other refusal).
pub fn can_answer(key: ApiKey) -> bool {
    matches!(
        key,
        ApiKey::Produce
            | ApiKey::Fetch
            | ApiKey::ListOffsets
            | ApiKey::Metadata
            | ApiKey::OffsetCommit
            | ApiKey::OffsetFetch
            | ApiKey::FindCoordinator
            | ApiKey::JoinGroup
            | ApiKey::Heartbeat
            | ApiKey::LeaveGroup
            | ApiKey::SyncGroup
            | ApiKey::DescribeGroups
            | ApiKey::ListGroups
            | ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::DeleteRecords
            | ApiKey::InitProducerId
            | ApiKey::AddPartitionsToTxn
            | ApiKey::AddOffsetsToTxn
            | ApiKey::EndTxn
            | ApiKey::TxnOffsetCommit
            | ApiKey::DescribeAcls
            | ApiKey::CreateAcls
            | ApiKey::DeleteAcls
            | ApiKey::DescribeConfigs
            | ApiKey::AlterConfigs
            | ApiKey::AlterReplicaLogDirs
            | ApiKey::DescribeLogDirs
            | ApiKey::CreatePartitions
            | ApiKey::DeleteGroups
            | ApiKey::ElectLeaders
            | ApiKey::IncrementalAlterConfigs
            | ApiKey::AlterPartitionReassignments
            | ApiKey::ListPartitionReassignments
            | ApiKey::OffsetDelete
            | ApiKey::DescribeClientQuotas
            | ApiKey::AlterClientQuotas
            | ApiKey::DescribeUserScramCredentials
            | ApiKey::AlterUserScramCredentials
            | ApiKey::DescribeProducers
            | ApiKey::DescribeTransactions
            | ApiKey::ListTransactions
    )
}

/// The response refusing `request` (a decoded request body at `version`): every entry the request
/// names (topics, partitions, groups, resources…) answered with `code`; `message` in every error
/// message field the version has. `None` for an API [`can_answer`] rejects.
///
/// The response encodes at `version` (it sets no field the version lacks), so the caller only adds
/// the response header with the request's correlation id. A Produce with `acks = 0` expects no
/// response at all: the caller must drop such a request instead of sending this.
pub fn error_response(request: &RequestKind, version: i16, code: i16, message: Option<&str>) -> Option<ResponseKind> {
    let e = Refusal { version, code, message: message.map(|m| StrBytes::from_string(m.to_owned())) };
    Some(match request {
        RequestKind::Produce(r) => produce(r, &e).into(),
        RequestKind::Fetch(r) => fetch(r, &e).into(),
        RequestKind::ListOffsets(r) => list_offsets(r, &e).into(),
        RequestKind::Metadata(r) => metadata(r, &e).into(),
        RequestKind::OffsetCommit(r) => offset_commit(r, &e).into(),
        RequestKind::OffsetFetch(r) => offset_fetch(r, &e).into(),
        RequestKind::FindCoordinator(r) => find_coordinator(r, &e).into(),
        RequestKind::JoinGroup(_) => join_group(&e).into(),
        RequestKind::Heartbeat(_) => HeartbeatResponse::default().with_error_code(code).into(),
        RequestKind::LeaveGroup(r) => leave_group(r, &e).into(),
        RequestKind::SyncGroup(_) => SyncGroupResponse::default().with_error_code(code).into(),
        RequestKind::DescribeGroups(r) => describe_groups(r, &e).into(),
        RequestKind::ListGroups(_) => ListGroupsResponse::default().with_error_code(code).into(),
        RequestKind::CreateTopics(r) => create_topics(r, &e).into(),
        RequestKind::DeleteTopics(r) => delete_topics(r, &e).into(),
        RequestKind::DeleteRecords(r) => delete_records(r, &e).into(),
        RequestKind::InitProducerId(_) => init_producer_id(&e).into(),
        RequestKind::AddPartitionsToTxn(r) => add_partitions_to_txn(r, &e).into(),
        RequestKind::AddOffsetsToTxn(_) => AddOffsetsToTxnResponse::default().with_error_code(code).into(),
        RequestKind::EndTxn(_) => EndTxnResponse::default().with_error_code(code).into(),
        RequestKind::TxnOffsetCommit(r) => txn_offset_commit(r, &e).into(),
        RequestKind::DescribeAcls(_) => describe_acls(&e).into(),
        RequestKind::CreateAcls(r) => create_acls(r, &e).into(),
        RequestKind::DeleteAcls(r) => delete_acls(r, &e).into(),
        RequestKind::DescribeConfigs(r) => describe_configs(r, &e).into(),
        RequestKind::AlterConfigs(r) => alter_configs(r, &e).into(),
        RequestKind::AlterReplicaLogDirs(r) => alter_replica_log_dirs(r, &e).into(),
        RequestKind::DescribeLogDirs(_) => DescribeLogDirsResponse::default().with_error_code(e.code_from(3)).into(),
        RequestKind::CreatePartitions(r) => create_partitions(r, &e).into(),
        RequestKind::DeleteGroups(r) => delete_groups(r, &e).into(),
        RequestKind::ElectLeaders(r) => elect_leaders(r, &e).into(),
        RequestKind::IncrementalAlterConfigs(r) => incremental_alter_configs(r, &e).into(),
        RequestKind::AlterPartitionReassignments(r) => alter_partition_reassignments(r, &e).into(),
        RequestKind::ListPartitionReassignments(_) => list_partition_reassignments(&e).into(),
        RequestKind::OffsetDelete(r) => offset_delete(r, &e).into(),
        RequestKind::DescribeClientQuotas(_) => describe_client_quotas(&e).into(),
        RequestKind::AlterClientQuotas(r) => alter_client_quotas(r, &e).into(),
        RequestKind::DescribeUserScramCredentials(r) => describe_user_scram_credentials(r, &e).into(),
        RequestKind::AlterUserScramCredentials(r) => alter_user_scram_credentials(r, &e).into(),
        RequestKind::DescribeProducers(r) => describe_producers(r, &e).into(),
        RequestKind::DescribeTransactions(r) => describe_transactions(r, &e).into(),
        RequestKind::ListTransactions(_) => ListTransactionsResponse::default().with_error_code(code).into(),
        _ => return None,
    })
}

/// Splits a topic-keyed request into (kept, refused): `refuse(name, topic_id)` picks the topics to
/// refuse (topic_id is all zeros where the version names topics by name). `None` when the API is not
/// topic-keyed — then the caller refuses the whole request.
///
/// Topic-keyed: Produce, Fetch, ListOffsets, CreateTopics, DeleteTopics, DeleteRecords,
/// CreatePartitions, OffsetCommit, OffsetDelete, TxnOffsetCommit, AddPartitionsToTxn (v0–3; the
/// batched v4+ is not), DescribeProducers, OffsetFetch (v0–7 naming its topics; not v8+, keyed by
/// group, nor a request for all topics). Both parts keep the request's other fields, except that
/// Fetch's forgotten topics stay in the kept part only (the broker's session must drop them).
/// `refuse` is called once per topic entry, in request order.
pub fn split_topics(
    request: &RequestKind,
    refuse: &mut dyn FnMut(&str, &[u8; 16]) -> bool,
) -> Option<(RequestKind, RequestKind)> {
    Some(match request {
        RequestKind::Produce(r) => both(split(r, |r| &mut r.topic_data, refuse), RequestKind::Produce),
        RequestKind::Fetch(r) => {
            let (kept, mut refused) = split(r, |r| &mut r.topics, refuse);
            refused.forgotten_topics_data.clear();
            both((kept, refused), RequestKind::Fetch)
        }
        RequestKind::ListOffsets(r) => both(split(r, |r| &mut r.topics, refuse), RequestKind::ListOffsets),
        RequestKind::CreateTopics(r) => both(split(r, |r| &mut r.topics, refuse), RequestKind::CreateTopics),
        RequestKind::DeleteTopics(r) => {
            // v0–5 name topics in `topic_names`, v6 in `topics`; only one of the two is filled.
            let (mut kept, mut refused) = split(r, |r| &mut r.topic_names, refuse);
            let (by_id_kept, by_id_refused) = split(r, |r| &mut r.topics, refuse);
            kept.topics = by_id_kept.topics;
            refused.topics = by_id_refused.topics;
            both((kept, refused), RequestKind::DeleteTopics)
        }
        RequestKind::DeleteRecords(r) => both(split(r, |r| &mut r.topics, refuse), RequestKind::DeleteRecords),
        RequestKind::CreatePartitions(r) => both(split(r, |r| &mut r.topics, refuse), RequestKind::CreatePartitions),
        RequestKind::OffsetCommit(r) => both(split(r, |r| &mut r.topics, refuse), RequestKind::OffsetCommit),
        RequestKind::OffsetDelete(r) => both(split(r, |r| &mut r.topics, refuse), RequestKind::OffsetDelete),
        RequestKind::TxnOffsetCommit(r) => both(split(r, |r| &mut r.topics, refuse), RequestKind::TxnOffsetCommit),
        RequestKind::AddPartitionsToTxn(r) if r.transactions.is_empty() => {
            both(split(r, |r| &mut r.v3_and_below_topics, refuse), RequestKind::AddPartitionsToTxn)
        }
        RequestKind::DescribeProducers(r) => both(split(r, |r| &mut r.topics, refuse), RequestKind::DescribeProducers),
        RequestKind::OffsetFetch(r) if r.groups.is_empty() && r.topics.is_some() => {
            both(split(r, |r| r.topics.get_or_insert_with(Vec::new), refuse), RequestKind::OffsetFetch)
        }
        _ => return None,
    })
}

/// Appends the per-topic entries of `extra` (a response of the same API, e.g. built by
/// [`error_response`] from the refused part of a [`split_topics`]) to `into`. Returns false (and
/// leaves `into` unchanged) if the two are not the same topic-keyed API.
///
/// Only topic entries move: request-level fields (error codes, throttle time, session id) stay
/// those of `into`, the broker's answer for the kept part. The batched AddPartitionsToTxn (v4+) and
/// the group-keyed OffsetFetch (v8+) are not topic-keyed.
pub fn merge_topic_results(into: &mut ResponseKind, extra: ResponseKind) -> bool {
    match (into, extra) {
        (ResponseKind::Produce(a), ResponseKind::Produce(b)) => a.responses.extend(b.responses),
        (ResponseKind::Fetch(a), ResponseKind::Fetch(b)) => a.responses.extend(b.responses),
        (ResponseKind::ListOffsets(a), ResponseKind::ListOffsets(b)) => a.topics.extend(b.topics),
        (ResponseKind::CreateTopics(a), ResponseKind::CreateTopics(b)) => a.topics.extend(b.topics),
        (ResponseKind::DeleteTopics(a), ResponseKind::DeleteTopics(b)) => a.responses.extend(b.responses),
        (ResponseKind::DeleteRecords(a), ResponseKind::DeleteRecords(b)) => a.topics.extend(b.topics),
        (ResponseKind::CreatePartitions(a), ResponseKind::CreatePartitions(b)) => a.results.extend(b.results),
        (ResponseKind::OffsetCommit(a), ResponseKind::OffsetCommit(b)) => a.topics.extend(b.topics),
        (ResponseKind::OffsetDelete(a), ResponseKind::OffsetDelete(b)) => a.topics.extend(b.topics),
        (ResponseKind::TxnOffsetCommit(a), ResponseKind::TxnOffsetCommit(b)) => a.topics.extend(b.topics),
        (ResponseKind::AddPartitionsToTxn(a), ResponseKind::AddPartitionsToTxn(b))
            if b.results_by_transaction.is_empty() =>
        {
            a.results_by_topic_v3_and_below.extend(b.results_by_topic_v3_and_below)
        }
        (ResponseKind::DescribeProducers(a), ResponseKind::DescribeProducers(b)) => a.topics.extend(b.topics),
        (ResponseKind::OffsetFetch(a), ResponseKind::OffsetFetch(b)) if b.groups.is_empty() => {
            a.topics.extend(b.topics)
        }
        _ => return false,
    }
    true
}

/// The topics a request names, as (name, topic_id) pairs (id all zeros where named by name;
/// name empty where named by id only), in request order. Empty for requests that name no topics,
/// and for requests meaning "all topics" (Metadata, OffsetFetch, DescribeLogDirs with null topics).
///
/// Besides the topic-keyed APIs of [`split_topics`]: Metadata, OffsetFetch v8+ (every group's
/// topics), AddPartitionsToTxn v4+ (every transaction's topics), ElectLeaders,
/// AlterPartitionReassignments, ListPartitionReassignments, DescribeLogDirs, AlterReplicaLogDirs,
/// and the topic resources of DescribeConfigs, AlterConfigs and IncrementalAlterConfigs. Fetch's
/// forgotten topics are not included: the client stops reading them.
pub fn request_topics(request: &RequestKind) -> Vec<(String, [u8; 16])> {
    let mut out = Vec::new();
    match request {
        RequestKind::Produce(r) => push(&mut out, &r.topic_data),
        RequestKind::Fetch(r) => push(&mut out, &r.topics),
        RequestKind::ListOffsets(r) => push(&mut out, &r.topics),
        RequestKind::Metadata(r) => push(&mut out, r.topics.as_deref().unwrap_or_default()),
        RequestKind::CreateTopics(r) => push(&mut out, &r.topics),
        RequestKind::DeleteTopics(r) => {
            push(&mut out, &r.topic_names);
            push(&mut out, &r.topics);
        }
        RequestKind::DeleteRecords(r) => push(&mut out, &r.topics),
        RequestKind::CreatePartitions(r) => push(&mut out, &r.topics),
        RequestKind::OffsetCommit(r) => push(&mut out, &r.topics),
        RequestKind::OffsetDelete(r) => push(&mut out, &r.topics),
        RequestKind::TxnOffsetCommit(r) => push(&mut out, &r.topics),
        RequestKind::AddPartitionsToTxn(r) => {
            push(&mut out, &r.v3_and_below_topics);
            r.transactions.iter().for_each(|t| push(&mut out, &t.topics));
        }
        RequestKind::DescribeProducers(r) => push(&mut out, &r.topics),
        RequestKind::OffsetFetch(r) => {
            push(&mut out, r.topics.as_deref().unwrap_or_default());
            r.groups.iter().for_each(|g| push(&mut out, g.topics.as_deref().unwrap_or_default()));
        }
        RequestKind::ElectLeaders(r) => push(&mut out, r.topic_partitions.as_deref().unwrap_or_default()),
        RequestKind::AlterPartitionReassignments(r) => push(&mut out, &r.topics),
        RequestKind::ListPartitionReassignments(r) => push(&mut out, r.topics.as_deref().unwrap_or_default()),
        RequestKind::DescribeLogDirs(r) => push(&mut out, r.topics.as_deref().unwrap_or_default()),
        RequestKind::AlterReplicaLogDirs(r) => r.dirs.iter().for_each(|d| push(&mut out, &d.topics)),
        RequestKind::DescribeConfigs(r) => {
            config_topics(&mut out, r.resources.iter().map(|c| (c.resource_type, &c.resource_name)))
        }
        RequestKind::AlterConfigs(r) => {
            config_topics(&mut out, r.resources.iter().map(|c| (c.resource_type, &c.resource_name)))
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            config_topics(&mut out, r.resources.iter().map(|c| (c.resource_type, &c.resource_name)))
        }
        _ => {}
    }
    out
}

/// A request entry that names one topic, by name or by id.
trait TopicEntry {
    /// The topic's name (empty where named by id) and id (all zeros where named by name).
    fn topic(&self) -> (&str, [u8; 16]);
}

/// Implements [`TopicEntry`] for each `type: entry => (name, id)`.
macro_rules! topic_entries {
    ($($ty:ty: $t:ident => ($name:expr, $id:expr);)*) => {
        $(impl TopicEntry for $ty {
            fn topic(&self) -> (&str, [u8; 16]) {
                let $t = self;
                ($name, $id)
            }
        })*
    };
}

topic_entries! {
    TopicName: t => (t.as_str(), NO_ID);
    produce_request::TopicProduceData: t => (&t.name, *t.topic_id.as_bytes());
    fetch_request::FetchTopic: t => (&t.topic, *t.topic_id.as_bytes());
    list_offsets_request::ListOffsetsTopic: t => (&t.name, NO_ID);
    metadata_request::MetadataRequestTopic: t => (t.name.as_deref().map_or("", |n| n.as_str()), *t.topic_id.as_bytes());
    create_topics_request::CreatableTopic: t => (&t.name, NO_ID);
    delete_topics_request::DeleteTopicState: t => (t.name.as_deref().map_or("", |n| n.as_str()), *t.topic_id.as_bytes());
    delete_records_request::DeleteRecordsTopic: t => (&t.name, NO_ID);
    create_partitions_request::CreatePartitionsTopic: t => (&t.name, NO_ID);
    offset_commit_request::OffsetCommitRequestTopic: t => (&t.name, *t.topic_id.as_bytes());
    offset_delete_request::OffsetDeleteRequestTopic: t => (&t.name, NO_ID);
    txn_offset_commit_request::TxnOffsetCommitRequestTopic: t => (&t.name, NO_ID);
    add_partitions_to_txn_request::AddPartitionsToTxnTopic: t => (&t.name, NO_ID);
    describe_producers_request::TopicRequest: t => (&t.name, NO_ID);
    offset_fetch_request::OffsetFetchRequestTopic: t => (&t.name, NO_ID);
    offset_fetch_request::OffsetFetchRequestTopics: t => (&t.name, *t.topic_id.as_bytes());
    elect_leaders_request::TopicPartitions: t => (&t.topic, NO_ID);
    alter_partition_reassignments_request::ReassignableTopic: t => (&t.name, NO_ID);
    list_partition_reassignments_request::ListPartitionReassignmentsTopics: t => (&t.name, NO_ID);
    describe_log_dirs_request::DescribableLogDirTopic: t => (&t.topic, NO_ID);
    alter_replica_log_dirs_request::AlterReplicaLogDirTopic: t => (&t.name, NO_ID);
}

fn push<T: TopicEntry>(out: &mut Vec<(String, [u8; 16])>, entries: &[T]) {
    out.extend(entries.iter().map(|t| {
        let (name, id) = t.topic();
        (name.to_owned(), id)
    }));
}

/// Kafka's config resource type for a topic (`ConfigResource.Type.TOPIC`).
const TOPIC_RESOURCE: i8 = 2;

fn config_topics<'a>(out: &mut Vec<(String, [u8; 16])>, resources: impl Iterator<Item = (i8, &'a StrBytes)>) {
    out.extend(resources.filter(|(kind, _)| *kind == TOPIC_RESOURCE).map(|(_, name)| (name.to_string(), NO_ID)));
}

/// Two clones of `request`: the entries of its list `items` that `refuse` rejects only in the
/// second, the others only in the first.
fn split<R: Clone, T: TopicEntry>(
    request: &R,
    items: fn(&mut R) -> &mut Vec<T>,
    refuse: &mut dyn FnMut(&str, &[u8; 16]) -> bool,
) -> (R, R) {
    let mut kept = request.clone();
    let mut refused = request.clone();
    let (no, yes): (Vec<T>, Vec<T>) = std::mem::take(items(&mut kept)).into_iter().partition(|t| {
        let (name, id) = t.topic();
        !refuse(name, &id)
    });
    *items(&mut kept) = no;
    *items(&mut refused) = yes;
    (kept, refused)
}

fn both<R>((kept, refused): (R, R), kind: fn(R) -> RequestKind) -> (RequestKind, RequestKind) {
    (kind(kept), kind(refused))
}

/// The refusal being built: the request's version, the error code and the message.
struct Refusal {
    version: i16,
    code: i16,
    message: Option<StrBytes>,
}

impl Refusal {
    /// The code for an error field that exists from version `since` on (0, the default, before).
    fn code_from(&self, since: i16) -> i16 {
        if self.version >= since {
            self.code
        } else {
            0
        }
    }

    /// The message for a message field present at every version.
    fn message(&self) -> Option<StrBytes> {
        self.message.clone()
    }

    /// The message for a message field that exists from version `since` on (None, the field's
    /// default, before).
    fn message_from(&self, since: i16) -> Option<StrBytes> {
        if self.version >= since {
            self.message.clone()
        } else {
            None
        }
    }
}

/// `f` applied to every entry, in order.
fn map<T, U>(items: &[T], f: impl FnMut(&T) -> U) -> Vec<U> {
    items.iter().map(f).collect()
}

fn produce(r: &ProduceRequest, e: &Refusal) -> ProduceResponse {
    ProduceResponse::default().with_responses(map(&r.topic_data, |t| {
        produce_response::TopicProduceResponse::default()
            .with_name(t.name.clone())
            .with_topic_id(t.topic_id)
            .with_partition_responses(map(&t.partition_data, |p| {
                produce_response::PartitionProduceResponse::default()
                    .with_index(p.index)
                    .with_error_code(e.code)
                    .with_error_message(e.message_from(8))
                    .with_base_offset(-1)
            }))
    }))
}

/// Kafka sets the request-level error (v7+) and, for clients that predate it, every partition's.
/// Kafka leaves the partitions out from v13; they stay here so that the refused part of a split
/// Fetch can be merged. The session id is 0 (Kafka echoes the request's; clients end the session
/// on any request-level error either way).
fn fetch(r: &FetchRequest, e: &Refusal) -> FetchResponse {
    FetchResponse::default().with_error_code(e.code_from(7)).with_responses(map(&r.topics, |t| {
        fetch_response::FetchableTopicResponse::default()
            .with_topic(t.topic.clone())
            .with_topic_id(t.topic_id)
            .with_partitions(map(&t.partitions, |p| {
                fetch_response::PartitionData::default()
                    .with_partition_index(p.partition)
                    .with_error_code(e.code)
                    .with_high_watermark(-1)
            }))
    }))
}

fn list_offsets(r: &ListOffsetsRequest, e: &Refusal) -> ListOffsetsResponse {
    ListOffsetsResponse::default().with_topics(map(&r.topics, |t| {
        list_offsets_response::ListOffsetsTopicResponse::default().with_name(t.name.clone()).with_partitions(map(
            &t.partitions,
            |p| {
                list_offsets_response::ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(e.code)
                    .with_timestamp(-1)
                    .with_offset(-1)
            },
        ))
    }))
}

/// A request for all topics (null list) gets no topics and no brokers, as from a broker refusing
/// it; v13 also has a request-level error.
fn metadata(r: &MetadataRequest, e: &Refusal) -> MetadataResponse {
    MetadataResponse::default().with_error_code(e.code_from(13)).with_topics(map(
        r.topics.as_deref().unwrap_or_default(),
        |t| {
            metadata_response::MetadataResponseTopic::default()
                .with_name(Some(t.name.clone().unwrap_or_default()))
                .with_topic_id(t.topic_id)
                .with_error_code(e.code)
        },
    ))
}

fn offset_commit(r: &OffsetCommitRequest, e: &Refusal) -> OffsetCommitResponse {
    OffsetCommitResponse::default().with_topics(map(&r.topics, |t| {
        offset_commit_response::OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(map(
            &t.partitions,
            |p| {
                offset_commit_response::OffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(e.code)
            },
        ))
    }))
}

/// v1–7 answer the request's topics (v2+ also with a request-level error); v8+ answer per group.
fn offset_fetch(r: &OffsetFetchRequest, e: &Refusal) -> OffsetFetchResponse {
    if e.version >= 8 {
        return OffsetFetchResponse::default().with_groups(map(&r.groups, |g| {
            offset_fetch_response::OffsetFetchResponseGroup::default()
                .with_group_id(g.group_id.clone())
                .with_error_code(e.code)
                .with_topics(map(g.topics.as_deref().unwrap_or_default(), |t| {
                    offset_fetch_response::OffsetFetchResponseTopics::default()
                        .with_name(t.name.clone())
                        .with_partitions(map(&t.partition_indexes, |&i| {
                            offset_fetch_response::OffsetFetchResponsePartitions::default()
                                .with_partition_index(i)
                                .with_committed_offset(-1)
                                .with_error_code(e.code)
                        }))
                }))
        }));
    }
    OffsetFetchResponse::default().with_error_code(e.code_from(2)).with_topics(map(
        r.topics.as_deref().unwrap_or_default(),
        |t| {
            offset_fetch_response::OffsetFetchResponseTopic::default().with_name(t.name.clone()).with_partitions(map(
                &t.partition_indexes,
                |&i| {
                    offset_fetch_response::OffsetFetchResponsePartition::default()
                        .with_partition_index(i)
                        .with_committed_offset(-1)
                        .with_error_code(e.code)
                },
            ))
        },
    ))
}

/// v0–3 answer one key at the top level, v4+ one coordinator per key; the node is Kafka's
/// `Node.noNode()` (id -1, empty host, port -1).
fn find_coordinator(r: &FindCoordinatorRequest, e: &Refusal) -> FindCoordinatorResponse {
    if e.version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(map(&r.coordinator_keys, |k| {
            find_coordinator_response::Coordinator::default()
                .with_key(k.clone())
                .with_node_id((-1).into())
                .with_port(-1)
                .with_error_code(e.code)
                .with_error_message(e.message())
        }));
    }
    let response = FindCoordinatorResponse::default().with_error_code(e.code).with_node_id((-1).into()).with_port(-1);
    // v0 has no message field; keep its default (an empty string, unlike other message fields).
    if e.version >= 1 {
        response.with_error_message(e.message())
    } else {
        response
    }
}

/// Kafka's unknown generation (-1), empty leader and member id, and a null protocol name from v7.
fn join_group(e: &Refusal) -> JoinGroupResponse {
    let response = JoinGroupResponse::default().with_error_code(e.code).with_generation_id(-1);
    if e.version >= 7 {
        response.with_protocol_name(None)
    } else {
        response
    }
}

/// v3+ name the leaving members: each gets the code too.
fn leave_group(r: &LeaveGroupRequest, e: &Refusal) -> LeaveGroupResponse {
    LeaveGroupResponse::default().with_error_code(e.code).with_members(map(&r.members, |m| {
        leave_group_response::MemberResponse::default()
            .with_member_id(m.member_id.clone())
            .with_group_instance_id(m.group_instance_id.clone())
            .with_error_code(e.code)
    }))
}

fn describe_groups(r: &DescribeGroupsRequest, e: &Refusal) -> DescribeGroupsResponse {
    DescribeGroupsResponse::default().with_groups(map(&r.groups, |g| {
        describe_groups_response::DescribedGroup::default()
            .with_group_id(g.clone())
            .with_error_code(e.code)
            .with_error_message(e.message_from(6))
    }))
}

/// Partition count and replication factor stay -1 (the defaults), as in Kafka's refusal.
fn create_topics(r: &CreateTopicsRequest, e: &Refusal) -> CreateTopicsResponse {
    CreateTopicsResponse::default().with_topics(map(&r.topics, |t| {
        create_topics_response::CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_error_code(e.code)
            .with_error_message(e.message())
    }))
}

/// v1–5 name topics in `topic_names`, v6 by name or id in `topics`; the answer copies either.
fn delete_topics(r: &DeleteTopicsRequest, e: &Refusal) -> DeleteTopicsResponse {
    let result = delete_topics_response::DeletableTopicResult::default;
    let by_name = r.topic_names.iter().map(|n| result().with_name(Some(n.clone())));
    let by_state = r.topics.iter().map(|t| result().with_name(t.name.clone()).with_topic_id(t.topic_id));
    DeleteTopicsResponse::default().with_responses(
        by_name.chain(by_state).map(|t| t.with_error_code(e.code).with_error_message(e.message_from(5))).collect(),
    )
}

fn delete_records(r: &DeleteRecordsRequest, e: &Refusal) -> DeleteRecordsResponse {
    DeleteRecordsResponse::default().with_topics(map(&r.topics, |t| {
        delete_records_response::DeleteRecordsTopicResult::default().with_name(t.name.clone()).with_partitions(map(
            &t.partitions,
            |p| {
                delete_records_response::DeleteRecordsPartitionResult::default()
                    .with_partition_index(p.partition_index)
                    .with_low_watermark(-1)
                    .with_error_code(e.code)
            },
        ))
    }))
}

fn init_producer_id(e: &Refusal) -> InitProducerIdResponse {
    InitProducerIdResponse::default().with_error_code(e.code).with_producer_id((-1).into()).with_producer_epoch(-1)
}

/// v0–3 answer per topic and partition; v4+ (brokers verifying transactions) also carry a
/// request-level error, and each transaction's partitions the code.
fn add_partitions_to_txn(r: &AddPartitionsToTxnRequest, e: &Refusal) -> AddPartitionsToTxnResponse {
    let topics = |topics: &[add_partitions_to_txn_request::AddPartitionsToTxnTopic]| {
        map(topics, |t| {
            add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(map(&t.partitions, |&p| {
                    add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p)
                        .with_partition_error_code(e.code)
                }))
        })
    };
    AddPartitionsToTxnResponse::default()
        .with_error_code(e.code_from(4))
        .with_results_by_topic_v3_and_below(topics(&r.v3_and_below_topics))
        .with_results_by_transaction(map(&r.transactions, |t| {
            add_partitions_to_txn_response::AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(topics(&t.topics))
        }))
}

fn txn_offset_commit(r: &TxnOffsetCommitRequest, e: &Refusal) -> TxnOffsetCommitResponse {
    TxnOffsetCommitResponse::default().with_topics(map(&r.topics, |t| {
        txn_offset_commit_response::TxnOffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(
            map(&t.partitions, |p| {
                txn_offset_commit_response::TxnOffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(e.code)
            }),
        )
    }))
}

fn describe_acls(e: &Refusal) -> DescribeAclsResponse {
    DescribeAclsResponse::default().with_error_code(e.code).with_error_message(e.message())
}

/// One result per ACL to create, in request order (results carry no other key).
fn create_acls(r: &CreateAclsRequest, e: &Refusal) -> CreateAclsResponse {
    CreateAclsResponse::default().with_results(map(&r.creations, |_| {
        create_acls_response::AclCreationResult::default().with_error_code(e.code).with_error_message(e.message())
    }))
}

/// One result per filter, in request order, matching no ACL.
fn delete_acls(r: &DeleteAclsRequest, e: &Refusal) -> DeleteAclsResponse {
    DeleteAclsResponse::default().with_filter_results(map(&r.filters, |_| {
        delete_acls_response::DeleteAclsFilterResult::default().with_error_code(e.code).with_error_message(e.message())
    }))
}

fn describe_configs(r: &DescribeConfigsRequest, e: &Refusal) -> DescribeConfigsResponse {
    DescribeConfigsResponse::default().with_results(map(&r.resources, |c| {
        describe_configs_response::DescribeConfigsResult::default()
            .with_resource_type(c.resource_type)
            .with_resource_name(c.resource_name.clone())
            .with_error_code(e.code)
            .with_error_message(e.message())
    }))
}

fn alter_configs(r: &AlterConfigsRequest, e: &Refusal) -> AlterConfigsResponse {
    AlterConfigsResponse::default().with_responses(map(&r.resources, |c| {
        alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(c.resource_type)
            .with_resource_name(c.resource_name.clone())
            .with_error_code(e.code)
            .with_error_message(e.message())
    }))
}

fn incremental_alter_configs(r: &IncrementalAlterConfigsRequest, e: &Refusal) -> IncrementalAlterConfigsResponse {
    IncrementalAlterConfigsResponse::default().with_responses(map(&r.resources, |c| {
        incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(c.resource_type)
            .with_resource_name(c.resource_name.clone())
            .with_error_code(e.code)
            .with_error_message(e.message())
    }))
}

/// One result per topic of every directory, in request order, as Kafka flattens them.
fn alter_replica_log_dirs(r: &AlterReplicaLogDirsRequest, e: &Refusal) -> AlterReplicaLogDirsResponse {
    let topics = r.dirs.iter().flat_map(|d| &d.topics);
    AlterReplicaLogDirsResponse::default().with_results(
        topics
            .map(|t| {
                alter_replica_log_dirs_response::AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(t.name.clone())
                    .with_partitions(map(&t.partitions, |&p| {
                        alter_replica_log_dirs_response::AlterReplicaLogDirPartitionResult::default()
                            .with_partition_index(p)
                            .with_error_code(e.code)
                    }))
            })
            .collect(),
    )
}

fn create_partitions(r: &CreatePartitionsRequest, e: &Refusal) -> CreatePartitionsResponse {
    CreatePartitionsResponse::default().with_results(map(&r.topics, |t| {
        create_partitions_response::CreatePartitionsTopicResult::default()
            .with_name(t.name.clone())
            .with_error_code(e.code)
            .with_error_message(e.message())
    }))
}

fn delete_groups(r: &DeleteGroupsRequest, e: &Refusal) -> DeleteGroupsResponse {
    DeleteGroupsResponse::default().with_results(map(&r.groups_names, |g| {
        delete_groups_response::DeletableGroupResult::default().with_group_id(g.clone()).with_error_code(e.code)
    }))
}

/// v1+ also carry a request-level error; a request for all partitions (null) names none.
fn elect_leaders(r: &ElectLeadersRequest, e: &Refusal) -> ElectLeadersResponse {
    ElectLeadersResponse::default().with_error_code(e.code_from(1)).with_replica_election_results(map(
        r.topic_partitions.as_deref().unwrap_or_default(),
        |t| {
            elect_leaders_response::ReplicaElectionResult::default().with_topic(t.topic.clone()).with_partition_result(
                map(&t.partitions, |&p| {
                    elect_leaders_response::PartitionResult::default()
                        .with_partition_id(p)
                        .with_error_code(e.code)
                        .with_error_message(e.message())
                }),
            )
        },
    ))
}

fn alter_partition_reassignments(
    r: &AlterPartitionReassignmentsRequest,
    e: &Refusal,
) -> AlterPartitionReassignmentsResponse {
    AlterPartitionReassignmentsResponse::default()
        .with_error_code(e.code)
        .with_error_message(e.message())
        .with_responses(map(&r.topics, |t| {
            alter_partition_reassignments_response::ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(map(&t.partitions, |p| {
                    alter_partition_reassignments_response::ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(e.code)
                        .with_error_message(e.message())
                }))
        }))
}

/// Only a request-level error: the topics of the answer are ongoing reassignments, which a refusal
/// has none of.
fn list_partition_reassignments(e: &Refusal) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default().with_error_code(e.code).with_error_message(e.message())
}

/// Kafka sets only the request-level error; the partitions get the code too.
fn offset_delete(r: &OffsetDeleteRequest, e: &Refusal) -> OffsetDeleteResponse {
    OffsetDeleteResponse::default().with_error_code(e.code).with_topics(map(&r.topics, |t| {
        offset_delete_response::OffsetDeleteResponseTopic::default().with_name(t.name.clone()).with_partitions(map(
            &t.partitions,
            |p| {
                offset_delete_response::OffsetDeleteResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(e.code)
            },
        ))
    }))
}

/// Null entries, as from Kafka.
fn describe_client_quotas(e: &Refusal) -> DescribeClientQuotasResponse {
    DescribeClientQuotasResponse::default().with_error_code(e.code).with_error_message(e.message()).with_entries(None)
}

fn alter_client_quotas(r: &AlterClientQuotasRequest, e: &Refusal) -> AlterClientQuotasResponse {
    AlterClientQuotasResponse::default().with_entries(map(&r.entries, |entry| {
        alter_client_quotas_response::EntryData::default()
            .with_error_code(e.code)
            .with_error_message(e.message())
            .with_entity(map(&entry.entity, |d| {
                alter_client_quotas_response::EntityData::default()
                    .with_entity_type(d.entity_type.clone())
                    .with_entity_name(d.entity_name.clone())
            }))
    }))
}

/// A request-level error and one result per named user (none for a request for all users).
fn describe_user_scram_credentials(
    r: &DescribeUserScramCredentialsRequest,
    e: &Refusal,
) -> DescribeUserScramCredentialsResponse {
    DescribeUserScramCredentialsResponse::default()
        .with_error_code(e.code)
        .with_error_message(e.message())
        .with_results(map(r.users.as_deref().unwrap_or_default(), |u| {
            describe_user_scram_credentials_response::DescribeUserScramCredentialsResult::default()
                .with_user(u.name.clone())
                .with_error_code(e.code)
                .with_error_message(e.message())
        }))
}

/// One result per user named by a deletion or an upsertion, sorted and without repeats as in Kafka.
fn alter_user_scram_credentials(
    r: &AlterUserScramCredentialsRequest,
    e: &Refusal,
) -> AlterUserScramCredentialsResponse {
    let deleted = r.deletions.iter().map(|d| &d.name);
    let users: BTreeSet<&StrBytes> = deleted.chain(r.upsertions.iter().map(|u| &u.name)).collect();
    AlterUserScramCredentialsResponse::default().with_results(
        users
            .into_iter()
            .map(|u| {
                alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default()
                    .with_user(u.clone())
                    .with_error_code(e.code)
                    .with_error_message(e.message())
            })
            .collect(),
    )
}

fn describe_producers(r: &DescribeProducersRequest, e: &Refusal) -> DescribeProducersResponse {
    DescribeProducersResponse::default().with_topics(map(&r.topics, |t| {
        describe_producers_response::TopicResponse::default().with_name(t.name.clone()).with_partitions(map(
            &t.partition_indexes,
            |&i| {
                describe_producers_response::PartitionResponse::default()
                    .with_partition_index(i)
                    .with_error_code(e.code)
                    .with_error_message(e.message())
            },
        ))
    }))
}

fn describe_transactions(r: &DescribeTransactionsRequest, e: &Refusal) -> DescribeTransactionsResponse {
    DescribeTransactionsResponse::default().with_transaction_states(map(&r.transactional_ids, |id| {
        describe_transactions_response::TransactionState::default()
            .with_transactional_id(id.clone())
            .with_error_code(e.code)
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api;
    use crate::body;
    use crate::generated::response_errors::response_error_codes;
    use std::fmt::Debug;
    use std::str::FromStr;

    /// POLICY_VIOLATION.
    const CODE: i16 = 44;
    const MESSAGE: &str = "refused by kafka-lens policy";
    /// The sample topics: names, and the last byte of their ids.
    const TOPICS: [(&str, u8); 2] = [("a", 1), ("b", 2)];

    fn text(s: &str) -> StrBytes {
        StrBytes::from_string(s.to_owned())
    }

    fn name(s: &str) -> TopicName {
        TopicName(text(s))
    }

    /// The topic id whose bytes are zero but the last, `n` (the nil id for 0). Generic because the
    /// crate does not re-export the `uuid` type, which parses from 32 hex digits.
    fn uuid<T: FromStr<Err: Debug>>(n: u8) -> T {
        format!("{n:032x}").parse().unwrap()
    }

    fn id_bytes(n: u8) -> [u8; 16] {
        let mut id = NO_ID;
        id[15] = n;
        id
    }

    /// `f(name, id)` for each sample topic: the name and the nil id, or an empty name and the id.
    fn topics<T>(by_id: bool, f: impl Fn(TopicName, u8) -> T) -> Vec<T> {
        TOPICS.iter().map(|&(n, i)| if by_id { f(TopicName::default(), i) } else { f(name(n), 0) }).collect()
    }

    /// `f(name)` for each sample topic name.
    fn named<T>(f: impl Fn(TopicName) -> T) -> Vec<T> {
        topics(false, |n, _| f(n))
    }

    fn strs(items: &[&str]) -> Vec<StrBytes> {
        items.iter().map(|s| text(s)).collect()
    }

    /// A request of `key` at `v` naming two entries (topics with partitions 0 and 1, groups,
    /// resources...), by id where the version names topics by id.
    pub(crate) fn sample(key: ApiKey, v: i16) -> RequestKind {
        let parts = vec![0, 1];
        match key {
            ApiKey::Produce => ProduceRequest::default()
                .with_acks(-1)
                .with_topic_data(topics(v >= 13, |n, i| {
                    produce_request::TopicProduceData::default()
                        .with_name(n)
                        .with_topic_id(uuid(i))
                        .with_partition_data(vec![produce_request::PartitionProduceData::default().with_index(0)])
                }))
                .into(),
            ApiKey::Fetch => FetchRequest::default()
                .with_topics(topics(v >= 13, |n, i| {
                    let p = |i| fetch_request::FetchPartition::default().with_partition(i);
                    fetch_request::FetchTopic::default()
                        .with_topic(n)
                        .with_topic_id(uuid(i))
                        .with_partitions(vec![p(0), p(1)])
                }))
                .into(),
            ApiKey::ListOffsets => ListOffsetsRequest::default()
                .with_topics(named(|n| {
                    let p = list_offsets_request::ListOffsetsPartition::default();
                    list_offsets_request::ListOffsetsTopic::default().with_name(n).with_partitions(vec![p])
                }))
                .into(),
            ApiKey::Metadata => MetadataRequest::default()
                .with_topics(Some(named(|n| metadata_request::MetadataRequestTopic::default().with_name(Some(n)))))
                .into(),
            ApiKey::OffsetCommit => OffsetCommitRequest::default()
                .with_group_id(text("g").into())
                .with_topics(named(|n| {
                    let p = offset_commit_request::OffsetCommitRequestPartition::default();
                    offset_commit_request::OffsetCommitRequestTopic::default().with_name(n).with_partitions(vec![p])
                }))
                .into(),
            ApiKey::OffsetFetch if v >= 8 => OffsetFetchRequest::default()
                .with_groups(vec![offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(text("g").into())
                    .with_topics(Some(named(|n| {
                        offset_fetch_request::OffsetFetchRequestTopics::default()
                            .with_name(n)
                            .with_partition_indexes(parts.clone())
                    })))])
                .into(),
            ApiKey::OffsetFetch => OffsetFetchRequest::default()
                .with_group_id(text("g").into())
                .with_topics(Some(named(|n| {
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(n)
                        .with_partition_indexes(parts.clone())
                })))
                .into(),
            ApiKey::FindCoordinator if v >= 4 => {
                FindCoordinatorRequest::default().with_coordinator_keys(strs(&["g", "h"])).into()
            }
            ApiKey::FindCoordinator => FindCoordinatorRequest::default().with_key(text("g")).into(),
            ApiKey::JoinGroup => {
                JoinGroupRequest::default().with_group_id(text("g").into()).with_protocol_type(text("consumer")).into()
            }
            ApiKey::Heartbeat => HeartbeatRequest::default().with_group_id(text("g").into()).into(),
            ApiKey::LeaveGroup if v >= 3 => LeaveGroupRequest::default()
                .with_group_id(text("g").into())
                .with_members(
                    strs(&["m1", "m2"])
                        .into_iter()
                        .map(|m| leave_group_request::MemberIdentity::default().with_member_id(m))
                        .collect(),
                )
                .into(),
            ApiKey::LeaveGroup => {
                LeaveGroupRequest::default().with_group_id(text("g").into()).with_member_id(text("m1")).into()
            }
            ApiKey::SyncGroup => SyncGroupRequest::default().with_group_id(text("g").into()).into(),
            ApiKey::DescribeGroups => {
                DescribeGroupsRequest::default().with_groups(vec![text("g").into(), text("h").into()]).into()
            }
            ApiKey::ListGroups => ListGroupsRequest::default().into(),
            ApiKey::CreateTopics => CreateTopicsRequest::default()
                .with_topics(named(|n| {
                    create_topics_request::CreatableTopic::default()
                        .with_name(n)
                        .with_num_partitions(1)
                        .with_replication_factor(1)
                }))
                .into(),
            ApiKey::DeleteTopics if v >= 6 => DeleteTopicsRequest::default()
                .with_topics(topics(true, |_, i| {
                    delete_topics_request::DeleteTopicState::default().with_topic_id(uuid(i))
                }))
                .into(),
            ApiKey::DeleteTopics => DeleteTopicsRequest::default().with_topic_names(named(|n| n)).into(),
            ApiKey::DeleteRecords => DeleteRecordsRequest::default()
                .with_topics(named(|n| {
                    let p = |i| delete_records_request::DeleteRecordsPartition::default().with_partition_index(i);
                    delete_records_request::DeleteRecordsTopic::default().with_name(n).with_partitions(vec![p(0), p(1)])
                }))
                .into(),
            ApiKey::InitProducerId => InitProducerIdRequest::default().into(),
            ApiKey::AddPartitionsToTxn => {
                let txn_topics = named(|n| {
                    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                        .with_name(n)
                        .with_partitions(parts.clone())
                });
                if v >= 4 {
                    let txn = add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                        .with_transactional_id(text("t").into())
                        .with_topics(txn_topics);
                    AddPartitionsToTxnRequest::default().with_transactions(vec![txn]).into()
                } else {
                    AddPartitionsToTxnRequest::default().with_v3_and_below_topics(txn_topics).into()
                }
            }
            ApiKey::AddOffsetsToTxn => AddOffsetsToTxnRequest::default().with_group_id(text("g").into()).into(),
            ApiKey::EndTxn => EndTxnRequest::default().with_transactional_id(text("t").into()).into(),
            ApiKey::TxnOffsetCommit => TxnOffsetCommitRequest::default()
                .with_topics(named(|n| {
                    let p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
                    txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                        .with_name(n)
                        .with_partitions(vec![p])
                }))
                .into(),
            ApiKey::DescribeAcls => DescribeAclsRequest::default().into(),
            ApiKey::CreateAcls => {
                let acl = create_acls_request::AclCreation::default().with_resource_name(text("a"));
                CreateAclsRequest::default().with_creations(vec![acl.clone(), acl]).into()
            }
            ApiKey::DeleteAcls => {
                let filter = delete_acls_request::DeleteAclsFilter::default();
                DeleteAclsRequest::default().with_filters(vec![filter.clone(), filter]).into()
            }
            ApiKey::DescribeConfigs => DescribeConfigsRequest::default()
                .with_resources(vec![
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(TOPIC_RESOURCE)
                        .with_resource_name(text("a")),
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(4)
                        .with_resource_name(text("1")),
                ])
                .into(),
            ApiKey::AlterConfigs => AlterConfigsRequest::default()
                .with_resources(vec![alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(TOPIC_RESOURCE)
                    .with_resource_name(text("a"))])
                .into(),
            ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::default()
                .with_resources(vec![incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(TOPIC_RESOURCE)
                    .with_resource_name(text("a"))])
                .into(),
            ApiKey::AlterReplicaLogDirs => AlterReplicaLogDirsRequest::default()
                .with_dirs(vec![alter_replica_log_dirs_request::AlterReplicaLogDir::default()
                    .with_path(text("/d"))
                    .with_topics(named(|n| {
                        alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default()
                            .with_name(n)
                            .with_partitions(parts.clone())
                    }))])
                .into(),
            ApiKey::DescribeLogDirs => DescribeLogDirsRequest::default()
                .with_topics(Some(named(|n| {
                    describe_log_dirs_request::DescribableLogDirTopic::default()
                        .with_topic(n)
                        .with_partitions(parts.clone())
                })))
                .into(),
            ApiKey::CreatePartitions => CreatePartitionsRequest::default()
                .with_topics(named(|n| {
                    create_partitions_request::CreatePartitionsTopic::default().with_name(n).with_count(3)
                }))
                .into(),
            ApiKey::DeleteGroups => {
                DeleteGroupsRequest::default().with_groups_names(vec![text("g").into(), text("h").into()]).into()
            }
            ApiKey::ElectLeaders => ElectLeadersRequest::default()
                .with_topic_partitions(Some(named(|n| {
                    elect_leaders_request::TopicPartitions::default().with_topic(n).with_partitions(parts.clone())
                })))
                .into(),
            ApiKey::AlterPartitionReassignments => AlterPartitionReassignmentsRequest::default()
                .with_topics(named(|n| {
                    let p = alter_partition_reassignments_request::ReassignablePartition::default();
                    alter_partition_reassignments_request::ReassignableTopic::default()
                        .with_name(n)
                        .with_partitions(vec![p])
                }))
                .into(),
            ApiKey::ListPartitionReassignments => ListPartitionReassignmentsRequest::default()
                .with_topics(Some(named(|n| {
                    list_partition_reassignments_request::ListPartitionReassignmentsTopics::default()
                        .with_name(n)
                        .with_partition_indexes(parts.clone())
                })))
                .into(),
            ApiKey::OffsetDelete => OffsetDeleteRequest::default()
                .with_group_id(text("g").into())
                .with_topics(named(|n| {
                    let p = offset_delete_request::OffsetDeleteRequestPartition::default();
                    offset_delete_request::OffsetDeleteRequestTopic::default().with_name(n).with_partitions(vec![p])
                }))
                .into(),
            ApiKey::DescribeClientQuotas => DescribeClientQuotasRequest::default().into(),
            ApiKey::AlterClientQuotas => {
                let entity = alter_client_quotas_request::EntityData::default()
                    .with_entity_type(text("user"))
                    .with_entity_name(Some(text("alice")));
                let entry = alter_client_quotas_request::EntryData::default().with_entity(vec![entity]);
                AlterClientQuotasRequest::default().with_entries(vec![entry]).into()
            }
            ApiKey::DescribeUserScramCredentials => {
                let user = |u| describe_user_scram_credentials_request::UserName::default().with_name(text(u));
                DescribeUserScramCredentialsRequest::default().with_users(Some(vec![user("alice"), user("bob")])).into()
            }
            ApiKey::AlterUserScramCredentials => {
                let upsert =
                    |u| alter_user_scram_credentials_request::ScramCredentialUpsertion::default().with_name(text(u));
                let delete =
                    alter_user_scram_credentials_request::ScramCredentialDeletion::default().with_name(text("bob"));
                AlterUserScramCredentialsRequest::default()
                    .with_deletions(vec![delete])
                    .with_upsertions(vec![upsert("bob"), upsert("alice")])
                    .into()
            }
            ApiKey::DescribeProducers => DescribeProducersRequest::default()
                .with_topics(named(|n| {
                    describe_producers_request::TopicRequest::default()
                        .with_name(n)
                        .with_partition_indexes(parts.clone())
                }))
                .into(),
            ApiKey::DescribeTransactions => DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![text("t1").into(), text("t2").into()])
                .into(),
            ApiKey::ListTransactions => ListTransactionsRequest::default().into(),
            other => panic!("no sample for {other:?}"),
        }
    }

    /// `request` as the filter sees it: encoded at `v` and decoded again.
    pub(crate) fn off_the_wire(key: ApiKey, v: i16, request: &RequestKind) -> RequestKind {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(v)
            .with_correlation_id(7);
        let frame = body::encode_request(&header, request).unwrap_or_else(|e| panic!("{key:?} v{v} sample: {e}"));
        body::decode_request(&frame.slice(4..)).unwrap_or_else(|e| panic!("{key:?} v{v} sample: {e}")).body
    }

    /// The response as the client reads it: encoded with correlation id 7 and decoded at `v`.
    pub(crate) fn client_reads(key: ApiKey, v: i16, response: &ResponseKind) -> ResponseKind {
        let header = ResponseHeader::default().with_correlation_id(7);
        let frame = body::encode_response(&header, response, key, v).unwrap_or_else(|e| panic!("{key:?} v{v}: {e}"));
        let decoded = body::decode_response(&frame.slice(4..), key, v).unwrap_or_else(|e| panic!("{key:?} v{v}: {e}"));
        assert_eq!(decoded.header.correlation_id, 7, "{key:?} v{v}");
        decoded.body
    }

    fn error_codes(response: &ResponseKind) -> Vec<i16> {
        let mut codes = Vec::new();
        response_error_codes(response, &mut |c| codes.push(c));
        codes
    }

    /// Error-code fields the walker reports that carry no refusal: request-level fields the
    /// version does not have (decoded as 0), and CreateTopics' per-topic config error (v5+, walked
    /// at every version), which brokers set only for topics they created.
    fn unread_error_fields(key: ApiKey, v: i16) -> usize {
        match key {
            ApiKey::Fetch => usize::from(v < 7),
            ApiKey::Metadata => usize::from(v < 13),
            ApiKey::FindCoordinator => usize::from(v >= 4),
            ApiKey::OffsetFetch => usize::from(!(2..=7).contains(&v)),
            ApiKey::ElectLeaders => usize::from(v < 1),
            ApiKey::DescribeLogDirs => usize::from(v < 3),
            ApiKey::AddPartitionsToTxn => usize::from(v < 4),
            ApiKey::CreateTopics => TOPICS.len(),
            _ => 0,
        }
    }

    /// The first version of `key` whose response has an error-message field.
    fn message_since(key: ApiKey) -> Option<i16> {
        match key {
            ApiKey::Produce => Some(8),
            ApiKey::FindCoordinator => Some(1),
            ApiKey::DescribeGroups => Some(6),
            ApiKey::DeleteTopics => Some(5),
            ApiKey::CreateTopics
            | ApiKey::DescribeAcls
            | ApiKey::CreateAcls
            | ApiKey::DeleteAcls
            | ApiKey::DescribeConfigs
            | ApiKey::AlterConfigs
            | ApiKey::IncrementalAlterConfigs
            | ApiKey::CreatePartitions
            | ApiKey::ElectLeaders
            | ApiKey::AlterPartitionReassignments
            | ApiKey::ListPartitionReassignments
            | ApiKey::DescribeClientQuotas
            | ApiKey::AlterClientQuotas
            | ApiKey::DescribeUserScramCredentials
            | ApiKey::AlterUserScramCredentials
            | ApiKey::DescribeProducers => Some(0),
            _ => None,
        }
    }

    #[test]
    fn refusal_of_every_api_and_version_decodes_with_the_code_everywhere() {
        let mut checked = 0;
        for key in ApiKey::iter().filter(|k| can_answer(*k)) {
            let versions = api::versions(key);
            assert!(versions.min <= versions.max, "{key:?} has no version the codec knows");
            for v in versions.min..=versions.max {
                let request = off_the_wire(key, v, &sample(key, v));
                let response = error_response(&request, v, CODE, Some(MESSAGE)).unwrap();
                let read = client_reads(key, v, &response);
                assert_eq!(read, response, "{key:?} v{v}: the response lost fields in encoding");

                let codes = error_codes(&read);
                assert!(codes.iter().all(|&c| c == CODE || c == 0), "{key:?} v{v}: {codes:?}");
                let zeros = codes.iter().filter(|&&c| c == 0).count();
                assert_eq!(zeros, unread_error_fields(key, v), "{key:?} v{v}: {codes:?}");
                // DescribeLogDirs v1–2 have no request-level error, and a refusal names no log
                // directory: clients read the empty answer as an authorization failure.
                if !(key == ApiKey::DescribeLogDirs && v < 3) {
                    assert!(codes.contains(&CODE), "{key:?} v{v}: no error code in {read:?}");
                }
                let has_message = message_since(key).is_some_and(|since| v >= since);
                assert_eq!(format!("{read:?}").contains(MESSAGE), has_message, "{key:?} v{v} message: {read:?}");
                checked += 1;
            }
        }
        assert!(checked > 150, "only {checked} versions checked");
    }

    macro_rules! default_requests {
        ($($name:ident),* $(,)?) => {
            fn default_request(key: ApiKey) -> RequestKind {
                #[allow(unreachable_patterns)]
                match key {
                    $(ApiKey::$name => RequestKind::$name(Default::default()),)*
                    other => panic!("{other:?} missing from for_every_api!"),
                }
            }
        };
    }
    crate::for_every_api!(default_requests);

    #[test]
    fn refusal_can_answer_names_exactly_the_apis_error_response_builds() {
        for key in ApiKey::iter() {
            let built = error_response(&default_request(key), api::versions(key).max, CODE, None);
            assert_eq!(can_answer(key), built.is_some(), "{key:?}");
        }
        for key in [ApiKey::ApiVersions, ApiKey::SaslHandshake, ApiKey::SaslAuthenticate] {
            assert!(!can_answer(key), "{key:?}");
        }
    }

    #[test]
    fn refusal_keeps_request_order_and_kafkas_unknown_values() {
        let request = off_the_wire(ApiKey::Produce, 9, &sample(ApiKey::Produce, 9));
        let Some(ResponseKind::Produce(r)) = error_response(&request, 9, CODE, Some(MESSAGE)) else { panic!() };
        let names: Vec<&str> = r.responses.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let p = &r.responses[1].partition_responses[0];
        assert_eq!((p.base_offset, p.log_append_time_ms, p.log_start_offset), (-1, -1, -1));
        assert_eq!(p.error_message.as_deref(), Some(MESSAGE));

        // An all-topics Metadata request is answered with no topics and no brokers.
        let all = MetadataRequest::default().with_topics(None).into();
        let Some(ResponseKind::Metadata(m)) = error_response(&all, 12, CODE, None) else { panic!() };
        assert!(m.topics.is_empty() && m.brokers.is_empty());

        // Fetch: the request-level error from v7, every partition's always.
        let fetch = sample(ApiKey::Fetch, 13);
        let Some(ResponseKind::Fetch(f)) = error_response(&fetch, 13, CODE, None) else { panic!() };
        assert_eq!((f.error_code, f.session_id), (CODE, 0));
        assert_eq!(*f.responses[1].topic_id.as_bytes(), id_bytes(2));
        assert_eq!(f.responses[1].partitions[1].high_watermark, -1);

        // Users answered once each, sorted.
        let scram = sample(ApiKey::AlterUserScramCredentials, 0);
        let Some(ResponseKind::AlterUserScramCredentials(s)) = error_response(&scram, 0, CODE, None) else { panic!() };
        let users: Vec<&str> = s.results.iter().map(|u| u.user.as_str()).collect();
        assert_eq!(users, ["alice", "bob"]);
    }

    /// Splits `request` refusing what `refuse` picks, answers the kept part as a broker that
    /// accepts it (code 0), the refused part with the refusal, and merges the two answers.
    fn split_and_merge(
        key: ApiKey,
        v: i16,
        request: &RequestKind,
        refuse: &dyn Fn(&str, &[u8; 16]) -> bool,
    ) -> (RequestKind, RequestKind, ResponseKind) {
        let (kept, refused) = split_topics(request, &mut |n, id| refuse(n, id)).unwrap();
        let mut answer = client_reads(key, v, &error_response(&off_the_wire(key, v, &kept), v, 0, None).unwrap());
        let refusal = error_response(&refused, v, CODE, Some(MESSAGE)).unwrap();
        assert!(merge_topic_results(&mut answer, refusal));
        (kept, refused, client_reads(key, v, &answer))
    }

    #[test]
    fn refusal_split_produce_refuses_only_the_picked_topic() {
        let request = sample(ApiKey::Produce, 9);
        let (kept, refused, merged) = split_and_merge(ApiKey::Produce, 9, &request, &|n, _| n == "b");
        assert_eq!(request_topics(&kept), [("a".to_owned(), NO_ID)]);
        assert_eq!(request_topics(&refused), [("b".to_owned(), NO_ID)]);
        let ResponseKind::Produce(r) = merged else { panic!() };
        let codes: Vec<(&str, i16)> =
            r.responses.iter().map(|t| (t.name.as_str(), t.partition_responses[0].error_code)).collect();
        assert_eq!(codes, [("a", 0), ("b", CODE)]);

        // By id (v13).
        let request = sample(ApiKey::Produce, 13);
        let (kept, refused, merged) = split_and_merge(ApiKey::Produce, 13, &request, &|_, id| *id == id_bytes(2));
        assert_eq!(request_topics(&kept), [(String::new(), id_bytes(1))]);
        assert_eq!(request_topics(&refused), [(String::new(), id_bytes(2))]);
        let ResponseKind::Produce(r) = merged else { panic!() };
        let codes: Vec<i16> = r.responses.iter().map(|t| t.partition_responses[0].error_code).collect();
        assert_eq!(codes, [0, CODE]);
        assert_eq!(*r.responses[1].topic_id.as_bytes(), id_bytes(2));
    }

    #[test]
    fn refusal_split_create_topics_refuses_only_the_picked_topic() {
        let request = sample(ApiKey::CreateTopics, 7);
        let (kept, refused, merged) = split_and_merge(ApiKey::CreateTopics, 7, &request, &|n, _| n == "b");
        assert_eq!(request_topics(&kept), [("a".to_owned(), NO_ID)]);
        assert_eq!(request_topics(&refused), [("b".to_owned(), NO_ID)]);
        let ResponseKind::CreateTopics(r) = merged else { panic!() };
        let codes: Vec<(&str, i16)> = r.topics.iter().map(|t| (t.name.as_str(), t.error_code)).collect();
        assert_eq!(codes, [("a", 0), ("b", CODE)]);
        assert_eq!(r.topics[1].error_message.as_deref(), Some(MESSAGE));
    }

    #[test]
    fn refusal_split_delete_topics_by_name_and_by_id() {
        let request = sample(ApiKey::DeleteTopics, 5);
        let (kept, refused, merged) = split_and_merge(ApiKey::DeleteTopics, 5, &request, &|n, _| n == "a");
        assert_eq!(request_topics(&kept), [("b".to_owned(), NO_ID)]);
        assert_eq!(request_topics(&refused), [("a".to_owned(), NO_ID)]);
        let ResponseKind::DeleteTopics(r) = merged else { panic!() };
        let codes: Vec<(Option<&str>, i16)> =
            r.responses.iter().map(|t| (t.name.as_deref().map(|n| n.as_str()), t.error_code)).collect();
        assert_eq!(codes, [(Some("b"), 0), (Some("a"), CODE)]);

        let request = sample(ApiKey::DeleteTopics, 6);
        let (kept, refused, merged) = split_and_merge(ApiKey::DeleteTopics, 6, &request, &|_, id| *id == id_bytes(2));
        assert_eq!(request_topics(&kept), [(String::new(), id_bytes(1))]);
        assert_eq!(request_topics(&refused), [(String::new(), id_bytes(2))]);
        let ResponseKind::DeleteTopics(r) = merged else { panic!() };
        let codes: Vec<i16> = r.responses.iter().map(|t| t.error_code).collect();
        assert_eq!(codes, [0, CODE]);
        assert_eq!(*r.responses[1].topic_id.as_bytes(), id_bytes(2));
    }

    #[test]
    fn refusal_split_fetch_keeps_forgotten_topics_with_the_kept_part() {
        let RequestKind::Fetch(fetch) = sample(ApiKey::Fetch, 12) else { panic!() };
        let forgotten = fetch_request::ForgottenTopic::default().with_topic(name("c")).with_partitions(vec![0]);
        let request = fetch.with_forgotten_topics_data(vec![forgotten]).into();
        let (kept, refused, merged) = split_and_merge(ApiKey::Fetch, 12, &request, &|n, _| n == "a");
        let (RequestKind::Fetch(kept), RequestKind::Fetch(refused)) = (kept, refused) else { panic!() };
        assert_eq!(kept.forgotten_topics_data.len(), 1);
        assert!(refused.forgotten_topics_data.is_empty());
        let ResponseKind::Fetch(r) = merged else { panic!() };
        let codes: Vec<(&str, i16)> =
            r.responses.iter().map(|t| (t.topic.as_str(), t.partitions[0].error_code)).collect();
        assert_eq!(codes, [("b", 0), ("a", CODE)]);
        assert_eq!(r.error_code, 0, "the request-level error is the broker's");
    }

    #[test]
    fn refusal_split_is_none_for_requests_not_keyed_by_topic() {
        let mut refuse_all = |_: &str, _: &[u8; 16]| true;
        assert!(split_topics(&sample(ApiKey::Metadata, 12), &mut refuse_all).is_none());
        assert!(split_topics(&sample(ApiKey::JoinGroup, 9), &mut refuse_all).is_none());
        assert!(split_topics(&sample(ApiKey::OffsetFetch, 8), &mut refuse_all).is_none());
        assert!(split_topics(&sample(ApiKey::AddPartitionsToTxn, 4), &mut refuse_all).is_none());
        let all_topics = OffsetFetchRequest::default().with_topics(None).into();
        assert!(split_topics(&all_topics, &mut refuse_all).is_none());
        assert!(split_topics(&sample(ApiKey::OffsetFetch, 7), &mut refuse_all).is_some());
        assert!(split_topics(&sample(ApiKey::AddPartitionsToTxn, 3), &mut refuse_all).is_some());
    }

    #[test]
    fn refusal_merge_refuses_different_or_untopical_apis() {
        let produce = error_response(&sample(ApiKey::Produce, 9), 9, 0, None).unwrap();
        let mut into = produce.clone();
        let other = error_response(&sample(ApiKey::CreateTopics, 7), 7, CODE, None).unwrap();
        assert!(!merge_topic_results(&mut into, other));
        assert_eq!(into, produce);
        let mut join = error_response(&sample(ApiKey::JoinGroup, 9), 9, 0, None).unwrap();
        let join_too = join.clone();
        assert!(!merge_topic_results(&mut join, join_too));
        // OffsetFetch v8+ answers per group.
        let groups = error_response(&sample(ApiKey::OffsetFetch, 8), 8, CODE, None).unwrap();
        let mut into = error_response(&sample(ApiKey::OffsetFetch, 8), 8, 0, None).unwrap();
        assert!(!merge_topic_results(&mut into, groups));
    }

    #[test]
    fn refusal_request_topics_by_name_and_by_id() {
        assert_eq!(
            request_topics(&sample(ApiKey::Produce, 13)),
            [(String::new(), id_bytes(1)), (String::new(), id_bytes(2))]
        );
        assert_eq!(
            request_topics(&sample(ApiKey::Fetch, 13)),
            [(String::new(), id_bytes(1)), (String::new(), id_bytes(2))]
        );
        assert_eq!(request_topics(&sample(ApiKey::Fetch, 12)), [("a".to_owned(), NO_ID), ("b".to_owned(), NO_ID)]);
        assert_eq!(
            request_topics(&sample(ApiKey::DeleteTopics, 6)),
            [(String::new(), id_bytes(1)), (String::new(), id_bytes(2))]
        );
        assert_eq!(request_topics(&sample(ApiKey::OffsetFetch, 8)).len(), 2);
        // Config resources count only when they are topics.
        assert_eq!(request_topics(&sample(ApiKey::DescribeConfigs, 4)), [("a".to_owned(), NO_ID)]);
        assert!(request_topics(&sample(ApiKey::JoinGroup, 9)).is_empty());
        assert!(request_topics(&MetadataRequest::default().with_topics(None).into()).is_empty());
    }
}
