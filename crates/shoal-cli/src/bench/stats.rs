//! Latency and outcome counts of one operation type in one phase, and how numbers are written
//! for a person.
//!
//! This module owns the histograms (HdrHistogram, nanoseconds, 3 significant digits) and the
//! formatting of counts and microseconds. It must never measure time or do I/O itself: tasks
//! hand it durations, and the report reads it. Each task fills its own `OpStats` and they are
//! merged once at the end, so recording takes no lock on the hot path.

use anyhow::{anyhow, Result};
use hdrhistogram::Histogram;

/// Longest latency the histograms hold; anything slower is recorded as this (an operation
/// that slow has long passed the client's own timeout anyway).
const LATENCY_MAX_NS: u64 = 60_000_000_000;

/// Outcomes of one operation type.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Latency of every operation that got an answer from the server (hits and misses).
    pub latency_ns: Histogram<u64>,
    /// Operations that failed (timeout, connection lost, server error).
    pub errors: u64,
    /// Reads that found no record. Counted as answered, and listed so a load that lost
    /// records cannot hide.
    pub misses: u64,
}

impl OpStats {
    pub fn new() -> Result<OpStats> {
        let latency_ns = Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3)
            .map_err(|e| anyhow!("creating a latency histogram: {e}"))?;
        Ok(OpStats {
            latency_ns,
            errors: 0,
            misses: 0,
        })
    }

    /// One answered operation that took `ns` nanoseconds.
    pub fn record(&mut self, ns: u64) {
        self.latency_ns
            .saturating_record(ns.clamp(1, LATENCY_MAX_NS));
    }

    /// Operations that got an answer.
    pub fn answered(&self) -> u64 {
        self.latency_ns.len()
    }

    /// Every operation attempted: answered or failed.
    pub fn attempted(&self) -> u64 {
        self.answered() + self.errors
    }

    pub fn merge(&mut self, other: &OpStats) -> Result<()> {
        self.latency_ns
            .add(&other.latency_ns)
            .map_err(|e| anyhow!("merging latency histograms: {e}"))?;
        self.errors += other.errors;
        self.misses += other.misses;
        Ok(())
    }

    /// The four latency figures the report prints, in nanoseconds; zeros when nothing was
    /// answered.
    pub fn percentiles_ns(&self) -> Percentiles {
        if self.answered() == 0 {
            return Percentiles::default();
        }
        let h = &self.latency_ns;
        Percentiles {
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// Latency figures of one operation type, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

/// Nanoseconds as microseconds for a table: one decimal below 100 µs, where it matters, and a
/// whole number with thousands separators above.
pub fn format_us(ns: u64) -> String {
    if ns < 100_000 {
        format!("{:.1}", ns as f64 / 1000.0)
    } else {
        format_count((ns + 500) / 1000)
    }
}

/// Nanoseconds as microseconds for JSON (exact: three decimals at most).
pub fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// An integer with `,` between groups of three digits.
pub fn format_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A byte count the way a person reads it: `123.4 MiB`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microseconds_keep_a_decimal_only_when_small() {
        assert_eq!(format_us(0), "0.0");
        assert_eq!(format_us(860), "0.9");
        assert_eq!(format_us(12_345), "12.3");
        assert_eq!(format_us(99_949), "99.9");
        assert_eq!(format_us(100_000), "100");
        assert_eq!(format_us(1_234_567), "1,235");
    }

    #[test]
    fn counts_are_grouped_by_three() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1000), "1,000");
        assert_eq!(format_count(1_234_567), "1,234,567");
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(180 << 20), "180.0 MiB");
    }

    #[test]
    fn percentiles_follow_the_recorded_latencies() {
        let mut a = OpStats::new().expect("histogram");
        let mut b = OpStats::new().expect("histogram");
        assert_eq!(a.percentiles_ns(), Percentiles::default());
        // 1000 operations at 10 µs, 9 at 1 ms and one at 50 ms, split over two tasks.
        for _ in 0..1000 {
            a.record(10_000);
        }
        for _ in 0..9 {
            b.record(1_000_000);
        }
        b.record(50_000_000);
        b.errors = 2;
        b.misses = 1;
        a.merge(&b).expect("merge");
        assert_eq!(a.answered(), 1010);
        assert_eq!(a.attempted(), 1012);
        assert_eq!(a.misses, 1);
        let p = a.percentiles_ns();
        assert_eq!(format_us(p.p50), "10.0");
        // The 99th percentile is still inside the fast group; the 99.9th is in the slow one.
        assert_eq!(format_us(p.p99), "10.0");
        assert_eq!(format_us(p.p999), "1,000");
        assert_eq!(format_us(p.max), "50,004");
        // Too slow to hold is kept as the ceiling, not dropped.
        a.record(u64::MAX);
        assert_eq!(a.answered(), 1011);
    }
}
