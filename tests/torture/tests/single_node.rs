//! The torture gate: one `shoald` with a `commit-to-device` device namespace, eight clients,
//! and a fixed-seed nemesis that kills (`kill -9`), crash-restarts, pauses (SIGSTOP past the
//! heartbeat timeout) and cleanly stops (SIGTERM) the node for about a minute. Every
//! acknowledged write, increment, read-modify-write and delete must be there afterwards.
//!
//! It needs the `shoald` binary next to the test (`cargo build --bin shoald`, which
//! `scripts/gate` does before the tests) or `SHOALD_BIN`.

use shoal_torture::nemesis::FaultKind;
use shoal_torture::Options;

#[test]
fn single_node_commit_to_device_loses_no_acknowledged_write_under_faults() {
    if let Err(e) = shoal_testkit::shoald_path() {
        panic!("{e:#}");
    }
    let mut options = Options::with_seed(20_250_101);
    options.duration_s = 45;
    options.faults = vec![
        FaultKind::Kill,
        FaultKind::Restart,
        FaultKind::Pause,
        FaultKind::Term,
    ];
    // This seed's plan: 2 kills, 2 crash-restarts, 3 pauses, 3 SIGTERMs
    // (`shoal-torture --seed 20250101 --duration 45 --faults kill,restart,pause,term
    // --fault-gap-min-ms 1000 --fault-gap-max-ms 3000 --plan-only`).
    options.fault_gap_min_ms = 1000;
    options.fault_gap_max_ms = 3000;
    options.out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("torture-out");
    let report = shoal_torture::run(&options).expect("the torture run must be carried out");

    // The run must have done something worth checking, or a pass means nothing.
    for kind in &options.faults {
        assert!(
            report.faults_injected.get(kind).copied().unwrap_or(0) >= 1,
            "no {kind} fault was injected: {:?}",
            report.faults_injected
        );
    }
    if let Some(why) = report.gate_failure(8, 1000) {
        panic!("{why}");
    }
}
