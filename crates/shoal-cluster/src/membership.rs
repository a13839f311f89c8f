//! Clustering: agreeing on who is in the cluster. The members of a cluster form a clique (every
//! member hears every other); its principal is the member with the highest node id; a new
//! membership is proposed by the principal, accepted by every member, and only then committed
//! with a fresh cluster key, so no node moves data for a membership the others have not seen.
//! Changes are batched: a proposal waits until the desired membership has been stable for a
//! quantum. A node refuses to form a cluster smaller than `cluster_size_min`. A view also names
//! the members that are quiescing (handing their data over before they leave, from the
//! `quiescing` flag of their pulses as the principal saw it): every member plans partitions
//! with the same quiesced set from the moment the view is committed. A change of that set is
//! a new view.
//!
//! Safety: a node commits a view only from the proposer it accepted for that key, and a
//! proposer commits only after every proposed member accepted; so all nodes holding one
//! cluster key hold the same succession list. Pure state machine: time and randomness come in
//! as arguments. Aerospike counterpart: `as/src/fabric/clustering.c` (a paxos variant whose
//! accept phase also needs every member; this module keeps that property and drops the
//! majority prepare phase, which a single principal per clique does not need).

use crate::heartbeat::Heartbeat;
use shoal_base::NodeId;
use std::collections::BTreeSet;

/// A committed membership: its cluster key and succession list (node ids, highest first).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterView {
    /// Non-zero once the node belongs to a cluster.
    pub key: u64,
    pub succession: Vec<NodeId>,
    /// Members handing their data over before they leave (sorted; a subset of the
    /// succession). Pulses carry views without it: it matters only to the members.
    pub quiesced: Vec<NodeId>,
}

impl ClusterView {
    /// The principal (first in the succession list).
    pub fn principal(&self) -> Option<NodeId> {
        self.succession.first().copied()
    }
}

/// Messages between members (carried by the fabric).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterMessage {
    Propose {
        key: u64,
        succession: Vec<NodeId>,
        quiesced: Vec<NodeId>,
    },
    Accept {
        key: u64,
    },
    Commit {
        key: u64,
        succession: Vec<NodeId>,
        quiesced: Vec<NodeId>,
    },
}

/// Settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusteringConfig {
    /// How long the desired membership must be unchanged before it is proposed.
    pub quantum_ms: u64,
    /// A proposal not fully accepted by then is abandoned.
    pub proposal_timeout_ms: u64,
    /// How often a pending proposal is resent to members that have not accepted it.
    pub resend_ms: u64,
    /// The smallest cluster this node will form or join.
    pub cluster_size_min: usize,
}

impl Default for ClusteringConfig {
    fn default() -> Self {
        ClusteringConfig {
            quantum_ms: 300,
            proposal_timeout_ms: 1_500,
            resend_ms: 150,
            cluster_size_min: 1,
        }
    }
}

#[derive(Debug, Clone)]
struct Proposal {
    key: u64,
    succession: Vec<NodeId>,
    quiesced: Vec<NodeId>,
    accepted: BTreeSet<NodeId>,
    started_ms: u64,
    last_sent_ms: u64,
}

/// The clustering state of one node.
#[derive(Debug, Clone)]
pub struct Clustering {
    me: NodeId,
    config: ClusteringConfig,
    view: ClusterView,
    /// The proposal this node accepted (key, proposer), if any.
    promised: Option<(u64, NodeId)>,
    /// This node's own proposal while it is principal.
    proposal: Option<Proposal>,
    desired: Vec<NodeId>,
    desired_since_ms: u64,
    /// The desired members whose pulses (or, for this node, its own flag) say quiescing.
    desired_quiesced: Vec<NodeId>,
    /// Since when some member's pulses show another cluster key than ours (a lost commit).
    lagging_since_ms: Option<u64>,
    /// When the principal last resent its commit to lagging members.
    last_commit_sent_ms: u64,
    /// The last proposal this node accepted, kept after a commit so a resent commit of it is
    /// still recognised.
    accepted_last: Option<(u64, NodeId)>,
    /// Completed membership changes.
    pub changes: u64,
    /// Asked to propose a new view even though the membership did not change (`recluster`).
    force: bool,
}

/// What a step produced: messages to send and, when a view was committed, the new view.
#[derive(Debug, Default)]
pub struct Step {
    pub sends: Vec<(NodeId, ClusterMessage)>,
    pub committed: Option<ClusterView>,
}

impl Clustering {
    /// A node not yet in any cluster.
    pub fn new(me: NodeId, config: ClusteringConfig) -> Clustering {
        Clustering {
            me,
            config,
            view: ClusterView::default(),
            promised: None,
            proposal: None,
            desired: vec![me],
            desired_since_ms: 0,
            desired_quiesced: Vec::new(),
            lagging_since_ms: None,
            last_commit_sent_ms: 0,
            accepted_last: None,
            changes: 0,
            force: false,
        }
    }

    /// Asks for a new view with a fresh cluster key at the next tick (`recluster`): only the
    /// principal acts on it; returns whether this node is the principal.
    pub fn recluster(&mut self) -> bool {
        let principal = self.view.principal() == Some(self.me);
        if principal {
            self.force = true;
        }
        principal
    }

    /// The committed view.
    pub fn view(&self) -> &ClusterView {
        &self.view
    }

    /// The largest clique containing this node, built greedily from the highest node id down:
    /// a node joins when it and every member already chosen hear each other.
    pub fn desired_membership(&self, hb: &Heartbeat) -> Vec<NodeId> {
        let mut candidates: Vec<NodeId> = hb.adjacency().into_iter().collect();
        candidates.push(self.me);
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        let mut clique: Vec<NodeId> = vec![self.me];
        for c in candidates.into_iter().filter(|c| *c != self.me) {
            if clique.iter().all(|m| hb.hears(*m, c) && hb.hears(c, *m)) {
                clique.push(c);
            }
        }
        clique.sort_unstable_by(|a, b| b.cmp(a));
        clique
    }

    /// Advances time. `fresh_key` is a random non-zero 48-bit value from the caller, used if
    /// this node starts a proposal.
    pub fn tick(&mut self, now_ms: u64, hb: &Heartbeat, fresh_key: u64) -> Step {
        let mut step = Step::default();
        let desired = self.desired_membership(hb);
        if desired != self.desired {
            self.desired = desired;
            self.desired_since_ms = now_ms;
        }
        // Who is handing its data over: our own flag, and each other member's latest pulse.
        self.desired_quiesced = self
            .desired
            .iter()
            .copied()
            .filter(|m| {
                if *m == self.me {
                    hb.quiescing()
                } else {
                    hb.peers().get(m).is_some_and(|p| p.quiescing)
                }
            })
            .collect();
        self.desired_quiesced.sort_unstable();
        if let Some(p) = &self.proposal {
            if now_ms.saturating_sub(p.started_ms) > self.config.proposal_timeout_ms {
                self.proposal = None;
            }
        }
        // Resend a pending proposal to the members that have not accepted it yet: the fabric
        // may drop messages when a connection breaks.
        if let Some(p) = &mut self.proposal {
            if now_ms.saturating_sub(p.last_sent_ms) >= self.config.resend_ms {
                p.last_sent_ms = now_ms;
                for m in p.succession.iter().filter(|m| !p.accepted.contains(m)) {
                    step.sends.push((
                        *m,
                        ClusterMessage::Propose {
                            key: p.key,
                            succession: p.succession.clone(),
                            quiesced: p.quiesced.clone(),
                        },
                    ));
                }
            }
        }
        let principal = self.desired.first().copied() == Some(self.me);
        // A node that hears nobody forms its own cluster at once (there is nothing to batch);
        // any larger membership waits for a quiet quantum.
        let settled = self.desired.len() == 1
            || now_ms.saturating_sub(self.desired_since_ms) >= self.config.quantum_ms;
        // A member whose pulses keep showing another key missed our commit: propose again.
        let lagging = self.view.key != 0
            && self.desired.iter().filter(|m| **m != self.me).any(|m| {
                hb.peers()
                    .get(m)
                    .is_none_or(|p| p.view.key != self.view.key)
            });
        self.lagging_since_ms = match (lagging, self.lagging_since_ms) {
            (false, _) => None,
            (true, None) => Some(now_ms),
            (true, since) => since,
        };
        let lag_ms = self
            .lagging_since_ms
            .map_or(0, |t| now_ms.saturating_sub(t));
        // First resend the commit to members that show another key (they accepted, so a
        // resent commit is enough); only if that does not help, propose a new membership.
        if principal
            && self.view.succession == self.desired
            && lag_ms >= 2 * self.config.resend_ms
            && now_ms.saturating_sub(self.last_commit_sent_ms) >= self.config.resend_ms
        {
            self.last_commit_sent_ms = now_ms;
            for m in self.view.succession.iter().filter(|m| **m != self.me) {
                let behind = hb
                    .peers()
                    .get(m)
                    .is_none_or(|p| p.view.key != self.view.key);
                if behind {
                    step.sends.push((
                        *m,
                        ClusterMessage::Commit {
                            key: self.view.key,
                            succession: self.view.succession.clone(),
                            quiesced: self.view.quiesced.clone(),
                        },
                    ));
                }
            }
        }
        let stuck = lag_ms > self.config.proposal_timeout_ms;
        let changed = self.view.key == 0
            || self.view.succession != self.desired
            || self.view.quiesced != self.desired_quiesced
            || stuck
            || self.force;
        if principal
            && settled
            && changed
            && self.proposal.is_none()
            && self.desired.len() >= self.config.cluster_size_min
        {
            self.force = false;
            let key = (fresh_key & 0x0000_FFFF_FFFF_FFFF).max(1);
            if self.desired.len() == 1 {
                let quiesced = self.desired_quiesced.clone();
                self.commit(key, self.desired.clone(), quiesced, &mut step);
            } else {
                for m in self.desired.iter().filter(|m| **m != self.me) {
                    step.sends.push((
                        *m,
                        ClusterMessage::Propose {
                            key,
                            succession: self.desired.clone(),
                            quiesced: self.desired_quiesced.clone(),
                        },
                    ));
                }
                self.promised = Some((key, self.me));
                self.proposal = Some(Proposal {
                    key,
                    succession: self.desired.clone(),
                    quiesced: self.desired_quiesced.clone(),
                    accepted: [self.me].into_iter().collect(),
                    started_ms: now_ms,
                    last_sent_ms: now_ms,
                });
            }
        }
        step
    }

    /// Takes a message from `from`.
    pub fn receive(&mut self, from: NodeId, msg: ClusterMessage, hb: &Heartbeat) -> Step {
        let mut step = Step::default();
        match msg {
            ClusterMessage::Propose {
                key, succession, ..
            } => {
                // Follow the highest node we hear, and only into a cluster that includes us.
                let highest = hb.adjacency().into_iter().chain([self.me]).max();
                let acceptable = highest == Some(from)
                    && succession.first() == Some(&from)
                    && succession.contains(&self.me)
                    && succession.len() >= self.config.cluster_size_min;
                if acceptable {
                    self.promised = Some((key, from));
                    self.accepted_last = Some((key, from));
                    self.proposal = None;
                    step.sends.push((from, ClusterMessage::Accept { key }));
                }
            }
            ClusterMessage::Accept { key } => {
                let mut done = None;
                if let Some(p) = &mut self.proposal {
                    if p.key == key && p.succession.contains(&from) {
                        p.accepted.insert(from);
                        if p.succession.iter().all(|m| p.accepted.contains(m)) {
                            done = Some((p.key, p.succession.clone(), p.quiesced.clone()));
                        }
                    }
                }
                if let Some((key, succession, quiesced)) = done {
                    self.proposal = None;
                    for m in succession.iter().filter(|m| **m != self.me) {
                        step.sends.push((
                            *m,
                            ClusterMessage::Commit {
                                key,
                                succession: succession.clone(),
                                quiesced: quiesced.clone(),
                            },
                        ));
                    }
                    self.commit(key, succession, quiesced, &mut step);
                }
            }
            ClusterMessage::Commit {
                key,
                succession,
                quiesced,
            } => {
                let expected =
                    self.promised == Some((key, from)) || self.accepted_last == Some((key, from));
                if expected && succession.contains(&self.me) {
                    self.commit(key, succession, quiesced, &mut step);
                }
            }
        }
        step
    }

    fn commit(
        &mut self,
        key: u64,
        succession: Vec<NodeId>,
        mut quiesced: Vec<NodeId>,
        step: &mut Step,
    ) {
        if self.view.key == key {
            return;
        }
        // Only members can be quiesced; kept sorted so views compare as sets.
        quiesced.retain(|n| succession.contains(n));
        quiesced.sort_unstable();
        quiesced.dedup();
        self.view = ClusterView {
            key,
            succession,
            quiesced,
        };
        self.promised = None;
        self.lagging_since_ms = None;
        self.changes += 1;
        step.committed = Some(self.view.clone());
    }
}
