//! The filter's JSON configuration (Envoy's `plugin_config`).
//!
//! Unknown fields are refused and every error names the field it is about, so a typo fails the
//! Envoy config load instead of silently running with defaults. No configuration at all (or `{}`)
//! gives the defaults below.

use serde::Deserialize;

use kafka_lens_codec::correlation::DEFAULT_MAX_IN_FLIGHT;
use kafka_lens_codec::frame::DEFAULT_MAX_FRAME_SIZE;

use crate::addresses::BrokerAddresses;
use crate::policy::PolicyConfig;

/// Smallest accepted `max_frame_bytes`: a few headers' worth.
const MIN_FRAME_BYTES: u32 = 1024;

/// Default longest label value taken from client input.
pub const DEFAULT_MAX_LABEL_LENGTH: usize = 64;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Largest frame accepted from a client, like the broker's `socket.request.max.bytes`. A larger
    /// request closes the connection (after the first frame; a first frame that large means the
    /// stream is not Kafka and passes through). Larger responses stop response decoding only.
    pub max_frame_bytes: u32,
    /// Requests awaiting a response tracked per connection; beyond it the oldest is forgotten and
    /// counted.
    pub max_in_flight: usize,
    /// Fully decode small structural frames (everything but record-carrying ones) to check them
    /// and count decode errors. Costs a copy of those frames into the VM.
    pub decode_bodies: bool,
    /// Largest frame `decode_bodies` copies into the VM.
    pub max_decode_bytes: u32,
    /// How labels are written into stat names: `envoy` (`name;label=value`, extracted by the
    /// shipped configs' `stats_tags` rules) or `istio` (`label=.=value;.;name`, the form Istio's
    /// bootstrap extracts for every tag listed in the proxy config's `extraStatTags`).
    pub tag_format: TagFormat,
    /// Emit the per-partition metrics (`kafka_group_committed_offset`,
    /// `kafka_fetch_lag_partition_records`): a series per partition, so off by default.
    pub per_partition_metrics: bool,
    /// Bounds on labels taken from client input.
    pub labels: LabelLimits,
    /// How the filter learns who a client is (see the `identity` module).
    pub identity: IdentityConfig,
    /// Request validation rules (see the `policy` module); none by default.
    pub policy: PolicyConfig,
    /// Broker addresses to advertise instead of the brokers' own (see the `addresses` module).
    pub broker_addresses: BrokerAddresses,
    /// Topic renames and per-tenant prefixes (see the `rewrite` module); none by default.
    pub topic_rewrite: crate::rewrite::TopicRewriteConfig,
    /// Hand what each connection did (client id, identity, client software, APIs, topics, last
    /// error) to Envoy when it ends, as `wasm.kafka_lens.*` filter state for access logs (see
    /// `envoy-configs/access-log.yaml`). A few hostcalls per connection, none per request.
    pub access_log_properties: bool,
    /// OpenTelemetry spans of sampled requests, exported over OTLP/gRPC (see the `tracing` module).
    pub tracing: crate::tracing::TracingConfig,
    /// Old protocol versions translated for brokers that refuse them (see the `versions` module);
    /// off by default.
    pub version_translation: crate::versions::TranslationConfig,
    /// Diagnostics for the test suite and for checking a new Envoy version.
    pub diagnostics: Diagnostics,
}

/// Bounds on metric labels whose values come from clients.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelLimits {
    /// Distinct `client_id` label values across all worker VMs; later ones fold into
    /// `__overflow__` (counted in `kafka_lens_label_overflow_total`).
    pub max_client_ids: u32,
    /// Distinct `topic` label values across all worker VMs, likewise.
    pub max_topics: u32,
    /// Distinct consumer `group` label values across all worker VMs, likewise.
    pub max_groups: u32,
    /// Distinct client software names and versions (ApiVersions v3+) across all worker VMs,
    /// likewise.
    pub max_client_software: u32,
    /// Longest label value kept (characters); longer ones are cut.
    pub max_label_length: usize,
    /// Distinct resolved identities (`identity` label: `sasl:alice`, `mtls:spiffe://..`,
    /// `client_id:shop`) across all worker VMs, likewise.
    pub max_identities: u32,
    /// Longest `identity` label value kept: longer than other labels, as SPIFFE ids run long.
    pub max_identity_length: usize,
    /// Distinct metric series one VM creates; beyond it new series are not created (counted in
    /// `kafka_lens_series_overflow_total`). Bounds the product of labels, which per-label caps
    /// do not.
    pub max_metric_series: usize,
}

impl Default for LabelLimits {
    fn default() -> Self {
        LabelLimits {
            max_client_ids: 1000,
            max_topics: 10_000,
            max_groups: 1000,
            max_client_software: 200,
            max_label_length: DEFAULT_MAX_LABEL_LENGTH,
            max_identities: 1000,
            max_identity_length: 128,
            max_metric_series: 20_000,
        }
    }
}

/// How labels are written into stat names (see [`Config::tag_format`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagFormat {
    #[default]
    Envoy,
    Istio,
}

/// How client identities are learned.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// The OAUTHBEARER token claim that names the principal, like the broker's
    /// `sasl.oauthbearer.sub.claim.name`. Read without verifying the token: only the broker's
    /// acceptance of the token makes it an identity.
    pub oauthbearer_principal_claim: String,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig { oauthbearer_principal_claim: "sub".into() }
    }
}

/// Diagnostics switches; all off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Diagnostics {
    /// On every new connection, make one hostcall Envoy refuses (a write toward the client from the
    /// request path) and count the refusal in `kafka_lens_hostcall_failures_total`. Proves that a
    /// refused call leaves the VM and the connection alive.
    pub probe_refused_hostcall: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_bytes: DEFAULT_MAX_FRAME_SIZE,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            decode_bodies: true,
            max_decode_bytes: 64 * 1024,
            tag_format: TagFormat::Envoy,
            per_partition_metrics: false,
            labels: LabelLimits::default(),
            identity: IdentityConfig::default(),
            policy: PolicyConfig::default(),
            broker_addresses: BrokerAddresses::default(),
            topic_rewrite: crate::rewrite::TopicRewriteConfig::default(),
            access_log_properties: true,
            tracing: crate::tracing::TracingConfig::default(),
            version_translation: crate::versions::TranslationConfig::default(),
            diagnostics: Diagnostics::default(),
        }
    }
}

/// A configuration the filter refuses, with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the field (`diagnostics.probe_refused_hostcall`), or `.` for the document.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid kafka-lens configuration at `{}`: {}", self.field, self.message)
    }
}

impl Config {
    /// Parses and validates a configuration. Empty input (no `configuration` in Envoy) is the
    /// default configuration.
    pub fn parse(raw: &[u8]) -> Result<Config, ConfigError> {
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(Config::default());
        }
        let mut de = serde_json::Deserializer::from_slice(raw);
        let config: Config = serde_path_to_error::deserialize(&mut de).map_err(|e| ConfigError {
            field: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        de.end().map_err(|e| ConfigError { field: ".".into(), message: e.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |field: &str, message: String| Err(ConfigError { field: field.into(), message });
        if self.max_frame_bytes < MIN_FRAME_BYTES || self.max_frame_bytes > i32::MAX as u32 {
            return fail("max_frame_bytes", format!("must be between {MIN_FRAME_BYTES} and {}, got {}", i32::MAX, self.max_frame_bytes));
        }
        if self.max_in_flight == 0 || self.max_in_flight > 1_000_000 {
            return fail("max_in_flight", format!("must be between 1 and 1000000, got {}", self.max_in_flight));
        }
        for (field, cap) in [
            ("labels.max_client_ids", self.labels.max_client_ids),
            ("labels.max_topics", self.labels.max_topics),
            ("labels.max_groups", self.labels.max_groups),
            ("labels.max_client_software", self.labels.max_client_software),
            ("labels.max_identities", self.labels.max_identities),
        ] {
            if cap == 0 {
                return fail(field, "must be at least 1".into());
            }
        }
        if !(8..=256).contains(&self.labels.max_label_length) {
            return fail("labels.max_label_length", format!("must be between 8 and 256, got {}", self.labels.max_label_length));
        }
        if !(8..=512).contains(&self.labels.max_identity_length) {
            return fail("labels.max_identity_length", format!("must be between 8 and 512, got {}", self.labels.max_identity_length));
        }
        if self.identity.oauthbearer_principal_claim.is_empty() {
            return fail("identity.oauthbearer_principal_claim", "must not be empty".into());
        }
        if self.labels.max_metric_series < 100 {
            return fail("labels.max_metric_series", format!("must be at least 100, got {}", self.labels.max_metric_series));
        }
        if let Err((field, message)) =
            self.policy.validate().and_then(|()| self.broker_addresses.validate()).and_then(|()| self.topic_rewrite.validate())
            .and_then(|()| self.tracing.validate())
            .and_then(|()| self.version_translation.validate())
        {
            return Err(ConfigError { field, message });
        }
        if self.max_decode_bytes > self.max_frame_bytes {
            return fail("max_decode_bytes", format!("must not exceed max_frame_bytes ({}), got {}", self.max_frame_bytes, self.max_decode_bytes));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_braces_are_defaults() {
        assert_eq!(Config::parse(b"").unwrap(), Config::default());
        assert_eq!(Config::parse(b"  \n").unwrap(), Config::default());
        assert_eq!(Config::parse(b"{}").unwrap(), Config::default());
    }

    #[test]
    fn fields_parse() {
        let c = Config::parse(br#"{"max_frame_bytes": 2048, "max_decode_bytes": 1024, "decode_bodies": false,
            "diagnostics": {"probe_refused_hostcall": true}}"#)
        .unwrap();
        assert_eq!(c.max_frame_bytes, 2048);
        assert!(!c.decode_bodies);
        assert!(c.diagnostics.probe_refused_hostcall);
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::parse(br#"{"max_frame_byte": 5}"#).unwrap_err();
        assert_eq!(e.field, "max_frame_byte");
        assert!(e.message.contains("unknown field `max_frame_byte`"), "{e}");
        let e = Config::parse(br#"{"diagnostics": {"probe": true}}"#).unwrap_err();
        assert_eq!(e.field, "diagnostics.probe");
        assert!(e.message.contains("unknown field `probe`"), "{e}");
        let e = Config::parse(br#"{"max_in_flight": "many"}"#).unwrap_err();
        assert_eq!(e.field, "max_in_flight");
        let e = Config::parse(br#"{"max_frame_bytes": 10}"#).unwrap_err();
        assert_eq!(e.field, "max_frame_bytes");
        let e = Config::parse(br#"{"labels": {"max_topics": 0}}"#).unwrap_err();
        assert_eq!(e.field, "labels.max_topics");
        let e = Config::parse(br#"{"max_decode_bytes": 4000000000}"#).unwrap_err();
        assert_eq!(e.field, "max_decode_bytes");
        assert!(Config::parse(b"{} x").is_err());
        assert!(Config::parse(b"[1]").is_err());
    }
}
