//! A seeded simulation of heartbeat + clustering on N nodes: a network with delay, loss and
//! (one-way) partitions, and node crashes and restarts. Safety is checked at every commit (all
//! nodes that commit one cluster key commit the same succession list); liveness after the
//! faults stop (every node ends in one cluster of all nodes within a bound). Every seed runs
//! twice and must produce the same trace. A failing seed is printed; add it to `REGRESSIONS`.

use shoal_base::NodeId;
use shoal_cluster::heartbeat::{Endpoint, Heartbeat, HeartbeatConfig, Pulse};
use shoal_cluster::membership::{ClusterMessage, ClusterView, Clustering, ClusteringConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// Seeds that once failed; each stays here forever.
///
/// Seed 13 (6 nodes): with ~9 % message loss every proposal lost at least one Propose or
/// Accept, each attempt timed out after 1.5 s, and the cluster had not formed 6 s after the
/// faults stopped. Fixed by resending a pending proposal to the members that have not
/// accepted it, every 150 ms.
///
/// Seed 1094 (7 nodes): each new proposal's commit was lost to one member or another, so the
/// principal kept proposing new keys (one every ~1.7 s) and never saw everyone on one key.
/// Fixed by resending the commit itself to members whose pulses still show another key; a
/// member recognises a commit of the proposal it last accepted.
const REGRESSIONS: &[u64] = &[13, 1094];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

enum Payload {
    Pulse(Pulse),
    Cluster(NodeId, ClusterMessage),
}

struct Message {
    at_ms: u64,
    to: usize,
    payload: Payload,
}

struct Node {
    id: NodeId,
    alive: bool,
    hb: Heartbeat,
    cl: Clustering,
}

const STEP_MS: u64 = 10;
const FAULTS_END_MS: u64 = 8_000;
const CONVERGE_BOUND_MS: u64 = 6_000;

fn endpoint(i: usize) -> Endpoint {
    SocketAddr::from(([127, 0, 0, 1], 3002 + i as u16))
}

fn fresh(i: usize, id: NodeId, now: u64) -> Node {
    let ep = endpoint(i);
    Node {
        id,
        alive: true,
        // Every node knows only node 0 as its seed, like `--seed db-0`.
        hb: Heartbeat::new(id, ep, 0, HeartbeatConfig::default(), [endpoint(0)], now),
        cl: Clustering::new(id, ClusteringConfig::default()),
    }
}

/// Runs one seed; returns a trace summary, or the violated property.
fn run(seed: u64, n: usize) -> Result<String, String> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let ids: Vec<NodeId> = (0..n).map(|_| NodeId(rng.next() >> 4 | 1)).collect();
    let mut nodes: Vec<Node> = (0..n).map(|i| fresh(i, ids[i], 0)).collect();
    let index_of: BTreeMap<NodeId, usize> =
        ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let ep_index: BTreeMap<Endpoint, usize> = (0..n).map(|i| (endpoint(i), i)).collect();
    let mut net: Vec<Message> = Vec::new();
    let mut cut: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut commits: BTreeMap<u64, Vec<NodeId>> = BTreeMap::new();
    let mut trace = String::new();
    let loss_pct = rng.below(10);
    let mut now = 0;
    let mut converged_at = None;
    while now <= FAULTS_END_MS + CONVERGE_BOUND_MS {
        // Faults: only before FAULTS_END_MS, at most one node down at a time.
        if now < FAULTS_END_MS && rng.chance(2) {
            match rng.below(4) {
                0 => {
                    // Split the nodes into two random sides (possibly one-way).
                    cut.clear();
                    let side: Vec<bool> = (0..n).map(|_| rng.chance(50)).collect();
                    let one_way = rng.chance(30);
                    for a in 0..n {
                        for b in 0..n {
                            if side[a] != side[b] && (!one_way || side[a]) {
                                cut.insert((a, b));
                            }
                        }
                    }
                }
                1 => cut.clear(),
                2 => {
                    if nodes.iter().all(|x| x.alive) {
                        let v = rng.below(n as u64) as usize;
                        nodes[v].alive = false;
                    }
                }
                _ => {
                    for (i, node) in nodes.iter_mut().enumerate() {
                        if !node.alive {
                            *node = fresh(i, ids[i], now);
                        }
                    }
                }
            }
        }
        if now == FAULTS_END_MS {
            cut.clear();
            for (i, node) in nodes.iter_mut().enumerate() {
                if !node.alive {
                    *node = fresh(i, ids[i], now);
                }
            }
        }
        let mut outgoing: Vec<(usize, usize, Payload)> = Vec::new();
        // Deliver what is due.
        let (due, later): (Vec<Message>, Vec<Message>) =
            net.into_iter().partition(|m| m.at_ms <= now);
        net = later;
        for m in due {
            if !nodes[m.to].alive {
                continue;
            }
            let node = &mut nodes[m.to];
            match m.payload {
                Payload::Pulse(p) => {
                    node.hb.receive(now, p);
                }
                Payload::Cluster(from, msg) => {
                    let step = node.cl.receive(from, msg, &node.hb);
                    for (to, msg) in step.sends {
                        if let Some(t) = index_of.get(&to) {
                            outgoing.push((m.to, *t, Payload::Cluster(node.id, msg)));
                        }
                    }
                    if let Some(v) = step.committed {
                        record(&mut commits, &mut trace, now, node.id, &v)?;
                    }
                }
            }
        }
        // Tick every live node.
        for (i, node) in nodes.iter_mut().enumerate() {
            if !node.alive {
                continue;
            }
            let key = rng.next();
            let (pulses, _) = node.hb.tick(now, node.cl.view());
            for (ep, p) in pulses {
                if let Some(t) = ep_index.get(&ep) {
                    outgoing.push((i, *t, Payload::Pulse(p)));
                }
            }
            let step = node.cl.tick(now, &node.hb, key);
            for (to, msg) in step.sends {
                if let Some(t) = index_of.get(&to) {
                    outgoing.push((i, *t, Payload::Cluster(node.id, msg)));
                }
            }
            if let Some(v) = step.committed {
                record(&mut commits, &mut trace, now, node.id, &v)?;
            }
        }
        for (from, to, payload) in outgoing {
            if cut.contains(&(from, to)) || rng.chance(loss_pct) {
                continue;
            }
            let at_ms = now + 1 + rng.below(20);
            net.push(Message { at_ms, to, payload });
        }
        if now >= FAULTS_END_MS && converged_at.is_none() {
            let v0 = nodes[0].cl.view().clone();
            let all: BTreeSet<NodeId> = ids.iter().copied().collect();
            let same = nodes.iter().all(|x| x.cl.view() == &v0);
            if same && v0.succession.iter().copied().collect::<BTreeSet<_>>() == all {
                converged_at = Some(now);
            }
        }
        now += STEP_MS;
    }
    match converged_at {
        Some(t) => {
            trace.push_str(&format!(
                "converged {}ms after the faults stopped\n",
                t - FAULTS_END_MS
            ));
            Ok(trace)
        }
        None => Err(format!(
            "no convergence within {CONVERGE_BOUND_MS} ms; views: {:?}",
            nodes
                .iter()
                .map(|x| (
                    x.id,
                    x.alive,
                    x.cl.view().clone(),
                    x.hb.adjacency().len(),
                    x.cl.desired_membership(&x.hb).len()
                ))
                .collect::<Vec<_>>()
        )),
    }
}

fn record(
    commits: &mut BTreeMap<u64, Vec<NodeId>>,
    trace: &mut String,
    now: u64,
    node: NodeId,
    v: &ClusterView,
) -> Result<(), String> {
    trace.push_str(&format!("{now} {node:?} {:x} {:?}\n", v.key, v.succession));
    match commits.get(&v.key) {
        Some(s) if *s != v.succession => Err(format!(
            "safety: key {:x} committed with {:?} and with {:?}",
            v.key, s, v.succession
        )),
        Some(_) => Ok(()),
        None => {
            if v.principal() != v.succession.iter().max().copied() {
                return Err(format!(
                    "principal is not the highest id in {:?}",
                    v.succession
                ));
            }
            commits.insert(v.key, v.succession.clone());
            Ok(())
        }
    }
}

fn check(seed: u64, n: usize) {
    let a = run(seed, n).unwrap_or_else(|e| panic!("seed {seed} (n={n}) failed: {e}"));
    let b = run(seed, n).unwrap_or_else(|e| panic!("seed {seed} (n={n}) failed on replay: {e}"));
    assert_eq!(a, b, "seed {seed} is not deterministic");
}

#[test]
fn fixed_seeds_converge_safely() {
    for seed in 1..=40u64 {
        check(seed, 3 + (seed % 5) as usize);
    }
    for &seed in REGRESSIONS {
        check(seed, 5);
    }
}

/// The long mode: `cargo test -p shoal-cluster --test sim -- --ignored`.
#[test]
#[ignore = "long mode: 2000 seeds"]
fn many_seeds() {
    for seed in 1000..3000u64 {
        check(seed, 3 + (seed % 5) as usize);
    }
}

#[test]
fn a_few_random_seeds() {
    // Different every run; the seed is printed on failure so it can become a regression.
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    for k in 0..5 {
        let seed = base.wrapping_add(k);
        eprintln!("random seed {seed}");
        check(seed, 5);
    }
}
