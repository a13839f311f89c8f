//! Partition balance: from a membership (node ids and rack ids) and a replication factor, the
//! partition table — for every partition, every member in order of preference. Position 0 is
//! the master, positions 1..RF are the replicas, the rest are fallbacks for future changes.
//!
//! The order is rendezvous (highest-random-weight) hashing of (node id, partition id), so the
//! same membership gives the same table on every node with no coordination, and one node
//! joining or leaving only changes the rows it appears in (about 1/N of the partitions).
//! Rack awareness then moves nodes of racks not yet represented forward, so the RF copies sit
//! on distinct racks whenever there are enough racks.
//!
//! Invariants: a row holds every member exactly once; the result depends only on the set of
//! members, never on their order. This module never does I/O and never reads a clock.
//! Aerospike counterpart: `as/src/fabric/partition_balance.c` (a different hash: clients only
//! read the resulting maps, so placement need not match Aerospike's).

use shoal_base::constants::PARTITIONS;
use shoal_base::NodeId;
use std::collections::BTreeSet;

/// A cluster member as partition balance sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    pub node: NodeId,
    /// Rack id; all members in rack 0 means "not rack-aware".
    pub rack: u32,
}

/// The 64-bit finaliser of SplitMix64: a fixed, well-mixed, platform-independent hash.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The rendezvous weight of `node` for partition `pid`.
fn weight(node: NodeId, pid: u16) -> u64 {
    mix(mix(node.0) ^ mix(u64::from(pid) | 0xA5A5_0000_0000_0000))
}

/// The partition table for one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTable {
    members: Vec<Member>,
    replication_factor: usize,
    /// `rows[pid * n .. (pid + 1) * n]` = indexes into `members`, in preference order.
    rows: Vec<u16>,
}

impl PartitionTable {
    /// Computes the table. Duplicate node ids are ignored (the first one counts); the effective
    /// replication factor is `min(rf, members)` and at least 1 when there is any member.
    pub fn build(members: &[Member], replication_factor: usize) -> PartitionTable {
        PartitionTable::build_with_quiesced(members, replication_factor, &BTreeSet::new())
    }

    /// Like [`PartitionTable::build`], with the `quiesced` members (nodes handing their data
    /// over before they leave) after every other member in every row, so they own a partition
    /// only when there are fewer other members than copies. The other members' order is
    /// exactly the one a table without the quiesced members has, so when a quiesced node then
    /// leaves, no partition moves again. When every member is quiesced, none is.
    pub fn build_with_quiesced(
        members: &[Member],
        replication_factor: usize,
        quiesced: &BTreeSet<NodeId>,
    ) -> PartitionTable {
        let mut members: Vec<Member> = members.to_vec();
        members.sort();
        members.dedup_by_key(|m| m.node);
        let n = members.len();
        let rf = replication_factor.clamp(1, n.max(1)).min(n);
        let mut is_quiesced: Vec<bool> =
            members.iter().map(|m| quiesced.contains(&m.node)).collect();
        if is_quiesced.iter().all(|q| *q) {
            is_quiesced.iter_mut().for_each(|q| *q = false);
        }
        let active = is_quiesced.iter().filter(|q| !**q).count();
        let racks: BTreeSet<u32> = members
            .iter()
            .zip(&is_quiesced)
            .filter(|(_, q)| !**q)
            .map(|(m, _)| m.rack)
            .collect();
        let rack_aware = racks.len() > 1;
        let mut rows = Vec::with_capacity(n * PARTITIONS);
        let mut order: Vec<(bool, u64, u16)> = Vec::with_capacity(n);
        for pid in 0..PARTITIONS as u16 {
            order.clear();
            order.extend(
                members
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (is_quiesced[i], weight(m.node, pid), i as u16)),
            );
            // Active members first; then highest weight first; ties (practically impossible)
            // broken by member order.
            order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
            let start = rows.len();
            rows.extend(order.iter().map(|(_, _, i)| *i));
            if rack_aware {
                spread_racks(&members, &mut rows[start..start + active], rf.min(active));
            }
        }
        PartitionTable {
            members,
            replication_factor: rf,
            rows,
        }
    }

    /// Members, sorted by node id.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The effective replication factor.
    pub fn replication_factor(&self) -> usize {
        self.replication_factor
    }

    fn row(&self, pid: u16) -> &[u16] {
        let n = self.members.len();
        let p = usize::from(pid) % PARTITIONS;
        &self.rows[p * n..(p + 1) * n]
    }

    /// Every member for partition `pid`, in preference order.
    pub fn sequence(&self, pid: u16) -> impl Iterator<Item = NodeId> + '_ {
        self.row(pid)
            .iter()
            .map(|i| self.members[usize::from(*i)].node)
    }

    /// The master of `pid`, if there is any member.
    pub fn master(&self, pid: u16) -> Option<NodeId> {
        self.sequence(pid).next()
    }

    /// The nodes holding a copy of `pid`: master first, then replicas.
    pub fn owners(&self, pid: u16) -> impl Iterator<Item = NodeId> + '_ {
        self.sequence(pid).take(self.replication_factor)
    }

    /// `Some(0)` when `node` is master of `pid`, `Some(i)` when it is replica `i`, else `None`.
    pub fn replica_index(&self, node: NodeId, pid: u16) -> Option<usize> {
        self.owners(pid).position(|n| n == node)
    }

    /// The client-visible maps of `node`: one 4096-bit bitmap per replica column (column 0 =
    /// master), partition `p` at bit `0x80 >> (p & 7)` of byte `p >> 3`.
    pub fn bitmaps(&self, node: NodeId) -> Vec<[u8; PARTITIONS / 8]> {
        let mut maps = vec![[0u8; PARTITIONS / 8]; self.replication_factor.max(1)];
        for pid in 0..PARTITIONS as u16 {
            if let Some(col) = self.replica_index(node, pid) {
                maps[col][usize::from(pid >> 3)] |= 0x80 >> (pid & 7);
            }
        }
        maps
    }
}

/// Reorders `row` so its first `rf` entries come from distinct racks while racks remain,
/// keeping the hash order otherwise (a stable partition of the row).
fn spread_racks(members: &[Member], row: &mut [u16], rf: usize) {
    let mut chosen: Vec<u16> = Vec::with_capacity(row.len());
    let mut used_racks: Vec<u32> = Vec::new();
    for &i in row.iter() {
        if chosen.len() >= rf {
            break;
        }
        let rack = members[usize::from(i)].rack;
        if !used_racks.contains(&rack) {
            used_racks.push(rack);
            chosen.push(i);
        }
    }
    let rest: Vec<u16> = row
        .iter()
        .copied()
        .filter(|i| !chosen.contains(i))
        .collect();
    for (slot, v) in row.iter_mut().zip(chosen.into_iter().chain(rest)) {
        *slot = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashMap};

    fn members(ids: &[u64]) -> Vec<Member> {
        ids.iter()
            .map(|&id| Member {
                node: NodeId(id),
                rack: 0,
            })
            .collect()
    }

    fn node_ids() -> impl Strategy<Value = Vec<u64>> {
        proptest::collection::btree_set(1u64..u64::MAX, 1..9).prop_map(|s| s.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// A quiesced node is last in every row, and the other members' order is the one the
        /// table without it has: when it leaves after handing over, nothing moves again.
        #[test]
        fn quiesced_members_go_last_and_leaving_moves_nothing(
            ids in node_ids(),
            racks in proptest::collection::vec(0u32..3, 9),
            rf in 1usize..4,
            pick in 0usize..9,
        ) {
            let all: Vec<Member> = ids
                .iter()
                .zip(&racks)
                .map(|(&id, &rack)| Member { node: NodeId(id), rack })
                .collect();
            let q = all[pick % all.len()].node;
            let quiesced: BTreeSet<NodeId> = [q].into_iter().collect();
            let t = PartitionTable::build_with_quiesced(&all, rf, &quiesced);
            let rest: Vec<Member> = all.iter().copied().filter(|m| m.node != q).collect();
            let without = PartitionTable::build(&rest, rf);
            for pid in (0..PARTITIONS as u16).step_by(61) {
                let seq: Vec<NodeId> = t.sequence(pid).collect();
                if all.len() > 1 {
                    prop_assert_eq!(seq.last().copied(), Some(q));
                    let others: Vec<NodeId> = seq[..seq.len() - 1].to_vec();
                    prop_assert_eq!(others, without.sequence(pid).collect::<Vec<_>>());
                } else {
                    prop_assert_eq!(seq, vec![q]);
                }
            }
        }

        /// Every row is a permutation of the members; owners are RF distinct nodes.
        #[test]
        fn rows_are_permutations_with_distinct_owners(ids in node_ids(), rf in 1usize..4) {
            let t = PartitionTable::build(&members(&ids), rf);
            let all: BTreeSet<NodeId> = ids.iter().map(|i| NodeId(*i)).collect();
            for pid in (0..PARTITIONS as u16).step_by(97) {
                let seq: BTreeSet<NodeId> = t.sequence(pid).collect();
                prop_assert_eq!(&seq, &all);
                let owners: Vec<NodeId> = t.owners(pid).collect();
                prop_assert_eq!(owners.len(), rf.min(ids.len()));
                prop_assert_eq!(owners.iter().collect::<BTreeSet<_>>().len(), owners.len());
            }
        }

        /// The table depends on the set of members, not on the order they are listed in.
        #[test]
        fn member_order_does_not_matter(ids in node_ids()) {
            let mut rev = members(&ids);
            rev.reverse();
            prop_assert_eq!(PartitionTable::build(&members(&ids), 2), PartitionTable::build(&rev, 2));
        }

        /// A joining node takes over about 1/(N+1) of the masters and never moves a partition
        /// between two old nodes.
        #[test]
        fn a_join_moves_only_what_the_new_node_takes(ids in node_ids(), new in 1u64..u64::MAX) {
            prop_assume!(!ids.contains(&new));
            let before = PartitionTable::build(&members(&ids), 2);
            let mut grown = ids.clone();
            grown.push(new);
            let after = PartitionTable::build(&members(&grown), 2);
            let mut moved = 0usize;
            for pid in 0..PARTITIONS as u16 {
                let (a, b) = (before.master(pid), after.master(pid));
                if a != b {
                    prop_assert_eq!(b, Some(NodeId(new)), "a master moved between old nodes");
                    moved += 1;
                }
            }
            let expected = PARTITIONS as f64 / grown.len() as f64;
            prop_assert!((moved as f64) < expected * 1.3 + 40.0, "moved {} expected about {}", moved, expected);
        }
    }

    /// Masters and replicas spread evenly: every node within 10% of the mean, for 2..8 nodes.
    #[test]
    fn masters_and_replicas_are_balanced() {
        for n in 2..=8u64 {
            let ids: Vec<u64> = (1..=n).map(|i| 0xBB90_0000_0000 + i * 0x1_0001).collect();
            let t = PartitionTable::build(&members(&ids), 2);
            for col in 0..2 {
                let mut counts: HashMap<NodeId, usize> = HashMap::new();
                for pid in 0..PARTITIONS as u16 {
                    if let Some(node) = t.owners(pid).nth(col) {
                        *counts.entry(node).or_default() += 1;
                    }
                }
                let mean = PARTITIONS as f64 / n as f64;
                for (node, c) in counts {
                    let skew = (c as f64 - mean).abs() / mean;
                    assert!(
                        skew < 0.10,
                        "n={n} column {col}: {node:?} has {c}, mean {mean:.0}"
                    );
                }
            }
        }
    }

    /// With racks, the RF copies land on distinct racks.
    #[test]
    fn copies_spread_across_racks() {
        let ms: Vec<Member> = (1..=6u64)
            .map(|i| Member {
                node: NodeId(i * 7919),
                rack: (i % 3) as u32,
            })
            .collect();
        let t = PartitionTable::build(&ms, 3);
        let rack_of: HashMap<NodeId, u32> = ms.iter().map(|m| (m.node, m.rack)).collect();
        for pid in 0..PARTITIONS as u16 {
            let racks: BTreeSet<u32> = t.owners(pid).map(|n| rack_of[&n]).collect();
            assert_eq!(racks.len(), 3, "partition {pid}");
        }
    }

    /// The bitmaps clients read cover every partition exactly once per column.
    #[test]
    fn bitmaps_partition_the_key_space() {
        let ids = [11u64, 22, 33];
        let t = PartitionTable::build(&members(&ids), 2);
        for col in 0..2 {
            let mut covered = [0u32; PARTITIONS];
            for id in ids {
                let maps = t.bitmaps(NodeId(id));
                for (pid, c) in covered.iter_mut().enumerate() {
                    if maps[col][pid >> 3] & (0x80 >> (pid & 7)) != 0 {
                        *c += 1;
                    }
                }
            }
            assert!(covered.iter().all(|c| *c == 1), "column {col}");
        }
    }

    #[test]
    fn a_single_node_owns_everything() {
        let t = PartitionTable::build(&members(&[5]), 2);
        assert_eq!(t.replication_factor(), 1);
        assert!((0..PARTITIONS as u16).all(|p| t.master(p) == Some(NodeId(5))));
        assert!(PartitionTable::build(&[], 2).master(0).is_none());
    }
}
