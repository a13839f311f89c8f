//! `shoal status`: the cluster at a glance, like `asadm info`: one row per node (id,
//! address, build, uptime, connections, cluster size and key, migrations, objects, ops/s),
//! one row per namespace per node (objects, memory and device use, stop-writes,
//! migrations, reads/s and writes/s), then warnings. A terminal table, or `--json`.
//!
//! This module owns which counters are read (`node`, `build`, `statistics`, `namespaces`,
//! `namespace/<ns>`), how rates are derived (two samples `--interval` apart) and what is
//! worth a warning. It must never change anything on a node (it sends read-only info
//! commands) and never hide a node it could not reach: that is itself a warning.

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
    memory_used_bytes: u64,
    memory_budget_bytes: u64,
    device_used_bytes: u64,
    device_total_bytes: u64,
    stop_writes: bool,
    migrations_remaining: u64,
    /// Migrations remaining in the first sample, to tell progress from a stall.
    migrations_remaining_before: u64,
    reads_per_s: Option<f64>,
    writes_per_s: Option<f64>,
}

impl NamespaceRow {
    fn memory_pct(&self) -> u64 {
        self.memory_used_bytes.saturating_mul(100) / self.memory_budget_bytes.max(1)
    }
}

/// One node, derived from two samples.
#[derive(Debug, Clone, PartialEq)]
struct NodeRow {
    node_id: String,
    addr: String,
    build: String,
    uptime_s: u64,
    connections: u64,
    cluster_size: u64,
    cluster_key: String,
    cluster_integrity: bool,
    objects: u64,
    migrations_remaining: u64,
    ops_per_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
struct Status {
    nodes: Vec<NodeRow>,
    namespaces: Vec<NamespaceRow>,
    warnings: Vec<String>,
}

/// The rows and warnings from what each node answered: `first` and `second` are the two
/// samples (equal when no rate is wanted), `elapsed` the time between them; a node whose
/// sample failed carries the error.
fn summarize(nodes: &[(NodeAddr, Result<(Sample, Sample)>)], elapsed: Option<Duration>) -> Status {
    let rate = |before: u64, after: u64| -> Option<f64> {
        elapsed.map(|e| after.saturating_sub(before) as f64 / e.as_secs_f64().max(1e-9))
    };
    let mut out = Status {
        nodes: Vec::new(),
        namespaces: Vec::new(),
        warnings: Vec::new(),
    };
    for (node, result) in nodes {
        let (first, second) = match result {
            Ok(s) => s,
            Err(e) => {
                out.warnings.push(format!(
                    "node {} at {} is listed by the cluster but did not answer: {e:#}",
                    node.node_id, node.addr
                ));
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
                memory_used_bytes: num(ns, "memory_used_bytes"),
                memory_budget_bytes: num(ns, "data_total_bytes"),
                device_used_bytes: num(ns, "device_used_bytes"),
                device_total_bytes: num(ns, "device_total_bytes"),
                stop_writes: ns.get("stop_writes").is_some_and(|v| v == "true"),
                migrations_remaining: num(ns, "migrate_partitions_remaining"),
                migrations_remaining_before: num(before, "migrate_partitions_remaining"),
                reads_per_s: reads,
                writes_per_s: writes,
            };
            if row.stop_writes {
                out.warnings.push(format!(
                    "namespace {name} on node {} is at stop-writes: writes fail (result 8)",
                    node.node_id
                ));
            } else if row.memory_pct() >= MEMORY_WARN_PCT {
                out.warnings.push(format!(
                    "namespace {name} on node {} uses {}% of its memory budget",
                    node.node_id,
                    row.memory_pct()
                ));
            }
            if elapsed.is_some()
                && row.migrations_remaining > 0
                && row.migrations_remaining >= row.migrations_remaining_before
            {
                out.warnings.push(format!(
                    "namespace {name} on node {}: {} partition migrations remaining, none finished during the sample",
                    node.node_id, row.migrations_remaining
                ));
            }
            out.namespaces.push(row);
        }
        let row = NodeRow {
            node_id: node.node_id.clone(),
            addr: node.addr.clone(),
            build: second.build.clone(),
            uptime_s: num(st, "uptime"),
            connections: num(st, "client_connections"),
            cluster_size: num(st, "cluster_size"),
            cluster_key: st.get("cluster_key").cloned().unwrap_or_default(),
            cluster_integrity: st.get("cluster_integrity").is_none_or(|v| v == "true"),
            objects: num(st, "objects"),
            migrations_remaining: num(st, "migrate_partitions_remaining"),
            ops_per_s: node_ops,
        };
        if !row.cluster_integrity {
            out.warnings.push(format!(
                "node {} reports cluster_integrity=false",
                row.node_id
            ));
        }
        out.nodes.push(row);
    }
    let answered = out.nodes.len() as u64;
    for n in &out.nodes {
        if n.cluster_size != answered {
            out.warnings.push(format!(
                "node {} says the cluster has {} node(s), but {answered} answered: a node is missing or not yet joined",
                n.node_id, n.cluster_size
            ));
        }
    }
    let mut keys: Vec<&str> = out.nodes.iter().map(|n| n.cluster_key.as_str()).collect();
    keys.dedup();
    if keys.len() > 1 {
        out.warnings
            .push("nodes disagree on the cluster key: the cluster is split or changing".into());
    }
    out
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
        nodes.add_row(vec![
            n.node_id.clone(),
            n.addr.clone(),
            n.build.clone(),
            format_uptime(n.uptime_s),
            format_count(n.connections),
            n.cluster_size.to_string(),
            n.cluster_key.clone(),
            format_count(n.migrations_remaining),
            format_count(n.objects),
            format_rate(n.ops_per_s),
        ]);
    }
    let mut nss = table(&[
        "Namespace",
        "Node",
        "Objects",
        "Memory used",
        "Budget",
        "Used %",
        "Device used",
        "Stop-writes",
        "Migrations",
        "Reads/s",
        "Writes/s",
    ]);
    for n in &s.namespaces {
        nss.add_row(vec![
            n.namespace.clone(),
            n.node_id.clone(),
            format_count(n.objects),
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
            format_count(n.migrations_remaining),
            format_rate(n.reads_per_s),
            format_rate(n.writes_per_s),
        ]);
    }
    let mut out = format!("Cluster seen from {addr}: {} node(s)\n", s.nodes.len());
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
    json!({
        "seed": addr,
        "nodes": s.nodes.iter().map(|n| json!({
            "node_id": n.node_id,
            "address": n.addr,
            "build": n.build,
            "uptime_s": n.uptime_s,
            "client_connections": n.connections,
            "cluster_size": n.cluster_size,
            "cluster_key": n.cluster_key,
            "cluster_integrity": n.cluster_integrity,
            "migrate_partitions_remaining": n.migrations_remaining,
            "objects": n.objects,
            "ops_per_s": n.ops_per_s,
        })).collect::<Vec<_>>(),
        "namespaces": s.namespaces.iter().map(|n| json!({
            "namespace": n.namespace,
            "node_id": n.node_id,
            "objects": n.objects,
            "memory_used_bytes": n.memory_used_bytes,
            "memory_budget_bytes": n.memory_budget_bytes,
            "memory_used_pct": n.memory_pct(),
            "device_used_bytes": n.device_used_bytes,
            "device_total_bytes": n.device_total_bytes,
            "stop_writes": n.stop_writes,
            "migrate_partitions_remaining": n.migrations_remaining,
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
    let firsts: Vec<Result<Sample>> = nodes.iter().map(|n| sample(&n.addr)).collect();
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
        }
    }

    fn sample_with(ns: &[(&str, &str)], stats: &[(&str, &str)]) -> Sample {
        let map = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        Sample {
            build: "7.2.0.0".into(),
            statistics: map(stats),
            namespaces: [("test".to_string(), map(ns))].into_iter().collect(),
        }
    }

    #[test]
    fn rates_and_warnings() {
        let stats = [("cluster_size", "2"), ("cluster_key", "K")];
        let a = sample_with(
            &[
                ("client_read_success", "100"),
                ("migrate_partitions_remaining", "5"),
            ],
            &stats,
        );
        let b = sample_with(
            &[
                ("client_read_success", "300"),
                ("client_write_success", "50"),
                ("migrate_partitions_remaining", "5"),
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
        assert_eq!(s.nodes[0].ops_per_s, Some(125.0));
        let all = s.warnings.join("\n");
        assert!(all.contains("did not answer"), "{all}");
        assert!(all.contains("stop-writes"), "{all}");
        assert!(all.contains("none finished"), "{all}");
        assert!(all.contains("2 node(s), but 1 answered"), "{all}");
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
        assert_eq!(s.nodes[0].ops_per_s, None);
        assert_eq!(format_uptime(3700), "1h01m");
        let t = text(&s, "A:3000");
        assert!(t.contains("No warnings"));
    }
}
