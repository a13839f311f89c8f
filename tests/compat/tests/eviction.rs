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
