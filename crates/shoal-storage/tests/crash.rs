//! Crash consistency: random workloads of puts, deletes, flushes and defrags run on a
//! `SimDevice` that crashes at every sync point in turn (losing, or tearing, every write not
//! yet synced). After each crash the engine recovers and the checker demands that every
//! acknowledged write that the durability mode promised is present with its latest value (or
//! a later attempted one), and that no durably deleted record is back. Each workload ends with
//! a clean shutdown, so crashes inside the shutdown are covered and the run without a crash
//! must come back by fast restart with exactly the final state.

#![allow(clippy::unwrap_used)] // tests may panic on unexpected errors

mod support;

use proptest::prelude::*;
use shoal_storage::{CrashMode, DurabilityMode, RecoveryKind, SimDevice};
use std::collections::HashMap;
use support::{config, device_len, digest, Db};

const KEYS: u32 = 12;
const DEVICE_BLOCKS: u64 = 6;
const SNAPSHOT_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
enum Op {
    Put(u32, usize),
    Delete(u32),
    Flush,
    Defrag,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..KEYS, 0usize..900).prop_map(|(k, n)| Op::Put(k, n)),
        2 => (0..KEYS).prop_map(Op::Delete),
        1 => Just(Op::Flush),
        1 => Just(Op::Defrag),
    ]
}

/// One attempted write of a key: its value (None = delete) and whether it was acknowledged.
#[derive(Debug, Clone)]
struct Attempt {
    op: usize,
    value: Option<Vec<u8>>,
    acked: bool,
}

struct Outcome {
    dev: SimDevice,
    snap: SimDevice,
    history: HashMap<u32, Vec<Attempt>>,
    /// Acknowledged attempts with `op` below this are promised durable.
    durable_before: usize,
    clean: bool,
}

fn value(k: u32, op: usize, len: usize) -> Vec<u8> {
    let mut v = format!("{k}@{op}:").into_bytes();
    v.resize(len.max(v.len()), b'a' + (op % 26) as u8);
    v
}

fn run(mode: DurabilityMode, ops: &[Op], crash: Option<(u64, CrashMode)>) -> Outcome {
    let dev = SimDevice::new(device_len(DEVICE_BLOCKS));
    let snap = SimDevice::new(SNAPSHOT_BYTES);
    if let Some((n, m)) = crash {
        dev.crash_at_sync(n, m);
    }
    let mut cfg = config("crash");
    cfg.durability = mode;
    let mut out = Outcome {
        dev: dev.clone(),
        snap: snap.clone(),
        history: HashMap::new(),
        durable_before: 0,
        clean: false,
    };
    let Ok(mut db) = Db::open_sim(cfg, &dev, Some(&snap)) else {
        return out;
    };
    for (i, op) in ops.iter().enumerate() {
        if dev.has_crashed() {
            break;
        }
        match *op {
            Op::Put(k, len) => {
                let v = value(k, i, len);
                let acked = db.put(&digest(k), &v, i as u64 + 1).is_ok();
                out.history.entry(k).or_default().push(Attempt {
                    op: i,
                    value: Some(v),
                    acked,
                });
                if acked && mode == DurabilityMode::CommitToDevice {
                    out.durable_before = i + 1;
                }
            }
            Op::Delete(k) => {
                let r = db.delete(&digest(k), i as u64 + 1);
                if r.as_ref().is_ok_and(|deleted| !deleted) {
                    continue;
                }
                let acked = r.is_ok();
                out.history.entry(k).or_default().push(Attempt {
                    op: i,
                    value: None,
                    acked,
                });
                if acked && mode == DurabilityMode::CommitToDevice {
                    out.durable_before = i + 1;
                }
            }
            Op::Flush => {
                if db.engine.flush().is_ok() {
                    out.durable_before = i + 1;
                }
            }
            Op::Defrag => {
                let _ = db.defrag(4);
            }
        }
    }
    if !dev.has_crashed() && db.shutdown().is_ok() {
        out.durable_before = usize::MAX;
        out.clean = !dev.has_crashed();
    }
    out
}

fn check(mode: DurabilityMode, out: &Outcome, what: &str) -> Result<(), TestCaseError> {
    if !out.dev.has_crashed() {
        out.dev.crash(CrashMode::DropUnsynced);
    }
    let dev = out.dev.restarted();
    let snap = SimDevice::from_image(out.snap.durable_image());
    let mut cfg = config("crash");
    cfg.durability = mode;
    let mut db = Db::open_sim(cfg, &dev, Some(&snap))
        .map_err(|e| TestCaseError::fail(format!("{what}: recovery failed: {e}")))?;
    if out.clean {
        prop_assert_eq!(&db.recovery_kind, &RecoveryKind::FastRestart, "{}", what);
    }
    let contents = db.contents();
    for d in contents.keys() {
        prop_assert!(
            (0..KEYS).any(|k| digest(k) == *d),
            "{}: unknown digest recovered",
            what
        );
    }
    for k in 0..KEYS {
        let got = contents.get(&digest(k)).cloned();
        let attempts = out.history.get(&k).map_or(&[][..], Vec::as_slice);
        let durable = attempts
            .iter()
            .rposition(|a| a.acked && a.op < out.durable_before);
        let allowed: Vec<Option<Vec<u8>>> = match durable {
            Some(p) => attempts[p..].iter().map(|a| a.value.clone()).collect(),
            None => std::iter::once(None)
                .chain(attempts.iter().map(|a| a.value.clone()))
                .collect(),
        };
        if out.clean {
            let last = attempts
                .iter()
                .rev()
                .find(|a| a.acked)
                .and_then(|a| a.value.clone());
            prop_assert_eq!(&got, &last, "{}: key {} after a clean shutdown", what, k);
        }
        prop_assert!(
            allowed.contains(&got),
            "{}: key {} recovered as {:?}; allowed {:?} (durable attempt {:?})",
            what,
            k,
            got.as_ref()
                .map(|v| String::from_utf8_lossy(&v[..v.len().min(12)]).to_string()),
            allowed
                .iter()
                .map(|v| v
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(&v[..v.len().min(12)]).to_string()))
                .collect::<Vec<_>>(),
            durable
        );
    }
    Ok(())
}

fn crash_everywhere(
    mode: DurabilityMode,
    ops: &[Op],
    torn_seed: Option<u64>,
) -> Result<(), TestCaseError> {
    let full = run(mode, ops, None);
    check(mode, &full, "no crash")?;
    let syncs = full.dev.syncs();
    for n in 1..=syncs {
        let crash_mode = match torn_seed {
            Some(seed) => CrashMode::Torn { seed: seed ^ n },
            None => CrashMode::DropUnsynced,
        };
        let out = run(mode, ops, Some((n, crash_mode)));
        check(
            mode,
            &out,
            &format!("crash at sync {n} of {syncs} ({crash_mode:?})"),
        )?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn buffered_survives_a_crash_at_every_sync(ops in proptest::collection::vec(op(), 1..64), torn in proptest::option::of(any::<u64>())) {
        crash_everywhere(DurabilityMode::Buffered, &ops, torn)?;
    }

    #[test]
    fn commit_to_device_survives_a_crash_at_every_sync(ops in proptest::collection::vec(op(), 1..64), torn in proptest::option::of(any::<u64>())) {
        crash_everywhere(DurabilityMode::CommitToDevice, &ops, torn)?;
    }
}
