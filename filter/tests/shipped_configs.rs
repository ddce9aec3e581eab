//! Every kafka-lens configuration shipped in `envoy-configs/` is parsed by the filter's own
//! configuration type, so a renamed or mistyped field fails this test, not a cluster.
//! (`tests/test_configs.py` runs `envoy --mode validate` on the same files.)

use std::path::PathBuf;

use kafka_lens_filter::config::Config;
use serde_norway::Value;

/// Every `configuration.value` of a Wasm filter named `kafka-lens` in the document.
fn kafka_lens_configs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            let is_kafka_lens = m.get("name").and_then(Value::as_str) == Some("kafka-lens");
            if is_kafka_lens {
                let value = m.get("configuration").and_then(|c| c.get("value")).and_then(Value::as_str);
                out.push(value.unwrap_or("").to_string());
            }
            for (_, child) in m {
                kafka_lens_configs(child, out);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|c| kafka_lens_configs(c, out)),
        Value::Tagged(t) => kafka_lens_configs(&t.value, out),
        _ => {}
    }
}

#[test]
fn every_shipped_filter_configuration_parses() {
    // At run time, not compile time: a test binary built in another checkout sharing the target
    // directory would otherwise look there.
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())).join("../envoy-configs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let doc: Value = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut configs = Vec::new();
        kafka_lens_configs(&doc, &mut configs);
        for raw in configs {
            Config::parse(raw.as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            checked += 1;
        }
    }
    assert!(checked >= 1, "no kafka-lens configuration found in {}", dir.display());
}

/// Every tag the filter puts in a metric name (`;tag=value`) has a `stats_tags` rule in the
/// shipped config; without one Envoy folds the tag into the metric name
/// (`kafka_group_committed_offset_partition_0`) instead of a Prometheus label.
#[test]
fn every_metric_tag_has_a_stats_tags_rule() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()));
    let source = std::fs::read_to_string(root.join("src/metrics.rs")).unwrap();
    // The stat-name strings: every one starts with `"kafka_` (format strings and test literals).
    let names: Vec<&str> = source.lines().filter(|line| line.contains("\"kafka_")).collect();
    let mut tags: Vec<String> = names
        .iter()
        .flat_map(|line| line.split(';').skip(1))
        .filter_map(|after| after.split_once('=').map(|(tag, _)| tag))
        .filter(|tag| !tag.is_empty() && tag.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(str::to_string)
        .collect();
    tags.extend(["client_id".to_string(), "identity".to_string()]); // written by `Client`'s Display
    tags.sort();
    tags.dedup();
    assert!(tags.len() > 15, "{tags:?}");
    let doc: Value = serde_norway::from_str(&std::fs::read_to_string(root.join("../envoy-configs/local.yaml")).unwrap()).unwrap();
    let rules: Vec<&str> = doc["stats_config"]["stats_tags"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|rule| rule["tag_name"].as_str())
        .collect();
    for tag in &tags {
        assert!(rules.contains(&tag.as_str()), "no stats_tags rule for `{tag}` in envoy-configs/local.yaml");
    }
}
