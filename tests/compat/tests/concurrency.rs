//! Many tasks sharing one client (and so one connection pool) against one node.
//!
//! Facts relied on: the clients multiplex commands over a pool of connections, one request in
//! flight per connection (docs/aerospike-protocol.md §1.2), and a real server applies writes
//! to one record one at a time, so concurrent increments never lose an update.

mod common;

use aerospike::{as_bin, as_key, Bins, ReadPolicy, WritePolicy};
use common::{connect, int, run, TestServer, NS};

#[test]
fn thirty_two_tasks_each_read_back_their_own_writes() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        const TASKS: i64 = 32;
        const OPS: i64 = 500;
        let mut handles = Vec::new();
        for task in 0..TASKS {
            let client = client.clone();
            handles.push(tokio::spawn(async move {
                let wp = WritePolicy::default();
                let rp = ReadPolicy::default();
                for i in 0..OPS {
                    let key = as_key!(NS, "conc", task * 1_000_000 + i);
                    let value = task * 1_000 + i;
                    client
                        .put(&wp, &key, &[as_bin!("v", value), as_bin!("t", task)])
                        .await
                        .unwrap_or_else(|e| panic!("task {task} put {i}: {e}"));
                    let rec = client
                        .get(&rp, &key, Bins::All)
                        .await
                        .unwrap_or_else(|e| panic!("task {task} get {i}: {e}"));
                    assert_eq!(rec.bins.get("v"), Some(&int(value)), "task {task} op {i}");
                    assert_eq!(rec.bins.get("t"), Some(&int(task)));
                    assert_eq!(rec.generation, 1);
                }
            }));
        }
        for handle in handles {
            handle.await.expect("task panicked");
        }
        // Everything is still there afterwards.
        let records = common::scan_all(&client, NS, "conc", Bins::None).await;
        assert_eq!(records.len(), (TASKS * OPS) as usize);
    });
}

#[test]
fn concurrent_increments_of_one_record_are_not_lost() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        const TASKS: i64 = 16;
        const ADDS: i64 = 100;
        let key = as_key!(NS, "conc", "counter");
        let mut handles = Vec::new();
        for _ in 0..TASKS {
            let client = client.clone();
            let key = key.clone();
            handles.push(tokio::spawn(async move {
                let wp = WritePolicy::default();
                for _ in 0..ADDS {
                    client
                        .add(&wp, &key, &[as_bin!("n", 1)])
                        .await
                        .expect("add");
                }
            }));
        }
        for handle in handles {
            handle.await.expect("task panicked");
        }
        let rec = client
            .get(&ReadPolicy::default(), &key, Bins::All)
            .await
            .expect("get");
        assert_eq!(rec.bins.get("n"), Some(&int(TASKS * ADDS)));
        assert_eq!(rec.generation, u32::try_from(TASKS * ADDS).expect("gen"));
    });
}
