//! `shoal status`: the cluster at a glance, like `asadm info`: a summary (nodes found and
//! answering, the cluster key and size they agree on, record copies, migrations left,
//! stable or not), one row per node (id, address, build, uptime, connections, cluster size
//! and key, migrations, objects, ops/s), one row per namespace per node (objects,
//! replication factor, memory and device use, stop-writes, migrations to receive and to
//! send, reads/s and writes/s), then warnings. A terminal table, or `--json`.
//!
//! The nodes are those `common::cluster_nodes` finds from the one address given, following
//! every node's `peers-clear-std`. This module owns which counters are read (`build`,
//! `statistics`, `namespaces`, `namespace/<ns>`), how rates are derived (two samples
//! `--interval` apart) and what is worth a warning: a listed node that does not answer, a
//! node counting another cluster size than was found, nodes disagreeing on the cluster key,
//! a node not in a cluster, migrations that made no progress during the sample, stop-writes
//! and memory pressure. It must never change anything on a node (it sends read-only info
//! commands) and never hide a node it could not reach: it gets a row and a warning.

use crate::bench::stats::{format_bytes, format_count};
use crate::common::{cluster_nodes, info_request, NodeAddr, ServerArgs};
use crate::infoproto::{is_error, parse_pairs};
use anyhow::{anyhow, Result};
use clap::Args;
use comfy_table::{presets, ContentArrangement, Table};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Namespace memory use above which a warning is shown, in percent of its budget.
const MEMORY_WARN_PCT: u64 = 80;

/// Options of `shoal status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Seconds between the two samples that give ops/s; 0 takes one sample and shows no
    /// rates.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// What one node said at one moment.
#[derive(Debug, Clone, Default)]
struct Sample {
    build: String,
    statistics: BTreeMap<String, String>,
    /// Namespace name -> its `namespace/<ns>` pairs.
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

fn sample(addr: &str) -> Result<Sample> {
    let first = info_request(addr, &["build", "statistics", "namespaces"])?;
    let get = |name: &str| -> Result<String> {
        let v = first
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| anyhow!("{addr} did not answer `{name}`"))?;
        if is_error(&v) {
            return Err(anyhow!("{addr} answered `{name}` with {v}"));
        }
        Ok(v)
    };
    let names: Vec<String> = get("namespaces")?
        .split(';')
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    let commands: Vec<String> = names.iter().map(|n| format!("namespace/{n}")).collect();
    let refs: Vec<&str> = commands.iter().map(String::as_str).collect();
    let mut namespaces = BTreeMap::new();
    if !refs.is_empty() {
        for (name, (_, value)) in names.iter().zip(info_request(addr, &refs)?) {
            namespaces.insert(name.clone(), parse_pairs(&value).into_iter().collect());
        }
    }
    Ok(Sample {
        build: get("build")?,
        statistics: parse_pairs(&get("statistics")?).into_iter().collect(),
        namespaces,
    })
}

fn num(map: &BTreeMap<String, String>, key: &str) -> u64 {
    map.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn sum(map: &BTreeMap<String, String>, keys: &[&str]) -> u64 {
    keys.iter().map(|k| num(map, k)).sum()
}

/// Counters that count one client read each.
const READ_COUNTERS: &[&str] = &[
    "client_read_success",
    "client_read_not_found",
    "client_read_error",
    "batch_sub_read_success",
];
/// Partitions left to receive and to send.
const MIGRATION_REMAINING: &[&str] = &[
    "migrate_rx_partitions_remaining",
    "migrate_tx_partitions_remaining",
];
/// Records moved by migrations, either way.
const MIGRATED_RECORDS: &[&str] = &["migrate_records_transmitted", "migrate_records_received"];
/// Counters that count one client write or delete each.
const WRITE_COUNTERS: &[&str] = &[
    "client_write_success",
    "client_write_error",
    "client_delete_success",
    "client_delete_not_found",
    "client_delete_error",
    "batch_sub_write_success",
];

/// One namespace on one node, derived from two samples.
#[derive(Debug, Clone, PartialEq)]
struct NamespaceRow {
    namespace: String,
    node_id: String,
    objects: u64,
    replication_factor: u64,
    memory_used_bytes: u64,
    memory_budget_bytes: u64,
    device_used_bytes: u64,
    device_total_bytes: u64,
    stop_writes: bool,
    /// Partitions this node still has to receive and to send.
    migrations_rx_remaining: u64,
    migrations_tx_remaining: u64,
    /// Migrations remaining in the first sample, to tell progress from a stall.
    migrations_remaining_before: u64,
    /// Records sent plus received by migrations during the sample.
    migrated_records: Option<u64>,
    /// The node's estimate of the seconds its migrations still need (`migrate_eta_s`);
    /// `None` while it has no estimate (or an older node reports none).
    migrate_eta_s: Option<u64>,
    reads_per_s: Option<f64>,
    writes_per_s: Option<f64>,
}

impl NamespaceRow {
    fn memory_pct(&self) -> u64 {
        self.memory_used_bytes.saturating_mul(100) / self.memory_budget_bytes.max(1)
    }

    fn migrations_remaining(&self) -> u64 {
        self.migrations_rx_remaining + self.migrations_tx_remaining
    }
}

/// What a node that answered said about itself.
#[derive(Debug, Clone, PartialEq)]
struct NodeFacts {
    build: String,
    uptime_s: u64,
    connections: u64,
    cluster_size: u64,
    cluster_key: String,
    cluster_integrity: bool,
    cluster_is_member: bool,
    objects: u64,
    migrations_remaining: u64,
    ops_per_s: Option<f64>,
}

/// One node discovery found: what it said, or why it said nothing.
#[derive(Debug, Clone, PartialEq)]
struct NodeRow {
    node_id: String,
    addr: String,
    facts: Result<NodeFacts, String>,
}

/// The cluster as a whole, from the nodes that answered.
#[derive(Debug, Clone, PartialEq)]
struct ClusterSummary {
    /// Nodes discovery found (answering or not) and nodes that answered.
    nodes_found: usize,
    nodes_answered: usize,
    /// The cluster key and size every answering node agrees on; `None` when they differ
    /// or none answered.
    key: Option<String>,
    size: Option<u64>,
    /// Record copies over every answering node (each record counts replication-factor
    /// times once migrations are done).
    objects: u64,
    migrations_remaining: u64,
    /// One cluster, every node found answered and is a member, no migration left.
    stable: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Status {
    cluster: ClusterSummary,
    nodes: Vec<NodeRow>,
    namespaces: Vec<NamespaceRow>,
    warnings: Vec<String>,
}

/// The value every item has, or `None` when they differ or there are none.
fn agreed<T: PartialEq + Clone>(mut items: impl Iterator<Item = T>) -> Option<T> {
    let first = items.next()?;
    items.all(|i| i == first).then_some(first)
}

/// The rows and warnings from what each node answered: `first` and `second` are the two
/// samples (equal when no rate is wanted), `elapsed` the time between them; a node whose
/// sample failed carries the error.
fn summarize(nodes: &[(NodeAddr, Result<(Sample, Sample)>)], elapsed: Option<Duration>) -> Status {
    let rate = |before: u64, after: u64| -> Option<f64> {
        elapsed.map(|e| after.saturating_sub(before) as f64 / e.as_secs_f64().max(1e-9))
    };
    let mut rows = Vec::new();
    let mut namespaces = Vec::new();
    let mut warnings = Vec::new();
    for (node, result) in nodes {
        let (first, second) = match result {
            Ok(s) => s,
            Err(e) => {
                warnings.push(format!(
                    "node {} at {} is listed by the cluster but did not answer: {e:#}",
                    node.node_id, node.addr
                ));
                rows.push(NodeRow {
                    node_id: node.node_id.clone(),
                    addr: node.addr.clone(),
                    facts: Err(format!("{e:#}")),
                });
                continue;
            }
        };
        let st = &second.statistics;
        let mut node_ops = None;
        for (name, ns) in &second.namespaces {
            let empty = BTreeMap::new();
            let before = first.namespaces.get(name).unwrap_or(&empty);
            let reads = rate(sum(before, READ_COUNTERS), sum(ns, READ_COUNTERS));
            let writes = rate(sum(before, WRITE_COUNTERS), sum(ns, WRITE_COUNTERS));
            if let (Some(r), Some(w)) = (reads, writes) {
                node_ops = Some(node_ops.unwrap_or(0.0) + r + w);
            }
            let row = NamespaceRow {
                namespace: name.clone(),
                node_id: node.node_id.clone(),
                objects: num(ns, "objects"),
                replication_factor: num(ns, "effective_replication_factor"),
                memory_used_bytes: num(ns, "memory_used_bytes"),
                memory_budget_bytes: num(ns, "data_total_bytes"),
                device_used_bytes: num(ns, "device_used_bytes"),
                device_total_bytes: num(ns, "device_total_bytes"),
                stop_writes: ns.get("stop_writes").is_some_and(|v| v == "true"),
                migrations_rx_remaining: num(ns, "migrate_rx_partitions_remaining"),
                migrations_tx_remaining: num(ns, "migrate_tx_partitions_remaining"),
                migrations_remaining_before: sum(before, MIGRATION_REMAINING),
                migrated_records: elapsed.map(|_| {
                    sum(ns, MIGRATED_RECORDS).saturating_sub(sum(before, MIGRATED_RECORDS))
                }),
                // -1 (or a missing key) means the node cannot estimate yet.
                migrate_eta_s: ns.get("migrate_eta_s").and_then(|v| v.parse::<u64>().ok()),
                reads_per_s: reads,
                writes_per_s: writes,
            };
            if row.stop_writes {
                warnings.push(format!(
                    "namespace {name} on node {} is at stop-writes: writes fail (result 8)",
                    node.node_id
                ));
            } else if row.memory_pct() >= MEMORY_WARN_PCT {
                warnings.push(format!(
                    "namespace {name} on node {} uses {}% of its memory budget",
                    node.node_id,
                    row.memory_pct()
                ));
            }
            // Stuck: partitions left, none finished and not one record moved during the
            // sample. A slow migration of a big partition still moves records.
            if let (Some(e), Some(0)) = (elapsed, row.migrated_records) {
                if row.migrations_remaining() > 0
                    && row.migrations_remaining() >= row.migrations_remaining_before
                {
                    warnings.push(format!(
                        "namespace {name} on node {}: migrations look stuck: {} partition(s) to receive and {} to send, none finished and no record moved in {:.1} s",
                        node.node_id,
                        row.migrations_rx_remaining,
                        row.migrations_tx_remaining,
                        e.as_secs_f64()
                    ));
                }
            }
            namespaces.push(row);
        }
        let facts = NodeFacts {
            build: second.build.clone(),
            uptime_s: num(st, "uptime"),
            connections: num(st, "client_connections"),
            cluster_size: num(st, "cluster_size"),
            cluster_key: st.get("cluster_key").cloned().unwrap_or_default(),
            cluster_integrity: st.get("cluster_integrity").is_none_or(|v| v == "true"),
            cluster_is_member: st.get("cluster_is_member").is_none_or(|v| v == "true"),
            objects: num(st, "objects"),
            migrations_remaining: num(st, "migrate_partitions_remaining"),
            ops_per_s: node_ops,
        };
        if !facts.cluster_integrity {
            warnings.push(format!(
                "node {} reports cluster_integrity=false",
                node.node_id
            ));
        }
        if !facts.cluster_is_member {
            warnings.push(format!(
                "node {} has not joined a cluster yet (cluster_is_member=false)",
                node.node_id
            ));
        }
        rows.push(NodeRow {
            node_id: node.node_id.clone(),
            addr: node.addr.clone(),
            facts: Ok(facts),
        });
    }
    let answered: Vec<&NodeFacts> = rows.iter().filter_map(|r| r.facts.as_ref().ok()).collect();
    let found = rows.len();
    // A node that counts another number of members than discovery found: a node is down
    // and not yet dropped, has not joined, or the nodes form more than one cluster.
    let mut sizes: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for r in &rows {
        if let Ok(f) = &r.facts {
            sizes.entry(f.cluster_size).or_default().push(&r.node_id);
        }
    }
    for (size, ids) in &sizes {
        if *size != found as u64 {
            warnings.push(format!(
                "node(s) {} say the cluster has {size} node(s), but {found} were found ({} answered): a node is missing, not yet joined, or the cluster is split",
                ids.join(", "),
                answered.len()
            ));
        }
    }
    let key = agreed(answered.iter().map(|f| f.cluster_key.clone()));
    if key.is_none() && answered.len() > 1 {
        warnings.push("nodes disagree on the cluster key: the cluster is split or changing".into());
    }
    let size = agreed(answered.iter().map(|f| f.cluster_size));
    let migrations_remaining = answered.iter().map(|f| f.migrations_remaining).sum();
    let cluster = ClusterSummary {
        nodes_found: found,
        nodes_answered: answered.len(),
        stable: !answered.is_empty()
            && answered.len() == found
            && key.is_some()
            && size == Some(found as u64)
            && answered.iter().all(|f| f.cluster_is_member)
            && migrations_remaining == 0,
        key,
        size,
        objects: answered.iter().map(|f| f.objects).sum(),
        migrations_remaining,
    };
    Status {
        cluster,
        nodes: rows,
        namespaces,
        warnings,
    }
}

fn format_uptime(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn format_rate(r: Option<f64>) -> String {
    r.map(|r| format_count(r.round() as u64))
        .unwrap_or_else(|| "-".to_string())
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

fn text(s: &Status, addr: &str) -> String {
    let mut nodes = table(&[
        "Node",
        "Address",
        "Build",
        "Uptime",
        "Conns",
        "Cluster size",
        "Cluster key",
        "Migrations",
        "Objects",
        "Ops/s",
    ]);
    for n in &s.nodes {
        let mut row = vec![n.node_id.clone(), n.addr.clone()];
        match &n.facts {
            Ok(f) => row.extend([
                f.build.clone(),
                format_uptime(f.uptime_s),
                format_count(f.connections),
                f.cluster_size.to_string(),
                f.cluster_key.clone(),
                format_count(f.migrations_remaining),
                format_count(f.objects),
                format_rate(f.ops_per_s),
            ]),
            Err(_) => {
                row.push("UNREACHABLE".to_string());
                row.extend(std::iter::repeat_n("-".to_string(), 7));
            }
        }
        nodes.add_row(row);
    }
    let mut nss = table(&[
        "Namespace",
        "Node",
        "Objects",
        "RF",
        "Memory used",
        "Budget",
        "Used %",
        "Device used",
        "Stop-writes",
        "Migrations rx/tx",
        "ETA",
        "Reads/s",
        "Writes/s",
    ]);
    for n in &s.namespaces {
        nss.add_row(vec![
            n.namespace.clone(),
            n.node_id.clone(),
            format_count(n.objects),
            n.replication_factor.to_string(),
            format_bytes(n.memory_used_bytes),
            format_bytes(n.memory_budget_bytes),
            format!("{}%", n.memory_pct()),
            if n.device_total_bytes > 0 {
                format!(
                    "{} / {}",
                    format_bytes(n.device_used_bytes),
                    format_bytes(n.device_total_bytes)
                )
            } else {
                "-".to_string()
            },
            if n.stop_writes { "YES" } else { "no" }.to_string(),
            format!(
                "{} / {}",
                format_count(n.migrations_rx_remaining),
                format_count(n.migrations_tx_remaining)
            ),
            match (n.migrations_remaining(), n.migrate_eta_s) {
                (0, _) => "-".to_string(),
                (_, Some(s)) => format!("{s} s"),
                (_, None) => "?".to_string(),
            },
            format_rate(n.reads_per_s),
            format_rate(n.writes_per_s),
        ]);
    }
    let c = &s.cluster;
    let mut out = format!(
        "Cluster seen from {addr}: {} node(s) found, {} answered\n",
        c.nodes_found, c.nodes_answered
    );
    out.push_str(&format!(
        "Cluster key {}, size {}, {} objects (all copies), {} partition migration(s) remaining: {}\n",
        c.key.as_deref().unwrap_or("(nodes disagree)"),
        c.size
            .map_or_else(|| "(nodes disagree)".to_string(), |n| n.to_string()),
        format_count(c.objects),
        format_count(c.migrations_remaining),
        if c.stable { "stable" } else { "NOT stable" }
    ));
    out.push_str(&format!("{nodes}\n\nNamespaces\n{nss}\n"));
    if s.warnings.is_empty() {
        out.push_str("\nNo warnings.\n");
    } else {
        out.push_str("\nWarnings:\n");
        for w in &s.warnings {
            out.push_str(&format!("  ! {w}\n"));
        }
    }
    out
}

fn to_json(s: &Status, addr: &str) -> serde_json::Value {
    let c = &s.cluster;
    json!({
        "seed": addr,
        "cluster": {
            "nodes_found": c.nodes_found,
            "nodes_answered": c.nodes_answered,
            "cluster_key": c.key,
            "cluster_size": c.size,
            "objects": c.objects,
            "migrate_partitions_remaining": c.migrations_remaining,
            "stable": c.stable,
        },
        "nodes": s.nodes.iter().map(|n| match &n.facts {
            Ok(f) => json!({
                "node_id": n.node_id,
                "address": n.addr,
                "reachable": true,
                "build": f.build,
                "uptime_s": f.uptime_s,
                "client_connections": f.connections,
                "cluster_size": f.cluster_size,
                "cluster_key": f.cluster_key,
                "cluster_integrity": f.cluster_integrity,
                "cluster_is_member": f.cluster_is_member,
                "migrate_partitions_remaining": f.migrations_remaining,
                "objects": f.objects,
                "ops_per_s": f.ops_per_s,
            }),
            Err(e) => json!({
                "node_id": n.node_id,
                "address": n.addr,
                "reachable": false,
                "error": e,
            }),
        }).collect::<Vec<_>>(),
        "namespaces": s.namespaces.iter().map(|n| json!({
            "namespace": n.namespace,
            "node_id": n.node_id,
            "objects": n.objects,
            "replication_factor": n.replication_factor,
            "memory_used_bytes": n.memory_used_bytes,
            "memory_budget_bytes": n.memory_budget_bytes,
            "memory_used_pct": n.memory_pct(),
            "device_used_bytes": n.device_used_bytes,
            "device_total_bytes": n.device_total_bytes,
            "stop_writes": n.stop_writes,
            "migrate_partitions_remaining": n.migrations_remaining(),
            "migrate_rx_partitions_remaining": n.migrations_rx_remaining,
            "migrate_tx_partitions_remaining": n.migrations_tx_remaining,
            "migrated_records_during_sample": n.migrated_records,
            "migrate_eta_s": n.migrate_eta_s,
            "reads_per_s": n.reads_per_s,
            "writes_per_s": n.writes_per_s,
        })).collect::<Vec<_>>(),
        "warnings": s.warnings,
    })
}

pub fn main(server: &ServerArgs, args: StatusArgs) -> Result<()> {
    if !(args.interval.is_finite() && (0.0..=3600.0).contains(&args.interval)) {
        return Err(anyhow!("--interval must be between 0 and 3600 seconds"));
    }
    let seed = server.addr();
    let nodes = cluster_nodes(&seed)?;
    let firsts: Vec<Result<Sample>> = nodes
        .iter()
        .map(|n| match &n.unreachable {
            Some(e) => Err(anyhow!("{e}")),
            None => sample(&n.addr),
        })
        .collect();
    let started = Instant::now();
    let elapsed = if args.interval > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(args.interval));
        Some(started.elapsed())
    } else {
        None
    };
    let results: Vec<(NodeAddr, Result<(Sample, Sample)>)> = nodes
        .into_iter()
        .zip(firsts)
        .map(|(node, first)| {
            let pair = first.and_then(|f| {
                let s = if elapsed.is_some() {
                    sample(&node.addr)?
                } else {
                    f.clone()
                };
                Ok((f, s))
            });
            (node, pair)
        })
        .collect();
    let status = summarize(&results, elapsed);
    if args.json {
        println!("{}", to_json(&status, &seed));
    } else {
        print!("{}", text(&status, &seed));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> NodeAddr {
        NodeAddr {
            node_id: id.into(),
            addr: format!("{id}:3000"),
            unreachable: None,
        }
    }

    fn map(p: &[(&str, &str)]) -> BTreeMap<String, String> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sample_with(ns: &[(&str, &str)], stats: &[(&str, &str)]) -> Sample {
        Sample {
            build: "7.2.0.0".into(),
            statistics: map(stats),
            namespaces: [("test".to_string(), map(ns))].into_iter().collect(),
        }
    }

    /// A member of a cluster of `size` with key `key` holding `objects` copies.
    fn member(size: &str, key: &str, objects: &str) -> Sample {
        sample_with(
            &[("objects", objects), ("effective_replication_factor", "2")],
            &[
                ("cluster_size", size),
                ("cluster_key", key),
                ("cluster_is_member", "true"),
                ("objects", objects),
            ],
        )
    }

    #[test]
    fn rates_and_warnings() {
        let stats = [("cluster_size", "3"), ("cluster_key", "K")];
        let a = sample_with(
            &[
                ("client_read_success", "100"),
                ("migrate_rx_partitions_remaining", "5"),
            ],
            &stats,
        );
        let b = sample_with(
            &[
                ("client_read_success", "300"),
                ("client_write_success", "50"),
                ("migrate_rx_partitions_remaining", "5"),
                ("stop_writes", "true"),
            ],
            &stats,
        );
        let s = summarize(
            &[
                (node("A"), Ok((a, b))),
                (node("B"), Err(anyhow!("connection refused"))),
            ],
            Some(Duration::from_secs(2)),
        );
        assert_eq!(s.namespaces[0].reads_per_s, Some(100.0));
        assert_eq!(s.namespaces[0].writes_per_s, Some(25.0));
        let a = s.nodes[0].facts.as_ref().expect("A answered");
        assert_eq!(a.ops_per_s, Some(125.0));
        assert_eq!(s.nodes[1].facts, Err("connection refused".to_string()));
        let all = s.warnings.join("\n");
        assert!(
            all.contains("B at B:3000 is listed by the cluster but did not answer"),
            "{all}"
        );
        assert!(all.contains("stop-writes"), "{all}");
        assert!(
            all.contains("migrations look stuck: 5 partition(s) to receive"),
            "{all}"
        );
        assert!(
            all.contains("say the cluster has 3 node(s), but 2 were found (1 answered)"),
            "{all}"
        );
        assert_eq!(s.cluster.nodes_found, 2);
        assert_eq!(s.cluster.nodes_answered, 1);
        assert!(!s.cluster.stable);
        let t = text(&s, "A:3000");
        assert!(t.contains("UNREACHABLE"), "{t}");
        let j = to_json(&s, "A:3000");
        assert_eq!(j["nodes"][1]["reachable"], false, "{j}");
        assert_eq!(j["nodes"][1]["error"], "connection refused", "{j}");
    }

    #[test]
    fn migrations_that_move_records_are_not_stuck() {
        let before = sample_with(
            &[
                ("migrate_tx_partitions_remaining", "7"),
                ("migrate_records_transmitted", "10"),
            ],
            &[("cluster_size", "1"), ("cluster_key", "K")],
        );
        let after = sample_with(
            &[
                ("migrate_tx_partitions_remaining", "7"),
                ("migrate_records_transmitted", "900"),
            ],
            &[
                ("cluster_size", "1"),
                ("cluster_key", "K"),
                ("migrate_partitions_remaining", "7"),
            ],
        );
        let s = summarize(
            &[(node("A"), Ok((before, after)))],
            Some(Duration::from_secs(1)),
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(s.namespaces[0].migrated_records, Some(890));
        assert_eq!(s.cluster.migrations_remaining, 7);
        assert!(!s.cluster.stable, "migrations left");
    }

    #[test]
    fn a_healthy_cluster_has_one_key_and_no_warnings() {
        let nodes: Vec<(NodeAddr, Result<(Sample, Sample)>)> = ["A", "B", "C"]
            .iter()
            .map(|id| {
                let s = member("3", "K", "600");
                (node(id), Ok((s.clone(), s)))
            })
            .collect();
        let s = summarize(&nodes, None);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(s.cluster.key.as_deref(), Some("K"));
        assert_eq!(s.cluster.size, Some(3));
        assert_eq!(s.cluster.objects, 1800);
        assert!(s.cluster.stable);
        let t = text(&s, "A:3000");
        assert!(t.contains("3 node(s) found, 3 answered"), "{t}");
        assert!(t.contains("Cluster key K, size 3, 1,800 objects"), "{t}");
        assert!(t.contains(": stable"), "{t}");
        let j = to_json(&s, "A:3000");
        assert_eq!(j["cluster"]["cluster_key"], "K");
        assert_eq!(j["cluster"]["stable"], true);
        assert_eq!(j["namespaces"][2]["replication_factor"], 2);
    }

    #[test]
    fn a_split_cluster_is_reported() {
        // A and B formed a cluster of two; C, found through B's peer list, is alone.
        let ab = member("2", "K1", "10");
        let c = sample_with(
            &[("objects", "10")],
            &[
                ("cluster_size", "1"),
                ("cluster_key", "K2"),
                ("cluster_is_member", "false"),
            ],
        );
        let s = summarize(
            &[
                (node("A"), Ok((ab.clone(), ab.clone()))),
                (node("B"), Ok((ab.clone(), ab))),
                (node("C"), Ok((c.clone(), c))),
            ],
            None,
        );
        let all = s.warnings.join("\n");
        assert!(
            all.contains("node(s) A, B say the cluster has 2 node(s), but 3 were found"),
            "{all}"
        );
        assert!(
            all.contains("node(s) C say the cluster has 1 node(s)"),
            "{all}"
        );
        assert!(all.contains("disagree on the cluster key"), "{all}");
        assert!(all.contains("node C has not joined a cluster"), "{all}");
        assert_eq!(s.cluster.key, None);
        assert_eq!(s.cluster.size, None);
        assert!(!s.cluster.stable);
        let j = to_json(&s, "A:3000");
        assert!(j["cluster"]["cluster_key"].is_null(), "{j}");
    }

    #[test]
    fn a_healthy_single_node_has_no_warnings() {
        let stats = [
            ("cluster_size", "1"),
            ("cluster_key", "K"),
            ("uptime", "3700"),
        ];
        let a = sample_with(&[("objects", "3")], &stats);
        let s = summarize(&[(node("A"), Ok((a.clone(), a)))], None);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(s.nodes[0].facts.as_ref().map(|f| f.ops_per_s), Ok(None));
        assert_eq!(format_uptime(3700), "1h01m");
        let t = text(&s, "A:3000");
        assert!(t.contains("No warnings"));
    }
}
