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
