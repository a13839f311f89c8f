//! "Replicas agree" on a three-node, replication-factor 2 cluster of real `shoald` processes
//! written through the official client: after the writes every partition has exactly two
//! complete copies, one master, with the same records (`partition-checksums`, compared by
//! `shoal_testkit::replicas`); the comparison sees a copy that differs by one update; and a
//! node killed and restarted empty never lists a partition as complete before its migration
//! has filled it (every copy it lists while refilling agrees with the others).
//!
//! Facts relied on: the Rust client 3.x sends each write to the partition's master, and
//! shoal acknowledges a write only after every owner applied it (docs/design/cluster.md), so
//! once the writes are acknowledged and migrations are done, the copies are final.

mod common;

use aerospike::{as_bin, as_key, Client, ClientPolicy, WritePolicy};
use common::run;
use shoal_testkit::replicas::{checksums_at, compare, PartitionCopy};
use shoal_testkit::{free_port, info_at, wait_cluster_stable, ProcessServer};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NS: &str = "test";
const SET: &str = "agree";
const KEYS: i64 = 6000;
const UPDATED: i64 = 500;
const DELETED: i64 = 300;

fn spawn(hb: u16, seed: Option<u16>) -> ProcessServer {
    ProcessServer::spawn_member(hb, seed).expect("shoald starts")
}

async fn connect(port: u16, nodes: usize) -> Client {
    let client = Client::new(&ClientPolicy::default(), &format!("127.0.0.1:{port}"))
        .await
        .expect("client connects");
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.nodes().len() < nodes {
        assert!(Instant::now() < deadline, "the client found too few nodes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    client
}

/// Every node's copies, named by service port.
fn snapshot(ports: &[u16]) -> Vec<(String, Vec<PartitionCopy>)> {
    ports
        .iter()
        .map(|p| {
            let copies = checksums_at(std::net::SocketAddr::from(([127, 0, 0, 1], *p)), NS)
                .unwrap_or_else(|e| panic!("{e:#}"));
            (p.to_string(), copies)
        })
        .collect()
}

/// The partition of a client key (the digest's first two bytes, little-endian, 12 bits).
fn partition_of(i: i64) -> u16 {
    let key = as_key!(NS, SET, i);
    let d = key.digest();
    u16::from_le_bytes([d[0], d[1]]) & 0x0FFF
}

/// Writes `0..KEYS` (16 at a time), updates the first `UPDATED`, deletes the last `DELETED`.
async fn load(client: Arc<Client>) {
    let mut tasks = Vec::new();
    for w in 0..16i64 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let policy = WritePolicy::default();
            let mut i = w;
            while i < KEYS {
                let key = as_key!(NS, SET, i);
                client
                    .put(
                        &policy,
                        &key,
                        &[as_bin!("v", i), as_bin!("s", format!("x{i}"))],
                    )
                    .await
                    .unwrap_or_else(|e| panic!("write {i}: {e}"));
                if i < UPDATED {
                    client
                        .put(&policy, &key, &[as_bin!("v", -i)])
                        .await
                        .unwrap_or_else(|e| panic!("update {i}: {e}"));
                }
                if i >= KEYS - DELETED {
                    client
                        .delete(&policy, &key)
                        .await
                        .unwrap_or_else(|e| panic!("delete {i}: {e}"));
                }
                i += 16;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
}

#[test]
fn every_partition_has_rf_agreeing_copies_and_a_refilling_node_claims_none_early() {
    let hb: Vec<u16> = (0..3).map(|_| free_port().expect("port")).collect();
    let n1 = spawn(hb[0], None);
    let n2 = spawn(hb[1], Some(hb[0]));
    let mut n3 = spawn(hb[2], Some(hb[0]));
    let mut ports = vec![n1.port(), n2.port(), n3.port()];
    wait_cluster_stable(&ports, 3, Duration::from_secs(30)).expect("3 nodes stable");

    let live = (KEYS - DELETED) as u64;
    run(async {
        let client = Arc::new(connect(n1.port(), 3).await);
        let started = Instant::now();
        load(client.clone()).await;
        eprintln!(
            "FIGURE {} writes, {UPDATED} updates, {DELETED} deletes in {:?}",
            KEYS,
            started.elapsed()
        );
        wait_cluster_stable(&ports, 3, Duration::from_secs(30)).expect("stable after writes");

        // 1. Exactly two agreeing copies of every partition, one master.
        let started = Instant::now();
        let before = snapshot(&ports);
        let a = compare(&before, Some(2));
        eprintln!(
            "FIGURE partition-checksums of 3 nodes in {:?}: {} partitions, {} copies, {} records",
            started.elapsed(),
            a.partitions,
            a.copies,
            a.master_records
        );
        assert!(
            a.agrees(),
            "first problems: {:?}",
            &a.problems[..a.problems.len().min(5)]
        );
        assert_eq!(a.master_records, live, "live records in the master copies");
        assert_eq!(a.extras, 0);
        let all_copies: u64 = before
            .iter()
            .flat_map(|(_, c)| c.iter().map(|c| c.records))
            .sum();
        assert_eq!(all_copies, 2 * live, "two copies of every live record");

        // 2. A copy that differs by one update is seen: the old answers of every node but the
        //    updated partition's master, against the master's new answer.
        let target = 1i64;
        let pid = partition_of(target);
        client
            .put(
                &WritePolicy::default(),
                &as_key!(NS, SET, target),
                &[as_bin!("v", 99)],
            )
            .await
            .expect("one more update");
        let after = snapshot(&ports);
        let changed: BTreeSet<u16> = before
            .iter()
            .zip(&after)
            .flat_map(|((_, b), (_, a))| {
                a.iter()
                    .zip(b)
                    .filter(|(x, y)| x != y)
                    .map(|(x, _)| x.pid)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            changed,
            BTreeSet::from([pid]),
            "only the updated partition changed"
        );
        assert!(
            compare(&after, Some(2)).agrees(),
            "copies agree again after replication"
        );
        let master = after
            .iter()
            .position(|(_, c)| {
                c.iter()
                    .any(|c| c.pid == pid && c.role.as_str() == "master")
            })
            .expect("the partition has a master");
        let mut mixed = before.clone();
        mixed[master] = after[master].clone();
        let m = compare(&mixed, Some(2));
        assert_eq!(m.problems.len(), 1, "{:?}", m.problems);
        assert_eq!((m.problems[0].pid, m.problems[0].kind), (pid, "disagree"));
        eprintln!("FIGURE a stale copy is reported: {}", m.problems[0]);

        // 3. Kill -9 the third node and restart it empty (memory namespace): until migrations
        //    have refilled a partition it must not list it, so whatever it lists agrees.
        let holds_before = after[2].1.len();
        n3.kill();
        n3 = spawn(hb[2], Some(hb[0]));
        ports[2] = n3.port();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut polls = 0usize;
        let mut partial_seen = BTreeSet::new();
        loop {
            let answers: Vec<(String, Vec<PartitionCopy>)> = ports
                .iter()
                .map(|p| {
                    // A node still waiting to join lists nothing (it answers an error).
                    (
                        p.to_string(),
                        checksums_at(std::net::SocketAddr::from(([127, 0, 0, 1], *p)), NS)
                            .unwrap_or_default(),
                    )
                })
                .collect();
            polls += 1;
            partial_seen.insert(answers[2].1.len());
            let a = compare(&answers, None);
            assert!(
                a.agrees(),
                "poll {polls}: a listed copy disagrees while the node refills: {:?}",
                &a.problems[..a.problems.len().min(5)]
            );
            let stable = ports.iter().all(|p| {
                info_at(*p, "cluster-stable:size=3").is_some_and(|v| !v.starts_with("ERROR"))
            });
            if stable {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no stable cluster after the restart"
            );
        }
        wait_cluster_stable(&ports, 3, Duration::from_secs(30)).expect("stable after refill");
        let end = snapshot(&ports);
        let e = compare(&end, Some(2));
        assert!(
            e.agrees(),
            "first problems: {:?}",
            &e.problems[..e.problems.len().min(5)]
        );
        assert_eq!(e.master_records, live);
        eprintln!(
            "FIGURE refill: {polls} polls; the restarted node listed {} distinct counts of \
             complete partitions along the way, {:?} to {:?} ({holds_before} before the kill, {} \
             at the end)",
            partial_seen.len(),
            partial_seen.first(),
            partial_seen.last(),
            end[2].1.len()
        );
        let _ = client.close().await;
    });
    drop((n1, n2, n3));
}
