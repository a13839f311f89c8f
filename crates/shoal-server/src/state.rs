//! The state one node shares between its connections: configuration, identity, the
//! database, and node-wide counters.

use crate::config::Config;
use crate::histogram::Histogram;
use shoal_base::NodeId;
use shoal_data::Database;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Instant;

/// Node-wide counters (`statistics`).
#[derive(Debug, Default)]
pub struct NodeStats {
    pub client_connections: AtomicUsize,
    pub client_connections_opened: AtomicU64,
    pub client_connections_closed: AtomicU64,
    pub client_connections_refused: AtomicU64,
    pub client_connections_reaped: AtomicU64,
    pub proto_errors: AtomicU64,
    pub info_requests: AtomicU64,
    pub batch_index_initiate: AtomicU64,
    pub batch_index_complete: AtomicU64,
    pub batch_index_error: AtomicU64,
    pub scans_started: AtomicU64,
    pub compressed_requests: AtomicU64,
}

/// Kinds of client request timed by the latency histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Read,
    Write,
    Delete,
    Udf,
    Batch,
    Scan,
    Info,
}

impl OpKind {
    /// Every kind, in exposition order.
    pub const ALL: [OpKind; 7] = [
        OpKind::Read,
        OpKind::Write,
        OpKind::Delete,
        OpKind::Udf,
        OpKind::Batch,
        OpKind::Scan,
        OpKind::Info,
    ];

    /// The label value used in metrics.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Delete => "delete",
            OpKind::Udf => "udf",
            OpKind::Batch => "batch",
            OpKind::Scan => "scan",
            OpKind::Info => "info",
        }
    }
}

/// Everything a connection needs.
pub struct NodeState {
    pub config: Config,
    pub node_id: NodeId,
    pub db: Database,
    pub stats: NodeStats,
    pub started: Instant,
    /// Bumped whenever partition ownership changes (always 1 on a single node).
    pub partition_generation: AtomicU64,
    /// Service-level settings changeable by `set-config:context=service`.
    pub max_client_connections: AtomicUsize,
    pub client_idle_timeout_s: AtomicU64,
    /// The live `migrate-max-mbps` (0 = unlimited), read before every batch of migrated
    /// records so a change takes effect within one batch.
    pub migrate_max_mbps: AtomicU64,
    /// Background jobs, for `query-show`.
    pub jobs: crate::jobs::Jobs,
    /// Request latency per [`OpKind`], indexed by its position in [`OpKind::ALL`].
    pub latencies: [Histogram; 7],
    /// Heartbeat and membership.
    pub cluster: std::sync::Arc<crate::cluster::ClusterShell>,
    /// Node-to-node requests.
    pub fabric: crate::fabric::Fabric,
    /// Partition ownership, migrations, replication.
    pub ownership: crate::ownership::Ownership,
    /// This state itself, for work that outlives a borrowed request (set at construction).
    pub self_ref: std::sync::Weak<NodeState>,
}

impl NodeState {
    /// A strong reference to this state (None only while the node shuts down).
    pub fn arc(&self) -> Option<std::sync::Arc<NodeState>> {
        self.self_ref.upgrade()
    }

    /// The latency histogram of `kind`.
    pub fn latency(&self, kind: OpKind) -> &Histogram {
        &self.latencies[kind as usize]
    }
}
