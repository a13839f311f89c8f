//! `shoal bench`: a closed-loop load generator. N keys, a value size, a read/update mix, C
//! tasks each with its own connection, for a duration or a number of operations; an optional
//! load phase first inserts every key. It reports throughput, latency percentiles per
//! operation type, the server's CPU time per operation and resident memory per record (read
//! from /proc when given the server's pid), and its own CPU per operation.
//!
//! This module owns the options, the phases and the per-task loop. It must never let one
//! target be measured differently from the other (both go through the same loop, timer and
//! histograms), never hide a failed operation (no retries; errors are counted and the first
//! is shown), and never send traffic anywhere but the one address it is given. Being closed
//! loop, it does not correct for coordinated omission: a stalled server also stalls the
//! requests that would have queued behind it, so tail latencies are lower bounds.

mod procfs;
mod report;
mod resp;
pub(crate) mod stats;
mod target;
mod workload;

use crate::common::ServerArgs;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use procfs::Proc;
use stats::OpStats;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use target::{Connector, ReadOutcome, Session};
use workload::{Op, Rng, ValueBytes};

/// Largest value the generator writes (Aerospike's default max-record-size is 1 MiB).
const VALUE_SIZE_MAX_BYTES: usize = 8 << 20;
/// Most tasks (and connections) one generator runs.
const CONCURRENCY_MAX: usize = 4096;
/// Measured phase length when neither --duration nor --ops is given.
const DURATION_DEFAULT_S: u64 = 30;
/// A phase in which every operation has failed for this long is stopped: the server is down
/// or refuses everything, and going on only spins.
const ALL_FAILED_STOP_AFTER: Duration = Duration::from_secs(2);
/// Pause after a failed operation, so a dead server is not hammered in a tight loop.
const ERROR_BACKOFF: Duration = Duration::from_millis(1);
/// Why a phase stopped when the user pressed Ctrl-C; the figures up to then are still good.
const INTERRUPTED: &str = "interrupted";
/// How often the progress line and the stop checks run.
const TICK: Duration = Duration::from_millis(200);

/// Which protocol the generator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetKind {
    /// The Aerospike wire protocol, through the official client (shoald or Aerospike).
    Aerospike,
    /// Redis: GET and SET of the same keys and values, one connection per task.
    Redis,
}

/// How the Aerospike side stores the value (Redis stores bytes either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValueType {
    Blob,
    String,
}

/// Options of `shoal bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The server, from the global `--host`/`--port` options (filled in by `main`).
    #[arg(skip)]
    pub server: ServerArgs,
    /// Namespace of the records (Aerospike target).
    #[arg(long, default_value = "test")]
    pub namespace: String,
    /// Set of the records; with --target redis, keys are `SET:N`.
    #[arg(long, default_value = "bench")]
    pub set: String,
    /// Number of distinct keys, 0..N; accepts 1_000_000, 1000k or 1M.
    #[arg(long, default_value = "1000000", value_parser = parse_count)]
    pub keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value = "100", value_parser = parse_count)]
    pub value_size: u64,
    /// Bin type of the value on the Aerospike side.
    #[arg(long, value_enum, default_value_t = ValueType::Blob)]
    pub value_type: ValueType,
    /// Percentage of reads in the measured phase; the rest are updates.
    #[arg(long, default_value_t = 95, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub reads: u8,
    /// Concurrent tasks, each with its own connection.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Length of the measured phase, in seconds (or with an s/m suffix); 0 skips it [default: 30].
    #[arg(long, value_parser = parse_seconds, conflicts_with = "ops")]
    pub duration: Option<u64>,
    /// Stop the measured phase after this many operations instead of after a duration.
    #[arg(long, value_parser = parse_count)]
    pub ops: Option<u64>,
    /// First insert every key once (reported as its own phase, with the insert rate).
    #[arg(long)]
    pub load: bool,
    /// Pid of the server process, to report its CPU time per operation and its resident
    /// memory (and bytes per record after --load) from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Protocol to speak.
    #[arg(long, value_enum, default_value_t = TargetKind::Aerospike)]
    pub target: TargetKind,
    /// Print the results as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seed of the key and operation choices (the same seed gives the same sequence).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Client timeout of one operation, in milliseconds (Aerospike target).
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u32,
}

impl BenchArgs {
    fn validate(&self) -> Result<()> {
        if self.keys == 0 || i64::try_from(self.keys).is_err() {
            bail!("--keys must be between 1 and {}", i64::MAX);
        }
        if self.value_size == 0 || self.value_size > VALUE_SIZE_MAX_BYTES as u64 {
            bail!("--value-size must be between 1 and {VALUE_SIZE_MAX_BYTES} bytes");
        }
        if self.concurrency == 0 || self.concurrency > CONCURRENCY_MAX {
            bail!("--concurrency must be between 1 and {CONCURRENCY_MAX}");
        }
        if !self.load && self.measured_phase().is_none() {
            bail!("nothing to do: no --load and a measured phase of length 0");
        }
        Ok(())
    }

    /// How the measured phase ends, or None when it is skipped.
    fn measured_phase(&self) -> Option<Stop> {
        match (self.ops, self.duration) {
            (Some(0), _) | (None, Some(0)) => None,
            (Some(n), _) => Some(Stop::Ops(n)),
            (None, Some(s)) => Some(Stop::After(Duration::from_secs(s))),
            (None, None) => Some(Stop::After(Duration::from_secs(DURATION_DEFAULT_S))),
        }
    }
}

/// Parses a count: digits with optional `_` or `,` separators and an optional k/M/G suffix
/// (powers of 1000).
pub fn parse_count(s: &str) -> Result<u64> {
    let t = s.trim();
    let (digits, mult) = match t.chars().last() {
        Some('k') | Some('K') => (&t[..t.len() - 1], 1_000),
        Some('m') | Some('M') => (&t[..t.len() - 1], 1_000_000),
        Some('g') | Some('G') => (&t[..t.len() - 1], 1_000_000_000),
        _ => (t, 1),
    };
    let clean: String = digits.chars().filter(|c| *c != '_' && *c != ',').collect();
    let n: u64 = clean
        .parse()
        .map_err(|_| anyhow!("`{s}` is not a count (e.g. 1000000, 1_000_000, 1000k, 1M)"))?;
    n.checked_mul(mult)
        .ok_or_else(|| anyhow!("`{s}` is too large"))
}

/// Parses seconds: a whole number with an optional `s` or `m` suffix.
pub fn parse_seconds(s: &str) -> Result<u64> {
    let t = s.trim();
    let (digits, mult) = match t.chars().last() {
        Some('s') => (&t[..t.len() - 1], 1),
        Some('m') => (&t[..t.len() - 1], 60),
        _ => (t, 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| anyhow!("`{s}` is not a duration in seconds (e.g. 30, 30s, 2m)"))?;
    n.checked_mul(mult)
        .ok_or_else(|| anyhow!("`{s}` is too large"))
}

/// Entry point of the subcommand: builds the runtime and runs the benchmark on it. The
/// runtime's worker count follows the CPUs the process may use, so `taskset -c 1 shoal bench`
/// runs one worker on core 1.
pub fn main(args: BenchArgs) -> Result<()> {
    args.validate()?;
    crate::common::runtime()?.block_on(run(args))
}

/// How a phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Load phase: when every key has been inserted.
    AllKeys,
    After(Duration),
    Ops(u64),
}

/// The two phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseKind {
    /// Insert every key once.
    Load,
    /// The read/update mix.
    Run,
}

/// What one phase measured.
pub struct PhaseResult {
    pub kind: PhaseKind,
    pub elapsed: Duration,
    pub read: OpStats,
    /// Updates (inserts in the load phase).
    pub write: OpStats,
    pub server_cpu: Option<Duration>,
    pub generator_cpu: Duration,
    /// CPU time the whole machine was busy during the phase (all processes, all cores).
    pub machine_busy: Duration,
    pub first_error: Option<String>,
    /// Why the phase ended before its planned end, if it did.
    pub stopped_early: Option<String>,
}

impl PhaseResult {
    pub fn attempted(&self) -> u64 {
        self.read.attempted() + self.write.attempted()
    }
    pub fn answered(&self) -> u64 {
        self.read.answered() + self.write.answered()
    }
    pub fn errors(&self) -> u64 {
        self.read.errors + self.write.errors
    }
}

/// Resident memory of the server at the points where it means something.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServerMemory {
    pub before: Option<u64>,
    pub after_load: Option<u64>,
    pub at_end: Option<u64>,
}

/// State the tasks of one phase share. Counters are only for the progress line and the stop
/// checks; the figures come from each task's own `OpStats`.
struct Shared {
    stop: AtomicBool,
    /// Operations the server answered.
    answered: AtomicU64,
    /// Operations that failed.
    errors: AtomicU64,
    /// Load: the next key to insert. Run with --ops: operations claimed so far.
    claimed: AtomicU64,
    first_error: Mutex<Option<String>>,
    stop_reason: Mutex<Option<String>>,
}

impl Shared {
    fn stop_because(&self, reason: String) {
        if let Ok(mut r) = self.stop_reason.lock() {
            r.get_or_insert(reason);
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What every task of a phase is told.
#[derive(Debug, Clone, Copy)]
struct Plan {
    kind: PhaseKind,
    stop: Stop,
    deadline: Option<Instant>,
    keys: u64,
    reads_pct: u8,
    value_size: usize,
    seed: u64,
}

async fn run(args: BenchArgs) -> Result<()> {
    let ticks_per_second = procfs::clock_ticks_per_second();
    let server = args.server_pid.map(Proc::Pid);
    if let Some(p) = server {
        procfs::cpu_time(p, ticks_per_second)
            .with_context(|| format!("--server-pid {}", args.server_pid.unwrap_or_default()))?;
    }
    let rss = || -> Result<Option<u64>> { server.map(procfs::resident_bytes).transpose() };

    let connector = Connector::connect(&args).await?;
    let mut sessions = Vec::with_capacity(args.concurrency);
    for i in 0..args.concurrency {
        sessions.push(
            connector
                .session()
                .await
                .with_context(|| format!("opening connection {i}"))?,
        );
    }

    let mut memory = ServerMemory {
        before: rss()?,
        ..ServerMemory::default()
    };
    let mut phases = Vec::new();
    let value_size = usize::try_from(args.value_size).context("--value-size")?;
    let plan = |kind, stop| Plan {
        kind,
        stop,
        deadline: None,
        keys: args.keys,
        reads_pct: args.reads,
        value_size,
        seed: args.seed,
    };
    let mut go_on = true;
    if args.load {
        let (s, result) = run_phase(
            sessions,
            plan(PhaseKind::Load, Stop::AllKeys),
            server,
            ticks_per_second,
        )
        .await?;
        sessions = s;
        memory.after_load = rss()?;
        go_on = result.stopped_early.is_none();
        phases.push(result);
    }
    if let (true, Some(stop)) = (go_on, args.measured_phase()) {
        let (s, result) = run_phase(
            sessions,
            plan(PhaseKind::Run, stop),
            server,
            ticks_per_second,
        )
        .await?;
        sessions = s;
        phases.push(result);
    }
    memory.at_end = rss()?;
    drop(sessions);
    if let Err(e) = connector.close().await {
        eprintln!("shoal bench: warning: {e:#}");
    }

    let report = report::Report {
        args: &args,
        phases: &phases,
        memory,
    };
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    for p in &phases {
        if let Some(reason) = p.stopped_early.as_deref().filter(|r| *r != INTERRUPTED) {
            bail!(
                "{} phase stopped early: {reason}",
                report::phase_name(p.kind)
            );
        }
        if p.answered() == 0 {
            bail!(
                "{} phase: no operation succeeded{}",
                report::phase_name(p.kind),
                p.first_error
                    .as_deref()
                    .map(|e| format!("; first error: {e}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Runs one phase on every session and gives the sessions back with the merged figures.
async fn run_phase(
    sessions: Vec<Session>,
    mut plan: Plan,
    server: Option<Proc>,
    ticks_per_second: u64,
) -> Result<(Vec<Session>, PhaseResult)> {
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        answered: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        claimed: AtomicU64::new(0),
        first_error: Mutex::new(None),
        stop_reason: Mutex::new(None),
    });
    let progress = progress_bar(&plan);

    let server_cpu_before = server
        .map(|p| procfs::cpu_time(p, ticks_per_second))
        .transpose()?;
    let own_cpu_before = procfs::cpu_time(Proc::Myself, ticks_per_second)?;
    let machine_before = procfs::machine_busy_time(ticks_per_second)?;
    let started = Instant::now();
    if let Stop::After(d) = plan.stop {
        plan.deadline = Some(started + d);
    }
    let tasks: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(i, session)| tokio::spawn(run_task(session, shared.clone(), plan, i as u64)))
        .collect();
    let ticker = tokio::spawn(tick(shared.clone(), progress.clone(), plan, started));

    let mut sessions = Vec::with_capacity(tasks.len());
    let mut read = OpStats::new()?;
    let mut write = OpStats::new()?;
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok((session, Ok((r, w)))) => {
                sessions.push(session);
                read.merge(&r)?;
                write.merge(&w)?;
            }
            Ok((_, Err(e))) => failure = Some(e),
            Err(e) => failure = Some(anyhow!("a benchmark task died: {e}")),
        }
    }
    let elapsed = started.elapsed();
    let server_cpu_after = server
        .map(|p| procfs::cpu_time(p, ticks_per_second))
        .transpose()?;
    let own_cpu_after = procfs::cpu_time(Proc::Myself, ticks_per_second)?;
    let machine_after = procfs::machine_busy_time(ticks_per_second)?;
    ticker.abort();
    progress.finish_and_clear();
    if let Some(e) = failure {
        return Err(e);
    }

    let first_error = shared.first_error.lock().ok().and_then(|e| e.clone());
    let stopped_early = shared.stop_reason.lock().ok().and_then(|r| r.clone());
    let server_cpu = match (server_cpu_before, server_cpu_after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b)),
        _ => None,
    };
    let result = PhaseResult {
        kind: plan.kind,
        elapsed,
        read,
        write,
        server_cpu,
        generator_cpu: own_cpu_after.saturating_sub(own_cpu_before),
        machine_busy: machine_after.saturating_sub(machine_before),
        first_error,
        stopped_early,
    };
    Ok((sessions, result))
}

/// One task: operations back to back on its own session until the phase ends.
async fn run_task(
    mut session: Session,
    shared: Arc<Shared>,
    plan: Plan,
    task: u64,
) -> (Session, Result<(OpStats, OpStats)>) {
    let (mut read, mut write) = match (OpStats::new(), OpStats::new()) {
        (Ok(r), Ok(w)) => (r, w),
        (Err(e), _) | (_, Err(e)) => return (session, Err(e)),
    };
    let mut rng = Rng::new(plan.seed, task);
    let mut value = ValueBytes::new(plan.value_size, task);
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let op = match plan.stop {
            Stop::AllKeys => {
                let key = shared.claimed.fetch_add(1, Ordering::Relaxed);
                if key >= plan.keys {
                    break;
                }
                Op::Update(key)
            }
            Stop::After(_) => {
                if plan.deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                workload::next_op(&mut rng, plan.keys, plan.reads_pct)
            }
            Stop::Ops(n) => {
                if shared.claimed.fetch_add(1, Ordering::Relaxed) >= n {
                    break;
                }
                workload::next_op(&mut rng, plan.keys, plan.reads_pct)
            }
        };
        let start = Instant::now();
        let (stats, result) = match op {
            Op::Read(key) => (&mut read, session.read(key).await),
            Op::Update(key) => (
                &mut write,
                session
                    .write(key, value.next())
                    .await
                    .map(|()| ReadOutcome::Found),
            ),
        };
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        match result {
            Ok(outcome) => {
                shared.answered.fetch_add(1, Ordering::Relaxed);
                stats.record(ns);
                if outcome == ReadOutcome::Missing {
                    stats.misses += 1;
                }
            }
            Err(e) => {
                stats.errors += 1;
                shared.errors.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = shared.first_error.lock() {
                    first.get_or_insert_with(|| format!("{e:#}"));
                }
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
    (session, Ok((read, write)))
}

fn progress_bar(plan: &Plan) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (len, template) = match plan.stop {
        Stop::AllKeys => (plan.keys, "load {bar:30} {pos}/{len} keys  {msg}"),
        Stop::Ops(n) => (n, "run  {bar:30} {pos}/{len} ops  {msg}"),
        Stop::After(d) => (d.as_secs(), "run  {bar:30} {pos}/{len} s  {msg}"),
    };
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(len).with_style(style)
}

/// Updates the progress line and stops the phase when every operation fails or on Ctrl-C.
/// Aborted by `run_phase` once the tasks are done.
async fn tick(shared: Arc<Shared>, progress: ProgressBar, plan: Plan, started: Instant) {
    let mut interval = tokio::time::interval(TICK);
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let mut last = (Instant::now(), 0u64, 0u64);
    let mut failing_since: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = &mut ctrl_c => {
                shared.stop_because(INTERRUPTED.to_string());
                continue;
            }
        }
        let answered = shared.answered.load(Ordering::Relaxed);
        let errors = shared.errors.load(Ordering::Relaxed);
        let done = answered + errors;
        let now = Instant::now();
        let (new_answered, new_errors) = (answered - last.1, errors - last.2);
        if new_answered == 0 && new_errors > 0 {
            let since = *failing_since.get_or_insert(last.0);
            if now.duration_since(since) >= ALL_FAILED_STOP_AFTER {
                shared.stop_because(format!(
                    "every operation failed for {} s",
                    ALL_FAILED_STOP_AFTER.as_secs()
                ));
            }
        } else if new_answered > 0 {
            failing_since = None;
        }
        let new_done = new_answered + new_errors;
        let rate = new_done as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
        last = (now, answered, errors);
        progress.set_position(match plan.stop {
            Stop::After(_) => started.elapsed().as_secs(),
            Stop::AllKeys | Stop::Ops(_) => done,
        });
        progress.set_message(format!(
            "{} ops/s  errors {}",
            stats::format_count(rate as u64),
            stats::format_count(errors)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        let mut v = vec!["bench"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).map(|c| BenchArgs {
            server: c.server,
            ..c.bench
        })
    }

    #[test]
    fn defaults_are_the_reference_workload() {
        let a = parse(&[]).expect("defaults parse");
        assert_eq!(a.keys, 1_000_000);
        assert_eq!(a.value_size, 100);
        assert_eq!(a.reads, 95);
        assert_eq!(a.concurrency, 32);
        assert_eq!(a.namespace, "test");
        assert_eq!(a.set, "bench");
        assert_eq!(a.target, TargetKind::Aerospike);
        assert_eq!(
            a.measured_phase(),
            Some(Stop::After(Duration::from_secs(30)))
        );
        a.validate().expect("defaults are valid");
    }

    #[test]
    fn options_parse_and_conflict() {
        let a = parse(&[
            "--keys", "10k", "--reads", "50", "--ops", "1_000", "--target", "redis", "--load",
            "--port", "6400",
        ])
        .expect("parses");
        assert_eq!(a.keys, 10_000);
        assert_eq!(a.reads, 50);
        assert_eq!(a.measured_phase(), Some(Stop::Ops(1000)));
        assert_eq!(a.target, TargetKind::Redis);
        assert_eq!(a.server.port, 6400);
        assert!(a.load);
        assert!(parse(&["--reads", "101"]).is_err());
        assert!(parse(&["--duration", "5", "--ops", "10"]).is_err());
        assert!(parse(&["--keys", "lots"]).is_err());
        // A load alone is fine; no load and no measured phase is nothing to do.
        parse(&["--load", "--duration", "0"])
            .expect("parses")
            .validate()
            .expect("load only is valid");
        assert!(parse(&["--duration", "0"])
            .expect("parses")
            .validate()
            .is_err());
        assert!(parse(&["--concurrency", "0"])
            .expect("parses")
            .validate()
            .is_err());
        assert!(parse(&["--value-size", "0"])
            .expect("parses")
            .validate()
            .is_err());
    }

    #[test]
    fn counts_and_seconds_accept_readable_forms() {
        assert_eq!(parse_count("1_000_000").expect("ok"), 1_000_000);
        assert_eq!(parse_count("1,000").expect("ok"), 1_000);
        assert_eq!(parse_count("1M").expect("ok"), 1_000_000);
        assert_eq!(parse_count("250k").expect("ok"), 250_000);
        assert!(parse_count("").is_err());
        assert!(parse_count("99999999999999999999G").is_err());
        assert_eq!(parse_seconds("30").expect("ok"), 30);
        assert_eq!(parse_seconds("30s").expect("ok"), 30);
        assert_eq!(parse_seconds("2m").expect("ok"), 120);
        assert!(parse_seconds("soon").is_err());
    }
}
