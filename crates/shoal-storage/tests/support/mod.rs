//! Test harness: a model primary index over the engine, the way the data layer will use it.
#![allow(dead_code)]

use shoal_base::Digest;
use shoal_storage::{
    Device, Engine, EngineConfig, IndexEntry, LiveIndex, Location, RecordMeta, RecoveredRecord,
    Recovery, RecoveryOptions, Result, SimDevice, StoredRecord,
};
use std::collections::HashMap;

pub const BLOCK: u32 = 4096;

pub fn config(namespace: &str) -> EngineConfig {
    let mut c = EngineConfig::new(namespace);
    c.block_bytes = BLOCK;
    c.post_write_cache_bytes = 2 * u64::from(BLOCK);
    c.stop_writes_avail_pct = 10;
    c
}

pub fn device_len(blocks: u64) -> usize {
    (4096 + blocks * u64::from(BLOCK)) as usize
}

pub fn digest(k: u32) -> Digest {
    let mut d = [0u8; 20];
    d[..4].copy_from_slice(&k.to_le_bytes());
    d[8..12].copy_from_slice(&k.wrapping_mul(2_654_435_761).to_le_bytes());
    Digest(d)
}

/// The index: digest -> entry, tombstones included.
#[derive(Default)]
pub struct Index {
    pub map: HashMap<Digest, IndexEntry>,
    pub sets: Vec<Vec<u8>>,
}

impl LiveIndex for Index {
    fn is_current(&self, digest: &Digest, location: Location) -> bool {
        self.map
            .get(digest)
            .is_some_and(|e| e.location() == location)
    }
}

pub struct Db {
    pub engine: Engine,
    pub index: Index,
    pub recovery_kind: shoal_storage::RecoveryKind,
    pub recovery_stats: shoal_storage::RecoveryStats,
}

impl Db {
    pub fn open(
        config: EngineConfig,
        devices: Vec<Box<dyn Device>>,
        snapshot: Option<Box<dyn Device>>,
        options: &RecoveryOptions,
    ) -> Result<Db> {
        let (engine, recovery) = Engine::open(config, devices, snapshot, options, &mut |_| {})?;
        Ok(Db::from_recovery(engine, recovery))
    }

    pub fn open_sim(config: EngineConfig, dev: &SimDevice, snap: Option<&SimDevice>) -> Result<Db> {
        Db::open(
            config,
            vec![Box::new(dev.clone())],
            snap.map(|s| Box::new(s.clone()) as Box<dyn Device>),
            &RecoveryOptions::default(),
        )
    }

    pub fn from_recovery(engine: Engine, recovery: Recovery) -> Db {
        let mut map = HashMap::new();
        for r in recovery.records {
            assert!(
                map.insert(r.digest, r.entry).is_none(),
                "digest recovered twice"
            );
        }
        Db {
            engine,
            index: Index {
                map,
                sets: recovery.sets,
            },
            recovery_kind: recovery.kind,
            recovery_stats: recovery.stats,
        }
    }

    fn next_meta(&self, d: &Digest, lut_ms: u64) -> RecordMeta {
        let generation = match self.index.map.get(d) {
            Some(e) => match e.meta().generation.wrapping_add(1) {
                0 => 1,
                g => g,
            },
            None => 1,
        };
        RecordMeta {
            generation,
            void_time: 0,
            lut_ms,
        }
    }

    pub fn put(&mut self, d: &Digest, bins: &[u8], lut_ms: u64) -> Result<Location> {
        let meta = self.next_meta(d, lut_ms);
        self.put_meta(d, meta, bins)
    }

    pub fn put_meta(&mut self, d: &Digest, meta: RecordMeta, bins: &[u8]) -> Result<Location> {
        let loc = self.engine.put(d, meta, b"set", Some(b"\x03key"), bins)?;
        let old = self
            .index
            .map
            .insert(*d, IndexEntry::new(loc, meta, 1, false));
        if let Some(old) = old {
            self.engine.release(old.location());
        }
        Ok(loc)
    }

    pub fn delete(&mut self, d: &Digest, lut_ms: u64) -> Result<bool> {
        if self.index.map.get(d).is_none_or(IndexEntry::is_tombstone) {
            return Ok(false);
        }
        let meta = self.next_meta(d, lut_ms);
        let loc = self.engine.delete(d, meta, b"set")?;
        let old = self
            .index
            .map
            .insert(*d, IndexEntry::new(loc, meta, 1, true));
        if let Some(old) = old {
            self.engine.release(old.location());
        }
        Ok(true)
    }

    pub fn get(&mut self, d: &Digest) -> Result<Option<StoredRecord>> {
        match self.index.map.get(d) {
            Some(e) if !e.is_tombstone() => {
                let r = self.engine.get(e.location())?;
                assert_eq!(&r.digest, d);
                assert_eq!(r.meta, e.meta());
                Ok(Some(r))
            }
            _ => Ok(None),
        }
    }

    pub fn defrag(&mut self, max_blocks: usize) -> Result<usize> {
        let moves = self.engine.defrag(&self.index, max_blocks)?;
        for m in &moves {
            let e = self
                .index
                .map
                .get_mut(&m.digest)
                .expect("moved record is indexed");
            assert_eq!(e.location(), m.from);
            *e = IndexEntry::new(m.to, e.meta(), e.set_id(), e.is_tombstone());
        }
        Ok(moves.len())
    }

    pub fn shutdown(self) -> Result<()> {
        let mut sets = self.index.sets.clone();
        if sets.len() < 2 {
            sets = vec![Vec::new(), b"set".to_vec()];
        }
        let mut it = self
            .index
            .map
            .iter()
            .map(|(d, e)| RecoveredRecord {
                digest: *d,
                entry: *e,
            })
            .collect::<Vec<_>>()
            .into_iter();
        self.engine.shutdown(&sets, &mut it)
    }

    /// The value each digest has: Some(bins) for a live record.
    pub fn contents(&mut self) -> HashMap<Digest, Vec<u8>> {
        let keys: Vec<Digest> = self.index.map.keys().copied().collect();
        let mut out = HashMap::new();
        for d in keys {
            if let Some(r) = self.get(&d).expect("read") {
                out.insert(d, r.bins);
            }
        }
        out
    }
}
