//! Partition ownership of one namespace on one node, across membership changes: the exchange
//! after every committed view, the migration plan every member computes identically from it,
//! and the bookkeeping that follows until every owner holds a complete copy.
//!
//! After a view commits, each member reports per namespace: its partition epoch (how many
//! planned views its copies have lived through; 0 for a fresh process), the cluster key its
//! copies were complete under, which partitions it holds **complete** and which it holds at
//! all. Once every member's report is in, each node computes the same plan:
//!
//! - the *trusted* nodes are those at the highest reported epoch with the same previous key
//!   (a node that was paused or cut off, or restarted, reports an older epoch: its copies may
//!   lack acknowledged writes, so they are never authoritative);
//! - per partition, `C` = trusted nodes with a complete copy. The **working master** is the
//!   first node of the partition's sequence in `C`; when `C` is empty (first formation, or
//!   every complete copy is gone) it is the new master and every node holding any records is
//!   a source (union, newest wins); otherwise the working master is the only source;
//! - each owner not in `C` expects a migration from every source but itself; with nothing to
//!   expect it is complete at once. Sources emigrate to every such owner.
//!
//! A target that received every expected migration is complete and tells everyone; the
//! working master moves to the first complete node in the sequence, and copies on non-owners
//! are dropped once every owner is complete. The new epoch is `max + 1`.
//!
//! Pure state machine: no I/O, no clock. The shell moves reports, records and notices, and
//! owns the data. Aerospike counterpart: `as/src/fabric/exchange.c`, `partition_balance.c`
//! (AP mode), `migrate.c` bookkeeping.

use crate::balance::{Member, PartitionTable};
use shoal_base::constants::PARTITIONS;
use shoal_base::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// Notices kept for a plan not made yet (a few per partition and member).
const EARLY_NOTICES_MAX: usize = 64 * 1024;

/// 4096 bits, partition `p` at bit `p & 63` of word `p >> 6`.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitmap(pub [u64; PARTITIONS / 64]);

impl Default for Bitmap {
    fn default() -> Self {
        Bitmap([0; PARTITIONS / 64])
    }
}

impl std::fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bitmap({} set)", self.count())
    }
}

impl Bitmap {
    /// Every bit set.
    pub fn full() -> Bitmap {
        Bitmap([u64::MAX; PARTITIONS / 64])
    }
    pub fn get(&self, pid: u16) -> bool {
        let p = usize::from(pid) % PARTITIONS;
        self.0[p >> 6] & (1 << (p & 63)) != 0
    }
    pub fn set(&mut self, pid: u16, on: bool) {
        let p = usize::from(pid) % PARTITIONS;
        if on {
            self.0[p >> 6] |= 1 << (p & 63);
        } else {
            self.0[p >> 6] &= !(1 << (p & 63));
        }
    }
    pub fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
}

/// What one member says about its copies of one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Planned views the copies have lived through (0 = a fresh process).
    pub epoch: u64,
    /// The cluster key the complete copies belong to (0 = none).
    pub prev_key: u64,
    pub complete: Bitmap,
    /// Partitions holding any record.
    pub holds: Bitmap,
}

/// One emigration to run: send partition `pid` to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Emigration {
    pub pid: u16,
    pub to: NodeId,
    /// The source is complete and trusted, and the target holds records of the partition:
    /// the target must also drop what the source does not have (deleted meanwhile), so a
    /// stale copy does not bring deleted records back.
    pub clean: bool,
}

/// Where the namespace stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No view yet.
    Idle,
    /// Waiting for every member's report for the current key.
    Exchanging,
    /// Planned; migrations may be running.
    Planned,
}

/// The partition state of one namespace on this node.
#[derive(Debug, Clone)]
pub struct Partitions {
    me: NodeId,
    rf: usize,
    key: u64,
    epoch: u64,
    /// The key this node's complete bits belong to.
    complete_key: u64,
    complete: Bitmap,
    phase: Phase,
    members: Vec<Member>,
    table: PartitionTable,
    reports: BTreeMap<NodeId, Report>,
    /// Reports that arrived for a key this node has not committed yet.
    early: BTreeMap<(u64, NodeId), Report>,
    /// Migration-done (`true`) and complete (`false`) notices that arrived before this node
    /// planned their key: (key, from, pid, done).
    early_notices: Vec<(u64, NodeId, u16, bool)>,
    /// Per partition, the nodes known to hold a complete copy under the current key.
    complete_nodes: Vec<BTreeSet<NodeId>>,
    /// Per partition, the sources this node still waits for.
    incoming: Vec<BTreeSet<NodeId>>,
    /// Per partition with no complete copy anywhere: the node acting as master meanwhile
    /// (the first holder in the sequence), so reads find the data that exists.
    acting: Vec<Option<NodeId>>,
    /// Non-owned partitions already dropped under the current plan.
    dropped: Bitmap,
    /// Emigrations not yet finished.
    outgoing: BTreeSet<Emigration>,
    /// Bumped whenever the client-visible map may have changed.
    generation: u64,
    /// The members of the current view that are handing their data over before they leave
    /// (from the committed view, so every member has the same set).
    quiesced: BTreeSet<NodeId>,
}

/// What the shell must do after a step.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Partitions this node now holds complete (tell every member; stop remembering deletes).
    pub completed: Vec<u16>,
    /// Partitions whose records this node should drop (it no longer owns them and every owner
    /// is complete).
    pub drop: Vec<u16>,
    /// New emigrations to start.
    pub emigrate: Vec<Emigration>,
    /// Partitions this node waits for copies of (remember deletes while they arrive).
    pub immigrating: Vec<u16>,
}

impl Partitions {
    /// A namespace with replication factor `rf` on node `me`, before any view.
    pub fn new(me: NodeId, rf: usize) -> Partitions {
        let members = vec![Member { node: me, rack: 0 }];
        Partitions {
            me,
            rf: rf.max(1),
            key: 0,
            epoch: 0,
            complete_key: 0,
            complete: Bitmap::default(),
            phase: Phase::Idle,
            table: PartitionTable::build(&members, rf),
            members,
            reports: BTreeMap::new(),
            early: BTreeMap::new(),
            early_notices: Vec::new(),
            complete_nodes: vec![BTreeSet::new(); PARTITIONS],
            incoming: vec![BTreeSet::new(); PARTITIONS],
            acting: vec![None; PARTITIONS],
            dropped: Bitmap::default(),
            outgoing: BTreeSet::new(),
            generation: 1,
            quiesced: BTreeSet::new(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }
    pub fn key(&self) -> u64 {
        self.key
    }
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    pub fn generation(&self) -> u64 {
        self.generation
    }
    pub fn table(&self) -> &PartitionTable {
        &self.table
    }
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Starts the exchange for a newly committed view (`members` with their racks; `quiesced`,
    /// the members the view names as handing their data over, go last in every partition's
    /// order). `holds` is which partitions this node has any record of. Returns this node's
    /// report, to send to every other member; the plan may already be complete (a lone node,
    /// or early reports). The table is final from here on: writes executed during the
    /// exchange already go to the owners the plan will have.
    pub fn begin(
        &mut self,
        key: u64,
        members: &[Member],
        quiesced: &[NodeId],
        holds: Bitmap,
    ) -> (Report, Effects) {
        let report = Report {
            epoch: self.epoch,
            prev_key: self.complete_key,
            complete: if self.complete_key != 0 {
                self.complete.clone()
            } else {
                Bitmap::default()
            },
            holds,
        };
        self.key = key;
        self.members = members.to_vec();
        self.members.sort();
        self.members.dedup_by_key(|m| m.node);
        self.quiesced = quiesced
            .iter()
            .copied()
            .filter(|n| self.is_member(*n))
            .collect();
        self.table = PartitionTable::build_with_quiesced(&self.members, self.rf, &self.quiesced);
        self.phase = Phase::Exchanging;
        self.generation += 1;
        self.reports.clear();
        self.outgoing.clear();
        self.early_notices.retain(|n| n.0 == key);
        self.dropped = Bitmap::default();
        self.acting.iter_mut().for_each(|a| *a = None);
        for s in &mut self.incoming {
            s.clear();
        }
        self.reports.insert(self.me, report.clone());
        let early = std::mem::take(&mut self.early);
        for ((k, from), r) in early {
            if k == key && self.is_member(from) {
                self.reports.insert(from, r);
            }
        }
        let mut fx = self.try_plan();
        // Every partition this node owns and does not hold complete yet is immigrating (until
        // the plan exists, that is every owned partition).
        for pid in 0..PARTITIONS as u16 {
            if self.table.replica_index(self.me, pid).is_some() && !self.is_complete(pid) {
                fx.immigrating.push(pid);
            }
        }
        (report, fx)
    }

    fn is_member(&self, n: NodeId) -> bool {
        self.members.iter().any(|m| m.node == n)
    }

    /// A member's report for `key`.
    pub fn on_report(&mut self, from: NodeId, key: u64, report: Report) -> Effects {
        if key != self.key || self.phase != Phase::Exchanging {
            if key != self.key && self.early.len() < 64 {
                self.early.insert((key, from), report);
            }
            return Effects::default();
        }
        if !self.is_member(from) {
            return Effects::default();
        }
        self.reports.insert(from, report);
        self.try_plan()
    }

    /// This node's report for the current key.
    pub fn own_report(&self) -> Option<&Report> {
        self.reports.get(&self.me)
    }

    /// The members whose reports are still missing (to resend ours to).
    pub fn missing_reports(&self) -> Vec<NodeId> {
        if self.phase != Phase::Exchanging {
            return Vec::new();
        }
        self.members
            .iter()
            .map(|m| m.node)
            .filter(|n| !self.reports.contains_key(n))
            .collect()
    }

    fn try_plan(&mut self) -> Effects {
        if self.phase != Phase::Exchanging
            || self
                .members
                .iter()
                .any(|m| !self.reports.contains_key(&m.node))
        {
            return Effects::default();
        }
        let max_epoch = self.reports.values().map(|r| r.epoch).max().unwrap_or(0);
        // The trusted group: at the highest epoch, all from the same previous cluster. Copies
        // from two different clusters at one epoch (a healed split) are not trusted: every
        // holder then contributes and newest wins.
        let prev_keys: BTreeSet<u64> = self
            .reports
            .values()
            .filter(|r| r.epoch == max_epoch && r.prev_key != 0)
            .map(|r| r.prev_key)
            .collect();
        let trusted: BTreeSet<NodeId> = if prev_keys.len() == 1 {
            self.reports
                .iter()
                .filter(|(_, r)| r.epoch == max_epoch && r.prev_key != 0)
                .map(|(n, _)| *n)
                .collect()
        } else {
            BTreeSet::new()
        };
        let mut fx = Effects::default();
        let mut new_complete = Bitmap::default();
        for pid in 0..PARTITIONS as u16 {
            let seq: Vec<NodeId> = self.table.sequence(pid).collect();
            let owners = &seq[..self.table.replication_factor().min(seq.len())];
            let c: BTreeSet<NodeId> = trusted
                .iter()
                .copied()
                .filter(|n| self.reports.get(n).is_some_and(|r| r.complete.get(pid)))
                .collect();
            let sources: Vec<NodeId> = if let Some(w) = seq.iter().find(|n| c.contains(n)) {
                vec![*w]
            } else {
                let holders: Vec<NodeId> = seq
                    .iter()
                    .copied()
                    .filter(|n| self.reports.get(n).is_some_and(|r| r.holds.get(pid)))
                    .collect();
                self.acting[usize::from(pid)] = holders.first().copied();
                holders
            };
            let mut done = c.clone();
            for &t in owners {
                if c.contains(&t) {
                    continue;
                }
                let expect: BTreeSet<NodeId> =
                    sources.iter().copied().filter(|s| *s != t).collect();
                if expect.is_empty() {
                    done.insert(t);
                }
                if t == self.me {
                    self.incoming[usize::from(pid)] = expect;
                }
                if sources.contains(&self.me) && t != self.me {
                    let e = Emigration {
                        pid,
                        to: t,
                        clean: !c.is_empty()
                            && self.reports.get(&t).is_some_and(|r| r.holds.get(pid)),
                    };
                    self.outgoing.insert(e);
                    fx.emigrate.push(e);
                }
            }
            if done.contains(&self.me) {
                new_complete.set(pid, true);
            } else if self.complete.get(pid) && self.complete_key != 0 && trusted.contains(&self.me)
            {
                // A trusted complete copy on a non-owner stays complete until it is dropped.
                new_complete.set(pid, true);
                done.insert(self.me);
            }
            self.complete_nodes[usize::from(pid)] = done;
        }
        self.complete = new_complete;
        self.complete_key = self.key;
        self.epoch = max_epoch + 1;
        self.phase = Phase::Planned;
        self.generation += 1;
        for pid in 0..PARTITIONS as u16 {
            let owner = self.table.replica_index(self.me, pid).is_some();
            if owner && self.complete.get(pid) {
                fx.completed.push(pid);
            }
        }
        fx.drop = self.droppable(None);
        let notices = std::mem::take(&mut self.early_notices);
        for (key, from, pid, done) in notices {
            if key != self.key {
                continue;
            }
            let more = if done {
                self.on_migration_done(from, key, pid)
            } else {
                self.on_complete_notice(from, key, pid)
            };
            fx.completed.extend(more.completed);
            fx.drop.extend(more.drop);
        }
        fx
    }

    fn keep_early(&mut self, key: u64, from: NodeId, pid: u16, done: bool) {
        if self.phase != Phase::Planned || key != self.key {
            self.early_notices.retain(|n| n.0 == key || n.0 == self.key);
            if self.early_notices.len() < EARLY_NOTICES_MAX {
                self.early_notices.push((key, from, pid, done));
            }
        }
    }

    /// A source finished sending partition `pid` to this node under `key`.
    pub fn on_migration_done(&mut self, from: NodeId, key: u64, pid: u16) -> Effects {
        let mut fx = Effects::default();
        if key != self.key || self.phase != Phase::Planned {
            self.keep_early(key, from, pid, true);
            return fx;
        }
        let waiting = &mut self.incoming[usize::from(pid) % PARTITIONS];
        if !waiting.remove(&from) || !waiting.is_empty() {
            return fx;
        }
        // Complete here, but not yet the working master: that waits until every member has
        // heard (`confirm_complete`), so the old working master stops taking writes first and
        // two nodes never execute writes for one partition at once.
        self.complete.set(pid, true);
        self.generation += 1;
        fx.completed.push(pid);
        fx.drop = self.droppable(Some(pid));
        fx
    }

    /// Every other member acknowledged that this node holds `pids` complete under `key`: it
    /// now counts as a complete copy here too (and may become their working master).
    pub fn confirm_complete(&mut self, key: u64, pids: &[u16]) {
        if key != self.key || self.phase != Phase::Planned {
            return;
        }
        for &pid in pids {
            if self.complete.get(pid) {
                self.complete_nodes[usize::from(pid) % PARTITIONS].insert(self.me);
            }
        }
        self.generation += 1;
    }

    /// This node finished (or gave up) an emigration.
    pub fn on_emigration_finished(&mut self, e: Emigration) -> Effects {
        self.outgoing.remove(&e);
        Effects {
            drop: self.droppable(Some(e.pid)),
            ..Effects::default()
        }
    }

    /// Another member holds partition `pid` complete under `key`.
    pub fn on_complete_notice(&mut self, from: NodeId, key: u64, pid: u16) -> Effects {
        if key != self.key || self.phase != Phase::Planned {
            self.keep_early(key, from, pid, false);
            return Effects::default();
        }
        if !self.is_member(from) {
            return Effects::default();
        }
        if self.complete_nodes[usize::from(pid) % PARTITIONS].insert(from) {
            self.generation += 1;
        }
        Effects {
            drop: self.droppable(Some(pid)),
            ..Effects::default()
        }
    }

    /// Non-owned partitions this node holds complete whose owners are all complete (of `only`,
    /// or of every partition).
    fn droppable(&mut self, only: Option<u16>) -> Vec<u16> {
        let mut out = Vec::new();
        if self.phase != Phase::Planned {
            return out;
        }
        let range = match only {
            Some(p) => p..p + 1,
            None => 0..PARTITIONS as u16,
        };
        for pid in range {
            if self.table.replica_index(self.me, pid).is_some() || self.dropped.get(pid) {
                continue;
            }
            let first = Emigration {
                pid,
                to: NodeId(0),
                clean: false,
            };
            if self
                .outgoing
                .range(first..)
                .next()
                .is_some_and(|e| e.pid == pid)
            {
                continue;
            }
            let done = &self.complete_nodes[usize::from(pid)];
            if self.table.owners(pid).all(|o| done.contains(&o)) {
                self.dropped.set(pid, true);
                self.complete.set(pid, false);
                self.complete_nodes[usize::from(pid)].remove(&self.me);
                out.push(pid);
            }
        }
        out
    }

    /// This node's copies may be stale (its process was paused while the others went on):
    /// report them as untrusted in the next exchange (epoch 0, nothing complete), as a fresh
    /// process would, so they only contribute through newest-wins merges.
    pub fn distrust(&mut self) {
        self.epoch = 0;
        self.complete_key = 0;
        self.complete = Bitmap::default();
        let me = self.me;
        for done in &mut self.complete_nodes {
            done.remove(&me);
        }
        self.generation += 1;
    }

    /// `node` restarted (its copies are gone) without leaving the view: it no longer holds
    /// anything complete, so it stops being a working master until a new view re-plans.
    pub fn forget_copies(&mut self, node: NodeId) -> bool {
        if node == self.me {
            return false;
        }
        let mut changed = false;
        for done in &mut self.complete_nodes {
            changed |= done.remove(&node);
        }
        if changed {
            self.generation += 1;
        }
        changed
    }

    /// Partitions this node holds complete under the current plan.
    pub fn is_complete(&self, pid: u16) -> bool {
        self.phase == Phase::Planned && self.complete.get(pid)
    }

    /// The node that executes writes for `pid`: the first complete node of its sequence;
    /// while no copy is complete, the first node holding records of it, else the master.
    /// `None` before the first plan.
    pub fn working_master(&self, pid: u16) -> Option<NodeId> {
        if self.phase == Phase::Idle {
            return None;
        }
        let p = usize::from(pid) % PARTITIONS;
        let done = &self.complete_nodes[p];
        self.table
            .sequence(pid)
            .find(|n| done.contains(n))
            .or(self.acting[p])
            .or_else(|| self.table.master(pid))
    }

    /// The owners of `pid` (master first, then replicas) under the current view.
    pub fn owners(&self, pid: u16) -> impl Iterator<Item = NodeId> + '_ {
        self.table.owners(pid)
    }

    /// The client-visible columns for `pid`: the working master, then the other owners.
    pub fn columns(&self, pid: u16) -> Vec<NodeId> {
        let mut cols = Vec::with_capacity(self.table.replication_factor());
        if let Some(w) = self.working_master(pid) {
            cols.push(w);
        }
        for o in self.table.owners(pid) {
            if !cols.contains(&o) && cols.len() < self.table.replication_factor() {
                cols.push(o);
            }
        }
        cols
    }

    /// True once a plan of a view that names this node quiesced is carried out: every owner
    /// of every partition holds it complete and nothing is left to send, so the node can leave
    /// without taking any copy with it.
    pub fn handed_over(&self) -> bool {
        self.quiesced.contains(&self.me) && self.outgoing.is_empty() && self.settled()
    }

    /// Every node a write of `pid` must reach before it is acknowledged: the working master,
    /// then every owner. While the working master is not an owner (a migration to a new owner
    /// is under way) that is one more than [`Partitions::columns`] shows clients: leaving the
    /// last owner out would let it miss writes made during the migration (with one copy, the
    /// new owner itself would miss them and they would be gone once the old copy is dropped).
    pub fn copies(&self, pid: u16) -> Vec<NodeId> {
        let mut out = Vec::with_capacity(self.table.replication_factor() + 1);
        if let Some(w) = self.working_master(pid) {
            out.push(w);
        }
        for o in self.table.owners(pid) {
            if !out.contains(&o) {
                out.push(o);
            }
        }
        out
    }

    /// Partitions still to migrate to or from this node.
    pub fn migrations_remaining(&self) -> (usize, usize) {
        let incoming = self.incoming.iter().filter(|s| !s.is_empty()).count();
        (incoming, self.outgoing.len())
    }

    /// True when this node knows every owner of every partition holds it complete.
    pub fn settled(&self) -> bool {
        self.phase == Phase::Planned
            && (0..PARTITIONS as u16).all(|pid| {
                let done = &self.complete_nodes[usize::from(pid)];
                self.table.owners(pid).all(|o| done.contains(&o))
            })
    }
}

impl Effects {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.completed.is_empty()
            && self.drop.is_empty()
            && self.emigrate.is_empty()
            && self.immigrating.is_empty()
    }
}

#[cfg(test)]
mod tests;
