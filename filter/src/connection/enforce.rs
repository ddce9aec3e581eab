//! Policy enforcement on a connection: which request frames to hold, the decision once a frame
//! is whole, and the edits that carry it out (see [`crate::refuse`] for how a refusal travels and
//! [`crate::flow`] for how frames are held and edited in Envoy's buffer).
//!
//! A request is held only when a rule may refuse it and the header alone cannot clear it; a
//! request larger than the hold budget is decided at its start. A refusal that concerns some of a
//! request's topics only (topic-matched rules) strips those topics and merges their errors into
//! the broker's response; a refusal of the request as such (a denied API, a client-id rule, acks,
//! a request too large to hold) answers the whole request.

use bytes::Bytes;
use kafka_lens_codec::api;
use kafka_lens_codec::body;
use kafka_lens_codec::correlation::InFlight;
use kafka_lens_codec::frame::{Disposition, FrameStart};
use kafka_lens_codec::header::{self, RequestHeaderInfo};
use kafka_lens_codec::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_lens_codec::refusal;
use kafka_lens_codec::scan::ProduceSummary;

use super::{Connection, RequestContext, Verdict};
use crate::addresses::NodeEndpoints;
use crate::flow::{Fate, Flow, StreamBuffer, Tracked};
use crate::labels::{sanitize, Client, Label};
use crate::metrics::{Direction, LabelKind, Metric, MetricSink};
use crate::policy::{self, codes, Applicable, Body, Mode, RequestInfo, Subject, Violation};
use crate::refuse;
use crate::response_errors;
use crate::topics::{self, TopicRef};
use kafka_lens_codec::addresses;
use kafka_lens_codec::kafka_protocol::messages::RequestHeader;
use kafka_lens_codec::name_edit::{self, EditError, PrefixEdit};
use kafka_lens_codec::rename::{self, Mapped, Renamer, Rewritten};
use kafka_lens_codec::scan::ProduceSummary as Summary;
use kafka_lens_codec::legacy::translate;
use kafka_lens_codec::topic_names::NameKind;
use crate::versions::Translation;
use std::rc::Rc;

/// What the policy knows of a held request's body.
#[derive(Debug, Default)]
pub enum PolicyBody {
    #[default]
    None,
    Produce(ProduceSummary),
    Decoded(Box<RequestKind>),
}

/// A request frame the policy may refuse.
#[derive(Debug)]
pub struct PolicyFrame {
    /// `None` for a request without a response (`acks=0` Produce).
    pub(super) correlation_id: Option<i32>,
    pub(super) key: ApiKey,
    /// The version the request goes to the broker at (a translated request's target version).
    pub(super) version: i16,
    pub(super) client: Client,
    pub(super) client_id: Option<String>,
    pub(super) rules: Applicable,
    pub body: PolicyBody,
    /// Violations decided at the frame's start (a frame too large to hold).
    pub(super) early: Vec<Violation>,
    /// The topic mapping the request goes to the broker under, if any.
    pub(super) renamer: Option<Rc<Renamer>>,
    /// Length of the request header in the body.
    pub(super) header_len: Option<usize>,
    /// The decoded request's header (for re-encoding).
    pub header: Option<RequestHeader>,
    /// What mapping the decoded body to the broker's names did.
    pub renamed: Option<Rewritten>,
    /// A request at an old version the filter translates (or answers `UNSUPPORTED_VERSION`).
    pub translation: Option<super::translate::Translating>,
}

/// What the filter does to a response.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The request was refused whole: these bytes replace the broker's answer to the placeholder.
    Replace(Bytes),
    /// The request went on without some topics: their errors join the broker's response.
    Merge(Box<ResponseKind>),
    /// The request was translated from `client_version`: the response goes back to it.
    Downgrade { client_version: i16 },
}

/// A response frame the filter replaces or rewrites.
#[derive(Debug)]
pub enum AnswerFrame {
    /// Replaced whole (the fate is set when tracking starts).
    Replace,
    /// The broker's response to a split request; `refused` joins it (after the broker's part is
    /// mapped to the client's names with `renamer`).
    Merge { key: ApiKey, version: i16, refused: Box<ResponseKind>, body: Option<Bytes>, renamer: Option<Rc<Renamer>> },
    /// An ApiVersions response, narrowed to what the codec decodes.
    Versions { version: i16, body: Option<Bytes> },
    /// A response whose broker addresses (`addresses`) or names (`renamer`) are rewritten.
    Rewrite { key: ApiKey, version: i16, addresses: bool, renamer: Option<Rc<Renamer>> },
    /// A Fetch response (v4–12) whose topic names are renamed in place, records untouched.
    FetchNames { version: i16, header_len: usize, renamer: Rc<Renamer> },
    /// The answer to a translated request, at `version`, downgraded to `client_version` (and its
    /// names mapped back with `renamer`).
    Downgrade { key: ApiKey, version: i16, client_version: i16, renamer: Option<Rc<Renamer>> },
}

impl AnswerFrame {
    pub fn set_body(&mut self, frame: Bytes) {
        match self {
            AnswerFrame::Merge { body, .. } | AnswerFrame::Versions { body, .. } => *body = Some(frame),
            AnswerFrame::Replace | AnswerFrame::Rewrite { .. } | AnswerFrame::FetchNames { .. } | AnswerFrame::Downgrade { .. } => {}
        }
    }
}

/// A violation's `topic` label value: the first topic at fault; `None` for the request as a whole.
fn topic_of(violation: &Violation) -> Option<&str> {
    violation.topics.as_ref().and_then(|t| t.first()).map(String::as_str)
}

impl Connection {
    pub(super) fn subject<'a>(&'a self, client_id: Option<&'a str>) -> Subject<'a> {
        Subject {
            client_id,
            principal: self.identity.principal(),
            sasl_user: self.identity.sasl_user(),
            source_address: self.identity.source_address(),
            client_software: self.identity.client_software(),
        }
    }

    /// A request at an API or version the codec does not know cannot be checked: under a policy
    /// whose rules would apply, the connection is closed (as a broker closes on a request it
    /// cannot parse). Clients do not send such versions: the filter narrows ApiVersions.
    pub(super) fn refuses_unknown(&mut self, info: &RequestHeaderInfo, sink: &mut dyn MetricSink) -> bool {
        if self.policy.is_empty() {
            return false;
        }
        let subject = self.subject(info.client_id());
        let applies = match info.support {
            api::ApiSupport::UnknownVersion(key) => !self.policy.applicable(&subject, key).is_empty(),
            _ => self.policy.applies_to_unknown_apis(&subject),
        };
        if applies {
            let api = api::name_of_raw(info.id.api_key);
            log::warn!(
                "closing connection: {api} v{} (api key {}) is not a version kafka-lens can check, and the policy applies to it",
                info.id.api_version,
                info.id.api_key
            );
            sink.add(Metric::ConnectionsClosedByFilter { reason: "unknown_version_under_policy" }, 1);
            self.close_reason = Some("unknown_version_under_policy");
        }
        applies
    }

    /// Decides whether the request that starts here must be held (a policy rule may refuse it,
    /// or its names are rewritten); returns whether it is tracked (its body is then captured or
    /// scanned).
    pub(super) fn track_request(
        &mut self,
        start: &FrameStart,
        key: ApiKey,
        info: &RequestHeaderInfo,
        client: Client,
        expects_response: bool,
        sink: &mut dyn MetricSink,
    ) -> bool {
        let policy = std::rc::Rc::clone(&self.policy);
        let client_id = info.client_id();
        let renamer = self.current_renamer.clone().filter(|_| key == ApiKey::Produce || rename::request_needs_rewrite(key));
        let mut rules = if policy.is_empty() { Applicable::default() } else { policy.applicable(&self.subject(client_id), key) };
        if rules.is_empty() && renamer.is_none() {
            return false;
        }
        let frame_bytes = u64::from(start.body_len) + 4;
        let too_large = frame_bytes > self.limits.max_inspect;
        let mut early = Vec::new();
        if !rules.is_empty() {
            let request = RequestInfo { key, version: info.id.api_version, frame_bytes, subject: self.subject(client_id) };
            early = policy.check(&rules, &request, Body::Unread, &mut |_| None);
            let needs_body = policy.needs_body(&rules, key);
            if too_large && needs_body {
                if let Some(index) = policy.first_enforced(&rules) {
                    early.push(Violation {
                        rule: index,
                        check: "max_inspect_bytes",
                        code: if key == ApiKey::Produce { codes::MESSAGE_TOO_LARGE } else { codes::POLICY_VIOLATION },
                        detail: format!(
                            "a request of {frame_bytes} bytes is larger than max_inspect_bytes ({}) and cannot be inspected",
                            self.limits.max_inspect
                        ),
                        topics: None,
                    });
                }
            }
            let enforced_now = early.iter().any(|v| policy.is_enforced(v));
            if (!needs_body || too_large) && !enforced_now {
                self.record(&early, key, &client, "audited", sink);
                if renamer.is_none() {
                    return false;
                }
                // The policy is done with it; the rename goes on.
                rules = Applicable::default();
                early.clear();
            }
        }
        let mut fate = Fate::Undecided;
        if let Some(renamer) = renamer.as_ref().filter(|_| rules.is_empty()) {
            if key == ApiKey::Produce {
                match produce_edit_at_start(start, info, renamer) {
                    // Nothing to rename: the request passes untracked.
                    StartEdit::None => return false,
                    StartEdit::Edit(edit) => {
                        sink.add(Metric::TopicRewrites { api: "Produce", direction: Direction::Request }, 1);
                        let edit = self.rewrite.produce_edit(edit, info.id.api_version, info.header_len.unwrap_or_default());
                        fate = Fate::ReplacePrefix { len: edit.consumed, data: Bytes::from(edit.data) };
                    }
                    StartEdit::HoldWhole => {}
                    StartEdit::Malformed(e) => {
                        log::warn!(
                            "a Produce request's names could not be read ({e:?}): it passes unrenamed and the broker will refuse it"
                        );
                        sink.add(Metric::TopicRewriteFailures { api: api::name(key), reason: "malformed" }, 1);
                        return false;
                    }
                }
            } else if too_large {
                log::warn!(
                    "closing connection: a {} request of {frame_bytes} bytes is larger than max_inspect_bytes ({}) and its names cannot be rewritten",
                    api::name(key),
                    self.limits.max_inspect
                );
                sink.add(Metric::ConnectionsClosedByFilter { reason: "rewrite_too_large" }, 1);
                self.close_reason = Some("rewrite_too_large");
                return false;
            }
        }
        let payload = PolicyFrame {
            correlation_id: expects_response.then_some(info.id.correlation_id),
            key,
            version: info.id.api_version,
            client,
            client_id: client_id.map(str::to_owned),
            rules,
            body: PolicyBody::None,
            early: if too_large { early } else { Vec::new() },
            renamer,
            header_len: info.header_len,
            header: None,
            renamed: None,
            translation: None,
        };
        let mut tracked = Tracked::new(start.offset, start.body_len, payload);
        tracked.drain = too_large && !tracked.payload.rules.is_empty();
        tracked.fate = fate;
        self.request_flow.track(tracked);
        true
    }

    /// Counts and logs violations: enforced ones with `action` (`refused`, `dropped`; none when
    /// `action` is `audited`, i.e. nothing was refused), audit ones as `audited`.
    fn record(&mut self, violations: &[Violation], key: ApiKey, client: &Client, action: &'static str, sink: &mut dyn MetricSink) {
        let api = api::name(key);
        for violation in violations {
            let Some(rule) = self.policy.rule(violation.rule) else {
                continue;
            };
            let action = match rule.mode {
                Mode::Audit => "audited",
                Mode::Enforce if action == "audited" => continue,
                Mode::Enforce => action,
            };
            let topic = match topic_of(violation) {
                Some(t) => sink.label(LabelKind::Topic, Some(t)),
                None => Label::Static("-"),
            };
            let rule_label = Label::Owned(sanitize(&rule.name, 64).into());
            sink.add(Metric::PolicyDecisions { rule: rule_label, action, api, client: client.clone(), topic }, 1);
            match policy::log::admit(sink.now_micros(), self.policy.config.log_lines_per_second) {
                Some(suppressed) => log::warn!(
                    "policy {action}: {api} from {client}: {}{}",
                    policy::message(rule, violation),
                    if suppressed > 0 { format!(" ({suppressed} earlier lines suppressed)") } else { String::new() }
                ),
                None => sink.add(Metric::PolicyLogSuppressed, 1),
            }
        }
    }

    /// Decides, applies and holds the tracked request frames of this chunk.
    pub(super) fn settle_requests<S: StreamBuffer + ?Sized>(
        &mut self,
        buffer: &mut S,
        len: usize,
        stream_end: u64,
        sink: &mut dyn MetricSink,
    ) -> Verdict {
        if let Some(reason) = self.close_reason.take() {
            return Verdict::Close(reason);
        }
        if self.policy.is_empty() && self.rewrite.is_empty() && !self.translation.is_enabled() {
            return Verdict::Continue;
        }
        let mut finished = self.request_flow.take_finished(stream_end);
        for frame in &mut finished {
            if frame.fate == Fate::Undecided {
                frame.fate = self.decide_request(frame, buffer, sink);
            }
        }
        if let Some(reason) = self.close_reason.take() {
            return Verdict::Close(reason);
        }
        let pending = self.requests.pending_start();
        let settled = self.request_flow.settle(buffer, len, self.limits.hold_budget, finished, pending);
        settled_verdict(settled, Direction::Request, sink)
    }

    /// Whether the filter checks or rewrites what it forwards (policy, addresses, names): then
    /// clients are offered only versions the codec decodes.
    fn checks_or_rewrites(&self) -> bool {
        !self.policy.is_empty() || !self.addresses.is_empty() || !self.rewrite.is_empty()
    }

    /// Whether the filter edits responses: it answers for a policy, rewrites addresses or names, or
    /// translates old versions.
    fn edits_responses(&self) -> bool {
        self.checks_or_rewrites() || self.translation.is_enabled()
    }

    /// Highest versions to advertise per API: topic names for topic rules, no `NodeEndpoints`
    /// when addresses are rewritten by capping.
    fn version_caps(&self) -> Vec<(ApiKey, i16)> {
        let mut caps = self.policy.topic_name_version_caps();
        caps.extend(self.rewrite.version_caps());
        if !self.addresses.is_empty() && self.addresses.node_endpoints == NodeEndpoints::CapVersions {
            caps.extend(addresses::NODE_ENDPOINT_FREE_VERSIONS);
        }
        caps
    }

    /// Replaces or rewrites the tracked response frames of this chunk.
    pub(super) fn settle_responses<S: StreamBuffer + ?Sized>(
        &mut self,
        buffer: &mut S,
        len: usize,
        stream_end: u64,
        sink: &mut dyn MetricSink,
    ) -> Verdict {
        if let Some(reason) = self.close_reason.take() {
            return Verdict::Close(reason);
        }
        if !self.edits_responses() {
            return Verdict::Continue;
        }
        let mut finished = self.response_flow.take_finished(stream_end);
        let caps =
            if finished.iter().any(|f| matches!(f.payload, AnswerFrame::Versions { .. })) { self.version_caps() } else { Vec::new() };
        for frame in &mut finished {
            if frame.fate == Fate::Undecided {
                frame.fate = match &frame.payload {
                    AnswerFrame::Rewrite { key, version, addresses, renamer } => {
                        self.rewrite_response(frame, buffer, *key, *version, *addresses, renamer.as_deref(), sink)
                    }
                    AnswerFrame::FetchNames { version, header_len, renamer } => {
                        self.rename_fetch(frame, buffer, *version, *header_len, renamer, sink)
                    }
                    AnswerFrame::Downgrade { key, version, client_version, renamer } => {
                        self.downgrade_response(frame, buffer, *key, *version, *client_version, renamer.as_deref(), sink)
                    }
                    AnswerFrame::Versions { version, body: Some(body) } => {
                        versions_response(body, *version, self.checks_or_rewrites(), &caps, &self.translation, sink)
                    }
                    _ => decide_response(&frame.payload, sink),
                };
            }
        }
        let pending = self.responses.pending_start();
        let settled = self.response_flow.settle(buffer, len, self.limits.hold_budget, finished, pending);
        settled_verdict(settled, Direction::Response, sink)
    }

    /// The fate of a whole (or drained) request frame.
    fn decide_request<S: StreamBuffer + ?Sized>(
        &mut self,
        frame: &Tracked<PolicyFrame>,
        buffer: &mut S,
        sink: &mut dyn MetricSink,
    ) -> Fate {
        let policy = std::rc::Rc::clone(&self.policy);
        let p = &frame.payload;
        let violations = if frame.drain {
            p.early.clone()
        } else {
            let body = match &p.body {
                PolicyBody::Produce(summary) => Body::Produce(summary),
                PolicyBody::Decoded(request) => Body::Decoded(request),
                PolicyBody::None => Body::Unread,
            };
            let request =
                RequestInfo { key: p.key, version: p.version, frame_bytes: frame.len(), subject: self.subject(p.client_id.as_deref()) };
            let mut found = policy.check(&p.rules, &request, body, &mut |id| topics::name(sink, &TopicRef::Id(*id)));
            if matches!(body, Body::Unread) && policy.needs_body(&p.rules, p.key) {
                if let Some(index) = policy.first_enforced(&p.rules) {
                    found.push(Violation {
                        rule: index,
                        check: "undecodable",
                        code: codes::POLICY_VIOLATION,
                        detail: "the request body did not decode, so the policy cannot clear it".into(),
                        topics: None,
                    });
                }
            }
            found
        };
        let Some(first) = violations.iter().find(|v| policy.is_enforced(v)) else {
            self.record(&violations, p.key, &p.client, "audited", sink);
            if let Some(translation) = &p.translation {
                return self.translated_fate(p, translation, sink);
            }
            return self.rename_request(frame, buffer, sink);
        };
        let message = policy.rule(first.rule).map(|rule| policy::message(rule, first)).unwrap_or_default();
        let code = first.code;
        if p.correlation_id.is_none() {
            // acks=0: the client expects no answer; the request is dropped and counted.
            self.record(&violations, p.key, &p.client, "dropped", sink);
            return Fate::Replace(Bytes::new());
        }
        self.record(&violations, p.key, &p.client, "refused", sink);
        let enforced = violations.iter().filter(|v| policy.is_enforced(v));
        // A Fetch is refused whole: stripping topics from an incremental fetch session would leave
        // the broker's session and the client's disagreeing about which partitions it holds.
        let whole_request =
            frame.drain || p.key == ApiKey::Fetch || p.translation.is_some() || enforced.clone().any(|v| v.topics.is_none());
        if !whole_request {
            let refused_topics: Vec<String> = enforced.flat_map(|v| v.topics.clone().unwrap_or_default()).collect();
            let split = self.broker_view(frame, buffer).and_then(|request| {
                // The same names the policy's violations carry (unlearned ids as `id-<hex>`).
                let mut refuse_topic = |name: &str, id: &[u8; 16]| {
                    let label = policy::topic_name(name, id, &mut |id| topics::name(sink, &TopicRef::Id(*id)))
                        .unwrap_or_else(|| topics::id_label(id));
                    refused_topics.contains(&label)
                };
                let split = refusal::split_topics(&request.body, &mut refuse_topic)?;
                self.split(p, &request, split, code, Some(&message), sink)
            });
            match split {
                Some(fate) => return fate,
                None => log::debug!("request not split by topic: refused whole"),
            }
        }
        self.refuse_whole(p, code, Some(&message), sink)
    }

    /// Answers a request whole with `code`: the broker gets a placeholder, the client the refusal.
    pub(super) fn refuse_whole(&mut self, p: &PolicyFrame, code: i16, message: Option<&str>, sink: &mut dyn MetricSink) -> Fate {
        let Some(correlation_id) = p.correlation_id else { return Fate::Replace(Bytes::new()) };
        let request = match &p.body {
            PolicyBody::Produce(summary) => refuse::produce_request_of(summary),
            PolicyBody::Decoded(request) => (**request).clone(),
            PolicyBody::None => return self.unanswerable(p.key, sink),
        };
        let Some(mut response) = refusal::error_response(&request, p.version, code, message) else { return self.unanswerable(p.key, sink) };
        if let Some(renamer) = &p.renamer {
            rename::response_to_client(&mut response, renamer);
        }
        if let Some(error) = response_errors::count_decoded(&response, api::name(p.key), &p.client, sink) {
            self.facts.error(error);
        }
        let frame = match &p.translation {
            Some(translation) if translate::is_old(p.key, translation.client_version) => {
                super::translate::old_response_frame(correlation_id, translation.client_version, &response)
            }
            _ => refuse::response_frame(correlation_id, p.key, p.version, &response).map_err(|e| e.to_string()),
        };
        match frame {
            Ok(bytes) => {
                self.set_answer(correlation_id, Answer::Replace(bytes));
                Fate::Replace(refuse::placeholder(correlation_id))
            }
            Err(e) => {
                log::warn!("cannot encode the refusal of {} v{}: {e}", api::name(p.key), p.version);
                self.unanswerable(p.key, sink)
            }
        }
    }

    /// The whole request in the broker's names, read back from the buffer (for re-encoding it
    /// without some topics).
    fn broker_view<S: StreamBuffer + ?Sized>(&self, frame: &Tracked<PolicyFrame>, buffer: &mut S) -> Option<body::Request> {
        let bytes = Bytes::from(self.request_flow.read_frame(frame, buffer)?);
        let mut request = body::decode_request(&bytes.slice(4.min(bytes.len())..)).ok()?;
        if let Some(renamer) = &frame.payload.renamer {
            rename::request_to_broker(&mut request.body, renamer);
        }
        Some(request)
    }

    /// Forwards the kept part of a split request and arranges for the refused part's errors
    /// (`code`) to join the broker's response. `None` when nothing would be left to forward.
    fn split(
        &mut self,
        p: &PolicyFrame,
        request: &body::Request,
        (kept, refused): (RequestKind, RequestKind),
        code: i16,
        message: Option<&str>,
        sink: &mut dyn MetricSink,
    ) -> Option<Fate> {
        let correlation_id = p.correlation_id?;
        if refusal::request_topics(&kept).is_empty() {
            return None;
        }
        let mut refused_response = refusal::error_response(&refused, p.version, code, message)?;
        let kept_frame = body::encode_request(&request.header, &kept).ok()?;
        if let Some(error) = response_errors::count_decoded(&refused_response, api::name(p.key), &p.client, sink) {
            self.facts.error(error);
        }
        if let Some(renamer) = &p.renamer {
            rename::response_to_client(&mut refused_response, renamer);
        }
        self.set_answer(correlation_id, Answer::Merge(Box::new(refused_response)));
        sink.add(Metric::PolicySplitRequests { api: api::name(p.key) }, 1);
        Some(Fate::Replace(kept_frame))
    }

    /// The fate of a request the policy lets through: renamed for the broker if it has a mapping.
    /// Names the client may not use (hidden) are answered as topics that do not exist.
    fn rename_request<S: StreamBuffer + ?Sized>(
        &mut self,
        frame: &Tracked<PolicyFrame>,
        buffer: &mut S,
        sink: &mut dyn MetricSink,
    ) -> Fate {
        let p = &frame.payload;
        let Some(renamer) = p.renamer.clone() else { return Fate::Forward };
        let api_name = api::name(p.key);
        let (hidden, fate) = if p.key == ApiKey::Produce {
            let mut hidden = false;
            let header_len = p.header_len.unwrap_or_default();
            let result = held_prefix_edit(&self.request_flow, frame, buffer, |bytes, body_len| {
                name_edit::produce_request(bytes, body_len, header_len, p.version, &mut to_broker_fn(&renamer, &mut hidden))
            });
            let Some(result) = result else { return self.rename_failed(p.key, "unreadable", sink) };
            match result {
                Ok(edit) => {
                    let edit = edit.map(|e| self.rewrite.produce_edit(e, p.version, header_len));
                    (hidden, edit.map_or(Fate::Forward, |e| Fate::ReplacePrefix { len: e.consumed, data: Bytes::from(e.data) }))
                }
                Err(EditError::Unsupported) => (false, Fate::Forward),
                Err(e) => {
                    log::warn!("a Produce request's names could not be read ({e:?}): it passes unrenamed and the broker will refuse it");
                    sink.add(Metric::TopicRewriteFailures { api: api_name, reason: "malformed" }, 1);
                    return Fate::Forward;
                }
            }
        } else {
            let (PolicyBody::Decoded(request), Some(header), Some(renamed)) = (&p.body, &p.header, &p.renamed) else {
                // A request that did not decode cannot be renamed, and passing it with the
                // client's names could reach another tenant's topics.
                return self.rename_failed(p.key, "undecodable", sink);
            };
            let fate = if renamed.changed() {
                match body::encode_request(header, request) {
                    Ok(bytes) => Fate::Replace(bytes),
                    Err(_) => return self.rename_failed(p.key, "encode", sink),
                }
            } else {
                Fate::Forward
            };
            (!renamed.hidden_in_request.is_empty(), fate)
        };
        if !hidden {
            if fate != Fate::Forward {
                sink.add(Metric::TopicRewrites { api: api_name, direction: Direction::Request }, 1);
            }
            return fate;
        }
        // Hidden names: those topics are answered as unknown, the rest goes on renamed.
        sink.add(Metric::TopicRewriteHidden { api: api_name, direction: Direction::Request }, 1);
        let splittable = p.key != ApiKey::Fetch;
        let split = self.broker_view(frame, buffer).filter(|_| splittable).and_then(|request| {
            let mut is_hidden = |name: &str, _: &[u8; 16]| renamer.to_client(NameKind::Topic, name) == Mapped::Hidden;
            let split = refusal::split_topics(&request.body, &mut is_hidden)?;
            self.split(&frame.payload, &request, split, codes::UNKNOWN_TOPIC_OR_PARTITION, None, sink)
        });
        match split {
            Some(fate) => fate,
            None => self.refuse_whole(&frame.payload, codes::UNKNOWN_TOPIC_OR_PARTITION, None, sink),
        }
    }

    /// A request whose names must be rewritten but cannot be: the connection closes.
    fn rename_failed(&mut self, key: ApiKey, reason: &'static str, sink: &mut dyn MetricSink) -> Fate {
        log::warn!("closing connection: a {} request's topic names cannot be rewritten ({reason})", api::name(key));
        sink.add(Metric::TopicRewriteFailures { api: api::name(key), reason }, 1);
        sink.add(Metric::ConnectionsClosedByFilter { reason: "rewrite_failed" }, 1);
        self.close_reason = Some("rewrite_failed");
        Fate::Forward
    }

    pub(super) fn set_answer(&mut self, correlation_id: i32, answer: Answer) {
        if let Some(entry) = self.correlator.latest_mut(correlation_id) {
            entry.extra.answer = Some(answer);
        }
    }

    /// A request the filter must refuse but cannot answer in its API: the connection closes.
    fn unanswerable(&mut self, key: ApiKey, sink: &mut dyn MetricSink) -> Fate {
        log::warn!("closing connection: the policy refuses a {} request the filter cannot answer", api::name(key));
        sink.add(Metric::ConnectionsClosedByFilter { reason: "policy_unanswerable" }, 1);
        self.close_reason = Some("policy_unanswerable");
        Fate::Forward
    }

    /// A whole response with its broker addresses (if `addresses`) and names (if `renamer`)
    /// rewritten; the frame is read back from the buffer (it was scanned or decoded as it passed,
    /// for the metrics).
    #[allow(clippy::too_many_arguments)]
    fn rewrite_response<S: StreamBuffer + ?Sized>(
        &mut self,
        frame: &Tracked<AnswerFrame>,
        buffer: &mut S,
        key: ApiKey,
        version: i16,
        addresses: bool,
        renamer: Option<&Renamer>,
        sink: &mut dyn MetricSink,
    ) -> Fate {
        let api_name = api::name(key);
        let decoded = self
            .response_flow
            .read_frame(frame, buffer)
            .map(Bytes::from)
            .and_then(|bytes| body::decode_response(&bytes.slice(4.min(bytes.len())..), key, version).ok());
        let Some(mut response) = decoded else {
            if renamer.is_some() {
                return self.response_rename_failed(key, "undecodable", sink);
            }
            log::warn!("a {api_name} response did not decode: its broker addresses pass unrewritten");
            sink.add(Metric::AddressRewritesSkipped { api: api_name }, 1);
            return Fate::Forward;
        };
        let moved =
            if addresses { addresses::rewrite(&mut response.body, &mut |id, host, port| self.addresses.map(id, host, port)) } else { 0 };
        let renamed = renamer.map(|r| rename::response_to_client(&mut response.body, r)).unwrap_or_default();
        if moved == 0 && !renamed.changed() {
            return Fate::Forward;
        }
        match body::encode_response(&response.header, &response.body, key, version) {
            Ok(encoded) => {
                if moved > 0 {
                    sink.add(Metric::AddressesRewritten { api: api_name }, moved as i64);
                }
                if renamed.changed() {
                    sink.add(Metric::TopicRewrites { api: api_name, direction: Direction::Response }, 1);
                }
                if renamed.hidden_in_response > 0 {
                    sink.add(
                        Metric::TopicRewriteHidden { api: api_name, direction: Direction::Response },
                        renamed.hidden_in_response as i64,
                    );
                }
                Fate::Replace(encoded)
            }
            Err(_) if renamer.is_some() => self.response_rename_failed(key, "encode", sink),
            Err(_) => Fate::Forward,
        }
    }

    /// A held Fetch response's topic names, renamed in place.
    fn rename_fetch<S: StreamBuffer + ?Sized>(
        &mut self,
        frame: &Tracked<AnswerFrame>,
        buffer: &mut S,
        version: i16,
        header_len: usize,
        renamer: &Renamer,
        sink: &mut dyn MetricSink,
    ) -> Fate {
        let result = held_prefix_edit(&self.response_flow, frame, buffer, |bytes, body_len| {
            name_edit::fetch_response(bytes, body_len, header_len, version, &mut to_client_fn(renamer))
        });
        let Some(result) = result else {
            return self.response_rename_failed(ApiKey::Fetch, "unreadable", sink);
        };
        match result {
            Ok(Some(edit)) => {
                sink.add(Metric::TopicRewrites { api: "Fetch", direction: Direction::Response }, 1);
                Fate::ReplacePrefix { len: edit.consumed, data: Bytes::from(edit.data) }
            }
            Ok(None) => Fate::Forward,
            Err(_) => self.response_rename_failed(ApiKey::Fetch, "malformed", sink),
        }
    }

    /// A response whose names must be mapped back but cannot be: passing it would show the client
    /// names it does not know (or another tenant's), so the connection closes.
    fn response_rename_failed(&mut self, key: ApiKey, reason: &'static str, sink: &mut dyn MetricSink) -> Fate {
        log::warn!("closing connection: a {} response's topic names cannot be mapped back ({reason})", api::name(key));
        sink.add(Metric::TopicRewriteFailures { api: api::name(key), reason }, 1);
        sink.add(Metric::ConnectionsClosedByFilter { reason: "rewrite_failed" }, 1);
        self.close_reason = Some("rewrite_failed");
        Fate::Forward
    }

    /// Starts tracking a response the filter replaces or rewrites. `Some` is the disposition for
    /// its frame; `None` leaves the response to the observing path.
    pub(super) fn track_response(
        &mut self,
        start: &FrameStart,
        request: &InFlight<RequestContext>,
        sink: &mut dyn MetricSink,
    ) -> Option<Disposition> {
        let fits = u64::from(start.body_len) + 4 <= self.limits.max_inspect;
        let key = ApiKey::try_from(request.api_key).ok()?;
        let (payload, fate, drain) = match &request.extra.answer {
            Some(Answer::Replace(bytes)) => (AnswerFrame::Replace, Fate::Replace(bytes.clone()), true),
            Some(Answer::Merge(refused)) if fits => {
                let renamer = request.extra.renamer.clone();
                (
                    AnswerFrame::Merge { key, version: request.api_version, refused: refused.clone(), body: None, renamer },
                    Fate::Undecided,
                    false,
                )
            }
            Some(Answer::Merge(_)) => {
                log::warn!("a {} response too large to hold cannot carry the refused topics' errors", api::name(key));
                sink.add(Metric::PolicyMergeFailures, 1);
                return None;
            }
            Some(Answer::Downgrade { client_version }) => {
                let client_version = *client_version;
                return self.track_downgrade(start, key, request.api_version, client_version, request.extra.renamer.clone(), fits, sink);
            }
            None if key == ApiKey::ApiVersions && self.edits_responses() && fits => {
                (AnswerFrame::Versions { version: request.api_version, body: None }, Fate::Undecided, false)
            }
            None => return self.track_rewrite(start, key, request.api_version, request.extra.renamer.clone(), fits, sink),
        };
        let mut tracked = Tracked::new(start.offset, start.body_len, payload);
        tracked.fate = fate;
        tracked.drain = drain;
        self.response_flow.track(tracked);
        Some(if drain { Disposition::Skip } else { Disposition::Capture })
    }
}

impl Connection {
    /// Tracks a response whose broker addresses or names the filter rewrites: held and rewritten
    /// once whole, scanned or decoded on the way as any response (so this returns `None`). A
    /// Fetch response's names are renamed in place, decided at its start when they all show.
    fn track_rewrite(
        &mut self,
        start: &FrameStart,
        key: ApiKey,
        version: i16,
        renamer: Option<Rc<Renamer>>,
        fits: bool,
        sink: &mut dyn MetricSink,
    ) -> Option<Disposition> {
        if let Some(renamer) = renamer.as_ref().filter(|_| key == ApiKey::Fetch && version <= name_edit::MAX_NAMED_VERSION) {
            return self.track_fetch_names(start, version, renamer, sink);
        }
        let rename = renamer.filter(|_| rename::response_needs_rewrite(key));
        let addresses = !self.addresses.is_empty()
            && addresses::carries_addresses(key, version)
            && !(matches!(key, ApiKey::Produce | ApiKey::Fetch) && self.addresses.node_endpoints == NodeEndpoints::CapVersions);
        if rename.is_none() && !addresses {
            return None;
        }
        if !fits {
            if rename.is_some() {
                log::warn!("closing connection: a {} response too large to hold cannot have its topic names mapped back", api::name(key));
                sink.add(Metric::ConnectionsClosedByFilter { reason: "rewrite_too_large" }, 1);
                self.close_reason = Some("rewrite_too_large");
            } else {
                log::warn!("a {} response too large to hold passes with its broker addresses unrewritten", api::name(key));
                sink.add(Metric::AddressRewritesSkipped { api: api::name(key) }, 1);
            }
            return None;
        }
        let mut tracked = Tracked::new(start.offset, start.body_len, AnswerFrame::Rewrite { key, version, addresses, renamer: rename });
        tracked.fate = Fate::Undecided;
        self.response_flow.track(tracked);
        None
    }

    fn track_fetch_names(
        &mut self,
        start: &FrameStart,
        version: i16,
        renamer: &Rc<Renamer>,
        sink: &mut dyn MetricSink,
    ) -> Option<Disposition> {
        let Ok((_, header_len)) = header::decode_response_header(&start.prefix, ApiKey::Fetch, version) else { return None };
        let mut frame = Vec::with_capacity(4 + start.prefix.len());
        frame.extend_from_slice(&start.body_len.to_be_bytes());
        frame.extend_from_slice(&start.prefix);
        let fate = match name_edit::fetch_response(&frame, start.body_len, header_len, version, &mut to_client_fn(renamer)) {
            Ok(None) => return None,
            Ok(Some(edit)) => {
                sink.add(Metric::TopicRewrites { api: "Fetch", direction: Direction::Response }, 1);
                Fate::ReplacePrefix { len: edit.consumed, data: Bytes::from(edit.data) }
            }
            Err(EditError::Truncated) => Fate::Undecided,
            Err(e) => {
                log::debug!("Fetch response names unreadable at its start: {e:?}");
                self.response_rename_failed(ApiKey::Fetch, "malformed", sink);
                return None;
            }
        };
        let mut tracked =
            Tracked::new(start.offset, start.body_len, AnswerFrame::FetchNames { version, header_len, renamer: Rc::clone(renamer) });
        tracked.fate = fate;
        self.response_flow.track(tracked);
        None
    }
}

fn settled_verdict(settled: crate::flow::Settled, direction: Direction, sink: &mut dyn MetricSink) -> Verdict {
    if settled.moved_to_vm {
        sink.add(Metric::FramesHeldInVm { direction }, 1);
    }
    if settled.failed {
        log::error!("closing connection: an edit of the {} buffer failed, the stream can no longer be kept whole", direction.as_str());
        sink.add(Metric::ConnectionsClosedByFilter { reason: "edit_failed" }, 1);
        return Verdict::Close("edit_failed");
    }
    if settled.pause {
        Verdict::Pause
    } else {
        Verdict::Continue
    }
}

/// Lowers the advertised maximum of each capped API; an API whose range lies above its cap is
/// removed. Returns whether anything changed.
fn cap_versions(response: &mut kafka_lens_codec::kafka_protocol::messages::ApiVersionsResponse, caps: &[(ApiKey, i16)]) -> bool {
    let before = response.api_keys.len();
    let mut changed = false;
    response.api_keys.retain_mut(|entry| match caps.iter().find(|(key, _)| *key as i16 == entry.api_key) {
        Some((_, cap)) if entry.max_version > *cap => {
            changed = true;
            entry.max_version = *cap;
            entry.min_version <= *cap
        }
        _ => true,
    });
    changed || response.api_keys.len() != before
}

/// The fate of a whole tracked response.
fn decide_response(frame: &AnswerFrame, sink: &mut dyn MetricSink) -> Fate {
    match frame {
        AnswerFrame::Replace => Fate::Forward,
        AnswerFrame::Merge { key, version, refused, body: Some(body), renamer } => {
            let merged = body::decode_response(body, *key, *version).ok().and_then(|mut response| {
                if let Some(renamer) = renamer {
                    rename::response_to_client(&mut response.body, renamer);
                }
                refusal::merge_topic_results(&mut response.body, (**refused).clone())
                    .then(|| body::encode_response(&response.header, &response.body, *key, *version).ok())
                    .flatten()
            });
            match merged {
                Some(bytes) => Fate::Replace(bytes),
                None => {
                    log::warn!("could not merge the refused topics' errors into a {} response", api::name(*key));
                    sink.add(Metric::PolicyMergeFailures, 1);
                    Fate::Forward
                }
            }
        }
        _ => Fate::Forward,
    }
}

/// An ApiVersions response as the client may take it: the broker's ranges learned (translation
/// on), narrowed to what the codec decodes (`narrow`: the filter checks or rewrites requests),
/// capped (`caps`: see [`crate::policy::Policy::topic_name_version_caps`]) and reaching down to
/// the old versions the filter translates.
fn versions_response(
    body: &Bytes,
    version: i16,
    narrow: bool,
    caps: &[(ApiKey, i16)],
    translation: &Translation,
    sink: &mut dyn MetricSink,
) -> Fate {
    let Ok(mut response) = body::decode_response(body, ApiKey::ApiVersions, version) else { return Fate::Forward };
    let ResponseKind::ApiVersions(versions) = &mut response.body else { return Fate::Forward };
    if translation.learn(versions) {
        log::info!("learned the broker's API versions ({} APIs)", versions.api_keys.len());
    }
    let narrowed = narrow && api::intersect_api_versions(versions);
    let capped = cap_versions(versions, caps);
    let extended = translation.advertise(versions);
    if !(narrowed || capped || extended) {
        return Fate::Forward;
    }
    match body::encode_response(&response.header, &response.body, ApiKey::ApiVersions, version) {
        Ok(bytes) => {
            if narrowed || capped {
                sink.add(Metric::ApiVersionsNarrowed, 1);
            }
            if extended {
                sink.add(Metric::ApiVersionsExtended, 1);
            }
            Fate::Replace(bytes)
        }
        Err(_) => Fate::Forward,
    }
}

/// What a Produce request's first bytes say about renaming it.
#[derive(Debug)]
enum StartEdit {
    /// No name changes.
    None,
    /// Every name is in the first bytes: this edit renames them.
    Edit(PrefixEdit),
    /// A name lies beyond the first bytes, or a name is hidden: the request is held whole.
    HoldWhole,
    Malformed(EditError),
}

/// How much of a held frame a rename reads first: a single-topic request or response has all its
/// names in far fewer bytes, so its records stay in Envoy's buffer.
const HELD_NAMES_PREFIX_BYTES: u64 = 4096;

/// The prefix edit of a whole held frame: `edit` runs on the frame's first
/// [`HELD_NAMES_PREFIX_BYTES`] and, only if a name lies further (several topics), on the whole
/// frame. `edit` gets the bytes and the size prefix's value. `None` if the bytes cannot be read.
fn held_prefix_edit<T, S: StreamBuffer + ?Sized>(
    flow: &Flow<T>,
    frame: &Tracked<T>,
    buffer: &mut S,
    mut edit: impl FnMut(&[u8], u32) -> Result<Option<PrefixEdit>, EditError>,
) -> Option<Result<Option<PrefixEdit>, EditError>> {
    let body_len = u32::try_from(frame.len().saturating_sub(4)).unwrap_or(u32::MAX);
    let first = flow.read_frame_prefix(frame, buffer, HELD_NAMES_PREFIX_BYTES)?;
    match edit(&first, body_len) {
        Err(EditError::Truncated) if (first.len() as u64) < frame.len() => Some(edit(&flow.read_frame(frame, buffer)?, body_len)),
        result => Some(result),
    }
}

/// The rename closure for [`name_edit`]: broker names for client names; `hidden` is set when a
/// name the client may not use appears.
fn to_broker_fn<'a>(renamer: &'a Renamer, hidden: &'a mut bool) -> impl FnMut(NameKind, &str) -> Option<String> + 'a {
    move |kind, name| match renamer.to_broker(kind, name) {
        Mapped::Renamed(new) => Some(new),
        Mapped::Same => None,
        Mapped::Hidden => {
            *hidden = true;
            None
        }
    }
}

/// Tries to rename a Produce request from the bytes its start shows (size prefix and up to
/// [`kafka_lens_codec::frame::DEFAULT_PREFIX_LEN`] body bytes): a single-topic request always
/// fits, so its records are never held or copied.
fn produce_edit_at_start(start: &FrameStart, info: &RequestHeaderInfo, renamer: &Renamer) -> StartEdit {
    let Some(header_len) = info.header_len else { return StartEdit::HoldWhole };
    let mut frame = Vec::with_capacity(4 + start.prefix.len());
    frame.extend_from_slice(&start.body_len.to_be_bytes());
    frame.extend_from_slice(&start.prefix);
    let mut hidden = false;
    let result =
        name_edit::produce_request(&frame, start.body_len, header_len, info.id.api_version, &mut to_broker_fn(renamer, &mut hidden));
    match result {
        _ if hidden => StartEdit::HoldWhole,
        // Produce v13+ addresses topics by id: nothing to rename (tenants never get there).
        Ok(None) | Err(EditError::Unsupported) => StartEdit::None,
        Ok(Some(edit)) => StartEdit::Edit(edit),
        Err(EditError::Truncated) => StartEdit::HoldWhole,
        Err(e) => StartEdit::Malformed(e),
    }
}

/// Maps a scanned Produce request's topic names to the broker's (for metrics and the policy).
pub(super) fn produce_to_broker(summary: &mut Summary, renamer: &Renamer) {
    for topic in &mut summary.topics {
        if let Mapped::Renamed(name) = renamer.to_broker(NameKind::Topic, &topic.name) {
            topic.name = name;
        }
    }
}

/// The rename closure for [`name_edit`] toward the client. A hidden name cannot be in a Fetch
/// response to a request that named only the client's topics; it is left as it is.
fn to_client_fn(renamer: &Renamer) -> impl FnMut(NameKind, &str) -> Option<String> + '_ {
    move |kind, name| match renamer.to_client(kind, name) {
        Mapped::Renamed(new) => Some(new),
        Mapped::Same | Mapped::Hidden => None,
    }
}
