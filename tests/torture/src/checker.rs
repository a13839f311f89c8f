//! The checker: after every fault is healed and the cluster is stable, reads every key the
//! workload touched with a fresh client ([`read_final_state`]) and holds the history against it
//! ([`check`]).
//!
//! Rules, per key space:
//! - unique keys: an acknowledged write is readable with its value and payload unless an
//!   acknowledged delete followed; an acknowledged delete's key does not come back; a definitely
//!   failed write is absent; a delete that found nothing means its acknowledged write was lost
//!   before it;
//! - counters: `acked_sum <= value <= acked_sum + unknown_sum` (increments are positive);
//! - read-modify-write strings: the token of every acknowledged write sits exactly at the
//!   position its read saw as the end (the generation check makes the write "read + token"),
//!   so every acknowledged token is present, in order; a definitely failed token is absent; an
//!   unknown one is absent or in its place; no token appears twice or comes from nowhere.
//!
//! "Acknowledged writes lost" counts lost unique writes (including those found missing by a
//! delete), lost read-modify-write tokens, resurrected deletes and counters below their
//! acknowledged sum.
//!
//! Replicas agree ([`check_replicas`]): right after the final stable wait, every node's
//! `partition-checksums` is fetched (between two identical `cluster-stable` answers, so no
//! view change happened in between) and compared with `shoal_testkit::replicas::compare`:
//! each partition must have exactly min(rf, nodes) complete owner copies, one master, all
//! with the same record count and checksum.

use crate::cluster::{is_stable, stability_answers, NAMESPACE};
use crate::history::{payload, Action, History, Op, Outcome};
use crate::workload::{self, tokens, WorkloadSettings};
use aerospike::{Bins, ReadPolicy, ResultCode, Value};
use anyhow::{bail, Result};
use serde::Serialize;
use shoal_testkit::replicas::{checksums_at, compare, PartitionCopy};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A record as read at the end: its bins, or `None` when it does not exist.
pub type FinalRecord = Option<BTreeMap<String, Value>>;

/// Every key's final state, and the keys that could not be read.
#[derive(Debug, Default)]
pub struct FinalState {
    pub records: HashMap<String, FinalRecord>,
    pub unreadable: Vec<(String, String)>,
}

/// Attempts per key: a read that fails (not "not found") is retried, then reported.
const READ_ATTEMPTS: usize = 10;
/// Concurrent readers.
const READERS: usize = 16;

/// Reads every key in `history` with a fresh client.
pub async fn read_final_state(
    hosts: &str,
    history: &History,
    settings: &WorkloadSettings,
) -> Result<FinalState> {
    let names: BTreeSet<&str> = history.ops.iter().map(|o| key_of(&o.action)).collect();
    let queue: Arc<Mutex<Vec<String>>> =
        Arc::new(Mutex::new(names.into_iter().map(str::to_string).collect()));
    let client = Arc::new(workload::connect(hosts).await?);
    let mut policy = ReadPolicy::default();
    policy.base_policy.total_timeout = settings.op_timeout_ms.max(1000) * 2;
    let mut tasks = Vec::new();
    for _ in 0..READERS {
        let (client, queue, policy) = (client.clone(), queue.clone(), policy.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = FinalState::default();
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop());
                let Some(name) = next else { break };
                let key = match workload::key(&name) {
                    Ok(k) => k,
                    Err(e) => {
                        out.unreadable.push((name, format!("{e:#}")));
                        continue;
                    }
                };
                let mut last_error = String::new();
                let mut read = None;
                for _ in 0..READ_ATTEMPTS {
                    match client.get(&policy, &key, Bins::All).await {
                        Ok(rec) => {
                            read = Some(Some(rec.bins.into_iter().collect()));
                            break;
                        }
                        Err(e) if e.server_result_code() == Some(ResultCode::KeyNotFoundError) => {
                            read = Some(None);
                            break;
                        }
                        Err(e) => {
                            last_error = e.to_string();
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
                match read {
                    Some(r) => {
                        out.records.insert(name, r);
                    }
                    None => out.unreadable.push((name, last_error)),
                }
            }
            out
        }));
    }
    let mut state = FinalState::default();
    for t in tasks {
        let part = t.await?;
        state.records.extend(part.records);
        state.unreadable.extend(part.unreadable);
    }
    let _ = client.close().await;
    Ok(state)
}

/// What the replica comparison found (see the module docs).
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReplicaCheck {
    /// Owner copies every partition must have: min(rf, nodes).
    pub expected_copies: usize,
    /// Partitions with at least one complete copy, and the copies compared.
    pub partitions: usize,
    pub copies: usize,
    /// Complete copies on nodes that no longer own them, not yet dropped (compared too).
    pub extras: usize,
    /// Records in the master copies: the namespace's live records.
    pub records: u64,
    /// Partitions breaking the rule, by kind (`disagree`, `copies`, `masters`).
    pub problems_by_kind: BTreeMap<&'static str, usize>,
    /// The first problems, each with its nodes (service ports), roles, counts and checksums.
    pub problems: Vec<String>,
}

impl ReplicaCheck {
    /// True when every partition has its copies and they agree.
    pub fn agrees(&self) -> bool {
        self.problems_by_kind.is_empty()
    }
}

/// Problems listed in full in the report (all are counted).
const REPLICA_PROBLEMS_LISTED: usize = 50;
/// Fetches retried when the cluster changed while the checksums were being fetched.
const REPLICA_ATTEMPTS: usize = 5;

/// Fetches every node's partition checksums and compares the copies. An error means the
/// comparison could not be made (a node not answering, the cluster never holding still).
pub fn check_replicas(ports: &[std::net::SocketAddr], rf: usize) -> Result<ReplicaCheck> {
    let expected = rf.min(ports.len());
    let mut last = String::new();
    for _ in 0..REPLICA_ATTEMPTS {
        let before = stability_answers(ports);
        let mut nodes: Vec<(String, Vec<PartitionCopy>)> = Vec::with_capacity(ports.len());
        for p in ports {
            nodes.push((format!("node {p}"), checksums_at(*p, NAMESPACE)?));
        }
        let after = stability_answers(ports);
        if !is_stable(&before) || before != after {
            // The view changed (or was not stable) while fetching: copies from two views
            // cannot be compared.
            last = format!("stability before {before:?}, after {after:?}");
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        let a = compare(&nodes, Some(expected));
        let mut by_kind = BTreeMap::new();
        for p in &a.problems {
            *by_kind.entry(p.kind).or_insert(0) += 1;
        }
        return Ok(ReplicaCheck {
            expected_copies: expected,
            partitions: a.partitions,
            copies: a.copies,
            extras: a.extras,
            records: a.master_records,
            problems_by_kind: by_kind,
            problems: a
                .problems
                .iter()
                .take(REPLICA_PROBLEMS_LISTED)
                .map(ToString::to_string)
                .collect(),
        });
    }
    bail!("the cluster did not hold still while partition checksums were fetched: {last}")
}

fn key_of(a: &Action) -> &str {
    match a {
        Action::Write { key, .. }
        | Action::Add { key, .. }
        | Action::Rmw { key, .. }
        | Action::Delete { key, .. } => key,
    }
}

/// One broken promise.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    /// e.g. `lost-write`, `resurrected`, `counter-below-acked`.
    pub kind: &'static str,
    pub key: String,
    pub detail: String,
    /// Whether it means an acknowledged write was lost.
    pub lost_ack: bool,
}

/// What the checker found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CheckResult {
    pub violations: Vec<Violation>,
    pub keys_checked: usize,
    pub acked_writes_checked: usize,
}

impl CheckResult {
    /// Acknowledged writes lost (see the module comment).
    pub fn lost_acked(&self) -> usize {
        self.violations.iter().filter(|v| v.lost_ack).count()
    }

    /// Violations by kind.
    pub fn by_kind(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for v in &self.violations {
            *m.entry(v.kind).or_insert(0) += 1;
        }
        m
    }

    fn add(&mut self, kind: &'static str, key: &str, detail: String, lost_ack: bool) {
        self.violations.push(Violation {
            kind,
            key: key.to_string(),
            detail,
            lost_ack,
        });
    }
}

/// Holds the history against the final state.
pub fn check(history: &History, state: &FinalState) -> CheckResult {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in &history.ops {
        by_key.entry(key_of(&op.action)).or_default().push(op);
    }
    let mut result = CheckResult::default();
    let unreadable: HashMap<&str, &str> = state
        .unreadable
        .iter()
        .map(|(k, e)| (k.as_str(), e.as_str()))
        .collect();
    for (key, ops) in &by_key {
        if let Some(err) = unreadable.get(key) {
            let acked = ops.iter().any(|o| o.outcome == Outcome::Ok);
            result.add("unreadable", key, (*err).to_string(), acked);
            continue;
        }
        let Some(record) = state.records.get(*key) else {
            result.add("not-read", key, "the final read skipped it".into(), false);
            continue;
        };
        result.keys_checked += 1;
        result.acked_writes_checked += ops.iter().filter(|o| o.outcome == Outcome::Ok).count();
        match ops.first().map(|o| &o.action) {
            Some(Action::Write { .. } | Action::Delete { .. }) => {
                check_unique(key, ops, record, &mut result)
            }
            Some(Action::Add { .. }) => check_counter(key, ops, record, &mut result),
            Some(Action::Rmw { .. }) => check_rmw(key, ops, record, &mut result),
            None => {}
        }
    }
    result
}

fn check_unique(key: &str, ops: &[&Op], record: &FinalRecord, r: &mut CheckResult) {
    let write = ops.iter().find_map(|o| match &o.action {
        Action::Write {
            value, payload_len, ..
        } => Some((o.outcome, *value, *payload_len)),
        _ => None,
    });
    let deletes: Vec<(Outcome, Option<bool>)> = ops
        .iter()
        .filter_map(|o| match &o.action {
            Action::Delete { existed, .. } => Some((o.outcome, *existed)),
            _ => None,
        })
        .collect();
    let Some((w_outcome, value, len)) = write else {
        r.add("delete-without-write", key, format!("{deletes:?}"), false);
        return;
    };
    let acked_delete = deletes.iter().any(|(o, _)| *o == Outcome::Ok);
    let maybe_delete = deletes.iter().any(|(o, _)| *o == Outcome::Unknown);
    for (o, existed) in &deletes {
        if *o == Outcome::Ok && *existed == Some(false) && w_outcome == Outcome::Ok {
            r.add(
                "missing-at-delete",
                key,
                "an acknowledged write was gone when its delete ran".into(),
                true,
            );
        }
    }
    match record {
        Some(bins) => {
            if acked_delete {
                r.add(
                    "resurrected",
                    key,
                    format!("deleted with an acknowledgement, read back {bins:?}"),
                    true,
                );
                return;
            }
            if w_outcome == Outcome::Failed {
                r.add(
                    "failed-write-present",
                    key,
                    format!("a definitely failed write is present: {bins:?}"),
                    false,
                );
                return;
            }
            let expected_payload = payload(value, len);
            let ok = bins.get("v") == Some(&Value::Int(value))
                && bins.get("p") == Some(&Value::String(expected_payload));
            if !ok {
                r.add(
                    "wrong-value",
                    key,
                    format!("expected v={value} and a {len}-byte payload, read {bins:?}"),
                    w_outcome == Outcome::Ok,
                );
            }
        }
        None => {
            if w_outcome == Outcome::Ok && !acked_delete && !maybe_delete {
                r.add(
                    "lost-write",
                    key,
                    format!("acknowledged write of v={value} is not readable"),
                    true,
                );
            }
        }
    }
}

fn check_counter(key: &str, ops: &[&Op], record: &FinalRecord, r: &mut CheckResult) {
    let (mut acked, mut unknown) = (0i64, 0i64);
    for op in ops {
        if let Action::Add { delta, .. } = op.action {
            match op.outcome {
                Outcome::Ok => acked += delta,
                Outcome::Unknown => unknown += delta,
                Outcome::Failed => {}
            }
        }
    }
    let value = match record {
        None => 0,
        Some(bins) => match bins.get("n") {
            Some(Value::Int(n)) => *n,
            other => {
                r.add("wrong-value", key, format!("bin n is {other:?}"), acked > 0);
                return;
            }
        },
    };
    if value < acked {
        r.add(
            "counter-below-acked",
            key,
            format!("value {value} < acknowledged sum {acked} (unknown sum {unknown})"),
            true,
        );
    } else if value > acked + unknown {
        r.add(
            "counter-above-possible",
            key,
            format!("value {value} > acknowledged {acked} + unknown {unknown}"),
            false,
        );
    }
}

fn check_rmw(key: &str, ops: &[&Op], record: &FinalRecord, r: &mut CheckResult) {
    let text = match record {
        None => String::new(),
        Some(bins) => match bins.get("s") {
            Some(Value::String(s)) => s.clone(),
            other => {
                r.add("wrong-value", key, format!("bin s is {other:?}"), true);
                return;
            }
        },
    };
    let final_tokens: Vec<&str> = tokens(&text).collect();
    let mut position: HashMap<&str, usize> = HashMap::new();
    for (i, t) in final_tokens.iter().enumerate() {
        if position.contains_key(t) {
            r.add(
                "duplicate-token",
                key,
                format!("token {t} appears twice"),
                false,
            );
        } else {
            position.insert(t, i);
        }
    }
    let mut known: BTreeSet<&str> = BTreeSet::new();
    for op in ops {
        let Action::Rmw {
            token,
            read_len,
            read_failed,
            ..
        } = &op.action
        else {
            continue;
        };
        known.insert(token);
        if *read_failed {
            continue;
        }
        let at = position.get(token.as_str()).copied();
        match (op.outcome, at) {
            (Outcome::Ok, Some(i)) if i == *read_len => {}
            (Outcome::Ok, Some(i)) => r.add(
                "misplaced-token",
                key,
                format!("acknowledged token {token} read {read_len} tokens but sits at {i}"),
                false,
            ),
            (Outcome::Ok, None) => r.add(
                "lost-token",
                key,
                format!("acknowledged token {token} (written after {read_len} tokens) is gone"),
                true,
            ),
            (Outcome::Failed, Some(i)) => r.add(
                "failed-token-present",
                key,
                format!("definitely failed token {token} sits at {i}"),
                false,
            ),
            (Outcome::Unknown, Some(i)) if i != *read_len => r.add(
                "misplaced-token",
                key,
                format!("unknown-outcome token {token} read {read_len} tokens but sits at {i}"),
                false,
            ),
            _ => {}
        }
    }
    for t in &final_tokens {
        if !known.contains(t) {
            r.add(
                "phantom-token",
                key,
                format!("token {t} was never written"),
                false,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(seq: u64, action: Action, outcome: Outcome) -> Op {
        Op {
            client: 0,
            seq,
            start_ms: seq,
            end_ms: seq + 1,
            action,
            outcome,
            error: None,
        }
    }

    fn write(key: &str, value: i64) -> Action {
        Action::Write {
            key: key.into(),
            value,
            payload_len: 5,
        }
    }

    fn unique_bins(value: i64) -> FinalRecord {
        Some(BTreeMap::from([
            ("v".to_string(), Value::Int(value)),
            ("p".to_string(), Value::String(payload(value, 5))),
        ]))
    }

    fn rmw(key: &str, token: &str, read_len: usize) -> Action {
        Action::Rmw {
            key: key.into(),
            token: token.into(),
            read_gen: Some(1),
            read_len,
            read_failed: false,
        }
    }

    fn state(records: Vec<(&str, FinalRecord)>) -> FinalState {
        FinalState {
            records: records
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            unreadable: Vec::new(),
        }
    }

    fn string_bin(s: &str) -> FinalRecord {
        Some(BTreeMap::from([("s".to_string(), Value::from(s))]))
    }

    #[test]
    fn a_clean_history_passes() {
        let h = History {
            ops: vec![
                op(0, write("u-0-0", 5), Outcome::Ok),
                op(1, write("u-0-1", 6), Outcome::Ok),
                op(
                    2,
                    Action::Delete {
                        key: "u-0-1".into(),
                        existed: Some(true),
                    },
                    Outcome::Ok,
                ),
                op(3, write("u-0-2", 7), Outcome::Unknown),
                op(
                    4,
                    Action::Add {
                        key: "c-0".into(),
                        delta: 2,
                    },
                    Outcome::Ok,
                ),
                op(
                    5,
                    Action::Add {
                        key: "c-0".into(),
                        delta: 3,
                    },
                    Outcome::Unknown,
                ),
                op(6, rmw("r-0-0", "0.6", 0), Outcome::Ok),
                op(7, rmw("r-0-0", "0.7", 0), Outcome::Failed),
                op(8, rmw("r-0-0", "0.8", 1), Outcome::Ok),
            ],
        };
        let s = state(vec![
            ("u-0-0", unique_bins(5)),
            ("u-0-1", None),
            ("u-0-2", None),
            (
                "c-0",
                Some(BTreeMap::from([("n".to_string(), Value::Int(5))])),
            ),
            ("r-0-0", string_bin("0.6,0.8")),
        ]);
        let r = check(&h, &s);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.keys_checked, 5);
    }

    #[test]
    fn a_lost_acknowledged_write_fails_the_check() {
        let h = History {
            ops: vec![op(0, write("u-0-0", 5), Outcome::Ok)],
        };
        let r = check(&h, &state(vec![("u-0-0", None)]));
        assert_eq!(r.lost_acked(), 1);
        assert_eq!(r.violations[0].kind, "lost-write");
    }

    #[test]
    fn a_wrong_value_and_a_resurrected_delete_are_caught() {
        let h = History {
            ops: vec![
                op(0, write("u-0-0", 5), Outcome::Ok),
                op(1, write("u-0-1", 6), Outcome::Ok),
                op(
                    2,
                    Action::Delete {
                        key: "u-0-1".into(),
                        existed: Some(true),
                    },
                    Outcome::Ok,
                ),
            ],
        };
        let r = check(
            &h,
            &state(vec![("u-0-0", unique_bins(4)), ("u-0-1", unique_bins(6))]),
        );
        let kinds: Vec<&str> = r.violations.iter().map(|v| v.kind).collect();
        assert_eq!(kinds, ["wrong-value", "resurrected"]);
        assert_eq!(r.lost_acked(), 2);
    }

    #[test]
    fn a_delete_that_found_nothing_reveals_a_lost_write() {
        let h = History {
            ops: vec![
                op(0, write("u-0-0", 5), Outcome::Ok),
                op(
                    1,
                    Action::Delete {
                        key: "u-0-0".into(),
                        existed: Some(false),
                    },
                    Outcome::Ok,
                ),
            ],
        };
        let r = check(&h, &state(vec![("u-0-0", None)]));
        assert_eq!(r.violations[0].kind, "missing-at-delete");
    }

    #[test]
    fn counters_must_lie_between_acked_and_acked_plus_unknown() {
        let h = History {
            ops: vec![
                op(
                    0,
                    Action::Add {
                        key: "c-0".into(),
                        delta: 2,
                    },
                    Outcome::Ok,
                ),
                op(
                    1,
                    Action::Add {
                        key: "c-0".into(),
                        delta: 3,
                    },
                    Outcome::Unknown,
                ),
                op(
                    2,
                    Action::Add {
                        key: "c-0".into(),
                        delta: 4,
                    },
                    Outcome::Failed,
                ),
            ],
        };
        let n = |v: i64| Some(BTreeMap::from([("n".to_string(), Value::Int(v))]));
        assert!(check(&h, &state(vec![("c-0", n(2))])).violations.is_empty());
        assert!(check(&h, &state(vec![("c-0", n(5))])).violations.is_empty());
        assert_eq!(check(&h, &state(vec![("c-0", n(1))])).lost_acked(), 1);
        assert_eq!(check(&h, &state(vec![("c-0", None)])).lost_acked(), 1);
        let over = check(&h, &state(vec![("c-0", n(9))]));
        assert_eq!(over.violations[0].kind, "counter-above-possible");
    }

    #[test]
    fn rmw_tokens_must_all_be_there_in_their_places() {
        let h = History {
            ops: vec![
                op(0, rmw("r", "0.0", 0), Outcome::Ok),
                op(1, rmw("r", "0.1", 1), Outcome::Ok),
                op(2, rmw("r", "0.2", 1), Outcome::Failed),
            ],
        };
        let kinds = |s: &str| -> Vec<&'static str> {
            check(&h, &state(vec![("r", string_bin(s))]))
                .violations
                .iter()
                .map(|v| v.kind)
                .collect()
        };
        assert!(kinds("0.0,0.1").is_empty());
        assert_eq!(kinds("0.0"), ["lost-token"]);
        assert_eq!(kinds("0.1,0.0"), ["misplaced-token", "misplaced-token"]);
        assert_eq!(kinds("0.0,0.1,0.2"), ["failed-token-present"]);
        assert_eq!(kinds("0.0,0.1,9.9"), ["phantom-token"]);
        assert_eq!(kinds("0.0,0.1,0.1"), ["duplicate-token"]);
    }
}
