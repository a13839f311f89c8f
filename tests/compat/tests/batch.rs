//! Batch commands (the batch-index protocol; the client uses it whenever a node gets two or
//! more keys, so every batch here has at least two keys).
//!
//! Facts relied on (Rust client suite `tests/src/batch.rs`, run against real servers):
//! - Found rows answer OK with their bins, missing rows KEY_NOT_FOUND (2) and no record.
//! - A write row reports each written bin as nil; `[add, get_bin]` answers `[nil, value]`.
//! - An OK delete row carries a bin-less record; deleting a missing key answers KEY_NOT_FOUND.
//! - A header read (`Bins::None`) answers OK with no bins; two reads of one bin answer a
//!   multi-result.
//!
//! Go client `batch_test.go`: per-row failures do not fail the other rows.

mod common;

use aerospike::operations;
use aerospike::{
    as_bin, as_key, BatchDeletePolicy, BatchOperation, BatchPolicy, BatchReadPolicy,
    BatchWritePolicy, Bins, Key, ReadPolicy, RecordExistsAction, ResultCode, Value, WritePolicy,
};
use common::{connect, int, run, TestServer, NS};

const SET: &str = "batch";

async fn seed(client: &aerospike::Client, count: i64) {
    let wp = WritePolicy::default();
    for i in 0..count {
        client
            .put(
                &wp,
                &as_key!(NS, SET, i),
                &[as_bin!("i", i), as_bin!("s", format!("v{i}"))],
            )
            .await
            .expect("seed put");
    }
}

fn read_all(keys: impl IntoIterator<Item = Key>, bins: &Bins) -> Vec<BatchOperation> {
    let policy = BatchReadPolicy::default();
    keys.into_iter()
        .map(|k| BatchOperation::read(&policy, k, bins.clone()))
        .collect()
}

#[test]
fn batch_get_all_bins_with_found_and_missing_keys() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        seed(&client, 10).await;
        let mut ops = read_all((0..14i64).map(|i| as_key!(NS, SET, i)), &Bins::All);
        client
            .batch(&BatchPolicy::default(), &mut ops)
            .await
            .expect("batch");
        for (i, op) in ops.iter().enumerate() {
            let i = i as i64;
            if i < 10 {
                assert_eq!(op.result_code(), Some(ResultCode::Ok), "row {i}");
                let rec = op.record().expect("found row has a record");
                assert_eq!(rec.bins.len(), 2, "row {i}: {:?}", rec.bins);
                assert_eq!(rec.bins.get("i"), Some(&int(i)));
                assert_eq!(rec.bins.get("s"), Some(&Value::from(format!("v{i}"))));
                assert_eq!(rec.generation, 1);
                assert_eq!(rec.expiration(), 0);
            } else {
                assert_eq!(
                    op.result_code(),
                    Some(ResultCode::KeyNotFoundError),
                    "row {i}"
                );
                assert!(op.record().is_none(), "row {i}");
            }
        }
    });
}

#[test]
fn batch_get_named_bins() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        seed(&client, 5).await;
        let mut ops = read_all(
            (0..5i64).map(|i| as_key!(NS, SET, i)),
            &Bins::from(["s", "nosuchbin"]),
        );
        client
            .batch(&BatchPolicy::default(), &mut ops)
            .await
            .expect("batch");
        for (i, op) in ops.iter().enumerate() {
            let rec = op.record().expect("record");
            assert_eq!(rec.bins.len(), 1, "row {i}: {:?}", rec.bins);
            assert_eq!(rec.bins.get("s"), Some(&Value::from(format!("v{i}"))));
        }
    });
}

#[test]
fn batch_exists_and_header_reads() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        seed(&client, 6).await;
        // Bump generations of even keys.
        for i in (0..6i64).step_by(2) {
            client
                .touch(&WritePolicy::default(), &as_key!(NS, SET, i))
                .await
                .expect("touch");
        }
        let mut ops = read_all((0..8i64).map(|i| as_key!(NS, SET, i)), &Bins::None);
        client
            .batch(&BatchPolicy::default(), &mut ops)
            .await
            .expect("batch");
        for (i, op) in ops.iter().enumerate() {
            if i < 6 {
                assert_eq!(op.result_code(), Some(ResultCode::Ok), "row {i}");
                let rec = op.record().expect("header");
                assert!(rec.bins.is_empty(), "row {i}: header read returned bins");
                let expected_gen = if i % 2 == 0 { 2 } else { 1 };
                assert_eq!(rec.generation, expected_gen, "row {i}");
            } else {
                assert_eq!(
                    op.result_code(),
                    Some(ResultCode::KeyNotFoundError),
                    "row {i}"
                );
            }
        }
    });
}

#[test]
fn batch_read_operations() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        seed(&client, 4).await;
        let policy = BatchReadPolicy::default();
        let mut ops: Vec<BatchOperation> = (0..4i64)
            .map(|i| {
                BatchOperation::read_ops(
                    &policy,
                    as_key!(NS, SET, i),
                    vec![operations::get_bin("i"), operations::get_bin("i")],
                )
            })
            .collect();
        ops.push(BatchOperation::read_ops(
            &policy,
            as_key!(NS, SET, 1),
            vec![operations::get_bin("s"), operations::get_header()],
        ));
        ops.push(BatchOperation::read_ops(
            &policy,
            as_key!(NS, SET, 99),
            vec![operations::get_bin("s")],
        ));
        client
            .batch(&BatchPolicy::default(), &mut ops)
            .await
            .expect("batch");
        for (i, op) in ops.iter().take(4).enumerate() {
            let rec = op.record().expect("record");
            let i = i as i64;
            assert_eq!(
                rec.bins.get("i"),
                Some(&Value::MultiResult(vec![int(i), int(i)])),
                "row {i}"
            );
        }
        // A header op sets NOBINDATA on the row, and a real server then answers metadata
        // only, whatever other read ops the row has (server `read_local`: GET_NO_BINS is
        // handled before any op).
        let rec = ops[4].record().expect("record");
        assert!(
            rec.bins.is_empty(),
            "header row returned bins: {:?}",
            rec.bins
        );
        assert_eq!(rec.generation, 1);
        assert_eq!(ops[5].result_code(), Some(ResultCode::KeyNotFoundError));
    });
}

#[test]
fn batch_writes_and_batch_operate() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let bwp = BatchWritePolicy::default();
        let keys: Vec<Key> = (0..20i64).map(|i| as_key!(NS, SET, i)).collect();

        let mut writes: Vec<BatchOperation> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                BatchOperation::write(
                    &bwp,
                    k.clone(),
                    vec![operations::put(&as_bin!("visits", i as i64))],
                )
            })
            .collect();
        client
            .batch(&BatchPolicy::write_default(), &mut writes)
            .await
            .expect("batch write");
        for (i, op) in writes.iter().enumerate() {
            assert_eq!(op.result_code(), Some(ResultCode::Ok), "row {i}");
            let rec = op.record().expect("write row record");
            assert_eq!(rec.bins.get("visits"), Some(&Value::Nil), "row {i}");
            assert_eq!(rec.generation, 1, "row {i}");
        }
        for (i, k) in keys.iter().enumerate() {
            let rec = client
                .get(&ReadPolicy::default(), k, Bins::All)
                .await
                .expect("written record");
            assert_eq!(rec.bins.get("visits"), Some(&int(i as i64)));
        }

        // Batch operate: write then read back in the same row.
        let mut ops: Vec<BatchOperation> = keys
            .iter()
            .map(|k| {
                BatchOperation::write(
                    &bwp,
                    k.clone(),
                    vec![
                        operations::add(&as_bin!("visits", 100)),
                        operations::get_bin("visits"),
                    ],
                )
            })
            .collect();
        client
            .batch(&BatchPolicy::write_default(), &mut ops)
            .await
            .expect("batch operate");
        for (i, op) in ops.iter().enumerate() {
            let rec = op.record().expect("operate row record");
            assert_eq!(
                rec.bins.get("visits"),
                Some(&Value::MultiResult(vec![Value::Nil, int(i as i64 + 100)])),
                "row {i}"
            );
            assert_eq!(rec.generation, 2, "row {i}");
        }
    });
}

#[test]
fn batch_write_rows_fail_independently() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        seed(&client, 2).await; // keys 0 and 1 exist
        let create_only = BatchWritePolicy {
            record_exists_action: RecordExistsAction::CreateOnly,
            ..BatchWritePolicy::default()
        };
        let mut ops: Vec<BatchOperation> = (0..4i64)
            .map(|i| {
                BatchOperation::write(
                    &create_only,
                    as_key!(NS, SET, i),
                    vec![operations::put(&as_bin!("s", "new"))],
                )
            })
            .collect();
        // A row failure may also surface as the call's error; the rows carry the outcomes.
        let _ = client.batch(&BatchPolicy::write_default(), &mut ops).await;
        assert_eq!(ops[0].result_code(), Some(ResultCode::KeyExistsError));
        assert_eq!(ops[1].result_code(), Some(ResultCode::KeyExistsError));
        assert_eq!(ops[2].result_code(), Some(ResultCode::Ok));
        assert_eq!(ops[3].result_code(), Some(ResultCode::Ok));

        let rp = ReadPolicy::default();
        let rec = client
            .get(&rp, &as_key!(NS, SET, 0), Bins::All)
            .await
            .expect("get");
        assert_eq!(
            rec.bins.get("s"),
            Some(&Value::from("v0")),
            "refused row wrote"
        );
        let rec = client
            .get(&rp, &as_key!(NS, SET, 3), Bins::All)
            .await
            .expect("get");
        assert_eq!(rec.bins.get("s"), Some(&Value::from("new")));

        // Type error in one row only.
        let bwp = BatchWritePolicy::default();
        let mut ops = vec![
            BatchOperation::write(
                &bwp,
                as_key!(NS, SET, 0),
                vec![operations::add(&as_bin!("s", 1))],
            ),
            BatchOperation::write(
                &bwp,
                as_key!(NS, SET, 1),
                vec![operations::add(&as_bin!("i", 1))],
            ),
        ];
        let _ = client.batch(&BatchPolicy::write_default(), &mut ops).await;
        assert_eq!(ops[0].result_code(), Some(ResultCode::BinTypeError));
        assert_eq!(ops[1].result_code(), Some(ResultCode::Ok));
        let rec = client
            .get(&rp, &as_key!(NS, SET, 1), Bins::All)
            .await
            .expect("get");
        assert_eq!(rec.bins.get("i"), Some(&int(2)));
    });
}

#[test]
fn batch_deletes() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        seed(&client, 3).await;
        let policy = BatchDeletePolicy::default();
        let mut ops: Vec<BatchOperation> = (0..5i64)
            .map(|i| BatchOperation::delete(&policy, as_key!(NS, SET, i)))
            .collect();
        let _ = client.batch(&BatchPolicy::write_default(), &mut ops).await;
        for (i, op) in ops.iter().enumerate() {
            if i < 3 {
                assert_eq!(op.result_code(), Some(ResultCode::Ok), "row {i}");
                let rec = op.record().expect("an OK delete carries a record");
                assert!(rec.bins.is_empty(), "row {i}");
            } else {
                assert_eq!(
                    op.result_code(),
                    Some(ResultCode::KeyNotFoundError),
                    "row {i}"
                );
            }
        }
        let mut reads = read_all((0..3i64).map(|i| as_key!(NS, SET, i)), &Bins::None);
        client
            .batch(&BatchPolicy::default(), &mut reads)
            .await
            .expect("batch read");
        for op in &reads {
            assert_eq!(op.result_code(), Some(ResultCode::KeyNotFoundError));
        }
    });
}

#[test]
fn mixed_reads_writes_and_deletes_in_one_batch() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        seed(&client, 3).await;
        let mut ops = vec![
            BatchOperation::read(&BatchReadPolicy::default(), as_key!(NS, SET, 0), Bins::All),
            BatchOperation::write(
                &BatchWritePolicy::default(),
                as_key!(NS, SET, 1),
                vec![operations::put(&as_bin!("s", "changed"))],
            ),
            BatchOperation::delete(&BatchDeletePolicy::default(), as_key!(NS, SET, 2)),
            BatchOperation::read(&BatchReadPolicy::default(), as_key!(NS, SET, 42), Bins::All),
        ];
        let _ = client.batch(&BatchPolicy::write_default(), &mut ops).await;
        assert_eq!(ops[0].result_code(), Some(ResultCode::Ok));
        assert_eq!(
            ops[0].record().expect("read").bins.get("s"),
            Some(&Value::from("v0"))
        );
        assert_eq!(ops[1].result_code(), Some(ResultCode::Ok));
        assert_eq!(ops[2].result_code(), Some(ResultCode::Ok));
        assert_eq!(ops[3].result_code(), Some(ResultCode::KeyNotFoundError));

        let rp = ReadPolicy::default();
        let rec = client
            .get(&rp, &as_key!(NS, SET, 1), Bins::All)
            .await
            .expect("get");
        assert_eq!(rec.bins.get("s"), Some(&Value::from("changed")));
        assert!(!client
            .exists(&rp, &as_key!(NS, SET, 2))
            .await
            .expect("exists"));
    });
}

#[test]
fn batch_over_five_thousand_keys() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        const N: i64 = 5000;
        let bwp = BatchWritePolicy::default();
        let mut writes: Vec<BatchOperation> = (0..N)
            .map(|i| {
                BatchOperation::write(
                    &bwp,
                    as_key!(NS, "big", i),
                    vec![operations::put(&as_bin!("v", i * 7))],
                )
            })
            .collect();
        client
            .batch(&BatchPolicy::write_default(), &mut writes)
            .await
            .expect("5000-row batch write");
        assert!(writes
            .iter()
            .all(|op| op.result_code() == Some(ResultCode::Ok)));

        // Read them back, plus 100 missing keys interleaved.
        let keys = (0..N + 100).map(|i| as_key!(NS, "big", if i % 51 == 50 { -i } else { i }));
        let mut reads = read_all(keys, &Bins::All);
        client
            .batch(&BatchPolicy::default(), &mut reads)
            .await
            .expect("big batch read");
        let mut found = 0;
        for (i, op) in reads.iter().enumerate() {
            let i = i as i64;
            let user = if i % 51 == 50 { -i } else { i };
            if (0..N).contains(&user) {
                let rec = op
                    .record()
                    .unwrap_or_else(|| panic!("row {i}: {:?}", op.result_code()));
                assert_eq!(rec.bins.get("v"), Some(&int(user * 7)), "row {i}");
                found += 1;
            } else {
                assert_eq!(
                    op.result_code(),
                    Some(ResultCode::KeyNotFoundError),
                    "row {i}"
                );
            }
        }
        let expected_found = (0..N + 100)
            .filter(|i| {
                let user = if i % 51 == 50 { -i } else { *i };
                (0..N).contains(&user)
            })
            .count();
        assert_eq!(found, expected_found);
    });
}

#[test]
fn batch_across_namespaces_and_sets() {
    let server = TestServer::start_with(
        "[[namespace]]\nname = \"test\"\nnsup-period = 1\n\n\
         [[namespace]]\nname = \"bar\"\nnsup-period = 1\n",
    );
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        // The same user key in different namespaces and sets names different records.
        let places = [(NS, "s1"), (NS, "s2"), (NS, ""), ("bar", "s1"), ("bar", "")];
        for (n, (ns, set)) in places.iter().enumerate() {
            for k in 0..5i64 {
                client
                    .put(
                        &wp,
                        &as_key!(*ns, *set, k),
                        &[
                            as_bin!("where", format!("{ns}/{set}/{k}")),
                            as_bin!("n", n as i64),
                        ],
                    )
                    .await
                    .expect("put");
            }
        }
        let mut keys = Vec::new();
        for k in 0..5i64 {
            for (ns, set) in &places {
                keys.push(as_key!(*ns, *set, k));
            }
        }
        keys.push(as_key!("bar", "s2", 0)); // nothing written there
        let mut ops = read_all(keys.clone(), &Bins::All);
        client
            .batch(&BatchPolicy::default(), &mut ops)
            .await
            .expect("batch");
        for (op, key) in ops.iter().zip(&keys) {
            let expected = format!("{}/{}/{}", key.namespace(), key.set_name(), {
                match key.user_key() {
                    Some(Value::Int(i)) => *i,
                    other => panic!("{other:?}"),
                }
            });
            if key.namespace() == "bar" && key.set_name() == "s2" {
                assert_eq!(op.result_code(), Some(ResultCode::KeyNotFoundError));
                continue;
            }
            let rec = op
                .record()
                .unwrap_or_else(|| panic!("{expected}: {:?}", op.result_code()));
            assert_eq!(rec.bins.get("where"), Some(&Value::from(expected.clone())));
        }
    });
}
