//! `operate`: several ops on one record in one round trip, applied in order.
//!
//! The Rust client 3.0 sets RESPOND_ALL_OPS whenever an operate contains a write (unless it
//! also reads all bins), so every op except touch answers one slot, a write answering NULL
//! (`aerospike-core` `commands/buffer.rs` `set_operate`). Facts checked against a real server in
//! the client's own suite (`tests/src/kv.rs`): `get/add/get` on one bin answers `[10, nil, 15]`;
//! `[touch, get_header]` answers one nil result and no bins; write-only operates report each
//! written bin as nil. Java `TestOperate`: `[add, put, get]` reads the written values;
//! `[get(b1), delete, put(b2), get(b2)]` leaves only b2. Go `client_test.go`: a delete followed
//! by a put in the same operate keeps counting generations, and operate on a missing record with
//! only reads or a touch fails with KEY_NOT_FOUND.

mod common;

use aerospike::operations;
use aerospike::{as_bin, as_key, Bins, ReadPolicy, ResultCode, Value, WritePolicy};
use common::{assert_server_error, connect, int, run, TestServer, NS};

#[test]
fn add_put_and_read_all_in_one_operate() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let key = as_key!(NS, "op", "opkey");
        client
            .put(
                &wp,
                &key,
                &[
                    as_bin!("optintbin", 7),
                    as_bin!("optstringbin", "string value"),
                ],
            )
            .await
            .expect("put");
        let rec = client
            .operate(
                &wp,
                &key,
                &[
                    operations::add(&as_bin!("optintbin", 4)),
                    operations::put(&as_bin!("optstringbin", "new string")),
                    operations::get(),
                ],
            )
            .await
            .expect("operate");
        assert_eq!(rec.bins.get("optintbin"), Some(&int(11)));
        assert_eq!(
            rec.bins.get("optstringbin"),
            Some(&Value::from("new string"))
        );
        assert_eq!(rec.bins.len(), 2, "bins: {:?}", rec.bins);
        assert_eq!(rec.generation, 2);
    });
}

#[test]
fn reads_after_writes_in_one_operate_see_the_writes() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let key = as_key!(NS, "op", "aligned");
        client
            .put(&wp, &key, &[as_bin!("count", 10i64)])
            .await
            .expect("put");
        let ops = [
            operations::get_bin("count"),
            operations::add(&as_bin!("count", 5i64)),
            operations::get_bin("count"),
        ];
        let rec = client.operate(&wp, &key, &ops).await.expect("operate");
        assert_eq!(
            rec.results,
            Some(vec![int(10), Value::Nil, int(15)]),
            "one slot per op, in order"
        );
        assert_eq!(
            rec.bins.get("count"),
            Some(&Value::MultiResult(vec![int(10), Value::Nil, int(15)]))
        );
        assert_eq!(rec.generation, 2);
    });
}

#[test]
fn several_ops_on_one_bin_answer_in_order() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let key = as_key!(NS, "op", "ordered");
        let ops = [
            operations::put(&as_bin!("x", 1)),
            operations::add(&as_bin!("x", 2)),
            operations::get_bin("x"),
            operations::add(&as_bin!("x", 3)),
            operations::get_bin("x"),
            operations::put(&as_bin!("x", 100)),
            operations::get_bin("x"),
        ];
        let rec = client.operate(&wp, &key, &ops).await.expect("operate");
        assert_eq!(
            rec.results,
            Some(vec![
                Value::Nil,
                Value::Nil,
                int(3),
                Value::Nil,
                int(6),
                Value::Nil,
                int(100)
            ])
        );
        // All in one transaction: a new record at generation 1.
        assert_eq!(rec.generation, 1);
        let stored = client
            .get(&ReadPolicy::default(), &key, Bins::All)
            .await
            .expect("get");
        assert_eq!(stored.bins.get("x"), Some(&int(100)));
    });
}

#[test]
fn float_add_append_and_prepend_in_operate() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let key = as_key!(NS, "op", "mixed");
        client
            .put(&wp, &key, &[as_bin!("f", 1.5f64), as_bin!("s", "world")])
            .await
            .expect("put");
        let ops = [
            operations::add(&as_bin!("f", 2.25f64)),
            operations::get_bin("f"),
            operations::append(&as_bin!("s", "!")),
            operations::prepend(&as_bin!("s", "hello ")),
            operations::get_bin("s"),
        ];
        let rec = client.operate(&wp, &key, &ops).await.expect("operate");
        assert_eq!(
            rec.results,
            Some(vec![
                Value::Nil,
                Value::from(3.75f64),
                Value::Nil,
                Value::Nil,
                Value::from("hello world!")
            ])
        );
    });
}

#[test]
fn write_only_operate_reports_each_written_bin_as_nil() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let key = as_key!(NS, "op", "write-only");
        let ops = [
            operations::put(&as_bin!("name", "J. Smith")),
            operations::put(&as_bin!("visits", 1i64)),
        ];
        let rec = client.operate(&wp, &key, &ops).await.expect("operate");
        assert_eq!(rec.bins.len(), 2, "bins: {:?}", rec.bins);
        assert_eq!(rec.bins.get("name"), Some(&Value::Nil));
        assert_eq!(rec.bins.get("visits"), Some(&Value::Nil));
        assert_eq!(rec.generation, 1);
        // The write reply carries the record's void time (0 = never expires here).
        assert_eq!(rec.expiration(), 0);
    });
}

#[test]
fn touch_and_get_header_in_operate() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let key = as_key!(NS, "op", "touch");
        client
            .put(&wp, &key, &[as_bin!("touchbin", "v")])
            .await
            .expect("put");
        let rec = client
            .operate(&wp, &key, &[operations::touch(), operations::get_header()])
            .await
            .expect("touch + header");
        assert!(rec.bins.is_empty(), "bins: {:?}", rec.bins);
        assert_eq!(rec.results, Some(vec![Value::Nil]));
        assert_eq!(rec.generation, 2);

        // Touch with a TTL inside operate sets the TTL.
        let ttl = WritePolicy::new(0, aerospike::Expiration::Seconds(600));
        let rec = client
            .operate(&ttl, &key, &[operations::touch(), operations::get_header()])
            .await
            .expect("touch with ttl");
        assert_eq!(rec.generation, 3);
        let secs = common::ttl_secs(&rec).expect("ttl");
        assert!((590..=601).contains(&secs), "ttl {secs}");

        // put + touch + read-all: the read-all answer has the bins, touch adds none.
        let rec = client
            .operate(
                &wp,
                &key,
                &[
                    operations::put(&as_bin!("touchbin", "w")),
                    operations::touch(),
                    operations::get(),
                ],
            )
            .await
            .expect("put + touch + get");
        assert_eq!(rec.bins.get("touchbin"), Some(&Value::from("w")));
        assert!(!rec.bins.contains_key(""));
        assert_eq!(rec.generation, 4);
    });
}

#[test]
fn get_header_alone_returns_metadata_only() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let key = as_key!(NS, "op", "header");
        client
            .put(&wp, &key, &[as_bin!("a", 1)])
            .await
            .expect("put");
        client
            .put(&wp, &key, &[as_bin!("a", 2)])
            .await
            .expect("put");
        let rec = client
            .operate(&wp, &key, &[operations::get_header()])
            .await
            .expect("get header");
        assert!(rec.bins.is_empty(), "bins: {:?}", rec.bins);
        assert_eq!(rec.generation, 2);
    });
}

#[test]
fn delete_inside_operate() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let rp = ReadPolicy::default();
        let key = as_key!(NS, "op", "opdelete");
        client
            .put(&wp, &key, &[as_bin!("optintbin1", 1)])
            .await
            .expect("put");

        // Read a bin, then delete the whole record.
        let rec = client
            .operate(
                &wp,
                &key,
                &[operations::get_bin("optintbin1"), operations::delete()],
            )
            .await
            .expect("get + delete");
        assert_eq!(rec.bins.get("optintbin1"), Some(&int(1)));
        assert!(!client.exists(&rp, &key).await.expect("exists"));

        // Delete followed by a write in the same operate: only the new bin survives and
        // the generation keeps counting from the deleted record.
        client
            .put(
                &wp,
                &key,
                &[as_bin!("optintbin1", 1), as_bin!("optintbin2", 2)],
            )
            .await
            .expect("put");
        client
            .put(&wp, &key, &[as_bin!("optintbin1", 1)])
            .await
            .expect("put");
        let before = client.get(&rp, &key, Bins::None).await.expect("header");
        assert_eq!(before.generation, 2);
        let rec = client
            .operate(
                &wp,
                &key,
                &[
                    operations::get_bin("optintbin1"),
                    operations::delete(),
                    operations::put(&as_bin!("optintbin2", 2)),
                    operations::get_bin("optintbin2"),
                ],
            )
            .await
            .expect("get + delete + put + get");
        match rec.bins.get("optintbin1") {
            Some(v) => assert_eq!(v, &int(1)),
            None => panic!("bins: {:?}", rec.bins),
        }
        assert_eq!(rec.generation, 3);
        let stored = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(stored.bins.len(), 1, "bins: {:?}", stored.bins);
        assert_eq!(stored.bins.get("optintbin2"), Some(&int(2)));
        assert_eq!(stored.generation, 3);
    });
}

#[test]
fn respond_all_ops_answers_missing_bins_with_nil() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let key = as_key!(NS, "op", "respond-all");
        client
            .put(&wp, &key, &[as_bin!("a", 1)])
            .await
            .expect("put");

        let respond_all = WritePolicy {
            respond_per_each_op: true,
            ..WritePolicy::default()
        };
        let rec = client
            .operate(
                &respond_all,
                &key,
                &[
                    operations::get_bin("a"),
                    operations::get_bin("missing"),
                    operations::get_bin("a"),
                ],
            )
            .await
            .expect("read-only operate with respond-all-ops");
        assert_eq!(rec.results, Some(vec![int(1), Value::Nil, int(1)]));
    });
}

#[test]
fn operate_on_a_missing_record() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let rp = ReadPolicy::default();
        let key = as_key!(NS, "op", "missing");
        assert_server_error(
            client.operate(&wp, &key, &[operations::get()]).await,
            ResultCode::KeyNotFoundError,
            "read-all operate on missing record",
        );
        assert_server_error(
            client.operate(&wp, &key, &[operations::get_bin("a")]).await,
            ResultCode::KeyNotFoundError,
            "bin read operate on missing record",
        );
        assert_server_error(
            client.operate(&wp, &key, &[operations::touch()]).await,
            ResultCode::KeyNotFoundError,
            "touch operate on missing record",
        );
        assert!(!client.exists(&rp, &key).await.expect("exists"));

        // A write op creates the record.
        let rec = client
            .operate(
                &wp,
                &key,
                &[operations::add(&as_bin!("n", 5)), operations::get_bin("n")],
            )
            .await
            .expect("add creates");
        assert_eq!(rec.results, Some(vec![Value::Nil, int(5)]));
        assert_eq!(rec.generation, 1);
    });
}

#[test]
fn operate_honours_generation_and_exists_policies() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "op", "policies");
        let create_only = WritePolicy {
            record_exists_action: aerospike::RecordExistsAction::CreateOnly,
            ..WritePolicy::default()
        };
        client
            .operate(&create_only, &key, &[operations::put(&as_bin!("a", 1))])
            .await
            .expect("create-only creates");
        assert_server_error(
            client
                .operate(&create_only, &key, &[operations::put(&as_bin!("a", 2))])
                .await,
            ResultCode::KeyExistsError,
            "create-only operate on existing record",
        );
        let mut gen = WritePolicy {
            generation_policy: aerospike::GenerationPolicy::ExpectGenEqual,
            generation: 5,
            ..WritePolicy::default()
        };
        assert_server_error(
            client
                .operate(&gen, &key, &[operations::put(&as_bin!("a", 3))])
                .await,
            ResultCode::GenerationError,
            "generation mismatch in operate",
        );
        gen.generation = 1;
        let rec = client
            .operate(
                &gen,
                &key,
                &[operations::put(&as_bin!("a", 3)), operations::get_bin("a")],
            )
            .await
            .expect("matching generation");
        assert_eq!(rec.results, Some(vec![Value::Nil, int(3)]));
        assert_eq!(rec.generation, 2);
    });
}
