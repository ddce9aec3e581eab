//! Old protocol versions on a connection (see [`crate::versions`] for when, and
//! [`kafka_lens_codec::legacy`] for the layouts).
//!
//! A request below the broker's minimum version is held until whole, decoded from its old layout
//! into the crate's type, mapped to the broker's names, encoded at the lowest version the broker
//! accepts and sent in its place; metrics and the policy see the translated request. The broker's
//! answer is held, decoded at that version, mapped back and encoded in the old layout. A request
//! the filter cannot translate is answered `UNSUPPORTED_VERSION` through the policy's answer
//! mechanism, in order with the others. A request that fails to translate (malformed) closes the
//! connection: passing it on would only make the broker close it.

use bytes::Bytes;
use kafka_lens_codec::api;
use kafka_lens_codec::body;
use kafka_lens_codec::frame::{Disposition, FrameStart};
use kafka_lens_codec::header::{self, RequestHeaderInfo};
use kafka_lens_codec::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_lens_codec::legacy::translate;
use kafka_lens_codec::rename::{self, Renamer};
use kafka_lens_codec::scan::{self, Scanned};

use super::enforce::{Answer, AnswerFrame, PolicyBody, PolicyFrame};
use super::{count_scan, version_label, Connection};
use crate::flow::{Fate, StreamBuffer, Tracked};
use crate::labels::Client;
use crate::metrics::{Direction, Metric, MetricSink};
use crate::policy::Applicable;
use crate::versions::Plan;

/// Kafka's `UNSUPPORTED_VERSION`.
const UNSUPPORTED_VERSION: i16 = 35;

/// Room kept in a translated Fetch's `max_bytes` for everything around the records, so the
/// broker's answer fits the hold limit (`max_inspect_bytes`) it is downgraded within.
const FETCH_RESPONSE_OVERHEAD: u64 = 64 * 1024;

/// A request the filter translates or answers itself.
#[derive(Debug, Clone)]
pub struct Translating {
    /// The version the client sent.
    pub client_version: i16,
    pub plan: Plan,
    /// The translated request frame, once its body was read and translated.
    pub frame: Option<Bytes>,
}

impl Connection {
    /// What translation does to a request, when it does anything.
    pub(super) fn translation_plan(&self, info: &RequestHeaderInfo) -> Option<(ApiKey, Plan)> {
        if !self.translation.is_enabled() {
            return None;
        }
        let key = match info.support {
            api::ApiSupport::Known(key) | api::ApiSupport::UnknownVersion(key) => key,
            api::ApiSupport::UnknownApi => return None,
        };
        match self.translation.plan(key, info.id.api_version) {
            Plan::Forward => None,
            plan => Some((key, plan)),
        }
    }

    /// The header of an old-version request (the codec's header decoder knows only the crate's
    /// versions): client id and header length, from the frame's first bytes.
    pub(super) fn old_request_header(info: &mut RequestHeaderInfo, prefix: &[u8]) {
        if info.header.is_none() {
            if let Ok((header, len)) = translate::request_header(prefix) {
                info.header = Some(header);
                info.header_len = Some(len);
            }
        }
    }

    /// The version a planned request goes to the broker at.
    pub(super) fn planned_version(key: ApiKey, client_version: i16, plan: Plan) -> i16 {
        match plan {
            Plan::Upgrade { target } => target,
            Plan::Unsupported if translate::is_old(key, client_version) => api::versions(key).min,
            _ => client_version,
        }
    }

    /// Starts holding a request the filter translates (or answers `UNSUPPORTED_VERSION`); its body
    /// is captured and translated when whole ([`Connection::translated_complete`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn track_translated(
        &mut self,
        start: &FrameStart,
        key: ApiKey,
        info: &RequestHeaderInfo,
        client: Client,
        expects_response: bool,
        plan: Plan,
        sink: &mut dyn MetricSink,
    ) -> Disposition {
        let client_version = info.id.api_version;
        let frame_bytes = u64::from(start.body_len) + 4;
        if frame_bytes > self.limits.max_inspect {
            log::warn!(
                "closing connection: a {} v{client_version} request of {frame_bytes} bytes is larger than max_inspect_bytes ({}) and cannot be translated",
                api::name(key),
                self.limits.max_inspect
            );
            self.translation_failed(key, "too_large", sink);
            return Disposition::Skip;
        }
        let version = Self::planned_version(key, client_version, plan);
        let correlation_id = expects_response.then_some(info.id.correlation_id);
        if let (Some(correlation_id), Plan::Upgrade { target }) = (correlation_id, plan) {
            if let Some(entry) = self.correlator.latest_mut(correlation_id) {
                entry.api_version = target;
                entry.extra.answer = Some(Answer::Downgrade { client_version });
            }
        }
        let client_id = info.client_id();
        let rules = if self.policy.is_empty() { Applicable::default() } else { self.policy.applicable(&self.subject(client_id), key) };
        let renamer = self.current_renamer.clone().filter(|_| key == ApiKey::Produce || rename::request_needs_rewrite(key));
        let payload = PolicyFrame {
            correlation_id,
            key,
            version,
            client,
            client_id: client_id.map(str::to_owned),
            rules,
            body: PolicyBody::None,
            early: Vec::new(),
            renamer,
            header_len: info.header_len,
            header: None,
            renamed: None,
            translation: Some(Translating { client_version, plan, frame: None }),
        };
        let mut tracked = Tracked::new(start.offset, start.body_len, payload);
        tracked.fate = Fate::Undecided;
        self.request_flow.track(tracked);
        self.translating = true;
        Disposition::Capture
    }

    /// Translates a held request's whole body; metrics and the policy see the result.
    pub(super) fn translated_complete(&mut self, frame: &Bytes, sink: &mut dyn MetricSink) {
        let Some((key, version, translation)) =
            self.request_flow.open_mut().and_then(|open| Some((open.payload.key, open.payload.version, open.payload.translation.clone()?)))
        else {
            return;
        };
        let client_version = translation.client_version;
        let decoded = if translate::is_old(key, client_version) {
            self.upgrade(frame, key, version, client_version)
        } else {
            body::decode_request(frame).map(|request| (request, None)).map_err(|e| e.to_string())
        };
        let (request, renamed) = match decoded {
            Ok(decoded) => decoded,
            Err(e) => {
                log::warn!("closing connection: a {} v{client_version} request could not be translated: {e}", api::name(key));
                self.translation_failed(key, "malformed", sink);
                return;
            }
        };
        let encoded = match translation.plan {
            Plan::Upgrade { .. } => match body::encode_request(&request.header, &request.body) {
                Ok(encoded) => Some(encoded),
                Err(e) => {
                    log::warn!("closing connection: a {} v{client_version} request translated to v{version} did not encode: {e}", api::name(key));
                    self.translation_failed(key, "encode", sink);
                    return;
                }
            },
            _ => None,
        };
        let topics: Vec<String> = kafka_lens_codec::refusal::request_topics(&request.body).into_iter().map(|(t, _)| t).collect();
        topics.iter().filter(|t| !t.is_empty()).for_each(|t| self.facts.topic(t));
        let header = request.header.clone();
        let body = match (&request.body, &encoded) {
            (RequestKind::Produce(_), Some(encoded)) => {
                let scanned = scanned_produce(encoded, version);
                count_scan(&scanned, ApiKey::Produce, Direction::Request, sink);
                match scanned {
                    Ok(Scanned::Produce(summary)) => {
                        self.produce_scanned(&summary, sink);
                        PolicyBody::Produce(summary)
                    }
                    _ => PolicyBody::None,
                }
            }
            _ => {
                self.request_decoded(&request, sink);
                PolicyBody::Decoded(Box::new(request.body))
            }
        };
        if let Some(open) = self.request_flow.open_mut() {
            open.payload.body = body;
            open.payload.header = Some(header);
            open.payload.renamed = renamed;
            if let Some(translation) = &mut open.payload.translation {
                translation.frame = encoded;
            }
        }
    }

    /// An old request frame body as the crate's request at `version`, in the broker's names.
    fn upgrade(
        &self,
        frame: &Bytes,
        key: ApiKey,
        version: i16,
        client_version: i16,
    ) -> Result<(body::Request, Option<rename::Rewritten>), String> {
        let (header, header_len) = translate::request_header(frame).map_err(|e| e.to_string())?;
        let mut kind = translate::upgrade(key, client_version, frame.get(header_len..).unwrap_or_default()).map_err(|e| e.to_string())?;
        if let RequestKind::Fetch(fetch) = &mut kind {
            // The answer is held whole to be downgraded: keep it within the hold limit. Kafka
            // still returns a first batch larger than this (KIP-74), so the client progresses.
            let budget = i32::try_from(self.limits.max_inspect.saturating_sub(FETCH_RESPONSE_OVERHEAD)).unwrap_or(i32::MAX);
            fetch.max_bytes = fetch.max_bytes.clamp(1, budget.max(1));
        }
        let renamed = self.current_renamer.as_ref().map(|renamer| rename::request_to_broker(&mut kind, renamer));
        let header = header.with_request_api_version(version);
        Ok((body::Request { header, api_key: key, body: kind }, renamed))
    }

    /// The fate of a translated request the policy let through.
    pub(super) fn translated_fate(&mut self, p: &PolicyFrame, translation: &Translating, sink: &mut dyn MetricSink) -> Fate {
        let api = api::name(p.key);
        match (translation.plan, &translation.frame) {
            (Plan::Upgrade { target }, Some(frame)) => {
                log::trace!("{api} v{} translated to v{target}", translation.client_version);
                sink.add(Metric::TranslatedRequests { api, version: version_label(translation.client_version) }, 1);
                Fate::Replace(frame.clone())
            }
            (Plan::Unsupported, _) => {
                sink.add(Metric::UnsupportedVersionAnswers { api, version: version_label(translation.client_version) }, 1);
                log::info!(
                    "answering {api} v{} with UNSUPPORTED_VERSION: the broker does not accept it and the filter cannot translate it",
                    translation.client_version
                );
                let message = format!("{api} v{} is not supported by the broker", translation.client_version);
                self.refuse_whole(p, UNSUPPORTED_VERSION, Some(&message), sink)
            }
            _ => self.translation_failed(p.key, "malformed", sink),
        }
    }

    /// A request or response that cannot be translated: the connection closes.
    pub(super) fn translation_failed(&mut self, key: ApiKey, reason: &'static str, sink: &mut dyn MetricSink) -> Fate {
        sink.add(Metric::TranslationFailures { api: api::name(key), reason }, 1);
        sink.add(Metric::ConnectionsClosedByFilter { reason: "translation_failed" }, 1);
        self.close_reason = Some("translation_failed");
        Fate::Forward
    }

    /// Starts holding the answer to a translated request (read back from the buffer once whole).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn track_downgrade(
        &mut self,
        start: &FrameStart,
        key: ApiKey,
        version: i16,
        client_version: i16,
        renamer: Option<std::rc::Rc<Renamer>>,
        fits: bool,
        sink: &mut dyn MetricSink,
    ) -> Option<Disposition> {
        if !fits {
            log::warn!(
                "closing connection: a {} v{version} response of {} bytes is too large to hold (max_inspect_bytes) and translate back to v{client_version}",
                api::name(key),
                u64::from(start.body_len) + 4
            );
            self.translation_failed(key, "too_large", sink);
            return None;
        }
        let mut tracked = Tracked::new(start.offset, start.body_len, AnswerFrame::Downgrade { key, version, client_version, renamer });
        tracked.fate = Fate::Undecided;
        self.response_flow.track(tracked);
        None
    }

    /// The broker's answer to a translated request, in the client's version and names.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn downgrade_response<S: StreamBuffer + ?Sized>(
        &mut self,
        frame: &Tracked<AnswerFrame>,
        buffer: &mut S,
        key: ApiKey,
        version: i16,
        client_version: i16,
        renamer: Option<&Renamer>,
        sink: &mut dyn MetricSink,
    ) -> Fate {
        let decoded = self
            .response_flow
            .read_frame(frame, buffer)
            .map(Bytes::from)
            .ok_or_else(|| "unreadable".to_owned())
            .and_then(|bytes| body::decode_response(&bytes.slice(4.min(bytes.len())..), key, version).map_err(|e| e.to_string()));
        let mut response = match decoded {
            Ok(response) => response,
            Err(e) => {
                log::warn!("closing connection: the broker's {} v{version} response did not decode for translation: {e}", api::name(key));
                return self.translation_failed(key, "undecodable_response", sink);
            }
        };
        if let Some(renamer) = renamer {
            rename::response_to_client(&mut response.body, renamer);
        }
        let downgraded = translate::downgrade(client_version, &response.body)
            .and_then(|down| Ok((translate::response_frame(response.header.correlation_id, &down.body)?, down)));
        match downgraded {
            Ok((bytes, down)) => {
                sink.add(Metric::TranslatedResponses { api: api::name(key) }, 1);
                if down.records.records > 0 {
                    sink.add(Metric::RecordsDownConverted, down.records.records as i64);
                }
                if down.records.headers_dropped > 0 {
                    sink.add(Metric::RecordHeadersDropped, down.records.headers_dropped as i64);
                    log::debug!("{} records lost their headers translating to {} v{client_version}", down.records.headers_dropped, api::name(key));
                }
                if down.unsupported_compression > 0 {
                    sink.add(Metric::TranslationUnsupportedCompression, i64::from(down.unsupported_compression));
                    log::info!(
                        "{} partitions answered UNSUPPORTED_COMPRESSION_TYPE: zstd records cannot be expressed for Fetch v{client_version}",
                        down.unsupported_compression
                    );
                }
                Fate::Replace(bytes)
            }
            Err(e) => {
                log::warn!("closing connection: a {} v{version} response could not be translated to v{client_version}: {e}", api::name(key));
                self.translation_failed(key, "response", sink)
            }
        }
    }
}

/// A response frame in the old layout of `client_version`, from the crate's response (a refusal).
pub(super) fn old_response_frame(correlation_id: i32, client_version: i16, response: &ResponseKind) -> Result<Bytes, String> {
    translate::downgrade(client_version, response)
        .and_then(|down| translate::response_frame(correlation_id, &down.body))
        .map_err(|e| e.to_string())
}

/// The structural scan of a translated Produce request (whole frame, size prefix included).
fn scanned_produce(frame: &Bytes, version: i16) -> Result<Scanned, scan::ScanError> {
    let body = frame.slice(4.min(frame.len())..);
    let header_len = header::decode_request_header(&body, true).ok().and_then(|info| info.header_len).unwrap_or_default();
    scan::scan_in_memory(ApiKey::Produce, version, true, &body, header_len)
}
