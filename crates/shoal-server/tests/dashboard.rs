//! The dashboard on the HTTP port: `GET /` serves the page with its script and style, and loads
//! nothing from outside the node; `GET /api/cluster` reports this node, the members, a master
//! for each of the 4096 partitions of every namespace, and counters that move with traffic.
//! The page itself is exercised in a real browser by tests/browser/dashboard.sh.

use serde_json::Value;
use shoal_testkit::{free_port, http_get, info_value, put_int, ProcessServer, TestServer};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn api(addr: SocketAddr) -> Value {
    let (status, body) = http_get(addr, "/api/cluster");
    assert_eq!(status, 200, "/api/cluster: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("/api/cluster is not JSON ({e}): {body}"))
}

fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} is not a number in {v}"))
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} is not a string in {v}"))
}

fn namespace<'v>(v: &'v Value, name: &str) -> &'v Value {
    v["namespaces"]
        .as_array()
        .and_then(|a| a.iter().find(|ns| ns["name"] == name))
        .unwrap_or_else(|| panic!("namespace {name} missing from {v}"))
}

fn op_count(v: &Value, kind: &str) -> u64 {
    v["ops"]
        .as_array()
        .and_then(|a| a.iter().find(|op| op["kind"] == kind))
        .and_then(|op| op["count"].as_u64())
        .unwrap_or_else(|| panic!("op {kind} missing from {v}"))
}

/// The master node id of every partition of `ns`, checking each entry names a member.
fn masters(v: &Value, ns: &str) -> Vec<String> {
    let members: Vec<&str> = v["members"]
        .as_array()
        .expect("members is an array")
        .iter()
        .map(|m| m["id"].as_str().expect("member id"))
        .collect();
    let map = namespace(v, ns)["partition_masters"]
        .as_array()
        .expect("partition_masters is an array");
    assert_eq!(map.len(), 4096, "one entry per partition");
    map.iter()
        .enumerate()
        .map(|(pid, m)| {
            let i = m
                .as_u64()
                .unwrap_or_else(|| panic!("partition {pid} has no master: {m}"));
            members
                .get(i as usize)
                .unwrap_or_else(|| panic!("partition {pid} names member {i} of {}", members.len()))
                .to_string()
        })
        .collect()
}

#[test]
fn page_and_its_assets_are_served_from_the_binary() {
    let server = TestServer::start();
    let (status, page) = http_get(server.http_addr(), "/");
    assert_eq!(status, 200);
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert!(page.contains(r#"<script src="/dashboard/app.js""#));
    assert!(page.contains(r#"href="/dashboard/style.css""#));
    assert!(page.contains(r#"<pre id="errors"></pre>"#));
    let (status, script) = http_get(server.http_addr(), "/dashboard/app.js");
    assert_eq!(status, 200);
    assert!(script.contains("/api/cluster"));
    let (status, style) = http_get(server.http_addr(), "/dashboard/style.css");
    assert_eq!(status, 200);
    // Operators behind firewalls have no CDN: nothing may point off the node.
    for (name, text) in [("page", &page), ("script", &script), ("style", &style)] {
        for scheme in ["http://", "https://", "//cdn", "@import"] {
            assert!(!text.contains(scheme), "the {name} refers to {scheme}");
        }
    }
    // The existing routes are untouched.
    assert_eq!(http_get(server.http_addr(), "/metrics").0, 200);
    assert_eq!(http_get(server.http_addr(), "/health/ready").0, 200);
}

#[test]
fn api_cluster_reports_this_node_and_moves_with_traffic() {
    let server = TestServer::start();
    let before = api(server.http_addr());
    let node = info_value(server.addr(), "node").expect("node");
    assert_eq!(str_at(&before, "/node"), node);
    assert_eq!(
        str_at(&before, "/build"),
        info_value(server.addr(), "build").expect("build")
    );
    assert_eq!(
        str_at(&before, "/cluster/key"),
        info_value(server.addr(), "cluster-key").expect("cluster-key")
    );
    assert_eq!(u64_at(&before, "/cluster/size"), 1);
    assert_eq!(before["cluster"]["stable"], true);
    assert_eq!(u64_at(&before, "/migrate_partitions_remaining"), 0);
    let members = before["members"].as_array().expect("members");
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["id"], node.as_str());
    assert_eq!(members[0]["self"], true);
    assert!(masters(&before, "test").iter().all(|m| *m == node));
    let ns = namespace(&before, "test");
    assert_eq!(u64_at(ns, "/replication_factor"), 2);
    assert_eq!(u64_at(ns, "/objects"), 0);
    assert_eq!(op_count(&before, "write"), 0);
    let bounds = before["latency_bounds_us"].as_array().expect("bounds");
    for op in before["ops"].as_array().expect("ops") {
        assert_eq!(
            op["buckets"].as_array().map(Vec::len),
            Some(bounds.len() + 1)
        );
    }

    let mut s = TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for k in 0..30 {
        assert_eq!(put_int(&mut s, "test", "demo", k).expect("put"), 0);
    }
    let after = api(server.http_addr());
    let ns = namespace(&after, "test");
    assert_eq!(u64_at(ns, "/objects"), 30);
    assert!(u64_at(ns, "/memory_used_bytes") > 0);
    assert_eq!(op_count(&after, "write"), 30);
    let write = after["ops"]
        .as_array()
        .and_then(|a| a.iter().find(|op| op["kind"] == "write"))
        .expect("write op");
    assert!(write["p50_us"].as_u64().is_some() && write["p99_us"].as_u64().is_some());
    assert!(u64_at(&after, "/uptime_ms") >= u64_at(&before, "/uptime_ms"));
    assert_eq!(
        u64_at(&after, "/uptime_ms") / 1000,
        u64_at(&after, "/uptime_s")
    );
}

#[test]
fn three_processes_agree_on_members_and_partition_masters() {
    let hb: Vec<String> = (0..3)
        .map(|_| free_port().expect("port").to_string())
        .collect();
    let http: Vec<u16> = (0..3).map(|_| free_port().expect("port")).collect();
    let seed = format!("127.0.0.1:{}", hb[0]);
    let nodes: Vec<ProcessServer> = (0..3)
        .map(|i| {
            let http_port = http[i].to_string();
            let mut args = vec![
                "--heartbeat-port",
                &hb[i],
                "--http-port",
                &http_port,
                "--log-level",
                "warn",
            ];
            if i > 0 {
                args.extend(["--seed", &seed]);
            }
            ProcessServer::spawn(&args).expect("spawn shoald")
        })
        .collect();
    let addrs: Vec<SocketAddr> = http
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();

    let deadline = Instant::now() + Duration::from_secs(30);
    let views = loop {
        let views: Vec<Value> = addrs.iter().map(|a| api(*a)).collect();
        let keys: Vec<&str> = views.iter().map(|v| str_at(v, "/cluster/key")).collect();
        if views.iter().all(|v| {
            u64_at(v, "/cluster/size") == 3 && v["cluster"]["stable"] == true && keys[0] != "0"
        }) && keys.iter().all(|k| *k == keys[0])
        {
            break views;
        }
        assert!(
            Instant::now() < deadline,
            "no stable cluster of 3 within 30 s: {views:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    let reference = masters(&views[0], "test");
    for (i, v) in views.iter().enumerate() {
        let node =
            info_value(SocketAddr::from(([127, 0, 0, 1], nodes[i].port())), "node").expect("node");
        assert_eq!(str_at(v, "/node"), node);
        let members = v["members"].as_array().expect("members");
        assert_eq!(members.len(), 3);
        let selves: Vec<&Value> = members.iter().filter(|m| m["self"] == true).collect();
        assert_eq!(selves.len(), 1, "exactly one member is this node");
        assert_eq!(selves[0]["id"], node.as_str());
        assert_eq!(
            masters(v, "test"),
            reference,
            "node {node} draws the same partition map"
        );
    }
    // Rendezvous hashing spreads masters roughly evenly; each node gets a fair share.
    for m in views[0]["members"].as_array().expect("members") {
        let id = m["id"].as_str().expect("id");
        let owned = reference.iter().filter(|x| x.as_str() == id).count();
        assert!(
            (1000..1750).contains(&owned),
            "node {id} masters {owned} of 4096"
        );
    }
}
