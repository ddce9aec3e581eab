//! Fewer, slightly larger reads from a [`ChunkSource`].
//!
//! The splitter reads exactly what it needs: a frame's 4-byte size, then its first bytes, then
//! whatever a structural scan asks for. In Envoy every read is a hostcall (and an allocation in
//! the VM that Envoy calls back into), which costs far more than copying a few hundred bytes, so
//! per-request cost is dominated by the number of reads, not their size. [`ReadAhead`] turns each
//! small read into one read of up to `window` bytes and serves the following reads from it: the
//! size prefix and the header of a frame come in one read, and a chunk of small pipelined frames
//! in a few.
//!
//! It never reads past the end of the chunk, and a read is at most `max(len, window)` bytes, so the
//! bytes copied stay bounded per structural read: record payloads the splitter skips are still
//! never copied (at most the `window` bytes after the last structural read of a frame).

use crate::frame::{ChunkSource, DEFAULT_PREFIX_LEN};

/// A read-ahead window that covers, in one read, a frame's last structural bytes that are read
/// (the end of a captured frame: up to 508 bytes) and the next frame's size prefix and default
/// prefix. In Envoy each read costs about 5 µs (Envoy calls back into the VM to allocate the bytes
/// it returns) and copying 1 KiB far less. (It was sized for a Produce request's trailing tagged
/// fields, which the scan now skips unread, see `scan::Reader::skip_closing_tagged_fields`: two
/// pipelined 1 KiB Produce requests in one chunk take 2 reads with this window or a 516-byte one.)
pub const DEFAULT_WINDOW: usize = 2 * (4 + DEFAULT_PREFIX_LEN) - 8;

/// A [`ChunkSource`] that reads `window` bytes at a time from `inner` and serves reads from them.
/// One per chunk: positions are chunk offsets.
pub struct ReadAhead<'a, S: ChunkSource + ?Sized> {
    inner: &'a mut S,
    chunk_len: usize,
    window: usize,
    /// Bytes `[cached_start, cached_start + cached.len())` of the chunk.
    cached: Vec<u8>,
    cached_start: usize,
    /// Reads made on `inner` (for tests and benchmarks).
    reads: usize,
}

impl<'a, S: ChunkSource + ?Sized> ReadAhead<'a, S> {
    /// Reads from `inner`, a chunk of `chunk_len` bytes, `window` bytes at a time.
    pub fn new(inner: &'a mut S, chunk_len: usize, window: usize) -> Self {
        ReadAhead { inner, chunk_len, window, cached: Vec::new(), cached_start: 0, reads: 0 }
    }

    /// How many reads reached the inner source.
    pub fn reads(&self) -> usize {
        self.reads
    }

    /// The cached bytes for `[start, start + len)`, if all of them are cached.
    fn cached_range(&self, start: usize, len: usize) -> Option<&[u8]> {
        let from = start.checked_sub(self.cached_start)?;
        self.cached.get(from..from.checked_add(len)?)
    }
}

impl<S: ChunkSource + ?Sized> ChunkSource for ReadAhead<'_, S> {
    fn read_into(&mut self, start: usize, len: usize, out: &mut Vec<u8>) -> bool {
        if let Some(bytes) = self.cached_range(start, len) {
            out.extend_from_slice(bytes);
            return true;
        }
        if len >= self.window {
            // A big read (a captured frame) gains nothing from the cache.
            self.reads += 1;
            return self.inner.read_into(start, len, out);
        }
        let Some(end) = start.checked_add(self.window).map(|end| end.min(self.chunk_len)) else { return false };
        if end < start.saturating_add(len) {
            return false;
        }
        self.cached.clear();
        self.cached_start = start;
        self.reads += 1;
        if !self.inner.read_into(start, end - start, &mut self.cached) {
            self.cached.clear();
            return false;
        }
        match self.cached_range(start, len) {
            Some(bytes) => {
                out.extend_from_slice(bytes);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::SliceSource;

    fn read(source: &mut impl ChunkSource, start: usize, len: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        source.read_into(start, len, &mut out).then_some(out)
    }

    #[test]
    fn serves_following_reads_from_one_window() {
        let chunk: Vec<u8> = (0..=255).collect();
        let mut inner = SliceSource(&chunk);
        let mut ahead = ReadAhead::new(&mut inner, chunk.len(), 100);
        assert_eq!(read(&mut ahead, 0, 4), Some(vec![0, 1, 2, 3]));
        assert_eq!(read(&mut ahead, 4, 50), Some((4..54).collect()));
        assert_eq!(read(&mut ahead, 90, 10), Some((90..100).collect()));
        assert_eq!(ahead.reads(), 1);
        // Past the window: one new read from there, clipped to the chunk.
        assert_eq!(read(&mut ahead, 98, 4), Some(vec![98, 99, 100, 101]));
        assert_eq!(read(&mut ahead, 250, 6), Some((250..=255).collect()));
        assert_eq!(ahead.reads(), 3);
    }

    #[test]
    fn a_frame_end_and_the_next_frame_start_take_one_read() {
        // A scan reads a Produce request's three trailing tagged-field bytes, then the splitter
        // the next frame's size prefix and prefix.
        let chunk = vec![0u8; 4096];
        let mut inner = SliceSource(&chunk);
        let mut ahead = ReadAhead::new(&mut inner, chunk.len(), DEFAULT_WINDOW);
        let end = 1000;
        assert!(read(&mut ahead, end - 3, 3).is_some());
        assert!(read(&mut ahead, end, 4).is_some());
        assert!(read(&mut ahead, end + 4, DEFAULT_PREFIX_LEN).is_some());
        assert_eq!(ahead.reads(), 1);
    }

    #[test]
    fn big_reads_go_straight_through_and_out_of_range_fails() {
        let chunk = vec![7u8; 1000];
        let mut inner = SliceSource(&chunk);
        let mut ahead = ReadAhead::new(&mut inner, chunk.len(), 100);
        assert_eq!(read(&mut ahead, 10, 500).map(|v| v.len()), Some(500));
        assert_eq!(read(&mut ahead, 998, 4), None);
        assert_eq!(read(&mut ahead, usize::MAX, 4), None);
        assert_eq!(read(&mut ahead, 996, 4).map(|v| v.len()), Some(4));
    }

    #[test]
    fn a_failing_source_fails_the_read() {
        let chunk = vec![1u8; 10];
        let mut inner = SliceSource(&chunk);
        // The chunk claims more bytes than the source holds.
        let mut ahead = ReadAhead::new(&mut inner, 50, 100);
        assert_eq!(read(&mut ahead, 0, 4), None);
    }
}
