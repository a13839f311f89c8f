//! The partition torture gate: three `shoald` processes, each in its own network namespace
//! with its own address, `cluster-size-min 2`, an in-memory namespace with replication-factor
//! 2, eight clients in the root namespace (they still reach an isolated node), and a fixed-seed
//! nemesis that mixes network partitions (one node cut off from the other two for 2-6 s, past
//! the heartbeat timeout) with kills, crash-restarts, wipes, pauses and SIGTERMs, one node at a
//! time. The isolated node may not form a cluster of its own, so it must acknowledge nothing
//! alone: every acknowledged write, increment, read-modify-write and delete must be there
//! afterwards.
//!
//! It needs root, `ip` and `iptables` (it prints a SKIP line without them) and the `shoald`
//! binary next to the test (`cargo build --bin shoald`) or `SHOALD_BIN`.

use shoal_torture::cluster::Storage;
use shoal_torture::nemesis::FaultKind;
use shoal_torture::Options;

#[test]
fn a_partitioned_minority_acknowledges_nothing_that_is_lost() {
    if let Some(why) = shoal_torture::netns::unavailable() {
        println!("SKIP partition torture: {why}");
        return;
    }
    if let Err(e) = shoal_testkit::shoald_path() {
        panic!("{e:#}");
    }
    let mut options = Options::with_seed(7);
    options.duration_s = 60;
    options.nodes = 3;
    options.rf = Some(2);
    options.storage = Storage::Memory;
    options.netns = true;
    options.cluster_size_min = 2;
    // The planner draws a kind uniformly from this list: `partition` twice makes it a third
    // of the faults instead of a sixth.
    options.faults = vec![
        FaultKind::Partition,
        FaultKind::Partition,
        FaultKind::Kill,
        FaultKind::Restart,
        FaultKind::Wipe,
        FaultKind::Pause,
        FaultKind::Term,
    ];
    options.out =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("torture-partition-out");
    let report = shoal_torture::run(&options).expect("the torture run must be carried out");
    let partitions = report
        .faults_injected
        .get(&FaultKind::Partition)
        .copied()
        .unwrap_or(0);
    assert!(
        partitions >= 2,
        "too few partitions injected: {:?}",
        report.faults_injected
    );
    if let Some(why) = report.gate_failure(6, 1000) {
        panic!("{why}");
    }
}
