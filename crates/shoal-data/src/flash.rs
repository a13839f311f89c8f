//! The data layer's side of `storage-engine device`: a namespace whose records live on flash
//! through a `shoal_storage::Engine`, with only metadata and the record's [`Location`] in the
//! DRAM index.
//!
//! What lives where: live records are index entries with a [`Body::Device`] body; durable-delete
//! tombstones live in a separate per-partition map ([`Storage::tombstones`]), so reads, scans
//! and counts never see them, while defrag keeps them on flash and writes and deletes of the
//! same key find them. Both maps are guarded by the namespace's partition locks.
//!
//! Locking: the engine's methods take `&mut self`, so it sits behind one mutex per namespace
//! ([`Storage`]). The lock order is: main partition lock, then tombstone partition lock, then
//! the engine mutex; the engine mutex is held only around engine calls. Defrag runs under the
//! engine mutex and asks the index whether records are current, so it may only *try* partition
//! locks (a busy partition counts as "current" and the record is moved conservatively). Its
//! moves go into a pending map under the engine mutex before the mutex is released, and every
//! reader and writer resolves locations through that map until the mover repoints the index;
//! a conservatively moved copy that is dead is released then.
//!
//! Durability: writes append under the partition lock and the engine mutex (a memory copy into
//! the write buffer); under `commit-to-device` the caller commits the returned ticket after
//! releasing the partition lock, so one fsync covers every write appended before it (group
//! commit) and no partition lock is held across a sync. A reader may therefore see a write
//! whose sync is still in progress; a write is acknowledged only after it.
//! Aerospike counterpart: `as/src/storage/drv_ssd.c` (index ↔ rblock ids), `as/src/base/
//! record.c` (tombstones), `as/src/transaction/delete.c` (durable delete).

use crate::error::DataError;
use crate::namespace::Namespace;
use crate::record::{Body, Record};
use parking_lot::Mutex;
use shoal_base::constants::PARTITIONS;
use shoal_base::{Digest, PartitionId};
use shoal_index::PartitionedIndex;
use shoal_storage::{
    DurabilityMode, Engine, EngineStats, IndexEntry, LiveIndex, Location, RecordMeta,
    RecoveredRecord, Recovery, RecoveryKind, RecoveryStats, Relocation, StorageError, Ticket,
};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tracing::{error, warn};

/// A defrag move not yet applied to the index.
#[derive(Debug, Clone, Copy)]
struct Pending {
    digest: Digest,
    to: Location,
}

/// What the engine mutex guards.
struct State {
    engine: Engine,
    /// Defrag moves by source location, until the index is repointed.
    pending: HashMap<Location, Pending>,
}

/// Counters of a device namespace, beside the engine's own.
#[derive(Debug, Default)]
pub struct FlashStats {
    /// Records that failed their checksum (or did not parse) when read: never served.
    pub corrupt_reads: AtomicU64,
    /// Device reads that failed.
    pub read_errors: AtomicU64,
    /// Writes refused because a device failed or is poisoned.
    pub write_errors: AtomicU64,
    /// Tombstones in the index.
    pub tombstones: AtomicU64,
    /// Defrag moves applied to the index.
    pub defrag_relocations: AtomicU64,
}

/// How the namespace's storage came up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverySummary {
    /// `formatted`, `cold-start` or `fast-restart`.
    pub kind: &'static str,
    /// Why a cold start was needed (empty otherwise).
    pub reason: String,
    pub stats: RecoveryStats,
}

/// The flash storage of one namespace.
pub struct Storage {
    state: Mutex<Option<State>>,
    pub durability: DurabilityMode,
    /// Durable-delete tombstones: digest → location and metadata (never visible to clients).
    pub tombstones: PartitionedIndex<IndexEntry>,
    pub stats: FlashStats,
    pub recovery: RecoverySummary,
}

/// Follows a chain of pending moves from `loc` for `digest`, without changing it.
fn resolve_peek(
    pending: &HashMap<Location, Pending>,
    digest: &Digest,
    mut loc: Location,
) -> Location {
    // Each step removes one map entry from consideration, so the chain is at most as long as
    // the map; the bound keeps a bookkeeping slip from looping.
    for _ in 0..=pending.len() {
        match pending.get(&loc) {
            Some(p) if p.digest == *digest => loc = p.to,
            _ => break,
        }
    }
    loc
}

/// Follows and removes a chain of pending moves from `loc` for `digest`.
fn resolve_take(
    pending: &mut HashMap<Location, Pending>,
    digest: &Digest,
    mut loc: Location,
) -> Location {
    for _ in 0..=pending.len() {
        match pending.get(&loc) {
            Some(p) if p.digest == *digest => {
                let to = p.to;
                pending.remove(&loc);
                loc = to;
            }
            _ => break,
        }
    }
    loc
}

/// The index as defrag sees it (only trying partition locks, see the module docs).
struct Live<'a> {
    ns: &'a Namespace,
    tombstones: &'a PartitionedIndex<IndexEntry>,
    pending: &'a HashMap<Location, Pending>,
}

impl LiveIndex for Live<'_> {
    fn is_current(&self, digest: &Digest, location: Location) -> bool {
        let Some(part) = self.ns.index.partition_of(digest).try_read() else {
            return true;
        };
        let current = match part.get(digest).and_then(Record::location) {
            Some(l) => Some(l),
            None => {
                let Some(tombs) = self.tombstones.partition_of(digest).try_read() else {
                    return true;
                };
                tombs.get(digest).map(IndexEntry::location)
            }
        };
        current.is_some_and(|l| resolve_peek(self.pending, digest, l) == location)
    }
}

fn meta_of(r: &Record) -> RecordMeta {
    RecordMeta {
        generation: r.generation,
        void_time: r.void_time,
        lut_ms: r.lut_ms,
    }
}

impl Storage {
    /// The error a write sees when the engine refused it; failures that poison are logged.
    fn write_error(&self, ns: &str, e: StorageError) -> DataError {
        match e {
            StorageError::StopWrites { .. } | StorageError::DeviceFull { .. } => {
                DataError::StopWrites
            }
            StorageError::RecordTooBig { size, max } => DataError::RecordTooBig { size, max },
            StorageError::FieldTooLong { .. } => DataError::Parameter("set name or key too long"),
            StorageError::Io { .. } => {
                self.stats.write_errors.fetch_add(1, Relaxed);
                error!(target: "shoal::storage", namespace = ns, "{e}; the device is poisoned: writes are refused, reads continue");
                DataError::DeviceWrite
            }
            _ => {
                self.stats.write_errors.fetch_add(1, Relaxed);
                tracing::debug!(target: "shoal::storage", namespace = ns, "write refused: {e}");
                DataError::DeviceWrite
            }
        }
    }

    fn read_error(&self, ns: &str, e: StorageError) -> DataError {
        if matches!(e, StorageError::Corrupt { .. }) {
            self.stats.corrupt_reads.fetch_add(1, Relaxed);
        } else {
            self.stats.read_errors.fetch_add(1, Relaxed);
        }
        warn!(target: "shoal::storage", namespace = ns, "record not served: {e}");
        DataError::DeviceRead
    }
}

impl Namespace {
    /// The namespace's flash storage, when it is a `storage-engine device` namespace.
    pub fn storage(&self) -> Option<&Storage> {
        self.storage.get()
    }

    /// Gives the namespace its opened engine and rebuilds the index from what recovery found.
    /// Call once, before serving; a second call is refused.
    pub fn attach_storage(
        &self,
        engine: Engine,
        recovery: Recovery,
        durability: DurabilityMode,
    ) -> Result<(), DataError> {
        let (kind, reason) = match &recovery.kind {
            RecoveryKind::Formatted => ("formatted", String::new()),
            RecoveryKind::ColdStart { reason } => ("cold-start", reason.clone()),
            RecoveryKind::FastRestart => ("fast-restart", String::new()),
        };
        let storage = Storage {
            state: Mutex::new(Some(State {
                engine,
                pending: HashMap::new(),
            })),
            durability,
            tombstones: PartitionedIndex::new(),
            stats: FlashStats::default(),
            recovery: RecoverySummary {
                kind,
                reason,
                stats: recovery.stats.clone(),
            },
        };
        // Recovered set ids → this namespace's ids (names that are no longer valid go to "no set").
        let set_ids: Vec<u16> = recovery
            .sets
            .iter()
            .map(|name| self.set_id_or_create(name).unwrap_or(0))
            .collect();
        for r in &recovery.records {
            let e = r.entry;
            let meta = e.meta();
            let set_id = set_ids.get(usize::from(e.set_id())).copied().unwrap_or(0);
            if e.is_tombstone() {
                let entry = IndexEntry::new(e.location(), meta, set_id, true);
                storage
                    .tombstones
                    .partition_of(&r.digest)
                    .write()
                    .insert(r.digest, entry);
                storage.stats.tombstones.fetch_add(1, Relaxed);
            } else {
                let rec = Record::from_parts(
                    meta.generation,
                    set_id,
                    meta.void_time,
                    meta.lut_ms,
                    Body::Device(e.location()),
                );
                self.account_insert(&rec);
                self.index
                    .partition_of(&r.digest)
                    .write()
                    .insert(r.digest, rec);
            }
        }
        self.storage
            .set(storage)
            .map_err(|_| DataError::Parameter("storage attached twice"))
    }

    /// The record with its bins in memory: itself for a memory record, a copy read from the
    /// device (one read) for a device record. A record that fails its checksum is counted and
    /// never served.
    pub fn load<'r>(&self, digest: &Digest, r: &'r Record) -> Result<Cow<'r, Record>, DataError> {
        let Body::Device(loc) = r.body() else {
            return Ok(Cow::Borrowed(r));
        };
        let storage = self.storage().ok_or(DataError::DeviceRead)?;
        let mut guard = storage.state.lock();
        let st = guard.as_mut().ok_or(DataError::DeviceRead)?;
        let loc = resolve_peek(&st.pending, digest, *loc);
        let got = st.engine.get(loc);
        drop(guard);
        let stored = got.map_err(|e| storage.read_error(&self.name, e))?;
        if stored.digest != *digest || stored.tombstone {
            return Err(storage.read_error(
                &self.name,
                StorageError::BadLocation {
                    location: loc,
                    reason: "another record is stored there",
                },
            ));
        }
        Ok(Cow::Owned(
            r.with_body(Body::Memory(stored.bins.into_boxed_slice())),
        ))
    }

    /// The lowest last-update-time a new version of `digest` may have: later than any version
    /// the index still knows (record, expired or not, or tombstone), so cold start's and
    /// replication's "newest last-update-time wins" picks it.
    pub(crate) fn lut_floor(&self, digest: &Digest, old: Option<&Record>) -> u64 {
        let Some(storage) = self.storage() else {
            // Later than the version it replaces, so a copy on another node (replication,
            // migration: newest wins) never prefers the older one because of clock skew.
            return old.map_or(0, |r| r.lut_ms + 1);
        };
        let tomb = storage
            .tombstones
            .partition_of(digest)
            .read()
            .get(digest)
            .map_or(0, |t| t.meta().lut_ms + 1);
        tomb.max(old.map_or(0, |r| r.lut_ms + 1))
    }

    /// Stores `new` (a memory record) on flash in place of `old` (the index entry it replaces,
    /// expired or not) and of any tombstone of the key. Call under the key's partition write
    /// lock; returns the device record to put in the index and, under `commit-to-device`, the
    /// ticket to [`Namespace::commit`] after releasing the lock.
    pub(crate) fn persist_write(
        &self,
        digest: &Digest,
        new: &Record,
        old: Option<&Record>,
    ) -> Result<(Record, Option<Ticket>), DataError> {
        let storage = self.storage().ok_or(DataError::DeviceWrite)?;
        let set_name = self.set_entry(new.set_id).map_or("", |s| s.name.as_str());
        let tomb = storage
            .tombstones
            .partition_of(digest)
            .read()
            .get(digest)
            .copied();
        let mut guard = storage.state.lock();
        let st = guard.as_mut().ok_or(DataError::DeviceWrite)?;
        let (loc, ticket) = match st.engine.put_deferred(
            digest,
            meta_of(new),
            set_name.as_bytes(),
            None,
            new.flat(),
        ) {
            Ok(v) => v,
            Err(e) => {
                drop(guard);
                return Err(storage.write_error(&self.name, e));
            }
        };
        // A pending move *from* the place just written is a dead copy's (its block was reused).
        if st.pending.get(&loc).is_some_and(|p| p.digest == *digest) {
            let dead = resolve_take(&mut st.pending, digest, loc);
            st.engine.release(dead);
        }
        if let Some(l) = old.and_then(Record::location) {
            let l = resolve_take(&mut st.pending, digest, l);
            st.engine.release(l);
        }
        if let Some(t) = tomb {
            let l = resolve_take(&mut st.pending, digest, t.location());
            st.engine.release(l);
        }
        drop(guard);
        if tomb.is_some() {
            storage
                .tombstones
                .partition_of(digest)
                .write()
                .remove(digest);
            sub(&storage.stats.tombstones, 1);
        }
        let ticket = (storage.durability == DurabilityMode::CommitToDevice).then_some(ticket);
        Ok((new.with_body(Body::Device(loc)), ticket))
    }

    /// Durable delete: writes a tombstone newer than `old` (the live index entry being removed),
    /// releases `old`'s location and keeps the tombstone in [`Storage::tombstones`]. Call under
    /// the key's partition write lock, before removing `old` from the index.
    pub(crate) fn persist_delete(
        &self,
        digest: &Digest,
        old: &Record,
        lut_ms: u64,
    ) -> Result<Option<Ticket>, DataError> {
        let storage = self.storage().ok_or(DataError::DeviceWrite)?;
        let set_name = self.set_entry(old.set_id).map_or("", |s| s.name.as_str());
        let meta = RecordMeta {
            generation: crate::transaction::next_generation(old.generation),
            void_time: 0,
            lut_ms: lut_ms.max(old.lut_ms + 1),
        };
        let mut tombs = storage.tombstones.partition_of(digest).write();
        let mut guard = storage.state.lock();
        let st = guard.as_mut().ok_or(DataError::DeviceWrite)?;
        let (loc, ticket) = match st.engine.delete_deferred(digest, meta, set_name.as_bytes()) {
            Ok(v) => v,
            Err(e) => {
                drop(guard);
                return Err(storage.write_error(&self.name, e));
            }
        };
        if let Some(l) = old.location() {
            let l = resolve_take(&mut st.pending, digest, l);
            st.engine.release(l);
        }
        if let Some(t) = tombs.insert(*digest, IndexEntry::new(loc, meta, old.set_id, true)) {
            let l = resolve_take(&mut st.pending, digest, t.location());
            st.engine.release(l);
        } else {
            storage.stats.tombstones.fetch_add(1, Relaxed);
        }
        drop(guard);
        Ok((storage.durability == DurabilityMode::CommitToDevice).then_some(ticket))
    }

    /// Waits until the write behind `ticket` is durable (one sync covers every write appended
    /// before it). Call without holding a partition lock.
    pub(crate) fn commit(&self, ticket: Option<Ticket>) -> Result<(), DataError> {
        let (Some(ticket), Some(storage)) = (ticket, self.storage()) else {
            return Ok(());
        };
        let mut guard = storage.state.lock();
        let st = guard.as_mut().ok_or(DataError::DeviceWrite)?;
        let result = st.engine.commit(ticket);
        drop(guard);
        result.map_err(|e| storage.write_error(&self.name, e))
    }

    /// Releases the flash space of index entries the caller just removed (expired, truncated).
    /// Call under the partition write lock the entries were removed under.
    pub(crate) fn release_removed(&self, removed: &[(Digest, Location)]) {
        let Some(storage) = self.storage() else {
            return;
        };
        if removed.is_empty() {
            return;
        }
        let mut guard = storage.state.lock();
        if let Some(st) = guard.as_mut() {
            for (d, l) in removed {
                let l = resolve_take(&mut st.pending, d, *l);
                st.engine.release(l);
            }
        }
    }

    /// Flushes a write buffer that waited `flush-max-ms` (call periodically).
    pub fn storage_tick(&self, now_ms: u64) -> Result<(), StorageError> {
        let Some(storage) = self.storage() else {
            return Ok(());
        };
        let mut guard = storage.state.lock();
        match guard.as_mut() {
            Some(st) => st.engine.tick(now_ms),
            None => Ok(()),
        }
    }

    /// Defrags up to `max_blocks` blocks and repoints the index at the moved records. Returns
    /// the number of records moved.
    pub fn defrag(&self, max_blocks: usize) -> Result<usize, StorageError> {
        let Some(storage) = self.storage() else {
            return Ok(0);
        };
        let moves: Vec<Relocation> = {
            let mut guard = storage.state.lock();
            let Some(st) = guard.as_mut() else {
                return Ok(0);
            };
            let live = Live {
                ns: self,
                tombstones: &storage.tombstones,
                pending: &st.pending,
            };
            let moves = st.engine.defrag(&live, max_blocks)?;
            for m in &moves {
                st.pending.insert(
                    m.from,
                    Pending {
                        digest: m.digest,
                        to: m.to,
                    },
                );
            }
            moves
        };
        for m in &moves {
            let mut part = self.index.partition_of(&m.digest).write();
            let mut tombs = storage.tombstones.partition_of(&m.digest).write();
            let mut guard = storage.state.lock();
            let Some(st) = guard.as_mut() else {
                break;
            };
            if st.pending.get(&m.from).is_none_or(|p| p.digest != m.digest) {
                // A writer or an earlier step of a chain resolved it already.
                continue;
            }
            let to = resolve_take(&mut st.pending, &m.digest, m.from);
            if let Some(r) = part
                .get_mut(&m.digest)
                .filter(|r| r.location() == Some(m.from))
            {
                *r = r.with_body(Body::Device(to));
            } else if let Some(t) = tombs.get_mut(&m.digest).filter(|t| t.location() == m.from) {
                *t = IndexEntry::new(to, t.meta(), t.set_id(), true);
            } else {
                // Moved while its partition was busy, but no longer current: a dead copy.
                st.engine.release(to);
                continue;
            }
            storage.stats.defrag_relocations.fetch_add(1, Relaxed);
        }
        Ok(moves.len())
    }

    /// Engine statistics (per device).
    pub fn storage_stats(&self) -> Option<EngineStats> {
        let storage = self.storage()?;
        let guard = storage.state.lock();
        guard.as_ref().map(|st| st.engine.stats())
    }

    /// Clean shutdown: takes the engine out (later requests get a device error), flushes it and
    /// writes the index snapshot for a fast restart. Returns false when there was nothing to
    /// shut down (memory namespace, or already shut down).
    pub fn shutdown_storage(&self) -> Result<bool, StorageError> {
        let Some(storage) = self.storage() else {
            return Ok(false);
        };
        let Some(st) = storage.state.lock().take() else {
            return Ok(false);
        };
        let mut sets: Vec<Vec<u8>> = vec![Vec::new()];
        for (id, s) in self.sets() {
            // Ids are handed out densely from 1, so position = id.
            if usize::from(id) == sets.len() {
                sets.push(s.name.as_bytes().to_vec());
            }
        }
        let mut records = Vec::new();
        for p in 0..PARTITIONS {
            let pid = PartitionId(p as u16);
            let part = self.index.partition(pid).read();
            for (d, r) in part.iter() {
                if let Some(l) = r.location() {
                    let l = resolve_peek(&st.pending, d, l);
                    let set = if usize::from(r.set_id) < sets.len() {
                        r.set_id
                    } else {
                        0
                    };
                    records.push(RecoveredRecord {
                        digest: *d,
                        entry: IndexEntry::new(l, meta_of(r), set, false),
                    });
                }
            }
            drop(part);
            let tombs = storage.tombstones.partition(pid).read();
            for (d, t) in tombs.iter() {
                let l = resolve_peek(&st.pending, d, t.location());
                records.push(RecoveredRecord {
                    digest: *d,
                    entry: IndexEntry::new(l, t.meta(), t.set_id(), true),
                });
            }
        }
        st.engine.shutdown(&sets, &mut records.into_iter())?;
        Ok(true)
    }

    /// Removes truncated tombstones of partition `pid` (their older versions are truncated too)
    /// and returns their locations for [`Namespace::release_removed`]. Call under the
    /// partition's write lock.
    pub(crate) fn sweep_tombstones(&self, pid: PartitionId, out: &mut Vec<(Digest, Location)>) {
        let Some(storage) = self.storage() else {
            return;
        };
        let mut tombs = storage.tombstones.partition(pid).write();
        let before = tombs.len();
        tombs.retain(|d, t| {
            if self.is_truncated(t.set_id(), t.meta().lut_ms) {
                out.push((*d, t.location()));
                false
            } else {
                true
            }
        });
        sub(&storage.stats.tombstones, (before - tombs.len()) as u64);
    }

    /// True when partition `pid` holds a truncated tombstone.
    pub(crate) fn has_truncated_tombstones(&self, pid: PartitionId) -> bool {
        self.storage().is_some_and(|s| {
            s.tombstones
                .partition(pid)
                .read()
                .values()
                .any(|t| self.is_truncated(t.set_id(), t.meta().lut_ms))
        })
    }
}

fn sub(a: &AtomicU64, v: u64) {
    let _ = a.fetch_update(Relaxed, Relaxed, |x| Some(x.saturating_sub(v)));
}
