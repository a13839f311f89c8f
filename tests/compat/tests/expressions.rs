//! Filter expressions (`policy.filter_expression`, as_msg field 43) through the official Rust
//! client 3.x.
//!
//! Facts relied on (Rust client suite `tests/src/exp.rs` `expression_commands`, run against
//! real servers, and server `as/src/base/exp.c`):
//! - A single-record command whose filter is false answers FILTERED_OUT (27) and changes
//!   nothing; get, exists, put, add, touch, delete and operate all honour the filter.
//! - A filter that cannot be evaluated (missing bin, bin of another type) does not match.
//! - A batch row that fails its filter answers FILTERED_OUT with no record; a row's own
//!   filter replaces the parent's.
//! - A query returns only the records the filter matches.
//! - An ill-typed filter (comparing an int bin to a string) is refused with PARAMETER (4).
//! - A command on a missing record answers KEY_NOT_FOUND, whatever the filter.

mod common;

use aerospike::expressions::{
    self, and, bin_exists, cond, def, eq, exp_let, float_bin, ge, gt, int_bin, int_val, key_exists,
    lists, lt, ne, not, num_add, num_mod, or, regex_compare, string_bin, string_val, ttl, var,
};
use aerospike::query::PartitionFilter;
use aerospike::{
    as_bin, as_key, as_list, as_val, operations, BatchOperation, BatchPolicy, BatchReadPolicy,
    Bins, Expiration, QueryPolicy, ReadPolicy, RegexFlags, ResultCode, WritePolicy,
};
use common::{assert_server_error, connect, int, run, scan, TestServer, NS};

const SET: &str = "exp";

async fn seed(client: &aerospike::Client, set: &str, count: i64) {
    let wp = WritePolicy::default();
    for i in 0..count {
        client
            .put(
                &wp,
                &as_key!(NS, set, i),
                &[
                    as_bin!("bin", i),
                    as_bin!("s", format!("v{i}")),
                    as_bin!("f", i as f64 / 2.0),
                    as_bin!("l", as_list!(1, 2, i)),
                ],
            )
            .await
            .expect("seed put");
    }
}

fn read_policy(e: aerospike::expressions::Expression) -> ReadPolicy {
    let mut p = ReadPolicy::default();
    p.base_policy.filter_expression = Some(e);
    p
}

fn write_policy(e: aerospike::expressions::Expression) -> WritePolicy {
    let mut p = WritePolicy::default();
    p.base_policy.filter_expression = Some(e);
    p
}

#[test]
fn single_record_commands_honour_the_filter() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        seed(&client, SET, 100).await;
        let is = |v: i64| eq(int_bin("bin"), int_val(v));

        // GET
        let key = as_key!(NS, SET, 35);
        assert_server_error(
            client.get(&read_policy(is(15)), &key, Bins::All).await,
            ResultCode::FilteredOut,
            "get, filter false",
        );
        let rec = client
            .get(&read_policy(is(35)), &key, Bins::All)
            .await
            .expect("get, filter true");
        assert_eq!(rec.bins.get("bin"), Some(&int(35)));

        // EXISTS
        assert_server_error(
            client.exists(&read_policy(is(15)), &key).await,
            ResultCode::FilteredOut,
            "exists, filter false",
        );
        assert!(client
            .exists(&read_policy(is(35)), &key)
            .await
            .expect("exists"));

        // PUT: refused writes change nothing.
        let key = as_key!(NS, SET, 25);
        assert_server_error(
            client
                .put(&write_policy(is(15)), &key, &[as_bin!("bin", 26)])
                .await,
            ResultCode::FilteredOut,
            "put, filter false",
        );
        let rec = client
            .get(&ReadPolicy::default(), &key, Bins::All)
            .await
            .expect("get");
        assert_eq!(rec.bins.get("bin"), Some(&int(25)));
        assert_eq!(
            rec.generation, 1,
            "a filtered-out put must not bump the generation"
        );
        client
            .put(&write_policy(is(25)), &key, &[as_bin!("bin", 26)])
            .await
            .expect("put, filter true");

        // ADD and TOUCH
        let key = as_key!(NS, SET, 55);
        assert_server_error(
            client
                .add(&write_policy(is(15)), &key, &[as_bin!("bin", 1)])
                .await,
            ResultCode::FilteredOut,
            "add, filter false",
        );
        client
            .add(&write_policy(is(55)), &key, &[as_bin!("bin", 1)])
            .await
            .expect("add, filter true");
        assert_server_error(
            client.touch(&write_policy(is(55)), &key).await,
            ResultCode::FilteredOut,
            "touch after the add changed the bin",
        );
        client
            .touch(&write_policy(is(56)), &key)
            .await
            .expect("touch, filter true");

        // OPERATE
        let key = as_key!(NS, SET, 85);
        let bin = as_bin!("other", 85);
        let ops = [operations::add(&bin), operations::get_bin("bin")];
        assert_server_error(
            client.operate(&write_policy(is(15)), &key, &ops).await,
            ResultCode::FilteredOut,
            "operate, filter false",
        );
        let rec = client
            .operate(&write_policy(is(85)), &key, &ops)
            .await
            .expect("operate, filter true");
        assert_eq!(rec.bins.get("bin"), Some(&int(85)));

        // DELETE
        let key = as_key!(NS, SET, 15);
        assert_server_error(
            client.delete(&write_policy(is(16)), &key).await,
            ResultCode::FilteredOut,
            "delete, filter false",
        );
        assert!(client
            .exists(&ReadPolicy::default(), &key)
            .await
            .expect("exists"));
        assert!(client
            .delete(&write_policy(is(15)), &key)
            .await
            .expect("delete, filter true"));
        // A missing record answers KEY_NOT_FOUND, not FILTERED_OUT.
        assert_server_error(
            client.get(&read_policy(is(15)), &key, Bins::All).await,
            ResultCode::KeyNotFoundError,
            "get of a deleted record with a filter",
        );
    });
}

#[test]
fn unevaluable_filters_do_not_match_and_ill_typed_ones_are_refused() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        seed(&client, SET, 3).await;
        let key = as_key!(NS, SET, 1);
        // Missing bin, and a bin read as another type: unknown, even under `not`.
        for e in [
            eq(int_bin("missing"), int_val(1)),
            not(eq(int_bin("missing"), int_val(1))),
            eq(int_bin("s"), int_val(1)),
            not(eq(int_bin("s"), int_val(1))),
        ] {
            assert_server_error(
                client.get(&read_policy(e.clone()), &key, Bins::All).await,
                ResultCode::FilteredOut,
                &format!("{e:?}"),
            );
        }
        // or(unknown, true) is true.
        client
            .get(
                &read_policy(or(vec![
                    eq(int_bin("missing"), int_val(1)),
                    eq(int_bin("bin"), int_val(1)),
                ])),
                &key,
                Bins::All,
            )
            .await
            .expect("or with a true branch matches");
        // Comparing an int bin to a string is refused before any record is read.
        assert_server_error(
            client
                .get(
                    &read_policy(eq(int_bin("bin"), string_val("1"))),
                    &key,
                    Bins::All,
                )
                .await,
            ResultCode::ParameterError,
            "ill-typed filter",
        );
    });
}

#[test]
fn richer_filters_on_get() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        seed(&client, SET, 10).await;
        let key = as_key!(NS, SET, 4);
        let ok = |e: aerospike::expressions::Expression| {
            let client = &client;
            let key = &key;
            async move { client.get(&read_policy(e), key, Bins::All).await.is_ok() }
        };
        assert!(ok(eq(float_bin("f"), expressions::float_val(2.0))).await);
        assert!(ok(eq(string_bin("s"), string_val("v4"))).await);
        assert!(ok(bin_exists("l")).await);
        assert!(!ok(bin_exists("nope")).await);
        assert!(ok(eq(lists::size(expressions::list_bin("l"), &[]), int_val(3))).await);
        assert!(
            ok(regex_compare(
                "^V[0-9]$",
                RegexFlags::ICASE,
                string_bin("s")
            ))
            .await
        );
        assert!(!ok(regex_compare("^V[0-9]$", RegexFlags::NONE, string_bin("s"))).await);
        assert!(ok(eq(expressions::set_name(), string_val(SET))).await);
        // Records never expire in this namespace by default: TTL is -1.
        assert!(ok(eq(ttl(), int_val(-1))).await);
        assert!(!ok(key_exists()).await, "the key was not sent");
        assert!(
            ok(exp_let(vec![
                def("x", int_bin("bin")),
                and(vec![lt(int_val(3), var("x")), lt(var("x"), int_val(5))]),
            ]))
            .await
        );
        assert!(
            ok(gt(
                cond(vec![
                    eq(num_mod(int_bin("bin"), int_val(2)), int_val(0)),
                    num_add(vec![int_bin("bin"), int_val(100)]),
                    int_val(-1),
                ]),
                int_val(100),
            ))
            .await
        );

        // key_exists once the key is stored.
        let wp = WritePolicy {
            send_key: true,
            expiration: Expiration::Seconds(600),
            ..WritePolicy::default()
        };
        client
            .put(&wp, &as_key!(NS, SET, 4), &[as_bin!("bin", 4)])
            .await
            .expect("put with send_key");
        assert!(ok(key_exists()).await);
        assert!(ok(eq(expressions::key(expressions::ExpType::Int), int_val(4))).await);
        assert!(ok(and(vec![gt(ttl(), int_val(500)), ge(int_val(600), ttl())])).await);
    });
}

#[test]
fn batch_rows_use_their_own_or_the_parent_filter() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        seed(&client, SET, 10).await;
        let mut bp = BatchPolicy::default();
        bp.base_policy.filter_expression = Some(gt(int_bin("bin"), int_val(4)));
        let plain = BatchReadPolicy::default();
        let own = BatchReadPolicy {
            filter_expression: Some(eq(int_bin("bin"), int_val(1))),
            ..BatchReadPolicy::default()
        };
        let mut ops: Vec<BatchOperation> = (0..8i64)
            .map(|i| BatchOperation::read(&plain, as_key!(NS, SET, i), Bins::All))
            .collect();
        ops.push(BatchOperation::read(&own, as_key!(NS, SET, 1), Bins::All));
        ops.push(BatchOperation::read(&own, as_key!(NS, SET, 2), Bins::All));
        client.batch(&bp, &mut ops).await.expect("batch");
        for (i, op) in ops.iter().enumerate().take(8) {
            if i > 4 {
                assert_eq!(op.result_code(), Some(ResultCode::Ok), "row {i}");
                let rec = op.record().expect("matching row has a record");
                assert_eq!(rec.bins.get("bin"), Some(&int(i as i64)));
            } else {
                assert_eq!(op.result_code(), Some(ResultCode::FilteredOut), "row {i}");
                assert!(op.record().is_none(), "row {i} filtered out has no record");
            }
        }
        assert_eq!(
            ops[8].result_code(),
            Some(ResultCode::Ok),
            "own filter true"
        );
        assert_eq!(
            ops[9].result_code(),
            Some(ResultCode::FilteredOut),
            "own filter false"
        );
    });
}

#[test]
fn query_returns_only_matching_records() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        seed(&client, SET, 100).await;
        let count = |e: aerospike::expressions::Expression| {
            let client = &client;
            async move {
                let mut qp = QueryPolicy::default();
                qp.base_policy.filter_expression = Some(e);
                scan(client, &qp, PartitionFilter::all(), NS, SET, Bins::All)
                    .await
                    .len()
            }
        };
        assert_eq!(count(eq(int_bin("bin"), int_val(75))).await, 1);
        assert_eq!(count(ne(int_bin("bin"), int_val(1))).await, 99);
        assert_eq!(count(lt(int_bin("bin"), int_val(10))).await, 10);
        assert_eq!(
            count(eq(num_mod(int_bin("bin"), int_val(10)), int_val(0))).await,
            10
        );
        assert_eq!(
            count(regex_compare("[1-5]", RegexFlags::ICASE, string_bin("s"))).await,
            75
        );
        assert_eq!(count(eq(int_bin("missing"), int_val(0))).await, 0);
        let records = {
            let mut qp = QueryPolicy::default();
            qp.base_policy.filter_expression = Some(gt(int_bin("bin"), int_val(96)));
            scan(&client, &qp, PartitionFilter::all(), NS, SET, Bins::All).await
        };
        let mut got: Vec<_> = records
            .iter()
            .filter_map(|r| match r.bins.get("bin") {
                Some(aerospike::Value::Int(i)) => Some(*i),
                _ => None,
            })
            .collect();
        got.sort_unstable();
        assert_eq!(got, vec![97, 98, 99]);
    });
}
