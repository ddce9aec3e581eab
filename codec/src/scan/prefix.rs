//! The scan of a Produce request from the frame's first bytes alone, when they show all of its
//! structure: the common case of a producer's request, one or a few partitions whose record
//! batches all start within the first bytes (the splitter's frame prefix), the last batch running
//! on to the frame's end.
//!
//! Equivalent to the streaming scan ([`super::produce_request`]) for every frame it accepts, and
//! much smaller: one straight pass over a slice instead of a resumable parser, so a callback that
//! finds its code cold (every callback, in a proxy moving megabytes between two of them) touches
//! less of it. A frame whose structure goes on past the first bytes, or that is malformed, is
//! refused (`None`) and scanned by the streaming parser, which reports it as it always did.

use super::{batch_header_len, count_batch, PartitionRecords, ProduceSummary, Scanned, TopicRecords};
use crate::records::{self, BATCH_PREFIX_LEN};

/// A position in a frame body of which only the first bytes (`head`) are in hand; the body's
/// length is known. Reads must stay within `head`; skips may go past it, up to the body's end.
struct Cursor<'a> {
    head: &'a [u8],
    /// Bytes of the body (after the request header) in all.
    total: u64,
    pos: u64,
}

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let start = usize::try_from(self.pos).ok()?;
        let bytes = self.head.get(start..start.checked_add(N)?)?;
        self.pos += N as u64;
        <[u8; N]>::try_from(bytes).ok()
    }

    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let start = usize::try_from(self.pos).ok()?;
        let head = self.head;
        let bytes = head.get(start..start.checked_add(n)?)?;
        self.pos += n as u64;
        Some(bytes)
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        let to = self.pos.checked_add(n)?;
        (to <= self.total).then(|| self.pos = to)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }

    /// As [`super::Reader::uvarint`].
    fn uvarint(&mut self) -> Option<u32> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let [b] = self.take::<1>()?;
            value |= u32::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// Array length as [`super::Reader::array_len`]; a negative one refuses the frame.
    fn array_len(&mut self, compact: bool) -> Option<Option<u32>> {
        if compact {
            Some(self.uvarint()?.checked_sub(1))
        } else {
            match self.i32()? {
                -1 => Some(None),
                n => u32::try_from(n).ok().map(Some),
            }
        }
    }

    /// Nullable string as [`super::Reader::string`].
    fn string(&mut self, compact: bool) -> Option<Option<String>> {
        let len = if compact {
            self.uvarint()?.checked_sub(1).map(|n| n as usize)
        } else {
            match self.i16()? {
                -1 => None,
                n => Some(usize::try_from(n).ok()?),
            }
        };
        match len {
            None => Some(None),
            Some(n) => Some(Some(String::from_utf8_lossy(self.bytes(n)?).into_owned())),
        }
    }

    /// Nullable bytes length as [`super::Reader::bytes_len`].
    fn bytes_len(&mut self, compact: bool) -> Option<Option<u64>> {
        if compact {
            Some(self.uvarint()?.checked_sub(1).map(u64::from))
        } else {
            match self.i32()? {
                -1 => Some(None),
                n => u64::try_from(n).ok().map(Some),
            }
        }
    }

    fn skip_tagged_fields(&mut self) -> Option<()> {
        for _ in 0..self.uvarint()? {
            let _tag = self.uvarint()?;
            let size = self.uvarint()?;
            self.skip(u64::from(size))?;
        }
        Some(())
    }

    /// As [`super::Reader::skip_closing_tagged_fields`]: exactly `sections` bytes left and not in
    /// hand are skipped unread.
    fn skip_closing_tagged_fields(&mut self, sections: u64) -> Option<()> {
        let in_hand = (self.head.len() as u64).saturating_sub(self.pos);
        if self.total.saturating_sub(self.pos) == sections && in_hand < sections {
            return self.skip(sections);
        }
        (0..sections).try_for_each(|_| self.skip_tagged_fields())
    }

    /// As [`super::Reader::record_set`], with every batch header in hand.
    fn record_set(&mut self, len: u64, into: &mut PartitionRecords) -> Option<()> {
        const PREFIX: u64 = BATCH_PREFIX_LEN as u64;
        let mut left = len;
        while left >= PREFIX {
            let start = self.pos;
            let prefix = self.take::<BATCH_PREFIX_LEN>()?;
            left -= PREFIX;
            let Some(header_len) = batch_header_len(&prefix, left, into) else { break };
            self.pos = start;
            let parsed = records::parse_batch_header(self.bytes(header_len)?);
            left -= (header_len - BATCH_PREFIX_LEN) as u64;
            let Some(body) = count_batch(parsed, header_len, left, into) else { break };
            self.skip(body)?;
            left -= body;
        }
        into.records.trailing_bytes = len.saturating_sub(into.records.bytes);
        self.skip(left)
    }
}

/// Scans a Produce request body (versions 3–13, after the request header) of `total` bytes from
/// its first bytes `head`. Returns the summary and where the structure ends (bytes into the
/// body, never past `total`: the rest of the frame cannot change the result), or `None` when
/// `head` does not show all of the structure or the frame is malformed.
pub fn produce_request(head: &[u8], total: u64, version: i16) -> Option<(Scanned, u64)> {
    let flexible = version >= 9;
    let r = &mut Cursor { head, total, pos: 0 };
    let transactional_id = r.string(flexible)?;
    let acks = r.i16()?;
    let timeout_ms = r.i32()?;
    let mut topics = Vec::new();
    // Set once the last partition's, topic's and body's tagged fields are past.
    let mut closed = false;
    let topic_count = r.array_len(flexible)?.unwrap_or(0);
    for t in 0..topic_count {
        let mut topic = TopicRecords::default();
        if version >= 13 {
            topic.topic_id = Some(r.take::<16>()?);
        } else {
            topic.name = r.string(flexible)?.unwrap_or_default();
        }
        let partition_count = r.array_len(flexible)?.unwrap_or(0);
        for p in 0..partition_count {
            let mut partition = PartitionRecords { partition: r.i32()?, high_watermark: -1, ..Default::default() };
            if let Some(len) = r.bytes_len(flexible)? {
                partition.records_len = len;
                r.record_set(len, &mut partition)?;
            }
            if flexible && t + 1 == topic_count && p + 1 == partition_count {
                r.skip_closing_tagged_fields(3)?;
                closed = true;
            } else if flexible {
                r.skip_tagged_fields()?;
            }
            topic.partitions.push(partition);
        }
        if flexible && !closed {
            r.skip_tagged_fields()?;
        }
        topics.push(topic);
    }
    if flexible && !closed {
        r.skip_tagged_fields()?;
    }
    Some((Scanned::Produce(ProduceSummary { transactional_id, acks, timeout_ms, topics }), r.pos))
}
