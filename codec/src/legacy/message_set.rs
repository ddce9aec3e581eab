//! Legacy message sets (magic 0/1) ⇄ record batches (magic 2).
//!
//! Kafka 4.0 dropped the old message formats (KIP-724) with the old protocol versions, so a client
//! that produces with Produce v0–2 or fetches with Fetch v0–3 talks message sets to a broker that
//! only reads and writes record batches. Produce sets become one record batch
//! ([`message_set_to_batch`]); fetched batches become a set of the client's magic
//! ([`batches_to_message_set`]), the way Kafka's own broker down-converted them.
//!
//! Layouts (<https://kafka.apache.org/documentation/#messageformat>):
//!
//! - legacy message: `offset int64, message_size int32, crc uint32 (CRC32 of magic..end),
//!   magic int8, attributes int8 (bits 0-2 codec, bit 3 LogAppendTime on magic 1),
//!   [timestamp int64, magic 1 only], key bytes, value bytes`. A compressed *wrapper* holds an
//!   inner message set in its value; magic-1 inner offsets are relative (the wrapper carries the
//!   last inner record's absolute offset), magic-0 inner offsets are absolute.
//! - record batch: a 61-byte header (CRC32C of attributes..end) then records, the whole records
//!   section compressed as one stream; each record is `length varint, attributes int8,
//!   timestampDelta varlong, offsetDelta varint, key varint-bytes, value varint-bytes,
//!   headers [key varint-bytes, value varint-bytes]` (zigzag varints, -1 for null).
//!
//! Everything comes from untrusted bytes: checksums are verified, counts never size allocations
//! beyond what the input can hold, and decompression shares one [`MAX_DECOMPRESSED`] budget.

use super::compression::{compress, decompress_bounded};
use super::wire::{nullable_bytes, Writer};
use super::{LegacyError, MAX_DECOMPRESSED};
use crate::records::{parse_batch_header, BatchHeader, Compression, LegacyMessageHeader, RecordBatchHeader, RecordsError, BATCH_HEADER_LEN};
use bytes::{BufMut, Bytes};
use std::borrow::Cow;

/// Kafka's `NO_TIMESTAMP`: what a magic-0 message (which has no timestamp) carries in later formats.
pub const NO_TIMESTAMP: i64 = -1;
/// Legacy attribute bit: the timestamp is the broker's append time (magic 1).
const LEGACY_LOG_APPEND_TIME: i8 = 0x08;
/// Record batch attribute bits.
const BATCH_LOG_APPEND_TIME: i16 = 0x08;
const BATCH_TRANSACTIONAL: i16 = 0x10;
const BATCH_CONTROL: i16 = 0x20;
/// Where a legacy message's CRC32 starts (the magic byte) and a batch's CRC32C (the attributes).
const LEGACY_CRC_FROM: usize = 16;
const BATCH_CRC_FROM: usize = 21;
/// The smallest record: length, attributes, timestamp delta, offset delta, key, value, header
/// count, one byte each. Bounds the records a section of a given size can hold.
const MIN_RECORD_LEN: usize = 7;
/// Where a legacy message's key starts: offset, size, CRC, magic, attributes, (magic 1) timestamp.
/// (`records::LEGACY_V*_HEADER_LEN` count the key's length field too.)
const MESSAGE_V0_KEY_AT: usize = 18;
const MESSAGE_V1_KEY_AT: usize = 26;
/// The smallest legacy message (magic 0, null key and value).
const MIN_MESSAGE_LEN: usize = MESSAGE_V0_KEY_AT + 8;

/// What a down-conversion did, for the filter's metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DownConversion {
    /// Records written in the old format.
    pub records: u64,
    /// Records that had headers, which the old formats cannot carry (dropped).
    pub headers_dropped: u64,
    /// Records of control batches (transaction markers), which old clients never see.
    pub control_skipped: u64,
}

/// One record of a legacy message set as a reader sees it: a compressed wrapper's inner messages
/// with their absolute offsets and (for a LogAppendTime wrapper) the wrapper's timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyMessage {
    pub offset: i64,
    /// Magic 1 only; magic-0 messages have no timestamp.
    pub timestamp: Option<i64>,
    /// The timestamp is the broker's append time (magic 1 attribute bit 3).
    pub log_append_time: bool,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
}

/// One top-level message of a legacy set as it sits on the wire, its CRC verified: a compressed
/// wrapper's value is still the compressed inner set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyEntry {
    pub header: LegacyMessageHeader,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
}

/// What to do with bytes at the end of a set that do not form a whole message or batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartialTail {
    /// A Produce request's set must end on a message boundary.
    Reject,
    /// A Fetch response may end in a message or batch the broker cut at the size limit.
    Ignore,
}

/// A record header. Kafka's header keys are strings; they are kept as bytes here because the
/// conversion never looks inside them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// One record of a record batch, with its absolute offset and timestamp (`base + delta`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
}

/// A decoded record batch: its header (CRC verified) and its decompressed records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    pub header: RecordBatchHeader,
    pub records: Vec<BatchRecord>,
}

/// How [`encode_record_batch`] fills the batch header fields that records do not determine. The
/// default is what a non-idempotent producer writes: no compression, CreateTime, no producer id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    pub compression: Compression,
    /// Sets the LogAppendTime attribute bit.
    pub log_append_time: bool,
    pub transactional: bool,
    pub control: bool,
    /// The batch's max timestamp; `None` computes the largest record timestamp (a broker stamping
    /// LogAppendTime writes its append time here and leaves the records alone).
    pub max_timestamp: Option<i64>,
    pub partition_leader_epoch: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            compression: Compression::None,
            log_append_time: false,
            transactional: false,
            control: false,
            max_timestamp: None,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }
}

/// A Produce's legacy message set (magic 0 or 1, possibly compressed wrappers) → one record
/// batch (magic 2) holding the same records, compressed with the same codec.
///
/// Produce v3 takes exactly one batch per partition, so every message of the set, wrappers
/// unpacked, goes into one batch in order: offsets 0..n-1, timestamps those of magic-1 messages or
/// [`NO_TIMESTAMP`] for magic 0, no producer id. The codec is the first compressed wrapper's (a set
/// mixing codecs gets that one), LogAppendTime is kept if a magic-1 message asks for it.
/// Every CRC is checked; a partial last message, nested compression or an empty wrapper is
/// [`LegacyError::Malformed`]; a set that decompresses beyond [`MAX_DECOMPRESSED`] is
/// [`LegacyError::TooLarge`]. An empty set gives empty bytes.
pub fn message_set_to_batch(set: &[u8]) -> Result<Bytes, LegacyError> {
    if set.is_empty() {
        return Ok(Bytes::new());
    }
    let entries = read_entries(set, PartialTail::Reject)?;
    let compression = entries.iter().map(|e| e.header.compression()).find(|c| *c != Compression::None).unwrap_or(Compression::None);
    let log_append_time = entries.iter().any(|e| e.header.magic >= 1 && e.header.attributes & LEGACY_LOG_APPEND_TIME != 0);
    let mut budget = MAX_DECOMPRESSED;
    let mut messages = Vec::with_capacity(entries.len());
    for entry in entries {
        expand_entry(entry, &mut budget, &mut messages)?;
    }
    let records: Vec<BatchRecord> = messages
        .into_iter()
        .zip(0i64..)
        .map(|(m, offset)| BatchRecord { offset, timestamp: m.timestamp.unwrap_or(NO_TIMESTAMP), key: m.key, value: m.value, headers: Vec::new() })
        .collect();
    encode_record_batch(&records, &BatchOptions { compression, log_append_time, ..BatchOptions::default() })
}

/// A Fetch's records (record batches as a broker returns them) → a message set of `magic` (0 or 1).
///
/// As Kafka's broker down-converted: control batches are skipped (their records counted in
/// [`DownConversion::control_skipped`]), aborted transactional records kept (old clients read
/// uncommitted), headers dropped (counted). An uncompressed batch becomes one message per record;
/// a compressed one, one wrapper of the same codec (magic 1: inner offsets relative to the first
/// record, wrapper at the last record's offset with the max timestamp; magic 0: inner offsets
/// absolute). LogAppendTime batches give every message the batch's max timestamp and the attribute
/// bit. Legacy messages still in the log are converted to `magic` too.
///
/// A partial batch at the end (the broker's size cut) is left out. zstd cannot be expressed before
/// magic 2: the batches before the first zstd one are converted, and a zstd batch with nothing
/// before it is `Unrepresentable("zstd")` (the caller answers UNSUPPORTED_COMPRESSION_TYPE). The
/// same cut applies when the output or the decompressed data would pass [`MAX_DECOMPRESSED`]
/// (`TooLarge` if the first batch does). A CRC mismatch anywhere is [`LegacyError::Malformed`].
pub fn batches_to_message_set(records: &[u8], magic: i8) -> Result<(Bytes, DownConversion), LegacyError> {
    if !(0..=1).contains(&magic) {
        return Err(LegacyError::Unrepresentable("message sets have magic 0 or 1"));
    }
    let mut out = Writer::new();
    let mut done = DownConversion::default();
    let mut budget = MAX_DECOMPRESSED;
    let mut rest = records;
    while let Some((header, batch, next)) = next_batch(rest)? {
        rest = next;
        let (mark, before) = (out.buf.len(), done);
        let converted = match header {
            BatchHeader::V2(h) => convert_batch(batch, &h, magic, &mut budget, &mut out, &mut done),
            BatchHeader::Legacy(h) => convert_legacy(batch, h, magic, &mut budget, &mut out, &mut done),
        };
        let stop = match converted {
            Ok(Flow::Converted) if out.buf.len() <= MAX_DECOMPRESSED => continue,
            Ok(Flow::Converted) | Err(LegacyError::TooLarge) => LegacyError::TooLarge,
            Ok(Flow::Zstd) => LegacyError::Unrepresentable("zstd"),
            Err(error) => return Err(error),
        };
        if mark == 0 {
            return Err(stop);
        }
        out.buf.truncate(mark);
        done = before;
        break;
    }
    Ok((Bytes::from(out.finish()), done))
}

/// The top-level messages of a legacy set, CRCs verified, wrappers left compressed.
pub fn read_entries(set: &[u8], tail: PartialTail) -> Result<Vec<LegacyEntry>, LegacyError> {
    let mut entries = Vec::with_capacity(set.len() / MIN_MESSAGE_LEN);
    let mut rest = set;
    while let Some((header, message, next)) = next_batch(rest)? {
        let BatchHeader::Legacy(header) = header else {
            return Err(LegacyError::Malformed("record batch (magic 2) inside a legacy message set"));
        };
        entries.push(parse_entry(message, header)?);
        rest = next;
    }
    if !rest.is_empty() && tail == PartialTail::Reject {
        return Err(LegacyError::Malformed("message set ends inside a message"));
    }
    Ok(entries)
}

/// The records of a legacy set as a client reads them: wrappers decompressed (one level, all
/// sharing one [`MAX_DECOMPRESSED`] budget), inner offsets made absolute.
pub fn read_message_set(set: &[u8], tail: PartialTail) -> Result<Vec<LegacyMessage>, LegacyError> {
    let entries = read_entries(set, tail)?;
    let mut budget = MAX_DECOMPRESSED;
    let mut messages = Vec::with_capacity(entries.len());
    for entry in entries {
        expand_entry(entry, &mut budget, &mut messages)?;
    }
    Ok(messages)
}

/// Encodes `messages` as a set of `magic` (0 or 1) the way Kafka's writers did: one message each,
/// or with a codec one wrapper holding them all (magic 1: inner offsets relative to the first
/// message, the wrapper at the last one's offset and the max timestamp; magic 0: inner offsets
/// absolute). Missing timestamps are written as [`NO_TIMESTAMP`]. For tests and for translations
/// that build sets; an empty compressed set is empty bytes (a wrapper must hold something).
pub fn encode_message_set(messages: &[LegacyMessage], magic: i8, compression: Compression) -> Result<Bytes, LegacyError> {
    if !(0..=1).contains(&magic) {
        return Err(LegacyError::Unrepresentable("message sets have magic 0 or 1"));
    }
    let items: Vec<Item<'_>> = messages
        .iter()
        .map(|m| Item {
            offset: m.offset,
            timestamp: m.timestamp.unwrap_or(NO_TIMESTAMP),
            log_append_time: m.log_append_time,
            key: m.key.as_deref(),
            value: m.value.as_deref(),
        })
        .collect();
    let mut out = Writer::new();
    put_message_set(&mut out, &items, magic, compression)?;
    Ok(Bytes::from(out.finish()))
}

/// Encodes one record batch (magic 2) holding `records` in order: base offset and base timestamp
/// those of the first record, deltas from them, the records section compressed with
/// `options.compression` (snappy raw, lz4 with a correct header checksum), CRC32C computed.
/// No records, or offsets more than 2^31 apart, are [`LegacyError::Unrepresentable`].
pub fn encode_record_batch(records: &[BatchRecord], options: &BatchOptions) -> Result<Bytes, LegacyError> {
    let first = records.first().ok_or(LegacyError::Unrepresentable("a record batch without records"))?;
    let mut section = Vec::new();
    let mut max_timestamp = first.timestamp;
    let mut last_offset_delta = 0i32;
    for record in records {
        let offset_delta = record.offset.checked_sub(first.offset).and_then(|d| i32::try_from(d).ok());
        let offset_delta = offset_delta.ok_or(LegacyError::Unrepresentable("record offsets more than 2^31 apart"))?;
        let timestamp_delta = record.timestamp.checked_sub(first.timestamp).ok_or(LegacyError::Unrepresentable("record timestamps too far apart"))?;
        max_timestamp = max_timestamp.max(record.timestamp);
        last_offset_delta = offset_delta;
        put_record(&mut section, offset_delta, timestamp_delta, record)?;
    }
    let section = match options.compression {
        Compression::None => section,
        codec => compress(codec, &section, 2)?,
    };
    let mut attributes = i16::from(codec_id(options.compression)?);
    if options.log_append_time {
        attributes |= BATCH_LOG_APPEND_TIME;
    }
    if options.transactional {
        attributes |= BATCH_TRANSACTIONAL;
    }
    if options.control {
        attributes |= BATCH_CONTROL;
    }
    let too_big = LegacyError::Unrepresentable("record batch over 2 GiB");
    let batch_length = i32::try_from((BATCH_HEADER_LEN - 12).saturating_add(section.len())).map_err(|_| too_big.clone())?;
    let count = i32::try_from(records.len()).map_err(|_| too_big)?;
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN.saturating_add(section.len()));
    out.put_i64(first.offset);
    out.put_i32(batch_length);
    out.put_i32(options.partition_leader_epoch);
    out.put_i8(2);
    out.put_u32(0);
    out.put_i16(attributes);
    out.put_i32(last_offset_delta);
    out.put_i64(first.timestamp);
    out.put_i64(options.max_timestamp.unwrap_or(max_timestamp));
    out.put_i64(options.producer_id);
    out.put_i16(options.producer_epoch);
    out.put_i32(options.base_sequence);
    out.put_i32(count);
    out.extend_from_slice(&section);
    let crc = crc32c::crc32c(out.get(BATCH_CRC_FROM..).unwrap_or_default());
    patch(&mut out, 17, crc.to_be_bytes());
    Ok(Bytes::from(out))
}

/// The record batches of a `records` field (a Produce's or a Fetch's), CRC32Cs verified, records
/// decompressed (one [`MAX_DECOMPRESSED`] budget for all). A partial last batch is left out, as a
/// Fetch response may end in one; legacy messages are [`LegacyError::Malformed`] here.
pub fn read_record_batches(records: &[u8]) -> Result<Vec<RecordBatch>, LegacyError> {
    let mut batches = Vec::new();
    let mut budget = MAX_DECOMPRESSED;
    let mut rest = records;
    while let Some((header, batch, next)) = next_batch(rest)? {
        let BatchHeader::V2(header) = header else {
            return Err(LegacyError::Malformed("legacy message among record batches"));
        };
        verify_batch_crc(batch, &header)?;
        let records = decode_records(batch, &header, &mut budget)?;
        batches.push(RecordBatch { header, records });
        rest = next;
    }
    Ok(batches)
}

/// What converting one batch came to.
enum Flow {
    Converted,
    /// A zstd batch: the old formats end before it.
    Zstd,
}

/// A record about to become a legacy message.
struct Item<'a> {
    offset: i64,
    timestamp: i64,
    log_append_time: bool,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

/// A batch's header, its bytes, and the bytes after it.
type Split<'a> = (BatchHeader, &'a [u8], &'a [u8]);

/// The batch or legacy message at the start of `rest`, its bytes and what follows; `None` when
/// `rest` does not start with a whole one (empty, or cut short).
fn next_batch(rest: &[u8]) -> Result<Option<Split<'_>>, LegacyError> {
    if rest.is_empty() {
        return Ok(None);
    }
    let header = match parse_batch_header(rest) {
        Ok(header) => header,
        Err(RecordsError::Incomplete { .. }) => return Ok(None),
        Err(RecordsError::UnknownMagic(_)) => return Err(LegacyError::Malformed("unknown magic byte")),
        Err(RecordsError::BadLength(_)) => return Err(LegacyError::Malformed("length shorter than the header")),
    };
    let total = usize::try_from(header.total_len()).map_err(|_| LegacyError::Malformed("length beyond the address space"))?;
    Ok(rest.split_at_checked(total).map(|(batch, next)| (header, batch, next)))
}

/// A legacy message's key and value, after its CRC32 is checked.
fn parse_entry(message: &[u8], header: LegacyMessageHeader) -> Result<LegacyEntry, LegacyError> {
    let covered = message.get(LEGACY_CRC_FROM..).ok_or(LegacyError::Malformed("message cut short"))?;
    if crc32fast::hash(covered) != header.crc {
        return Err(LegacyError::Malformed("message CRC mismatch"));
    }
    let key_at = if header.magic >= 1 { MESSAGE_V1_KEY_AT } else { MESSAGE_V0_KEY_AT };
    let body = message.get(key_at..).ok_or(LegacyError::Malformed("message cut short"))?;
    let (body, key) = nullable_bytes(body).map_err(|_| LegacyError::Malformed("message key"))?;
    let (body, value) = nullable_bytes(body).map_err(|_| LegacyError::Malformed("message value"))?;
    if !body.is_empty() {
        return Err(LegacyError::Malformed("bytes after a message's value"));
    }
    Ok(LegacyEntry { header, key, value })
}

/// Appends the records of `entry` to `messages`: itself, or a wrapper's inner messages with
/// absolute offsets. Nested compression and empty wrappers are malformed, as in Kafka.
fn expand_entry(entry: LegacyEntry, budget: &mut usize, messages: &mut Vec<LegacyMessage>) -> Result<(), LegacyError> {
    let h = entry.header;
    let log_append_time = h.magic >= 1 && h.attributes & LEGACY_LOG_APPEND_TIME != 0;
    let codec = h.compression();
    if codec == Compression::None {
        messages.push(LegacyMessage { offset: h.offset, timestamp: h.timestamp, log_append_time, key: entry.key, value: entry.value });
        return Ok(());
    }
    let value = entry.value.ok_or(LegacyError::Malformed("compressed message without a value"))?;
    let inner = decompress_bounded(codec, &value, h.magic, *budget)?;
    *budget = budget.saturating_sub(inner.len());
    let inner = read_entries(&inner, PartialTail::Reject)?;
    let last = inner.last().ok_or(LegacyError::Malformed("compressed message without inner messages"))?.header.offset;
    messages.reserve(inner.len());
    for e in inner {
        if e.header.compression() != Compression::None {
            return Err(LegacyError::Malformed("compressed message inside a compressed message"));
        }
        // Magic 1: inner offsets count from the wrapper's, which is the last inner record's.
        let offset = if h.magic >= 1 { h.offset.checked_sub(last).and_then(|base| base.checked_add(e.header.offset)) } else { Some(e.header.offset) };
        let offset = offset.ok_or(LegacyError::Malformed("inner message offset overflows"))?;
        let (timestamp, inner_log_append_time) = if log_append_time {
            (h.timestamp, true)
        } else {
            (e.header.timestamp, e.header.magic >= 1 && e.header.attributes & LEGACY_LOG_APPEND_TIME != 0)
        };
        messages.push(LegacyMessage { offset, timestamp, log_append_time: inner_log_append_time, key: e.key, value: e.value });
    }
    Ok(())
}

fn verify_batch_crc(batch: &[u8], header: &RecordBatchHeader) -> Result<(), LegacyError> {
    let covered = batch.get(BATCH_CRC_FROM..).ok_or(LegacyError::Malformed("record batch cut short"))?;
    if crc32c::crc32c(covered) != header.crc {
        return Err(LegacyError::Malformed("record batch CRC mismatch"));
    }
    Ok(())
}

/// The records of `batch` (whose CRC is verified), decompressed within `budget`.
fn decode_records(batch: &[u8], header: &RecordBatchHeader, budget: &mut usize) -> Result<Vec<BatchRecord>, LegacyError> {
    let count = usize::try_from(header.record_count).map_err(|_| LegacyError::Malformed("negative record count"))?;
    let section = batch.get(BATCH_HEADER_LEN..).unwrap_or_default();
    let data: Cow<'_, [u8]> = match header.compression() {
        Compression::None => Cow::Borrowed(section),
        codec => {
            let data = decompress_bounded(codec, section, 2, *budget)?;
            *budget = budget.saturating_sub(data.len());
            Cow::Owned(data)
        }
    };
    let mut cursor = Cursor { rest: &data };
    let mut records = Vec::with_capacity(count.min(data.len() / MIN_RECORD_LEN));
    for _ in 0..count {
        let len = usize::try_from(cursor.varint()?).map_err(|_| LegacyError::Malformed("negative record length"))?;
        let mut record = Cursor { rest: cursor.take(len)? };
        let _attributes = record.byte()?;
        let timestamp_delta = record.varlong()?;
        let offset_delta = record.varint()?;
        let key = record.varint_bytes()?;
        let value = record.varint_bytes()?;
        let header_count = usize::try_from(record.varint()?).map_err(|_| LegacyError::Malformed("negative header count"))?;
        let mut headers = Vec::with_capacity(header_count.min(record.rest.len() / 2));
        for _ in 0..header_count {
            let key = record.varint_bytes()?.ok_or(LegacyError::Malformed("null header key"))?;
            let value = record.varint_bytes()?;
            headers.push(RecordHeader { key, value });
        }
        if !record.rest.is_empty() {
            return Err(LegacyError::Malformed("bytes after a record's headers"));
        }
        let offset = header.base_offset.checked_add(i64::from(offset_delta)).ok_or(LegacyError::Malformed("record offset overflows"))?;
        let timestamp = header.base_timestamp.checked_add(timestamp_delta).ok_or(LegacyError::Malformed("record timestamp overflows"))?;
        records.push(BatchRecord { offset, timestamp, key, value, headers });
    }
    if !cursor.rest.is_empty() {
        return Err(LegacyError::Malformed("bytes after a batch's last record"));
    }
    Ok(records)
}

/// Down-converts one record batch into `out`.
fn convert_batch(
    batch: &[u8],
    h: &RecordBatchHeader,
    magic: i8,
    budget: &mut usize,
    out: &mut Writer,
    done: &mut DownConversion,
) -> Result<Flow, LegacyError> {
    verify_batch_crc(batch, h)?;
    if h.is_control() {
        done.control_skipped = done.control_skipped.saturating_add(u64::try_from(h.record_count).unwrap_or(0));
        return Ok(Flow::Converted);
    }
    // Compaction may leave batches without records (kept for their producer state).
    if h.record_count == 0 {
        return Ok(Flow::Converted);
    }
    match h.compression() {
        Compression::Zstd => return Ok(Flow::Zstd),
        Compression::Unknown(_) => return Err(LegacyError::Malformed("record batch with an unassigned compression codec")),
        _ => {}
    }
    let records = decode_records(batch, h, budget)?;
    let log_append_time = h.is_log_append_time();
    let items: Vec<Item<'_>> = records
        .iter()
        .map(|r| Item {
            offset: r.offset,
            timestamp: if log_append_time { h.max_timestamp } else { r.timestamp },
            log_append_time,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
        })
        .collect();
    put_message_set(out, &items, magic, h.compression())?;
    let with_headers = records.iter().filter(|r| !r.headers.is_empty()).count();
    done.headers_dropped = done.headers_dropped.saturating_add(with_headers as u64);
    done.records = done.records.saturating_add(records.len() as u64);
    Ok(Flow::Converted)
}

/// Converts one legacy message found among a Fetch's batches (old data in the log) to `magic`.
fn convert_legacy(
    message: &[u8],
    h: LegacyMessageHeader,
    magic: i8,
    budget: &mut usize,
    out: &mut Writer,
    done: &mut DownConversion,
) -> Result<Flow, LegacyError> {
    let entry = parse_entry(message, h)?;
    let codec = h.compression();
    match codec {
        Compression::Zstd => return Ok(Flow::Zstd),
        Compression::Unknown(_) => return Err(LegacyError::Malformed("message with an unassigned compression codec")),
        _ => {}
    }
    let mut messages = Vec::new();
    expand_entry(entry, budget, &mut messages)?;
    let items: Vec<Item<'_>> = messages
        .iter()
        .map(|m| Item {
            offset: m.offset,
            timestamp: m.timestamp.unwrap_or(NO_TIMESTAMP),
            log_append_time: m.log_append_time,
            key: m.key.as_deref(),
            value: m.value.as_deref(),
        })
        .collect();
    put_message_set(out, &items, magic, codec)?;
    done.records = done.records.saturating_add(messages.len() as u64);
    Ok(Flow::Converted)
}

/// Writes `items` as messages of `magic`, or as one wrapper of `codec` holding them all.
fn put_message_set(out: &mut Writer, items: &[Item<'_>], magic: i8, codec: Compression) -> Result<(), LegacyError> {
    let time_type = |log_append_time: bool| if magic >= 1 && log_append_time { LEGACY_LOG_APPEND_TIME } else { 0 };
    if codec == Compression::None {
        for item in items {
            put_message(out, item.offset, magic, time_type(item.log_append_time), item.timestamp, item.key, item.value)?;
        }
        return Ok(());
    }
    let (Some(first), Some(last)) = (items.first(), items.last()) else {
        return Ok(());
    };
    let mut inner = Writer::new();
    for item in items {
        let offset = if magic >= 1 { item.offset.checked_sub(first.offset) } else { Some(item.offset) };
        let offset = offset.ok_or(LegacyError::Unrepresentable("inner offsets too far apart"))?;
        put_message(&mut inner, offset, magic, time_type(item.log_append_time), item.timestamp, item.key, item.value)?;
    }
    let value = compress(codec, &inner.buf, magic)?;
    let log_append_time = items.iter().any(|i| i.log_append_time);
    let max_timestamp = items.iter().map(|i| i.timestamp).max().unwrap_or(NO_TIMESTAMP);
    put_message(out, last.offset, magic, codec_id(codec)? | time_type(log_append_time), max_timestamp, None, Some(&value))
}

/// Writes one legacy message, its size and CRC32 filled in.
fn put_message(
    out: &mut Writer,
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<(), LegacyError> {
    let start = out.buf.len();
    out.i64(offset).i32(0).i32(0).i8(magic).i8(attributes);
    if magic >= 1 {
        out.i64(timestamp);
    }
    out.nullable_bytes(key)?.nullable_bytes(value)?;
    let size = i32::try_from(out.buf.len().saturating_sub(start).saturating_sub(12)).map_err(|_| LegacyError::Unrepresentable("message over 2 GiB"))?;
    patch(&mut out.buf, start.saturating_add(8), size.to_be_bytes());
    let crc = crc32fast::hash(out.buf.get(start.saturating_add(LEGACY_CRC_FROM)..).unwrap_or_default());
    patch(&mut out.buf, start.saturating_add(12), crc.to_be_bytes());
    Ok(())
}

/// Appends one v2 record (length-prefixed) to `out`.
fn put_record(out: &mut Vec<u8>, offset_delta: i32, timestamp_delta: i64, record: &BatchRecord) -> Result<(), LegacyError> {
    let payload = record.key.as_ref().map_or(0, |k| k.len()).saturating_add(record.value.as_ref().map_or(0, |v| v.len()));
    let mut body = Vec::with_capacity(payload.saturating_add(16));
    body.push(0);
    put_varint(&mut body, timestamp_delta);
    put_varint(&mut body, i64::from(offset_delta));
    put_varint_bytes(&mut body, record.key.as_deref())?;
    put_varint_bytes(&mut body, record.value.as_deref())?;
    put_varint(&mut body, i64::from(length(record.headers.len())?));
    for header in &record.headers {
        put_varint_bytes(&mut body, Some(&header.key))?;
        put_varint_bytes(&mut body, header.value.as_deref())?;
    }
    put_varint(out, i64::from(length(body.len())?));
    out.extend_from_slice(&body);
    Ok(())
}

fn length(len: usize) -> Result<i32, LegacyError> {
    i32::try_from(len).map_err(|_| LegacyError::Unrepresentable("length over 2 GiB"))
}

/// Kafka's zigzag varint (varlong for i64; the same bytes as varint for any i32 value).
fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn put_varint_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) -> Result<(), LegacyError> {
    match bytes {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(out, i64::from(length(bytes.len())?));
            out.extend_from_slice(bytes);
        }
    }
    Ok(())
}

/// Overwrites four bytes written earlier as a placeholder.
fn patch(out: &mut [u8], at: usize, bytes: [u8; 4]) {
    if let Some(field) = out.get_mut(at..at.saturating_add(4)) {
        field.copy_from_slice(&bytes);
    }
}

/// The codec id of the low attribute bits; zstd and unassigned ids have no place in what is written.
fn codec_id(codec: Compression) -> Result<i8, LegacyError> {
    match codec {
        Compression::None => Ok(0),
        Compression::Gzip => Ok(1),
        Compression::Snappy => Ok(2),
        Compression::Lz4 => Ok(3),
        Compression::Zstd => Err(LegacyError::Unrepresentable("zstd")),
        Compression::Unknown(_) => Err(LegacyError::Unrepresentable("compression codec ids 5-7 are not assigned")),
    }
}

/// Reads the records section of a batch.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], LegacyError> {
        let (head, tail) = self.rest.split_at_checked(len).ok_or(LegacyError::Malformed("record cut short"))?;
        self.rest = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, LegacyError> {
        let (byte, tail) = self.rest.split_first().ok_or(LegacyError::Malformed("record cut short"))?;
        self.rest = tail;
        Ok(*byte)
    }

    /// A zigzag varint of at most `max_bytes` bytes.
    fn zigzag(&mut self, max_bytes: u32) -> Result<i64, LegacyError> {
        let mut raw = 0u64;
        for i in 0..max_bytes {
            let byte = self.byte()?;
            raw |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(LegacyError::Malformed("varint too long"))
    }

    fn varlong(&mut self) -> Result<i64, LegacyError> {
        self.zigzag(10)
    }

    fn varint(&mut self) -> Result<i32, LegacyError> {
        i32::try_from(self.zigzag(5)?).map_err(|_| LegacyError::Malformed("varint beyond int32"))
    }

    /// Varint length (-1 null) and that many bytes.
    fn varint_bytes(&mut self) -> Result<Option<Bytes>, LegacyError> {
        match self.varint()? {
            -1 => Ok(None),
            len => {
                let len = usize::try_from(len).map_err(|_| LegacyError::Malformed("negative length"))?;
                Ok(Some(Bytes::copy_from_slice(self.take(len)?)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::compression::{decompress, XERIAL_MAGIC};
    use proptest::collection::vec;
    use proptest::prelude::*;

    const CODECS: [Compression; 4] = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4];

    fn b(bytes: &[u8]) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(bytes))
    }

    fn message(offset: i64, timestamp: Option<i64>, key: Option<Bytes>, value: Option<Bytes>) -> LegacyMessage {
        LegacyMessage { offset, timestamp, log_append_time: false, key, value }
    }

    fn record(offset: i64, timestamp: i64, key: Option<Bytes>, value: Option<Bytes>, headers: usize) -> BatchRecord {
        let headers =
            (0..headers).map(|i| RecordHeader { key: Bytes::from(format!("h{i}")), value: if i % 2 == 0 { b(b"hv") } else { None } }).collect();
        BatchRecord { offset, timestamp, key, value, headers }
    }

    /// Records with null keys, empty and null values and one 200 KiB value.
    fn variety(with_timestamps: bool) -> Vec<LegacyMessage> {
        let big: Vec<u8> = (0..200 * 1024).map(|i| (i % 253) as u8).collect();
        let ts = |t: i64| with_timestamps.then_some(1_600_000_000_000 + t);
        vec![
            message(0, ts(0), b(b"key-0"), b(b"value-0")),
            message(1, ts(7), None, b(b"no key")),
            message(2, ts(3), b(b"empty value"), b(b"")),
            message(3, ts(9), b(b"tombstone"), None),
            message(4, ts(1), None, None),
            message(5, ts(12), b(b"big"), Some(Bytes::from(big))),
            message(6, ts(12), b(b""), b(b"last")),
        ]
    }

    fn be_i64_at(bytes: &[u8], at: usize) -> i64 {
        i64::from_be_bytes(bytes[at..at + 8].try_into().unwrap())
    }
    fn be_i32_at(bytes: &[u8], at: usize) -> i32 {
        i32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
    }
    fn be_i16_at(bytes: &[u8], at: usize) -> i16 {
        i16::from_be_bytes(bytes[at..at + 2].try_into().unwrap())
    }

    /// The batch header read by hand at the documented byte positions, independently of
    /// `records::parse_batch_header`: (base offset, attributes, last offset delta, base timestamp,
    /// max timestamp, record count).
    fn batch_fields(batch: &[u8]) -> (i64, i16, i32, i64, i64, i32) {
        assert_eq!(be_i32_at(batch, 8) as usize, batch.len() - 12, "batch length");
        assert_eq!(be_i32_at(batch, 12), -1, "partition leader epoch");
        assert_eq!(batch[16], 2, "magic");
        assert_eq!(be_i32_at(batch, 17) as u32, crc32c::crc32c(&batch[21..]), "crc32c");
        assert_eq!(be_i64_at(batch, 43), -1, "producer id");
        assert_eq!(be_i16_at(batch, 51), -1, "producer epoch");
        assert_eq!(be_i32_at(batch, 53), -1, "base sequence");
        (be_i64_at(batch, 0), be_i16_at(batch, 21), be_i32_at(batch, 23), be_i64_at(batch, 27), be_i64_at(batch, 35), be_i32_at(batch, 57))
    }

    /// Recomputes every top-level legacy CRC32 (after a test or the fuzzer edited a message).
    fn fix_message_crcs(set: &mut [u8]) {
        let mut at = 0;
        while at + 17 <= set.len() {
            let Ok(size) = usize::try_from(be_i32_at(set, at + 8)) else { return };
            let end = at + 12 + size;
            if size < 5 || end > set.len() {
                return;
            }
            let crc = crc32fast::hash(&set[at + 16..end]);
            set[at + 12..at + 16].copy_from_slice(&crc.to_be_bytes());
            at = end;
        }
    }

    /// Recomputes every batch CRC32C (legacy messages among them get their CRC32).
    fn fix_batch_crcs(records: &mut [u8]) {
        let mut at = 0;
        while at + 21 <= records.len() {
            let Ok(size) = usize::try_from(be_i32_at(records, at + 8)) else { return };
            let end = at + 12 + size;
            if size < 9 || end > records.len() {
                return;
            }
            if records[at + 16] == 2 {
                let crc = crc32c::crc32c(&records[at + 21..end]);
                records[at + 17..at + 21].copy_from_slice(&crc.to_be_bytes());
            } else {
                fix_message_crcs(&mut records[at..end]);
            }
            at = end;
        }
    }

    /// Sets the length field of the batch or message filling `bytes`.
    fn set_length(bytes: &mut [u8]) {
        let len = (bytes.len() - 12) as i32;
        bytes[8..12].copy_from_slice(&len.to_be_bytes());
    }

    /// Sets a batch's attributes (e.g. to claim zstd) and fixes its CRC.
    fn with_attributes(batch: &[u8], attributes: i16) -> Vec<u8> {
        let mut batch = batch.to_vec();
        batch[21..23].copy_from_slice(&attributes.to_be_bytes());
        fix_batch_crcs(&mut batch);
        batch
    }

    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    /// Magic 0, two messages, assembled from the documented layout (CRCs from Python's zlib.crc32).
    const MAGIC_0_SET: &[u8] = &[
        0, 0, 0, 0, 0, 0, 0, 0, // offset 0
        0, 0, 0, 20, // message_size
        0xa4, 0xcd, 0xab, 0x3a, // crc
        0, 0, // magic 0, attributes 0
        0, 0, 0, 1, b'k', // key "k"
        0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o', // value "hello"
        0, 0, 0, 0, 0, 0, 0, 1, // offset 1
        0, 0, 0, 19, // message_size
        0x8b, 0xc0, 0xcd, 0x77, // crc
        0, 0, // magic 0, attributes 0
        0xff, 0xff, 0xff, 0xff, // null key
        0, 0, 0, 5, b'w', b'o', b'r', b'l', b'd', // value "world"
    ];

    /// Magic 1, two messages with timestamps 1600000000000 and +5, the second with null key and value.
    const MAGIC_1_SET: &[u8] = &[
        0, 0, 0, 0, 0, 0, 0, 0, // offset 0
        0, 0, 0, 26, // message_size
        0x4c, 0x89, 0x1d, 0x21, // crc
        1, 0, // magic 1, attributes 0
        0, 0, 0x01, 0x74, 0x87, 0x6e, 0x80, 0x00, // timestamp 1600000000000
        0, 0, 0, 2, b'k', b'1', // key "k1"
        0, 0, 0, 2, b'v', b'1', // value "v1"
        0, 0, 0, 0, 0, 0, 0, 1, // offset 1
        0, 0, 0, 22, // message_size
        0x91, 0x02, 0xf9, 0xa2, // crc
        1, 0, // magic 1, attributes 0
        0, 0, 0x01, 0x74, 0x87, 0x6e, 0x80, 0x05, // timestamp 1600000000005
        0xff, 0xff, 0xff, 0xff, // null key
        0xff, 0xff, 0xff, 0xff, // null value
    ];

    #[test]
    fn a_hand_assembled_magic_0_set_becomes_one_batch() {
        let batch = message_set_to_batch(MAGIC_0_SET).unwrap();
        assert_eq!(batch_fields(&batch), (0, 0, 1, -1, -1, 2));
        #[rustfmt::skip]
        let records: &[u8] = &[
            24, 0, 0, 0, 2, b'k', 10, b'h', b'e', b'l', b'l', b'o', 0, // len 12, attrs, ts delta 0, offset delta 0, key, value, 0 headers
            22, 0, 0, 2, 1, 10, b'w', b'o', b'r', b'l', b'd', 0, // len 11, offset delta 1, null key
        ];
        assert_eq!(&batch[61..], records);
        // And back: the same bytes (offsets 0 and 1, no timestamps).
        let (set, done) = batches_to_message_set(&batch, 0).unwrap();
        assert_eq!(&set[..], MAGIC_0_SET);
        assert_eq!(done, DownConversion { records: 2, headers_dropped: 0, control_skipped: 0 });
        // Read as magic 1, the records have no timestamp.
        let (set, _) = batches_to_message_set(&batch, 1).unwrap();
        let read = read_message_set(&set, PartialTail::Reject).unwrap();
        assert_eq!(read, vec![message(0, Some(-1), b(b"k"), b(b"hello")), message(1, Some(-1), None, b(b"world"))]);
    }

    #[test]
    fn a_hand_assembled_magic_1_set_becomes_one_batch() {
        let batch = message_set_to_batch(MAGIC_1_SET).unwrap();
        assert_eq!(batch_fields(&batch), (0, 0, 1, 1_600_000_000_000, 1_600_000_000_005, 2));
        #[rustfmt::skip]
        let records: &[u8] = &[
            20, 0, 0, 0, 4, b'k', b'1', 4, b'v', b'1', 0, // len 10, ts delta 0, offset delta 0
            12, 0, 10, 2, 1, 1, 0, // len 6, ts delta 5, offset delta 1, null key, null value
        ];
        assert_eq!(&batch[61..], records);
        let (set, done) = batches_to_message_set(&batch, 1).unwrap();
        assert_eq!(&set[..], MAGIC_1_SET);
        assert_eq!(done.records, 2);
        let (set, _) = batches_to_message_set(&batch, 0).unwrap();
        let read = read_message_set(&set, PartialTail::Reject).unwrap();
        assert_eq!(read, vec![message(0, None, b(b"k1"), b(b"v1")), message(1, None, None, None)]);
    }

    #[test]
    fn message_sets_round_trip_through_a_batch_for_every_codec_and_magic() {
        for magic in [0i8, 1] {
            let messages = variety(magic == 1);
            for codec in CODECS {
                // Two sets back to back: with a codec, two wrappers in one set.
                let (head, tail) = messages.split_at(3);
                let mut set = encode_message_set(head, magic, codec).unwrap().to_vec();
                set.extend_from_slice(&encode_message_set(tail, magic, codec).unwrap());
                assert_eq!(read_entries(&set, PartialTail::Reject).unwrap().len(), if codec == Compression::None { 7 } else { 2 });
                let batch = message_set_to_batch(&set).unwrap();
                let batches = read_record_batches(&batch).unwrap();
                assert_eq!(batches.len(), 1, "{codec:?} magic {magic}");
                let h = &batches[0].header;
                assert_eq!((h.base_offset, h.last_offset_delta, h.record_count, h.compression()), (0, 6, 7, codec));
                assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence, h.partition_leader_epoch), (-1, -1, -1, -1));
                assert!(!h.is_log_append_time() && !h.is_transactional() && !h.is_control());
                let expected_ts = |m: &LegacyMessage| m.timestamp.unwrap_or(NO_TIMESTAMP);
                assert_eq!(h.base_timestamp, expected_ts(&messages[0]));
                assert_eq!(h.max_timestamp, messages.iter().map(expected_ts).max().unwrap());
                for (i, (r, m)) in batches[0].records.iter().zip(&messages).enumerate() {
                    let expected = (i as i64, expected_ts(m), &m.key, &m.value);
                    assert_eq!((r.offset, r.timestamp, &r.key, &r.value), expected, "{codec:?} magic {magic} record {i}");
                }
                // Back to the client's magic.
                let (back, done) = batches_to_message_set(&batch, magic).unwrap();
                assert_eq!(done, DownConversion { records: 7, headers_dropped: 0, control_skipped: 0 });
                assert_eq!(read_message_set(&back, PartialTail::Reject).unwrap(), messages, "{codec:?} magic {magic}");
                let entries = read_entries(&back, PartialTail::Reject).unwrap();
                assert!(entries.iter().all(|e| e.header.magic == magic && e.header.compression() == codec));
            }
        }
    }

    #[test]
    fn batches_round_trip_through_a_message_set_for_every_codec_and_magic() {
        let big = Bytes::from(vec![7u8; 200 * 1024]);
        let records = vec![
            record(1000, 5_000, b(b"a"), b(b"1"), 2),
            record(1001, 4_000, None, b(b"2"), 0),
            record(1002, 6_000, b(b"c"), None, 1),
            record(1003, 6_000, b(b""), b(b""), 0),
            record(1004, 7_000, b(b"big"), Some(big), 0),
        ];
        for codec in CODECS {
            let batch = encode_record_batch(&records, &BatchOptions { compression: codec, ..BatchOptions::default() }).unwrap();
            assert_eq!(read_record_batches(&batch).unwrap()[0].records, records);
            for magic in [0i8, 1] {
                let (set, done) = batches_to_message_set(&batch, magic).unwrap();
                assert_eq!(done, DownConversion { records: 5, headers_dropped: 2, control_skipped: 0 }, "{codec:?} magic {magic}");
                let read = read_message_set(&set, PartialTail::Reject).unwrap();
                let expected: Vec<LegacyMessage> =
                    records.iter().map(|r| message(r.offset, (magic == 1).then_some(r.timestamp), r.key.clone(), r.value.clone())).collect();
                assert_eq!(read, expected, "{codec:?} magic {magic}");
                let entries = read_entries(&set, PartialTail::Reject).unwrap();
                if codec == Compression::None {
                    assert_eq!(entries.len(), 5);
                } else {
                    // One wrapper: at the last offset, with the max timestamp, inner offsets
                    // relative (magic 1) or absolute (magic 0).
                    assert_eq!(entries.len(), 1);
                    let wrapper = &entries[0];
                    assert_eq!((wrapper.header.offset, wrapper.header.compression(), &wrapper.key), (1004, codec, &None));
                    assert_eq!(wrapper.header.timestamp, (magic == 1).then_some(7_000));
                    let inner = decompress(codec, wrapper.value.as_ref().unwrap(), magic).unwrap();
                    let offsets: Vec<i64> = read_entries(&inner, PartialTail::Reject).unwrap().iter().map(|e| e.header.offset).collect();
                    assert_eq!(offsets, if magic == 1 { vec![0, 1, 2, 3, 4] } else { vec![1000, 1001, 1002, 1003, 1004] });
                    // What Java's readers expect: xerial snappy, Kafka's broken lz4 checksum on magic 0.
                    let value = wrapper.value.as_ref().unwrap();
                    if codec == Compression::Snappy {
                        assert!(value.starts_with(&XERIAL_MAGIC));
                    }
                    if codec == Compression::Lz4 {
                        let broken = (crate::legacy::compression::xxh32(&value[..6], 0) >> 8) as u8;
                        assert_eq!(value[6] == broken, magic == 0);
                    }
                }
                // And up again: offsets renumbered from 0, headers gone.
                let again = read_record_batches(&message_set_to_batch(&set).unwrap()).unwrap();
                assert_eq!(again.len(), 1);
                assert_eq!(again[0].header.compression(), codec);
                for (i, (r, original)) in again[0].records.iter().zip(&records).enumerate() {
                    let timestamp = if magic == 1 { original.timestamp } else { NO_TIMESTAMP };
                    assert_eq!((r.offset, r.timestamp, &r.key, &r.value, r.headers.len()), (i as i64, timestamp, &original.key, &original.value, 0));
                }
            }
        }
    }

    #[test]
    fn produced_batches_are_what_brokers_read() {
        // Snappy raw in batches (librdkafka's way), lz4 with the correct checksum.
        let messages = variety(true);
        let snappy = message_set_to_batch(&encode_message_set(&messages, 1, Compression::Snappy).unwrap()).unwrap();
        assert!(!snappy[61..].starts_with(&XERIAL_MAGIC));
        assert!(snap::raw::Decoder::new().decompress_vec(&snappy[61..]).is_ok());
        let lz4 = message_set_to_batch(&encode_message_set(&messages, 0, Compression::Lz4).unwrap()).unwrap();
        assert_eq!(&lz4[61..68], &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82]);
        // The first compressed wrapper's codec wins in a mixed set.
        let mut mixed = encode_message_set(&messages[..2], 1, Compression::None).unwrap().to_vec();
        mixed.extend_from_slice(&encode_message_set(&messages[2..4], 1, Compression::Gzip).unwrap());
        mixed.extend_from_slice(&encode_message_set(&messages[4..], 1, Compression::Lz4).unwrap());
        let batch = read_record_batches(&message_set_to_batch(&mixed).unwrap()).unwrap();
        assert_eq!(batch[0].header.compression(), Compression::Gzip);
        assert_eq!(batch[0].records.len(), 7);
        assert_eq!(message_set_to_batch(&[]).unwrap(), Bytes::new());
    }

    #[test]
    fn log_append_time_survives_both_ways() {
        let records = vec![record(10, 100, b(b"a"), b(b"1"), 0), record(11, 200, b(b"b"), b(b"2"), 0)];
        for codec in [Compression::None, Compression::Gzip] {
            let options = BatchOptions { compression: codec, log_append_time: true, max_timestamp: Some(9_999), ..BatchOptions::default() };
            let batch = encode_record_batch(&records, &options).unwrap();
            let (set, _) = batches_to_message_set(&batch, 1).unwrap();
            let read = read_message_set(&set, PartialTail::Reject).unwrap();
            assert!(read.iter().all(|m| m.timestamp == Some(9_999) && m.log_append_time), "{read:?}");
            assert!(read_entries(&set, PartialTail::Reject).unwrap().iter().all(|e| e.header.attributes & 0x08 != 0));
            let up = read_record_batches(&message_set_to_batch(&set).unwrap()).unwrap();
            assert!(up[0].header.is_log_append_time());
            assert!(up[0].records.iter().all(|r| r.timestamp == 9_999));
            // Magic 0 has no timestamps and no such bit.
            let (set, _) = batches_to_message_set(&batch, 0).unwrap();
            assert!(read_entries(&set, PartialTail::Reject).unwrap().iter().all(|e| e.header.attributes & 0x08 == 0 && e.header.timestamp.is_none()));
        }
    }

    fn two_batches() -> (Bytes, Bytes) {
        let first = [record(0, 1, b(b"k"), b(b"first"), 0), record(1, 2, None, b(b"second"), 0)];
        let first = encode_record_batch(&first, &BatchOptions::default()).unwrap();
        let gzip = BatchOptions { compression: Compression::Gzip, ..BatchOptions::default() };
        let second = encode_record_batch(&[record(2, 3, None, b(b"third"), 0)], &gzip).unwrap();
        (first, second)
    }

    #[test]
    fn zstd_ends_the_conversion() {
        let (first, second) = two_batches();
        let zstd = with_attributes(&second, 4);
        assert_eq!(batches_to_message_set(&zstd, 1), Err(LegacyError::Unrepresentable("zstd")));
        let records = [&first[..], &zstd, &second].concat();
        let (set, done) = batches_to_message_set(&records, 1).unwrap();
        assert_eq!(done.records, 2);
        let offsets: Vec<i64> = read_message_set(&set, PartialTail::Reject).unwrap().iter().map(|m| m.offset).collect();
        assert_eq!(offsets, vec![0, 1]);
        // Nothing converted before it (a control batch only): still unrepresentable.
        let marker = [record(0, 1, b(b"\0\0\0\0"), b(b"\0\0\0\0\0\0"), 0)];
        let control = encode_record_batch(&marker, &BatchOptions { control: true, transactional: true, ..BatchOptions::default() }).unwrap();
        assert_eq!(batches_to_message_set(&[&control[..], &zstd].concat(), 0), Err(LegacyError::Unrepresentable("zstd")));
        // zstd in a produced legacy wrapper cannot be read either.
        let mut wrapper = Writer::new();
        put_message(&mut wrapper, 0, 1, 4, 0, None, Some(b"zstd bytes")).unwrap();
        assert!(matches!(message_set_to_batch(&wrapper.buf), Err(LegacyError::Unrepresentable(what)) if what.starts_with("zstd")));
    }

    #[test]
    fn a_partial_trailing_batch_is_left_out() {
        let (first, second) = two_batches();
        for cut in [1, 16, 17, 40, 61, second.len() - 1] {
            let records = [&first[..], &second[..cut]].concat();
            let (set, done) = batches_to_message_set(&records, 1).unwrap();
            assert_eq!(done.records, 2, "cut at {cut}");
            assert_eq!(read_message_set(&set, PartialTail::Reject).unwrap().len(), 2);
        }
        let (set, done) = batches_to_message_set(&second[..30], 0).unwrap();
        assert!(set.is_empty());
        assert_eq!(done, DownConversion::default());
        // A produced set must not end inside a message.
        let mut set = MAGIC_1_SET.to_vec();
        set.pop();
        assert_eq!(message_set_to_batch(&set), Err(LegacyError::Malformed("message set ends inside a message")));
        assert_eq!(message_set_to_batch(&MAGIC_1_SET[..10]), Err(LegacyError::Malformed("message set ends inside a message")));
    }

    #[test]
    fn control_batches_are_skipped_and_counted() {
        let (first, second) = two_batches();
        let marker = [record(5, 1, b(b"\0\0\0\0"), b(b"\0\0\0\0\0\0"), 0)];
        let options = BatchOptions { control: true, transactional: true, producer_id: 7, producer_epoch: 0, ..BatchOptions::default() };
        let control = encode_record_batch(&marker, &options).unwrap();
        let transactional = with_attributes(&first, 0x10);
        let records = [&transactional[..], &control, &second].concat();
        let (set, done) = batches_to_message_set(&records, 1).unwrap();
        assert_eq!(done, DownConversion { records: 3, headers_dropped: 0, control_skipped: 1 });
        let values: Vec<Option<Bytes>> = read_message_set(&set, PartialTail::Reject).unwrap().into_iter().map(|m| m.value).collect();
        assert_eq!(values, vec![b(b"first"), b(b"second"), b(b"third")]);
    }

    #[test]
    fn checksum_mismatches_are_malformed() {
        let (first, second) = two_batches();
        let mut records = [&first[..], &second].concat();
        let last = records.len() - 1;
        records[last] ^= 1;
        assert_eq!(batches_to_message_set(&records, 1), Err(LegacyError::Malformed("record batch CRC mismatch")));
        let mut set = MAGIC_0_SET.to_vec();
        set[30] ^= 0x20;
        assert_eq!(message_set_to_batch(&set), Err(LegacyError::Malformed("message CRC mismatch")));
        // A corrupted inner message of a wrapper too.
        let mut inner = Writer::new();
        put_message(&mut inner, 0, 1, 0, 5, None, Some(b"inner")).unwrap();
        let last = inner.buf.len() - 1;
        inner.buf[last] ^= 1;
        let mut wrapper = Writer::new();
        put_message(&mut wrapper, 0, 1, 1, 5, None, Some(&compress(Compression::Gzip, &inner.buf, 1).unwrap())).unwrap();
        assert_eq!(message_set_to_batch(&wrapper.buf), Err(LegacyError::Malformed("message CRC mismatch")));
    }

    #[test]
    fn nested_or_empty_wrappers_and_stray_batches_are_malformed() {
        let inner = encode_message_set(&variety(true)[..2], 1, Compression::Gzip).unwrap();
        let mut nested = Writer::new();
        put_message(&mut nested, 1, 1, 2, 0, None, Some(&compress(Compression::Snappy, &inner, 1).unwrap())).unwrap();
        assert_eq!(message_set_to_batch(&nested.buf), Err(LegacyError::Malformed("compressed message inside a compressed message")));
        let mut empty = Writer::new();
        put_message(&mut empty, 0, 1, 1, 0, None, Some(&compress(Compression::Gzip, b"", 1).unwrap())).unwrap();
        assert_eq!(message_set_to_batch(&empty.buf), Err(LegacyError::Malformed("compressed message without inner messages")));
        let mut null = Writer::new();
        put_message(&mut null, 0, 0, 3, 0, None, None).unwrap();
        assert_eq!(message_set_to_batch(&null.buf), Err(LegacyError::Malformed("compressed message without a value")));
        let (first, _) = two_batches();
        assert_eq!(message_set_to_batch(&first), Err(LegacyError::Malformed("record batch (magic 2) inside a legacy message set")));
        let mut magic_3 = MAGIC_0_SET.to_vec();
        magic_3[16] = 3;
        assert_eq!(message_set_to_batch(&magic_3), Err(LegacyError::Malformed("unknown magic byte")));
    }

    #[test]
    fn old_messages_in_the_log_are_converted_too() {
        let messages = variety(true);
        let mut records = encode_message_set(&messages[..3], 1, Compression::Gzip).unwrap().to_vec();
        let mut v0 = messages[3..5].to_vec();
        v0.iter_mut().for_each(|m| m.timestamp = None);
        records.extend_from_slice(&encode_message_set(&v0, 0, Compression::None).unwrap());
        let tail: Vec<BatchRecord> =
            messages[5..].iter().map(|m| record(m.offset, m.timestamp.unwrap(), m.key.clone(), m.value.clone(), 0)).collect();
        records.extend_from_slice(&encode_record_batch(&tail, &BatchOptions { compression: Compression::Lz4, ..BatchOptions::default() }).unwrap());
        let (set, done) = batches_to_message_set(&records, 1).unwrap();
        assert_eq!(done.records, 7);
        let read = read_message_set(&set, PartialTail::Reject).unwrap();
        let offsets: Vec<i64> = read.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, (0..7).collect::<Vec<_>>());
        assert_eq!(read[3].timestamp, Some(NO_TIMESTAMP));
        assert_eq!(read[6].timestamp, messages[6].timestamp);
        let (set, _) = batches_to_message_set(&records, 0).unwrap();
        let entries = read_entries(&set, PartialTail::Reject).unwrap();
        assert!(entries.iter().all(|e| e.header.magic == 0));
        assert_eq!(entries.len(), 1 + 2 + 1);
        let values: Vec<Option<Bytes>> = read_message_set(&set, PartialTail::Reject).unwrap().into_iter().map(|m| m.value).collect();
        assert_eq!(values, messages.iter().map(|m| m.value.clone()).collect::<Vec<_>>());
    }

    #[test]
    fn decompression_beyond_the_bound_cuts_the_fetch_or_fails() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..(MAX_DECOMPRESSED / zeros.len() + 2) {
            encoder.write_all(&zeros).unwrap();
        }
        let bomb = encoder.finish().unwrap();
        // As a batch's records section.
        let (first, second) = two_batches();
        let mut bomb_batch = second[..61].to_vec();
        bomb_batch.extend_from_slice(&bomb);
        set_length(&mut bomb_batch);
        fix_batch_crcs(&mut bomb_batch);
        assert_eq!(batches_to_message_set(&bomb_batch, 1), Err(LegacyError::TooLarge));
        let (set, done) = batches_to_message_set(&[&first[..], &bomb_batch].concat(), 1).unwrap();
        assert_eq!(done.records, 2);
        assert_eq!(read_message_set(&set, PartialTail::Reject).unwrap().len(), 2);
        // As a produced wrapper.
        let mut wrapper = Writer::new();
        put_message(&mut wrapper, 0, 1, 1, 0, None, Some(&bomb)).unwrap();
        assert_eq!(message_set_to_batch(&wrapper.buf), Err(LegacyError::TooLarge));
    }

    #[test]
    fn magic_must_be_0_or_1() {
        let (first, _) = two_batches();
        assert!(matches!(batches_to_message_set(&first, 2), Err(LegacyError::Unrepresentable(_))));
        assert!(matches!(encode_message_set(&variety(true), 2, Compression::None), Err(LegacyError::Unrepresentable(_))));
    }

    /// A valid produced set and fetched records to damage: every codec, both magics, headers.
    fn valid_inputs() -> (Vec<u8>, Vec<u8>) {
        let mut messages = variety(true);
        for m in &mut messages {
            m.value = m.value.take().map(|v| v.slice(..v.len().min(40)));
        }
        let mut set = Vec::new();
        let mut records = Vec::new();
        for (i, codec) in CODECS.into_iter().enumerate() {
            let magic = (i % 2) as i8;
            set.extend_from_slice(&encode_message_set(&messages[..3], magic, codec).unwrap());
            let batch: Vec<BatchRecord> =
                messages.iter().map(|m| record(m.offset + 10 * i as i64, m.timestamp.unwrap(), m.key.clone(), m.value.clone(), i % 3)).collect();
            records.extend_from_slice(&encode_record_batch(&batch, &BatchOptions { compression: codec, ..BatchOptions::default() }).unwrap());
        }
        (set, records)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..400), magic in 0i8..2) {
            let _ = message_set_to_batch(&bytes);
            let _ = batches_to_message_set(&bytes, magic);
            // With plausible headers in front, more of the parsers is reached.
            let mut set = MAGIC_1_SET[..30].to_vec();
            set.extend_from_slice(&bytes);
            set_length(&mut set);
            fix_message_crcs(&mut set);
            let _ = message_set_to_batch(&set);
            let mut batch = two_batches().0[..61].to_vec();
            batch.extend_from_slice(&bytes);
            set_length(&mut batch);
            fix_batch_crcs(&mut batch);
            let _ = batches_to_message_set(&batch, magic);
            let _ = read_record_batches(&batch);
        }

        #[test]
        fn damaged_valid_inputs_never_panic(
            flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
            magic in 0i8..2,
            fix_crcs in any::<bool>(),
        ) {
            let (mut set, mut records) = valid_inputs();
            for (at, byte) in &flips {
                let i = at.index(set.len());
                set[i] ^= byte;
                let i = at.index(records.len());
                records[i] ^= byte;
            }
            if fix_crcs {
                fix_message_crcs(&mut set);
                fix_batch_crcs(&mut records);
            }
            let _ = message_set_to_batch(&set);
            let _ = message_set_to_batch(&set[..cut.index(set.len() + 1)]);
            let _ = batches_to_message_set(&records, magic);
            let _ = batches_to_message_set(&records[..cut.index(records.len() + 1)], magic);
        }
    }
}
