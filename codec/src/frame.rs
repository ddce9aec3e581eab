//! Incremental Kafka frame splitting.
//!
//! A Kafka connection carries frames: a 4-byte big-endian size, then that many bytes. Envoy hands
//! the filter the stream in chunks of any size, so a frame may span many chunks and a chunk may
//! hold many frames (pipelining). [`FrameSplitter`] keeps the state between chunks.
//!
//! The splitter never asks for more bytes than its consumer needs: it reads the size prefix, then
//! either the first `prefix_len` bytes of the frame (enough for the request header) or, when the
//! consumer asks for it, the whole frame; everything else is skipped by arithmetic. Reads go through
//! [`ChunkSource`], which in the Wasm filter maps to Envoy's `get_buffer(start, len)`, so record
//! payloads are never copied into the VM.

use bytes::Bytes;

use crate::scan::{BodyScan, Need, ScanError, Scanned};

/// The broker's default `socket.request.max.bytes`: 100 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 100 * 1024 * 1024;

/// Default number of body bytes read at the start of each frame: covers a request header with a
/// client id of up to ~500 bytes and the first body fields (Produce's transactional id and acks).
pub const DEFAULT_PREFIX_LEN: usize = 512;

/// Where the splitter reads bytes from: the chunk of the stream currently being processed.
pub trait ChunkSource {
    /// Appends bytes `[start, start + len)` of the current chunk to `out`. Returns `false` if they
    /// cannot be read; the splitter then stops with [`FrameError::SourceFailed`].
    fn read_into(&mut self, start: usize, len: usize, out: &mut Vec<u8>) -> bool;
}

/// A [`ChunkSource`] over an in-memory slice: for native tests, fuzzing and benchmarks.
#[derive(Debug, Clone, Copy)]
pub struct SliceSource<'a>(pub &'a [u8]);

impl ChunkSource for SliceSource<'_> {
    fn read_into(&mut self, start: usize, len: usize, out: &mut Vec<u8>) -> bool {
        match start.checked_add(len).and_then(|end| self.0.get(start..end)) {
            Some(bytes) => {
                out.extend_from_slice(bytes);
                true
            }
            None => false,
        }
    }
}

/// Limits of one direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitterConfig {
    /// Frames whose size prefix exceeds this are an error ([`FrameError::TooLarge`]).
    pub max_frame_size: u32,
    /// Frames whose size prefix is below this cannot hold a header ([`FrameError::TooSmall`]):
    /// 8 for requests (api key, version, correlation id), 4 for responses (correlation id).
    pub min_frame_size: u32,
    /// Body bytes read at the start of every frame and handed to the consumer.
    pub prefix_len: usize,
}

impl SplitterConfig {
    /// Limits for the client-to-broker direction.
    pub fn requests(max_frame_size: u32) -> Self {
        SplitterConfig { max_frame_size, min_frame_size: 8, prefix_len: DEFAULT_PREFIX_LEN }
    }

    /// Limits for the broker-to-client direction.
    pub fn responses(max_frame_size: u32) -> Self {
        SplitterConfig { max_frame_size, min_frame_size: 4, prefix_len: DEFAULT_PREFIX_LEN }
    }
}

/// The start of a frame: its size and its first bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameStart {
    /// Zero-based position of this frame on its direction of the connection.
    pub index: u64,
    /// Stream offset of the frame's size prefix: bytes of this direction before the frame. With
    /// the body length it places the frame in the stream, for filters that edit or hold it.
    pub offset: u64,
    /// The body size from the size prefix (the prefix itself excluded).
    pub body_len: u32,
    /// The first `min(body_len, prefix_len)` body bytes.
    pub prefix: Bytes,
}

impl FrameStart {
    /// Whether the prefix holds the whole frame body.
    pub fn is_whole(&self) -> bool {
        self.prefix.len() == self.body_len as usize
    }
}

/// Why the splitter stopped. After an error it ignores the rest of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The size prefix exceeds the configured maximum. On the first frame of a connection this
    /// usually means the stream is not Kafka (a TLS ClientHello reads as ~352 MiB).
    TooLarge { index: u64, size: u32, size_bytes: [u8; 4] },
    /// The size prefix is negative or too small to hold a header.
    TooSmall { index: u64, size: i32, size_bytes: [u8; 4] },
    /// The chunk source could not provide bytes it should hold.
    SourceFailed,
}

/// What the consumer wants from a frame once it has seen its start.
#[derive(Debug)]
pub enum Disposition {
    /// Skip the rest of the frame without reading it.
    Skip,
    /// Read the whole frame and hand it over as [`FrameEvent::Complete`]. Only for frames the
    /// consumer must decode fully; the caller bounds the size it captures.
    Capture,
    /// Walk the rest of the frame with a structural scan that reads only the bytes it asks for
    /// and skips the rest (record payloads); the result comes as [`FrameEvent::Scanned`].
    Scan(Box<BodyScan>),
    /// Stop framing this stream (it is not Kafka): every further byte is ignored.
    Stop,
}

/// What the splitter reports while it walks a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEvent {
    /// A frame's size and first bytes are known. The handler's return value decides the rest.
    Start(FrameStart),
    /// A captured frame is complete: the whole body (size prefix excluded).
    Complete { index: u64, body: Bytes },
    /// A scanned frame's structure, known once the scan finished (possibly before the frame's
    /// last byte, which is then skipped).
    Scanned { index: u64, result: Result<Scanned, ScanError> },
    /// The stream cannot be framed any further.
    Error(FrameError),
}

#[derive(Debug)]
enum State {
    /// Reading the 4-byte size prefix, `have` bytes of it so far.
    Size { buf: [u8; 4], have: usize },
    /// Reading the prefix of a frame body.
    Prefix { body_len: u32, buf: Vec<u8>, want: usize },
    /// Reading a captured frame body.
    Capture { body_len: u32, buf: Vec<u8> },
    /// Skipping `remaining` bytes of a frame body.
    Skip { remaining: u64 },
    /// Scanning a frame body; `remaining` bytes of the frame have not passed yet.
    Scan { index: u64, remaining: u64, scan: Box<BodyScan> },
    /// Framing was lost or abandoned: every further byte is ignored.
    Stopped,
}

/// Largest scratch buffer a splitter keeps between reads.
const SCRATCH_KEPT: usize = 256;

/// Splits one direction of a connection into frames. See the module documentation.
#[derive(Debug)]
pub struct FrameSplitter {
    config: SplitterConfig,
    state: State,
    next_index: u64,
    /// Stream offset of the first byte of the chunk being pushed.
    chunk_offset: u64,
    /// Stream offset of the current frame's size prefix.
    frame_offset: u64,
    /// Bytes of a size prefix or a scan's field, read here and copied on: kept between reads so
    /// they do not allocate for every frame.
    scratch: Vec<u8>,
}

impl FrameSplitter {
    /// A splitter at the start of a stream.
    pub fn new(config: SplitterConfig) -> Self {
        FrameSplitter { config, state: State::Size { buf: [0; 4], have: 0 }, next_index: 0, chunk_offset: 0, frame_offset: 0, scratch: Vec::new() }
    }

    /// Stops framing: every further byte is ignored (the stream passes through untouched).
    pub fn stop(&mut self) {
        self.state = State::Stopped;
    }

    /// Changes the smallest frame accepted from the next size prefix on. Raw SASL tokens (after a
    /// v0 `SaslHandshake`) are size-prefixed but carry no header, and may be empty.
    pub fn set_min_frame_size(&mut self, min_frame_size: u32) {
        self.config.min_frame_size = min_frame_size;
    }

    /// Whether framing has stopped, after an error or [`FrameSplitter::stop`].
    pub fn is_stopped(&self) -> bool {
        matches!(self.state, State::Stopped)
    }

    /// Whether the splitter sits exactly between two frames.
    pub fn at_frame_boundary(&self) -> bool {
        matches!(self.state, State::Size { have: 0, .. })
    }

    /// Number of frames whose start has been seen.
    pub fn frames_started(&self) -> u64 {
        self.next_index
    }

    /// The stream offset of a frame whose size or first bytes are partly read, its
    /// [`FrameEvent::Start`] not reported yet. A filter that may edit frames holds such bytes: it
    /// cannot know yet what the frame is.
    pub fn pending_start(&self) -> Option<u64> {
        match &self.state {
            State::Size { have, .. } if *have > 0 => Some(self.chunk_offset.saturating_sub(*have as u64)),
            State::Prefix { .. } => Some(self.frame_offset),
            _ => None,
        }
    }

    /// Stream offset of the next byte the splitter will consume: bytes pushed so far.
    pub fn stream_offset(&self) -> u64 {
        self.chunk_offset
    }

    /// Walks the `chunk_len` bytes of the next chunk, calling `handler` for every event. The
    /// handler's return value matters only for [`FrameEvent::Start`].
    pub fn push<S, H>(&mut self, source: &mut S, chunk_len: usize, mut handler: H)
    where
        S: ChunkSource + ?Sized,
        H: FnMut(FrameEvent) -> Disposition,
    {
        let base = self.chunk_offset;
        // Every byte of the chunk is consumed, whatever state the walk ends in.
        self.chunk_offset = base.saturating_add(chunk_len as u64);
        let mut pos = 0usize;
        while pos < chunk_len {
            let available = chunk_len - pos;
            match &mut self.state {
                State::Stopped => return,
                State::Scan { remaining, scan, .. } => {
                    scan.set_frame_left(*remaining);
                    match scan.need() {
                        Need::Done => {}
                        Need::Read(n) => {
                            let k = n.min(available).min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                            self.scratch.clear();
                            if !source.read_into(pos, k, &mut self.scratch) {
                                self.fail(FrameError::SourceFailed, &mut handler);
                                return;
                            }
                            scan.supply(&self.scratch);
                            if self.scratch.capacity() > SCRATCH_KEPT {
                                // A long field (a topic name can take 32 KiB) is not kept per connection.
                                self.scratch = Vec::new();
                            }
                            *remaining -= k as u64;
                            pos += k;
                        }
                        Need::Skip(n) => {
                            let k = n.min(available as u64).min(*remaining);
                            scan.skipped(k);
                            *remaining -= k;
                            pos += k as usize;
                        }
                    }
                    self.settle_scan(&mut handler);
                }
                State::Skip { remaining } => {
                    let n = usize::try_from(*remaining).unwrap_or(usize::MAX).min(available);
                    *remaining -= n as u64;
                    pos += n;
                    if *remaining == 0 {
                        self.state = State::Size { buf: [0; 4], have: 0 };
                    }
                }
                State::Size { buf, have } => {
                    let n = (4 - *have).min(available);
                    self.scratch.clear();
                    if !source.read_into(pos, n, &mut self.scratch) || self.scratch.len() != n {
                        self.fail(FrameError::SourceFailed, &mut handler);
                        return;
                    }
                    for (slot, byte) in buf.iter_mut().skip(*have).zip(&self.scratch) {
                        *slot = *byte;
                    }
                    *have += n;
                    pos += n;
                    if *have == 4 {
                        let size_bytes = *buf;
                        self.frame_offset = (base + pos as u64).saturating_sub(4);
                        self.start_body(size_bytes, &mut handler);
                    }
                }
                State::Prefix { body_len, buf, want } => {
                    let n = (*want - buf.len()).min(available);
                    if !source.read_into(pos, n, buf) {
                        self.fail(FrameError::SourceFailed, &mut handler);
                        return;
                    }
                    pos += n;
                    if buf.len() == *want {
                        let body_len = *body_len;
                        let prefix = Bytes::from(std::mem::take(buf));
                        self.prefix_done(body_len, prefix, &mut handler);
                    }
                }
                State::Capture { body_len, buf } => {
                    let want = *body_len as usize;
                    let n = want.saturating_sub(buf.len()).min(available);
                    if !source.read_into(pos, n, buf) {
                        self.fail(FrameError::SourceFailed, &mut handler);
                        return;
                    }
                    pos += n;
                    if buf.len() >= want {
                        let body = Bytes::from(std::mem::take(buf));
                        let index = self.next_index.saturating_sub(1);
                        self.state = State::Size { buf: [0; 4], have: 0 };
                        handler(FrameEvent::Complete { index, body });
                    }
                }
            }
        }
    }

    /// Emits a finished scan's result and moves on: to the next frame when the scan's frame has
    /// passed, else to skipping its rest. A frame that ends before its scan finishes ends the scan
    /// as truncated.
    fn settle_scan<H: FnMut(FrameEvent) -> Disposition>(&mut self, handler: &mut H) {
        let State::Scan { index, remaining, scan } = &mut self.state else { return };
        if *remaining == 0 {
            scan.end_of_frame();
        }
        scan.set_frame_left(*remaining);
        if scan.need() != Need::Done {
            return;
        }
        let (index, remaining) = (*index, *remaining);
        let result = scan.take_result().unwrap_or(Err(ScanError::Truncated));
        self.state = if remaining == 0 { State::Size { buf: [0; 4], have: 0 } } else { State::Skip { remaining } };
        handler(FrameEvent::Scanned { index, result });
    }

    fn fail<H: FnMut(FrameEvent) -> Disposition>(&mut self, error: FrameError, handler: &mut H) {
        self.state = State::Stopped;
        handler(FrameEvent::Error(error));
    }

    fn start_body<H: FnMut(FrameEvent) -> Disposition>(&mut self, size_bytes: [u8; 4], handler: &mut H) {
        let index = self.next_index;
        let size = i32::from_be_bytes(size_bytes);
        if size < 0 || (size as u32) < self.config.min_frame_size {
            self.fail(FrameError::TooSmall { index, size, size_bytes }, handler);
            return;
        }
        let body_len = size as u32;
        if body_len > self.config.max_frame_size {
            self.fail(FrameError::TooLarge { index, size: body_len, size_bytes }, handler);
            return;
        }
        let want = (body_len as usize).min(self.config.prefix_len);
        self.state = State::Prefix { body_len, buf: Vec::with_capacity(want), want };
        if want == 0 {
            self.prefix_done(body_len, Bytes::new(), handler);
        }
    }

    fn prefix_done<H: FnMut(FrameEvent) -> Disposition>(&mut self, body_len: u32, prefix: Bytes, handler: &mut H) {
        let index = self.next_index;
        self.next_index += 1;
        let start = FrameStart { index, offset: self.frame_offset, body_len, prefix: prefix.clone() };
        let whole = start.is_whole();
        match handler(FrameEvent::Start(start)) {
            Disposition::Stop => self.state = State::Stopped,
            Disposition::Capture if whole => {
                self.state = State::Size { buf: [0; 4], have: 0 };
                handler(FrameEvent::Complete { index, body: prefix });
            }
            Disposition::Capture => {
                let mut buf = Vec::with_capacity(body_len as usize);
                buf.extend_from_slice(&prefix);
                self.state = State::Capture { body_len, buf };
            }
            Disposition::Scan(scan) => {
                let remaining = u64::from(body_len).saturating_sub(prefix.len() as u64);
                self.state = State::Scan { index, remaining, scan };
                self.settle_scan(handler);
            }
            Disposition::Skip => {
                let remaining = u64::from(body_len).saturating_sub(prefix.len() as u64);
                self.state = if remaining == 0 {
                    State::Size { buf: [0; 4], have: 0 }
                } else {
                    State::Skip { remaining }
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiKey;

    /// A Produce v9 request frame (size prefix included) whose one topic has a `name_len`-byte
    /// name and one partition (3) without records, and its header's length.
    fn produce_with_long_topic(name_len: usize) -> (Bytes, usize) {
        use crate::{body, header};
        use kafka_protocol::messages::{produce_request, ProduceRequest, RequestHeader, RequestKind, TopicName};
        use kafka_protocol::protocol::StrBytes;
        let topic = produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string("t".repeat(name_len))))
            .with_partition_data(vec![produce_request::PartitionProduceData::default().with_index(3)]);
        let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![topic]);
        let request_header = RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(9)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("c")));
        let frame = body::encode_request(&request_header, &RequestKind::Produce(request)).unwrap();
        let header_len = header::decode_request_header(&frame.slice(4..), true).unwrap().header_len.unwrap();
        (frame, header_len)
    }

    #[test]
    fn a_field_spanning_the_prefix_end_is_read_whole_and_not_kept_as_scratch() {
        let (frame, header_len) = produce_with_long_topic(4000);
        let mut splitter = FrameSplitter::new(SplitterConfig::requests(DEFAULT_MAX_FRAME_SIZE));
        let mut names = Vec::new();
        splitter.push(&mut SliceSource(&frame), frame.len(), |event| match event {
            FrameEvent::Start(start) => {
                Disposition::Scan(Box::new(BodyScan::new(ApiKey::Produce, 9, true, &start.prefix, header_len)))
            }
            FrameEvent::Scanned { result: Ok(Scanned::Produce(p)), .. } => {
                names.extend(p.topics.into_iter().map(|t| (t.name, t.partitions.iter().map(|p| p.partition).collect::<Vec<_>>())));
                Disposition::Skip
            }
            _ => Disposition::Skip,
        });
        // The name spans the end of the prefix: its start was in hand, the rest read for the scan.
        assert_eq!(names, vec![("t".repeat(4000), vec![3])]);
        assert!(splitter.scratch.capacity() < 1000, "kept {} bytes of a 4000-byte name", splitter.scratch.capacity());
        // A size prefix read afterwards reuses the scratch buffer rather than allocating.
        splitter.push(&mut SliceSource(&frame[..4]), 4, |_| Disposition::Skip);
        assert!(splitter.scratch.capacity() >= 4);
    }
}
