//! The pace and progress of migrations: the token bucket that holds one node's emigrations to
//! `migrate-max-mbps`, and the estimator behind `migrate_eta_s` and the migration progress
//! log line.
//!
//! Both are plain values fed the caller's clock (`now`: a `Duration` since any fixed origin
//! the caller keeps), so tests step time by hand and need no wall clock. The shell
//! (`shoal-server`'s `ownership`) keeps one [`TokenBucket`] per node, shared by every
//! emigration worker, and one [`Progress`] per namespace.
//!
//! Invariants: the bucket never lets more than `rate x elapsed + burst` bytes through (it
//! hands out waits, it never refuses); a rate of 0 means unlimited and never waits. The
//! estimator reports an ETA of 0 exactly when nothing remains and no ETA while it has seen
//! no progress. Neither must ever see client traffic or replication: only record data sent
//! by migrations is paced. Aerospike counterpart: the migrate throttling and progress
//! statistics of `as/src/fabric/migrate.c` (behaviour only; nothing is taken from it).

use std::time::Duration;

/// Most bytes the bucket lets through at once after an idle spell, as time at the full rate:
/// enough to keep a few record batches moving without waiting, short enough that the rate
/// holds over any window of a second or more.
pub const BURST: Duration = Duration::from_millis(100);

/// How quickly the rate estimate forgets: samples this old weigh 1/e of a fresh one.
pub const RATE_MEMORY: Duration = Duration::from_secs(10);

/// A token bucket in bytes that runs into debt instead of refusing: a sender reserves a
/// batch, then waits as long as the bucket says before sending it. A batch larger than the
/// burst still goes out (after its share of time), so the batch size needs no relation to
/// the rate.
#[derive(Debug, Clone, Default)]
pub struct TokenBucket {
    /// Bytes that may be sent now; negative while reservations wait.
    tokens: f64,
    /// When `tokens` was last brought up to date (None before the first reservation).
    last: Option<Duration>,
}

impl TokenBucket {
    pub fn new() -> TokenBucket {
        TokenBucket::default()
    }

    /// Reserves `bytes` at `now` with a rate of `rate_bytes_per_s` (0 = unlimited) and
    /// returns how long the caller must wait before sending them. Reservations from several
    /// senders queue behind each other, so together they keep to the one rate.
    pub fn reserve(&mut self, now: Duration, bytes: u64, rate_bytes_per_s: u64) -> Duration {
        let previous = self.last.replace(self.last.map_or(now, |l| l.max(now)));
        if rate_bytes_per_s == 0 {
            // Unlimited: nothing is owed, and a later limit starts from an empty bucket
            // rather than from credit earned while unlimited.
            self.tokens = 0.0;
            return Duration::ZERO;
        }
        let rate = rate_bytes_per_s as f64;
        let burst = rate * BURST.as_secs_f64();
        let available = match previous {
            // A fresh bucket starts full: the first batch of a migration need not wait.
            None => burst,
            // A clock that stepped back earns nothing.
            Some(last) => (self.tokens + now.saturating_sub(last).as_secs_f64() * rate).min(burst),
        };
        self.tokens = available - bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

/// What a namespace's migrations look like at one moment (what `namespace/<ns>` prints).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Partitions completed per second (sent and received), recent seconds weighted most.
    pub partitions_per_s: Option<f64>,
    /// Record bytes moved per second (sent and received), weighted the same way.
    pub bytes_per_s: Option<f64>,
    /// Seconds until no partition remains at that rate: 0 when none remain, None while no
    /// progress has been seen yet (or it stalled completely).
    pub eta_s: Option<u64>,
}

/// An exponentially weighted rate that averages only over the time it has observed: early on
/// it is the plain mean since migrations began (a fresh estimate does not start from zero),
/// later it forgets over [`RATE_MEMORY`].
#[derive(Debug, Clone, Copy, Default)]
struct Rate {
    weighted: f64,
    weight: f64,
}

impl Rate {
    fn add(&mut self, per_s: f64, dt: Duration) {
        let keep = (-dt.as_secs_f64() / RATE_MEMORY.as_secs_f64()).exp();
        self.weighted = self.weighted * keep + per_s * (1.0 - keep);
        self.weight = self.weight * keep + (1.0 - keep);
    }

    fn value(&self) -> Option<f64> {
        (self.weight > 0.0).then(|| self.weighted / self.weight)
    }
}

/// The progress estimator of one namespace, fed about once a second.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// The previous sample: when, partitions completed, bytes moved (both running totals).
    last: Option<(Duration, u64, u64)>,
    partitions: Rate,
    bytes: Rate,
}

impl Progress {
    pub fn new() -> Progress {
        Progress::default()
    }

    /// Takes one sample at `now`: `remaining` partitions still to receive or send, and the
    /// running totals of partitions completed and record bytes moved (both directions).
    pub fn observe(&mut self, now: Duration, remaining: u64, completed: u64, bytes: u64) {
        let previous = self.last.replace((now, completed, bytes));
        if remaining == 0 {
            // Idle: the next migration (another cluster change, other data) starts afresh.
            self.partitions = Rate::default();
            self.bytes = Rate::default();
            return;
        }
        let Some((then, done_then, bytes_then)) = previous else {
            return;
        };
        let dt = now.saturating_sub(then);
        if dt.is_zero() {
            return;
        }
        let secs = dt.as_secs_f64();
        self.partitions
            .add(completed.saturating_sub(done_then) as f64 / secs, dt);
        self.bytes
            .add(bytes.saturating_sub(bytes_then) as f64 / secs, dt);
    }

    /// The estimate for `remaining` partitions (the count now, which may be newer than the
    /// last sample: an ETA is 0 the moment nothing remains).
    pub fn estimate(&self, remaining: u64) -> Estimate {
        let partitions_per_s = self.partitions.value();
        Estimate {
            partitions_per_s,
            bytes_per_s: self.bytes.value(),
            eta_s: eta(remaining, partitions_per_s),
        }
    }
}

fn eta(remaining: u64, partitions_per_s: Option<f64>) -> Option<u64> {
    if remaining == 0 {
        return Some(0);
    }
    partitions_per_s
        .filter(|r| *r > 0.0)
        .map(|r| (remaining as f64 / r).ceil() as u64)
}

/// The estimate of several namespaces together (`statistics`): rates add up, and the ETA is
/// everything remaining over the summed rate (namespaces share the emigration workers, so
/// they finish together rather than one after another).
pub fn combine(parts: &[(u64, Estimate)]) -> Estimate {
    let sum = |pick: fn(&Estimate) -> Option<f64>| {
        parts
            .iter()
            .filter_map(|(_, e)| pick(e))
            .fold(None, |acc: Option<f64>, r| Some(acc.unwrap_or(0.0) + r))
    };
    let partitions_per_s = sum(|e| e.partitions_per_s);
    let remaining = parts.iter().map(|(r, _)| *r).sum();
    Estimate {
        partitions_per_s,
        bytes_per_s: sum(|e| e.bytes_per_s),
        eta_s: eta(remaining, partitions_per_s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Several senders reserving batches as fast as the bucket lets them: what goes out over
    /// any run stays within rate x time + one burst.
    #[test]
    fn the_bucket_holds_senders_to_the_rate_plus_one_burst() {
        for (rate, batch, senders) in [(2 * MB, MB, 2), (MB, 64 * 1024, 4), (10 * MB, MB, 1)] {
            let mut bucket = TokenBucket::new();
            // Each sender is free again at its time; the earliest goes next.
            let mut free_at = vec![Duration::ZERO; senders];
            let mut sent = 0u64;
            let mut end = Duration::ZERO;
            for _ in 0..200 {
                let (i, now) = free_at
                    .iter()
                    .copied()
                    .enumerate()
                    .min_by_key(|(_, t)| *t)
                    .expect("senders");
                let wait = bucket.reserve(now, batch, rate);
                let sends_at = now + wait;
                sent += batch;
                end = end.max(sends_at);
                free_at[i] = sends_at;
                let allowed = rate as f64 * sends_at.as_secs_f64()
                    + rate as f64 * BURST.as_secs_f64()
                    + batch as f64;
                assert!(
                    sent as f64 <= allowed,
                    "rate {rate}: {sent} bytes out by {sends_at:?}, allowed {allowed}"
                );
            }
            // And it does not hold them back much more than that either.
            let achieved = sent as f64 / end.as_secs_f64();
            assert!(
                achieved > 0.9 * rate as f64,
                "rate {rate}: only {achieved} bytes/s"
            );
        }
    }

    #[test]
    fn the_first_batch_goes_at_once_and_the_next_waits_its_share() {
        let mut b = TokenBucket::new();
        assert_eq!(b.reserve(ms(1000), 100_000, MB), Duration::ZERO);
        // 100 ms of 1 MiB/s is 104 857 bytes of burst: 4 857 left, 1 MiB more owes ~0.995 s.
        let wait = b.reserve(ms(1000), MB, MB);
        assert!(
            wait > ms(990) && wait < ms(1000),
            "waited {wait:?} for a second's worth"
        );
    }

    #[test]
    fn an_idle_bucket_saves_no_more_than_the_burst() {
        let mut b = TokenBucket::new();
        assert_eq!(b.reserve(ms(0), 1, MB), Duration::ZERO);
        // An hour idle earns 100 ms worth, not an hour's worth.
        let wait = b.reserve(ms(3_600_000), 2 * MB, MB);
        assert!(wait >= ms(1890) && wait <= ms(1910), "waited {wait:?}");
    }

    #[test]
    fn rate_zero_is_unlimited_and_a_lowered_rate_caps_the_credit() {
        let mut b = TokenBucket::new();
        for t in 0..100 {
            assert_eq!(b.reserve(ms(t), 100 * MB, 0), Duration::ZERO);
        }
        // Switching a limit on starts from an empty bucket: the first batch waits its share.
        let wait = b.reserve(ms(100), MB, MB);
        assert!(wait >= ms(990), "waited {wait:?}");
        // Lowering the rate later: credit earned at the old rate is capped at the new burst.
        let mut b = TokenBucket::new();
        b.reserve(ms(0), 1, 100 * MB);
        let wait = b.reserve(ms(10_000), 2 * MB, MB);
        assert!(wait >= ms(1890), "waited {wait:?}");
    }

    #[test]
    fn a_clock_that_steps_back_earns_nothing() {
        let mut b = TokenBucket::new();
        b.reserve(ms(5000), MB / 10, MB);
        let w1 = b.reserve(ms(4000), MB, MB);
        assert!(w1 >= ms(990), "waited {w1:?}");
    }

    #[test]
    fn no_eta_before_progress_then_remaining_over_rate_then_zero() {
        let mut p = Progress::new();
        let s = |n: u64| Duration::from_secs(n);
        p.observe(s(0), 100, 0, 0);
        assert_eq!(p.estimate(100).eta_s, None, "nothing seen yet");
        p.observe(s(1), 100, 0, 0);
        assert_eq!(p.estimate(100).eta_s, None, "no progress yet");
        // 10 partitions a second, steadily.
        for t in 2..=6 {
            p.observe(s(t), 100 - 10 * (t - 1), 10 * (t - 1), MB * (t - 1));
        }
        let e = p.estimate(50);
        // Five seconds at 10/s after one idle second: the mean since the start is ~8.3/s.
        let rate = e.partitions_per_s.expect("a rate");
        assert!((8.0..10.0).contains(&rate), "rate {rate}");
        let eta = e.eta_s.expect("an eta");
        assert!((5..=7).contains(&eta), "50 left at ~{rate}/s: eta {eta}");
        let bps = e.bytes_per_s.expect("bytes rate");
        assert!(bps > 0.8 * MB as f64 && bps < MB as f64, "bytes/s {bps}");
        // Nothing remains now, before the next sample: the ETA is 0 at once.
        assert_eq!(p.estimate(0).eta_s, Some(0));
        p.observe(s(7), 0, 100, 6 * MB);
        assert_eq!(p.estimate(0).eta_s, Some(0));
        assert_eq!(p.estimate(0).partitions_per_s, None, "idle: rate forgotten");
    }

    #[test]
    fn the_rate_follows_a_change_within_its_memory() {
        let mut p = Progress::new();
        let mut done = 0;
        p.observe(Duration::ZERO, 4000, 0, 0);
        for t in 1..=60u64 {
            done += 100;
            p.observe(Duration::from_secs(t), 4000, done, 0);
        }
        for t in 61..=100u64 {
            done += 10;
            p.observe(Duration::from_secs(t), 4000, done, 0);
        }
        let rate = p.estimate(4000).partitions_per_s.expect("rate");
        // 40 s after dropping from 100/s to 10/s, with a 10 s memory: within ~2% of 10/s.
        assert!((10.0..12.0).contains(&rate), "rate {rate}");
        assert_eq!(p.estimate(4000).eta_s, Some((4000.0 / rate).ceil() as u64));
    }

    #[test]
    fn namespaces_combine_into_one_rate_and_eta() {
        let e = |p: Option<f64>, eta_s| Estimate {
            partitions_per_s: p,
            bytes_per_s: p.map(|r| r * 1000.0),
            eta_s,
        };
        let c = combine(&[(100, e(Some(10.0), Some(10))), (0, e(None, Some(0)))]);
        assert_eq!(c.partitions_per_s, Some(10.0));
        assert_eq!(c.eta_s, Some(10));
        let c = combine(&[
            (100, e(Some(10.0), Some(10))),
            (300, e(Some(30.0), Some(10))),
        ]);
        assert_eq!((c.partitions_per_s, c.eta_s), (Some(40.0), Some(10)));
        let c = combine(&[(5, e(None, None)), (0, e(None, Some(0)))]);
        assert_eq!(c.eta_s, None, "work left, no rate yet");
        assert_eq!(combine(&[(0, e(None, Some(0)))]).eta_s, Some(0));
        assert_eq!(combine(&[]).eta_s, Some(0));
    }
}
