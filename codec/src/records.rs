//! Record-batch and legacy message-set headers, parsed with nom, never touching record payloads.
//!
//! Produce requests and Fetch responses carry records as opaque `records` bytes: a sequence of
//! record batches (magic 2, a fixed 61-byte header then the records) or, from old clients and
//! brokers, legacy message sets (magic 0/1). Both formats put the magic byte at offset 16 and the
//! length of the rest at offset 8, so a reader can tell them apart and step from one batch to the
//! next reading only headers. Compressed data, keys, values and headers stay unread.

use nom::number::complete::{be_i16, be_i32, be_i64, be_i8, be_u32};
use nom::Parser;

/// Size of a magic-2 record batch header.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes needed to tell the format and the length of any batch or legacy message: offset (8),
/// length (4), CRC or leader epoch (4), magic (1).
pub const BATCH_PREFIX_LEN: usize = 17;
/// Size of the fixed header of a legacy message, magic 0 (through attributes).
pub const LEGACY_V0_HEADER_LEN: usize = 22;
/// Size of the fixed header of a legacy message, magic 1 (through the timestamp).
pub const LEGACY_V1_HEADER_LEN: usize = 30;

/// Compression codec from the low three attribute bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    /// Codec ids 5–7 are not assigned.
    Unknown(u8),
}

impl Compression {
    fn from_attributes(attributes: i16) -> Self {
        match attributes & 0x07 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => Compression::Unknown(other as u8),
        }
    }

    /// Label for metrics and logs, as Kafka's `compression.type` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
            Compression::Unknown(_) => "unknown",
        }
    }
}

/// The header of a magic-2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBatchHeader {
    pub base_offset: i64,
    /// Bytes after this field: the batch is `12 + batch_length` bytes in all.
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl RecordBatchHeader {
    pub fn compression(&self) -> Compression {
        Compression::from_attributes(self.attributes)
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    /// Whether the timestamps are broker append times rather than producer create times.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }
    /// Whether an idempotent or transactional producer wrote the batch.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

/// The header of a legacy (magic 0 or 1) message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyMessageHeader {
    pub offset: i64,
    /// Bytes after this field: the message is `12 + message_size` bytes in all.
    pub message_size: i32,
    pub crc: u32,
    pub magic: i8,
    pub attributes: i8,
    /// Magic 1 only.
    pub timestamp: Option<i64>,
}

impl LegacyMessageHeader {
    pub fn compression(&self) -> Compression {
        Compression::from_attributes(i16::from(self.attributes))
    }
}

/// One batch's header in either format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchHeader {
    V2(RecordBatchHeader),
    Legacy(LegacyMessageHeader),
}

impl BatchHeader {
    /// Total bytes of this batch, its header included.
    pub fn total_len(&self) -> u64 {
        let rest = match self {
            BatchHeader::V2(h) => h.batch_length,
            BatchHeader::Legacy(h) => h.message_size,
        };
        12 + u64::try_from(rest).unwrap_or(0)
    }
    pub fn compression(&self) -> Compression {
        match self {
            BatchHeader::V2(h) => h.compression(),
            BatchHeader::Legacy(h) => h.compression(),
        }
    }
    /// Records in the batch. A legacy message counts as one record; a compressed legacy wrapper
    /// holds an unknown number that only decompression would tell.
    pub fn record_count(&self) -> u32 {
        match self {
            BatchHeader::V2(h) => u32::try_from(h.record_count).unwrap_or(0),
            BatchHeader::Legacy(_) => 1,
        }
    }
    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        match self {
            BatchHeader::V2(h) => h.base_offset,
            BatchHeader::Legacy(h) => h.offset,
        }
    }
    /// Offset of the last record (legacy: the message's own offset).
    pub fn last_offset(&self) -> i64 {
        match self {
            BatchHeader::V2(h) => h.base_offset.saturating_add(i64::from(h.last_offset_delta)),
            BatchHeader::Legacy(h) => h.offset,
        }
    }
}

/// Why a batch header did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordsError {
    /// Fewer bytes than the header needs (`needed` in all): the usual end of a Fetch response,
    /// whose last batch the broker may cut short.
    Incomplete { needed: usize },
    /// A magic byte other than 0, 1 or 2.
    UnknownMagic(i8),
    /// A length field too small for the header it belongs to.
    BadLength(i32),
}

/// How many bytes [`parse_batch_header`] needs for a batch whose first [`BATCH_PREFIX_LEN`] bytes
/// are `prefix`: 61 for magic 2, 22 or 30 for legacy messages.
pub fn header_len_for(prefix: &[u8]) -> Result<usize, RecordsError> {
    match prefix.get(16).map(|m| *m as i8) {
        Some(2) => Ok(BATCH_HEADER_LEN),
        Some(1) => Ok(LEGACY_V1_HEADER_LEN),
        Some(0) => Ok(LEGACY_V0_HEADER_LEN),
        Some(other) => Err(RecordsError::UnknownMagic(other)),
        None => Err(RecordsError::Incomplete { needed: BATCH_PREFIX_LEN }),
    }
}

type NomResult<'a, T> = nom::IResult<&'a [u8], T>;

fn v2_header(input: &[u8]) -> NomResult<'_, RecordBatchHeader> {
    let (input, (base_offset, batch_length, partition_leader_epoch, magic, crc, attributes, last_offset_delta)) =
        (be_i64, be_i32, be_i32, be_i8, be_u32, be_i16, be_i32).parse(input)?;
    let (input, (base_timestamp, max_timestamp, producer_id, producer_epoch, base_sequence, record_count)) =
        (be_i64, be_i64, be_i64, be_i16, be_i32, be_i32).parse(input)?;
    Ok((
        input,
        RecordBatchHeader {
            base_offset,
            batch_length,
            partition_leader_epoch,
            magic,
            crc,
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            record_count,
        },
    ))
}

fn legacy_header(input: &[u8]) -> NomResult<'_, LegacyMessageHeader> {
    let (input, (offset, message_size, crc, magic, attributes)) = (be_i64, be_i32, be_u32, be_i8, be_i8).parse(input)?;
    let (input, timestamp) = if magic >= 1 { be_i64(input).map(|(i, t)| (i, Some(t)))? } else { (input, None) };
    Ok((input, LegacyMessageHeader { offset, message_size, crc, magic, attributes, timestamp }))
}

/// Parses the header of the batch at the start of `input`.
pub fn parse_batch_header(input: &[u8]) -> Result<BatchHeader, RecordsError> {
    let needed = header_len_for(input)?;
    if input.len() < needed {
        return Err(RecordsError::Incomplete { needed });
    }
    let parsed = if needed == BATCH_HEADER_LEN {
        v2_header(input).map(|(_, h)| BatchHeader::V2(h))
    } else {
        legacy_header(input).map(|(_, h)| BatchHeader::Legacy(h))
    };
    let header = parsed.map_err(|_| RecordsError::Incomplete { needed })?;
    // The length field counts everything after itself; it must cover the rest of the header.
    let min_rest = (needed - 12) as i32;
    let rest = match header {
        BatchHeader::V2(h) => h.batch_length,
        BatchHeader::Legacy(h) => h.message_size,
    };
    if rest < min_rest {
        return Err(RecordsError::BadLength(rest));
    }
    Ok(header)
}

/// What a `records` field holds, from its batch headers alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSetSummary {
    /// Complete batches (every byte present).
    pub batches: u32,
    /// Records in complete batches.
    pub records: u64,
    /// Bytes of complete batches.
    pub bytes: u64,
    /// Bytes at the end that do not form a complete batch (a Fetch response may end in a
    /// truncated batch; a Produce request never should).
    pub trailing_bytes: u64,
    /// Complete batches per compression codec, in order of first appearance.
    pub compression: Vec<(Compression, u32)>,
    /// Size of the largest complete batch (what a broker's `max.message.bytes` bounds).
    pub max_batch_bytes: u64,
    /// The first batch header that did not parse, if any; the walk stops there.
    pub error: Option<RecordsError>,
}

impl RecordSetSummary {
    /// Counts one complete batch: its size, its records at offsets `>= min_offset`, its codec.
    pub fn add_batch(&mut self, header: &BatchHeader, min_offset: i64) {
        let total = header.total_len();
        self.batches = self.batches.saturating_add(1);
        self.bytes = self.bytes.saturating_add(total);
        self.max_batch_bytes = self.max_batch_bytes.max(total);
        self.records = self.records.saturating_add(u64::from(counted_records(header, min_offset)));
        let codec = header.compression();
        match self.compression.iter_mut().find(|(c, _)| *c == codec) {
            Some((_, n)) => *n = n.saturating_add(1),
            None => self.compression.push((codec, 1)),
        }
    }
}

/// Walks the batches of a `records` field held in memory, reading only their headers. Records at
/// offsets below `min_offset` are not counted (a Fetch returns the whole batch holding the fetch
/// offset; pass `i64::MIN` to count everything).
pub fn summarize(records: &[u8], min_offset: i64) -> RecordSetSummary {
    let mut summary = RecordSetSummary::default();
    let mut rest = records;
    while !rest.is_empty() {
        let header = match parse_batch_header(rest) {
            Ok(h) => h,
            Err(RecordsError::Incomplete { .. }) => break,
            Err(e) => {
                summary.error = Some(e);
                break;
            }
        };
        let total = usize::try_from(header.total_len()).unwrap_or(usize::MAX);
        let Some(next) = rest.get(total..) else { break };
        summary.add_batch(&header, min_offset);
        rest = next;
    }
    summary.trailing_bytes = rest.len() as u64;
    summary
}

/// Records of a batch at offsets `>= min_offset`. Exact for batches without gaps (all produced
/// batches); a compacted batch's count is an upper bound.
pub fn counted_records(header: &BatchHeader, min_offset: i64) -> u32 {
    let count = header.record_count();
    if header.base_offset() >= min_offset {
        return count;
    }
    if header.last_offset() < min_offset {
        return 0;
    }
    let skipped = u32::try_from(min_offset.saturating_sub(header.base_offset())).unwrap_or(u32::MAX);
    count.saturating_sub(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};

    /// A magic-2 batch with `count` records of `payload` bytes of opaque body.
    pub(crate) fn v2_batch(base_offset: i64, count: i32, attributes: i16, body_len: usize) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_i64(base_offset);
        b.put_i32((49 + body_len) as i32);
        b.put_i32(0);
        b.put_i8(2);
        b.put_u32(0xdead_beef);
        b.put_i16(attributes);
        b.put_i32(count - 1);
        b.put_i64(1_000);
        b.put_i64(2_000);
        b.put_i64(-1);
        b.put_i16(-1);
        b.put_i32(-1);
        b.put_i32(count);
        b.put_bytes(0xab, body_len);
        b.to_vec()
    }

    fn legacy_message(magic: i8, offset: i64, value: &[u8]) -> Vec<u8> {
        let mut body = BytesMut::new();
        body.put_u32(0);
        body.put_i8(magic);
        body.put_i8(0);
        if magic == 1 {
            body.put_i64(77);
        }
        body.put_i32(-1);
        body.put_i32(value.len() as i32);
        body.put_slice(value);
        let mut b = BytesMut::new();
        b.put_i64(offset);
        b.put_i32(body.len() as i32);
        b.put_slice(&body);
        b.to_vec()
    }

    #[test]
    fn parses_v2_header_fields() {
        let batch = v2_batch(100, 5, 0x0013, 300);
        let BatchHeader::V2(h) = parse_batch_header(&batch).unwrap() else { panic!("not v2") };
        assert_eq!(h.base_offset, 100);
        assert_eq!(h.record_count, 5);
        assert_eq!(h.compression(), Compression::Lz4);
        assert!(h.is_transactional());
        assert!(!h.has_producer_id());
        assert_eq!(BatchHeader::V2(h).total_len(), batch.len() as u64);
    }

    #[test]
    fn parses_legacy_headers() {
        for magic in [0i8, 1] {
            let msg = legacy_message(magic, 9, b"hello");
            let BatchHeader::Legacy(h) = parse_batch_header(&msg).unwrap() else { panic!("not legacy") };
            assert_eq!(h.magic, magic);
            assert_eq!(h.offset, 9);
            assert_eq!(h.timestamp, if magic == 1 { Some(77) } else { None });
            assert_eq!(BatchHeader::Legacy(h).total_len(), msg.len() as u64);
        }
    }

    #[test]
    fn summary_counts_complete_batches_and_truncated_tail() {
        let mut set = v2_batch(0, 10, 0, 500);
        set.extend(v2_batch(10, 5, 2, 200));
        let third = v2_batch(15, 7, 0, 100);
        set.extend_from_slice(&third[..40]);
        let s = summarize(&set, i64::MIN);
        assert_eq!(s.batches, 2);
        assert_eq!(s.records, 15);
        assert_eq!(s.trailing_bytes, 40);
        assert_eq!(s.compression, vec![(Compression::None, 1), (Compression::Snappy, 1)]);
        assert_eq!(s.error, None);
        // Fetch at offset 4: the first batch contributes records 4..=9 only.
        assert_eq!(summarize(&set, 4).records, 6 + 5);
        assert_eq!(summarize(&set, 12).records, 3);
    }

    #[test]
    fn rejects_bad_magic_and_lengths() {
        let mut batch = v2_batch(0, 1, 0, 10);
        batch[16] = 7;
        assert_eq!(parse_batch_header(&batch), Err(RecordsError::UnknownMagic(7)));
        let mut batch = v2_batch(0, 1, 0, 10);
        batch[8..12].copy_from_slice(&3i32.to_be_bytes());
        assert_eq!(parse_batch_header(&batch), Err(RecordsError::BadLength(3)));
        assert_eq!(parse_batch_header(&[0; 10]), Err(RecordsError::Incomplete { needed: BATCH_PREFIX_LEN }));
    }
}
