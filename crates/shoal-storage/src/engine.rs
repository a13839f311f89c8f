//! The storage engine of one namespace: appends records and tombstones to per-device write
//! buffers, flushes them as write blocks, serves reads, keeps live-bytes accounting, defrags,
//! commits with the chosen durability, and poisons a device after a failed write or sync.
//!
//! Records are striped over the devices by digest. A write returns a [`Location`] and a
//! [`Ticket`]; the ticket is durable once a flush and sync of its device covered it, and one
//! sync covers every write appended before it (group commit). Invariants: a freed block is
//! reused only after a sync made its replacement data durable (see [`crate::wblock`]); a
//! poisoned device never takes another write; a record that fails its checksum is never
//! returned. This module must never own the primary index (the caller's index answers
//! [`LiveIndex`]), read a clock, or retry a failed sync.
//! Aerospike counterpart: `as/src/storage/drv_ssd.c` (swb, flush, defrag), `storage.c`.

use crate::constants::{
    DEFRAG_LWM_DEFAULT_PCT, DEVICE_HEADER_REGION_BYTES, FLUSH_MAX_DEFAULT_MS,
    POST_WRITE_CACHE_DEFAULT_BYTES, RBLOCK_BYTES, STOP_WRITES_AVAIL_DEFAULT_PCT,
    WRITE_BLOCK_DEFAULT_BYTES,
};
use crate::device::Device;
use crate::error::{Result, StorageError};
use crate::format::{
    decode_record, encode_record, pad_to_rblock, record_len, scan_block, DeviceHeader, RecordError,
    RecordMeta, RecordParts, StoredRecord, BLOCK_HEADER_BYTES,
};
use crate::location::Location;
use crate::wblock::{BlockState, BlockTable, PostWriteCache, WriteBuffer};
use shoal_base::Digest;
use std::collections::HashMap;

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DurabilityMode {
    /// Acknowledge once the record is in the write buffer; it becomes durable at the next
    /// flush (at most `flush-max-ms` later, or when its block fills). Aerospike's default.
    #[default]
    Buffered,
    /// Acknowledge only after the block holding the record is written and synced
    /// (`commit-to-device`). Concurrent writers share one sync (group commit).
    CommitToDevice,
}

/// Configuration of a namespace's device storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Namespace name, stored in every device header.
    pub namespace: String,
    /// `write-block-size`.
    pub block_bytes: u32,
    /// `flush-max-ms`.
    pub flush_max_ms: u64,
    /// `defrag-lwm-pct`.
    pub defrag_lwm_pct: u32,
    /// `stop-writes-avail-pct`.
    pub stop_writes_avail_pct: u32,
    /// `post-write-cache` per device.
    pub post_write_cache_bytes: u64,
    /// `commit-to-device` or buffered.
    pub durability: DurabilityMode,
}

impl EngineConfig {
    /// Aerospike-like defaults for `namespace`.
    pub fn new(namespace: &str) -> EngineConfig {
        EngineConfig {
            namespace: namespace.to_string(),
            block_bytes: WRITE_BLOCK_DEFAULT_BYTES,
            flush_max_ms: FLUSH_MAX_DEFAULT_MS,
            defrag_lwm_pct: DEFRAG_LWM_DEFAULT_PCT,
            stop_writes_avail_pct: STOP_WRITES_AVAIL_DEFAULT_PCT,
            post_write_cache_bytes: POST_WRITE_CACHE_DEFAULT_BYTES,
            durability: DurabilityMode::Buffered,
        }
    }
}

/// A write's place in its device's commit order; durable once [`Engine::is_durable`] says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket {
    device: u32,
    seq: u64,
}

/// The caller's primary index, as defrag needs it.
pub trait LiveIndex {
    /// True when the index entry for `digest` (record or tombstone) is at `location`.
    fn is_current(&self, digest: &Digest, location: Location) -> bool;
}

/// A record defrag moved: the caller must repoint its index entry from `from` to `to` if it
/// still points at `from`, before the next read of that digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relocation {
    pub digest: Digest,
    pub from: Location,
    pub to: Location,
}

/// Counters and gauges of one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceStats {
    pub total_blocks: u32,
    pub free_blocks: u32,
    pub pending_free_blocks: u32,
    pub defrag_queue: usize,
    pub live_bytes: u64,
    pub poisoned: bool,
    pub block_writes: u64,
    pub syncs: u64,
    pub defrag_blocks: u64,
    pub defrag_moved_records: u64,
    pub corrupt_reads: u64,
    pub cache_reads: u64,
    pub device_reads: u64,
    pub post_write_cache_bytes: u64,
}

/// Engine-wide statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub devices: Vec<DeviceStats>,
}

/// Which budget a write may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteClass {
    /// A client write: refused under stop-writes.
    Client,
    /// A tombstone or defrag move: may use the reserve, since it is how room is made.
    Reserve,
}

/// One device and its write state.
pub(crate) struct DeviceState {
    pub(crate) index: u32,
    pub(crate) dev: Box<dyn Device>,
    pub(crate) header: DeviceHeader,
    pub(crate) blocks: BlockTable,
    pub(crate) wbuf: Option<WriteBuffer>,
    pub(crate) cache: PostWriteCache,
    /// Sequence number for the next block use.
    pub(crate) next_seq: u64,
    pub(crate) poisoned: bool,
    /// Tickets issued and made durable on this device.
    pub(crate) last_ticket: u64,
    pub(crate) durable_ticket: u64,
    /// Writes issued since the last sync.
    pub(crate) unsynced: bool,
    pub(crate) stats: DeviceStats,
}

impl DeviceState {
    pub(crate) fn new(
        index: u32,
        dev: Box<dyn Device>,
        header: DeviceHeader,
        blocks: BlockTable,
        next_seq: u64,
        cache_bytes: u64,
    ) -> DeviceState {
        DeviceState {
            index,
            dev,
            header,
            blocks,
            wbuf: None,
            cache: PostWriteCache::new(cache_bytes),
            next_seq,
            poisoned: false,
            last_ticket: 0,
            durable_ticket: 0,
            unsynced: false,
            stats: DeviceStats::default(),
        }
    }

    fn block_offset(&self, block: u32) -> u64 {
        DEVICE_HEADER_REGION_BYTES + u64::from(block) * u64::from(self.header.block_bytes)
    }

    fn io_error(&mut self, op: &'static str, source: std::io::Error) -> StorageError {
        self.poisoned = true;
        StorageError::Io {
            device: self.index,
            op,
            source,
        }
    }

    fn check_writable(&self) -> Result<()> {
        if self.poisoned {
            return Err(StorageError::Poisoned { device: self.index });
        }
        Ok(())
    }

    /// Writes the unflushed tail of the write buffer.
    fn write_out(&mut self) -> Result<()> {
        let Some(wb) = &self.wbuf else {
            return Ok(());
        };
        if !wb.is_dirty() {
            return Ok(());
        }
        let offset = self.block_offset(wb.block) + wb.flushed as u64;
        let (from, to) = (wb.flushed, wb.buf.len());
        let result = self.dev.write_at(&wb.buf[from..to], offset);
        if let Err(e) = result {
            return Err(self.io_error("write", e));
        }
        self.unsynced = true;
        self.stats.block_writes += 1;
        if let Some(wb) = &mut self.wbuf {
            wb.flushed = to;
        }
        Ok(())
    }

    /// Writes out the buffer and syncs; afterwards every ticket issued so far is durable and
    /// pending-free blocks become reusable.
    fn flush_and_sync(&mut self) -> Result<()> {
        self.check_writable()?;
        self.write_out()?;
        if self.unsynced {
            if let Err(e) = self.dev.sync() {
                return Err(self.io_error("fsync", e));
            }
            self.stats.syncs += 1;
            self.unsynced = false;
        }
        self.durable_ticket = self.last_ticket;
        self.blocks.release_pending();
        Ok(())
    }

    /// Writes out and seals the current block, keeping its bytes in the post-write cache.
    fn seal(&mut self) -> Result<()> {
        self.write_out()?;
        if let Some(wb) = self.wbuf.take() {
            self.blocks.seal(wb.block);
            self.cache.insert(wb.block, wb.buf);
        }
        Ok(())
    }

    /// Makes sure the write buffer has `padded` bytes of room, sealing and opening blocks.
    fn make_room(&mut self, padded: usize, class: WriteClass, avail_pct: u32) -> Result<()> {
        self.check_writable()?;
        let block_bytes = self.header.block_bytes as usize;
        if class == WriteClass::Client {
            let avail = self.blocks.free_count() + self.blocks.pending_free_count();
            let total = self.blocks.len();
            if u64::from(avail) * 100 < u64::from(avail_pct) * u64::from(total) {
                return Err(StorageError::StopWrites {
                    device: self.index,
                    free_blocks: avail,
                    total_blocks: total,
                    avail_pct,
                });
            }
        }
        if let Some(wb) = &self.wbuf {
            if wb.buf.len() + padded <= block_bytes {
                return Ok(());
            }
        }
        self.seal()?;
        if self.blocks.free_count() == 0 && self.blocks.pending_free_count() > 0 {
            // Freed blocks become reusable once what replaced their records is durable.
            self.flush_and_sync()?;
        }
        let seq = self.next_seq;
        let Some(block) = self.blocks.allocate(seq) else {
            return Err(StorageError::DeviceFull { device: self.index });
        };
        self.next_seq += 1;
        self.cache.remove(block);
        self.wbuf = Some(WriteBuffer::new(
            self.index,
            block,
            seq,
            self.header.block_bytes,
        ));
        Ok(())
    }

    /// Appends a record; returns its location and ticket.
    fn append(
        &mut self,
        parts: &RecordParts<'_>,
        class: WriteClass,
        avail_pct: u32,
    ) -> Result<(Location, Ticket)> {
        let block_bytes = self.header.block_bytes;
        let total = record_len(parts.set_name, parts.key, parts.bins)?;
        let padded = pad_to_rblock(total);
        let max = block_bytes as usize - BLOCK_HEADER_BYTES;
        if padded > max {
            return Err(StorageError::RecordTooBig {
                size: padded as u64,
                max: max as u64,
            });
        }
        self.make_room(padded, class, avail_pct)?;
        let Some(wb) = &mut self.wbuf else {
            return Err(StorageError::DeviceFull { device: self.index });
        };
        let offset = wb.buf.len();
        encode_record(&mut wb.buf, parts, wb.seq)?;
        let area = u64::from(wb.block) * u64::from(block_bytes) + offset as u64;
        let location = Location::new(
            self.index,
            area / u64::from(RBLOCK_BYTES),
            (padded / RBLOCK_BYTES as usize) as u32,
        );
        let block = wb.block;
        self.blocks.add_live(block, padded as u32);
        self.last_ticket += 1;
        Ok((
            location,
            Ticket {
                device: self.index,
                seq: self.last_ticket,
            },
        ))
    }

    /// The bytes of a whole block use, from memory when possible.
    fn block_bytes_for(&mut self, block: u32) -> Result<Vec<u8>> {
        if let Some(wb) = &self.wbuf {
            if wb.block == block {
                return Ok(wb.buf.clone());
            }
        }
        if let Some(b) = self.cache.get(block) {
            self.stats.cache_reads += 1;
            return Ok(b.to_vec());
        }
        let mut buf = vec![0u8; self.header.block_bytes as usize];
        let offset = self.block_offset(block);
        self.stats.device_reads += 1;
        self.dev
            .read_at(&mut buf, offset)
            .map_err(|source| StorageError::Io {
                device: self.index,
                op: "read",
                source,
            })?;
        Ok(buf)
    }
}

/// The flash storage engine of one namespace.
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) devices: Vec<DeviceState>,
    pub(crate) snapshot: Option<Box<dyn Device>>,
    /// `now_ms` of the last flush done by [`Engine::tick`].
    last_tick_flush_ms: u64,
}

impl Engine {
    pub(crate) fn from_parts(
        config: EngineConfig,
        devices: Vec<DeviceState>,
        snapshot: Option<Box<dyn Device>>,
    ) -> Engine {
        Engine {
            config,
            devices,
            snapshot,
            last_tick_flush_ms: 0,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The device a digest's writes go to (striping by digest bytes 8..12, which the
    /// partition id does not use).
    pub fn device_for(&self, digest: &Digest) -> u32 {
        let d = &digest.0;
        let v = u32::from_le_bytes([d[8], d[9], d[10], d[11]]);
        v % self.devices.len().max(1) as u32
    }

    fn device_mut(&mut self, device: u32) -> Result<&mut DeviceState> {
        self.devices
            .get_mut(device as usize)
            .ok_or_else(|| StorageError::Config(format!("no device {device}")))
    }

    /// Writes a record and returns where it is. Under `commit-to-device` this returns only
    /// after the record is durable; in buffered mode once it is in the write buffer.
    /// The caller must [`Engine::release`] the location of the version this one replaces.
    pub fn put(
        &mut self,
        digest: &Digest,
        meta: RecordMeta,
        set_name: &[u8],
        key: Option<&[u8]>,
        bins: &[u8],
    ) -> Result<Location> {
        let parts = RecordParts {
            digest,
            meta,
            set_name,
            key,
            bins,
            tombstone: false,
        };
        self.write_acked(&parts, WriteClass::Client)
    }

    /// Writes a durable-delete tombstone and returns its location, which the caller keeps in
    /// its index (a tombstone entry) so that defrag keeps it and older copies cannot come
    /// back at a cold start. `meta` must be newer than the deleted version (generation + 1).
    /// Tombstones may use the stop-writes reserve: deleting is how room is made.
    pub fn delete(
        &mut self,
        digest: &Digest,
        meta: RecordMeta,
        set_name: &[u8],
    ) -> Result<Location> {
        let parts = RecordParts {
            digest,
            meta,
            set_name,
            key: None,
            bins: &[],
            tombstone: true,
        };
        self.write_acked(&parts, WriteClass::Reserve)
    }

    fn write_acked(&mut self, parts: &RecordParts<'_>, class: WriteClass) -> Result<Location> {
        let (location, ticket) = self.append(parts, class)?;
        if self.config.durability == DurabilityMode::CommitToDevice {
            if let Err(e) = self.commit(ticket) {
                // Not acknowledged: the index will not refer to it.
                self.release(location);
                return Err(e);
            }
        }
        Ok(location)
    }

    /// Writes a record without waiting for durability, whatever the mode: for group commit,
    /// call [`Engine::commit`] with the ticket (one sync serves every ticket before it).
    pub fn put_deferred(
        &mut self,
        digest: &Digest,
        meta: RecordMeta,
        set_name: &[u8],
        key: Option<&[u8]>,
        bins: &[u8],
    ) -> Result<(Location, Ticket)> {
        let parts = RecordParts {
            digest,
            meta,
            set_name,
            key,
            bins,
            tombstone: false,
        };
        self.append(&parts, WriteClass::Client)
    }

    /// [`Engine::delete`] without waiting for durability (see [`Engine::put_deferred`]).
    pub fn delete_deferred(
        &mut self,
        digest: &Digest,
        meta: RecordMeta,
        set_name: &[u8],
    ) -> Result<(Location, Ticket)> {
        let parts = RecordParts {
            digest,
            meta,
            set_name,
            key: None,
            bins: &[],
            tombstone: true,
        };
        self.append(&parts, WriteClass::Reserve)
    }

    fn append(&mut self, parts: &RecordParts<'_>, class: WriteClass) -> Result<(Location, Ticket)> {
        let device = self.device_for(parts.digest);
        let avail_pct = self.config.stop_writes_avail_pct;
        self.device_mut(device)?.append(parts, class, avail_pct)
    }

    /// True once the write behind `ticket` is durable.
    pub fn is_durable(&self, ticket: Ticket) -> bool {
        self.devices
            .get(ticket.device as usize)
            .is_some_and(|d| d.durable_ticket >= ticket.seq)
    }

    /// Makes the write behind `ticket` durable: a no-op when an earlier sync already covered
    /// it, otherwise one flush and sync that also covers every later write (group commit).
    pub fn commit(&mut self, ticket: Ticket) -> Result<()> {
        if self.is_durable(ticket) {
            return Ok(());
        }
        self.device_mut(ticket.device)?.flush_and_sync()
    }

    /// The index no longer refers to `location` (replaced, deleted, expired, evicted): its
    /// bytes stop counting as live. Call it exactly once per location the index drops.
    pub fn release(&mut self, location: Location) {
        let block_bytes = self.config.block_bytes;
        if let Some(d) = self.devices.get_mut(location.device() as usize) {
            d.blocks
                .sub_live(location.block(block_bytes), location.size_bytes());
        }
    }

    /// Writes out every write buffer and syncs every device: everything written before is
    /// durable when this returns `Ok`. Poisoned devices are skipped and reported.
    pub fn flush(&mut self) -> Result<()> {
        let mut first_error = None;
        for d in &mut self.devices {
            if let Err(e) = d.flush_and_sync() {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Flushes when `flush-max-ms` has passed since the last timed flush and something is
    /// waiting. Call it periodically with the current time in milliseconds.
    pub fn tick(&mut self, now_ms: u64) -> Result<()> {
        if now_ms.saturating_sub(self.last_tick_flush_ms) < self.config.flush_max_ms {
            return Ok(());
        }
        self.last_tick_flush_ms = now_ms;
        let dirty = self.devices.iter().any(|d| {
            !d.poisoned && (d.unsynced || d.wbuf.as_ref().is_some_and(WriteBuffer::is_dirty))
        });
        if dirty {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Reads the record at `location`: from the write buffer or post-write cache when the
    /// block is there, otherwise with one positioned read. A checksum failure is counted and
    /// reported, never served.
    pub fn get(&mut self, location: Location) -> Result<StoredRecord> {
        let block_bytes = self.config.block_bytes;
        let block = location.block(block_bytes);
        let offset = location.offset_in_block(block_bytes) as usize;
        let size = location.size_bytes() as usize;
        let bad = |reason| StorageError::BadLocation { location, reason };
        let d = self
            .devices
            .get_mut(location.device() as usize)
            .ok_or(bad("no such device"))?;
        let info = *d.blocks.get(block).ok_or(bad("no such block"))?;
        if matches!(info.state, BlockState::Free | BlockState::PendingFree) {
            return Err(bad("block is free"));
        }
        if offset < BLOCK_HEADER_BYTES || offset + size > block_bytes as usize || size == 0 {
            return Err(bad("offset or size out of range"));
        }
        let owned;
        let bytes: &[u8] = match (&d.wbuf, d.cache.get(block)) {
            (Some(wb), _) if wb.block == block => wb
                .buf
                .get(offset..offset + size)
                .ok_or(bad("past the end of the write buffer"))?,
            (_, Some(cached)) => {
                d.stats.cache_reads += 1;
                cached
                    .get(offset..offset + size)
                    .ok_or(bad("past the end of the cached block"))?
            }
            _ => {
                let mut buf = vec![0u8; size];
                let at = d.block_offset(block) + offset as u64;
                d.stats.device_reads += 1;
                d.dev
                    .read_at(&mut buf, at)
                    .map_err(|source| StorageError::Io {
                        device: location.device(),
                        op: "read",
                        source,
                    })?;
                owned = buf;
                &owned
            }
        };
        let corrupt = |reason| StorageError::Corrupt {
            device: location.device(),
            offset: DEVICE_HEADER_REGION_BYTES + location.area_offset(),
            reason,
        };
        let result = match decode_record(bytes) {
            Ok(v) if v.block_seq != info.seq => {
                Err(bad("record belongs to an earlier use of the block"))
            }
            Ok(v) if v.padded_len != size => Err(corrupt("record size differs from the index")),
            Ok(v) => Ok(v.to_owned_record()),
            Err(RecordError::NoRecord) => Err(corrupt("no record magic")),
            Err(RecordError::BadHeader(reason)) => Err(corrupt(reason)),
            Err(RecordError::BadData { .. }) => Err(corrupt("record checksum mismatch")),
        };
        if matches!(result, Err(StorageError::Corrupt { .. })) {
            d.stats.corrupt_reads += 1;
        }
        result
    }

    /// Defrags up to `max_blocks` blocks whose live bytes are under `defrag-lwm-pct`: every
    /// record `index` still points at is rewritten into the write buffer and the block is
    /// freed (reusable after the next sync). Returns the moves, which the caller must apply to
    /// its index, in order (a record may move twice: a later move starts where an earlier one
    /// ended). Stops at the first error; moves made before it are returned, and the error
    /// (sticky when a device is poisoned) surfaces on the next call.
    pub fn defrag(&mut self, index: &dyn LiveIndex, max_blocks: usize) -> Result<Vec<Relocation>> {
        let block_bytes = self.config.block_bytes;
        let mut moves = Vec::new();
        // Where this call's moves put their copies. `index` learns of them only after the
        // call, so it calls them dead; yet they can sit in a block this same call defrags next
        // (the write block the moves filled, sealed under the low-water mark). They are
        // current exactly when the record they copy was, so they must move again.
        let mut moved: HashMap<Location, Digest> = HashMap::new();
        let mut done = 0;
        for d in &mut self.devices {
            while done < max_blocks {
                if d.poisoned {
                    break;
                }
                let Some(block) = d.blocks.next_defrag() else {
                    break;
                };
                match defrag_block(d, block, block_bytes, index, &moved) {
                    Ok(mut m) => {
                        moved.extend(m.iter().map(|r| (r.to, r.digest)));
                        moves.append(&mut m);
                        done += 1;
                    }
                    Err(e) => {
                        d.blocks.requeue_defrag(block);
                        if moves.is_empty() {
                            return Err(e);
                        }
                        return Ok(moves);
                    }
                }
            }
        }
        Ok(moves)
    }

    /// Statistics per device.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            devices: self
                .devices
                .iter()
                .map(|d| DeviceStats {
                    total_blocks: d.blocks.len(),
                    free_blocks: d.blocks.free_count(),
                    pending_free_blocks: d.blocks.pending_free_count(),
                    defrag_queue: d.blocks.defrag_queue_len(),
                    live_bytes: d.blocks.live_bytes(),
                    poisoned: d.poisoned,
                    post_write_cache_bytes: d.cache.bytes(),
                    ..d.stats.clone()
                })
                .collect(),
        }
    }

    /// True when `device` is poisoned.
    pub fn is_poisoned(&self, device: u32) -> bool {
        self.devices
            .get(device as usize)
            .is_some_and(|d| d.poisoned)
    }
}

/// Moves every current record out of `block`; on failure undoes the accounting of the copies
/// already made (they become dead bytes) and leaves the block as it was. A record is current
/// when `index` points at it or when it is a copy an earlier move of the same defrag call
/// made (`moved`: destination → digest), which `index` does not know yet.
fn defrag_block(
    d: &mut DeviceState,
    block: u32,
    block_bytes: u32,
    index: &dyn LiveIndex,
    moved: &HashMap<Location, Digest>,
) -> Result<Vec<Relocation>> {
    let info = *d
        .blocks
        .get(block)
        .ok_or(StorageError::DeviceFull { device: d.index })?;
    let buf = d.block_bytes_for(block)?;
    let mut current = Vec::new();
    scan_block(&buf, info.seq, |offset, v| {
        let area = u64::from(block) * u64::from(block_bytes) + offset as u64;
        let from = Location::new(
            d.index,
            area / u64::from(RBLOCK_BYTES),
            (v.padded_len / RBLOCK_BYTES as usize) as u32,
        );
        if moved.get(&from) == Some(&v.digest) || index.is_current(&v.digest, from) {
            current.push((from, v));
        }
    });
    let mut moves = Vec::with_capacity(current.len());
    for (from, v) in &current {
        match d.append(&v.parts(), WriteClass::Reserve, 0) {
            Ok((to, _)) => moves.push(Relocation {
                digest: v.digest,
                from: *from,
                to,
            }),
            Err(e) => {
                for m in &moves {
                    d.blocks
                        .sub_live(m.to.block(block_bytes), m.to.size_bytes());
                }
                return Err(e);
            }
        }
    }
    d.blocks.defragged(block);
    d.stats.defrag_blocks += 1;
    d.stats.defrag_moved_records += moves.len() as u64;
    Ok(moves)
}
