//! Frame splitting under arbitrary chunking: never panics, and every chunking of the same bytes
//! yields the same events as one whole chunk.
#![no_main]

use kafka_lens_codec::frame::{Disposition, FrameEvent, FrameSplitter, SliceSource, SplitterConfig};
use libfuzzer_sys::fuzz_target;

fn split(data: &[u8], chunk: usize, config: SplitterConfig) -> Vec<FrameEvent> {
    let mut splitter = FrameSplitter::new(config);
    let mut events = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        splitter.push(&mut SliceSource(piece), piece.len(), |e| {
            let d = match &e {
                FrameEvent::Start(s) if s.index % 2 == 0 => Disposition::Capture,
                _ => Disposition::Skip,
            };
            events.push(e);
            d
        });
    }
    events
}

fuzz_target!(|input: (u8, u16, &[u8])| {
    let (chunk, max, data) = input;
    let config = SplitterConfig { max_frame_size: u32::from(max) * 16, min_frame_size: 4, prefix_len: 64 };
    let whole = split(data, data.len(), config);
    assert_eq!(split(data, usize::from(chunk), config), whole);
});
