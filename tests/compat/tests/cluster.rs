//! A cluster of real `shoald` processes used through the official client: it discovers every
//! node from one seed, sends each request straight to the partition's master (no proxies),
//! keeps `replication-factor` copies, and loses no acknowledged write when a node is killed
//! under a write load, when a node comes back empty, or when a fourth joins.
//!
//! Facts relied on: the Rust client 3.x tends the cluster every second (`peers-clear-std`,
//! `replicas`), routes by the `replicas` bitmaps, and retries a command that fails with a
//! timeout or PARTITION_UNAVAILABLE per its policy (aerospike-protocol.md §9).

mod common;

use aerospike::{as_bin, as_key, Bins, Client, ClientPolicy, ReadPolicy, Value, WritePolicy};
use common::run;
use shoal_testkit::{free_port, info_at, wait_cluster_stable, ProcessServer};
use std::time::{Duration, Instant};

const NS: &str = "test";
const SET: &str = "cluster";

fn info(port: u16, cmd: &str) -> Option<String> {
    info_at(port, cmd)
}

fn field(text: &str, key: &str) -> Option<u64> {
    text.split(';')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
}

fn ns_stat(port: u16, key: &str) -> u64 {
    info(port, &format!("namespace/{NS}"))
        .and_then(|t| field(&t, key))
        .unwrap_or(0)
}

fn wait_stable(ports: &[u16], size: usize, limit: Duration) -> Duration {
    match wait_cluster_stable(ports, size, limit) {
        Ok((_, took)) => took,
        Err(e) => panic!("{e:#}"),
    }
}

fn spawn(hb: u16, seed: Option<u16>) -> ProcessServer {
    ProcessServer::spawn_member(hb, seed).expect("shoald starts")
}

async fn connect(port: u16, nodes: usize) -> Client {
    let seed = format!("127.0.0.1:{port}");
    let client = Client::new(&ClientPolicy::default(), &seed)
        .await
        .expect("client connects");
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.nodes().len() < nodes {
        assert!(
            Instant::now() < deadline,
            "the client found {} nodes, expected {nodes}",
            client.nodes().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One more tend so every node's partition map is in.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    client
}

async fn put(client: &Client, i: i64) -> bool {
    let key = as_key!(NS, SET, i);
    client
        .put(&WritePolicy::default(), &key, &[as_bin!("v", i)])
        .await
        .is_ok()
}

/// Reads every key in `keys` and returns the ones missing or wrong.
async fn missing(client: &Client, keys: &[i64]) -> Vec<i64> {
    let mut bad = Vec::new();
    for &i in keys {
        let key = as_key!(NS, SET, i);
        match client.get(&ReadPolicy::default(), &key, Bins::All).await {
            Ok(r) if r.bins.get("v") == Some(&Value::Int(i)) => {}
            _ => bad.push(i),
        }
    }
    bad
}

#[test]
fn a_cluster_routes_replicates_and_loses_nothing_acknowledged_across_kill_rejoin_and_growth() {
    let hb: Vec<u16> = (0..4).map(|_| free_port().expect("port")).collect();
    let n1 = spawn(hb[0], None);
    let mut n2 = spawn(hb[1], Some(hb[0]));
    let n3 = spawn(hb[2], Some(hb[0]));
    let mut ports = vec![n1.port(), n2.port(), n3.port()];
    let formed = wait_stable(&ports, 3, Duration::from_secs(30));
    eprintln!("FIGURE 3 nodes stable {formed:?} after the last start");

    run(async {
        let client = connect(n1.port(), 3).await;
        let mut acked: Vec<i64> = Vec::new();
        for i in 0..2000 {
            assert!(put(&client, i).await, "write {i} on a stable cluster");
            acked.push(i);
        }
        assert!(missing(&client, &acked).await.is_empty());
        // Two copies of everything, spread over the three nodes; the client went straight to
        // each master (no proxies).
        let objects: u64 = ports.iter().map(|p| ns_stat(*p, "objects")).sum();
        assert_eq!(objects, 2 * 2000, "RF=2 copies");
        for p in &ports {
            let o = ns_stat(*p, "objects");
            assert!(
                (800..=2000).contains(&o),
                "node {p} holds {o} of 4000 copies"
            );
            assert_eq!(ns_stat(*p, "client_proxy_complete"), 0, "node {p} proxied");
        }

        // Kill -9 one node while a writer runs; every acknowledged write must survive.
        let writer = {
            let client = client.clone();
            tokio::spawn(async move {
                let mut ok = Vec::new();
                for i in 2000..4000i64 {
                    if put(&client, i).await {
                        ok.push(i);
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                ok
            })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        n2.kill();
        let during = writer.await.expect("writer");
        eprintln!(
            "FIGURE writes acknowledged during the kill: {} of 2000",
            during.len()
        );
        acked.extend(&during);
        ports = vec![n1.port(), n3.port()];
        let healed = wait_stable(&ports, 2, Duration::from_secs(60));
        eprintln!("FIGURE 2 survivors stable {healed:?} after the writer finished");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let lost = missing(&client, &acked).await;
        assert!(
            lost.is_empty(),
            "acknowledged writes lost after a kill: {lost:?}"
        );
        let objects: u64 = ports.iter().map(|p| ns_stat(*p, "objects")).sum();
        assert!(
            objects >= 2 * acked.len() as u64,
            "copies rebuilt: {objects}"
        );
    });

    // The killed node comes back with an empty data directory, and a fourth node joins.
    let n2b = spawn(hb[1], Some(hb[0]));
    let n4 = spawn(hb[3], Some(hb[2]));
    let ports = vec![n1.port(), n2b.port(), n3.port(), n4.port()];
    let grown = wait_stable(&ports, 4, Duration::from_secs(60));
    eprintln!("FIGURE 4 nodes stable {grown:?} after the last start");
    run(async {
        let client = connect(n4.port(), 4).await;
        let all: Vec<i64> = (0..4000).collect();
        let present = all.len() - missing(&client, &all).await.len();
        let objects: u64 = ports.iter().map(|p| ns_stat(*p, "objects")).sum();
        assert_eq!(
            objects,
            2 * present as u64,
            "exactly two copies after growth"
        );
        for p in &ports {
            assert!(ns_stat(*p, "objects") > 0, "node {p} took its share");
        }
    });
    drop(n1);
}

#[test]
fn sigterm_hands_a_node_over_with_no_client_errors() {
    sigterm_under_load(2);
}

/// With replication-factor 1 a node's records exist nowhere else: SIGTERM must move every
/// partition it owns to the others before it goes (it used to stop heartbeating first and
/// take them with it).
#[test]
fn sigterm_with_replication_factor_1_keeps_every_record() {
    sigterm_under_load(1);
}

/// Three nodes with `rf` copies; a writer and reader run while the third node gets SIGTERM.
/// No client error, nothing acknowledged lost, exactly `rf` copies of everything afterwards.
fn sigterm_under_load(rf: u8) {
    let hb: Vec<u16> = (0..3).map(|_| free_port().expect("port")).collect();
    let ns = format!("{NS},replication-factor={rf}");
    let member = |i: usize| {
        let port = hb[i].to_string();
        let seed = format!("127.0.0.1:{}", hb[0]);
        let mut args = vec![
            "--heartbeat-port",
            port.as_str(),
            "--log-level",
            "warn",
            "--namespace",
            ns.as_str(),
        ];
        if i > 0 {
            args.extend(["--seed", seed.as_str()]);
        }
        ProcessServer::spawn(&args).expect("shoald starts")
    };
    let n1 = member(0);
    let n2 = member(1);
    let mut n3 = member(2);
    wait_stable(
        &[n1.port(), n2.port(), n3.port()],
        3,
        Duration::from_secs(30),
    );
    let survivors = [n1.port(), n2.port()];
    run(async {
        let client = connect(n1.port(), 3).await;
        for i in 0..3000 {
            assert!(put(&client, i).await);
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load = {
            let client = client.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let (mut ok, mut errors) = (Vec::new(), Vec::new());
                let mut i = 3000i64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let key = as_key!(NS, SET, i);
                    match client
                        .put(&WritePolicy::default(), &key, &[as_bin!("v", i)])
                        .await
                    {
                        Ok(()) => ok.push(i),
                        Err(e) => errors.push(format!("write {i}: {e}")),
                    }
                    let read_key = as_key!(NS, SET, i % 3000);
                    if let Err(e) = client
                        .get(&ReadPolicy::default(), &read_key, Bins::All)
                        .await
                    {
                        errors.push(format!("read {}: {e}", i % 3000));
                    }
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                (ok, errors)
            })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t = Instant::now();
        let status = tokio::task::spawn_blocking(move || {
            let s = n3.terminate(Duration::from_secs(60));
            (s, n3)
        })
        .await
        .expect("terminate");
        let (status, _n3) = status;
        assert!(status.expect("exits").success(), "clean exit on SIGTERM");
        eprintln!("FIGURE SIGTERM hand-over (RF {rf}) took {:?}", t.elapsed());
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (ok, errors) = load.await.expect("load");
        eprintln!(
            "FIGURE client errors during SIGTERM (RF {rf}): {} ({} writes acknowledged)",
            errors.len(),
            ok.len()
        );
        assert!(errors.is_empty(), "client errors: {errors:?}");
        assert!(ok.len() > 100, "the load ran: {}", ok.len());
        let mut all: Vec<i64> = (0..3000).collect();
        all.extend(&ok);
        let lost = missing(&client, &all).await;
        assert!(
            lost.is_empty(),
            "lost after SIGTERM (RF {rf}): {} keys, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        );
        tokio::task::spawn_blocking(move || wait_stable(&survivors, 2, Duration::from_secs(30)))
            .await
            .expect("wait");
        let objects: u64 = survivors.iter().map(|p| ns_stat(*p, "objects")).sum();
        assert_eq!(
            objects,
            u64::from(rf) * all.len() as u64,
            "{rf} copies of every record on the two others"
        );
    });
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn a_paused_node_rejoins_and_its_stale_copies_lose_to_newer_writes() {
    let hb: Vec<u16> = (0..3).map(|_| free_port().expect("port")).collect();
    let n1 = spawn(hb[0], None);
    let n2 = spawn(hb[1], Some(hb[0]));
    let n3 = spawn(hb[2], Some(hb[0]));
    let all = [n1.port(), n2.port(), n3.port()];
    wait_stable(&all, 3, Duration::from_secs(30));
    run(async {
        let client = connect(n1.port(), 3).await;
        let keys: Vec<i64> = (0..600).collect();
        for &i in &keys {
            assert!(put(&client, i).await);
        }
        // Pause one node past the heartbeat timeout (1.5 s): the others go on without it.
        signal(n3.pid(), "-STOP");
        let two = [n1.port(), n2.port()];
        tokio::task::spawn_blocking(move || wait_stable(&two, 2, Duration::from_secs(30)))
            .await
            .expect("wait");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Newer versions of every key while it sleeps.
        for &i in &keys {
            let key = as_key!(NS, SET, i);
            let mut written = false;
            for _ in 0..20 {
                if client
                    .put(&WritePolicy::default(), &key, &[as_bin!("v", i + 10_000)])
                    .await
                    .is_ok()
                {
                    written = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(written, "write {i} while a node is paused");
        }
        signal(n3.pid(), "-CONT");
        let ports = all;
        let t =
            tokio::task::spawn_blocking(move || wait_stable(&ports, 3, Duration::from_secs(60)))
                .await
                .expect("wait");
        eprintln!("FIGURE paused node back and cluster stable after {t:?}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for &i in &keys {
            let key = as_key!(NS, SET, i);
            let r = client
                .get(&ReadPolicy::default(), &key, Bins::All)
                .await
                .expect("read after the pause");
            assert_eq!(
                r.bins.get("v"),
                Some(&Value::Int(i + 10_000)),
                "key {i}: a stale copy won"
            );
        }
        let objects: u64 = all.iter().map(|p| ns_stat(*p, "objects")).sum();
        assert_eq!(objects, 2 * keys.len() as u64, "two copies, no leftovers");
    });
}

#[test]
fn quiesce_moves_a_node_out_quiesce_undo_brings_it_back_and_recluster_renews_the_key() {
    let hb: Vec<u16> = (0..3).map(|_| free_port().expect("port")).collect();
    let n1 = spawn(hb[0], None);
    let n2 = spawn(hb[1], Some(hb[0]));
    let n3 = spawn(hb[2], Some(hb[0]));
    let all = [n1.port(), n2.port(), n3.port()];
    wait_stable(&all, 3, Duration::from_secs(30));
    run(async {
        let client = connect(n1.port(), 3).await;
        let keys: Vec<i64> = (0..300).collect();
        for &i in &keys {
            assert!(put(&client, i).await);
        }
        assert_eq!(info(n3.port(), "quiesce").as_deref(), Some("ok"));
        let two = [n1.port(), n2.port()];
        tokio::task::spawn_blocking(move || wait_stable(&two, 2, Duration::from_secs(30)))
            .await
            .expect("wait");
        // Everything is on the two others, in two copies; reads through any node work.
        let objects: u64 = [n1.port(), n2.port()]
            .iter()
            .map(|p| ns_stat(*p, "objects"))
            .sum();
        assert_eq!(objects, 2 * keys.len() as u64);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(missing(&client, &keys).await.is_empty());
        assert_eq!(info(n3.port(), "quiesce-undo").as_deref(), Some("ok"));
        let ports = all;
        tokio::task::spawn_blocking(move || wait_stable(&ports, 3, Duration::from_secs(30)))
            .await
            .expect("wait");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(missing(&client, &keys).await.is_empty());
        let objects: u64 = all.iter().map(|p| ns_stat(*p, "objects")).sum();
        assert_eq!(
            objects,
            2 * keys.len() as u64,
            "two copies again over three nodes"
        );
        // `recluster`: the principal starts a new view, the others decline.
        let before = info(n1.port(), "cluster-stable:size=3").expect("stable");
        let answers: Vec<String> = all
            .iter()
            .map(|p| info(*p, "recluster").unwrap_or_default())
            .collect();
        assert_eq!(
            answers.iter().filter(|a| *a == "ok").count(),
            1,
            "exactly the principal reclusters: {answers:?}"
        );
        assert!(answers
            .iter()
            .all(|a| a == "ok" || a == "ignored-by-non-principal"));
        let ports = all;
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                wait_stable(&ports, 3, Duration::from_secs(20));
                if info(ports[0], "cluster-stable:size=3").is_some_and(|k| k != before) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "recluster made no new cluster key"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .await
        .expect("wait");
        assert!(missing(&client, &keys).await.is_empty());
    });
}

/// Commit level master: the master answers once it has applied a write, and the replica gets
/// it in the background. With the replica stopped (SIGSTOP, well inside a 15 s heartbeat
/// timeout, so the cluster does not change), a commit-master write to a partition the running
/// node masters succeeds at once, while the same write with commit level all is answered with
/// a timeout; after SIGCONT the background replication delivers and every copy agrees.
#[test]
fn commit_level_master_answers_before_the_replica_has_the_write() {
    use aerospike::{CommitLevel, ResultCode};
    use shoal_testkit::replicas::{checksums_at, compare, Role};
    let hb: Vec<u16> = (0..2).map(|_| free_port().expect("port")).collect();
    let member = |i: usize| {
        let port = hb[i].to_string();
        let seed = format!("127.0.0.1:{}", hb[0]);
        let mut args = vec![
            "--heartbeat-port",
            port.as_str(),
            "--heartbeat-timeout",
            "100",
            "--log-level",
            "warn",
        ];
        if i > 0 {
            args.extend(["--seed", seed.as_str()]);
        }
        ProcessServer::spawn(&args).expect("shoald starts")
    };
    let n1 = member(0);
    let n2 = member(1);
    let ports = [n1.port(), n2.port()];
    wait_stable(&ports, 2, Duration::from_secs(30));
    let at = |p: u16| std::net::SocketAddr::from(([127, 0, 0, 1], p));
    let mastered_by_n1: std::collections::BTreeSet<usize> = checksums_at(at(n1.port()), NS)
        .expect("checksums")
        .into_iter()
        .filter(|c| c.role == Role::Master)
        .map(|c| usize::from(c.pid))
        .collect();
    assert!(!mastered_by_n1.is_empty());
    let keys: Vec<i64> = (0..5000i64)
        .filter(|i| mastered_by_n1.contains(&as_key!(NS, SET, *i).partition_id()))
        .take(60)
        .collect();
    run(async {
        let client = connect(n1.port(), 2).await;
        signal(n2.pid(), "-STOP");
        let mut master = WritePolicy {
            commit_level: CommitLevel::CommitMaster,
            ..WritePolicy::default()
        };
        master.base_policy.max_retries = 0;
        master.base_policy.total_timeout = 5000;
        let mut all = master.clone();
        all.commit_level = CommitLevel::CommitAll;
        let t = Instant::now();
        for &i in &keys {
            client
                .put(&master, &as_key!(NS, SET, i), &[as_bin!("v", i)])
                .await
                .unwrap_or_else(|e| {
                    panic!("commit-master write {i} with the replica stopped: {e}")
                });
        }
        eprintln!(
            "FIGURE {} commit-master writes with the replica stopped: {:?}",
            keys.len(),
            t.elapsed()
        );
        for &i in keys.iter().take(3) {
            let err = client
                .put(&all, &as_key!(NS, SET, i), &[as_bin!("v", -i)])
                .await
                .expect_err("a commit-all write cannot be confirmed by a stopped replica");
            assert_eq!(common::server_code(&err), ResultCode::Timeout, "{err}");
        }
        signal(n2.pid(), "-CONT");
        // The background replications retry for 10 s: the copies converge.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let nodes: Vec<(String, Vec<_>)> = ports
                .iter()
                .map(|p| (p.to_string(), checksums_at(at(*p), NS).unwrap_or_default()))
                .collect();
            let agreement = compare(&nodes, Some(2));
            if agreement.problems.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "copies still disagree: {}",
                agreement.problems[0]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let objects: Vec<u64> = ports.iter().map(|p| ns_stat(*p, "objects")).collect();
        assert_eq!(objects[0], objects[1], "both copies hold every record");
    });
}
