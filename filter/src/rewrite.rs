//! Topic renames and per-tenant prefixes: the `topic_rewrite` configuration, which client gets
//! which mapping, and the protocol versions a mapping needs.
//!
//! The mapping itself ([`Renamer`]) and its application to messages live in the codec
//! ([`kafka_lens_codec::rename`], [`kafka_lens_codec::name_edit`]); the connection applies them
//! (see `connection::enforce`).
//!
//! Everything the filter reasons about (metrics, policy rules) uses the broker's names, the ones
//! that exist in the cluster; only the bytes the client sends and receives carry its own names.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use kafka_lens_codec::kafka_protocol::messages::ApiKey;
use kafka_lens_codec::name_edit::{self, PrefixEdit, LAST_VERSIONS_NAMING_TOPICS};
use kafka_lens_codec::rename::Renamer;
use serde::Deserialize;

use crate::policy::config::Match;
use crate::policy::Subject;

/// `topic_rewrite` in the filter configuration; empty by default (names pass unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicRewriteConfig {
    /// Client topic name → broker topic name, for every client. A broker name that is a target is
    /// reachable only under its client name; a renamed topic's old name is hidden.
    pub renames: BTreeMap<String, String>,
    /// Per-tenant prefixes: the first tenant whose `match` holds for a request applies. A client
    /// matching no tenant sees the broker's names (with `renames` applied).
    pub tenants: Vec<TenantConfig>,
    /// Pads a renamed Produce request (v9+) with an unknown request-header tagged field so its size
    /// changes by a multiple of 64 bytes: records that keep their alignment in Envoy's buffer are
    /// copied into the broker's socket several times faster (see
    /// [`kafka_lens_codec::name_edit::pad_request_header`]). On by default; off for a broker that
    /// refuses unknown tagged fields.
    pub align_records: bool,
}

impl Default for TopicRewriteConfig {
    fn default() -> Self {
        TopicRewriteConfig { renames: BTreeMap::new(), tenants: Vec::new(), align_records: true }
    }
}

/// One tenant: who it is and the prefix its topics, groups and transactional ids carry on the
/// broker.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// The tenant's name, for logs.
    pub name: String,
    /// Prepended to every topic name, group id and transactional id of the tenant's clients
    /// (`team-a.` → `orders` is `team-a.orders` on the broker).
    pub prefix: String,
    /// Who belongs to the tenant: `principal` (verified mTLS), `sasl_user`, `client_id`,
    /// `source_address`, as in policy rules. An empty match takes every client (one tenant per
    /// listener).
    #[serde(rename = "match", default)]
    pub matches: Match,
}

/// Longest topic name Kafka accepts.
const MAX_TOPIC_NAME: usize = 249;

/// Why a string is not a legal Kafka topic name (`[a-zA-Z0-9._-]{1,249}`, not `.` or `..`).
fn topic_name_error(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.len() > MAX_TOPIC_NAME {
        return Some(format!("{name:?} is longer than {MAX_TOPIC_NAME} characters"));
    }
    if name == "." || name == ".." {
        return Some(format!("{name:?} is not a legal topic name"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Some(format!("{name:?} contains {c:?}: topic names are ASCII letters, digits, '.', '_' and '-'"));
    }
    None
}

impl TopicRewriteConfig {
    pub fn is_empty(&self) -> bool {
        self.renames.is_empty() && self.tenants.is_empty()
    }

    /// Checks that the renames are one to one and legal, and that prefixes are legal and do not
    /// overlap. Errors are `(field path, message)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let mut targets: HashMap<&str, &str> = HashMap::new();
        for (client, broker) in &self.renames {
            let at = format!("topic_rewrite.renames.{client}");
            if let Some(e) = topic_name_error(client).or_else(|| topic_name_error(broker)) {
                return Err((at, e));
            }
            if client == broker {
                return Err((at, format!("renames {client:?} to itself")));
            }
            if let Some(other) = targets.insert(broker, client) {
                return Err((at, format!("{client:?} and {other:?} both map to {broker:?}: renames must be one to one")));
            }
        }
        let mut names = Vec::new();
        for (i, tenant) in self.tenants.iter().enumerate() {
            let at = |f: &str| format!("topic_rewrite.tenants[{i}].{f}");
            if tenant.name.is_empty() {
                return Err((at("name"), "must not be empty".into()));
            }
            if names.contains(&tenant.name.as_str()) {
                return Err((at("name"), format!("tenant {:?} is defined twice", tenant.name)));
            }
            names.push(&tenant.name);
            if let Some(e) = topic_name_error(&tenant.prefix) {
                return Err((at("prefix"), e));
            }
            let m = &tenant.matches;
            if m.apis.is_some() || m.topics.is_some() {
                return Err((
                    at("match"),
                    "a tenant is chosen by who the client is: principal, sasl_user, client_id, source_address (and except)".into(),
                ));
            }
            for (j, other) in self.tenants.iter().enumerate().take(i) {
                if tenant.prefix.starts_with(&other.prefix) || other.prefix.starts_with(&tenant.prefix) {
                    return Err((
                        at("prefix"),
                        format!(
                            "{:?} overlaps the prefix {:?} of tenants[{j}] ({:?}): one tenant could reach the other's topics",
                            tenant.prefix, other.prefix, other.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The configured mappings, built once per configuration and shared by the VM's connections.
#[derive(Debug, Default)]
pub struct TopicRewrite {
    /// Per tenant, in configuration order.
    tenants: Vec<(Match, Rc<Renamer>)>,
    /// For clients of no tenant: the renames alone (`None` when there are none).
    default: Option<Rc<Renamer>>,
    align_records: bool,
}

impl TopicRewrite {
    pub fn new(config: &TopicRewriteConfig) -> Self {
        let renames: HashMap<String, String> = config.renames.iter().map(|(a, b)| (a.clone(), b.clone())).collect();
        let tenants = config.tenants.iter().map(|t| (t.matches.clone(), Rc::new(Renamer::new(&renames, Some(t.prefix.clone()))))).collect();
        let default = (!renames.is_empty()).then(|| Rc::new(Renamer::new(&renames, None)));
        TopicRewrite { tenants, default, align_records: config.align_records }
    }

    /// A Produce request's rename as sent to the broker: padded to keep its records' alignment
    /// (`align_records`) where its header has room for it (v9+).
    pub fn produce_edit(&self, edit: PrefixEdit, version: i16, header_len: usize) -> PrefixEdit {
        if self.align_records && version >= 9 {
            name_edit::pad_request_header(edit, header_len)
        } else {
            edit
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty() && self.default.is_none()
    }

    /// Whether any client gets a tenant prefix (topic ids then need the versions capped).
    pub fn has_tenants(&self) -> bool {
        !self.tenants.is_empty()
    }

    /// The mapping for a request from `subject`; `None` when names pass unchanged.
    pub fn renamer_for(&self, subject: &Subject) -> Option<Rc<Renamer>> {
        self.tenants.iter().find(|(m, _)| crate::policy::subject_is(m, subject)).map(|(_, r)| Rc::clone(r)).or_else(|| self.default.clone())
    }

    /// Highest versions to advertise, so that tenants' requests name topics rather than address
    /// them by id (an id would reach another tenant's topic without a name to check): Produce and
    /// Fetch up to v12, DeleteTopics up to v5, OffsetCommit and OffsetFetch up to v9; share group
    /// fetches not at all.
    pub fn version_caps(&self) -> Vec<(ApiKey, i16)> {
        if !self.has_tenants() {
            return Vec::new();
        }
        tenant_version_caps().collect()
    }

    /// Whether a request at this version may pass under a tenant (see [`TopicRewrite::version_caps`]).
    pub fn allows(&self, renamer: &Renamer, key: ApiKey, version: i16) -> bool {
        renamer.prefix().is_none() || tenant_version_caps().all(|(k, cap)| k != key || version <= cap)
    }
}

/// See [`TopicRewrite::version_caps`]: the versions that name every topic, and DeleteTopics before
/// v6 (which may address topics by id), no share-group fetches (by id only).
fn tenant_version_caps() -> impl Iterator<Item = (ApiKey, i16)> {
    const TENANT_ONLY: [(ApiKey, i16); 3] = [(ApiKey::DeleteTopics, 5), (ApiKey::ShareFetch, -1), (ApiKey::ShareAcknowledge, -1)];
    LAST_VERSIONS_NAMING_TOPICS.into_iter().chain(TENANT_ONLY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn error(json: &str) -> (String, String) {
        let e = Config::parse(json.as_bytes()).unwrap_err();
        (e.field, e.message)
    }

    #[test]
    fn valid_config_parses() {
        let c = Config::parse(
            br#"{"topic_rewrite": {"renames": {"orders": "orders.v2"},
                "tenants": [{"name": "a", "prefix": "team-a.", "match": {"client_id": {"prefix": "team-a"}}},
                            {"name": "b", "prefix": "team-b.", "match": {"principal": {"exact": "spiffe://x/b"}}}]}}"#,
        )
        .unwrap();
        let rewrite = TopicRewrite::new(&c.topic_rewrite);
        assert!(rewrite.has_tenants());
        let subject = |client_id| Subject { client_id, principal: None, sasl_user: None, source_address: None, client_software: None };
        assert_eq!(rewrite.renamer_for(&subject(Some("team-a-1"))).unwrap().prefix(), Some("team-a."));
        let plain = rewrite.renamer_for(&subject(Some("admin"))).unwrap();
        assert_eq!(plain.prefix(), None);
        assert!(!plain.is_identity());
        assert!(TopicRewrite::new(&TopicRewriteConfig::default()).renamer_for(&subject(None)).is_none());
    }

    #[test]
    fn bad_configs_name_the_field() {
        let (field, message) = error(r#"{"topic_rewrite": {"renames": {"a": "x", "b": "x"}}}"#);
        assert_eq!(field, "topic_rewrite.renames.b");
        assert!(message.contains("one to one"), "{message}");
        assert_eq!(error(r#"{"topic_rewrite": {"renames": {"a": "a"}}}"#).0, "topic_rewrite.renames.a");
        assert!(error(r#"{"topic_rewrite": {"renames": {"a": "b c"}}}"#).1.contains("contains ' '"));
        assert_eq!(error(r#"{"topic_rewrite": {"tenants": [{"name": "a", "prefix": ""}]}}"#).0, "topic_rewrite.tenants[0].prefix");
        let (field, message) =
            error(r#"{"topic_rewrite": {"tenants": [{"name": "a", "prefix": "team-a."}, {"name": "b", "prefix": "team-a.b."}]}}"#);
        assert_eq!(field, "topic_rewrite.tenants[1].prefix");
        assert!(message.contains("overlaps"), "{message}");
        assert_eq!(
            error(r#"{"topic_rewrite": {"tenants": [{"name": "a", "prefix": "a."}, {"name": "a", "prefix": "b."}]}}"#).0,
            "topic_rewrite.tenants[1].name"
        );
        assert_eq!(
            error(r#"{"topic_rewrite": {"tenants": [{"name": "a", "prefix": "a.", "match": {"apis": ["Produce"]}}]}}"#).0,
            "topic_rewrite.tenants[0].match"
        );
        assert_eq!(error(r#"{"topic_rewrite": {"tenant": []}}"#).0, "topic_rewrite.tenant");
    }
}
