//! The filter's metrics: what is counted, how each is named in Envoy, and where counts go.
//!
//! Names follow Prometheus conventions and carry their labels in Envoy's tag form
//! `name;label=value;...`. Envoy shows them under `wasmcustom.`; the shipped configs' `stats_tags`
//! rules turn every `;label=value` into a Prometheus label, so `/stats/prometheus` serves
//! `kafka_requests_total{api="Produce"}`. Label values here are static strings (API names,
//! reasons), never client input, so they cannot inject separators or grow without bound.

use std::collections::HashMap;

use crate::host::{self, HostError, MetricKind};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Requests seen, per API name (`unknown` for API keys the codec does not know).
    Requests { api: &'static str },
    /// Responses seen and paired with their request, per API name.
    Responses { api: &'static str },
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
            Metric::Requests { api } => format!("kafka_requests_total;api={api}"),
            Metric::Responses { api } => format!("kafka_responses_total;api={api}"),
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

    fn kind(&self) -> MetricKind {
        match self {
            Metric::ActiveConnections | Metric::InFlightRequests | Metric::VmHeapBytes | Metric::VmMemoryBytes => MetricKind::Gauge,
            _ => MetricKind::Counter,
        }
    }
}

/// Where the connection logic sends its counts. The Wasm build sends them to Envoy
/// ([`EnvoyMetrics`]); native tests collect them in a map.
pub trait MetricSink {
    /// Adds `by` to `metric` (negative only for gauges).
    fn add(&mut self, metric: Metric, by: i64);
}

impl MetricSink for HashMap<Metric, i64> {
    fn add(&mut self, metric: Metric, by: i64) {
        *self.entry(metric).or_insert(0) += by;
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

/// Envoy-backed metrics for one VM: defines each stat on first use and remembers its id.
#[derive(Debug, Default)]
pub struct EnvoyMetrics {
    ids: HashMap<Metric, u32>,
    /// Definitions or increments Envoy refused (reported once per VM in the log).
    pub failures: u64,
    last_error: Option<HostError>,
}

impl EnvoyMetrics {
    fn id(&mut self, metric: Metric) -> Result<u32, HostError> {
        if let Some(id) = self.ids.get(&metric) {
            return Ok(*id);
        }
        let id = host::define_metric(metric.kind(), &metric.name())?;
        self.ids.insert(metric, id);
        Ok(id)
    }

    /// The most recent refusal, taken.
    pub fn take_error(&mut self) -> Option<HostError> {
        self.last_error.take()
    }
}

impl MetricSink for EnvoyMetrics {
    fn add(&mut self, metric: Metric, by: i64) {
        if let Err(e) = self.id(metric).and_then(|id| host::increment_metric(id, by)) {
            self.failures = self.failures.saturating_add(1);
            if self.failures == 1 {
                log::warn!("metric {} refused by Envoy: {e}", metric.name());
            }
            self.last_error = Some(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn names_carry_tags_in_envoy_form() {
        assert_eq!(Metric::Requests { api: "Produce" }.name(), "kafka_requests_total;api=Produce");
        assert_eq!(
            Metric::UndecodableFrames { direction: Direction::Response, reason: "too_large" }.name(),
            "kafka_undecodable_frames_total;direction=response;reason=too_large"
        );
        assert_eq!(Metric::ActiveConnections.kind(), MetricKind::Gauge);
    }
}
