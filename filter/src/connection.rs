//! One Kafka connection as the filter sees it: both directions framed, requests paired with their
//! responses, everything counted. Plain Rust, no proxy-wasm: the Wasm context feeds it Envoy's
//! buffers, native tests and fuzzers feed it byte slices.
//!
//! Without a policy the filter only observes: every byte passes through unchanged, and the one
//! thing it does to a connection is close it when a client sends a frame over `max_frame_bytes`
//! after the stream was shown to be Kafka, as the broker itself would. With a policy, requests a
//! rule may refuse are held until whole, decided on, and refused ones replaced (see `enforce` and
//! [`crate::flow`]).

mod enforce;
mod translate;

use bytes::Bytes;
use kafka_lens_codec::api::{self, ApiSupport};
use kafka_lens_codec::body;
use kafka_lens_codec::correlation::{Correlator, InFlight, Match};
use kafka_lens_codec::detect::{self, NotKafka};
use kafka_lens_codec::frame::{ChunkSource, Disposition, FrameError, FrameEvent, FrameSplitter, FrameStart, SplitterConfig};
use kafka_lens_codec::header;
use kafka_lens_codec::read_ahead::{self, ReadAhead};
use kafka_lens_codec::kafka_protocol::messages::ApiKey;
use kafka_lens_codec::kafka_protocol::messages::{RequestKind, ResponseKind};
use kafka_lens_codec::sasl::{self, Outcome, SaslExchange};
use kafka_lens_codec::scan::{self, BodyScan, FetchSummary, ProduceSummary, ScanError, Scanned};
use std::rc::Rc;

use crate::addresses::BrokerAddresses;
use crate::config::Config;
use crate::facts::{ConnectionFacts, Properties};
use crate::fetch::{FetchOffsets, FetchSession};
use crate::flow::{Flow, StreamBuffer};
use crate::policy::Policy;
use crate::groups;
use crate::produce::{self, PendingProduce};
use crate::response_errors;
use crate::rewrite::TopicRewrite;
use crate::tracing::{SharedSpans, SpanDraft, TracingConfig};
use crate::versions::Translation;
use crate::topics::{self, TopicLabels};
use kafka_lens_codec::rename::Renamer;
use crate::identity::Identity;
use crate::labels::Client;
use crate::metrics::{Direction, LabelKind, Metric, MetricSink};

/// What the filter should do with the connection after a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward the chunk and carry on.
    Continue,
    /// Keep the buffer (Envoy `Pause`): a held frame is not whole yet. The next chunk starts with
    /// the same bytes again.
    Pause,
    /// Close the connection; the reason is also counted.
    Close(&'static str),
}

/// What the connection has shown itself to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// No complete request frame seen yet.
    Undetermined,
    /// The first request was Kafka.
    Kafka,
    /// Not Kafka: decoding stopped, bytes pass through.
    NotKafka(NotKafka),
}

/// Limits a connection runs with, taken from [`Config`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_frame_bytes: u32,
    pub max_in_flight: usize,
    pub decode_bodies: bool,
    pub max_decode_bytes: u32,
    pub per_partition_metrics: bool,
    /// Most bytes a held frame may keep in Envoy's buffer (beyond, it is held in the VM).
    pub hold_budget: u64,
    /// Largest frame held whole to inspect or rewrite.
    pub max_inspect: u64,
}

impl From<&Config> for Limits {
    fn from(c: &Config) -> Self {
        Limits {
            max_frame_bytes: c.max_frame_bytes,
            max_in_flight: c.max_in_flight,
            decode_bodies: c.decode_bodies,
            max_decode_bytes: c.max_decode_bytes,
            per_partition_metrics: c.per_partition_metrics,
            hold_budget: u64::from(c.policy.hold_budget_bytes),
            max_inspect: u64::from(c.policy.max_inspect_bytes),
        }
    }
}

/// What the connection remembers of a request until its response: when it started, who sent it,
/// and what its response settles.
#[derive(Debug, Clone)]
pub struct RequestContext {
    started_micros: Option<u64>,
    client: Client,
    detail: Detail,
    /// What the filter does to the response: set when it refused or split the request.
    answer: Option<enforce::Answer>,
    /// The topic mapping the request was sent under: its response is mapped back with it.
    renamer: Option<Rc<Renamer>>,
    /// The request's span while tracing, until its response is read.
    span: Option<Box<SpanDraft>>,
}

/// What a response settles, learned from its request.
#[derive(Debug, Clone)]
enum Detail {
    None,
    /// Produce records awaiting acknowledgement.
    Produce(PendingProduce),
    /// The fetch offsets a Fetch request asked for.
    Fetch(FetchOffsets),
    /// What a group request's response settles (JoinGroup, OffsetCommit).
    Group(groups::Pending),
}

/// The response being captured or scanned, with its request's context.
#[derive(Debug)]
struct Answering {
    key: ApiKey,
    version: i16,
    request: RequestContext,
}

impl Answering {
    fn new(key: ApiKey, version: i16, request: RequestContext) -> Self {
        Answering { key, version, request }
    }
}

/// Per-connection state. See the module documentation.
#[derive(Debug)]
pub struct Connection {
    limits: Limits,
    requests: FrameSplitter,
    responses: FrameSplitter,
    correlator: Correlator<RequestContext>,
    /// The last client id seen on this connection and its admitted labels (clients send the same
    /// id on every request, so the caps are consulted once per connection in practice). Cleared
    /// when the identity changes.
    client: Option<(Option<String>, Client)>,
    /// What the connection has proven about its client.
    identity: Identity,
    /// The SASL exchange in progress or last finished on this connection.
    sasl: Option<SaslExchange>,
    /// The OAUTHBEARER token claim naming the principal.
    oauth_claim: Rc<str>,
    /// The request frame being captured is a raw SASL token, not a Kafka request.
    capturing_raw_token: bool,
    /// The response frame being captured is a raw SASL token.
    answering_raw_token: bool,
    protocol: Protocol,
    /// The request whose frame is being scanned or captured: its correlation id (when a response
    /// is expected), API version and client label.
    current_request: Option<(Option<i32>, i16, Client)>,
    /// The response frame being captured or scanned.
    answering: Option<Answering>,
    fetch: FetchSession,
    topic_labels: TopicLabels,
    /// The client software this connection announced (its gauge holds 1 while it is open).
    software: Option<Metric>,
    /// The most requests this connection had awaiting a response at once.
    max_in_flight_seen: usize,
    /// The rules requests are checked against (empty: observe only).
    policy: Rc<Policy>,
    /// Broker addresses rewritten in responses (empty: none).
    addresses: Rc<BrokerAddresses>,
    /// Topic renames and tenant prefixes (empty: none).
    rewrite: Rc<TopicRewrite>,
    /// The topic mapping of the request being read.
    current_renamer: Option<Rc<Renamer>>,
    /// Old protocol versions translated for the broker (disabled: none).
    translation: Rc<Translation>,
    /// The request frame being captured is translated when whole.
    translating: bool,
    /// Request frames the policy may refuse, held and edited in Envoy's buffer.
    request_flow: Flow<enforce::PolicyFrame>,
    /// Response frames the filter replaces or rewrites.
    response_flow: Flow<enforce::AnswerFrame>,
    /// Set while walking a chunk when the connection must close after it.
    close_reason: Option<&'static str>,
    /// Why the filter closed the connection, for the access log.
    closed_by_filter: Option<&'static str>,
    /// What the connection did, for the access log.
    facts: ConnectionFacts,
    /// Spans of sampled requests (tracing on).
    tracing: Option<(Rc<TracingConfig>, SharedSpans)>,
    /// The span of the response being started, until it is known whether its body is read.
    span_at_response: Option<Box<SpanDraft>>,
    closed: bool,
}

/// A chunk source over the part of Envoy's buffer the splitter has not walked yet.
struct OffsetSource<'a, S: ?Sized> {
    inner: &'a mut S,
    base: usize,
}

impl<S: ChunkSource + ?Sized> ChunkSource for OffsetSource<'_, S> {
    fn read_into(&mut self, start: usize, len: usize, out: &mut Vec<u8>) -> bool {
        match start.checked_add(self.base) {
            Some(at) => self.inner.read_into(at, len, out),
            None => false,
        }
    }
}

/// APIs whose frames in the given direction carry record data: never copied for full decode.
fn carries_records(key: ApiKey, direction: Direction) -> bool {
    matches!(
        (key, direction),
        (ApiKey::Produce, Direction::Request)
            | (ApiKey::Fetch, Direction::Response)
            | (ApiKey::ShareFetch, Direction::Response)
            | (ApiKey::FetchSnapshot, Direction::Response)
    )
}

/// Whether a Produce request asks for no response (`acks=0`), read from its first body bytes:
/// transactional id (v3+), then acks. `None` if the prefix is too short to tell.
fn produce_acks(prefix: &Bytes, header_len: usize, version: i16, flexible: bool) -> Option<i16> {
    let body = prefix.get(header_len..)?;
    let after_txn = if version >= 3 {
        if flexible {
            let (len, used) = unsigned_varint(body)?;
            let str_len = len.saturating_sub(1) as usize;
            body.get(used.checked_add(str_len)?..)?
        } else {
            let len = i16::from_be_bytes([*body.first()?, *body.get(1)?]);
            body.get(2usize.checked_add(usize::try_from(len).unwrap_or(0))?..)?
        }
    } else {
        body
    };
    Some(i16::from_be_bytes([*after_txn.first()?, *after_txn.get(1)?]))
}

fn unsigned_varint(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value = 0u32;
    for (i, b) in bytes.iter().take(5).enumerate() {
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The consumer group a request is about, for its span.
fn group_of(request: &RequestKind) -> Option<String> {
    let group = match request {
        RequestKind::JoinGroup(r) => &r.group_id.0,
        RequestKind::SyncGroup(r) => &r.group_id.0,
        RequestKind::Heartbeat(r) => &r.group_id.0,
        RequestKind::LeaveGroup(r) => &r.group_id.0,
        RequestKind::OffsetCommit(r) => &r.group_id.0,
        RequestKind::TxnOffsetCommit(r) => &r.group_id.0,
        RequestKind::OffsetFetch(r) => match r.groups.first() {
            Some(g) => &g.group_id.0,
            None => &r.group_id.0,
        },
        RequestKind::ConsumerGroupHeartbeat(r) => &r.group_id.0,
        _ => return None,
    };
    (!group.is_empty()).then(|| group.as_str().to_owned())
}

/// Label values for API versions, without allocating per request.
const VERSION_LABELS: [&str; 32] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20",
    "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31",
];

fn version_label(version: i16) -> &'static str {
    usize::try_from(version).ok().and_then(|v| VERSION_LABELS.get(v)).copied().unwrap_or("other")
}

/// Counts what a structural scan of a Produce request or Fetch response found.
fn count_scan(result: &Result<Scanned, ScanError>, key: ApiKey, direction: Direction, sink: &mut dyn MetricSink) {
    let api = api::name(key);
    match result {
        Ok(scanned) => {
            let partitions = scanned.topics().iter().flat_map(|t| &t.partitions);
            let (batches, records) = partitions.fold((0u64, 0u64), |(b, r), p| (b + u64::from(p.records.batches), r + p.records.records));
            sink.add(Metric::RecordBatches { api, direction }, batches as i64);
            sink.add(Metric::Records { api, direction }, records as i64);
        }
        Err(e) => {
            sink.add(Metric::ScanErrors { api, direction }, 1);
            log::debug!("{api} {} scan failed: {e:?}", direction.as_str());
        }
    }
}

impl Connection {
    pub fn new(limits: Limits) -> Self {
        Connection {
            limits,
            requests: FrameSplitter::new(SplitterConfig::requests(limits.max_frame_bytes)),
            responses: FrameSplitter::new(SplitterConfig::responses(limits.max_frame_bytes)),
            correlator: Correlator::new(limits.max_in_flight),
            client: None,
            identity: Identity::default(),
            sasl: None,
            oauth_claim: Rc::from("sub"),
            capturing_raw_token: false,
            answering_raw_token: false,
            protocol: Protocol::Undetermined,
            current_request: None,
            answering: None,
            fetch: FetchSession::new(limits.per_partition_metrics),
            max_in_flight_seen: 0,
            topic_labels: TopicLabels::default(),
            software: None,
            policy: Rc::new(Policy::default()),
            addresses: Rc::new(BrokerAddresses::default()),
            rewrite: Rc::new(TopicRewrite::default()),
            current_renamer: None,
            translation: Rc::new(Translation::default()),
            translating: false,
            request_flow: Flow::default(),
            response_flow: Flow::default(),
            close_reason: None,
            closed_by_filter: None,
            facts: ConnectionFacts::default(),
            tracing: None,
            span_at_response: None,
            closed: false,
        }
    }

    /// Checks requests against `policy`.
    pub fn with_policy(mut self, policy: Rc<Policy>) -> Self {
        self.policy = policy;
        self
    }

    /// Rewrites the broker addresses responses advertise.
    pub fn with_broker_addresses(mut self, addresses: Rc<BrokerAddresses>) -> Self {
        self.addresses = addresses;
        self
    }

    /// Maps topic names (renames, tenant prefixes) between the client's view and the broker's.
    pub fn with_topic_rewrite(mut self, rewrite: Rc<TopicRewrite>) -> Self {
        self.rewrite = rewrite;
        self
    }

    /// Translates old protocol versions the broker refuses (see [`crate::versions`]).
    pub fn with_translation(mut self, translation: Rc<Translation>) -> Self {
        self.translation = translation;
        self
    }

    /// The broker version ranges this VM learned since the last call, to publish to the others.
    pub fn translation_changes(&self) -> Option<Vec<u8>> {
        self.translation.take_changes()
    }

    /// Drafts a span per request and queues the sampled ones (see [`crate::tracing`]).
    pub fn with_tracing(mut self, config: Rc<TracingConfig>, spans: SharedSpans) -> Self {
        self.tracing = Some((config, spans));
        self
    }

    /// [`Connection::with_tracing`] when tracing is on.
    pub fn with_tracing_from(self, tracing: Option<&(Rc<TracingConfig>, SharedSpans)>) -> Self {
        match tracing {
            Some((config, spans)) => self.with_tracing(Rc::clone(config), Rc::clone(spans)),
            None => self,
        }
    }

    /// The client's source address Envoy knows for the connection.
    pub fn set_source_address(&mut self, address: Option<String>) {
        self.identity.set_source_address(address);
    }

    /// Sets the OAUTHBEARER token claim that names the principal (default `sub`).
    pub fn with_oauthbearer_claim(mut self, claim: &str) -> Self {
        self.oauth_claim = Rc::from(claim);
        self
    }

    /// The verified mTLS peer principal Envoy knows for the connection.
    pub fn set_peer_principal(&mut self, principal: Option<String>) {
        self.identity.set_principal(principal);
        self.client = None;
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// What the connection did, as properties for Envoy's access log (see [`crate::facts`]).
    pub fn access_log_properties(&self) -> Properties {
        let client_id = self.client.as_ref().and_then(|(raw, _)| raw.as_deref());
        let identity = if self.protocol == Protocol::Kafka { self.identity.label_value(client_id) } else { String::new() };
        self.facts.properties(client_id, &identity, self.identity.client_software(), self.closed_by_filter)
    }

    /// Requests awaiting a response.
    pub fn in_flight(&self) -> usize {
        self.correlator.in_flight()
    }

    /// Processes a chunk of client-to-broker bytes.
    pub fn on_request_data<S: StreamBuffer + ?Sized>(&mut self, buffer: &mut S, len: usize, sink: &mut dyn MetricSink) -> Verdict {
        if self.closed {
            return Verdict::Close("closed");
        }
        let mut verdict = Verdict::Continue;
        let raw = self.sasl.as_ref().is_some_and(SaslExchange::expects_raw_client_token);
        self.requests.set_min_frame_size(if raw { 0 } else { SplitterConfig::requests(0).min_frame_size });
        let mut requests = std::mem::replace(&mut self.requests, FrameSplitter::new(SplitterConfig::requests(0)));
        // After a pause the buffer starts with bytes already walked.
        let seen = self.request_flow.begin(requests.stream_offset()).min(len);
        let new_len = len - seen;
        let mut offset = OffsetSource { inner: &mut *buffer, base: seen };
        let mut source = ReadAhead::new(&mut offset, new_len, read_ahead::DEFAULT_WINDOW);
        requests.push(&mut source, new_len, |event| match event {
            FrameEvent::Start(start) => self.request_start(&start, sink),
            FrameEvent::Complete { body, .. } => {
                self.request_complete(&body, sink);
                Disposition::Skip
            }
            FrameEvent::Scanned { result, .. } => {
                count_scan(&result, ApiKey::Produce, Direction::Request, sink);
                if let Ok(Scanned::Produce(mut summary)) = result {
                    if let Some(renamer) = &self.current_renamer {
                        enforce::produce_to_broker(&mut summary, renamer);
                    }
                    self.produce_scanned(&summary, sink);
                    if let Some(open) = self.request_flow.open_mut() {
                        open.payload.body = enforce::PolicyBody::Produce(summary);
                    }
                }
                Disposition::Skip
            }
            FrameEvent::Error(error) => {
                verdict = self.request_error(&error, sink);
                Disposition::Skip
            }
        });
        let stream_end = requests.stream_offset();
        self.requests = requests;
        if self.protocol_stopped() {
            self.responses.stop();
        }
        if verdict == Verdict::Continue {
            verdict = self.settle_requests(buffer, len, stream_end, sink);
        }
        if let Verdict::Close(reason) = verdict {
            self.closed = true;
            self.closed_by_filter = Some(reason);
        }
        verdict
    }

    /// Processes a chunk of broker-to-client bytes.
    pub fn on_response_data<S: StreamBuffer + ?Sized>(&mut self, buffer: &mut S, len: usize, sink: &mut dyn MetricSink) -> Verdict {
        if self.closed {
            return Verdict::Close("closed");
        }
        if self.protocol_stopped() {
            return Verdict::Continue;
        }
        let raw = self.sasl.as_ref().is_some_and(SaslExchange::expects_raw_server_token);
        self.responses.set_min_frame_size(if raw { 0 } else { SplitterConfig::responses(0).min_frame_size });
        let mut responses = std::mem::replace(&mut self.responses, FrameSplitter::new(SplitterConfig::responses(0)));
        let seen = self.response_flow.begin(responses.stream_offset()).min(len);
        let new_len = len - seen;
        let mut offset = OffsetSource { inner: &mut *buffer, base: seen };
        let mut source = ReadAhead::new(&mut offset, new_len, read_ahead::DEFAULT_WINDOW);
        responses.push(&mut source, new_len, |event| match event {
            FrameEvent::Start(start) => self.response_start(&start, sink),
            FrameEvent::Complete { body, .. } => {
                self.response_complete(&body, sink);
                Disposition::Skip
            }
            FrameEvent::Scanned { result, .. } => {
                count_scan(&result, ApiKey::Fetch, Direction::Response, sink);
                if let Ok(Scanned::Fetch(summary)) = &result {
                    self.fetch_scanned(summary, sink);
                }
                if let Some(span) = self.answering.take().and_then(|mut a| a.request.span.take()) {
                    self.finish_span(*span, None);
                }
                Disposition::Skip
            }
            FrameEvent::Error(error) => {
                self.response_error(&error, sink);
                Disposition::Skip
            }
        });
        let stream_end = responses.stream_offset();
        self.responses = responses;
        let verdict = self.settle_responses(buffer, len, stream_end, sink);
        if let Verdict::Close(reason) = verdict {
            self.closed = true;
            self.closed_by_filter = Some(reason);
        }
        verdict
    }

    /// Releases gauges this connection holds. Call once, when the connection ends.
    pub fn on_close(&mut self, sink: &mut dyn MetricSink) {
        if self.protocol == Protocol::Kafka && !self.closed {
            sink.record(Metric::ConnectionMaxInFlight, self.max_in_flight_seen as u64);
        }
        let in_flight = self.correlator.in_flight() as i64;
        if in_flight > 0 {
            sink.add(Metric::InFlightRequests, -in_flight);
            sink.add(Metric::UnansweredRequests, in_flight);
        }
        self.correlator = Correlator::new(1);
        self.fetch.on_close(sink);
        if let Some(software) = self.software.take() {
            sink.add(software, -1);
        }
        self.closed = true;
    }

    fn protocol_stopped(&self) -> bool {
        matches!(self.protocol, Protocol::NotKafka(_))
    }

    fn not_kafka(&mut self, kind: NotKafka, sink: &mut dyn MetricSink) {
        self.protocol = Protocol::NotKafka(kind);
        sink.add(Metric::NonKafkaConnections { kind: kind.as_str() }, 1);
        log::info!("connection is not Kafka ({}): passing it through undecoded", kind.as_str());
    }

    fn request_start(&mut self, start: &FrameStart, sink: &mut dyn MetricSink) -> Disposition {
        self.current_request = None;
        self.request_flow.frame_start();
        if self.protocol == Protocol::Undetermined {
            if let Some(kind) = detect::classify_first_request(start) {
                self.not_kafka(kind, sink);
                return Disposition::Stop;
            }
            self.protocol = Protocol::Kafka;
        }
        if let Some(disposition) = self.raw_client_token(start, sink) {
            return disposition;
        }
        self.translating = false;
        let mut info = match header::decode_request_header(&start.prefix, start.is_whole()) {
            Ok(info) => info,
            Err(e) => {
                sink.add(Metric::UndecodableFrames { direction: Direction::Request, reason: "header" }, 1);
                log::debug!("request {}: undecodable header: {e}", start.index);
                return Disposition::Skip;
            }
        };
        let id = info.id;
        let plan = self.translation_plan(&info);
        if plan.is_some() {
            Self::old_request_header(&mut info, &start.prefix);
        }
        let (api_name, key) = match (plan, info.support) {
            // A version the filter translates is as known as any other.
            (Some((key, _)), _) | (None, ApiSupport::Known(key)) => (api::name(key), Some(key)),
            (None, ApiSupport::UnknownVersion(key)) => {
                sink.add(Metric::UnknownVersionRequests { api: api::name(key) }, 1);
                (api::name(key), None)
            }
            (None, ApiSupport::UnknownApi) => ("unknown", None),
        };
        if key.is_none() && self.refuses_unknown(&info, sink) {
            return Disposition::Skip;
        }
        self.current_renamer = if self.rewrite.is_empty() { None } else { self.rewrite.renamer_for(&self.subject(info.client_id())) };
        if let Some(renamer) = &self.current_renamer {
            let allowed = key.is_some_and(|key| self.rewrite.allows(renamer, key, id.api_version));
            if !allowed {
                log::warn!(
                    "closing connection: {} v{} cannot be rewritten for this client's topic names (unknown to the codec, or addressing topics by id under a tenant prefix)",
                    api_name,
                    id.api_version
                );
                sink.add(Metric::ConnectionsClosedByFilter { reason: "rewrite_unsupported_version" }, 1);
                self.close_reason = Some("rewrite_unsupported_version");
                return Disposition::Skip;
            }
        }
        let client = self.client_label(info.client_id(), sink);
        self.facts.request(api_name);
        sink.add(Metric::Requests { api: api_name, version: version_label(id.api_version), client: client.clone() }, 1);
        sink.add(Metric::RequestBytes { api: api_name, client: client.clone() }, i64::from(start.body_len) + 4);

        let expects_response = match (key, info.header_len) {
            (Some(ApiKey::Produce), Some(header_len)) => {
                let flexible = id.api_version >= 3 && ApiKey::Produce.request_header_version(id.api_version) >= 2;
                produce_acks(&start.prefix, header_len, id.api_version, flexible) != Some(0)
            }
            _ => true,
        };
        // A translated request is read (decoded, counted) at the version it goes to the broker at.
        let read_version = plan.map_or(id.api_version, |(key, plan)| Self::planned_version(key, id.api_version, plan));
        self.current_request = Some((expects_response.then_some(id.correlation_id), read_version, client.clone()));
        if expects_response {
            let span = self.draft_span(api_name, id.api_key, id.api_version, info.client_id(), u64::from(start.body_len) + 4, sink);
            let overflow = self.correlator.expect(InFlight {
                correlation_id: id.correlation_id,
                api_key: id.api_key,
                api_version: id.api_version,
                extra: RequestContext {
                    started_micros: sink.now_micros(),
                    client: client.clone(),
                    detail: Detail::None,
                    answer: None,
                    renamer: self.current_renamer.clone(),
                    span,
                },
            });
            if overflow {
                sink.add(Metric::InFlightOverflow, 1);
            } else {
                sink.add(Metric::InFlightRequests, 1);
            }
            self.max_in_flight_seen = self.max_in_flight_seen.max(self.correlator.in_flight());
        }
        if let Some((key, plan)) = plan {
            return self.track_translated(start, key, &info, client, expects_response, plan, sink);
        }
        let tracked = match key {
            Some(key) if !self.policy.is_empty() || self.current_renamer.is_some() => {
                self.track_request(start, key, &info, client, expects_response, sink)
            }
            _ => false,
        };
        match (key, info.header_len) {
            (Some(key), Some(header_len)) if scan::supports(key, id.api_version, true) => {
                Disposition::Scan(Box::new(BodyScan::new(key, id.api_version, true, &start.prefix, header_len)))
            }
            (Some(key), _) if self.should_decode(key, Direction::Request, start.body_len) => Disposition::Capture,
            (Some(_), _) if tracked && u64::from(start.body_len) <= self.limits.max_inspect => Disposition::Capture,
            _ => Disposition::Skip,
        }
    }

    /// A raw SASL token (after a v0 `SaslHandshake`) where a request would be: captured for the
    /// exchange, never decoded as Kafka. `None` if the frame is a Kafka request.
    fn raw_client_token(&mut self, start: &FrameStart, sink: &mut dyn MetricSink) -> Option<Disposition> {
        let exchange = self.sasl.as_mut().filter(|e| e.expects_raw_client_token())?;
        if exchange.raw_end_is_guessed()
            && detect::classify_first_request(start).is_none()
            && header::decode_request_header(&start.prefix, start.is_whole()).is_ok()
        {
            // A mechanism whose end the filter cannot see: the client speaking Kafka again ends it.
            let outcome = exchange.end_raw();
            self.sasl_outcome(outcome, sink);
            return None;
        }
        if start.body_len <= sasl::MAX_MESSAGE_BYTES {
            self.capturing_raw_token = true;
            Some(Disposition::Capture)
        } else {
            exchange.on_unread_client_message();
            Some(Disposition::Skip)
        }
    }

    /// Applies the end of a SASL exchange: a success makes the SASL user the connection's
    /// identity (unless a verified mTLS principal outranks it).
    fn sasl_outcome(&mut self, outcome: Outcome, sink: &mut dyn MetricSink) {
        let mechanism = self.sasl.as_ref().map_or("other", |e| e.mechanism().as_str());
        match outcome {
            Outcome::Continue => {}
            Outcome::Authenticated { user } => {
                sink.add(Metric::SaslAuthentications { mechanism, result: "success" }, 1);
                if let Some(user) = user {
                    log::debug!("SASL {mechanism} authentication accepted by the broker for user {user:?}");
                    self.identity.set_sasl_user(user);
                    self.client = None;
                }
            }
            Outcome::Failed => {
                sink.add(Metric::SaslAuthentications { mechanism, result: "failure" }, 1);
                log::info!("SASL {mechanism} authentication refused by the broker: the connection keeps its previous identity");
            }
        }
    }

    /// The labels for this request's client, reusing the connection's last ones when unchanged.
    fn client_label(&mut self, raw: Option<&str>, sink: &mut dyn MetricSink) -> Client {
        if let Some((last, client)) = &self.client {
            if last.as_deref() == raw {
                return client.clone();
            }
        }
        let client_id = sink.label(LabelKind::ClientId, raw);
        let identity = sink.label(LabelKind::Identity, Some(&self.identity.label_value(raw)));
        let client = Client { client_id, identity };
        self.client = Some((raw.map(str::to_owned), client.clone()));
        client
    }

    fn should_decode(&self, key: ApiKey, direction: Direction, body_len: u32) -> bool {
        if matches!(key, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)
            || (key == ApiKey::ApiVersions && direction == Direction::Request && !self.policy.is_empty())
        {
            // Identity (and a policy: the client software in ApiVersions) needs these whatever
            // `decode_bodies` says; they are small.
            return body_len <= sasl::MAX_MESSAGE_BYTES;
        }
        self.limits.decode_bodies && body_len <= self.limits.max_decode_bytes && !carries_records(key, direction)
    }

    /// Attaches what a response will settle to the request being read.
    fn attach(&mut self, detail: Detail) {
        if let Some((Some(correlation_id), _, _)) = &self.current_request {
            if let Some(entry) = self.correlator.latest_mut(*correlation_id) {
                entry.extra.detail = detail;
            }
        }
    }

    fn produce_scanned(&mut self, summary: &ProduceSummary, sink: &mut dyn MetricSink) {
        let Some((_, _, client)) = self.current_request.clone() else { return };
        summary.topics.iter().for_each(|t| self.facts.topic(&t.name));
        // Only a request with a span draft (tracing on) pays for these.
        self.with_request_span(|span| {
            let partitions = summary.topics.iter().flat_map(|t| &t.partitions);
            span.records = Some(partitions.clone().map(|p| p.records.records).sum());
            span.partitions = partitions.map(|p| p.partition).collect();
            span.topics = summary.topics.iter().map(|t| t.name.clone()).filter(|n| !n.is_empty()).collect();
        });
        if let Some(pending) = produce::on_request(summary, &client, &mut self.topic_labels, sink) {
            self.attach(Detail::Produce(pending));
        }
    }

    /// Derives metrics from a decoded request.
    fn request_decoded(&mut self, request: &body::Request, sink: &mut dyn MetricSink) {
        let Some((_, version, client)) = self.current_request.clone() else { return };
        let api = api::name(request.api_key);
        match &request.body {
            RequestKind::Fetch(fetch) => {
                if let Some(asked) = self.fetch.on_request(fetch, version) {
                    self.attach(Detail::Fetch(asked));
                }
            }
            RequestKind::SaslHandshake(handshake) => {
                self.sasl = Some(SaslExchange::handshake(handshake.mechanism.as_str(), version));
            }
            RequestKind::SaslAuthenticate(authenticate) => {
                let claim = Rc::clone(&self.oauth_claim);
                self.sasl.get_or_insert_with(SaslExchange::unknown).on_client_message(&authenticate.auth_bytes, &claim);
            }
            RequestKind::ApiVersions(versions) if version >= 3 => {
                self.identity.set_client_software(versions.client_software_name.as_str(), versions.client_software_version.as_str());
                let name = sink.label(LabelKind::ClientSoftware, Some(versions.client_software_name.as_str()));
                let software_version = sink.label(LabelKind::ClientSoftware, Some(versions.client_software_version.as_str()));
                let metric = Metric::ClientSoftware { client, name, version: software_version };
                if self.software.as_ref() != Some(&metric) {
                    if let Some(old) = self.software.replace(metric.clone()) {
                        sink.add(old, -1);
                    }
                    sink.add(metric, 1);
                }
            }
            body => {
                if let Some(pending) = groups::on_request(body, api, &client, self.limits.per_partition_metrics, sink) {
                    self.attach(Detail::Group(pending));
                }
            }
        }
    }

    fn request_complete(&mut self, frame: &Bytes, sink: &mut dyn MetricSink) {
        if std::mem::take(&mut self.translating) {
            return self.translated_complete(frame, sink);
        }
        if std::mem::take(&mut self.capturing_raw_token) {
            if let Some(exchange) = &mut self.sasl {
                exchange.on_client_message(frame, &self.oauth_claim);
            }
            return;
        }
        match body::decode_request(frame) {
            Ok(mut request) => {
                sink.add(Metric::BodiesDecoded { direction: Direction::Request, api: api::name(request.api_key) }, 1);
                // Metrics and the policy see the broker's names.
                let renamed = self.current_renamer.as_ref().map(|r| kafka_lens_codec::rename::request_to_broker(&mut request.body, r));
                let topics: Vec<String> =
                    kafka_lens_codec::refusal::request_topics(&request.body).into_iter().map(|(t, _)| t).filter(|t| !t.is_empty()).collect();
                topics.iter().for_each(|t| self.facts.topic(t));
                if self.tracing.is_some() {
                    let group = group_of(&request.body);
                    self.with_request_span(|span| {
                        span.topics = topics;
                        span.group = group;
                    });
                }
                self.request_decoded(&request, sink);
                if let Some(open) = self.request_flow.open_mut() {
                    open.payload.renamed = renamed;
                    open.payload.header = Some(request.header);
                    open.payload.body = enforce::PolicyBody::Decoded(Box::new(request.body));
                }
            }
            Err(e) => {
                let api = header::request_id(frame).map(|id| api::name_of_raw(id.api_key)).unwrap_or("unknown");
                sink.add(Metric::BodyDecodeErrors { direction: Direction::Request, api }, 1);
                log::debug!("request body did not decode: {e}");
            }
        }
    }

    fn request_error(&mut self, error: &FrameError, sink: &mut dyn MetricSink) -> Verdict {
        if self.protocol == Protocol::Undetermined {
            if let Some(kind) = detect::classify_first_frame_error(error) {
                self.not_kafka(kind, sink);
                return Verdict::Continue;
            }
        }
        let (reason, close) = match error {
            FrameError::TooLarge { size, .. } => {
                log::warn!("closing connection: request frame of {size} bytes exceeds max_frame_bytes ({})", self.limits.max_frame_bytes);
                ("frame_too_large", true)
            }
            FrameError::TooSmall { size, .. } => {
                log::warn!("closing connection: request frame size {size} cannot hold a Kafka header");
                ("frame_too_small", true)
            }
            FrameError::SourceFailed => {
                log::warn!("could not read the request buffer: request decoding stops for this connection");
                ("buffer_read_failed", false)
            }
        };
        sink.add(Metric::UndecodableFrames { direction: Direction::Request, reason }, 1);
        if close {
            sink.add(Metric::ConnectionsClosedByFilter { reason }, 1);
            Verdict::Close(reason)
        } else {
            Verdict::Continue
        }
    }

    fn response_start(&mut self, start: &FrameStart, sink: &mut dyn MetricSink) -> Disposition {
        let disposition = self.response_start_inner(start, sink);
        if let Some(span) = self.span_at_response.take() {
            match &mut self.answering {
                // Its error comes with the body.
                Some(answering) => answering.request.span = Some(span),
                None => self.finish_span(*span, None),
            }
        }
        disposition
    }

    fn response_start_inner(&mut self, start: &FrameStart, sink: &mut dyn MetricSink) -> Disposition {
        self.response_flow.frame_start();
        if let Some(exchange) = self.sasl.as_mut().filter(|e| e.expects_raw_server_token()) {
            // A raw SASL token answering the client's: no header, no correlation id.
            self.answering = None;
            if start.body_len <= sasl::MAX_MESSAGE_BYTES {
                self.answering_raw_token = true;
                return Disposition::Capture;
            }
            exchange.on_unread_server_message();
            return Disposition::Skip;
        }
        let correlation_id = match header::response_correlation_id(&start.prefix) {
            Ok(id) => id,
            Err(_) => {
                sink.add(Metric::UndecodableFrames { direction: Direction::Response, reason: "header" }, 1);
                return Disposition::Skip;
            }
        };
        let mut request = match self.correlator.answer(correlation_id) {
            Match::Found { request, skipped } => {
                sink.add(Metric::InFlightRequests, -1 - skipped as i64);
                if skipped > 0 {
                    sink.add(Metric::UnansweredRequests, skipped as i64);
                }
                request
            }
            Match::Unknown => {
                sink.add(Metric::UnmatchedResponses, 1);
                log::debug!("response with correlation id {correlation_id} matches no request in flight");
                return Disposition::Skip;
            }
        };
        let support = api::support(request.api_key, request.api_version);
        let api = api::name_of_raw(request.api_key);
        let client = request.extra.client.clone();
        let answer_disposition = self.track_response(start, &request, sink);
        sink.add(Metric::Responses { api, version: version_label(request.api_version), client: client.clone() }, 1);
        sink.add(Metric::ResponseBytes { api, client: client.clone() }, i64::from(start.body_len) + 4);
        if let (Some(started), Some(now)) = (request.extra.started_micros, sink.now_micros()) {
            sink.record(Metric::Latency { api, client }, now.saturating_sub(started));
        }
        if let Some(mut span) = request.extra.span.take() {
            span.end_nanos = sink.now_micros().map_or(span.start_nanos, |now| now * 1000);
            span.response_bytes = u64::from(start.body_len) + 4;
            self.span_at_response = Some(span);
        }
        self.answering = None;
        if let Some(disposition) = answer_disposition {
            if let (Disposition::Capture, ApiSupport::Known(key)) = (&disposition, support) {
                self.answering = Some(Answering::new(key, request.api_version, request.extra));
            }
            return disposition;
        }
        match support {
            ApiSupport::Known(key) if scan::supports(key, request.api_version, false) => {
                match header::decode_response_header(&start.prefix, key, request.api_version) {
                    Ok((_, header_len)) => {
                        let scan = BodyScan::new(key, request.api_version, false, &start.prefix, header_len);
                        self.answering = Some(Answering::new(key, request.api_version, request.extra));
                        Disposition::Scan(Box::new(scan))
                    }
                    Err(_) => {
                        sink.add(Metric::UndecodableFrames { direction: Direction::Response, reason: "header" }, 1);
                        Disposition::Skip
                    }
                }
            }
            ApiSupport::Known(key) if self.should_decode(key, Direction::Response, start.body_len) => {
                self.answering = Some(Answering::new(key, request.api_version, request.extra));
                Disposition::Capture
            }
            _ => Disposition::Skip,
        }
    }

    /// A span draft for a request, when tracing is on.
    fn draft_span(&mut self, api: &'static str, api_key: i16, version: i16, client_id: Option<&str>, bytes: u64, sink: &mut dyn MetricSink) -> Option<Box<SpanDraft>> {
        let (config, spans) = self.tracing.as_ref()?;
        let sampled = spans.borrow_mut().chance(config.sample_per_million);
        if !sampled && !config.sample_errors && config.sample_slower_than_ms == 0 {
            return None;
        }
        Some(Box::new(SpanDraft {
            api,
            api_key,
            version,
            client_id: client_id.map(str::to_owned),
            peer: self.identity.source_address().map(str::to_owned),
            start_nanos: sink.now_micros().map_or(0, |now| now * 1000),
            request_bytes: bytes,
            sampled,
            ..SpanDraft::default()
        }))
    }

    /// Edits the span draft of the request being read.
    fn with_request_span(&mut self, edit: impl FnOnce(&mut SpanDraft)) {
        if let Some((Some(correlation_id), _, _)) = &self.current_request {
            if let Some(span) = self.correlator.latest_mut(*correlation_id).and_then(|entry| entry.extra.span.as_deref_mut()) {
                edit(span);
            }
        }
    }

    /// Queues the span if sampled.
    fn finish_span(&mut self, mut span: SpanDraft, error: Option<&'static str>) {
        if let Some((config, spans)) = &self.tracing {
            span.error = error.or(span.error);
            crate::tracing::finish(span, config, &mut spans.borrow_mut());
        }
    }

    fn fetch_scanned(&mut self, summary: &FetchSummary, sink: &mut dyn MetricSink) {
        let Some(mut answering) = self.answering.take() else { return };
        let client = &answering.request.client;
        let error = response_errors::count_fetch(summary, client, sink);
        if let Some(error) = error {
            self.facts.error(error);
        }
        if let Some(mut span) = answering.request.span.take() {
            span.error = error;
            span.records = Some(summary.topics.iter().flat_map(|t| &t.partitions).map(|p| p.records.records).sum());
            span.partitions = summary.topics.iter().flat_map(|t| &t.partitions).map(|p| p.partition).collect();
            if span.topics.is_empty() {
                span.topics = summary.topics.iter().map(|t| t.name.clone()).filter(|n| !n.is_empty()).collect();
            }
            self.finish_span(*span, error);
        }
        if let Detail::Fetch(asked) = &answering.request.detail {
            self.fetch.on_response(asked, summary, client, &mut self.topic_labels, sink);
        }
    }

    /// Derives metrics from a decoded response; returns the name of its last error, if any.
    fn response_decoded(answering: &Answering, response: &ResponseKind, sink: &mut dyn MetricSink) -> Option<&'static str> {
        let client = &answering.request.client;
        let error = response_errors::count_decoded(response, api::name(answering.key), client, sink);
        match (response, &answering.request.detail) {
            (ResponseKind::Produce(produced), Detail::Produce(pending)) => produce::on_response(pending, produced, client, sink),
            (ResponseKind::JoinGroup(joined), Detail::Group(groups::Pending::Join(group))) => groups::on_join_response(group, joined, sink),
            (ResponseKind::OffsetCommit(committed), Detail::Group(groups::Pending::Commit(pending))) => {
                groups::on_commit_response(pending, committed, sink)
            }
            (ResponseKind::Metadata(metadata), _) => topics::learn(sink, metadata),
            _ => {}
        }
        error
    }

    fn response_complete(&mut self, frame: &Bytes, sink: &mut dyn MetricSink) {
        if let Some(open) = self.response_flow.open_mut() {
            if open.fate == crate::flow::Fate::Undecided {
                open.payload.set_body(frame.clone());
            }
        }
        if std::mem::take(&mut self.answering_raw_token) {
            // In the raw form a refusal closes the connection: a token means the exchange goes on.
            let outcome = self.sasl.as_mut().map_or(Outcome::Continue, |e| e.on_server_message(0, frame));
            self.sasl_outcome(outcome, sink);
            return;
        }
        let Some(mut answering) = self.answering.take() else { return };
        let span = answering.request.span.take();
        let (key, version) = (answering.key, answering.version);
        let direction = Direction::Response;
        match body::decode_response(frame, key, version) {
            Ok(response) => {
                sink.add(Metric::BodiesDecoded { direction, api: api::name(key) }, 1);
                let error = Self::response_decoded(&answering, &response.body, sink);
                if let Some(error) = error {
                    self.facts.error(error);
                }
                if let Some(span) = span {
                    self.finish_span(*span, error);
                }
                self.sasl_response(&response.body, sink);
            }
            Err(e) => {
                sink.add(Metric::BodyDecodeErrors { direction, api: api::name(key) }, 1);
                log::debug!("response body did not decode: {e}");
                if let Some(span) = span {
                    self.finish_span(*span, None);
                }
            }
        }
    }

    /// Feeds SASL responses to the exchange they belong to.
    fn sasl_response(&mut self, response: &ResponseKind, sink: &mut dyn MetricSink) {
        let Some(exchange) = &mut self.sasl else { return };
        let outcome = match response {
            ResponseKind::SaslHandshake(handshake) => {
                exchange.on_handshake_response(handshake.error_code);
                Outcome::Continue
            }
            ResponseKind::SaslAuthenticate(authenticate) => exchange.on_server_message(authenticate.error_code, &authenticate.auth_bytes),
            _ => return,
        };
        self.sasl_outcome(outcome, sink);
    }

    fn response_error(&mut self, error: &FrameError, sink: &mut dyn MetricSink) {
        let reason = match error {
            FrameError::TooLarge { .. } => "frame_too_large",
            FrameError::TooSmall { .. } => "frame_too_small",
            FrameError::SourceFailed => "buffer_read_failed",
        };
        sink.add(Metric::UndecodableFrames { direction: Direction::Response, reason }, 1);
        log::warn!("response framing lost ({reason}): response decoding stops for this connection, bytes pass through");
    }
}
