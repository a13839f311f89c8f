//! The cluster torture gate: three `shoald` processes with an in-memory namespace and
//! replication-factor 2, eight clients, and a fixed-seed nemesis that kills (`kill -9`),
//! crash-restarts (memory lost), restarts with an empty data directory, pauses (SIGSTOP past
//! the heartbeat timeout) and cleanly stops (SIGTERM) one node at a time, each fault waiting
//! for the previous one's migrations to finish. With at most RF-1 copies missing at once,
//! every acknowledged write, increment, read-modify-write and delete must be there afterwards.
//!
//! It needs the `shoald` binary next to the test (`cargo build --bin shoald`) or `SHOALD_BIN`.

use shoal_torture::cluster::Storage;
use shoal_torture::nemesis::FaultKind;
use shoal_torture::Options;

#[test]
fn three_nodes_rf2_lose_no_acknowledged_write_under_faults() {
    if let Err(e) = shoal_testkit::shoald_path() {
        panic!("{e:#}");
    }
    let mut options = Options::with_seed(3);
    options.duration_s = 60;
    options.nodes = 3;
    options.rf = Some(2);
    options.storage = Storage::Memory;
    options.faults = vec![
        FaultKind::Kill,
        FaultKind::Restart,
        FaultKind::Wipe,
        FaultKind::Pause,
        FaultKind::Term,
    ];
    options.out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("torture-cluster-out");
    let report = shoal_torture::run(&options).expect("the torture run must be carried out");
    if let Some(why) = report.gate_failure(6, 1000) {
        panic!("{why}");
    }
}
