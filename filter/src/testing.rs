//! Stand-ins for Envoy in native tests, fuzzing and benchmarks: a [`MetricSink`] that counts in a
//! map, shared data in a map as Envoy keeps it (values with a version bumped on every write), and
//! one direction of a connection's buffer with Envoy's edit semantics ([`Side`]).

use std::collections::HashMap;

use kafka_lens_codec::frame::{ChunkSource, SliceSource};

use crate::connection::Verdict;
use crate::flow::StreamBuffer;
use crate::labels::{SharedStore, StoreError};
use crate::metrics::{Metric, MetricSink};

/// One of Envoy's connection buffers during a callback: reads any range; the only edit is a
/// prefix replacement (`set_buffer(0, len, data)`), as Envoy allows.
pub struct EnvoyBuf<'a>(pub &'a mut Vec<u8>);

impl ChunkSource for EnvoyBuf<'_> {
    fn read_into(&mut self, start: usize, len: usize, out: &mut Vec<u8>) -> bool {
        SliceSource(self.0).read_into(start, len, out)
    }
}

impl StreamBuffer for EnvoyBuf<'_> {
    fn replace_prefix(&mut self, len: usize, data: &[u8]) -> bool {
        if len > self.0.len() {
            return false;
        }
        self.0.splice(..len, data.iter().copied());
        true
    }
}

/// One direction of a connection through Envoy: every byte the peer sent, what sits in Envoy's
/// buffer, what went on to the other side.
#[derive(Debug, Default, Clone)]
pub struct Side {
    pub input: Vec<u8>,
    pub buffer: Vec<u8>,
    pub forwarded: Vec<u8>,
}

impl Side {
    /// Envoy receiving `bytes`: appended to its buffer, which the filter callback sees whole; on
    /// `Continue` the buffer goes on, on `Pause` it stays (the next callback sees it again).
    pub fn deliver(&mut self, bytes: &[u8], callback: impl FnOnce(&mut EnvoyBuf<'_>, usize) -> Verdict) -> Verdict {
        self.input.extend_from_slice(bytes);
        self.buffer.extend_from_slice(bytes);
        let len = self.buffer.len();
        let verdict = callback(&mut EnvoyBuf(&mut self.buffer), len);
        if verdict == Verdict::Continue {
            self.forwarded.append(&mut self.buffer);
        }
        verdict
    }
}

/// Proxy-wasm shared data in memory, with Envoy's compare-and-swap semantics.
#[derive(Debug, Default, Clone)]
pub struct MapStore(pub HashMap<String, (Vec<u8>, u32)>);

impl SharedStore for MapStore {
    fn get(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        Ok(self.0.get(key).cloned())
    }
    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let version = self.0.get(key).map_or(0, |(_, v)| *v);
        if cas != 0 && cas != version {
            return Err(StoreError::CasMismatch);
        }
        self.0.insert(key.to_string(), (value.to_vec(), version.saturating_add(1)));
        Ok(())
    }
}

/// Counters and gauges sum; a histogram counts its samples. Shared data is kept.
#[derive(Debug, Default, Clone)]
pub struct TestSink {
    pub metrics: HashMap<Metric, i64>,
    pub store: MapStore,
    pub sequences: crate::retries::ProducerSequences,
}

impl TestSink {
    /// The value of one metric (0 if never touched).
    pub fn get(&self, metric: &Metric) -> i64 {
        self.metrics.get(metric).copied().unwrap_or(0)
    }

    /// Sum over the metrics `select` picks.
    pub fn sum(&self, select: impl Fn(&Metric) -> bool) -> i64 {
        self.metrics.iter().filter(|(m, _)| select(m)).map(|(_, v)| *v).sum()
    }
}

impl MetricSink for TestSink {
    fn add(&mut self, metric: Metric, by: i64) {
        self.metrics.add(metric, by);
    }
    fn record(&mut self, metric: Metric, value: u64) {
        self.metrics.record(metric, value);
    }
    fn shared(&mut self) -> Option<&mut dyn SharedStore> {
        Some(&mut self.store)
    }
    fn producer_sequences(&mut self) -> Option<&mut crate::retries::ProducerSequences> {
        Some(&mut self.sequences)
    }
}
