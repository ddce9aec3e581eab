//! Broker address rewriting: the `broker_addresses` configuration and the mapping it defines.
//!
//! When clients reach brokers only through Envoy (one listener per broker), every address a
//! response advertises must be the proxy's, or clients connect to the broker directly (or fail to
//! resolve an in-cluster name). The codec's [`kafka_lens_codec::addresses`] finds the addresses;
//! this module says what they become.

use serde::Deserialize;

/// `broker_addresses` in the filter configuration; empty by default (nothing rewritten).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerAddresses {
    /// What each broker is advertised as, by node id or by the broker's own `host:port`.
    pub rewrite: Vec<AddressRule>,
    /// KIP-951 `NodeEndpoints` in Produce (v10+) and Fetch (v16+) responses: `cap_versions`
    /// (default: advertise Produce up to v9 and Fetch up to v15, whose responses carry none) or
    /// `rewrite` (hold those responses whole and rewrite them: a copy of every such response).
    pub node_endpoints: NodeEndpoints,
}

/// How `NodeEndpoints` are kept from leaking broker addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeEndpoints {
    #[default]
    CapVersions,
    Rewrite,
}

/// One broker's advertised address.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressRule {
    /// The broker's node id.
    #[serde(default)]
    pub node_id: Option<i32>,
    /// The broker's own advertised `host:port`.
    #[serde(default)]
    pub broker: Option<String>,
    /// The `host:port` clients are given instead (the proxy's listener for that broker).
    pub advertise: String,
}

fn host_port(s: &str) -> Option<(&str, i32)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: i32 = port.parse().ok()?;
    (!host.is_empty() && (1..=65535).contains(&port)).then_some((host, port))
}

impl BrokerAddresses {
    pub fn is_empty(&self) -> bool {
        self.rewrite.is_empty()
    }

    /// Checks each rule names one broker and a valid address. Errors are `(field path, message)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, rule) in self.rewrite.iter().enumerate() {
            let at = |f: &str| format!("broker_addresses.rewrite[{i}]{f}");
            if rule.node_id.is_some() == rule.broker.is_some() {
                return Err((at(""), "give exactly one of node_id and broker".into()));
            }
            if let Some(broker) = &rule.broker {
                if host_port(broker).is_none() {
                    return Err((at(".broker"), format!("expected host:port, got {broker:?}")));
                }
            }
            if host_port(&rule.advertise).is_none() {
                return Err((at(".advertise"), format!("expected host:port with a port in 1..65535, got {:?}", rule.advertise)));
            }
        }
        Ok(())
    }

    /// The address to advertise for a broker a response names, if a rule maps it.
    pub fn map(&self, node_id: i32, host: &str, port: i32) -> Option<(String, i32)> {
        self.rewrite.iter().find_map(|rule| {
            let hit = match (&rule.node_id, &rule.broker) {
                (Some(id), _) => *id == node_id,
                (None, Some(broker)) => host_port(broker) == Some((host, port)),
                (None, None) => false,
            };
            if !hit {
                return None;
            }
            host_port(&rule.advertise).map(|(h, p)| (h.to_string(), p))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn maps_by_node_id_or_broker_address() {
        let a: BrokerAddresses = serde_json::from_str(
            r#"{"rewrite": [{"node_id": 1, "advertise": "proxy:19093"}, {"broker": "b0.kafka:9092", "advertise": "proxy:19092"}]}"#,
        )
        .unwrap();
        a.validate().unwrap();
        assert_eq!(a.map(1, "anything", 1), Some(("proxy".into(), 19093)));
        assert_eq!(a.map(0, "b0.kafka", 9092), Some(("proxy".into(), 19092)));
        assert_eq!(a.map(0, "b0.kafka", 9093), None);
        assert_eq!(a.node_endpoints, NodeEndpoints::CapVersions);
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn invalid_rules_name_their_field() {
        for (json, field) in [
            (r#"{"rewrite": [{"advertise": "p:1"}]}"#, "broker_addresses.rewrite[0]"),
            (r#"{"rewrite": [{"node_id": 1, "broker": "b:1", "advertise": "p:1"}]}"#, "broker_addresses.rewrite[0]"),
            (r#"{"rewrite": [{"broker": "b", "advertise": "p:1"}]}"#, "broker_addresses.rewrite[0].broker"),
            (r#"{"rewrite": [{"node_id": 1, "advertise": "p:70000"}]}"#, "broker_addresses.rewrite[0].advertise"),
        ] {
            let a: BrokerAddresses = serde_json::from_str(json).unwrap();
            assert_eq!(a.validate().unwrap_err().0, field, "{json}");
        }
    }
}
