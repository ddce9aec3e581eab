//! Counts the heap allocations kafka-lens's connection logic makes per Produce round trip, natively,
//! over the frames `v8frames` writes, fed the way `bench/v8/host.cjs` feeds them (the request in
//! two chunks, the response in one). Allocations cost the Wasm module most when its caches are
//! cold (each touches the allocator's bins and a chunk header), so this is one of the numbers
//! behind `bench/v8`'s timings. The metric sink drops what it is given, so the count is the
//! connection's own.
//!
//! Usage: `allocs <frames dir> [round trips]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use kafka_lens_codec::frame::SliceSource;
use kafka_lens_filter::config::Config;
use kafka_lens_filter::connection::{Connection, Limits};
use kafka_lens_filter::metrics::{Metric, MetricSink};

/// The system allocator, counting allocations (reallocations count as one).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct DropSink;

impl MetricSink for DropSink {
    fn add(&mut self, metric: Metric, by: i64) {
        std::hint::black_box((metric, by));
    }
    fn record(&mut self, metric: Metric, value: u64) {
        std::hint::black_box((metric, value));
    }
    fn now_micros(&mut self) -> Option<u64> {
        Some(0)
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().context("usage: allocs <frames dir> [round trips]")?);
    let trips: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let mut request = std::fs::read(dir.join("request.bin"))?;
    let mut response = std::fs::read(dir.join("response.bin"))?;
    let split = 500_000.min(request.len() - 1);
    let mut conn = Connection::new(Limits::from(&Config::default()));
    let mut sink = DropSink;
    let mut per_callback = [0u64; 3];
    // The first round trip builds the connection's lasting state: not counted.
    for trip in 0..=trips {
        let id = i32::try_from(1000 + trip)?.to_be_bytes();
        request.get_mut(8..12).context("request too short")?.copy_from_slice(&id);
        response.get_mut(4..8).context("response too short")?.copy_from_slice(&id);
        let (head, rest) = request.split_at(split);
        let chunks: [(&[u8], bool); 3] = [(head, true), (rest, true), (&response, false)];
        for ((chunk, is_request), counted) in chunks.into_iter().zip(per_callback.iter_mut()) {
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            if is_request {
                conn.on_request_data(&mut SliceSource(chunk), chunk.len(), &mut sink);
            } else {
                conn.on_response_data(&mut SliceSource(chunk), chunk.len(), &mut sink);
            }
            if trip > 0 {
                *counted += ALLOCATIONS.load(Ordering::Relaxed) - before;
            }
        }
    }
    let per = |n: u64| n as f64 / trips as f64;
    let each: Vec<f64> = per_callback.iter().map(|n| per(*n)).collect();
    println!("{{\"allocations_per_round_trip\": {}, \"per_callback\": {:?}}}", per(per_callback.iter().sum()), each);
    Ok(())
}
