//! A namespace: its settings, its primary index, its sets, its counters and its truncation
//! thresholds. Aerospike counterpart: `as/src/base/namespace.c`, `as/src/base/set_index.c`.
//!
//! Hot-path settings are atomics so a transaction reads them without taking a lock.
//! This module never formats wire replies.

use crate::record::Record;
use parking_lot::RwLock;
use shoal_base::constants::{PARTITIONS, SETS_PER_NAMESPACE_MAX, SET_NAME_LEN_MAX_BYTES};
use shoal_base::Clock;
use shoal_index::PartitionedIndex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

/// Static and dynamic settings of a namespace, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceSettings {
    pub name: String,
    pub memory_size_bytes: u64,
    pub default_ttl_s: u32,
    pub max_ttl_s: u32,
    pub nsup_period_s: u32,
    pub allow_ttl_without_nsup: bool,
    pub max_record_size_bytes: u64,
    pub stop_writes_pct: u32,
    pub replication_factor: u32,
}

/// Settings that `set-config` may change while the node runs.
#[derive(Debug)]
pub struct DynamicSettings {
    pub memory_size_bytes: AtomicU64,
    pub default_ttl_s: AtomicU32,
    pub max_ttl_s: AtomicU32,
    pub nsup_period_s: AtomicU32,
    pub allow_ttl_without_nsup: AtomicBool,
    pub max_record_size_bytes: AtomicU64,
    pub stop_writes_pct: AtomicU32,
    /// Eviction starts when memory (or device) use reaches this percentage; 0 = never evict
    /// (Aerospike `evict-used-pct`).
    pub evict_used_pct: AtomicU32,
    /// Most records evicted per expiration pass, in tenths of a percent of the namespace's
    /// records (Aerospike `evict-tenths-pct`).
    pub evict_tenths_pct: AtomicU32,
}

/// Default `evict-tenths-pct`: at most 0.5% of the records per pass.
pub const EVICT_TENTHS_PCT_DEFAULT: u32 = 5;
/// Evictions remembered for cold starts (see `Namespace::record_eviction`).
const EVICTIONS_KEPT_MAX: usize = 32;

/// Per-set bookkeeping. Sets are never removed, as in Aerospike.
#[derive(Debug)]
pub struct SetEntry {
    pub name: String,
    pub objects: AtomicU64,
    pub memory_bytes: AtomicU64,
    /// Records of this set with a last-update-time at or before this are truncated.
    pub truncate_lut_ms: AtomicU64,
}

/// Counters reported by `namespace/<ns>`, `statistics` and the ticker.
#[derive(Debug, Default)]
pub struct NamespaceStats {
    pub objects: AtomicU64,
    /// Records that will expire (void-time set): when zero, an expiration pass has nothing to do.
    pub ttl_objects: AtomicU64,
    pub memory_used_bytes: AtomicU64,
    pub client_read_success: AtomicU64,
    pub client_read_not_found: AtomicU64,
    pub client_read_error: AtomicU64,
    pub client_write_success: AtomicU64,
    pub client_write_error: AtomicU64,
    pub client_delete_success: AtomicU64,
    pub client_delete_not_found: AtomicU64,
    pub client_delete_error: AtomicU64,
    pub client_udf_error: AtomicU64,
    pub fail_generation: AtomicU64,
    pub fail_key_busy: AtomicU64,
    pub fail_record_too_big: AtomicU64,
    pub stop_writes_count: AtomicU64,
    pub expired_objects: AtomicU64,
    pub evicted_objects: AtomicU64,
    /// The void-time cutoff of the last eviction (citrusleaf seconds; 0 = none yet).
    pub evict_void_time: AtomicU32,
    pub truncated_objects: AtomicU64,
    pub batch_sub_read_success: AtomicU64,
    pub batch_sub_write_success: AtomicU64,
    pub scan_basic_complete: AtomicU64,
    pub scan_basic_error: AtomicU64,
    pub nsup_cycles: AtomicU64,
    /// Record versions received from other nodes (replication, migration) and kept.
    pub replica_writes_applied: AtomicU64,
    pub replica_deletes_applied: AtomicU64,
}

/// One namespace.
pub struct Namespace {
    pub name: String,
    pub replication_factor: u32,
    pub settings: DynamicSettings,
    pub index: PartitionedIndex<Record>,
    pub stats: NamespaceStats,
    /// Records with a last-update-time at or before this are truncated (namespace-wide).
    pub truncate_lut_ms: AtomicU64,
    sets: Box<[OnceLock<SetEntry>]>,
    set_ids: RwLock<HashMap<Vec<u8>, u16>>,
    pub clock: Arc<dyn Clock>,
    /// Flash storage of a `storage-engine device` namespace (see [`crate::flash`]).
    pub(crate) storage: OnceLock<crate::flash::Storage>,
    /// Per partition: true while copies are still arriving from other nodes (see
    /// [`crate::replica`]).
    pub(crate) immigrating: Box<[AtomicBool]>,
    /// Deletes applied while their partition immigrates: digest to last-update-time.
    pub(crate) immigration_tombstones: PartitionedIndex<u64>,
    /// Evictions whose records may still be on flash: (void-time cutoff, last-update-time of
    /// the eviction), kept so a cold start does not bring evicted records back.
    evictions: parking_lot::Mutex<Vec<(u32, u64)>>,
}

impl Namespace {
    /// A new, empty namespace.
    pub fn new(s: &NamespaceSettings, clock: Arc<dyn Clock>) -> Namespace {
        Namespace {
            name: s.name.clone(),
            replication_factor: s.replication_factor,
            settings: DynamicSettings {
                memory_size_bytes: AtomicU64::new(s.memory_size_bytes),
                default_ttl_s: AtomicU32::new(s.default_ttl_s),
                max_ttl_s: AtomicU32::new(s.max_ttl_s),
                nsup_period_s: AtomicU32::new(s.nsup_period_s),
                allow_ttl_without_nsup: AtomicBool::new(s.allow_ttl_without_nsup),
                max_record_size_bytes: AtomicU64::new(s.max_record_size_bytes),
                stop_writes_pct: AtomicU32::new(s.stop_writes_pct),
                evict_used_pct: AtomicU32::new(0),
                evict_tenths_pct: AtomicU32::new(EVICT_TENTHS_PCT_DEFAULT),
            },
            index: PartitionedIndex::new(),
            stats: NamespaceStats::default(),
            truncate_lut_ms: AtomicU64::new(0),
            sets: (0..SETS_PER_NAMESPACE_MAX)
                .map(|_| OnceLock::new())
                .collect(),
            set_ids: RwLock::new(HashMap::new()),
            clock,
            storage: OnceLock::new(),
            immigrating: (0..PARTITIONS).map(|_| AtomicBool::new(false)).collect(),
            immigration_tombstones: PartitionedIndex::new(),
            evictions: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// Remembers an eviction (records with a void-time at or before `void_cutoff` last
    /// updated at or before `lut_ms` were evicted) and returns the list to persist. Entries
    /// whose cutoff has passed are dropped (those records are expired anyway); past
    /// `EVICTIONS_KEPT_MAX` the two oldest merge into one that covers both, which at a cold
    /// start may also drop records written between them with a void-time below the larger
    /// cutoff (they were next in line for eviction).
    pub fn record_eviction(&self, void_cutoff: u32, lut_ms: u64) -> Vec<(u32, u64)> {
        let now_s = self.clock.now_cl_s();
        let mut list = self.evictions.lock();
        list.retain(|(c, _)| *c > now_s);
        // A later eviction with a cutoff at least as high covers an earlier one.
        list.retain(|(c, l)| !(*c <= void_cutoff && *l <= lut_ms));
        list.push((void_cutoff, lut_ms));
        while list.len() > EVICTIONS_KEPT_MAX {
            let (c1, l1) = list.remove(0);
            let (c2, l2) = list[0];
            list[0] = (c1.max(c2), l1.max(l2));
        }
        list.clone()
    }

    /// Evictions restored from disk at startup (see [`Namespace::record_eviction`]).
    pub fn restore_evictions(&self, evictions: &[(u32, u64)]) {
        *self.evictions.lock() = evictions.to_vec();
    }

    /// True while partition `pid` of this namespace is still receiving copies from other nodes.
    pub fn immigrating(&self, pid: shoal_base::PartitionId) -> bool {
        self.immigrating[pid.index() % PARTITIONS].load(Relaxed)
    }

    /// The id of `name`, without creating it. The empty name is "no set" (id 0).
    pub fn set_id(&self, name: &[u8]) -> Option<u16> {
        if name.is_empty() {
            return Some(0);
        }
        self.set_ids.read().get(name).copied()
    }

    /// The id of `name`, registering the set if it is new. `None` when the name is invalid or
    /// the namespace already has the most sets allowed.
    pub fn set_id_or_create(&self, name: &[u8]) -> Option<u16> {
        if let Some(id) = self.set_id(name) {
            return Some(id);
        }
        if name.len() > SET_NAME_LEN_MAX_BYTES || std::str::from_utf8(name).is_err() {
            return None;
        }
        let mut ids = self.set_ids.write();
        if let Some(id) = ids.get(name) {
            return Some(*id);
        }
        let next = ids.len() + 1;
        if next > SETS_PER_NAMESPACE_MAX {
            return None;
        }
        let id = u16::try_from(next).ok()?;
        let entry = SetEntry {
            name: String::from_utf8_lossy(name).into_owned(),
            objects: AtomicU64::new(0),
            memory_bytes: AtomicU64::new(0),
            truncate_lut_ms: AtomicU64::new(0),
        };
        // The slot is empty: ids are handed out once, under the write lock.
        let _ = self.sets[usize::from(id) - 1].set(entry);
        ids.insert(name.to_vec(), id);
        Some(id)
    }

    /// The entry of set `id` (0 = no set).
    pub fn set_entry(&self, id: u16) -> Option<&SetEntry> {
        if id == 0 {
            return None;
        }
        self.sets.get(usize::from(id) - 1)?.get()
    }

    /// Every registered set, in id order.
    pub fn sets(&self) -> impl Iterator<Item = (u16, &SetEntry)> {
        self.sets
            .iter()
            .enumerate()
            .map_while(|(i, s)| s.get().map(|e| (i as u16 + 1, e)))
    }

    /// True when the record is expired or truncated at citrusleaf time `now_s`: such a record
    /// is invisible at once, whether or not the background sweep has removed it yet.
    pub fn is_doomed(&self, r: &Record, now_s: u32) -> bool {
        if shoal_base::VoidTime(r.void_time).is_expired(now_s) {
            return true;
        }
        self.is_truncated(r.set_id, r.lut_ms)
    }

    /// True when a version of set `set_id` last updated at `lut_ms` is truncated.
    pub fn is_truncated(&self, set_id: u16, lut_ms: u64) -> bool {
        if lut_ms <= self.truncate_lut_ms.load(Relaxed) {
            return true;
        }
        match self.set_entry(set_id) {
            Some(s) => lut_ms <= s.truncate_lut_ms.load(Relaxed),
            None => false,
        }
    }

    /// Every truncation threshold in force, as (set name or `None` for the whole namespace,
    /// citrusleaf milliseconds), for persisting them.
    pub fn truncate_thresholds(&self) -> Vec<(Option<String>, u64)> {
        let mut out = Vec::new();
        let ns = self.truncate_lut_ms.load(Relaxed);
        if ns > 0 {
            out.push((None, ns));
        }
        for (_, s) in self.sets() {
            let lut = s.truncate_lut_ms.load(Relaxed);
            if lut > 0 {
                out.push((Some(s.name.clone()), lut));
            }
        }
        out
    }

    /// Restores a persisted truncation threshold (at startup, before recovery).
    pub fn restore_truncate(&self, set: Option<&str>, lut_ms: u64) {
        match set {
            Some(name) if !name.is_empty() => {
                if let Some(e) = self
                    .set_id_or_create(name.as_bytes())
                    .and_then(|id| self.set_entry(id))
                {
                    e.truncate_lut_ms.fetch_max(lut_ms, Relaxed);
                }
            }
            _ => {
                self.truncate_lut_ms.fetch_max(lut_ms, Relaxed);
            }
        }
    }

    /// The last-update-time a write at `now_ms` gets: later than any truncation threshold, so
    /// a record written after a truncate is never swept by it.
    pub fn next_lut_ms(&self, set_id: u16, now_ms: u64) -> u64 {
        let ns = self.truncate_lut_ms.load(Relaxed);
        let set = self
            .set_entry(set_id)
            .map_or(0, |s| s.truncate_lut_ms.load(Relaxed));
        now_ms.max(ns + 1).max(set + 1)
    }

    /// The memory level at which writes stop.
    pub fn stop_writes_bytes(&self) -> u64 {
        let size = self.settings.memory_size_bytes.load(Relaxed);
        size / 100 * u64::from(self.settings.stop_writes_pct.load(Relaxed))
    }

    /// True when writes are refused.
    pub fn at_stop_writes(&self) -> bool {
        self.stats.memory_used_bytes.load(Relaxed) >= self.stop_writes_bytes()
    }

    /// Accounts a record entering the index.
    pub fn account_insert(&self, r: &Record) {
        self.stats.objects.fetch_add(1, Relaxed);
        if r.void_time != 0 {
            self.stats.ttl_objects.fetch_add(1, Relaxed);
        }
        self.stats
            .memory_used_bytes
            .fetch_add(r.memory_bytes(), Relaxed);
        if let Some(s) = self.set_entry(r.set_id) {
            s.objects.fetch_add(1, Relaxed);
            s.memory_bytes.fetch_add(r.memory_bytes(), Relaxed);
        }
    }

    /// Accounts a record leaving the index.
    pub fn account_remove(&self, r: &Record) {
        sub(&self.stats.objects, 1);
        if r.void_time != 0 {
            sub(&self.stats.ttl_objects, 1);
        }
        sub(&self.stats.memory_used_bytes, r.memory_bytes());
        if let Some(s) = self.set_entry(r.set_id) {
            sub(&s.objects, 1);
            sub(&s.memory_bytes, r.memory_bytes());
        }
    }
}

fn sub(a: &AtomicU64, v: u64) {
    // Saturating so a bookkeeping slip can never wrap into a huge number.
    let _ = a.fetch_update(Relaxed, Relaxed, |x| Some(x.saturating_sub(v)));
}
