//! Eviction with the official client: a namespace at or above `evict-used-pct` loses its
//! soonest-expiring records at each expiration pass (about `evict-tenths-pct` tenths of a
//! percent of its records per pass), never a record without a TTL, and reports them in
//! `evicted_objects`. Nothing here asserts on time; waits are bounded only so a broken server
//! fails the test.
//!
//! Facts relied on (aerospike-architecture.md §5): eviction removes the records closest to
//! expiring first; records that never expire are not evicted.

mod common;

use aerospike::{as_bin, as_key, Bins, Expiration, ReadPolicy, ResultCode, WritePolicy};
use common::{connect, eventually, run, server_code, TestServer, NS};
use std::time::Duration;

const SET: &str = "evict";

/// 8 MiB of memory, eviction from 50 % use, 10 % of the records per pass, a pass a second.
const CONFIG: &str = "[[namespace]]\nname = \"test\"\nmemory-size = \"8M\"\nnsup-period = 1\n\
     evict-used-pct = 50\nevict-tenths-pct = 100\n";

fn ns_stat(server: &TestServer, key: &str) -> u64 {
    let answer = shoal_testkit::info_value(server.addr(), &format!("namespace/{NS}"))
        .expect("namespace info");
    answer
        .split(';')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {answer}"))
}

#[test]
fn a_full_namespace_evicts_the_soonest_expiring_records_and_keeps_those_without_ttl() {
    let server = TestServer::start_with(CONFIG);
    run(async {
        let client = connect(&server).await;
        let blob = vec![7u8; 1024];
        // 300 records that never expire.
        let never = WritePolicy::new(0, Expiration::Never);
        for i in 0..300i64 {
            client
                .put(&never, &as_key!(NS, SET, i), &[as_bin!("b", blob.clone())])
                .await
                .expect("put without ttl");
        }
        // Records with TTLs growing with the key (key k lives 10,000 + k seconds) until the
        // namespace is past 60 % of its memory.
        let mut k = 1000i64;
        while ns_stat(&server, "memory_used_bytes") * 100 < 60 * 8 * 1024 * 1024 {
            let policy = WritePolicy::new(0, Expiration::Seconds(10_000 + k as u32));
            client
                .put(&policy, &as_key!(NS, SET, k), &[as_bin!("b", blob.clone())])
                .await
                .expect("put with ttl");
            k += 1;
            assert!(k < 20_000, "memory use never reached 60 %");
        }
        let last = k - 1;
        let evicted = eventually(Duration::from_secs(20), || async {
            ns_stat(&server, "evicted_objects") > 0
        })
        .await;
        assert!(evicted, "nothing was evicted");
        // Passes continue until use is under 50 %.
        let under = eventually(Duration::from_secs(30), || async {
            ns_stat(&server, "memory_used_bytes") * 100 < 50 * 8 * 1024 * 1024
        })
        .await;
        assert!(under, "use stayed at or above evict-used-pct");
        eprintln!(
            "FIGURE eviction: {} of {} records with a TTL evicted",
            ns_stat(&server, "evicted_objects"),
            last - 999
        );
        let rp = ReadPolicy::default();
        for i in 0..300i64 {
            client
                .get(&rp, &as_key!(NS, SET, i), Bins::None)
                .await
                .unwrap_or_else(|e| panic!("record {i} without a TTL was evicted: {e}"));
        }
        let first = client.get(&rp, &as_key!(NS, SET, 1000), Bins::None).await;
        let err = first.expect_err("the soonest-expiring record is evicted first");
        assert_eq!(server_code(&err), ResultCode::KeyNotFoundError);
        client
            .get(&rp, &as_key!(NS, SET, last), Bins::None)
            .await
            .expect("the latest-expiring record stays");
    });
}

/// Two nodes, RF 2, eviction configured on the first only: its evictions are sent to the
/// second, so both copies of every partition lose the same records (`partition-checksums`
/// agree afterwards; without the notice the second would evict nothing), and records without a
/// TTL stay on both.
#[test]
fn both_copies_evict_the_same_records() {
    use shoal_testkit::replicas::{checksums_at, compare};
    use shoal_testkit::{free_port, wait_cluster_stable, ProcessServer};
    let hb: Vec<u16> = (0..2).map(|_| free_port().expect("port")).collect();
    let evicting = "test,memory-size=8M,nsup-period=1,evict-used-pct=50,evict-tenths-pct=100";
    let not_evicting = "test,memory-size=8M,nsup-period=1,evict-used-pct=0";
    let member = |i: usize| {
        let ns = if i == 0 { evicting } else { not_evicting };
        let port = hb[i].to_string();
        let seed = format!("127.0.0.1:{}", hb[0]);
        let mut args = vec![
            "--heartbeat-port",
            port.as_str(),
            "--log-level",
            "warn",
            "--namespace",
            ns,
        ];
        if i > 0 {
            args.extend(["--seed", seed.as_str()]);
        }
        ProcessServer::spawn(&args).expect("shoald starts")
    };
    let nodes = [member(0), member(1)];
    let ports: Vec<u16> = nodes.iter().map(ProcessServer::port).collect();
    wait_cluster_stable(&ports, 2, Duration::from_secs(30)).expect("stable");
    let stat = |port: u16, key: &str| -> u64 {
        let answer = shoal_testkit::info_at(port, &format!("namespace/{NS}")).expect("info");
        answer
            .split(';')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {answer}"))
    };
    run(async {
        let client = common::connect_addr(&format!("127.0.0.1:{}", ports[0])).await;
        let blob = vec![3u8; 1024];
        let never = WritePolicy::new(0, Expiration::Never);
        for i in 0..100i64 {
            client
                .put(&never, &as_key!(NS, SET, i), &[as_bin!("b", blob.clone())])
                .await
                .expect("put without ttl");
        }
        // Records with TTLs until the first eviction pass has run (use reached 50 %).
        let mut k = 1000i64;
        while stat(ports[0], "evicted_objects") + stat(ports[1], "evicted_objects") == 0 {
            let policy = WritePolicy::new(0, Expiration::Seconds(10_000 + k as u32));
            client
                .put(&policy, &as_key!(NS, SET, k), &[as_bin!("b", blob.clone())])
                .await
                .expect("put with ttl");
            k += 1;
            assert!(k < 30_000, "nothing was evicted");
        }
        let settled = eventually(Duration::from_secs(30), || async {
            ports
                .iter()
                .all(|p| stat(*p, "memory_used_bytes") * 100 < 50 * 8 * 1024 * 1024)
        })
        .await;
        assert!(settled, "use stayed at or above evict-used-pct");
        assert!(ports.iter().all(|p| stat(*p, "evicted_objects") > 0));
        let at = |p: u16| std::net::SocketAddr::from(([127, 0, 0, 1], p));
        let copies: Vec<(String, Vec<_>)> = ports
            .iter()
            .map(|p| (p.to_string(), checksums_at(at(*p), NS).expect("checksums")))
            .collect();
        let agreement = compare(&copies, Some(2));
        assert!(
            agreement.problems.is_empty(),
            "copies disagree after eviction: {}",
            agreement.problems[0]
        );
        for i in 0..100i64 {
            client
                .get(&ReadPolicy::default(), &as_key!(NS, SET, i), Bins::None)
                .await
                .unwrap_or_else(|e| panic!("record {i} without a TTL was evicted: {e}"));
        }
    });
}
