//! Holding and editing one direction of a connection in Envoy's buffer.
//!
//! Envoy lets a network filter do three things with the bytes of a callback: forward them all
//! (`Continue`), keep them all for the next callback, which then sees them again followed by the
//! new bytes (`Pause`), or replace a prefix of the buffer (`set_buffer(0, k, data)`); an edit
//! starting inside the buffer is refused. This module turns "replace frame F with these bytes" and
//! "do not forward frame F until it is whole" into exactly those operations:
//!
//! * Frames are tracked by stream offset (bytes of this direction before them). `shift` maps a
//!   stream offset to its position in Envoy's current buffer (`position = offset - shift`), for
//!   every byte after the last edit.
//! * Edits of one callback become one prefix replacement: the bytes between edits are read back
//!   from the buffer and rewritten. An edit at the front of the buffer copies nothing else; an
//!   edit behind other frames copies them (only on refusals, never on the forwarding path).
//! * A frame that must be seen whole before it may pass is held: by pausing while the held bytes
//!   fit the hold budget, otherwise by moving its bytes into the VM as they arrive (forwarding what
//!   precedes it), so Envoy's buffer never grows past its limit and stops reading.
//! * A frame refused at its start (too large to hold) is drained as it passes and its replacement
//!   written where it ends.

use bytes::Bytes;
use kafka_lens_codec::frame::{ChunkSource, SliceSource};

/// Envoy's buffer of one direction during a callback, as the filter may edit it.
pub trait StreamBuffer: ChunkSource {
    /// Replaces the first `len` bytes with `data` (Envoy's only in-place edit). False if refused.
    fn replace_prefix(&mut self, len: usize, data: &[u8]) -> bool;
}

/// Slices are read-only: the observe-only paths (and tests of them) never edit.
impl StreamBuffer for SliceSource<'_> {
    fn replace_prefix(&mut self, _len: usize, _data: &[u8]) -> bool {
        false
    }
}

/// What becomes of a tracked frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Not decided yet: the frame is held until it is.
    Undecided,
    /// Forwarded as it is.
    Forward,
    /// Replaced by these bytes (empty: dropped).
    Replace(Bytes),
    /// The frame's first `len` bytes replaced by `data`, the rest forwarded as it is (a rename
    /// in a record-carrying frame). Decided at the frame's start when its prefix shows every
    /// edit: the frame is then not held, only its first `len` bytes are waited for.
    ReplacePrefix { len: usize, data: Bytes },
}

/// A frame the filter may edit, with what the connection needs to decide on it.
#[derive(Debug)]
pub struct Tracked<T> {
    /// Stream offset of the frame's size prefix.
    pub start: u64,
    /// Stream offset just after its last byte.
    pub end: u64,
    pub fate: Fate,
    /// Refused at its start: dropped as it passes instead of held.
    pub drain: bool,
    /// The frame's first bytes, moved into the VM because holding them in Envoy's buffer would
    /// have exceeded the hold budget.
    held: Option<Vec<u8>>,
    pub payload: T,
}

impl<T> Tracked<T> {
    pub fn new(start: u64, body_len: u32, payload: T) -> Self {
        Tracked { start, end: start + 4 + u64::from(body_len), fate: Fate::Undecided, drain: false, held: None, payload }
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// What a callback's edits did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settled {
    /// Keep the buffer (Envoy `Pause`): a held frame is not whole yet.
    pub pause: bool,
    /// A frame's first bytes were moved into the VM.
    pub moved_to_vm: bool,
    /// An edit Envoy refused or a read that failed: the connection cannot be kept consistent.
    pub failed: bool,
}

/// One direction's holding state.
#[derive(Debug)]
pub struct Flow<T> {
    shift: i64,
    paused: bool,
    open: Option<Tracked<T>>,
    finished: Vec<Tracked<T>>,
    /// First bytes of a frame whose start is not known yet, moved into the VM (see
    /// [`Flow::settle`]); they go back in front of the frame's next bytes.
    partial: Option<(u64, Vec<u8>)>,
    /// Those bytes once their frame started (stream offset of the frame): the frame takes them
    /// if tracked, else they are re-inserted at the buffer's front.
    release: Option<(u64, Vec<u8>)>,
}

impl<T> Default for Flow<T> {
    fn default() -> Self {
        Flow { shift: 0, paused: false, open: None, finished: Vec::new(), partial: None, release: None }
    }
}

/// Most bytes a frame's start needs before the splitter reports it: size prefix and prefix.
const FRAME_START_BYTES: u64 = 4 + kafka_lens_codec::frame::DEFAULT_PREFIX_LEN as u64;

/// From this many unedited bytes in front of an edit on, [`Flow::apply`] writes them back with a
/// replacement of their own instead of copying them into the edited bytes.
const SEPARATE_LEAD_BYTES: usize = 4096;

/// One edit of the buffer: positions `[start, end)` become `data`.
#[derive(Debug)]
struct Edit {
    start: usize,
    end: usize,
    data: Bytes,
}

impl<T> Flow<T> {
    /// Call at the start of a callback: where the splitter's new bytes begin in the buffer.
    /// `consumed` is the splitter's stream offset (bytes it consumed so far).
    pub fn begin(&mut self, consumed: u64) -> usize {
        if !self.paused {
            self.shift = consumed as i64;
        }
        usize::try_from(consumed as i64 - self.shift).unwrap_or(0)
    }

    /// Whether the last callback paused (the buffer starts with bytes seen before).
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Starts tracking a frame; the frame tracked before it, if any, has passed whole.
    pub fn track(&mut self, mut frame: Tracked<T>) {
        if self.release.as_ref().is_some_and(|(offset, _)| *offset == frame.start) {
            frame.held = self.release.take().map(|(_, bytes)| bytes);
        }
        if let Some(done) = self.open.replace(frame) {
            self.finished.push(done);
        }
    }

    /// A frame starts: the one tracked before it, if any, has passed whole. Call before
    /// [`Flow::track`] for every frame, tracked or not.
    pub fn frame_start(&mut self) {
        if let Some(done) = self.open.take() {
            self.finished.push(done);
        }
        if let Some(partial) = self.partial.take() {
            self.release = Some(partial);
        }
    }

    /// The frame being read, if tracked.
    pub fn open_mut(&mut self) -> Option<&mut Tracked<T>> {
        self.open.as_mut()
    }

    /// Frames whose last byte is at or before `stream_end` (the end of this callback's bytes), to
    /// decide on before [`Flow::settle`].
    pub fn take_finished(&mut self, stream_end: u64) -> Vec<Tracked<T>> {
        if self.open.as_ref().is_some_and(|f| f.end <= stream_end) {
            if let Some(done) = self.open.take() {
                self.finished.push(done);
            }
        }
        std::mem::take(&mut self.finished)
    }

    /// Buffer position of a stream offset, clipped to the buffer's start.
    fn position(&self, offset: u64) -> usize {
        usize::try_from(offset as i64 - self.shift).unwrap_or(0)
    }

    /// Reads a whole tracked frame (its VM-held part, then the buffer's), for a decision that
    /// needs every byte (re-encoding a request without some topics).
    pub fn read_frame<S: StreamBuffer + ?Sized>(&self, frame: &Tracked<T>, buffer: &mut S) -> Option<Vec<u8>> {
        self.read_frame_prefix(frame, buffer, frame.len())
    }

    /// Reads the first `max` bytes of a whole tracked frame (all of it if shorter), for a
    /// decision that needs only its start (renaming the names near a Produce request's start).
    pub fn read_frame_prefix<S: StreamBuffer + ?Sized>(&self, frame: &Tracked<T>, buffer: &mut S, max: u64) -> Option<Vec<u8>> {
        let want = usize::try_from(max.min(frame.len())).ok()?;
        let mut out = frame.held.as_ref().map(|held| held.get(..want).unwrap_or(held).to_vec()).unwrap_or_default();
        // The bytes after the VM-held ones are in the buffer.
        let start = self.position(frame.start + out.len() as u64);
        let end = self.position(frame.start + want as u64);
        if end <= start {
            return Some(out);
        }
        buffer.read_into(start, end - start, &mut out).then_some(out)
    }

    /// Applies the decisions on `finished` frames and holds or drains the open one; `len` is the
    /// buffer's length, `budget` the most bytes a pause may keep in Envoy's buffer.
    /// `pending` is the stream offset of a frame whose start is not known yet
    /// ([`kafka_lens_codec::frame::FrameSplitter::pending_start`]): it is held too.
    pub fn settle<S: StreamBuffer + ?Sized>(
        &mut self,
        buffer: &mut S,
        len: usize,
        budget: u64,
        finished: Vec<Tracked<T>>,
        pending: Option<u64>,
    ) -> Settled {
        let mut settled = Settled::default();
        let mut edits = Vec::new();
        if let Some((_, released)) = self.release.take() {
            // A frame's first bytes held in the VM before it showed it needs no holding.
            edits.push(Edit { start: 0, end: 0, data: Bytes::from(released) });
        }
        for frame in finished {
            match frame.fate {
                Fate::Replace(data) => edits.push(Edit { start: self.position(frame.start), end: self.position(frame.end), data }),
                Fate::ReplacePrefix { len, data } => edits.push(self.prefix_edit(frame.start, frame.held, len, data)),
                Fate::Forward | Fate::Undecided => {
                    if let Some(held) = frame.held {
                        edits.push(Edit { start: 0, end: 0, data: Bytes::from(held) });
                    }
                }
            }
        }
        let mut move_to_vm = None;
        let early = match &self.open {
            Some(Tracked { fate: Fate::ReplacePrefix { len: prefix, .. }, held: None, start, .. }) => {
                Some((self.position(*start), *prefix))
            }
            _ => None,
        };
        if let Some((start, prefix)) = early {
            if start.saturating_add(prefix) <= len {
                // Decided at its start: the edit is made and the rest of the frame passes.
                if let Some(Tracked { fate: Fate::ReplacePrefix { len, data }, start, .. }) = self.open.take() {
                    edits.push(self.prefix_edit(start, None, len, data));
                }
            } else {
                // Its first bytes (a frame start's worth at most) are not all here yet.
                settled.pause = true;
            }
        } else if let Some(open) = &self.open {
            let start = self.position(open.start);
            if open.drain {
                edits.push(Edit { start, end: len, data: Bytes::new() });
            } else if open.held.is_none() && (start as u64).saturating_add(open.len()) <= budget {
                settled.pause = true;
            } else {
                // Too much for Envoy's buffer: the frame's bytes so far go into the VM, and so do
                // its next ones, callback by callback, until it is whole.
                move_to_vm = Some(start);
            }
        } else if let Some(offset) = pending {
            let start = self.position(offset);
            if self.partial.is_some() || (start as u64).saturating_add(FRAME_START_BYTES) <= budget {
                settled.pause = true;
            } else {
                move_to_vm = Some(start);
            }
        }
        if let Some(start) = move_to_vm {
            let mut held = Vec::new();
            if !buffer.read_into(start, len.saturating_sub(start), &mut held) {
                settled.failed = true;
                return settled;
            }
            match &mut self.open {
                Some(open) => open.held.get_or_insert_with(Vec::new).append(&mut held),
                None => self.partial = pending.map(|offset| (offset, held)),
            }
            edits.push(Edit { start, end: len, data: Bytes::new() });
            settled.moved_to_vm = true;
        }
        if !edits.is_empty() && !self.apply(buffer, &edits) {
            settled.failed = true;
        }
        self.paused = settled.pause;
        settled
    }

    /// The edit replacing the first `len` bytes of the frame at stream offset `start` with `data`;
    /// `held` are the frame's first bytes if they were moved into the VM.
    fn prefix_edit(&self, start: u64, held: Option<Vec<u8>>, len: usize, data: Bytes) -> Edit {
        let held_len = held.as_ref().map_or(0, Vec::len);
        // Where the frame's bytes still in Envoy's buffer begin.
        let at = self.position(start + held_len as u64);
        match held {
            Some(held) if len <= held_len => {
                let mut out = data.to_vec();
                out.extend_from_slice(held.get(len..).unwrap_or_default());
                Edit { start: at, end: at, data: Bytes::from(out) }
            }
            _ => Edit { start: if held_len == 0 { self.position(start) } else { at }, end: self.position(start + len as u64), data },
        }
    }

    /// Writes the edits as one prefix replacement and moves `shift` past it. The unedited bytes
    /// in front of the first edit (the end of an earlier frame sharing the callback: up to a
    /// whole pipelined request) are read on their own and put back in front in a second
    /// replacement, so they cross into the VM and back once, never copied within it.
    fn apply<S: StreamBuffer + ?Sized>(&mut self, buffer: &mut S, edits: &[Edit]) -> bool {
        let lead_end = edits.first().map_or(0, |edit| edit.start);
        let mut lead = Vec::new();
        if lead_end >= SEPARATE_LEAD_BYTES && !buffer.read_into(0, lead_end, &mut lead) {
            return false;
        }
        let mut out = Vec::new();
        let mut at = lead.len();
        for edit in edits {
            if edit.start < at || edit.end < edit.start {
                return false;
            }
            if edit.start > at && !buffer.read_into(at, edit.start - at, &mut out) {
                return false;
            }
            out.extend_from_slice(&edit.data);
            at = edit.end;
        }
        if !buffer.replace_prefix(at, &out) || (!lead.is_empty() && !buffer.replace_prefix(0, &lead)) {
            return false;
        }
        self.shift += at as i64 - (lead.len() + out.len()) as i64;
        true
    }
}
