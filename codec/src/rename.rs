//! Topic renames and per-tenant prefixes: the names a client sees mapped to the names the broker
//! stores, in requests, and back in responses.
//!
//! [`Renamer`] is the mapping itself (a rename map plus an optional tenant prefix), a bijection
//! between the names one client may see and the broker names it may reach; everything else is
//! hidden from that client. [`request_to_broker`] and [`response_to_client`] apply it to a decoded
//! message: every field the generated walker ([`crate::topic_names`]) reaches, plus the string
//! fields the crate does not type as names (FindCoordinator keys, config and ACL resource names,
//! a consumer group's subscription regex, error messages), and the removal of hidden entries from
//! listings (Metadata for all topics, ListGroups, ListTransactions, DescribeAcls, DescribeLogDirs,
//! ListPartitionReassignments, DescribeTopicPartitions).
//!
//! Produce requests and Fetch responses are edited structurally instead ([`crate::name_edit`]), so
//! records are never re-encoded; this module serves every other frame.

use std::collections::HashMap;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::topic_names::{
    request_names_mut, response_names_mut, NameKind, APIS_WITH_GROUP_IDS_IN_REQUESTS, APIS_WITH_GROUP_IDS_IN_RESPONSES,
    APIS_WITH_TOPIC_NAMES_IN_REQUESTS, APIS_WITH_TOPIC_NAMES_IN_RESPONSES, APIS_WITH_TRANSACTIONAL_IDS_IN_REQUESTS,
    APIS_WITH_TRANSACTIONAL_IDS_IN_RESPONSES,
};

/// Kafka's resource types (ACLs) and config resource types that name a topic, group or
/// transactional id.
mod resource {
    pub const ACL_TOPIC: i8 = 2;
    pub const ACL_GROUP: i8 = 3;
    pub const ACL_TRANSACTIONAL_ID: i8 = 5;
    pub const CONFIG_TOPIC: i8 = 2;
    pub const CONFIG_GROUP: i8 = 32;
}

/// FindCoordinator key types.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// How one name maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    /// The name is the same on both sides.
    Same,
    /// The name on the other side.
    Renamed(String),
    /// The name does not exist for this client: requests naming it are answered as if the topic
    /// (group, transaction) did not exist, responses do not show it.
    Hidden,
}

/// The names one client sees, mapped to the broker's: `broker = prefix + renames(client)`.
///
/// Renames apply to topic names only; the tenant prefix to topics, group ids and transactional
/// ids alike. A broker name that is a rename target is reachable only under its client name, and
/// a renamed client name's original broker topic is hidden, so the mapping stays a bijection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renamer {
    to_broker: HashMap<String, String>,
    to_client: HashMap<String, String>,
    prefix: Option<String>,
}

impl Renamer {
    /// A renamer for `renames` (client name → broker name; the caller checked it is one to one)
    /// under `prefix`.
    pub fn new(renames: &HashMap<String, String>, prefix: Option<String>) -> Self {
        let to_client = renames.iter().map(|(client, broker)| (broker.clone(), client.clone())).collect();
        Renamer { to_broker: renames.clone(), to_client, prefix: prefix.filter(|p| !p.is_empty()) }
    }

    /// Whether this renamer changes nothing.
    pub fn is_identity(&self) -> bool {
        self.to_broker.is_empty() && self.prefix.is_none()
    }

    /// The tenant prefix, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// Client name → broker name. The empty name means "none" (no group, no transactional id, a
    /// topic addressed by id) and stays empty both ways: prefixed, it would name a real group.
    pub fn to_broker(&self, kind: NameKind, name: &str) -> Mapped {
        if name.is_empty() {
            return Mapped::Same;
        }
        let renamed = if kind == NameKind::Topic {
            match self.to_broker.get(name) {
                Some(target) => Some(target.as_str()),
                // A rename target is only reachable under its client name.
                None if self.to_client.contains_key(name) => return Mapped::Hidden,
                None => None,
            }
        } else {
            None
        };
        match (&self.prefix, renamed) {
            (Some(prefix), r) => Mapped::Renamed(format!("{prefix}{}", r.unwrap_or(name))),
            (None, Some(r)) => Mapped::Renamed(r.to_owned()),
            (None, None) => Mapped::Same,
        }
    }

    /// Broker name → client name.
    pub fn to_client(&self, kind: NameKind, name: &str) -> Mapped {
        if name.is_empty() {
            return Mapped::Same;
        }
        let (stripped, had_prefix) = match &self.prefix {
            Some(prefix) => match name.strip_prefix(prefix.as_str()) {
                Some(rest) if !rest.is_empty() => (rest, true),
                _ => return Mapped::Hidden,
            },
            None => (name, false),
        };
        let renamed = if kind == NameKind::Topic {
            match self.to_client.get(stripped) {
                Some(client) => Some(client.as_str()),
                // A renamed topic's old broker name is not reachable any more.
                None if self.to_broker.contains_key(stripped) => return Mapped::Hidden,
                None => None,
            }
        } else {
            None
        };
        match renamed {
            Some(r) => Mapped::Renamed(r.to_owned()),
            None if had_prefix => Mapped::Renamed(stripped.to_owned()),
            None => Mapped::Same,
        }
    }

    /// Rewrites broker names inside free text (error messages) as the client knows them: the
    /// tenant prefix is removed wherever it starts a word, renamed topics are replaced where they
    /// stand as a whole word.
    pub fn text_to_client(&self, text: &str) -> Option<String> {
        let mut out = text.to_owned();
        for (broker, client) in &self.to_client {
            let full = match &self.prefix {
                Some(prefix) => format!("{prefix}{broker}"),
                None => broker.clone(),
            };
            out = replace_words(&out, &full, client);
        }
        if let Some(prefix) = &self.prefix {
            out = replace_word_starts(&out, prefix);
        }
        (out != text).then_some(out)
    }
}

/// Characters that can be part of a topic name (Kafka: `[a-zA-Z0-9._-]`).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Whether `from` occurs in `text` at byte `at` as a whole word (a topic name's characters do not
/// continue it on either side).
fn whole_word(text: &str, at: usize, len: usize) -> bool {
    let before = text.get(..at).and_then(|b| b.chars().next_back());
    let after = text.get(at + len..).and_then(|a| a.chars().next());
    !before.is_some_and(name_char) && !after.is_some_and(name_char)
}

/// `text` with every whole-word occurrence of `from` replaced by `to`.
fn replace_words(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in text.match_indices(from) {
        if whole_word(text, at, from.len()) {
            out.push_str(text.get(last..at).unwrap_or_default());
            out.push_str(to);
            last = at + from.len();
        }
    }
    out.push_str(text.get(last..).unwrap_or_default());
    out
}

/// `text` with `prefix` removed wherever it starts a word.
fn replace_word_starts(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in text.match_indices(prefix) {
        let starts_word = !text.get(..at).and_then(|b| b.chars().next_back()).is_some_and(name_char);
        if starts_word && at >= last {
            out.push_str(text.get(last..at).unwrap_or_default());
            last = at + prefix.len();
        }
    }
    out.push_str(text.get(last..).unwrap_or_default());
    out
}

/// What a rewrite did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewritten {
    /// Names changed.
    pub renamed: usize,
    /// Hidden names a request named (topics, groups, transactional ids), in the client's form:
    /// the caller answers for them as for names that do not exist.
    pub hidden_in_request: Vec<(NameKind, String)>,
    /// Entries removed from a response, or names blanked in it, because they are hidden.
    pub hidden_in_response: usize,
}

impl Rewritten {
    /// Whether the message changed.
    pub fn changed(&self) -> bool {
        self.renamed > 0 || self.hidden_in_response > 0
    }
}

fn set(field: &mut StrBytes, value: String) {
    *field = StrBytes::from_string(value);
}

/// Applies `map` to one name field in place; empty names (absent fields) are left alone.
fn map_name(field: &mut StrBytes, kind: NameKind, map: &dyn Fn(NameKind, &str) -> Mapped) -> Mapped {
    if field.is_empty() {
        return Mapped::Same;
    }
    let mapped = map(kind, field.as_str());
    if let Mapped::Renamed(new) = &mapped {
        set(field, new.clone());
    }
    mapped
}

fn resource_kind(resource_type: i8, acl: bool) -> Option<NameKind> {
    match (acl, resource_type) {
        (true, resource::ACL_TOPIC) | (false, resource::CONFIG_TOPIC) => Some(NameKind::Topic),
        (true, resource::ACL_GROUP) | (false, resource::CONFIG_GROUP) => Some(NameKind::Group),
        (true, resource::ACL_TRANSACTIONAL_ID) => Some(NameKind::TransactionalId),
        _ => None,
    }
}

fn key_kind(key_type: i8) -> Option<NameKind> {
    match key_type {
        KEY_TYPE_GROUP => Some(NameKind::Group),
        KEY_TYPE_TRANSACTION => Some(NameKind::TransactionalId),
        _ => None,
    }
}

/// APIs whose requests hold strings the crate does not type as names but that name a topic,
/// group or transactional id (see [`request_to_broker`]).
const REQUESTS_WITH_OTHER_NAMES: [ApiKey; 8] = [
    ApiKey::FindCoordinator,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::CreateAcls,
    ApiKey::DescribeAcls,
    ApiKey::DeleteAcls,
    ApiKey::ConsumerGroupHeartbeat,
];

/// APIs whose responses hold names the crate does not type as such, or list entries a tenant may
/// not see (see [`response_to_client`]).
const RESPONSES_WITH_OTHER_NAMES: [ApiKey; 9] = [
    ApiKey::FindCoordinator,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeAcls,
    ApiKey::DeleteAcls,
    ApiKey::Metadata,
    ApiKey::ListGroups,
    ApiKey::ListTransactions,
];

/// Whether a request of this API may carry a name to map (Produce is edited in place instead,
/// see [`crate::name_edit`]).
pub fn request_needs_rewrite(key: ApiKey) -> bool {
    key != ApiKey::Produce
        && (APIS_WITH_TOPIC_NAMES_IN_REQUESTS.contains(&key)
            || APIS_WITH_GROUP_IDS_IN_REQUESTS.contains(&key)
            || APIS_WITH_TRANSACTIONAL_IDS_IN_REQUESTS.contains(&key)
            || REQUESTS_WITH_OTHER_NAMES.contains(&key))
}

/// Whether a response of this API may carry a name to map back or hide (Fetch is edited in
/// place instead, see [`crate::name_edit`]).
pub fn response_needs_rewrite(key: ApiKey) -> bool {
    key != ApiKey::Fetch
        && (APIS_WITH_TOPIC_NAMES_IN_RESPONSES.contains(&key)
            || APIS_WITH_GROUP_IDS_IN_RESPONSES.contains(&key)
            || APIS_WITH_TRANSACTIONAL_IDS_IN_RESPONSES.contains(&key)
            || RESPONSES_WITH_OTHER_NAMES.contains(&key))
}

/// Rewrites every name of a request from the client's view to the broker's.
pub fn request_to_broker(request: &mut RequestKind, renamer: &Renamer) -> Rewritten {
    let mut done = Rewritten::default();
    if renamer.is_identity() {
        return done;
    }
    let map = |kind: NameKind, name: &str| renamer.to_broker(kind, name);
    let mut visit = |kind: NameKind, field: &mut StrBytes| {
        let before = field.as_str().to_owned();
        match map_name(field, kind, &map) {
            Mapped::Renamed(_) => done.renamed += 1,
            Mapped::Hidden => done.hidden_in_request.push((kind, before)),
            Mapped::Same => {}
        }
    };
    request_names_mut(request, &mut visit);
    let mut visit_as = |kind: Option<NameKind>, field: &mut StrBytes| {
        if let Some(kind) = kind {
            visit(kind, field);
        }
    };
    match request {
        RequestKind::FindCoordinator(r) => {
            let kind = key_kind(r.key_type);
            visit_as(kind, &mut r.key);
            r.coordinator_keys.iter_mut().for_each(|key| visit_as(kind, key));
        }
        RequestKind::DescribeConfigs(r) => {
            r.resources.iter_mut().for_each(|x| visit_as(resource_kind(x.resource_type, false), &mut x.resource_name))
        }
        RequestKind::AlterConfigs(r) => {
            r.resources.iter_mut().for_each(|x| visit_as(resource_kind(x.resource_type, false), &mut x.resource_name))
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            r.resources.iter_mut().for_each(|x| visit_as(resource_kind(x.resource_type, false), &mut x.resource_name))
        }
        RequestKind::CreateAcls(r) => {
            r.creations.iter_mut().for_each(|x| visit_as(resource_kind(x.resource_type, true), &mut x.resource_name))
        }
        RequestKind::DescribeAcls(r) => {
            if let Some(name) = &mut r.resource_name_filter {
                visit_as(resource_kind(r.resource_type_filter, true), name);
            }
        }
        RequestKind::DeleteAcls(r) => r.filters.iter_mut().for_each(|x| {
            if let Some(name) = &mut x.resource_name_filter {
                visit_as(resource_kind(x.resource_type_filter, true), name);
            }
        }),
        RequestKind::ConsumerGroupHeartbeat(r) => {
            // The broker matches the regex against its own topic names: only a tenant's names.
            if let (Some(regex), Some(prefix)) = (&mut r.subscribed_topic_regex, renamer.prefix()) {
                if !regex.is_empty() {
                    set(regex, format!("{}(?:{})", escape_regex(prefix), regex.as_str()));
                    done.renamed += 1;
                }
            }
        }
        _ => {}
    }
    done
}

fn escape_regex(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() * 2);
    for c in literal.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Rewrites every name of a response from the broker's view to the client's; entries the client
/// may not see are removed from listings, and blanked where a response names them otherwise.
pub fn response_to_client(response: &mut ResponseKind, renamer: &Renamer) -> Rewritten {
    let mut done = Rewritten::default();
    if renamer.is_identity() {
        return done;
    }
    let map = |kind: NameKind, name: &str| renamer.to_client(kind, name);
    let hidden = |kind: NameKind, name: &str| !name.is_empty() && map(kind, name) == Mapped::Hidden;
    // Listings first: hidden entries go before the names are rewritten.
    done.hidden_in_response += remove_hidden(response, &hidden, renamer.prefix().is_some());
    let mut visit = |kind: NameKind, field: &mut StrBytes| match map_name(field, kind, &map) {
        Mapped::Renamed(_) => done.renamed += 1,
        Mapped::Hidden => {
            *field = StrBytes::default();
            done.hidden_in_response += 1;
        }
        Mapped::Same => {}
    };
    response_names_mut(response, &mut visit);
    let mut visit_as = |kind: Option<NameKind>, field: &mut StrBytes| {
        if let Some(kind) = kind {
            visit(kind, field);
        }
    };
    match response {
        ResponseKind::FindCoordinator(r) => {
            // v4+ echoes the keys (not their type): groups and transactions share the tenant prefix.
            r.coordinators.iter_mut().for_each(|c| visit_as(Some(NameKind::Group), &mut c.key));
        }
        ResponseKind::DescribeConfigs(r) => {
            r.results.iter_mut().for_each(|x| visit_as(resource_kind(x.resource_type, false), &mut x.resource_name))
        }
        ResponseKind::AlterConfigs(r) => {
            r.responses.iter_mut().for_each(|x| visit_as(resource_kind(x.resource_type, false), &mut x.resource_name))
        }
        ResponseKind::IncrementalAlterConfigs(r) => {
            r.responses.iter_mut().for_each(|x| visit_as(resource_kind(x.resource_type, false), &mut x.resource_name))
        }
        ResponseKind::DescribeAcls(r) => {
            r.resources.iter_mut().for_each(|x| visit_as(resource_kind(x.resource_type, true), &mut x.resource_name))
        }
        ResponseKind::DeleteAcls(r) => r
            .filter_results
            .iter_mut()
            .flat_map(|f| f.matching_acls.iter_mut())
            .for_each(|x| visit_as(resource_kind(x.resource_type, true), &mut x.resource_name)),
        _ => {}
    }
    done.renamed += error_messages_to_client(response, renamer);
    done
}

/// Removes the entries of listing responses whose names are hidden; returns how many. Under a
/// tenant prefix, topics without a name (a Metadata request naming them by id) go too: their
/// tenant cannot be told.
fn remove_hidden(response: &mut ResponseKind, hidden: &dyn Fn(NameKind, &str) -> bool, tenant: bool) -> usize {
    fn retain<T>(items: &mut Vec<T>, keep: impl Fn(&T) -> bool) -> usize {
        let before = items.len();
        items.retain(|item| keep(item));
        before - items.len()
    }
    let topic = |name: &str| hidden(NameKind::Topic, name);
    let unnamed_or_hidden = |name: Option<&TopicName>| match name {
        Some(n) if !n.is_empty() => topic(n.as_str()),
        _ => tenant,
    };
    match response {
        ResponseKind::Metadata(r) => retain(&mut r.topics, |t| !unnamed_or_hidden(t.name.as_ref())),
        ResponseKind::ListGroups(r) => retain(&mut r.groups, |g| !hidden(NameKind::Group, g.group_id.as_str())),
        ResponseKind::ListTransactions(r) => {
            retain(&mut r.transaction_states, |t| !hidden(NameKind::TransactionalId, t.transactional_id.as_str()))
        }
        ResponseKind::DescribeAcls(r) => {
            retain(&mut r.resources, |x| !resource_kind(x.resource_type, true).is_some_and(|k| hidden(k, x.resource_name.as_str())))
        }
        ResponseKind::DescribeLogDirs(r) => r.results.iter_mut().map(|dir| retain(&mut dir.topics, |t| !topic(t.name.as_str()))).sum(),
        ResponseKind::ListPartitionReassignments(r) => retain(&mut r.topics, |t| !topic(t.name.as_str())),
        ResponseKind::DescribeTopicPartitions(r) => {
            let removed = retain(&mut r.topics, |t| !unnamed_or_hidden(t.name.as_ref()));
            if r.next_cursor.as_ref().is_some_and(|c| topic(c.topic_name.as_str())) {
                // The next page starts at a topic this client cannot see: the listing ends here.
                r.next_cursor = None;
            }
            removed
        }
        _ => 0,
    }
}

/// Rewrites the broker names inside the error messages of the responses that echo topic names.
fn error_messages_to_client(response: &mut ResponseKind, renamer: &Renamer) -> usize {
    let mut changed = 0;
    let mut fix = |message: &mut Option<StrBytes>| {
        if let Some(text) = message.as_mut() {
            if let Some(new) = renamer.text_to_client(text.as_str()) {
                set(text, new);
                changed += 1;
            }
        }
    };
    match response {
        ResponseKind::CreateTopics(r) => r.topics.iter_mut().for_each(|t| fix(&mut t.error_message)),
        ResponseKind::DeleteTopics(r) => r.responses.iter_mut().for_each(|t| fix(&mut t.error_message)),
        ResponseKind::CreatePartitions(r) => r.results.iter_mut().for_each(|t| fix(&mut t.error_message)),
        ResponseKind::Produce(r) => {
            r.responses.iter_mut().flat_map(|t| t.partition_responses.iter_mut()).for_each(|p| fix(&mut p.error_message))
        }
        ResponseKind::DescribeConfigs(r) => r.results.iter_mut().for_each(|x| fix(&mut x.error_message)),
        ResponseKind::AlterConfigs(r) => r.responses.iter_mut().for_each(|x| fix(&mut x.error_message)),
        ResponseKind::IncrementalAlterConfigs(r) => r.responses.iter_mut().for_each(|x| fix(&mut x.error_message)),
        ResponseKind::FindCoordinator(r) => {
            fix(&mut r.error_message);
            r.coordinators.iter_mut().for_each(|c| fix(&mut c.error_message));
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::api;
    use crate::refusal::{
        self,
        tests::{client_reads, off_the_wire, sample},
    };
    use kafka_protocol::messages::*;

    fn s(v: &str) -> StrBytes {
        StrBytes::from_string(v.to_owned())
    }

    fn renames(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    fn tenant() -> Renamer {
        Renamer::new(&renames(&[("orders", "orders.v2")]), Some("team-a.".into()))
    }

    #[test]
    fn renamer_is_a_bijection_on_what_the_client_sees() {
        let r = Renamer::new(&renames(&[("orders", "orders.v2")]), None);
        assert_eq!(r.to_broker(NameKind::Topic, "orders"), Mapped::Renamed("orders.v2".into()));
        assert_eq!(r.to_broker(NameKind::Topic, "payments"), Mapped::Same);
        // The target is reachable only as `orders`; the old topic is gone from the client's view.
        assert_eq!(r.to_broker(NameKind::Topic, "orders.v2"), Mapped::Hidden);
        assert_eq!(r.to_client(NameKind::Topic, "orders.v2"), Mapped::Renamed("orders".into()));
        assert_eq!(r.to_client(NameKind::Topic, "orders"), Mapped::Hidden);
        // Renames are for topics only.
        assert_eq!(r.to_broker(NameKind::Group, "orders"), Mapped::Same);

        let t = tenant();
        assert_eq!(t.to_broker(NameKind::Topic, "orders"), Mapped::Renamed("team-a.orders.v2".into()));
        assert_eq!(t.to_broker(NameKind::Topic, "x"), Mapped::Renamed("team-a.x".into()));
        assert_eq!(t.to_broker(NameKind::Group, "g"), Mapped::Renamed("team-a.g".into()));
        assert_eq!(t.to_client(NameKind::Topic, "team-a.orders.v2"), Mapped::Renamed("orders".into()));
        assert_eq!(t.to_client(NameKind::Topic, "team-a.x"), Mapped::Renamed("x".into()));
        assert_eq!(t.to_client(NameKind::Topic, "team-b.x"), Mapped::Hidden);
        assert_eq!(t.to_client(NameKind::TransactionalId, "tx"), Mapped::Hidden);
        for name in ["a", "orders", "team-a.b", "x.y-z_"] {
            for kind in [NameKind::Topic, NameKind::Group, NameKind::TransactionalId] {
                let Mapped::Renamed(broker) = t.to_broker(kind, name) else { panic!("{name}") };
                assert_eq!(t.to_client(kind, &broker), Mapped::Renamed(name.into()), "{kind:?} {name}");
            }
        }
    }

    #[test]
    fn error_messages_name_what_the_client_knows() {
        let t = tenant();
        assert_eq!(t.text_to_client("Topic 'team-a.orders.v2' already exists.").as_deref(), Some("Topic 'orders' already exists."));
        assert_eq!(t.text_to_client("Topic team-a.x has 3 partitions").as_deref(), Some("Topic x has 3 partitions"));
        // Not at a word start, or nothing to do.
        assert_eq!(t.text_to_client("xteam-a.y and team-a.orders.v2x"), Some("xteam-a.y and orders.v2x".into()));
        assert_eq!(t.text_to_client("nothing here"), None);
        let r = Renamer::new(&renames(&[("orders", "orders.v2")]), None);
        assert_eq!(r.text_to_client("Topic orders.v2 is marked for deletion").as_deref(), Some("Topic orders is marked for deletion"));
        assert_eq!(r.text_to_client("Topic orders.v2.x"), None);
    }

    /// Client view → broker view → client view is the identity for every API and version the
    /// codec knows whose requests name topics, groups or transactional ids (refusal's samples name
    /// two of each), and every name reaches the broker with the tenant's prefix.
    #[test]
    fn every_name_carrying_request_round_trips() {
        let t = tenant();
        let mut checked = 0;
        for key in ApiKey::iter() {
            let carries = APIS_WITH_TOPIC_NAMES_IN_REQUESTS.contains(&key)
                || APIS_WITH_GROUP_IDS_IN_REQUESTS.contains(&key)
                || APIS_WITH_TRANSACTIONAL_IDS_IN_REQUESTS.contains(&key)
                || matches!(
                    key,
                    ApiKey::FindCoordinator
                        | ApiKey::DescribeConfigs
                        | ApiKey::AlterConfigs
                        | ApiKey::IncrementalAlterConfigs
                        | ApiKey::CreateAcls
                );
            if !carries || !refusal::can_answer(key) {
                continue;
            }
            let versions = api::versions(key);
            for v in versions.min..=versions.max {
                let client = off_the_wire(key, v, &sample(key, v));
                let mut broker = client.clone();
                let done = request_to_broker(&mut broker, &t);
                assert!(done.hidden_in_request.is_empty(), "{key:?} v{v}");
                let broker = off_the_wire(key, v, &broker);
                // Every non-empty name on the wire now carries the prefix.
                let mut back = broker.clone();
                let mut names = 0;
                request_names_mut(&mut back, &mut |kind, name| {
                    if !name.is_empty() {
                        names += 1;
                        let Mapped::Renamed(client_name) = t.to_client(kind, name.as_str()) else {
                            panic!("{key:?} v{v}: {name:?} not prefixed")
                        };
                        *name = s(&client_name);
                    }
                });
                // The hand-handled fields (coordinator keys, resources) are checked by their own test.
                if matches!(
                    key,
                    ApiKey::FindCoordinator
                        | ApiKey::DescribeConfigs
                        | ApiKey::AlterConfigs
                        | ApiKey::IncrementalAlterConfigs
                        | ApiKey::CreateAcls
                ) {
                    continue;
                }
                assert!(names > 0 || done.renamed == 0, "{key:?} v{v}: renamed fields the walker does not see");
                assert_eq!(off_the_wire(key, v, &back), client, "{key:?} v{v}: client → broker → client is not identity");
                checked += 1;
            }
        }
        assert!(checked > 100, "only {checked} versions checked");
    }

    /// The broker's answer to the renamed request, rewritten for the client, is the answer to the
    /// client's own request: for every API and version that names entries in its responses.
    #[test]
    fn every_response_reads_as_the_answer_to_the_clients_request() {
        let t = tenant();
        let mut checked = 0;
        for key in ApiKey::iter().filter(|k| refusal::can_answer(*k)) {
            let versions = api::versions(key);
            for v in versions.min..=versions.max {
                let client = off_the_wire(key, v, &sample(key, v));
                let mut broker = client.clone();
                request_to_broker(&mut broker, &t);
                let broker = off_the_wire(key, v, &broker);
                let Some(expected) = refusal::error_response(&client, v, 3, Some("Topic x is gone")) else {
                    continue;
                };
                let mut got = refusal::error_response(&broker, v, 3, Some("Topic x is gone")).unwrap();
                response_to_client(&mut got, &t);
                assert_eq!(client_reads(key, v, &got), client_reads(key, v, &expected), "{key:?} v{v}");
                checked += 1;
            }
        }
        assert!(checked > 150, "only {checked} versions checked");
    }

    #[test]
    fn coordinator_keys_and_resources_follow_their_types() {
        let t = tenant();
        let mut find = RequestKind::FindCoordinator(
            FindCoordinatorRequest::default().with_key_type(1).with_coordinator_keys(vec![s("tx")]).with_key(s("tx")),
        );
        request_to_broker(&mut find, &t);
        let RequestKind::FindCoordinator(f) = &find else { panic!() };
        assert_eq!((f.key.as_str(), f.coordinator_keys[0].as_str()), ("team-a.tx", "team-a.tx"));

        let resource = |kind: i8, name: &str| {
            describe_configs_request::DescribeConfigsResource::default().with_resource_type(kind).with_resource_name(s(name))
        };
        let mut describe = RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![
            resource(2, "orders"),
            resource(4, "1"),
            resource(32, "g"),
        ]));
        request_to_broker(&mut describe, &t);
        let RequestKind::DescribeConfigs(d) = &describe else { panic!() };
        let names: Vec<&str> = d.resources.iter().map(|r| r.resource_name.as_str()).collect();
        assert_eq!(names, ["team-a.orders.v2", "1", "team-a.g"]);

        let mut regex =
            RequestKind::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest::default().with_subscribed_topic_regex(Some(s("ord.*"))));
        request_to_broker(&mut regex, &t);
        let RequestKind::ConsumerGroupHeartbeat(h) = &regex else { panic!() };
        assert_eq!(h.subscribed_topic_regex.as_ref().unwrap().as_str(), "team\\-a\\.(?:ord.*)");
    }

    #[test]
    fn listings_show_only_the_tenants_entries() {
        let t = tenant();
        let topic = |n: &str| metadata_response::MetadataResponseTopic::default().with_name(Some(TopicName(s(n))));
        let mut metadata = ResponseKind::Metadata(MetadataResponse::default().with_topics(vec![
            topic("team-a.x"),
            topic("team-b.x"),
            topic("other"),
            topic("team-a.orders.v2"),
        ]));
        let done = response_to_client(&mut metadata, &t);
        let ResponseKind::Metadata(m) = &metadata else { panic!() };
        let names: Vec<&str> = m.topics.iter().map(|t| t.name.as_ref().unwrap().as_str()).collect();
        assert_eq!(names, ["x", "orders"]);
        assert_eq!(done.hidden_in_response, 2);

        let group = |g: &str| list_groups_response::ListedGroup::default().with_group_id(GroupId(s(g)));
        let mut groups = ResponseKind::ListGroups(ListGroupsResponse::default().with_groups(vec![group("team-a.g"), group("team-b.g")]));
        response_to_client(&mut groups, &t);
        let ResponseKind::ListGroups(g) = &groups else { panic!() };
        assert_eq!(g.groups.iter().map(|g| g.group_id.as_str()).collect::<Vec<_>>(), ["g"]);

        let acl =
            |kind: i8, n: &str| describe_acls_response::DescribeAclsResource::default().with_resource_type(kind).with_resource_name(s(n));
        let mut acls = ResponseKind::DescribeAcls(DescribeAclsResponse::default().with_resources(vec![
            acl(2, "team-b.x"),
            acl(2, "team-a.x"),
            acl(4, "kafka-cluster"),
        ]));
        response_to_client(&mut acls, &t);
        let ResponseKind::DescribeAcls(a) = &acls else { panic!() };
        assert_eq!(a.resources.iter().map(|r| r.resource_name.as_str()).collect::<Vec<_>>(), ["x", "kafka-cluster"]);
    }

    #[test]
    fn identity_renamer_changes_nothing() {
        let r = Renamer::default();
        assert!(r.is_identity());
        let mut request = sample(ApiKey::Produce, 9);
        let before = request.clone();
        assert_eq!(request_to_broker(&mut request, &r), Rewritten::default());
        assert_eq!(request, before);
    }
}
