//! proxy-wasm context types: thin adapters from Envoy's callbacks to [`Connection`].

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType, PeerType};

use crate::config::Config;
use crate::addresses::BrokerAddresses;
use crate::policy::Policy;
use crate::connection::{Connection, Limits, Verdict};
use crate::host::{self, Buffer, EnvoyBuffer, Stream};
use crate::alloc;
use crate::panics;
use crate::metrics::{EnvoyMetrics, GaugeShare, Metric, MetricSink};
use crate::otlp;
use crate::rewrite::TopicRewrite;
use crate::tracing::{SharedSpans, SpanQueue, TracingConfig};
use crate::versions::{Translation, SHARED_KEY as SHARED_VERSIONS_KEY};

/// Metrics shared by every context of this VM (one VM per Envoy worker thread).
type SharedMetrics = Rc<RefCell<EnvoyMetrics>>;

/// Adds to a shared metric without ever panicking on a busy borrow (it cannot be busy: the VM
/// is single-threaded and no callback re-enters, but a lost count beats a trapped VM).
fn add(metrics: &SharedMetrics, metric: Metric, by: i64) {
    if let Ok(mut m) = metrics.try_borrow_mut() {
        m.add(metric, by);
    }
}

/// Sends the VM's summed metric increments to Envoy.
fn flush(metrics: &SharedMetrics) {
    if let Ok(mut m) = metrics.try_borrow_mut() {
        m.flush();
    }
}

/// How often the root context refreshes the VM memory gauges and flushes metric increments.
const TICK_MILLIS: u32 = 1000;

/// This VM's shares of the VM-wide memory gauges.
#[derive(Default)]
struct MemoryGauges {
    heap: GaugeShare,
    memory: GaugeShare,
}

impl MemoryGauges {
    fn report(&mut self, metrics: &SharedMetrics) {
        if let Ok(mut m) = metrics.try_borrow_mut() {
            self.heap.report(&mut *m, Metric::VmHeapBytes, alloc::heap_in_use());
            self.memory.report(&mut *m, Metric::VmMemoryBytes, alloc::linear_memory());
        }
    }
}

/// The plugin's root context: loads the configuration and creates one stream context per
/// connection.
#[derive(Default)]
pub struct Root {
    config: Rc<Config>,
    /// The configuration's policy, shared by every connection of the VM.
    policy: Rc<Policy>,
    /// The configuration's broker address rewriting, likewise.
    addresses: Rc<BrokerAddresses>,
    /// The configuration's topic renames and tenant prefixes, likewise.
    rewrite: Rc<TopicRewrite>,
    /// The broker version table old protocol versions are translated by, likewise.
    translation: Rc<Translation>,
    /// The spans this VM's connections queue for export, and the tracing configuration (tracing
    /// on), with the export call in flight: its token and how many spans it carries.
    tracing: Option<(Rc<TracingConfig>, SharedSpans)>,
    export_in_flight: Option<(u32, usize)>,
    metrics: SharedMetrics,
    memory: MemoryGauges,
}

impl Context for Root {
    fn on_done(&mut self) -> bool {
        flush(&self.metrics);
        true
    }

    /// The collector answered (or the call failed): the batch counts as exported or dropped.
    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, _response_size: usize) {
        let Some((token, spans)) = self.export_in_flight else { return };
        if token != token_id {
            return;
        }
        self.export_in_flight = None;
        if status_code == 0 {
            add(&self.metrics, Metric::SpansExported, spans as i64);
        } else {
            log::debug!("span export failed with gRPC status {status_code}: {spans} spans dropped");
            add(&self.metrics, Metric::SpansDropped { reason: "export_failed" }, spans as i64);
        }
    }
}

impl Root {
    /// Sends one batch of queued spans to the collector, unless a call is still in flight (then
    /// the queue fills, and drops once full).
    fn export_spans(&mut self) {
        let Some((config, queue)) = &self.tracing else { return };
        let Ok(mut queue) = queue.try_borrow_mut() else { return };
        if queue.dropped > 0 {
            add(&self.metrics, Metric::SpansDropped { reason: "queue_full" }, queue.dropped as i64);
            queue.dropped = 0;
        }
        if self.export_in_flight.is_some() || queue.is_empty() {
            return;
        }
        let batch = queue.take_batch(config.max_batch_spans);
        let n = batch.len();
        let message = otlp::encode_export(&config.service_name, env!("CARGO_PKG_VERSION"), batch);
        match host::dispatch_grpc_call(&config.collector_cluster, TRACE_SERVICE, "Export", &message, config.export_timeout_ms) {
            Ok(token) => self.export_in_flight = Some((token, n)),
            Err(e) => {
                add(&self.metrics, Metric::HostcallFailures { call: "dispatch_grpc_call" }, 1);
                add(&self.metrics, Metric::SpansDropped { reason: "export_failed" }, n as i64);
                log::warn!("cannot export spans to cluster {:?}: {e}", config.collector_cluster);
            }
        }
    }
}

impl Root {
    /// Takes the broker versions other VMs learned (translation on): a connection whose client
    /// never sends ApiVersions still sees the broker's ranges.
    fn merge_broker_versions(&self) {
        if !self.translation.is_enabled() {
            return;
        }
        match host::get_shared(SHARED_VERSIONS_KEY) {
            Ok(Some((bytes, _))) => self.translation.merge_shared(&bytes),
            Ok(None) => {}
            Err(e) => {
                add(&self.metrics, Metric::HostcallFailures { call: "get_shared_data" }, 1);
                log::debug!("reading the shared broker versions refused: {e}");
            }
        }
    }
}

/// The OTLP trace service (opentelemetry/proto/collector/trace/v1/trace_service.proto).
const TRACE_SERVICE: &str = "opentelemetry.proto.collector.trace.v1.TraceService";

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        host::init_logging();
        panics::install_hook();
        true
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let mut raw = Vec::new();
        if plugin_configuration_size > 0 {
            if let Err(e) = host::read_buffer(Buffer::PluginConfiguration, 0, plugin_configuration_size, &mut raw) {
                log::error!("cannot read the plugin configuration: {e}");
                return false;
            }
        }
        match Config::parse(&raw) {
            Ok(config) => {
                log::info!("configuration loaded: {config:?}");
                if let Ok(mut metrics) = self.metrics.try_borrow_mut() {
                    metrics.flush();
                    *metrics = EnvoyMetrics::new(&config);
                    for metric in Metric::predefined() {
                        metrics.add(metric, 0);
                    }
                }
                self.policy = Rc::new(Policy::new(config.policy.clone()));
                self.addresses = Rc::new(config.broker_addresses.clone());
                self.rewrite = Rc::new(TopicRewrite::new(&config.topic_rewrite));
                self.translation = Rc::new(Translation::new(&config.version_translation));
                self.tracing = config.tracing.is_enabled().then(|| {
                    let seed = host::now_nanos().unwrap_or(0x9e37_79b9_7f4a_7c15);
                    let queue = SpanQueue::new(config.tracing.max_queued_spans, seed);
                    (Rc::new(config.tracing.clone()), Rc::new(RefCell::new(queue)))
                });
                self.config = Rc::new(config);
                panics::define();
                add(&self.metrics, Metric::ConfigLoads, 1);
                flush(&self.metrics);
                if let Err(e) = host::set_tick_period(TICK_MILLIS) {
                    add(&self.metrics, Metric::HostcallFailures { call: "set_tick_period" }, 1);
                    log::warn!("no tick, memory gauges will not refresh: {e}");
                }
                self.memory.report(&self.metrics);
                true
            }
            Err(e) => {
                log::error!("{e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        self.export_spans();
        self.merge_broker_versions();
        self.memory.report(&self.metrics);
        flush(&self.metrics);
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }

    fn create_stream_context(&self, context_id: u32) -> Option<Box<dyn StreamContext>> {
        self.merge_broker_versions();
        Some(Box::new(KafkaStream {
            id: context_id,
            config: Rc::clone(&self.config),
            connection: Connection::new(Limits::from(self.config.as_ref()))
                .with_oauthbearer_claim(&self.config.identity.oauthbearer_principal_claim)
                .with_policy(Rc::clone(&self.policy))
                .with_broker_addresses(Rc::clone(&self.addresses))
                .with_tracing_from(self.tracing.as_ref())
                .with_topic_rewrite(Rc::clone(&self.rewrite))
                .with_translation(Rc::clone(&self.translation)),
            metrics: Rc::clone(&self.metrics),
            closed: false,
            peer_checked: false,
        }))
    }
}

/// One downstream connection.
pub struct KafkaStream {
    id: u32,
    config: Rc<Config>,
    connection: Connection,
    metrics: SharedMetrics,
    closed: bool,
    /// The peer certificate's principal has been looked up (once, at the first client bytes:
    /// a TLS handshake is over by then).
    peer_checked: bool,
}

/// Envoy attributes naming a verified peer, most specific first: the URI SAN (SPIFFE id under
/// Istio mTLS), then the certificate subject.
const PEER_PRINCIPAL_PROPERTIES: [[&str; 2]; 2] =
    [["connection", "uri_san_peer_certificate"], ["connection", "subject_peer_certificate"]];

impl KafkaStream {
    /// Looks up the verified peer principal of a TLS connection Envoy terminated.
    fn check_peer(&mut self) {
        self.peer_checked = true;
        if !self.config.policy.is_empty() || !self.config.topic_rewrite.is_empty() || self.config.tracing.is_enabled() {
            match host::get_property(&["source", "address"]) {
                Ok(address) => self.connection.set_source_address(address.map(|a| String::from_utf8_lossy(&a).into_owned())),
                Err(e) => {
                    add(&self.metrics, Metric::HostcallFailures { call: "get_property" }, 1);
                    log::debug!("connection {}: reading source.address refused: {e}", self.id);
                }
            }
        }
        for path in PEER_PRINCIPAL_PROPERTIES {
            match host::get_property(&path) {
                Ok(Some(value)) => {
                    let principal = String::from_utf8_lossy(&value).into_owned();
                    log::debug!("connection {}: verified peer principal {principal:?}", self.id);
                    self.connection.set_peer_principal(Some(principal));
                    return;
                }
                Ok(None) => {}
                Err(e) => {
                    add(&self.metrics, Metric::HostcallFailures { call: "get_property" }, 1);
                    log::debug!("connection {}: reading {} refused: {e}", self.id, path.join("."));
                }
            }
        }
    }

    /// Runs `f` with the VM's metric sink, counting any hostcall refusal it caused.
    fn with_metrics<T>(&mut self, f: impl FnOnce(&mut Connection, &mut dyn MetricSink) -> T) -> Option<T> {
        let mut metrics = self.metrics.try_borrow_mut().ok()?;
        metrics.start_callback();
        Some(f(&mut self.connection, &mut *metrics))
    }

    fn apply(&mut self, verdict: Verdict, source: &EnvoyBuffer) -> Action {
        if let Some(e) = source.error {
            let call = if source.buffer == Buffer::Downstream { "get_buffer_downstream" } else { "get_buffer_upstream" };
            add(&self.metrics, Metric::HostcallFailures { call }, 1);
            log::warn!("connection {}: reading the {call} buffer refused: {e}", self.id);
        }
        match verdict {
            Verdict::Continue => Action::Continue,
            Verdict::Pause => Action::Pause,
            Verdict::Close(reason) => {
                self.close(reason);
                Action::Pause
            }
        }
    }

    fn close(&mut self, reason: &str) {
        if self.closed {
            return;
        }
        self.closed = true;
        for stream in [Stream::Downstream, Stream::Upstream] {
            if let Err(e) = host::close(stream) {
                add(&self.metrics, Metric::HostcallFailures { call: "close_stream" }, 1);
                log::warn!("connection {}: closing ({reason}) refused: {e}", self.id);
            }
        }
    }

    fn release(&mut self) {
        self.with_metrics(|connection, sink| connection.on_close(sink));
    }
}

impl Context for KafkaStream {
    fn on_done(&mut self) -> bool {
        true
    }
}

impl StreamContext for KafkaStream {
    fn on_new_connection(&mut self) -> Action {
        add(&self.metrics, Metric::Connections, 1);
        add(&self.metrics, Metric::ActiveConnections, 1);
        // Visible at once, as the close is: with the open still waiting for the tick, another
        // VM's close could bring the VM-summed gauge to 0 while this connection's counts are
        // still unsent, and a reader taking "no active connection" as "all counted" would be
        // wrong (the test harness does; so may an operator).
        flush(&self.metrics);
        log::debug!("connection {} opened", self.id);
        Action::Continue
    }

    fn on_downstream_data(&mut self, data_size: usize, _end_of_stream: bool) -> Action {
        if self.config.diagnostics.probe_refused_hostcall && self.connection.in_flight() == 0 {
            // Envoy refuses writes toward the client from the request path (BadArgument).
            if let Err(e) = host::write_buffer(Buffer::Upstream, 0, 0, b"") {
                add(&self.metrics, Metric::HostcallFailures { call: "set_buffer_probe" }, 1);
                log::debug!("connection {}: probe hostcall refused as expected: {e}", self.id);
            }
        }
        if !self.peer_checked {
            self.check_peer();
        }
        let mut source = EnvoyBuffer { buffer: Buffer::Downstream, error: None };
        let verdict = self
            .with_metrics(|connection, sink| connection.on_request_data(&mut source, data_size, sink))
            .unwrap_or(Verdict::Continue);
        self.apply(verdict, &source)
    }

    fn on_downstream_close(&mut self, _peer_type: PeerType) {
        log::debug!("connection {}: client side closed", self.id);
    }

    fn on_upstream_data(&mut self, data_size: usize, _end_of_stream: bool) -> Action {
        let mut source = EnvoyBuffer { buffer: Buffer::Upstream, error: None };
        let verdict = self
            .with_metrics(|connection, sink| connection.on_response_data(&mut source, data_size, sink))
            .unwrap_or(Verdict::Continue);
        if let Some(learned) = self.connection.translation_changes() {
            // Every worker VM gets what this one learned from the broker's ApiVersions answer.
            if let Err(e) = host::set_shared(SHARED_VERSIONS_KEY, &learned, 0) {
                add(&self.metrics, Metric::HostcallFailures { call: "set_shared_data" }, 1);
                log::debug!("connection {}: publishing the broker versions refused: {e}", self.id);
            }
        }
        self.apply(verdict, &source)
    }

    fn on_upstream_close(&mut self, _peer_type: PeerType) {
        log::debug!("connection {}: broker side closed", self.id);
    }

    fn on_log(&mut self) {
        if self.config.access_log_properties {
            // Envoy writes the access log after this callback: the properties are in it.
            for (name, value) in self.connection.access_log_properties() {
                if let Err(e) = host::set_property(name, value.as_bytes()) {
                    add(&self.metrics, Metric::HostcallFailures { call: "set_property" }, 1);
                    log::debug!("connection {}: set_property {name} refused: {e}", self.id);
                }
            }
        }
        add(&self.metrics, Metric::ActiveConnections, -1);
        self.release();
        // A closed connection's counts are visible at once, not a tick later.
        flush(&self.metrics);
        log::debug!("connection {} closed", self.id);
    }
}
