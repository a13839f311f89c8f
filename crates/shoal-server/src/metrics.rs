//! Prometheus text exposition of the node's counters, and the periodic ticker log line.
//! Both read the very counters `statistics` and `namespace/<ns>` report, so the three views
//! never disagree. The exposition is rendered by hand: the counters already live in the node's
//! own structs, and a registry crate would keep a second copy of each.

use crate::histogram::Histogram;
use crate::state::{NodeState, OpKind};
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One metric: its header, then one `name{labels} value` line per sample.
fn samples(out: &mut String, name: &str, kind: &str, help: &str, rows: Vec<(String, String)>) {
    header(out, name, kind, help);
    for (labels, value) in rows {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

fn histogram(out: &mut String, name: &str, label: &str, h: &Histogram) {
    for (bound, count) in h.cumulative() {
        let le = match bound {
            Some(us) => format!("{}", us as f64 / 1e6),
            None => "+Inf".to_string(),
        };
        let _ = writeln!(out, "{name}_bucket{{{label},le=\"{le}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_sum{{{label}}} {}", h.sum_us() as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{{{label}}} {}", h.count());
}

/// The whole `/metrics` page.
pub fn render(state: &NodeState) -> String {
    let mut o = String::with_capacity(16 * 1024);
    let st = &state.stats;
    header(
        &mut o,
        "shoal_build_info",
        "gauge",
        "Node identity and the Aerospike build it is compatible with.",
    );
    let _ = writeln!(
        o,
        "shoal_build_info{{node_id=\"{}\",build=\"{}\",version=\"{}\"}} 1",
        state.node_id,
        crate::info::BUILD,
        env!("CARGO_PKG_VERSION")
    );
    header(
        &mut o,
        "shoal_uptime_seconds",
        "gauge",
        "Seconds since the node started.",
    );
    let _ = writeln!(
        o,
        "shoal_uptime_seconds {}",
        state.started.elapsed().as_secs()
    );
    header(
        &mut o,
        "shoal_cluster_size",
        "gauge",
        "Nodes in the cluster this node belongs to.",
    );
    let _ = writeln!(
        o,
        "shoal_cluster_size {}",
        state.cluster.view().succession.len()
    );
    header(
        &mut o,
        "shoal_migrate_partitions_remaining",
        "gauge",
        "Partitions still to migrate to (rx) or from (tx) this node.",
    );
    let (rx, tx) = state.ownership.migrations_remaining();
    let _ = writeln!(
        o,
        "shoal_migrate_partitions_remaining{{direction=\"rx\"}} {rx}"
    );
    let _ = writeln!(
        o,
        "shoal_migrate_partitions_remaining{{direction=\"tx\"}} {tx}"
    );
    header(
        &mut o,
        "shoal_cluster_stable",
        "gauge",
        "1 when this node's partition map is agreed and every owner holds its partitions.",
    );
    let _ = writeln!(
        o,
        "shoal_cluster_stable {}",
        u8::from(state.ownership.settled() && !state.ownership.waiting())
    );
    header(
        &mut o,
        "shoal_partition_generation",
        "gauge",
        "Bumped whenever the partition map clients see changes.",
    );
    let _ = writeln!(
        o,
        "shoal_partition_generation {}",
        state
            .partition_generation
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    {
        use std::sync::atomic::Ordering::Relaxed;
        let nss = &state.ownership.namespaces;
        let tx_rx = |sent: &dyn Fn(&crate::ownership::NsOwnership) -> u64,
                     received: &dyn Fn(&crate::ownership::NsOwnership) -> u64| {
            nss.iter()
                .flat_map(|own| {
                    let n = &own.ns.name;
                    [
                        (
                            format!("namespace=\"{n}\",direction=\"tx\""),
                            sent(own).to_string(),
                        ),
                        (
                            format!("namespace=\"{n}\",direction=\"rx\""),
                            received(own).to_string(),
                        ),
                    ]
                })
                .collect::<Vec<_>>()
        };
        let per_ns = |value: &dyn Fn(&crate::ownership::NsOwnership) -> String| {
            nss.iter()
                .map(|own| (format!("namespace=\"{}\"", own.ns.name), value(own)))
                .collect::<Vec<_>>()
        };
        samples(
            &mut o,
            "shoal_migrate_records_total",
            "counter",
            "Records sent (tx) and received (rx) by migrations and replication.",
            tx_rx(&|own| own.migrate_records_sent.load(Relaxed), &|own| {
                own.migrate_records_received.load(Relaxed)
            }),
        );
        samples(
            &mut o,
            "shoal_migrate_bytes_total",
            "counter",
            "Bytes of record data sent (tx) and received (rx) by migrations (what migrate-max-mbps limits on the sending side).",
            tx_rx(
                &|own| own.migrate_bytes_sent.load(Relaxed),
                &|own| own.migrate_bytes_received.load(Relaxed),
            ),
        );
        let estimates: Vec<shoal_cluster::pace::Estimate> =
            nss.iter().map(|own| own.migrate_estimate()).collect();
        let per_estimate = |value: &dyn Fn(&shoal_cluster::pace::Estimate) -> String| {
            nss.iter()
                .zip(&estimates)
                .map(|(own, e)| (format!("namespace=\"{}\"", own.ns.name), value(e)))
                .collect::<Vec<_>>()
        };
        samples(
            &mut o,
            "shoal_migrate_partitions_per_second",
            "gauge",
            "Partitions this node's migrations complete per second (sent and received, recent seconds weighted most; 0 while unknown).",
            per_estimate(&|e| format!("{:.3}", e.partitions_per_s.unwrap_or(0.0))),
        );
        samples(
            &mut o,
            "shoal_migrate_bytes_per_second",
            "gauge",
            "Record bytes this node's migrations move per second (sent and received; 0 while unknown).",
            per_estimate(&|e| format!("{:.0}", e.bytes_per_s.unwrap_or(0.0))),
        );
        samples(
            &mut o,
            "shoal_migrate_eta_seconds",
            "gauge",
            "Seconds until this node's migrations finish at the current rate: 0 when none remain, -1 while unknown.",
            per_estimate(&|e| {
                e.eta_s
                    .map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX))
                    .to_string()
            }),
        );
        header(
            &mut o,
            "shoal_migrate_max_bytes_per_second",
            "gauge",
            "The live migrate-max-mbps limit in bytes per second (0 = unlimited).",
        );
        let _ = writeln!(
            o,
            "shoal_migrate_max_bytes_per_second {}",
            state.migrate_max_mbps.load(Relaxed).saturating_mul(1 << 20)
        );
        samples(
            &mut o,
            "shoal_proxied_requests_total",
            "counter",
            "Client requests this node forwarded to the partition's working master.",
            per_ns(&|own| own.proxied_requests.load(Relaxed).to_string()),
        );
        samples(
            &mut o,
            "shoal_replication_failures_total",
            "counter",
            "Writes applied here that some other owner did not confirm (commit level all: answered as a timeout).",
            per_ns(&|own| own.replication_failures.load(Relaxed).to_string()),
        );
        samples(
            &mut o,
            "shoal_replication_deferred_failures_total",
            "counter",
            "Of those, writes with commit level master (already acknowledged; the copy catches up at the next write or migration).",
            per_ns(&|own| own.replication_deferred_failures.load(Relaxed).to_string()),
        );
    }
    header(
        &mut o,
        "shoal_client_connections",
        "gauge",
        "Open client connections.",
    );
    let _ = writeln!(
        o,
        "shoal_client_connections {}",
        st.client_connections.load(Relaxed)
    );
    for (name, help, v) in [
        (
            "shoal_client_connections_opened_total",
            "Client connections accepted.",
            st.client_connections_opened.load(Relaxed),
        ),
        (
            "shoal_client_connections_refused_total",
            "Client connections refused at max-client-connections.",
            st.client_connections_refused.load(Relaxed),
        ),
        (
            "shoal_client_connections_reaped_total",
            "Idle client connections closed.",
            st.client_connections_reaped.load(Relaxed),
        ),
        (
            "shoal_proto_errors_total",
            "Malformed requests (closed connections or parameter errors).",
            st.proto_errors.load(Relaxed),
        ),
        (
            "shoal_info_requests_total",
            "Info protocol requests.",
            st.info_requests.load(Relaxed),
        ),
        (
            "shoal_batch_requests_total",
            "Batch requests started.",
            st.batch_index_initiate.load(Relaxed),
        ),
        (
            "shoal_scans_total",
            "Scans and queries started.",
            st.scans_started.load(Relaxed),
        ),
    ] {
        header(&mut o, name, "counter", help);
        let _ = writeln!(o, "{name} {v}");
    }
    header(
        &mut o,
        "shoal_request_latency_seconds",
        "histogram",
        "Server-side latency of client requests by kind.",
    );
    for kind in OpKind::ALL {
        let label = format!("op=\"{}\"", kind.name());
        histogram(
            &mut o,
            "shoal_request_latency_seconds",
            &label,
            state.latency(kind),
        );
    }

    let gauges: [(&str, &str); 5] = [
        ("shoal_namespace_objects", "Records in the namespace."),
        (
            "shoal_namespace_memory_used_bytes",
            "Memory charged to the namespace's records.",
        ),
        (
            "shoal_namespace_memory_size_bytes",
            "The namespace's memory budget.",
        ),
        (
            "shoal_namespace_stop_writes",
            "1 when the namespace refuses writes.",
        ),
        ("shoal_namespace_sets", "Sets in the namespace."),
    ];
    for (i, (name, help)) in gauges.iter().enumerate() {
        header(&mut o, name, "gauge", help);
        for ns in state.db.namespaces() {
            let v = match i {
                0 => ns.stats.objects.load(Relaxed),
                1 => ns.stats.memory_used_bytes.load(Relaxed),
                2 => ns.settings.memory_size_bytes.load(Relaxed),
                3 => u64::from(ns.at_stop_writes()),
                _ => ns.sets().count() as u64,
            };
            let _ = writeln!(o, "{name}{{namespace=\"{}\"}} {v}", ns.name);
        }
    }
    header(
        &mut o,
        "shoal_namespace_requests_total",
        "counter",
        "Client requests by namespace, kind and result.",
    );
    for ns in state.db.namespaces() {
        let s = &ns.stats;
        for (op, result, v) in [
            ("read", "success", &s.client_read_success),
            ("read", "not_found", &s.client_read_not_found),
            ("read", "error", &s.client_read_error),
            ("write", "success", &s.client_write_success),
            ("write", "error", &s.client_write_error),
            ("delete", "success", &s.client_delete_success),
            ("delete", "not_found", &s.client_delete_not_found),
            ("delete", "error", &s.client_delete_error),
            ("udf", "error", &s.client_udf_error),
        ] {
            let _ = writeln!(
                o,
                "shoal_namespace_requests_total{{namespace=\"{}\",op=\"{op}\",result=\"{result}\"}} {}",
                ns.name,
                v.load(Relaxed)
            );
        }
    }
    for (name, help, pick) in [
        (
            "shoal_namespace_expired_objects_total",
            "Records removed by expiration.",
            0,
        ),
        (
            "shoal_namespace_truncated_objects_total",
            "Records removed by truncation.",
            1,
        ),
        (
            "shoal_namespace_stop_writes_refusals_total",
            "Writes refused at stop-writes.",
            2,
        ),
        (
            "shoal_namespace_generation_failures_total",
            "Writes refused by a generation check.",
            3,
        ),
        (
            "shoal_namespace_record_too_big_total",
            "Writes refused as too big.",
            4,
        ),
    ] {
        header(&mut o, name, "counter", help);
        for ns in state.db.namespaces() {
            let s = &ns.stats;
            let v = [
                &s.expired_objects,
                &s.truncated_objects,
                &s.stop_writes_count,
                &s.fail_generation,
                &s.fail_record_too_big,
            ][pick]
                .load(Relaxed);
            let _ = writeln!(o, "{name}{{namespace=\"{}\"}} {v}", ns.name);
        }
    }
    device_metrics(state, &mut o);
    o
}

/// Gauges and counters of `storage-engine device` namespaces (none for memory namespaces).
fn device_metrics(state: &NodeState, o: &mut String) {
    let summaries: Vec<(&str, crate::storage::DeviceSummary)> = state
        .db
        .namespaces()
        .iter()
        .filter_map(|ns| crate::storage::summary_for(state, ns).map(|d| (ns.name.as_str(), d)))
        .collect();
    if summaries.is_empty() {
        return;
    }
    type Pick = fn(&crate::storage::DeviceSummary) -> u64;
    let rows: [(&str, &str, &str, Pick); 12] = [
        (
            "shoal_device_total_bytes",
            "gauge",
            "Bytes of write blocks on the namespace's devices.",
            |d| d.total_bytes,
        ),
        (
            "shoal_device_used_bytes",
            "gauge",
            "Live record bytes on the namespace's devices.",
            |d| d.used_bytes,
        ),
        (
            "shoal_device_free_pct",
            "gauge",
            "Share of write blocks free (or free after the next sync).",
            |d| d.free_pct,
        ),
        (
            "shoal_device_stop_writes",
            "gauge",
            "1 when too few free blocks remain for client writes.",
            |d| u64::from(d.stop_writes),
        ),
        (
            "shoal_device_poisoned",
            "gauge",
            "1 when a device failed a write or sync and refuses writes.",
            |d| u64::from(d.poisoned),
        ),
        (
            "shoal_device_defrag_queue",
            "gauge",
            "Blocks waiting for defrag.",
            |d| d.defrag_queue,
        ),
        (
            "shoal_device_tombstones",
            "gauge",
            "Durable-delete tombstones in the index.",
            |d| d.tombstones,
        ),
        (
            "shoal_device_defrag_blocks_total",
            "counter",
            "Blocks defragged.",
            |d| d.defrag_blocks,
        ),
        (
            "shoal_device_block_writes_total",
            "counter",
            "Write-block writes issued.",
            |d| d.block_writes,
        ),
        (
            "shoal_device_syncs_total",
            "counter",
            "Device syncs (fsync) issued.",
            |d| d.syncs,
        ),
        (
            "shoal_device_corrupt_records_total",
            "counter",
            "Records that failed their checksum when read (never served).",
            |d| d.corrupt_reads,
        ),
        (
            "shoal_device_write_errors_total",
            "counter",
            "Writes refused because a device failed or is poisoned.",
            |d| d.write_errors,
        ),
    ];
    for (name, kind, help, pick) in rows {
        header(o, name, kind, help);
        for (ns, d) in &summaries {
            let _ = writeln!(o, "{name}{{namespace=\"{ns}\"}} {}", pick(d));
        }
    }
}

/// One ticker line per namespace: what an operator wants to see in the log every 10 s.
pub fn log_ticker(state: &NodeState) {
    for ns in state.db.namespaces() {
        let s = &ns.stats;
        if let Some(d) = crate::storage::summary_for(state, ns) {
            tracing::info!(
                target: "shoal::ticker",
                namespace = %ns.name,
                device_used_bytes = d.used_bytes,
                device_total_bytes = d.total_bytes,
                device_free_pct = d.free_pct,
                defrag_q = d.defrag_queue,
                defrag_blocks = d.defrag_blocks,
                tombstones = d.tombstones,
                poisoned = d.poisoned,
                corrupt_records = d.corrupt_reads,
                "ticker device"
            );
        }
        tracing::info!(
            target: "shoal::ticker",
            namespace = %ns.name,
            objects = s.objects.load(Relaxed),
            memory_used_bytes = s.memory_used_bytes.load(Relaxed),
            memory_size_bytes = ns.settings.memory_size_bytes.load(Relaxed),
            stop_writes = ns.at_stop_writes(),
            reads = s.client_read_success.load(Relaxed) + s.client_read_not_found.load(Relaxed),
            writes = s.client_write_success.load(Relaxed),
            deletes = s.client_delete_success.load(Relaxed),
            errors = s.client_read_error.load(Relaxed) + s.client_write_error.load(Relaxed) + s.client_delete_error.load(Relaxed),
            expired = s.expired_objects.load(Relaxed),
            connections = state.stats.client_connections.load(Relaxed),
            "ticker"
        );
    }
}
