//! The live dashboard on the HTTP port: `GET /` (a page), `GET /dashboard/app.js` and
//! `GET /dashboard/style.css` (its script and style, embedded in the binary with `include_str!`
//! so the page works with no build step and no network beyond this node), and
//! `GET /api/cluster` (this node's view as JSON, polled by the page every second).
//!
//! It owns the JSON shape of `/api/cluster` and the page. It only reads shared state (the
//! committed cluster view, namespace counters, latency histograms); it never changes data or
//! cluster state. Counters are cumulative: the page computes rates and per-interval latency
//! percentiles from the difference between two polls, so the server keeps no history.
//! Aerospike counterpart: none in the server (Aerospike leaves this to external tools).

use crate::histogram::{Histogram, BUCKET_BOUNDS_US};
use crate::state::{NodeState, OpKind};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use shoal_base::constants::PARTITIONS;
use shoal_base::NodeId;
use shoal_data::Namespace;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const STYLE_CSS: &str = include_str!("style.css");

/// The page may load only its own script and style from this node, and nothing may frame it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The dashboard routes, merged into the HTTP router.
pub fn routes() -> Router<Arc<NodeState>> {
    Router::new()
        .route("/", get(index))
        .route("/dashboard/app.js", get(app_js))
        .route("/dashboard/style.css", get(style_css))
        .route("/api/cluster", get(api_cluster))
}

async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX_HTML,
    )
}

async fn app_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_JS,
    )
}

async fn style_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLE_CSS,
    )
}

async fn api_cluster(State(state): State<Arc<NodeState>>) -> impl IntoResponse {
    // Plain structs of strings and numbers always serialize; answer 500 if one ever does not.
    let (status, body) = match serde_json::to_string(&snapshot(&state)) {
        Ok(body) => (StatusCode::OK, body),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
}

/// `/api/cluster`.
#[derive(Debug, Serialize)]
pub struct ClusterSnapshot {
    /// This node's id, as `node` prints it.
    pub node: String,
    /// The Aerospike build we claim (`build`) and shoal's own version.
    pub build: &'static str,
    pub version: &'static str,
    pub uptime_s: u64,
    /// The same in milliseconds: the page divides counter differences by it, so rates do not
    /// depend on when its polls happened to run.
    pub uptime_ms: u64,
    pub cluster: ClusterSummary,
    /// The committed succession list (principal first), then any node a partition map names
    /// that is not in it. Partition maps index into this array.
    pub members: Vec<MemberRow>,
    pub migrate_partitions_remaining: u64,
    pub client_connections: u64,
    pub namespaces: Vec<NamespaceRow>,
    /// Upper bounds of the latency buckets in microseconds; the last bucket has no bound.
    pub latency_bounds_us: &'static [u64],
    pub ops: Vec<OpRow>,
}

#[derive(Debug, Serialize)]
pub struct ClusterSummary {
    /// The committed cluster key in hex, as `cluster-key` prints it (0 before formation).
    pub key: String,
    pub size: usize,
    pub stable: bool,
    pub principal: Option<String>,
    pub heartbeat_peers: usize,
}

#[derive(Debug, Serialize)]
pub struct MemberRow {
    pub id: String,
    /// This node.
    #[serde(rename = "self")]
    pub is_self: bool,
    pub principal: bool,
    /// In the committed succession list.
    pub in_succession: bool,
}

#[derive(Debug, Serialize)]
pub struct NamespaceRow {
    pub name: String,
    pub replication_factor: u32,
    pub effective_replication_factor: usize,
    pub objects: u64,
    pub memory_used_bytes: u64,
    pub memory_size_bytes: u64,
    pub stop_writes: bool,
    /// One entry per partition: the index in `members` of its master, `null` when none.
    pub partition_masters: Vec<Option<usize>>,
}

#[derive(Debug, Serialize)]
pub struct OpRow {
    /// `read`, `write`, `delete`, `udf`, `batch`, `scan`, `info` (the `/metrics` labels).
    pub kind: &'static str,
    /// Requests since start.
    pub count: u64,
    /// Estimated latency percentiles since start (the upper bound of the bucket holding the
    /// percentile, in microseconds; `null` with no requests or past the last bound).
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    /// Requests per latency bucket since start (not cumulative), parallel to
    /// `latency_bounds_us` plus one overflow bucket.
    pub buckets: Vec<u64>,
}

/// The master of every partition of `ns`, indexed by partition id.
///
/// Today ownership is not kept anywhere: it is computed from the committed succession list
/// with the same partition balance every node uses (rack 0 for all). When nodes keep their
/// real ownership, only this function changes.
fn partition_masters(state: &NodeState, ns: &Namespace) -> Vec<Option<NodeId>> {
    match state.ownership.of(&ns.name) {
        Some(own) => {
            let routes = own.routes();
            (0..PARTITIONS as u16)
                .map(|pid| routes.master(shoal_base::PartitionId(pid)))
                .collect()
        }
        None => vec![None; PARTITIONS],
    }
}

/// The estimated `q`-quantile (0..1) of `h`: the upper bound of the first bucket whose
/// cumulative count reaches `q` of all observations.
fn percentile_us(h: &Histogram, q: f64) -> Option<u64> {
    let cumulative = h.cumulative();
    let total = cumulative.last().map_or(0, |(_, c)| *c);
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    cumulative
        .iter()
        .find(|(_, c)| *c >= rank)
        .and_then(|(bound, _)| *bound)
}

/// Everything `/api/cluster` reports, read from shared state without changing it.
pub fn snapshot(state: &NodeState) -> ClusterSnapshot {
    let view = state.cluster.view();
    let heartbeat_peers = state.cluster.adjacency_len();
    // Nothing migrates yet (docs/design/cluster.md); this is the field that will report it.
    let migrate_partitions_remaining = {
        let (rx, tx) = state.ownership.migrations_remaining();
        (rx + tx) as u64
    };
    let mut members: Vec<MemberRow> = view
        .succession
        .iter()
        .map(|&node| MemberRow {
            id: node.to_string(),
            is_self: node == state.node_id,
            principal: Some(node) == view.principal(),
            in_succession: true,
        })
        .collect();
    let mut member_ids: Vec<NodeId> = view.succession.clone();

    let mut namespaces = Vec::new();
    for ns in state.db.namespaces() {
        let masters = partition_masters(state, ns);
        let mut indexes = Vec::with_capacity(masters.len());
        for master in masters {
            let index = master.map(|node| match member_ids.iter().position(|m| *m == node) {
                Some(i) => i,
                None => {
                    member_ids.push(node);
                    members.push(MemberRow {
                        id: node.to_string(),
                        is_self: node == state.node_id,
                        principal: false,
                        in_succession: false,
                    });
                    member_ids.len() - 1
                }
            });
            indexes.push(index);
        }
        let rf = usize::try_from(ns.replication_factor).unwrap_or(usize::MAX);
        namespaces.push(NamespaceRow {
            name: ns.name.clone(),
            replication_factor: ns.replication_factor,
            effective_replication_factor: rf.min(view.succession.len()).max(1),
            objects: ns.stats.objects.load(Relaxed),
            memory_used_bytes: ns.stats.memory_used_bytes.load(Relaxed),
            memory_size_bytes: ns.settings.memory_size_bytes.load(Relaxed),
            stop_writes: ns.at_stop_writes(),
            partition_masters: indexes,
        });
    }

    let ops = OpKind::ALL
        .iter()
        .map(|&kind| {
            let h = state.latency(kind);
            let mut previous = 0;
            let buckets = h
                .cumulative()
                .into_iter()
                .map(|(_, c)| {
                    let n = c.saturating_sub(previous);
                    previous = c;
                    n
                })
                .collect();
            OpRow {
                kind: kind.name(),
                count: h.count(),
                p50_us: percentile_us(h, 0.50),
                p99_us: percentile_us(h, 0.99),
                buckets,
            }
        })
        .collect();

    ClusterSnapshot {
        node: state.node_id.to_string(),
        build: crate::info::BUILD,
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: state.started.elapsed().as_secs(),
        uptime_ms: u64::try_from(state.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        cluster: ClusterSummary {
            key: format!("{:X}", view.key),
            size: view.succession.len(),
            // Stable: a committed cluster that holds every node this one hears, whose
            // partition map every namespace has planned, with every owner complete and
            // nothing left to migrate (what `cluster-stable` answers).
            stable: view.key != 0
                && view.succession.contains(&state.node_id)
                && heartbeat_peers + 1 == view.succession.len()
                && migrate_partitions_remaining == 0
                && !state.ownership.waiting()
                && state.ownership.settled()
                && state
                    .ownership
                    .namespaces
                    .iter()
                    .all(|o| o.routes().key == view.key),
            principal: view.principal().map(|p| p.to_string()),
            heartbeat_peers,
        },
        members,
        migrate_partitions_remaining,
        client_connections: u64::try_from(state.stats.client_connections.load(Relaxed))
            .unwrap_or(u64::MAX),
        namespaces,
        latency_bounds_us: &BUCKET_BOUNDS_US,
        ops,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn percentiles_are_bucket_upper_bounds() {
        let h = Histogram::default();
        assert_eq!(percentile_us(&h, 0.5), None);
        for _ in 0..98 {
            h.record(Duration::from_micros(20));
        }
        h.record(Duration::from_micros(700));
        h.record(Duration::from_secs(3));
        assert_eq!(percentile_us(&h, 0.50), Some(25));
        assert_eq!(percentile_us(&h, 0.99), Some(1_000));
        // Past the last bound there is no finite estimate.
        assert_eq!(percentile_us(&h, 1.0), None);
    }
}
