//! Old protocol version translation: which versions the broker accepts per API, and what the
//! filter does with a request below them (see [`kafka_lens_codec::legacy`] for the layouts).
//!
//! The broker's ranges come from two places. Its ApiVersions responses, seen on any connection,
//! are learned and shared with every worker VM through proxy-wasm shared data. A static table in
//! the configuration (a preset such as `kafka-4.0`, and per-API bounds) covers connections whose
//! clients never ask (librdkafka with `api.version.request=false`, kafka-python with a pinned
//! `api_version`) and wins where the broker's advertisement is not the truth: Kafka 4.0 still
//! advertises Produce v0–2 but refuses them (KAFKA-18659), so the effective minimum is the higher
//! of the two.

use std::cell::RefCell;
use std::collections::BTreeMap;

use kafka_lens_codec::api;
use kafka_lens_codec::kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_lens_codec::legacy::translate;
use serde::Deserialize;

/// Presets of broker minimum versions. `kafka-4.0`: the versions KIP-896 removed (the crate's
/// generated minimums are Kafka 4.0's).
pub const PRESETS: [&str; 1] = ["kafka-4.0"];

/// Shared-data key of the learned broker ranges.
pub const SHARED_KEY: &str = "kafka_lens.broker_versions.v1";

/// The `version_translation` configuration section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TranslationConfig {
    /// Translate requests below the broker's minimum versions (off: every request passes at the
    /// version the client chose).
    pub enabled: bool,
    /// A static table of broker minimums to start from (`kafka-4.0`), for brokers whose
    /// ApiVersions answer is not the truth or is never asked.
    pub broker_preset: Option<String>,
    /// Per-API bounds, by API name (`{"Produce": {"min": 3}}`), over the preset.
    pub broker_versions: BTreeMap<String, VersionBounds>,
}

/// Bounds on one API's versions the broker accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VersionBounds {
    pub min: Option<i16>,
    pub max: Option<i16>,
}

impl TranslationConfig {
    /// Checks the section; the error names the field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if let Some(preset) = &self.broker_preset {
            if !PRESETS.contains(&preset.as_str()) {
                return Err(("version_translation.broker_preset".into(), format!("unknown preset {preset:?}; known: {}", PRESETS.join(", "))));
            }
        }
        for (name, bounds) in &self.broker_versions {
            let field = format!("version_translation.broker_versions.{name}");
            if api::by_name(name).is_none() {
                return Err((field, format!("unknown API name {name:?} (use Kafka's names, e.g. Produce, ListOffsets)")));
            }
            if bounds.min.is_some_and(|m| m < 0) || bounds.max.is_some_and(|m| m < 0) {
                return Err((field, "versions cannot be negative".into()));
            }
            if let (Some(min), Some(max)) = (bounds.min, bounds.max) {
                if min > max {
                    return Err((field, format!("min ({min}) is above max ({max})")));
                }
            }
        }
        Ok(())
    }
}

/// What the filter does with a request, given the broker's versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The broker accepts it (or nothing is known): forwarded as it is.
    Forward,
    /// Translated to `target`, and its response back.
    Upgrade { target: i16 },
    /// Answered `UNSUPPORTED_VERSION` by the filter (the broker would refuse it, and the filter
    /// cannot translate it).
    Unsupported,
}

/// The broker version table of a VM: the configured bounds and what was learned.
#[derive(Debug, Default)]
pub struct Translation {
    enabled: bool,
    configured: BTreeMap<i16, VersionBounds>,
    learned: RefCell<Learned>,
}

#[derive(Debug, Default)]
struct Learned {
    ranges: BTreeMap<i16, (i16, i16)>,
    /// Changed since last published to shared data.
    dirty: bool,
}

impl Translation {
    pub fn new(config: &TranslationConfig) -> Self {
        let mut configured = BTreeMap::new();
        if config.broker_preset.as_deref() == Some("kafka-4.0") {
            for key in translate::TRANSLATED_APIS {
                configured.insert(key as i16, VersionBounds { min: Some(api::versions(key).min), max: None });
            }
        }
        for (name, bounds) in &config.broker_versions {
            if let Some(key) = api::by_name(name) {
                let entry = configured.entry(key as i16).or_default();
                entry.min = bounds.min.or(entry.min);
                entry.max = bounds.max.or(entry.max);
            }
        }
        Translation { enabled: config.enabled, configured, learned: RefCell::default() }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The broker's accepted range for `key`: the higher minimum and the lower maximum of what is
    /// configured and what was learned; `None` where neither says.
    pub fn broker_range(&self, key: ApiKey) -> (Option<i16>, Option<i16>) {
        let configured = self.configured.get(&(key as i16)).copied().unwrap_or_default();
        let learned = self.learned.borrow().ranges.get(&(key as i16)).copied();
        let min = match (configured.min, learned) {
            (Some(c), Some((l, _))) => Some(c.max(l)),
            (c, l) => c.or(l.map(|(min, _)| min)),
        };
        let max = match (configured.max, learned) {
            (Some(c), Some((_, l))) => Some(c.min(l)),
            (c, l) => c.or(l.map(|(_, max)| max)),
        };
        (min, max)
    }

    /// What to do with a request of `key` at `version`.
    pub fn plan(&self, key: ApiKey, version: i16) -> Plan {
        if !self.enabled {
            return Plan::Forward;
        }
        let (min, max) = self.broker_range(key);
        let Some(min) = min.filter(|min| version < *min) else { return Plan::Forward };
        if !translate::is_old(key, version) {
            // A version the crate decodes but the broker refuses: answered as the broker would.
            return if api::versions(key).min <= version { Plan::Unsupported } else { Plan::Forward };
        }
        let crate_range = api::versions(key);
        let target = min.max(crate_range.min);
        if target > crate_range.max.min(translate::highest_target(key)) || max.is_some_and(|max| target > max) {
            return Plan::Unsupported;
        }
        Plan::Upgrade { target }
    }

    /// Learns the broker's ranges from its ApiVersions answer; returns whether anything changed.
    pub fn learn(&self, response: &ApiVersionsResponse) -> bool {
        if !self.enabled || response.error_code != 0 {
            return false;
        }
        let mut learned = self.learned.borrow_mut();
        let mut changed = false;
        for entry in &response.api_keys {
            let range = (entry.min_version, entry.max_version);
            if learned.ranges.insert(entry.api_key, range) != Some(range) {
                changed = true;
            }
        }
        learned.dirty |= changed;
        changed
    }

    /// Rewrites the broker's ApiVersions answer into what a client can get through the filter:
    /// each translated API's minimum raised to the broker's effective minimum, then lowered to the
    /// oldest version the filter translates from (when the broker can take the translation).
    pub fn advertise(&self, response: &mut ApiVersionsResponse) -> bool {
        if !self.enabled {
            return false;
        }
        let mut changed = false;
        for entry in &mut response.api_keys {
            let Ok(key) = ApiKey::try_from(entry.api_key) else { continue };
            let (min, _) = self.broker_range(key);
            let mut advertised = entry.min_version.max(min.unwrap_or(entry.min_version));
            if let Some(old) = translate::old_versions(key) {
                if matches!(self.plan(key, *old.start()), Plan::Upgrade { target } if target <= entry.max_version) {
                    advertised = advertised.min(*old.start());
                }
            }
            if advertised != entry.min_version && advertised <= entry.max_version {
                entry.min_version = advertised;
                changed = true;
            }
        }
        changed
    }

    /// The learned ranges to publish to shared data, if they changed since the last call.
    pub fn take_changes(&self) -> Option<Vec<u8>> {
        let mut learned = self.learned.borrow_mut();
        if !std::mem::take(&mut learned.dirty) {
            return None;
        }
        let mut out = Vec::with_capacity(learned.ranges.len() * 6);
        for (key, (min, max)) in &learned.ranges {
            out.extend_from_slice(&key.to_be_bytes());
            out.extend_from_slice(&min.to_be_bytes());
            out.extend_from_slice(&max.to_be_bytes());
        }
        Some(out)
    }

    /// Takes the ranges another VM published (6 bytes an API: key, min, max).
    pub fn merge_shared(&self, bytes: &[u8]) {
        let mut learned = self.learned.borrow_mut();
        for chunk in bytes.chunks_exact(6) {
            let field = |i: usize| chunk.get(i..i + 2).and_then(|b| <[u8; 2]>::try_from(b).ok()).map(i16::from_be_bytes);
            if let (Some(key), Some(min), Some(max)) = (field(0), field(2), field(4)) {
                learned.ranges.insert(key, (min, max));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_lens_codec::kafka_protocol::messages::api_versions_response::ApiVersion;

    fn config(json: &str) -> TranslationConfig {
        serde_json::from_str(json).unwrap()
    }

    fn response(entries: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
        let mut r = ApiVersionsResponse::default();
        for (key, min, max) in entries {
            r.api_keys.push(ApiVersion::default().with_api_key(*key as i16).with_min_version(*min).with_max_version(*max));
        }
        r
    }

    #[test]
    fn the_preset_wins_over_an_advertised_minimum() {
        let t = Translation::new(&config(r#"{"enabled": true, "broker_preset": "kafka-4.0"}"#));
        assert_eq!(t.plan(ApiKey::Produce, 2), Plan::Upgrade { target: 3 });
        assert_eq!(t.plan(ApiKey::Produce, 3), Plan::Forward);
        assert_eq!(t.plan(ApiKey::ListOffsets, 0), Plan::Upgrade { target: 1 });
        assert_eq!(t.plan(ApiKey::Metadata, 0), Plan::Forward);
        // Kafka 4.0 advertises Produce v0 (KAFKA-18659): the preset's minimum stays.
        t.learn(&response(&[(ApiKey::Produce, 0, 12), (ApiKey::Fetch, 4, 17)]));
        assert_eq!(t.plan(ApiKey::Produce, 1), Plan::Upgrade { target: 3 });
        assert_eq!(t.plan(ApiKey::Fetch, 0), Plan::Upgrade { target: 4 });
    }

    #[test]
    fn learned_ranges_alone_decide_without_a_preset() {
        let t = Translation::new(&config(r#"{"enabled": true}"#));
        assert_eq!(t.plan(ApiKey::Fetch, 2), Plan::Forward);
        t.learn(&response(&[(ApiKey::Fetch, 5, 17), (ApiKey::JoinGroup, 2, 9), (ApiKey::ListOffsets, 1, 3)]));
        assert_eq!(t.plan(ApiKey::Fetch, 2), Plan::Upgrade { target: 5 });
        assert_eq!(t.plan(ApiKey::JoinGroup, 1), Plan::Unsupported);
        assert_eq!(t.plan(ApiKey::ListOffsets, 0), Plan::Upgrade { target: 1 });
        // A broker too old for the crate's minimum cannot take the translation.
        t.learn(&response(&[(ApiKey::Produce, 1, 2)]));
        assert_eq!(t.plan(ApiKey::Produce, 0), Plan::Unsupported);
        // Nor one that only takes topic ids (Fetch v13+): the old layout has no room for them.
        t.learn(&response(&[(ApiKey::Fetch, 13, 17), (ApiKey::OffsetCommit, 10, 10)]));
        assert_eq!(t.plan(ApiKey::Fetch, 3), Plan::Unsupported);
        assert_eq!(t.plan(ApiKey::OffsetCommit, 1), Plan::Unsupported);
    }

    #[test]
    fn disabled_forwards_everything() {
        let t = Translation::new(&config(r#"{"broker_preset": "kafka-4.0"}"#));
        assert_eq!(t.plan(ApiKey::Produce, 0), Plan::Forward);
        assert!(!t.advertise(&mut response(&[(ApiKey::Produce, 3, 12)])));
    }

    #[test]
    fn advertised_ranges_reach_down_to_what_translates() {
        let t = Translation::new(&config(r#"{"enabled": true, "broker_preset": "kafka-4.0", "broker_versions": {"Metadata": {"min": 4}}}"#));
        let mut r = response(&[(ApiKey::Produce, 3, 12), (ApiKey::Fetch, 0, 17), (ApiKey::Metadata, 0, 12), (ApiKey::ApiVersions, 0, 4)]);
        assert!(t.advertise(&mut r));
        let mins: Vec<(i16, i16)> = r.api_keys.iter().map(|e| (e.api_key, e.min_version)).collect();
        assert_eq!(mins, vec![(0, 0), (1, 0), (3, 4), (18, 0)]);
    }

    #[test]
    fn shared_data_round_trip() {
        let a = Translation::new(&config(r#"{"enabled": true}"#));
        assert!(a.take_changes().is_none());
        a.learn(&response(&[(ApiKey::Fetch, 4, 17), (ApiKey::Produce, 3, 12)]));
        let bytes = a.take_changes().unwrap();
        assert!(a.take_changes().is_none());
        let b = Translation::new(&config(r#"{"enabled": true}"#));
        b.merge_shared(&bytes);
        assert_eq!(b.broker_range(ApiKey::Fetch), (Some(4), Some(17)));
        assert_eq!(b.plan(ApiKey::Produce, 0), Plan::Upgrade { target: 3 });
        b.merge_shared(&[1, 2, 3]);
    }

    #[test]
    fn invalid_sections_name_the_field() {
        let e = config(r#"{"broker_preset": "kafka-3.0"}"#).validate().unwrap_err();
        assert_eq!(e.0, "version_translation.broker_preset");
        let e = config(r#"{"broker_versions": {"Produs": {"min": 3}}}"#).validate().unwrap_err();
        assert_eq!(e.0, "version_translation.broker_versions.Produs");
        let e = config(r#"{"broker_versions": {"Produce": {"min": 5, "max": 3}}}"#).validate().unwrap_err();
        assert!(e.1.contains("above"));
    }
}
