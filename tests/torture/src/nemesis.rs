//! The nemesis: a fault schedule drawn from the seed before the run starts ([`plan`]), then
//! carried out against the real processes on its own thread ([`execute`]), with a log of what
//! was done and when. Faults: `kill` (SIGKILL, down a while, restart with its data), `restart`
//! (SIGKILL and restart at once), `wipe` (SIGKILL, restart with an empty data directory),
//! `pause` (SIGSTOP past the 1.5 s heartbeat timeout, then SIGCONT), `term` (SIGTERM, a clean
//! stop, down a while, restart) and `partition` (netns mode: the node is cut off from the
//! other nodes for 2-6 s while clients still reach it, then the network heals; docker mode:
//! the container is disconnected from the network, so clients cannot reach it either) and
//! `fill-disk` (with `--disk-size`: the node's filesystem is filled with a ballast file and
//! held full for 3-6 s while the workload runs; then, still full, the node is stopped cleanly
//! with SIGTERM and restarted, and only then is the ballast deleted).
//!
//! Invariant: never more than `max_down` nodes down, paused or partitioned at once. The plan keeps it with a
//! margin for the restart itself, and the executor checks it again against the real state (a
//! node whose restart failed stays down), skipping a fault rather than breaking it.

use crate::cluster::Cluster;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    Kill,
    Restart,
    Wipe,
    Pause,
    Term,
    Partition,
    /// The node's filesystem is filled, held full, the node stopped and restarted on the full
    /// disk, then the space is given back.
    #[serde(rename = "fill-disk")]
    FillDisk,
}

impl FaultKind {
    /// Whether the fault needs each node's data directory on its own small filesystem
    /// (`--disk-size`).
    pub fn needs_small_disk(self) -> bool {
        matches!(self, FaultKind::FillDisk)
    }

    /// Whether the fault restarts the process, which empties an in-memory namespace.
    pub fn loses_memory(self) -> bool {
        !matches!(self, FaultKind::Pause | FaultKind::Partition)
    }

    /// Whether the fault needs each node in its own network namespace.
    pub fn needs_netns(self) -> bool {
        matches!(self, FaultKind::Partition)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::Kill => "kill",
            FaultKind::Restart => "restart",
            FaultKind::Wipe => "wipe",
            FaultKind::Pause => "pause",
            FaultKind::Term => "term",
            FaultKind::Partition => "partition",
            FaultKind::FillDisk => "fill-disk",
        })
    }
}

/// What the plan is drawn from.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    pub nodes: usize,
    pub faults: Vec<FaultKind>,
    pub max_down: usize,
    pub duration: Duration,
    pub gap_min: Duration,
    pub gap_max: Duration,
    pub pause: Duration,
}

/// One planned fault: `node` is hit at `start` (from the run's start) and healed `hold` later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    pub kind: FaultKind,
    pub node: usize,
    pub start_ms: u64,
    pub hold_ms: u64,
}

/// No fault in the first seconds: the clients first put some data in.
const WARMUP: Duration = Duration::from_secs(2);
/// Time a restarted node is given to listen and rejoin before the plan counts it as up again.
const RESTART_MARGIN: Duration = Duration::from_secs(2);
/// How long a killed, wiped or stopped node stays down: drawn from this range.
const DOWN_MIN_MS: u64 = 500;
const DOWN_MAX_MS: u64 = 3000;
/// How long a partition lasts: drawn from this range, past the 1.5 s heartbeat timeout so the
/// majority forms a cluster without the isolated node.
const PARTITION_MIN_MS: u64 = 2000;
const PARTITION_MAX_MS: u64 = 6000;
/// How long a filesystem stays full before the node is restarted on it and it is emptied.
const FILL_MIN_MS: u64 = 3000;
const FILL_MAX_MS: u64 = 6000;
/// Mixed into the seed so the plan does not share a stream with client 0.
const PLAN_SALT: u64 = 0x6E65_6D65_7369_7321;

/// Draws the fault schedule of a run from `seed`: the same seed and settings give the same plan.
pub fn plan(seed: u64, s: &PlanSettings) -> Vec<Fault> {
    let mut rng = StdRng::seed_from_u64(seed ^ PLAN_SALT);
    let mut faults = Vec::new();
    if s.faults.is_empty() || s.max_down == 0 {
        return faults;
    }
    // Until when each planned fault keeps its node out.
    let mut busy: Vec<(usize, Duration)> = Vec::new();
    let end = s.duration.saturating_sub(Duration::from_secs(1));
    let mut t = WARMUP;
    loop {
        let gap = rng.random_range(s.gap_min.as_millis() as u64..=s.gap_max.as_millis() as u64);
        let kind = s.faults[rng.random_range(0..s.faults.len())];
        let hold = match kind {
            FaultKind::Pause => s.pause,
            FaultKind::Restart => Duration::ZERO,
            FaultKind::Partition => {
                Duration::from_millis(rng.random_range(PARTITION_MIN_MS..=PARTITION_MAX_MS))
            }
            FaultKind::FillDisk => {
                Duration::from_millis(rng.random_range(FILL_MIN_MS..=FILL_MAX_MS))
            }
            _ => Duration::from_millis(rng.random_range(DOWN_MIN_MS..=DOWN_MAX_MS)),
        };
        let pick = rng.random_range(0..s.nodes);
        t += Duration::from_millis(gap);
        busy.retain(|(_, until)| *until > t);
        if busy.len() >= s.max_down {
            // Too many nodes out: this fault waits until the first of them is back.
            if let Some(first_back) = busy.iter().map(|(_, until)| *until).min() {
                t = first_back;
            }
            busy.retain(|(_, until)| *until > t);
        }
        if t >= end {
            break;
        }
        let free: Vec<usize> = (0..s.nodes)
            .filter(|n| !busy.iter().any(|(b, _)| b == n))
            .collect();
        let Some(&node) = free.get(pick % free.len().max(1)) else {
            continue;
        };
        busy.push((node, t + hold + RESTART_MARGIN));
        faults.push(Fault {
            kind,
            node,
            start_ms: t.as_millis() as u64,
            hold_ms: hold.as_millis() as u64,
        });
    }
    faults
}

/// The phase of a fault an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The fault was applied.
    Start,
    /// The node was brought back (restarted or resumed).
    Heal,
    /// The fault was not applied: its node was not up, or too many nodes were out.
    Skipped,
    /// After the workload: every node still out was brought back.
    FinalHeal,
}

/// One thing the nemesis did.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Index into the plan (`None` for the final heal).
    pub fault: Option<usize>,
    pub kind: Option<FaultKind>,
    pub node: Option<usize>,
    pub phase: Phase,
    /// Milliseconds since the run started.
    pub at_ms: u64,
    /// What went wrong, if anything (a node that would not restart or stop cleanly).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub at: Option<Instant>,
}

/// Everything the nemesis planned and did.
#[derive(Debug, Clone, Default)]
pub struct FaultLog {
    pub plan: Vec<Fault>,
    pub events: Vec<Event>,
    /// Whether the final heal had a node to bring back.
    pub final_heal_acted: bool,
}

impl FaultLog {
    /// Faults actually applied, by kind.
    pub fn injected(&self) -> std::collections::BTreeMap<FaultKind, usize> {
        let mut m = std::collections::BTreeMap::new();
        for e in &self.events {
            if let (Phase::Start, Some(k)) = (e.phase, e.kind) {
                *m.entry(k).or_insert(0) += 1;
            }
        }
        m
    }

    /// Errors the faults ran into (each one is a finding: a node that would not come back).
    pub fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| {
                e.error.as_ref().map(|err| {
                    format!(
                        "{:?} of fault {:?} ({:?} on node {:?}) at {} ms: {err}",
                        e.phase, e.fault, e.kind, e.node, e.at_ms
                    )
                })
            })
            .collect()
    }

    /// Adds the final heal (after the workload) to the log.
    pub fn with_final_heal(
        mut self,
        at: Instant,
        run_start: Instant,
        healed: usize,
        errors: Vec<String>,
    ) -> Self {
        self.final_heal_acted = healed > 0;
        let at_ms = at.saturating_duration_since(run_start).as_millis() as u64;
        let error = if errors.is_empty() {
            None
        } else {
            Some(errors.join("; "))
        };
        self.events.push(Event {
            fault: None,
            kind: None,
            node: None,
            phase: Phase::FinalHeal,
            at_ms,
            error,
            at: Some(at),
        });
        self
    }
}

/// Carries out `plan` until it is done or `stop` is set; faults still in force are left for the
/// caller's final heal.
/// Longest a fault waits for the cluster to finish migrating before it is skipped.
const STABLE_BEFORE_FAULT: Duration = Duration::from_secs(30);

pub fn execute(
    cluster: &mut Cluster,
    plan: &[Fault],
    max_down: usize,
    run_start: Instant,
    stop: &AtomicBool,
) -> FaultLog {
    // (time, rank, fault, is heal): at one instant heals go before starts, except a restart's
    // heal, which follows its own start.
    let mut steps: Vec<(u64, u8, usize, bool)> = Vec::with_capacity(plan.len() * 2);
    for (i, f) in plan.iter().enumerate() {
        steps.push((f.start_ms, 1, i, false));
        let rank = if f.hold_ms == 0 { 2 } else { 0 };
        steps.push((f.start_ms + f.hold_ms, rank, i, true));
    }
    steps.sort_unstable();
    let mut log = FaultLog {
        plan: plan.to_vec(),
        ..FaultLog::default()
    };
    let mut applied = vec![false; plan.len()];
    for (at_ms, _, i, heal) in steps {
        if !sleep_until(run_start + Duration::from_millis(at_ms), stop) {
            break;
        }
        let f = &plan[i];
        let (phase, error) = if heal {
            if !applied[i] {
                continue;
            }
            (Phase::Heal, heal_fault(cluster, f).err())
        } else {
            let out = (0..cluster.len()).filter(|n| !cluster.is_up(*n)).count();
            // A node that came back empty counts as down until its copies are rebuilt: with
            // every node up, a new fault waits (bounded) for the cluster to be stable, i.e. for
            // migrations to finish, so at most max-down copies are ever missing at once.
            let rebuilt =
                out > 0 || cluster.len() < 2 || cluster.wait_stable(STABLE_BEFORE_FAULT).is_ok();
            if !cluster.is_up(f.node) || out >= max_down.max(1) || !rebuilt {
                (Phase::Skipped, None)
            } else {
                applied[i] = true;
                (Phase::Start, start_fault(cluster, f).err())
            }
        };
        let now = Instant::now();
        log.events.push(Event {
            fault: Some(i),
            kind: Some(f.kind),
            node: Some(f.node),
            phase,
            at_ms: now.saturating_duration_since(run_start).as_millis() as u64,
            error: error.map(|e| format!("{e:#}")),
            at: Some(now),
        });
    }
    log
}

fn start_fault(cluster: &mut Cluster, f: &Fault) -> anyhow::Result<()> {
    match f.kind {
        FaultKind::Kill | FaultKind::Restart => cluster.kill(f.node),
        FaultKind::Wipe => {
            cluster.kill(f.node)?;
            cluster.wipe(f.node)
        }
        FaultKind::Pause => cluster.pause(f.node),
        FaultKind::Term => cluster.terminate(f.node),
        FaultKind::Partition => cluster.partition(f.node),
        FaultKind::FillDisk => {
            let bytes = cluster.fill_disk(f.node)?;
            println!(
                "torture: fill-disk: node {}'s filesystem is full ({} MiB of ballast)",
                f.node,
                bytes >> 20
            );
            Ok(())
        }
    }
}

/// The end of a `fill-disk` fault: a clean stop and a start while the disk is still full (the
/// clean-shutdown snapshot may not fit, so the start may be a cold start), then the ballast
/// is deleted whatever happened, so a failed restart does not leave the disk full for the
/// final heal.
fn heal_fill_disk(cluster: &mut Cluster, node: usize) -> anyhow::Result<()> {
    let stopped = cluster.terminate(node);
    let started = if cluster.is_down(node) {
        cluster.start_node(node)
    } else {
        Ok(())
    };
    let emptied = cluster.empty_disk(node);
    stopped.and(started).and(emptied)
}

fn heal_fault(cluster: &mut Cluster, f: &Fault) -> anyhow::Result<()> {
    match f.kind {
        FaultKind::Pause => cluster.resume(f.node),
        FaultKind::Partition => cluster.heal_partition(f.node),
        FaultKind::FillDisk => heal_fill_disk(cluster, f.node),
        _ => cluster.start_node(f.node),
    }
}

/// Sleeps until `at` in short steps; false when `stop` was set first.
fn sleep_until(at: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= at {
            return true;
        }
        std::thread::sleep((at - now).min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(nodes: usize, max_down: usize) -> PlanSettings {
        PlanSettings {
            nodes,
            faults: vec![
                FaultKind::Kill,
                FaultKind::Restart,
                FaultKind::Wipe,
                FaultKind::Pause,
                FaultKind::Term,
                FaultKind::Partition,
            ],
            max_down,
            duration: Duration::from_secs(600),
            gap_min: Duration::from_millis(200),
            gap_max: Duration::from_millis(2000),
            pause: Duration::from_secs(3),
        }
    }

    #[test]
    fn a_seed_gives_the_same_plan() {
        let s = settings(3, 1);
        assert_eq!(plan(42, &s), plan(42, &s));
        assert_ne!(plan(42, &s), plan(43, &s));
    }

    #[test]
    fn never_more_than_max_down_nodes_out_at_once() {
        for seed in 0..50 {
            for (nodes, max_down) in [(1, 1), (3, 1), (3, 2), (5, 2)] {
                let p = plan(seed, &settings(nodes, max_down));
                assert!(!p.is_empty());
                for f in &p {
                    let margin = RESTART_MARGIN.as_millis() as u64;
                    let out: Vec<&Fault> = p
                        .iter()
                        .filter(|g| {
                            g.start_ms <= f.start_ms && g.start_ms + g.hold_ms + margin > f.start_ms
                        })
                        .collect();
                    assert!(out.len() <= max_down, "seed {seed}: {out:?}");
                    let mut nodes_out: Vec<usize> = out.iter().map(|g| g.node).collect();
                    nodes_out.sort_unstable();
                    nodes_out.dedup();
                    assert_eq!(nodes_out.len(), out.len(), "one fault per node at a time");
                    assert!(f.node < nodes);
                }
            }
        }
    }

    #[test]
    fn faults_start_after_the_warmup_and_before_the_end() {
        let p = plan(7, &settings(3, 1));
        assert!(p.iter().all(|f| f.start_ms >= 2000 && f.start_ms < 599_000));
        assert!(p.windows(2).all(|w| w[0].start_ms < w[1].start_ms));
    }
}
