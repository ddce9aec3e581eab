//! The `policy` section of the filter's configuration: rules, each a match (who, which APIs, which
//! topics) and the checks it applies. Parsed with serde; everything a rule names (API names,
//! patterns, bounds) is checked at load so a mistake fails the Envoy config load with the field's
//! path instead of failing open at runtime.

use std::collections::BTreeMap;

use regex_lite::Regex;
use serde::de::{self, Deserializer};
use serde::Deserialize;

use kafka_lens_codec::api;
use kafka_lens_codec::kafka_protocol::messages::ApiKey;

/// Default bytes of one connection's stream the filter may hold back while it waits for the rest
/// of a request it must inspect. Must stay below the listener's `per_connection_buffer_limit_bytes`
/// (Envoy's default is 1 MiB): a held buffer above that limit stops Envoy reading the connection.
pub const DEFAULT_HOLD_BUDGET_BYTES: u32 = 512 * 1024;

/// The policy: empty (no rules) by default, in which case the filter only observes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Rules, evaluated in order; every matching rule applies (a request may break several).
    pub rules: Vec<Rule>,
    /// Largest request (or response) the filter holds back whole to inspect or rewrite it. A
    /// request a rule must inspect that is larger is refused unread (`too_large_to_inspect`).
    pub hold_budget_bytes: u32,
    /// Policy log lines per second per worker, beyond which lines are counted, not written.
    pub log_lines_per_second: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig { rules: Vec::new(), hold_budget_bytes: DEFAULT_HOLD_BUDGET_BYTES, log_lines_per_second: 10 }
    }
}

/// Enforce (refuse the request) or audit (log and count, forward the request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Audit,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        }
    }
}

/// One rule: whom and what it applies to, and what it checks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Names the rule in error messages, logs and the `rule` metric label.
    pub name: String,
    #[serde(default)]
    pub mode: Mode,
    /// Which requests the rule applies to; empty matches every request.
    #[serde(default, rename = "match")]
    pub matches: Match,
    /// Refuse every matching request (an authorization error, like a broker ACL).
    #[serde(default)]
    pub deny: bool,
    /// Refuse matching requests of any API not listed (Kafka API names).
    #[serde(default)]
    pub allowed_apis: Option<ApiList>,
    /// Largest request frame (bytes, size prefix included).
    #[serde(default)]
    pub max_request_bytes: Option<u32>,
    /// What the client must say about itself.
    #[serde(default)]
    pub client_id: Option<ClientIdCheck>,
    /// Checks on Produce requests.
    #[serde(default)]
    pub produce: Option<ProduceCheck>,
    /// Checks on CreateTopics and CreatePartitions requests.
    #[serde(default)]
    pub create_topics: Option<CreateTopicsCheck>,
    /// Bounds on Fetch requests.
    #[serde(default)]
    pub fetch: Option<FetchCheck>,
}

/// Which requests a rule applies to: every given field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// The self-declared `client_id`: a convention, any client can send any id.
    #[serde(default)]
    pub client_id: Option<StringMatch>,
    /// The verified mTLS peer principal (URI SAN, else certificate subject) of a connection Envoy
    /// terminated TLS for: a security boundary, on the broker-side (inbound) sidecar.
    #[serde(default)]
    pub principal: Option<StringMatch>,
    /// The SASL user the broker accepted on the connection: a security boundary.
    #[serde(default)]
    pub sasl_user: Option<StringMatch>,
    /// The client's source address (`ip:port`), where no principal exists.
    #[serde(default)]
    pub source_address: Option<StringMatch>,
    /// Kafka API names the rule applies to.
    #[serde(default)]
    pub apis: Option<ApiList>,
    /// Topics the rule applies to (any of these matchers). A rule with topics applies only to the
    /// topics of a request that match, and to requests that name topics.
    #[serde(default)]
    pub topics: Option<Vec<StringMatch>>,
    /// Clients the rule spares even when the fields above match (`{"client_id": {"exact":
    /// "platform-admin"}}`): who-fields only.
    #[serde(default, rename = "except")]
    pub except: Option<Box<Match>>,
}

/// Matches a string exactly, by prefix or by regular expression (anchored: the whole string).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    Regex(Pattern),
}

impl StringMatch {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            StringMatch::Exact(s) => s == value,
            StringMatch::Prefix(p) => value.starts_with(p.as_str()),
            StringMatch::Regex(r) => r.0.is_match(value),
        }
    }
}

/// A regular expression, anchored to the whole value, compiled at load.
#[derive(Debug, Clone)]
pub struct Pattern(pub Regex);

/// Patterns are equal when written the same (configurations are compared on reload).
impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Pattern {}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        Regex::new(&format!("^(?:{source})$")).map(Pattern).map_err(|e| de::Error::custom(format!("invalid regex {source:?}: {e}")))
    }
}

/// Kafka API names, checked at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiList(pub Vec<ApiKey>);

impl<'de> Deserialize<'de> for ApiList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        names
            .iter()
            .map(|n| api::by_name(n).ok_or_else(|| de::Error::custom(format!("unknown Kafka API {n:?} (names as Kafka documents them: Produce, DeleteTopics, ...)"))))
            .collect::<Result<Vec<_>, _>>()
            .map(ApiList)
    }
}

impl ApiList {
    pub fn contains(&self, key: ApiKey) -> bool {
        self.0.contains(&key)
    }
}

/// What a client must say about itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientIdCheck {
    /// A request without a `client_id` (null or empty) is refused.
    #[serde(default)]
    pub required: bool,
    /// A present `client_id` must match.
    #[serde(default)]
    pub pattern: Option<Pattern>,
}

/// Checks on Produce requests, read from the request and its batch headers (never decompressed).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProduceCheck {
    /// Allowed `acks` values (-1 = all, 1 = leader, 0 = none).
    #[serde(default)]
    pub acks: Option<Vec<i16>>,
    /// Allowed compression codecs (`none`, `gzip`, `snappy`, `lz4`, `zstd`).
    #[serde(default)]
    pub compression: Option<Vec<String>>,
    /// Largest record batch (bytes).
    #[serde(default)]
    pub max_batch_bytes: Option<u64>,
    /// Batches must come from an idempotent (or transactional) producer.
    #[serde(default)]
    pub require_idempotence: bool,
}

/// An inclusive bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
}

impl Bounds {
    pub fn contains(&self, value: i64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }
}

/// Checks on topic creation (CreateTopics) and growth (CreatePartitions).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopicsCheck {
    /// New topic names must match.
    #[serde(default)]
    pub name_pattern: Option<Pattern>,
    /// Partition count of a new topic, or the new total of CreatePartitions. A request leaving it
    /// to the broker default (-1) passes.
    #[serde(default)]
    pub partitions: Option<Bounds>,
    /// Replication factor of a new topic (-1, the broker default, passes).
    #[serde(default)]
    pub replication_factor: Option<Bounds>,
    /// Config values a new topic must not set (`{"retention.ms": "-1"}`); `"*"` forbids any value.
    #[serde(default)]
    pub forbidden_configs: BTreeMap<String, String>,
    /// Configs a new topic must set.
    #[serde(default)]
    pub required_configs: Vec<String>,
}

/// Bounds on Fetch requests, protecting brokers from abusive consumers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchCheck {
    /// Largest `max_bytes` a Fetch may ask for (v3+).
    #[serde(default)]
    pub max_bytes: Option<i32>,
    /// Longest `max_wait_ms` a Fetch may ask for.
    #[serde(default)]
    pub max_wait_ms: Option<i32>,
}

/// Compression codec names as Kafka's `compression.type` spells them.
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

impl PolicyConfig {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Checks what serde cannot: at least one check per rule, unique names, codec names, bounds.
    /// Errors are `(field path, message)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.hold_budget_bytes < 1024 {
            return Err(("policy.hold_budget_bytes".into(), format!("must be at least 1024, got {}", self.hold_budget_bytes)));
        }
        let mut names = std::collections::HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let at = |field: &str| format!("policy.rules[{i}]{field}");
            if rule.name.is_empty() {
                return Err((at(".name"), "must not be empty".into()));
            }
            if !names.insert(rule.name.as_str()) {
                return Err((at(".name"), format!("duplicate rule name {:?}", rule.name)));
            }
            let checks = [
                rule.deny,
                rule.allowed_apis.is_some(),
                rule.max_request_bytes.is_some(),
                rule.client_id.is_some(),
                rule.produce.is_some(),
                rule.create_topics.is_some(),
                rule.fetch.is_some(),
            ];
            if !checks.contains(&true) {
                return Err((at(""), format!(
                    "rule {:?} checks nothing: give one of deny, allowed_apis, max_request_bytes, client_id, produce, create_topics, fetch",
                    rule.name
                )));
            }
            if let Some(produce) = &rule.produce {
                for (j, codec) in produce.compression.iter().flatten().enumerate() {
                    if !CODECS.contains(&codec.as_str()) {
                        return Err((at(&format!(".produce.compression[{j}]")), format!("unknown codec {codec:?}, expected one of {CODECS:?}")));
                    }
                }
                for (j, acks) in produce.acks.iter().flatten().enumerate() {
                    if ![-1, 0, 1].contains(acks) {
                        return Err((at(&format!(".produce.acks[{j}]")), format!("acks is -1, 0 or 1, got {acks}")));
                    }
                }
            }
            if let Some(create) = &rule.create_topics {
                for (field, bounds) in [("partitions", create.partitions), ("replication_factor", create.replication_factor)] {
                    if let Some(Bounds { min: Some(min), max: Some(max) }) = bounds {
                        if min > max {
                            return Err((at(&format!(".create_topics.{field}")), format!("min {min} exceeds max {max}")));
                        }
                    }
                }
            }
            if let Some(except) = &rule.matches.except {
                if except.apis.is_some() || except.topics.is_some() || except.except.is_some() {
                    return Err((at(".match.except"), "names clients only: client_id, principal, sasl_user, source_address".into()));
                }
                if except.client_id.is_none() && except.principal.is_none() && except.sasl_user.is_none() && except.source_address.is_none() {
                    return Err((at(".match.except"), "is empty: name the clients the rule spares".into()));
                }
            }
            if rule.matches.topics.as_ref().is_some_and(Vec::is_empty) {
                return Err((at(".match.topics"), "an empty list matches no topic; leave the field out to match every request".into()));
            }
        }
        Ok(())
    }
}
