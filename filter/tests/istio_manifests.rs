//! Every kafka-lens configuration embedded in the Istio objects under `istio/` is parsed by the
//! filter's own configuration type: a mistyped field in a manifest fails here, not in a cluster
//! (the upstream CRD schemas cannot check it: `pluginConfig` and EnvoyFilter patch values are
//! free-form there). `tests/test_manifests.py` validates the objects themselves.
//!
//! Where the configuration sits:
//! - `WasmPlugin`: `spec.pluginConfig` (a YAML mapping; istiod hands it to the filter as JSON);
//! - `TrafficExtension`: `spec.wasm.pluginConfig`;
//! - `EnvoyFilter`: the `configuration.value` string (a `google.protobuf.StringValue`) of every
//!   `envoy.extensions.filters.network.wasm.v3.Wasm` typed config in the patches.

use std::path::{Path, PathBuf};

use kafka_lens_filter::config::{Config, TagFormat};
use serde::Deserialize;
use serde_norway::Value;

const NETWORK_WASM: &str = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm";
const STRING_VALUE: &str = "type.googleapis.com/google.protobuf.StringValue";

/// The YAML files under `dir`, recursively, leaving out `oci/` (build tooling, no manifests).
fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "oci") {
                yaml_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// Every `configuration.value` of a network Wasm typed config anywhere below `v`.
fn envoy_filter_configs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            if m.get("@type").and_then(Value::as_str) == Some(NETWORK_WASM) {
                let configuration = &v["config"]["configuration"];
                assert_eq!(configuration["@type"].as_str(), Some(STRING_VALUE), "configuration of a Wasm filter must be a StringValue");
                out.push(configuration["value"].as_str().expect("configuration.value must be a string").to_string());
            }
            for (_, child) in m {
                envoy_filter_configs(child, out);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|c| envoy_filter_configs(c, out)),
        Value::Tagged(t) => envoy_filter_configs(&t.value, out),
        _ => {}
    }
}

/// Every string under a key named `key` anywhere below `v`.
fn strings_at(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                if k.as_str() == Some(key) {
                    if let Some(s) = child.as_str() {
                        out.push(s.to_string());
                    }
                }
                strings_at(child, key, out);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|c| strings_at(c, key, out)),
        _ => {}
    }
}

#[derive(Debug, PartialEq)]
enum Side {
    /// Broker sidecar, inbound (`SIDECAR_INBOUND`, WasmPlugin/TrafficExtension mode `SERVER`).
    Broker,
    /// Client sidecar, outbound (`SIDECAR_OUTBOUND`, mode `CLIENT`).
    Client,
}

fn side(doc: &Value, what: &str) -> Side {
    let mut found = Vec::new();
    strings_at(doc, "context", &mut found);
    strings_at(doc, "mode", &mut found);
    let broker = found.iter().any(|s| s == "SIDECAR_INBOUND" || s == "SERVER");
    let client = found.iter().any(|s| s == "SIDECAR_OUTBOUND" || s == "CLIENT");
    match (broker, client) {
        (true, false) => Side::Broker,
        (false, true) => Side::Client,
        _ => panic!("{what}: expected exactly one of inbound (broker) or outbound (client) placement, found {found:?}"),
    }
}

/// The filter configurations a document embeds, as the JSON text the filter receives.
fn embedded_configs(doc: &Value) -> Vec<String> {
    let plugin_config = match doc["kind"].as_str() {
        Some("WasmPlugin") => &doc["spec"]["pluginConfig"],
        Some("TrafficExtension") => &doc["spec"]["wasm"]["pluginConfig"],
        Some("EnvoyFilter") => {
            let mut out = Vec::new();
            envoy_filter_configs(&doc["spec"]["configPatches"], &mut out);
            return out;
        }
        _ => return Vec::new(),
    };
    if plugin_config.is_null() {
        return vec![String::new()]; // no pluginConfig: the filter gets no configuration
    }
    let json = serde_json::to_value(plugin_config).expect("pluginConfig converts to JSON");
    vec![serde_json::to_string(&json).unwrap()]
}

#[test]
fn every_filter_configuration_in_the_istio_manifests_parses() {
    // At run time, not compile time: a test binary built in another checkout sharing the target
    // directory would otherwise look there.
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()));
    let dir = manifest_dir.join("../istio");
    let mut files = Vec::new();
    yaml_files(&dir, &mut files);
    let (mut broker, mut client) = (0, 0);
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        for (i, de) in serde_norway::Deserializer::from_str(&text).enumerate() {
            let doc = Value::deserialize(de).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let kind = doc["kind"].as_str().unwrap_or("").to_string();
            if !matches!(kind.as_str(), "WasmPlugin" | "TrafficExtension" | "EnvoyFilter") {
                continue;
            }
            let what = format!("{}[{i}] {kind}", path.display());
            let configs = embedded_configs(&doc);
            assert!(!configs.is_empty(), "{what}: no kafka-lens configuration found");
            let side = side(&doc, &what);
            for raw in configs {
                let config = Config::parse(raw.as_bytes()).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(config.tag_format, TagFormat::Istio, "{what}: under Istio the filter must write Istio's tag form (\"tag_format\": \"istio\")");
                match side {
                    Side::Broker => {
                        assert!(!config.policy.rules.is_empty(), "{what}: the broker-side samples carry the sample policy");
                        broker += 1;
                    }
                    Side::Client => {
                        assert!(config.policy.rules.is_empty(), "{what}: client-side configurations are metrics only");
                        client += 1;
                    }
                }
            }
        }
    }
    // WasmPlugin, TrafficExtension, EnvoyFilter (agent-fetched) and EnvoyFilter (local file), each
    // for the broker and the client side.
    assert!(broker >= 4 && client >= 4, "found {broker} broker-side and {client} client-side configurations in {}", dir.display());
}
