//! Background maintenance of a namespace: the expiration sweep (Aerospike's nsup) and
//! truncation. The server's shell decides when to call these; nothing here sleeps or spawns.
//! Aerospike counterpart: `as/src/base/nsup.c`, `as/src/base/truncate.c`.

use crate::error::DataError;
use crate::namespace::Namespace;
use shoal_base::constants::PARTITIONS;
use shoal_base::{PartitionId, CITRUSLEAF_EPOCH_UNIX_S};
use std::sync::atomic::Ordering::Relaxed;

/// Counts of what a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub expired: u64,
    pub truncated: u64,
}

/// Removes every expired or truncated record (and, on a device namespace, truncated
/// tombstones, releasing their flash space), one partition lock at a time. Partitions with
/// nothing to remove are only read-locked.
pub fn sweep(ns: &Namespace) -> SweepReport {
    let mut report = SweepReport::default();
    let now_s = ns.clock.now_cl_s();
    let mut freed = Vec::new();
    for p in 0..PARTITIONS {
        let pid = PartitionId(p as u16);
        let lock = ns.index.partition(pid);
        if !lock.read().values().any(|r| ns.is_doomed(r, now_s))
            && !ns.has_truncated_tombstones(pid)
        {
            continue;
        }
        let mut part = lock.write();
        part.retain(|d, r| {
            if !ns.is_doomed(r, now_s) {
                return true;
            }
            if shoal_base::VoidTime(r.void_time).is_expired(now_s) {
                report.expired += 1;
            } else {
                report.truncated += 1;
            }
            ns.account_remove(r);
            if let Some(l) = r.location() {
                freed.push((*d, l));
            }
            false
        });
        // Device space is released under the partition lock, before a defrag move of one of
        // these records could be applied (see `flash`).
        ns.sweep_tombstones(pid, &mut freed);
        ns.release_removed(&freed);
        freed.clear();
    }
    ns.stats.expired_objects.fetch_add(report.expired, Relaxed);
    ns.stats
        .truncated_objects
        .fetch_add(report.truncated, Relaxed);
    ns.stats.nsup_cycles.fetch_add(1, Relaxed);
    report
}

/// Applies a truncation threshold decided elsewhere (another node of the cluster): records of
/// `set` (or of the namespace) last updated at or before `lut_ms` (citrusleaf ms) are
/// truncated.
pub fn truncate_at(ns: &Namespace, set: Option<&str>, lut_ms: u64) -> Result<(), DataError> {
    let target = match set {
        Some(name) if !name.is_empty() => {
            let id = ns
                .set_id_or_create(name.as_bytes())
                .ok_or(DataError::Parameter("bad set name"))?;
            &ns.set_entry(id)
                .ok_or(DataError::Parameter("bad set name"))?
                .truncate_lut_ms
        }
        _ => &ns.truncate_lut_ms,
    };
    target.fetch_max(lut_ms, Relaxed);
    Ok(())
}

/// Marks every record of `set` (or of the whole namespace) last updated at or before
/// `lut_nanos_unix` (default: now) as truncated. Truncated records are invisible at once;
/// [`sweep`] frees them. Returns the threshold used, in citrusleaf milliseconds.
pub fn truncate(
    ns: &Namespace,
    set: Option<&str>,
    lut_nanos_unix: Option<u64>,
) -> Result<u64, DataError> {
    let now_ms = ns.clock.now_cl_ms();
    let lut_ms = match lut_nanos_unix {
        None => now_ms,
        Some(n) => {
            let unix_ms = n / 1_000_000;
            let epoch_ms = CITRUSLEAF_EPOCH_UNIX_S * 1000;
            if unix_ms < epoch_ms {
                return Err(DataError::Parameter("lut before 2010"));
            }
            let cl = unix_ms - epoch_ms;
            if cl > now_ms {
                return Err(DataError::Parameter("lut is in the future"));
            }
            cl
        }
    };
    let target = match set {
        Some(name) if !name.is_empty() => {
            let id = ns
                .set_id_or_create(name.as_bytes())
                .ok_or(DataError::Parameter("bad set name"))?;
            &ns.set_entry(id)
                .ok_or(DataError::Parameter("bad set name"))?
                .truncate_lut_ms
        }
        _ => &ns.truncate_lut_ms,
    };
    target.fetch_max(lut_ms, Relaxed);
    Ok(lut_ms)
}

/// Buckets of the void-time histogram an eviction cutoff is chosen from.
const EVICT_BUCKETS: u64 = 1024;

/// When the namespace's use (`used_pct`: memory, or the fuller of memory and device, as the
/// caller measures it) is at or above `evict-used-pct`, the void-time cutoff that evicts about
/// `evict-tenths-pct` tenths of a percent of its records, soonest-expiring first: `None` when
/// eviction is off, not needed, or nothing can be evicted. Records without a TTL are never
/// candidates. Two read passes over the index (range, then a histogram of void-times), one
/// partition read lock at a time. Aerospike counterpart: nsup's eviction histogram.
pub fn evict_threshold(ns: &Namespace, used_pct: u32) -> Option<u32> {
    let hwm = ns.settings.evict_used_pct.load(Relaxed);
    if hwm == 0 || used_pct < hwm {
        return None;
    }
    let tenths = u64::from(ns.settings.evict_tenths_pct.load(Relaxed).clamp(1, 1000));
    let now_s = ns.clock.now_cl_s();
    let (mut lo, mut hi, mut candidates) = (u32::MAX, 0u32, 0u64);
    for p in 0..PARTITIONS {
        let part = ns.index.partition(PartitionId(p as u16)).read();
        for r in part.values() {
            if r.void_time != 0 && !ns.is_doomed(r, now_s) {
                lo = lo.min(r.void_time);
                hi = hi.max(r.void_time);
                candidates += 1;
            }
        }
    }
    if candidates == 0 {
        return None;
    }
    let total = ns.stats.objects.load(Relaxed).max(candidates);
    let target = (total * tenths / 1000).max(1);
    let width = (u64::from(hi - lo) / EVICT_BUCKETS) + 1;
    let mut buckets = vec![0u64; EVICT_BUCKETS as usize + 1];
    for p in 0..PARTITIONS {
        let part = ns.index.partition(PartitionId(p as u16)).read();
        for r in part.values() {
            if r.void_time != 0 && !ns.is_doomed(r, now_s) {
                let b = (u64::from(r.void_time - lo) / width) as usize;
                if let Some(slot) = buckets.get_mut(b) {
                    *slot += 1;
                }
            }
        }
    }
    let mut sum = 0u64;
    for (b, count) in buckets.iter().enumerate() {
        sum += count;
        if sum >= target {
            let end = u64::from(lo) + (b as u64 + 1) * width - 1;
            return Some(u32::try_from(end).unwrap_or(u32::MAX).min(hi));
        }
    }
    Some(hi)
}

/// Evicts every record with a TTL whose void-time is at or before `void_cutoff` and that was
/// last updated at or before `lut_ms` (so a record rewritten since the eviction was decided,
/// on this node or another, stays), one partition lock at a time; returns how many. On a
/// device namespace the space is released (the caller persisted the eviction first, so a
/// cold start does not bring the records back).
pub fn evict(ns: &Namespace, void_cutoff: u32, lut_ms: u64) -> u64 {
    let mut evicted = 0u64;
    let mut freed = Vec::new();
    let doomed = |r: &crate::record::Record| {
        r.void_time != 0 && r.void_time <= void_cutoff && r.lut_ms <= lut_ms
    };
    for p in 0..PARTITIONS {
        let pid = PartitionId(p as u16);
        let lock = ns.index.partition(pid);
        if !lock.read().values().any(doomed) {
            continue;
        }
        let mut part = lock.write();
        part.retain(|d, r| {
            if !doomed(r) {
                return true;
            }
            evicted += 1;
            ns.account_remove(r);
            if let Some(l) = r.location() {
                freed.push((*d, l));
            }
            false
        });
        ns.release_removed(&freed);
        freed.clear();
    }
    ns.stats.evicted_objects.fetch_add(evicted, Relaxed);
    ns.stats.evict_void_time.fetch_max(void_cutoff, Relaxed);
    evicted
}
