//! The filter's metrics: what is counted, how each is named in Envoy, and where counts go.
//!
//! Names follow Prometheus conventions and carry their labels in Envoy's tag form
//! `name;label=value;...`. Envoy shows them under `wasmcustom.`; the shipped configs' `stats_tags`
//! rules turn every `;label=value` into a Prometheus label, so `/stats/prometheus` serves
//! `kafka_requests_total{api="Produce"}`. Label values here are static strings (API names,
//! reasons), never client input, so they cannot inject separators or grow without bound.

use std::collections::HashMap;

use crate::host::{self, HostError, MetricKind};
use crate::labels::{sanitize, Client, Label, LabelCap, SharedStore, StoreError};

/// Direction of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Request,
    Response,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }
}

/// Every metric the filter emits. Each variant is one Envoy stat per distinct label value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Requests seen, per API name (`unknown` for API keys the codec does not know), API version
    /// and client id (sanitized, capped).
    Requests { api: &'static str, version: &'static str, client: Client },
    /// Responses seen and paired with their request, per API, version and client id.
    Responses { api: &'static str, version: &'static str, client: Client },
    /// Request bytes (frames with their size prefix), per API and client id.
    RequestBytes { api: &'static str, client: Client },
    /// Response bytes, per API and client id.
    ResponseBytes { api: &'static str, client: Client },
    /// Microseconds from a request's first bytes to its response's first bytes, per API and
    /// client id (histogram).
    Latency { api: &'static str, client: Client },
    /// Non-zero error codes in responses, from every error field at every level (per topic, per
    /// partition, ...), per API, Kafka error name and client id.
    ResponseErrors { api: &'static str, error: &'static str, client: Client },
    /// Records in Produce requests, per topic and client id: attempts as sent, retries included.
    ProduceRequestRecords { topic: Label, client: Client },
    /// Records in Produce requests that re-send a batch already seen (idempotent producers: same
    /// producer id, epoch and base sequence), per topic and client id.
    ProduceRetriedRecords { topic: Label, client: Client },
    /// Record batches in Produce requests, per topic, client id, compression codec and `acks`.
    ProduceRequestBatches { topic: Label, client: Client, compression: &'static str, acks: &'static str },
    /// Records the broker acknowledged (partition answered without error); with `acks=0`, records
    /// sent (no acknowledgement exists). Per topic, client id and `acks`.
    ProducedRecords { topic: Label, client: Client, acks: &'static str },
    /// Record-batch bytes, counted like [`Metric::ProducedRecords`].
    ProducedBytes { topic: Label, client: Client, acks: &'static str },
    /// Records of partitions the broker answered with an error, per topic, client id and error.
    ProduceFailedRecords { topic: Label, client: Client, error: &'static str },
    /// Records fetched by consumers (complete batches, offsets at or after the fetch offset), per
    /// topic and client id. Replica fetches are not counted.
    FetchedRecords { topic: Label, client: Client },
    /// Bytes of the complete record batches fetched, per topic and client id.
    FetchedBytes { topic: Label, client: Client },
    /// Consumer lag seen in Fetch responses: high watermark minus fetch offset, summed over the
    /// partitions the client's open connections fetch, per topic and client id (gauge).
    FetchLag { topic: Label, client: Client },
    /// Lag per partition (`per_partition_metrics`), like [`Metric::FetchLag`] (gauge).
    FetchLagPartition { topic: Label, partition: Label, client: Client },
    /// The offset last committed per group, topic and partition (`per_partition_metrics`; gauge,
    /// set across VMs through shared data).
    CommittedOffset { group: Label, topic: Label, partition: Label },
    /// The most requests one connection had awaiting a response at once, recorded when the
    /// connection closes (histogram).
    ConnectionMaxInFlight,
    /// Open connections per client id and the client software they announced in ApiVersions
    /// v3+ (gauge; an info metric: which libraries and versions talk to the cluster).
    ClientSoftware { client: Client, name: Label, version: Label },
    /// Consumer-group requests (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
    /// OffsetFetch) per group, API and client id.
    GroupRequests { group: Label, api: &'static str, client: Client },
    /// Rebalances: JoinGroup responses carrying a generation newer than the last one seen for
    /// the group (counted once per generation across all VMs).
    GroupRebalances { group: Label },
    /// SASL exchanges the filter followed to their end, per mechanism and result (`success`,
    /// `failure`). A success labels the connection's later requests with the user's identity.
    SaslAuthentications { mechanism: &'static str, result: &'static str },
    /// Policy decisions: a rule broken by a request, per rule, action (`refused`, `dropped` for
    /// `acks=0` Produce, `audited`), API, client and topic (`-` when the request as a whole broke
    /// it).
    PolicyDecisions { rule: Label, action: &'static str, api: &'static str, client: Client, topic: Label },
    /// Policy log lines not written because of `policy.log_lines_per_second`.
    PolicyLogSuppressed,
    /// Requests forwarded without the topics the policy refused, per API.
    PolicySplitRequests { api: &'static str },
    /// Responses to split requests the refused topics' errors could not be merged into.
    PolicyMergeFailures,
    /// Broker addresses rewritten in responses (`broker_addresses`), per API.
    AddressesRewritten { api: &'static str },
    /// Responses whose broker addresses could not be rewritten (too large to hold, undecodable),
    /// per API.
    AddressRewritesSkipped { api: &'static str },
    /// Frames whose topic names (group ids, transactional ids) were mapped (`topic_rewrite`), per
    /// API and direction.
    TopicRewrites { api: &'static str, direction: Direction },
    /// Names hidden from a client by `topic_rewrite`: requests naming them (answered as unknown
    /// topics) and response entries removed, per API and direction.
    TopicRewriteHidden { api: &'static str, direction: Direction },
    /// Frames whose names could not be mapped (undecodable, malformed), per API and reason.
    TopicRewriteFailures { api: &'static str, reason: &'static str },
    /// Spans the collector accepted (`tracing`).
    SpansExported,
    /// Spans lost: the VM's queue was full (`queue_full`) or the export failed (`export_failed`).
    SpansDropped { reason: &'static str },
    /// ApiVersions responses narrowed to the versions the filter decodes (policy on).
    ApiVersionsNarrowed,
    /// ApiVersions responses whose ranges were extended down to the old versions the filter
    /// translates (or raised to the broker's configured minimum).
    ApiVersionsExtended,
    /// Requests translated from an old version the broker refuses to one it accepts, per API and
    /// the client's version.
    TranslatedRequests { api: &'static str, version: &'static str },
    /// Responses translated back to the old version of their request, per API.
    TranslatedResponses { api: &'static str },
    /// Requests or responses that could not be translated (the connection closes), per API and
    /// reason (`malformed`, `encode`, `too_large`, `undecodable_response`, `response`).
    TranslationFailures { api: &'static str, reason: &'static str },
    /// Requests the filter answered `UNSUPPORTED_VERSION` (below the broker's minimum, not
    /// translatable), per API and version.
    UnsupportedVersionAnswers { api: &'static str, version: &'static str },
    /// Records converted from record batches to an old client's message format (Fetch v0–3).
    RecordsDownConverted,
    /// Records whose headers were dropped in that conversion (the old formats have none).
    RecordHeadersDropped,
    /// Partitions answered `UNSUPPORTED_COMPRESSION_TYPE` to an old client (zstd records).
    TranslationUnsupportedCompression,
    /// Frames moved into the VM while held, because keeping them in Envoy's buffer would have
    /// exceeded the hold budget, per direction.
    FramesHeldInVm { direction: Direction },
    /// Distinct label values refused because the label's cap was reached, per label.
    LabelOverflow { label: &'static str },
    /// Metrics not created because the VM's series budget (`max_metric_series`) was spent.
    SeriesOverflow,
    /// Requests at a version the codec does not decode, per API: passed through untouched.
    UnknownVersionRequests { api: &'static str },
    /// Frames whose header or framing could not be decoded, per direction and reason.
    UndecodableFrames { direction: Direction, reason: &'static str },
    /// Bodies that failed full decode (`decode_bodies`), per direction and API.
    BodyDecodeErrors { direction: Direction, api: &'static str },
    /// Bodies fully decoded (`decode_bodies`), per direction and API.
    BodiesDecoded { direction: Direction, api: &'static str },
    /// Record batches carried by Produce requests / Fetch responses (complete batches, read from
    /// their headers; attempts as seen on the wire, not acknowledgements).
    RecordBatches { api: &'static str, direction: Direction },
    /// Records in those batches (the batch headers' record counts; nothing is decompressed).
    Records { api: &'static str, direction: Direction },
    /// Produce requests / Fetch responses whose structure did not scan, per API and direction.
    ScanErrors { api: &'static str, direction: Direction },
    /// Responses whose correlation id matches no request in flight.
    UnmatchedResponses,
    /// Requests that never got a response (acks=0 produce, or the broker skipped them).
    UnansweredRequests,
    /// In-flight entries forgotten because a connection exceeded `max_in_flight`.
    InFlightOverflow,
    /// Connections opened through the filter.
    Connections,
    /// Connections currently open (gauge).
    ActiveConnections,
    /// Requests awaiting a response across all connections (gauge).
    InFlightRequests,
    /// Connections recognised as not Kafka and passed through, per kind (tls, http, unknown).
    NonKafkaConnections { kind: &'static str },
    /// Connections the filter closed, per reason.
    ConnectionsClosedByFilter { reason: &'static str },
    /// Hostcalls Envoy refused, per call.
    HostcallFailures { call: &'static str },
    /// Configurations loaded: once per Wasm VM (main thread and each worker) per config push.
    ConfigLoads,
    /// Bytes allocated on the Wasm VMs' heaps now, all VMs (gauge; counting allocator).
    VmHeapBytes,
    /// Size of the Wasm VMs' linear memories, all VMs (gauge; only grows).
    VmMemoryBytes,
}

impl Metric {
    /// Envoy stat name with tags.
    pub fn name(&self) -> String {
        match self {
            Metric::Requests { api, version, client } => format!("kafka_requests_total;api={api};version={version};{client}"),
            Metric::Responses { api, version, client } => format!("kafka_responses_total;api={api};version={version};{client}"),
            Metric::RequestBytes { api, client } => format!("kafka_request_bytes_total;api={api};{client}"),
            Metric::ResponseBytes { api, client } => format!("kafka_response_bytes_total;api={api};{client}"),
            Metric::Latency { api, client } => format!("kafka_request_latency_microseconds;api={api};{client}"),
            Metric::ResponseErrors { api, error, client } => {
                format!("kafka_response_errors_total;api={api};error={error};{client}")
            }
            Metric::ProduceRequestRecords { topic, client } => {
                format!("kafka_produce_request_records_total;topic={topic};{client}")
            }
            Metric::ProduceRetriedRecords { topic, client } => {
                format!("kafka_produce_retried_records_total;topic={topic};{client}")
            }
            Metric::ProduceRequestBatches { topic, client, compression, acks } => format!(
                "kafka_produce_request_batches_total;topic={topic};{client};compression={compression};acks={acks}"
            ),
            Metric::ProducedRecords { topic, client, acks } => {
                format!("kafka_produced_records_total;topic={topic};{client};acks={acks}")
            }
            Metric::ProducedBytes { topic, client, acks } => {
                format!("kafka_produced_bytes_total;topic={topic};{client};acks={acks}")
            }
            Metric::ProduceFailedRecords { topic, client, error } => {
                format!("kafka_produce_failed_records_total;topic={topic};{client};error={error}")
            }
            Metric::FetchedRecords { topic, client } => format!("kafka_fetched_records_total;topic={topic};{client}"),
            Metric::FetchedBytes { topic, client } => format!("kafka_fetched_bytes_total;topic={topic};{client}"),
            Metric::FetchLag { topic, client } => format!("kafka_fetch_lag_records;topic={topic};{client}"),
            Metric::FetchLagPartition { topic, partition, client } => {
                format!("kafka_fetch_lag_partition_records;topic={topic};partition={partition};{client}")
            }
            Metric::CommittedOffset { group, topic, partition } => {
                format!("kafka_group_committed_offset;group={group};topic={topic};partition={partition}")
            }
            Metric::ConnectionMaxInFlight => "kafka_connection_max_in_flight_requests".into(),
            Metric::ClientSoftware { client, name, version } => format!(
                "kafka_client_software_connections;{client};client_software_name={name};client_software_version={version}"
            ),
            Metric::GroupRequests { group, api, client } => {
                format!("kafka_group_requests_total;group={group};api={api};{client}")
            }
            Metric::GroupRebalances { group } => format!("kafka_group_rebalances_total;group={group}"),
            Metric::SaslAuthentications { mechanism, result } => {
                format!("kafka_sasl_authentications_total;mechanism={mechanism};result={result}")
            }
            Metric::PolicyDecisions { rule, action, api, client, topic } => {
                format!("kafka_policy_decisions_total;rule={rule};action={action};api={api};{client};topic={topic}")
            }
            Metric::PolicyLogSuppressed => "kafka_policy_log_lines_suppressed_total".into(),
            Metric::PolicySplitRequests { api } => format!("kafka_policy_split_requests_total;api={api}"),
            Metric::PolicyMergeFailures => "kafka_policy_merge_failures_total".into(),
            Metric::AddressesRewritten { api } => format!("kafka_broker_addresses_rewritten_total;api={api}"),
            Metric::AddressRewritesSkipped { api } => format!("kafka_broker_address_rewrites_skipped_total;api={api}"),
            Metric::TopicRewrites { api, direction } => format!("kafka_topic_rewrites_total;api={api};direction={}", direction.as_str()),
            Metric::TopicRewriteHidden { api, direction } => {
                format!("kafka_topic_rewrite_hidden_total;api={api};direction={}", direction.as_str())
            }
            Metric::TopicRewriteFailures { api, reason } => format!("kafka_topic_rewrite_failures_total;api={api};reason={reason}"),
            Metric::SpansExported => "kafka_lens_spans_exported_total".into(),
            Metric::SpansDropped { reason } => format!("kafka_lens_spans_dropped_total;reason={reason}"),
            Metric::ApiVersionsNarrowed => "kafka_api_versions_narrowed_total".into(),
            Metric::ApiVersionsExtended => "kafka_api_versions_extended_total".into(),
            Metric::TranslatedRequests { api, version } => format!("kafka_translated_requests_total;api={api};version={version}"),
            Metric::TranslatedResponses { api } => format!("kafka_translated_responses_total;api={api}"),
            Metric::TranslationFailures { api, reason } => format!("kafka_translation_failures_total;api={api};reason={reason}"),
            Metric::UnsupportedVersionAnswers { api, version } => {
                format!("kafka_unsupported_version_answers_total;api={api};version={version}")
            }
            Metric::RecordsDownConverted => "kafka_translation_records_down_converted_total".into(),
            Metric::RecordHeadersDropped => "kafka_translation_record_headers_dropped_total".into(),
            Metric::TranslationUnsupportedCompression => "kafka_translation_unsupported_compression_total".into(),
            Metric::FramesHeldInVm { direction } => format!("kafka_lens_frames_held_in_vm_total;direction={}", direction.as_str()),
            Metric::LabelOverflow { label } => format!("kafka_lens_label_overflow_total;label={label}"),
            Metric::SeriesOverflow => "kafka_lens_series_overflow_total".into(),
            Metric::UnknownVersionRequests { api } => format!("kafka_unknown_version_requests_total;api={api}"),
            Metric::UndecodableFrames { direction, reason } => {
                format!("kafka_undecodable_frames_total;direction={};reason={reason}", direction.as_str())
            }
            Metric::BodyDecodeErrors { direction, api } => {
                format!("kafka_body_decode_errors_total;direction={};api={api}", direction.as_str())
            }
            Metric::BodiesDecoded { direction, api } => {
                format!("kafka_bodies_decoded_total;direction={};api={api}", direction.as_str())
            }
            Metric::RecordBatches { api, direction } => {
                format!("kafka_record_batches_total;api={api};direction={}", direction.as_str())
            }
            Metric::Records { api, direction } => format!("kafka_records_total;api={api};direction={}", direction.as_str()),
            Metric::ScanErrors { api, direction } => format!("kafka_scan_errors_total;api={api};direction={}", direction.as_str()),
            Metric::UnmatchedResponses => "kafka_unmatched_responses_total".into(),
            Metric::UnansweredRequests => "kafka_unanswered_requests_total".into(),
            Metric::InFlightOverflow => "kafka_in_flight_overflow_total".into(),
            Metric::Connections => "kafka_connections_total".into(),
            Metric::ActiveConnections => "kafka_connections_active".into(),
            Metric::InFlightRequests => "kafka_requests_in_flight".into(),
            Metric::NonKafkaConnections { kind } => format!("kafka_non_kafka_connections_total;kind={kind}"),
            Metric::ConnectionsClosedByFilter { reason } => format!("kafka_connections_closed_by_filter_total;reason={reason}"),
            Metric::HostcallFailures { call } => format!("kafka_lens_hostcall_failures_total;call={call}"),
            Metric::ConfigLoads => "kafka_lens_config_loads_total".into(),
            Metric::VmHeapBytes => "kafka_lens_vm_heap_bytes".into(),
            Metric::VmMemoryBytes => "kafka_lens_vm_memory_bytes".into(),
        }
    }

    /// The health counters defined at zero when a VM starts, so that their first increment is
    /// an increase Prometheus can see (`rate()` and `increase()` ignore the value a series is
    /// born with): the alert rules on decode failures and label overflow rely on it.
    pub fn predefined() -> Vec<Metric> {
        let mut out = Vec::new();
        for direction in [Direction::Request, Direction::Response] {
            for reason in ["header", "frame_too_large", "frame_too_small", "buffer_read_failed"] {
                out.push(Metric::UndecodableFrames { direction, reason });
            }
        }
        out.push(Metric::ScanErrors { api: "Produce", direction: Direction::Request });
        out.push(Metric::ScanErrors { api: "Fetch", direction: Direction::Response });
        for label in ["client_id", "topic", "group", "client_software", "identity"] {
            out.push(Metric::LabelOverflow { label });
        }
        for reason in ["frame_too_large", "frame_too_small"] {
            out.push(Metric::ConnectionsClosedByFilter { reason });
        }
        out.push(Metric::SeriesOverflow);
        out.push(Metric::UnmatchedResponses);
        out
    }

    fn kind(&self) -> MetricKind {
        match self {
            Metric::ActiveConnections
            | Metric::InFlightRequests
            | Metric::VmHeapBytes
            | Metric::VmMemoryBytes
            | Metric::FetchLag { .. }
            | Metric::FetchLagPartition { .. }
            | Metric::CommittedOffset { .. }
            | Metric::ClientSoftware { .. } => MetricKind::Gauge,
            Metric::Latency { .. } | Metric::ConnectionMaxInFlight => MetricKind::Histogram,
            _ => MetricKind::Counter,
        }
    }
}

/// A stat name in Envoy tag form (`name;a=x;b=y`) rewritten in the form Istio's bootstrap extracts
/// for each tag in `extraStatTags` (`a=.=x;.;b=.=y;.;name`, regex `(a=\.=(.*?);\.;)`). Label values
/// are sanitized, so they hold neither `;` nor `=`.
pub fn istio_form(envoy_form: &str) -> String {
    let mut parts = envoy_form.split(';');
    let name = parts.next().unwrap_or_default();
    let mut out = String::with_capacity(envoy_form.len() + 16);
    for tag in parts {
        if let Some((key, value)) = tag.split_once('=') {
            out.push_str(key);
            out.push_str("=.=");
            out.push_str(value);
            out.push_str(";.;");
        }
    }
    out.push_str(name);
    out
}

/// Labels whose values come from clients, each capped separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKind {
    ClientId,
    Topic,
    Group,
    /// Client software names and versions.
    ClientSoftware,
    /// Resolved identities (`sasl:alice`, `mtls:spiffe://..`, `client_id:shop`).
    Identity,
}

/// Where the connection logic sends its counts, with the two things counting needs from the
/// host: label values admitted under their cap, and the clock. The Wasm build sends them to Envoy
/// ([`EnvoyMetrics`]); native tests collect them in a map.
pub trait MetricSink {
    /// Adds `by` to `metric` (negative only for gauges).
    fn add(&mut self, metric: Metric, by: i64);

    /// Records a histogram sample.
    fn record(&mut self, metric: Metric, value: u64);

    /// The label for a value taken from client input (absent: `none`): sanitized and, in Envoy,
    /// capped per kind across VMs. The default only sanitizes.
    fn label(&mut self, _kind: LabelKind, raw: Option<&str>) -> Label {
        Label::Owned(sanitize(raw.unwrap_or(""), crate::config::DEFAULT_MAX_LABEL_LENGTH).into())
    }

    /// This VM's table of idempotent producers' batch sequences (retry detection), where there
    /// is one.
    fn producer_sequences(&mut self) -> Option<&mut crate::retries::ProducerSequences> {
        None
    }

    /// Data shared by every VM of the plugin (topic ids, group generations), where there is any.
    fn shared(&mut self) -> Option<&mut dyn SharedStore> {
        None
    }

    /// Microseconds on a monotonic-enough clock, where the host has one.
    fn now_micros(&mut self) -> Option<u64> {
        None
    }
}

/// The test sink: counters and gauges sum; a histogram counts its samples.
impl MetricSink for HashMap<Metric, i64> {
    fn add(&mut self, metric: Metric, by: i64) {
        *self.entry(metric).or_insert(0) += by;
    }
    fn record(&mut self, metric: Metric, _value: u64) {
        *self.entry(metric).or_insert(0) += 1;
    }
}

/// Proxy-wasm shared data, through [`host`].
#[derive(Debug, Default)]
struct EnvoyShared;

impl SharedStore for EnvoyShared {
    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        host::get_shared(key).map_err(|_| StoreError::Failed)
    }
    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        match host::set_shared(key, value, cas) {
            Ok(()) => Ok(()),
            Err(HostError::Status(8)) => Err(StoreError::CasMismatch),
            Err(_) => Err(StoreError::Failed),
        }
    }
}

/// Brings this VM's share of a VM-wide gauge up to date: gauges are shared by every VM of the
/// plugin, so each VM adds the change since its last report instead of setting a value.
#[derive(Debug, Default)]
pub struct GaugeShare {
    reported: i64,
}

impl GaugeShare {
    pub fn report(&mut self, sink: &mut dyn MetricSink, metric: Metric, now: usize) {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let delta = now.saturating_sub(self.reported);
        if delta != 0 {
            sink.add(metric, delta);
            self.reported = now;
        }
    }
}

/// Where a defined metric's updates go.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// A counter or gauge: its increments add up in `EnvoyMetrics::deltas` at this index.
    Summed(usize),
    /// A histogram: every sample goes to Envoy at once (Envoy cannot take them summed).
    Histogram(u32),
}

/// A counter or gauge's increments not yet sent to Envoy.
#[derive(Debug)]
struct Delta {
    id: u32,
    by: i64,
    /// Listed in `EnvoyMetrics::dirty` (a gauge going +1, -1 between flushes is listed once).
    listed: bool,
}

/// Entries of [`RecentSeries`].
const RECENT_SERIES: usize = 64;

/// The last series looked up for each metric variant, with its slot. A connection adds the same
/// few series request after request (its requests and bytes, its topic's records, the in-flight
/// gauge); comparing with the last series of the variant spares hashing the labels, which was a
/// fifth of the filter's time in the VM (measured under V8). Variants share an entry when their
/// indexes collide, which only costs a lookup.
struct RecentSeries<S> {
    entries: [Option<(Metric, S)>; RECENT_SERIES],
}

impl<S: Copy> RecentSeries<S> {
    fn new() -> Self {
        RecentSeries { entries: std::array::from_fn(|_| None) }
    }

    /// Which entry a metric's variant uses.
    fn index(metric: &Metric) -> usize {
        /// FNV-1a over the discriminant's bytes.
        struct Variant(u64);
        impl std::hash::Hasher for Variant {
            fn finish(&self) -> u64 {
                self.0
            }
            fn write(&mut self, bytes: &[u8]) {
                for b in bytes {
                    self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        let mut variant = Variant(0xcbf2_9ce4_8422_2325);
        std::hash::Hash::hash(&std::mem::discriminant(metric), &mut variant);
        (variant.0 % RECENT_SERIES as u64) as usize
    }

    fn get(&self, metric: &Metric) -> Option<S> {
        match self.entries.get(Self::index(metric)) {
            Some(Some((last, slot))) if last == metric => Some(*slot),
            _ => None,
        }
    }

    fn remember(&mut self, metric: &Metric, slot: S) {
        if let Some(entry) = self.entries.get_mut(Self::index(metric)) {
            *entry = Some((metric.clone(), slot));
        }
    }
}

impl<S> std::fmt::Debug for RecentSeries<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentSeries").field("used", &self.entries.iter().filter(|e| e.is_some()).count()).finish()
    }
}

/// Most histogram values kept between flushes (16 bytes each): a flush a second covers 4,096
/// responses per VM before one is made early.
const MAX_PENDING_RECORDS: usize = 4096;

/// Envoy-backed metrics for one VM: defines each stat on first use and remembers its id, within
/// a budget of distinct series; admits client-id labels under their cap.
///
/// Counter and gauge increments are summed in the VM and sent to Envoy by [`EnvoyMetrics::flush`]
/// (the root context's tick, every second, and the end of every connection): a hostcall costs far
/// more than the addition, and a request would otherwise make about ten of them. Prometheus
/// therefore sees counts at most a tick late, and a closed connection's counts at once.
/// Histogram samples are kept and recorded at the same flushes.
#[derive(Debug)]
pub struct EnvoyMetrics {
    ids: HashMap<Metric, Slot, foldhash::fast::RandomState>,
    recent: RecentSeries<Slot>,
    deltas: Vec<Delta>,
    /// Indexes into `deltas` changed since the last flush (each at most once).
    dirty: Vec<usize>,
    /// Histogram values (metric id, value) waiting for the next flush: recorded one by one in a
    /// tight loop there, rather than each with a hostcall into Envoy's stats amid a callback whose
    /// caches the socket copies just emptied (measured: ~7 µs per latency sample then).
    records: Vec<(u32, u64)>,
    max_series: usize,
    tag_format: crate::config::TagFormat,
    client_ids: LabelCap,
    topics: LabelCap,
    groups: LabelCap,
    client_software: LabelCap,
    identities: LabelCap,
    sequences: crate::retries::ProducerSequences,
    shared: EnvoyShared,
    /// The clock read during the current callback: frames handled in one callback share it.
    now: Option<u64>,
    /// Definitions or increments Envoy refused (reported once per VM in the log).
    pub failures: u64,
    last_error: Option<HostError>,
}

impl Default for EnvoyMetrics {
    fn default() -> Self {
        EnvoyMetrics::new(&crate::config::Config::default())
    }
}

impl EnvoyMetrics {
    pub fn new(config: &crate::config::Config) -> Self {
        EnvoyMetrics {
            ids: HashMap::default(),
            recent: RecentSeries::new(),
            deltas: Vec::new(),
            dirty: Vec::new(),
            records: Vec::new(),
            max_series: config.labels.max_metric_series,
            tag_format: config.tag_format,
            client_ids: LabelCap::new("client_id", config.labels.max_client_ids, config.labels.max_label_length),
            topics: LabelCap::new("topic", config.labels.max_topics, config.labels.max_label_length),
            groups: LabelCap::new("group", config.labels.max_groups, config.labels.max_label_length),
            client_software: LabelCap::new("client_software", config.labels.max_client_software, config.labels.max_label_length),
            identities: LabelCap::new("identity", config.labels.max_identities, config.labels.max_identity_length),
            sequences: crate::retries::ProducerSequences::default(),
            shared: EnvoyShared,
            now: None,
            failures: 0,
            last_error: None,
        }
    }

    /// Starts a callback from Envoy: the next clock reading is a fresh one.
    pub fn start_callback(&mut self) {
        self.now = None;
    }

    /// Sends every summed increment to Envoy.
    pub fn flush(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for index in &dirty {
            let Some(delta) = self.deltas.get_mut(*index) else {
                continue;
            };
            delta.listed = false;
            let (id, by) = (delta.id, std::mem::take(&mut delta.by));
            if by != 0 {
                if let Err(e) = host::increment_metric(id, by) {
                    self.refused(&format!("id {id}"), e);
                }
            }
        }
        self.dirty = dirty;
        self.dirty.clear();
        let records = std::mem::take(&mut self.records);
        for (id, value) in &records {
            if let Err(e) = host::record_metric(*id, *value) {
                self.refused(&format!("id {id}"), e);
            }
        }
        self.records = records;
        self.records.clear();
    }

    /// Keeps a histogram value for the next flush (at once when [`MAX_PENDING_RECORDS`] wait).
    fn record_value(&mut self, id: u32, value: u64) {
        self.records.push((id, value));
        if self.records.len() >= MAX_PENDING_RECORDS {
            self.flush();
        }
    }

    /// Increments waiting for the next flush (tests).
    pub fn pending(&self) -> usize {
        self.dirty.len() + self.records.len()
    }

    fn slot(&mut self, metric: &Metric) -> Result<Option<Slot>, HostError> {
        if let Some(slot) = self.recent.get(metric) {
            return Ok(Some(slot));
        }
        let slot = self.defined_slot(metric)?;
        if let Some(slot) = slot {
            self.recent.remember(metric, slot);
        }
        Ok(slot)
    }

    fn defined_slot(&mut self, metric: &Metric) -> Result<Option<Slot>, HostError> {
        if let Some(slot) = self.ids.get(metric) {
            return Ok(Some(*slot));
        }
        if self.ids.len() >= self.max_series && *metric != Metric::SeriesOverflow {
            self.add(Metric::SeriesOverflow, 1);
            return Ok(None);
        }
        let kind = metric.kind();
        let name = match self.tag_format {
            crate::config::TagFormat::Envoy => metric.name(),
            crate::config::TagFormat::Istio => istio_form(&metric.name()),
        };
        let id = host::define_metric(kind, &name)?;
        let slot = if kind == MetricKind::Histogram {
            Slot::Histogram(id)
        } else {
            self.deltas.push(Delta { id, by: 0, listed: false });
            Slot::Summed(self.deltas.len() - 1)
        };
        self.ids.insert(metric.clone(), slot);
        Ok(Some(slot))
    }

    fn refused(&mut self, what: &str, e: HostError) {
        self.failures = self.failures.saturating_add(1);
        if self.failures == 1 {
            log::warn!("metric {what} refused by Envoy: {e}");
        }
        self.last_error = Some(e);
    }

    /// The most recent refusal, taken.
    pub fn take_error(&mut self) -> Option<HostError> {
        self.last_error.take()
    }
}

impl MetricSink for EnvoyMetrics {
    fn add(&mut self, metric: Metric, by: i64) {
        match self.slot(&metric) {
            Ok(Some(Slot::Summed(index))) => {
                if let Some(delta) = self.deltas.get_mut(index) {
                    if !delta.listed {
                        delta.listed = true;
                        self.dirty.push(index);
                    }
                    delta.by = delta.by.saturating_add(by);
                }
            }
            Ok(Some(Slot::Histogram(id))) => self.record_value(id, u64::try_from(by).unwrap_or(0)),
            Ok(None) => {}
            Err(e) => self.refused(&metric.name(), e),
        }
    }

    fn record(&mut self, metric: Metric, value: u64) {
        match self.slot(&metric) {
            Ok(Some(Slot::Histogram(id))) => self.record_value(id, value),
            Ok(Some(Slot::Summed(_))) => self.add(metric, i64::try_from(value).unwrap_or(i64::MAX)),
            Ok(None) => {}
            Err(e) => self.refused(&metric.name(), e),
        }
    }

    fn label(&mut self, kind: LabelKind, raw: Option<&str>) -> Label {
        let (cap, name) = match kind {
            LabelKind::ClientId => (&mut self.client_ids, "client_id"),
            LabelKind::Topic => (&mut self.topics, "topic"),
            LabelKind::Group => (&mut self.groups, "group"),
            LabelKind::ClientSoftware => (&mut self.client_software, "client_software"),
            LabelKind::Identity => (&mut self.identities, "identity"),
        };
        let admitted = cap.admit(&mut self.shared, raw);
        if admitted.overflowed {
            self.add(Metric::LabelOverflow { label: name }, 1);
        }
        admitted.label
    }

    fn producer_sequences(&mut self) -> Option<&mut crate::retries::ProducerSequences> {
        Some(&mut self.sequences)
    }

    fn shared(&mut self) -> Option<&mut dyn SharedStore> {
        Some(&mut self.shared)
    }

    fn now_micros(&mut self) -> Option<u64> {
        if self.now.is_none() {
            self.now = host::now_nanos().ok().map(|n| n / 1000);
        }
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_series_answer_only_for_the_same_series() {
        let client = |id: &str| Client { client_id: Label::Owned(id.into()), identity: Label::Static("none") };
        let requests = |id: &str| Metric::Requests { api: "Produce", version: "9", client: client(id) };
        let bytes = |id: &str| Metric::RequestBytes { api: "Produce", client: client(id) };
        let mut recent = RecentSeries::new();
        recent.remember(&requests("a"), 1);
        recent.remember(&bytes("a"), 2);
        recent.remember(&Metric::InFlightRequests, 3);
        // Equal series, in other allocations.
        assert_eq!(recent.get(&requests("a")), Some(1));
        assert_eq!(recent.get(&bytes("a")), Some(2));
        assert_eq!(recent.get(&Metric::InFlightRequests), Some(3));
        // Same variant, another label: not this slot.
        assert_eq!(recent.get(&requests("b")), None);
        assert_eq!(recent.get(&Metric::Requests { api: "Produce", version: "10", client: client("a") }), None);
        recent.remember(&requests("b"), 4);
        assert_eq!(recent.get(&requests("b")), Some(4));
        assert_eq!(recent.get(&requests("a")), None);
        assert_eq!(recent.get(&Metric::ActiveConnections), None);
    }

    #[test]
    fn gauge_share_reports_deltas() {
        let mut sink: HashMap<Metric, i64> = HashMap::new();
        let mut a = GaugeShare::default();
        let mut b = GaugeShare::default();
        a.report(&mut sink, Metric::VmHeapBytes, 100);
        b.report(&mut sink, Metric::VmHeapBytes, 50);
        a.report(&mut sink, Metric::VmHeapBytes, 70);
        assert_eq!(sink[&Metric::VmHeapBytes], 120);
    }

    #[test]
    fn istio_form_puts_tags_first_as_istio_extracts_them() {
        let name = Metric::Requests { api: "Produce", version: "9", client: Client::fixed("shop", "sasl:alice") }.name();
        assert_eq!(istio_form(&name), "api=.=Produce;.;version=.=9;.;client_id=.=shop;.;identity=.=sasl:alice;.;kafka_requests_total");
        assert_eq!(istio_form("kafka_connections_active"), "kafka_connections_active");
    }

    #[test]
    fn names_carry_tags_in_envoy_form() {
        let client = Client::fixed("shop", "sasl:alice");
        assert_eq!(
            Metric::Requests { api: "Produce", version: "9", client }.name(),
            "kafka_requests_total;api=Produce;version=9;client_id=shop;identity=sasl:alice"
        );
        assert_eq!(
            Metric::UndecodableFrames { direction: Direction::Response, reason: "too_large" }.name(),
            "kafka_undecodable_frames_total;direction=response;reason=too_large"
        );
        assert_eq!(Metric::ActiveConnections.kind(), MetricKind::Gauge);
    }
}
