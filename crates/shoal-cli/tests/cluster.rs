//! The `shoal` binary against a cluster of three real `shoald` processes: `status` finds
//! every node from whichever one it is given, shows the cluster key and size they agree
//! on and two copies of every record spread over them; `info --all` asks all three. After
//! a node is killed, `status` shows it unreachable with a warning until the survivors drop
//! it, then shows the two survivors, stable, each holding a copy of every record.

use aerospike::{as_bin, as_key, Client, ClientPolicy, WritePolicy};
use shoal_testkit::{free_port, info_at, wait_cluster_stable, ProcessServer};
use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Records written; with replication factor 2 the cluster holds twice as many copies.
const RECORDS: u64 = 300;

fn shoal(port: u16, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(args)
        .env_remove("SHOAL_HOST")
        .env_remove("SHOAL_PORT")
        .output()
        .expect("the shoal binary runs")
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "expected success, got {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn status_json(port: u16, interval: &str) -> serde_json::Value {
    let out = ok(&shoal(port, &["status", "--json", "--interval", interval]));
    serde_json::from_str(&out).expect("status --json prints one JSON object")
}

fn info(port: u16, cmd: &str) -> Option<String> {
    info_at(port, cmd)
}

fn wait_stable(ports: &[u16], size: usize, limit: Duration) -> String {
    match wait_cluster_stable(ports, size, limit) {
        Ok((key, _)) => key,
        Err(e) => panic!("{e:#}"),
    }
}

fn spawn(hb: u16, seed: Option<u16>) -> ProcessServer {
    ProcessServer::spawn_member(hb, seed).expect("shoald starts")
}

fn write_records(seed: u16) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = Client::new(&ClientPolicy::default(), &format!("127.0.0.1:{seed}"))
            .await
            .expect("client connects");
        for i in 0..RECORDS as i64 {
            client
                .put(
                    &WritePolicy::default(),
                    &as_key!("test", "status", i),
                    &[as_bin!("v", i)],
                )
                .await
                .expect("put on a stable cluster");
        }
        client.close().await.expect("client closes");
    });
}

/// The node ids in a `status --json` answer, by address.
fn nodes_by_address(v: &serde_json::Value) -> BTreeSet<(String, String)> {
    v["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["address"].as_str().expect("address").to_string(),
                n["node_id"].as_str().expect("node_id").to_string(),
            )
        })
        .collect()
}

#[test]
fn status_and_info_all_show_every_node_of_a_three_node_cluster() {
    let hb: Vec<u16> = (0..3).map(|_| free_port().expect("port")).collect();
    let n1 = spawn(hb[0], None);
    let n2 = spawn(hb[1], Some(hb[0]));
    let mut n3 = spawn(hb[2], Some(hb[0]));
    let ports = [n1.port(), n2.port(), n3.port()];
    let key = wait_stable(&ports, 3, Duration::from_secs(30));
    let expected: BTreeSet<(String, String)> = ports
        .iter()
        .map(|p| (format!("127.0.0.1:{p}"), info(*p, "node").expect("node id")))
        .collect();
    write_records(n1.port());

    // Any node leads to all three.
    for seed in ports {
        let v = status_json(seed, "0.2");
        assert_eq!(nodes_by_address(&v), expected, "seen from {seed}: {v}");
        assert_eq!(v["cluster"]["nodes_found"], 3, "{v}");
        assert_eq!(v["cluster"]["nodes_answered"], 3, "{v}");
        assert_eq!(v["cluster"]["cluster_key"], key.as_str(), "{v}");
        assert_eq!(v["cluster"]["cluster_size"], 3, "{v}");
        assert_eq!(v["cluster"]["objects"], 2 * RECORDS, "two copies: {v}");
        assert_eq!(v["cluster"]["migrate_partitions_remaining"], 0, "{v}");
        assert_eq!(v["cluster"]["stable"], true, "{v}");
        assert_eq!(v["warnings"], serde_json::json!([]), "{v}");
        let mut copies = 0;
        for n in v["nodes"].as_array().expect("nodes") {
            assert_eq!(n["reachable"], true, "{n}");
            assert_eq!(n["cluster_size"], 3, "{n}");
            assert_eq!(n["cluster_key"], key.as_str(), "{n}");
            let objects = n["objects"].as_u64().expect("objects");
            assert!(
                (1..=RECORDS).contains(&objects),
                "each node holds a share: {n}"
            );
            copies += objects;
        }
        assert_eq!(copies, 2 * RECORDS);
        let namespaces = v["namespaces"].as_array().expect("namespaces");
        assert_eq!(namespaces.len(), 3, "namespace test on each node: {v}");
        for ns in namespaces {
            assert_eq!(ns["namespace"], "test", "{ns}");
            assert_eq!(ns["replication_factor"], 2, "{ns}");
            assert_eq!(ns["migrate_partitions_remaining"], 0, "{ns}");
        }
    }

    let text = ok(&shoal(ports[1], &["status", "--interval", "0"]));
    assert!(text.contains("3 node(s) found, 3 answered"), "{text}");
    assert!(
        text.contains(&format!("Cluster key {key}, size 3, 600 objects")),
        "{text}"
    );
    for (addr, id) in &expected {
        assert!(
            text.contains(addr.as_str()) && text.contains(id.as_str()),
            "{text}"
        );
    }
    assert!(text.contains("No warnings."), "{text}");

    let all = ok(&shoal(ports[2], &["info", "--all", "node"]));
    for (addr, id) in &expected {
        assert!(
            all.contains(&format!("{addr} ({id}) returned:\n{id}\n")),
            "{all}"
        );
    }
    assert_eq!(all.matches(" returned:\n").count(), 3, "{all}");

    // Kill -9 one node. Until the survivors drop it (1.5 s without a pulse) it is still
    // listed: status shows it unreachable and warns; info --all reports it and fails.
    n3.kill();
    let killed = Instant::now();
    let v = status_json(ports[0], "0");
    let all = shoal(ports[0], &["info", "--all", "node"]);
    if killed.elapsed() < Duration::from_secs(1) {
        let dead = format!("127.0.0.1:{}", ports[2]);
        let row = v["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|n| n["address"] == dead.as_str())
            .unwrap_or_else(|| panic!("the killed node is still listed: {v}"));
        assert_eq!(row["reachable"], false, "{v}");
        assert_eq!(v["cluster"]["nodes_answered"], 2, "{v}");
        assert_eq!(v["cluster"]["stable"], false, "{v}");
        let warnings = v["warnings"].to_string();
        assert!(warnings.contains("did not answer"), "{warnings}");
        assert!(!all.status.success(), "info --all with a dead node fails");
        let out = String::from_utf8_lossy(&all.stdout);
        assert!(out.contains(&format!("{dead} (")), "{out}");
        assert!(out.contains("error: connecting to"), "{out}");
    } else {
        eprintln!(
            "NOTE: status ran {:?} after the kill; the unreachable-node checks were skipped",
            killed.elapsed()
        );
    }

    let survivors = [ports[0], ports[1]];
    let key2 = wait_stable(&survivors, 2, Duration::from_secs(30));
    let v = status_json(ports[1], "0");
    assert_eq!(v["cluster"]["nodes_found"], 2, "{v}");
    assert_eq!(v["cluster"]["cluster_key"], key2.as_str(), "{v}");
    assert_eq!(v["cluster"]["cluster_size"], 2, "{v}");
    assert_eq!(v["cluster"]["stable"], true, "{v}");
    assert_eq!(v["warnings"], serde_json::json!([]), "{v}");
    for n in v["nodes"].as_array().expect("nodes") {
        assert_eq!(n["objects"], RECORDS, "two copies over two nodes: {n}");
    }
}
