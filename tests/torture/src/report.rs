//! The run's summary: faults injected by kind with the time the cluster took to be stable
//! again after each, operations by kind and outcome, acknowledged writes lost, and whether the
//! run passed; printed as tables, and saved with the history, the fault log and the replay
//! command when a run fails (or when `--save` asks).

use crate::checker::{CheckResult, ReplicaCheck};
use crate::cluster::Sample;
use crate::history::{History, Outcome};
use crate::nemesis::{FaultKind, FaultLog, Phase};
use crate::options::Options;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub seed: u64,
    pub nodes: usize,
    pub rf: u8,
    pub storage: String,
    pub duration_s: u64,
    pub clients: usize,
    pub faults_planned: BTreeMap<FaultKind, usize>,
    pub faults_injected: BTreeMap<FaultKind, usize>,
    pub faults_skipped: usize,
    /// Faults that went wrong: a node that would not restart or stop cleanly.
    pub fault_errors: Vec<String>,
    /// Operations by kind, then outcome.
    pub ops: BTreeMap<String, BTreeMap<String, usize>>,
    /// For each heal (restart or SIGCONT) not interrupted by the next fault: the time from the
    /// heal to the first probe that found the cluster stable.
    pub converge: BTreeMap<FaultKind, Vec<Duration>>,
    /// From the last heal of the run to the first stable probe.
    pub converged_after_last_heal: Option<Duration>,
    /// Things that kept the harness from checking (a cluster that never converged, ...).
    pub harness_errors: Vec<String>,
    pub check: Option<CheckResult>,
    /// Whether the replicas agree at the end (`None` when the comparison did not run).
    pub replicas: Option<ReplicaCheck>,
    pub total: Duration,
}

impl Report {
    /// The report before convergence and the check are known.
    pub fn new(options: &Options, history: &History, log: &FaultLog) -> Report {
        let mut ops: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for ((kind, outcome), n) in history.counts() {
            ops.entry(kind.to_string())
                .or_default()
                .insert(outcome.name().to_string(), n);
        }
        let mut planned = BTreeMap::new();
        for f in &log.plan {
            *planned.entry(f.kind).or_insert(0) += 1;
        }
        Report {
            seed: options.seed(),
            nodes: options.nodes,
            rf: options.rf(),
            storage: options.storage.to_string(),
            duration_s: options.duration_s,
            clients: options.clients,
            faults_planned: planned,
            faults_injected: log.injected(),
            faults_skipped: log
                .events
                .iter()
                .filter(|e| e.phase == Phase::Skipped)
                .count(),
            fault_errors: log.errors(),
            ops,
            converge: BTreeMap::new(),
            converged_after_last_heal: None,
            harness_errors: Vec::new(),
            check: None,
            replicas: None,
            total: Duration::ZERO,
        }
    }

    /// Fills in the convergence times from the stability probes.
    pub fn converge_after_faults(&mut self, log: &FaultLog, samples: &[Sample]) {
        let starts: Vec<Instant> = log
            .events
            .iter()
            .filter(|e| e.phase == Phase::Start)
            .filter_map(|e| e.at)
            .collect();
        let first_stable_after =
            |t: Instant| samples.iter().find(|s| s.at >= t && s.stable).map(|s| s.at);
        let mut last_heal = None;
        for e in &log.events {
            let Some(at) = e.at else { continue };
            match (e.phase, e.kind) {
                (Phase::Heal, Some(kind)) => {
                    last_heal = Some(at);
                    let Some(stable) = first_stable_after(at) else {
                        continue;
                    };
                    // A fault that started in between makes this heal's time meaningless.
                    if starts.iter().any(|s| *s > at && *s < stable) {
                        continue;
                    }
                    self.converge.entry(kind).or_default().push(stable - at);
                }
                (Phase::FinalHeal, _) if last_heal.is_none() || log.final_heal_acted => {
                    last_heal = Some(at);
                }
                _ => {}
            }
        }
        self.converged_after_last_heal =
            last_heal.and_then(|h| first_stable_after(h).map(|s| s - h));
    }

    /// Acknowledged writes lost (`None` when the check did not run).
    pub fn lost_acked(&self) -> Option<usize> {
        self.check.as_ref().map(CheckResult::lost_acked)
    }

    /// Faults injected, all kinds.
    pub fn faults_injected_total(&self) -> usize {
        self.faults_injected.values().sum()
    }

    /// Operations recorded with `outcome`, all kinds.
    pub fn ops_with(&self, outcome: Outcome) -> usize {
        self.ops
            .values()
            .filter_map(|m| m.get(outcome.name()))
            .sum()
    }

    /// Passed: the check ran and found nothing, the replicas agree, and every fault came
    /// back.
    pub fn passed(&self) -> bool {
        self.harness_errors.is_empty()
            && self.fault_errors.is_empty()
            && self.check.as_ref().is_some_and(|c| c.violations.is_empty())
            && self.replicas.as_ref().is_some_and(ReplicaCheck::agrees)
    }

    /// Why this run does not prove anything, or lost something: `None` when it injected at
    /// least `min_faults` faults, acknowledged and checked at least `min_ops` operations and
    /// writes, lost none and passed. The gate tests assert on it.
    pub fn gate_failure(&self, min_faults: usize, min_ops: usize) -> Option<String> {
        if self.faults_injected_total() < min_faults {
            return Some(format!(
                "too few faults injected: {:?}",
                self.faults_injected
            ));
        }
        if self.ops_with(Outcome::Ok) < min_ops {
            return Some(format!("too few acknowledged operations: {:?}", self.ops));
        }
        match self.check.as_ref() {
            None => return Some("the final check did not run".into()),
            Some(c) if c.acked_writes_checked < min_ops => {
                return Some(format!("too few writes checked: {c:?}"))
            }
            Some(_) => {}
        }
        if self.lost_acked() != Some(0) {
            return Some(format!("acknowledged writes lost:\n{self}"));
        }
        (!self.passed()).then(|| format!("the run failed:\n{self}"))
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\n== shoal torture: seed {}, {} node(s), rf {}, {} storage, {} s, {} clients ==",
            self.seed, self.nodes, self.rf, self.storage, self.duration_s, self.clients
        )?;
        writeln!(
            f,
            "{:<11} {:>8} {:>9} {:>16}",
            "fault", "planned", "injected", "converge med/max"
        )?;
        for (kind, planned) in &self.faults_planned {
            let injected = self.faults_injected.get(kind).copied().unwrap_or(0);
            let conv = match self.converge.get(kind) {
                Some(v) if !v.is_empty() => {
                    let mut v = v.clone();
                    v.sort();
                    format!(
                        "{:.2}/{:.2} s",
                        v[v.len() / 2].as_secs_f64(),
                        v[v.len() - 1].as_secs_f64()
                    )
                }
                _ => "-".to_string(),
            };
            writeln!(
                f,
                "{:<11} {planned:>8} {injected:>9} {conv:>16}",
                kind.to_string()
            )?;
        }
        writeln!(
            f,
            "{:<11} {:>8} {:>9}   (skipped: {})",
            "total",
            self.faults_planned.values().sum::<usize>(),
            self.faults_injected_total(),
            self.faults_skipped
        )?;
        writeln!(
            f,
            "\n{:<11} {:>8} {:>8} {:>8}",
            "operation", "ok", "failed", "unknown"
        )?;
        for (kind, m) in &self.ops {
            let g = |o: Outcome| m.get(o.name()).copied().unwrap_or(0);
            writeln!(
                f,
                "{kind:<11} {:>8} {:>8} {:>8}",
                g(Outcome::Ok),
                g(Outcome::Failed),
                g(Outcome::Unknown)
            )?;
        }
        writeln!(
            f,
            "{:<11} {:>8} {:>8} {:>8}\n",
            "total",
            self.ops_with(Outcome::Ok),
            self.ops_with(Outcome::Failed),
            self.ops_with(Outcome::Unknown)
        )?;
        match &self.check {
            Some(c) => {
                writeln!(
                    f,
                    "acknowledged writes lost: {}  (checked {} keys, {} acknowledged operations)",
                    c.lost_acked(),
                    c.keys_checked,
                    c.acked_writes_checked
                )?;
                if c.violations.is_empty() {
                    writeln!(f, "violations: none")?;
                } else {
                    writeln!(f, "violations by kind: {:?}", c.by_kind())?;
                    for v in c.violations.iter().take(20) {
                        writeln!(f, "  {} {}: {}", v.kind, v.key, v.detail)?;
                    }
                    if c.violations.len() > 20 {
                        writeln!(
                            f,
                            "  ... {} more in the saved report",
                            c.violations.len() - 20
                        )?;
                    }
                }
            }
            None => writeln!(f, "acknowledged writes lost: not checked")?,
        }
        match &self.replicas {
            Some(r) if r.agrees() => writeln!(
                f,
                "replicas agree: yes ({} partitions, {} copies, {} per partition, {} extra not yet dropped, {} records)",
                r.partitions, r.copies, r.expected_copies, r.extras, r.records
            )?,
            Some(r) => {
                writeln!(
                    f,
                    "replicas agree: NO, partitions by problem {:?} ({} expected copies each)",
                    r.problems_by_kind, r.expected_copies
                )?;
                for p in r.problems.iter().take(20) {
                    writeln!(f, "  {p}")?;
                }
            }
            None => writeln!(f, "replicas agree: not checked")?,
        }
        match self.converged_after_last_heal {
            Some(d) => writeln!(f, "time to converge after the last fault: {}", secs(d))?,
            None => writeln!(f, "time to converge after the last fault: not measured")?,
        }
        for e in &self.fault_errors {
            writeln!(f, "fault error: {e}")?;
        }
        for e in &self.harness_errors {
            writeln!(f, "harness error: {e}")?;
        }
        writeln!(f, "run time: {}", secs(self.total))?;
        write!(f, "result: {}", if self.passed() { "PASS" } else { "FAIL" })
    }
}

/// Violations listed in `report.json` (all of them are in `violations.jsonl`).
const REPORT_VIOLATIONS_MAX: usize = 100;

/// Writes the history (JSONL), the fault plan and log (JSONL), the violations (JSONL), the
/// report (JSON) and the replay command under `options.out/seed-<seed>/`; returns that
/// directory.
pub fn save(
    options: &Options,
    history: &History,
    log: &FaultLog,
    report: &Report,
) -> Result<PathBuf> {
    let dir = options.out.join(format!("seed-{}", options.seed()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    history
        .write_jsonl(&dir.join("history.jsonl"))
        .context("writing history.jsonl")?;
    let mut faults = std::io::BufWriter::new(std::fs::File::create(dir.join("faults.jsonl"))?);
    for p in &log.plan {
        serde_json::to_writer(&mut faults, &serde_json::json!({ "planned": p }))?;
        faults.write_all(b"\n")?;
    }
    for e in &log.events {
        serde_json::to_writer(&mut faults, e)?;
        faults.write_all(b"\n")?;
    }
    faults.flush()?;
    // Every violation on its own line; the report keeps the first ones and the counts.
    let mut report = report.clone();
    if let Some(check) = report.check.as_mut() {
        let mut w = std::io::BufWriter::new(std::fs::File::create(dir.join("violations.jsonl"))?);
        for v in &check.violations {
            serde_json::to_writer(&mut w, v)?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
        check.violations.truncate(REPORT_VIOLATIONS_MAX);
    }
    let summary = serde_json::json!({
        "seed": options.seed(),
        "replay": options.replay_command(),
        "violations_by_kind": report.check.as_ref().map(CheckResult::by_kind),
        "report": report,
    });
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    std::fs::write(
        dir.join("replay.txt"),
        format!("{}\n", options.replay_command()),
    )?;
    Ok(dir)
}
