//! The workload: `--clients` concurrent tasks sharing one official `aerospike` client, each on
//! its own seeded random mix of unique-key writes, counter increments, generation-checked
//! read-modify-writes and deletes of its own acknowledged unique keys. Every attempt is recorded
//! in the task's own history (no lock on the hot path) and merged at the end.
//!
//! Key spaces (set `torture` of namespace `test`): `u-<client>-<n>` written once each;
//! `c-<i>` counters (bin `n`) shared by every client; `r-<epoch>-<i>` read-modify-write keys
//! (bin `s`, comma-separated tokens) shared by every client, with a new epoch every 20 s so a
//! string stays small in long runs.
//!
//! Every write goes out once (`max_retries = 0`): a retry after an attempt that applied could
//! turn an applied write into a "definite" failure (see `history`).

use crate::cluster::NAMESPACE;
use crate::history::{payload, Action, History, Op, Outcome};
use aerospike::{
    as_bin, Bins, Client, ClientPolicy, GenerationPolicy, Key, ReadPolicy, RecordExistsAction,
    ResultCode, Value, WritePolicy,
};
use anyhow::{anyhow, Context, Result};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The set every key lives in.
pub const SET: &str = "torture";
/// Number of shared counter keys.
pub const COUNTERS: usize = 8;
/// Number of read-modify-write keys per epoch.
pub const RMW_KEYS: usize = 16;
/// Length of a read-modify-write epoch.
const RMW_EPOCH: Duration = Duration::from_secs(20);
/// Pause after an operation whose outcome is unknown, so a down node is not hammered.
const UNKNOWN_BACKOFF: Duration = Duration::from_millis(50);

/// What the clients need.
#[derive(Debug, Clone)]
pub struct WorkloadSettings {
    pub seed: u64,
    pub clients: usize,
    pub op_timeout_ms: u32,
    /// Most operations per second, all clients together (0: no limit).
    pub rate: u32,
}

/// The key of `name` in the torture set.
pub fn key(name: &str) -> Result<Key> {
    Key::new(NAMESPACE, SET, Value::from(name)).map_err(|e| anyhow!("key {name}: {e}"))
}

/// Connects the official client to `hosts` (comma-separated `host:port`).
pub async fn connect(hosts: &str) -> Result<Client> {
    // Find restarted nodes quickly, and never refuse to send because of earlier errors: the
    // point is to send operations to nodes that are failing.
    let policy = ClientPolicy {
        tend_interval: 250,
        max_error_rate: 0,
        ..ClientPolicy::default()
    };
    let hosts = hosts.to_string();
    Client::new(&policy, &hosts)
        .await
        .map_err(|e| anyhow!("connecting to {hosts}: {e}"))
}

/// The policies of one client task.
struct Policies {
    read: ReadPolicy,
    update: WritePolicy,
    create: WritePolicy,
}

impl Policies {
    fn new(timeout_ms: u32) -> Policies {
        let mut update = WritePolicy::default();
        update.base_policy.total_timeout = timeout_ms;
        update.base_policy.socket_timeout = timeout_ms;
        update.base_policy.max_retries = 0;
        let mut create = update.clone();
        create.record_exists_action = RecordExistsAction::CreateOnly;
        let mut read = ReadPolicy::default();
        read.base_policy.total_timeout = timeout_ms;
        read.base_policy.socket_timeout = timeout_ms;
        Policies {
            read,
            update,
            create,
        }
    }

    fn expect_generation(&self, generation: u32) -> WritePolicy {
        let mut p = self.update.clone();
        p.generation_policy = GenerationPolicy::ExpectGenEqual;
        p.generation = generation;
        p
    }
}

/// Operation counters shared for the progress line.
#[derive(Default)]
struct Progress {
    ok: AtomicU64,
    failed: AtomicU64,
    unknown: AtomicU64,
}

impl Progress {
    fn count(&self, outcome: Outcome) {
        let c = match outcome {
            Outcome::Ok => &self.ok,
            Outcome::Failed => &self.failed,
            Outcome::Unknown => &self.unknown,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the clients until `duration` after `run_start` and returns their merged history.
pub async fn run(
    hosts: &str,
    settings: &WorkloadSettings,
    run_start: Instant,
    duration: Duration,
) -> Result<History> {
    let client = Arc::new(connect(hosts).await?);
    let deadline = run_start + duration;
    let progress = Arc::new(Progress::default());
    let mut tasks = Vec::with_capacity(settings.clients);
    for id in 0..settings.clients {
        let task = ClientTask {
            id,
            client: client.clone(),
            rng: StdRng::seed_from_u64(client_seed(settings.seed, id)),
            policies: Policies::new(settings.op_timeout_ms),
            run_start,
            ops: Vec::new(),
            acked_unique: Vec::new(),
            next_unique: 0,
            seq: 0,
            progress: progress.clone(),
            pace: (settings.rate > 0).then(|| {
                Duration::from_secs_f64(settings.clients as f64 / f64::from(settings.rate))
            }),
        };
        tasks.push(tokio::spawn(task.run(deadline)));
    }
    let reporter = tokio::spawn(report_progress(progress.clone(), run_start, deadline));
    let mut parts = Vec::with_capacity(tasks.len());
    for t in tasks {
        parts.push(t.await.context("a client task panicked")?);
    }
    reporter.abort();
    let _ = client.close().await;
    Ok(History::merge(parts))
}

/// Each client's seed: the run's seed mixed with the client id.
fn client_seed(seed: u64, id: usize) -> u64 {
    seed ^ (id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

async fn report_progress(progress: Arc<Progress>, run_start: Instant, deadline: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    while Instant::now() < deadline {
        tick.tick().await;
        println!(
            "torture: t={:>4}s ops ok {} failed {} unknown {}",
            run_start.elapsed().as_secs(),
            progress.ok.load(Ordering::Relaxed),
            progress.failed.load(Ordering::Relaxed),
            progress.unknown.load(Ordering::Relaxed)
        );
    }
}

/// One client task's state.
struct ClientTask {
    id: usize,
    client: Arc<Client>,
    rng: StdRng,
    policies: Policies,
    run_start: Instant,
    ops: Vec<Op>,
    /// This task's unique keys whose write was acknowledged and that were not deleted yet.
    acked_unique: Vec<String>,
    next_unique: u64,
    seq: u64,
    progress: Arc<Progress>,
    /// Least time between the starts of two operations of this task (from `--rate`).
    pace: Option<Duration>,
}

impl ClientTask {
    async fn run(mut self, deadline: Instant) -> Vec<Op> {
        let mut next_start = Instant::now();
        while Instant::now() < deadline {
            if let Some(pace) = self.pace {
                tokio::time::sleep_until(next_start.into()).await;
                next_start = Instant::now().max(next_start + pace);
            }
            let roll = self.rng.random_range(0..100u32);
            let start = self.now_ms();
            let (action, outcome, error) = match roll {
                0..40 => self.write().await,
                40..65 => self.add().await,
                65..85 => self.rmw().await,
                _ if !self.acked_unique.is_empty() => self.delete().await,
                _ => self.write().await,
            };
            let end = self.now_ms();
            self.progress.count(outcome);
            self.ops.push(Op {
                client: self.id,
                seq: self.seq,
                start_ms: start,
                end_ms: end,
                action,
                outcome,
                error,
            });
            self.seq += 1;
            if outcome == Outcome::Unknown {
                tokio::time::sleep(UNKNOWN_BACKOFF).await;
            }
        }
        self.ops
    }

    fn now_ms(&self) -> u64 {
        self.run_start.elapsed().as_millis() as u64
    }

    async fn write(&mut self) -> (Action, Outcome, Option<String>) {
        let name = format!("u-{}-{}", self.id, self.next_unique);
        self.next_unique += 1;
        let value: i64 = self.rng.random();
        let payload_len = self.rng.random_range(0..200usize);
        let action = Action::Write {
            key: name.clone(),
            value,
            payload_len,
        };
        let result = match key(&name) {
            Ok(k) => {
                let bins = [
                    as_bin!("v", value),
                    as_bin!("p", payload(value, payload_len)),
                ];
                self.client.put(&self.policies.create, &k, &bins).await
            }
            Err(e) => return (action, Outcome::Failed, Some(format!("{e:#}"))),
        };
        let (outcome, error) = outcome_of(result.map(|_| ()));
        if outcome == Outcome::Ok {
            self.acked_unique.push(name);
        }
        (action, outcome, error)
    }

    async fn add(&mut self) -> (Action, Outcome, Option<String>) {
        let name = format!("c-{}", self.rng.random_range(0..COUNTERS));
        let delta = self.rng.random_range(1..=5i64);
        let action = Action::Add {
            key: name.clone(),
            delta,
        };
        let result = match key(&name) {
            Ok(k) => {
                self.client
                    .add(&self.policies.update, &k, &[as_bin!("n", delta)])
                    .await
            }
            Err(e) => return (action, Outcome::Failed, Some(format!("{e:#}"))),
        };
        let (outcome, error) = outcome_of(result);
        (action, outcome, error)
    }

    async fn rmw(&mut self) -> (Action, Outcome, Option<String>) {
        let epoch = self.run_start.elapsed().as_secs() / RMW_EPOCH.as_secs();
        let name = format!("r-{epoch}-{}", self.rng.random_range(0..RMW_KEYS));
        let token = format!("{}.{}", self.id, self.seq);
        let k = match key(&name) {
            Ok(k) => k,
            Err(e) => {
                let action = rmw_action(&name, &token, None, 0, true);
                return (action, Outcome::Failed, Some(format!("{e:#}")));
            }
        };
        let read = self.client.get(&self.policies.read, &k, Bins::All).await;
        let (current, read_gen) = match read {
            Ok(rec) => match rec.bins.get("s") {
                Some(Value::String(s)) => (s.clone(), Some(rec.generation)),
                other => {
                    let action = rmw_action(&name, &token, Some(rec.generation), 0, true);
                    let error = format!("bin s is {other:?}, not a string");
                    return (action, Outcome::Failed, Some(error));
                }
            },
            Err(e) if e.server_result_code() == Some(ResultCode::KeyNotFoundError) => {
                (String::new(), None)
            }
            Err(e) => {
                // Nothing was written: the read did not answer.
                let action = rmw_action(&name, &token, None, 0, true);
                return (action, Outcome::Failed, Some(format!("read: {e}")));
            }
        };
        let read_len = tokens(&current).count();
        let next = if current.is_empty() {
            token.clone()
        } else {
            format!("{current},{token}")
        };
        let policy = match read_gen {
            Some(g) => self.policies.expect_generation(g),
            None => self.policies.create.clone(),
        };
        let result = self.client.put(&policy, &k, &[as_bin!("s", next)]).await;
        let (outcome, error) = outcome_of(result);
        (
            rmw_action(&name, &token, read_gen, read_len, false),
            outcome,
            error,
        )
    }

    async fn delete(&mut self) -> (Action, Outcome, Option<String>) {
        let i = self.rng.random_range(0..self.acked_unique.len());
        let name = self.acked_unique.swap_remove(i);
        let result = match key(&name) {
            Ok(k) => self.client.delete(&self.policies.update, &k).await,
            Err(e) => {
                let action = Action::Delete {
                    key: name,
                    existed: None,
                };
                return (action, Outcome::Failed, Some(format!("{e:#}")));
            }
        };
        let existed = result.as_ref().ok().copied();
        let (outcome, error) = outcome_of(result.map(|_| ()));
        (Action::Delete { key: name, existed }, outcome, error)
    }
}

fn rmw_action(
    key: &str,
    token: &str,
    read_gen: Option<u32>,
    read_len: usize,
    read_failed: bool,
) -> Action {
    Action::Rmw {
        key: key.to_string(),
        token: token.to_string(),
        read_gen,
        read_len,
        read_failed,
    }
}

/// The tokens of a read-modify-write string, in order.
pub fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(|t| !t.is_empty())
}

fn outcome_of(result: aerospike::Result<()>) -> (Outcome, Option<String>) {
    match result {
        Ok(()) => (Outcome::Ok, None),
        Err(e) => (Outcome::of_error(&e), Some(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_get_different_seeds_and_a_seed_gives_the_same_mix() {
        assert_ne!(client_seed(1, 0), client_seed(1, 1));
        let mut a = StdRng::seed_from_u64(client_seed(5, 2));
        let mut b = StdRng::seed_from_u64(client_seed(5, 2));
        let xs: Vec<u32> = (0..8).map(|_| a.random_range(0..100)).collect();
        let ys: Vec<u32> = (0..8).map(|_| b.random_range(0..100)).collect();
        assert_eq!(xs, ys);
    }

    #[test]
    fn tokens_skip_empty_parts() {
        assert_eq!(tokens("").count(), 0);
        assert_eq!(tokens("1.2,3.4").collect::<Vec<_>>(), ["1.2", "3.4"]);
    }
}
