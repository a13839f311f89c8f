//! Eviction in the shell: after each expiration pass, when a namespace's use is at or above its
//! `evict-used-pct`, the soonest-expiring records go (`shoal_data::maintenance` decides which:
//! a void-time cutoff), and every other member is told the same cutoff, so the copies of a
//! partition lose the same records. A cutoff also carries the last-update-time at which it was
//! decided: a record rewritten since then stays, on every node. On a device namespace the
//! eviction is persisted (`DATA-DIR/NS.evict`) before any record leaves the index, so a cold
//! start does not bring evicted records back. This module must never evict a record without a
//! TTL (the cutoff only ever matches records with a void-time) and never block a tokio worker
//! on an index walk or a file write.
//! Aerospike counterpart: nsup's eviction (`evict-used-pct`, `evict-tenths-pct`, the namespace's
//! evict void-time shared through system metadata).

use crate::state::NodeState;
use shoal_cluster::fabric::FabricMessage;
use shoal_data::Namespace;
use shoal_proto::ResultCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tracing::{info, warn};

/// The namespace's use in percent: memory against `memory-size`, and on a device namespace the
/// fuller of that and the device's live bytes (not its free blocks, which lag behind defrag:
/// eviction would go on long after enough records were gone).
pub fn used_pct(state: &NodeState, ns: &Namespace) -> u32 {
    let size = ns.settings.memory_size_bytes.load(Relaxed).max(1);
    let memory = ns.stats.memory_used_bytes.load(Relaxed).saturating_mul(100) / size;
    let device = crate::storage::summary_for(state, ns).map_or(0, |d| {
        d.used_bytes.saturating_mul(100) / d.total_bytes.max(1)
    });
    u32::try_from(memory.max(device)).unwrap_or(u32::MAX)
}

/// One eviction pass of `ns` (called after its expiration pass): decides a cutoff when use is
/// high, applies it here and sends it to the other members.
pub async fn run_pass(state: &Arc<NodeState>, ns: &Arc<Namespace>) {
    let used = used_pct(state, ns);
    let decide = ns.clone();
    let cutoff = match tokio::task::spawn_blocking(move || {
        shoal_data::maintenance::evict_threshold(&decide, used)
    })
    .await
    {
        Ok(Some(c)) => c,
        Ok(None) => return,
        Err(e) => {
            warn!(target: "shoal::nsup", namespace = %ns.name, "eviction task failed: {e}");
            return;
        }
    };
    let lut_ms = ns.clock.now_cl_ms();
    match apply(state, ns, cutoff, lut_ms).await {
        Ok(evicted) => {
            info!(target: "shoal::nsup", namespace = %ns.name, used_pct = used,
                evict_used_pct = ns.settings.evict_used_pct.load(Relaxed),
                void_cutoff = cutoff, evicted, "evicted the soonest-expiring records");
            broadcast(state, &ns.name, cutoff, lut_ms);
        }
        Err(code) => {
            warn!(target: "shoal::nsup", namespace = %ns.name, "eviction not applied: {code:?}");
        }
    }
}

/// Applies an eviction decided here or by another member: persisted first on a device
/// namespace, then the records leave the index. Returns how many were evicted.
pub async fn apply(
    state: &Arc<NodeState>,
    ns: &Arc<Namespace>,
    void_cutoff: u32,
    lut_ms: u64,
) -> Result<u64, ResultCode> {
    let list = ns.record_eviction(void_cutoff, lut_ms);
    if ns.storage().is_some() {
        let dir = state.config.data_dir.clone();
        let name = ns.name.clone();
        let persisted = tokio::task::spawn_blocking(move || {
            crate::storage::persist_evictions(&dir, &name, &list)
        })
        .await;
        match persisted {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!(target: "shoal::nsup", namespace = %ns.name,
                    "cannot persist the eviction, not evicting: {e}");
                return Err(ResultCode::ServerError);
            }
            Err(_) => return Err(ResultCode::ServerError),
        }
    }
    let target = ns.clone();
    tokio::task::spawn_blocking(move || {
        shoal_data::maintenance::evict(&target, void_cutoff, lut_ms)
    })
    .await
    .map_err(|_| ResultCode::ServerError)
}

/// Sends an eviction this node applied to every other member (retried; a member that misses
/// it still evicts by its own passes, and its copies then hold records the others evicted until
/// the next write or migration of those partitions).
fn broadcast(state: &Arc<NodeState>, ns: &str, void_cutoff: u32, lut_ms: u64) {
    let msg = FabricMessage::Evict {
        ns: ns.to_string(),
        void_cutoff,
        lut_ms,
    };
    crate::ownership::tell_members(state, msg, "an eviction");
}
