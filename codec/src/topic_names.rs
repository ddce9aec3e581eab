//! Topic names, consumer group ids and transactional ids in requests and responses, for renaming
//! (rename maps, per-tenant prefixes) in both directions.
//!
//! The walkers are generated (`codec/gen/generate.py` → [`crate::generated::names`]) from the
//! kafka-protocol crate's message types: every field Kafka's message specs mark
//! `entityType: topicName`, `groupId` or `transactionalId` (typed `TopicName`, `GroupId`,
//! `TransactionalId` by the crate), in every request and response of every API and version the
//! codec decodes, at every nesting level. An API added to the crate is covered by regenerating,
//! and `generate.py --check` fails until then.
//!
//! [`request_names_mut`] and [`response_names_mut`] call the visitor with the [`NameKind`] and a
//! mutable [`StrBytes`], so a rename is a closure replacing the bytes. A decoded body holds the
//! fields of every version; fields absent at the decoded version are visited with their default
//! (empty) value and not encoded, so a rename should leave empty names alone.
//!
//! Not covered here, because the crate types them as plain strings (or opaque bytes) rather than
//! name newtypes; handled by hand later:
//!
//! * resource names of DescribeConfigs, AlterConfigs, IncrementalAlterConfigs and
//!   ListConfigResources (`resource_name`, a topic only for resource type 2), and of the ACL APIs
//!   CreateAcls, DescribeAcls, DeleteAcls (`resource_name`, `resource_name_filter`, with pattern
//!   types literal/prefixed);
//! * FindCoordinator's `key` / `coordinator_keys` (a group id or a transactional id by
//!   `key_type`);
//! * ListTransactions' `transactional_id_pattern`, ConsumerGroupHeartbeat's
//!   `subscribed_topic_regex` (and ConsumerGroupDescribe's);
//! * the broker-internal share group state APIs (InitializeShareGroupState, ReadShareGroupState,
//!   WriteShareGroupState, DeleteShareGroupState, ReadShareGroupStateSummary), whose `group_id`
//!   is a plain string;
//! * topic names inside the embedded consumer protocol (JoinGroup protocol metadata, SyncGroup
//!   assignments, DescribeGroups member metadata and assignments), which the crate carries as
//!   opaque bytes.
//!
//! Fetch (v13+) and other APIs that address topics by topic id carry no name to rewrite there.

pub use crate::generated::names::{
    request_names_mut, response_names_mut, NameKind, Names, APIS_WITH_GROUP_IDS_IN_REQUESTS,
    APIS_WITH_GROUP_IDS_IN_RESPONSES, APIS_WITH_TOPIC_NAMES_IN_REQUESTS, APIS_WITH_TOPIC_NAMES_IN_RESPONSES,
    APIS_WITH_TRANSACTIONAL_IDS_IN_REQUESTS, APIS_WITH_TRANSACTIONAL_IDS_IN_RESPONSES,
};
pub use kafka_protocol::protocol::StrBytes;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::body;
    use bytes::Bytes;
    use kafka_protocol::messages::*;

    fn s(v: &str) -> StrBytes {
        StrBytes::from_string(v.to_owned())
    }

    fn prefix(kind: NameKind) -> &'static str {
        match kind {
            NameKind::Topic => "t.",
            NameKind::Group => "g.",
            NameKind::TransactionalId => "x.",
        }
    }

    /// Client view → broker view: every non-empty name gets its kind's prefix.
    fn add_prefix(kind: NameKind, name: &mut StrBytes) {
        if !name.is_empty() {
            *name = s(&format!("{}{}", prefix(kind), name.as_str()));
        }
    }

    /// Broker view → client view: strips the prefix, which every non-empty name must carry.
    fn strip_prefix(kind: NameKind, name: &mut StrBytes) {
        if !name.is_empty() {
            let stripped = name.as_str().strip_prefix(prefix(kind)).unwrap_or_else(|| panic!("{kind:?} {name:?} lacks its prefix"));
            *name = s(stripped);
        }
    }

    #[derive(Clone)]
    enum Body {
        Request(RequestKind),
        Response(ResponseKind),
    }

    impl Body {
        fn names_mut(&mut self, f: &mut dyn FnMut(NameKind, &mut StrBytes)) {
            match self {
                Body::Request(r) => request_names_mut(r, f),
                Body::Response(r) => response_names_mut(r, f),
            }
        }

        fn names(&self) -> Vec<(NameKind, String)> {
            let mut out = Vec::new();
            self.clone().names_mut(&mut |kind, name| {
                if !name.is_empty() {
                    out.push((kind, name.as_str().to_owned()));
                }
            });
            out
        }

        fn encode(&self, key: ApiKey, version: i16) -> Bytes {
            match self {
                Body::Request(r) => {
                    let header = RequestHeader::default()
                        .with_request_api_key(key as i16)
                        .with_request_api_version(version)
                        .with_correlation_id(7)
                        .with_client_id(Some(s("client")));
                    body::encode_request(&header, r).unwrap()
                }
                Body::Response(r) => body::encode_response(&ResponseHeader::default().with_correlation_id(7), r, key, version).unwrap(),
            }
        }

        fn decode(&self, frame: &Bytes, key: ApiKey, version: i16) -> Body {
            let frame = frame.slice(4..);
            match self {
                Body::Request(_) => {
                    let request = body::decode_request(&frame).unwrap();
                    assert_eq!(request.api_key, key);
                    Body::Request(request.body)
                }
                Body::Response(_) => Body::Response(body::decode_response(&frame, key, version).unwrap().body),
            }
        }
    }

    /// Renames every name of `body` on the way to the broker, through the wire at `version`, and
    /// back, checking each step: the names visited are `expected`, each is prefixed on the wire,
    /// and stripping the prefixes restores the client's frame byte for byte.
    fn check(key: ApiKey, version: i16, body: Body, expected: &[(NameKind, &str)]) {
        // The message as the wire at this version carries it (fields of other versions dropped).
        let client_frame = body.encode(key, version);
        let client = body.decode(&client_frame, key, version);
        let names = client.names();
        let mut expected: Vec<(NameKind, String)> = expected.iter().map(|(k, n)| (*k, (*n).to_owned())).collect();
        let mut got = names.clone();
        expected.sort_by(|a, b| (format!("{:?}", a.0), &a.1).cmp(&(format!("{:?}", b.0), &b.1)));
        got.sort_by(|a, b| (format!("{:?}", a.0), &a.1).cmp(&(format!("{:?}", b.0), &b.1)));
        assert_eq!(got, expected, "{key:?} v{version}: names visited");

        let mut broker = client.clone();
        broker.names_mut(&mut add_prefix);
        let broker_frame = broker.encode(key, version);
        let broker = body.decode(&broker_frame, key, version);
        let renamed = broker.names();
        assert_eq!(renamed.len(), names.len(), "{key:?} v{version}");
        for ((kind, before), (kind_after, after)) in names.iter().zip(&renamed) {
            assert_eq!(kind, kind_after);
            assert_eq!(after, &format!("{}{before}", prefix(*kind)), "{key:?} v{version}");
        }

        let mut back = broker;
        back.names_mut(&mut strip_prefix);
        assert_eq!(back.encode(key, version), client_frame, "{key:?} v{version}: client → broker → client is not identity");
    }

    use NameKind::{Group, Topic, TransactionalId as Txn};

    #[test]
    fn produce_request_topics_and_transactional_id() {
        let topic = |n: &str| produce_request::TopicProduceData::default().with_name(TopicName(s(n)));
        let body = ProduceRequest::default()
            .with_transactional_id(Some(TransactionalId(s("tx"))))
            .with_topic_data(vec![topic("a"), topic("b")]);
        for version in [3, 9, 12] {
            check(ApiKey::Produce, version, Body::Request(RequestKind::Produce(body.clone())), &[(Txn, "tx"), (Topic, "a"), (Topic, "b")]);
        }
    }

    #[test]
    fn fetch_request_and_response_topics() {
        let request = FetchRequest::default().with_topics(vec![fetch_request::FetchTopic::default().with_topic(TopicName(s("a")))]);
        let response = FetchResponse::default().with_responses(vec![fetch_response::FetchableTopicResponse::default().with_topic(TopicName(s("a")))]);
        for version in [4, 12] {
            check(ApiKey::Fetch, version, Body::Request(RequestKind::Fetch(request.clone())), &[(Topic, "a")]);
            check(ApiKey::Fetch, version, Body::Response(ResponseKind::Fetch(response.clone())), &[(Topic, "a")]);
        }
        // From v13 topics go by id: no name on the wire.
        check(ApiKey::Fetch, 13, Body::Request(RequestKind::Fetch(request)), &[]);
    }

    #[test]
    fn metadata_optional_names() {
        let request = MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s("a")))),
            metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s("b")))),
        ]));
        let response = MetadataResponse::default()
            .with_topics(vec![metadata_response::MetadataResponseTopic::default().with_name(Some(TopicName(s("a"))))]);
        for version in [0, 9, 12, 13] {
            check(ApiKey::Metadata, version, Body::Request(RequestKind::Metadata(request.clone())), &[(Topic, "a"), (Topic, "b")]);
            check(ApiKey::Metadata, version, Body::Response(ResponseKind::Metadata(response.clone())), &[(Topic, "a")]);
        }
        // All topics (null array) has nothing to visit.
        check(ApiKey::Metadata, 12, Body::Request(RequestKind::Metadata(MetadataRequest::default().with_topics(None))), &[]);
    }

    #[test]
    fn offset_commit_group_and_topics() {
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(s("grp")))
            .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("a")))
                .with_partitions(vec![offset_commit_request::OffsetCommitRequestPartition::default()])]);
        let response = OffsetCommitResponse::default()
            .with_topics(vec![offset_commit_response::OffsetCommitResponseTopic::default().with_name(TopicName(s("a")))]);
        for version in [2, 8] {
            check(ApiKey::OffsetCommit, version, Body::Request(RequestKind::OffsetCommit(request.clone())), &[(Group, "grp"), (Topic, "a")]);
            check(ApiKey::OffsetCommit, version, Body::Response(ResponseKind::OffsetCommit(response.clone())), &[(Topic, "a")]);
        }
    }

    #[test]
    fn create_and_delete_topics() {
        let create = CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default().with_name(TopicName(s("new")))]);
        let created = CreateTopicsResponse::default().with_topics(vec![create_topics_response::CreatableTopicResult::default().with_name(TopicName(s("new")))]);
        for version in [2, 5, 7] {
            check(ApiKey::CreateTopics, version, Body::Request(RequestKind::CreateTopics(create.clone())), &[(Topic, "new")]);
            check(ApiKey::CreateTopics, version, Body::Response(ResponseKind::CreateTopics(created.clone())), &[(Topic, "new")]);
        }
        // v1-5 name topics in `topic_names`, v6 in `topics[].name` (nullable).
        let old_style = DeleteTopicsRequest::default().with_topic_names(vec![TopicName(s("old")), TopicName(s("older"))]);
        check(ApiKey::DeleteTopics, 1, Body::Request(RequestKind::DeleteTopics(old_style.clone())), &[(Topic, "old"), (Topic, "older")]);
        check(ApiKey::DeleteTopics, 5, Body::Request(RequestKind::DeleteTopics(old_style)), &[(Topic, "old"), (Topic, "older")]);
        let by_state = DeleteTopicsRequest::default().with_topics(vec![
            delete_topics_request::DeleteTopicState::default().with_name(Some(TopicName(s("old")))),
            delete_topics_request::DeleteTopicState::default().with_name(None),
        ]);
        check(ApiKey::DeleteTopics, 6, Body::Request(RequestKind::DeleteTopics(by_state)), &[(Topic, "old")]);
        let deleted = DeleteTopicsResponse::default()
            .with_responses(vec![delete_topics_response::DeletableTopicResult::default().with_name(Some(TopicName(s("old"))))]);
        for version in [1, 6] {
            check(ApiKey::DeleteTopics, version, Body::Response(ResponseKind::DeleteTopics(deleted.clone())), &[(Topic, "old")]);
        }
    }

    #[test]
    fn group_ids() {
        let join = JoinGroupRequest::default().with_group_id(GroupId(s("grp"))).with_protocol_type(s("consumer"));
        for version in [0, 5, 9] {
            check(ApiKey::JoinGroup, version, Body::Request(RequestKind::JoinGroup(join.clone())), &[(Group, "grp")]);
        }
        let describe = DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g1")), GroupId(s("g2"))]);
        let described = DescribeGroupsResponse::default()
            .with_groups(vec![describe_groups_response::DescribedGroup::default().with_group_id(GroupId(s("g1")))]);
        for version in [0, 5] {
            check(ApiKey::DescribeGroups, version, Body::Request(RequestKind::DescribeGroups(describe.clone())), &[(Group, "g1"), (Group, "g2")]);
            check(ApiKey::DescribeGroups, version, Body::Response(ResponseKind::DescribeGroups(described.clone())), &[(Group, "g1")]);
        }
    }

    #[test]
    fn transactional_ids() {
        let init = InitProducerIdRequest::default().with_transactional_id(Some(TransactionalId(s("tx"))));
        for version in [0, 4] {
            check(ApiKey::InitProducerId, version, Body::Request(RequestKind::InitProducerId(init.clone())), &[(Txn, "tx")]);
        }
        let topic = |n: &str| add_partitions_to_txn_request::AddPartitionsToTxnTopic::default().with_name(TopicName(s(n)));
        // v0-3 carry one transaction at top level, v4+ a batch of them.
        let single = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s("tx")))
            .with_v3_and_below_topics(vec![topic("a")]);
        let batch = AddPartitionsToTxnRequest::default().with_transactions(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(s("tx2")))
                .with_topics(vec![topic("b"), topic("c")]),
        ]);
        for version in [0, 3] {
            check(ApiKey::AddPartitionsToTxn, version, Body::Request(RequestKind::AddPartitionsToTxn(single.clone())), &[(Txn, "tx"), (Topic, "a")]);
        }
        check(ApiKey::AddPartitionsToTxn, 4, Body::Request(RequestKind::AddPartitionsToTxn(batch)), &[(Txn, "tx2"), (Topic, "b"), (Topic, "c")]);
        let added = AddPartitionsToTxnResponse::default().with_results_by_transaction(vec![
            add_partitions_to_txn_response::AddPartitionsToTxnResult::default()
                .with_transactional_id(TransactionalId(s("tx2")))
                .with_topic_results(vec![add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default().with_name(TopicName(s("b")))]),
        ]);
        check(ApiKey::AddPartitionsToTxn, 4, Body::Response(ResponseKind::AddPartitionsToTxn(added)), &[(Txn, "tx2"), (Topic, "b")]);
    }

    fn snake(camel: &str) -> String {
        let mut out = String::new();
        for (i, c) in camel.char_indices() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }

    /// Independent of the generator: an API is listed exactly when its request (response) module
    /// in the vendored crate declares a field of the name type anywhere.
    #[test]
    fn every_api_declaring_names_is_listed() {
        let messages = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor/kafka-protocol/src/messages");
        let lists: [(&str, &str, &[ApiKey]); 6] = [
            ("request", "TopicName", APIS_WITH_TOPIC_NAMES_IN_REQUESTS),
            ("response", "TopicName", APIS_WITH_TOPIC_NAMES_IN_RESPONSES),
            ("request", "GroupId", APIS_WITH_GROUP_IDS_IN_REQUESTS),
            ("response", "GroupId", APIS_WITH_GROUP_IDS_IN_RESPONSES),
            ("request", "TransactionalId", APIS_WITH_TRANSACTIONAL_IDS_IN_REQUESTS),
            ("response", "TransactionalId", APIS_WITH_TRANSACTIONAL_IDS_IN_RESPONSES),
        ];
        let mut apis = 0;
        for key in ApiKey::iter() {
            apis += 1;
            for (side, newtype, list) in lists {
                // Module names are the snake-cased API names (no API name has an acronym).
                let path = messages.join(format!("{}_{side}.rs", snake(&format!("{key:?}"))));
                let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let declared = source.lines().map(str::trim).any(|l| {
                    l.starts_with("pub ") && !l.starts_with("pub fn ") && (l.contains(&format!("super::{newtype}>")) || l.ends_with(&format!("super::{newtype},")))
                });
                assert_eq!(declared, list.contains(&key), "{key:?} {side}: declares {newtype} = {declared}, listed = {}", list.contains(&key));
            }
        }
        assert_eq!(apis, 87);
        for key in [ApiKey::Produce, ApiKey::Fetch, ApiKey::Metadata, ApiKey::OffsetForLeaderEpoch, ApiKey::TxnOffsetCommit, ApiKey::DescribeProducers] {
            assert!(APIS_WITH_TOPIC_NAMES_IN_REQUESTS.contains(&key) && APIS_WITH_TOPIC_NAMES_IN_RESPONSES.contains(&key), "{key:?}");
        }
        for key in [ApiKey::JoinGroup, ApiKey::OffsetCommit, ApiKey::DescribeGroups, ApiKey::DeleteGroups] {
            assert!(APIS_WITH_GROUP_IDS_IN_REQUESTS.contains(&key), "{key:?}");
        }
        for key in [ApiKey::InitProducerId, ApiKey::AddPartitionsToTxn, ApiKey::EndTxn, ApiKey::TxnOffsetCommit] {
            assert!(APIS_WITH_TRANSACTIONAL_IDS_IN_REQUESTS.contains(&key), "{key:?}");
        }
        // Resource names are plain strings: not (yet) walked.
        assert!(!APIS_WITH_TOPIC_NAMES_IN_REQUESTS.contains(&ApiKey::DescribeConfigs));
    }

    /// The dispatch reaches a top-level name for APIs whose body holds one directly.
    #[test]
    fn dispatch_reaches_top_level_names() {
        let mut requests = [
            RequestKind::Heartbeat(HeartbeatRequest::default().with_group_id(GroupId(s("g")))),
            RequestKind::EndTxn(EndTxnRequest::default().with_transactional_id(TransactionalId(s("x")))),
            RequestKind::DeleteGroups(DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))])),
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ];
        let visited: Vec<usize> = requests
            .iter_mut()
            .map(|r| {
                let mut n = 0;
                request_names_mut(r, &mut |_, _| n += 1);
                n
            })
            .collect();
        assert_eq!(visited, [1, 1, 1, 0]);
    }
}
