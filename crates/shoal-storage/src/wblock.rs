//! Write blocks: the per-device block table (state, live bytes, sequence number of the current
//! use), the free list, the in-memory write buffer and the post-write cache.
//!
//! Invariants: a block is reused only from the free list, and a freed block reaches the free
//! list only after a flush and sync of its device made durable everything that superseded or
//! relocated its records (until then it is "pending free"). Live bytes count the padded sizes
//! of the records and tombstones the index refers to. This module must never do I/O: the
//! engine writes and syncs, this module only keeps the books.
//! Aerospike counterpart: `ssd_wblock_state`, the swb and post-write queue of `drv_ssd.c`.

use crate::format::{BlockHeader, BLOCK_HEADER_BYTES};
use std::collections::VecDeque;

/// What a write block is being used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockState {
    /// Free for reuse.
    Free,
    /// The device's current write block, filling in the write buffer.
    Open,
    /// Full and written; readable; may be defragged.
    Sealed,
    /// Emptied (by defrag or because all its records died); reusable after the next sync.
    PendingFree,
}

/// Book-keeping for one write block.
#[derive(Debug, Clone, Copy)]
pub struct BlockInfo {
    pub state: BlockState,
    /// Padded bytes of the records in this block that the index still refers to.
    pub live_bytes: u32,
    /// Sequence number of the block's current use (0 = never used).
    pub seq: u64,
    /// True while the block sits in the defrag queue.
    pub queued: bool,
}

/// The block table of one device.
#[derive(Debug)]
pub struct BlockTable {
    blocks: Vec<BlockInfo>,
    free: VecDeque<u32>,
    pending_free: Vec<u32>,
    defrag_queue: VecDeque<u32>,
    /// Live-bytes threshold under which a sealed block is queued for defrag.
    lwm_bytes: u32,
}

impl BlockTable {
    /// A table of `count` blocks, all free.
    pub fn new(count: u32, block_bytes: u32, lwm_pct: u32) -> BlockTable {
        BlockTable {
            blocks: vec![
                BlockInfo {
                    state: BlockState::Free,
                    live_bytes: 0,
                    seq: 0,
                    queued: false,
                };
                count as usize
            ],
            free: (0..count).collect(),
            pending_free: Vec::new(),
            defrag_queue: VecDeque::new(),
            lwm_bytes: (u64::from(block_bytes) * u64::from(lwm_pct) / 100) as u32,
        }
    }

    /// Rebuilds the table after recovery: blocks with live bytes are sealed (and queued for
    /// defrag when under the low-water mark), the rest are free. `seqs` gives each block's
    /// last seen sequence number.
    pub fn rebuild(&mut self, live: &[u32], seqs: &[u64]) {
        self.free.clear();
        self.pending_free.clear();
        self.defrag_queue.clear();
        for (i, b) in self.blocks.iter_mut().enumerate() {
            b.live_bytes = live.get(i).copied().unwrap_or(0);
            b.seq = seqs.get(i).copied().unwrap_or(0);
            b.queued = false;
            if b.live_bytes == 0 {
                b.state = BlockState::Free;
                self.free.push_back(i as u32);
            } else {
                b.state = BlockState::Sealed;
                if b.live_bytes < self.lwm_bytes {
                    b.queued = true;
                    self.defrag_queue.push_back(i as u32);
                }
            }
        }
    }

    /// Number of blocks.
    pub fn len(&self) -> u32 {
        self.blocks.len() as u32
    }

    /// True for a device without blocks (never accepted by the engine).
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Sequence number of each block's current use (0 = never used).
    pub fn seqs(&self) -> Vec<u64> {
        self.blocks.iter().map(|b| b.seq).collect()
    }

    /// Blocks immediately reusable.
    pub fn free_count(&self) -> u32 {
        self.free.len() as u32
    }

    /// Blocks reusable after the next sync.
    pub fn pending_free_count(&self) -> u32 {
        self.pending_free.len() as u32
    }

    /// Blocks waiting for defrag.
    pub fn defrag_queue_len(&self) -> usize {
        self.defrag_queue.len()
    }

    /// Total live bytes.
    pub fn live_bytes(&self) -> u64 {
        self.blocks.iter().map(|b| u64::from(b.live_bytes)).sum()
    }

    /// The block's book-keeping.
    pub fn get(&self, block: u32) -> Option<&BlockInfo> {
        self.blocks.get(block as usize)
    }

    /// Takes a free block for a new use with sequence number `seq`.
    pub fn allocate(&mut self, seq: u64) -> Option<u32> {
        let block = self.free.pop_front()?;
        let b = &mut self.blocks[block as usize];
        *b = BlockInfo {
            state: BlockState::Open,
            live_bytes: 0,
            seq,
            queued: false,
        };
        Some(block)
    }

    /// Moves every pending-free block to the free list: call only after a flush and sync.
    pub fn release_pending(&mut self) {
        for block in self.pending_free.drain(..) {
            self.blocks[block as usize].state = BlockState::Free;
            self.free.push_back(block);
        }
    }

    /// Counts `bytes` more live data in `block`.
    pub fn add_live(&mut self, block: u32, bytes: u32) {
        if let Some(b) = self.blocks.get_mut(block as usize) {
            b.live_bytes = b.live_bytes.saturating_add(bytes);
        }
    }

    /// Counts `bytes` less live data in `block`; a sealed block that empties becomes pending
    /// free and one that falls under the low-water mark is queued for defrag.
    pub fn sub_live(&mut self, block: u32, bytes: u32) {
        let Some(b) = self.blocks.get_mut(block as usize) else {
            return;
        };
        b.live_bytes = b.live_bytes.saturating_sub(bytes);
        if b.state == BlockState::Sealed {
            self.after_change(block);
        }
    }

    /// Marks the open block sealed and applies the empty / low-water rules.
    pub fn seal(&mut self, block: u32) {
        if let Some(b) = self.blocks.get_mut(block as usize) {
            b.state = BlockState::Sealed;
            self.after_change(block);
        }
    }

    fn after_change(&mut self, block: u32) {
        let lwm = self.lwm_bytes;
        let b = &mut self.blocks[block as usize];
        if b.live_bytes == 0 {
            b.state = BlockState::PendingFree;
            b.queued = false;
            self.pending_free.push(block);
            self.defrag_queue.retain(|&x| x != block);
        } else if b.live_bytes < lwm && !b.queued {
            b.queued = true;
            self.defrag_queue.push_back(block);
        }
    }

    /// Next block to defrag, if any (still sealed and under the low-water mark).
    pub fn next_defrag(&mut self) -> Option<u32> {
        while let Some(block) = self.defrag_queue.pop_front() {
            let b = &mut self.blocks[block as usize];
            b.queued = false;
            if b.state == BlockState::Sealed && b.live_bytes < self.lwm_bytes {
                return Some(block);
            }
        }
        None
    }

    /// Puts a block back at the head of the defrag queue (defrag could not finish it).
    pub fn requeue_defrag(&mut self, block: u32) {
        if let Some(b) = self.blocks.get_mut(block as usize) {
            if !b.queued && b.state == BlockState::Sealed {
                b.queued = true;
                self.defrag_queue.push_front(block);
            }
        }
    }

    /// Empties a defragged block: every record it held now lives elsewhere.
    pub fn defragged(&mut self, block: u32) {
        if let Some(b) = self.blocks.get_mut(block as usize) {
            b.live_bytes = 0;
            if b.state == BlockState::Sealed {
                self.after_change(block);
            }
        }
    }
}

/// The device's current write block, being filled in memory.
#[derive(Debug)]
pub struct WriteBuffer {
    pub block: u32,
    pub seq: u64,
    /// The block's bytes so far: header then records; never longer than the block.
    pub buf: Vec<u8>,
    /// Bytes of `buf` already written to the device.
    pub flushed: usize,
}

impl WriteBuffer {
    /// A buffer for a new use of `block` holding just the block header.
    pub fn new(device: u32, block: u32, seq: u64, block_bytes: u32) -> WriteBuffer {
        let mut buf = Vec::with_capacity(block_bytes as usize);
        buf.extend_from_slice(&BlockHeader { seq, block, device }.encode());
        debug_assert_eq!(buf.len(), BLOCK_HEADER_BYTES);
        WriteBuffer {
            block,
            seq,
            buf,
            flushed: 0,
        }
    }

    /// True when bytes are waiting to be written.
    pub fn is_dirty(&self) -> bool {
        self.flushed < self.buf.len()
    }

    /// True when no record has been appended.
    pub fn is_empty(&self) -> bool {
        self.buf.len() == BLOCK_HEADER_BYTES
    }
}

/// Recently sealed blocks kept in memory for reads and defrag, bounded by bytes.
#[derive(Debug)]
pub struct PostWriteCache {
    max_bytes: u64,
    bytes: u64,
    blocks: VecDeque<(u32, Vec<u8>)>,
}

impl PostWriteCache {
    /// An empty cache holding at most `max_bytes`.
    pub fn new(max_bytes: u64) -> PostWriteCache {
        PostWriteCache {
            max_bytes,
            bytes: 0,
            blocks: VecDeque::new(),
        }
    }

    /// Caches a sealed block, evicting the oldest blocks to stay within budget.
    pub fn insert(&mut self, block: u32, data: Vec<u8>) {
        self.remove(block);
        let len = data.len() as u64;
        if len > self.max_bytes {
            return;
        }
        while self.bytes + len > self.max_bytes {
            match self.blocks.pop_front() {
                Some((_, d)) => self.bytes -= d.len() as u64,
                None => break,
            }
        }
        self.bytes += len;
        self.blocks.push_back((block, data));
    }

    /// The cached bytes of `block`.
    pub fn get(&self, block: u32) -> Option<&[u8]> {
        self.blocks
            .iter()
            .find(|(b, _)| *b == block)
            .map(|(_, d)| d.as_slice())
    }

    /// Drops `block` (it is being freed or reused).
    pub fn remove(&mut self, block: u32) {
        if let Some(i) = self.blocks.iter().position(|(b, _)| *b == block) {
            if let Some((_, d)) = self.blocks.remove(i) {
                self.bytes -= d.len() as u64;
            }
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on unexpected errors
mod tests {
    use super::*;

    #[test]
    fn freed_blocks_wait_for_a_sync() {
        let mut t = BlockTable::new(4, 4096, 50);
        let b = t.allocate(1).unwrap();
        t.add_live(b, 100);
        t.seal(b);
        assert_eq!(t.defrag_queue_len(), 1);
        t.sub_live(b, 100);
        assert_eq!(t.get(b).unwrap().state, BlockState::PendingFree);
        assert_eq!(t.free_count(), 3);
        assert_eq!(t.next_defrag(), None);
        t.release_pending();
        assert_eq!(t.free_count(), 4);
    }

    #[test]
    fn low_water_blocks_are_queued_once() {
        let mut t = BlockTable::new(4, 4096, 50);
        let b = t.allocate(1).unwrap();
        t.add_live(b, 4000);
        t.seal(b);
        assert_eq!(t.defrag_queue_len(), 0);
        t.sub_live(b, 2000);
        t.sub_live(b, 100);
        assert_eq!(t.defrag_queue_len(), 1);
        assert_eq!(t.next_defrag(), Some(b));
        t.defragged(b);
        assert_eq!(t.pending_free_count(), 1);
    }

    #[test]
    fn rebuild_frees_empty_blocks() {
        let mut t = BlockTable::new(3, 4096, 50);
        t.rebuild(&[0, 4000, 10], &[1, 2, 3]);
        assert_eq!(t.free_count(), 1);
        assert_eq!(t.defrag_queue_len(), 1);
        assert_eq!(t.live_bytes(), 4010);
    }

    #[test]
    fn post_write_cache_stays_in_budget() {
        let mut c = PostWriteCache::new(10);
        c.insert(1, vec![1; 4]);
        c.insert(2, vec![2; 4]);
        c.insert(3, vec![3; 4]);
        assert!(c.get(1).is_none());
        assert_eq!(c.get(3), Some(&[3u8; 4][..]));
        assert_eq!(c.bytes(), 8);
        c.remove(2);
        assert_eq!(c.bytes(), 4);
    }
}
