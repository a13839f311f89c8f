//! Partition scans: stream the records of a partition in digest order, resuming strictly after
//! a digest, with a set filter, a bin selection or no bins, and a record budget. Each call
//! handles one bounded chunk under the partition's read lock, so a huge partition never holds
//! the lock for long and the caller can flush between chunks.
//! Aerospike counterpart: `as/src/query/query.c` (basic partition queries).

use crate::expression::{Filter, RecordView};
use crate::namespace::Namespace;
use shoal_base::{Digest, PartitionId};
use shoal_proto::msg::{field, info1, op, MsgHeader, MsgWriter};
use std::ops::Bound;

/// Which records of the namespace a scan wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetFilter {
    /// Every record.
    All,
    /// Records of one set.
    Set(u16),
    /// A set that does not exist: nothing matches.
    Nothing,
}

/// What to return for each record.
#[derive(Debug, Clone, Copy)]
pub enum BinSelection<'a> {
    All,
    None,
    /// Only these bin names (from READ ops); a record with none of them is skipped.
    Named(&'a [&'a [u8]]),
}

/// Everything that selects and shapes a scan's records.
#[derive(Clone, Copy)]
pub struct ScanSpec<'a> {
    pub sets: SetFilter,
    pub bins: BinSelection<'a>,
    /// A filter expression each record must pass.
    pub filter: Option<&'a Filter>,
}

/// The outcome of one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Records written to the reply.
    pub records: u64,
    /// True when the partition has no more records after this chunk.
    pub done: bool,
    /// The last digest examined (written or skipped): resume strictly after it.
    pub position: Option<Digest>,
}

/// Appends up to `max_records` records of partition `pid` that sort strictly after `after`
/// (or from the start) to `out`, stopping early once `out` holds `max_bytes`.
pub fn scan_chunk(
    ns: &Namespace,
    pid: PartitionId,
    after: Option<Digest>,
    spec: &ScanSpec<'_>,
    max_records: u64,
    max_bytes: usize,
    out: &mut MsgWriter,
) -> Chunk {
    let mut chunk = Chunk {
        records: 0,
        done: true,
        position: after,
    };
    let (filter, bins) = (spec.sets, spec.bins);
    if filter == SetFilter::Nothing {
        return chunk;
    }
    let now_s = ns.clock.now_cl_s();
    let now_cl_ms = ns.clock.now_cl_ms();
    let part = ns.index.partition(pid).read();
    let lower = match &after {
        Some(d) => Bound::Excluded(d),
        None => Bound::Unbounded,
    };
    for (digest, rec) in part.range((lower, Bound::Unbounded)) {
        if chunk.records >= max_records || out.len() >= max_bytes {
            chunk.done = false;
            return chunk;
        }
        chunk.position = Some(*digest);
        if let SetFilter::Set(id) = filter {
            if rec.set_id != id {
                continue;
            }
        }
        if ns.is_doomed(rec, now_s) {
            continue;
        }
        // A device record is read from flash; one that cannot be read is skipped (counted).
        let Ok(rec) = ns.load(digest, rec) else {
            continue;
        };
        let rec = rec.as_ref();
        if let BinSelection::Named(names) = bins {
            if !rec.bins().any(|b| names.contains(&b.name)) {
                continue;
            }
        }
        let set_name = ns.set_entry(rec.set_id).map(|s| s.name.as_str());
        if let Some(f) = spec.filter {
            let view = RecordView {
                record: Some(rec),
                digest,
                set_name: set_name.unwrap_or(""),
                now_cl_ms,
            };
            // A record the filter rejects, or cannot be evaluated on, is not returned.
            if !f.matches(&view).unwrap_or(false) {
                continue;
            }
        }
        let set = set_name.map(str::as_bytes);
        let key = rec.key();
        let n_fields = 2 + u16::from(set.is_some()) + u16::from(key.is_some());
        let h = MsgHeader {
            info1: if matches!(bins, BinSelection::None) {
                info1::NOBINDATA
            } else {
                0
            },
            generation: u32::from(rec.generation),
            record_ttl: rec.void_time,
            n_fields,
            ..MsgHeader::default()
        };
        let at = out.begin_record(&h);
        out.field(field::NAMESPACE, ns.name.as_bytes());
        out.field(field::DIGEST, &digest.0);
        if let Some(s) = set {
            out.field(field::SET, s);
        }
        if let Some((t, k)) = key {
            out.key_field(t, k);
        }
        let mut n_ops = 0u16;
        for b in rec.bins() {
            let wanted = match bins {
                BinSelection::None => false,
                BinSelection::All => true,
                BinSelection::Named(names) => names.contains(&b.name),
            };
            if wanted {
                out.op(op::READ, b.particle_type, b.name, b.value);
                n_ops = n_ops.saturating_add(1);
            }
        }
        if n_ops != 0 {
            out.patch_header(at, &MsgHeader { n_ops, ..h });
        }
        chunk.records += 1;
    }
    chunk
}

/// The digests of partition `pid` that a background job should visit: live records of the
/// selected sets that pass the filter. Collected under the read lock, visited after it is
/// released, so the job never holds a lock while it writes.
pub fn collect_digests(
    ns: &Namespace,
    pid: PartitionId,
    sets: SetFilter,
    filter: Option<&Filter>,
) -> Vec<Digest> {
    if sets == SetFilter::Nothing {
        return Vec::new();
    }
    let now_s = ns.clock.now_cl_s();
    let now_cl_ms = ns.clock.now_cl_ms();
    let part = ns.index.partition(pid).read();
    part.iter()
        .filter(|(_, rec)| match sets {
            SetFilter::Set(id) => rec.set_id == id,
            _ => true,
        })
        .filter(|(_, rec)| !ns.is_doomed(rec, now_s))
        .filter(|(digest, rec)| {
            filter.is_none_or(|f| {
                let Ok(rec) = ns.load(digest, rec) else {
                    return false;
                };
                let view = RecordView {
                    record: Some(rec.as_ref()),
                    digest,
                    set_name: ns.set_entry(rec.set_id).map_or("", |s| s.name.as_str()),
                    now_cl_ms,
                };
                f.matches(&view).unwrap_or(false)
            })
        })
        .map(|(d, _)| *d)
        .collect()
}
