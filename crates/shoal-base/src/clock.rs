//! The clock abstraction. Everything below the server shell reads time through [`Clock`],
//! so tests and the simulator can move time themselves. Only [`SystemClock`] reads the wall clock.

/// Seconds from the Unix epoch to the citrusleaf epoch, 2010-01-01T00:00:00Z, which
/// Aerospike uses for void-times and last-update-times.
pub const CITRUSLEAF_EPOCH_UNIX_S: u64 = 1_262_304_000;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_unix_ms(&self) -> u64;

    /// Seconds since the citrusleaf epoch (saturating at zero before 2010).
    fn now_cl_s(&self) -> u32 {
        let s = self.now_unix_ms() / 1000;
        u32::try_from(s.saturating_sub(CITRUSLEAF_EPOCH_UNIX_S)).unwrap_or(u32::MAX)
    }

    /// Milliseconds since the citrusleaf epoch: the unit of last-update-time.
    fn now_cl_ms(&self) -> u64 {
        self.now_unix_ms()
            .saturating_sub(CITRUSLEAF_EPOCH_UNIX_S * 1000)
    }
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that may read the wall clock
    fn now_unix_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}
