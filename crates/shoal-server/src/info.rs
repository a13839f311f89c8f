//! The info command table: the text commands clients use to discover and tend the node
//! (`node`, `build`, `partition-generation`, `peers-*`, `replicas`...) and the ones operators
//! use (`namespace/<ns>`, `sets`, `statistics`, `get-config`, `set-config`, `truncate`...).
//! Every requested line is answered, in order, echoing the line; unknown commands get
//! `ERROR:4:unrecognized command`. Aerospike counterpart: `as/src/base/thr_info.c`.

use crate::state::NodeState;
use base64::Engine;
use shoal_base::constants::PARTITIONS;
use shoal_data::{maintenance, Namespace};
use shoal_proto::info::{push_reply_line, request_lines, Command};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tracing::info;

/// The Aerospike server version whose client-visible protocol we implement. 7.2 turns on
/// partition scans/queries and the batch-any format in every client, and stays below 8.0 (MRT)
/// and 8.1 (user-agent-set, new sindex syntax), which we do not claim.
pub const BUILD: &str = "7.2.0.0";
/// Feature tokens for clients that gate on `features` (Java, Go): only what is implemented.
pub const FEATURES: &str = "batch-any;batch-index;blob-bits;cdt-list;cdt-map;float;peers;pipelining;pquery;pscans;query-show;replicas;replicas-all;replicas-master;replicas-max;truncate-namespace";
const EDITION: &str = "shoal Community Edition";

/// Answers an info request body into `out` (the proto header is the caller's).
pub fn handle(state: &NodeState, body: &[u8], local: Option<SocketAddr>, out: &mut Vec<u8>) {
    let mut any = false;
    for line in request_lines(body) {
        any = true;
        let text = String::from_utf8_lossy(line);
        let value = answer(state, &text, local);
        push_reply_line(out, line, &value);
    }
    if !any && body.iter().all(|b| b.is_ascii_whitespace()) {
        // The empty request: a summary of the defaults, as the official server gives.
        for name in [
            "node",
            "build",
            "edition",
            "version",
            "features",
            "cluster-name",
            "partition-generation",
            "statistics",
        ] {
            let value = answer(state, name, local);
            push_reply_line(out, name.as_bytes(), &value);
        }
    }
}

fn unrecognized() -> String {
    "ERROR:4:unrecognized command".to_string()
}

fn answer(state: &NodeState, line: &str, local: Option<SocketAddr>) -> String {
    let cmd = Command::parse(line);
    match cmd.name {
        "node" => state.node_id.to_string(),
        "build" => BUILD.to_string(),
        "version" => format!(
            "{EDITION} build {BUILD} (shoal {})",
            env!("CARGO_PKG_VERSION")
        ),
        "edition" => EDITION.to_string(),
        "build_os" => "linux".to_string(),
        "compatibility-id" => "1".to_string(),
        "features" => FEATURES.to_string(),
        "status" => "ok".to_string(),
        "cluster-name" => state
            .config
            .cluster_name
            .clone()
            .unwrap_or_else(|| "null".to_string()),
        "partition-generation" => state.partition_generation.load(Relaxed).to_string(),
        "peers-generation" => state.cluster.peers_generation().to_string(),
        "rebalance-generation" => state.partition_generation.load(Relaxed).to_string(),
        "peers-clear-std" | "peers-clear-alt" => peers_clear(state, local),
        "peers-tls-std" | "peers-tls-alt" | "alumni-clear-std" | "alumni-tls-std" => {
            format!(
                "{},{},[]",
                state.cluster.peers_generation(),
                state.config.service_port_reported(local)
            )
        }
        "services" | "services-alternate" => state
            .cluster
            .peers()
            .iter()
            .map(|p| host_port(p.service))
            .collect::<Vec<_>>()
            .join(";"),
        "services-alumni" => String::new(),
        "service" | "service-clear-std" | "service-clear-alt" => service_address(state, local),
        "service-tls-std" | "service-tls-alt" => String::new(),
        "partitions" => PARTITIONS.to_string(),
        "replicas" => replicas(state, true),
        "replicas-all" => replicas(state, false),
        "replicas-master" => replicas_master(state),
        "namespaces" => state
            .db
            .namespaces()
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(";"),
        "namespace" => namespace_info(state, &cmd),
        "sets" => sets_info(state, &cmd),
        "bins" => bins_info(state, &cmd),
        "statistics" => statistics(state),
        "get-config" => get_config(state, &cmd),
        "set-config" => set_config(state, &cmd),
        "cluster-stable" => cluster_stable(state, &cmd),
        "partition-checksums" => partition_checksums(state, &cmd),
        "cluster-key" => cluster_key(state),
        "tip" => tip(state, &cmd),
        "quiesce" => match (state.arc(), tokio::runtime::Handle::try_current()) {
            (Some(st), Ok(rt)) if !state.cluster.is_leaving() && !state.cluster.is_quiescing() => {
                // The same hand-over as SIGTERM, without stopping: the node hands its
                // partitions over, leaves the cluster and forwards requests to it until
                // `quiesce-undo`.
                rt.spawn(async move { crate::ownership::leave(&st).await });
                "ok".to_string()
            }
            (Some(_), Ok(_)) => "ok".to_string(),
            _ => "ERROR::node is shutting down".to_string(),
        },
        "recluster" => {
            if state.cluster.recluster() {
                "ok".to_string()
            } else {
                "ignored-by-non-principal".to_string()
            }
        }
        "quiesce-undo" => {
            state.cluster.set_quiescing(false);
            crate::ownership::stop_forwarding(state);
            state.cluster.clear_leaving();
            "ok".to_string()
        }
        "tip-clear" => tip_clear(state, &cmd),
        "services-alumni-reset" => {
            state.cluster.alumni_reset();
            "ok".to_string()
        }
        "truncate" => truncate(state, &cmd, false),
        "truncate-namespace" => truncate(state, &cmd, true),
        "user-agent-set" => "ok".to_string(),
        "udf-list" | "sindex-list" | "sindex" => String::new(),
        "query-show" | "scan-show" => query_show(state, &cmd),
        "sindex-exists" => "false".to_string(),
        "rack-ids" | "racks" => "ERROR:25:enterprise only".to_string(),
        _ => unrecognized(),
    }
}

impl crate::config::Config {
    /// The service port clients should use: the configured one, or the bound one when the
    /// node was started on port 0.
    fn service_port_reported(&self, local: Option<SocketAddr>) -> u16 {
        match local {
            Some(a) if self.service_port == 0 => a.port(),
            _ => self.service_port,
        }
    }
}

/// This node's client address: the address the asking client reached us on, which is by
/// construction one it can use (so clients never mistake the node for a load balancer).
fn service_address(state: &NodeState, local: Option<SocketAddr>) -> String {
    match local {
        Some(a) => match a {
            SocketAddr::V4(v4) => format!("{}:{}", v4.ip(), v4.port()),
            SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
        },
        None => format!("{}:{}", state.config.address, state.config.service_port),
    }
}

fn host_port(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => format!("{}:{}", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

/// `gen,default-port,[[node-id,,[addr:port]],...]`: every other member and the address
/// clients should use for it (self is not listed).
fn peers_clear(state: &NodeState, local: Option<SocketAddr>) -> String {
    let port = state.config.service_port_reported(local);
    let peers: Vec<String> = state
        .cluster
        .peers()
        .iter()
        .map(|p| {
            let addr = if p.service.port() == port {
                match p.service.ip() {
                    std::net::IpAddr::V4(v4) => v4.to_string(),
                    std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                }
            } else {
                host_port(p.service)
            };
            format!("[{},,[{addr}]]", p.node)
        })
        .collect();
    format!(
        "{},{},[{}]",
        state.cluster.peers_generation(),
        port,
        peers.join(",")
    )
}

/// The client-visible maps of this node for namespace `own`: one bitmap per replica column.
fn column_bitmaps(
    state: &NodeState,
    own: &crate::ownership::NsOwnership,
) -> Vec<[u8; PARTITIONS / 8]> {
    let routes = own.routes();
    let n = routes.replicas.max(1);
    let mut maps = vec![[0u8; PARTITIONS / 8]; n];
    for (pid, cols) in routes.columns.iter().enumerate() {
        for (c, node) in cols.iter().enumerate().take(n) {
            if *node == state.node_id {
                maps[c][pid >> 3] |= 0x80 >> (pid & 7);
            }
        }
    }
    maps
}

/// `ns:regime,N,bitmap...` per namespace: column 0 marks the partitions this node is
/// (working) master of, column i the ones it holds as replica i. Regime 0 = AP.
fn replicas(state: &NodeState, with_regime: bool) -> String {
    let b64 = &base64::engine::general_purpose::STANDARD;
    let mut out = String::new();
    for (i, own) in state.ownership.namespaces.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        let maps = column_bitmaps(state, own);
        let _ = write!(out, "{}:", own.ns.name);
        if with_regime {
            out.push_str("0,");
        }
        let _ = write!(out, "{}", maps.len());
        for m in &maps {
            out.push(',');
            out.push_str(&b64.encode(m));
        }
    }
    out
}

fn replicas_master(state: &NodeState) -> String {
    let b64 = &base64::engine::general_purpose::STANDARD;
    state
        .ownership
        .namespaces
        .iter()
        .map(|own| {
            let maps = column_bitmaps(state, own);
            format!("{}:{}", own.ns.name, b64.encode(maps[0]))
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn find_ns<'s>(state: &'s NodeState, name: &str) -> Option<&'s Namespace> {
    state.db.namespace(name.as_bytes()).map(|n| n.as_ref())
}

fn namespace_config_pairs(state: &NodeState, ns: &Namespace) -> Vec<(&'static str, String)> {
    let s = &ns.settings;
    let mut pairs = vec![
        ("replication-factor", ns.replication_factor.to_string()),
        ("memory-size", s.memory_size_bytes.load(Relaxed).to_string()),
        ("default-ttl", s.default_ttl_s.load(Relaxed).to_string()),
        ("max-ttl", s.max_ttl_s.load(Relaxed).to_string()),
        ("nsup-period", s.nsup_period_s.load(Relaxed).to_string()),
        (
            "allow-ttl-without-nsup",
            s.allow_ttl_without_nsup.load(Relaxed).to_string(),
        ),
        (
            "max-record-size",
            s.max_record_size_bytes.load(Relaxed).to_string(),
        ),
        (
            "stop-writes-pct",
            s.stop_writes_pct.load(Relaxed).to_string(),
        ),
        ("evict-used-pct", s.evict_used_pct.load(Relaxed).to_string()),
        (
            "evict-tenths-pct",
            s.evict_tenths_pct.load(Relaxed).to_string(),
        ),
    ];
    match crate::storage::device_config(state, ns) {
        Some(d) => {
            pairs.push(("storage-engine", "device".to_string()));
            let devices: Vec<String> = d.devices.iter().map(|p| p.display().to_string()).collect();
            pairs.push(("device", devices.join(",")));
            pairs.push((
                "filesize",
                d.filesize_bytes.map_or(String::new(), |v| v.to_string()),
            ));
            pairs.push(("write-block-size", d.write_block_size_bytes.to_string()));
            pairs.push(("commit-to-device", d.commit_to_device.to_string()));
            pairs.push(("flush-max-ms", d.flush_max_ms.to_string()));
            pairs.push(("defrag-lwm-pct", d.defrag_lwm_pct.to_string()));
        }
        None => pairs.push(("storage-engine", "memory".to_string())),
    }
    pairs
}

fn namespace_info(state: &NodeState, cmd: &Command<'_>) -> String {
    let name = cmd.args.split('/').next().unwrap_or_default();
    let Some(ns) = find_ns(state, name) else {
        return "type=unknown".to_string();
    };
    let st = &ns.stats;
    let used = st.memory_used_bytes.load(Relaxed);
    let size = ns.settings.memory_size_bytes.load(Relaxed);
    let device = crate::storage::summary_for(state, ns);
    let tombstones = device.as_ref().map_or(0, |d| d.tombstones);
    let stop_writes = ns.at_stop_writes() || device.as_ref().is_some_and(|d| d.stop_writes);
    let routes = state
        .ownership
        .of(&ns.name)
        .map(|o| o.routes())
        .unwrap_or_else(|| std::sync::Arc::new(crate::ownership::Routes::default()));
    let cluster_size = state.cluster.view().succession.len().max(1);
    // Records by this node's role for their partition (one pass over the partition sizes).
    let (mut master, mut prole, mut other) = (0u64, 0u64, 0u64);
    for (pid, cols) in routes.columns.iter().enumerate() {
        let n = ns
            .index
            .partition(shoal_base::PartitionId(pid as u16))
            .read()
            .len() as u64;
        match cols.iter().position(|c| *c == state.node_id) {
            Some(0) => master += n,
            Some(_) => prole += n,
            None => other += n,
        }
    }
    if routes.columns.is_empty() {
        master = st.objects.load(Relaxed);
    }
    let mut pairs: Vec<(String, String)> = vec![
        ("ns_cluster_size".into(), cluster_size.to_string()),
        (
            "effective_replication_factor".into(),
            routes.replicas.max(1).to_string(),
        ),
        ("objects".into(), st.objects.load(Relaxed).to_string()),
        ("tombstones".into(), tombstones.to_string()),
        ("master_objects".into(), master.to_string()),
        ("prole_objects".into(), prole.to_string()),
        ("non_replica_objects".into(), other.to_string()),
        ("memory_used_bytes".into(), used.to_string()),
        ("data_used_bytes".into(), used.to_string()),
        ("data_total_bytes".into(), size.to_string()),
        (
            "data_used_pct".into(),
            (used.saturating_mul(100) / size.max(1)).to_string(),
        ),
        ("stop_writes".into(), stop_writes.to_string()),
        (
            "client_proxy_complete".into(),
            state
                .ownership
                .of(&ns.name)
                .map_or(0, |o| o.proxied_requests.load(Relaxed))
                .to_string(),
        ),
        (
            "migrate_records_transmitted".into(),
            state
                .ownership
                .of(&ns.name)
                .map_or(0, |o| o.migrate_records_sent.load(Relaxed))
                .to_string(),
        ),
        (
            "migrate_records_received".into(),
            state
                .ownership
                .of(&ns.name)
                .map_or(0, |o| o.migrate_records_received.load(Relaxed))
                .to_string(),
        ),
        (
            "migrate_tx_partitions_remaining".into(),
            routes.tx_remaining.to_string(),
        ),
        (
            "migrate_rx_partitions_remaining".into(),
            routes.rx_remaining.to_string(),
        ),
        (
            "migrate_partitions_remaining".into(),
            (routes.tx_remaining + routes.rx_remaining).to_string(),
        ),
    ];
    if let Some(own) = state.ownership.of(&ns.name) {
        pairs.push((
            "migrate_tx_bytes".into(),
            own.migrate_bytes_sent.load(Relaxed).to_string(),
        ));
        pairs.push((
            "migrate_rx_bytes".into(),
            own.migrate_bytes_received.load(Relaxed).to_string(),
        ));
        pairs.extend(estimate_pairs(&own.migrate_estimate()));
    }
    pairs.extend([
        (
            "expired_objects".into(),
            st.expired_objects.load(Relaxed).to_string(),
        ),
        (
            "evicted_objects".into(),
            st.evicted_objects.load(Relaxed).to_string(),
        ),
        (
            "evict_void_time".into(),
            st.evict_void_time.load(Relaxed).to_string(),
        ),
        (
            "truncated_records".into(),
            st.truncated_objects.load(Relaxed).to_string(),
        ),
        (
            "nsup_cycle_count".into(),
            st.nsup_cycles.load(Relaxed).to_string(),
        ),
        (
            "client_read_success".into(),
            st.client_read_success.load(Relaxed).to_string(),
        ),
        (
            "client_read_not_found".into(),
            st.client_read_not_found.load(Relaxed).to_string(),
        ),
        (
            "client_read_error".into(),
            st.client_read_error.load(Relaxed).to_string(),
        ),
        (
            "client_write_success".into(),
            st.client_write_success.load(Relaxed).to_string(),
        ),
        (
            "client_write_error".into(),
            st.client_write_error.load(Relaxed).to_string(),
        ),
        (
            "client_delete_success".into(),
            st.client_delete_success.load(Relaxed).to_string(),
        ),
        (
            "client_delete_not_found".into(),
            st.client_delete_not_found.load(Relaxed).to_string(),
        ),
        (
            "client_delete_error".into(),
            st.client_delete_error.load(Relaxed).to_string(),
        ),
        (
            "client_udf_error".into(),
            st.client_udf_error.load(Relaxed).to_string(),
        ),
        (
            "fail_generation".into(),
            st.fail_generation.load(Relaxed).to_string(),
        ),
        (
            "fail_record_too_big".into(),
            st.fail_record_too_big.load(Relaxed).to_string(),
        ),
        (
            "batch_sub_read_success".into(),
            st.batch_sub_read_success.load(Relaxed).to_string(),
        ),
        (
            "batch_sub_write_success".into(),
            st.batch_sub_write_success.load(Relaxed).to_string(),
        ),
        (
            "scan_basic_complete".into(),
            st.scan_basic_complete.load(Relaxed).to_string(),
        ),
        (
            "scan_basic_error".into(),
            st.scan_basic_error.load(Relaxed).to_string(),
        ),
    ]);
    if let Some(d) = &device {
        let reason: String = d
            .recovery_reason
            .chars()
            .map(|c| if matches!(c, ';' | ':' | '=') { ' ' } else { c })
            .collect();
        let rows: [(&str, String); 20] = [
            ("device_total_bytes", d.total_bytes.to_string()),
            ("device_used_bytes", d.used_bytes.to_string()),
            ("device_free_pct", d.free_pct.to_string()),
            ("device_available_pct", d.free_pct.to_string()),
            ("device_free_blocks", d.free_blocks.to_string()),
            ("defrag_q", d.defrag_queue.to_string()),
            ("defrag_blocks", d.defrag_blocks.to_string()),
            ("defrag_moved_records", d.defrag_moved_records.to_string()),
            ("device_block_writes", d.block_writes.to_string()),
            ("device_syncs", d.syncs.to_string()),
            ("device_reads", d.device_reads.to_string()),
            ("device_cache_reads", d.cache_reads.to_string()),
            ("poisoned", d.poisoned.to_string()),
            ("corrupt_records", d.corrupt_reads.to_string()),
            (
                "cold_start_corrupt_records",
                d.corrupt_skipped_at_start.to_string(),
            ),
            ("storage_read_errors", d.read_errors.to_string()),
            ("storage_write_errors", d.write_errors.to_string()),
            ("storage_stop_writes", d.stop_writes.to_string()),
            ("storage_recovery", d.recovery.to_string()),
            ("storage_recovery_reason", reason),
        ];
        pairs.extend(rows.into_iter().map(|(k, v)| (k.to_string(), v)));
    }
    pairs.extend(
        namespace_config_pairs(state, ns)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
    );
    join_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// The rate and ETA keys of a migration estimate: partitions and bytes per second (0 while
/// unknown) and `migrate_eta_s` (seconds; 0 when nothing remains, -1 while unknown: no
/// progress seen yet).
fn estimate_pairs(e: &shoal_cluster::pace::Estimate) -> [(String, String); 3] {
    [
        (
            "migrate_partitions_per_s".into(),
            format!("{:.1}", e.partitions_per_s.unwrap_or(0.0)),
        ),
        (
            "migrate_bytes_per_s".into(),
            format!("{:.0}", e.bytes_per_s.unwrap_or(0.0)),
        ),
        (
            "migrate_eta_s".into(),
            e.eta_s.map_or_else(|| "-1".to_string(), |s| s.to_string()),
        ),
    ]
}

fn join_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push(';');
        }
        let _ = write!(out, "{k}={v}");
    }
    out
}

fn set_line(ns: &Namespace, set: &shoal_data::namespace::SetEntry, with_prefix: bool) -> String {
    let mut s = String::new();
    if with_prefix {
        let _ = write!(s, "ns={}:set={}:", ns.name, set.name);
    }
    let _ = write!(
        s,
        "objects={}:tombstones=0:data_used_bytes={}:truncate_lut={}:sindexes=0:index_populating=false:truncating=false:default-ttl=0:disable-eviction=false:enable-index=false:stop-writes-count=0:stop-writes-size=0",
        set.objects.load(Relaxed),
        set.memory_bytes.load(Relaxed),
        set.truncate_lut_ms.load(Relaxed),
    );
    s
}

fn sets_info(state: &NodeState, cmd: &Command<'_>) -> String {
    let mut parts = cmd.args.split('/').filter(|p| !p.is_empty());
    let ns_filter = parts.next();
    let set_filter = parts.next();
    if let (Some(ns_name), Some(set_name)) = (ns_filter, set_filter) {
        return find_ns(state, ns_name)
            .and_then(|ns| {
                let id = ns.set_id(set_name.as_bytes())?;
                Some(set_line(ns, ns.set_entry(id)?, false))
            })
            .unwrap_or_default();
    }
    let mut out = String::new();
    for ns in state.db.namespaces() {
        if ns_filter.is_some_and(|f| f != ns.name) {
            continue;
        }
        for (_, set) in ns.sets() {
            out.push_str(&set_line(ns, set, true));
            out.push(';');
        }
    }
    out
}

/// `ns:bin_names=N,bin_names_quota=65535,name,...` computed from the stored records.
fn bins_info(state: &NodeState, cmd: &Command<'_>) -> String {
    let filter = cmd.args.split('/').find(|p| !p.is_empty());
    let mut out = String::new();
    for ns in state.db.namespaces() {
        if filter.is_some_and(|f| f != ns.name) {
            continue;
        }
        let mut names = std::collections::BTreeSet::new();
        for p in 0..PARTITIONS {
            let part = ns.index.partition(shoal_base::PartitionId(p as u16)).read();
            for (d, r) in part.iter() {
                let Ok(r) = ns.load(d, r) else { continue };
                for b in r.bins() {
                    if !names.contains(b.name) {
                        names.insert(b.name.to_vec());
                    }
                }
            }
        }
        let _ = write!(
            out,
            "{}:bin_names={},bin_names_quota=65535",
            ns.name,
            names.len()
        );
        for n in &names {
            out.push(',');
            out.push_str(&String::from_utf8_lossy(n));
        }
        out.push(';');
    }
    out
}

fn statistics(state: &NodeState) -> String {
    let view = state.cluster.view();
    let st = &state.stats;
    let objects: u64 = state
        .db
        .namespaces()
        .iter()
        .map(|n| n.stats.objects.load(Relaxed))
        .sum();
    let pairs = [
        // Size and key from the same view, so a reader never pairs one view's size with
        // another's key.
        ("cluster_size", view.succession.len().to_string()),
        ("cluster_key", format!("{:X}", view.key)),
        ("cluster_integrity", "true".to_string()),
        ("cluster_is_member", (view.key != 0).to_string()),
        (
            "cluster_principal",
            view.principal().map_or("0".to_string(), |p| p.to_string()),
        ),
        ("heartbeat_peers", state.cluster.adjacency_len().to_string()),
        ("uptime", state.started.elapsed().as_secs().to_string()),
        ("objects", objects.to_string()),
        (
            "client_connections",
            st.client_connections.load(Relaxed).to_string(),
        ),
        (
            "client_connections_opened",
            st.client_connections_opened.load(Relaxed).to_string(),
        ),
        (
            "client_connections_closed",
            st.client_connections_closed.load(Relaxed).to_string(),
        ),
        (
            "client_connections_refused",
            st.client_connections_refused.load(Relaxed).to_string(),
        ),
        (
            "client_connections_reaped",
            st.client_connections_reaped.load(Relaxed).to_string(),
        ),
        ("proto_errors", st.proto_errors.load(Relaxed).to_string()),
        ("info_requests", st.info_requests.load(Relaxed).to_string()),
        (
            "batch_index_initiate",
            st.batch_index_initiate.load(Relaxed).to_string(),
        ),
        (
            "batch_index_complete",
            st.batch_index_complete.load(Relaxed).to_string(),
        ),
        (
            "batch_index_error",
            st.batch_index_error.load(Relaxed).to_string(),
        ),
        ("scans_started", st.scans_started.load(Relaxed).to_string()),
        (
            "compressed_requests",
            st.compressed_requests.load(Relaxed).to_string(),
        ),
        ("migrate_partitions_remaining", {
            let (rx, tx) = state.ownership.migrations_remaining();
            (rx + tx).to_string()
        }),
    ];
    let own = &state.ownership.namespaces;
    let sum = |pick: fn(&crate::ownership::NsOwnership) -> &AtomicU64| {
        own.iter()
            .map(|n| pick(n).load(Relaxed))
            .sum::<u64>()
            .to_string()
    };
    let mut pairs: Vec<(String, String)> =
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    pairs.push(("migrate_tx_bytes".into(), sum(|n| &n.migrate_bytes_sent)));
    pairs.push((
        "migrate_rx_bytes".into(),
        sum(|n| &n.migrate_bytes_received),
    ));
    pairs.extend(estimate_pairs(&state.ownership.migrate_estimate()));
    join_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// A single node's cluster key: derived from the node id, stable for the node's life.
/// The committed cluster key in hex (Aerospike prints it with `%lX`).
fn cluster_key(state: &NodeState) -> String {
    format!("{:X}", state.cluster.view().key)
}

fn cluster_stable(state: &NodeState, cmd: &Command<'_>) -> String {
    let view = state.cluster.view();
    if view.key == 0 {
        return "ERROR::cluster-not-formed".to_string();
    }
    // Stable means serving: a node that has not yet heard every member pulse the committed
    // view (`in_sync`) refuses requests with PARTITION_UNAVAILABLE, so it must not call the
    // cluster stable either. (Found by tests/python/test_cluster.py: a put sent right after
    // all three nodes answered `cluster-stable:size=3` was refused with 11 for up to ~100 ms.)
    if state.ownership.waiting() || !state.cluster.in_sync() {
        return "ERROR::unstable-cluster".to_string();
    }
    if let Some(size) = cmd.param("size") {
        if size.parse::<usize>().ok() != Some(view.succession.len()) {
            return "ERROR::cluster-size-mismatch".to_string();
        }
    }
    let ignore_migrations = cmd
        .param("ignore-migrations")
        .is_some_and(|v| v == "true" || v == "yes");
    // Settled (every owner holds every partition complete) is not enough: a node may hear
    // that a partition arrived before its own emigration of it has finished, and Aerospike
    // answers `cluster-stable` only once no migration is left.
    if let Some(ns) = cmd.param("namespace") {
        let Some(own) = state.ownership.of(ns) else {
            return "ERROR::unknown-namespace".to_string();
        };
        let r = own.routes();
        if !ignore_migrations && (!r.settled || r.rx_remaining + r.tx_remaining > 0) {
            return "ERROR::unstable-cluster".to_string();
        }
    } else if !ignore_migrations
        && (!state.ownership.settled() || state.ownership.migrations_remaining() != (0, 0))
    {
        return "ERROR::unstable-cluster".to_string();
    }
    // Every namespace must have planned the committed view.
    if state
        .ownership
        .namespaces
        .iter()
        .any(|o| o.routes().key != view.key)
    {
        return "ERROR::unstable-cluster".to_string();
    }
    cluster_key(state)
}

/// `partition-checksums:namespace=NS` (shoal's own extension, for checking that replicas
/// agree): `pid:role:records:checksum` for every partition this node holds a complete copy of,
/// joined by `;`, in partition order. `role` is `master` (this node is the working master),
/// `replica` (another owner column) or `extra` (a complete copy this node no longer owns and
/// has not yet dropped); `checksum` is 16 hex digits (`shoal_data::checksum`: live records
/// only, tombstones and expired records left out). A partition being filled, or held by a
/// node that is waiting to join its cluster, is not listed: it is not a complete copy.
///
/// Runs on the connection's worker and reads every record of the namespace (device records
/// from the device), taking each partition's read lock for at most
/// `shoal_data::checksum::CHUNK_RECORDS` records at a time, so writes wait at most that long.
fn partition_checksums(state: &NodeState, cmd: &Command<'_>) -> String {
    let Some(name) = cmd.param("namespace") else {
        return "ERROR:4:namespace required".to_string();
    };
    let Some(own) = state.ownership.of(name) else {
        return "ERROR::unknown-namespace".to_string();
    };
    if state.ownership.waiting() {
        // Its routes still say "alone, everything complete", but it holds nothing it may
        // vouch for until its cluster has planned.
        return "ERROR::waiting-to-join".to_string();
    }
    let routes = own.routes();
    let mut out = String::new();
    for pid in 0..PARTITIONS as u16 {
        if !routes.complete.get(pid) {
            continue;
        }
        let role = match routes
            .columns
            .get(usize::from(pid))
            .and_then(|cols| cols.iter().position(|n| *n == state.node_id))
        {
            Some(0) => "master",
            Some(_) => "replica",
            None => "extra",
        };
        let sum =
            match shoal_data::checksum::partition_checksum(&own.ns, shoal_base::PartitionId(pid)) {
                Ok(s) => s,
                Err(e) => return format!("ERROR::partition {pid}: {e}"),
            };
        // Still complete after the walk? Ownership publishes "not complete" before it drops
        // a copy, so a copy that is still listed now was not dropped while it was summed.
        if !own.routes().complete.get(pid) {
            continue;
        }
        if !out.is_empty() {
            out.push(';');
        }
        let _ = write!(out, "{pid}:{role}:{}:{:016x}", sum.records, sum.checksum);
    }
    out
}

fn get_config(state: &NodeState, cmd: &Command<'_>) -> String {
    let context = cmd.param("context").unwrap_or("service");
    match context {
        "service" => {
            let c = &state.config;
            let pairs = [
                (
                    "cluster-name",
                    c.cluster_name.clone().unwrap_or_else(|| "null".to_string()),
                ),
                ("node-id", state.node_id.to_string()),
                (
                    "proto-fd-max",
                    state.max_client_connections.load(Relaxed).to_string(),
                ),
                (
                    "proto-fd-idle-ms",
                    (state.client_idle_timeout_s.load(Relaxed) * 1000).to_string(),
                ),
                ("cluster-size-min", c.cluster_size_min.to_string()),
                ("migrate-threads", c.migrate_threads.to_string()),
                (
                    "migrate-max-mbps",
                    state.migrate_max_mbps.load(Relaxed).to_string(),
                ),
            ];
            join_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        }
        "network" => {
            let c = &state.config;
            let mut pairs = vec![
                ("service.address", c.address.to_string()),
                ("service.port", c.service_port.to_string()),
                ("fabric.port", c.fabric_port.to_string()),
                ("heartbeat.port", c.heartbeat_port.to_string()),
                ("heartbeat.interval", c.heartbeat_interval_ms.to_string()),
                (
                    "heartbeat.timeout",
                    c.heartbeat_timeout_intervals.to_string(),
                ),
            ];
            // Seeds and tipped endpoints, one pair each as Aerospike lists its mesh seeds:
            // what `tip` added and `tip-clear` removed is visible here.
            for e in state.cluster.pinned_endpoints() {
                pairs.push(("heartbeat.mesh-seed-address-port", host_port(e)));
            }
            join_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        }
        "namespace" => {
            let Some(ns) = cmd.param("id").and_then(|id| find_ns(state, id)) else {
                return "ERROR::namespace not found".to_string();
            };
            let pairs = namespace_config_pairs(state, ns);
            join_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        }
        _ => "ERROR::invalid context".to_string(),
    }
}

fn set_config(state: &NodeState, cmd: &Command<'_>) -> String {
    let context = cmd.param("context").unwrap_or_default();
    let mut changed = 0;
    for (k, v) in cmd.params() {
        if matches!(k, "context" | "id") {
            continue;
        }
        let ok = match context {
            "service" => match k {
                "proto-fd-max" => v
                    .parse()
                    .map(|n: usize| state.max_client_connections.store(n.max(1), Relaxed))
                    .is_ok(),
                "proto-fd-idle-ms" => v
                    .parse()
                    .map(|ms: u64| {
                        state
                            .client_idle_timeout_s
                            .store((ms / 1000).max(1), Relaxed)
                    })
                    .is_ok(),
                "migrate-max-mbps" => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= crate::config::MIGRATE_MAX_MBPS_MAX)
                    .map(|n| state.migrate_max_mbps.store(n, Relaxed))
                    .is_some(),
                _ => false,
            },
            "namespace" => {
                let Some(ns) = cmd.param("id").and_then(|id| find_ns(state, id)) else {
                    return "ERROR::namespace not found".to_string();
                };
                set_namespace_key(ns, k, v)
            }
            _ => return "ERROR::invalid context".to_string(),
        };
        if !ok {
            return format!("ERROR::invalid or static parameter {k}");
        }
        changed += 1;
        info!(target: "shoal::info", context, key = k, value = v, "set-config");
    }
    if changed == 0 {
        return "ERROR::no parameter".to_string();
    }
    "ok".to_string()
}

fn set_namespace_key(ns: &Namespace, key: &str, value: &str) -> bool {
    let s = &ns.settings;
    let secs = || crate::config::parse_duration_s(value).ok();
    let size = || crate::config::parse_size(value).ok();
    match key {
        "default-ttl" => secs()
            .filter(|v| *v <= s.max_ttl_s.load(Relaxed))
            .map(|v| s.default_ttl_s.store(v, Relaxed))
            .is_some(),
        "max-ttl" => secs()
            .filter(|v| *v <= shoal_base::constants::TTL_MAX_S)
            .map(|v| s.max_ttl_s.store(v, Relaxed))
            .is_some(),
        "nsup-period" => secs().map(|v| s.nsup_period_s.store(v, Relaxed)).is_some(),
        "allow-ttl-without-nsup" => match value {
            "true" => {
                s.allow_ttl_without_nsup.store(true, Relaxed);
                true
            }
            "false" => {
                s.allow_ttl_without_nsup.store(false, Relaxed);
                true
            }
            _ => false,
        },
        "max-record-size" => size()
            .filter(|v| *v >= 64)
            .map(|v| s.max_record_size_bytes.store(v, Relaxed))
            .is_some(),
        "memory-size" => size()
            .filter(|v| *v >= 1 << 20)
            .map(|v| s.memory_size_bytes.store(v, Relaxed))
            .is_some(),
        "stop-writes-pct" => value
            .parse::<u32>()
            .ok()
            .filter(|v| (1..=100).contains(v))
            .map(|v| s.stop_writes_pct.store(v, Relaxed))
            .is_some(),
        "evict-used-pct" => value
            .parse::<u32>()
            .ok()
            .filter(|v| *v <= 100)
            .map(|v| s.evict_used_pct.store(v, Relaxed))
            .is_some(),
        "evict-tenths-pct" => value
            .parse::<u32>()
            .ok()
            .filter(|v| (1..=1000).contains(v))
            .map(|v| s.evict_tenths_pct.store(v, Relaxed))
            .is_some(),
        _ => false,
    }
}

fn truncate(state: &NodeState, cmd: &Command<'_>, whole_namespace: bool) -> String {
    let Some(ns_name) = cmd.param("namespace") else {
        return "ERROR:4:namespace required".to_string();
    };
    let Some(ns) = find_ns(state, ns_name) else {
        // The official server accepts a truncate of a namespace it does not have (it is
        // recorded cluster-wide for when the namespace appears); there is nothing to remove.
        info!(target: "shoal::truncate", namespace = ns_name, "truncate of an unknown namespace: nothing to do");
        return "ok".to_string();
    };
    let set = if whole_namespace {
        None
    } else {
        cmd.param("set")
    };
    let lut = match cmd.param("lut") {
        Some(v) => match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return "ERROR:4:bad lut".to_string(),
        },
        None => None,
    };
    match maintenance::truncate(ns, set, lut) {
        Ok(threshold) => {
            info!(target: "shoal::truncate", namespace = ns_name, set = set.unwrap_or(""), threshold_ms = threshold, "truncating");
            // On a device namespace the threshold must survive a restart (cold start skips
            // what it truncated), as Aerospike keeps it in system metadata.
            if ns.storage().is_some() {
                if let Err(e) = crate::storage::persist_truncates(&state.config.data_dir, ns) {
                    tracing::warn!(target: "shoal::truncate", namespace = ns_name, "cannot persist the truncation: {e}");
                    return "ERROR:1:cannot persist the truncation; see the node log".to_string();
                }
            }
            // Every member applies the same threshold (Aerospike keeps it in system metadata).
            if let (Some(st), Ok(_)) = (state.arc(), tokio::runtime::Handle::try_current()) {
                crate::ownership::broadcast_truncate(&st, ns_name, set, threshold);
            }
            // Truncated records are already invisible; free their memory in the background.
            if let (Some(ns), Ok(rt)) = (
                state.db.namespace(ns_name.as_bytes()).cloned(),
                tokio::runtime::Handle::try_current(),
            ) {
                rt.spawn_blocking(move || maintenance::sweep(&ns));
            }
            "ok".to_string()
        }
        Err(e) => format!("ERROR:{}:{e}", e.result_code().code()),
    }
}

/// `query-show` (all jobs, `;`-separated) or `query-show:id=N` / `trid=N` (one job; a job that
/// is not known answers `ERROR:2`, which clients read as finished).
fn query_show(state: &NodeState, cmd: &Command<'_>) -> String {
    let id = cmd.param("id").or_else(|| cmd.param("trid"));
    match id {
        None => state
            .jobs
            .all()
            .iter()
            .map(|j| j.describe())
            .collect::<Vec<_>>()
            .join(";"),
        Some(id) => match id.parse::<u64>().ok().and_then(|t| state.jobs.find(t)) {
            Some(job) => job.describe(),
            None => "ERROR:2:job not found".to_string(),
        },
    }
}

/// `tip:host=H;port=P`: adds a heartbeat endpoint to contact (like a seed given at run time).
fn tip(state: &NodeState, cmd: &Command<'_>) -> String {
    let (Some(host), Some(port)) = (cmd.param("host"), cmd.param("port")) else {
        return "ERROR:4:tip needs host and port".to_string();
    };
    let Ok(port) = port.parse::<u16>() else {
        return "ERROR:4:bad port".to_string();
    };
    match (host, port).to_socket_addrs_first() {
        Some(addr) => {
            state.cluster.tip(addr);
            info!(target: "shoal::cluster", %addr, "tip");
            "ok".to_string()
        }
        None => "ERROR:4:cannot resolve host".to_string(),
    }
}

/// `tip-clear:host-port-list=H:P,H:P` or `host-port-list=all` (every endpoint that is not a
/// live peer): forgets heartbeat endpoints, e.g. of containers that are gone for good.
fn tip_clear(state: &NodeState, cmd: &Command<'_>) -> String {
    let Some(list) = cmd.param("host-port-list") else {
        return "ERROR:4:tip-clear needs host-port-list".to_string();
    };
    if list == "all" {
        state.cluster.tip_clear(None);
        return "ok".to_string();
    }
    for item in list.split(',').filter(|s| !s.is_empty()) {
        let Some((host, port)) = item.rsplit_once(':') else {
            return format!("ERROR:4:bad host:port {item}");
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let Some(addr) = port
            .parse::<u16>()
            .ok()
            .and_then(|p| (host, p).to_socket_addrs_first())
        else {
            return format!("ERROR:4:bad host:port {item}");
        };
        state.cluster.tip_clear(Some(addr));
    }
    "ok".to_string()
}

/// Resolves to the first address (blocking, as info commands are short and rare).
trait FirstAddr {
    fn to_socket_addrs_first(&self) -> Option<SocketAddr>;
}

impl FirstAddr for (&str, u16) {
    fn to_socket_addrs_first(&self) -> Option<SocketAddr> {
        use std::net::ToSocketAddrs;
        self.to_socket_addrs().ok()?.next()
    }
}
