//! What a connection did, for Envoy's access log: client id, identity, client software, the APIs
//! it used, the topics it touched, the last error a response carried, why the filter closed it.
//!
//! Collected in plain fields as frames pass (no hostcall), and handed to Envoy once, when the
//! connection ends, as properties (`wasm.kafka_lens.*` filter state) that a standard access log
//! prints with `%FILTER_STATE(wasm.kafka_lens.client_id:PLAIN)%` — see
//! `envoy-configs/access-log.yaml`.

/// Distinct topics remembered per connection; more are counted, not named.
pub const MAX_TOPICS: usize = 16;

/// Longest value of one property (client-supplied strings are cut).
const MAX_VALUE: usize = 256;

/// See the module documentation.
#[derive(Debug, Default, Clone)]
pub struct ConnectionFacts {
    /// Requests per API, in order of first use.
    apis: Vec<(&'static str, u64)>,
    last_api: Option<&'static str>,
    /// Topics touched (broker names), in order of first use.
    topics: Vec<String>,
    /// Distinct topics beyond [`MAX_TOPICS`].
    more_topics: u64,
    last_error: Option<&'static str>,
    errors: u64,
}

/// The values the access log can print, by property name.
pub type Properties = Vec<(&'static str, String)>;

fn cut(value: &str) -> String {
    let mut end = value.len().min(MAX_VALUE);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.get(..end).unwrap_or_default().to_owned()
}

impl ConnectionFacts {
    /// A request of `api` was sent.
    pub fn request(&mut self, api: &'static str) {
        self.last_api = Some(api);
        match self.apis.iter_mut().find(|(name, _)| *name == api) {
            Some((_, n)) => *n += 1,
            None => self.apis.push((api, 1)),
        }
    }

    /// A request named `topic` (empty names, e.g. topics addressed by id, are skipped).
    pub fn topic(&mut self, topic: &str) {
        if topic.is_empty() || self.topics.iter().any(|t| t == topic) {
            return;
        }
        if self.topics.len() < MAX_TOPICS {
            self.topics.push(cut(topic));
        } else {
            self.more_topics += 1;
        }
    }

    /// A response carried the error `name`.
    pub fn error(&mut self, name: &'static str) {
        self.last_error = Some(name);
        self.errors += 1;
    }

    /// The properties, under `kafka_lens.<name>`; empty values are left out.
    pub fn properties(&self, client_id: Option<&str>, identity: &str, software: Option<(&str, &str)>, closed_by_filter: Option<&str>) -> Properties {
        let mut out: Properties = Vec::new();
        let mut put = |name: &'static str, value: String| {
            if !value.is_empty() {
                out.push((name, value));
            }
        };
        put("kafka_lens.client_id", client_id.map(cut).unwrap_or_default());
        put("kafka_lens.identity", cut(identity));
        put("kafka_lens.client_software", software.map(|(n, v)| cut(&format!("{n}/{v}"))).unwrap_or_default());
        put("kafka_lens.last_api", self.last_api.unwrap_or_default().to_owned());
        put("kafka_lens.apis", self.apis.iter().map(|(api, n)| format!("{api}:{n}")).collect::<Vec<_>>().join(","));
        let mut topics = self.topics.join(",");
        if self.more_topics > 0 {
            topics.push_str(&format!(",+{} more", self.more_topics));
        }
        put("kafka_lens.topics", topics);
        put("kafka_lens.last_error", self.last_error.unwrap_or_default().to_owned());
        put("kafka_lens.errors", if self.errors > 0 { self.errors.to_string() } else { String::new() });
        put("kafka_lens.closed_by_filter", closed_by_filter.unwrap_or_default().to_owned());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_become_properties() {
        let mut facts = ConnectionFacts::default();
        for api in ["ApiVersions", "Metadata", "Produce", "Produce"] {
            facts.request(api);
        }
        facts.topic("orders");
        facts.topic("orders");
        facts.topic("");
        facts.error("NOT_LEADER_OR_FOLLOWER");
        let props = facts.properties(Some("shop"), "client_id:shop", Some(("librdkafka", "2.16.0")), None);
        let get = |name: &str| props.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("kafka_lens.client_id"), Some("shop"));
        assert_eq!(get("kafka_lens.client_software"), Some("librdkafka/2.16.0"));
        assert_eq!(get("kafka_lens.last_api"), Some("Produce"));
        assert_eq!(get("kafka_lens.apis"), Some("ApiVersions:1,Metadata:1,Produce:2"));
        assert_eq!(get("kafka_lens.topics"), Some("orders"));
        assert_eq!(get("kafka_lens.last_error"), Some("NOT_LEADER_OR_FOLLOWER"));
        assert_eq!(get("kafka_lens.errors"), Some("1"));
        assert_eq!(get("kafka_lens.closed_by_filter"), None);
    }

    #[test]
    fn topics_and_values_are_bounded() {
        let mut facts = ConnectionFacts::default();
        for i in 0..(MAX_TOPICS + 3) {
            facts.topic(&format!("t{i}"));
        }
        facts.topic(&"é".repeat(300));
        let props = facts.properties(Some(&"x".repeat(1000)), "", None, Some("frame_too_large"));
        let get = |name: &str| props.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        assert!(get("kafka_lens.topics").unwrap().ends_with(",+4 more"));
        assert_eq!(get("kafka_lens.client_id").unwrap().len(), MAX_VALUE);
        assert_eq!(get("kafka_lens.identity"), None);
        assert_eq!(get("kafka_lens.closed_by_filter").as_deref(), Some("frame_too_large"));
    }
}
