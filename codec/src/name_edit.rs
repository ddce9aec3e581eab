//! Renames the topic names and the transactional id of Produce requests and Fetch responses
//! without decoding, re-encoding or copying their records.
//!
//! These frames are mostly record payload, and Envoy lets a filter replace only a *prefix* of its
//! buffer. So a rename is a [`PrefixEdit`]: replace the frame's first `consumed` bytes (size
//! prefix included) with `data`, which is the new size prefix followed by the original bytes up to
//! the end of the last name that changes, each changed name re-encoded in its own encoding. The
//! rest of the frame stays in Envoy's buffer untouched. The parse reads only the structure
//! between names and skips record sets by their length, so a caller can first pass the frame's
//! first bytes and get [`EditError::Truncated`] when a topic name lies beyond them.
//!
//! Produce v13+ and Fetch v13+ address topics by id, so they carry no name to rename.

use crate::topic_names::NameKind;
use kafka_protocol::messages::ApiKey;

/// Replace the frame's first `consumed` bytes, counted from the start of its 4-byte size prefix,
/// with `data` (new size prefix included): the only kind of edit Envoy allows on a buffer without
/// copying what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixEdit {
    pub consumed: usize,
    pub data: Vec<u8>,
}

/// Why no edit could be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditError {
    /// The bytes given end before the last name: retry with more of the frame.
    Truncated,
    /// A length or count no valid frame has, or a rename Kafka cannot carry.
    Malformed(&'static str),
    /// Not Produce request v3–v12 or Fetch response v4–v12: older versions are outside the codec,
    /// newer ones address topics by id.
    Unsupported,
}

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EditError::Truncated => write!(f, "frame prefix ends before the last name"),
            EditError::Malformed(m) => write!(f, "malformed frame: {m}"),
            EditError::Unsupported => write!(f, "api version carries no topic names to edit"),
        }
    }
}

/// Produce and Fetch name topics up to this version; from v13 they address them by id.
pub const MAX_NAMED_VERSION: i16 = 12;

/// The last version of each API whose later versions address topics by id only: Produce and Fetch
/// (KIP-516) and OffsetCommit/OffsetFetch (KIP-848, v10). A request sent at most at these versions
/// names every topic, so names can be checked, renamed and translated back.
pub const LAST_VERSIONS_NAMING_TOPICS: [(ApiKey, i16); 4] =
    [(ApiKey::Produce, MAX_NAMED_VERSION), (ApiKey::Fetch, MAX_NAMED_VERSION), (ApiKey::OffsetCommit, 9), (ApiKey::OffsetFetch, 9)];

/// Decides, for a name of the given kind, its new value (`None`: keep it).
pub type RenameFn<'a> = &'a mut dyn FnMut(NameKind, &str) -> Option<String>;

/// Kafka's generated decoders reject longer strings, compact or not.
const MAX_STRING_LEN: usize = i16::MAX as usize;
const SIZE_PREFIX: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    ProduceRequest,
    FetchResponse,
}

/// A name in the frame: `start` of its length, `text` of its bytes, `end` after them.
struct Span {
    kind: NameKind,
    start: usize,
    text: usize,
    end: usize,
}

/// Checked reads over the frame; offsets count from the start of the size prefix.
struct Cursor<'a> {
    frame: &'a [u8],
    pos: usize,
    /// End of the frame as its size prefix says; `frame` may stop earlier.
    end: usize,
    flexible: bool,
}

impl<'a> Cursor<'a> {
    fn skip(&mut self, n: usize) -> Result<(), EditError> {
        self.pos = self.pos.checked_add(n).filter(|to| *to <= self.end).ok_or(EditError::Malformed("field past the frame end"))?;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], EditError> {
        let from = self.pos;
        self.skip(n)?;
        self.frame.get(from..self.pos).ok_or(EditError::Truncated)
    }

    fn int<const N: usize>(&mut self) -> Result<[u8; N], EditError> {
        self.take(N)?.try_into().map_err(|_| EditError::Truncated)
    }

    fn uvarint(&mut self) -> Result<u32, EditError> {
        let mut value = 0u32;
        for shift in [0, 7, 14, 21, 28] {
            let [b] = self.int::<1>()?;
            if shift == 28 && b > 0x0f {
                return Err(EditError::Malformed("varint longer than 32 bits"));
            }
            value |= u32::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(EditError::Malformed("varint longer than 32 bits"))
    }

    /// Length of a nullable string (`short` classic length), bytes or array; `None` when null.
    fn length(&mut self, short: bool) -> Result<Option<usize>, EditError> {
        let n = if self.flexible {
            i64::from(self.uvarint()?) - 1
        } else if short {
            i64::from(i16::from_be_bytes(self.int()?))
        } else {
            i64::from(i32::from_be_bytes(self.int()?))
        };
        match n {
            -1 => Ok(None),
            n => usize::try_from(n).map(Some).map_err(|_| EditError::Malformed("negative length")),
        }
    }

    fn string(&mut self, kind: NameKind) -> Result<Option<Span>, EditError> {
        let start = self.pos;
        let Some(len) = self.length(true)? else {
            return Ok(None);
        };
        let text = self.pos;
        self.take(len)?;
        Ok(Some(Span { kind, start, text, end: self.pos }))
    }

    fn topic_name(&mut self) -> Result<Span, EditError> {
        self.string(NameKind::Topic)?.ok_or(EditError::Malformed("null topic name"))
    }

    fn array(&mut self) -> Result<usize, EditError> {
        self.length(false)?.ok_or(EditError::Malformed("null array"))
    }

    fn skip_bytes(&mut self) -> Result<(), EditError> {
        let len = self.length(false)?.unwrap_or(0);
        self.skip(len)
    }

    fn skip_tagged_fields(&mut self) -> Result<(), EditError> {
        if self.flexible {
            for _ in 0..self.uvarint()? {
                self.uvarint()?;
                let size = self.uvarint()?;
                self.skip(usize::try_from(size).map_err(|_| EditError::Malformed("tagged field size"))?)?;
            }
        }
        Ok(())
    }
}

fn flexible(api: Api, version: i16) -> Result<bool, EditError> {
    match (api, version) {
        (Api::ProduceRequest, 3..=12) => Ok(version >= 9),
        (Api::FetchResponse, 4..=12) => Ok(version >= 12),
        _ => Err(EditError::Unsupported),
    }
}

/// Every name of the frame in order, and the offset right after the last one (after the topic
/// count when there is no topic): nothing further can hold a name.
fn parse(api: Api, frame: &[u8], body_len: u32, header_len: usize, version: i16) -> Result<(Vec<Span>, usize), EditError> {
    let flexible = flexible(api, version)?;
    let end = usize::try_from(body_len).ok().and_then(|b| b.checked_add(SIZE_PREFIX)).ok_or(EditError::Malformed("frame size"))?;
    let pos = header_len.checked_add(SIZE_PREFIX).filter(|p| *p <= end).ok_or(EditError::Malformed("header past the frame end"))?;
    let mut c = Cursor { frame: frame.get(..end).unwrap_or(frame), pos, end, flexible };
    let mut names = Vec::new();
    if api == Api::ProduceRequest {
        names.extend(c.string(NameKind::TransactionalId)?);
        c.skip(2 + 4)?; // acks, timeout_ms
    } else {
        c.skip(if version >= 7 { 4 + 2 + 4 } else { 4 })?; // throttle_time_ms, error_code, session_id
    }
    for i in 0..c.array()? {
        if i > 0 {
            skip_partitions(api, version, &mut c)?; // of the previous topic
            c.skip_tagged_fields()?;
        }
        names.push(c.topic_name()?);
    }
    Ok((names, c.pos))
}

/// A topic's partitions array, records skipped unread.
fn skip_partitions(api: Api, version: i16, c: &mut Cursor) -> Result<(), EditError> {
    for _ in 0..c.array()? {
        if api == Api::ProduceRequest {
            c.skip(4)?; // index
        } else {
            // partition_index, error_code, high_watermark, last_stable_offset, log_start_offset (v5+)
            c.skip(if version >= 5 { 4 + 2 + 8 + 8 + 8 } else { 4 + 2 + 8 + 8 })?;
            if let Some(aborted) = c.length(false)? {
                if c.flexible {
                    for _ in 0..aborted {
                        c.skip(8 + 8)?; // producer_id, first_offset
                        c.skip_tagged_fields()?;
                    }
                } else {
                    c.skip(aborted.checked_mul(8 + 8).ok_or(EditError::Malformed("aborted transaction count"))?)?;
                }
            }
            if version >= 11 {
                c.skip(4)?; // preferred_read_replica
            }
        }
        c.skip_bytes()?; // records
        // Fetch v12: diverging_epoch, current_leader, snapshot_id and unknown tags, by size.
        c.skip_tagged_fields()?;
    }
    Ok(())
}

fn edit(api: Api, frame: &[u8], body_len: u32, header_len: usize, version: i16, rename: RenameFn) -> Result<Option<PrefixEdit>, EditError> {
    let (names, _) = parse(api, frame, body_len, header_len, version)?;
    let flexible = flexible(api, version)?;
    let mut data = vec![0; SIZE_PREFIX];
    let (mut copied, mut added, mut removed) = (SIZE_PREFIX, 0u64, 0u64);
    for span in names {
        let old = frame.get(span.text..span.end).ok_or(EditError::Truncated)?;
        let old = std::str::from_utf8(old).map_err(|_| EditError::Malformed("name is not UTF-8"))?;
        if old.is_empty() {
            continue; // empty (and null) names are never renamed: no tenant owns them
        }
        let Some(new) = rename(span.kind, old).filter(|new| new != old) else {
            continue;
        };
        if new.len() > MAX_STRING_LEN {
            return Err(EditError::Malformed("renamed name longer than 32767 bytes"));
        }
        data.extend_from_slice(frame.get(copied..span.start).ok_or(EditError::Malformed("names out of order"))?);
        let before = data.len();
        if flexible {
            put_uvarint(&mut data, new.len() as u32 + 1); // at most 32768: no overflow
        } else {
            data.extend_from_slice(&(new.len() as u16).to_be_bytes());
        }
        data.extend_from_slice(new.as_bytes());
        added += (data.len() - before) as u64;
        removed += (span.end - span.start) as u64;
        copied = span.end;
    }
    if copied == SIZE_PREFIX {
        return Ok(None);
    }
    let size = (u64::from(body_len) + added)
        .checked_sub(removed)
        .and_then(|s| i32::try_from(s).ok())
        .ok_or(EditError::Malformed("renamed frame larger than 2 GiB"))?;
    if let Some(prefix) = data.get_mut(..SIZE_PREFIX) {
        prefix.copy_from_slice(&size.to_be_bytes());
    }
    Ok(Some(PrefixEdit { consumed: copied, data }))
}

/// The edit renaming the transactional id and topic names of a Produce request (v3–v12) through
/// `rename`, or `None` when no name changes. `rename` is called only once every name was reached,
/// in frame order, never for a null or empty name. `frame` is the frame from its size prefix on, whole
/// or only its first bytes; `body_len` is the size prefix's value; `header_len` the request
/// header's length. Records are skipped by length, never read.
pub fn produce_request(
    frame: &[u8],
    body_len: u32,
    header_len: usize,
    version: i16,
    rename: RenameFn,
) -> Result<Option<PrefixEdit>, EditError> {
    edit(Api::ProduceRequest, frame, body_len, header_len, version, rename)
}

/// The edit renaming the topic names of a Fetch response (v4–v12) through `rename`, or `None`
/// when no name changes. Arguments as for [`produce_request`] (`header_len`: the response
/// header's).
pub fn fetch_response(
    frame: &[u8],
    body_len: u32,
    header_len: usize,
    version: i16,
    rename: RenameFn,
) -> Result<Option<PrefixEdit>, EditError> {
    edit(Api::FetchResponse, frame, body_len, header_len, version, rename)
}

/// How many bytes of the frame (from its size prefix) an edit needs: the offset right after its
/// last name (after the topic count when there is no topic), by the same parse as the edits.
/// [`EditError::Truncated`] when `frame` ends before it.
pub fn names_end(frame: &[u8], body_len: u32, header_len: usize, version: i16, is_produce_request: bool) -> Result<usize, EditError> {
    let api = if is_produce_request { Api::ProduceRequest } else { Api::FetchResponse };
    Ok(parse(api, frame, body_len, header_len, version)?.1)
}

/// Appends `value` as Kafka's unsigned varint (compact lengths, tagged-field tags and sizes).
fn put_uvarint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Alignment [`pad_request_header`] keeps: a cache line.
pub const RECORD_ALIGNMENT: usize = 64;

/// Tag of the tagged field [`pad_request_header`] adds: far above the tags Kafka allocates (from
/// 0 upwards; the request header defines none), so no broker reads meaning into it.
pub const PADDING_TAG: u32 = 0x4B4C;

/// Pads a request edit so the frame changes size by a multiple of [`RECORD_ALIGNMENT`] bytes.
///
/// A rename that changes a Produce request's length shifts every record byte after it relative to
/// where the client's bytes sit in Envoy's buffer, and the kernel copies misaligned bytes into a
/// socket several times slower (measured: a rename adding 8 bytes made Envoy's writes toward the
/// broker 4.5× costlier; one adding 64 bytes cost nothing). The padding is an unknown tagged field
/// ([`PADDING_TAG`], zero bytes) in the request header's tagged fields, which Kafka brokers skip
/// (KIP-482). `header_len` is the request header's length; the header must be a flexible one (v2)
/// with no tagged fields, as every client sends it, and must be in `edit.data` unchanged after the
/// size prefix. Otherwise, or when the size change is already aligned, the edit is returned as it is.
pub fn pad_request_header(mut edit: PrefixEdit, header_len: usize) -> PrefixEdit {
    // Header v2: api key, version, correlation id, client id (nullable int16 string), tagged fields.
    let tags_at = match edit.data.get(SIZE_PREFIX + 8..SIZE_PREFIX + 10) {
        Some(&[hi, lo]) => SIZE_PREFIX + 10 + usize::try_from(i16::from_be_bytes([hi, lo])).unwrap_or(0),
        _ => return edit,
    };
    if tags_at + 1 != SIZE_PREFIX + header_len || edit.data.get(tags_at) != Some(&0) {
        return edit;
    }
    let growth = edit.data.len() as i64 - edit.consumed as i64;
    let mut pad = usize::try_from((-growth).rem_euclid(RECORD_ALIGNMENT as i64)).unwrap_or(0);
    if pad == 0 {
        return edit;
    }
    // The field: tag (varint), size (one-byte varint), that many zeros; the count goes 0 → 1.
    let mut field = Vec::with_capacity(RECORD_ALIGNMENT + 4);
    put_uvarint(&mut field, PADDING_TAG);
    if pad < field.len() + 1 {
        pad += RECORD_ALIGNMENT;
    }
    let zeros = pad - field.len() - 1;
    field.push(zeros as u8); // < 128: a one-byte varint
    field.resize(pad, 0);
    let size = edit.data.get(..SIZE_PREFIX).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(i32::from_be_bytes);
    let Some(size) = size.and_then(|size| size.checked_add(pad as i32)) else { return edit };
    if let Some(prefix) = edit.data.get_mut(..SIZE_PREFIX) {
        prefix.copy_from_slice(&size.to_be_bytes());
    }
    if let Some(count) = edit.data.get_mut(tags_at) {
        *count = 1;
    }
    edit.data.splice(tags_at + 1..tags_at + 1, field);
    edit
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::topic_names::{request_names_mut, response_names_mut, StrBytes};
    use crate::{body, header};
    use bytes::Bytes;
    use kafka_protocol::messages::*;
    use std::collections::BTreeMap;
    use NameKind::{Topic, TransactionalId as Txn};

    type Map = fn(NameKind, &str) -> Option<String>;
    const GROW: Map = |_, n| Some(format!("team-a.{n}"));
    const SHRINK: Map = |_, n| n.strip_prefix("team-a.").map(str::to_owned);
    const ONLY_B: Map = |k, n| (k == Topic && n.ends_with("topic-bbb")).then(|| "b".to_owned());
    const ONLY_TXN: Map = |k, _| (k == Txn).then(|| "other-transaction".to_owned());
    const KEEP: Map = |_, n| Some(n.to_owned());
    const NONE: Map = |_, _| None;

    fn s(v: &str) -> StrBytes {
        StrBytes::from_string(v.to_owned())
    }

    fn bytes(n: usize, seed: u8) -> Option<Bytes> {
        Some((0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect())
    }

    fn tags(entries: &[(i32, &'static [u8])]) -> BTreeMap<i32, Bytes> {
        entries.iter().map(|(t, b)| (*t, Bytes::from_static(b))).collect()
    }

    fn produce(version: i16, topics: &[&str], records_len: usize) -> Frame {
        let partition = |i: i32, records| {
            produce_request::PartitionProduceData::default()
                .with_index(i)
                .with_records(records)
                .with_unknown_tagged_fields(tags(&[(3, b"p")]))
        };
        let topic = |(i, n): (usize, &&str)| {
            produce_request::TopicProduceData::default()
                .with_name(TopicName(s(n)))
                .with_partition_data(vec![partition(0, bytes(records_len, i as u8)), partition(1, None), partition(2, bytes(5, 9))])
                .with_unknown_tagged_fields(tags(&[(0, b"t"), (9, b"topic tag")]))
        };
        let request = ProduceRequest::default()
            .with_transactional_id(Some(TransactionalId(s("team-a.tx"))))
            .with_acks(-1)
            .with_timeout_ms(3000)
            .with_topic_data(topics.iter().enumerate().map(topic).collect())
            .with_unknown_tagged_fields(tags(&[(1, b"top")]));
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(s("client")));
        let frame = body::encode_request(&header, &RequestKind::Produce(request)).unwrap();
        let header_len = header::decode_request_header(&frame.slice(4..), true).unwrap().header_len.unwrap();
        Frame { frame, version, header_len, produce: true }
    }

    fn fetch(version: i16, topics: &[&str], records_len: usize) -> Frame {
        let aborted = |p: i64| fetch_response::AbortedTransaction::default().with_producer_id(ProducerId(p)).with_first_offset(p * 10);
        let full = |i: usize| {
            fetch_response::PartitionData::default()
                .with_high_watermark(100)
                .with_last_stable_offset(90)
                .with_log_start_offset(3)
                .with_aborted_transactions(Some(vec![aborted(1), aborted(2).with_unknown_tagged_fields(tags(&[(4, b"a")]))]))
                .with_preferred_read_replica(BrokerId(if version >= 11 { 2 } else { -1 }))
                .with_records(bytes(records_len, i as u8))
                .with_diverging_epoch(fetch_response::EpochEndOffset::default().with_epoch(3).with_end_offset(40))
                .with_current_leader(fetch_response::LeaderIdAndEpoch::default().with_leader_id(BrokerId(1)).with_leader_epoch(2))
                .with_unknown_tagged_fields(tags(&[(7, b"unknown")]))
        };
        let empty = |i: i32| fetch_response::PartitionData::default().with_partition_index(i).with_aborted_transactions(Some(vec![]));
        let topic = |(i, n): (usize, &&str)| {
            fetch_response::FetchableTopicResponse::default()
                .with_topic(TopicName(s(n)))
                .with_partitions(vec![
                    full(i),
                    empty(1).with_aborted_transactions(None).with_records(None),
                    empty(2).with_records(bytes(0, 0)),
                ])
                .with_unknown_tagged_fields(tags(&[(2, b"topic tag")]))
        };
        let response = FetchResponse::default()
            .with_throttle_time_ms(5)
            .with_session_id(if version >= 7 { 77 } else { 0 })
            .with_responses(topics.iter().enumerate().map(topic).collect())
            .with_unknown_tagged_fields(tags(&[(3, b"top")]));
        let header = ResponseHeader::default().with_correlation_id(7);
        let frame = body::encode_response(&header, &ResponseKind::Fetch(response), ApiKey::Fetch, version).unwrap();
        let header_len = header::decode_response_header(&frame.slice(4..), ApiKey::Fetch, version).unwrap().1;
        Frame { frame, version, header_len, produce: false }
    }

    struct Frame {
        frame: Bytes,
        version: i16,
        header_len: usize,
        produce: bool,
    }

    impl Frame {
        fn body_len(&self) -> u32 {
            u32::from_be_bytes(self.frame[..4].try_into().unwrap())
        }

        /// The fast path over the frame's first `prefix` bytes.
        fn edit(&self, prefix: usize, rename: Map) -> Result<Option<PrefixEdit>, EditError> {
            let bytes = &self.frame[..prefix.min(self.frame.len())];
            let f = if self.produce { produce_request } else { fetch_response };
            f(bytes, self.body_len(), self.header_len, self.version, &mut |k, n| rename(k, n))
        }

        fn names_end(&self) -> usize {
            names_end(&self.frame, self.body_len(), self.header_len, self.version, self.produce).unwrap()
        }

        /// The slow path: decode all, rename through the generated walkers, encode all.
        fn reencoded(&self, rename: Map) -> Bytes {
            let mut visit = |kind, name: &mut StrBytes| {
                if let Some(new) = Some(&*name).filter(|n| !n.is_empty()).and_then(|n| rename(kind, n.as_str())) {
                    *name = s(&new);
                }
            };
            if self.produce {
                let mut request = body::decode_request(&self.frame.slice(4..)).unwrap();
                request_names_mut(&mut request.body, &mut visit);
                body::encode_request(&request.header, &request.body).unwrap()
            } else {
                let mut response = body::decode_response(&self.frame.slice(4..), ApiKey::Fetch, self.version).unwrap();
                response_names_mut(&mut response.body, &mut visit);
                body::encode_response(&response.header, &response.body, ApiKey::Fetch, self.version).unwrap()
            }
        }

        /// Applies the fast path's edit, checks it against the slow path byte for byte.
        fn check(&self, rename: Map) -> Option<PrefixEdit> {
            let edit = self.edit(usize::MAX, rename).unwrap();
            let mut fast = self.frame.to_vec();
            if let Some(e) = &edit {
                fast = [&e.data[..], &self.frame[e.consumed..]].concat();
            }
            let kind = if self.produce { "produce" } else { "fetch" };
            assert!(fast == self.reencoded(rename), "{kind} v{}: fast path differs from re-encoding", self.version);
            edit
        }
    }

    fn find(hay: &[u8], needle: &str) -> usize {
        hay.windows(needle.len()).position(|w| w == needle.as_bytes()).unwrap() + needle.len()
    }

    const TOPICS: [&str; 3] = ["topic-aaa", "team-a.topic-bbb", "topic-ccc"];

    fn all_frames(records_len: usize) -> Vec<Frame> {
        let mut frames = Vec::new();
        for n in 1..=3 {
            frames.extend((3..=12).map(|v| produce(v, &TOPICS[..n], records_len)));
            frames.extend((4..=12).map(|v| fetch(v, &TOPICS[..n], records_len)));
        }
        frames
    }

    #[test]
    fn name_edit_matches_full_reencode() {
        for frame in all_frames(300) {
            for rename in [GROW, SHRINK, ONLY_B, ONLY_TXN] {
                frame.check(rename);
            }
            let edit = frame.check(GROW).unwrap();
            assert_eq!(edit.consumed, frame.names_end(), "every name changes: the edit covers them all");
        }
    }

    #[test]
    fn name_edit_stops_after_last_changed_name() {
        for frame in all_frames(300).iter().filter(|f| f.frame.len() > 1000) {
            let edit = frame.check(ONLY_B).unwrap();
            assert_eq!(edit.consumed, find(&frame.frame, "team-a.topic-bbb"));
            assert!(edit.data.ends_with(b"b") && edit.data.len() < edit.consumed, "shrinks");
            if frame.produce {
                let edit = frame.check(ONLY_TXN).unwrap();
                assert_eq!(edit.consumed, find(&frame.frame, "team-a.tx"));
                assert!(edit.data.len() < 64, "only the header and the transactional id");
            }
        }
    }

    #[test]
    fn name_edit_does_not_copy_records() {
        for frame in [produce(3, &["t"], 1 << 20), produce(12, &["t"], 1 << 20), fetch(4, &["t"], 1 << 20), fetch(12, &["t"], 1 << 20)] {
            let edit = frame.check(GROW).unwrap();
            assert!(edit.data.len() < 200 && edit.consumed < 200, "{}", edit.data.len());
        }
    }

    #[test]
    fn name_edit_from_frame_prefix() {
        for frame in [
            produce(3, &["topic-aaa"], 300),
            produce(9, &["topic-aaa"], 300),
            fetch(4, &["topic-aaa"], 300),
            fetch(12, &["topic-aaa"], 300),
        ] {
            assert_eq!(frame.edit(64, GROW), Ok(frame.check(GROW)));
        }
        for frame in [produce(9, &TOPICS[..2], 300), fetch(12, &TOPICS[..2], 300)] {
            assert_eq!(frame.edit(64, GROW), Err(EditError::Truncated));
            assert_eq!(frame.edit(64, NONE), Err(EditError::Truncated), "unknown until the last name is parsed");
        }
        let (frame, mut calls) = (produce(9, &TOPICS, 300), 0);
        let edit = produce_request(&frame.frame[..64], frame.body_len(), frame.header_len, 9, &mut |_, _| {
            calls += 1;
            None
        });
        assert_eq!((edit, calls), (Err(EditError::Truncated), 0), "rename is not called before every name is reached");
    }

    #[test]
    fn name_edit_every_truncation() {
        for frame in [produce(3, &TOPICS, 40), produce(12, &TOPICS, 40), fetch(6, &TOPICS, 40), fetch(12, &TOPICS, 40)] {
            let (full, end) = (frame.edit(usize::MAX, GROW), frame.names_end());
            for len in 0..=frame.frame.len() {
                let expected = if len < end { Err(EditError::Truncated) } else { full.clone() };
                assert_eq!(frame.edit(len, GROW), expected, "{len} of {end}");
                // A size prefix saying the frame ends there: an error, never a panic.
                let f = if frame.produce { produce_request } else { fetch_response };
                let body_len = len.saturating_sub(4) as u32;
                let _ = f(&frame.frame[..len], body_len, frame.header_len, frame.version, &mut |k, n| GROW(k, n));
            }
        }
    }

    #[test]
    fn name_edit_compact_length_crosses_varint_boundary() {
        let long = "q".repeat(120); // compact length 121: one byte; renamed to 127 + 1: two bytes
        for frame in [produce(9, &[&long, "b"], 10), fetch(12, &[&long, "b"], 10), produce(8, &[&long], 10)] {
            let edit = frame.check(GROW).unwrap();
            let at = find(&edit.data, &format!("team-a.{long}")) - 127;
            let expected: &[u8] = if frame.version == 8 { &[0, 127] } else { &[0x80, 0x01] };
            assert_eq!(&edit.data[at - 2..at], expected, "v{}", frame.version);
            let back = Frame { frame: frame.reencoded(GROW), ..frame };
            let edit = back.check(SHRINK).unwrap();
            let at = find(&edit.data, &long) - 120;
            assert_eq!(edit.data[at - 1], if back.version == 8 { 120 } else { 121 }, "v{}", back.version);
        }
        let too_long: Map = |_, _| Some("y".repeat(32768));
        assert_eq!(produce(9, &["a"], 10).edit(usize::MAX, too_long), Err(EditError::Malformed("renamed name longer than 32767 bytes")));
        let longest: Map = |_, _| Some("y".repeat(32767));
        produce(9, &["a"], 10).check(longest);
        produce(3, &["a"], 10).check(longest);
    }

    #[test]
    fn padded_edit_changes_the_size_by_whole_cache_lines_and_decodes_as_the_rename() {
        let renames: [Map; 5] = [GROW, SHRINK, ONLY_B, ONLY_TXN, |_, n| Some(format!("{n}-{}", "x".repeat(n.len() % 7)))];
        let mut padded_some = 0;
        for frame in all_frames(300).into_iter().filter(|f| f.produce && f.version >= 9) {
            for rename in renames {
                let Some(edit) = frame.edit(usize::MAX, rename).unwrap() else { continue };
                let padded = pad_request_header(edit.clone(), frame.header_len);
                let out = [&padded.data[..], &frame.frame[padded.consumed..]].concat();
                assert_eq!((out.len() as i64 - frame.frame.len() as i64).rem_euclid(RECORD_ALIGNMENT as i64), 0);
                assert_eq!(u32::from_be_bytes(out[..4].try_into().unwrap()) as usize, out.len() - 4, "size prefix");
                // The same request as the rename alone, plus one unknown header tag of zeros.
                let request = body::decode_request(&Bytes::from(out).slice(4..)).unwrap();
                let expected = body::decode_request(&frame.reencoded(rename).slice(4..)).unwrap();
                assert_eq!(request.body, expected.body, "v{}", frame.version);
                let tags = &request.header.unknown_tagged_fields;
                if padded.data.len() == edit.data.len() {
                    assert!(tags.is_empty());
                    continue;
                }
                padded_some += 1;
                assert_eq!(tags.len(), 1);
                assert!(tags[&(PADDING_TAG as i32)].iter().all(|b| *b == 0));
                assert_eq!(request.header.clone().with_unknown_tagged_fields(BTreeMap::new()), expected.header);
            }
        }
        assert!(padded_some > 20, "{padded_some}");
    }

    #[test]
    fn padding_leaves_other_headers_alone() {
        let v8 = produce(8, &TOPICS[..1], 10);
        let edit = v8.edit(usize::MAX, GROW).unwrap().unwrap();
        assert_eq!(pad_request_header(edit.clone(), v8.header_len), edit, "header v1 has no tagged fields");
        let v9 = produce(9, &TOPICS[..1], 10);
        let edit = v9.edit(usize::MAX, GROW).unwrap().unwrap();
        let mut tagged = edit.clone();
        tagged.data[4 + v9.header_len - 1] = 1; // a header that already carries tagged fields
        assert_eq!(pad_request_header(tagged.clone(), v9.header_len), tagged);
        assert_eq!(pad_request_header(edit.clone(), v9.header_len + 1), edit, "header length disagrees");
        let short = PrefixEdit { consumed: 3, data: vec![0, 0, 0] };
        assert_eq!(pad_request_header(short.clone(), 20), short);
    }

    #[test]
    fn name_edit_no_change_is_no_edit() {
        for frame in all_frames(10) {
            assert_eq!(frame.check(KEEP), None);
            assert_eq!(frame.check(NONE), None);
        }
        let empty = produce(9, &[""], 10);
        assert_eq!(empty.check(GROW).unwrap().consumed, find(&empty.frame, "team-a.tx"), "empty topic name kept");
    }

    #[test]
    fn name_edit_unsupported_versions() {
        for version in [-1, 0, 1, 2, 13, 14, i16::MAX] {
            assert_eq!(produce_request(&[0; 64], 60, 10, version, &mut |k, n| GROW(k, n)), Err(EditError::Unsupported));
        }
        for version in [-1, 0, 3, 13, 18] {
            assert_eq!(fetch_response(&[0; 64], 60, 4, version, &mut |k, n| GROW(k, n)), Err(EditError::Unsupported));
        }
    }

    #[test]
    fn name_edit_malformed() {
        let f = produce(3, &["topic"], 0);
        let at = find(&f.frame, "team-a.tx") - "team-a.tx".len() - 2;
        let mut bad = f.frame.to_vec();
        bad[at..at + 2].copy_from_slice(&(-2i16).to_be_bytes());
        assert_eq!(
            produce_request(&bad, f.body_len(), f.header_len, 3, &mut |k, n| GROW(k, n)),
            Err(EditError::Malformed("negative length"))
        );
        bad[at..at + 2].copy_from_slice(&(i16::MAX).to_be_bytes());
        assert_eq!(
            produce_request(&bad, f.body_len(), f.header_len, 3, &mut |k, n| GROW(k, n)),
            Err(EditError::Malformed("field past the frame end"))
        );
        assert_eq!(
            f.edit(usize::MAX, |_, _| Some(String::new())),
            Ok(f.check(|_, _| Some(String::new()))),
            "empty new names are Kafka's concern"
        );
        assert_eq!(
            produce_request(&f.frame, f.body_len(), 1 << 20, 3, &mut |k, n| GROW(k, n)),
            Err(EditError::Malformed("header past the frame end"))
        );
        let varint = [0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert_eq!(produce_request(&varint, 9, 0, 9, &mut |k, n| GROW(k, n)), Err(EditError::Malformed("varint longer than 32 bits")));
        let null_topics = [0, 0, 0, 9, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(produce_request(&null_topics, 12, 0, 3, &mut |k, n| GROW(k, n)), Err(EditError::Malformed("null array")));
    }

    #[test]
    fn name_edit_never_panics() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 96) as usize;
            let frame: Vec<u8> = (0..len).map(|_| if next() % 3 == 0 { 0 } else { next() as u8 }).collect();
            let body_len = if next() % 2 == 0 { len.saturating_sub(4) as u32 } else { next() as u32 };
            let (header_len, version) = ((next() % 24) as usize, (next() % 16) as i16 - 1);
            let _ = produce_request(&frame, body_len, header_len, version, &mut |k, n| GROW(k, n));
            let _ = fetch_response(&frame, body_len, header_len, version, &mut |k, n| GROW(k, n));
            let _ = names_end(&frame, body_len, header_len, version, next() % 2 == 0);
            let _ = pad_request_header(PrefixEdit { consumed: (next() % 128) as usize, data: frame }, header_len);
        }
        for frame in [produce(3, &TOPICS, 4), produce(12, &TOPICS, 4), fetch(7, &TOPICS, 4), fetch(12, &TOPICS, 4)] {
            for at in 0..frame.frame.len() {
                for byte in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut bytes = frame.frame.to_vec();
                    bytes[at] = byte;
                    let f = Frame { frame: bytes.into(), ..frame };
                    let _ = f.edit(usize::MAX, GROW);
                }
            }
        }
    }
}
