//! Topic identity: Kafka names topics by name, and from Produce/Fetch v13 by a 16-byte id only.
//!
//! Per-topic metrics need names, so the filter learns id → name from Metadata responses (v10+
//! carry both) and keeps the map in proxy-wasm shared data, where every worker VM sees it: a
//! consumer's Metadata and its Fetch requests may run on different connections and VMs. A topic
//! whose id was never seen in a Metadata response is labelled `id-<hex>`.

use std::collections::HashMap;

use kafka_lens_codec::kafka_protocol::messages::MetadataResponse;

use crate::labels::Label;
use crate::metrics::{LabelKind, MetricSink};

/// How a message names a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicRef {
    Name(String),
    Id([u8; 16]),
}

impl TopicRef {
    /// From a message's name and id fields: the id where the version carries one (not nil).
    pub fn new(name: &str, id: &[u8; 16]) -> Self {
        if id.iter().any(|b| *b != 0) {
            TopicRef::Id(*id)
        } else {
            TopicRef::Name(name.to_string())
        }
    }

    /// Whether a message's name and id fields name this topic (no allocation).
    pub fn is(&self, name: &str, id: &[u8; 16]) -> bool {
        match self {
            TopicRef::Id(own) => own == id,
            TopicRef::Name(own) => id.iter().all(|b| *b == 0) && own == name,
        }
    }
}

fn key(id: &[u8; 16]) -> String {
    format!("kafka-lens/topic-id/{}", hex(id))
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The topic's name: as sent, or looked up from its id.
pub fn name(sink: &mut dyn MetricSink, topic: &TopicRef) -> Option<String> {
    match topic {
        TopicRef::Name(name) => Some(name.clone()),
        TopicRef::Id(id) => {
            let store = sink.shared()?;
            match store.get(&key(id)) {
                Ok(Some((name, _))) => String::from_utf8(name).ok(),
                _ => None,
            }
        }
    }
}

/// How a topic known only by its id is named in labels, logs and policy decisions: `id-<hex>`.
pub fn id_label(id: &[u8; 16]) -> String {
    format!("id-{}", hex(id))
}

/// The `topic` label: the (capped, sanitized) name, or `id-<hex>` for an id not yet learned.
pub fn label(sink: &mut dyn MetricSink, topic: &TopicRef) -> Label {
    match (name(sink, topic), topic) {
        (Some(name), _) => sink.label(LabelKind::Topic, Some(&name)),
        (None, TopicRef::Id(id)) => sink.label(LabelKind::Topic, Some(&id_label(id))),
        (None, TopicRef::Name(name)) => sink.label(LabelKind::Topic, Some(name)),
    }
}

/// Topic labels a connection already resolved: a client names the same few topics in every
/// request, and resolving one costs a sanitize, a cap lookup and, for ids, a shared-data read.
#[derive(Debug, Default)]
pub struct TopicLabels {
    cache: HashMap<TopicRef, Label>,
}

/// Topics one connection remembers labels for; beyond, labels are resolved every time.
const MAX_CACHED_TOPICS: usize = 1000;

impl TopicLabels {
    /// The `topic` label of `topic` (see [`label`]); an id not learned yet is looked up again
    /// next time.
    pub fn get(&mut self, sink: &mut dyn MetricSink, topic: &TopicRef) -> Label {
        if let Some(label) = self.cache.get(topic) {
            return label.clone();
        }
        let label = label(sink, topic);
        let unresolved_id = matches!(topic, TopicRef::Id(_)) && label.as_str().starts_with("id-");
        if !unresolved_id && self.cache.len() < MAX_CACHED_TOPICS {
            self.cache.insert(topic.clone(), label.clone());
        }
        label
    }
}

/// Learns the id → name pairs a Metadata response carries (versions 10+; ids of older versions
/// are nil and ignored). Names are written once; a name already stored is not rewritten.
pub fn learn(sink: &mut dyn MetricSink, metadata: &MetadataResponse) {
    let Some(store) = sink.shared() else { return };
    for topic in &metadata.topics {
        let id = topic.topic_id.as_bytes();
        let Some(name) = topic.name.as_ref() else { continue };
        if id.iter().all(|b| *b == 0) || topic.error_code != 0 {
            continue;
        }
        let key = key(id);
        if matches!(store.get(&key), Ok(Some((stored, _))) if stored == name.as_bytes()) {
            continue;
        }
        let _ = store.set(&key, name.as_bytes(), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestSink;
    use kafka_lens_codec::kafka_protocol::messages::metadata_response::MetadataResponseTopic;
    use kafka_lens_codec::kafka_protocol::messages::TopicName;
    use kafka_lens_codec::kafka_protocol::protocol::StrBytes;

    #[test]
    fn ids_resolve_once_learned_from_metadata() {
        let mut sink = TestSink::default();
        let id = [7u8; 16];
        let topic = TopicRef::new("", &id);
        assert_eq!(label(&mut sink, &topic).as_str(), "id-07070707070707070707070707070707");
        let metadata = MetadataResponse::default().with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))
            .with_topic_id(uuid::Uuid::from_bytes(id))]);
        learn(&mut sink, &metadata);
        assert_eq!(label(&mut sink, &topic).as_str(), "orders");
        assert_eq!(TopicRef::new("orders", &[0; 16]), TopicRef::Name("orders".into()));
    }
}
