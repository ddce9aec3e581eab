//! A [`MetricSink`] for native tests, fuzzing and benchmarks: counts in a map, shared data in a
//! map, as Envoy keeps them (values with a version bumped on every write).

use std::collections::HashMap;

use crate::labels::{SharedStore, StoreError};
use crate::metrics::{Metric, MetricSink};

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
