//! The full-disk torture gate: one `shoald` whose data directory is its own 256 MiB tmpfs, a
//! device namespace in **buffered** mode (`commit-to-device false`, the default, where a write is
//! acknowledged from the write buffer), eight clients, and a fixed-seed nemesis that fills the
//! node's filesystem with a ballast file and holds it full for 3-6 s while the clients write,
//! then stops the node cleanly (SIGTERM) and restarts it on the still-full disk before deleting
//! the ballast; SIGTERMs and pauses in between. Every acknowledged write, increment,
//! read-modify-write and delete must be there afterwards.
//!
//! The bug it pins: the device file used to be created sparse, so on a full filesystem the
//! first flush into a never-written region failed with `ENOSPC` and poisoned the device; the
//! acknowledged records still in the write buffer were then lost at the restart. Device files
//! are now preallocated (`shoal_storage::device`).
//!
//! It needs root (it mounts the tmpfs; it prints a SKIP line without it) and the `shoald`
//! binary next to the test (`cargo build --bin shoald`) or `SHOALD_BIN`.

use shoal_torture::nemesis::FaultKind;
use shoal_torture::Options;

#[test]
fn a_full_disk_costs_no_acknowledged_write() {
    if let Some(why) = shoal_torture::disk::unavailable() {
        println!("SKIP full-disk torture: {why}");
        return;
    }
    if let Err(e) = shoal_testkit::shoald_path() {
        panic!("{e:#}");
    }
    let mut options = Options::with_seed(4);
    options.duration_s = 45;
    options.buffered = true;
    options.disk_size = Some("256M".into());
    options.device_size = "128M".into();
    options.faults = vec![FaultKind::FillDisk, FaultKind::Term, FaultKind::Pause];
    // This seed's plan: 4 fill-disk, 2 SIGTERMs, 2 pauses (`shoal-torture --seed 4
    // --duration 45 --faults fill-disk,term,pause --disk-size 256M --device-size 128M
    // --buffered --fault-gap-min-ms 1000 --fault-gap-max-ms 3000 --plan-only`).
    options.fault_gap_min_ms = 1000;
    options.fault_gap_max_ms = 3000;
    options.out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("torture-out");
    let report = shoal_torture::run(&options).expect("the torture run must be carried out");

    assert!(
        report
            .faults_injected
            .get(&FaultKind::FillDisk)
            .copied()
            .unwrap_or(0)
            >= 3,
        "too few fill-disk faults were injected: {:?}",
        report.faults_injected
    );
    assert!(
        report.fault_errors.is_empty(),
        "a fault went wrong (a node that would not stop cleanly or restart on the full disk): \
         {:?}",
        report.fault_errors
    );
    if let Some(why) = report.gate_failure(6, 1000) {
        panic!("{why}");
    }
}
