//! The floor filters: proxy-wasm network filters that do (almost) nothing, for the benchmarks.
//!
//! Configured with nothing (`floor`), every byte still crosses Envoy's Wasm boundary as a
//! callback (`on_downstream_data`, `on_upstream_data`) that returns `Continue` without reading the
//! buffer, so what it costs over plain `tcp_proxy` is the minimum any proxy-wasm network filter
//! pays: the VM hop and the per-connection context, with no data copied.
//!
//! Configured with `{"read": "frame_starts"}` (`read_floor`), it also walks the Kafka frames of
//! both directions by their size prefixes and reads each frame's first bytes into the VM the way
//! kafka-lens does (one read of up to [`READ_WINDOW`] bytes at a frame start; a frame starting
//! inside bytes already read costs no new read), and looks at nothing else. That is the least any
//! filter that looks at Kafka requests and responses through proxy-wasm pays: every read makes
//! Envoy call back into the VM to allocate the bytes it returns. The benchmarks compare kafka-lens
//! against both to separate the filter's own work from the price of being a (reading) Wasm filter.

/// Bytes read at a frame start: kafka-lens's read-ahead window
/// (`kafka_lens_codec::read_ahead::DEFAULT_WINDOW`).
pub const READ_WINDOW: usize = 1024;

/// The frames of one direction, walked by their size prefixes.
#[derive(Debug, Default)]
pub struct FrameWalk {
    /// Body bytes of the current frame not passed yet.
    left: u64,
    /// A size prefix split across callbacks: its bytes so far.
    prefix: [u8; 4],
    prefix_have: usize,
}

impl FrameWalk {
    /// Walks `len` new bytes; `read(start, max)` reads up to `max` bytes from `start` (buffer
    /// positions) and returns them (`None`: the read failed, walking stops for this callback).
    /// Returns how many reads it made.
    pub fn walk(&mut self, len: usize, mut read: impl FnMut(usize, usize) -> Option<Vec<u8>>) -> usize {
        let mut reads = 0;
        let mut pos = 0usize;
        // Bytes read during this callback and where they start.
        let mut window: Vec<u8> = Vec::new();
        let mut window_start = 0usize;
        while pos < len {
            if self.left > 0 {
                let pass = usize::try_from(self.left).unwrap_or(usize::MAX).min(len - pos);
                pos += pass;
                self.left -= pass as u64;
                continue;
            }
            let in_window = pos >= window_start && pos < window_start + window.len();
            if !in_window {
                match read(pos, READ_WINDOW.min(len - pos)) {
                    Some(bytes) if !bytes.is_empty() => {
                        window = bytes;
                        window_start = pos;
                        reads += 1;
                    }
                    _ => return reads,
                }
            }
            let offset = pos - window_start;
            let want = 4 - self.prefix_have;
            let available = window.get(offset..).unwrap_or_default();
            let take = want.min(available.len());
            for (slot, byte) in self.prefix.iter_mut().skip(self.prefix_have).zip(available.iter().take(take)) {
                *slot = *byte;
            }
            self.prefix_have += take;
            pos += take;
            if self.prefix_have == 4 {
                self.prefix_have = 0;
                self.left = u64::try_from(i32::from_be_bytes(self.prefix)).unwrap_or(0);
            }
        }
        reads
    }
}

#[cfg(target_arch = "wasm32")]
mod filter {
    use super::FrameWalk;
    use proxy_wasm::traits::{Context, RootContext, StreamContext};
    use proxy_wasm::types::{Action, ContextType};

    #[link(wasm_import_module = "env")]
    extern "C" {
        fn proxy_get_buffer_bytes(buffer_type: u32, start: usize, max_size: usize, data: *mut *mut u8, size: *mut usize) -> u32;
    }

    const DOWNSTREAM: u32 = 2;
    const UPSTREAM: u32 = 3;
    const PLUGIN_CONFIGURATION: u32 = 7;

    /// Reads up to `max` bytes of a buffer from `start`, returning the status instead of
    /// panicking as the SDK's wrapper would.
    fn read(buffer: u32, start: usize, max: usize) -> Option<Vec<u8>> {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size = 0usize;
        // SAFETY: Envoy returns memory it allocated in this VM through the SDK's exported
        // `proxy_on_memory_allocate` (a Vec<u8> of `size` bytes), taken back here.
        let status = unsafe { proxy_get_buffer_bytes(buffer, start, max, &mut data, &mut size) };
        (status == 0 && !data.is_null()).then(|| unsafe { Vec::from_raw_parts(data, size, size) })
    }

    /// Creates one [`Stream`] per connection; reads frame starts when configured to.
    #[derive(Default)]
    pub struct Root {
        read_frame_starts: bool,
    }

    impl Context for Root {}

    impl RootContext for Root {
        fn on_configure(&mut self, size: usize) -> bool {
            let config = if size > 0 { read(PLUGIN_CONFIGURATION, 0, size).unwrap_or_default() } else { Vec::new() };
            let config: String = String::from_utf8_lossy(&config).chars().filter(|c| !c.is_whitespace()).collect();
            self.read_frame_starts = config == r#"{"read":"frame_starts"}"#;
            // Anything else configured is a mistake in a bench config: refuse it.
            config.is_empty() || config == "{}" || self.read_frame_starts
        }

        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::StreamContext)
        }

        fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
            Some(Box::new(Stream { walks: self.read_frame_starts.then(Default::default) }))
        }
    }

    /// One connection: forwards everything; reads frame starts when configured to.
    pub struct Stream {
        /// Requests and responses, walked (`read_floor`), or none (`floor`).
        walks: Option<(FrameWalk, FrameWalk)>,
    }

    impl Context for Stream {}

    impl StreamContext for Stream {
        fn on_downstream_data(&mut self, data_size: usize, _end_of_stream: bool) -> Action {
            if let Some((requests, _)) = &mut self.walks {
                requests.walk(data_size, |start, max| read(DOWNSTREAM, start, max));
            }
            Action::Continue
        }

        fn on_upstream_data(&mut self, data_size: usize, _end_of_stream: bool) -> Action {
            if let Some((_, responses)) = &mut self.walks {
                responses.walk(data_size, |start, max| read(UPSTREAM, start, max));
            }
            Action::Continue
        }
    }
}

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    // Only the root context: Envoy refuses hostcalls (even setting the log level) during
    // `_initialize`.
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> { Box::new(filter::Root::default()) });
}}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of the given body sizes, back to back.
    fn frames(sizes: &[usize]) -> Vec<u8> {
        sizes.iter().flat_map(|&n| (n as i32).to_be_bytes().into_iter().chain(std::iter::repeat_n(7u8, n))).collect()
    }

    /// Walks `stream` cut into `chunks`; returns the reads made and the positions (in the stream)
    /// they started at.
    fn walk(stream: &[u8], chunks: &[usize]) -> (usize, Vec<usize>) {
        let mut walker = FrameWalk::default();
        let (mut at, mut starts, mut total) = (0usize, Vec::new(), 0);
        for &n in chunks {
            let chunk = &stream[at..at + n];
            total += walker.walk(n, |start, max| {
                starts.push(at + start);
                Some(chunk[start..(start + max).min(n)].to_vec())
            });
            at += n;
        }
        (total, starts)
    }

    #[test]
    fn one_read_per_frame_start_and_none_inside_records() {
        // Two 1 MB frames, each arriving in two chunks: a read at each frame start only.
        let stream = frames(&[1_000_000, 1_000_000]);
        let (reads, starts) = walk(&stream, &[600_000, 400_004, 500_000, 500_004]);
        assert_eq!((reads, starts), (2, vec![0, 1_000_004]));
    }

    #[test]
    fn frames_starting_inside_the_window_cost_no_read() {
        // Ten 59-byte responses in one chunk: one window covers the first 16 frame starts.
        let stream = frames(&[59; 10]);
        assert_eq!(walk(&stream, &[stream.len()]).0, 1);
        // Past the window, another read.
        let stream = frames(&[100; 30]);
        assert_eq!(walk(&stream, &[stream.len()]), (3, vec![0, 1040, 2080]));
    }

    #[test]
    fn a_size_prefix_split_across_chunks_is_put_together() {
        let stream = frames(&[10, 300, 5]);
        for cut in 1..stream.len() {
            let (_, starts) = walk(&stream, &[cut, stream.len() - cut]);
            // The third frame starts at 14 + 304 = 318; every read starts at a frame start or
            // inside a size prefix, never inside a body.
            assert!(starts.iter().all(|&s| [0, 1, 2, 3, 14, 15, 16, 17, 318, 319, 320, 321].contains(&s) || s == cut), "cut {cut}: {starts:?}");
        }
    }
}
