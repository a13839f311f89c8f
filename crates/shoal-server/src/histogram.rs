//! A lock-free latency histogram with fixed, Prometheus-style cumulative buckets. Recording
//! is two relaxed atomic adds, so it can sit on the request path of every core.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (the last bucket is +Inf).
pub const BUCKET_BOUNDS_US: [u64; 14] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// Counts of observations per bucket, plus their sum.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKET_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BUCKET_BOUNDS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKET_BOUNDS_US.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// Total observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }

    /// Sum of all observations in microseconds.
    pub fn sum_us(&self) -> u64 {
        self.sum_us.load(Relaxed)
    }

    /// Cumulative counts per bucket bound (`None` = +Inf), as Prometheus wants them.
    pub fn cumulative(&self) -> Vec<(Option<u64>, u64)> {
        let mut acc = 0;
        let mut out = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.buckets.iter().enumerate() {
            acc += b.load(Relaxed);
            out.push((BUCKET_BOUNDS_US.get(i).copied(), acc));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets() {
        let h = Histogram::default();
        h.record(Duration::from_micros(10));
        h.record(Duration::from_micros(60));
        h.record(Duration::from_secs(5));
        assert_eq!(h.count(), 3);
        assert_eq!(h.sum_us(), 5_000_070);
        let c = h.cumulative();
        assert_eq!(c[0], (Some(25), 1));
        assert_eq!(c[1], (Some(50), 1));
        assert_eq!(c[2], (Some(100), 2));
        assert_eq!(c.last(), Some(&(None, 3)));
    }
}
