//! The in-DRAM primary index: for every partition, an ordered map from digest to the record
//! the data layer stores there, behind its own reader-writer lock.
//!
//! Ordering by digest is deliberate: partition scans resume "strictly after digest D", which
//! needs a stable total order, and Aerospike's own index trees are digest-ordered too.
//! Per-partition locks mean client reads and writes on different partitions never contend.
//! This crate must never know what a record contains, and never hold a lock across I/O.
//! Aerospike counterpart: `as/src/base/index.c` (trees of sprigs per partition).

use parking_lot::RwLock;
use shoal_base::constants::PARTITIONS;
use shoal_base::{Digest, PartitionId};
use std::collections::BTreeMap;

/// One partition's records.
pub type PartitionMap<V> = BTreeMap<Digest, V>;

/// The index of one namespace: 4096 independently locked partition maps.
pub struct PartitionedIndex<V> {
    partitions: Box<[RwLock<PartitionMap<V>>]>,
}

impl<V> Default for PartitionedIndex<V> {
    fn default() -> Self {
        PartitionedIndex::new()
    }
}

impl<V> PartitionedIndex<V> {
    /// An empty index.
    pub fn new() -> PartitionedIndex<V> {
        PartitionedIndex {
            partitions: (0..PARTITIONS)
                .map(|_| RwLock::new(BTreeMap::new()))
                .collect(),
        }
    }

    /// The lock guarding partition `pid`.
    pub fn partition(&self, pid: PartitionId) -> &RwLock<PartitionMap<V>> {
        // PartitionId is always < PARTITIONS (it is masked when derived from a digest and
        // range-checked when parsed from the wire).
        &self.partitions[pid.index() % PARTITIONS]
    }

    /// The lock guarding the partition that `digest` belongs to.
    pub fn partition_of(&self, digest: &Digest) -> &RwLock<PartitionMap<V>> {
        self.partition(digest.partition())
    }

    /// Total number of entries (takes every read lock briefly, one at a time).
    pub fn len(&self) -> usize {
        self.partitions.iter().map(|p| p.read().len()).sum()
    }

    /// True when no partition holds an entry.
    pub fn is_empty(&self) -> bool {
        self.partitions.iter().all(|p| p.read().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The index behaves like one big map: every insert lands in the partition of its digest
        /// and can be found, removed and counted exactly like a BTreeMap model.
        #[test]
        fn matches_a_btreemap_model(ops in proptest::collection::vec((any::<[u8; 20]>(), any::<bool>(), any::<u32>()), 0..200)) {
            let index: PartitionedIndex<u32> = PartitionedIndex::new();
            let mut model = BTreeMap::new();
            for (d, insert, v) in ops {
                let d = Digest(d);
                if insert {
                    index.partition_of(&d).write().insert(d, v);
                    model.insert(d, v);
                } else {
                    let a = index.partition_of(&d).write().remove(&d);
                    prop_assert_eq!(a, model.remove(&d));
                }
            }
            prop_assert_eq!(index.len(), model.len());
            for (d, v) in &model {
                let got = index.partition_of(d).read().get(d).copied();
                prop_assert_eq!(got, Some(*v));
            }
        }
    }
}
