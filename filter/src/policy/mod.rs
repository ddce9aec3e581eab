//! Request validation: which rules apply to a request and what it breaks.
//!
//! Plain functions over decoded requests; the connection decides when to evaluate (once the whole
//! request is in, or at its start when it is too large to hold) and how to answer (see
//! [`crate::refuse`]). A rule applies when its match (client id, principal, SASL user, source
//! address, APIs) holds; a rule with topic matchers applies to the matching topics of a request
//! and yields per-topic violations, which lets the connection refuse only those topics.

pub mod config;
pub mod log;

use kafka_lens_codec::kafka_protocol::messages::{ApiKey, RequestKind};
use kafka_lens_codec::records::Compression;
use kafka_lens_codec::refusal;
use kafka_lens_codec::scan::ProduceSummary;

pub use config::{Mode, PolicyConfig, Rule};

/// Kafka error codes the policy answers with.
pub mod codes {
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const POLICY_VIOLATION: i16 = 44;
    pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
}

/// Who sent a request, as rules match it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    pub client_id: Option<&'a str>,
    pub principal: Option<&'a str>,
    pub sasl_user: Option<&'a str>,
    pub source_address: Option<&'a str>,
}

/// What of a request's body is known when the policy is asked.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// A Produce request's structure (batch headers, payloads unread).
    Produce(&'a ProduceSummary),
    /// Any other request, fully decoded.
    Decoded(&'a RequestKind),
    /// Only the header: the body was not (or cannot be) read.
    Unread,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Index of the rule in the configuration.
    pub rule: usize,
    /// The check that failed (`acks`, `deny`, `create_topics.name_pattern`, ...).
    pub check: &'static str,
    /// The Kafka error code the client gets.
    pub code: i16,
    /// What was wrong, for the error message and the log.
    pub detail: String,
    /// The topics at fault, or `None` when the whole request is.
    pub topics: Option<Vec<String>>,
}

/// Rules that may apply to one request: decided from its header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applicable(Vec<usize>);

impl Applicable {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Indices of the rules.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().copied()
    }
}

/// APIs the policy never refuses: the filter's own answers ride on ApiVersions, and refusing a
/// SASL step would break authentication rather than enforce anything.
fn exempt(key: ApiKey) -> bool {
    matches!(key, ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)
}

/// The authorization error a broker's ACLs would give for the API.
pub fn authorization_code(key: ApiKey) -> i16 {
    match key {
        ApiKey::JoinGroup
        | ApiKey::SyncGroup
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::DescribeGroups
        | ApiKey::DeleteGroups
        | ApiKey::OffsetFetch
        | ApiKey::OffsetDelete
        | ApiKey::FindCoordinator
        | ApiKey::ConsumerGroupHeartbeat => codes::GROUP_AUTHORIZATION_FAILED,
        ApiKey::Produce
        | ApiKey::Fetch
        | ApiKey::ListOffsets
        | ApiKey::Metadata
        | ApiKey::OffsetCommit
        | ApiKey::CreateTopics
        | ApiKey::DeleteTopics
        | ApiKey::DeleteRecords
        | ApiKey::CreatePartitions
        | ApiKey::TxnOffsetCommit
        | ApiKey::AddPartitionsToTxn
        | ApiKey::DescribeProducers => codes::TOPIC_AUTHORIZATION_FAILED,
        _ => codes::CLUSTER_AUTHORIZATION_FAILED,
    }
}

fn subject_matches(rule: &Rule, s: &Subject) -> bool {
    who_matches(&rule.matches, s) && !rule.matches.except.as_deref().is_some_and(|except| who_matches(except, s))
}

/// Whether the who-fields of a match (client id, principal, SASL user, source address) hold.
fn who_matches(m: &config::Match, s: &Subject) -> bool {
    let field = |matcher: &Option<config::StringMatch>, value: Option<&str>| match matcher {
        None => true,
        Some(matcher) => value.is_some_and(|v| matcher.matches(v)),
    };
    field(&m.client_id, s.client_id)
        && field(&m.principal, s.principal)
        && field(&m.sasl_user, s.sasl_user)
        && field(&m.source_address, s.source_address)
}

/// Whether any of the rule's checks concerns this API.
fn concerns(rule: &Rule, key: ApiKey) -> bool {
    if rule.matches.apis.as_ref().is_some_and(|apis| !apis.contains(key)) {
        return false;
    }
    rule.deny
        || rule.allowed_apis.is_some()
        || rule.max_request_bytes.is_some()
        || rule.client_id.is_some()
        || (rule.produce.is_some() && key == ApiKey::Produce)
        || (rule.create_topics.is_some() && matches!(key, ApiKey::CreateTopics | ApiKey::CreatePartitions))
        || (rule.fetch.is_some() && key == ApiKey::Fetch)
}

/// A request topic: its name where known (sent, or learned from its id), and its id.
#[derive(Debug, Clone)]
struct Topic {
    name: Option<String>,
    id: [u8; 16],
}

impl Topic {
    fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("id-{}", self.id.iter().map(|b| format!("{b:02x}")).collect::<String>()))
    }
}

/// The request's topics, ids resolved through `resolve`.
fn topics_of(body: Body, resolve: &mut dyn FnMut(&[u8; 16]) -> Option<String>) -> Vec<Topic> {
    let raw: Vec<(String, [u8; 16])> = match body {
        Body::Produce(summary) => summary.topics.iter().map(|t| (t.name.clone(), t.topic_id.unwrap_or_default())).collect(),
        Body::Decoded(request) => refusal::request_topics(request),
        Body::Unread => Vec::new(),
    };
    raw.into_iter()
        .map(|(name, id)| {
            let name = if name.is_empty() && id.iter().any(|b| *b != 0) { resolve(&id) } else { Some(name) };
            Topic { name, id }
        })
        .collect()
}

/// The request as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    pub key: ApiKey,
    pub version: i16,
    /// Frame size, size prefix included.
    pub frame_bytes: u64,
    pub subject: Subject<'a>,
}

/// The configured policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub config: PolicyConfig,
}

impl Policy {
    pub fn new(config: PolicyConfig) -> Self {
        Policy { config }
    }

    pub fn is_empty(&self) -> bool {
        self.config.rules.is_empty()
    }

    pub fn rule(&self, index: usize) -> Option<&Rule> {
        self.config.rules.get(index)
    }

    /// The rules that may apply to a request of `key` from `subject`.
    pub fn applicable(&self, subject: &Subject, key: ApiKey) -> Applicable {
        if exempt(key) {
            return Applicable::default();
        }
        Applicable(
            self.config
                .rules
                .iter()
                .enumerate()
                .filter(|(_, rule)| concerns(rule, key) && subject_matches(rule, subject))
                .map(|(i, _)| i)
                .collect(),
        )
    }

    /// Whether deciding on the request needs its body (topic matchers or body checks).
    pub fn needs_body(&self, rules: &Applicable, key: ApiKey) -> bool {
        rules.0.iter().filter_map(|i| self.rule(*i)).any(|rule| {
            rule.matches.topics.is_some()
                || (rule.produce.is_some() && key == ApiKey::Produce)
                || (rule.create_topics.is_some() && matches!(key, ApiKey::CreateTopics | ApiKey::CreatePartitions))
                || (rule.fetch.is_some() && key == ApiKey::Fetch)
        })
    }

    /// The first enforced rule among `rules`.
    pub fn first_enforced(&self, rules: &Applicable) -> Option<usize> {
        rules.iter().find(|i| self.rule(*i).is_some_and(|rule| rule.mode == Mode::Enforce))
    }

    /// Whether the violated rule is enforced (not audit only).
    pub fn is_enforced(&self, violation: &Violation) -> bool {
        self.rule(violation.rule).is_some_and(|rule| rule.mode == Mode::Enforce)
    }

    /// Whether a request of an API the codec does not know would fall under a rule from
    /// `subject`: a rule naming no APIs whose checks hold for any API.
    pub fn applies_to_unknown_apis(&self, subject: &Subject) -> bool {
        self.config.rules.iter().any(|rule| {
            rule.matches.apis.is_none()
                && rule.matches.topics.is_none()
                && (rule.deny || rule.allowed_apis.is_some() || rule.client_id.is_some() || rule.max_request_bytes.is_some())
                && subject_matches(rule, subject)
        })
    }

    /// Every violation of the applicable rules. With [`Body::Unread`] only the checks the header
    /// decides are made.
    pub fn check(
        &self,
        rules: &Applicable,
        request: &RequestInfo,
        body: Body,
        resolve: &mut dyn FnMut(&[u8; 16]) -> Option<String>,
    ) -> Vec<Violation> {
        let topics = topics_of(body, resolve);
        let mut out = Vec::new();
        for &index in &rules.0 {
            let Some(rule) = self.rule(index) else { continue };
            let scope: Option<Vec<&Topic>> = match &rule.matches.topics {
                None => None,
                Some(matchers) => {
                    let matched: Vec<&Topic> = topics
                        .iter()
                        .filter(|t| match &t.name {
                            Some(name) => matchers.iter().any(|m| m.matches(name)),
                            // A topic named by an id never seen cannot be cleared.
                            None => true,
                        })
                        .collect();
                    if matched.is_empty() {
                        continue;
                    }
                    for unknown in matched.iter().filter(|t| t.name.is_none()) {
                        out.push(Violation {
                            rule: index,
                            check: "unknown_topic_id",
                            code: codes::UNKNOWN_TOPIC_ID,
                            detail: format!("topic {} is named by an id the filter has not learned", unknown.label()),
                            topics: Some(vec![unknown.label()]),
                        });
                    }
                    Some(matched.into_iter().filter(|t| t.name.is_some()).collect())
                }
            };
            let in_scope = |names: Vec<String>| -> Option<Vec<String>> { scope.as_ref().map(|_| names) };
            let scope_names: Vec<String> = scope.iter().flatten().map(|t| t.label()).collect();
            let mut push = |check: &'static str, code: i16, detail: String, topics: Option<Vec<String>>| {
                out.push(Violation { rule: index, check, code, detail, topics });
            };
            let key_name = kafka_lens_codec::api::name(request.key);
            if rule.deny {
                push("deny", authorization_code(request.key), format!("{key_name} is denied"), in_scope(scope_names.clone()));
            }
            if let Some(allowed) = &rule.allowed_apis {
                if !allowed.contains(request.key) {
                    push("allowed_apis", authorization_code(request.key), format!("{key_name} is not an allowed API"), in_scope(scope_names.clone()));
                }
            }
            if let Some(max) = rule.max_request_bytes {
                if request.frame_bytes > u64::from(max) {
                    let code = if request.key == ApiKey::Produce { codes::MESSAGE_TOO_LARGE } else { codes::POLICY_VIOLATION };
                    push("max_request_bytes", code, format!("request of {} bytes exceeds {max}", request.frame_bytes), None);
                }
            }
            if let Some(check) = &rule.client_id {
                match request.subject.client_id.filter(|id| !id.is_empty()) {
                    None if check.required => push("client_id", codes::POLICY_VIOLATION, "a client_id is required".into(), None),
                    Some(id) if check.pattern.as_ref().is_some_and(|p| !p.0.is_match(id)) => {
                        push("client_id", codes::POLICY_VIOLATION, format!("client_id {id:?} does not match the required pattern"), None)
                    }
                    _ => {}
                }
            }
            match body {
                Body::Produce(summary) => {
                    if let Some(check) = &rule.produce {
                        for t in &summary.topics {
                            let name = topics.iter().find(|x| x.name.as_deref() == Some(t.name.as_str()) || (t.name.is_empty() && Some(x.id) == t.topic_id));
                            let label = name.map(Topic::label).unwrap_or_else(|| t.name.clone());
                            if scope.is_some() && !scope_names.contains(&label) {
                                continue;
                            }
                            for (check, code, detail) in produce_violations(check, summary.acks, t) {
                                push(check, code, format!("{detail} (topic {label})"), Some(vec![label.clone()]));
                            }
                        }
                    }
                }
                Body::Decoded(decoded) => {
                    if let Some(check) = &rule.create_topics {
                        for (topic, check, code, detail) in create_topics_violations(check, decoded) {
                            if scope.is_some() && !scope_names.contains(&topic) {
                                continue;
                            }
                            push(check, code, format!("{detail} (topic {topic})"), Some(vec![topic]));
                        }
                    }
                    if let (Some(check), RequestKind::Fetch(fetch)) = (&rule.fetch, decoded) {
                        if let Some(max) = check.max_bytes.filter(|max| request.version >= 3 && fetch.max_bytes > *max) {
                            push("fetch.max_bytes", codes::POLICY_VIOLATION, format!("max_bytes {} exceeds {max}", fetch.max_bytes), None);
                        }
                        if let Some(max) = check.max_wait_ms.filter(|max| fetch.max_wait_ms > *max) {
                            push("fetch.max_wait_ms", codes::POLICY_VIOLATION, format!("max_wait_ms {} exceeds {max}", fetch.max_wait_ms), None);
                        }
                    }
                }
                Body::Unread => {}
            }
        }
        out
    }
}

fn produce_violations(check: &config::ProduceCheck, acks: i16, topic: &kafka_lens_codec::scan::TopicRecords) -> Vec<(&'static str, i16, String)> {
    let mut out = Vec::new();
    if let Some(allowed) = &check.acks {
        if !allowed.contains(&acks) {
            out.push(("acks", codes::INVALID_REQUIRED_ACKS, format!("acks={acks} is not allowed, allowed: {allowed:?}")));
        }
    }
    for p in &topic.partitions {
        if let Some(allowed) = &check.compression {
            for (codec, _) in &p.records.compression {
                if !allowed.iter().any(|a| a == codec.as_str()) || matches!(codec, Compression::Unknown(_)) {
                    out.push(("compression", codes::UNSUPPORTED_COMPRESSION_TYPE, format!("compression {} is not allowed, allowed: {allowed:?}", codec.as_str())));
                }
            }
        }
        if let Some(max) = check.max_batch_bytes {
            if p.records.max_batch_bytes > max {
                out.push(("max_batch_bytes", codes::MESSAGE_TOO_LARGE, format!("a batch of {} bytes exceeds {max}", p.records.max_batch_bytes)));
            }
        }
        if check.require_idempotence && p.records.batches > 0 && !p.has_producer_id {
            out.push(("require_idempotence", codes::POLICY_VIOLATION, "batches must come from an idempotent producer".into()));
        }
    }
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

fn create_topics_violations(check: &config::CreateTopicsCheck, request: &RequestKind) -> Vec<(String, &'static str, i16, String)> {
    let mut out = Vec::new();
    match request {
        RequestKind::CreateTopics(create) => {
            for topic in &create.topics {
                let name = topic.name.0.to_string();
                if let Some(pattern) = &check.name_pattern {
                    if !pattern.0.is_match(&name) {
                        out.push((name.clone(), "create_topics.name_pattern", codes::INVALID_TOPIC_EXCEPTION, "the topic name breaks the naming convention".into()));
                    }
                }
                let partitions = if topic.num_partitions == -1 && !topic.assignments.is_empty() {
                    topic.assignments.len() as i64
                } else {
                    i64::from(topic.num_partitions)
                };
                if partitions != -1 && check.partitions.is_some_and(|b| !b.contains(partitions)) {
                    out.push((name.clone(), "create_topics.partitions", codes::INVALID_PARTITIONS, format!("{partitions} partitions are outside the allowed bounds")));
                }
                let rf = i64::from(topic.replication_factor);
                if rf != -1 && check.replication_factor.is_some_and(|b| !b.contains(rf)) {
                    out.push((name.clone(), "create_topics.replication_factor", codes::INVALID_REPLICATION_FACTOR, format!("replication factor {rf} is outside the allowed bounds")));
                }
                for config in &topic.configs {
                    let key = config.name.to_string();
                    let value = config.value.as_ref().map(ToString::to_string);
                    if let Some(forbidden) = check.forbidden_configs.get(&key) {
                        if forbidden == "*" || value.as_deref() == Some(forbidden.as_str()) {
                            out.push((name.clone(), "create_topics.forbidden_configs", codes::POLICY_VIOLATION, format!("config {key}={} is forbidden", value.unwrap_or_default())));
                        }
                    }
                }
                for required in &check.required_configs {
                    if !topic.configs.iter().any(|c| c.name.as_str() == required) {
                        out.push((name.clone(), "create_topics.required_configs", codes::POLICY_VIOLATION, format!("config {required} is required")));
                    }
                }
            }
        }
        RequestKind::CreatePartitions(create) => {
            for topic in &create.topics {
                let count = i64::from(topic.count);
                if check.partitions.is_some_and(|b| !b.contains(count)) {
                    out.push((topic.name.0.to_string(), "create_topics.partitions", codes::INVALID_PARTITIONS, format!("{count} partitions are outside the allowed bounds")));
                }
            }
        }
        _ => {}
    }
    out
}

/// The error message a refused client reads: names the rule.
pub fn message(rule: &Rule, violation: &Violation) -> String {
    format!("kafka-lens policy rule '{}' ({}): {}", rule.name, violation.check, violation.detail)
}
