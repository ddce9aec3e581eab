//! Latency percentiles over every recorded request (no sampling, no histogram buckets: a run is
//! at most a few million requests, so sorting them all is cheap and exact).

/// Summary of a set of latencies, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Percentiles {
    pub count: usize,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// Nearest-rank percentile `q` (0..=1) of sorted `values`.
fn rank(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    let idx = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
    sorted.get(idx).copied().unwrap_or(0)
}

/// Percentiles of latencies given in nanoseconds. Sorts `nanos` in place.
pub fn percentiles(nanos: &mut [u64]) -> Percentiles {
    nanos.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    let count = nanos.len();
    let mean_us = if count == 0 { 0.0 } else { nanos.iter().map(|&n| n as f64).sum::<f64>() / count as f64 / 1000.0 };
    Percentiles {
        count,
        mean_us,
        p50_us: us(rank(nanos, 0.50)),
        p90_us: us(rank(nanos, 0.90)),
        p99_us: us(rank(nanos, 0.99)),
        p999_us: us(rank(nanos, 0.999)),
        max_us: us(nanos.last().copied().unwrap_or(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<u64> = (1..=1000).rev().map(|i| i * 1000).collect();
        let p = percentiles(&mut v);
        assert_eq!(p.count, 1000);
        assert_eq!(p.p50_us, 500.0);
        assert_eq!(p.p99_us, 990.0);
        assert_eq!(p.p999_us, 999.0);
        assert_eq!(p.max_us, 1000.0);
        assert_eq!(percentiles(&mut []), Percentiles::default());
    }
}
