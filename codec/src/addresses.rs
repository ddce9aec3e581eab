//! Broker addresses in responses.
//!
//! Clients connect to the brokers a response advertises: Metadata and DescribeCluster list them,
//! FindCoordinator names the coordinator, and since KIP-951 Produce (v10+) and Fetch (v16+)
//! responses may carry `NodeEndpoints` (in a trailing tagged field) when a partition's leader
//! moved. A proxy that clients must not bypass rewrites every one of them to its own addresses.

use kafka_protocol::messages::{ApiKey, ResponseKind};
use kafka_protocol::protocol::StrBytes;

/// Whether responses to `key` at `version` can carry broker addresses.
pub fn carries_addresses(key: ApiKey, version: i16) -> bool {
    match key {
        ApiKey::Metadata | ApiKey::FindCoordinator | ApiKey::DescribeCluster => true,
        ApiKey::Produce => version >= 10,
        ApiKey::Fetch => version >= 16,
        _ => false,
    }
}

/// The last versions of Produce and Fetch whose responses carry no `NodeEndpoints`: capping the
/// advertised versions there keeps broker addresses out of those (large, record-carrying)
/// responses without holding them.
pub const NODE_ENDPOINT_FREE_VERSIONS: [(ApiKey, i16); 2] = [(ApiKey::Produce, 9), (ApiKey::Fetch, 15)];

/// Where a broker is reached: what the mapping returns for an advertised `(node_id, host, port)`.
pub type Mapping<'a> = dyn FnMut(i32, &str, i32) -> Option<(String, i32)> + 'a;

fn apply(map: &mut Mapping, node_id: i32, host: &mut StrBytes, port: &mut i32) -> usize {
    match map(node_id, host.as_str(), *port) {
        Some((new_host, new_port)) if new_host != host.as_str() || new_port != *port => {
            *host = StrBytes::from_string(new_host);
            *port = new_port;
            1
        }
        _ => 0,
    }
}

/// Rewrites every broker address `response` advertises through `map` (`None` keeps an address).
/// Returns how many addresses changed.
pub fn rewrite(response: &mut ResponseKind, map: &mut Mapping) -> usize {
    let mut changed = 0;
    match response {
        ResponseKind::Metadata(r) => {
            for b in &mut r.brokers {
                changed += apply(map, b.node_id.0, &mut b.host, &mut b.port);
            }
        }
        ResponseKind::DescribeCluster(r) => {
            for b in &mut r.brokers {
                changed += apply(map, b.broker_id.0, &mut b.host, &mut b.port);
            }
        }
        ResponseKind::FindCoordinator(r) => {
            if !r.host.is_empty() {
                changed += apply(map, r.node_id.0, &mut r.host, &mut r.port);
            }
            for c in &mut r.coordinators {
                if !c.host.is_empty() {
                    changed += apply(map, c.node_id.0, &mut c.host, &mut c.port);
                }
            }
        }
        ResponseKind::Produce(r) => {
            for e in &mut r.node_endpoints {
                changed += apply(map, e.node_id.0, &mut e.host, &mut e.port);
            }
        }
        ResponseKind::Fetch(r) => {
            for e in &mut r.node_endpoints {
                changed += apply(map, e.node_id.0, &mut e.host, &mut e.port);
            }
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body;
    use bytes::Bytes;
    use kafka_protocol::messages::{
        fetch_response, metadata_response::MetadataResponseBroker, produce_response, BrokerId, FetchResponse, MetadataResponse,
        ProduceResponse, ResponseHeader,
    };

    fn to_proxy(node_id: i32, host: &str, port: i32) -> Option<(String, i32)> {
        (host == "broker-0.internal" && port == 9092).then(|| ("proxy.example".to_string(), 19092 + node_id))
    }

    #[allow(clippy::unwrap_used)]
    fn round_trip(response: ResponseKind, key: ApiKey, version: i16) -> ResponseKind {
        let frame = body::encode_response(&ResponseHeader::default().with_correlation_id(3), &response, key, version).unwrap();
        body::decode_response(&Bytes::copy_from_slice(frame.get(4..).unwrap_or_default()), key, version).unwrap().body
    }

    #[test]
    #[allow(clippy::indexing_slicing)]
    fn metadata_brokers_and_node_endpoints_are_rewritten_and_survive_the_wire() {
        let broker = |id: i32| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_static_str("broker-0.internal"))
                .with_port(9092)
        };
        let mut metadata = ResponseKind::Metadata(MetadataResponse::default().with_brokers(vec![broker(0), broker(1)]));
        assert_eq!(rewrite(&mut metadata, &mut to_proxy), 2);
        let ResponseKind::Metadata(m) = round_trip(metadata, ApiKey::Metadata, 12) else { panic!() };
        assert_eq!((m.brokers[1].host.as_str(), m.brokers[1].port), ("proxy.example", 19093));

        let endpoint = produce_response::NodeEndpoint::default()
            .with_node_id(BrokerId(2))
            .with_host(StrBytes::from_static_str("broker-0.internal"))
            .with_port(9092);
        let mut produced = ResponseKind::Produce(ProduceResponse::default().with_node_endpoints(vec![endpoint]));
        assert_eq!(rewrite(&mut produced, &mut to_proxy), 1);
        let ResponseKind::Produce(p) = round_trip(produced, ApiKey::Produce, 10) else { panic!() };
        assert_eq!((p.node_endpoints[0].host.as_str(), p.node_endpoints[0].port), ("proxy.example", 19094));

        let endpoint = fetch_response::NodeEndpoint::default()
            .with_node_id(BrokerId(0))
            .with_host(StrBytes::from_static_str("elsewhere"))
            .with_port(9092);
        let mut fetched = ResponseKind::Fetch(FetchResponse::default().with_node_endpoints(vec![endpoint]));
        assert_eq!(rewrite(&mut fetched, &mut to_proxy), 0, "unmapped addresses stay");
    }

    #[test]
    #[allow(clippy::indexing_slicing)]
    fn coordinators_and_cluster_brokers_are_rewritten() {
        use kafka_protocol::messages::{
            describe_cluster_response::DescribeClusterBroker, find_coordinator_response::Coordinator, DescribeClusterResponse,
            FindCoordinatorResponse,
        };
        let host = || StrBytes::from_static_str("broker-0.internal");
        let mut old = ResponseKind::FindCoordinator(FindCoordinatorResponse::default().with_node_id(BrokerId(1)).with_host(host()).with_port(9092));
        assert_eq!(rewrite(&mut old, &mut to_proxy), 1);
        let ResponseKind::FindCoordinator(f) = round_trip(old, ApiKey::FindCoordinator, 3) else { panic!() };
        assert_eq!((f.host.as_str(), f.port), ("proxy.example", 19093));

        let coordinators = vec![Coordinator::default().with_node_id(BrokerId(0)).with_host(host()).with_port(9092)];
        let mut new = ResponseKind::FindCoordinator(FindCoordinatorResponse::default().with_coordinators(coordinators));
        assert_eq!(rewrite(&mut new, &mut to_proxy), 1);
        let ResponseKind::FindCoordinator(f) = round_trip(new, ApiKey::FindCoordinator, 4) else { panic!() };
        assert_eq!((f.coordinators[0].host.as_str(), f.coordinators[0].port), ("proxy.example", 19092));

        let brokers = vec![DescribeClusterBroker::default().with_broker_id(BrokerId(2)).with_host(host()).with_port(9092)];
        let mut cluster = ResponseKind::DescribeCluster(DescribeClusterResponse::default().with_brokers(brokers));
        assert_eq!(rewrite(&mut cluster, &mut to_proxy), 1);
        let ResponseKind::DescribeCluster(d) = round_trip(cluster, ApiKey::DescribeCluster, 0) else { panic!() };
        assert_eq!((d.brokers[0].host.as_str(), d.brokers[0].port), ("proxy.example", 19094));
    }

    #[test]
    fn which_responses_carry_addresses() {
        assert!(carries_addresses(ApiKey::Metadata, 0));
        assert!(!carries_addresses(ApiKey::Produce, 9));
        assert!(carries_addresses(ApiKey::Produce, 10));
        assert!(!carries_addresses(ApiKey::Fetch, 15));
        assert!(carries_addresses(ApiKey::Fetch, 16));
        assert!(!carries_addresses(ApiKey::ListOffsets, 5));
    }
}
