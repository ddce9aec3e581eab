//! Streaming structural scan of record-carrying frames: Produce requests and Fetch responses.
//!
//! These frames are mostly record payload. The scan walks their structure as the bytes pass,
//! reading only structural fields (topic, partition, offsets, error codes) and the header of each
//! record batch, and *skipping* everything else: the splitter never reads skipped bytes from
//! Envoy's buffer, so payloads are never copied into the VM and no frame has to be held.
//!
//! The parsers are written as ordinary sequential `async fn`s over a [`Reader`] that asks for
//! "the next n bytes" or "skip n bytes". [`BodyScan`] polls the future with a no-op waker; when it
//! is pending, [`BodyScan::need`] says what the parser waits for, and the splitter supplies it
//! from whatever chunks arrive. So a parse can stop at any byte boundary and resume on the next
//! chunk without the parser code knowing.
//!
//! Most Produce requests show all of their structure in their first bytes (the splitter's frame
//! prefix): a producer's request carries one batch per partition, and every batch header but the
//! last batch's records is near the frame's start. Such a request is read from those bytes at once
//! by [`prefix`], one straight pass over a slice, and the scan is done at the frame's start: the
//! same result as the streaming parser's (fuzzed against it), from much less code, which is what a
//! callback whose code is cold pays for, and the rest of the frame is only skipped.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

use crate::records::{self, BatchHeader, RecordSetSummary, BATCH_HEADER_LEN, BATCH_PREFIX_LEN};

pub mod prefix;

/// What a scan waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The next `n` bytes of the frame body.
    Read(usize),
    /// Skip the next `n` bytes without reading them.
    Skip(u64),
    /// The scan is over (result ready); the rest of the frame can be skipped.
    Done,
}

/// Why a scan stopped before the end of the structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// The frame ended inside the structure.
    Truncated,
    /// A length or count no valid frame has (negative, or past the frame end).
    Malformed(&'static str),
    /// This API or version has no scanner.
    Unsupported,
}

/// Records of one partition, from the batch headers alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionRecords {
    pub partition: i32,
    /// Fetch responses only.
    pub error_code: i16,
    /// Fetch responses only (-1 otherwise).
    pub high_watermark: i64,
    /// Size of the `records` field (0 when null).
    pub records_len: u64,
    pub records: RecordSetSummary,
    /// Base offset of the first complete batch, if any.
    pub first_offset: Option<i64>,
    /// Last offset of the last complete batch, if any.
    pub last_offset: Option<i64>,
    /// Whether any complete batch was written by an idempotent or transactional producer.
    pub has_producer_id: bool,
    /// The header of the first complete batch: in a Fetch response the only one that may hold
    /// records below the fetch offset.
    pub first_batch: Option<BatchHeader>,
}

impl PartitionRecords {
    /// Records in complete batches at offsets `>= offset`: a Fetch returns the whole batch holding
    /// the fetch offset, whose earlier records the consumer drops. Exact for batches without
    /// offset gaps (compacted batches: an upper bound).
    pub fn records_from(&self, offset: i64) -> u64 {
        let before = self
            .first_batch
            .map(|first| u64::from(first.record_count().saturating_sub(records::counted_records(&first, offset))))
            .unwrap_or(0);
        self.records.records.saturating_sub(before)
    }
}

/// One topic of a Produce request or Fetch response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicRecords {
    /// The topic name; empty where the version names topics by id.
    pub name: String,
    /// The topic id (Produce v13+, Fetch v13+).
    pub topic_id: Option<[u8; 16]>,
    pub partitions: Vec<PartitionRecords>,
}

/// What a Produce request carries, payloads unread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceSummary {
    pub transactional_id: Option<String>,
    pub acks: i16,
    pub timeout_ms: i32,
    pub topics: Vec<TopicRecords>,
}

/// What a Fetch response carries, payloads unread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchSummary {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub session_id: i32,
    pub topics: Vec<TopicRecords>,
}

/// The result of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanned {
    Produce(ProduceSummary),
    Fetch(FetchSummary),
}

impl Scanned {
    /// Records in complete batches across all partitions.
    pub fn total_records(&self) -> u64 {
        self.topics().iter().flat_map(|t| &t.partitions).map(|p| p.records.records).sum()
    }

    pub fn topics(&self) -> &[TopicRecords] {
        match self {
            Scanned::Produce(p) => &p.topics,
            Scanned::Fetch(f) => &f.topics,
        }
    }
}

/// Whether the scanner handles this API and version in this direction.
pub fn supports(key: ApiKey, version: i16, request: bool) -> bool {
    match (key, request) {
        (ApiKey::Produce, true) => (3..=13).contains(&version),
        (ApiKey::Fetch, false) => (4..=18).contains(&version),
        _ => false,
    }
}

#[derive(Debug, Default)]
struct Pipe {
    /// The frame prefix the splitter read (after the header), shared rather than copied. While it
    /// holds unread bytes they are the next ones and `tail` is empty.
    head: Bytes,
    /// Bytes supplied later ([`BodyScan::supply`]), read once `head` is.
    tail: Vec<u8>,
    /// Read position in `head` while it is not empty, else in `tail`.
    pos: usize,
    /// Bytes the parser asked to skip that are not in the pipe.
    skip: u64,
    /// What the parser waits for.
    need: Option<Need>,
    /// The frame ended: no more bytes will come.
    eof: bool,
    /// Bytes of the frame still to come after `data`, where the splitter said
    /// ([`BodyScan::set_frame_left`]).
    frame_left: Option<u64>,
}

impl Pipe {
    /// The bytes in the pipe not read yet.
    fn unread(&self) -> &[u8] {
        let data = if self.head.is_empty() { &self.tail[..] } else { &self.head[..] };
        data.get(self.pos..).unwrap_or_default()
    }

    fn available(&self) -> usize {
        self.unread().len()
    }

    /// Marks `n` unread bytes read; a part read to its end is let go.
    fn consume(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n);
        if self.head.is_empty() {
            if self.pos >= self.tail.len() {
                self.tail.clear();
                self.pos = 0;
            }
        } else if self.pos >= self.head.len() {
            self.head = Bytes::new();
            self.pos = 0;
        }
    }

    /// Appends bytes after the unread ones.
    fn supply(&mut self, bytes: &[u8]) {
        if !self.head.is_empty() {
            // A field that spans the end of the prefix (rare): its start moves to `tail`.
            self.tail = self.unread().to_vec();
            self.head = Bytes::new();
            self.pos = 0;
        }
        self.tail.extend_from_slice(bytes);
    }

    /// Bytes of the frame the parser has not consumed, where known.
    fn left(&self) -> Option<u64> {
        let after = if self.eof { Some(0) } else { self.frame_left };
        after.map(|after| after.saturating_add(self.available() as u64))
    }
}

/// The parser's side of the pipe.
#[derive(Clone)]
pub struct Reader {
    pipe: Rc<RefCell<Pipe>>,
}

/// Takes the next `n` bytes of the pipe through `take` once they are there; otherwise records
/// what the parser waits for.
fn poll_take<T>(pipe: &RefCell<Pipe>, n: usize, take: impl FnOnce(&[u8]) -> Option<T>) -> Poll<Result<T, ScanError>> {
    let Ok(mut pipe) = pipe.try_borrow_mut() else { return Poll::Ready(Err(ScanError::Malformed("reentrant scan"))) };
    if pipe.available() >= n {
        let Some(out) = pipe.unread().get(..n).and_then(take) else { return Poll::Ready(Err(ScanError::Truncated)) };
        pipe.consume(n);
        pipe.need = None;
        return Poll::Ready(Ok(out));
    }
    if pipe.eof {
        return Poll::Ready(Err(ScanError::Truncated));
    }
    let missing = n - pipe.available();
    pipe.need = Some(Need::Read(missing));
    Poll::Pending
}

struct ReadFuture<'a> {
    pipe: &'a RefCell<Pipe>,
    n: usize,
}

impl Future for ReadFuture<'_> {
    type Output = Result<Vec<u8>, ScanError>;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        poll_take(self.pipe, self.n, |bytes| Some(bytes.to_vec()))
    }
}

/// A read of a fixed-size field, copied out of the pipe without an allocation of its own.
struct ArrayFuture<'a, const N: usize> {
    pipe: &'a RefCell<Pipe>,
}

impl<const N: usize> Future for ArrayFuture<'_, N> {
    type Output = Result<[u8; N], ScanError>;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        poll_take(self.pipe, N, |bytes| <[u8; N]>::try_from(bytes).ok())
    }
}

struct SkipFuture<'a> {
    pipe: &'a RefCell<Pipe>,
}

impl Future for SkipFuture<'_> {
    type Output = Result<(), ScanError>;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Ok(mut pipe) = self.pipe.try_borrow_mut() else { return Poll::Ready(Err(ScanError::Malformed("reentrant scan"))) };
        // First from what is buffered, then by asking the splitter to skip the rest.
        let from_buffer = usize::try_from(pipe.skip).unwrap_or(usize::MAX).min(pipe.available());
        pipe.consume(from_buffer);
        pipe.skip -= from_buffer as u64;
        if pipe.skip == 0 {
            pipe.need = None;
            return Poll::Ready(Ok(()));
        }
        if pipe.eof {
            return Poll::Ready(Err(ScanError::Truncated));
        }
        pipe.need = Some(Need::Skip(pipe.skip));
        Poll::Pending
    }
}

impl Reader {
    /// The next `n` bytes.
    pub async fn bytes(&self, n: usize) -> Result<Vec<u8>, ScanError> {
        ReadFuture { pipe: &self.pipe, n }.await
    }

    /// Skips `n` bytes.
    pub async fn skip(&self, n: u64) -> Result<(), ScanError> {
        if n == 0 {
            return Ok(());
        }
        match self.pipe.try_borrow_mut() {
            Ok(mut pipe) => pipe.skip = n,
            Err(_) => return Err(ScanError::Malformed("reentrant scan")),
        }
        SkipFuture { pipe: &self.pipe }.await
    }

    async fn array<const N: usize>(&self) -> Result<[u8; N], ScanError> {
        ArrayFuture::<N> { pipe: &self.pipe }.await
    }
    pub async fn i16(&self) -> Result<i16, ScanError> {
        Ok(i16::from_be_bytes(self.array().await?))
    }
    pub async fn i32(&self) -> Result<i32, ScanError> {
        Ok(i32::from_be_bytes(self.array().await?))
    }
    pub async fn i64(&self) -> Result<i64, ScanError> {
        Ok(i64::from_be_bytes(self.array().await?))
    }
    pub async fn uuid(&self) -> Result<[u8; 16], ScanError> {
        self.array().await
    }

    /// Kafka's unsigned varint (up to 5 bytes).
    pub async fn uvarint(&self) -> Result<u32, ScanError> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let [b] = self.array::<1>().await?;
            value |= u32::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ScanError::Malformed("varint longer than 5 bytes"))
    }

    /// Array length: int32 (-1 null) or compact uvarint (0 null); `None` for null.
    pub async fn array_len(&self, compact: bool) -> Result<Option<u32>, ScanError> {
        if compact {
            Ok(self.uvarint().await?.checked_sub(1))
        } else {
            match self.i32().await? {
                -1 => Ok(None),
                n => u32::try_from(n).map(Some).map_err(|_| ScanError::Malformed("negative array length")),
            }
        }
    }

    /// Nullable string: int16 length or compact uvarint length + 1.
    pub async fn string(&self, compact: bool) -> Result<Option<String>, ScanError> {
        let len = if compact {
            self.uvarint().await?.checked_sub(1).map(|n| n as usize)
        } else {
            match self.i16().await? {
                -1 => None,
                n => Some(usize::try_from(n).map_err(|_| ScanError::Malformed("negative string length"))?),
            }
        };
        match len {
            None => Ok(None),
            // Valid UTF-8 (every name a client sends) keeps its one allocation.
            Some(n) => Ok(Some(String::from_utf8(self.bytes(n).await?).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))),
        }
    }

    /// Nullable bytes length: int32 or compact uvarint length + 1.
    pub async fn bytes_len(&self, compact: bool) -> Result<Option<u64>, ScanError> {
        if compact {
            Ok(self.uvarint().await?.checked_sub(1).map(u64::from))
        } else {
            match self.i32().await? {
                -1 => Ok(None),
                n => u64::try_from(n).map(Some).map_err(|_| ScanError::Malformed("negative bytes length")),
            }
        }
    }

    /// Skips the `sections` tagged-field sections that close the frame (the last partition's, its
    /// topic's and the body's). When exactly `sections` unread bytes remain and they are not yet
    /// in the VM, each section is a lone empty count (a non-empty one takes at least three bytes):
    /// they are skipped, not read, which spares a read from Envoy's buffer per frame whose end
    /// is the end of a chunk. Only a frame malformed at its last bytes passes the scan this way.
    pub async fn skip_closing_tagged_fields(&self, sections: u64) -> Result<(), ScanError> {
        let unread_tail = match self.pipe.try_borrow() {
            Ok(pipe) => pipe.left() == Some(sections) && (pipe.available() as u64) < sections,
            Err(_) => return Err(ScanError::Malformed("reentrant scan")),
        };
        if unread_tail {
            return self.skip(sections).await;
        }
        for _ in 0..sections {
            self.skip_tagged_fields().await?;
        }
        Ok(())
    }

    /// Skips a tagged-field section.
    pub async fn skip_tagged_fields(&self) -> Result<(), ScanError> {
        let count = self.uvarint().await?;
        for _ in 0..count {
            let _tag = self.uvarint().await?;
            let size = self.uvarint().await?;
            self.skip(u64::from(size)).await?;
        }
        Ok(())
    }

    /// Walks a `records` field of `len` bytes reading only batch headers: 17 bytes to tell the
    /// format, the rest of the header, then a skip over the batch body. Bytes that do not form
    /// a complete batch (a Fetch response may end in a truncated one) are skipped and counted as
    /// trailing.
    pub async fn record_set(&self, len: u64, into: &mut PartitionRecords) -> Result<(), ScanError> {
        const PREFIX: u64 = BATCH_PREFIX_LEN as u64;
        let mut left = len;
        while left >= PREFIX {
            let prefix = self.array::<BATCH_PREFIX_LEN>().await?;
            left -= PREFIX;
            let Some(header_len) = batch_header_len(&prefix, left, into) else { break };
            let rest = header_len - BATCH_PREFIX_LEN;
            let parsed = if header_len == BATCH_HEADER_LEN {
                // A v2 batch (nearly all): its header assembled on the stack, no allocation.
                let tail = self.array::<{ BATCH_HEADER_LEN - BATCH_PREFIX_LEN }>().await?;
                let mut header = [0u8; BATCH_HEADER_LEN];
                for (to, from) in header.iter_mut().zip(prefix.iter().chain(&tail)) {
                    *to = *from;
                }
                records::parse_batch_header(&header)
            } else {
                let mut header = prefix.to_vec();
                header.extend(self.bytes(rest).await?);
                records::parse_batch_header(&header)
            };
            left -= rest as u64;
            let Some(body) = count_batch(parsed, header_len, left, into) else { break };
            self.skip(body).await?;
            left -= body;
        }
        into.records.trailing_bytes = len.saturating_sub(into.records.bytes);
        self.skip(left).await
    }
}

/// The header length of the batch whose first [`BATCH_PREFIX_LEN`] bytes are `prefix`, if the
/// rest of its header lies within the `left` bytes of its record set after them; `None` ends the
/// walk of the record set (an unknown format is recorded in `into`).
fn batch_header_len(prefix: &[u8; BATCH_PREFIX_LEN], left: u64, into: &mut PartitionRecords) -> Option<usize> {
    match records::header_len_for(prefix) {
        Ok(n) if (n.saturating_sub(BATCH_PREFIX_LEN) as u64) <= left => Some(n.max(BATCH_PREFIX_LEN)),
        Ok(_) => None,
        Err(e) => {
            into.records.error = Some(e);
            None
        }
    }
}

/// Counts a parsed batch header into `into` if the batch's body lies within the `left` bytes of
/// its record set after the header, and returns the body's length (bytes to skip); `None` ends
/// the walk of the record set (a header that did not parse is recorded in `into`).
fn count_batch(parsed: Result<BatchHeader, records::RecordsError>, header_len: usize, left: u64, into: &mut PartitionRecords) -> Option<u64> {
    match parsed {
        Ok(batch) => {
            let body = batch.total_len().saturating_sub(header_len as u64);
            (body <= left).then(|| {
                add_batch(into, &batch);
                body
            })
        }
        Err(e) => {
            into.records.error = Some(e);
            None
        }
    }
}

fn add_batch(into: &mut PartitionRecords, batch: &BatchHeader) {
    into.records.add_batch(batch, i64::MIN);
    into.first_offset.get_or_insert(batch.base_offset());
    into.first_batch.get_or_insert(*batch);
    into.last_offset = Some(batch.last_offset());
    if let BatchHeader::V2(h) = batch {
        into.has_producer_id |= h.has_producer_id();
    }
}

/// The topic array shared by Produce requests and Fetch responses: topic (name, or id from v13),
/// then partitions, each starting with fields read by `partition_head`, then a `records` field
/// walked by [`Reader::record_set`], then (flexible versions) tagged fields.
async fn topics<F, Fut>(r: &Reader, version: i16, flexible: bool, mut partition_head: F) -> Result<Vec<TopicRecords>, ScanError>
where
    F: FnMut(Reader) -> Fut,
    Fut: Future<Output = Result<PartitionRecords, ScanError>>,
{
    let mut topics = Vec::new();
    // Set once the last partition's, topic's and body's tagged fields are past.
    let mut closed = false;
    let topic_count = r.array_len(flexible).await?.unwrap_or(0);
    for t in 0..topic_count {
        let mut topic = TopicRecords::default();
        if version >= 13 {
            topic.topic_id = Some(r.uuid().await?);
        } else {
            topic.name = r.string(flexible).await?.unwrap_or_default();
        }
        let partition_count = r.array_len(flexible).await?.unwrap_or(0);
        for p in 0..partition_count {
            let mut partition = partition_head(r.clone()).await?;
            if let Some(len) = r.bytes_len(flexible).await? {
                partition.records_len = len;
                r.record_set(len, &mut partition).await?;
            }
            if flexible && t + 1 == topic_count && p + 1 == partition_count {
                r.skip_closing_tagged_fields(3).await?;
                closed = true;
            } else if flexible {
                r.skip_tagged_fields().await?;
            }
            topic.partitions.push(partition);
        }
        if flexible && !closed {
            r.skip_tagged_fields().await?;
        }
        topics.push(topic);
    }
    if flexible && !closed {
        r.skip_tagged_fields().await?;
    }
    Ok(topics)
}

/// Produce request body (after the request header), versions 3–13.
async fn produce_request(r: Reader, version: i16) -> Result<Scanned, ScanError> {
    let flexible = version >= 9;
    let transactional_id = r.string(flexible).await?;
    let acks = r.i16().await?;
    let timeout_ms = r.i32().await?;
    let topics = topics(&r, version, flexible, |r| async move {
        Ok(PartitionRecords { partition: r.i32().await?, high_watermark: -1, ..Default::default() })
    })
    .await?;
    Ok(Scanned::Produce(ProduceSummary { transactional_id, acks, timeout_ms, topics }))
}

/// Fetch response body (after the response header), versions 4–18.
async fn fetch_response(r: Reader, version: i16) -> Result<Scanned, ScanError> {
    let flexible = version >= 12;
    let throttle_time_ms = r.i32().await?;
    let (error_code, session_id) = if version >= 7 { (r.i16().await?, r.i32().await?) } else { (0, 0) };
    let topics = topics(&r, version, flexible, |r| async move {
        let mut p = PartitionRecords { partition: r.i32().await?, ..Default::default() };
        p.error_code = r.i16().await?;
        p.high_watermark = r.i64().await?;
        let _last_stable_offset = r.i64().await?;
        if version >= 5 {
            let _log_start_offset = r.i64().await?;
        }
        for _ in 0..r.array_len(flexible).await?.unwrap_or(0) {
            let _producer_id = r.i64().await?;
            let _first_offset = r.i64().await?;
            if flexible {
                r.skip_tagged_fields().await?;
            }
        }
        if version >= 11 {
            let _preferred_read_replica = r.i32().await?;
        }
        Ok(p)
    })
    .await?;
    Ok(Scanned::Fetch(FetchSummary { throttle_time_ms, error_code, session_id, topics }))
}

type ScanFuture = Pin<Box<dyn Future<Output = Result<Scanned, ScanError>>>>;

/// Where a [`BodyScan`] stands: one state at a time, so no combination of them can be held.
enum ScanState {
    /// Not started: the API and version to scan, until the first [`BodyScan::need`] starts the
    /// scan (the frame's length is known by then).
    Unstarted(ApiKey, i16),
    /// The streaming parser, polled as bytes arrive.
    Streaming(ScanFuture),
    /// Finished: the result until [`BodyScan::take_result`] takes it.
    Done(Option<Result<Scanned, ScanError>>),
}

/// A scan in progress over one frame body. See the module documentation.
pub struct BodyScan {
    pipe: Rc<RefCell<Pipe>>,
    /// Whether a Produce request may be read from its first bytes alone ([`prefix`]).
    shortcut: bool,
    state: ScanState,
}

impl std::fmt::Debug for BodyScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            ScanState::Unstarted(key, version) => format!("unstarted {key:?} v{version}"),
            ScanState::Streaming(_) => "streaming".to_string(),
            ScanState::Done(result) => format!("done {result:?}"),
        };
        f.debug_struct("BodyScan").field("state", &state).finish_non_exhaustive()
    }
}

impl BodyScan {
    /// Starts a scan of a Produce request or Fetch response body: `prefix` holds the frame's first
    /// bytes already read, of which the first `header_len` are its header. The scan shares them
    /// (no copy).
    pub fn new(key: ApiKey, version: i16, request: bool, prefix: &Bytes, header_len: usize) -> Self {
        let head = if header_len <= prefix.len() { prefix.slice(header_len..) } else { Bytes::new() };
        let pipe = Rc::new(RefCell::new(Pipe { head, ..Pipe::default() }));
        let state = if supports(key, version, request) {
            ScanState::Unstarted(key, version)
        } else {
            ScanState::Done(Some(Err(ScanError::Unsupported)))
        };
        BodyScan { pipe, shortcut: true, state }
    }

    /// The same scan by the streaming parser alone, never from the first bytes (tests and fuzzing
    /// compare the two).
    pub fn streaming_only(mut self) -> Self {
        self.shortcut = false;
        self
    }

    /// Starts the scan: a Produce request whose first bytes show all of its structure is read
    /// from them at once, and done; any other frame gets the streaming parser.
    fn start(&self, key: ApiKey, version: i16) -> ScanState {
        if key == ApiKey::Produce && self.shortcut {
            let parsed = self.pipe.try_borrow().ok().and_then(|pipe| prefix::produce_request(pipe.unread(), pipe.left()?, version));
            if let Some((scanned, _end)) = parsed {
                // The structure lies within the frame, whose length is known: the streaming
                // parser, reading on as the rest passes, could find nothing else.
                return ScanState::Done(Some(Ok(scanned)));
            }
        }
        let reader = Reader { pipe: Rc::clone(&self.pipe) };
        ScanState::Streaming(match key {
            ApiKey::Produce => Box::pin(produce_request(reader, version)),
            _ => Box::pin(fetch_response(reader, version)),
        })
    }

    /// What the scan needs next; runs the parser as far as the bytes it has allow.
    pub fn need(&mut self) -> Need {
        if let ScanState::Unstarted(key, version) = self.state {
            self.state = self.start(key, version);
        }
        let ScanState::Streaming(future) = &mut self.state else { return Need::Done };
        let mut cx = Context::from_waker(Waker::noop());
        let result = match future.as_mut().poll(&mut cx) {
            Poll::Ready(result) => result,
            Poll::Pending => match self.pipe.try_borrow().ok().and_then(|p| p.need) {
                Some(need) => return need,
                None => Err(ScanError::Malformed("scan stalled")),
            },
        };
        self.state = ScanState::Done(Some(result));
        Need::Done
    }

    /// Supplies bytes the scan asked for with [`Need::Read`].
    pub fn supply(&mut self, bytes: &[u8]) {
        if let Ok(mut pipe) = self.pipe.try_borrow_mut() {
            pipe.supply(bytes);
        }
    }

    /// Tells the scan how many bytes of its frame are still to come after what it was given.
    pub fn set_frame_left(&mut self, n: u64) {
        if let Ok(mut pipe) = self.pipe.try_borrow_mut() {
            pipe.frame_left = Some(n);
        }
    }

    /// Reports that `n` bytes the scan asked to skip have passed.
    pub fn skipped(&mut self, n: u64) {
        if let Ok(mut pipe) = self.pipe.try_borrow_mut() {
            pipe.skip = pipe.skip.saturating_sub(n);
        }
    }

    /// The frame has ended: any further need fails as truncated.
    pub fn end_of_frame(&mut self) {
        if let Ok(mut pipe) = self.pipe.try_borrow_mut() {
            pipe.eof = true;
        }
    }

    /// The result, once [`BodyScan::need`] returned [`Need::Done`].
    pub fn take_result(&mut self) -> Option<Result<Scanned, ScanError>> {
        match &mut self.state {
            ScanState::Done(result) => result.take(),
            _ => None,
        }
    }
}

/// Scans a whole frame body held in memory (tests, benchmarks, and callers that already hold
/// the frame): `body` without its size prefix, of which the first `header_len` bytes are the
/// header. Shared, not copied.
pub fn scan_in_memory(key: ApiKey, version: i16, request: bool, body: &Bytes, header_len: usize) -> Result<Scanned, ScanError> {
    finish_in_memory(BodyScan::new(key, version, request, body, header_len))
}

/// Runs a scan created over a whole frame body to its result.
pub fn finish_in_memory(mut scan: BodyScan) -> Result<Scanned, ScanError> {
    scan.end_of_frame();
    match scan.need() {
        Need::Done => scan.take_result().unwrap_or(Err(ScanError::Truncated)),
        // With the whole body buffered and end of frame set, a parse can only finish.
        Need::Read(_) | Need::Skip(_) => Err(ScanError::Truncated),
    }
}
