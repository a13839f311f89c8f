//! `Client::truncate`: the `truncate` / `truncate-namespace` info commands.
//!
//! Facts relied on (docs/aerospike-protocol.md §9.5 and §2.3): the node answers `ok`; records
//! whose last-update time is before the cut-off (default: now) are deleted, in the background,
//! so the tests poll with a bound; records written after the cut-off survive. The Rust client
//! sends `truncate:namespace=<ns>;set=<set>[;lut=<nanos>]` or `truncate-namespace:namespace=<ns>`
//! and reports any answer other than `ok`/empty as an error (`aerospike-core` `client.rs`).

mod common;

use aerospike::{as_bin, as_key, AdminPolicy, Bins, ReadPolicy, WritePolicy};
use common::{connect, eventually, run, scan_all, unix_nanos, TestServer, NS};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(10);

async fn fill(client: &aerospike::Client, ns: &str, set: &str, range: std::ops::Range<i64>) {
    let wp = WritePolicy::default();
    for i in range {
        client
            .put(&wp, &as_key!(ns, set, i), &[as_bin!("v", i)])
            .await
            .expect("put");
    }
}

async fn count(client: &aerospike::Client, ns: &str, set: &str) -> usize {
    scan_all(client, ns, set, Bins::None).await.len()
}

#[test]
fn truncate_a_set_leaves_other_sets() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        fill(&client, NS, "t1", 0..100).await;
        fill(&client, NS, "t2", 0..50).await;
        client
            .truncate(&AdminPolicy::default(), NS, "t1", 0)
            .await
            .expect("truncate set");
        assert!(
            eventually(LIMIT, || async { count(&client, NS, "t1").await == 0 }).await,
            "set t1 still has records after truncate"
        );
        assert_eq!(count(&client, NS, "t2").await, 50);
        let rp = ReadPolicy::default();
        assert!(!client
            .exists(&rp, &as_key!(NS, "t1", 5))
            .await
            .expect("exists"));
        assert!(client
            .exists(&rp, &as_key!(NS, "t2", 5))
            .await
            .expect("exists"));
    });
}

#[test]
fn records_written_after_a_truncate_survive_it() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        fill(&client, NS, "t1", 0..40).await;
        client
            .truncate(&AdminPolicy::default(), NS, "t1", 0)
            .await
            .expect("truncate set");
        assert!(
            eventually(LIMIT, || async { count(&client, NS, "t1").await == 0 }).await,
            "truncate did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        fill(&client, NS, "t1", 100..110).await;
        // Give a background truncate every chance to (wrongly) take the new records.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(count(&client, NS, "t1").await, 10);
        let rec = client
            .get(&ReadPolicy::default(), &as_key!(NS, "t1", 105), Bins::All)
            .await
            .expect("new record survives");
        assert_eq!(rec.bins.get("v"), Some(&common::int(105)));
        assert_eq!(rec.generation, 1, "a truncated key starts a new record");
    });
}

#[test]
fn truncate_with_a_before_time_keeps_newer_records() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        fill(&client, NS, "lut", 0..30).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let cut = unix_nanos();
        tokio::time::sleep(Duration::from_millis(200)).await;
        fill(&client, NS, "lut", 100..120).await;
        client
            .truncate(&AdminPolicy::default(), NS, "lut", cut)
            .await
            .expect("truncate with lut");
        assert!(
            eventually(LIMIT, || async { count(&client, NS, "lut").await == 20 }).await,
            "expected only the 20 newer records to remain"
        );
        let rp = ReadPolicy::default();
        assert!(!client
            .exists(&rp, &as_key!(NS, "lut", 0))
            .await
            .expect("exists"));
        assert!(client
            .exists(&rp, &as_key!(NS, "lut", 100))
            .await
            .expect("exists"));
        // Stable: nothing else disappears later.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(count(&client, NS, "lut").await, 20);
    });
}

#[test]
fn truncate_a_whole_namespace() {
    let server = TestServer::start_with(
        "[[namespace]]\nname = \"test\"\nnsup-period = 1\n\n\
         [[namespace]]\nname = \"bar\"\nnsup-period = 1\n",
    );
    run(async {
        let client = connect(&server).await;
        fill(&client, NS, "a", 0..30).await;
        fill(&client, NS, "b", 0..30).await;
        fill(&client, NS, "", 0..30).await;
        fill(&client, "bar", "a", 0..30).await;
        client
            .truncate(&AdminPolicy::default(), NS, "", 0)
            .await
            .expect("truncate namespace");
        assert!(
            eventually(LIMIT, || async { count(&client, NS, "").await == 0 }).await,
            "namespace test still has records"
        );
        assert_eq!(
            count(&client, "bar", "a").await,
            30,
            "other namespace touched"
        );

        // Writes after the namespace truncate stay.
        tokio::time::sleep(Duration::from_millis(20)).await;
        fill(&client, NS, "a", 0..5).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(count(&client, NS, "").await, 5);
    });
}

#[test]
fn truncate_a_namespace_with_a_before_time() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        fill(&client, NS, "x", 0..10).await;
        fill(&client, NS, "", 0..10).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let cut = unix_nanos();
        tokio::time::sleep(Duration::from_millis(200)).await;
        fill(&client, NS, "y", 0..7).await;
        client
            .truncate(&AdminPolicy::default(), NS, "", cut)
            .await
            .expect("truncate namespace with lut");
        assert!(
            eventually(LIMIT, || async { count(&client, NS, "").await == 7 }).await,
            "expected the 7 newer records to remain"
        );
        assert_eq!(count(&client, NS, "y").await, 7);
    });
}

#[test]
fn truncate_of_unknown_containers_is_accepted() {
    // Python client `test_truncate.py` "test_truncate_non_existent_containers": a real server
    // answers ok for a namespace or set it does not have.
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        client
            .truncate(&AdminPolicy::default(), "fake_namespace", "truncate", 0)
            .await
            .expect("truncate of an unknown namespace");
        client
            .truncate(&AdminPolicy::default(), NS, "fake_set", 0)
            .await
            .expect("truncate of an unknown set");
    });
}

#[test]
fn truncate_rejects_a_before_time_in_the_future_or_before_2010() {
    // Python client `test_truncate.py`: a cut-off 1000 s in the future, or before the
    // 2010-01-01 epoch (1 ns), is refused by the server (InvalidRequest), and nothing is
    // deleted; a cut-off before every record deletes nothing.
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        fill(&client, NS, "keep", 0..20).await;
        let future = unix_nanos() + 1_000_000_000_000;
        assert!(client
            .truncate(&AdminPolicy::default(), NS, "keep", future)
            .await
            .is_err());
        assert!(client
            .truncate(&AdminPolicy::default(), NS, "keep", 1)
            .await
            .is_err());
        let an_hour_ago = unix_nanos() - 3_600_000_000_000;
        client
            .truncate(&AdminPolicy::default(), NS, "keep", an_hour_ago)
            .await
            .expect("truncate with a cut-off before every record");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(count(&client, NS, "keep").await, 20);
    });
}
