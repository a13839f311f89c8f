//! The torture harness (issue #7): real `shoald` processes under a seeded nemesis, concurrent
//! clients using the official Aerospike Rust client, and a checker that nothing acknowledged is
//! lost.
//!
//! A run goes: start the cluster ([`cluster`]), wait until it is stable, run the workload
//! ([`workload`]) and the fault schedule ([`nemesis`]) side by side for `--duration`, heal every
//! fault, wait until the cluster is stable again, compare every partition's copies on every
//! node, read every key and check the history ([`checker`]), print the summary ([`report`]).
//! Every operation is kept in memory ([`history`]) and written as JSONL, with the seed and the
//! command that replays the run, when the check fails.
//!
//! What a seed fixes: the fault schedule (kinds, targets, start times, how long each lasts) and
//! each client's sequence of operation choices. What it does not fix: how the clients'
//! operations interleave with each other and with the faults (real processes, real time), so a
//! replay reruns the same schedule and workload mix, not the same interleaving.
//!
//! Aerospike counterpart: none in the server; this plays the role of Jepsen's Aerospike tests.

pub mod checker;
pub mod cluster;
pub mod disk;
pub mod docker;
pub mod history;
pub mod nemesis;
pub mod netns;
pub mod options;
pub mod report;
pub mod workload;

pub use options::Options;
pub use report::Report;

use anyhow::{bail, Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs one torture run and returns its report, passed or not (see [`Report::passed`]); a run
/// that fails its check, or whose cluster does not converge after the faults, saves its history
/// under `options.out`, keeps the nodes' directories and prints the replay command. An error
/// means the run could not be carried out at all (a node that does not start, a client that
/// cannot connect).
pub fn run(options: &Options) -> Result<Report> {
    let mut options = options.clone();
    options.resolve_seed();
    let options = &options;
    let plan_settings = options.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.runtime_threads())
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let started = Instant::now();
    let cluster = cluster::Cluster::start(&options.cluster_settings())?;
    println!(
        "torture: seed {}; {} node(s), rf {}, {} storage, cluster-size-min {}{}; work dir {}",
        options.seed(),
        options.nodes,
        options.rf(),
        options.storage,
        options.cluster_size_min,
        match (options.netns, cluster.docker_run_name()) {
            (true, _) => ", each node in its own network namespace".to_string(),
            (_, Some(run)) => format!(
                ", each node a {} container (names, volumes and network {run}-*)",
                options.docker_image
            ),
            _ => String::new(),
        },
        cluster.work_dir().display()
    );
    cluster
        .wait_stable(Duration::from_secs(options.converge_timeout_s))
        .context("the cluster did not become stable before the run")?;

    let plan = nemesis::plan(options.seed(), &plan_settings);
    let max_down = plan_settings.max_down;
    let hosts = cluster.seed_hosts();
    let monitor = cluster::StabilityMonitor::start(cluster.addr_book());
    let stop = Arc::new(AtomicBool::new(false));
    let run_start = Instant::now();

    let nemesis_stop = stop.clone();
    let nemesis_thread = std::thread::Builder::new()
        .name("nemesis".into())
        .spawn(move || {
            let mut cluster = cluster;
            let log = nemesis::execute(&mut cluster, &plan, max_down, run_start, &nemesis_stop);
            (cluster, log)
        })
        .context("starting the nemesis thread")?;

    let workload_settings = options.workload_settings();
    let workload_result = runtime.block_on(workload::run(
        &hosts,
        &workload_settings,
        run_start,
        Duration::from_secs(options.duration_s),
    ));
    stop.store(true, Ordering::SeqCst);
    let (mut cluster, fault_log) = match nemesis_thread.join() {
        Ok(pair) => pair,
        Err(_) => bail!("the nemesis thread panicked"),
    };
    let history = match workload_result {
        Ok(h) => h,
        Err(e) => {
            return Err(e.context("the workload could not run"));
        }
    };

    // Heal everything, wait until the cluster is stable, then read and check.
    let (healed, heal_errors) = cluster.heal_all();
    let fault_log = fault_log.with_final_heal(Instant::now(), run_start, healed, heal_errors);
    let converge = cluster.wait_stable(Duration::from_secs(options.converge_timeout_s));
    // One more probe period so the monitor has seen what wait_stable saw.
    std::thread::sleep(Duration::from_millis(300));
    let samples = monitor.stop();
    let mut report = Report::new(options, &history, &fault_log);
    report.converge_after_faults(&fault_log, &samples);
    if let Err(e) = converge {
        report.harness_errors.push(format!("{e:#}"));
    }
    if report.harness_errors.is_empty() {
        match checker::check_replicas(&cluster.service_addrs(), usize::from(options.rf())) {
            Ok(r) => report.replicas = Some(r),
            Err(e) => report.harness_errors.push(format!("replica check: {e:#}")),
        }
        let reads = runtime.block_on(checker::read_final_state(
            &cluster.seed_hosts(),
            &history,
            &options.workload_settings(),
        ));
        match reads {
            Ok(state) => report.check = Some(checker::check(&history, &state)),
            Err(e) => report.harness_errors.push(format!("final reads: {e:#}")),
        }
    }
    report.total = started.elapsed();
    println!("{report}");
    if report.passed() {
        if options.save {
            report::save(options, &history, &fault_log, &report)?;
        }
        cluster.remove_work_dir();
    } else {
        cluster.keep_disk_contents();
        let dir = report::save(options, &history, &fault_log, &report)?;
        cluster.save_logs(&dir);
        println!(
            "torture: FAILED; history, faults and seed saved in {}",
            dir.display()
        );
        match cluster.docker_run_name() {
            // The containers and volumes go when the cluster drops: the logs are what is kept.
            Some(run) => println!(
                "torture: docker mode: containers, volumes and network {run}-* are removed; \
                 their logs are in {}",
                dir.display()
            ),
            None => println!(
                "torture: node data kept in {}",
                cluster.work_dir().display()
            ),
        }
        println!("torture: replay with: {}", options.replay_command());
    }
    drop(cluster);
    drop(runtime);
    Ok(report)
}
