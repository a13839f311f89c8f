//! Scans: the client's `query` with a `PartitionFilter` and no index filter (the partition
//! scan protocol every modern client uses).
//!
//! Facts relied on (Rust client suite `tests/src/scan.rs`, Go client `client_test.go`):
//! - A set scan returns every record of the set exactly once; a bin selection returns only the
//!   selected bins; `Bins::None` returns metadata only.
//! - With `max_records`, each round stops early and the returned `PartitionFilter` resumes
//!   where the consumer stopped; looping until `done()` yields every record once.
//! - Scan records carry namespace, set and digest; the user key only when it was stored with
//!   `send_key` (Go "must send key on Put operations" / "... Touch operations").
//! - A record's partition is the low 12 bits of its digest (docs/aerospike-protocol.md §6.2),
//!   so a partition-range scan returns exactly the records whose partition falls in the range.

mod common;

use aerospike::query::PartitionFilter;
use aerospike::{as_bin, as_key, Bins, Client, QueryPolicy, Value, WritePolicy};
use common::{connect, int, run, scan, scan_all, TestServer, NS};
use futures::StreamExt;
use std::collections::{HashMap, HashSet};

const S1: usize = 300;
const S2: usize = 200;
const NO_SET: usize = 50;

/// Loads set `s1` (300), set `s2` (200) and 50 records without a set.
async fn load(client: &Client) {
    let wp = WritePolicy::default();
    for i in 0..S1 as i64 {
        client
            .put(
                &wp,
                &as_key!(NS, "s1", i),
                &[as_bin!("a", i), as_bin!("b", "hello"), as_bin!("c", 1.5f64)],
            )
            .await
            .expect("put s1");
    }
    for i in 0..S2 as i64 {
        client
            .put(&wp, &as_key!(NS, "s2", i), &[as_bin!("a", -i)])
            .await
            .expect("put s2");
    }
    for i in 0..NO_SET as i64 {
        client
            .put(&wp, &as_key!(NS, "", i), &[as_bin!("a", i)])
            .await
            .expect("put no-set");
    }
}

fn digests(records: &[aerospike::Record]) -> HashSet<[u8; 20]> {
    records
        .iter()
        .map(|r| r.key.as_ref().expect("scan record key").digest())
        .collect()
}

#[test]
fn scan_of_a_set_returns_each_record_once_with_all_bins() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        load(&client).await;
        let records = scan_all(&client, NS, "s1", Bins::All).await;
        assert_eq!(records.len(), S1);
        assert_eq!(digests(&records).len(), S1, "duplicates in the scan");
        let expected: HashMap<[u8; 20], i64> = (0..S1 as i64)
            .map(|i| (as_key!(NS, "s1", i).digest(), i))
            .collect();
        for rec in &records {
            let key = rec.key.as_ref().expect("key");
            assert_eq!(key.namespace(), NS);
            assert_eq!(key.set_name(), "s1");
            assert_eq!(key.user_key(), None, "no key was stored");
            let i = *expected
                .get(&key.digest())
                .expect("scan returned a record that was never written to s1");
            assert_eq!(rec.bins.len(), 3);
            assert_eq!(rec.bins.get("a"), Some(&int(i)));
            assert_eq!(rec.bins.get("b"), Some(&Value::from("hello")));
            assert_eq!(rec.bins.get("c"), Some(&Value::from(1.5f64)));
            assert_eq!(rec.generation, 1);
        }
    });
}

#[test]
fn scan_of_the_whole_namespace_returns_every_set() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        load(&client).await;
        let records = scan_all(&client, NS, "", Bins::All).await;
        assert_eq!(records.len(), S1 + S2 + NO_SET);
        assert_eq!(digests(&records).len(), S1 + S2 + NO_SET);
        let mut per_set: HashMap<String, usize> = HashMap::new();
        for rec in &records {
            let set = rec.key.as_ref().expect("key").set_name().to_string();
            *per_set.entry(set).or_default() += 1;
        }
        assert_eq!(per_set.get("s1"), Some(&S1));
        assert_eq!(per_set.get("s2"), Some(&S2));
        assert_eq!(per_set.get(""), Some(&NO_SET));
    });
}

#[test]
fn scan_with_bin_selection_and_without_bins() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        load(&client).await;
        let records = scan_all(&client, NS, "s1", Bins::from(["a", "c"])).await;
        assert_eq!(records.len(), S1);
        for rec in &records {
            assert_eq!(rec.bins.len(), 2, "bins: {:?}", rec.bins);
            assert!(rec.bins.contains_key("a") && rec.bins.contains_key("c"));
        }

        let records = scan_all(&client, NS, "s1", Bins::None).await;
        assert_eq!(records.len(), S1);
        for rec in &records {
            assert!(rec.bins.is_empty(), "metadata-only scan returned bins");
            assert_eq!(rec.generation, 1);
            assert!(rec.key.is_some());
        }
        assert_eq!(digests(&records).len(), S1);
    });
}

#[test]
fn scan_of_an_empty_or_unknown_set_returns_nothing() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        assert!(scan_all(&client, NS, "", Bins::All).await.is_empty());
        load(&client).await;
        assert!(scan_all(&client, NS, "nosuchset", Bins::All)
            .await
            .is_empty());
        // A set whose records were all deleted is empty too.
        let wp = WritePolicy::default();
        for i in 0..5i64 {
            client
                .put(&wp, &as_key!(NS, "gone", i), &[as_bin!("a", 1)])
                .await
                .expect("put");
        }
        for i in 0..5i64 {
            assert!(client
                .delete(&wp, &as_key!(NS, "gone", i))
                .await
                .expect("delete"));
        }
        assert!(scan_all(&client, NS, "gone", Bins::All).await.is_empty());
    });
}

#[test]
fn scan_with_max_records_resumes_until_done() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        load(&client).await;
        let policy = QueryPolicy {
            max_records: 70,
            ..QueryPolicy::default()
        };
        let mut filter = PartitionFilter::all();
        let mut seen: HashSet<[u8; 20]> = HashSet::new();
        let mut total = 0usize;
        let mut rounds = 0usize;
        while !filter.done() {
            rounds += 1;
            assert!(rounds <= 50, "resume loop did not finish");
            let statement = aerospike::Statement::new(NS, "s1", Bins::All);
            let recordset = client
                .query(&policy, filter, statement)
                .await
                .expect("query");
            let mut stream = recordset.clone().into_stream();
            let mut this_round = 0usize;
            while let Some(item) = stream.next().await {
                let rec = item.expect("record");
                let digest = rec.key.as_ref().expect("key").digest();
                assert!(seen.insert(digest), "record returned twice across rounds");
                this_round += 1;
            }
            assert!(
                this_round <= 70,
                "round {rounds} returned {this_round} > max_records"
            );
            total += this_round;
            filter = recordset
                .partition_filter()
                .expect("a finished recordset hands back its cursor");
        }
        assert_eq!(total, S1);
        assert_eq!(seen.len(), S1);
        assert!(
            rounds >= S1.div_ceil(70),
            "{rounds} rounds cannot have honoured max_records 70"
        );
    });
}

#[test]
fn scan_of_a_partition_range_returns_exactly_those_partitions() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        load(&client).await;
        let (begin, count) = (1000usize, 1500usize);
        let expected: HashSet<[u8; 20]> = (0..S1 as i64)
            .map(|i| as_key!(NS, "s1", i))
            .filter(|k| (begin..begin + count).contains(&k.partition_id()))
            .map(|k| k.digest())
            .collect();
        assert!(!expected.is_empty() && expected.len() < S1);
        let records = scan(
            &client,
            &QueryPolicy::default(),
            PartitionFilter::by_range(begin, count),
            NS,
            "s1",
            Bins::All,
        )
        .await;
        assert_eq!(records.len(), expected.len());
        assert_eq!(digests(&records), expected);

        // One partition by id.
        let key = as_key!(NS, "s1", 17);
        let pid = key.partition_id();
        let expected: HashSet<[u8; 20]> = (0..S1 as i64)
            .map(|i| as_key!(NS, "s1", i))
            .filter(|k| k.partition_id() == pid)
            .map(|k| k.digest())
            .collect();
        let records = scan(
            &client,
            &QueryPolicy::default(),
            PartitionFilter::by_id(pid),
            NS,
            "s1",
            Bins::All,
        )
        .await;
        assert_eq!(digests(&records), expected);
        assert!(digests(&records).contains(&key.digest()));
    });
}

#[test]
fn scan_returns_stored_user_keys() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let send_key = WritePolicy {
            send_key: true,
            ..WritePolicy::default()
        };
        let wp = WritePolicy::default();
        for i in 0..20i64 {
            let policy = if i % 2 == 0 { &send_key } else { &wp };
            client
                .put(policy, &as_key!(NS, "keys", i), &[as_bin!("a", i)])
                .await
                .expect("put");
        }
        client
            .put(&send_key, &as_key!(NS, "keys", "text"), &[as_bin!("a", -1)])
            .await
            .expect("put");

        let records = scan_all(&client, NS, "keys", Bins::All).await;
        assert_eq!(records.len(), 21);
        for rec in &records {
            let key = rec.key.as_ref().expect("key");
            match rec.bins.get("a") {
                Some(Value::Int(-1)) => assert_eq!(key.user_key(), Some(&Value::from("text"))),
                Some(Value::Int(i)) if i % 2 == 0 => {
                    assert_eq!(key.user_key(), Some(&Value::Int(*i)));
                    assert_eq!(key.digest(), as_key!(NS, "keys", *i).digest());
                }
                Some(Value::Int(_)) => assert_eq!(key.user_key(), None),
                other => panic!("unexpected bin {other:?}"),
            }
        }

        // Touching with send_key stores the key of a record written without it.
        client
            .touch(&send_key, &as_key!(NS, "keys", 1))
            .await
            .expect("touch with send_key");
        let records = scan_all(&client, NS, "keys", Bins::All).await;
        let touched = records
            .iter()
            .find(|r| r.bins.get("a") == Some(&Value::Int(1)))
            .expect("record 1");
        assert_eq!(
            touched.key.as_ref().expect("key").user_key(),
            Some(&Value::Int(1))
        );
    });
}

#[test]
fn scan_does_not_return_deleted_or_expired_records() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        for i in 0..10i64 {
            client
                .put(&wp, &as_key!(NS, "mixed", i), &[as_bin!("a", i)])
                .await
                .expect("put");
        }
        let short = WritePolicy::new(0, aerospike::Expiration::Seconds(1));
        for i in 10..15i64 {
            client
                .put(&short, &as_key!(NS, "mixed", i), &[as_bin!("a", i)])
                .await
                .expect("put short ttl");
        }
        for i in 0..3i64 {
            client
                .delete(&wp, &as_key!(NS, "mixed", i))
                .await
                .expect("delete");
        }
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        let records = scan_all(&client, NS, "mixed", Bins::All).await;
        let mut values: Vec<i64> = records
            .iter()
            .map(|r| match r.bins.get("a") {
                Some(Value::Int(i)) => *i,
                other => panic!("{other:?}"),
            })
            .collect();
        values.sort_unstable();
        assert_eq!(values, (3..10).collect::<Vec<_>>());
    });
}
