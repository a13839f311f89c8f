//! Background jobs: a query that carries write ops (the clients' `query_operate` /
//! `execute_background`) is answered at once and then applied to every matching record on a
//! blocking thread; `query-show` reports its progress. Aerospike counterpart:
//! `as/src/query/query.c` (ops background queries), `query-show`.
//!
//! A job visits each record with an update-only write, so a record deleted meanwhile is not
//! recreated. The job table keeps the most recent jobs only.

use crate::state::NodeState;
use parking_lot::Mutex;
use shoal_base::constants::PARTITIONS;
use shoal_base::PartitionId;
use shoal_data::expression::Filter;
use shoal_data::scan::{collect_digests, SetFilter};
use shoal_data::transaction::{execute, RecordRequest};
use shoal_data::Namespace;
use shoal_proto::msg::{info3, Msg, MsgWriter};
use shoal_proto::ResultCode;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tracing::info;

/// How many jobs `query-show` remembers.
const JOBS_KEPT_MAX: usize = 100;

/// One background job's progress.
#[derive(Debug)]
pub struct Job {
    pub trid: u64,
    pub namespace: String,
    pub set: String,
    pub done: AtomicBool,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub partitions_done: AtomicU64,
}

impl Job {
    /// The `query-show` line for this job.
    pub fn describe(&self) -> String {
        let done = self.done.load(Relaxed);
        let mut s = String::new();
        let _ = write!(
            s,
            "trid={}:job-type=background-ops:ns={}:set={}:status={}:job-progress={:.2}:recs-succeeded={}:recs-failed={}:recs-filtered-meta=0:recs-filtered-bins=0",
            self.trid,
            self.namespace,
            self.set,
            if done { "done(ok)" } else { "active(ok)" },
            self.partitions_done.load(Relaxed) as f64 * 100.0 / PARTITIONS as f64,
            self.succeeded.load(Relaxed),
            self.failed.load(Relaxed),
        );
        s
    }
}

/// The node's recent jobs.
#[derive(Debug, Default)]
pub struct Jobs {
    list: Mutex<VecDeque<Arc<Job>>>,
}

impl Jobs {
    fn add(&self, job: Arc<Job>) {
        let mut l = self.list.lock();
        if l.len() >= JOBS_KEPT_MAX {
            l.pop_front();
        }
        l.push_back(job);
    }

    /// The job with transaction id `trid`.
    pub fn find(&self, trid: u64) -> Option<Arc<Job>> {
        self.list
            .lock()
            .iter()
            .rev()
            .find(|j| j.trid == trid)
            .cloned()
    }

    /// Every remembered job, oldest first.
    pub fn all(&self) -> Vec<Arc<Job>> {
        self.list.lock().iter().cloned().collect()
    }
}

/// Starts a background-ops job for the (already validated) query in `body` and returns at
/// once. In a cluster each node applies the ops to the partitions it is working master of
/// and replicates every changed record, like a client write; partitions mastered elsewhere
/// are left to their master (clients send the job to every node).
pub fn start_background_ops(
    state: Arc<NodeState>,
    ns: Arc<Namespace>,
    body: Vec<u8>,
    trid: u64,
    sets: SetFilter,
    set_name: String,
) {
    let job = Arc::new(Job {
        trid,
        namespace: ns.name.clone(),
        set: set_name,
        done: AtomicBool::new(false),
        succeeded: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        partitions_done: AtomicU64::new(0),
    });
    state.jobs.add(job.clone());
    let body = Arc::new(body);
    tokio::spawn(async move {
        let own = state
            .ownership
            .namespaces
            .iter()
            .find(|o| Arc::ptr_eq(&o.ns, &ns));
        for p in 0..PARTITIONS {
            let pid = PartitionId(p as u16);
            let routes = own.map(|o| o.routes());
            let mine = routes
                .as_ref()
                .is_none_or(|r| r.alone || r.master(pid) == Some(state.node_id));
            if mine {
                let (ns2, body2, job2) = (ns.clone(), body.clone(), job.clone());
                let changed = tokio::task::spawn_blocking(move || {
                    apply_partition(&ns2, &body2, &job2, pid, sets)
                })
                .await
                .unwrap_or_default();
                if let (Some(own), Some(routes)) = (own, routes.as_ref()) {
                    if !routes.alone {
                        for d in &changed {
                            if crate::ownership::replicate(&state, own, routes, d)
                                .await
                                .is_err()
                            {
                                job.failed.fetch_add(1, Relaxed);
                            }
                        }
                    }
                }
            }
            job.partitions_done.fetch_add(1, Relaxed);
        }
        job.done.store(true, Relaxed);
        info!(target: "shoal::jobs", trid = job.trid, namespace = %job.namespace,
            succeeded = job.succeeded.load(Relaxed), failed = job.failed.load(Relaxed),
            "background ops job done");
    });
}

/// Applies the job's ops to every matching record of partition `pid`; returns the digests
/// it changed.
fn apply_partition(
    ns: &Namespace,
    body: &[u8],
    job: &Job,
    pid: PartitionId,
    sets: SetFilter,
) -> Vec<shoal_base::Digest> {
    // The body decoded once already; a failure here cannot happen but must not panic.
    let Ok(msg) = Msg::decode(body) else {
        return Vec::new();
    };
    let filter = msg.fields.filter_exp.and_then(|f| Filter::parse(f).ok());
    let mut scratch = MsgWriter::new();
    let mut changed = Vec::new();
    for digest in collect_digests(ns, pid, sets, filter.as_ref()) {
        let req = RecordRequest {
            info1: msg.header.info1,
            info2: msg.header.info2,
            info3: msg.header.info3 | info3::UPDATE_ONLY,
            generation: 0,
            record_ttl: msg.header.record_ttl,
            digest,
            set: None,
            key: None,
            ops: msg.ops,
            filter: None,
            is_udf: false,
        };
        scratch.clear();
        match execute(ns, &req, &mut scratch, 0) {
            ResultCode::Ok => {
                job.succeeded.fetch_add(1, Relaxed);
                changed.push(digest);
            }
            _ => {
                job.failed.fetch_add(1, Relaxed);
            }
        }
    }
    changed
}
