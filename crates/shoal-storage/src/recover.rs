//! Opening a namespace's devices: header checks (a foreign or mis-configured device is
//! refused, never overwritten), cold start (scan every block, newest version wins), the
//! clean-shutdown index snapshot and fast restart from it.
//!
//! Cold start: for each digest the newest version wins by last-update-time, then generation
//! (serial order), and a tombstone wins a tie (see [`wins`] for why time comes first); then expired records and records older than
//! a truncate are dropped. Tombstones are returned so the caller's index keeps them and defrag
//! keeps them on flash. Fast restart loads the snapshot a clean shutdown wrote; it is used only
//! when every device header says "clean" with the snapshot's epoch and its checksum holds;
//! otherwise this falls back to a cold start and says why. Before returning, every header is
//! rewritten as "not clean" with a new epoch and synced, so a crash after open can never be
//! mistaken for a clean shutdown. This module must never write a block or read a clock.
//! Aerospike counterpart: `ssd_cold_start_*` in `as/src/storage/drv_ssd.c`, `namespace_ce.c`.

use crate::constants::RBLOCK_BYTES;
use crate::constants::{
    DEFRAG_LWM_DEFAULT_PCT, DEVICES_PER_NAMESPACE_MAX, DEVICE_BLOCKS_MIN,
    DEVICE_HEADER_REGION_BYTES, DEVICE_MAX_BYTES, NAMESPACE_NAME_MAX_BYTES, SNAPSHOT_ENTRIES_MAX,
    SNAPSHOT_READ_CHUNK_ENTRIES, SNAPSHOT_SETS_MAX, WRITE_BLOCK_MAX_BYTES, WRITE_BLOCK_MIN_BYTES,
};
use crate::device::Device;
use crate::engine::{DeviceState, Engine, EngineConfig};
use crate::error::{Result, StorageError};
use crate::format::{
    decode_seq_floor, scan_block, BlockHeader, DeviceHeader, HeaderError, RecordMeta,
    BLOCK_HEADER_BYTES, DEVICE_HEADER_BYTES, SEQ_FLOOR_BYTES, SEQ_FLOOR_OFFSET,
};
use crate::location::{IndexEntry, Location, INDEX_ENTRY_BYTES};
use crate::wblock::BlockTable;
use shoal_base::constants::DIGEST_LEN_BYTES;
use shoal_base::Digest;
use std::collections::HashMap;

/// Cold-start progress is reported after this many blocks of a device.
const PROGRESS_INTERVAL_BLOCKS: u32 = 1024;

/// Records older than `lut_ms` in `set_name` (or every set when `None`) were truncated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncate {
    pub set_name: Option<Vec<u8>>,
    pub lut_ms: u64,
}

/// What recovery needs from the data layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryOptions {
    /// Current citrusleaf seconds: records with a void-time at or before it are dropped.
    pub now_s: u32,
    /// Truncations in force (from system metadata).
    pub truncates: Vec<Truncate>,
    /// Evictions in force: (void-time cutoff, last-update-time ms). A record with a void-time
    /// at or before a cutoff, last updated at or before its time, was evicted and stays gone.
    pub evictions: Vec<(u32, u64)>,
}

impl RecoveryOptions {
    fn is_evicted(&self, meta: &RecordMeta) -> bool {
        meta.void_time != 0
            && self
                .evictions
                .iter()
                .any(|(cutoff, lut)| meta.void_time <= *cutoff && meta.lut_ms <= *lut)
    }

    fn is_truncated(&self, set_name: &[u8], lut_ms: u64) -> bool {
        self.truncates
            .iter()
            .any(|t| t.set_name.as_deref().is_none_or(|s| s == set_name) && lut_ms < t.lut_ms)
    }
}

/// Cold-start progress of one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub device: u32,
    pub blocks_scanned: u32,
    pub blocks_total: u32,
}

/// How the engine came up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryKind {
    /// Every device was blank and has been formatted.
    Formatted,
    /// The devices were scanned; `reason` says why no snapshot was used.
    ColdStart { reason: String },
    /// The clean-shutdown snapshot was loaded; no device was scanned.
    FastRestart,
}

/// Counters of a recovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    pub blocks_scanned: u64,
    pub blocks_in_use: u64,
    pub records_scanned: u64,
    pub corrupt_records: u64,
    pub superseded: u64,
    pub expired: u64,
    /// Records skipped because an eviction removed them (`RecoveryOptions::evictions`).
    pub evicted: u64,
    pub truncated: u64,
    pub tombstones: u64,
    pub live_records: u64,
}

/// A record or tombstone the caller's index must hold after recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveredRecord {
    pub digest: Digest,
    /// Location, metadata, tombstone flag and set id (an index into [`Recovery::sets`]).
    pub entry: IndexEntry,
}

/// The result of opening the devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub kind: RecoveryKind,
    /// Set names by set id; id 0 is the empty name (no set).
    pub sets: Vec<Vec<u8>>,
    /// Every live record and tombstone, in no particular order.
    pub records: Vec<RecoveredRecord>,
    pub stats: RecoveryStats,
}

/// A device's header state at open.
enum Found {
    Blank,
    Formatted(DeviceHeader),
}

fn validate(config: &EngineConfig, devices: usize) -> Result<()> {
    let bad = |m: String| Err(StorageError::Config(m));
    if config.namespace.is_empty() || config.namespace.len() > NAMESPACE_NAME_MAX_BYTES {
        return bad(format!(
            "namespace name must be 1 to {NAMESPACE_NAME_MAX_BYTES} bytes"
        ));
    }
    let bs = config.block_bytes;
    if !bs.is_power_of_two() || !(WRITE_BLOCK_MIN_BYTES..=WRITE_BLOCK_MAX_BYTES).contains(&bs) {
        return bad(format!(
            "write-block-size {bs} must be a power of two from {WRITE_BLOCK_MIN_BYTES} to \
             {WRITE_BLOCK_MAX_BYTES}"
        ));
    }
    if config.defrag_lwm_pct > 99 {
        return bad(format!(
            "defrag-lwm-pct {} must be at most 99 (default {DEFRAG_LWM_DEFAULT_PCT})",
            config.defrag_lwm_pct
        ));
    }
    if config.stop_writes_avail_pct > 100 {
        return bad("stop-writes-avail-pct must be at most 100".into());
    }
    if devices == 0 || devices > DEVICES_PER_NAMESPACE_MAX {
        return bad(format!(
            "storage-engine device needs 1 to {DEVICES_PER_NAMESPACE_MAX} devices, got {devices}"
        ));
    }
    Ok(())
}

fn refuse(device: u32, dev: &dyn Device, reason: String) -> StorageError {
    StorageError::Refused {
        device,
        reason: format!("{}: {reason}", dev.describe()),
    }
}

/// Reads and checks a device's header; `blocks` is how many write blocks fit on it.
fn inspect(config: &EngineConfig, index: u32, dev: &dyn Device) -> Result<(Found, u32)> {
    let len = dev.len().min(DEVICE_MAX_BYTES);
    let blocks = len.saturating_sub(DEVICE_HEADER_REGION_BYTES) / u64::from(config.block_bytes);
    if blocks < u64::from(DEVICE_BLOCKS_MIN) {
        return Err(refuse(
            index,
            dev,
            format!(
                "{} bytes hold fewer than {DEVICE_BLOCKS_MIN} write blocks of {} bytes; use a \
                 larger device or file size",
                dev.len(),
                config.block_bytes
            ),
        ));
    }
    let blocks = u32::try_from(blocks).unwrap_or(u32::MAX);
    let mut raw = [0u8; DEVICE_HEADER_BYTES];
    dev.read_at(&mut raw, 0)
        .map_err(|source| StorageError::Io {
            device: index,
            op: "read header",
            source,
        })?;
    // Zeroing only a shoal device's header would let its old blocks come back at a later cold
    // start, so shoal devices are erased by shoald itself (`erase::erase`).
    let erase_hint = "if its contents are not needed, start shoald once with \
                      --erase-foreign-data (SHOAL_ERASE_FOREIGN_DATA=true), which erases it";
    let not_shoal_hint = "if its contents are not needed, erase its first 4096 bytes (for example \
                          `dd if=/dev/zero of=DEVICE bs=4096 count=1`) and start again";
    let header = match DeviceHeader::decode(&raw) {
        Ok(h) => h,
        Err(HeaderError::Blank) => return Ok((Found::Blank, blocks)),
        Err(HeaderError::Foreign) => {
            return Err(refuse(
                index,
                dev,
                format!("it holds data that is not a shoal device; shoal never overwrites it: {not_shoal_hint}"),
            ))
        }
        Err(HeaderError::Version(v)) => {
            return Err(refuse(
                index,
                dev,
                format!("it was formatted by shoal format version {v}, this build reads version {}; run a matching build, or {erase_hint}", crate::format::FORMAT_VERSION),
            ))
        }
        Err(HeaderError::Corrupt(why)) => {
            return Err(refuse(
                index,
                dev,
                format!("its shoal header is damaged ({why}); {erase_hint} (this loses its data)"),
            ))
        }
    };
    if header.namespace != config.namespace {
        return Err(refuse(
            index,
            dev,
            format!(
                "it belongs to namespace '{}', not '{}'; check the device list of both \
                 namespaces, or {erase_hint}",
                header.namespace, config.namespace
            ),
        ));
    }
    if header.device_index != index {
        return Err(refuse(
            index,
            dev,
            format!(
                "it was formatted as device {} of the namespace but is listed at position {index}; \
                 list the devices in their original order",
                header.device_index
            ),
        ));
    }
    if header.block_bytes != config.block_bytes {
        return Err(refuse(
            index,
            dev,
            format!(
                "it was formatted with write-block-size {}, the configuration says {}; set \
                 write-block-size back to {}",
                header.block_bytes, config.block_bytes, header.block_bytes
            ),
        ));
    }
    if header.block_count > blocks {
        return Err(refuse(
            index,
            dev,
            format!(
                "it was formatted with {} write blocks but now holds only {blocks}; restore its \
                 original size",
                header.block_count
            ),
        ));
    }
    let blocks = header.block_count;
    Ok((Found::Formatted(header), blocks))
}

/// Set names by id while recovering.
#[derive(Default)]
struct SetTable {
    names: Vec<Vec<u8>>,
    ids: HashMap<Vec<u8>, u16>,
}

impl SetTable {
    fn new() -> SetTable {
        let mut t = SetTable::default();
        t.names.push(Vec::new());
        t.ids.insert(Vec::new(), 0);
        t
    }

    fn id(&mut self, name: &[u8]) -> Result<u16> {
        if let Some(&id) = self.ids.get(name) {
            return Ok(id);
        }
        if self.names.len() >= SNAPSHOT_SETS_MAX {
            return Err(StorageError::Config(format!(
                "more than {SNAPSHOT_SETS_MAX} set names found on the devices"
            )));
        }
        let id = self.names.len() as u16;
        self.names.push(name.to_vec());
        self.ids.insert(name.to_vec(), id);
        Ok(id)
    }
}

/// The best version of a digest seen so far.
#[derive(Clone, Copy)]
struct Candidate {
    location: Location,
    meta: RecordMeta,
    set: u16,
    tombstone: bool,
}

/// What recovery found, before filtering.
struct Found2 {
    sets: SetTable,
    candidates: HashMap<Digest, Candidate>,
    /// Per device: last seen sequence number of each block.
    seqs: Vec<Vec<u64>>,
    next_seq: Vec<u64>,
    stats: RecoveryStats,
}

fn cold_scan(
    devices: &[Box<dyn Device>],
    block_counts: &[u32],
    block_bytes: u32,
    progress: &mut dyn FnMut(Progress),
) -> Result<Found2> {
    let mut sets = SetTable::new();
    let mut candidates: HashMap<Digest, Candidate> = HashMap::new();
    let mut stats = RecoveryStats::default();
    let mut seqs = Vec::with_capacity(devices.len());
    let mut next_seq = Vec::with_capacity(devices.len());
    let mut buf = vec![0u8; block_bytes as usize];
    for (i, dev) in devices.iter().enumerate() {
        let device = i as u32;
        let count = block_counts[i];
        let mut dev_seqs = vec![0u64; count as usize];
        let mut max_seq = 0u64;
        for block in 0..count {
            let offset = DEVICE_HEADER_REGION_BYTES + u64::from(block) * u64::from(block_bytes);
            let io = |source| StorageError::Io {
                device,
                op: "cold-start read",
                source,
            };
            stats.blocks_scanned += 1;
            // Read the block header first: a block never written (most of a new or sparse
            // device) is skipped without reading the whole block.
            dev.read_at(&mut buf[..BLOCK_HEADER_BYTES], offset)
                .map_err(io)?;
            let in_use = BlockHeader::decode(&buf[..BLOCK_HEADER_BYTES])
                .is_some_and(|h| h.block == block && h.device == device);
            if in_use {
                dev.read_at(&mut buf, offset).map_err(io)?;
            }
            let header = if in_use {
                BlockHeader::decode(&buf[..BLOCK_HEADER_BYTES])
            } else {
                None
            };
            if let Some(h) = header {
                if h.block == block && h.device == device {
                    stats.blocks_in_use += 1;
                    dev_seqs[block as usize] = h.seq;
                    max_seq = max_seq.max(h.seq);
                    let mut err = None;
                    stats.corrupt_records += scan_block(&buf, h.seq, |at, v| {
                        stats.records_scanned += 1;
                        let area = u64::from(block) * u64::from(block_bytes) + at as u64;
                        let location = Location::new(
                            device,
                            area / u64::from(RBLOCK_BYTES),
                            (v.padded_len / RBLOCK_BYTES as usize) as u32,
                        );
                        let set = match sets.id(v.set_name) {
                            Ok(s) => s,
                            Err(e) => {
                                err = Some(e);
                                return;
                            }
                        };
                        let new = Candidate {
                            location,
                            meta: v.meta,
                            set,
                            tombstone: v.tombstone,
                        };
                        match candidates.get_mut(&v.digest) {
                            None => {
                                candidates.insert(v.digest, new);
                            }
                            Some(old) => {
                                stats.superseded += 1;
                                if wins(&new, old) {
                                    *old = new;
                                }
                            }
                        }
                    });
                    if let Some(e) = err {
                        return Err(e);
                    }
                }
            }
            if (block + 1) % PROGRESS_INTERVAL_BLOCKS == 0 || block + 1 == count {
                progress(Progress {
                    device,
                    blocks_scanned: block + 1,
                    blocks_total: count,
                });
            }
        }
        seqs.push(dev_seqs);
        // An erased device remembers how far its old sequence numbers went; new uses of its
        // blocks start above them (see `erase`).
        let mut floor = [0u8; SEQ_FLOOR_BYTES];
        let floor = if dev.len() >= SEQ_FLOOR_OFFSET + SEQ_FLOOR_BYTES as u64 {
            dev.read_at(&mut floor, SEQ_FLOOR_OFFSET)
                .map_err(|source| StorageError::Io {
                    device,
                    op: "read sequence floor",
                    source,
                })?;
            decode_seq_floor(&floor)
        } else {
            0
        };
        next_seq.push((max_seq + 1).max(floor));
    }
    Ok(Found2 {
        sets,
        candidates,
        seqs,
        next_seq,
        stats,
    })
}

/// True when `new` should replace `old`: newer by last-update-time, then by generation in
/// serial order, and a tombstone beats a record of the same generation and last-update-time.
///
/// Last-update-time comes first (Aerospike compares generations first) because a single node
/// forgets a key's generation when an expired or truncated record leaves its index: the next
/// write starts again at generation 1, and only its later last-update-time says it is newer
/// than the copies still on flash. The data layer keeps last-update-times strictly increasing
/// per key while the key is in its index.
fn wins(new: &Candidate, old: &Candidate) -> bool {
    if new.meta.lut_ms != old.meta.lut_ms {
        return new.meta.lut_ms > old.meta.lut_ms;
    }
    if new.meta.is_newer_than(&old.meta) {
        return true;
    }
    new.meta.generation == old.meta.generation && new.tombstone && !old.tombstone
}

// ---------------------------------------------------------------------------------------------
// Snapshot.

const SNAPSHOT_MAGIC: [u8; 8] = *b"SHOALSNP";
const SNAPSHOT_VERSION: u32 = 1;
const SNAPSHOT_HEADER_BYTES: usize = 64;
const SNAPSHOT_ENTRY_BYTES: usize = DIGEST_LEN_BYTES + INDEX_ENTRY_BYTES;
const _: () = assert!(SNAPSHOT_ENTRY_BYTES == 42);

/// A loaded snapshot.
struct Snapshot {
    sets: Vec<Vec<u8>>,
    records: Vec<RecoveredRecord>,
    next_seq: Vec<u64>,
    /// Per device: sequence number of each block's current use.
    seqs: Vec<Vec<u64>>,
}

/// Reads a snapshot sequentially in chunks, hashing what it hands out.
struct SnapReader<'a> {
    dev: &'a dyn Device,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    at: usize,
    hasher: crc32fast::Hasher,
}

impl SnapReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::result::Result<(), String> {
        let mut done = 0;
        while done < out.len() {
            if self.at == self.buf.len() {
                let left = self.end - self.pos;
                if left == 0 {
                    return Err("snapshot is shorter than its contents".into());
                }
                let n = left.min((SNAPSHOT_READ_CHUNK_ENTRIES * SNAPSHOT_ENTRY_BYTES) as u64);
                self.buf.resize(n as usize, 0);
                self.dev
                    .read_at(&mut self.buf, self.pos)
                    .map_err(|e| format!("snapshot read failed: {e}"))?;
                self.pos += n;
                self.at = 0;
            }
            let n = (out.len() - done).min(self.buf.len() - self.at);
            out[done..done + n].copy_from_slice(&self.buf[self.at..self.at + n]);
            self.hasher.update(&out[done..done + n]);
            self.at += n;
            done += n;
        }
        Ok(())
    }
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Loads and checks the snapshot; `Err` says why it cannot be used.
fn load_snapshot(
    dev: &dyn Device,
    epoch: u64,
    block_counts: &[u32],
) -> std::result::Result<Snapshot, String> {
    let device_count = block_counts.len();
    let mut h = [0u8; SNAPSHOT_HEADER_BYTES];
    if dev.len() < SNAPSHOT_HEADER_BYTES as u64 {
        return Err("snapshot is missing".into());
    }
    dev.read_at(&mut h, 0)
        .map_err(|e| format!("snapshot read failed: {e}"))?;
    if h.iter().all(|&b| b == 0) {
        return Err("snapshot is missing".into());
    }
    if h[0..8] != SNAPSHOT_MAGIC || le32(&h[8..12]) != SNAPSHOT_VERSION {
        return Err("snapshot has a foreign magic or version".into());
    }
    let crc = le32(&h[12..16]);
    let snap_epoch = le64(&h[16..24]);
    let total = le64(&h[24..32]);
    let entries = le64(&h[32..40]);
    let set_count = le32(&h[40..44]) as usize;
    let snap_devices = le32(&h[44..48]) as usize;
    if snap_epoch != epoch {
        return Err(format!(
            "snapshot is stale (epoch {snap_epoch}, devices say {epoch})"
        ));
    }
    if snap_devices != device_count {
        return Err("snapshot was taken with another device count".into());
    }
    if total > dev.len() || total < SNAPSHOT_HEADER_BYTES as u64 {
        return Err("snapshot length is out of range".into());
    }
    if entries > SNAPSHOT_ENTRIES_MAX
        || entries.saturating_mul(SNAPSHOT_ENTRY_BYTES as u64) > total
        || set_count > SNAPSHOT_SETS_MAX
    {
        return Err("snapshot counts are out of range".into());
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&h[16..]);
    let mut r = SnapReader {
        dev,
        pos: SNAPSHOT_HEADER_BYTES as u64,
        end: total,
        buf: Vec::new(),
        at: 0,
        hasher,
    };
    let mut next_seq = Vec::with_capacity(device_count);
    let mut seqs = Vec::with_capacity(device_count);
    for &count in block_counts {
        let mut b = [0u8; 12];
        r.read(&mut b)?;
        next_seq.push(le64(&b[..8]));
        if le32(&b[8..12]) != count {
            return Err("snapshot was taken with another device size".into());
        }
        let mut dev_seqs = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let mut s = [0u8; 8];
            r.read(&mut s)?;
            dev_seqs.push(u64::from_le_bytes(s));
        }
        seqs.push(dev_seqs);
    }
    let mut sets = Vec::with_capacity(set_count);
    for _ in 0..set_count {
        let mut len = [0u8; 1];
        r.read(&mut len)?;
        let mut name = vec![0u8; usize::from(len[0])];
        r.read(&mut name)?;
        sets.push(name);
    }
    let mut records = Vec::with_capacity(entries as usize);
    let mut e = [0u8; SNAPSHOT_ENTRY_BYTES];
    for _ in 0..entries {
        r.read(&mut e)?;
        let mut d = [0u8; DIGEST_LEN_BYTES];
        d.copy_from_slice(&e[..DIGEST_LEN_BYTES]);
        let mut ie = [0u8; INDEX_ENTRY_BYTES];
        ie.copy_from_slice(&e[DIGEST_LEN_BYTES..]);
        records.push(RecoveredRecord {
            digest: Digest(d),
            entry: IndexEntry::from_bytes(&ie),
        });
    }
    if r.pos - (r.buf.len() - r.at) as u64 != total {
        return Err("snapshot length disagrees with its contents".into());
    }
    if r.hasher.finalize() != crc {
        return Err("snapshot checksum mismatch".into());
    }
    Ok(Snapshot {
        sets,
        records,
        next_seq,
        seqs,
    })
}

/// Writes a snapshot (body first, header with checksum last) and syncs it.
pub(crate) fn write_snapshot(
    dev: &mut dyn Device,
    epoch: u64,
    devices: &[(u64, Vec<u64>)],
    sets: &[Vec<u8>],
    records: &mut dyn Iterator<Item = RecoveredRecord>,
) -> std::io::Result<()> {
    let mut hasher = crc32fast::Hasher::new();
    let mut pos = SNAPSHOT_HEADER_BYTES as u64;
    let mut chunk: Vec<u8> = Vec::new();
    let chunk_max = SNAPSHOT_READ_CHUNK_ENTRIES * SNAPSHOT_ENTRY_BYTES;
    let mut flush = |chunk: &mut Vec<u8>, pos: &mut u64, dev: &mut dyn Device| {
        hasher.update(chunk);
        let r = dev.write_at(chunk, *pos);
        *pos += chunk.len() as u64;
        chunk.clear();
        r
    };
    for (next_seq, seqs) in devices {
        chunk.extend_from_slice(&next_seq.to_le_bytes());
        chunk.extend_from_slice(&(seqs.len() as u32).to_le_bytes());
        for s in seqs {
            chunk.extend_from_slice(&s.to_le_bytes());
            if chunk.len() >= chunk_max {
                flush(&mut chunk, &mut pos, dev)?;
            }
        }
    }
    for name in sets {
        let n = name.len().min(255);
        chunk.push(n as u8);
        chunk.extend_from_slice(&name[..n]);
    }
    let mut count = 0u64;
    for r in records {
        chunk.extend_from_slice(&r.digest.0);
        chunk.extend_from_slice(&r.entry.to_bytes());
        count += 1;
        if chunk.len() >= chunk_max {
            flush(&mut chunk, &mut pos, dev)?;
        }
    }
    flush(&mut chunk, &mut pos, dev)?;
    let mut h = [0u8; SNAPSHOT_HEADER_BYTES];
    h[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    h[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&epoch.to_le_bytes());
    h[24..32].copy_from_slice(&pos.to_le_bytes());
    h[32..40].copy_from_slice(&count.to_le_bytes());
    h[40..44].copy_from_slice(&(sets.len() as u32).to_le_bytes());
    h[44..48].copy_from_slice(&(devices.len() as u32).to_le_bytes());
    let mut full = crc32fast::Hasher::new();
    full.update(&h[16..]);
    full.combine(&hasher);
    h[12..16].copy_from_slice(&full.finalize().to_le_bytes());
    dev.write_at(&h, 0)?;
    dev.sync()
}

// ---------------------------------------------------------------------------------------------
// Open.

impl Engine {
    /// Opens a namespace's devices: formats blank ones, refuses foreign or mis-configured
    /// ones, and recovers the index by fast restart from `snapshot` when the last shutdown was
    /// clean and the snapshot is intact, by a cold-start scan otherwise. `progress` is called
    /// during a cold start. Returns the engine and every record and tombstone the caller's
    /// index must hold.
    pub fn open(
        config: EngineConfig,
        devices: Vec<Box<dyn Device>>,
        snapshot: Option<Box<dyn Device>>,
        options: &RecoveryOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(Engine, Recovery)> {
        validate(&config, devices.len())?;
        let n = devices.len();
        let mut found = Vec::with_capacity(n);
        let mut counts = Vec::with_capacity(n);
        for (i, dev) in devices.iter().enumerate() {
            let (f, c) = inspect(&config, i as u32, dev.as_ref())?;
            found.push(f);
            counts.push(c);
        }
        let headers: Vec<&DeviceHeader> = found
            .iter()
            .filter_map(|f| match f {
                Found::Formatted(h) => Some(h),
                Found::Blank => None,
            })
            .collect();
        let all_blank = headers.is_empty();
        let max_epoch = headers.iter().map(|h| h.epoch).max().unwrap_or(0);

        let fast = if all_blank {
            Err(String::new())
        } else if headers.len() != n {
            Err("a device was added".to_string())
        } else if !headers.iter().all(|h| h.clean_shutdown) {
            Err("the last shutdown was not clean".to_string())
        } else if !headers
            .iter()
            .all(|h| h.epoch == max_epoch && h.device_count as usize == n)
        {
            Err("device headers disagree".to_string())
        } else {
            match &snapshot {
                None => Err("no snapshot device is configured".to_string()),
                Some(s) => load_snapshot(s.as_ref(), max_epoch, &counts),
            }
        };

        let block_bytes = config.block_bytes;
        let (kind, sets, candidates, seqs, next_seq, mut stats) = match fast {
            Ok(snap) => {
                let mut candidates = HashMap::with_capacity(snap.records.len());
                for r in &snap.records {
                    candidates.insert(
                        r.digest,
                        Candidate {
                            location: r.entry.location(),
                            meta: r.entry.meta(),
                            set: r.entry.set_id(),
                            tombstone: r.entry.is_tombstone(),
                        },
                    );
                }
                (
                    RecoveryKind::FastRestart,
                    snap.sets,
                    candidates,
                    snap.seqs,
                    snap.next_seq,
                    RecoveryStats::default(),
                )
            }
            Err(reason) => {
                let f = cold_scan(&devices, &counts, block_bytes, progress)?;
                let kind = if all_blank {
                    RecoveryKind::Formatted
                } else {
                    RecoveryKind::ColdStart { reason }
                };
                (
                    kind,
                    f.sets.names,
                    f.candidates,
                    f.seqs,
                    f.next_seq,
                    f.stats,
                )
            }
        };

        // Keep the winners that are neither expired nor truncated; count their bytes live.
        let mut live: Vec<Vec<u32>> = counts.iter().map(|&c| vec![0u32; c as usize]).collect();
        let mut records = Vec::with_capacity(candidates.len());
        for (digest, c) in candidates {
            let set_name = sets.get(usize::from(c.set)).map_or(&[][..], Vec::as_slice);
            if options.is_truncated(set_name, c.meta.lut_ms) {
                stats.truncated += 1;
                continue;
            }
            if c.tombstone {
                stats.tombstones += 1;
            } else if shoal_base::VoidTime(c.meta.void_time).is_expired(options.now_s) {
                stats.expired += 1;
                continue;
            } else if options.is_evicted(&c.meta) {
                stats.evicted += 1;
                continue;
            } else {
                stats.live_records += 1;
            }
            let dev = c.location.device() as usize;
            let block = c.location.block(block_bytes) as usize;
            let slot = live.get_mut(dev).and_then(|l| l.get_mut(block)).ok_or(
                StorageError::BadLocation {
                    location: c.location,
                    reason: "recovered location is outside the devices",
                },
            )?;
            *slot += c.location.size_bytes();
            records.push(RecoveredRecord {
                digest,
                entry: IndexEntry::new(c.location, c.meta, c.set, c.tombstone),
            });
        }

        // Mark every device "not clean" under a new epoch before the first write.
        let epoch = max_epoch + 1;
        let mut states = Vec::with_capacity(n);
        for (i, mut dev) in devices.into_iter().enumerate() {
            let header = DeviceHeader {
                namespace: config.namespace.clone(),
                device_index: i as u32,
                device_count: n as u32,
                block_bytes,
                block_count: counts[i],
                epoch,
                clean_shutdown: false,
            };
            let io = |source| StorageError::Io {
                device: i as u32,
                op: "header write",
                source,
            };
            dev.write_at(&header.encode(), 0).map_err(io)?;
            dev.sync().map_err(io)?;
            let mut blocks = BlockTable::new(counts[i], block_bytes, config.defrag_lwm_pct);
            blocks.rebuild(&live[i], &seqs[i]);
            states.push(DeviceState::new(
                i as u32,
                dev,
                header,
                blocks,
                next_seq.get(i).copied().unwrap_or(1).max(1),
                config.post_write_cache_bytes,
            ));
        }
        let engine = Engine::from_parts(config, states, snapshot);
        Ok((
            engine,
            Recovery {
                kind,
                sets,
                records,
                stats,
            },
        ))
    }

    /// Clean shutdown: flushes and syncs every device, writes the index snapshot (`sets` by
    /// set id, and every record and tombstone the caller's index holds), then marks every
    /// device clean. Without a snapshot device the next start is a cold start.
    pub fn shutdown(
        mut self,
        sets: &[Vec<u8>],
        records: &mut dyn Iterator<Item = RecoveredRecord>,
    ) -> Result<()> {
        self.flush()?;
        let epoch = self.devices.first().map_or(0, |d| d.header.epoch);
        let devices: Vec<(u64, Vec<u64>)> = self
            .devices
            .iter()
            .map(|d| (d.next_seq, d.blocks.seqs()))
            .collect();
        if let Some(snap) = &mut self.snapshot {
            write_snapshot(snap.as_mut(), epoch, &devices, sets, records).map_err(|source| {
                StorageError::Io {
                    device: u32::MAX,
                    op: "snapshot write",
                    source,
                }
            })?;
        }
        for d in &mut self.devices {
            d.header.clean_shutdown = self.snapshot.is_some();
            let io = |source| StorageError::Io {
                device: d.index,
                op: "header write",
                source,
            };
            d.dev.write_at(&d.header.encode(), 0).map_err(io)?;
            d.dev.sync().map_err(io)?;
        }
        Ok(())
    }
}
